/* worker/: executes work from the work stream against Nomad, records every
 * state change through audit/, and reports progress on the event stream.
 * Holds Nomad tokens, never a chat token.
 *
 * Each worker thread owns one Redis connection, one PostgreSQL connection and
 * one Nomad client per environment it has touched. The thread may block (it
 * is not the bot's event loop). */
#ifndef NM_WORKER_H
#define NM_WORKER_H

#include <stddef.h>

#include "audit.h"
#include "config.h"

typedef struct worker_pool worker_pool;

/* Starts n threads (n >= 1). `config` is borrowed and must outlive the pool;
 * each work item runs with the snapshot current when the worker took it.
 * appender (borrowed, must outlive the pool; NULL = each chained write
 * alone) is the process's group commit, attached to every thread's
 * connection (docs/AUDIT.md, "Group commit").
 * Returns NULL with err set if a thread could not be started. */
worker_pool *worker_pool_start(config_holder *holder, int n, audit_appender *appender, char *err, size_t errlen);

/* Asks every thread to stop at its next step boundary and joins them. Work in
 * flight is not acknowledged, so the queue hands it to another worker.
 * Frees the pool. */
void worker_pool_stop(worker_pool *pool);

#endif
