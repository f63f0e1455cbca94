/* audit/ governance storage (migration 3, audit/governance_db.c) against a
 * real PostgreSQL (PG_CONNINFO: a role that may CREATE SCHEMA). Every test
 * gets a fresh schema gov_t_<pid>_<n>, reached through search_path, and
 * drops it afterwards. */
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
#include "audit_int.h" /* audit__migrate_to: a database as the previous build left it */


/* ---- helpers ---- */

static char *q1(fixture *f, const char *sql, const char *a) {
    const char *p[] = {a};
    return fixture_value(f, sql, a ? 1 : 0, p);
}

static long long qnum(fixture *f, const char *sql) {
    char *s = q1(f, sql, NULL);
    assert_non_null(s);
    long long v = strtoll(s, NULL, 10);
    free(s);
    return v;
}

static void expect_q(fixture *f, const char *sql, const char *want) {
    char *s = q1(f, sql, NULL);
    assert_non_null(s);
    if (strcmp(s, want) != 0) fail_msg("%s\n  got  %s\n  want %s", sql, s, want);
    free(s);
}

static void exec_ok(fixture *f, const char *sql) {
    PGresult *r = PQexec(f->db.conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(f->db.conn));
    PQclear(r);
}

/* Runs sql expecting failure; returns the SQLSTATE (malloc'ed). */
static char *exec_fails(fixture *f, const char *sql) {
    PGresult *r = PQexec(f->db.conn, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) fail_msg("%s succeeded", sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char *out = strdup(st ? st : "");
    PQclear(r);
    return out;
}

static void expect_intact(fixture *f) {
    int64_t broken = -1;
    int rc = audit_verify(&f->db, 0, &broken);
    if (rc != AUDIT_OK) fail_msg("verify: %s (%s) at %lld", audit_strerror(rc), f->db.errstr, (long long)broken);
}

static int64_t create_req(fixture *f, const char *env, const char *job, const char *actor, const char *person,
                          const char *state, int required, const char *emergency) {
    audit_new_request r = {
        .kind = "deploy", .env = env, .job = job, .version = "v2", .to_image = "r/web:v2", .canary = -1,
        .actor = actor, .person = person, .state = state, .required_approvals = required,
        .policy_hash = 0xfedcba9876543210ull, .emergency = emergency,
        .origin = {.platform = "slack", .channel = "slack:C0PROD"},
    };
    int64_t id = 0;
    bool existed = true;
    int rc = audit_request_create(&f->db, &r, &id, &existed);
    if (rc != AUDIT_OK) fail_msg("create: %s (%s)", audit_strerror(rc), f->db.errstr);
    assert_false(existed);
    assert_true(id > 0);
    return id;
}

typedef struct approvals_seen {
    int n;
    char identity[8][64];
    char person[8][64];
    int64_t at[8];
} approvals_seen;

static int collect_approval(const char *identity, const char *person, int64_t at, void *arg) {
    approvals_seen *s = arg;
    if (s->n < 8) {
        snprintf(s->identity[s->n], sizeof(s->identity[0]), "%s", identity);
        snprintf(s->person[s->n], sizeof(s->person[0]), "%s", person);
        s->at[s->n] = at;
    }
    s->n++;
    return 0;
}

/* ---- migration ---- */

static void test_migration3_on_top(void **state) {
    fixture *f = *state;
    int applied = -1;
    assert_int_equal(audit__migrate_to(&f->db, 2, &applied), AUDIT_OK);
    assert_int_equal(applied, 2);
    assert_int_equal(audit_schema_check(&f->db), AUDIT_ERR_SCHEMA);
    /* A request as the previous build wrote it. */
    exec_ok(f, "INSERT INTO requests (kind, state, env, job, actor, person) "
               "VALUES ('deploy', 'queued', 'prod', 'web', 'slack:U1', 'alice')");
    assert_int_equal(audit__migrate_to(&f->db, 3, &applied), AUDIT_OK);
    assert_int_equal(applied, 1);
    assert_int_equal(qnum(f, "SELECT max(version) FROM schema_migrations"), 3);
    assert_int_equal(audit_migrate(&f->db, &applied), AUDIT_OK); /* the later ones */
    assert_int_equal(applied, audit__schema_version() - 3);
    assert_int_equal(audit_schema_check(&f->db), AUDIT_OK);
    assert_int_equal(audit_migrate(&f->db, &applied), AUDIT_OK);
    assert_int_equal(applied, 0);
    audit_facts fx;
    assert_int_equal(audit_request_facts(&f->db, 1, &fx), AUDIT_OK);
    assert_string_equal(fx.state, "queued");
    assert_int_equal(fx.required, 0);
    assert_true(fx.policy_hash == 0);
    assert_string_equal(fx.emergency, "");
    assert_int_equal(fx.plan_modify_index, -1);
    int n = -1;
    assert_int_equal(audit_open_count(&f->db, "alice", &n), AUDIT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(audit__migrate_to(&f->db, 99, NULL), AUDIT_ERR_INVALID);
}

/* ---- facts ---- */

static void test_facts_roundtrip(void **state) {
    fixture *f = *state;
    int64_t now = 0;
    assert_int_equal(audit_now(&f->db, &now), AUDIT_OK);
    assert_true(now > 1700000000);
    audit_new_request r = {
        .kind = "promote", .env = "production", .job = "web", .version = "v7", .to_image = "r/web:v7",
        .canary = 1, .actor = "slack:U1", .person = "alice", .state = "pending_approval",
        .required_approvals = 3, .policy_hash = 0xfedcba9876543210ull, .emergency = "pager is on fire",
        .bound_image = "r/web:v7@sha256:abc", .from_env = "staging",
    };
    int64_t id = 0;
    assert_int_equal(audit_request_create(&f->db, &r, &id, NULL), AUDIT_OK);
    audit_facts fx;
    assert_int_equal(audit_request_facts(&f->db, id, &fx), AUDIT_OK);
    assert_int_equal(fx.id, id);
    assert_string_equal(fx.kind, "promote");
    assert_string_equal(fx.state, "pending_approval");
    assert_string_equal(fx.phase, "");
    assert_string_equal(fx.reason, "");
    assert_string_equal(fx.env, "production");
    assert_string_equal(fx.job, "web");
    assert_string_equal(fx.actor, "slack:U1");
    assert_string_equal(fx.person, "alice");
    assert_string_equal(fx.emergency, "pager is on fire");
    assert_string_equal(fx.bound_image, "r/web:v7@sha256:abc");
    assert_string_equal(fx.from_env, "staging");
    assert_int_equal(fx.required, 3);
    assert_true(fx.policy_hash == 0xfedcba9876543210ull);
    assert_true(fx.created_at >= now - 1 && fx.created_at <= now + 5);
    expect_q(f, "SELECT policy_hash FROM requests WHERE id = 1", "fedcba9876543210");
    /* The emergency is flagged in the chain beside request.created. */
    expect_q(f, "SELECT string_agg(action || ':' || coalesce(outcome, '') || ':' || coalesce(detail, ''), ',' "
                "ORDER BY id) FROM audit_events",
             "request.created:pending_approval:,request.emergency:needs 3 approvals:pager is on fire");
    /* Not found; over-long inputs refused at create; a row too long for the buffers refused at read. */
    assert_int_equal(audit_request_facts(&f->db, 999, &fx), AUDIT_ERR_NOT_FOUND);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r.emergency = big;
    r.env = "other";
    assert_int_equal(audit_request_create(&f->db, &r, &id, NULL), AUDIT_ERR_INVALID);
    r.emergency = NULL;
    r.required_approvals = -1;
    assert_int_equal(audit_request_create(&f->db, &r, &id, NULL), AUDIT_ERR_INVALID);
    r.required_approvals = 0;
    r.actor = big; /* fits the request table, not an identity */
    assert_int_equal(audit_request_create(&f->db, &r, &id, NULL), AUDIT_OK);
    assert_int_equal(audit_request_facts(&f->db, id, &fx), AUDIT_ERR_INVALID);
    assert_non_null(strstr(f->db.errstr, "actor"));
    expect_intact(f);
}

/* ---- approvals ---- */

static void test_approvals_once_per_person(void **state) {
    fixture *f = *state;
    int64_t id = create_req(f, "prod", "web", "slack:UA", "alice", "pending_approval", 2, NULL);
    bool counted = false;
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UB", "bob", &counted, NULL), AUDIT_OK);
    assert_true(counted);
    long long events = qnum(f, "SELECT count(*) FROM audit_events");
    /* bob again from another platform: already counted, nothing written */
    counted = true;
    assert_int_equal(audit_approval_add(&f->db, id, "mattermost:bob", "bob", &counted, NULL), AUDIT_OK);
    assert_false(counted);
    assert_non_null(strstr(f->db.errstr, "already counted"));
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), events);
    assert_int_equal(qnum(f, "SELECT count(*) FROM request_approvals"), 1);
    /* an identity not under people: counts under itself, once */
    assert_int_equal(audit_approval_add(&f->db, id, "slack:U7", NULL, &counted, NULL), AUDIT_OK);
    assert_true(counted);
    assert_int_equal(audit_approval_add(&f->db, id, "slack:U7", "", &counted, NULL), AUDIT_OK);
    assert_false(counted);
    approvals_seen s = {0};
    assert_int_equal(audit_approvals_each(&f->db, id, collect_approval, &s), AUDIT_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.identity[0], "slack:UB");
    assert_string_equal(s.person[0], "bob");
    assert_string_equal(s.identity[1], "slack:U7");
    assert_string_equal(s.person[1], "");
    int64_t now = 0;
    assert_int_equal(audit_now(&f->db, &now), AUDIT_OK);
    assert_true(s.at[0] <= now && s.at[0] >= now - 5);
    expect_q(f, "SELECT string_agg(action || ':' || actor || ':' || coalesce(person, '-') || ':' || request_id, ',' "
                "ORDER BY id) FROM audit_events WHERE action = 'approval.given'",
             "approval.given:slack:UB:bob:1,approval.given:slack:U7:-:1");
    /* unknown request; bad input */
    assert_int_equal(audit_approval_add(&f->db, 999, "slack:UC", "carol", &counted, NULL), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(audit_approval_add(&f->db, id, "", "carol", &counted, NULL), AUDIT_ERR_INVALID);
    s.n = 0;
    assert_int_equal(audit_approvals_each(&f->db, 999, collect_approval, &s), AUDIT_OK);
    assert_int_equal(s.n, 0);
    expect_intact(f);
}

static void test_approval_with_transition(void **state) {
    fixture *f = *state;
    int64_t id = create_req(f, "prod", "web", "slack:UA", "alice", "pending_approval", 2, NULL);
    bool counted = false;
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UB", "bob", &counted, NULL), AUDIT_OK);
    audit_transition t = {.from_state = "pending_approval", .to_state = "approved", .action = "request.approved",
                          .actor = "slack:UC", .person = "carol", .outcome = "2 of 2", .nomad_job_version = -1};
    /* bob again with the completing transition: not counted, nothing moves */
    assert_int_equal(audit_approval_add(&f->db, id, "mattermost:bob", "bob", &counted, &t), AUDIT_OK);
    assert_false(counted);
    expect_q(f, "SELECT state FROM requests WHERE id = 1", "pending_approval");
    /* a wrong from_state: nothing written, not even the approval */
    audit_transition bad = t;
    bad.from_state = "queued";
    long long events = qnum(f, "SELECT count(*) FROM audit_events");
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UC", "carol", &counted, &bad), AUDIT_ERR_STATE);
    assert_false(counted);
    assert_int_equal(qnum(f, "SELECT count(*) FROM request_approvals"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), events);
    /* carol completes it: approval and transition in one transaction, consecutive events */
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UC", "carol", &counted, &t), AUDIT_OK);
    assert_true(counted);
    expect_q(f, "SELECT state FROM requests WHERE id = 1", "approved");
    expect_q(f, "SELECT string_agg(action || ':' || coalesce(from_state, '') || '>' || coalesce(to_state, ''), ',' "
                "ORDER BY id) FROM audit_events WHERE id > 2",
             "approval.given:pending_approval>pending_approval,request.approved:pending_approval>approved");
    expect_q(f, "SELECT count(DISTINCT at) FROM audit_events WHERE id > 2", "1");
    /* approved takes no more approvals */
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UD", "dave", &counted, NULL), AUDIT_ERR_STATE);
    assert_false(counted);
    assert_non_null(strstr(f->db.errstr, "takes no approvals"));
    expect_intact(f);
}

typedef struct race_arg {
    const char *conninfo;
    int64_t id;
    const char *identity;
    const char *person;
    pthread_barrier_t *go;
    int rc;
    bool counted;
    char err[256];
} race_arg;

static void *race_thread(void *p) {
    race_arg *a = p;
    audit_db db;
    int rc = audit_connect(&db, a->conninfo);
    pthread_barrier_wait(a->go);
    if (rc == AUDIT_OK) rc = audit_approval_add(&db, a->id, a->identity, a->person, &a->counted, NULL);
    a->rc = rc;
    snprintf(a->err, sizeof(a->err), "%s", db.errstr);
    audit_close(&db);
    return NULL;
}

/* One person on two platforms clicking at once, from separate connections:
 * the unique index lets exactly one count. Repeated to give the race a chance. */
static void test_approval_race(void **state) {
    fixture *f = *state;
    enum { N = 6, ROUNDS = 5 };
    for (int round = 0; round < ROUNDS; round++) {
        char job[16];
        snprintf(job, sizeof(job), "job%d", round);
        int64_t id = create_req(f, "prod", job, "slack:UA", "alice", "pending_approval", 2, NULL);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        pthread_t th[N];
        race_arg args[N];
        for (int i = 0; i < N; i++) {
            args[i] = (race_arg){.conninfo = f->conninfo, .id = id, .go = &go,
                                 .identity = i % 2 ? "mattermost:dave" : "slack:UD", .person = "dave"};
            assert_int_equal(pthread_create(&th[i], NULL, race_thread, &args[i]), 0);
        }
        int counted = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (args[i].rc != AUDIT_OK) fail_msg("approver %d: %s", i, args[i].err);
            counted += args[i].counted;
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(counted, 1);
        approvals_seen s = {0};
        assert_int_equal(audit_approvals_each(&f->db, id, collect_approval, &s), AUDIT_OK);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.person[0], "dave");
    }
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events WHERE action = 'approval.given'"), ROUNDS);
    expect_intact(f);
}

static void test_rebind_voids(void **state) {
    fixture *f = *state;
    int64_t id = create_req(f, "prod", "web", "slack:UA", "alice", "pending_approval", 2, NULL);
    bool counted = false;
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UB", "bob", &counted, NULL), AUDIT_OK);
    /* policy changed: approvals void, needs 3 now */
    assert_int_equal(audit_request_rebind(&f->db, id, 3, 0x1234ull, true, "nomatron", "config reloaded", NULL),
                     AUDIT_OK);
    approvals_seen s = {0};
    assert_int_equal(audit_approvals_each(&f->db, id, collect_approval, &s), AUDIT_OK);
    assert_int_equal(s.n, 0);
    audit_facts fx;
    assert_int_equal(audit_request_facts(&f->db, id, &fx), AUDIT_OK);
    assert_int_equal(fx.required, 3);
    assert_true(fx.policy_hash == 0x1234ull);
    /* bob may approve again in the new round; the old row stays */
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UB", "bob", &counted, NULL), AUDIT_OK);
    assert_true(counted);
    assert_int_equal(qnum(f, "SELECT count(*) FROM request_approvals"), 2);
    /* rebound to 0 needed: moves to approved in the same transaction */
    audit_transition t = {.from_state = "pending_approval", .to_state = "approved", .action = "request.approved",
                          .actor = "nomatron", .nomad_job_version = -1};
    assert_int_equal(audit_request_rebind(&f->db, id, 0, 0x99ull, false, "nomatron", NULL, &t), AUDIT_OK);
    expect_q(f, "SELECT state || ' ' || required_approvals FROM requests WHERE id = 1", "approved 0");
    assert_int_equal(audit_request_rebind(&f->db, id, 0, 0x99ull, false, "nomatron", NULL, &t), AUDIT_ERR_STATE);
    assert_int_equal(audit_request_rebind(&f->db, 999, 0, 0, false, "nomatron", NULL, NULL), AUDIT_ERR_NOT_FOUND);
    expect_q(f, "SELECT string_agg(action || ':' || coalesce(outcome, ''), ',' ORDER BY id) FROM audit_events "
                "WHERE action IN ('policy.rebound', 'request.approved')",
             "policy.rebound:needs 3 approvals; approvals void,policy.rebound:needs 0 approvals,request.approved:");
    expect_intact(f);
}

/* ---- one open request per (env, job) ---- */

static void test_one_open_request(void **state) {
    fixture *f = *state;
    int64_t first = create_req(f, "prod", "web", "slack:UA", "alice", "pending_approval", 1, NULL);
    audit_new_request r = {.kind = "deploy", .env = "prod", .job = "web", .canary = -1, .actor = "slack:UB",
                           .person = "bob", .state = "pending_approval", .required_approvals = 2};
    int64_t id = -1;
    long long events = qnum(f, "SELECT count(*) FROM audit_events");
    assert_int_equal(audit_request_create(&f->db, &r, &id, NULL), AUDIT_ERR_EXISTS);
    assert_int_equal(id, first);
    assert_non_null(strstr(f->db.errstr, "D-1 is already open"));
    assert_string_equal(audit_strerror(AUDIT_ERR_EXISTS), "an open request already exists");
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), events);
    /* other job, other env: fine; a request that needs no approvals is not bound */
    create_req(f, "prod", "api", "slack:UB", "bob", "pending_approval", 1, NULL);
    create_req(f, "staging", "web", "slack:UB", "bob", "pending_approval", 1, NULL);
    create_req(f, "prod", "web", "slack:UB", "bob", "queued", 0, NULL);
    /* once the open one is done, the next may open */
    audit_transition t = {.from_state = "pending_approval", .to_state = "cancelled", .action = "request.cancelled",
                          .actor = "slack:UA", .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&f->db, first, &t), AUDIT_OK);
    assert_int_equal(audit_request_create(&f->db, &r, &id, NULL), AUDIT_OK);
    assert_true(id > first);
    /* queued and running hold it too */
    audit_transition a = {.from_state = "pending_approval", .to_state = "queued", .action = "request.queued",
                          .actor = "nomatron", .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&f->db, id, &a), AUDIT_OK);
    int64_t again = 0;
    assert_int_equal(audit_request_create(&f->db, &r, &again, NULL), AUDIT_ERR_EXISTS);
    assert_int_equal(again, id);
    /* also with an idempotency key: a repeat of the key answers the old request, a new key is refused */
    r.env = "dr";
    r.idem_key = "slack:T1:1700000000.000100";
    int64_t k1 = 0, k2 = 0;
    bool existed = false;
    assert_int_equal(audit_request_create(&f->db, &r, &k1, &existed), AUDIT_OK);
    assert_int_equal(audit_request_create(&f->db, &r, &k2, &existed), AUDIT_OK);
    assert_true(existed);
    assert_int_equal(k1, k2);
    r.idem_key = "slack:T1:1700000000.000200";
    assert_int_equal(audit_request_create(&f->db, &r, &k2, &existed), AUDIT_ERR_EXISTS);
    assert_int_equal(k2, k1);
    expect_intact(f);
}

/* ---- locks ---- */

static void test_locks(void **state) {
    fixture *f = *state;
    bool locked = true;
    char by[AUDIT_IDENTITY_MAX + 1] = "x", reason[AUDIT_REASON_MAX + 1] = "x";
    int64_t since = -1;
    assert_int_equal(audit_lock_get(&f->db, "prod", &locked, by, reason, &since), AUDIT_OK);
    assert_false(locked);
    assert_string_equal(by, "");
    assert_string_equal(reason, "");
    assert_int_equal(since, 0);
    assert_int_equal(audit_lock_set(&f->db, "prod", false, "slack:UA", "alice", NULL), AUDIT_ERR_STATE);
    assert_non_null(strstr(f->db.errstr, "not locked"));
    assert_int_equal(audit_lock_set(&f->db, "prod", true, "slack:UA", "alice", "db migration"), AUDIT_OK);
    int64_t now = 0;
    assert_int_equal(audit_now(&f->db, &now), AUDIT_OK);
    assert_int_equal(audit_lock_get(&f->db, "prod", &locked, by, reason, &since), AUDIT_OK);
    assert_true(locked);
    assert_string_equal(by, "slack:UA");
    assert_string_equal(reason, "db migration");
    assert_true(since <= now && since >= now - 5);
    assert_int_equal(audit_lock_set(&f->db, "prod", true, "slack:UB", "bob", "again"), AUDIT_ERR_STATE);
    assert_non_null(strstr(f->db.errstr, "already locked"));
    /* other envs are unaffected */
    assert_int_equal(audit_lock_get(&f->db, "staging", &locked, NULL, NULL, NULL), AUDIT_OK);
    assert_false(locked);
    assert_int_equal(audit_lock_set(&f->db, "prod", false, "mattermost:bob", "bob", NULL), AUDIT_OK);
    assert_int_equal(audit_lock_get(&f->db, "prod", &locked, by, reason, &since), AUDIT_OK);
    assert_false(locked);
    assert_string_equal(by, "mattermost:bob");
    assert_int_equal(audit_lock_set(&f->db, "prod", true, "slack:UA", NULL, "friday"), AUDIT_OK);
    assert_int_equal(qnum(f, "SELECT count(*) FROM env_locks"), 3);
    expect_q(f, "SELECT string_agg(env || ':' || seq || ':' || locked, ',' ORDER BY id) FROM env_locks",
             "prod:1:true,prod:2:false,prod:3:true");
    expect_q(f, "SELECT string_agg(action || ':' || coalesce(request_id::text, 'NULL') || ':' || env || ':' || "
                "actor || ':' || coalesce(detail, '-'), ',' ORDER BY id) FROM audit_events",
             "env.locked:NULL:prod:slack:UA:db migration,env.unlocked:NULL:prod:mattermost:bob:-,"
             "env.locked:NULL:prod:slack:UA:friday");
    /* bad input */
    assert_int_equal(audit_lock_set(&f->db, "", true, "slack:UA", NULL, NULL), AUDIT_ERR_INVALID);
    assert_int_equal(audit_lock_get(&f->db, NULL, &locked, NULL, NULL, NULL), AUDIT_ERR_INVALID);
    expect_intact(f);
}

/* ---- refusals and counts ---- */

static void test_refusals_and_counts(void **state) {
    fixture *f = *state;
    audit_origin o = {.platform = "slack", .team = "T1", .channel = "slack:C9", .message_ref = "1700000000.000100"};
    assert_int_equal(audit_refusal(&f->db, &o, "slack:UB", "bob", "prod", "web", "wrong_channel",
                                   "commands for prod are taken only in slack:C0PROD"),
                     AUDIT_OK);
    assert_int_equal(audit_refusal(&f->db, NULL, "mattermost:bob", "bob", NULL, NULL, "bad_input", "what?"), AUDIT_OK);
    assert_int_equal(audit_refusal(&f->db, NULL, "slack:U9", NULL, "prod", "web", "not_deployer", "no"), AUDIT_OK);
    assert_int_equal(audit_refusal(&f->db, NULL, "", NULL, "prod", "web", "x", "no"), AUDIT_ERR_INVALID);
    assert_int_equal(audit_refusal(&f->db, NULL, "slack:U9", NULL, "prod", "web", NULL, "no"), AUDIT_ERR_INVALID);
    expect_q(f, "SELECT string_agg(action || ':' || coalesce(request_id::text, 'NULL') || ':' || outcome || ':' || "
                "coalesce(channel, '-') || ':' || coalesce(env, '-'), ',' ORDER BY id) FROM audit_events",
             "request.refused:NULL:wrong_channel:slack:C9:prod,request.refused:NULL:bad_input:-:-,"
             "request.refused:NULL:not_deployer:-:prod");
    /* bob: two refusals (two platforms) + a request; U9 counts under its identity */
    int64_t a = create_req(f, "prod", "web", "slack:UB", "bob", "pending_approval", 1, NULL);
    create_req(f, "staging", "web", "mattermost:bob", "bob", "queued", 0, NULL);
    create_req(f, "prod", "api", "slack:U9", NULL, "queued", 0, NULL);
    /* approvals and locks are not request-creating commands */
    assert_int_equal(audit_lock_set(&f->db, "prod", true, "slack:UB", "bob", "x"), AUDIT_OK);
    int n = -1;
    assert_int_equal(audit_recent_commands(&f->db, "bob", 60, &n), AUDIT_OK);
    assert_int_equal(n, 4);
    assert_int_equal(audit_recent_commands(&f->db, "slack:U9", 60, &n), AUDIT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(audit_recent_commands(&f->db, "slack:UB", 60, &n), AUDIT_OK);
    assert_int_equal(n, 0); /* bob's identity counts under his person */
    assert_int_equal(audit_recent_commands(&f->db, "nobody", 60, &n), AUDIT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(audit_recent_commands(&f->db, "bob", 0, &n), AUDIT_ERR_INVALID);
    /* the window slides: after more than a second, a 1 s window holds nothing */
    sleep(2);
    assert_int_equal(audit_recent_commands(&f->db, "bob", 1, &n), AUDIT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(audit_recent_commands(&f->db, "bob", 3600, &n), AUDIT_OK);
    assert_int_equal(n, 4);
    /* open counts: per person across identities; finished requests do not count */
    assert_int_equal(audit_open_count(&f->db, "bob", &n), AUDIT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(audit_open_count(&f->db, "slack:U9", &n), AUDIT_OK);
    assert_int_equal(n, 1);
    audit_transition t = {.from_state = "pending_approval", .to_state = "rejected", .action = "request.rejected",
                          .actor = "slack:UC", .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&f->db, a, &t), AUDIT_OK);
    assert_int_equal(audit_open_count(&f->db, "bob", &n), AUDIT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(audit_open_count(&f->db, "", &n), AUDIT_ERR_INVALID);
    /* the indexes serve these queries */
    expect_q(f, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ("
                "'requests_open_person_idx', "
                "'audit_events_commands_idx', 'requests_one_open_idx')",
             "3");
    expect_intact(f);
}

/* ---- expiry candidates and plans ---- */

typedef struct waiting_seen {
    int n;
    int64_t ids[8];
    char line[8][96];
} waiting_seen;

static int collect_waiting(int64_t id, const char *env, const char *st, int required, int64_t created, void *arg) {
    waiting_seen *w = arg;
    if (w->n < 8) {
        w->ids[w->n] = id;
        snprintf(w->line[w->n], sizeof(w->line[0]), "%s %s %d %s", env, st, required, created > 0 ? "t" : "0");
    }
    w->n++;
    return 0;
}

static void test_waiting_and_plan(void **state) {
    fixture *f = *state;
    int64_t a = create_req(f, "prod", "web", "slack:UA", "alice", "pending_approval", 1, NULL);
    int64_t b = create_req(f, "prod", "api", "slack:UA", "alice", "pending_approval", 1, NULL);
    create_req(f, "dev", "web", "slack:UA", "alice", "queued", 0, NULL);        /* needs none: never expires */
    int64_t d = create_req(f, "staging", "web", "slack:UA", "alice", "pending_approval", 1, NULL);
    bool counted;
    audit_transition t = {.from_state = "pending_approval", .to_state = "approved", .action = "request.approved",
                          .actor = "slack:UB", .nomad_job_version = -1};
    assert_int_equal(audit_approval_add(&f->db, b, "slack:UB", "bob", &counted, &t), AUDIT_OK);
    audit_transition c = {.from_state = "pending_approval", .to_state = "cancelled", .action = "request.cancelled",
                          .actor = "slack:UA", .nomad_job_version = -1};
    assert_int_equal(audit_request_transition(&f->db, d, &c), AUDIT_OK);
    waiting_seen w = {0};
    assert_int_equal(audit_pending_expired(&f->db, collect_waiting, &w), AUDIT_OK);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ids[0], a);
    assert_string_equal(w.line[0], "prod pending_approval 1 t");
    assert_int_equal(w.ids[1], b);
    assert_string_equal(w.line[1], "prod approved 1 t");

    assert_int_equal(audit_plan_record(&f->db, a, 4711, "9f86d081884c7d65", "1 to update"), AUDIT_OK);
    audit_facts fx;
    assert_int_equal(audit_request_facts(&f->db, a, &fx), AUDIT_OK);
    assert_int_equal(fx.plan_modify_index, 4711);
    assert_string_equal(fx.plan_hash, "9f86d081884c7d65");
    expect_q(f, "SELECT action || ':' || request_id || ':' || outcome || ':' || detail || ':' || env FROM audit_events "
                "WHERE action = 'plan.made'",
             "plan.made:1:9f86d081884c7d65:job_modify_index=4711: 1 to update:prod");
    assert_int_equal(audit_plan_record(&f->db, 999, 1, "h", NULL), AUDIT_ERR_NOT_FOUND);
    assert_int_equal(audit_plan_record(&f->db, a, -1, "h", NULL), AUDIT_ERR_INVALID);
    assert_int_equal(audit_plan_record(&f->db, a, 1, "", NULL), AUDIT_ERR_INVALID);
    expect_intact(f);
}


/* Racing writers of one thing: N lockers of one env, or N requesters of one
 * (env, job) that needs approvals. Exactly one wins; the rest get the code
 * that says "look again" (AUDIT_ERR_STATE) or names the winner (AUDIT_ERR_EXISTS). */
typedef struct race2_arg {
    const char *conninfo;
    int what; /* 0 lock, 1 create */
    int i;
    pthread_barrier_t *go;
    int rc;
    int64_t id;
} race2_arg;

static void *race2_thread(void *p) {
    race2_arg *a = p;
    audit_db db;
    int rc = audit_connect(&db, a->conninfo);
    char who[32];
    snprintf(who, sizeof(who), "slack:U%d", a->i);
    pthread_barrier_wait(a->go);
    if (rc == AUDIT_OK && a->what == 0) rc = audit_lock_set(&db, "prod", true, who, NULL, "race");
    if (rc == AUDIT_OK && a->what == 1) {
        audit_new_request r = {.kind = "deploy", .env = "prod", .job = "web", .canary = -1, .actor = who,
                               .state = "pending_approval", .required_approvals = 1};
        rc = audit_request_create(&db, &r, &a->id, NULL);
    }
    a->rc = rc;
    audit_close(&db);
    return NULL;
}

static void test_lock_and_create_races(void **state) {
    fixture *f = *state;
    enum { N = 6 };
    for (int what = 0; what < 2; what++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        pthread_t th[N];
        race2_arg args[N];
        for (int i = 0; i < N; i++) {
            args[i] = (race2_arg){.conninfo = f->conninfo, .what = what, .i = i, .go = &go};
            assert_int_equal(pthread_create(&th[i], NULL, race2_thread, &args[i]), 0);
        }
        int ok = 0;
        int64_t winner = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (args[i].rc == AUDIT_OK) {
                ok++;
                winner = args[i].id;
            } else if (args[i].rc != (what == 0 ? AUDIT_ERR_STATE : AUDIT_ERR_EXISTS)) {
                fail_msg("writer %d (%s): %s", i, what == 0 ? "lock" : "create", audit_strerror(args[i].rc));
            }
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(ok, 1);
        for (int i = 0; what == 1 && i < N; i++) assert_int_equal(args[i].id, winner);
    }
    assert_int_equal(qnum(f, "SELECT count(*) FROM env_locks"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM requests"), 1);
    assert_int_equal(qnum(f, "SELECT count(*) FROM audit_events"), 2);
    expect_intact(f);
}

/* ---- the guards ---- */

static void test_new_tables_append_only(void **state) {
    fixture *f = *state;
    int64_t id = create_req(f, "prod", "web", "slack:UA", "alice", "pending_approval", 2, NULL);
    bool counted;
    assert_int_equal(audit_approval_add(&f->db, id, "slack:UB", "bob", &counted, NULL), AUDIT_OK);
    assert_int_equal(audit_lock_set(&f->db, "prod", true, "slack:UA", "alice", "x"), AUDIT_OK);
    const char *stmts[] = {"UPDATE request_approvals SET person = 'mallory'", "DELETE FROM request_approvals",
                           "TRUNCATE request_approvals",                      "UPDATE env_locks SET locked = false",
                           "DELETE FROM env_locks",                          "TRUNCATE env_locks"};
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        char *st = exec_fails(f, stmts[i]);
        if (strcmp(st, "42501") != 0) fail_msg("%s: SQLSTATE %s", stmts[i], st);
        free(st);
    }
    expect_q(f, "SELECT person FROM request_approvals", "bob");
    expect_q(f, "SELECT locked::text FROM env_locks", "true");
    /* the unique constraint is the final guard even for a direct insert */
    char *st = exec_fails(f, "INSERT INTO request_approvals (request_id, identity, person) "
                             "VALUES (1, 'mattermost:bob', 'bob')");
    assert_string_equal(st, "23505");
    free(st);
    expect_intact(f);
}

/* The service role gets the new tables too (run only when an admin DSN is given). */
static void test_grants_cover_new_tables(void **state) {
    fixture *f = *state;
    assert_int_equal(audit_grant_app_role(&f->db, "nomatron", false), AUDIT_OK);
    expect_q(f, "SELECT has_table_privilege('nomatron', 'request_approvals', 'INSERT')::text || "
                "has_table_privilege('nomatron', 'env_locks', 'SELECT')::text",
             "truetrue");
}

int main(void) {
    pg_fixture_prefix = "gov_t";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migration3_on_top, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_facts_roundtrip, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_approvals_once_per_person, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_approval_with_transition, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_approval_race, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_rebind_voids, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_one_open_request, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_locks, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_and_counts, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_and_plan, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_create_races, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_new_tables_append_only, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_grants_cover_new_tables, setup_migrated, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
