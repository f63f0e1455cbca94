/* Benchmarks of the work queue (docs/BENCHMARKS.md, "Queue and workers").
 * Not run by ctest: it prints one line of figures per measurement.
 *
 *   bench_queue [--redis URL] [--cycles N] [--consumers LIST] [--window W] [--floor-only]
 *
 *   --redis URL       default redis://127.0.0.1:$NOMATRON_REDIS_PORT/14 (port 6379 when unset).
 *                     The database is FLUSHED first. A database 4..15 is claimed the way the
 *                     end-to-end tests claim theirs (SET nomatron:e2e:db:N NX in database 0),
 *                     so a test running at the same time is never flushed under its feet.
 *   --cycles N        operations per measurement (default 20000)
 *   --consumers LIST  consumer threads for the producer/consumer runs (default 1,2,4,8)
 *   --window W        the producer stays at most W entries ahead of the acknowledgements
 *                     (default 100: about the 100 jobs of the deploy benchmark)
 *   --floor-only      only the floor (PING round trip), for tests/bench/deploys.sh
 *
 * Measured, each on its own connection(s), through queue/queue.h exactly as
 * the worker calls it:
 *   floor    PING round trip
 *   serial   queue_work_add + queue_work_next + queue_work_ack, one thread
 *   pc       one producer thread (queue_work_add) and K consumer threads
 *            (queue_work_next + queue_work_ack), K from --consumers
 *   lease    queue_lease_acquire + queue_lease_release (Lua), renew
 *   touch    queue_work_touch of a pending entry (Lua: XPENDING + XCLAIM)
 *   claim    queue_work_claim_stale when nothing is stale (XAUTOCLAIM) */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "queue.h"

#define MAX_CONSUMERS 64
#define BLOCK_MS 100

static char url[512];
static long cycles = 20000;
static long window = 100;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *why) {
    fprintf(stderr, "bench_queue: %s: %s\n", what, why);
    exit(1);
}

static void qconnect(queue_conn *q) {
    if (queue_connect(q, url, 5000) != QUEUE_OK) die("connect", q->errstr);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p in 0..100 of sorted v */
static double pct(const double *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static double *lat_alloc(size_t n) {
    double *v = calloc(n ? n : 1, sizeof(double));
    if (!v) die("latencies", "out of memory");
    return v;
}

/* "p50 X ms  p99 Y ms  max Z ms" of v (sorted in place). */
static void describe(char *out, size_t len, double *v, size_t n) {
    qsort(v, n, sizeof(double), cmp_d);
    snprintf(out, len, "p50 %.3f ms  p99 %.3f ms  max %.2f ms", pct(v, n, 50), pct(v, n, 99), n ? v[n - 1] : 0);
}

/* Raw hiredis command on the queue connection (PING, DEL, FLUSHDB). */
static void raw_cmd(queue_conn *q, const char *cmd) {
    redisReply *r = redisCommand(q->rc, cmd);
    if (!r) die(cmd, "Redis connection lost");
    if (r->type == REDIS_REPLY_ERROR) die(cmd, r->str);
    freeReplyObject(r);
}

/* A fresh work stream and group: the runs never see each other's entries. */
static void fresh_stream(queue_conn *q) {
    raw_cmd(q, "DEL " QUEUE_WORK_STREAM);
    if (queue_setup(q) != QUEUE_OK) die("queue_setup", q->errstr);
}

/* ---- database claim (the e2e convention of tests/e2e/lib.sh) ---- */

static redisContext *claim_rc;
static char claim_key[64];

static void release_claim(void) {
    if (!claim_rc) return;
    redisReply *r = redisCommand(claim_rc, "DEL %s", claim_key);
    if (r) freeReplyObject(r);
    redisFree(claim_rc);
    claim_rc = NULL;
}

static void claim_database(void) {
    char host[256], password[256], err[160];
    int port, db;
    if (config_redis_url(url, host, sizeof(host), &port, &db, password, sizeof(password), err, sizeof(err)))
        die("--redis", err);
    if (db == 0) die("--redis", "database 0 is where the dev stack lives; name another (e.g. /14)");
    if (db < 4 || db > 15) return;   /* outside the e2e range: the caller chose it on purpose */
    struct timeval tv = {5, 0};
    claim_rc = redisConnectWithTimeout(host, port, tv);
    if (!claim_rc || claim_rc->err) die("connect", claim_rc ? claim_rc->errstr : "out of memory");
    if (password[0]) {
        redisReply *r = redisCommand(claim_rc, "AUTH %s", password);
        if (!r || r->type == REDIS_REPLY_ERROR) die("AUTH", "refused");
        freeReplyObject(r);
    }
    snprintf(claim_key, sizeof(claim_key), "nomatron:e2e:db:%d", db);
    redisReply *r = redisCommand(claim_rc, "SET %s %d NX EX 900", claim_key, (int)getpid());
    bool ours = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ours) {
        redisFree(claim_rc);
        claim_rc = NULL;
        fprintf(stderr, "bench_queue: Redis database %d is in use by a test now (%s is set); name another with --redis\n",
                db, claim_key);
        exit(1);
    }
    atexit(release_claim);
}

/* ---- floor ---- */

static void bench_floor(queue_conn *q) {
    double *v = lat_alloc((size_t)cycles);
    for (long i = 0; i < 1000; i++) raw_cmd(q, "PING");   /* warm-up */
    for (long i = 0; i < cycles; i++) {
        double t0 = now_ms();
        raw_cmd(q, "PING");
        v[i] = now_ms() - t0;
    }
    char d[128];
    describe(d, sizeof(d), v, (size_t)cycles);
    printf("floor   PING round trip                          %s\n", d);
    free(v);
}

/* ---- serial cycle ---- */

static void bench_serial(queue_conn *q) {
    fresh_stream(q);
    double *v = lat_alloc((size_t)cycles);
    double start = now_ms();
    for (long i = 0; i < cycles; i++) {
        char id[24];
        snprintf(id, sizeof(id), "%ld", i + 1);
        queue_work w;
        double t0 = now_ms();
        if (queue_work_add(q, "request", id) != QUEUE_OK) die("queue_work_add", q->errstr);
        if (queue_work_next(q, "bench-serial", 1000, &w) != QUEUE_OK) die("queue_work_next", q->errstr);
        if (strcmp(w.id, id) != 0) die("queue_work_next", "an entry other than the one just added");
        if (queue_work_ack(q, w.entry_id) != QUEUE_OK) die("queue_work_ack", q->errstr);
        v[i] = now_ms() - t0;
    }
    double secs = (now_ms() - start) / 1e3;
    char d[128];
    describe(d, sizeof(d), v, (size_t)cycles);
    printf("serial  add+next+ack, one thread     %8.0f cycles/s  per cycle %s\n", (double)cycles / secs, d);
    free(v);
}

/* ---- one producer, K consumers ---- */

typedef struct pc_shared {
    atomic_long added, acked;
    atomic_bool failed;
    double end_ms;   /* when the last entry was acknowledged (written once, by that consumer) */
} pc_shared;

typedef struct consumer {
    pthread_t th;
    pc_shared *s;
    int n;
    double *lat;   /* next+ack per entry */
    size_t count;
} consumer;

static void *consumer_main(void *p) {
    consumer *c = p;
    queue_conn q;
    qconnect(&q);
    char name[32];
    snprintf(name, sizeof(name), "bench-c%d", c->n);
    c->lat = lat_alloc((size_t)cycles);
    while (atomic_load(&c->s->acked) < cycles && !atomic_load(&c->s->failed)) {
        queue_work w;
        double t0 = now_ms();
        int rc = queue_work_next(&q, name, BLOCK_MS, &w);
        if (rc == QUEUE_ERR_EMPTY) continue;
        if (rc != QUEUE_OK || queue_work_ack(&q, w.entry_id) != QUEUE_OK) {
            fprintf(stderr, "bench_queue: consumer %d: %s\n", c->n, q.errstr);
            atomic_store(&c->s->failed, true);
            break;
        }
        if (c->count < (size_t)cycles) c->lat[c->count++] = now_ms() - t0;
        if (atomic_fetch_add(&c->s->acked, 1) == cycles - 1) c->s->end_ms = now_ms();
    }
    queue_close(&q);
    return NULL;
}

static void bench_pc(queue_conn *q, int k) {
    fresh_stream(q);
    pc_shared s;
    atomic_init(&s.added, 0);
    atomic_init(&s.acked, 0);
    atomic_init(&s.failed, false);
    s.end_ms = 0;
    consumer cs[MAX_CONSUMERS];
    memset(cs, 0, sizeof(cs));
    for (int i = 0; i < k; i++) {
        cs[i].s = &s;
        cs[i].n = i;
        if (pthread_create(&cs[i].th, NULL, consumer_main, &cs[i]) != 0) die("pthread_create", "failed");
    }
    usleep(200 * 1000);   /* consumers connected and blocked in XREADGROUP */
    double *add = lat_alloc((size_t)cycles);
    double start = now_ms();
    for (long i = 0; i < cycles && !atomic_load(&s.failed); i++) {
        while (i - atomic_load(&s.acked) >= window && !atomic_load(&s.failed)) {
            struct timespec ts = {0, 20 * 1000};
            nanosleep(&ts, NULL);
        }
        char id[24];
        snprintf(id, sizeof(id), "%ld", i + 1);
        double t0 = now_ms();
        if (queue_work_add(q, "request", id) != QUEUE_OK) die("queue_work_add", q->errstr);
        add[i] = now_ms() - t0;
        atomic_fetch_add(&s.added, 1);
    }
    for (int i = 0; i < k; i++) pthread_join(cs[i].th, NULL);
    double secs = (s.end_ms - start) / 1e3;   /* not the join: idle consumers wait out their block */
    if (atomic_load(&s.failed)) die("producer/consumer run", "a consumer failed");
    size_t total = 0;
    for (int i = 0; i < k; i++) total += cs[i].count;
    double *all = lat_alloc(total);
    size_t at = 0;
    for (int i = 0; i < k; i++) {
        memcpy(all + at, cs[i].lat, cs[i].count * sizeof(double));
        at += cs[i].count;
        free(cs[i].lat);
    }
    char da[128], dc[128];
    describe(da, sizeof(da), add, (size_t)cycles);
    describe(dc, sizeof(dc), all, total);
    printf("pc      1 producer + %d consumer%s        %8.0f cycles/s\n", k, k == 1 ? " " : "s", (double)cycles / secs);
    printf("          add (producer)                         %s\n", da);
    printf("          next+ack (consumers)                   %s\n", dc);
    free(add);
    free(all);
}

/* ---- leases, touch, claim ---- */

static void bench_lease(queue_conn *q) {
    double *acq = lat_alloc((size_t)cycles), *rel = lat_alloc((size_t)cycles), *pair = lat_alloc((size_t)cycles),
           *ren = lat_alloc((size_t)cycles);
    const char *key = "nomatron:lease:job:bench:job00", *value = "1 bench-token";
    for (long i = 0; i < cycles; i++) {
        char holder[160];
        double t0 = now_ms();
        if (queue_lease_acquire(q, key, value, 30000, holder, sizeof(holder)) != QUEUE_OK)
            die("queue_lease_acquire", q->errstr);
        double t1 = now_ms();
        if (queue_lease_renew(q, key, value, 30000) != QUEUE_OK) die("queue_lease_renew", q->errstr);
        double t2 = now_ms();
        if (queue_lease_release(q, key, value) != QUEUE_OK) die("queue_lease_release", q->errstr);
        double t3 = now_ms();
        acq[i] = t1 - t0;
        ren[i] = t2 - t1;
        rel[i] = t3 - t2;
        pair[i] = (t1 - t0) + (t3 - t2);
    }
    char d[128];
    describe(d, sizeof(d), pair, (size_t)cycles);
    printf("lease   acquire+release                          %s\n", d);
    describe(d, sizeof(d), acq, (size_t)cycles);
    printf("          acquire                                %s\n", d);
    describe(d, sizeof(d), rel, (size_t)cycles);
    printf("          release                                %s\n", d);
    describe(d, sizeof(d), ren, (size_t)cycles);
    printf("          renew                                  %s\n", d);
    free(acq);
    free(rel);
    free(pair);
    free(ren);
}

static void bench_touch(queue_conn *q) {
    fresh_stream(q);
    queue_work w;
    if (queue_work_add(q, "request", "1") != QUEUE_OK) die("queue_work_add", q->errstr);
    if (queue_work_next(q, "bench-touch", 1000, &w) != QUEUE_OK) die("queue_work_next", q->errstr);
    double *v = lat_alloc((size_t)cycles);
    for (long i = 0; i < cycles; i++) {
        double t0 = now_ms();
        if (queue_work_touch(q, "bench-touch", w.entry_id) != QUEUE_OK) die("queue_work_touch", q->errstr);
        v[i] = now_ms() - t0;
    }
    char d[128];
    describe(d, sizeof(d), v, (size_t)cycles);
    printf("touch   work touch (XPENDING+XCLAIM in Lua)      %s\n", d);
    /* Nothing is stale (the one pending entry was just touched): the worker's periodic look. */
    for (long i = 0; i < cycles; i++) {
        queue_work s;
        double t0 = now_ms();
        if (queue_work_claim_stale(q, "bench-other", 60000, &s) != QUEUE_ERR_EMPTY)
            die("queue_work_claim_stale", "took an entry that is not stale");
        v[i] = now_ms() - t0;
    }
    describe(d, sizeof(d), v, (size_t)cycles);
    printf("claim   claim_stale, nothing stale (XAUTOCLAIM)  %s\n", d);
    free(v);
}

int main(int argc, char **argv) {
    const char *port = getenv("NOMATRON_REDIS_PORT");
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/14", port && *port ? port : "6379");
    char consumers[128] = "1,2,4,8";
    bool floor_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--floor-only") == 0) {
            floor_only = true;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            printf("usage: bench_queue [--redis URL] [--cycles N] [--consumers 1,2,4,8] [--window W] [--floor-only]\n");
            return 0;
        }
        if (i + 1 >= argc) die(a, "needs a value");
        const char *v = argv[++i];
        if (strcmp(a, "--redis") == 0) snprintf(url, sizeof(url), "%s", v);
        else if (strcmp(a, "--cycles") == 0) cycles = strtol(v, NULL, 10);
        else if (strcmp(a, "--window") == 0) window = strtol(v, NULL, 10);
        else if (strcmp(a, "--consumers") == 0) snprintf(consumers, sizeof(consumers), "%s", v);
        else die(a, "unknown option");
    }
    if (cycles < 1 || cycles > 10000000) die("--cycles", "wants 1..10000000");
    if (window < 1) die("--window", "wants at least 1");

    claim_database();
    queue_conn q;
    qconnect(&q);
    raw_cmd(&q, "FLUSHDB");
    double load[1] = {0};
    if (getloadavg(load, 1) < 1) load[0] = -1;
    /* The URL is printed without its password, if any. */
    const char *at = strrchr(url, '@');
    printf("bench_queue: redis://%s, %ld operations per measurement, load average %.2f\n",
           at ? at + 1 : url + (strncmp(url, "redis://", 8) == 0 ? 8 : 0), cycles, load[0]);
    bench_floor(&q);
    if (!floor_only) {
        bench_serial(&q);
        char list[128];
        snprintf(list, sizeof(list), "%s", consumers);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int k = atoi(t);
            if (k < 1 || k > MAX_CONSUMERS) die("--consumers", "each count wants 1..64");
            bench_pc(&q, k);
        }
        bench_lease(&q);
        bench_touch(&q);
    }
    raw_cmd(&q, "FLUSHDB");
    queue_close(&q);
    return 0;
}
