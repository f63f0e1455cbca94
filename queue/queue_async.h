/* The bot's side of the queue: hiredis async connections on the bot's libuv
 * loop. Never blocks the loop: the Redis host is resolved with
 * uv_getaddrinfo, connects are non-blocking, and a broken connection is
 * re-established on a timer with backoff (1 s doubling to 10 s).
 *
 * Two connections: one for commands (XADD, SET) and one that follows an
 * event stream with XREAD BLOCK, so a blocked read never delays a command;
 * a third when the bots' shared event stream is consumed.
 *
 * Callbacks run on the loop thread. Each accepted call gets exactly one
 * completion callback; a call refused up front (Redis down) gets none and
 * returns the error. */
#ifndef NM_QUEUE_ASYNC_H
#define NM_QUEUE_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct queue_async queue_async;

/* code is a queue_code; id is the stream entry ID or task ID (borrowed, valid during the call). */
typedef void (*queue_async_done_cb)(void *ud, int code, const char *id);
/* One event from the followed stream: a JSON text, borrowed for the call. */
typedef void (*queue_async_event_cb)(void *ud, const char *json, size_t len);
/* The command connection went up (true) or down (false). */
typedef void (*queue_async_state_cb)(void *ud, bool up);

/* Starts connecting; returns NULL on a malformed URL (err set) or no memory.
 * The URL is copied. */
queue_async *queue_async_new(uv_loop_t *loop, const char *url, queue_async_state_cb state_cb, void *ud,
                             char *err, size_t errlen);
bool queue_async_up(const queue_async *qa);

/* XADD {kind, id} to the work stream. */
int queue_async_work_add(queue_async *qa, const char *kind, const char *id, queue_async_done_cb cb, void *ud);

/* Stores task_json under nomatron:task:<task_id> (TTL QUEUE_TASK_TTL_S) and
 * puts the task ID on the work stream, in that order on one connection. */
int queue_async_task_add(queue_async *qa, const char *task_id, const char *task_json, queue_async_done_cb cb,
                         void *ud);

/* Idempotency (SPEC §6), the fast path: the request ID an inbound key
 * already created, if Redis remembers it (cb's id; "" when unknown — then
 * PostgreSQL's unique key decides, so a Redis that forgot is only slower). */
int queue_async_idem_get(queue_async *qa, const char *key, queue_async_done_cb cb, void *ud);
/* Remembers key -> request ID for QUEUE_IDEM_TTL_S. No completion callback. */
int queue_async_idem_put(queue_async *qa, const char *key, const char *request_id);

/* Follows the event stream of `route` from now on, calling cb for each
 * event in order, across reconnects (resuming after the last entry seen). */
int queue_async_follow(queue_async *qa, const char *route, queue_async_event_cb cb, void *ud);

/* The Nomad health hash (QUEUE_HEALTH_NOMAD): cb gets n field/value pairs,
 * borrowed for the call (n = 0 when the hash is gone). */
typedef void (*queue_async_hash_cb)(void *ud, int code, const char *const *fields, const char *const *values,
                                    size_t n);
int queue_async_health_get(queue_async *qa, queue_async_hash_cb cb, void *ud);

/* Consumes the shared event stream (QUEUE_EVENTS_STREAM) in the bots'
 * consumer group as `consumer` (copied; keep it stable across restarts so
 * entries read but not acknowledged are read again), on a third connection.
 * Each entry is acknowledged after cb returns. One consumer per qa. */
int queue_async_consume(queue_async *qa, const char *consumer, queue_async_event_cb cb, void *ud);

/* Closes the connections; pending completions are called with
 * QUEUE_ERR_CONNECT. Frees qa once the loop has closed its handles. */
void queue_async_close(queue_async *qa);

#endif
