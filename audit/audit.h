/* audit/: PostgreSQL — schema and migrations, requests, the append-only
 * hash-chained audit trail, lookups. Knows nothing of chat or Nomad.
 *
 * Every state change of a request and its audit event commit in one
 * transaction, stamped with PostgreSQL's clock. Audit events form one chain:
 *     hash = SHA-256(prev_hash || canonical_encoding_v1(event))
 * (see docs/AUDIT.md for the encoding). Appends are serialised with a
 * transaction-scoped advisory lock; the database refuses UPDATE, DELETE and
 * TRUNCATE on audit_events.
 *
 * An audit_db is one connection and is used by one thread at a time. */
#ifndef NM_AUDIT_H
#define NM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "canon.h" /* audit_event */

enum audit_code {
    AUDIT_OK = 0,
    AUDIT_ERR_CONNECT,    /* cannot reach PostgreSQL / connection lost */
    AUDIT_ERR_SQL,        /* statement failed; sqlstate holds the detail */
    AUDIT_ERR_NOT_FOUND,  /* no such request */
    AUDIT_ERR_STATE,      /* the request is not in the state the transition expects */
    AUDIT_ERR_SCHEMA,     /* database schema older/newer than this build: run migrate */
    AUDIT_ERR_BROKEN,     /* hash chain does not verify */
    AUDIT_ERR_INVALID,    /* bad argument (e.g. missing field) */
    AUDIT_ERR_NOMEM,
    AUDIT_ERR_IO,         /* reading or writing a file (export, verify --file) failed */
    AUDIT_ERR_EXISTS,     /* an open request already holds (env, job) where approvals are required (SPEC §6) */
};
const char *audit_strerror(int code);

#define AUDIT_HASH_LEN 64 /* hex characters of a chain hash */

typedef struct audit_appender audit_appender; /* group commit of chained writes; see below */

typedef struct audit_db {
    void *conn;           /* PGconn *, owned */
    char errstr[256];     /* last error text (never contains the DSN's password) */
    char sqlstate[6];     /* last SQLSTATE, "" if none */
    audit_appender *appender; /* borrowed; NULL = every write runs on conn alone (audit_db_set_appender) */
    void *stmts;          /* prepared statements of this connection (db.c), owned; freed by audit_close */
} audit_db;

/* Connects with a libpq conninfo string or URI. On failure returns
 * AUDIT_ERR_CONNECT with db->errstr set; audit_close() is still safe.
 * Clears any appender attachment: attach again after each connect. */
int audit_connect(audit_db *db, const char *dsn);
void audit_close(audit_db *db);
/* True if the connection is usable; tries one reset if it is not. */
bool audit_ping(audit_db *db);

/* Applies pending migrations in order; idempotent, and safe when several
 * processes run it at once (pg_advisory_xact_lock). *applied receives the
 * number applied now (may be NULL). */
int audit_migrate(audit_db *db, int *applied);
/* AUDIT_OK if the schema is at this build's version, AUDIT_ERR_SCHEMA otherwise. */
int audit_schema_check(audit_db *db);

/* Where a request came from, and where its events are routed. All borrowed;
 * any may be NULL. */
typedef struct audit_origin {
    const char *platform;     /* "shell", "slack", "mattermost" */
    const char *team;
    const char *channel;      /* "shell:console", "slack:C0PROD" */
    const char *message_ref;  /* Slack message ts / Mattermost post ID */
    const char *thread;
    const char *permalink;
    const char *route;        /* opaque key for the event stream, e.g. "shell:<session>" */
} audit_origin;

typedef struct audit_new_request {
    const char *idem_key;     /* platform's identity of the inbound request; NULL = none */
    const char *kind;         /* "deploy" */
    const char *env, *job;
    const char *version;      /* tag as typed */
    const char *to_image;     /* full image reference it will set */
    int canary;               /* -1 = not given */
    const char *user_reason;  /* --reason, may be NULL */
    const char *actor;        /* identity, e.g. "shell:alice" */
    const char *person;       /* resolved person, may be NULL */
    const char *state;        /* initial state: "queued" or "pending_approval" */
    audit_origin origin;
    /* Governance (migration 3); zero / NULL = absent. */
    const char *emergency;    /* --emergency text (<= AUDIT_REASON_MAX bytes); adds a "request.emergency" event */
    int required_approvals;   /* approvals needed (gov_verdict.required); > 0 makes (env, job) exclusive */
    uint64_t policy_hash;     /* gov_policy_hash() of the env; 0 = none */
    const char *bound_image;  /* promote: the image bound at request time (<= AUDIT_BOUND_IMAGE_MAX) */
    const char *from_env;     /* promote: the source environment (<= AUDIT_NAME_MAX) */
} audit_new_request;

/* Inserts the request and its "request.created" audit event in one
 * transaction. If idem_key was seen before, nothing is created: *id_out
 * gets the existing request and *existed is set. With required_approvals > 0
 * and another request open (pending_approval .. running) for the same
 * (env, job) that needs approvals: AUDIT_ERR_EXISTS, nothing written,
 * *id_out = the open request's id. */
int audit_request_create(audit_db *db, const audit_new_request *r, int64_t *id_out, bool *existed);

#define AUDIT_STATE_LEN 24
#define AUDIT_ID_LEN 64
#define AUDIT_TEXT_LEN 256
#define AUDIT_IMAGE_LEN 512
#define AUDIT_DETAIL_LEN 1024

typedef struct audit_request {
    int64_t id;
    char kind[AUDIT_STATE_LEN];
    char state[AUDIT_STATE_LEN];
    char phase[AUDIT_STATE_LEN];      /* "" when none */
    char reason[AUDIT_STATE_LEN];     /* "" when none */
    char env[AUDIT_ID_LEN + 1];
    char job[AUDIT_ID_LEN + 1];
    char version[130];
    char to_image[AUDIT_IMAGE_LEN];
    char from_image[AUDIT_IMAGE_LEN];
    int canary;
    char actor[AUDIT_TEXT_LEN];
    char person[AUDIT_ID_LEN + 1];
    char platform[AUDIT_STATE_LEN];
    char channel[AUDIT_TEXT_LEN];
    char route[AUDIT_TEXT_LEN];
    int64_t nomad_job_version;        /* -1 = unknown */
    char eval_id[AUDIT_ID_LEN];
    char deployment_id[AUDIT_ID_LEN];
    char detail[AUDIT_DETAIL_LEN];
    char created_at[40];              /* RFC 3339, UTC */
    char updated_at[40];
} audit_request;

int audit_request_get(audit_db *db, int64_t id, audit_request *out);

/* A state change (or a phase change within a state). Strings borrowed; NULL
 * leaves a request column unchanged. */
typedef struct audit_transition {
    const char *from_state;   /* required: the state the request must be in */
    const char *to_state;     /* required (may equal from_state for a phase change) */
    const char *phase;        /* new phase ("" clears) */
    const char *reason;       /* failure reason ("" clears) */
    const char *action;       /* audit action, e.g. "deploy.registered" */
    const char *actor;        /* who caused it ("nomatron:worker/host-pid" for workers) */
    const char *person;
    const char *outcome;      /* short result text for the audit row */
    const char *detail;       /* human detail (Nomad error text, counts) */
    const char *from_image;
    const char *eval_id;
    const char *deployment_id;
    int64_t nomad_job_version;/* -1 = unchanged */
} audit_transition;

/* Applies the transition and appends its audit event in one transaction.
 * AUDIT_ERR_STATE (nothing written) if the request is not in from_state. */
int audit_request_transition(audit_db *db, int64_t id, const audit_transition *t);

/* The event record and its canonical encoding (pure, unit-tested) live in
 * canon.h; the offline reader of JSONL exports in export.h. */

/* Walks the chain from event `from_id` (0 = the start) and recomputes every
 * hash. AUDIT_OK if intact; AUDIT_ERR_BROKEN with *first_broken set and a
 * reason in db->errstr otherwise. */
int audit_verify(audit_db *db, int64_t from_id, int64_t *first_broken);
/* After a successful walk audit_verify() also compares the chain with every
 * row of audit_checkpoints: a checkpoint whose head event is gone (the tail
 * was truncated) or whose hash differs is reported as AUDIT_ERR_BROKEN too.
 * Reasons in db->errstr: "altered", "missing", "reordered", "unknown
 * encoding version" (docs/AUDIT.md lists each). */

/* ---- several events in one transaction ---------------------------------- */

/* An extra event written in the same transaction as a transition (e.g. a
 * promotion's "deploy.promoted" beside its "deploy.succeeded"). It copies
 * the request's columns like the transition's own event. Strings borrowed. */
typedef struct audit_note {
    const char *action;   /* required */
    const char *actor;    /* NULL = the transition's actor */
    const char *person;
    const char *outcome;
    const char *detail;
} audit_note;
#define AUDIT_NOTES_MAX 16

/* audit_request_transition() followed by n notes (n <= AUDIT_NOTES_MAX), all
 * in one transaction: either every event is in the chain, consecutively, or
 * none is. */
int audit_request_transition_notes(audit_db *db, int64_t id, const audit_transition *t, const audit_note *notes,
                                   size_t n);

/* ---- group commit --------------------------------------------------------- */

/* An appender lets the threads of one process that append to the chain at
 * the same moment share one transaction: one chain lock acquisition, one
 * COMMIT (docs/AUDIT.md, "Group commit"). Every write that appends events
 * (audit_request_create, audit_request_transition[_notes],
 * audit_message_record and the governance writes) goes through it when its
 * audit_db has one attached. The caller's guarantees do not change: its row
 * change and its events commit together or not at all, it gets exactly its
 * own result (ids, existed / counted flags, error and errstr), and another
 * caller's failure in the same batch (a unique violation, a state guard)
 * does not touch it. What does change: when the connection that ran the
 * batch (another thread's) is lost, every write of that batch fails with
 * AUDIT_ERR_CONNECT — nothing of the batch is written unless the loss came
 * after the COMMIT was sent, exactly as for a write of its own today.
 *
 * One appender per process, shared by the audit_db handles of its threads
 * (each handle still used by one thread at a time). No audit_db attached =
 * today's path, unchanged. */
#define AUDIT_APPENDER_BATCH_MAX 64     /* writes per transaction (PostgreSQL caches 64 subtransactions) */
#define AUDIT_APPENDER_BATCH_DEFAULT 64
#define AUDIT_APPENDER_LEADERS_MAX 16
#define AUDIT_APPENDER_LEADERS_DEFAULT 1

/* max_batch: writes per transaction, 1..AUDIT_APPENDER_BATCH_MAX; max_leaders:
 * batches in flight at once, each on its leader's connection,
 * 1..AUDIT_APPENDER_LEADERS_MAX (while one holds the chain lock the next
 * runs its row changes); 0 = the default for either. NULL on a bad argument
 * or out of memory. Free with audit_appender_free(). */
audit_appender *audit_appender_new(int max_batch, int max_leaders);
/* No thread may be writing through it (join them first); the audit_db
 * handles it was attached to keep a dangling pointer: close or detach them. */
void audit_appender_free(audit_appender *a);
/* Attaches a (borrowed, must outlive the attachment) to db; NULL detaches. */
void audit_db_set_appender(audit_db *db, audit_appender *a);

typedef struct audit_appender_stats {
    uint64_t writes;      /* writes that went through the appender */
    uint64_t batches;     /* transactions its leaders ran (batches of one included) */
    uint64_t alone;       /* writes handed back to run on the caller's own connection */
    int largest;          /* largest batch so far */
    int pending;          /* queued now, not yet taken by a leader */
    int leaders;          /* batches running now */
    uint64_t multi;       /* batches whose row changes ran as one statement (docs/AUDIT.md) */
    uint64_t multi_fallback; /* of those tried so, batches that fell back to one statement per write */
    uint64_t gathers;     /* times a would-be leader waited for as many writes as the last batch had */
    uint64_t gather_timeouts; /* of those, waits that ended at the time limit (300 us), short of them */
} audit_appender_stats;
void audit_appender_stats_get(audit_appender *a, audit_appender_stats *out);

/* ---- message references ------------------------------------------------- */

/* Records that a chat message belongs to request_id: direction "in" (a
 * command or a click nomatron received) or "out" (a message it posted).
 * msg->platform and msg->message_ref are required; team, channel, thread and
 * permalink are kept when given (route is ignored). Writes a row of the
 * append-only audit_messages and a "message.in"/"message.out" event in the
 * chain, in one transaction. actor NULL = "nomatron". */
int audit_message_record(audit_db *db, int64_t request_id, const audit_origin *msg, const char *direction,
                         const char *actor);

/* ---- lookups -------------------------------------------------------------- */

#define AUDIT_REF_MAX 2048

/* Resolves what a person pastes into `audit REF` to a request id: "D-12" or
 * "12"; a permalink (Slack .../archives/C…/p1700000000123456, Mattermost
 * .../pl/<post id>, or any permalink recorded); a Slack message ts
 * ("1700000000.123456"); a Mattermost post id. Messages recorded with
 * audit_message_record() and the messages requests came from both count.
 * AUDIT_ERR_NOT_FOUND with errstr "no record of …" when nothing matches. */
int audit_lookup(audit_db *db, const char *ref, int64_t *request_id);

/* One event as read back: ev's strings, hash and at are borrowed and valid
 * only during the callback. at is RFC 3339 UTC with microseconds. */
typedef struct audit_row {
    audit_event ev;
    const char *hash;
    const char *at;
} audit_row;

/* Return 0 to continue, anything else to stop early (the walk then returns
 * AUDIT_OK). The callback must not use the same audit_db: rows are streamed
 * from it one at a time (constant memory). */
typedef int (*audit_row_cb)(const audit_row *row, void *arg);

typedef struct audit_filter {
    int64_t request_id;   /* 0 = any */
    const char *job;      /* NULL = any */
    const char *env;
    const char *actor;    /* identity, e.g. "slack:U01BBBB" */
    const char *since;    /* at >= since; a date or RFC 3339 time; NULL = open */
    const char *until;    /* at < until; NULL = open */
    int64_t from_id;      /* id >= from_id; 0 = the start */
    int64_t limit;        /* at most this many events; 0 = no limit */
} audit_filter;

/* Streams the events matching f in chain order. A malformed since/until is
 * AUDIT_ERR_INVALID. */
int audit_events_each(audit_db *db, const audit_filter *f, audit_row_cb cb, void *arg);

/* Every event of one request, in order; AUDIT_ERR_NOT_FOUND if the request
 * does not exist (a request always has at least its request.created). */
int audit_trail(audit_db *db, int64_t request_id, audit_row_cb cb, void *arg);

/* out is borrowed and valid only during the callback; return 0 to continue. */
typedef int (*audit_request_cb)(const audit_request *r, void *arg);
#define AUDIT_HISTORY_MAX 100

/* The newest requests for a job (env NULL = every environment), newest first,
 * at most limit (1..AUDIT_HISTORY_MAX). */
int audit_history(audit_db *db, const char *job, const char *env, int limit, audit_request_cb cb, void *arg);

/* ---- checkpoints ---------------------------------------------------------- */

typedef struct audit_checkpoint_info {
    int64_t id;                         /* row of audit_checkpoints */
    int64_t head_id;                    /* last event covered; 0 = empty chain */
    int64_t events;                     /* events in the chain up to head_id */
    char head_hash[AUDIT_HASH_LEN + 1]; /* its hash (genesis value when empty) */
    char at[40];                        /* RFC 3339 UTC */
} audit_checkpoint_info;

/* Records the chain's head (id, hash, event count) in audit_checkpoints and
 * returns it, for the caller to publish outside the database (chat, log).
 * AUDIT_ERR_BROKEN if the event count disagrees with the head id (events
 * were deleted) or an earlier checkpoint's head is gone or differs: a
 * checkpoint never vouches for a damaged chain. It does not re-verify every
 * hash (that is audit_verify's job, O(n)); it is O(n) only in counting. */
int audit_checkpoint(audit_db *db, audit_checkpoint_info *out);
/* The newest checkpoint; AUDIT_ERR_NOT_FOUND if there is none. */
int audit_checkpoint_latest(audit_db *db, audit_checkpoint_info *out);

/* ---- export --------------------------------------------------------------- */

enum audit_export_format { AUDIT_EXPORT_JSONL = 0, AUDIT_EXPORT_CSV = 1 };

/* Writes the events matching f (since/until/limit; the other filters too)
 * to out, streaming (constant memory). JSONL carries every column, the
 * hashes, a "begin" line with the newest checkpoint and an "end" line, so
 * `audit verify --file` can check it offline; CSV is for spreadsheets: a
 * header, RFC 4180 quoting, CRLF, and cells beginning with = + - @ (or tab,
 * CR) prefixed with a single quote. *count (may be NULL) gets the number of
 * events written. A write error is AUDIT_ERR_IO with errstr saying so; JSONL takes
 * only since/until/from_id/limit (a filtered chain could not be verified). */
int audit_export(audit_db *db, const audit_filter *f, int format, FILE *out, int64_t *count);

/* ---- roles ------------------------------------------------------------- */

/* Run as the schema owner (postgres_migrate): grants `role` what nomatron
 * serve/worker needs and nothing more — SELECT and INSERT on the audit
 * tables, SELECT/INSERT/UPDATE on requests, the sequences, SELECT on
 * schema_migrations. With create, a missing role is created (LOGIN, no
 * password: authentication is pg_hba's business). Idempotent; run it after
 * every migrate so new tables get their grants. role: [a-z_][a-z0-9_]{0,62}. */
int audit_grant_app_role(audit_db *db, const char *role, bool create);
/* The user a conninfo string or URI names (out, size n), "" if none.
 * AUDIT_ERR_INVALID if it is malformed. Pure. */
int audit_dsn_user(const char *dsn, char *out, size_t n);

/* ---- governance ------------------------------------------------------------ */

/* The storage behind commands/governance.h (issue 7; docs/AUDIT.md,
 * "Governance"). The decisions stay pure: callers read the facts here, decide,
 * and write the outcome with one of these calls (one transaction each, its
 * events in the chain). Times are Unix seconds from PostgreSQL's clock.
 *
 * Ceilings of what governance reads back; they equal GOV_MAX_IDENTITY,
 * CONFIG_MAX_NAME, CMD_MAX_REASON and GOV_MAX_IMAGE, so the buffers below can
 * be copied into gov_request / gov_lock field for field. */
#define AUDIT_IDENTITY_MAX 128
#define AUDIT_NAME_MAX 64
#define AUDIT_REASON_MAX 512
#define AUDIT_BOUND_IMAGE_MAX 512
#define AUDIT_PLAN_HASH_MAX 128
#define AUDIT_APPROVALS_MAX 1000   /* required_approvals ceiling (sanity, not policy) */

/* Everything gov_request needs from a request row, read in one statement.
 * Texts are "" when NULL. */
typedef struct audit_facts {
    int64_t id;
    char kind[AUDIT_STATE_LEN];                    /* "deploy", "promote", "rollback" */
    char state[AUDIT_STATE_LEN];
    char phase[AUDIT_STATE_LEN];                   /* "" = none */
    char reason[AUDIT_STATE_LEN];                  /* "" = none */
    char env[AUDIT_NAME_MAX + 1];
    char job[AUDIT_NAME_MAX + 1];
    char actor[AUDIT_IDENTITY_MAX + 1];            /* the requester's identity */
    char person[AUDIT_NAME_MAX + 1];               /* "" = not under people: */
    char emergency[AUDIT_REASON_MAX + 1];          /* "" = none */
    char bound_image[AUDIT_BOUND_IMAGE_MAX + 1];   /* promote: bound at request time; "" = none */
    char from_env[AUDIT_NAME_MAX + 1];             /* promote: the source; "" = none */
    int required;                                  /* approvals needed */
    uint64_t policy_hash;                          /* 0 = none recorded */
    int64_t created_at;                            /* Unix seconds */
    int64_t plan_modify_index;                     /* JobModifyIndex of the recorded plan; -1 = none */
    char plan_hash[AUDIT_PLAN_HASH_MAX + 1];       /* "" = none */
} audit_facts;

/* Reads request `id`. AUDIT_ERR_NOT_FOUND if there is none; AUDIT_ERR_INVALID
 * if a column does not fit its buffer (never silently truncated: decisions
 * compare these texts). */
int audit_request_facts(audit_db *db, int64_t id, audit_facts *out);

/* Records `identity`'s approval of request_id (person: its people: name, NULL
 * or "" = none; the person counts once: under person, else under identity)
 * with its "approval.given" event, and, when t != NULL, applies t (e.g.
 * pending_approval -> approved, action "request.approved") in the same
 * transaction. Only a request in pending_approval takes approvals.
 *   - AUDIT_OK, *counted = true: both written.
 *   - AUDIT_OK, *counted = false: that person already counted in this round
 *     (the unique index decides, also under races across platforms);
 *     nothing written.
 *   - AUDIT_ERR_STATE: not pending_approval, or t->from_state did not match;
 *     nothing written. AUDIT_ERR_NOT_FOUND: no such request.
 * The decision that led here was made on facts read before: after a counted
 * approval without t, re-read (facts + approvals) and decide again whether
 * the request is complete — racing approvers may each have seen one too few;
 * audit_request_transition's state guard lets exactly one move it. */
int audit_approval_add(audit_db *db, int64_t request_id, const char *identity, const char *person, bool *counted,
                       const audit_transition *t);

/* The counted approvals of the current round (see audit_request_rebind), in
 * order. person is "" when none; strings are valid during the call only.
 * Return 0 to go on. The callback must not use db. A missing request has
 * no approvals (AUDIT_OK, no calls). */
typedef int (*audit_approval_cb)(const char *identity, const char *person, int64_t at_unix, void *arg);
int audit_approvals_each(audit_db *db, int64_t request_id, audit_approval_cb cb, void *arg);

/* A config reload re-decided the request (gov_reload, GOV_F_REBOUND): stores
 * `required` and `policy_hash`; with void_approvals (GOV_F_VOIDED) opens a new
 * approval round — earlier approvals stay in request_approvals and the chain
 * but no longer count, and the same people may approve again. Writes a
 * "policy.rebound" event (actor, detail) and, when t != NULL, applies t in
 * the same transaction (e.g. pending_approval -> approved when nothing is
 * needed any more). AUDIT_ERR_STATE if t->from_state does not match;
 * AUDIT_ERR_EXISTS if required > 0 would make a second open request of its
 * (env, job) exclusive. */
int audit_request_rebind(audit_db *db, int64_t id, int required, uint64_t policy_hash, bool void_approvals,
                         const char *actor, const char *detail, const audit_transition *t);

/* The manual freeze of `env` (`lock ENV reason`): the newest env_locks row.
 * None yet: *locked = false, by = reason = "", *since = 0. by and reason may
 * be NULL; else they hold AUDIT_IDENTITY_MAX + 1 and AUDIT_REASON_MAX + 1
 * bytes (gov_lock.by / gov_lock.reason). since: Unix seconds of that row. */
int audit_lock_get(audit_db *db, const char *env, bool *locked, char *by, char *reason, int64_t *since_unix);

/* Locks (locked = true) or unlocks env: appends an env_locks row and an
 * "env.locked" / "env.unlocked" event (request_id NULL, env set, outcome
 * "locked"/"unlocked", detail = reason) in one transaction. AUDIT_ERR_STATE,
 * nothing written, if env is already in that state or another lock/unlock
 * of env committed meanwhile (re-read and decide again). */
int audit_lock_set(audit_db *db, const char *env, bool locked, const char *by_identity, const char *person,
                   const char *reason);

/* A refused command (SPEC: every refusal is an audit event): a
 * "request.refused" event with request_id NULL, outcome = tag
 * (gov_tag_name()), detail = message, env/job (may be NULL) and where it came
 * from (o may be NULL). Counted by audit_recent_commands(). */
int audit_refusal(audit_db *db, const audit_origin *o, const char *actor, const char *person, const char *env,
                  const char *job, const char *tag, const char *message);

/* Open requests (pending_approval, approved, queued, running) of a person:
 * person_key is the person's name or, for an identity not under people:, the
 * identity (gov_person_key()). */
int audit_open_count(audit_db *db, const char *person_key, int *n);

/* Commands of a person in the last window_seconds (> 0) by PostgreSQL's
 * clock: its "request.created" and "request.refused" events. */
int audit_recent_commands(audit_db *db, const char *person_key, int64_t window_seconds, int *n);

/* PostgreSQL's clock (now()), Unix seconds: the `now` of every decision. */
int audit_now(audit_db *db, int64_t *unix_seconds);

/* Requests an expiry timer must look at: pending_approval, and approved /
 * queued ones that need approvals (required > 0). The caller builds the
 * gov_request (audit_request_facts) and asks gov_expire, then moves expired
 * ones with audit_request_transition (its state guard settles races).
 * Strings valid during the call only; the callback must not use db; return
 * 0 to go on. Oldest first. */
typedef int (*audit_waiting_cb)(int64_t id, const char *env, const char *state, int required, int64_t created_at,
                                void *arg);
int audit_pending_expired(audit_db *db, audit_waiting_cb cb, void *arg);

/* The worker made a Nomad plan for request id at JobModifyIndex
 * job_modify_index (>= 0) with plan_hash (1..AUDIT_PLAN_HASH_MAX bytes):
 * stores both on the request and writes a "plan.made" event (actor
 * "nomatron", outcome = plan_hash, detail = "job_modify_index=N" and the
 * caller's detail). AUDIT_ERR_NOT_FOUND if there is no such request. */
int audit_plan_record(audit_db *db, int64_t id, int64_t job_modify_index, const char *plan_hash, const char *detail);

#endif
