/* Questions the queue asks PostgreSQL, the source of truth: which request of
 * a job runs next, and which requests Redis may have lost. */
#ifndef NM_AUDIT_SCHED_H
#define NM_AUDIT_SCHED_H

#include <stdint.h>

#include "audit.h"

/* The oldest request of (env, job) that is queued or running: the one that
 * may hold the job now. *id = 0 when there is none. */
int audit_sched_head(audit_db *db, const char *env, const char *job, int64_t *id);

/* Requests in `state` ("queued" or "running") not changed for at least
 * idle_ms, oldest first, at most `limit`. fn is called for each. */
typedef void (*audit_sched_fn)(void *ud, int64_t id, const char *env, const char *job);
int audit_sched_idle(audit_db *db, const char *state, int64_t idle_ms, int limit, audit_sched_fn fn, void *ud);

#endif
