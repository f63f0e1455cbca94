/* Slack, the pure half of what we send: Web API request bodies (JSON text)
 * and Slack-safe text. No I/O, no globals; json-c objects and scratch
 * buffers are made and freed inside each call. Block Kit limits and fields
 * follow ../shared/reference/chat-protocols.md A6, A8.
 *
 * Safety rule: every piece of text that did not come from this file (job
 * names, versions, reasons, plans, details, console answers) goes through
 * slack_escape, so echoed text can never form a mention (<!channel>,
 * <@U…>), a link, or invalid UTF-8. Mentions are only made from identities
 * by slack_identity. Bodies set "link_names":false (no @channel from plain
 * text) and new messages "unfurl_links"/"unfurl_media":false.
 *
 * Limits are kept by cutting, never by failing: text <= SLACK_TEXT_MAX
 * bytes (Slack counts characters; bytes are the safe side), a section's
 * text <= SLACK_SECTION_MAX, <= SLACK_BLOCKS_MAX blocks, the whole body <=
 * SLACK_BODY_MAX. */
#ifndef NM_SLACK_RENDER_H
#define NM_SLACK_RENDER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cmd.h"
#include "slack_proto.h"

#define SLACK_TEXT_MAX 4000      /* message text (msg_too_long above it) */
#define SLACK_SECTION_MAX 3000   /* a section block's text */
#define SLACK_BLOCKS_MAX 50      /* blocks in one message */
#define SLACK_BODY_MAX (16 * 1024)

/* action_id of the buttons on a request waiting for approval; their value
 * is the request ID ("D-12"). The interactive handler dispatches on these. */
#define SLACK_ACTION_APPROVE "nomatron.approve"
#define SLACK_ACTION_REJECT "nomatron.reject"

/* ---- text ---- */

/* Appends text made safe for Slack mrkdwn/plain text: & -> &amp;,
 * < -> &lt;, > -> &gt;; invalid UTF-8 -> U+FFFD; control bytes other than
 * \n and \t dropped. NULL appends nothing. */
void slack_escape(nm_buf *out, const char *text);
/* As slack_escape, writing at most max bytes (max > 0): when the escaped
 * text does not fit, it is cut before a whole character or entity and "…"
 * ends it, within max. Returns true when it cut. */
bool slack_escape_n(nm_buf *out, const char *text, size_t max);

/* An identity as people see it: "slack:U123" -> "<@U123>" (only when the
 * ID is 1-32 of [A-Z0-9]); any other identity escaped as plain text. */
void slack_identity(nm_buf *out, const char *identity);

/* ---- deployment progress ---- */

typedef struct slack_progress {
    int64_t healthy, desired, placed, unhealthy;
    int64_t canaries_desired, canaries_placed, canaries_healthy;
    bool promoted;   /* every group with canaries is promoted */
} slack_progress;

/* "▰▰▰▱▱ 3/5 healthy · 1 canary awaiting promotion · 1 unhealthy": five
 * cells filled healthy*5/desired rounded down (all five only when healthy
 * >= desired > 0), canaries only while some are desired and not promoted
 * ("H/N canaries healthy" until all are, then "N canaries awaiting
 * promotion"), unhealthy only when > 0. Negative counts read as 0. */
void slack_progress_line(const slack_progress *p, nm_buf *out);

/* ---- the request message ---- */

#define SLACK_VIEW_APPROVERS 16
#define SLACK_VIEW_IDENTITY_LEN 128
#define SLACK_VIEW_DETAIL_LEN 1024
#define SLACK_VIEW_PLAN_LEN 8192

/* What the message about one request shows. The caller fills the request's
 * own facts (id, kind, job, version, env, from_env, requester, required,
 * given, approvers, break_glass, req_reason, emergency) from the command or
 * PostgreSQL; worker events then move it with slack_req_view_apply. */
typedef struct slack_req_view {
    int64_t id;                             /* request D-<id> */
    char kind[16];                          /* "deploy", "rollback", "promote" */
    char job[CMD_MAX_NAME + 1];
    char version[CMD_MAX_VERSION + 1];      /* rollback: "" = the previous stable version */
    char env[CMD_MAX_NAME + 1];
    char from_env[CMD_MAX_NAME + 1];        /* promote */
    char requester[SLACK_VIEW_IDENTITY_LEN];/* identity, "slack:U…" */
    int required;                           /* approvals required; 0 = none needed */
    int given;                              /* approvals counted (per person) */
    size_t n_approvers;
    char approvers[SLACK_VIEW_APPROVERS][SLACK_VIEW_IDENTITY_LEN];   /* identities, in order */
    char state[24];                         /* SPEC §6 state; "" until known */
    char phase[24];
    char reason[24];                        /* failed / refused: "unhealthy", "conflict", ... */
    int64_t job_version;                    /* Nomad job version; -1 unknown */
    char detail[SLACK_VIEW_DETAIL_LEN];     /* the last event's detail (not the plan) */
    char plan[SLACK_VIEW_PLAN_LEN];         /* what the approval binds to, or why there is no plan */
    slack_progress progress;
    bool has_progress;
    bool break_glass;
    char req_reason[CMD_MAX_REASON + 1];    /* --reason */
    char emergency[CMD_MAX_REASON + 1];     /* --emergency (break-glass) */
} slack_req_view;

/* Zeroes *v for request id (job_version -1). */
void slack_req_view_init(slack_req_view *v, int64_t id);
/* Adds an approver identity (ignored when already listed or the list is
 * full; `given` is the caller's). Returns 1 when added, 0 otherwise. */
int slack_req_view_add_approver(slack_req_view *v, const char *identity);

/* Applies one worker event {type:"request", req, state, phase, reason, kind,
 * job, env, version, job_version, detail, progress{…}} (docs/DESIGN.md
 * "Events"). An event for another request, or any event once the view is
 * in a final state (succeeded, failed, rejected, expired, cancelled), is
 * ignored. In state pending_approval the event's detail is the plan (or why
 * there is none) and goes to v->plan. Returns 1 when something shown
 * changed, 0 when not, -1 when the event is malformed (wrong types, unknown
 * state, over-long names; *v is then unchanged). */
int slack_req_view_apply(slack_req_view *v, const json_object *ev);

/* Appends the chat.postMessage body (ts NULL) or chat.update body (ts of the
 * message) for the request: fallback text plus blocks — summary, break-glass
 * flag, approvals, the plan (preformatted, cut with a pointer to
 * `/nomatron audit D-<id>`), state with progress while running or the
 * outcome, and Approve/Reject buttons while pending_approval. Returns
 * SLACK_PROTO_OK, _INVALID (channel NULL/empty), _TOO_LARGE (out's
 * ceiling) or _NOMEM; out is unchanged on error. */
int slack_req_message(const slack_req_view *v, const char *channel, const char *ts, nm_buf *out);

/* Appends a chat.postMessage body (user NULL) or chat.postEphemeral body
 * (to user, a Slack user ID) for a plain answer in console style, in a
 * thread when thread_ts is given. Escaped; preformatted wraps it in ```;
 * over SLACK_TEXT_MAX it is cut and ends "… (truncated)". Returns as
 * slack_req_message. */
int slack_text_body(const char *channel, const char *user, const char *thread_ts, const char *text,
                    bool preformatted, nm_buf *out);

/* Appends the same answer as an immediate response to a slash command
 * (A3.3), for the Socket Mode ack's payload or an HTTP-mode reply:
 * {"response_type":"ephemeral","text":"…"}. Slack shows it to the person
 * who typed the command, in that channel, whether or not the bot is a
 * member there. Returns SLACK_PROTO_OK, _TOO_LARGE (out's ceiling) or
 * _NOMEM; out is unchanged on error. */
int slack_answer_payload(const char *text, bool preformatted, nm_buf *out);

#endif
