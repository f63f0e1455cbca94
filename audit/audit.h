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
};
const char *audit_strerror(int code);

typedef struct audit_db {
    void *conn;           /* PGconn *, owned */
    char errstr[256];     /* last error text (never contains the DSN's password) */
    char sqlstate[6];     /* last SQLSTATE, "" if none */
} audit_db;

/* Connects with a libpq conninfo string or URI. On failure returns
 * AUDIT_ERR_CONNECT with db->errstr set; audit_close() is still safe. */
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
} audit_new_request;

/* Inserts the request and its "request.created" audit event in one
 * transaction. If idem_key was seen before, nothing is created: *id_out
 * gets the existing request and *existed is set. */
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
 * canon.h. */

/* Walks the chain from event `from_id` (0 = the start) and recomputes every
 * hash. AUDIT_OK if intact; AUDIT_ERR_BROKEN with *first_broken set and a
 * reason in db->errstr otherwise. */
int audit_verify(audit_db *db, int64_t from_id, int64_t *first_broken);

#endif
