/* nomad/nomad_async.h: many Nomad requests in flight on one thread.
 *
 * A nomad_loop owns one curl multi handle; every transfer started on it
 * shares the multi's connection cache (and DNS cache), so a watcher that
 * keeps one blocking query per deployment reuses its connections instead
 * of opening one per query. Easy handles are pooled and reused too.
 *
 * Threads: a loop and everything started on it belong to one thread; only
 * nomad_loop_wakeup() may be called from another. A client used with
 * nomad_async() must outlive its transfers (they borrow its header list and
 * settings) and must not be used by a sync call on another thread at the
 * same time as it is read here (the loop only reads it). */
#ifndef NM_NOMAD_ASYNC_H
#define NM_NOMAD_ASYNC_H

#include <stddef.h>
#include <stdint.h>

#include "nomad.h"

/* Idle connections a loop keeps (CURLMOPT_MAXCONNECTS): enough for one
 * blocking query per watched deployment. curl's default (4 x handles in the
 * multi) would close connections as the number of transfers dips. */
#define NOMAD_LOOP_MAXCONNECTS 512
#define NOMAD_LOOP_POOL 64   /* idle easy handles kept for reuse */

typedef struct nomad_loop nomad_loop;      /* one per thread: a curl multi handle and its transfers */
nomad_loop *nomad_loop_new(void);          /* NULL when out of memory */
void nomad_loop_free(nomad_loop *l);       /* cancels transfers in flight without calling their callbacks */
/* Thread-safe: makes a nomad_loop_run in progress return early (or the
 * next one, if none is running). Never call it on a freed loop. */
void nomad_loop_wakeup(nomad_loop *l);

typedef struct nomad_response {
    int code;              /* enum nomad_code (same mapping as the sync calls: 404, 403, conflict, ...) */
    long http_status;
    uint64_t index;        /* X-Nomad-Index, 0 if absent */
    const char *body;      /* borrowed until the callback returns; NUL-terminated */
    size_t body_len;
    const char *errstr;    /* like nomad_client_errstr(): "HTTP 500: ..." or curl's text; never the token */
} nomad_response;
typedef void (*nomad_done_fn)(void *ud, const nomad_response *r);

/* Starts a request through client c's settings (address, namespace, region,
 * token, TLS, timeouts) on loop l. path is like "/v1/deployment/<id>" (IDs
 * escaped: see nomad_path()); it may carry its own "?k=v"; namespace/region
 * query params are added as the sync calls do; index > 0 makes it a
 * blocking query with wait_ms (the transfer timeout grows by wait +
 * wait/16). method is GET, POST, PUT or DELETE; body (may be NULL) is
 * copied. Returns an id > 0, or 0 if it could not start (then cb is never
 * called; the reason is logged). cb runs inside nomad_loop_run, on the
 * loop's thread; it may start and cancel transfers, but must not free the
 * loop. Nothing is retried here: callers decide (nomad_backoff_ms()). */
uint64_t nomad_async(nomad_loop *l, nomad_client *c, const char *method, const char *path, uint64_t index,
                     int wait_ms, const char *body, nomad_done_fn cb, void *ud);
void nomad_async_cancel(nomad_loop *l, uint64_t id);   /* cb is not called; unknown ids are ignored */
size_t nomad_loop_pending(const nomad_loop *l);
/* Drives transfers up to timeout_ms (returns early on completions or
 * wakeup); runs callbacks. Returns the number of callbacks run, or -1 on a
 * multi error. timeout_ms 0 only does what is ready now. */
int nomad_loop_run(nomad_loop *l, int timeout_ms);

/* Connections the loop opened so far (curl's CURLINFO_NUM_CONNECTS summed
 * over finished transfers): a measure of connection reuse. */
uint64_t nomad_loop_connects(const nomad_loop *l);

#endif
