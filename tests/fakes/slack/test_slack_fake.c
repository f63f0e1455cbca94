/* slack-fake pinned to shared/reference/chat-protocols.md Part A (A<n>).
 *
 * Group 1 drives the pure modules (form decoding, ts, permalinks, acks,
 * redelivery frames). Group 2 spawns the binary on port 0 and talks to it
 * as the bot would: libcurl for the Web API and the control API, an lws
 * client for Socket Mode. Every wait is bounded; the whole run takes a few
 * seconds.   usage: test_slack_fake PATH/TO/slack-fake */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "state.h"
#include "webapi.h"

#define APP_TOKEN "xapp-1-A0TEST-1-abcdef"
#define BOT_TOKEN "xoxb-1111-2222-testtoken"
#define DEADLINE_MS 300
#define WALL_US INT64_C(1700000000000000) /* the wall clock the pure tests pass */

static const char *fake_bin;
static pid_t fake_pid = -1;
static int fake_port;
static char base[64];

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* "a.b.0.c" into nested objects/arrays; NULL when missing. */
static json_object *jpath(json_object *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            char *end;
            long i = strtol(k, &end, 10);
            o = *end ? NULL : json_object_array_get_idx(o, (size_t)i);
        } else if (!json_object_object_get_ex(o, k, &o)) {
            return NULL;
        }
    }
    return o;
}

static const char *jstr(json_object *o, const char *path) {
    json_object *v = jpath(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *path) {
    json_object *v = jpath(o, path);
    return v ? json_object_get_int64(v) : -999999;
}

static bool jbool(json_object *o, const char *path) {
    json_object *v = jpath(o, path);
    return v && json_object_get_boolean(v);
}

/* Evaluates a once (it is often an HTTP call). */
static const char *or_null(const char *s) { return s ? s : "(null)"; }
#define assert_str(a, b) assert_string_equal(or_null(a), (b))

/* =============================== pure =============================== */

static sf_state *pure_state(void) {
    sf_config cfg = {.team_id = "T0TEAM", .domain = "acme", .app_token = APP_TOKEN, .bot_token = BOT_TOKEN,
                     .ack_deadline_ms = 3000, .seed = 7};
    sf_state *st = sf_state_new(&cfg);
    assert_non_null(st);
    return st;
}

static void test_form_parse(void **state) {
    (void)state;
    json_object *o = json_object_new_object();
    const char *in = "a=1&b=x+y&c=%2Fz%26w&d&=e&&text=%E2%9C%85";
    assert_int_equal(sf_form_parse(in, strlen(in), o), 0);
    assert_str(jstr(o, "a"), "1");
    assert_str(jstr(o, "b"), "x y");
    assert_str(jstr(o, "c"), "/z&w");
    assert_str(jstr(o, "d"), "");
    assert_str(jstr(o, "text"), "\xE2\x9C\x85");
    assert_int_equal(json_object_object_length(o), 5);
    static const char *const bad[] = {"a=%zz", "a=%4", "a=%", "a=%00", "%G0=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sf_form_parse(bad[i], strlen(bad[i]), o), -1);
    json_object_put(o);
}

static void test_permalink_and_ts(void **state) {
    (void)state;
    char link[256];
    /* A10's own example. */
    assert_int_equal(sf_permalink("acme", "C0DEPLOY", "1358546515.000008", NULL, link, sizeof(link)), 0);
    assert_string_equal(link, "https://acme.slack.com/archives/C0DEPLOY/p1358546515000008");
    assert_int_equal(sf_permalink("acme", "C0DEPLOY", "1700000001.000200", "1700000000.000100", link, sizeof(link)), 0);
    assert_string_equal(link,
                        "https://acme.slack.com/archives/C0DEPLOY/p1700000001000200?thread_ts=1700000000.000100&cid=C0DEPLOY");
    assert_int_equal(sf_permalink("acme", "C1", "1.000001", NULL, link, 10), -1);

    sf_state *st = pure_state();
    char a[SF_TS_MAX], b[SF_TS_MAX], c[SF_TS_MAX];
    sf_next_ts(st, 1700000000000000, a);
    sf_next_ts(st, 1700000000000000, b); /* same clock reading */
    sf_next_ts(st, 1699999999000000, c); /* clock stepped back */
    assert_string_equal(a, "1700000000.000000");
    assert_string_equal(b, "1700000000.000001");
    assert_string_equal(c, "1700000000.000002");
    assert_true(sf_ts_valid(a));
    assert_false(sf_ts_valid("1700000000.00001"));
    assert_false(sf_ts_valid("1700000000"));
    assert_false(sf_ts_valid("x.000001"));
    sf_state_free(st);

    assert_int_equal(sf_utf8_chars("h\xC3\xA9llo"), 5);
    assert_int_equal(sf_utf8_prefix("h\xC3\xA9llo", 2), 3);
    int64_t v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(sf_percentile(v, 10, 0.5), 5);
    assert_int_equal(sf_percentile(v, 10, 0.99), 10);
    assert_int_equal(sf_percentile(v, 10, 0.9), 9);
    assert_int_equal(sf_percentile(v, 0, 0.5), 0);
    assert_true(sf_token_equal(BOT_TOKEN, BOT_TOKEN));
    assert_false(sf_token_equal("xoxb-1111-2222-testtokeN", BOT_TOKEN));
    assert_false(sf_token_equal("", ""));
}

/* A slash command's ack may carry the answer (A2.3, A3.3): Slack shows it. */
static void ack_env(sf_state *st, int conn, const char *id, const char *type, bool accepts) {
    json_object *p = json_tokener_parse("{\"user_id\":\"U0ANA\",\"channel_id\":\"C0DEPLOY\",\"text\":\"whoami\"}");
    char *frame = sf_envelope_frame(id, type, accepts, p, -1, NULL);
    json_object_put(p);
    sf_env_mark_sent(sf_env_add(st, id, type, conn, -1, frame, 0), 100, 0, false);
}

static int ack_with(sf_state *st, int conn, const char *id, const char *payload) {
    size_t n = strlen(id) + strlen(payload) + 64;
    char *buf = malloc(n);
    snprintf(buf, n, "{\"envelope_id\":\"%s\",\"payload\":%s}", id, payload);
    sf_env *got = NULL;
    int rc = sf_ack_frame(st, conn, buf, strlen(buf), 200, WALL_US, &got);
    free(buf);
    return rc;
}

/* The error (or "") of the first ack of a fresh slash envelope carrying payload. */
static const char *ack_verdict(sf_state *st, int conn, const char *payload) {
    static int seq;
    char id[32];
    snprintf(id, sizeof(id), "V%d", ++seq);
    ack_env(st, conn, id, "slash_commands", true);
    assert_int_equal(ack_with(st, conn, id, payload), SF_ACK_OK);
    const char *err = sf_env_find(st, id)->ack_error;
    return err ? err : "";
}

/* chat.postEphemeral's error (or "") for the same message fields. */
static const char *ephemeral_verdict(sf_state *st, const char *payload) {
    static char err[64];
    json_object *args = json_tokener_parse(payload);
    json_object_object_add(args, "channel", json_object_new_string("C0DEPLOY"));
    json_object_object_add(args, "user", json_object_new_string("U0REQUESTER"));
    const char *body = sf_json_text(args);
    sf_request rq = {.verb = "POST", .method = "chat.postEphemeral", .authorization = "Bearer " BOT_TOKEN,
                     .content_type = "application/json; charset=utf-8", .body = body, .body_len = strlen(body)};
    sf_response out = {0};
    sf_webapi_handle(st, &rq, WALL_US, &out);
    json_object *r = json_tokener_parse(out.body);
    snprintf(err, sizeof(err), "%s", jbool(r, "ok") ? "" : or_null(jstr(r, "error")));
    json_object_put(r);
    free(out.body);
    json_object_put(args);
    return err;
}

static size_t array_len(json_object *o, const char *path) {
    json_object *a = jpath(o, path);
    return a ? json_object_array_length(a) : 0;
}

static void test_ack_answers(void **state) {
    (void)state;
    sf_state *st = pure_state();
    sf_conn_rec *rec = sf_conn_new(st, 0);
    const char *names[] = {"A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"};
    for (int i = 0; i < 6; i++) ack_env(st, rec->id, names[i], "slash_commands", true);
    ack_env(st, rec->id, "A7", "slash_commands", false);
    ack_env(st, rec->id, "A8", "events_api", false);
    ack_env(st, rec->id, "A9", "interactive", true);

    assert_int_equal(ack_with(st, rec->id, "A1", "{\"response_type\":\"ephemeral\",\"text\":\"you are slack:U0ANA\"}"), SF_ACK_OK);
    assert_true(sf_env_find(st, "A1")->answered_in_ack);
    assert_null(sf_env_find(st, "A1")->ack_error);
    /* Only the first ack counts. */
    assert_int_equal(ack_with(st, rec->id, "A1", "{\"text\":\"again\"}"), SF_ACK_DUPLICATE);
    assert_int_equal(sf_env_find(st, "A1")->extra_acks, 1);
    assert_int_equal(ack_with(st, rec->id, "A2",
                              "{\"response_type\":\"in_channel\",\"text\":\"for all\",\"blocks\":[{\"type\":\"divider\"}]}"),
                     SF_ACK_OK);
    /* Silent: {}, a bare response_type (A3.3), null (A5), and no payload key. */
    assert_int_equal(ack_with(st, rec->id, "A3", "{}"), SF_ACK_OK);
    assert_int_equal(ack_with(st, rec->id, "A4", "{\"response_type\":\"in_channel\"}"), SF_ACK_OK);
    assert_int_equal(ack_with(st, rec->id, "A5", "null"), SF_ACK_OK);
    sf_env *got = NULL;
    assert_int_equal(sf_ack_frame(st, rec->id, "{\"envelope_id\":\"A6\"}", 20, 200, WALL_US, &got), SF_ACK_OK);
    /* Nowhere to show it: accepts_response_payload false, an event. An
     * interactive payload (response_action) is neither shown nor refused. */
    assert_int_equal(ack_with(st, rec->id, "A7", "{\"text\":\"not accepted\"}"), SF_ACK_OK);
    assert_int_equal(ack_with(st, rec->id, "A8", "{\"text\":\"an event\"}"), SF_ACK_OK);
    assert_int_equal(ack_with(st, rec->id, "A9", "{\"response_action\":\"clear\"}"), SF_ACK_OK);
    for (int i = 2; i < 9; i++) assert_false(sf_env_find(st, names[i])->answered_in_ack);
    for (int i = 2; i < 6; i++) assert_null(sf_env_find(st, names[i])->ack_error);
    assert_str(sf_env_find(st, "A7")->ack_error, "payload_not_accepted");
    assert_str(sf_env_find(st, "A8")->ack_error, "payload_not_accepted");
    assert_null(sf_env_find(st, "A9")->ack_error);
    assert_int_equal(st->ack_answers, 2);
    assert_int_equal(st->bad_ack_payloads, 2);

    char *text = sf_messages_json(st, NULL);
    json_object *m = json_tokener_parse(text);
    free(text);
    assert_int_equal(array_len(m, "ephemeral"), 1);
    json_object *e = jpath(m, "ephemeral.0");
    assert_str(jstr(e, "user"), "U0ANA");
    assert_str(jstr(e, "channel"), "C0DEPLOY");
    assert_str(jstr(e, "text"), "you are slack:U0ANA");
    assert_str(jstr(e, "via"), "ack");
    assert_true(sf_ts_valid(jstr(e, "message_ts")));
    assert_int_equal(array_len(m, "messages"), 1);
    json_object *c = jpath(m, "messages.0");
    assert_str(jstr(c, "channel"), "C0DEPLOY");
    assert_str(jstr(c, "text"), "for all");
    assert_str(jstr(c, "blocks.0.type"), "divider");
    assert_str(jstr(c, "via"), "ack");
    assert_true(sf_ts_valid(jstr(c, "ts")));
    assert_false(jbool(c, "by_bot"));   /* not chat.postMessage's: chat.update cannot edit it */
    json_object_put(m);

    /* The message checks are chat.postEphemeral's (A6): the same payloads
     * pass and fail with the same codes; 4,000 is in code points. */
    char *long_ok = malloc(2 * 4000 + 32), *long_bad = malloc(4001 + 32);
    strcpy(long_ok, "{\"text\":\"");
    for (int i = 0; i < 4000; i++) memcpy(long_ok + 9 + 2 * i, "\xc3\xa9", 2); /* é: 2 bytes, 1 code point */
    strcpy(long_ok + 9 + 2 * 4000, "\"}");
    strcpy(long_bad, "{\"text\":\"");
    memset(long_bad + 9, 'x', 4001);
    strcpy(long_bad + 9 + 4001, "\"}");
    const struct {
        const char *payload, *error;
    } cases[] = {
        {"{\"text\":\"plain\"}", ""},
        {"{\"blocks\":[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\"b\"}}]}", ""},
        {"{\"attachments\":[{\"text\":\"a\"}]}", ""},
        {"{\"text\":7}", ""},
        {long_ok, ""},
        {long_bad, "msg_too_long"},
        {"{\"text\":\"\"}", "no_text"},
        {"{\"text\":\"x\",\"blocks\":[]}", ""},
        {"{\"blocks\":[]}", "no_text"},
        {"{\"text\":{\"a\":1}}", "invalid_arguments"},
        {"{\"text\":\"x\",\"blocks\":[{\"text\":\"no type\"}]}", "invalid_blocks"},
        {"{\"text\":\"x\",\"blocks\":{\"type\":\"divider\"}}", "invalid_blocks_format"},
        {"{\"text\":\"x\",\"blocks\":\"[not json\"}", "invalid_blocks_format"},
        {"{\"text\":\"x\",\"attachments\":7}", "invalid_attachments"},
    };
    size_t answers = st->ack_answers, bad = st->bad_ack_payloads, shown = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_str(ephemeral_verdict(st, cases[i].payload), cases[i].error);
        assert_str(ack_verdict(st, rec->id, cases[i].payload), cases[i].error);
        if (!*cases[i].error) shown++;
    }
    assert_int_equal(st->ack_answers, answers + shown);
    assert_int_equal(st->bad_ack_payloads, bad + sizeof(cases) / sizeof(cases[0]) - shown);
    free(long_ok);
    free(long_bad);
    /* Not a message at all. */
    assert_str(ack_verdict(st, rec->id, "{\"response_type\":\"shout\",\"text\":\"x\"}"), "invalid_response_type");
    assert_str(ack_verdict(st, rec->id, "{\"response_type\":7,\"text\":\"x\"}"), "invalid_response_type");
    assert_str(ack_verdict(st, rec->id, "\"queued\""), "payload_not_object");
    assert_str(ack_verdict(st, rec->id, "[]"), "payload_not_object");
    /* Every ephemeral shown through the ack says so; the API's say "api". */
    text = sf_messages_json(st, NULL);
    m = json_tokener_parse(text);
    free(text);
    size_t via_ack = 0, via_api = 0;
    for (size_t i = 0; i < array_len(m, "ephemeral"); i++) {
        const char *via = jstr(json_object_array_get_idx(jpath(m, "ephemeral"), i), "via");
        if (strcmp(via, "ack") == 0) via_ack++;
        else if (strcmp(via, "api") == 0) via_api++;
    }
    assert_int_equal(via_ack, 1 + shown);
    assert_int_equal(via_api, shown);
    assert_int_equal(array_len(m, "messages"), 1);
    json_object_put(m);
    sf_state_free(st);
}

static void test_acks_pure(void **state) {
    (void)state;
    sf_state *st = pure_state();
    sf_conn_rec *rec = sf_conn_new(st, 0);
    json_object *payload = json_tokener_parse("{\"type\":\"event_callback\",\"event_id\":\"Ev1\"}");
    char *frame = sf_envelope_frame("E1", "events_api", false, payload, 0, "");
    json_object *f = json_tokener_parse(frame);
    /* A2.2 shape. */
    assert_str(jstr(f, "envelope_id"), "E1");
    assert_str(jstr(f, "type"), "events_api");
    assert_false(jbool(f, "accepts_response_payload"));
    assert_int_equal(jint(f, "retry_attempt"), 0);
    assert_str(jstr(f, "retry_reason"), "");
    json_object_put(f);
    sf_env *e = sf_env_add(st, "E1", "events_api", rec->id, 0, frame, 1000);
    sf_env_mark_sent(e, 2000, 0, false);
    sf_env *got;
    const char *ack = "{\"envelope_id\":\"E1\"}";
    assert_int_equal(sf_ack_frame(st, rec->id, ack, strlen(ack), 2500, WALL_US, &got), SF_ACK_OK);
    assert_ptr_equal(got, e);
    assert_int_equal(e->latency_us, 500);
    assert_null(e->ack_payload);
    assert_int_equal(sf_ack_frame(st, rec->id, ack, strlen(ack), 2600, WALL_US, &got), SF_ACK_DUPLICATE);
    const char *unknown = "{\"envelope_id\":\"nope\",\"payload\":{}}";
    assert_int_equal(sf_ack_frame(st, rec->id, unknown, strlen(unknown), 2600, WALL_US, &got), SF_ACK_UNKNOWN);
    static const char *const bad[] = {"{\"envelope_id\":1}", "[]", "{\"envelope_id\":\"E1\"} x", "{"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sf_ack_frame(st, rec->id, bad[i], strlen(bad[i]), 2600, WALL_US, &got), SF_ACK_BAD);

    /* The payload form (A2.3) and lateness at the 3 s deadline. */
    char *frame2 = sf_envelope_frame("E2", "slash_commands", true, payload, -1, NULL);
    sf_env *e2 = sf_env_add(st, "E2", "slash_commands", rec->id, -1, frame2, 0);
    sf_env_mark_sent(e2, 10000, 0, false);
    assert_false(sf_env_late(st, e2, 10000 + 3000000));
    assert_true(sf_env_late(st, e2, 10000 + 3000001));
    const char *ack2 = "{\"envelope_id\":\"E2\",\"payload\":{\"response_type\":\"ephemeral\",\"text\":\"queued\"}}";
    assert_int_equal(sf_ack_frame(st, rec->id, ack2, strlen(ack2), 10000 + 3500000, WALL_US, &got), SF_ACK_OK);
    assert_true(sf_env_late(st, e2, 99999999));
    assert_string_equal(e2->ack_payload, "{\"response_type\":\"ephemeral\",\"text\":\"queued\"}");

    /* Redelivery: new id, retry_attempt + 1, reason timeout, same payload. */
    int attempt = 0;
    char *re = sf_env_redelivery(e, "E3", &attempt);
    json_object *r = json_tokener_parse(re);
    assert_int_equal(attempt, 1);
    assert_str(jstr(r, "envelope_id"), "E3");
    assert_int_equal(jint(r, "retry_attempt"), 1);
    assert_str(jstr(r, "retry_reason"), "timeout");
    assert_str(jstr(r, "payload.event_id"), "Ev1");
    json_object_put(r);
    free(re);
    json_object_put(payload);
    sf_state_free(st);
}

static void test_envelope_ring(void **state) {
    (void)state;
    /* At the ceiling the oldest envelope goes and ids stay findable. */
    sf_state *st = pure_state();
    char id[SF_ID_MAX];
    for (int i = 0; i < SF_MAX_ENVELOPES + 10; i++) {
        snprintf(id, sizeof(id), "E%d", i);
        assert_non_null(sf_env_add(st, id, "slash_commands", 1, -1, strdup("{}"), i));
    }
    assert_null(sf_env_find(st, "E0"));
    assert_null(sf_env_find(st, "E9"));
    assert_non_null(sf_env_find(st, "E10"));
    snprintf(id, sizeof(id), "E%d", SF_MAX_ENVELOPES + 9);
    assert_non_null(sf_env_find(st, id));
    assert_int_equal(st->envs.dropped, 10);
    sf_state_free(st);
}

/* ============================ the binary ============================ */

static int spawn_fake(void) {
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    fake_pid = fork();
    if (fake_pid < 0) return -1;
    if (fake_pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(fake_bin, fake_bin, "--port", "0", "--team", "T0TEAM", "--domain", "acme", "--app-token", APP_TOKEN,
              "--bot-token", BOT_TOKEN, "--ping-interval", "1", "--ack-deadline-ms", "300", "--log-level", "error",
              "--seed", "42", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[256];
    size_t n = 0;
    int64_t until = now_ms() + 5000;
    while (n < sizeof(line) - 1 && now_ms() < until) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = read(pfd[0], line + n, 1);
        if (r <= 0) break;
        if (line[n++] == '\n') break;
    }
    line[n] = '\0';
    close(pfd[0]);
    if (sscanf(line, "slack-fake listening on 127.0.0.1:%d\n", &fake_port) != 1) {
        fprintf(stderr, "slack-fake did not start: [%s]\n", line);
        return -1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", fake_port);
    return 0;
}

/* ---------- HTTP (libcurl) ---------- */

typedef struct resp {
    long status;
    nm_buf body;
    json_object *json;
    char retry_after[32];
    double secs;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    return nm_buf_append(ud, p, sz * n) == NM_BUF_OK ? sz * n : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    resp *r = ud;
    size_t len = sz * n;
    if (len > 13 && strncasecmp(p, "retry-after:", 12) == 0) {
        const char *v = p + 12;
        while (*v == ' ') v++;
        size_t k = 0;
        while (k + 1 < sizeof(r->retry_after) && v[k] && v[k] != '\r' && v[k] != '\n') {
            r->retry_after[k] = v[k];
            k++;
        }
        r->retry_after[k] = '\0';
    }
    return len;
}

static void resp_free(resp *r) {
    nm_buf_free(&r->body);
    json_object_put(r->json);
    memset(r, 0, sizeof(*r));
}

/* verb GET/POST; token NULL = no Authorization header; ctype NULL = no
 * Content-Type (curl's default removed). */
static resp http(const char *verb, const char *path, const char *token, const char *ctype, const char *body,
                 size_t body_len) {
    resp r;
    memset(&r, 0, sizeof(r));
    nm_buf_init(&r.body, 64 * 1024 * 1024);
    CURL *c = curl_easy_init();
    char url[2048], auth[512], ct[256];
    snprintf(url, sizeof(url), "%s%s", base, path);
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    snprintf(ct, sizeof(ct), "Content-Type:%s%s", ctype ? " " : "", ctype ? ctype : "");
    h = curl_slist_append(h, ct);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    if (strcmp(verb, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    } else if (strcmp(verb, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, verb);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.secs);
        r.json = r.body.data ? json_tokener_parse(r.body.data) : NULL;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static resp post_json(const char *path, const char *token, const char *body) {
    return http("POST", path, token, "application/json; charset=utf-8", body, strlen(body));
}
static resp post_form(const char *path, const char *token, const char *body) {
    return http("POST", path, token, "application/x-www-form-urlencoded", body, strlen(body));
}
static resp get(const char *path, const char *token) { return http("GET", path, token, NULL, NULL, 0); }

/* A control call that must succeed; returns its JSON (caller puts). */
static json_object *ctl(const char *verb, const char *path, const char *body) {
    resp r = strcmp(verb, "GET") == 0 ? get(path, NULL) : post_json(path, NULL, body ? body : "{}");
    if (r.status != 200) fprintf(stderr, "%s %s -> %ld %s\n", verb, path, r.status, r.body.data ? r.body.data : "");
    assert_int_equal(r.status, 200);
    json_object *o = json_object_get(r.json);
    resp_free(&r);
    return o;
}

/* A Web API call's error ("" when ok:true). */
static char last_error[64];
static const char *api_error(resp r) {
    snprintf(last_error, sizeof(last_error), "%s",
             r.status != 200 ? "(http)" : jbool(r.json, "ok") ? "" : jstr(r.json, "error") ? jstr(r.json, "error") : "?");
    resp_free(&r);
    return last_error;
}

/* ---------- Socket Mode client (lws) ---------- */

#define WSC_QUEUE 512

typedef struct wsc {
    struct lws *wsi;
    bool established, error, closed, peer_close;
    char *in[WSC_QUEUE];
    int in_head, in_n;
    nm_buf rx;
    char *out[WSC_QUEUE];
    int out_head, out_n;
    bool want_ping;
    int pongs;
    bool auto_ack;
    const char *auto_ack_payload; /* NULL = {} */
    int acks_sent;
} wsc;

static struct lws_context *cctx;
static lws_sorted_usec_list_t tick_sul;

static void tick(lws_sorted_usec_list_t *sul) {
    /* Keeps lws_service from sleeping long: the test loops check their own
     * conditions between calls. */
    lws_sul_schedule(cctx, 0, sul, tick, 5 * LWS_US_PER_MS);
}

static void wsc_queue_out(wsc *c, const char *text) {
    if (c->out_n == WSC_QUEUE) return;
    c->out[(c->out_head + c->out_n++) % WSC_QUEUE] = strdup(text);
    if (c->wsi) lws_callback_on_writable(c->wsi);
}

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    wsc *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->established = true;
        if (c->out_n) lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            c->error = true;
            c->wsi = NULL;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        nm_buf_append(&c->rx, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            if (c->auto_ack) {
                json_object *o = json_tokener_parse(c->rx.data);
                const char *id = jstr(o, "envelope_id");
                if (id) {
                    char ack[256];
                    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\",\"payload\":%s}", id,
                             c->auto_ack_payload ? c->auto_ack_payload : "{}");
                    wsc_queue_out(c, ack);
                    c->acks_sent++;
                }
                json_object_put(o);
            } else if (c->in_n < WSC_QUEUE) {
                c->in[(c->in_head + c->in_n++) % WSC_QUEUE] = strdup(c->rx.data);
            }
            nm_buf_reset(&c->rx);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->want_ping) {
            unsigned char b[LWS_PRE + 4];
            memcpy(b + LWS_PRE, "ping", 4);
            c->want_ping = false;
            if (lws_write(wsi, b + LWS_PRE, 4, LWS_WRITE_PING) < 4) return -1;
        } else if (c->out_n) {
            char *t = c->out[c->out_head];
            c->out_head = (c->out_head + 1) % WSC_QUEUE;
            c->out_n--;
            size_t n = strlen(t);
            unsigned char *b = malloc(LWS_PRE + n);
            memcpy(b + LWS_PRE, t, n);
            int w = lws_write(wsi, b + LWS_PRE, n, LWS_WRITE_TEXT);
            free(b);
            free(t);
            if (w < (int)n) return -1;
        }
        if (c->out_n || c->want_ping) lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        c->pongs++;
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        c->peer_close = true;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->closed = true;
        c->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols client_protocols[] = {
    {"test-client", client_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

typedef bool (*pred_fn)(void *arg);

/* Services the client until pred holds or timeout_ms passes. */
static bool pump_until(pred_fn pred, void *arg, int timeout_ms) {
    int64_t until = now_ms() + timeout_ms;
    while (!pred(arg)) {
        if (now_ms() > until) return false;
        lws_service(cctx, 0);
    }
    return true;
}

static void pump_for(int ms) {
    int64_t until = now_ms() + ms;
    while (now_ms() < until) lws_service(cctx, 0);
}

static bool p_connected(void *a) {
    wsc *c = a;
    return c->established || c->error || c->closed;
}
static bool p_closed(void *a) {
    wsc *c = a;
    return c->closed || c->error;
}
static bool p_has_msg(void *a) { return ((wsc *)a)->in_n > 0; }
static bool p_sent_all(void *a) { return ((wsc *)a)->out_n == 0; }

static wsc *ws_connect_url(const char *url) {
    int port = 0;
    char path[256];
    if (sscanf(url, "ws://127.0.0.1:%d%255s", &port, path) != 2) return NULL;
    wsc *c = calloc(1, sizeof(*c));
    nm_buf_init(&c->rx, 4 * 1024 * 1024);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = cctx;
    i.address = "127.0.0.1";
    i.port = port;
    i.path = path;
    i.host = i.origin = "127.0.0.1";
    i.local_protocol_name = "test-client";
    i.userdata = c;
    i.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&i)) c->error = true;
    pump_until(p_connected, c, 3000);
    return c;
}

/* apps.connections.open, then connect to the URL it gives. */
static wsc *ws_open(void) {
    resp r = post_form("/api/apps.connections.open", APP_TOKEN, "");
    assert_int_equal(r.status, 200);
    assert_true(jbool(r.json, "ok"));
    char url[256];
    snprintf(url, sizeof(url), "%s", jstr(r.json, "url"));
    resp_free(&r);
    wsc *c = ws_connect_url(url);
    assert_non_null(c);
    assert_true(c->established);
    return c;
}

/* Next text frame as JSON (caller puts), or NULL after timeout_ms. */
static json_object *ws_next(wsc *c, int timeout_ms) {
    if (!pump_until(p_has_msg, c, timeout_ms)) return NULL;
    char *t = c->in[c->in_head];
    c->in_head = (c->in_head + 1) % WSC_QUEUE;
    c->in_n--;
    json_object *o = json_tokener_parse(t);
    free(t);
    return o;
}

static void ws_send(wsc *c, const char *text) {
    wsc_queue_out(c, text);
    assert_true(pump_until(p_sent_all, c, 2000));
}

static void ws_free(wsc *c) {
    if (!c) return;
    if (c->wsi && !c->closed) {
        /* Ask lws to close it and wait for the callback before freeing. */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        pump_until(p_closed, c, 2000);
    }
    while (c->in_n) {
        free(c->in[c->in_head]);
        c->in_head = (c->in_head + 1) % WSC_QUEUE;
        c->in_n--;
    }
    while (c->out_n) {
        free(c->out[c->out_head]);
        c->out_head = (c->out_head + 1) % WSC_QUEUE;
        c->out_n--;
    }
    nm_buf_free(&c->rx);
    free(c);
}

/* A hello'd connection: the first frame must be hello (A2.2). */
static wsc *ws_ready(json_object **hello_out) {
    wsc *c = ws_open();
    json_object *h = ws_next(c, 2000);
    assert_non_null(h);
    assert_str(jstr(h, "type"), "hello");
    if (hello_out) *hello_out = h;
    else json_object_put(h);
    return c;
}

static int open_count(void) {
    json_object *o = ctl("GET", "/_fake/connections", NULL);
    int n = (int)jint(o, "open");
    json_object_put(o);
    return n;
}

/* The idx-th open connection record (new ref), NULL if none. */
static json_object *open_conn(int idx) {
    json_object *all = ctl("GET", "/_fake/connections", NULL), *arr = jpath(all, "connections"), *r = NULL;
    for (size_t i = 0; i < json_object_array_length(arr) && !r; i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        if (jbool(c, "open") && idx-- == 0) r = json_object_get(c);
    }
    json_object_put(all);
    return r;
}

static int server_setup(void **state) {
    (void)state;
    if (spawn_fake() != 0) return -1;
    lws_set_log_level(0, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = client_protocols;
    cctx = lws_create_context(&info);
    if (!cctx) return -1;
    tick(&tick_sul);
    return 0;
}

static int server_teardown(void **state) {
    (void)state;
    lws_sul_cancel(&tick_sul);
    lws_context_destroy(cctx);
    cctx = NULL;
    /* SIGTERM exits 0. */
    int status = -1;
    kill(fake_pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(fake_pid, &status, WNOHANG) == fake_pid) break;
        sleep_ms(10);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "slack-fake did not exit 0 on SIGTERM (status %d)\n", status);
        kill(fake_pid, SIGKILL);
        waitpid(fake_pid, &status, 0);
        return -1;
    }
    return 0;
}

/* Each test starts with no connections and empty records. */
static int each_setup(void **state) {
    (void)state;
    json_object_put(ctl("POST", "/_fake/drop", NULL));
    int64_t until = now_ms() + 2000;
    while (open_count() > 0 && now_ms() < until) sleep_ms(5);
    json_object_put(ctl("POST", "/_fake/reset", NULL));
    return open_count() == 0 ? 0 : -1;
}

/* ---------- A2.1 apps.connections.open ---------- */

static void test_connections_open(void **state) {
    (void)state;
    resp r = post_form("/api/apps.connections.open", APP_TOKEN, "");
    assert_int_equal(r.status, 200);
    assert_true(jbool(r.json, "ok"));
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ws://127.0.0.1:%d/link/?ticket=", fake_port);
    assert_non_null(jstr(r.json, "url"));
    assert_memory_equal(jstr(r.json, "url"), prefix, strlen(prefix));
    assert_true(strlen(jstr(r.json, "url")) > strlen(prefix) + 8);
    resp_free(&r);

    assert_str(api_error(post_form("/api/apps.connections.open", BOT_TOKEN, "")), "not_allowed_token_type");
    assert_str(api_error(post_form("/api/apps.connections.open", "xapp-1-wrong", "")), "invalid_auth");
    assert_str(api_error(post_form("/api/apps.connections.open", NULL, "")), "not_authed");
    /* The token must be in the header, never a parameter (A2.1). */
    assert_str(api_error(post_form("/api/apps.connections.open", NULL, "token=" APP_TOKEN)), "not_authed");
    assert_str(api_error(post_form("/api/apps.connections.open", APP_TOKEN, "token=" APP_TOKEN)), "not_authed");
    assert_str(api_error(post_json("/api/apps.connections.open", APP_TOKEN, "{\"token\":\"" APP_TOKEN "\"}")),
               "not_authed");
    assert_str(api_error(http("POST", "/api/apps.connections.open?token=" APP_TOKEN, NULL, NULL, NULL, 0)),
               "not_authed");
    assert_str(api_error(post_json("/api/apps.connections.open", APP_TOKEN, "{}")), "");

    json_object *c = ctl("GET", "/_fake/connections", NULL);
    assert_true(jint(c, "connections_open_calls") >= 2);
    json_object_put(c);
}

static void test_ticket_single_use(void **state) {
    (void)state;
    resp r = post_form("/api/apps.connections.open", APP_TOKEN, "");
    char url[256];
    snprintf(url, sizeof(url), "%s", jstr(r.json, "url"));
    resp_free(&r);
    wsc *a = ws_connect_url(url);
    assert_true(a->established);
    wsc *b = ws_connect_url(url); /* the same ticket again */
    assert_false(b->established);
    assert_true(b->error || b->closed);
    char unknown[256];
    snprintf(unknown, sizeof(unknown), "ws://127.0.0.1:%d/link/?ticket=0123456789abcdef0123456789abcdef", fake_port);
    wsc *c = ws_connect_url(unknown);
    assert_false(c->established);
    snprintf(unknown, sizeof(unknown), "ws://127.0.0.1:%d/link/", fake_port);
    wsc *d = ws_connect_url(unknown);
    assert_false(d->established);
    ws_free(a);
    ws_free(b);
    ws_free(c);
    ws_free(d);
}

/* ---------- A2.2 hello ---------- */

static void test_hello_first(void **state) {
    (void)state;
    json_object *h1, *h2;
    wsc *a = ws_ready(&h1);
    assert_int_equal(jint(h1, "num_connections"), 1);
    assert_str(jstr(h1, "connection_info.app_id"), "A0NOMATRON");
    assert_true(json_object_is_type(jpath(h1, "debug_info.approximate_connection_time"), json_type_int));
    assert_true(jint(h1, "debug_info.approximate_connection_time") > 0);
    assert_non_null(jstr(h1, "debug_info.host"));
    wsc *b = ws_ready(&h2);
    assert_int_equal(jint(h2, "num_connections"), 2);
    json_object *c = ctl("GET", "/_fake/connections", NULL);
    assert_int_equal(jint(c, "open"), 2);
    json_object_put(c);
    for (int i = 0; i < 2; i++) {
        c = open_conn(i);
        assert_true(jbool(c, "hello_sent"));
        json_object_put(c);
    }
    json_object_put(h1);
    json_object_put(h2);
    ws_free(a);
    ws_free(b);
}

static void test_too_many_connections(void **state) {
    (void)state;
    wsc *c[SF_MAX_CONNECTIONS + 1];
    for (int i = 0; i < SF_MAX_CONNECTIONS; i++) c[i] = ws_ready(NULL);
    /* A2.4: ten per app; the 11th is told too_many_websockets and closed. */
    wsc *x = ws_open();
    json_object *d = ws_next(x, 2000);
    assert_str(jstr(d, "type"), "disconnect");
    assert_str(jstr(d, "reason"), "too_many_websockets");
    json_object_put(d);
    assert_true(pump_until(p_closed, x, 2000));
    ws_free(x);
    for (int i = 0; i < SF_MAX_CONNECTIONS; i++) ws_free(c[i]);
}

/* ---------- A2.2/A2.3 envelopes and acks ---------- */

static json_object *slash(const char *extra) {
    char body[512];
    snprintf(body, sizeof(body), "{\"user_id\":\"U0APPROVER\",\"channel_id\":\"C0DEPLOY\",\"text\":\"deploy api 1.4.2 to prod\"%s}",
             extra ? extra : "");
    return ctl("POST", "/_fake/slash", body);
}

static json_object *acks_for(const char *envelope_id) {
    json_object *all = ctl("GET", "/_fake/acks", NULL), *arr = jpath(all, "envelopes");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (strcmp(jstr(e, "envelope_id"), envelope_id) == 0) {
            json_object *r = json_object_get(e);
            json_object_put(all);
            return r;
        }
    }
    json_object_put(all);
    return NULL;
}

static void test_slash_envelope_and_acks(void **state) {
    (void)state;
    wsc *c = ws_ready(NULL);
    json_object *s1 = slash(NULL), *s2 = slash(", \"command\": \"/deploy\"");
    json_object *e1 = ws_next(c, 2000), *e2 = ws_next(c, 2000);
    assert_non_null(e1);
    assert_non_null(e2);
    /* A2.2 envelope + A3.1 payload fields. */
    assert_str(jstr(e1, "envelope_id"), jstr(s1, "envelope_id"));
    assert_str(jstr(e1, "type"), "slash_commands");
    assert_true(jbool(e1, "accepts_response_payload"));
    assert_true(json_object_is_type(jpath(e1, "payload"), json_type_object));
    assert_str(jstr(e1, "payload.command"), "/nomatron");
    assert_str(jstr(e2, "payload.command"), "/deploy");
    assert_str(jstr(e1, "payload.text"), "deploy api 1.4.2 to prod");
    assert_str(jstr(e1, "payload.user_id"), "U0APPROVER");
    assert_str(jstr(e1, "payload.user_name"), "ana");
    assert_str(jstr(e1, "payload.channel_id"), "C0DEPLOY");
    assert_str(jstr(e1, "payload.channel_name"), "c0deploy");
    assert_str(jstr(e1, "payload.team_id"), "T0TEAM");
    assert_str(jstr(e1, "payload.team_domain"), "acme");
    assert_str(jstr(e1, "payload.api_app_id"), "A0NOMATRON");
    assert_str(jstr(e1, "payload.trigger_id"), jstr(s1, "trigger_id"));
    assert_non_null(jstr(e1, "payload.response_url"));
    assert_non_null(strstr(jstr(e1, "payload.response_url"), "http://127.0.0.1:"));
    assert_null(jpath(e1, "retry_attempt")); /* retry fields are for events_api */

    /* Both ack forms (A2.3). */
    char ack[256];
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\"}", jstr(e1, "envelope_id"));
    ws_send(c, ack);
    snprintf(ack, sizeof(ack),
             "{\"envelope_id\":\"%s\",\"payload\":{\"response_type\":\"ephemeral\",\"text\":\"queued\"}}",
             jstr(e2, "envelope_id"));
    ws_send(c, ack);
    pump_for(50);
    json_object *a1 = acks_for(jstr(e1, "envelope_id")), *a2 = acks_for(jstr(e2, "envelope_id"));
    assert_true(jbool(a1, "acked"));
    assert_true(jbool(a2, "acked"));
    assert_true(jint(a1, "ack_us") > 0);
    assert_true(jint(a2, "ack_us") > 0);
    assert_false(jbool(a1, "late"));
    assert_false(jbool(a1, "has_ack_payload"));
    assert_true(jbool(a2, "has_ack_payload"));
    assert_str(jstr(a2, "ack_payload.text"), "queued");
    assert_str(jstr(a1, "type"), "slash_commands");
    json_object *all = ctl("GET", "/_fake/acks", NULL);
    assert_int_equal(jint(all, "sent"), 2);
    assert_int_equal(jint(all, "acked"), 2);
    assert_int_equal(jint(all, "unacked"), 0);
    assert_int_equal(jint(all, "late"), 0);
    assert_true(jint(all, "ack_us.p50") > 0);
    /* A duplicate and an unknown ack are counted, not confused. */
    ws_send(c, "{\"envelope_id\":\"no-such-envelope\"}");
    ws_send(c, "not json");
    pump_for(50);
    json_object_put(all);
    all = ctl("GET", "/_fake/acks", NULL);
    assert_int_equal(jint(all, "unknown_acks"), 1);
    assert_int_equal(jint(all, "bad_frames"), 1);
    json_object_put(all);
    json_object_put(a1);
    json_object_put(a2);
    json_object_put(e1);
    json_object_put(e2);
    json_object_put(s1);
    json_object_put(s2);
    ws_free(c);
}

static void test_late_ack(void **state) {
    (void)state;
    wsc *c = ws_ready(NULL);
    json_object *s1 = slash(NULL), *s2 = slash(NULL);
    json_object *e1 = ws_next(c, 2000), *e2 = ws_next(c, 2000);
    pump_for(DEADLINE_MS + 100);
    char ack[128];
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\",\"payload\":{}}", jstr(e1, "envelope_id"));
    ws_send(c, ack);
    pump_for(50);
    json_object *a1 = acks_for(jstr(s1, "envelope_id")), *a2 = acks_for(jstr(s2, "envelope_id"));
    assert_true(jbool(a1, "acked"));
    assert_true(jbool(a1, "late"));
    assert_true(jint(a1, "ack_us") > DEADLINE_MS * 1000);
    assert_false(jbool(a2, "acked"));
    assert_true(jbool(a2, "late")); /* never acked, deadline passed */
    json_object *all = ctl("GET", "/_fake/acks", NULL);
    assert_int_equal(jint(all, "late"), 2);
    assert_int_equal(jint(all, "unacked"), 1);
    json_object_put(all);
    json_object_put(a1);
    json_object_put(a2);
    json_object_put(e1);
    json_object_put(e2);
    json_object_put(s1);
    json_object_put(s2);
    ws_free(c);
}

/* A2.3, A3.3: the answer a slash command's ack carries is shown as Slack
 * shows it; anything else in an ack shows nothing. */
static void test_ack_answers_shown(void **state) {
    (void)state;
    wsc *c = ws_ready(NULL);
    enum { N = 6 };
    json_object *env[N];
    for (int i = 0; i < N; i++) {
        json_object_put(slash(NULL));
        env[i] = ws_next(c, 2000);
        assert_non_null(env[i]);
    }
    json_object_put(ctl("POST", "/_fake/envelope",
                        "{\"type\":\"events_api\",\"payload\":{\"type\":\"event_callback\",\"event_id\":\"Ev9\","
                        "\"event\":{\"type\":\"app_mention\",\"user\":\"U0APPROVER\",\"channel\":\"C0DEPLOY\"}}}"));
    json_object *ev = ws_next(c, 2000);
    assert_non_null(ev);
    static const char *const payloads[N] = {
        ",\"payload\":{\"response_type\":\"ephemeral\",\"text\":\"queued\"}",
        ",\"payload\":{\"response_type\":\"in_channel\",\"text\":\"deploying api 1.4.2\"}",
        ",\"payload\":{}",
        "",
        ",\"payload\":{\"text\":\"x\",\"blocks\":[{\"text\":\"a block without a type\"}]}",
        ",\"payload\":{\"response_type\":\"everyone\",\"text\":\"x\"}",
    };
    char ack[512];
    for (int i = 0; i < N; i++) {
        snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\"%s}", jstr(env[i], "envelope_id"), payloads[i]);
        ws_send(c, ack);
    }
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\",\"payload\":{\"text\":\"an event answered\"}}",
             jstr(ev, "envelope_id"));
    ws_send(c, ack);
    /* Second acks change nothing (A2.3: one ack per envelope). */
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\",\"payload\":{\"text\":\"again\"}}", jstr(env[0], "envelope_id"));
    ws_send(c, ack);
    snprintf(ack, sizeof(ack), "{\"envelope_id\":\"%s\",\"payload\":{\"response_type\":\"in_channel\",\"text\":\"again\"}}",
             jstr(env[1], "envelope_id"));
    ws_send(c, ack);
    pump_for(50);

    json_object *msgs = ctl("GET", "/_fake/messages?channel=C0DEPLOY", NULL);
    assert_int_equal(array_len(msgs, "ephemeral"), 1);
    assert_str(jstr(msgs, "ephemeral.0.user"), "U0APPROVER");
    assert_str(jstr(msgs, "ephemeral.0.channel"), "C0DEPLOY");
    assert_str(jstr(msgs, "ephemeral.0.text"), "queued");
    assert_str(jstr(msgs, "ephemeral.0.via"), "ack");
    assert_true(sf_ts_valid(jstr(msgs, "ephemeral.0.message_ts")));
    assert_int_equal(array_len(msgs, "messages"), 1);
    assert_str(jstr(msgs, "messages.0.channel"), "C0DEPLOY");
    assert_str(jstr(msgs, "messages.0.text"), "deploying api 1.4.2");
    assert_str(jstr(msgs, "messages.0.via"), "ack");
    assert_false(jbool(msgs, "messages.0.by_bot"));
    char ts[SF_TS_MAX];
    snprintf(ts, sizeof(ts), "%s", jstr(msgs, "messages.0.ts"));
    assert_true(sf_ts_valid(ts));
    json_object_put(msgs);
    /* The in_channel answer is a channel message, but not the bot's to edit. */
    char body[256];
    snprintf(body, sizeof(body), "{\"channel\":\"C0DEPLOY\",\"ts\":\"%s\",\"text\":\"edited\"}", ts);
    assert_str(api_error(post_json("/api/chat.update", BOT_TOKEN, body)), "cant_update_message");
    /* chat.postEphemeral's messages say "api". */
    assert_str(api_error(post_json("/api/chat.postEphemeral", BOT_TOKEN,
                                   "{\"channel\":\"C0DEPLOY\",\"user\":\"U0APPROVER\",\"text\":\"by the api\"}")),
               "");
    msgs = ctl("GET", "/_fake/messages?channel=C0DEPLOY", NULL);
    assert_int_equal(array_len(msgs, "ephemeral"), 2);
    assert_str(jstr(msgs, "ephemeral.1.text"), "by the api");
    assert_str(jstr(msgs, "ephemeral.1.via"), "api");
    json_object_put(msgs);

    json_object *all = ctl("GET", "/_fake/acks", NULL);
    assert_int_equal(jint(all, "acked"), N + 1);
    assert_int_equal(jint(all, "ack_answers"), 2);
    assert_int_equal(jint(all, "bad_ack_payloads"), 3);
    json_object_put(all);
    static const char *const errors[N] = {NULL, NULL, NULL, NULL, "invalid_blocks", "invalid_response_type"};
    for (int i = 0; i < N; i++) {
        json_object *a = acks_for(jstr(env[i], "envelope_id"));
        assert_true(jbool(a, "acked"));
        assert_int_equal(jbool(a, "answered_in_ack"), i < 2);
        assert_str(jstr(a, "ack_error") ? jstr(a, "ack_error") : "(none)", errors[i] ? errors[i] : "(none)");
        assert_int_equal(jint(a, "extra_acks"), i < 2 ? 1 : 0);
        json_object_put(a);
    }
    json_object *a = acks_for(jstr(ev, "envelope_id"));
    assert_false(jbool(a, "answered_in_ack"));
    assert_str(jstr(a, "ack_error"), "payload_not_accepted");
    json_object_put(a);
    for (int i = 0; i < N; i++) json_object_put(env[i]);
    json_object_put(ev);
    ws_free(c);
}

static void test_redeliver(void **state) {
    (void)state;
    wsc *c = ws_ready(NULL);
    json_object *s = ctl("POST", "/_fake/envelope",
                         "{\"type\":\"events_api\",\"payload\":{\"type\":\"event_callback\",\"team_id\":\"T0TEAM\","
                         "\"event_id\":\"Ev0A1\",\"event\":{\"type\":\"app_mention\",\"text\":\"hi\"}}}");
    json_object *e0 = ws_next(c, 2000);
    assert_str(jstr(e0, "type"), "events_api");
    assert_false(jbool(e0, "accepts_response_payload"));
    assert_int_equal(jint(e0, "retry_attempt"), 0);
    assert_str(jstr(e0, "retry_reason"), "");
    char body[128];
    snprintf(body, sizeof(body), "{\"envelope_id\":\"%s\"}", jstr(s, "envelope_id"));
    json_object *r1 = ctl("POST", "/_fake/redeliver", body);
    json_object *e1 = ws_next(c, 2000);
    assert_str(jstr(e1, "envelope_id"), jstr(r1, "envelope_id"));
    assert_string_not_equal(jstr(e1, "envelope_id"), jstr(e0, "envelope_id"));
    assert_int_equal(jint(e1, "retry_attempt"), 1);
    assert_str(jstr(e1, "retry_reason"), "timeout");
    assert_str(jstr(e1, "payload.event_id"), "Ev0A1");
    snprintf(body, sizeof(body), "{\"envelope_id\":\"%s\"}", jstr(e1, "envelope_id"));
    json_object *r2 = ctl("POST", "/_fake/redeliver", body);
    json_object *e2 = ws_next(c, 2000);
    assert_int_equal(jint(e2, "retry_attempt"), 2);
    assert_int_equal(jint(r2, "retry_attempt"), 2);

    /* A slash command redelivered keeps its trigger_id (nomatron's idempotency key). */
    json_object *ss = slash(NULL), *se = ws_next(c, 2000);
    snprintf(body, sizeof(body), "{\"envelope_id\":\"%s\"}", jstr(ss, "envelope_id"));
    json_object *r3 = ctl("POST", "/_fake/redeliver", body), *se2 = ws_next(c, 2000);
    assert_str(jstr(se2, "payload.trigger_id"), jstr(ss, "trigger_id"));
    assert_int_equal(jint(se2, "retry_attempt"), 1);
    assert_str(jstr(se2, "retry_reason"), "timeout");
    resp bad = post_json("/_fake/redeliver", NULL, "{\"envelope_id\":\"nope\"}");
    assert_int_equal(bad.status, 404);
    resp_free(&bad);
    json_object *objs[] = {s, e0, r1, e1, r2, e2, ss, se, r3, se2};
    for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) json_object_put(objs[i]);
    ws_free(c);
}

/* ---------- A2.2 disconnect, drop, half-open, pings ---------- */

static void test_disconnect(void **state) {
    (void)state;
    static const char *const reasons[] = {"warning", "refresh_requested", "link_disabled"};
    wsc *a = ws_ready(NULL), *b = ws_ready(NULL);
    for (size_t i = 0; i < 3; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"reason\":\"%s\"}", reasons[i]);
        json_object *r = ctl("POST", "/_fake/disconnect", body);
        assert_int_equal(jint(r, "sent"), 2);
        json_object_put(r);
        wsc *both[] = {a, b};
        for (int k = 0; k < 2; k++) {
            json_object *d = ws_next(both[k], 2000);
            assert_str(jstr(d, "type"), "disconnect");
            assert_str(jstr(d, "reason"), reasons[i]);
            assert_non_null(jstr(d, "debug_info.host"));
            json_object_put(d);
        }
    }
    /* The disconnect frame alone closes nothing. */
    pump_for(100);
    assert_false(a->closed);
    resp bad = post_json("/_fake/disconnect", NULL, "{\"reason\":\"bye\"}");
    assert_int_equal(bad.status, 400);
    resp_free(&bad);
    /* close_after_ms: the TCP closes after the frame (no close frame);
     * close_frame: a proper WebSocket close. */
    json_object *ca = open_conn(0), *cb = open_conn(1);
    int id_a = (int)jint(ca, "id"), id_b = (int)jint(cb, "id");
    json_object_put(ca);
    json_object_put(cb);
    char body[128];
    snprintf(body, sizeof(body), "{\"reason\":\"warning\",\"close_after_ms\":100,\"connection\":%d}", id_a);
    json_object_put(ctl("POST", "/_fake/disconnect", body));
    snprintf(body, sizeof(body), "{\"reason\":\"refresh_requested\",\"close_after_ms\":100,\"close_frame\":true,"
                                 "\"connection\":%d}", id_b);
    json_object_put(ctl("POST", "/_fake/disconnect", body));
    int64_t t0 = now_ms();
    assert_true(pump_until(p_closed, a, 2000));
    assert_true(pump_until(p_closed, b, 2000));
    assert_true(now_ms() - t0 >= 80);
    assert_false(a->peer_close);
    assert_true(b->peer_close);
    ws_free(a);
    ws_free(b);
}

static void test_drop(void **state) {
    (void)state;
    wsc *a = ws_ready(NULL), *b = ws_ready(NULL);
    json_object *r = ctl("POST", "/_fake/drop", NULL);
    assert_int_equal(jint(r, "dropped"), 2);
    json_object_put(r);
    assert_true(pump_until(p_closed, a, 2000));
    assert_true(pump_until(p_closed, b, 2000));
    assert_false(a->peer_close); /* no close frame, just the TCP close */
    assert_false(b->peer_close);
    pump_for(20);
    assert_int_equal(open_count(), 0);
    resp s = post_json("/_fake/slash", NULL, "{\"user_id\":\"U0APPROVER\",\"channel_id\":\"C0DEPLOY\",\"text\":\"x\"}");
    assert_int_equal(s.status, 409); /* no connection up */
    resp_free(&s);
    ws_free(a);
    ws_free(b);
}

static bool p_pong(void *a) { return ((wsc *)a)->pongs > 0; }

static void test_halfopen(void **state) {
    (void)state;
    wsc *a = ws_ready(NULL);
    a->want_ping = true;
    lws_callback_on_writable(a->wsi);
    assert_true(pump_until(p_pong, a, 1000)); /* pongs before */
    json_object_put(ctl("POST", "/_fake/halfopen", NULL));
    a->pongs = 0;
    a->want_ping = true;
    lws_callback_on_writable(a->wsi);
    assert_false(pump_until(p_pong, a, 400)); /* no pong, */
    json_object *s = slash(NULL);             /* no frames */
    assert_null(ws_next(a, 300));
    assert_false(a->closed); /* and the socket stays open */
    json_object *ack = acks_for(jstr(s, "envelope_id"));
    assert_true(jbool(ack, "swallowed"));
    json_object_put(ack);
    json_object_put(s);
    /* A new connection behaves normally and gets the next envelopes. */
    wsc *b = ws_ready(NULL);
    s = slash(NULL);
    json_object *e = ws_next(b, 2000);
    assert_str(jstr(e, "envelope_id"), jstr(s, "envelope_id"));
    json_object *c0 = open_conn(0), *c1 = open_conn(1);
    assert_true(jbool(c0, "halfopen"));
    assert_false(jbool(c1, "halfopen"));
    json_object_put(c0);
    json_object_put(c1);
    json_object_put(e);
    json_object_put(s);
    ws_free(a);
    ws_free(b);
}

static void test_server_pings(void **state) {
    (void)state;
    /* The fake was started with --ping-interval 1 (A2.5: < 25 s). */
    wsc *a = ws_ready(NULL);
    pump_for(1100);
    json_object *conn = open_conn(0);
    assert_true(jint(conn, "pings_sent") >= 1);
    assert_true(jint(conn, "pongs_received") >= 1);
    json_object_put(conn);
    a->want_ping = true;
    lws_callback_on_writable(a->wsi);
    assert_true(pump_until(p_pong, a, 1000)); /* and client pings get pongs */
    ws_free(a);
}

static void test_frame_rules(void **state) {
    (void)state;
    /* Invalid UTF-8 in a text frame: the fake closes with a close frame. */
    wsc *a = ws_ready(NULL);
    ws_send(a, "{\"envelope_id\":\"\xff\xfe\"}");
    assert_true(pump_until(p_closed, a, 2000));
    assert_true(a->peer_close);
    /* A message over 1 MiB: closed too. */
    wsc *b = ws_ready(NULL);
    size_t n = 1024 * 1024 + 16;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    wsc_queue_out(b, big);
    free(big);
    assert_true(pump_until(p_closed, b, 3000));
    assert_true(b->peer_close);
    json_object *conn = open_conn(0);
    assert_null(conn); /* both gone */
    ws_free(a);
    ws_free(b);
}

/* ---------- A5/A6 Web API ---------- */

static bool ts_greater(const char *a, const char *b) {
    long long as, bs;
    int af, bf;
    sscanf(a, "%lld.%d", &as, &af);
    sscanf(b, "%lld.%d", &bs, &bf);
    return as > bs || (as == bs && af > bf);
}

static void test_post_message(void **state) {
    (void)state;
    char prev[SF_TS_MAX] = "0.000000";
    for (int i = 0; i < 30; i++) {
        char body[256];
        resp r;
        if (i % 2) {
            snprintf(body, sizeof(body), "channel=C0DEPLOY&text=message+%d", i);
            r = post_form("/api/chat.postMessage", BOT_TOKEN, body);
        } else {
            snprintf(body, sizeof(body), "{\"channel\":\"C0DEPLOY\",\"text\":\"message %d\"}", i);
            r = post_json("/api/chat.postMessage", BOT_TOKEN, body);
        }
        assert_true(jbool(r.json, "ok"));
        const char *ts = jstr(r.json, "ts");
        assert_true(sf_ts_valid(ts));
        assert_true(ts_greater(ts, prev));
        snprintf(prev, sizeof(prev), "%s", ts);
        /* A6 response shape. */
        assert_str(jstr(r.json, "channel"), "C0DEPLOY");
        assert_str(jstr(r.json, "message.ts"), ts);
        assert_str(jstr(r.json, "message.type"), "message");
        assert_str(jstr(r.json, "message.subtype"), "bot_message");
        assert_str(jstr(r.json, "message.bot_id"), "B0NOMATRON");
        snprintf(body, sizeof(body), "message %d", i);
        assert_str(jstr(r.json, "message.text"), body);
        resp_free(&r);
    }
    /* A user ID posts to the DM. */
    resp r = post_json("/api/chat.postMessage", BOT_TOKEN, "{\"channel\":\"U0APPROVER\",\"text\":\"dm\"}");
    assert_str(jstr(r.json, "channel"), "D0APPROVER");
    resp_free(&r);
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN, "{\"channel\":\"C0DEPLOY\"}")), "no_text");
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN, "{\"text\":\"x\"}")), "channel_not_found");
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN,
                                   "{\"channel\":\"C0DEPLOY\",\"text\":\"x\",\"blocks\":\"not json\"}")),
               "invalid_blocks_format");
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN,
                                   "{\"channel\":\"C0DEPLOY\",\"text\":\"x\",\"blocks\":[{\"text\":1}]}")),
               "invalid_blocks");
    /* Form-style blocks are a JSON string. */
    assert_str(api_error(post_form("/api/chat.postMessage", BOT_TOKEN,
                                   "channel=C0DEPLOY&blocks=%5B%7B%22type%22%3A%22divider%22%7D%5D")),
               "");
    /* Over 40,000 characters: truncated, not refused (A6). */
    size_t n = SF_MAX_POST_TEXT + 10;
    char *big = malloc(n + 64);
    int k = snprintf(big, n + 64, "{\"channel\":\"C0BIG\",\"text\":\"");
    memset(big + k, 'a', n);
    strcpy(big + k + n, "\"}");
    r = post_json("/api/chat.postMessage", BOT_TOKEN, big);
    assert_true(jbool(r.json, "ok"));
    assert_int_equal(strlen(jstr(r.json, "message.text")), SF_MAX_POST_TEXT);
    resp_free(&r);
    free(big);
}

static char *post(const char *channel, const char *json_tail) {
    char body[1024];
    snprintf(body, sizeof(body), "{\"channel\":\"%s\"%s}", channel, json_tail);
    resp r = post_json("/api/chat.postMessage", BOT_TOKEN, body);
    assert_true(jbool(r.json, "ok"));
    char *ts = strdup(jstr(r.json, "ts"));
    resp_free(&r);
    return ts;
}

static json_object *message(const char *channel, const char *ts) {
    char path[128];
    snprintf(path, sizeof(path), "/_fake/messages?channel=%s", channel);
    json_object *all = ctl("GET", path, NULL), *arr = jpath(all, "messages");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *m = json_object_array_get_idx(arr, i);
        if (strcmp(jstr(m, "ts"), ts) == 0) {
            json_object *r = json_object_get(m);
            json_object_put(all);
            return r;
        }
    }
    json_object_put(all);
    return NULL;
}

static resp update(const char *channel, const char *ts, const char *json_tail) {
    char body[16384];
    snprintf(body, sizeof(body), "{\"channel\":\"%s\",\"ts\":\"%s\"%s}", channel, ts, json_tail);
    return post_json("/api/chat.update", BOT_TOKEN, body);
}

static void test_update_semantics(void **state) {
    (void)state;
    const char *blocks = "[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\"*Deploy*\"}},"
                         "{\"type\":\"actions\",\"elements\":[]}]";
    char tail[512];
    snprintf(tail, sizeof(tail), ",\"text\":\"Approval needed\",\"blocks\":%s", blocks);
    char *ts = post("C0DEPLOY", tail);

    /* text only: blocks removed (A6). */
    resp r = update("C0DEPLOY", ts, ",\"text\":\"Approved by <@U0APPROVER>\"");
    assert_true(jbool(r.json, "ok"));
    assert_str(jstr(r.json, "ts"), ts);
    assert_str(jstr(r.json, "text"), "Approved by <@U0APPROVER>");
    assert_null(jpath(r.json, "message.blocks"));
    assert_non_null(jpath(r.json, "message.edited"));
    resp_free(&r);
    json_object *m = message("C0DEPLOY", ts);
    assert_true(json_object_is_type(jpath(m, "blocks"), json_type_null) || !jpath(m, "blocks"));
    assert_int_equal(jint(m, "edits"), 1);
    assert_int_equal(json_object_array_length(jpath(m, "versions")), 2);
    assert_str(jstr(m, "versions.0"), "Approval needed");
    assert_str(jstr(m, "versions.1"), "Approved by <@U0APPROVER>");
    json_object_put(m);

    /* blocks given: replaced, no "edited" marker; text kept. */
    snprintf(tail, sizeof(tail), ",\"blocks\":%s", blocks);
    r = update("C0DEPLOY", ts, tail);
    assert_true(jbool(r.json, "ok"));
    assert_int_equal(json_object_array_length(jpath(r.json, "message.blocks")), 2);
    assert_null(jpath(r.json, "message.edited"));
    assert_str(jstr(r.json, "message.text"), "Approved by <@U0APPROVER>");
    resp_free(&r);
    /* neither: both kept. */
    r = update("C0DEPLOY", ts, "");
    assert_int_equal(json_object_array_length(jpath(r.json, "message.blocks")), 2);
    assert_str(jstr(r.json, "message.text"), "Approved by <@U0APPROVER>");
    resp_free(&r);
    /* "blocks":[] clears them. */
    r = update("C0DEPLOY", ts, ",\"blocks\":[]");
    assert_true(jbool(r.json, "ok"));
    assert_null(jpath(r.json, "message.blocks"));
    resp_free(&r);
    m = message("C0DEPLOY", ts);
    assert_int_equal(jint(m, "edits"), 4);
    json_object_put(m);

    /* msg_too_long counts characters: 4000 two-byte characters pass, 4001 do not. */
    size_t cap = 2 * (SF_MAX_EDIT_TEXT + 1) + 64;
    char *t = malloc(cap);
    strcpy(t, ",\"text\":\"");
    size_t k = strlen(t);
    for (int i = 0; i < SF_MAX_EDIT_TEXT; i++) {
        t[k++] = '\xC3';
        t[k++] = '\xA9';
    }
    strcpy(t + k, "\"");
    assert_str(api_error(update("C0DEPLOY", ts, t)), "");
    strcpy(t + k, "x\"");
    assert_str(api_error(update("C0DEPLOY", ts, t)), "msg_too_long");
    free(t);

    /* Someone else's message; unknown ts; a user ID as channel. */
    json_object *other = ctl("POST", "/_fake/message", "{\"channel\":\"C0DEPLOY\",\"user\":\"U0REQUESTER\",\"text\":\"hi\"}");
    assert_str(api_error(update("C0DEPLOY", jstr(other, "ts"), ",\"text\":\"x\"")), "cant_update_message");
    json_object_put(other);
    assert_str(api_error(update("C0DEPLOY", "1.000001", ",\"text\":\"x\"")), "message_not_found");
    assert_str(api_error(update("C0OTHER", ts, ",\"text\":\"x\"")), "message_not_found");
    assert_str(api_error(update("U0APPROVER", ts, ",\"text\":\"x\"")), "channel_not_found");
    free(ts);
}

static void test_ephemeral(void **state) {
    (void)state;
    resp r = post_json("/api/chat.postEphemeral", BOT_TOKEN,
                       "{\"channel\":\"C0DEPLOY\",\"user\":\"U0REQUESTER\",\"text\":\"You are not allowed to approve this\"}");
    assert_true(jbool(r.json, "ok"));
    char mts[SF_TS_MAX];
    snprintf(mts, sizeof(mts), "%s", jstr(r.json, "message_ts"));
    assert_true(sf_ts_valid(mts));
    resp_free(&r);
    /* A6: that ts is not usable with chat.update. */
    assert_str(api_error(update("C0DEPLOY", mts, ",\"text\":\"x\"")), "message_not_found");
    json_object *all = ctl("GET", "/_fake/messages?channel=C0DEPLOY", NULL);
    assert_int_equal(json_object_array_length(jpath(all, "messages")), 0);
    assert_int_equal(json_object_array_length(jpath(all, "ephemeral")), 1);
    assert_str(jstr(all, "ephemeral.0.user"), "U0REQUESTER");
    assert_str(jstr(all, "ephemeral.0.text"), "You are not allowed to approve this");
    json_object_put(all);
    assert_str(api_error(post_json("/api/chat.postEphemeral", BOT_TOKEN, "{\"channel\":\"C0DEPLOY\",\"text\":\"x\"}")),
               "user_not_in_channel");
    assert_str(api_error(post_json("/api/chat.postEphemeral", BOT_TOKEN,
                                   "{\"channel\":\"C0DEPLOY\",\"user\":\"U0REQUESTER\"}")),
               "no_text");
}

static void test_permalink(void **state) {
    (void)state;
    char *parent = post("C0DEPLOY", ",\"text\":\"parent\"");
    char tail[128];
    snprintf(tail, sizeof(tail), ",\"text\":\"reply\",\"thread_ts\":\"%s\"", parent);
    char *reply = post("C0DEPLOY", tail);
    char path[256], want[256], digits[SF_TS_MAX];
    size_t j = 0;
    for (const char *p = parent; *p; p++)
        if (*p != '.') digits[j++] = *p;
    digits[j] = '\0';
    snprintf(path, sizeof(path), "/api/chat.getPermalink?channel=C0DEPLOY&message_ts=%s", parent);
    resp r = get(path, BOT_TOKEN);
    snprintf(want, sizeof(want), "https://acme.slack.com/archives/C0DEPLOY/p%s", digits);
    assert_str(jstr(r.json, "permalink"), want);
    assert_str(jstr(r.json, "channel"), "C0DEPLOY");
    resp_free(&r);
    snprintf(path, sizeof(path), "/api/chat.getPermalink?channel=C0DEPLOY&message_ts=%s", reply);
    r = get(path, BOT_TOKEN);
    assert_non_null(strstr(jstr(r.json, "permalink"), "?thread_ts="));
    snprintf(want, sizeof(want), "?thread_ts=%s&cid=C0DEPLOY", parent);
    assert_non_null(strstr(jstr(r.json, "permalink"), want));
    resp_free(&r);
    assert_str(api_error(get("/api/chat.getPermalink?channel=C0DEPLOY&message_ts=1.000001", BOT_TOKEN)),
               "message_not_found");
    free(parent);
    free(reply);
}

static void test_ratelimit_and_fail(void **state) {
    (void)state;
    json_object_put(ctl("POST", "/_fake/ratelimit", "{\"method\":\"chat.postMessage\",\"count\":2,\"retry_after\":2}"));
    for (int i = 0; i < 2; i++) {
        resp r = post_json("/api/chat.postMessage", BOT_TOKEN, "{\"channel\":\"C0DEPLOY\",\"text\":\"x\"}");
        assert_int_equal(r.status, 429); /* A7 */
        assert_string_equal(r.retry_after, "2");
        assert_false(jbool(r.json, "ok"));
        assert_str(jstr(r.json, "error"), "ratelimited");
        resp_free(&r);
    }
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN, "{\"channel\":\"C0DEPLOY\",\"text\":\"x\"}")), "");
    /* Only that method is limited. */
    json_object_put(ctl("POST", "/_fake/ratelimit", "{\"method\":\"apps.connections.open\",\"count\":1,\"retry_after\":1}"));
    assert_str(api_error(get("/api/auth.test", BOT_TOKEN)), "");
    resp r = post_form("/api/apps.connections.open", APP_TOKEN, "");
    assert_int_equal(r.status, 429);
    assert_string_equal(r.retry_after, "1");
    resp_free(&r);

    json_object_put(ctl("POST", "/_fake/fail", "{\"method\":\"chat.update\",\"error\":\"edit_window_closed\",\"count\":1}"));
    char *ts = post("C0DEPLOY", ",\"text\":\"x\"");
    assert_str(api_error(update("C0DEPLOY", ts, ",\"text\":\"y\"")), "edit_window_closed");
    assert_str(api_error(update("C0DEPLOY", ts, ",\"text\":\"y\"")), "");
    free(ts);
    resp bad = post_json("/_fake/fail", NULL, "{\"method\":\"chat.update\"}");
    assert_int_equal(bad.status, 400);
    resp_free(&bad);
}

static void test_generic_errors(void **state) {
    (void)state;
    resp r = post_json("/api/chat.fly", BOT_TOKEN, "{}");
    assert_str(jstr(r.json, "error"), "unknown_method");
    assert_str(jstr(r.json, "req_method"), "chat.fly");
    resp_free(&r);
    const char *ok_body = "{\"channel\":\"C0DEPLOY\",\"text\":\"x\"}";
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN, "{\"channel\":")), "invalid_json");
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN, "{\"a\":1} trailing")), "invalid_json");
    assert_str(api_error(post_json("/api/chat.postMessage", BOT_TOKEN, "[1,2]")), "json_not_object");
    assert_str(api_error(post_json("/api/chat.postMessage", NULL, ok_body)), "not_authed");
    assert_str(api_error(post_json("/api/chat.postMessage", "xoxb-wrong", ok_body)), "invalid_auth");
    assert_str(api_error(post_json("/api/chat.postMessage", APP_TOKEN, ok_body)), "not_allowed_token_type");
    /* A5: the token may not be inside JSON or in the query string. */
    assert_str(api_error(post_json("/api/chat.postMessage", NULL,
                                   "{\"token\":\"" BOT_TOKEN "\",\"channel\":\"C0DEPLOY\",\"text\":\"x\"}")),
               "not_authed");
    assert_str(api_error(get("/api/auth.test?token=" BOT_TOKEN, NULL)), "not_authed");
    /* A form body may carry it. */
    assert_str(api_error(post_form("/api/chat.postMessage", NULL, "token=" BOT_TOKEN "&channel=C0DEPLOY&text=x")), "");
    assert_str(api_error(http("POST", "/api/chat.postMessage", BOT_TOKEN, NULL, ok_body, strlen(ok_body))),
               "missing_post_type");
    assert_str(api_error(http("POST", "/api/chat.postMessage", BOT_TOKEN, "text/plain", ok_body, strlen(ok_body))),
               "invalid_post_type");
    assert_str(api_error(http("POST", "/api/chat.postMessage", BOT_TOKEN, "application/json; charset=latin1", ok_body,
                              strlen(ok_body))),
               "invalid_charset");
    assert_str(api_error(post_form("/api/chat.postMessage", BOT_TOKEN, "channel=C0DEPLOY&text=%zz")),
               "invalid_form_data");
    r = http("DELETE", "/api/auth.test", BOT_TOKEN, NULL, NULL, 0);
    assert_int_equal(r.status, 405);
    resp_free(&r);
}

static void test_reads_and_auth_test(void **state) {
    (void)state;
    resp r = get("/api/users.info?user=U0APPROVER", BOT_TOKEN);
    assert_true(jbool(r.json, "ok"));
    assert_str(jstr(r.json, "user.id"), "U0APPROVER");
    assert_str(jstr(r.json, "user.name"), "ana");
    assert_str(jstr(r.json, "user.team_id"), "T0TEAM");
    assert_str(jstr(r.json, "user.profile.display_name"), "ana");
    resp_free(&r);
    assert_str(api_error(get("/api/users.info?user=U0NOBODY", BOT_TOKEN)), "user_not_found");
    assert_str(api_error(post_form("/api/users.info", BOT_TOKEN, "user=U0ADMIN")), "");
    /* A5: JSON bodies are for write methods; a read method sees no arguments. */
    assert_str(api_error(post_json("/api/users.info", BOT_TOKEN, "{\"user\":\"U0ADMIN\"}")), "user_not_found");

    r = get("/api/conversations.info?channel=C0DEPLOY", BOT_TOKEN);
    assert_true(jbool(r.json, "ok"));
    assert_str(jstr(r.json, "channel.id"), "C0DEPLOY");
    assert_true(jbool(r.json, "channel.is_channel"));
    assert_false(jbool(r.json, "channel.is_private"));
    assert_non_null(jstr(r.json, "channel.name"));
    resp_free(&r);
    assert_str(api_error(get("/api/conversations.info?channel=X1", BOT_TOKEN)), "channel_not_found");

    r = get("/api/auth.test", BOT_TOKEN);
    assert_true(jbool(r.json, "ok"));
    assert_str(jstr(r.json, "url"), "https://acme.slack.com/");
    assert_str(jstr(r.json, "team_id"), "T0TEAM");
    assert_non_null(jstr(r.json, "team"));
    assert_non_null(jstr(r.json, "user"));
    assert_non_null(jstr(r.json, "user_id"));
    assert_non_null(jstr(r.json, "bot_id"));
    resp_free(&r);
}

static void test_body_limit_and_calls_log(void **state) {
    (void)state;
    size_t n = SF_MAX_BODY + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    resp r = http("POST", "/api/chat.postMessage", BOT_TOKEN, "application/json", big, n);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    r = http("POST", "/_fake/slash", NULL, "application/json", big, n);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    /* Just under the ceiling is read (and answered without a 1 s Expect stall). */
    memcpy(big, "{\"channel\":\"C0DEPLOY\",\"text\":\"big\"", 34);
    big[n - 2] = '}';
    r = http("POST", "/api/chat.postMessage", BOT_TOKEN, "application/json", big, n - 1);
    assert_int_equal(r.status, 200);
    assert_true(jbool(r.json, "ok"));
    resp_free(&r);
    memcpy(big, "{\"channel\":\"C0DEPLOY\",\"text\":\"mid\"", 34);
    big[99999] = '}';
    r = http("POST", "/api/chat.postMessage", BOT_TOKEN, "application/json", big, 100000);
    assert_true(jbool(r.json, "ok"));
    assert_true(r.secs < 0.9);
    resp_free(&r);
    free(big);

    /* Every call, in order, and never a token. */
    resp all = get("/_fake/calls", NULL);
    assert_int_equal(all.status, 200);
    assert_null(strstr(all.body.data, BOT_TOKEN));
    assert_null(strstr(all.body.data, APP_TOKEN));
    assert_true(json_object_array_length(jpath(all.json, "calls")) >= 3);
    assert_str(jstr(all.json, "calls.0.method"), "chat.postMessage");
    assert_int_equal(jint(all.json, "calls.0.status"), 413);
    resp_free(&all);
    resp tmp = post_form("/api/chat.postMessage", NULL, "token=" BOT_TOKEN "&channel=C0DEPLOY&text=x");
    resp_free(&tmp);
    all = get("/_fake/calls?method=chat.postMessage", NULL);
    assert_null(strstr(all.body.data, BOT_TOKEN));
    json_object *calls = jpath(all.json, "calls");
    json_object *last = json_object_array_get_idx(calls, json_object_array_length(calls) - 1);
    assert_true(jbool(last, "token_in_args"));
    assert_true(jbool(last, "auth_ok"));
    assert_str(jstr(last, "args.channel"), "C0DEPLOY");
    assert_null(jpath(last, "args.token"));
    assert_true(jbool(last, "response.ok"));
    resp_free(&all);
}

/* ---------- load ---------- */

typedef struct async_http {
    pthread_t th;
    const char *path, *body;
    resp r;
    volatile int done;
} async_http;

static void *async_main(void *arg) {
    async_http *a = arg;
    a->r = post_json(a->path, NULL, a->body);
    a->done = 1;
    return NULL;
}

static bool p_async_done(void *arg) { return ((async_http *)arg)->done; }

static void test_load(void **state) {
    (void)state;
    wsc *a = ws_ready(NULL), *b = ws_ready(NULL);
    a->auto_ack = b->auto_ack = true;
    /* One connection answers in its acks, the other acks silently. */
    a->auto_ack_payload = "{\"response_type\":\"ephemeral\",\"text\":\"web is healthy\"}";
    async_http req = {.path = "/_fake/load", .body = "{\"rate\":2000,\"count\":400,\"text\":\"status web\"}"};
    pthread_create(&req.th, NULL, async_main, &req);
    assert_true(pump_until(p_async_done, &req, 10000));
    pthread_join(req.th, NULL);
    json_object *o = req.r.json;
    assert_int_equal(req.r.status, 200);
    assert_int_equal(jint(o, "sent"), 400);
    assert_int_equal(jint(o, "acked"), 400);
    assert_int_equal(jint(o, "unacked"), 0);
    assert_true(jint(o, "ack_us.p50") > 0);
    assert_true(jint(o, "ack_us.p90") >= jint(o, "ack_us.p50"));
    assert_true(jint(o, "ack_us.p99") >= jint(o, "ack_us.p90"));
    assert_true(jint(o, "ack_us.max") >= jint(o, "ack_us.p99"));
    assert_true(jint(o, "loopback_us.p50") > 0);
    assert_true(jint(o, "loopback_us.p99") >= jint(o, "loopback_us.p50"));
    /* Round robin over both connections (A2.4). */
    assert_true(a->acks_sent > 100 && b->acks_sent > 100);
    assert_int_equal(jint(o, "answered_in_ack"), a->acks_sent);
    fprintf(stderr, "load: %s\n", req.r.body.data);
    resp_free(&req.r);
    ws_free(a);
    ws_free(b);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/slack-fake\n", argv[0]);
        return 2;
    }
    fake_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_form_parse),
        cmocka_unit_test(test_permalink_and_ts),
        cmocka_unit_test(test_acks_pure),
        cmocka_unit_test(test_ack_answers),
        cmocka_unit_test(test_envelope_ring),
    };
#define T(f) cmocka_unit_test_setup(f, each_setup)
    const struct CMUnitTest server[] = {
        T(test_connections_open),
        T(test_ticket_single_use),
        T(test_hello_first),
        T(test_too_many_connections),
        T(test_slash_envelope_and_acks),
        T(test_late_ack),
        T(test_ack_answers_shown),
        T(test_redeliver),
        T(test_disconnect),
        T(test_drop),
        T(test_halfopen),
        T(test_server_pings),
        T(test_frame_rules),
        T(test_post_message),
        T(test_update_semantics),
        T(test_ephemeral),
        T(test_permalink),
        T(test_ratelimit_and_fail),
        T(test_generic_errors),
        T(test_reads_and_auth_test),
        T(test_body_limit_and_calls_log),
        T(test_load),
    };
    int fails = cmocka_run_group_tests_name("slack_fake_pure", pure, NULL, NULL);
    fails += cmocka_run_group_tests_name("slack_fake_server", server, server_setup, server_teardown);
    curl_global_cleanup();
    return fails ? 1 : 0;
}
