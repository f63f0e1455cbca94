#include "queue.h"

#include <errno.h>
#include <stdbool.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

const char *queue_strerror(int code) {
    switch (code) {
    case QUEUE_OK: return "ok";
    case QUEUE_ERR_CONNECT: return "Redis unreachable";
    case QUEUE_ERR_REPLY: return "unexpected Redis reply";
    case QUEUE_ERR_EMPTY: return "nothing to read";
    case QUEUE_ERR_TOO_LARGE: return "payload too large";
    case QUEUE_ERR_INVALID: return "invalid argument";
    case QUEUE_ERR_NOMEM: return "out of memory";
    }
    return "unknown queue error";
}

static int fail(queue_conn *q, int code, const char *what) {
    redisContext *rc = q->rc;
    if (code == QUEUE_ERR_CONNECT && rc && rc->err)
        snprintf(q->errstr, sizeof(q->errstr), "%s: %s", what, rc->errstr);
    else
        snprintf(q->errstr, sizeof(q->errstr), "%s", what);
    return code;
}

/* Runs a command; NULL reply means the connection is gone (hiredis then
 * refuses further use of the context, so we drop it and reconnect later). */
static redisReply *command_argv(queue_conn *q, int argc, const char **argv, const size_t *lens, int *code) {
    if (!q->rc) {
        *code = fail(q, QUEUE_ERR_CONNECT, "not connected");
        return NULL;
    }
    redisReply *r = redisCommandArgv(q->rc, argc, argv, lens);
    if (!r) {
        *code = fail(q, QUEUE_ERR_CONNECT, "Redis connection lost");
        redisFree(q->rc);
        q->rc = NULL;
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(q->errstr, sizeof(q->errstr), "Redis error: %.120s", r->str);
        *code = QUEUE_ERR_REPLY;
        freeReplyObject(r);
        return NULL;
    }
    *code = QUEUE_OK;
    return r;
}

int queue_connect(queue_conn *q, const char *url, int timeout_ms) {
    char host[256], password[256], err[160];
    int port, db;
    q->rc = NULL;
    q->errstr[0] = '\0';
    if (config_redis_url(url, host, sizeof(host), &port, &db, password, sizeof(password), err, sizeof(err))) {
        snprintf(q->errstr, sizeof(q->errstr), "%s", err);
        return QUEUE_ERR_INVALID;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    if (!rc) return fail(q, QUEUE_ERR_NOMEM, "out of memory");
    if (rc->err) {
        snprintf(q->errstr, sizeof(q->errstr), "connect %s:%d: %s", host, port, rc->errstr);
        redisFree(rc);
        return QUEUE_ERR_CONNECT;
    }
    redisSetTimeout(rc, tv);
    q->rc = rc;

    int code;
    if (password[0]) {
        const char *argv[] = {"AUTH", password};
        size_t lens[] = {4, strlen(password)};
        redisReply *r = command_argv(q, 2, argv, lens, &code);
        explicit_bzero(password, sizeof(password));
        if (!r) {
            snprintf(q->errstr, sizeof(q->errstr), "Redis AUTH failed");
            queue_close(q);
            return code;
        }
        freeReplyObject(r);
    }
    if (db != 0) {
        char dbs[16];
        snprintf(dbs, sizeof(dbs), "%d", db);
        const char *argv[] = {"SELECT", dbs};
        size_t lens[] = {6, strlen(dbs)};
        redisReply *r = command_argv(q, 2, argv, lens, &code);
        if (!r) {
            queue_close(q);
            return code;
        }
        freeReplyObject(r);
    }
    return QUEUE_OK;
}

void queue_close(queue_conn *q) {
    if (q->rc) redisFree(q->rc);
    q->rc = NULL;
}

int queue_setup(queue_conn *q) {
    const char *argv[] = {"XGROUP", "CREATE", QUEUE_WORK_STREAM, QUEUE_WORK_GROUP, "0", "MKSTREAM"};
    int code;
    redisReply *r = command_argv(q, 6, argv, NULL, &code);
    if (r) {
        freeReplyObject(r);
        return QUEUE_OK;
    }
    if (code == QUEUE_ERR_REPLY && strstr(q->errstr, "BUSYGROUP")) return QUEUE_OK;
    return code;
}

int queue_work_add(queue_conn *q, const char *kind, const char *id) {
    /* Trimmed: entries are tiny, and PostgreSQL keeps what matters (the reconciler re-adds a lost request). */
    const char *argv[] = {"XADD", QUEUE_WORK_STREAM, "MAXLEN", "~", QUEUE_WORK_MAXLEN, "*", "kind", kind, "id", id};
    int code;
    redisReply *r = command_argv(q, 10, argv, NULL, &code);
    if (!r) return code;
    freeReplyObject(r);
    return QUEUE_OK;
}

static int copy_str(char *dst, size_t dstlen, const redisReply *r) {
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return -1;
    if (r->len >= dstlen) return -1;
    memcpy(dst, r->str, r->len);
    dst[r->len] = '\0';
    return 0;
}

/* One stream entry, [id, [field, value, ...]], into out. A malformed entry
 * (fields missing) is acknowledged so it is not redelivered forever, and
 * QUEUE_ERR_EMPTY is returned; a reply of the wrong shape is QUEUE_ERR_REPLY. */
static int parse_entry(queue_conn *q, const redisReply *entry, queue_work *out) {
    memset(out, 0, sizeof(*out));
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        copy_str(out->entry_id, sizeof(out->entry_id), entry->element[0]) != 0)
        return fail(q, QUEUE_ERR_REPLY, "unexpected stream entry shape");
    const redisReply *fields = entry->element[1];
    bool ok = fields->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING) continue;
        if (strcmp(k->str, "kind") == 0 && copy_str(out->kind, sizeof(out->kind), v)) ok = false;
        if (strcmp(k->str, "id") == 0 && copy_str(out->id, sizeof(out->id), v)) ok = false;
    }
    if (ok && out->kind[0] && out->id[0]) return QUEUE_OK;
    nm_log(NM_LOG_WARN, "malformed work entry skipped", "entry", out->entry_id, NULL);
    queue_work_ack(q, out->entry_id);
    return QUEUE_ERR_EMPTY;
}

int queue_work_next(queue_conn *q, const char *consumer, int block_ms, queue_work *out) {
    char block[16];
    snprintf(block, sizeof(block), "%d", block_ms);
    const char *argv[] = {"XREADGROUP", "GROUP", QUEUE_WORK_GROUP, consumer, "COUNT", "1",
                          "BLOCK", block, "STREAMS", QUEUE_WORK_STREAM, ">"};
    int code;
    if (q->rc) {
        /* The read may block for block_ms: give the socket that much more time. */
        struct timeval tv = {(block_ms + 5000) / 1000, ((block_ms + 5000) % 1000) * 1000};
        redisSetTimeout(q->rc, tv);
    }
    redisReply *r = command_argv(q, 11, argv, NULL, &code);
    if (!r) {
        /* The group vanishes when Redis loses its data: recreate it once. */
        if (code == QUEUE_ERR_REPLY && strstr(q->errstr, "NOGROUP") && queue_setup(q) == QUEUE_OK)
            return QUEUE_ERR_EMPTY;
        return code;
    }
    /* [[stream, [[id, [field, value, ...]]]]] */
    int rc = r->type == REDIS_REPLY_NIL ? QUEUE_ERR_EMPTY : QUEUE_ERR_REPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        if (entries->type == REDIS_REPLY_ARRAY && entries->elements == 1) rc = parse_entry(q, entries->element[0], out);
    }
    freeReplyObject(r);
    if (rc == QUEUE_ERR_REPLY) snprintf(q->errstr, sizeof(q->errstr), "unexpected XREADGROUP reply shape");
    return rc;
}

int queue_work_claim_stale(queue_conn *q, const char *consumer, int min_idle_ms, queue_work *out) {
    char idle[16];
    snprintf(idle, sizeof(idle), "%d", min_idle_ms);
    const char *argv[] = {"XAUTOCLAIM", QUEUE_WORK_STREAM, QUEUE_WORK_GROUP, consumer, idle, "0-0", "COUNT", "1"};
    int code;
    redisReply *r = command_argv(q, 8, argv, NULL, &code);
    if (!r) {
        if (code == QUEUE_ERR_REPLY && strstr(q->errstr, "NOGROUP") && queue_setup(q) == QUEUE_OK)
            return QUEUE_ERR_EMPTY;
        return code;
    }
    /* [next-start, [[id, [fields]]...], [deleted ids]] (Redis 7). An entry
     * trimmed away while pending comes back as deleted: nothing to do, the
     * reconciler re-adds its request from PostgreSQL. */
    int rc = QUEUE_ERR_REPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = r->element[1];
        rc = QUEUE_ERR_EMPTY;
        for (size_t i = 0; i < entries->elements && rc == QUEUE_ERR_EMPTY; i++)
            if (entries->element[i]->type == REDIS_REPLY_ARRAY) rc = parse_entry(q, entries->element[i], out);
    }
    freeReplyObject(r);
    if (rc == QUEUE_ERR_REPLY) snprintf(q->errstr, sizeof(q->errstr), "unexpected XAUTOCLAIM reply shape");
    return rc;
}

/* Runs a Lua script with one key: EVALSHA of its digest (the script itself
 * crosses the wire only when Redis does not know it yet: NOSCRIPT, e.g.
 * after a restart). Returns the reply (caller frees) or NULL with *code. */
static redisReply *run_script(queue_conn *q, const char *script, const char *key, int nargs, const char **args,
                              int *code) {
    unsigned char md[SHA_DIGEST_LENGTH];
    char sha[2 * SHA_DIGEST_LENGTH + 1];
    SHA1((const unsigned char *)script, strlen(script), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(sha + 2 * i, 3, "%02x", md[i]);
    const char *argv[8] = {"EVALSHA", sha, "1", key};
    for (int i = 0; i < nargs && i < 4; i++) argv[4 + i] = args[i];
    redisReply *r = command_argv(q, 4 + nargs, argv, NULL, code);
    if (!r && *code == QUEUE_ERR_REPLY && strstr(q->errstr, "NOSCRIPT")) {
        argv[0] = "EVAL";
        argv[1] = script;
        r = command_argv(q, 4 + nargs, argv, NULL, code);
    }
    return r;
}

/* A script whose answer is an integer. */
static int eval_int(queue_conn *q, const char *script, const char *key, int nargs, const char **args,
                    long long *result) {
    int code;
    redisReply *r = run_script(q, script, key, nargs, args, &code);
    if (!r) return code;
    int rc = r->type == REDIS_REPLY_INTEGER ? QUEUE_OK : fail(q, QUEUE_ERR_REPLY, "unexpected script reply");
    *result = r->integer;
    freeReplyObject(r);
    return rc;
}

int queue_work_touch(queue_conn *q, const char *consumer, const char *entry_id) {
    /* Reset the idle time only if the entry is still ours: XCLAIM alone would
     * take it back from a worker that legitimately claimed it meanwhile. */
    static const char script[] =
        "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
        "if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end\n"
        "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')\n"
        "return 1\n";
    const char *args[] = {QUEUE_WORK_GROUP, consumer, entry_id};
    long long ours = 0;
    int rc = eval_int(q, script, QUEUE_WORK_STREAM, 3, args, &ours);
    if (rc != QUEUE_OK) return rc;
    return ours ? QUEUE_OK : QUEUE_ERR_EMPTY;
}

int queue_lease_acquire(queue_conn *q, const char *key, const char *value, int ttl_ms, char *holder, size_t holderlen) {
    static const char script[] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {1, ARGV[1]} end\n"
        "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1, v} end\n"
        "return {0, v}\n";
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    const char *args[] = {value, ttl};
    int code;
    redisReply *r = run_script(q, script, key, 2, args, &code);
    if (!r) return code;
    int rc = QUEUE_ERR_REPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = r->element[0]->integer == 1 ? QUEUE_OK : QUEUE_ERR_EMPTY;
        if (holder && holderlen && copy_str(holder, holderlen, r->element[1]) != 0) holder[0] = '\0';
    } else {
        fail(q, rc, "unexpected lease script reply");
    }
    freeReplyObject(r);
    return rc;
}

int queue_lease_renew(queue_conn *q, const char *key, const char *value, int ttl_ms) {
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
        "return 0\n";
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    const char *args[] = {value, ttl};
    long long ok = 0;
    int rc = eval_int(q, script, key, 2, args, &ok);
    if (rc != QUEUE_OK) return rc;
    return ok ? QUEUE_OK : QUEUE_ERR_EMPTY;
}

int queue_lease_release(queue_conn *q, const char *key, const char *value) {
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
        "return 0\n";
    const char *args[] = {value};
    long long n = 0;
    int rc = eval_int(q, script, key, 1, args, &n);
    if (rc != QUEUE_OK) return rc;
    return n ? QUEUE_OK : QUEUE_ERR_EMPTY;
}

int queue_lease_holder(queue_conn *q, const char *key, char *holder, size_t holderlen) {
    const char *argv[] = {"GET", key};
    int code;
    redisReply *r = command_argv(q, 2, argv, NULL, &code);
    if (!r) return code;
    int rc = r->type == REDIS_REPLY_NIL ? QUEUE_ERR_EMPTY
             : copy_str(holder, holderlen, r) == 0 ? QUEUE_OK
                                                   : fail(q, QUEUE_ERR_REPLY, "unexpected lease value");
    freeReplyObject(r);
    return rc;
}

int queue_eviction_policy(queue_conn *q, char *policy, size_t len) {
    const char *argv[] = {"CONFIG", "GET", "maxmemory-policy"};
    int code;
    redisReply *r = command_argv(q, 3, argv, NULL, &code);
    if (!r) return code;
    int rc = QUEUE_ERR_REPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && copy_str(policy, len, r->element[1]) == 0) rc = QUEUE_OK;
    freeReplyObject(r);
    return rc;
}

int queue_health_put(queue_conn *q, const char *env, const char *value) {
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", QUEUE_HEALTH_TTL_S);
    const char *hset[] = {"HSET", QUEUE_HEALTH_NOMAD, env, value};
    const char *expire[] = {"EXPIRE", QUEUE_HEALTH_NOMAD, ttl};
    int code;
    redisReply *r = command_argv(q, 4, hset, NULL, &code);
    if (!r) return code;
    freeReplyObject(r);
    r = command_argv(q, 3, expire, NULL, &code);
    if (!r) return code;
    freeReplyObject(r);
    return QUEUE_OK;
}

int queue_work_ack(queue_conn *q, const char *entry_id) {
    const char *argv[] = {"XACK", QUEUE_WORK_STREAM, QUEUE_WORK_GROUP, entry_id};
    int code;
    redisReply *r = command_argv(q, 4, argv, NULL, &code);
    if (!r) return code;
    freeReplyObject(r);
    return QUEUE_OK;
}

void queue_event_stream(const char *route, char *out, size_t outlen) {
    if (route && (strncmp(route, "shell:", 6) == 0 || strncmp(route, "bot:", 4) == 0))
        snprintf(out, outlen, "nomatron:events:%s", route);
    else
        snprintf(out, outlen, "%s", QUEUE_EVENTS_STREAM);
}

int queue_event_publish(queue_conn *q, const char *route, const char *json) {
    size_t len = strlen(json);
    if (len > QUEUE_MAX_PAYLOAD) return fail(q, QUEUE_ERR_TOO_LARGE, "event over the payload ceiling");
    char stream[300];
    queue_event_stream(route, stream, sizeof(stream));
    int shell = strcmp(stream, QUEUE_EVENTS_STREAM) != 0;
    char maxlen[16];
    snprintf(maxlen, sizeof(maxlen), "%d", shell ? QUEUE_SHELL_STREAM_MAXLEN : 100000);
    const char *argv[] = {"XADD", stream, "MAXLEN", "~", maxlen, "*", "event", json};
    size_t lens[] = {4, strlen(stream), 6, 1, strlen(maxlen), 1, 5, len};
    int code;
    redisReply *r = command_argv(q, 8, argv, lens, &code);
    if (!r) return code;
    freeReplyObject(r);
    if (shell) {
        char ttl[16];
        snprintf(ttl, sizeof(ttl), "%d", QUEUE_SHELL_STREAM_TTL_S);
        const char *eargv[] = {"EXPIRE", stream, ttl};
        r = command_argv(q, 3, eargv, NULL, &code);
        if (!r) return code;
        freeReplyObject(r);
    }
    return QUEUE_OK;
}

int queue_task_get(queue_conn *q, const char *task_id, char **json_out) {
    char key[128];
    snprintf(key, sizeof(key), "%s%s", QUEUE_TASK_PREFIX, task_id);
    const char *argv[] = {"GET", key};
    int code;
    redisReply *r = command_argv(q, 2, argv, NULL, &code);
    if (!r) return code;
    int rc = QUEUE_OK;
    if (r->type == REDIS_REPLY_NIL) {
        rc = QUEUE_ERR_EMPTY;
    } else if (r->type != REDIS_REPLY_STRING || r->len > QUEUE_MAX_PAYLOAD) {
        rc = fail(q, QUEUE_ERR_REPLY, "task is not a JSON string within the payload ceiling");
    } else {
        *json_out = malloc(r->len + 1);
        if (!*json_out) {
            rc = QUEUE_ERR_NOMEM;
        } else {
            memcpy(*json_out, r->str, r->len);
            (*json_out)[r->len] = '\0';
        }
    }
    freeReplyObject(r);
    return rc;
}
