#include "queue_async.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "queue.h"

enum { CONN_CMD = 0, CONN_FOLLOW = 1, CONN_GROUP = 2, NCONN = 3 };

typedef struct conn {
    struct queue_async *qa;
    int which;
    redisAsyncContext *ac;   /* NULL while down */
    bool up;
    uv_timer_t retry;        /* reconnect timer */
    int backoff_ms;
} conn;

struct queue_async {
    uv_loop_t *loop;
    char host[256];
    char password[256];
    int port, db;
    char addr[64];           /* resolved IP literal */
    uv_getaddrinfo_t gai;
    bool resolving, closing;
    int handles_open;        /* timers still to be closed */
    conn c[NCONN];
    queue_async_state_cb state_cb;
    void *ud;

    /* following */
    char stream[300];
    char last_id[48];        /* "$" until the first entry is seen */
    queue_async_event_cb event_cb;
    void *event_ud;
    bool read_pending;

    /* consuming the shared event stream in the bots' group */
    char consumer[96];
    char group_from[8];      /* "0": our own entries not yet acknowledged (after a reconnect), then ">" */
    queue_async_event_cb group_cb;
    void *group_ud;
    bool group_pending;
};

typedef struct pending {
    queue_async_done_cb cb;
    void *ud;
    char id[64];
} pending;

static void conn_start(conn *c);
static void follow_read(queue_async *qa);
static void group_read(queue_async *qa);

static void maybe_free(queue_async *qa) {
    if (qa->closing && qa->handles_open == 0 && !qa->resolving && !qa->c[0].ac && !qa->c[1].ac && !qa->c[2].ac) {
        explicit_bzero(qa->password, sizeof(qa->password));
        free(qa);
    }
}

static void timer_closed(uv_handle_t *h) {
    conn *c = h->data;
    queue_async *qa = c->qa;
    qa->handles_open--;
    maybe_free(qa);
}

static void retry_fire(uv_timer_t *t) {
    conn *c = t->data;
    conn_start(c);
}

static void retry_later(conn *c) {
    if (c->qa->closing) return;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 1000;
    if (c->backoff_ms > 10000) c->backoff_ms = 10000;
    uv_timer_start(&c->retry, retry_fire, (uint64_t)c->backoff_ms, 0);
}

static void set_up(conn *c, bool up) {
    if (c->up == up) return;
    c->up = up;
    if (c->which == CONN_CMD && c->qa->state_cb) c->qa->state_cb(c->qa->ud, up);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    conn *c = ac->data;
    if (status != REDIS_OK) {
        nm_log(NM_LOG_WARN, "redis connect failed", "error", ac->errstr, NULL);
        c->ac = NULL;   /* hiredis frees the context after this callback */
        set_up(c, false);
        retry_later(c);
        maybe_free(c->qa);
        return;
    }
    c->backoff_ms = 0;
    set_up(c, true);
    if (c->which == CONN_FOLLOW && c->qa->event_cb) follow_read(c->qa);
    if (c->which == CONN_GROUP && c->qa->group_cb) {
        /* The group may not exist yet (a fresh Redis, or one that lost its data). */
        redisAsyncCommand(c->ac, NULL, NULL, "XGROUP CREATE %s %s $ MKSTREAM", QUEUE_EVENTS_STREAM, QUEUE_EVENTS_GROUP);
        snprintf(c->qa->group_from, sizeof(c->qa->group_from), "0");
        group_read(c->qa);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    conn *c = ac->data;
    c->ac = NULL;
    set_up(c, false);
    if (c->which == CONN_FOLLOW) c->qa->read_pending = false;
    if (c->which == CONN_GROUP) c->qa->group_pending = false;
    if (status != REDIS_OK && !c->qa->closing) {
        nm_log(NM_LOG_WARN, "redis connection lost", "error", ac->errstr, NULL);
        retry_later(c);
    }
    maybe_free(c->qa);
}

static void ignore_reply(redisAsyncContext *ac, void *r, void *privdata) {
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        nm_log(NM_LOG_WARN, "redis setup command failed", "error", reply->str, NULL);
    (void)ac;
}

static void conn_start(conn *c) {
    queue_async *qa = c->qa;
    if (qa->closing || c->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(qa->addr, qa->port);
    if (!ac) {
        retry_later(c);
        return;
    }
    if (ac->err) {
        nm_log(NM_LOG_WARN, "redis connect failed", "error", ac->errstr, NULL);
        redisAsyncFree(ac);
        retry_later(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisLibuvAttach(ac, qa->loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Commands queue behind the connect; Redis answers them in order. */
    if (qa->password[0]) redisAsyncCommand(ac, ignore_reply, NULL, "AUTH %s", qa->password);
    if (qa->db) redisAsyncCommand(ac, ignore_reply, NULL, "SELECT %d", qa->db);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    queue_async *qa = req->data;
    qa->resolving = false;
    if (qa->closing) {
        if (res) uv_freeaddrinfo(res);
        maybe_free(qa);
        return;
    }
    if (status != 0 || !res) {
        nm_log(NM_LOG_ERROR, "cannot resolve redis host", "host", qa->host, "error", uv_strerror(status), NULL);
        snprintf(qa->addr, sizeof(qa->addr), "%s", qa->host);   /* hiredis will report the failure */
    } else {
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, qa->addr, sizeof(qa->addr));
        uv_freeaddrinfo(res);
    }
    conn_start(&qa->c[CONN_CMD]);
    conn_start(&qa->c[CONN_FOLLOW]);
    if (qa->group_cb) conn_start(&qa->c[CONN_GROUP]);
}

queue_async *queue_async_new(uv_loop_t *loop, const char *url, queue_async_state_cb state_cb, void *ud,
                             char *err, size_t errlen) {
    queue_async *qa = calloc(1, sizeof(*qa));
    if (!qa) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (config_redis_url(url, qa->host, sizeof(qa->host), &qa->port, &qa->db, qa->password,
                         sizeof(qa->password), err, errlen)) {
        free(qa);
        return NULL;
    }
    qa->loop = loop;
    qa->state_cb = state_cb;
    qa->ud = ud;
    snprintf(qa->last_id, sizeof(qa->last_id), "$");
    for (int i = 0; i < NCONN; i++) {
        qa->c[i].qa = qa;
        qa->c[i].which = i;
        uv_timer_init(loop, &qa->c[i].retry);
        qa->c[i].retry.data = &qa->c[i];
        qa->handles_open++;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, qa->host, &a4) == 1) {
        snprintf(qa->addr, sizeof(qa->addr), "%s", qa->host);
        conn_start(&qa->c[CONN_CMD]);
        conn_start(&qa->c[CONN_FOLLOW]);
    } else {
        /* hiredis 0.14 resolves names synchronously: do it off the loop first. */
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
        qa->gai.data = qa;
        qa->resolving = true;
        if (uv_getaddrinfo(loop, &qa->gai, resolved, qa->host, NULL, &hints) != 0) {
            qa->resolving = false;
            snprintf(qa->addr, sizeof(qa->addr), "%s", qa->host);
            conn_start(&qa->c[CONN_CMD]);
            conn_start(&qa->c[CONN_FOLLOW]);
        }
    }
    return qa;
}

bool queue_async_up(const queue_async *qa) { return qa->c[CONN_CMD].up; }

static void done_reply(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac;
    pending *p = privdata;
    redisReply *reply = r;
    int code = QUEUE_OK;
    if (!reply) code = QUEUE_ERR_CONNECT;
    else if (reply->type == REDIS_REPLY_ERROR) code = QUEUE_ERR_REPLY;
    const char *id = p->id[0] ? p->id : (reply && reply->type == REDIS_REPLY_STRING ? reply->str : "");
    if (p->cb) p->cb(p->ud, code, id);
    free(p);
}

static pending *new_pending(queue_async_done_cb cb, void *ud, const char *id) {
    pending *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->cb = cb;
    p->ud = ud;
    if (id) snprintf(p->id, sizeof(p->id), "%s", id);
    return p;
}

int queue_async_work_add(queue_async *qa, const char *kind, const char *id, queue_async_done_cb cb, void *ud) {
    conn *c = &qa->c[CONN_CMD];
    if (!c->up || !c->ac) return QUEUE_ERR_CONNECT;
    pending *p = new_pending(cb, ud, NULL);
    if (!p) return QUEUE_ERR_NOMEM;
    if (redisAsyncCommand(c->ac, done_reply, p, "XADD %s MAXLEN ~ %s * kind %s id %s", QUEUE_WORK_STREAM,
                          QUEUE_WORK_MAXLEN, kind, id) != REDIS_OK) {
        free(p);
        return QUEUE_ERR_CONNECT;
    }
    return QUEUE_OK;
}

int queue_async_task_add(queue_async *qa, const char *task_id, const char *task_json, queue_async_done_cb cb,
                         void *ud) {
    conn *c = &qa->c[CONN_CMD];
    size_t len = strlen(task_json);
    if (len > QUEUE_MAX_PAYLOAD) return QUEUE_ERR_TOO_LARGE;
    if (!c->up || !c->ac) return QUEUE_ERR_CONNECT;
    pending *p = new_pending(cb, ud, task_id);
    if (!p) return QUEUE_ERR_NOMEM;
    char key[128];
    snprintf(key, sizeof(key), "%s%s", QUEUE_TASK_PREFIX, task_id);
    if (redisAsyncCommand(c->ac, ignore_reply, NULL, "SET %s %b EX %d", key, task_json, len, QUEUE_TASK_TTL_S) !=
            REDIS_OK ||
        redisAsyncCommand(c->ac, done_reply, p, "XADD %s MAXLEN ~ %s * kind task id %s", QUEUE_WORK_STREAM,
                          QUEUE_WORK_MAXLEN, task_id) != REDIS_OK) {
        free(p);
        return QUEUE_ERR_CONNECT;
    }
    return QUEUE_OK;
}

/* The entries of a one-stream XREAD / XREADGROUP reply, or NULL. */
static redisReply *stream_entries(redisReply *reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 || reply->element[0]->type != REDIS_REPLY_ARRAY ||
        reply->element[0]->elements != 2 || reply->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return reply->element[0]->element[1];
}

/* Entry i's ID, or NULL when the entry is malformed; its "event" field (at
 * most QUEUE_MAX_PAYLOAD bytes) in *json / *len, or *json NULL. */
static const char *stream_entry(redisReply *entries, size_t i, const char **json, size_t *len) {
    redisReply *e = entries->element[i];
    *json = NULL;
    *len = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING) return NULL;
    redisReply *f = e->element[1];
    for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2)
        if (f->element[j]->type == REDIS_REPLY_STRING && strcmp(f->element[j]->str, "event") == 0 &&
            f->element[j + 1]->type == REDIS_REPLY_STRING && f->element[j + 1]->len <= QUEUE_MAX_PAYLOAD) {
            *json = f->element[j + 1]->str;
            *len = f->element[j + 1]->len;
            break;
        }
    return e->element[0]->str;
}

static void follow_reply(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac;
    queue_async *qa = privdata;
    redisReply *reply = r;
    qa->read_pending = false;
    if (!reply || qa->closing) return;   /* disconnected: on_connect re-arms the read */
    redisReply *entries;
    if (reply->type == REDIS_REPLY_ERROR) {
        nm_log(NM_LOG_WARN, "event stream read failed", "error", reply->str, NULL);
    } else if ((entries = stream_entries(reply))) {
        for (size_t i = 0; i < entries->elements; i++) {
            const char *json;
            size_t len;
            const char *id = stream_entry(entries, i, &json, &len);
            if (!id) continue;
            snprintf(qa->last_id, sizeof(qa->last_id), "%s", id);
            if (json) qa->event_cb(qa->event_ud, json, len);
        }
    }
    follow_read(qa);
}

static void follow_read(queue_async *qa) {
    conn *c = &qa->c[CONN_FOLLOW];
    if (qa->closing || qa->read_pending || !c->ac || !c->up) return;
    qa->read_pending = true;
    if (redisAsyncCommand(c->ac, follow_reply, qa, "XREAD COUNT 100 BLOCK 2000 STREAMS %s %s", qa->stream,
                          qa->last_id) != REDIS_OK)
        qa->read_pending = false;
}

int queue_async_follow(queue_async *qa, const char *route, queue_async_event_cb cb, void *ud) {
    queue_event_stream(route, qa->stream, sizeof(qa->stream));
    qa->event_cb = cb;
    qa->event_ud = ud;
    /* "$" would miss events published between now and the first read after
     * a slow connect; a session's stream is new, so start from the beginning. */
    snprintf(qa->last_id, sizeof(qa->last_id), "0");
    follow_read(qa);
    return QUEUE_OK;
}

/* Entries are acknowledged once the callback has returned: an event is
 * applied at most once by the group, and one a crashed bot never applied is
 * read again by the same consumer name from "0". */
static void group_reply(redisAsyncContext *ac, void *r, void *privdata) {
    queue_async *qa = privdata;
    redisReply *reply = r;
    qa->group_pending = false;
    if (!reply || qa->closing) return;   /* disconnected: on_connect re-arms the read */
    size_t seen = 0;
    redisReply *entries;
    if (reply->type == REDIS_REPLY_ERROR) {
        nm_log(NM_LOG_WARN, "event group read failed", "error", reply->str, NULL);
        if (strncmp(reply->str, "NOGROUP", 7) == 0)
            redisAsyncCommand(ac, NULL, NULL, "XGROUP CREATE %s %s $ MKSTREAM", QUEUE_EVENTS_STREAM,
                              QUEUE_EVENTS_GROUP);
    } else if ((entries = stream_entries(reply))) {
        for (size_t i = 0; i < entries->elements; i++) {
            const char *json;
            size_t len;
            const char *id = stream_entry(entries, i, &json, &len);
            if (!id) continue;
            seen++;
            if (json) qa->group_cb(qa->group_ud, json, len);
            if (qa->closing || !qa->c[CONN_GROUP].ac) return;
            redisAsyncCommand(ac, NULL, NULL, "XACK %s %s %s", QUEUE_EVENTS_STREAM, QUEUE_EVENTS_GROUP, id);
        }
    }
    if (seen == 0 && strcmp(qa->group_from, "0") == 0) snprintf(qa->group_from, sizeof(qa->group_from), ">");
    group_read(qa);
}

static void group_read(queue_async *qa) {
    conn *c = &qa->c[CONN_GROUP];
    if (qa->closing || qa->group_pending || !c->ac || !c->up) return;
    qa->group_pending = true;
    if (redisAsyncCommand(c->ac, group_reply, qa, "XREADGROUP GROUP %s %s COUNT 100 BLOCK 2000 STREAMS %s %s",
                          QUEUE_EVENTS_GROUP, qa->consumer, QUEUE_EVENTS_STREAM, qa->group_from) != REDIS_OK)
        qa->group_pending = false;
}

int queue_async_consume(queue_async *qa, const char *consumer, queue_async_event_cb cb, void *ud) {
    if (qa->group_cb) return QUEUE_ERR_REPLY;
    if (!consumer || !*consumer || strlen(consumer) >= sizeof(qa->consumer)) return QUEUE_ERR_TOO_LARGE;
    snprintf(qa->consumer, sizeof(qa->consumer), "%s", consumer);
    snprintf(qa->group_from, sizeof(qa->group_from), "0");
    qa->group_cb = cb;
    qa->group_ud = ud;
    if (qa->addr[0] && !qa->resolving) conn_start(&qa->c[CONN_GROUP]);
    return QUEUE_OK;
}

void queue_async_close(queue_async *qa) {
    if (qa->closing) return;
    qa->closing = true;
    for (int i = 0; i < NCONN; i++) {
        conn *c = &qa->c[i];
        uv_timer_stop(&c->retry);
        uv_close((uv_handle_t *)&c->retry, timer_closed);
        if (c->ac) {
            redisAsyncContext *ac = c->ac;
            c->ac = NULL;
            /* Free (not graceful disconnect): the follower may sit in a
             * blocked XREAD. Pending callbacks get a NULL reply. */
            redisAsyncFree(ac);
        }
    }
}

typedef struct hash_pending {
    queue_async_hash_cb cb;
    void *ud;
} hash_pending;

#define HEALTH_FIELDS_MAX 64

static void hash_reply(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac;
    hash_pending *p = privdata;
    redisReply *reply = r;
    const char *fields[HEALTH_FIELDS_MAX], *values[HEALTH_FIELDS_MAX];
    size_t n = 0;
    int code = !reply ? QUEUE_ERR_CONNECT : reply->type == REDIS_REPLY_ARRAY ? QUEUE_OK : QUEUE_ERR_REPLY;
    for (size_t i = 0; code == QUEUE_OK && i + 1 < reply->elements && n < HEALTH_FIELDS_MAX; i += 2) {
        if (reply->element[i]->type != REDIS_REPLY_STRING || reply->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        fields[n] = reply->element[i]->str;
        values[n] = reply->element[i + 1]->str;
        n++;
    }
    p->cb(p->ud, code, fields, values, n);
    free(p);
}

int queue_async_health_get(queue_async *qa, queue_async_hash_cb cb, void *ud) {
    conn *c = &qa->c[CONN_CMD];
    if (!c->up || !c->ac) return QUEUE_ERR_CONNECT;
    hash_pending *p = malloc(sizeof(*p));
    if (!p) return QUEUE_ERR_NOMEM;
    p->cb = cb;
    p->ud = ud;
    if (redisAsyncCommand(c->ac, hash_reply, p, "HGETALL %s", QUEUE_HEALTH_NOMAD) != REDIS_OK) {
        free(p);
        return QUEUE_ERR_CONNECT;
    }
    return QUEUE_OK;
}

int queue_async_idem_get(queue_async *qa, const char *key, queue_async_done_cb cb, void *ud) {
    conn *c = &qa->c[CONN_CMD];
    if (!c->up || !c->ac) return QUEUE_ERR_CONNECT;
    if (strlen(key) > QUEUE_IDEM_KEY_MAX) return QUEUE_ERR_TOO_LARGE;
    pending *p = new_pending(cb, ud, NULL);
    if (!p) return QUEUE_ERR_NOMEM;
    if (redisAsyncCommand(c->ac, done_reply, p, "GET %s%s", QUEUE_IDEM_PREFIX, key) != REDIS_OK) {
        free(p);
        return QUEUE_ERR_CONNECT;
    }
    return QUEUE_OK;
}

int queue_async_idem_put(queue_async *qa, const char *key, const char *request_id) {
    conn *c = &qa->c[CONN_CMD];
    if (!c->up || !c->ac) return QUEUE_ERR_CONNECT;
    if (strlen(key) > QUEUE_IDEM_KEY_MAX) return QUEUE_ERR_TOO_LARGE;
    if (redisAsyncCommand(c->ac, ignore_reply, NULL, "SET %s%s %s EX %d NX", QUEUE_IDEM_PREFIX, key, request_id,
                          QUEUE_IDEM_TTL_S) != REDIS_OK)
        return QUEUE_ERR_CONNECT;
    return QUEUE_OK;
}
