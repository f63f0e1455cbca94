/* See sched.h. Read-only queries; the indexes of migration 1 serve them
 * (requests_env_job_idx, requests_state_idx). */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>

#include "audit_int.h"

int audit_sched_head(audit_db *db, const char *env, const char *job, int64_t *id) {
    const char *params[] = {env, job};
    PGresult *r = NULL;
    *id = 0;
    int rc = audit__exec(db, "finding the job's next request",
                         "SELECT id FROM requests WHERE env = $1 AND job = $2 AND state IN ('queued', 'running') "
                         "ORDER BY id LIMIT 1",
                         2, params, &r);
    if (rc != AUDIT_OK) return rc;
    if (PQntuples(r) == 1) *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return AUDIT_OK;
}

int audit_sched_idle(audit_db *db, const char *state, int64_t idle_ms, int limit, audit_sched_fn fn, void *ud) {
    char idle[24], lim[16];
    snprintf(idle, sizeof(idle), "%lld", (long long)idle_ms);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {state, idle, lim};
    PGresult *r = NULL;
    int rc = audit__exec(db, "finding idle requests",
                         "SELECT id, env, job FROM requests WHERE state = $1 "
                         "AND updated_at < now() - make_interval(secs => $2::bigint / 1000.0) ORDER BY id LIMIT $3",
                         3, params, &r);
    if (rc != AUDIT_OK) return rc;
    for (int i = 0; i < PQntuples(r); i++)
        fn(ud, strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    PQclear(r);
    return AUDIT_OK;
}
