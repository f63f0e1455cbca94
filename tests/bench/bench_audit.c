/* Benchmarks of the audit trail (docs/BENCHMARKS.md, "Audit trail").
 * Not run by ctest: each mode prints one line of figures.
 *
 *   bench_audit append  --writers N --seconds S --sync on|off [--appender on|off] [--leaders L] [--processes P]
 *       chained appends (audit_request_create: a request row and its event in
 *       one transaction) from N threads, each with its own connection;
 *       appends/s and per-append latency percentiles, beside the floor: one
 *       bare INSERT+COMMIT on the same connection settings. --appender on
 *       (the default) attaches one group-commit appender shared by the N
 *       connections, as a worker process does (--leaders: batches in flight
 *       at once, default 1); off = each append alone. The line ends with the
 *       appender's count of transactions and appends per transaction.
 *       --processes P splits the N writers over P processes, each with its
 *       own appender, as several worker processes share one chain.
 *   bench_audit fill    --events N        a valid chain of N events (COPY, hashes computed here),
 *                                         N/10 requests, one recorded message per request
 *   bench_audit lookup  --count K         audit_lookup by message ts / permalink, percentiles
 *   bench_audit verify                    audit_verify over the whole chain; audit_export to a
 *                                         file and the offline verify of it
 *
 * PG_CONNINFO names the database; everything happens in the schema
 * bench_audit (fill and append recreate it). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "audit.h"
#include "canon.h"
#include "export.h"

#define SCHEMA "bench_audit"

static const char *base;
static char conninfo[1024];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why) {
    fprintf(stderr, "bench_audit: %s: %s\n", what, why);
    exit(1);
}

static PGconn *raw(void) {
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) die("connect", PQerrorMessage(c));
    return c;
}

static void run(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) die(sql, PQerrorMessage(c));
    PQclear(r);
}

static void fresh_schema(void) {
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) != CONNECTION_OK) die("connect", PQerrorMessage(c));
    run(c, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS " SCHEMA " CASCADE; CREATE SCHEMA " SCHEMA);
    PQfinish(c);
    audit_db db;
    if (audit_connect(&db, conninfo) != AUDIT_OK || audit_migrate(&db, NULL) != AUDIT_OK) die("migrate", db.errstr);
    audit_close(&db);
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

/* ---- append ---- */

typedef struct writer {
    pthread_t th;
    double seconds;
    bool sync;
    audit_appender *appender;   /* shared; NULL = off */
    double *lat;
    size_t n, cap;
    double server_cpu;          /* its backend's CPU seconds, -1 if unknown */
    char err[256];
} writer;

/* CPU seconds (user + system) a local process has used, from /proc; -1 if
 * it cannot be read (the server on another host, another user's process). */
static double proc_cpu(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void set_sync(void *conn, bool on) {
    run(conn, on ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
}

static void *writer_main(void *p) {
    writer *w = p;
    audit_db db;
    if (audit_connect(&db, conninfo) != AUDIT_OK) {
        snprintf(w->err, sizeof(w->err), "%s", db.errstr);
        return NULL;
    }
    set_sync(db.conn, w->sync);
    audit_db_set_appender(&db, w->appender);
    audit_new_request r = {.kind = "deploy", .env = "staging", .job = "api", .version = "v2",
                           .to_image = "registry.example.com/api:v2", .canary = -1, .actor = "shell:bench",
                           .state = "queued", .origin = {.platform = "shell", .channel = "shell:console"}};
    double end = now_s() + w->seconds;
    for (;;) {
        double t0 = now_s();
        if (t0 >= end) break;
        int64_t id;
        bool existed;
        if (audit_request_create(&db, &r, &id, &existed) != AUDIT_OK) {
            snprintf(w->err, sizeof(w->err), "%s", db.errstr);
            break;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 65536;
            w->lat = realloc(w->lat, w->cap * sizeof(double));
            if (!w->lat) die("append", "out of memory");
        }
        w->lat[w->n++] = now_s() - t0;
    }
    /* A backend lives as long as its connection: all its CPU is this run's. */
    w->server_cpu = proc_cpu(PQbackendPID(db.conn));
    audit_close(&db);
    return NULL;
}

/* The floor: one INSERT + COMMIT of a small row, nothing else, same settings. */
static void commit_floor(bool sync, double *p50, double *p99) {
    PGconn *c = raw();
    set_sync(c, sync);
    /* a logged table in the bench schema: a temp table would skip the WAL */
    run(c, "CREATE TABLE IF NOT EXISTS floor_t (id bigint)");
    enum { N = 2000 };
    static double lat[N];
    for (int i = 0; i < N; i++) {
        double t0 = now_s();
        run(c, "INSERT INTO floor_t VALUES (1)");
        lat[i] = now_s() - t0;
    }
    qsort(lat, N, sizeof(double), cmp_d);
    *p50 = pct(lat, N, 50);
    *p99 = pct(lat, N, 99);
    PQfinish(c);
}

/* One process's share of the writers: their latencies (owned by the caller)
 * and the appender's figures. */
typedef struct share {
    size_t n;
    double *lat;
    audit_appender_stats st;
    double client_cpu, server_cpu;  /* seconds; server_cpu < 0: unknown */
} share;

static void run_writers(int writers, double seconds, bool sync, bool group, int leaders, share *out) {
    writer *w = calloc((size_t)writers, sizeof(*w));
    audit_appender *app = group ? audit_appender_new(0, leaders) : NULL;
    if (!w || (group && !app)) die("append", "cannot create the writers or the appender");
    for (int i = 0; i < writers; i++) {
        w[i].seconds = seconds;
        w[i].sync = sync;
        w[i].appender = app;
        pthread_create(&w[i].th, NULL, writer_main, &w[i]);
    }
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < writers; i++) {
        pthread_join(w[i].th, NULL);
        if (w[i].err[0]) die("writer", w[i].err);
        out->n += w[i].n;
        if (out->server_cpu >= 0) out->server_cpu = w[i].server_cpu < 0 ? -1 : out->server_cpu + w[i].server_cpu;
    }
    out->client_cpu = proc_cpu(getpid()); /* the writers' process: nothing else ran in it yet but the migration */
    out->lat = malloc((out->n + 1) * sizeof(double));
    if (!out->lat) die("append", "out of memory");
    size_t k = 0;
    for (int i = 0; i < writers; i++) {
        memcpy(out->lat + k, w[i].lat, w[i].n * sizeof(double));
        k += w[i].n;
        free(w[i].lat);
    }
    if (app) audit_appender_stats_get(app, &out->st);
    audit_appender_free(app);
    free(w);
}

static void read_all(int fd, void *buf, size_t len) {
    for (char *p = buf; len > 0;) {
        ssize_t r = read(fd, p, len);
        if (r <= 0) die("append", "a writer process ended early");
        p += r;
        len -= (size_t)r;
    }
}

static void write_all(int fd, const void *buf, size_t len) {
    for (const char *p = buf; len > 0;) {
        ssize_t r = write(fd, p, len);
        if (r <= 0) _exit(1);
        p += r;
        len -= (size_t)r;
    }
}

/* --processes P: the writers split over P processes, each with its own
 * appender, as several worker processes append to one chain. */
static int cmd_append(int writers, double seconds, bool sync, bool group, int leaders, int processes) {
    fresh_schema();
    double t0 = now_s();
    share *sh = calloc((size_t)processes, sizeof(*sh));
    if (!sh) die("append", "out of memory");
    if (processes == 1) {
        run_writers(writers, seconds, sync, group, leaders, &sh[0]);
    } else {
        int fds[64];
        pid_t pids[64];
        for (int p = 0; p < processes; p++) {
            int pfd[2];
            if (pipe(pfd) != 0) die("append", "pipe");
            pids[p] = fork();
            if (pids[p] < 0) die("append", "fork");
            if (pids[p] == 0) {
                close(pfd[0]);
                share mine;
                run_writers(writers / processes + (p < writers % processes), seconds, sync, group, leaders, &mine);
                write_all(pfd[1], &mine.n, sizeof(mine.n));
                write_all(pfd[1], &mine.st, sizeof(mine.st));
                write_all(pfd[1], &mine.client_cpu, sizeof(mine.client_cpu));
                write_all(pfd[1], &mine.server_cpu, sizeof(mine.server_cpu));
                write_all(pfd[1], mine.lat, mine.n * sizeof(double));
                _exit(0);
            }
            close(pfd[1]);
            fds[p] = pfd[0];
        }
        for (int p = 0; p < processes; p++) {
            read_all(fds[p], &sh[p].n, sizeof(sh[p].n));
            read_all(fds[p], &sh[p].st, sizeof(sh[p].st));
            read_all(fds[p], &sh[p].client_cpu, sizeof(sh[p].client_cpu));
            read_all(fds[p], &sh[p].server_cpu, sizeof(sh[p].server_cpu));
            sh[p].lat = malloc((sh[p].n + 1) * sizeof(double));
            if (!sh[p].lat) die("append", "out of memory");
            read_all(fds[p], sh[p].lat, sh[p].n * sizeof(double));
            close(fds[p]);
            int status = 0;
            if (waitpid(pids[p], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("append", "a writer process failed");
        }
    }
    double el = now_s() - t0;
    size_t total = 0;
    audit_appender_stats st = {0};
    double client_cpu = 0, server_cpu = 0;
    for (int p = 0; p < processes; p++) {
        total += sh[p].n;
        st.batches += sh[p].st.batches;
        st.writes += sh[p].st.writes;
        st.alone += sh[p].st.alone;
        st.multi += sh[p].st.multi;
        st.multi_fallback += sh[p].st.multi_fallback;
        client_cpu += sh[p].client_cpu;
        server_cpu = server_cpu < 0 || sh[p].server_cpu < 0 ? -1 : server_cpu + sh[p].server_cpu;
        if (sh[p].st.largest > st.largest) st.largest = sh[p].st.largest;
    }
    double *all = malloc((total + 1) * sizeof(double));
    if (!all) die("append", "out of memory");
    size_t k = 0;
    for (int p = 0; p < processes; p++) {
        memcpy(all + k, sh[p].lat, sh[p].n * sizeof(double));
        k += sh[p].n;
        free(sh[p].lat);
    }
    free(sh);
    if (!total) die("append", "no appends");
    qsort(all, total, sizeof(double), cmp_d);
    audit_db db;
    int64_t broken = 0;
    if (audit_connect(&db, conninfo) != AUDIT_OK || audit_verify(&db, 0, &broken) != AUDIT_OK)
        die("verify after append", db.errstr);
    audit_close(&db);
    double f50, f99;
    commit_floor(sync, &f50, &f99);
    char batches[192] = "";
    if (group)
        snprintf(batches, sizeof(batches), " (%" PRIu64 " transactions, %.1f appends each, largest %d; %" PRIu64
                 " ran alone; %" PRIu64 " multi-row, %" PRIu64 " fell back)", st.batches,
                 st.batches ? (double)st.writes / (double)st.batches : 0.0, st.largest, st.alone, st.multi,
                 st.multi_fallback);
    char cpu[160] = "";
    if (server_cpu >= 0)
        snprintf(cpu, sizeof(cpu), "; CPU per append: PostgreSQL backends %.0f us, bench %.0f us",
                 server_cpu / (double)total * 1e6, client_cpu / (double)total * 1e6);
    printf("append writers=%d processes=%d synchronous_commit=%s appender=%s: %zu appends%s in %.1f s = %.0f/s; "
           "latency p50 %.2f ms p99 %.2f ms max %.2f ms; floor (one INSERT+COMMIT) p50 %.2f ms p99 %.2f ms%s; "
           "chain verified\n",
           writers, processes, sync ? "on" : "off", group ? "on" : "off", total, batches, el, (double)total / el,
           pct(all, total, 50) * 1e3, pct(all, total, 99) * 1e3, all[total - 1] * 1e3, f50 * 1e3, f99 * 1e3, cpu);
    free(all);
    return 0;
}

/* ---- fill ---- */

static void copy_begin(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) die(sql, PQerrorMessage(c));
    PQclear(r);
}

static void copy_line(PGconn *c, const char *line, size_t n) {
    if (PQputCopyData(c, line, (int)n) != 1) die("COPY", PQerrorMessage(c));
}

static void copy_end(PGconn *c) {
    if (PQputCopyEnd(c, NULL) != 1) die("COPY end", PQerrorMessage(c));
    PGresult *r;
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) die("COPY", PQerrorMessage(c));
        PQclear(r);
    }
}

static void msg_ts(int64_t req, char out[32]) { snprintf(out, 32, "1790000000.%06" PRId64, req % 1000000); }

static int cmd_fill(int64_t events) {
    fresh_schema();
    PGconn *c = raw();
    int64_t requests = events / 10;
    double t0 = now_s();
    /* requests, each with a message ts and permalink */
    copy_begin(c, "COPY requests (id, kind, state, env, job, actor, platform, channel, message_ref, permalink) FROM STDIN");
    char line[4096], ts[32];
    for (int64_t r = 1; r <= requests; r++) {
        msg_ts(r, ts);
        int n = snprintf(line, sizeof(line),
                         "%" PRId64 "\tdeploy\tsucceeded\tstaging\tjob%" PRId64 "\tslack:U%" PRId64
                         "\tslack\tslack:C0PROD\t%s.0\thttps://acme.slack.com/archives/C0PROD/p%" PRId64 "0\n",
                         r, r % 50, r % 20, ts, r);
        copy_line(c, line, (size_t)n);
    }
    copy_end(c);
    run(c, "SELECT setval('requests_id_seq', (SELECT max(id) FROM requests))");
    /* one posted message per request */
    copy_begin(c, "COPY audit_messages (request_id, direction, platform, channel, message_ref, permalink) FROM STDIN");
    for (int64_t r = 1; r <= requests; r++) {
        msg_ts(r, ts);
        int n = snprintf(line, sizeof(line),
                         "%" PRId64 "\tout\tslack\tslack:C0PROD\t%s\thttps://acme.slack.com/archives/C0PROD/p%" PRId64
                         "1\n",
                         r, ts, r);
        copy_line(c, line, (size_t)n);
    }
    copy_end(c);
    /* the chain */
    static const char *const actions[] = {"request.created", "approval.granted", "deploy.started",
                                          "deploy.registered", "message.out",      "deploy.progress",
                                          "deploy.progress",   "deploy.progress",  "deploy.succeeded",
                                          "message.out"};
    copy_begin(c, "COPY audit_events (id, request_id, at, action, actor, outcome, env, job, to_image, detail, platform, "
           "channel, message_ref, enc_version, prev_hash, hash) FROM STDIN");
    char prev[65] = AUDIT_GENESIS_HASH, hash[65], at[40], job[16], img[64], detail[64], ref[32];
    int64_t at0 = 1790000000000000LL;
    for (int64_t i = 1; i <= events; i++) {
        int64_t req = (i - 1) / 10 + 1;
        snprintf(job, sizeof(job), "job%" PRId64, req % 50);
        snprintf(img, sizeof(img), "registry.example.com/%s:v%" PRId64, job, req);
        snprintf(detail, sizeof(detail), "2/2 healthy, 2 placed, 0 unhealthy (%" PRId64 ")", i);
        const char *action = actions[(i - 1) % 10];
        bool is_msg = strcmp(action, "message.out") == 0;
        msg_ts(req, ref);
        audit_event e = {.id = i, .request_id = req <= requests ? req : 0, .at_us = at0 + i * 1000,
                         .enc_version = 1, .action = action, .actor = "nomatron:worker/bench",
                         .outcome = "ok", .env = "staging", .job = job, .to_image = img, .nomad_job_version = -1,
                         .detail = detail, .platform = "slack", .channel = "slack:C0PROD",
                         .message_ref = is_msg ? ref : NULL, .prev_hash = prev};
        if (audit_canon_event_hash(&e, hash) != AUDIT_CANON_OK) die("fill", "hash");
        audit_format_us(e.at_us, at);
        char reqs[24];
        if (e.request_id) snprintf(reqs, sizeof(reqs), "%" PRId64, e.request_id);
        else snprintf(reqs, sizeof(reqs), "\\N");
        int n = snprintf(line, sizeof(line),
                         "%" PRId64 "\t%s\t%s\t%s\t%s\tok\tstaging\t%s\t%s\t%s\tslack\tslack:C0PROD\t%s\t1\t%s\t%s\n",
                         i, reqs, at, action, e.actor, job, img, detail, is_msg ? ref : "\\N", prev, hash);
        copy_line(c, line, (size_t)n);
        memcpy(prev, hash, sizeof(prev));
    }
    copy_end(c);
    run(c, "ANALYZE requests; ANALYZE audit_messages; ANALYZE audit_events");
    printf("fill: %" PRId64 " events, %" PRId64 " requests, %" PRId64 " messages in %.1f s\n", events, requests,
           requests, now_s() - t0);
    PQfinish(c);
    return 0;
}

/* ---- lookup ---- */

static int cmd_lookup(int count) {
    audit_db db;
    if (audit_connect(&db, conninfo) != AUDIT_OK) die("connect", db.errstr);
    PGresult *r = PQexec(db.conn, "SELECT max(id), (SELECT count(*) FROM audit_events) FROM requests");
    int64_t requests = strtoll(PQgetvalue(r, 0, 0), NULL, 10), events = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (requests < 1) die("lookup", "run fill first");
    const char *kinds[] = {"message ts", "permalink", "unknown message"};
    for (int k = 0; k < 3; k++) {
        double *lat = malloc((size_t)count * sizeof(double));
        srand(42);
        for (int i = 0; i < count; i++) {
            int64_t req = (int64_t)(((uint64_t)rand() * RAND_MAX + (uint64_t)rand()) % (uint64_t)requests) + 1;
            char ref[128];
            if (k == 0) msg_ts(req, ref);
            else if (k == 1) snprintf(ref, sizeof(ref), "https://acme.slack.com/archives/C0PROD/p%" PRId64 "1", req);
            else snprintf(ref, sizeof(ref), "1600000000.%06d", i);
            int64_t got = 0;
            double t0 = now_s();
            int rc = audit_lookup(&db, ref, &got);
            lat[i] = now_s() - t0;
            if (k < 2 && rc != AUDIT_OK) die("lookup", db.errstr);
            if (k == 2 && rc != AUDIT_ERR_NOT_FOUND) die("lookup", "unknown message found");
        }
        qsort(lat, (size_t)count, sizeof(double), cmp_d);
        printf("lookup by %s at %" PRId64 " events: %d lookups, p50 %.3f ms p99 %.3f ms max %.3f ms\n", kinds[k],
               events, count, pct(lat, (size_t)count, 50) * 1e3, pct(lat, (size_t)count, 99) * 1e3,
               lat[count - 1] * 1e3);
        free(lat);
    }
    /* the floor: the cheapest round trip */
    double *lat = malloc((size_t)count * sizeof(double));
    for (int i = 0; i < count; i++) {
        double t0 = now_s();
        r = PQexecParams(db.conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
        PQclear(r);
        lat[i] = now_s() - t0;
    }
    qsort(lat, (size_t)count, sizeof(double), cmp_d);
    printf("floor (SELECT 1): p50 %.3f ms p99 %.3f ms\n", pct(lat, (size_t)count, 50) * 1e3,
           pct(lat, (size_t)count, 99) * 1e3);
    free(lat);
    audit_close(&db);
    return 0;
}

/* ---- verify ---- */

static int cmd_verify(const char *path) {
    audit_db db;
    if (audit_connect(&db, conninfo) != AUDIT_OK) die("connect", db.errstr);
    int64_t broken = 0;
    double t0 = now_s();
    if (audit_verify(&db, 0, &broken) != AUDIT_OK) die("verify", db.errstr);
    double el = now_s() - t0;
    int64_t n = strtoll(db.errstr, NULL, 10);
    printf("verify (database): %" PRId64 " events in %.2f s = %.0f events/s\n", n, el, (double)n / el);
    FILE *out = fopen(path, "w");
    if (!out) die(path, "cannot write");
    t0 = now_s();
    int64_t count = 0;
    if (audit_export(&db, NULL, AUDIT_EXPORT_JSONL, out, &count) != AUDIT_OK) die("export", db.errstr);
    fclose(out);
    el = now_s() - t0;
    printf("export jsonl: %" PRId64 " events in %.2f s = %.0f events/s\n", count, el, (double)count / el);
    audit_fverify v;
    t0 = now_s();
    if (audit_verify_file(path, &v) != AUDIT_OK) die("verify --file", v.why);
    el = now_s() - t0;
    printf("verify --file: %" PRId64 " events in %.2f s = %.0f events/s\n", v.events, el, (double)v.events / el);
    audit_fverify_free(&v);
    audit_close(&db);
    return 0;
}

int main(int argc, char **argv) {
    base = getenv("PG_CONNINFO");
    if (!base || !base[0]) die("PG_CONNINFO", "not set");
    snprintf(conninfo, sizeof(conninfo), "%s options='-c search_path=" SCHEMA "'", base);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_audit append|fill|lookup|verify [options]\n");
        return 2;
    }
    int writers = 1, count = 10000, leaders = 0, processes = 1;
    double seconds = 10;
    bool sync = false, group = true;
    int64_t events = 1000000;
    const char *file = "/tmp/bench_audit_export.jsonl";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--writers") == 0) writers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--sync") == 0) sync = strcmp(argv[i + 1], "on") == 0;
        else if (strcmp(argv[i], "--appender") == 0) group = strcmp(argv[i + 1], "off") != 0;
        else if (strcmp(argv[i], "--leaders") == 0) leaders = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--processes") == 0) processes = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--events") == 0) events = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--count") == 0) count = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--file") == 0) file = argv[i + 1];
        else die(argv[i], "unknown option");
    }
    if (writers < 1 || writers > 64 || count < 1 || events < 10 || processes < 1 || processes > writers)
        die("options", "out of range");
    if (strcmp(argv[1], "append") == 0) return cmd_append(writers, seconds, sync, group, leaders, processes);
    if (strcmp(argv[1], "fill") == 0) return cmd_fill(events);
    if (strcmp(argv[1], "lookup") == 0) return cmd_lookup(count);
    if (strcmp(argv[1], "verify") == 0) return cmd_verify(file);
    die(argv[1], "unknown mode");
    return 2;
}
