/* The group-commit appender (audit/appender.c, the batch in audit/requests.c)
 * against a real PostgreSQL (PG_CONNINFO; PG_ADMIN_CONNINFO for the test
 * that kills a leader's backend, skipped without it).
 *
 * Batches are made deterministic with a plug: a connection of the test holds
 * the chain lock in an open transaction, one thread's write becomes the
 * leader and waits for that lock, and the writes under test queue up behind
 * it; when the test lets the lock go, the next leader takes all of them into
 * one transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "audit.h"
#include "pg_fixture.h"

#define CHAIN_KEY "7165915744170344002" /* AUDIT_LOCK_CHAIN, docs/AUDIT.md */
#define DEAD_DSN "host=127.0.0.1 port=1 connect_timeout=2"

/* ---- helpers ---- */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* First column of the first row (malloc'ed; "<NULL>" for NULL; NULL if none or failed). */
static char *q1(fixture *f, const char *sql, const char *a, const char *b) {
    const char *p[] = {a, b};
    return fixture_value(f, sql, b ? 2 : a ? 1 : 0, p);
}

static long long qnum2(fixture *f, const char *sql, const char *a, const char *b) {
    char *s = q1(f, sql, a, b);
    if (!s) fail_msg("no row: %s", sql);
    long long v = strtoll(s, NULL, 10);
    free(s);
    return v;
}

static long long qnum(fixture *f, const char *sql) { return qnum2(f, sql, NULL, NULL); }

static void expect_intact(fixture *f) {
    int64_t broken = -1;
    int rc = audit_verify(&f->db, 0, &broken);
    if (rc != AUDIT_OK) fail_msg("verify: %s (event %lld)", f->db.errstr, (long long)broken);
}

static audit_new_request sample(const char *idem, const char *actor) {
    audit_new_request r = {
        .idem_key = idem, .kind = "deploy", .env = "staging", .job = "api", .version = "v2",
        .to_image = "registry.example/api:v2", .canary = -1, .user_reason = "ship it", .actor = actor,
        .state = "queued", .origin = {.platform = "shell", .channel = "shell:console", .route = "shell:s1"},
    };
    return r;
}

/* Creates a request on the fixture's own connection (no appender). */
static int64_t create_plain(fixture *f, audit_new_request r) {
    int64_t id = 0;
    bool existed = true;
    if (audit_request_create(&f->db, &r, &id, &existed) != AUDIT_OK) fail_msg("create: %s", f->db.errstr);
    assert_false(existed);
    return id;
}

/* A connection holding the chain lock in an open transaction (the plug). */
static PGconn *hold_chain(fixture *f) {
    PGconn *c = PQconnectdb(f->conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "BEGIN; SELECT pg_advisory_xact_lock(" CHAIN_KEY ")");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    return c;
}

static void release(PGconn *c) {
    PGresult *r = PQexec(c, "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

/* Waits (20 s at most) until the appender shows `leaders` batches running
 * and `pending` writes queued; batches >= 0 also waits for that many batches. */
static void wait_stats(audit_appender *a, int leaders, int pending, long batches) {
    audit_appender_stats st;
    for (int i = 0; i < 20000; i++) {
        audit_appender_stats_get(a, &st);
        if (st.leaders == leaders && st.pending == pending && (batches < 0 || (long)st.batches == batches)) return;
        sleep_ms(1);
    }
    fail_msg("appender never reached leaders=%d pending=%d batches=%ld (has %d, %d, %llu)", leaders, pending, batches,
             st.leaders, st.pending, (unsigned long long)st.batches);
}

/* ---- threads: one connection each, sharing the appender ---- */

typedef struct job job;
typedef int (*job_fn)(audit_db *db, job *j);

struct job {
    const char *conninfo;       /* NULL: a connection that is already broken */
    audit_appender *app;
    job_fn fn, again_fn;        /* again_fn (may be NULL) runs once *again is set */
    atomic_bool *again;
    /* inputs */
    const char *idem, *actor, *text;
    int64_t id;
    int variant;
    /* outputs */
    int rc, rc_again;
    int64_t out_id;
    bool existed, counted;
    char err[256];
    int pid;
    atomic_bool finished;
    pthread_t th;
};

static void *job_main(void *arg) {
    job *j = arg;
    audit_db db;
    if (audit_connect(&db, j->conninfo ? j->conninfo : DEAD_DSN) != AUDIT_OK && j->conninfo) {
        j->rc = -1;
        snprintf(j->err, sizeof(j->err), "connect: %s", db.errstr);
        audit_close(&db);
        atomic_store(&j->finished, true);
        return NULL;
    }
    audit_db_set_appender(&db, j->app);
    j->pid = PQstatus(db.conn) == CONNECTION_OK ? PQbackendPID(db.conn) : 0;
    j->rc = j->fn(&db, j);
    snprintf(j->err, sizeof(j->err), "%s", db.errstr);
    atomic_store(&j->finished, true);
    if (j->again_fn) {
        while (!atomic_load(j->again)) sleep_ms(2);
        audit_ping(&db); /* what callers do after AUDIT_ERR_CONNECT: reconnect */
        j->rc_again = j->again_fn(&db, j);
        if (j->rc_again) snprintf(j->err, sizeof(j->err), "%s", db.errstr);
    }
    audit_close(&db);
    return NULL;
}

static void start(job *j) { assert_int_equal(pthread_create(&j->th, NULL, job_main, j), 0); }

static void join(job *j) { pthread_join(j->th, NULL); }

static int do_refusal(audit_db *db, job *j);

/* Holds the chain lock from another connection and starts a writer whose
 * refusal leads a batch that waits on it: the writes started next queue
 * behind it and make the next batch, after release(*plug) and join(p). */
static void plug_chain(fixture *f, audit_appender *app, PGconn **plug, job *p) {
    *plug = hold_chain(f);
    *p = (job){.conninfo = f->conninfo, .app = app, .fn = do_refusal, .actor = "shell:plug"};
    start(p);
    wait_stats(app, 1, 0, 1);
}

static int do_create(audit_db *db, job *j) {
    audit_new_request r = sample(j->idem, j->actor);
    if (j->variant == 1) { /* needs approvals: one open request per (env, job) */
        r.env = "prod";
        r.state = "pending_approval";
        r.required_approvals = 1;
    }
    if (j->text) {
        r.user_reason = j->text;
        r.origin.permalink = j->text;
    }
    return audit_request_create(db, &r, &j->out_id, &j->existed);
}

static int do_create_again(audit_db *db, job *j) {
    char idem[96];
    snprintf(idem, sizeof(idem), "%s-again", j->idem);
    audit_new_request r = sample(idem, j->actor);
    return audit_request_create(db, &r, &j->out_id, &j->existed);
}

static int do_refusal(audit_db *db, job *j) {
    return audit_refusal(db, NULL, j->actor, NULL, "prod", "api", "frozen", "prod is frozen");
}

static int do_move(audit_db *db, job *j) {
    /* variant 0: queued -> running with two notes; 1: running -> succeeded */
    audit_transition t = {.from_state = j->variant ? "running" : "queued",
                          .to_state = j->variant ? "succeeded" : "running", .action = "deploy.started",
                          .actor = j->actor, .outcome = j->text, .detail = j->text, .nomad_job_version = -1};
    audit_note notes[4] = {{.action = "deploy.note", .detail = j->text},
                           {.action = "deploy.note2", .detail = j->text},
                           {.action = "deploy.note3", .detail = j->text},
                           {.action = "deploy.note4", .detail = j->text}};
    return audit_request_transition_notes(db, j->id, &t, notes, j->variant ? 0 : 2);
}

static int do_approve_wrong(audit_db *db, job *j) {
    /* A completing transition from a state the request is not in: the
     * approval row this statement inserts must be undone with it. */
    audit_transition t = {.from_state = "queued", .to_state = "running", .action = "request.approved",
                          .actor = j->actor, .nomad_job_version = -1};
    return audit_approval_add(db, j->id, j->actor, "bob", &j->counted, &t);
}

/* ---- tests ---- */

/* N threads x M iterations of create + transition (3 events) + message: the
 * chain verifies, the counts are exact, and every caller got its own ids. */
enum { MANY_N = 8, MANY_M = 25 };

typedef struct many {
    job j;                      /* first: job_main passes &j */
    int64_t ids[MANY_M];
    char idem[MANY_M][32];
} many;

static int do_many(audit_db *db, job *j) {
    many *w = (many *)j;
    for (int k = 0; k < MANY_M; k++) {
        snprintf(w->idem[k], sizeof(w->idem[k]), "%s-%d", j->actor, k);
        audit_new_request r = sample(w->idem[k], j->actor);
        bool existed = true;
        int rc = audit_request_create(db, &r, &w->ids[k], &existed);
        if (rc) return rc;
        if (existed || w->ids[k] <= 0) return 100; /* not an audit code: a wrong answer */
        audit_transition t = {.from_state = "queued", .to_state = "running", .action = "deploy.started",
                              .actor = j->actor, .outcome = w->idem[k], .nomad_job_version = -1};
        audit_note note = {.action = "deploy.note", .detail = w->idem[k]};
        if ((rc = audit_request_transition_notes(db, w->ids[k], &t, &note, 1))) return rc;
        audit_origin msg = {.platform = "slack", .channel = "slack:C1", .message_ref = w->idem[k]};
        if ((rc = audit_message_record(db, w->ids[k], &msg, "out", NULL))) return rc;
    }
    return AUDIT_OK;
}

static void test_group_many(void **state) {
    fixture *f = *state;
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    static many w[MANY_N];
    memset(w, 0, sizeof(w));
    char actors[MANY_N][32];
    for (int i = 0; i < MANY_N; i++) {
        snprintf(actors[i], sizeof(actors[i]), "shell:w%d", i);
        w[i].j = (job){.conninfo = f->conninfo, .app = app, .fn = do_many, .actor = actors[i]};
        start(&w[i].j);
    }
    for (int i = 0; i < MANY_N; i++) {
        join(&w[i].j);
        if (w[i].j.rc != AUDIT_OK) fail_msg("writer %d: %d %s", i, w[i].j.rc, w[i].j.err);
    }
    long long n = MANY_N * MANY_M;
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), n);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 4 * n);
    assert_int_equal(qnum(f, "SELECT max(id) FROM audit_events"), 4 * n);
    /* each caller's ids are its own request, and its events are consecutive */
    for (int i = 0; i < MANY_N; i++)
        for (int k = 0; k < MANY_M; k++) {
            char ids[24];
            snprintf(ids, sizeof(ids), "%lld", (long long)w[i].ids[k]);
            char *idem = q1(f,
                            "SELECT idem_key FROM requests WHERE id = $1::bigint AND actor = $2"
                            " AND state = 'running'",
                            ids, actors[i]);
            if (!idem || strcmp(idem, w[i].idem[k]) != 0)
                fail_msg("D-%s: idem %s, expected %s", ids, idem ? idem : "(none)", w[i].idem[k]);
            free(idem);
            assert_int_equal(qnum2(f,
                                   "SELECT count(*) FROM audit_events WHERE request_id = $1::bigint AND"
                                   " (action = 'message.out' AND message_ref = $2 OR outcome = $2 OR detail = $2"
                                   "  OR action = 'request.created')",
                                   ids, w[i].idem[k]),
                             4);
        }
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events a JOIN audit_events b ON b.id = a.id + 1"
                             " WHERE a.action = 'deploy.started' AND b.action = 'deploy.note'"
                             " AND b.request_id = a.request_id AND b.detail = a.outcome"),
                     n);
    expect_intact(f);
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.writes, 3 * n);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.leaders, 0);
    assert_true(st.batches >= 1 && st.batches <= st.writes);
    fprintf(stderr, "group commit: %llu writes in %llu transactions, largest %d\n", (unsigned long long)st.writes,
            (unsigned long long)st.batches, st.largest);
    audit_appender_free(app);
}

/* One batch of seven writes, four of which fail or find nothing: each gets
 * its own answer, and the others commit. */
static void test_group_isolated(void **state) {
    fixture *f = *state;
    int64_t a = create_plain(f, sample("pre-a", "shell:pre"));
    int64_t b = create_plain(f, sample("pre-b", "shell:pre"));
    audit_new_request o = sample("pre-o", "shell:pre");
    o.env = "prod";
    o.state = "pending_approval";
    o.required_approvals = 1;
    int64_t open = create_plain(f, o);
    audit_new_request c = sample("pre-c", "shell:pre");
    c.env = "prod";
    c.job = "web";
    c.state = "pending_approval";
    c.required_approvals = 2;
    int64_t cid = create_plain(f, c);
    long long before = qnum(f, "SELECT count(*) FROM audit_events");

    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    enum { K = 7 };
    job js[K] = {
        {.fn = do_create, .idem = "dup", .actor = "shell:a"},
        {.fn = do_create, .idem = "dup", .actor = "shell:b"},
        {.fn = do_move, .id = a, .actor = "nomatron:worker", .text = "moved"},
        {.fn = do_move, .id = b, .variant = 1, .actor = "nomatron:worker", .text = "wrong"},
        {.fn = do_create, .idem = "clash", .actor = "shell:e", .variant = 1},
        {.fn = do_approve_wrong, .id = cid, .actor = "slack:U1"},
        {.fn = do_create, .idem = "good", .actor = "shell:g"},
    };
    for (int i = 0; i < K; i++) {
        js[i].conninfo = f->conninfo;
        js[i].app = app;
        start(&js[i]);
    }
    wait_stats(app, 1, K, 1);
    release(plug);
    join(&p);
    for (int i = 0; i < K; i++) join(&js[i]);
    assert_int_equal(p.rc, AUDIT_OK);
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.largest, K);
    assert_int_equal(st.alone, 0);

    /* the same idempotency key twice in one batch: one creates, the other finds it */
    assert_int_equal(js[0].rc, AUDIT_OK);
    assert_int_equal(js[1].rc, AUDIT_OK);
    assert_true(js[0].existed != js[1].existed);
    assert_int_equal(js[0].out_id, js[1].out_id);
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", (long long)js[0].out_id);
    char *s = q1(f, "SELECT idem_key FROM requests WHERE id = $1::bigint", ids, NULL);
    assert_string_equal(s, "dup");
    free(s);
    /* a transition with notes: three consecutive events */
    if (js[2].rc != AUDIT_OK) fail_msg("move: %s", js[2].err);
    snprintf(ids, sizeof(ids), "%lld", (long long)a);
    s = q1(f, "SELECT state FROM requests WHERE id = $1::bigint", ids, NULL);
    assert_string_equal(s, "running");
    free(s);
    assert_int_equal(qnum2(f, "SELECT max(id) - min(id) + 1 - count(*) FROM audit_events WHERE request_id = $1::bigint"
                              " AND action LIKE 'deploy.%'", ids, NULL),
                     0);
    assert_int_equal(qnum2(f,
                           "SELECT count(*) FROM audit_events WHERE request_id = $1::bigint"
                           " AND action LIKE 'deploy.%'",
                           ids, NULL),
                     3);
    /* a transition from the wrong state: refused, nothing written */
    assert_int_equal(js[3].rc, AUDIT_ERR_STATE);
    if (!strstr(js[3].err, "is queued, not running")) fail_msg("errstr: %s", js[3].err);
    snprintf(ids, sizeof(ids), "%lld", (long long)b);
    s = q1(f, "SELECT state FROM requests WHERE id = $1::bigint", ids, NULL);
    assert_string_equal(s, "queued");
    free(s);
    /* a unique violation (one open request per env/job): AUDIT_ERR_EXISTS naming the open one */
    assert_int_equal(js[4].rc, AUDIT_ERR_EXISTS);
    assert_int_equal(js[4].out_id, open);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests WHERE idem_key = 'clash'"), 0);
    /* a guard that fails after the statement inserted a row: the row is undone too */
    assert_int_equal(js[5].rc, AUDIT_ERR_STATE);
    assert_false(js[5].counted);
    assert_int_equal(qnum(f, "SELECT count(*) FROM request_approvals"), 0);
    /* and the plain one */
    assert_int_equal(js[6].rc, AUDIT_OK);
    assert_false(js[6].existed);
    snprintf(ids, sizeof(ids), "%lld", (long long)js[6].out_id);
    s = q1(f, "SELECT idem_key FROM requests WHERE id = $1::bigint", ids, NULL);
    assert_string_equal(s, "good");
    free(s);
    /* refusal 1 + dup 1 + move 3 + good 1 */
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), before + 6);
    assert_int_equal(qnum(f, "SELECT max(id) FROM audit_events"), before + 6);
    expect_intact(f);
    audit_appender_free(app);
}

/* A write whose row is locked by another transaction leaves the batch after
 * a short wait and runs alone; the rest of the batch does not wait for it. */
static void test_group_lock_wait(void **state) {
    fixture *f = *state;
    int64_t a = create_plain(f, sample("pre-a", "shell:pre"));
    PGconn *row = PQconnectdb(f->conninfo);
    assert_int_equal(PQstatus(row), CONNECTION_OK);
    char sql[128];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT 1 FROM requests WHERE id = %lld FOR UPDATE", (long long)a);
    PGresult *r = PQexec(row, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);

    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    job y = {.conninfo = f->conninfo, .app = app, .fn = do_move, .id = a, .actor = "nomatron:worker", .text = "y"};
    job x = {.conninfo = f->conninfo, .app = app, .fn = do_create, .idem = "x", .actor = "shell:x"};
    start(&y);
    wait_stats(app, 1, 1, 1);
    start(&x);
    wait_stats(app, 1, 2, 1);
    release(plug);
    join(&p);
    join(&x); /* done while the row is still locked */
    assert_int_equal(x.rc, AUDIT_OK);
    assert_false(x.existed);
    sleep_ms(100);
    assert_false(atomic_load(&y.finished)); /* alone now, waiting for the row */
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.alone, 1);
    assert_int_equal(st.largest, 2);
    r = PQexec(row, "COMMIT");
    PQclear(r);
    PQfinish(row);
    join(&y);
    if (y.rc != AUDIT_OK) fail_msg("move: %s", y.err);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests WHERE state = 'running'"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 1 + 1 + 1 + 3);
    expect_intact(f);
    audit_appender_free(app);
}

/* A caller whose connection is already broken never leads: alone it fails as
 * it always did; inside another thread's batch it is served. */
static void test_group_broken_caller(void **state) {
    fixture *f = *state;
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    job d = {.conninfo = NULL, .app = app, .fn = do_refusal, .actor = "shell:dead"};
    start(&d);
    join(&d);
    assert_int_equal(d.rc, AUDIT_ERR_CONNECT);
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.alone, 1);
    assert_int_equal(st.batches, 0);

    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    job d2 = {.conninfo = NULL, .app = app, .fn = do_refusal, .actor = "shell:dead"};
    start(&d2);
    wait_stats(app, 1, 1, 1);
    job l = {.conninfo = f->conninfo, .app = app, .fn = do_refusal, .actor = "shell:live"};
    start(&l);
    wait_stats(app, 1, 2, 1);
    release(plug);
    join(&p);
    join(&d2);
    join(&l);
    assert_int_equal(p.rc, AUDIT_OK);
    assert_int_equal(l.rc, AUDIT_OK);
    if (d2.rc != AUDIT_OK) fail_msg("dead caller: %s", d2.err);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events WHERE actor = 'shell:dead'"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 3);
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.largest, 2);
    assert_int_equal(st.alone, 1);
    expect_intact(f);
    audit_appender_free(app);
}

/* The pid among pids[0..n-1] waiting for an advisory lock (the chain lock), 0 if none yet. */
static int lock_waiter(fixture *f, const int *pids, int n) {
    for (int i = 0; i < n; i++) {
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", pids[i]);
        char *s = q1(f, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND wait_event = 'advisory'", ps,
                     NULL);
        bool waiting = s && strcmp(s, "1") == 0;
        free(s);
        if (waiting) return pids[i];
    }
    return 0;
}

static int wait_lock_waiter(fixture *f, const int *pids, int n) {
    for (int i = 0; i < 20000; i++) {
        int pid = lock_waiter(f, pids, n);
        if (pid) return pid;
        sleep_ms(1);
    }
    fail_msg("no leader ever waited for the chain lock");
    return 0;
}

static void terminate(int pid) {
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
    assert_true(admin_sql(getenv("PG_ADMIN_CONNINFO"), sql));
}

/* The leader's connection is killed while its batch waits for the chain lock:
 * every write of that batch reports an error, nothing of it is in the
 * database, the chain verifies, and the same handles append again after. */
static void test_group_leader_killed(void **state) {
    fixture *f = *state;
    const char *admin = getenv("PG_ADMIN_CONNINFO");
    if (!admin || !admin[0]) {
        fprintf(stderr, "PG_ADMIN_CONNINFO is not set: leader-killed test skipped\n");
        skip();
    }
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    atomic_bool again = false;
    PGconn *plug = hold_chain(f);
    job p = {.conninfo = f->conninfo, .app = app, .fn = do_create, .again_fn = do_create_again, .again = &again,
             .idem = "p", .actor = "shell:p"};
    start(&p);
    wait_stats(app, 1, 0, 1);
    enum { K = 4 };
    job js[K];
    char idems[K][16];
    for (int i = 0; i < K; i++) {
        snprintf(idems[i], sizeof(idems[i]), "k%d", i);
        js[i] = (job){.conninfo = f->conninfo, .app = app, .fn = do_create, .again_fn = do_create_again,
                      .again = &again, .idem = idems[i], .actor = "shell:k"};
        start(&js[i]);
    }
    wait_stats(app, 1, K, 1);
    /* the plug's own batch (one write, the plain path) first */
    int pp[] = {p.pid};
    terminate(wait_lock_waiter(f, pp, 1));
    while (!atomic_load(&p.finished)) sleep_ms(1);
    assert_int_equal(p.rc, AUDIT_ERR_CONNECT);
    /* then the batch of K, led by one of them */
    wait_stats(app, 1, 0, 2);
    int pids[K];
    for (int i = 0; i < K; i++) pids[i] = js[i].pid;
    int leader = wait_lock_waiter(f, pids, K);
    terminate(leader);
    for (int i = 0; i < K; i++)
        while (!atomic_load(&js[i].finished)) sleep_ms(1);
    release(plug);
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.largest, K);
    for (int i = 0; i < K; i++) {
        if (js[i].rc != AUDIT_ERR_CONNECT) fail_msg("write %d: %d %s", i, js[i].rc, js[i].err);
        /* the leader's own error, or the leader's error named as such */
        if (js[i].pid != leader && !strstr(js[i].err, "group commit: "))
            fail_msg("write %d: errstr '%s'", i, js[i].err);
    }
    /* nothing partial: no request and no event of either batch */
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 0);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 0);
    expect_intact(f);
    /* the same handles append again (the leaders after reconnecting) */
    atomic_store(&again, true);
    join(&p);
    for (int i = 0; i < K; i++) join(&js[i]);
    if (p.rc_again != AUDIT_OK) fail_msg("plug again: %s", p.err);
    for (int i = 0; i < K; i++)
        if (js[i].rc_again != AUDIT_OK) fail_msg("write %d again: %s", i, js[i].err);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), K + 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), K + 1);
    assert_int_equal(qnum(f, "SELECT max(id) FROM audit_events"), K + 1);
    expect_intact(f);
    audit_appender_free(app);
}

/* Texts that need escaping, and events large enough that the batch's JSON
 * is split over several statements: every hash still verifies (the stored
 * text is the hashed text) and every text reads back unchanged. */
static void test_group_texts(void **state) {
    fixture *f = *state;
    enum { K = 16, BIG = 60 * 1024 };
    char ctl[40];
    for (int i = 1; i < 32; i++) ctl[i - 1] = (char)i;
    snprintf(ctl + 31, sizeof(ctl) - 31, "\x7f\\\"");
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    for (int i = 0; i < BIG; i++) big[i] = "ab'\"\\\n;$%_\x01{}[]"[i % 16];
    big[BIG] = '\0';
    const char *texts[] = {
        "it's \"quoted\" and \\backslashed\\",
        "'; DROP TABLE audit_events; -- $1 %s %n",
        "line one\nline two\r\n\ttabbed",
        "\xf0\x9f\x9a\x80 ship \xe2\x9c\x85 caf\xc3\xa9 \\u0000 \\u00e9 /slash/",
        ctl,
        "{\"json\": [1, null, \"x\"]}",
        "",
        big,
    };
    enum { T = sizeof(texts) / sizeof(texts[0]) };
    int64_t ids[K];
    for (int i = 0; i < K; i++) {
        char idem[16];
        snprintf(idem, sizeof(idem), "t%d", i);
        ids[i] = create_plain(f, sample(idem, "shell:pre"));
    }
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    job js[K];
    for (int i = 0; i < K; i++) {
        /* every other one a big transition with two big notes: ~1.5 MB of JSON in all */
        js[i] = (job){.conninfo = f->conninfo, .app = app, .fn = do_move, .id = ids[i], .actor = "nomatron:worker",
                      .text = i % 2 ? big : texts[i / 2 % T]};
        start(&js[i]);
    }
    wait_stats(app, 1, K, 1);
    release(plug);
    join(&p);
    for (int i = 0; i < K; i++) {
        join(&js[i]);
        if (js[i].rc != AUDIT_OK) fail_msg("move %d: %s", i, js[i].err);
    }
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.largest, K);
    expect_intact(f);
    for (int i = 0; i < K; i++) {
        char idss[24];
        snprintf(idss, sizeof(idss), "%lld", (long long)ids[i]);
        assert_int_equal(qnum2(f,
                               "SELECT count(*) FROM audit_events WHERE request_id = $1::bigint AND detail = $2"
                               " AND action LIKE 'deploy.%'",
                               idss, js[i].text),
                         3);
        assert_int_equal(qnum2(f, "SELECT count(*) FROM audit_events WHERE request_id = $1::bigint AND outcome = $2",
                               idss, js[i].text),
                         1);
    }
    free(big);
    audit_appender_free(app);
}

/* The gathering leader (docs/AUDIT.md, "Who runs it"): after a batch of K,
 * a write with nobody beside it waits for company once, gives up at the
 * time limit and runs as a batch of one; the next lone write, after a batch
 * of one, does not wait at all. */
static void test_group_gather_gives_up(void **state) {
    fixture *f = *state;
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    enum { K = 3 };
    job js[K];
    char idem[K][8];
    for (int i = 0; i < K; i++) {
        snprintf(idem[i], sizeof(idem[i]), "g%d", i);
        js[i] = (job){.conninfo = f->conninfo, .app = app, .fn = do_create, .idem = idem[i], .actor = "shell:g"};
        start(&js[i]);
    }
    wait_stats(app, 1, K, 1);
    release(plug);
    join(&p);
    for (int i = 0; i < K; i++) {
        join(&js[i]);
        if (js[i].rc != AUDIT_OK) fail_msg("create %d: %s", i, js[i].err);
    }
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.largest, K);
    assert_int_equal(st.gathers, 0);   /* K were queued when the plug's batch of one ended */

    audit_db db;
    assert_int_equal(audit_connect(&db, f->conninfo), AUDIT_OK);
    audit_db_set_appender(&db, app);
    int64_t id;
    bool existed;
    audit_new_request r = sample("lone1", "shell:lone");
    assert_int_equal(audit_request_create(&db, &r, &id, &existed), AUDIT_OK);
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.gathers, 1);
    assert_int_equal(st.gather_timeouts, 1);
    r = sample("lone2", "shell:lone");
    assert_int_equal(audit_request_create(&db, &r, &id, &existed), AUDIT_OK);
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.batches, 4);
    assert_int_equal(st.gathers, 1);   /* the last batch had one: nothing to wait for */
    audit_close(&db);
    expect_intact(f);
    audit_appender_free(app);
}

/* Creates batched together go as ONE multi-row INSERT (audit__multi): texts
 * that need escaping in an array literal arrive unchanged, a key repeated
 * in the batch creates one request, and every caller gets its own id. */
static void test_group_creates_multi(void **state) {
    fixture *f = *state;
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    const char *texts[] = {"NULL", "", "{a,b}", "\"quoted\", \\back\\slash", "line\nbreak\ttab  ",
                           "\xf0\x9f\x9a\x80 caf\xc3\xa9", "'; DROP TABLE requests; --", NULL};
    enum { K = 9 };
    job js[K];
    char idem[K][16];
    for (int i = 0; i < K; i++) {
        snprintf(idem[i], sizeof(idem[i]), "m%d", i == K - 1 ? 0 : i); /* the last repeats the first's key */
        js[i] = (job){.conninfo = f->conninfo, .app = app, .fn = do_create, .idem = idem[i], .actor = "shell:m",
                      .text = i < K - 1 ? texts[i] : "again"};
        if (i == 7) js[i].idem = NULL; /* no key at all */
        start(&js[i]);
    }
    wait_stats(app, 1, K, 1);
    release(plug);
    join(&p);
    for (int i = 0; i < K; i++) {
        join(&js[i]);
        if (js[i].rc != AUDIT_OK) fail_msg("create %d: %s", i, js[i].err);
    }
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.largest, K);
    assert_int_equal(st.multi, 1);
    assert_int_equal(st.multi_fallback, 0);
    /* the repeated key: one request; the later of the two in the batch
     * (threads queue in any order) answered "existed" */
    assert_true(js[0].existed != js[K - 1].existed);
    assert_int_equal(js[K - 1].out_id, js[0].out_id);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), K - 1);
    if (js[0].existed) {
        texts[0] = "again"; /* the row is the other one's */
        js[0].idem = "m0";
    }
    for (int i = 0; i < K - 1; i++) {
        assert_false(i > 0 && js[i].existed);
        for (int k = 0; k < i; k++) assert_true(js[k].out_id != js[i].out_id);
        char ids[24];
        snprintf(ids, sizeof(ids), "%lld", (long long)js[i].out_id);
        /* the row and its event hold exactly what the caller sent */
        char *s = q1(f, "SELECT coalesce(idem_key, '<none>') || '|' || coalesce(user_reason, '<NULL>') || '|' ||"
                        " coalesce(permalink, '<NULL>') FROM requests WHERE id = $1::bigint", ids, NULL);
        char want[256];
        /* no text: sample()'s reason, and no permalink */
        snprintf(want, sizeof(want), "%s|%s|%s", js[i].idem ? js[i].idem : "<none>", texts[i] ? texts[i] : "ship it",
                 texts[i] ? texts[i] : "<NULL>");
        if (!s || strcmp(s, want) != 0) fail_msg("D-%s: %s, expected %s", ids, s ? s : "(none)", want);
        free(s);
        s = q1(f, "SELECT coalesce(detail, '<NULL>') || '|' || coalesce(permalink, '<NULL>') FROM audit_events"
                  " WHERE request_id = $1::bigint AND action = 'request.created'", ids, NULL);
        snprintf(want, sizeof(want), "%s|%s", texts[i] ? texts[i] : "ship it", texts[i] ? texts[i] : "<NULL>");
        if (!s || strcmp(s, want) != 0) fail_msg("event of D-%s: %s, expected %s", ids, s ? s : "(none)", want);
        free(s);
    }
    /* refusal 1 + 8 created, in the batch's order */
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 1 + K - 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events a JOIN audit_events b ON b.id = a.id + 1"
                             " WHERE b.request_id < a.request_id"), 0);
    expect_intact(f);
    audit_appender_free(app);
}

/* A batch of creates whose one statement fails (two want the same open
 * (env, job)) runs again one statement per write: the failing write alone
 * gets its error, the others commit. */
static void test_group_creates_fallback(void **state) {
    fixture *f = *state;
    audit_appender *app = audit_appender_new(0, 1);
    assert_non_null(app);
    PGconn *plug;
    job p;
    plug_chain(f, app, &plug, &p);
    enum { K = 4 };
    job js[K] = {
        {.fn = do_create, .idem = "f0", .actor = "shell:a"},
        {.fn = do_create, .idem = "open1", .actor = "shell:b", .variant = 1},
        {.fn = do_create, .idem = "open2", .actor = "shell:c", .variant = 1},
        {.fn = do_create, .idem = "f3", .actor = "shell:d"},
    };
    for (int i = 0; i < K; i++) {
        js[i].conninfo = f->conninfo;
        js[i].app = app;
        start(&js[i]);
    }
    wait_stats(app, 1, K, 1);
    release(plug);
    join(&p);
    for (int i = 0; i < K; i++) join(&js[i]);
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.largest, K);
    assert_int_equal(st.multi, 0);
    assert_int_equal(st.multi_fallback, 1);
    assert_int_equal(st.alone, 0);
    assert_int_equal(js[0].rc, AUDIT_OK);
    assert_int_equal(js[3].rc, AUDIT_OK);
    /* the later of the two in the batch (threads queue in any order):
     * AUDIT_ERR_EXISTS naming the earlier, which was created */
    job *won = js[1].rc == AUDIT_OK ? &js[1] : &js[2], *lost = won == &js[1] ? &js[2] : &js[1];
    assert_int_equal(won->rc, AUDIT_OK);
    if (lost->rc != AUDIT_ERR_EXISTS) fail_msg("the second open request: %d %s", lost->rc, lost->err);
    assert_int_equal(lost->out_id, won->out_id);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 3);
    assert_int_equal(qnum2(f, "SELECT count(*) FROM requests WHERE idem_key = $1", lost->idem, NULL), 0);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events WHERE action = 'request.created'"), 3);
    expect_intact(f);
    audit_appender_free(app);
}

/* Arguments and the attach itself. */
static void test_group_api(void **state) {
    fixture *f = *state;
    assert_null(audit_appender_new(-1, 0));
    assert_null(audit_appender_new(AUDIT_APPENDER_BATCH_MAX + 1, 0));
    assert_null(audit_appender_new(0, AUDIT_APPENDER_LEADERS_MAX + 1));
    audit_appender_free(NULL);
    audit_appender *app = audit_appender_new(1, 0);
    assert_non_null(app);
    /* batches of one: the plain path through the appender */
    audit_db_set_appender(&f->db, app);
    int64_t id = create_plain(f, sample("one", "shell:one"));
    assert_true(id > 0);
    assert_int_equal(audit_refusal(&f->db, NULL, "", NULL, NULL, NULL, "x", "y"), AUDIT_ERR_INVALID);
    audit_appender_stats st;
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.writes, 1);
    assert_int_equal(st.batches, 1);
    audit_db_set_appender(&f->db, NULL);
    create_plain(f, sample("two", "shell:one"));
    audit_appender_stats_get(app, &st);
    assert_int_equal(st.writes, 1);
    expect_intact(f);
    audit_appender_free(app);
}

int main(void) {
    pg_fixture_prefix = "audit_g";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_api, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_many, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_isolated, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_lock_wait, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_broken_caller, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_leader_killed, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_texts, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_gather_gives_up, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_creates_multi, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_group_creates_fallback, setup_migrated, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
