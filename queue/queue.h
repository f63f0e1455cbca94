/* queue/: Redis Streams carrying work to workers and events back to bots.
 *
 *   nomatron:work                 work stream; consumer group "workers".
 *                                 Entries carry only {kind, id}: kind "request"
 *                                 (id = request number; PostgreSQL holds the rest)
 *                                 or "task" (id = task ID; the task itself is a JSON
 *                                 string at nomatron:task:<id>, with a TTL).
 *   nomatron:events               events for chat bots; consumer group "bots",
 *                                 so each event is applied once by any replica.
 *   nomatron:events:shell:<sess>  events for one shell session; read only by that
 *                                 shell (its console lives in one process), and
 *   nomatron:events:bot:<sess>    answers to one bot process's tasks. Capped
 *                                 and given a TTL, so a shell that has gone leaves
 *                                 nothing piling up.
 *
 * Events are JSON objects (see docs/DESIGN.md, "Events"). The synchronous
 * connection (queue_conn) is for worker threads; bots use queue_async (a
 * hiredis async connection on the bot's libuv loop, see queue_async.h). */
#ifndef NM_QUEUE_H
#define NM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define QUEUE_WORK_STREAM "nomatron:work"
#define QUEUE_WORK_GROUP "workers"
#define QUEUE_EVENTS_STREAM "nomatron:events"
#define QUEUE_EVENTS_GROUP "bots"
#define QUEUE_TASK_PREFIX "nomatron:task:"
#define QUEUE_TASK_SEQ "nomatron:task:seq"

#define QUEUE_WORK_MAXLEN "100000"      /* work stream trimmed to about this many entries */
#define QUEUE_IDEM_PREFIX "nomatron:idem:"  /* inbound idempotency key -> request ID */
#define QUEUE_IDEM_KEY_MAX 256
#define QUEUE_IDEM_TTL_S 86400
#define QUEUE_MAX_PAYLOAD (64 * 1024)   /* an event or task field larger than this is refused */
#define QUEUE_TASK_TTL_S 600            /* a task nobody picked up in 10 min is gone */
#define QUEUE_SHELL_STREAM_MAXLEN 1000  /* per-session event stream cap */
#define QUEUE_SHELL_STREAM_TTL_S 3600

enum queue_code {
    QUEUE_OK = 0,
    QUEUE_ERR_CONNECT,    /* cannot reach Redis, or the connection broke */
    QUEUE_ERR_REPLY,      /* Redis answered with an error or an unexpected shape */
    QUEUE_ERR_EMPTY,      /* nothing to read within the block time */
    QUEUE_ERR_TOO_LARGE,  /* payload over QUEUE_MAX_PAYLOAD */
    QUEUE_ERR_INVALID,    /* bad argument (e.g. malformed URL) */
    QUEUE_ERR_NOMEM,
};
const char *queue_strerror(int code);

/* One synchronous Redis connection; one thread at a time. */
typedef struct queue_conn {
    void *rc;             /* redisContext *, owned */
    char errstr[160];     /* last error text (never holds the password) */
} queue_conn;

/* Connects to a redis:// URL (see config_redis_url), AUTH and SELECT as
 * given. timeout_ms bounds connect and each command (blocking reads add their
 * block time). On failure q->errstr is set and queue_close() is still safe. */
int queue_connect(queue_conn *q, const char *url, int timeout_ms);
void queue_close(queue_conn *q);

/* Creates the work stream's consumer group (and the stream) if missing. */
int queue_setup(queue_conn *q);

typedef struct queue_work {
    char entry_id[48];    /* stream entry ID, for queue_work_ack */
    char kind[16];        /* "request" or "task" */
    char id[48];
} queue_work;

/* XADD {kind, id} to the work stream. */
int queue_work_add(queue_conn *q, const char *kind, const char *id);
/* XREADGROUP one new entry for `consumer`, blocking up to block_ms.
 * QUEUE_ERR_EMPTY when none arrived. A malformed entry is acknowledged,
 * logged and skipped. */
int queue_work_next(queue_conn *q, const char *consumer, int block_ms, queue_work *out);
int queue_work_ack(queue_conn *q, const char *entry_id);
/* XAUTOCLAIM: takes over one entry another consumer has held idle for at
 * least min_idle_ms (a worker that died or stalled). QUEUE_ERR_EMPTY if none. */
int queue_work_claim_stale(queue_conn *q, const char *consumer, int min_idle_ms, queue_work *out);
/* Keeps a long-running entry's claim fresh (resets its idle time) if it is
 * still this consumer's; QUEUE_ERR_EMPTY if another consumer has taken it. */
int queue_work_touch(queue_conn *q, const char *consumer, const char *entry_id);

/* Leases: a key whose value names its owner, with a TTL. Acquire succeeds if
 * the key is free or already holds `value` (then it is renewed); otherwise
 * QUEUE_ERR_EMPTY and `holder` (may be NULL) gets the current value. Renew and
 * release act only when the key still holds `value` (compare-and-set,
 * compare-and-delete, in Lua so the check and the act are one step);
 * QUEUE_ERR_EMPTY means the lease is no longer ours. */
int queue_lease_acquire(queue_conn *q, const char *key, const char *value, int ttl_ms, char *holder, size_t holderlen);
int queue_lease_renew(queue_conn *q, const char *key, const char *value, int ttl_ms);
int queue_lease_release(queue_conn *q, const char *key, const char *value);
/* The current value, or QUEUE_ERR_EMPTY when the lease is free. */
int queue_lease_holder(queue_conn *q, const char *key, char *holder, size_t holderlen);

/* Health of the Nomad clusters as the workers last saw them (SPEC §8:
 * /readyz reports each Nomad; bots hold no Nomad token, so workers probe
 * and bots read). One hash field per environment: "ok <unix>" or
 * "error <unix> <why>". The hash expires when no worker refreshes it. */
#define QUEUE_HEALTH_NOMAD "nomatron:health:nomad"
#define QUEUE_HEALTH_TTL_S 120
int queue_health_put(queue_conn *q, const char *env, const char *value);

/* Redis's maxmemory-policy (leases and keys must not be evicted: "noeviction"). */
int queue_eviction_policy(queue_conn *q, char *policy, size_t len);

/* The stream that carries events for `route` ("shell:<session>" and "bot:<session>" -> its own
 * stream, anything else -> QUEUE_EVENTS_STREAM). */
void queue_event_stream(const char *route, char *out, size_t outlen);
/* XADD {event: json} to the route's stream (capped, with a TTL for shells). */
int queue_event_publish(queue_conn *q, const char *route, const char *json);

/* Reads the task's JSON (caller frees *json_out). QUEUE_ERR_EMPTY if the
 * task is gone (expired, or never stored). */
int queue_task_get(queue_conn *q, const char *task_id, char **json_out);

#endif
