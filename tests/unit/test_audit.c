/* audit/ against a real PostgreSQL (PG_CONNINFO: a role that may CREATE
 * SCHEMA in its database). Every test gets a fresh schema audit_t_<pid>_<n>,
 * reached through search_path, and drops it afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "audit.h"
#include "pg_fixture.h"
#include "canon.h"
#include "export.h"


/* ---- helpers on the raw connection ---- */

static PGconn *pg(fixture *f) { return f->db.conn; }

/* First column of the first row of a query with up to two parameters, as a
 * malloc'ed string ("<NULL>" for SQL NULL, NULL if the query failed). */
static char *q1(fixture *f, const char *sql, const char *a, const char *b) {
    const char *p[] = {a, b};
    int n = b ? 2 : a ? 1 : 0;
    PGresult *r = PQexecParams(pg(f), sql, n, NULL, p, NULL, NULL, 0);
    char *out = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        out = strdup(PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "query failed: %s", PQerrorMessage(pg(f)));
    PQclear(r);
    return out;
}

static long long qnum(fixture *f, const char *sql) {
    char *s = q1(f, sql, NULL, NULL);
    assert_non_null(s);
    long long v = strtoll(s, NULL, 10);
    free(s);
    return v;
}

/* Runs a statement expected to fail; returns the error text (malloc'ed). */
static char *exec_fails(fixture *f, const char *sql) {
    PGresult *r = PQexec(pg(f), sql);
    ExecStatusType st = PQresultStatus(r);
    char *err = strdup(PQerrorMessage(pg(f)));
    PQclear(r);
    assert_int_equal(st, PGRES_FATAL_ERROR);
    return err;
}

static void exec_ok(fixture *f, const char *sql) {
    PGresult *r = PQexec(pg(f), sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pg(f)));
    PQclear(r);
}

static audit_new_request sample(const char *idem) {
    audit_new_request r = {
        .idem_key = idem, .kind = "deploy", .env = "staging", .job = "api", .version = "v2",
        .to_image = "registry.example/api:v2", .canary = -1, .user_reason = "ship it", .actor = "shell:alice",
        .person = "alice", .state = "queued",
        .origin = {.platform = "shell", .channel = "shell:console", .route = "shell:s1", .message_ref = "m-1"},
    };
    return r;
}

static int64_t create(fixture *f, const char *idem) {
    audit_new_request r = sample(idem);
    int64_t id = 0;
    bool existed = true;
    assert_int_equal(audit_request_create(&f->db, &r, &id, &existed), AUDIT_OK);
    assert_false(existed);
    assert_true(id > 0);
    return id;
}

static int move(fixture *f, int64_t id, const char *from, const char *to, const char *phase, const char *action) {
    audit_transition t = {.from_state = from, .to_state = to, .phase = phase, .action = action,
                          .actor = "nomatron:worker", .outcome = to, .nomad_job_version = -1};
    return audit_request_transition(&f->db, id, &t);
}

static void expect_intact(fixture *f) {
    int64_t broken = -1;
    int rc = audit_verify(&f->db, 0, &broken);
    if (rc != AUDIT_OK) fail_msg("verify: %s (event %lld)", f->db.errstr, (long long)broken);
    assert_int_equal(broken, 0);
}

static void expect_broken(fixture *f, int64_t from, int64_t at, const char *why) {
    int64_t broken = -1;
    assert_int_equal(audit_verify(&f->db, from, &broken), AUDIT_ERR_BROKEN);
    assert_int_equal(broken, at);
    if (!strstr(f->db.errstr, why)) fail_msg("errstr '%s' lacks '%s'", f->db.errstr, why);
}

/* ---- connection ---- */

static void test_connect_errors(void **state) {
    (void)state;
    audit_db db;
    /* malformed: libpq would quote the bad part; we must not echo the password */
    assert_int_equal(audit_connect(&db, "host=127.0.0.1 password=hunter2secret bogus"), AUDIT_ERR_CONNECT);
    assert_null(strstr(db.errstr, "hunter2secret"));
    assert_non_null(strstr(db.errstr, "malformed"));
    audit_close(&db);
    assert_int_equal(audit_connect(&db, "host=127.0.0.1 port=1 password=hunter2secret connect_timeout=2"),
                     AUDIT_ERR_CONNECT);
    assert_null(strstr(db.errstr, "hunter2secret"));
    assert_true(db.errstr[0] != '\0');
    assert_false(audit_ping(&db));
    audit_close(&db);
    audit_close(&db); /* twice is harmless */
    assert_int_equal(audit_connect(&db, ""), AUDIT_ERR_CONNECT);
    audit_close(&db);
    assert_string_equal(audit_strerror(AUDIT_ERR_BROKEN), "audit hash chain is broken");
    assert_string_equal(audit_strerror(999), "unknown audit error");
}

static void test_connection_loss(void **state) {
    fixture *f = *state;
    int64_t id = create(f, NULL);
    assert_true(audit_ping(&f->db));
    /* Kill our own backend from a second session. */
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", PQbackendPID(pg(f)));
    assert_true(admin_sql(base_conninfo, sql));
    audit_request r;
    int rc = audit_request_get(&f->db, id, &r);
    assert_int_equal(rc, AUDIT_ERR_CONNECT);
    assert_int_equal(move(f, id, "queued", "running", "registering", "deploy.started"), AUDIT_ERR_CONNECT);
    /* ping reconnects (search_path comes with the conninfo) */
    assert_true(audit_ping(&f->db));
    assert_int_equal(audit_request_get(&f->db, id, &r), AUDIT_OK);
    assert_string_equal(r.state, "queued");
}

/* ---- migrations ---- */

static void test_migrate_twice(void **state) {
    fixture *f = *state;
    assert_int_equal(audit_schema_check(&f->db), AUDIT_ERR_SCHEMA);
    assert_non_null(strstr(f->db.errstr, "migrate"));
    int applied = -1;
    assert_int_equal(audit_migrate(&f->db, &applied), AUDIT_OK);
    assert_true(applied >= 1);
    int first = applied;
    assert_int_equal(audit_schema_check(&f->db), AUDIT_OK);
    assert_int_equal(audit_migrate(&f->db, &applied), AUDIT_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(audit_migrate(&f->db, NULL), AUDIT_OK);
    assert_int_equal(qnum(f, "SELECT count(*) FROM schema_migrations"), first);
    /* tables landed in the test schema, not public */
    char *s = q1(f, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'audit_events' "
                    "AND table_schema = current_schema()", NULL, NULL);
    assert_non_null(s);
    assert_string_equal(s, f->schema);
    free(s);
    /* a database newer than this build is refused */
    exec_ok(f, "INSERT INTO schema_migrations (version, name) VALUES (1000, 'from the future')");
    assert_int_equal(audit_schema_check(&f->db), AUDIT_ERR_SCHEMA);
    assert_int_equal(audit_migrate(&f->db, &applied), AUDIT_ERR_SCHEMA);
    assert_non_null(strstr(f->db.errstr, "newer"));
}

typedef struct mig_arg {
    const char *conninfo;
    pthread_barrier_t *go;
    int rc, applied;
    char err[256];
} mig_arg;

static void *migrate_thread(void *p) {
    mig_arg *a = p;
    audit_db db;
    a->rc = audit_connect(&db, a->conninfo);
    pthread_barrier_wait(a->go);
    if (a->rc == AUDIT_OK) a->rc = audit_migrate(&db, &a->applied);
    snprintf(a->err, sizeof(a->err), "%s", db.errstr);
    audit_close(&db);
    return NULL;
}

static void test_migrate_concurrent(void **state) {
    fixture *f = *state;
    enum { N = 4 };
    pthread_t th[N];
    mig_arg args[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        args[i] = (mig_arg){.conninfo = f->conninfo, .go = &go, .applied = -1};
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &args[i]), 0);
    }
    int total = 0, winners = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (args[i].rc != AUDIT_OK) fail_msg("migrate %d: %s", i, args[i].err);
        total += args[i].applied;
        winners += args[i].applied > 0;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(winners, 1);
    assert_int_equal(total, (int)qnum(f, "SELECT count(*) FROM schema_migrations"));
    assert_int_equal(audit_schema_check(&f->db), AUDIT_OK);
}

/* ---- requests ---- */

static void test_create_and_get(void **state) {
    fixture *f = *state;
    audit_new_request nr = sample("shell:s1:1");
    nr.canary = 2;
    nr.origin.team = "T1";
    int64_t id = 0;
    bool existed = true;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_OK);
    assert_false(existed);
    assert_int_equal(id, 1);

    audit_request r;
    assert_int_equal(audit_request_get(&f->db, id, &r), AUDIT_OK);
    assert_int_equal(r.id, id);
    assert_string_equal(r.kind, "deploy");
    assert_string_equal(r.state, "queued");
    assert_string_equal(r.phase, "");
    assert_string_equal(r.reason, "");
    assert_string_equal(r.env, "staging");
    assert_string_equal(r.job, "api");
    assert_string_equal(r.version, "v2");
    assert_string_equal(r.to_image, "registry.example/api:v2");
    assert_string_equal(r.from_image, "");
    assert_int_equal(r.canary, 2);
    assert_string_equal(r.actor, "shell:alice");
    assert_string_equal(r.person, "alice");
    assert_string_equal(r.platform, "shell");
    assert_string_equal(r.channel, "shell:console");
    assert_string_equal(r.route, "shell:s1");
    assert_int_equal(r.nomad_job_version, -1);
    assert_string_equal(r.eval_id, "");
    /* RFC 3339 UTC with microseconds: 2026-11-24T23:04:03.933303Z */
    assert_int_equal(strlen(r.created_at), 27);
    assert_int_equal(r.created_at[10], 'T');
    assert_int_equal(r.created_at[26], 'Z');
    assert_string_equal(r.created_at, r.updated_at);

    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 1);
    char *s = q1(f,
                 "SELECT concat_ws('|', id, request_id, action, actor, person, outcome, coalesce(from_state, 'NULL'), "
                 "to_state, env, job, to_image, detail, platform, team, channel, message_ref, enc_version, prev_hash) "
                 "FROM audit_events",
                 NULL, NULL);
    assert_non_null(s);
    assert_string_equal(s, "1|1|request.created|shell:alice|alice|queued|NULL|queued|staging|api|"
                           "registry.example/api:v2|ship it|shell|T1|shell:console|m-1|1|" AUDIT_GENESIS_HASH);
    free(s);

    assert_int_equal(audit_request_get(&f->db, 999, &r), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(audit_request_get(&f->db, -1, &r), AUDIT_ERR_NOT_FOUND);
    expect_intact(f);
}

static void test_create_idempotent(void **state) {
    fixture *f = *state;
    int64_t first = create(f, "slack:trigger-1");
    audit_new_request nr = sample("slack:trigger-1");
    nr.job = "other"; /* a repeat with different content still creates nothing */
    int64_t id = 0;
    bool existed = false;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_OK);
    assert_true(existed);
    assert_int_equal(id, first);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 1);
    /* no key: every call creates */
    int64_t a = create(f, NULL), b = create(f, NULL);
    assert_true(a != b && a != first);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 3);
    expect_intact(f);
}

static void test_create_invalid(void **state) {
    fixture *f = *state;
    int64_t id = 5;
    bool existed = true;
    audit_new_request nr = sample(NULL);
    nr.env = NULL;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_ERR_INVALID);
    assert_int_equal(id, 0);
    nr = sample(NULL);
    nr.state = "running'; --";
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_ERR_INVALID);
    nr = sample(NULL);
    nr.canary = -5;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_ERR_INVALID);
    char *big = malloc(AUDIT_FIELD_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', AUDIT_FIELD_MAX + 1);
    big[AUDIT_FIELD_MAX + 1] = '\0';
    nr = sample(NULL);
    nr.user_reason = big;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_ERR_INVALID);
    assert_non_null(strstr(f->db.errstr, "reason"));
    free(big);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 0);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 0);
}

static void test_transitions(void **state) {
    fixture *f = *state;
    int64_t id = create(f, "k1");
    audit_transition t = {
        .from_state = "queued", .to_state = "running", .phase = "registering", .action = "deploy.started",
        .actor = "nomatron:worker", .outcome = "running", .from_image = "registry.example/api:v1",
        .nomad_job_version = -1,
    };
    assert_int_equal(audit_request_transition(&f->db, id, &t), AUDIT_OK);
    audit_request r;
    assert_int_equal(audit_request_get(&f->db, id, &r), AUDIT_OK);
    assert_string_equal(r.state, "running");
    assert_string_equal(r.phase, "registering");
    assert_string_equal(r.from_image, "registry.example/api:v1");
    assert_int_equal(r.nomad_job_version, -1);

    /* phase change within running; NULL fields and -1 leave columns alone */
    t = (audit_transition){.from_state = "running", .to_state = "running", .phase = "rolling",
                           .action = "deploy.registered", .actor = "nomatron:worker", .eval_id = "ev-1",
                           .deployment_id = "dep-1", .nomad_job_version = 0, .detail = "registered"};
    assert_int_equal(audit_request_transition(&f->db, id, &t), AUDIT_OK);
    assert_int_equal(audit_request_get(&f->db, id, &r), AUDIT_OK);
    assert_string_equal(r.phase, "rolling");
    assert_string_equal(r.from_image, "registry.example/api:v1");
    assert_string_equal(r.eval_id, "ev-1");
    assert_string_equal(r.deployment_id, "dep-1");
    assert_int_equal(r.nomad_job_version, 0);
    assert_string_equal(r.detail, "registered");

    t = (audit_transition){.from_state = "running", .to_state = "failed", .phase = "", .reason = "nomad_error",
                           .action = "deploy.failed", .actor = "nomatron:worker", .outcome = "failed",
                           .detail = "boom", .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&f->db, id, &t), AUDIT_OK);
    assert_int_equal(audit_request_get(&f->db, id, &r), AUDIT_OK);
    assert_string_equal(r.state, "failed");
    assert_string_equal(r.phase, "");
    assert_string_equal(r.reason, "nomad_error");
    assert_int_equal(r.nomad_job_version, 0);
    assert_string_equal(r.eval_id, "ev-1");

    char *s = q1(f, "SELECT string_agg(concat_ws('/', action, coalesce(from_state, '-'), to_state, phase, reason, "
                    "coalesce(nomad_job_version::text, '-')), ',' ORDER BY id) FROM audit_events WHERE request_id = $1",
                 "1", NULL);
    assert_non_null(s);
    assert_string_equal(s, "request.created/-/queued///-,deploy.started/queued/running/registering//-,"
                           "deploy.registered/running/running/rolling//0,deploy.failed/running/failed//nomad_error/0");
    free(s);
    s = q1(f, "SELECT state || '/' || reason || ' ' || from_image || ' -> ' || to_image FROM requests WHERE id = 1",
           NULL, NULL);
    assert_string_equal(s, "failed/nomad_error registry.example/api:v1 -> registry.example/api:v2");
    free(s);
    expect_intact(f);
}

static void test_transition_refused(void **state) {
    fixture *f = *state;
    int64_t id = create(f, NULL);
    char *before = q1(f, "SELECT updated_at::text FROM requests WHERE id = 1", NULL, NULL);
    /* wrong from_state: nothing written */
    assert_int_equal(move(f, id, "running", "succeeded", "", "deploy.succeeded"), AUDIT_ERR_STATE);
    assert_non_null(strstr(f->db.errstr, "queued"));
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 1);
    char *after = q1(f, "SELECT state || ' ' || updated_at::text FROM requests WHERE id = 1", NULL, NULL);
    char want[128];
    snprintf(want, sizeof(want), "queued %s", before);
    assert_string_equal(after, want);
    free(before);
    free(after);
    /* the guard also stops a second mover: only one of two identical transitions wins */
    assert_int_equal(move(f, id, "queued", "running", "registering", "deploy.started"), AUDIT_OK);
    assert_int_equal(move(f, id, "queued", "running", "registering", "deploy.started"), AUDIT_ERR_STATE);
    /* unknown id */
    assert_int_equal(move(f, 4242, "queued", "running", "registering", "deploy.started"), AUDIT_ERR_NOT_FOUND);
    /* bad arguments */
    assert_int_equal(move(f, id, "running", "bogus", NULL, "x"), AUDIT_ERR_INVALID);
    assert_int_equal(move(f, id, "running", "succeeded", NULL, NULL), AUDIT_ERR_INVALID);
    audit_transition t = {.from_state = "running", .to_state = "failed", .reason = "not-a-reason",
                          .action = "deploy.failed", .actor = "w", .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&f->db, id, &t), AUDIT_ERR_SQL);
    assert_string_equal(f->db.sqlstate, "23514"); /* CHECK violation */
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 2);
    /* the connection is usable after a failed transaction */
    assert_int_equal(move(f, id, "running", "succeeded", "", "deploy.succeeded"), AUDIT_OK);
    expect_intact(f);
}

/* ---- the chain ---- */

static void test_chain_links(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 40; i++) {
        int64_t id = create(f, NULL);
        assert_int_equal(move(f, id, "queued", "running", "registering", "deploy.started"), AUDIT_OK);
        if (i % 2 == 0) assert_int_equal(move(f, id, "running", "running", "rolling", "deploy.registered"), AUDIT_OK);
        assert_int_equal(move(f, id, "running", "succeeded", "", "deploy.succeeded"), AUDIT_OK);
    }
    long long n = qnum(f, "SELECT count(*) FROM audit_events");
    assert_int_equal(n, 40 * 3 + 20);
    /* gapless ids, genesis first, each prev_hash the previous hash, times non-decreasing */
    assert_int_equal(qnum(f, "SELECT max(id) - min(id) + 1 FROM audit_events"), n);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events WHERE id = 1 AND prev_hash = repeat('0', 64)"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events a JOIN audit_events b ON b.id = a.id + 1 "
                             "WHERE b.prev_hash <> a.hash OR b.at < a.at"),
                     0);
    expect_intact(f);
    int64_t broken = -1;
    assert_int_equal(audit_verify(&f->db, 77, &broken), AUDIT_OK);
    assert_non_null(strstr(f->db.errstr, "events verified"));
    assert_int_equal(audit_verify(&f->db, n, &broken), AUDIT_OK);
    assert_int_equal(audit_verify(&f->db, n + 10, &broken), AUDIT_OK);
    assert_int_equal(broken, 0);
}

typedef struct app_arg {
    const char *conninfo;
    int rc;
    char err[256];
} app_arg;

static void *append_thread(void *p) {
    app_arg *a = p;
    audit_db db;
    a->rc = audit_connect(&db, a->conninfo);
    for (int i = 0; i < 15 && a->rc == AUDIT_OK; i++) {
        audit_new_request r = sample(NULL);
        int64_t id;
        bool existed;
        a->rc = audit_request_create(&db, &r, &id, &existed);
        audit_transition t = {.from_state = "queued", .to_state = "running", .phase = "registering",
                              .action = "deploy.started", .actor = "nomatron:worker", .nomad_job_version = -1};
        if (a->rc == AUDIT_OK) a->rc = audit_request_transition(&db, id, &t);
    }
    snprintf(a->err, sizeof(a->err), "%s", db.errstr);
    audit_close(&db);
    return NULL;
}

static void test_concurrent_appends(void **state) {
    fixture *f = *state;
    enum { N = 4 };
    pthread_t th[N];
    app_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (app_arg){.conninfo = f->conninfo};
        assert_int_equal(pthread_create(&th[i], NULL, append_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (args[i].rc != AUDIT_OK) fail_msg("appender %d: %s", i, args[i].err);
    }
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), N * 15 * 2);
    assert_int_equal(qnum(f, "SELECT max(id) FROM audit_events"), N * 15 * 2);
    expect_intact(f);
}

static void test_append_only(void **state) {
    fixture *f = *state;
    create(f, NULL);
    create(f, NULL);
    const char *stmts[] = {"UPDATE audit_events SET detail = 'x'", "DELETE FROM audit_events WHERE id = 1",
                           "TRUNCATE audit_events", "TRUNCATE audit_events CASCADE", "DELETE FROM requests"};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        char *err = exec_fails(f, stmts[i]);
        if (i < 4 && !strstr(err, "audit_events is append-only")) fail_msg("%s: %s", stmts[i], err);
        free(err);
    }
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 2);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events WHERE detail = 'x'"), 0);
    expect_intact(f);
}

/* The hash columns take exactly 64 lowercase hex digits (migration 4's
 * checks, the same rule as the regex they replaced); an equal hash in
 * another event is no longer refused by an index, but verify names it. */
static void test_hash_checks(void **state) {
    fixture *f = *state;
    create(f, NULL);
    create(f, NULL);
    const char *bad[] = {"upper(hash)", "left(hash, 63)", "hash || '0'", "left(hash, 63) || E'\\n'",
                         "left(hash, 63) || 'g'", "left(hash, 62) || 'é'", "''"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        for (int col = 0; col < 2; col++) {
            char sql[512];
            snprintf(sql, sizeof(sql),
                     "INSERT INTO audit_events (id, at, action, actor, enc_version, prev_hash, hash)"
                     " SELECT 3, at, action, actor, enc_version, %s, %s FROM audit_events WHERE id = 2",
                     col ? "hash" : bad[i], col ? bad[i] : "repeat('b', 64)");
            char *err = exec_fails(f, sql);
            if (!strstr(err, col ? "audit_events_hash_check" : "audit_events_prev_hash_check"))
                fail_msg("%s: %s", sql, err);
            free(err);
        }
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 2);
    expect_intact(f);
    /* an event 3 carrying event 2's hash: it goes in, and verify refuses it */
    exec_ok(f, "INSERT INTO audit_events (id, at, action, actor, enc_version, prev_hash, hash)"
               " SELECT 3, at, action, actor, enc_version, hash, hash FROM audit_events WHERE id = 2");
    int64_t broken = 0;
    assert_int_equal(audit_verify(&f->db, 0, &broken), AUDIT_ERR_BROKEN);
    assert_int_equal(broken, 3);
    assert_non_null(strstr(f->db.errstr, "altered"));
}

/* The schema owner can switch the guard off; verify must still notice. */
static void test_tamper_altered(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 5; i++) create(f, NULL);
    expect_intact(f);
    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    exec_ok(f, "UPDATE audit_events SET detail = 'ship it!' WHERE id = 3");
    expect_broken(f, 0, 3, "event 3: hash does not match its content (altered)");
    expect_broken(f, 2, 3, "altered");
    int64_t broken = -1;
    assert_int_equal(audit_verify(&f->db, 4, &broken), AUDIT_OK); /* from 4 on, links to 3's stored hash */
    exec_ok(f, "UPDATE audit_events SET detail = 'ship it' WHERE id = 3");
    expect_intact(f);
    /* time shifted by one microsecond */
    exec_ok(f, "UPDATE audit_events SET at = at + interval '1 microsecond' WHERE id = 2");
    expect_broken(f, 0, 2, "altered");
    exec_ok(f, "UPDATE audit_events SET at = at - interval '1 microsecond' WHERE id = 2");
    expect_intact(f);
    /* NULL vs empty */
    exec_ok(f, "UPDATE audit_events SET from_state = '' WHERE id = 4");
    expect_broken(f, 0, 4, "altered");
    exec_ok(f, "UPDATE audit_events SET from_state = NULL WHERE id = 4");
    /* a rewritten link */
    exec_ok(f, "UPDATE audit_events SET prev_hash = repeat('a', 64) WHERE id = 4");
    expect_broken(f, 0, 4, "event 4: prev_hash does not match event 3");
    exec_ok(f, "UPDATE audit_events SET prev_hash = repeat('a', 64) WHERE id = 1");
    expect_broken(f, 0, 1, "event 1: prev_hash is not the genesis value");
}

static void test_tamper_deleted(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 6; i++) create(f, NULL);
    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    exec_ok(f, "DELETE FROM audit_events WHERE id = 5");
    expect_broken(f, 0, 5, "gap: event 5 missing");
    expect_broken(f, 6, 5, "gap: event 5 missing");
    /* renumbering to close the gap breaks the hash instead */
    exec_ok(f, "UPDATE audit_events SET id = 5 WHERE id = 6");
    expect_broken(f, 0, 5, "event 5: prev_hash does not match event 4");
    exec_ok(f, "DELETE FROM audit_events WHERE id = 1");
    expect_broken(f, 0, 1, "gap: event 1 missing");
}

static void test_tamper_version(void **state) {
    fixture *f = *state;
    create(f, NULL);
    create(f, NULL);
    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    exec_ok(f, "UPDATE audit_events SET enc_version = 2 WHERE id = 2");
    expect_broken(f, 0, 2, "event 2: unknown encoding version 2");
}

/* ---- awkward text ---- */

static void test_text_roundtrip(void **state) {
    fixture *f = *state;
    char *big = malloc(10 * 1024 + 1);
    assert_non_null(big);
    for (int i = 0; i < 10 * 1024; i++) big[i] = "ab'\"\\\n;$%_"[i % 10];
    big[10 * 1024] = '\0';
    assert_int_equal(strlen(big), 10 * 1024);
    const char *texts[] = {
        "it's \"quoted\" and \\backslashed\\",
        "'; DROP TABLE audit_events; -- $1 %s %n",
        "line one\nline two\r\n\ttabbed",
        "\xf0\x9f\x9a\x80 ship \xe2\x9c\x85 caf\xc3\xa9",
        "$$ dollar $quoted$ \x01\x1f",
        big,
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        audit_new_request nr = sample(strlen(texts[i]) < 512 ? texts[i] : "big-key");
        nr.user_reason = texts[i];
        nr.origin.permalink = texts[i];
        int64_t id = 0;
        bool existed = true;
        assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_OK);
        assert_false(existed);
        audit_transition t = {.from_state = "queued", .to_state = "running", .phase = "registering",
                              .action = "deploy.started", .actor = "nomatron:worker", .outcome = texts[i],
                              .detail = texts[i], .nomad_job_version = -1};
        assert_int_equal(audit_request_transition(&f->db, id, &t), AUDIT_OK);

        char ids[24];
        snprintf(ids, sizeof(ids), "%lld", (long long)id);
        char *s = q1(f, "SELECT user_reason FROM requests WHERE id = $1::bigint "
                        "AND (idem_key = user_reason OR length(user_reason) >= 512) "
                        "AND permalink = user_reason AND detail = user_reason", ids, NULL);
        assert_non_null(s);
        assert_string_equal(s, texts[i]);
        free(s);
        s = q1(f, "SELECT detail FROM audit_events WHERE request_id = $1::bigint AND action = $2", ids,
               "deploy.started");
        assert_non_null(s);
        assert_string_equal(s, texts[i]);
        free(s);
        /* the same key again: found, not duplicated */
        int64_t again = 0;
        assert_int_equal(audit_request_create(&f->db, &nr, &again, &existed), AUDIT_OK);
        assert_true(existed);
        assert_int_equal(again, id);
    }
    /* repeats did not use up request numbers: D-1 ... D-6 */
    assert_int_equal(qnum(f, "SELECT max(id) FROM requests"), 6);
    audit_request r;
    assert_int_equal(audit_request_get(&f->db, qnum(f, "SELECT max(id) FROM requests"), &r), AUDIT_OK);
    assert_int_equal(strlen(r.detail), AUDIT_DETAIL_LEN - 1); /* truncated to the struct, not overflowed */
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 6);
    free(big);
    expect_intact(f);
}


/* ---- several events in one transaction ---- */

static void test_transition_notes(void **state) {
    fixture *f = *state;
    int64_t id = create(f, NULL);
    audit_transition t = {.from_state = "queued", .to_state = "running", .phase = "registering",
                          .action = "deploy.started", .actor = "nomatron:worker", .nomad_job_version = -1};
    audit_note notes[] = {{.action = "deploy.lease", .detail = "lease taken"},
                          {.action = "approval.counted", .actor = "slack:U2", .person = "bob", .outcome = "2/2"}};
    assert_int_equal(audit_request_transition_notes(&f->db, id, &t, notes, 2), AUDIT_OK);
    char *s = q1(f, "SELECT string_agg(id || ':' || action || ':' || actor || ':' || at::text, ',' ORDER BY id) "
                    "FROM audit_events WHERE id > 1", NULL, NULL);
    assert_non_null(s);
    /* consecutive ids, one time (one transaction), the note's own actor */
    char *at = q1(f, "SELECT at::text FROM audit_events WHERE id = 2", NULL, NULL);
    char want[512];
    snprintf(want, sizeof(want), "2:deploy.started:nomatron:worker:%s,3:deploy.lease:nomatron:worker:%s,"
                                 "4:approval.counted:slack:U2:%s", at, at, at);
    assert_string_equal(s, want);
    free(s);
    free(at);
    /* a bad note writes nothing, not even the transition */
    t = (audit_transition){.from_state = "running", .to_state = "succeeded", .action = "deploy.succeeded",
                           .actor = "w", .nomad_job_version = -1};
    audit_note bad = {.action = NULL};
    assert_int_equal(audit_request_transition_notes(&f->db, id, &t, &bad, 1), AUDIT_ERR_INVALID);
    assert_int_equal(audit_request_transition_notes(&f->db, id, &t, notes, AUDIT_NOTES_MAX + 1), AUDIT_ERR_INVALID);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 4);
    /* a refused transition writes none of its notes */
    t.from_state = "queued";
    assert_int_equal(audit_request_transition_notes(&f->db, id, &t, notes, 2), AUDIT_ERR_STATE);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 4);
    expect_intact(f);
}

/* ---- messages and lookups ---- */

static void test_messages_and_lookup(void **state) {
    fixture *f = *state;
    audit_new_request nr = sample("slack:trig-1");
    nr.origin = (audit_origin){.platform = "slack", .team = "T1", .channel = "slack:C0PROD",
                               .message_ref = "1700000000.000100",
                               .permalink = "https://acme.slack.com/archives/C0PROD/p1700000000000100"};
    int64_t id = 0;
    bool existed;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_OK);
    int64_t other = create(f, NULL);
    audit_origin posted = {.platform = "slack", .team = "T1", .channel = "slack:C0PROD",
                           .message_ref = "1700000000.000200", .thread = "1700000000.000100",
                           .permalink = "https://acme.slack.com/archives/C0PROD/p1700000000000200?thread_ts=1"};
    assert_int_equal(audit_message_record(&f->db, id, &posted, "out", NULL), AUDIT_OK);
    audit_origin mm = {.platform = "mattermost", .channel = "mattermost:town", .message_ref = "abcdefghijklmnopqrstuvwxyz",
                       .permalink = "https://mm.example.com/acme/pl/abcdefghijklmnopqrstuvwxyz"};
    assert_int_equal(audit_message_record(&f->db, other, &mm, "in", "mattermost:u1"), AUDIT_OK);
    /* the message events are in the chain, with the message's own origin */
    char *s = q1(f, "SELECT concat_ws('|', action, actor, platform, channel, message_ref, thread, env, job, "
                    "coalesce(nomad_job_version::text, 'NULL')) FROM audit_events WHERE id = 3", NULL, NULL);
    assert_string_equal(s, "message.out|nomatron|slack|slack:C0PROD|1700000000.000200|1700000000.000100|staging|api|NULL");
    free(s);

    struct { const char *ref; int64_t want; } cases[] = {
        {"D-1", id}, {"d-2", other}, {"2", other},
        {"1700000000.000100", id},                                          /* the command's ts */
        {"1700000000.000200", id},                                          /* a post's ts */
        {"https://acme.slack.com/archives/C0PROD/p1700000000000100", id},   /* recorded permalink */
        {"https://acme.slack.com/archives/C0PROD/p1700000000000200", id},   /* variant of a permalink: by ts */
        {"https://other.slack.com/archives/C0PROD/p1700000000000200?thread_ts=x", id},
        {"abcdefghijklmnopqrstuvwxyz", other},                              /* Mattermost post id */
        {"https://mm.example.com/acme/pl/abcdefghijklmnopqrstuvwxyz", other},
        {"http://mm.example.com/x/pl/abcdefghijklmnopqrstuvwxyz#frag", other},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = -1;
        int rc = audit_lookup(&f->db, cases[i].ref, &got);
        if (rc != AUDIT_OK || got != cases[i].want)
            fail_msg("lookup '%s': rc %d (%s), got %lld want %lld", cases[i].ref, rc, f->db.errstr, (long long)got,
                     (long long)cases[i].want);
    }
    const char *unknown[] = {"D-99", "1700000000.999999", "https://acme.slack.com/archives/C0PROD/p1700000000999999",
                             "zzzzzzzzzzzzzzzzzzzzzzzzzz", "'; DROP TABLE requests; --", "\xf0\x9f\x9a\x80"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        int64_t got = -1;
        assert_int_equal(audit_lookup(&f->db, unknown[i], &got), AUDIT_ERR_NOT_FOUND);
        assert_int_equal(got, 0);
        assert_non_null(strstr(f->db.errstr, "no record"));
    }
    int64_t got;
    assert_int_equal(audit_lookup(&f->db, "", &got), AUDIT_ERR_INVALID);
    assert_int_equal(audit_lookup(&f->db, "a\nb", &got), AUDIT_ERR_INVALID);
    char big[AUDIT_REF_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(audit_lookup(&f->db, big, &got), AUDIT_ERR_INVALID);

    /* bad messages */
    assert_int_equal(audit_message_record(&f->db, 999, &posted, "out", NULL), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(audit_message_record(&f->db, id, &posted, "sideways", NULL), AUDIT_ERR_INVALID);
    audit_origin noref = {.platform = "slack"};
    assert_int_equal(audit_message_record(&f->db, id, &noref, "out", NULL), AUDIT_ERR_INVALID);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_messages"), 2);
    /* append-only like the events */
    char *err = exec_fails(f, "UPDATE audit_messages SET message_ref = 'x'");
    assert_non_null(strstr(err, "audit_messages is append-only"));
    free(err);
    err = exec_fails(f, "TRUNCATE audit_checkpoints");
    assert_non_null(strstr(err, "audit_checkpoints is append-only"));
    free(err);
    expect_intact(f);
}

typedef struct collect {
    int n;
    int stop_after;
    char actions[1024];
    int64_t ids[64];
} collect;

static int collect_row(const audit_row *row, void *arg) {
    collect *c = arg;
    assert_true(audit_canon_hash_valid(row->hash));
    assert_int_equal(strlen(row->at), 27);
    /* every row read back re-hashes to its stored hash */
    char h[65];
    assert_int_equal(audit_canon_event_hash(&row->ev, h), AUDIT_CANON_OK);
    assert_string_equal(h, row->hash);
    if (c->n < 64) c->ids[c->n] = row->ev.id;
    c->n++;
    size_t len = strlen(c->actions);
    snprintf(c->actions + len, sizeof(c->actions) - len, "%s%s", len ? "," : "", row->ev.action);
    return c->stop_after && c->n >= c->stop_after;
}

static int collect_req(const audit_request *r, void *arg) {
    collect *c = arg;
    if (c->n < 64) c->ids[c->n] = r->id;
    c->n++;
    size_t len = strlen(c->actions);
    snprintf(c->actions + len, sizeof(c->actions) - len, "%s%s/%s/%s", len ? "," : "", r->env, r->job, r->state);
    return 0;
}

static void test_trail_history_show(void **state) {
    fixture *f = *state;
    int64_t a = create(f, NULL);
    audit_new_request nr = sample(NULL);
    nr.job = "web";
    nr.actor = "slack:U9";
    int64_t b = 0;
    bool existed;
    assert_int_equal(audit_request_create(&f->db, &nr, &b, &existed), AUDIT_OK);
    assert_int_equal(move(f, a, "queued", "running", "registering", "deploy.started"), AUDIT_OK);
    nr.env = "production";
    int64_t c3 = 0;
    assert_int_equal(audit_request_create(&f->db, &nr, &c3, &existed), AUDIT_OK);
    assert_int_equal(move(f, a, "running", "succeeded", "", "deploy.succeeded"), AUDIT_OK);

    collect c = {0};
    assert_int_equal(audit_trail(&f->db, a, collect_row, &c), AUDIT_OK);
    assert_string_equal(c.actions, "request.created,deploy.started,deploy.succeeded");
    c = (collect){0};
    assert_int_equal(audit_trail(&f->db, 77, collect_row, &c), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(c.n, 0);

    c = (collect){0};
    assert_int_equal(audit_history(&f->db, "web", NULL, 10, collect_req, &c), AUDIT_OK);
    assert_string_equal(c.actions, "production/web/queued,staging/web/queued");
    c = (collect){0};
    assert_int_equal(audit_history(&f->db, "web", "staging", 10, collect_req, &c), AUDIT_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], b);
    c = (collect){0};
    assert_int_equal(audit_history(&f->db, "api", NULL, 1, collect_req, &c), AUDIT_OK);
    assert_string_equal(c.actions, "staging/api/succeeded");
    assert_int_equal(audit_history(&f->db, "api", NULL, 0, collect_req, &c), AUDIT_ERR_INVALID);
    assert_int_equal(audit_history(&f->db, NULL, NULL, 5, collect_req, &c), AUDIT_ERR_INVALID);

    struct { audit_filter f; const char *want; } cases[] = {
        {{.job = "web"}, "request.created,request.created"},
        {{.env = "production"}, "request.created"},
        {{.actor = "slack:U9"}, "request.created,request.created"},
        {{.actor = "nomatron:worker"}, "deploy.started,deploy.succeeded"},
        {{.request_id = a, .from_id = 3}, "deploy.started,deploy.succeeded"},
        {{.since = "2000-01-01", .until = "2999-01-01T00:00:00Z", .limit = 2}, "request.created,request.created"},
        {{.until = "2000-01-01"}, ""},
        {{.since = "2999-01-01T00:00:00+02:00"}, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = (collect){0};
        int rc = audit_events_each(&f->db, &cases[i].f, collect_row, &c);
        if (rc != AUDIT_OK) fail_msg("case %zu: %s", i, f->db.errstr);
        if (strcmp(c.actions, cases[i].want) != 0) fail_msg("case %zu: got '%s' want '%s'", i, c.actions, cases[i].want);
    }
    /* stopping early is not an error, and the connection is usable after it */
    c = (collect){.stop_after = 2};
    assert_int_equal(audit_events_each(&f->db, NULL, collect_row, &c), AUDIT_OK);
    assert_int_equal(c.n, 2);
    audit_filter bad = {.since = "the day before"}; /* ("yesterday" PostgreSQL would take) */
    assert_int_equal(audit_events_each(&f->db, &bad, collect_row, &c), AUDIT_ERR_INVALID);
    expect_intact(f);
}

/* ---- checkpoints and what verify makes of them ---- */

static void test_checkpoints(void **state) {
    fixture *f = *state;
    audit_checkpoint_info cp;
    assert_int_equal(audit_checkpoint_latest(&f->db, &cp), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(audit_checkpoint(&f->db, &cp), AUDIT_OK); /* an empty chain can be checkpointed */
    assert_int_equal(cp.head_id, 0);
    assert_string_equal(cp.head_hash, AUDIT_GENESIS_HASH);
    for (int i = 0; i < 6; i++) create(f, NULL);
    assert_int_equal(audit_checkpoint(&f->db, &cp), AUDIT_OK);
    assert_int_equal(cp.head_id, 6);
    assert_int_equal(cp.events, 6);
    char *h = q1(f, "SELECT hash FROM audit_events WHERE id = 6", NULL, NULL);
    assert_string_equal(cp.head_hash, h);
    free(h);
    assert_int_equal(strlen(cp.at), 27);
    audit_checkpoint_info latest;
    assert_int_equal(audit_checkpoint_latest(&f->db, &latest), AUDIT_OK);
    assert_int_equal(latest.id, cp.id);
    create(f, NULL);
    expect_intact(f);

    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    /* the newest events deleted: only the checkpoint can tell */
    exec_ok(f, "DELETE FROM audit_events WHERE id >= 6");
    expect_broken(f, 0, 6, "event 6: missing: the chain ends at event 5 but checkpoint");
    expect_broken(f, 4, 6, "tail truncated");
    expect_broken(f, 50, 6, "tail truncated");
    assert_int_equal(audit_checkpoint(&f->db, &cp), AUDIT_ERR_BROKEN);
    /* a gap */
    exec_ok(f, "DELETE FROM audit_events WHERE id = 2");
    assert_int_equal(audit_checkpoint(&f->db, &cp), AUDIT_ERR_BROKEN);
    assert_non_null(strstr(f->db.errstr, "events are missing"));
}

static void test_checkpoint_rewritten(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 3; i++) create(f, NULL);
    audit_checkpoint_info cp;
    assert_int_equal(audit_checkpoint(&f->db, &cp), AUDIT_OK);
    /* someone rewrote event 3 and re-hashed it consistently: the walk
     * passes, the checkpoint does not */
    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    exec_ok(f, "DELETE FROM audit_events WHERE id = 3");
    exec_ok(f, "ALTER TABLE audit_events ENABLE TRIGGER USER");
    /* a fresh append re-creates event 3 with a different content and hash */
    create(f, NULL);
    expect_broken(f, 0, 3, "event 3: hash differs from checkpoint");
}

static void test_tamper_reordered(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 5; i++) create(f, NULL);
    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    exec_ok(f, "UPDATE audit_events SET id = 1000 WHERE id = 3; UPDATE audit_events SET id = 3 WHERE id = 4; "
               "UPDATE audit_events SET id = 4 WHERE id = 1000");
    expect_broken(f, 0, 3, "event 3: reordered: it follows event 4, not event 2");
}

/* ---- export ---- */

static void test_export_roundtrip(void **state) {
    fixture *f = *state;
    const char *texts[] = {"it's \"quoted\", and \\backslashed\\", "'; DROP TABLE audit_events; -- $1 %s",
                           "line one\nline two\r\n\ttabbed", "\xf0\x9f\x9a\x80 caf\xc3\xa9 \xe2\x80\xa8 \xe2\x80\xa9",
                           "=SUM(A1:A2)", "+1", "-x", "@me", "/slash/ </script>", "\x01\x1f\x7f"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        audit_new_request nr = sample(NULL);
        nr.user_reason = texts[i];
        nr.origin.permalink = texts[i];
        int64_t id;
        bool existed;
        assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_OK);
    }
    char *big = malloc(10 * 1024 + 1);
    assert_non_null(big);
    for (int i = 0; i < 10 * 1024; i++) big[i] = "ab'\"\\\n;,=\x01"[i % 10];
    big[10 * 1024] = '\0';
    audit_new_request nr = sample(NULL);
    nr.user_reason = big;
    int64_t id;
    bool existed;
    assert_int_equal(audit_request_create(&f->db, &nr, &id, &existed), AUDIT_OK);
    audit_checkpoint_info cp;
    assert_int_equal(audit_checkpoint(&f->db, &cp), AUDIT_OK);

    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    int64_t n = 0;
    assert_int_equal(audit_export(&f->db, NULL, AUDIT_EXPORT_JSONL, out, &n), AUDIT_OK);
    fclose(out);
    assert_int_equal(n, 11);
    /* feed it back line by line */
    audit_fverify v;
    audit_fverify_init(&v);
    for (char *p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        assert_non_null(nl);
        assert_int_equal(audit_fverify_line(&v, p, (size_t)(nl - p)), AUDIT_OK);
        p = nl + 1;
    }
    if (audit_fverify_finish(&v) != AUDIT_OK) fail_msg("%s", v.why);
    assert_int_equal(v.events, 11);
    assert_int_equal(v.cp_head_id, 11);
    audit_fverify_free(&v);
    /* the text came back byte for byte: the 10 kB reason is in the file as JSON */
    assert_non_null(strstr(buf, "\"detail\":\"it's \\\"quoted\\\", and \\\\backslashed\\\\\""));
    free(buf);

    /* CSV: neutralised and quoted cells */
    buf = NULL;
    out = open_memstream(&buf, &len);
    audit_filter fl = {.limit = 10};
    assert_int_equal(audit_export(&f->db, &fl, AUDIT_EXPORT_CSV, out, &n), AUDIT_OK);
    fclose(out);
    assert_int_equal(n, 10);
    assert_non_null(strstr(buf, ",'=SUM(A1:A2),"));
    assert_non_null(strstr(buf, ",'+1,"));
    assert_non_null(strstr(buf, ",'-x,"));
    assert_non_null(strstr(buf, ",'@me,"));
    assert_non_null(strstr(buf, ",\"it's \"\"quoted\"\", and \\backslashed\\\","));
    assert_non_null(strstr(buf, ",\"line one\nline two\r\n\ttabbed\","));
    free(buf);
    /* JSONL refuses filters that would cut holes in the chain */
    audit_filter byjob = {.job = "api"};
    out = open_memstream(&buf, &len);
    assert_int_equal(audit_export(&f->db, &byjob, AUDIT_EXPORT_JSONL, out, &n), AUDIT_ERR_INVALID);
    fclose(out);
    free(buf);
    /* a write error is reported */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(audit_export(&f->db, NULL, AUDIT_EXPORT_JSONL, full, &n), AUDIT_ERR_IO);
        fclose(full);
    }
    free(big);
}

/* ---- the service role ---- */

static void test_app_role(void **state) {
    fixture *f = *state;
    const char *admin = getenv("PG_ADMIN_CONNINFO");
    if (!admin || !admin[0]) {
        print_message("PG_ADMIN_CONNINFO not set: skipping the role test\n");
        return;
    }
    char role[64], sql[256];
    snprintf(role, sizeof(role), "nm_app_t_%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN", role, role);
    assert_true(admin_sql(admin, sql));
    assert_int_equal(audit_grant_app_role(&f->db, "Bad-Name", false), AUDIT_ERR_INVALID);
    assert_int_equal(audit_grant_app_role(&f->db, "nm_no_such_role_x", false), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(audit_grant_app_role(&f->db, role, false), AUDIT_OK);
    assert_int_equal(audit_grant_app_role(&f->db, role, false), AUDIT_OK); /* idempotent */

    /* connect as the role: it can do nomatron's work ... */
    char ci[1200], user[32];
    audit_db app;
    snprintf(ci, sizeof(ci), "%s user=%s", f->conninfo, role);
    if (strstr(base_conninfo, "://")) {
        snprintf(ci, sizeof(ci), "%s&user=%s", f->conninfo, role);
    }
    assert_int_equal(audit_dsn_user(ci, user, sizeof(user)), AUDIT_OK);
    assert_string_equal(user, role);
    assert_int_equal(audit_connect(&app, ci), AUDIT_OK);
    assert_int_equal(audit_schema_check(&app), AUDIT_OK);
    audit_new_request nr = sample(NULL);
    int64_t id;
    bool existed;
    assert_int_equal(audit_request_create(&app, &nr, &id, &existed), AUDIT_OK);
    audit_transition t = {.from_state = "queued", .to_state = "running", .action = "deploy.started", .actor = "w",
                          .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&app, id, &t), AUDIT_OK);
    audit_origin m = {.platform = "slack", .message_ref = "1.2"};
    assert_int_equal(audit_message_record(&app, id, &m, "out", NULL), AUDIT_OK);
    audit_checkpoint_info cp;
    assert_int_equal(audit_checkpoint(&app, &cp), AUDIT_OK);
    int64_t broken;
    assert_int_equal(audit_verify(&app, 0, &broken), AUDIT_OK);
    /* ... and nothing more: no rewriting, not even with the guard off */
    const char *refused[] = {"ALTER TABLE audit_events DISABLE TRIGGER USER", "DELETE FROM requests",
                             "UPDATE audit_checkpoints SET events = 0", "DROP TABLE audit_messages"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        PGresult *r = PQexec(app.conn, refused[i]);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (strcmp(st, "42501") != 0) fail_msg("%s: sqlstate %s", refused[i], st);
        PQclear(r);
    }
    audit_close(&app);
    assert_int_equal(audit_dsn_user("postgresql://bob:pw@h/db", user, sizeof(user)), AUDIT_OK);
    assert_string_equal(user, "bob");
    assert_int_equal(audit_dsn_user("host=h bogus", user, sizeof(user)), AUDIT_ERR_INVALID);
    /* the role owns nothing, so dropping it needs only its grants revoked */
    snprintf(sql, sizeof(sql), "DROP OWNED BY %s; DROP ROLE %s", role, role);
    char ci_admin[1200];
    snprintf(ci_admin, sizeof(ci_admin), "%s dbname=%s", admin, PQdb(f->db.conn));
    assert_true(admin_sql(ci_admin, sql));
}

/* More than one page of verify (2000 rows, the next page fetched while the
 * current one is checked): damage on the second page is still found, and
 * the lookup that names a reordering runs after the prefetch is drained. */
static void test_verify_pages(void **state) {
    fixture *f = *state;
    audit_note notes[AUDIT_NOTES_MAX];
    for (int i = 0; i < AUDIT_NOTES_MAX; i++) notes[i] = (audit_note){.action = "deploy.progress", .detail = "n/2"};
    while (qnum(f, "SELECT count(*) FROM audit_events") < 4100) {
        int64_t id = create(f, NULL);
        audit_transition t = {.from_state = "queued", .to_state = "running", .action = "deploy.started",
                              .actor = "w", .nomad_job_version = -1};
        assert_int_equal(audit_request_transition_notes(&f->db, id, &t, notes, AUDIT_NOTES_MAX), AUDIT_OK);
    }
    expect_intact(f);
    exec_ok(f, "ALTER TABLE audit_events DISABLE TRIGGER USER");
    exec_ok(f, "UPDATE audit_events SET detail = 'n/3' WHERE id = 3999");
    expect_broken(f, 0, 3999, "event 3999: hash does not match its content (altered)");
    exec_ok(f, "UPDATE audit_events SET detail = 'n/2' WHERE id = 3999");
    expect_intact(f);
    exec_ok(f, "UPDATE audit_events SET id = 100000 WHERE id = 2001; UPDATE audit_events SET id = 2001 WHERE id = 2002; "
               "UPDATE audit_events SET id = 2002 WHERE id = 100000");
    expect_broken(f, 0, 2001, "event 2001: reordered: it follows event 2002, not event 2000");
    expect_broken(f, 1999, 2001, "reordered");
    exec_ok(f, "DELETE FROM audit_events WHERE id = 4000");
    expect_broken(f, 2100, 4000, "gap: event 4000 missing");
}

int main(void) {
    pg_fixture_prefix = "audit_t";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test_setup_teardown(test_connection_loss, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_twice, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_concurrent, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_create_and_get, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_create_idempotent, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_create_invalid, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_transitions, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_transition_refused, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_chain_links, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_hash_checks, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_append_only, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_altered, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_deleted, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_version, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_text_roundtrip, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_transition_notes, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_messages_and_lookup, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_trail_history_show, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_rewritten, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_reordered, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_export_roundtrip, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_app_role, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_verify_pages, setup_migrated, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
