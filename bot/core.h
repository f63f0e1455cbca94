/* The bot's core: one command from any chat — the shell, Slack, later
 * Mattermost — becomes an answer, a decision recorded in PostgreSQL, a
 * request on the work stream, or a task for a worker. Platforms differ only
 * in how a command arrives and where its replies go; everything between is
 * here, once.
 *
 * All calls and callbacks run on the bot's libuv loop thread. PostgreSQL
 * work runs on libuv's thread pool (dbpool); Redis through queue_async.
 *
 * Replies: every accepted command gets zero or more reply() calls and then
 * exactly one done() call, after which the core never touches its ud again.
 * Replies carry the console text (what the shell prints) and, for requests
 * and decisions, the facts a chat renderer needs. */
#ifndef NM_CORE_H
#define NM_CORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "audit.h"
#include "cmd.h"
#include "config.h"
#include "dbpool.h"
#include "queue_async.h"

enum bot_reply_kind {
    BOT_REPLY_ANSWER = 1,   /* for the asker only (help, refusals, usage, status, history ...) */
    BOT_REPLY_REQUEST,      /* a request was created (also when it is refused later by workers) */
    BOT_REPLY_DECISION,     /* approve / reject / cancel / lock / unlock took effect: news for the channel */
};

/* What a chat renderer needs about a request the command created or decided on. */
typedef struct bot_request_facts {
    int64_t id;
    const char *kind;       /* "deploy", "rollback", "promote" */
    const char *job, *version, *env, *from_env;
    const char *actor;      /* who asked (REQUEST) or decided (DECISION) */
    const char *state;      /* the request's state now ("" when unknown) */
    int required, counted;  /* approvals needed / counted so far */
    bool break_glass;
    const char *reason, *emergency;
    enum cmd_kind decision; /* DECISION: CMD_APPROVE, CMD_REJECT, CMD_CANCEL, CMD_LOCK, CMD_UNLOCK */
    bool counted_now;       /* DECISION approve: this approval was counted */
} bot_request_facts;

typedef struct bot_reply {
    enum bot_reply_kind kind;
    const char *text;       /* console rendering: complete lines; never NULL */
    bool failed;            /* not done because something failed (a refusal is not a failure) */
    bool preformatted;      /* a table or listing: keep line breaks and alignment */
    const bot_request_facts *req;   /* REQUEST, and DECISION about a request; NULL otherwise */
} bot_reply;

typedef struct bot_replier {
    void (*reply)(void *ud, const bot_reply *r);
    void (*done)(void *ud);
} bot_replier;

#define BOT_ID_LEN 128

/* One inbound command, as the platform adapter saw it. Copied by bot_core_handle. */
typedef struct bot_inbound {
    const char *platform;   /* "shell", "slack" */
    const char *team;       /* NULL when the platform has none */
    const char *channel;    /* "shell:console", "slack:C0PROD" */
    const char *actor;      /* "shell:alice", "slack:U01BBBB" */
    const char *idem_key;   /* the platform's identity of this input (SPEC §6) */
    const char *route;      /* event route for requests it creates ("slack", "shell:<session>") */
    const char *message_ref;/* the inbound message's ts / post ID, if it has one; NULL otherwise */
    const char *permalink;  /* NULL when unknown */
} bot_inbound;

typedef struct bot_core bot_core;

/* qa and db are borrowed and must outlive the core. answer_route is this
 * process's own event route ("shell:<session>", "bot:<session>"): workers'
 * answers to tasks the core started come back on it, and the owner feeds
 * them to bot_core_event(). cfg is referenced (config_ref). */
bot_core *bot_core_new(uv_loop_t *loop, config *cfg, queue_async *qa, dbpool *db, const char *answer_route);
/* A new snapshot for commands that arrive from now on (commands in flight keep theirs). */
void bot_core_set_config(bot_core *c, config *cfg);
const config *bot_core_config(const bot_core *c);
/* The queue connection went away (shutdown): later commands that need Redis are refused. */
void bot_core_detach_queue(bot_core *c);

/* Parses and runs one command (text of len bytes, not NUL-terminated
 * necessarily). to/ud receive the replies; ud must stay valid until done(). */
void bot_core_handle(bot_core *c, const bot_inbound *in, const char *text, size_t len, const bot_replier *to,
                     void *ud);
/* Same for a command refused before parsing because it is over CMD_MAX_TEXT. */
void bot_core_too_long(bot_core *c, const bot_replier *to, void *ud);

/* One worker event (a JSON object) from a stream; NULL, with a warning
 * logged, when it is not one. The caller puts it. */
json_object *bot_event_parse(const char *json, size_t len);

/* An event from the answer route: a task's answer (status, action, evidence)
 * is delivered to the command that asked; returns true when it was one. */
bool bot_core_event(bot_core *c, const json_object *ev);

/* Commands not yet done (database work, Redis adds, tasks awaiting answers). */
int bot_core_pending(const bot_core *c);

/* Ends every pending command (done() called, with a failed reply for tasks
 * still waiting); the thread-pool work in flight completes first, so call
 * this and then run the loop until it has no more work. */
void bot_core_cancel_tasks(bot_core *c);
/* A random session ID (16 hex digits) for a process's own event route. */
void bot_session_id(char *out, size_t outlen);

/* Frees the core. No command may be pending (run the loop first). */
void bot_core_free(bot_core *c);

#endif
