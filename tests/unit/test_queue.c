/* queue/: the synchronous side against a real Redis (NOMATRON_REDIS_PORT,
 * database 3, flushed before each test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "queue.h"
#include "queue_async.h"

static char url[128];

static redisReply *raw(queue_conn *q, const char *cmd, const char *a, const char *b) {
    const char *argv[] = {cmd, a, b};
    int argc = b ? 3 : a ? 2 : 1;
    return redisCommandArgv(q->rc, argc, argv, NULL);
}

static int setup(void **state) {
    queue_conn *q = calloc(1, sizeof(*q));
    const char *port = getenv("NOMATRON_REDIS_PORT");
    if (!port) {
        fprintf(stderr, "NOMATRON_REDIS_PORT is not set: run through deploy/dev/test\n");
        free(q);
        return -1;
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/3", port);
    if (queue_connect(q, url, 2000) != QUEUE_OK) {
        fprintf(stderr, "cannot connect: %s\n", q->errstr);
        free(q);
        return -1;
    }
    freeReplyObject(raw(q, "FLUSHDB", NULL, NULL));
    *state = q;
    return 0;
}

static int teardown(void **state) {
    queue_conn *q = *state;
    queue_close(q);
    free(q);
    return 0;
}

static void test_work_roundtrip(void **state) {
    queue_conn *q = *state;
    queue_work w;
    assert_int_equal(queue_setup(q), QUEUE_OK);
    assert_int_equal(queue_setup(q), QUEUE_OK);   /* BUSYGROUP is fine */
    assert_int_equal(queue_work_next(q, "c1", 10, &w), QUEUE_ERR_EMPTY);
    assert_int_equal(queue_work_add(q, "request", "42"), QUEUE_OK);
    assert_int_equal(queue_work_next(q, "c1", 100, &w), QUEUE_OK);
    assert_string_equal(w.kind, "request");
    assert_string_equal(w.id, "42");
    /* Delivered once to the group: a second consumer sees nothing new. */
    queue_work w2;
    assert_int_equal(queue_work_next(q, "c2", 10, &w2), QUEUE_ERR_EMPTY);
    redisReply *r = raw(q, "XPENDING", QUEUE_WORK_STREAM, QUEUE_WORK_GROUP);
    assert_int_equal(r->element[0]->integer, 1);
    freeReplyObject(r);
    assert_int_equal(queue_work_ack(q, w.entry_id), QUEUE_OK);
    r = raw(q, "XPENDING", QUEUE_WORK_STREAM, QUEUE_WORK_GROUP);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
}

static void test_malformed_entry_is_acked_and_skipped(void **state) {
    queue_conn *q = *state;
    queue_work w;
    assert_int_equal(queue_setup(q), QUEUE_OK);
    const char *argv[] = {"XADD", QUEUE_WORK_STREAM, "*", "garbage", "1"};
    freeReplyObject(redisCommandArgv(q->rc, 5, argv, NULL));
    assert_int_equal(queue_work_next(q, "c1", 10, &w), QUEUE_ERR_EMPTY);
    redisReply *r = raw(q, "XPENDING", QUEUE_WORK_STREAM, QUEUE_WORK_GROUP);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
}

static void test_group_recreated_after_data_loss(void **state) {
    queue_conn *q = *state;
    queue_work w;
    assert_int_equal(queue_setup(q), QUEUE_OK);
    freeReplyObject(raw(q, "FLUSHDB", NULL, NULL));   /* Redis restarted without its data */
    assert_int_equal(queue_work_next(q, "c1", 10, &w), QUEUE_ERR_EMPTY);
    assert_int_equal(queue_work_add(q, "request", "7"), QUEUE_OK);
    assert_int_equal(queue_work_next(q, "c1", 100, &w), QUEUE_OK);
    assert_string_equal(w.id, "7");
}

static void test_shell_events_are_capped_and_expire(void **state) {
    queue_conn *q = *state;
    char stream[128];
    queue_event_stream("shell:abc", stream, sizeof(stream));
    assert_string_equal(stream, "nomatron:events:shell:abc");
    queue_event_stream("slack:T1/C2", stream, sizeof(stream));
    assert_string_equal(stream, QUEUE_EVENTS_STREAM);
    for (int i = 0; i < QUEUE_SHELL_STREAM_MAXLEN + 300; i++)
        assert_int_equal(queue_event_publish(q, "shell:abc", "{\"type\":\"request\"}"), QUEUE_OK);
    redisReply *r = raw(q, "XLEN", "nomatron:events:shell:abc", NULL);
    assert_true(r->integer <= QUEUE_SHELL_STREAM_MAXLEN + 100);   /* MAXLEN ~ trims in whole nodes */
    assert_true(r->integer >= QUEUE_SHELL_STREAM_MAXLEN);
    freeReplyObject(r);
    r = raw(q, "TTL", "nomatron:events:shell:abc", NULL);
    assert_true(r->integer > 0 && r->integer <= QUEUE_SHELL_STREAM_TTL_S);
    freeReplyObject(r);
}

static void test_payload_ceiling(void **state) {
    queue_conn *q = *state;
    char *big = malloc(QUEUE_MAX_PAYLOAD + 2);
    memset(big, 'x', QUEUE_MAX_PAYLOAD + 1);
    big[QUEUE_MAX_PAYLOAD + 1] = '\0';
    assert_int_equal(queue_event_publish(q, "shell:abc", big), QUEUE_ERR_TOO_LARGE);
    free(big);
}

static void test_task_get(void **state) {
    queue_conn *q = *state;
    char *json = NULL;
    assert_int_equal(queue_task_get(q, "nope", &json), QUEUE_ERR_EMPTY);
    const char *argv[] = {"SET", QUEUE_TASK_PREFIX "t1", "{\"kind\":\"status\"}"};
    freeReplyObject(redisCommandArgv(q->rc, 3, argv, NULL));
    assert_int_equal(queue_task_get(q, "t1", &json), QUEUE_OK);
    assert_string_equal(json, "{\"kind\":\"status\"}");
    free(json);
}

static void test_connect_errors(void **state) {
    (void)state;
    queue_conn q;
    assert_int_equal(queue_connect(&q, "redis://127.0.0.1:1/0", 500), QUEUE_ERR_CONNECT);
    assert_non_null(strstr(q.errstr, "127.0.0.1:1"));
    queue_close(&q);
    assert_int_equal(queue_connect(&q, "rediss://127.0.0.1:6379/0", 500), QUEUE_ERR_INVALID);
    queue_close(&q);
    /* A dropped connection is reported, not crashed on. */
    assert_int_equal(queue_work_add(&q, "request", "1"), QUEUE_ERR_CONNECT);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A worker that dies leaves its entry pending; another takes it after the
 * idle time, and the first can no longer keep it alive. */
static void test_stale_claim_and_touch(void **state) {
    queue_conn *q = *state;
    queue_work w, taken;
    assert_int_equal(queue_setup(q), QUEUE_OK);
    assert_int_equal(queue_work_add(q, "request", "7"), QUEUE_OK);
    assert_int_equal(queue_work_next(q, "dead", 100, &w), QUEUE_OK);
    assert_int_equal(queue_work_claim_stale(q, "alive", 200, &taken), QUEUE_ERR_EMPTY);   /* not idle yet */
    assert_int_equal(queue_work_touch(q, "dead", w.entry_id), QUEUE_OK);
    sleep_ms(250);
    assert_int_equal(queue_work_touch(q, "dead", w.entry_id), QUEUE_OK);   /* touched: idle again from 0 */
    assert_int_equal(queue_work_claim_stale(q, "alive", 200, &taken), QUEUE_ERR_EMPTY);
    sleep_ms(250);
    assert_int_equal(queue_work_claim_stale(q, "alive", 200, &taken), QUEUE_OK);
    assert_string_equal(taken.entry_id, w.entry_id);
    assert_string_equal(taken.id, "7");
    /* The old owner's keepalive now fails instead of stealing it back. */
    assert_int_equal(queue_work_touch(q, "dead", w.entry_id), QUEUE_ERR_EMPTY);
    assert_int_equal(queue_work_touch(q, "alive", w.entry_id), QUEUE_OK);
    assert_int_equal(queue_work_ack(q, taken.entry_id), QUEUE_OK);
    assert_int_equal(queue_work_touch(q, "alive", w.entry_id), QUEUE_ERR_EMPTY);   /* acknowledged: gone */
}

static void test_stale_claim_survives_trimmed_entries(void **state) {
    queue_conn *q = *state;
    queue_work w, taken;
    assert_int_equal(queue_setup(q), QUEUE_OK);
    assert_int_equal(queue_work_add(q, "request", "8"), QUEUE_OK);
    assert_int_equal(queue_work_next(q, "dead", 100, &w), QUEUE_OK);
    freeReplyObject(raw(q, "XDEL", QUEUE_WORK_STREAM, w.entry_id));   /* trimmed while pending */
    sleep_ms(60);
    assert_int_equal(queue_work_claim_stale(q, "alive", 50, &taken), QUEUE_ERR_EMPTY);
}

static void test_leases(void **state) {
    queue_conn *q = *state;
    char holder[64];
    const char *key = "nomatron:lease:job:staging:web";
    /* Scripts go by digest (EVALSHA); a Redis that forgot them (restart, SCRIPT FLUSH) gets them again. */
    freeReplyObject(raw(q, "SCRIPT", "FLUSH", NULL));
    assert_int_equal(queue_lease_holder(q, key, holder, sizeof(holder)), QUEUE_ERR_EMPTY);
    assert_int_equal(queue_lease_acquire(q, key, "1 a", 300, holder, sizeof(holder)), QUEUE_OK);
    assert_string_equal(holder, "1 a");
    assert_int_equal(queue_lease_acquire(q, key, "1 a", 300, NULL, 0), QUEUE_OK);   /* ours: renewed */
    assert_int_equal(queue_lease_acquire(q, key, "2 b", 300, holder, sizeof(holder)), QUEUE_ERR_EMPTY);
    assert_string_equal(holder, "1 a");
    assert_int_equal(queue_lease_renew(q, key, "2 b", 300), QUEUE_ERR_EMPTY);
    assert_int_equal(queue_lease_release(q, key, "2 b"), QUEUE_ERR_EMPTY);   /* not the owner: kept */
    assert_int_equal(queue_lease_holder(q, key, holder, sizeof(holder)), QUEUE_OK);
    assert_string_equal(holder, "1 a");
    assert_int_equal(queue_lease_renew(q, key, "1 a", 300), QUEUE_OK);
    freeReplyObject(raw(q, "SCRIPT", "FLUSH", NULL));
    assert_int_equal(queue_lease_release(q, key, "1 a"), QUEUE_OK);
    assert_int_equal(queue_lease_holder(q, key, holder, sizeof(holder)), QUEUE_ERR_EMPTY);
    /* An owner that stops renewing loses it to the TTL. */
    assert_int_equal(queue_lease_acquire(q, key, "3 c", 100, NULL, 0), QUEUE_OK);
    sleep_ms(150);
    assert_int_equal(queue_lease_renew(q, key, "3 c", 100), QUEUE_ERR_EMPTY);
    assert_int_equal(queue_lease_acquire(q, key, "4 d", 100, NULL, 0), QUEUE_OK);
}

static void test_eviction_policy(void **state) {
    queue_conn *q = *state;
    char policy[64];
    assert_int_equal(queue_eviction_policy(q, policy, sizeof(policy)), QUEUE_OK);
    assert_string_equal(policy, "noeviction");   /* deploy/dev/lib.sh starts Redis so */
}

/* The async side's idempotency fast path: a remembered key answers with its request ID. */
typedef struct idem_probe {
    uv_loop_t *loop;
    queue_async *qa;
    int step;
    char got[64];
} idem_probe;

static void idem_answer(void *ud, int code, const char *id) {
    idem_probe *p = ud;
    assert_int_equal(code, QUEUE_OK);
    snprintf(p->got, sizeof(p->got), "%s", id ? id : "");
    p->step++;
}

static void idem_poll(uv_timer_t *t) {
    idem_probe *p = t->data;
    if (p->step == 0 && queue_async_up(p->qa)) {
        p->step = 1;
        assert_int_equal(queue_async_idem_get(p->qa, "slack:T1:trigger-1", idem_answer, p), QUEUE_OK);
    } else if (p->step == 2) {
        assert_string_equal(p->got, "");   /* unknown: PostgreSQL decides */
        assert_int_equal(queue_async_idem_put(p->qa, "slack:T1:trigger-1", "42"), QUEUE_OK);
        assert_int_equal(queue_async_idem_put(p->qa, "slack:T1:trigger-1", "43"), QUEUE_OK);   /* first one wins */
        p->step = 3;
        assert_int_equal(queue_async_idem_get(p->qa, "slack:T1:trigger-1", idem_answer, p), QUEUE_OK);
    } else if (p->step == 4) {
        assert_string_equal(p->got, "42");
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        queue_async_close(p->qa);
    }
}

static void test_async_idempotency(void **state) {
    queue_conn *q = *state;
    (void)q;
    idem_probe p = {.loop = uv_loop_new()};
    char err[128];
    p.qa = queue_async_new(p.loop, url, NULL, NULL, err, sizeof(err));
    assert_non_null(p.qa);
    uv_timer_t t;
    uv_timer_init(p.loop, &t);
    t.data = &p;
    uv_timer_start(&t, idem_poll, 10, 10);
    uv_run(p.loop, UV_RUN_DEFAULT);
    assert_int_equal(p.step, 4);
    uv_loop_close(p.loop);
    free(p.loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_work_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_entry_is_acked_and_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_recreated_after_data_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shell_events_are_capped_and_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_ceiling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_get, setup, teardown),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test_setup_teardown(test_stale_claim_and_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_claim_survives_trimmed_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_idempotency, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
