/* queue/: the synchronous side against a real Redis (NOMATRON_REDIS_PORT,
 * database 3, flushed before each test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "queue.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_work_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_entry_is_acked_and_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_recreated_after_data_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shell_events_are_capped_and_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_ceiling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_get, setup, teardown),
        cmocka_unit_test(test_connect_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
