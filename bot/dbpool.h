/* A small pool of PostgreSQL connections for the bot's blocking work. The
 * bot's loop never calls PostgreSQL itself: it hands the work to libuv's
 * thread pool (uv_queue_work), whose threads take a connection from here. */
#ifndef NM_DBPOOL_H
#define NM_DBPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"

typedef struct dbpool dbpool;

/* dsn is copied. At most max connections exist at once. appender (borrowed,
 * NULL = each chained write alone) is attached to every connection: the
 * process's one appender, shared with its worker pool, so that all its
 * threads' chained writes batch together (docs/AUDIT.md, "Group commit").
 * It must outlive the pool. */
dbpool *dbpool_new(const char *dsn, int max, audit_appender *appender);
/* Blocks (worker thread only) until a connection is free; connects lazily.
 * NULL with err set when PostgreSQL cannot be reached. */
audit_db *dbpool_get(dbpool *p, char *err, size_t errlen);
/* Returns the connection; `broken` drops it so the next get reconnects. */
void dbpool_put(dbpool *p, audit_db *db, bool broken);
void dbpool_free(dbpool *p);

#endif
