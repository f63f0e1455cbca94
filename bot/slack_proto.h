/* Slack, the pure half: what Slack sends us (Socket Mode frames, Web API
 * answers) parsed into fixed-size structs, and the ack frame we send back.
 * No I/O, no globals. Socket Mode frames are read in one pass with
 * common/json_scan.h (strict RFC 8259, nothing allocated); Web API answers,
 * off the hot path, still go through a json-c tree made and freed per call.
 * Shapes follow ../shared/reference/chat-protocols.md Part A (A2, A3, A4, A5,
 * A6, A7).
 *
 * Every string field has a bound. A value over its bound is an error
 * (SLACK_PROTO_ERR_TOO_LONG), never a silent cut, with two exceptions said
 * where they are: the slash command text (flagged, for "over 4 KiB"), and
 * human names and warnings in Web API answers (cut at a UTF-8 boundary:
 * they are only shown or logged). JSON null counts as absent. */
#ifndef NM_SLACK_PROTO_H
#define NM_SLACK_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cmd.h"

#define SLACK_FRAME_MAX (256 * 1024)     /* a Socket Mode text frame */
#define SLACK_API_BODY_MAX (1024 * 1024) /* a Web API answer */

/* Field bounds, NUL included. */
#define SLACK_ID_LEN 64          /* team, user, channel, app, enterprise IDs */
#define SLACK_ENVELOPE_ID_LEN 128
#define SLACK_TYPE_LEN 64
#define SLACK_NAME_LEN 256       /* team_domain, user_name, channel_name */
#define SLACK_COMMAND_LEN 64     /* "/nomatron" */
#define SLACK_TS_LEN 32          /* "1700000000.000100" (A10) */
#define SLACK_TRIGGER_LEN 256
#define SLACK_URL_LEN 1024       /* response_url */
#define SLACK_ACTION_ID_LEN 256  /* action_id <= 255 chars (A8) */
#define SLACK_ACTION_VALUE_LEN 2001 /* value <= 2000 chars (A8) */
#define SLACK_REASON_LEN 128     /* disconnect reason, retry reason */

enum slack_proto_code {
    SLACK_PROTO_OK = 0,
    SLACK_PROTO_ERR_TOO_LARGE,  /* input over SLACK_FRAME_MAX / SLACK_API_BODY_MAX, or output over its nm_buf ceiling */
    SLACK_PROTO_ERR_JSON,       /* malformed JSON, truncated, or bytes after it */
    SLACK_PROTO_ERR_NOT_OBJECT, /* valid JSON, but not an object */
    SLACK_PROTO_ERR_MISSING,    /* a required field is absent (or null) */
    SLACK_PROTO_ERR_TYPE,       /* a field has the wrong JSON type */
    SLACK_PROTO_ERR_TOO_LONG,   /* a string over its field's bound */
    SLACK_PROTO_ERR_VALUE,      /* a number out of range, a NUL byte inside a string, a bad header value */
    SLACK_PROTO_ERR_INVALID,    /* bad argument from the caller (unknown method, empty envelope_id) */
    SLACK_PROTO_ERR_NOMEM,
};
/* A static phrase for the code ("field too long"). */
const char *slack_proto_strerror(int code);

/* ---- Socket Mode frames (A2.2, A3, A4) ---- */

enum slack_frame_type {
    SLACK_FRAME_HELLO,
    SLACK_FRAME_DISCONNECT,
    SLACK_FRAME_SLASH,        /* envelope type "slash_commands" */
    SLACK_FRAME_INTERACTIVE,  /* envelope type "interactive" */
    SLACK_FRAME_EVENTS,       /* envelope type "events_api" */
    SLACK_FRAME_OTHER,        /* any other type: ack it when it has an envelope_id, else ignore */
};

typedef struct slack_frame {
    enum slack_frame_type kind;
    char type[SLACK_TYPE_LEN];               /* the frame's "type" as sent */
    char envelope_id[SLACK_ENVELOPE_ID_LEN]; /* "" for hello / disconnect */
    bool accepts_response_payload;
    int retry_attempt;                       /* 0 when absent (first delivery) */
    char retry_reason[SLACK_REASON_LEN];

    struct {
        int num_connections;                 /* -1 when absent */
        int approximate_connection_time;     /* seconds (debug_info); -1 when absent */
        char app_id[SLACK_ID_LEN];           /* connection_info.app_id */
    } hello;

    struct {
        char reason[SLACK_REASON_LEN];       /* "warning", "refresh_requested", "link_disabled", ... */
    } disconnect;

    /* payload of "slash_commands" (A3.1). user_id, channel_id and command are required. */
    struct {
        char team_id[SLACK_ID_LEN];
        char team_domain[SLACK_NAME_LEN];
        char user_id[SLACK_ID_LEN];
        char user_name[SLACK_NAME_LEN];      /* deprecated by Slack: show, never authorize by it */
        char channel_id[SLACK_ID_LEN];
        char channel_name[SLACK_NAME_LEN];
        char command[SLACK_COMMAND_LEN];
        char text[CMD_MAX_TEXT + 1];         /* "" when text_too_long */
        bool text_too_long;                  /* text was over CMD_MAX_TEXT bytes: answer "over 4 KiB" */
        char trigger_id[SLACK_TRIGGER_LEN];
        char response_url[SLACK_URL_LEN];
        char api_app_id[SLACK_ID_LEN];
        char enterprise_id[SLACK_ID_LEN];    /* Enterprise Grid only */
    } slash;

    /* payload of "interactive" (A4). For "block_actions", user.id and
     * actions[0].action_id are required; other interaction types (views,
     * shortcuts) are parsed as far as these fields go. */
    struct {
        char type[SLACK_TYPE_LEN];           /* payload.type: "block_actions", "view_submission", ... */
        char team_id[SLACK_ID_LEN];          /* team.id (team is null for org-wide installs) */
        char user_id[SLACK_ID_LEN];          /* user.id */
        char channel_id[SLACK_ID_LEN];       /* container.channel_id, else channel.id */
        char message_ts[SLACK_TS_LEN];       /* container.message_ts, else message.ts */
        char trigger_id[SLACK_TRIGGER_LEN];
        char response_url[SLACK_URL_LEN];
        char action_id[SLACK_ACTION_ID_LEN]; /* actions[0] */
        char action_value[SLACK_ACTION_VALUE_LEN];
    } interactive;

    /* payload of "events_api" (A9.3 wrapper): deduplicate on event_id. */
    struct {
        char team_id[SLACK_ID_LEN];
        char event_id[SLACK_ID_LEN];
        char event_type[SLACK_TYPE_LEN];     /* payload.event.type */
    } events;
} slack_frame;

/* Parses one text frame (json: len bytes, need not be NUL-terminated) into
 * *out (overwritten). Returns SLACK_PROTO_OK or an SLACK_PROTO_ERR_* code
 * with a sentence naming the field in err ("payload.user_id: expected a
 * string"); err may be NULL. Frames over SLACK_FRAME_MAX are refused
 * unread. On an error past the envelope, out->envelope_id is still set when
 * it could be read, so the caller can ack the envelope and drop it. Unknown
 * fields are ignored; known ones must have their documented JSON type. */
int slack_frame_parse(const char *json, size_t len, slack_frame *out, char *err, size_t errlen);

/* Appends the ack frame for envelope_id to out: {"envelope_id":"…"} or,
 * when payload_json is given, {"envelope_id":"…","payload":{…}}, where
 * payload_json must be one JSON object (A2.3, A3.3). Returns
 * SLACK_PROTO_OK, _INVALID (envelope_id NULL or empty), _JSON / _NOT_OBJECT
 * (payload), _TOO_LARGE (out's ceiling) or _NOMEM; out is unchanged on error. */
int slack_ack_build(const char *envelope_id, const char *payload_json, nm_buf *out);
/* The same without checking the payload: len bytes put in as they are, so
 * they must be one JSON object nomatron built itself (slack_answer_payload);
 * payload NULL for a bare ack. Returns as slack_ack_build. */
int slack_ack_frame(const char *envelope_id, const char *payload, size_t len, nm_buf *out);

/* ---- Web API answers (A5, A6) ---- */

/* What nomatron reads from an answer. Fields the method does not return stay "". */
typedef struct slack_api_result {
    bool ok;
    char error[64];          /* ok == false: "channel_not_found", ... ("unknown_error" when Slack gave none) */
    char needed[128];        /* missing_scope: the scope(s) needed */
    char warning[256];       /* comma-separated codes; cut at a UTF-8 boundary when longer */
    char ts[32];             /* chat.postMessage, chat.update */
    char channel[32];        /* chat.postMessage, chat.update, chat.getPermalink */
    char message_ts[32];     /* chat.postEphemeral (not usable with chat.update) */
    char permalink[512];     /* chat.getPermalink */
    char url[1024];          /* apps.connections.open (the wss URL), auth.test (the workspace URL) */
    char team_id[32], team[128], user_id[32], bot_id[32];    /* auth.test; users.info: team_id, user_id */
    char user_name[128], real_name[128], display_name[128]; /* users.info (auth.test: user_name); names are cut */
    bool is_bot, deleted;    /* users.info */
} slack_api_result;

/* Parses the answer to `method`, one of "apps.connections.open",
 * "chat.postMessage", "chat.update", "chat.postEphemeral",
 * "chat.getPermalink", "users.info", "auth.test" (others: _INVALID). A
 * well-formed ok:false answer returns SLACK_PROTO_OK with out->ok false and
 * out->error set; ok:true without the field the method promises (ts, url,
 * permalink, user.id, ...) is _MISSING. Bodies over SLACK_API_BODY_MAX are
 * refused unread. */
int slack_api_parse(const char *method, const char *body, size_t len, slack_api_result *out, char *err,
                    size_t errlen);

/* A sentence for the log that says what a Web API error code means and what
 * to do about it (A1, A5, A6, A7); a generic sentence for other codes. Static. */
const char *slack_error_hint(const char *error);

/* A Slack ID (user, channel, team: "U0123ABC"): 1 to 32 upper-case letters
 * and digits. What passes may go into a mention (<@U…>) or a URL query
 * without escaping. */
bool slack_id_valid(const char *id);

/* The Retry-After header of a 429 (A7): decimal seconds, blanks and a
 * trailing CR/LF allowed around it, capped at 3600. Returns SLACK_PROTO_OK,
 * or _VALUE (empty, a date, a sign, any other byte); *seconds is set only on OK. */
int slack_retry_after_parse(const char *header_value, int *seconds);

#endif
