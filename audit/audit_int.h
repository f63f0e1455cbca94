/* Internal to audit/: helpers shared by db.c, migrate.c, requests.c and
 * verify.c. Not part of the interface (audit.h); names carry audit__. */
#ifndef NM_AUDIT_INT_H
#define NM_AUDIT_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "audit.h"

/* Advisory lock keys (pg_advisory_xact_lock(bigint)); documented in docs/AUDIT.md. */
#define AUDIT_LOCK_MIGRATE "7165915744170344001"
#define AUDIT_LOCK_CHAIN "7165915744170344002"

/* Sets db->errstr from a printf format and clears sqlstate. Returns code. */
int audit__fail(audit_db *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Runs one parameterized statement (text parameters, text results). On
 * success returns AUDIT_OK and *res (caller PQclear()s it; may be NULL when the
 * caller does not need rows). On failure sets errstr/sqlstate, clears the
 * result and returns AUDIT_ERR_CONNECT if the connection is gone,
 * AUDIT_ERR_SQL otherwise. `what` names the step in the error text. */
int audit__exec(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                PGresult **res);

/* Sets errstr/sqlstate from a failed result (r may be NULL: the
 * connection's message) and maps it to AUDIT_ERR_CONNECT / _SQL / _NOMEM. */
int audit__result_error(audit_db *db, const char *what, PGresult *r);

/* audit__exec with a choice of result format (0 text, 1 binary). */
int audit__exec_fmt(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                    PGresult **res, int result_format);

/* One statement of a pipeline. */
typedef struct audit__stmt {
    const char *what;              /* names the step in error text */
    const char *sql;
    int nparams;
    const char *const *params;
} audit__stmt;

/* Sends n statements in one round trip (libpq pipeline mode, one sync) and
 * collects their results in res[0..n-1] (the caller PQclear()s each; NULL
 * for statements that failed or did not run). Returns AUDIT_OK if every one
 * succeeded, else the first failure's code with errstr/sqlstate set. Inside
 * an explicit transaction the sync does not commit. */
int audit__pipeline(audit_db *db, const audit__stmt *st, int n, PGresult **res);

/* Streams the rows of one query to fn, one PGresult of one row at a time
 * (libpq single-row mode: constant memory however many rows). fn returns 0
 * to go on; anything else cancels the query and audit__stream returns
 * AUDIT_OK. fn must not use db. */
typedef int (*audit__row_fn)(PGresult *row, void *arg);
int audit__stream(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                  audit__row_fn fn, void *arg);

/* The columns of audit_events in the order audit__row_read() expects. */
#define AUDIT__EVENT_COLS                                                                                     \
    "id, request_id, (extract(epoch FROM at) * 1000000)::bigint, action, actor, person, outcome, from_state,"  \
    " to_state, phase, reason, env, job, from_image, to_image, nomad_job_version, eval_id, deployment_id,"    \
    " detail, platform, team, channel, message_ref, thread, permalink, enc_version, prev_hash, hash,"         \
    " to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* Fills out from row `row` of r (strings borrowed from r). */
void audit__row_read(PGresult *r, int row, audit_row *out);

/* A since/until argument as PostgreSQL should read it: a bare date becomes
 * midnight UTC. NULL stays NULL. dst must hold 64 bytes. */
const char *audit__time_param(const char *t, char dst[64]);

/* Compares the chain with every recorded checkpoint (verify.c): AUDIT_OK,
 * or AUDIT_ERR_BROKEN with *first_broken and errstr saying how. */
int audit__check_checkpoints(audit_db *db, int64_t *first_broken);

/* The connection, or NULL with AUDIT_ERR_CONNECT in *rc when there is none usable. */
PGconn *audit__conn(audit_db *db, int *rc);

/* BEGIN / COMMIT; ROLLBACK ignores errors (it runs on the way out of a failure). */
int audit__begin(audit_db *db);
int audit__commit(audit_db *db);
void audit__rollback(audit_db *db);

/* Number of migrations this build knows (the schema version it expects). */
int audit__schema_version(void);

/* audit_migrate() stopping at version `target` (<= audit__schema_version()):
 * for tests that need a database as an older build left it. */
int audit__migrate_to(audit_db *db, int target, int *applied);

/* ---- appending events (requests.c), shared with governance_db.c ---- */

/* The request columns an event copies, in the order audit__event_from_request() reads them. */
#define AUDIT__REQ_EVENT_COLS                                                                                  \
    "id, env, job, from_image, to_image, nomad_job_version, eval_id, deployment_id, phase, reason, platform, " \
    "team, channel, message_ref, thread, permalink"

/* Fills an event's request columns from row `row` of r (AUDIT__REQ_EVENT_COLS first); strings borrowed from r.
 * The row is 0 but for a batch's multi-row statement, whose rows are its writes'. */
typedef void (*audit__fill_fn)(audit_event *e, PGresult *r, int row);
void audit__event_from_request(audit_event *e, PGresult *r, int row);

/* Runs `main` (a statement returning one row that `fill` reads) and appends
 * evs[0..n-1] (n <= 1 + AUDIT_NOTES_MAX) to the chain, all in one
 * transaction (docs/AUDIT.md, "Appending an event"). main returning no row:
 * nothing is written, *no_row is set, AUDIT_OK. */
int audit__write_with_events(audit_db *db, const audit__stmt *main, audit__fill_fn fill, audit_event *evs, int n,
                             bool *no_row);

/* ---- group commit (appender.c, the batch itself in requests.c) ---- */

/* How the mains of one kind run together in a batch as ONE statement
 * instead of one statement (and one savepoint) each. Its parameter k is a
 * text[] holding every write's parameter k, NULL for NULL; it returns one
 * row for each write whose main returned its row: the main's columns, then
 * the write's 1-based position in the arrays (bigint), in that order. Any
 * error sends the batch back to the one-statement-per-write path. */
typedef struct audit__multi {
    const char *sql;
    int nparams;                /* the main's */
} audit__multi;

/* One caller's chained write, queued on an appender and run by whichever
 * thread leads the batch it lands in. The inputs are borrowed from the
 * caller, who waits (on the appender's condition variable) until done; the
 * leader writes the outputs, and the caller reads them after seeing done
 * under the appender's mutex. */
typedef struct audit__op {
    const audit__stmt *main;    /* as audit__write_with_events() */
    const audit__multi *multi;  /* NULL, or how it joins writes of its kind */
    audit__fill_fn fill;
    audit_event *evs;
    int n;
    bool can_lead;              /* the caller's connection looked usable when it queued */
    /* written by the leader */
    int rc;
    bool no_row;
    bool alone;                 /* not run: the caller runs it by itself on its own connection */
    char errstr[256];
    char sqlstate[6];
    /* the appender's */
    bool queued;                /* in the queue, not yet taken by a leader */
    bool done;
    pthread_cond_t cv;          /* its caller waits here: woken when done, or to lead */
    struct audit__op *next;
} audit__op;

/* Queues op on a and returns when it is done (outputs set) or handed back
 * (op->alone). db is the caller's handle: its connection runs the batch if
 * this thread leads. */
void audit__appender_run(audit_appender *a, audit_db *db, audit__op *op);

/* Runs ops[0..m-1] (1 <= m <= AUDIT_APPENDER_BATCH_MAX; ops[0] is db's own)
 * in one transaction on db's connection and sets each op's outputs
 * (requests.c; docs/AUDIT.md, "Group commit"). Returns how the mains ran. */
enum { AUDIT__BATCH_EACH, AUDIT__BATCH_MULTI, AUDIT__BATCH_FELL_BACK };
int audit__batch_run(audit_db *db, audit__op **ops, int m);

/* True if the last failure was a unique violation of the named index/constraint. */
bool audit__unique_violation(const audit_db *db, const char *constraint);

#endif
