/* Internal to audit/: helpers shared by db.c, migrate.c, requests.c and
 * verify.c. Not part of the interface (audit.h); names carry audit__. */
#ifndef NM_AUDIT_INT_H
#define NM_AUDIT_INT_H

#include <libpq-fe.h>

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

/* The connection, or NULL with AUDIT_ERR_CONNECT in *rc when there is none usable. */
PGconn *audit__conn(audit_db *db, int *rc);

/* BEGIN / COMMIT; ROLLBACK ignores errors (it runs on the way out of a failure). */
int audit__begin(audit_db *db);
int audit__commit(audit_db *db);
void audit__rollback(audit_db *db);

/* Number of migrations this build knows (the schema version it expects). */
int audit__schema_version(void);

#endif
