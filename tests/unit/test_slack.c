/* bot/slack_proto.c and bot/slack_render.c: Socket Mode frames and Web API
 * answers shaped as in chat-protocols.md A2-A6, the ack, escaping, progress,
 * the request view and the bodies we send, with every Slack limit checked on
 * what we produce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "slack_proto.h"
#include "slack_render.h"
#include "str.h"

/* ---- helpers ---- */

static int parse(const char *json, slack_frame *f, char *err, size_t errlen) {
    return slack_frame_parse(json, strlen(json), f, err, errlen);
}

/* Strict JSON (UTF-8 checked) back from one of our bodies. */
static json_object *reparse(const char *s, size_t len) {
    json_tokener *tok = json_tokener_new_ex(64);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    assert_non_null(o);
    assert_int_equal(json_tokener_get_parse_end(tok), len);
    json_tokener_free(tok);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

/* A string at a dotted path ("text", "blocks.0.text.text"); NULL when absent. */
static const char *at(json_object *o, const char *path) {
    char key[64];
    const char *p = path;
    while (o && *p) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        p += n + (p[n] == '.');
        if (json_object_is_type(o, json_type_array)) o = json_object_array_get_idx(o, (size_t)atoi(key));
        else if (!json_object_object_get_ex(o, key, &o)) return NULL;
    }
    return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Characters of UTF-8 text (assumed valid). */
static size_t chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool utf8_valid(const char *s) {
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    nm_buf b;
    nm_buf_init(&b, 0);
    json_object *str = json_object_new_string(s);
    nm_buf_appends(&b, json_object_to_json_string_ext(str, JSON_C_TO_STRING_PLAIN));
    json_object *o = json_tokener_parse_ex(tok, b.data, (int)b.len);
    bool ok = o != NULL;
    json_object_put(o);
    json_object_put(str);
    json_tokener_free(tok);
    nm_buf_free(&b);
    return ok;
}

/* ---- frames: samples from A2.2, A2.6, A3, A4 ---- */

static void test_frame_hello(void **state) {
    (void)state;
    slack_frame f;
    char err[256];
    assert_int_equal(parse("{\"type\":\"hello\",\"num_connections\":1,\n"
                           " \"connection_info\":{\"app_id\":\"A0123ABCD\"},\n"
                           " \"debug_info\":{\"host\":\"applink-7\",\"started\":\"2026-01-01 00:00:00.000\","
                           "\"build_number\":54,\n \"approximate_connection_time\":18060}}",
                           &f, err, sizeof(err)),
                     SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_HELLO);
    assert_string_equal(f.type, "hello");
    assert_string_equal(f.envelope_id, "");
    assert_int_equal(f.hello.num_connections, 1);
    assert_string_equal(f.hello.app_id, "A0123ABCD");
    assert_int_equal(f.hello.approximate_connection_time, 18060);

    /* A2.6, and a bare hello: counts absent read -1 */
    assert_int_equal(parse("{\"type\":\"hello\",\"num_connections\":1,\"connection_info\":{\"app_id\":\"A1\"},"
                           "\"debug_info\":{\"host\":\"fake\",\"approximate_connection_time\":3600}}",
                           &f, err, sizeof(err)),
                     SLACK_PROTO_OK);
    assert_int_equal(f.hello.approximate_connection_time, 3600);
    assert_int_equal(parse("{\"type\":\"hello\"}", &f, err, sizeof(err)), SLACK_PROTO_OK);
    assert_int_equal(f.hello.num_connections, -1);
    assert_int_equal(f.hello.approximate_connection_time, -1);
}

static void test_frame_disconnect(void **state) {
    (void)state;
    slack_frame f;
    assert_int_equal(parse("{\"type\":\"disconnect\",\"reason\":\"refresh_requested\","
                           "\"debug_info\":{\"host\":\"wss-111.slack.com\"}}",
                           &f, NULL, 0),
                     SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_DISCONNECT);
    assert_string_equal(f.disconnect.reason, "refresh_requested");
    assert_int_equal(parse("{\"type\":\"disconnect\",\"reason\":\"link_disabled\"}", &f, NULL, 0), SLACK_PROTO_OK);
    assert_string_equal(f.disconnect.reason, "link_disabled");
}

#define SLASH_PAYLOAD                                                                                                  \
    "{\"token\":\"legacy\",\"team_id\":\"T1DC2JH3J\",\"team_domain\":\"testteamnow\","                             \
    "\"channel_id\":\"G8PSS9T3V\",\"channel_name\":\"foobar\",\"user_id\":\"U2CERLKJA\","                          \
    "\"user_name\":\"roadrunner\",\"command\":\"/nomatron\",\"text\":\"deploy web v1.4.2 to staging\","            \
    "\"api_app_id\":\"A0APP\",\"is_enterprise_install\":\"false\","                                                \
    "\"response_url\":\"https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN\","        \
    "\"trigger_id\":\"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c\"}"

static void test_frame_slash(void **state) {
    (void)state;
    slack_frame f;
    char err[256] = "";
    int rc = parse("{\"envelope_id\":\"dbdd0ef3-1543-4f94-bfb4-133d0e6c1545\",\"type\":\"slash_commands\","
                   "\"accepts_response_payload\":true,\"payload\":" SLASH_PAYLOAD "}",
                   &f, err, sizeof(err));
    assert_int_equal(rc, SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_SLASH);
    assert_string_equal(f.envelope_id, "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545");
    assert_true(f.accepts_response_payload);
    assert_string_equal(f.slash.team_id, "T1DC2JH3J");
    assert_string_equal(f.slash.team_domain, "testteamnow");
    assert_string_equal(f.slash.channel_id, "G8PSS9T3V");
    assert_string_equal(f.slash.channel_name, "foobar");
    assert_string_equal(f.slash.user_id, "U2CERLKJA");
    assert_string_equal(f.slash.user_name, "roadrunner");
    assert_string_equal(f.slash.command, "/nomatron");
    assert_string_equal(f.slash.text, "deploy web v1.4.2 to staging");
    assert_false(f.slash.text_too_long);
    assert_string_equal(f.slash.trigger_id, "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c");
    assert_string_equal(f.slash.response_url,
                        "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN");
    assert_string_equal(f.slash.api_app_id, "A0APP");
    assert_string_equal(f.slash.enterprise_id, "");

    /* empty text, escaped mentions as Slack sends them, enterprise_id null or set */
    assert_int_equal(parse("{\"envelope_id\":\"E1\",\"type\":\"slash_commands\",\"payload\":{\"user_id\":\"U1\","
                           "\"channel_id\":\"C1\",\"command\":\"/deploy\",\"text\":\"\",\"enterprise_id\":null}}",
                           &f, err, sizeof(err)),
                     SLACK_PROTO_OK);
    assert_string_equal(f.slash.text, "");
    assert_false(f.accepts_response_payload);
    assert_int_equal(parse("{\"envelope_id\":\"E1\",\"type\":\"slash_commands\",\"payload\":{\"user_id\":\"U1\","
                           "\"channel_id\":\"C1\",\"command\":\"/deploy\",\"enterprise_id\":\"E0GRID\","
                           "\"text\":\"approve 12 <@U012ABCDEF> <#C012ABCDE|deploys>\"}}",
                           &f, err, sizeof(err)),
                     SLACK_PROTO_OK);
    assert_string_equal(f.slash.text, "approve 12 <@U012ABCDEF> <#C012ABCDE|deploys>");
    assert_string_equal(f.slash.enterprise_id, "E0GRID");
}

/* A slash frame whose text is n bytes of 'x'. */
static char *slash_with_text(size_t n) {
    const char *head = "{\"envelope_id\":\"E9\",\"type\":\"slash_commands\",\"payload\":{\"user_id\":\"U1\","
                       "\"channel_id\":\"C1\",\"command\":\"/nomatron\",\"text\":\"";
    size_t hl = strlen(head);
    char *s = malloc(hl + n + 8);
    assert_non_null(s);
    memcpy(s, head, hl);
    memset(s + hl, 'x', n);
    strcpy(s + hl + n, "\"}}");
    return s;
}

static void test_frame_slash_text_limit(void **state) {
    (void)state;
    slack_frame f;
    char err[256];
    char *s = slash_with_text(CMD_MAX_TEXT);
    assert_int_equal(parse(s, &f, err, sizeof(err)), SLACK_PROTO_OK);
    assert_false(f.slash.text_too_long);
    assert_int_equal(strlen(f.slash.text), CMD_MAX_TEXT);
    free(s);

    s = slash_with_text(CMD_MAX_TEXT + 1);
    assert_int_equal(parse(s, &f, err, sizeof(err)), SLACK_PROTO_OK);
    assert_true(f.slash.text_too_long);
    assert_string_equal(f.slash.text, "");
    assert_string_equal(f.envelope_id, "E9");   /* still answerable */
    assert_string_equal(f.slash.user_id, "U1");
    free(s);

    s = slash_with_text(100 * 1024);   /* far over, still under the frame limit */
    assert_int_equal(parse(s, &f, err, sizeof(err)), SLACK_PROTO_OK);
    assert_true(f.slash.text_too_long);
    free(s);
}

#define BLOCK_ACTIONS_PAYLOAD                                                                                          \
    "{\"type\":\"block_actions\","                                                                                   \
    "\"user\":{\"id\":\"U0APPROVER\",\"username\":\"ana\",\"name\":\"ana\",\"team_id\":\"T0TEAM\"},"                 \
    "\"team\":{\"id\":\"T0TEAM\",\"domain\":\"acme\"}, \"api_app_id\":\"A0APP\", \"token\":\"legacy\","             \
    "\"container\":{\"type\":\"message\",\"message_ts\":\"1700000000.000100\",\"channel_id\":\"C0DEPLOY\","          \
    "\"is_ephemeral\":false},"                                                                                       \
    "\"channel\":{\"id\":\"C0DEPLOY\",\"name\":\"deploys\"},"                                                        \
    "\"message\":{\"type\":\"message\",\"ts\":\"1700000000.000100\",\"bot_id\":\"B0BOT\","                          \
    "\"text\":\"Deploy api 1.4.2 to prod?\",\"blocks\":[]},"                                                         \
    "\"state\":{\"values\":{}},"                                                                                     \
    "\"response_url\":\"https://hooks.slack.com/actions/A0APP/111/xyz\","                                            \
    "\"trigger_id\":\"111.222.abc\","                                                                                \
    "\"actions\":[{\"type\":\"button\",\"action_id\":\"approve\",\"block_id\":\"req-42\",\"value\":\"req-42\","     \
    "\"text\":{\"type\":\"plain_text\",\"text\":\"Approve\",\"emoji\":true},\"style\":\"primary\","                \
    "\"action_ts\":\"1700000003.123456\"}]}"

static void test_frame_interactive(void **state) {
    (void)state;
    slack_frame f;
    char err[256] = "";
    int rc = parse("{\"envelope_id\":\"E2\",\"type\":\"interactive\",\"accepts_response_payload\":true,"
                   "\"payload\":" BLOCK_ACTIONS_PAYLOAD "}",
                   &f, err, sizeof(err));
    assert_int_equal(rc, SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_INTERACTIVE);
    assert_string_equal(f.envelope_id, "E2");
    assert_string_equal(f.interactive.type, "block_actions");
    assert_string_equal(f.interactive.team_id, "T0TEAM");
    assert_string_equal(f.interactive.user_id, "U0APPROVER");
    assert_string_equal(f.interactive.channel_id, "C0DEPLOY");
    assert_string_equal(f.interactive.message_ts, "1700000000.000100");
    assert_string_equal(f.interactive.trigger_id, "111.222.abc");
    assert_string_equal(f.interactive.response_url, "https://hooks.slack.com/actions/A0APP/111/xyz");
    assert_string_equal(f.interactive.action_id, "approve");
    assert_string_equal(f.interactive.action_value, "req-42");

    /* no container: channel.id and message.ts fill in; team null (org-wide install) */
    rc = parse("{\"envelope_id\":\"E3\",\"type\":\"interactive\",\"payload\":{\"type\":\"block_actions\","
               "\"team\":null,\"user\":{\"id\":\"U1\"},\"channel\":{\"id\":\"C9\"},\"message\":{\"ts\":\"1.2\"},"
               "\"actions\":[{\"action_id\":\"nomatron.reject\"}]}}",
               &f, err, sizeof(err));
    assert_int_equal(rc, SLACK_PROTO_OK);
    assert_string_equal(f.interactive.team_id, "");
    assert_string_equal(f.interactive.channel_id, "C9");
    assert_string_equal(f.interactive.message_ts, "1.2");
    assert_string_equal(f.interactive.action_id, "nomatron.reject");
    assert_string_equal(f.interactive.action_value, "");

    /* other interaction types are parsed as far as the fields go */
    rc = parse("{\"envelope_id\":\"E4\",\"type\":\"interactive\",\"payload\":{\"type\":\"view_submission\","
               "\"user\":{\"id\":\"U1\"},\"view\":{\"id\":\"V1\"}}}",
               &f, err, sizeof(err));
    assert_int_equal(rc, SLACK_PROTO_OK);
    assert_string_equal(f.interactive.type, "view_submission");
    assert_string_equal(f.interactive.action_id, "");
}

static void test_frame_events_and_retry(void **state) {
    (void)state;
    slack_frame f;
    char err[256] = "";
    int rc = parse("{\"envelope_id\":\"E5\",\"type\":\"events_api\",\"accepts_response_payload\":false,"
                   "\"retry_attempt\":1,\"retry_reason\":\"timeout\",\"payload\":{\"type\":\"event_callback\","
                   "\"token\":\"t\",\"team_id\":\"T1\",\"api_app_id\":\"A1\",\"event\":{\"type\":\"app_mention\","
                   "\"user\":\"U1\",\"text\":\"hi\"},\"event_id\":\"Ev01\",\"event_time\":1700000000}}",
                   &f, err, sizeof(err));
    assert_int_equal(rc, SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_EVENTS);
    assert_int_equal(f.retry_attempt, 1);
    assert_string_equal(f.retry_reason, "timeout");
    assert_string_equal(f.events.team_id, "T1");
    assert_string_equal(f.events.event_id, "Ev01");
    assert_string_equal(f.events.event_type, "app_mention");

    /* first delivery: 0 / "" */
    rc = parse("{\"envelope_id\":\"E6\",\"type\":\"events_api\",\"retry_attempt\":0,\"retry_reason\":\"\","
               "\"payload\":{\"type\":\"app_rate_limited\",\"team_id\":\"T1\",\"minute_rate_limited\":1}}",
               &f, err, sizeof(err));
    assert_int_equal(rc, SLACK_PROTO_OK);
    assert_int_equal(f.retry_attempt, 0);
    assert_string_equal(f.events.event_id, "");

    /* an unknown type: acked if it has an envelope, otherwise ignored */
    assert_int_equal(parse("{\"envelope_id\":\"E7\",\"type\":\"something_new\",\"payload\":[1,2]}", &f, err,
                           sizeof(err)),
                     SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_OTHER);
    assert_string_equal(f.envelope_id, "E7");
    assert_string_equal(f.type, "something_new");
    assert_int_equal(parse("{\"type\":\"ping\"}", &f, err, sizeof(err)), SLACK_PROTO_OK);
    assert_int_equal(f.kind, SLACK_FRAME_OTHER);
}

static void test_frame_errors(void **state) {
    (void)state;
    static const struct {
        const char *json;
        int code;
        const char *err;
    } cases[] = {
        {"", SLACK_PROTO_ERR_JSON, "frame: empty or truncated JSON"},
        {"{\"type\":\"hello\"", SLACK_PROTO_ERR_JSON, "frame: empty or truncated JSON"},
        {"{\"type\":\"hello\",}", SLACK_PROTO_ERR_JSON, "frame: malformed JSON at byte"},
        {"{\"type\":\"hello\"} x", SLACK_PROTO_ERR_JSON, "frame: malformed JSON at byte 17: unexpected character"},
        {"{\"type\":\"hello\"}{}", SLACK_PROTO_ERR_JSON, "frame: malformed JSON at byte 16: unexpected character"},
        {"{\"type\":\"\xff\"}", SLACK_PROTO_ERR_JSON, "frame: malformed JSON at byte"},
        {"[{\"type\":\"hello\"}]", SLACK_PROTO_ERR_NOT_OBJECT, "frame is not a JSON object"},
        {"\"hello\"", SLACK_PROTO_ERR_NOT_OBJECT, "frame is not a JSON object"},
        {"{}", SLACK_PROTO_ERR_MISSING, "type: missing"},
        {"{\"type\":null}", SLACK_PROTO_ERR_MISSING, "type: missing"},
        {"{\"type\":1}", SLACK_PROTO_ERR_TYPE, "type: expected a string"},
        {"{\"type\":\"slash_commands\",\"payload\":{}}", SLACK_PROTO_ERR_MISSING,
         "envelope_id: missing on a slash_commands envelope"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"\",\"payload\":{}}", SLACK_PROTO_ERR_MISSING,
         "envelope_id: missing on a interactive envelope"},
        {"{\"type\":\"events_api\",\"envelope_id\":7,\"payload\":{}}", SLACK_PROTO_ERR_TYPE,
         "envelope_id: expected a string"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\"}", SLACK_PROTO_ERR_MISSING, "payload: missing"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":\"user_id=U1\"}", SLACK_PROTO_ERR_TYPE,
         "payload: expected an object"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":7,\"channel_id\":\"C1\","
         "\"command\":\"/n\"}}",
         SLACK_PROTO_ERR_TYPE, "payload.user_id: expected a string"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":\"\",\"channel_id\":\"C1\","
         "\"command\":\"/n\"}}",
         SLACK_PROTO_ERR_MISSING, "payload.user_id: empty"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":\"U1\",\"channel_id\":\"C1\"}}",
         SLACK_PROTO_ERR_MISSING, "payload.command: missing"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":\"U1\",\"channel_id\":\"C1\","
         "\"command\":\"/n\",\"text\":[\"deploy\"]}}",
         SLACK_PROTO_ERR_TYPE, "payload.text: expected a string"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":\"U1\",\"channel_id\":\"C1\","
         "\"command\":\"/n\",\"text\":\"deploy\\u0000 web\"}}",
         SLACK_PROTO_ERR_VALUE, "payload.text: contains a NUL byte"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":\"U\\u0000\",\"channel_id\":"
         "\"C1\",\"command\":\"/n\"}}",
         SLACK_PROTO_ERR_VALUE, "payload.user_id: contains a NUL byte"},
        {"{\"type\":\"slash_commands\",\"envelope_id\":\"E1\",\"payload\":{\"user_id\":\"U1\",\"channel_id\":\"C1\","
         "\"command\":\"/a-command-name-that-is-much-longer-than-any-slack-allows-for-sure\"}}",
         SLACK_PROTO_ERR_TOO_LONG, "payload.command: 66 bytes, longer than 63"},
        {"{\"type\":\"hello\",\"accepts_response_payload\":\"yes\"}", SLACK_PROTO_ERR_TYPE,
         "accepts_response_payload: expected true or false"},
        {"{\"type\":\"events_api\",\"envelope_id\":\"E\",\"retry_attempt\":1.5,\"payload\":{}}", SLACK_PROTO_ERR_TYPE,
         "retry_attempt: expected an integer"},
        {"{\"type\":\"events_api\",\"envelope_id\":\"E\",\"retry_attempt\":-1,\"payload\":{}}", SLACK_PROTO_ERR_VALUE,
         "retry_attempt: out of range"},
        {"{\"type\":\"events_api\",\"envelope_id\":\"E\",\"retry_attempt\":99999999999999999999,\"payload\":{}}",
         SLACK_PROTO_ERR_VALUE, "retry_attempt: out of range"},
        {"{\"type\":\"events_api\",\"envelope_id\":\"E\",\"retry_reason\":false,\"payload\":{}}", SLACK_PROTO_ERR_TYPE,
         "retry_reason: expected a string"},
        {"{\"type\":\"events_api\",\"envelope_id\":\"E\",\"payload\":{\"event\":\"app_mention\"}}",
         SLACK_PROTO_ERR_TYPE, "payload.event: expected an object"},
        {"{\"type\":\"hello\",\"num_connections\":\"1\"}", SLACK_PROTO_ERR_TYPE,
         "num_connections: expected an integer"},
        {"{\"type\":\"hello\",\"debug_info\":{\"approximate_connection_time\":1e400}}", SLACK_PROTO_ERR_TYPE,
         "debug_info.approximate_connection_time: expected an integer"},
        {"{\"type\":\"hello\",\"connection_info\":[]}", SLACK_PROTO_ERR_TYPE, "connection_info: expected an object"},
        {"{\"type\":\"disconnect\",\"reason\":{}}", SLACK_PROTO_ERR_TYPE, "reason: expected a string"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{}}", SLACK_PROTO_ERR_MISSING,
         "payload.type: missing"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\","
         "\"actions\":[{\"action_id\":\"a\"}]}}",
         SLACK_PROTO_ERR_MISSING, "payload.user: missing"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{},"
         "\"actions\":[{\"action_id\":\"a\"}]}}",
         SLACK_PROTO_ERR_MISSING, "payload.user.id: missing"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"}}}",
         SLACK_PROTO_ERR_MISSING, "payload.actions: missing"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"},\"actions\":{}}}",
         SLACK_PROTO_ERR_TYPE, "payload.actions: expected an array"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"},\"actions\":[]}}",
         SLACK_PROTO_ERR_MISSING, "payload.actions: empty"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"},\"actions\":[\"approve\"]}}",
         SLACK_PROTO_ERR_TYPE, "payload.actions[0]: expected an object"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"},\"actions\":[{\"value\":\"D-1\"}]}}",
         SLACK_PROTO_ERR_MISSING, "payload.actions[0].action_id: missing"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"},\"actions\":[{\"action_id\":\"a\",\"value\":5}]}}",
         SLACK_PROTO_ERR_TYPE, "payload.actions[0].value: expected a string"},
        {"{\"type\":\"interactive\",\"envelope_id\":\"E\",\"payload\":{\"type\":\"block_actions\",\"user\":{\"id\":"
         "\"U1\"},\"container\":{\"message_ts\":1700000000.0001},\"actions\":[{\"action_id\":\"a\"}]}}",
         SLACK_PROTO_ERR_TYPE, "payload.container.message_ts: expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        slack_frame f;
        char err[256] = "";
        int rc = parse(cases[i].json, &f, err, sizeof(err));
        if (rc != cases[i].code || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: %s\n  got %d \"%s\", want %d \"%s\"", i, cases[i].json, rc, err, cases[i].code,
                     cases[i].err);
        assert_string_not_equal(slack_proto_strerror(rc), "unknown error");
    }
}

static void test_frame_bounds(void **state) {
    (void)state;
    slack_frame f;
    char err[256];

    /* over-long envelope_id */
    char json[512];
    char id[201];
    memset(id, 'e', 200);
    id[200] = '\0';
    snprintf(json, sizeof(json), "{\"envelope_id\":\"%s\",\"type\":\"slash_commands\",\"payload\":{}}", id);
    assert_int_equal(parse(json, &f, err, sizeof(err)), SLACK_PROTO_ERR_TOO_LONG);
    assert_string_equal(err, "envelope_id: 200 bytes, longer than 127");

    /* an error in the payload keeps the envelope_id for the ack */
    assert_int_equal(parse("{\"envelope_id\":\"E42\",\"type\":\"slash_commands\",\"payload\":{\"user_id\":1}}", &f,
                           err, sizeof(err)),
                     SLACK_PROTO_ERR_TYPE);
    assert_string_equal(f.envelope_id, "E42");
    assert_int_equal(f.kind, SLACK_FRAME_SLASH);

    /* the frame ceiling, refused unread */
    size_t big = SLACK_FRAME_MAX + 1;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, ' ', big);
    s[0] = '{';
    s[big - 1] = '}';
    assert_int_equal(slack_frame_parse(s, big, &f, err, sizeof(err)), SLACK_PROTO_ERR_TOO_LARGE);
    assert_string_equal(err, "frame of 262145 bytes is over the 262144-byte limit");
    assert_int_equal(slack_frame_parse(s, big - 1, &f, err, sizeof(err)), SLACK_PROTO_ERR_JSON);   /* "{   " */
    free(s);

    /* nesting deeper than json-c is allowed to go */
    nm_buf b;
    nm_buf_init(&b, 0);
    nm_buf_appends(&b, "{\"type\":\"hello\",\"x\":");
    for (int i = 0; i < 100; i++) nm_buf_appends(&b, "[");
    for (int i = 0; i < 100; i++) nm_buf_appends(&b, "]");
    nm_buf_appends(&b, "}");
    assert_int_equal(slack_frame_parse(b.data, b.len, &f, err, sizeof(err)), SLACK_PROTO_ERR_JSON);
    nm_buf_free(&b);

    /* not NUL-terminated: only len bytes are read; a NUL inside is a stray byte */
    const char raw[] = "{\"type\":\"hello\"}GARBAGE";
    assert_int_equal(slack_frame_parse(raw, 16, &f, err, sizeof(err)), SLACK_PROTO_OK);
    assert_int_equal(slack_frame_parse("{\"type\":\"hello\"}\0", 17, &f, err, sizeof(err)), SLACK_PROTO_ERR_JSON);
    assert_string_equal(err, "frame: unexpected bytes after the JSON value at byte 16");

    /* a short err buffer is cut, never overrun; NULL err is fine */
    char tiny[8];
    assert_int_equal(parse("{}", &f, tiny, sizeof(tiny)), SLACK_PROTO_ERR_MISSING);
    assert_string_equal(tiny, "type: m");
    assert_int_equal(parse("{}", &f, NULL, 0), SLACK_PROTO_ERR_MISSING);
    assert_int_equal(slack_frame_parse(NULL, 0, &f, err, sizeof(err)), SLACK_PROTO_ERR_JSON);
}

/* ---- the ack ---- */

static void test_ack_build(void **state) {
    (void)state;
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(slack_ack_build("dbdd0ef3-1543-4f94-bfb4-133d0e6c1545", NULL, &b), SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"envelope_id\":\"dbdd0ef3-1543-4f94-bfb4-133d0e6c1545\"}");

    nm_buf_reset(&b);
    assert_int_equal(slack_ack_build("E1", "{\"response_type\":\"ephemeral\",\"text\":\"queued\"}", &b),
                     SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"envelope_id\":\"E1\",\"payload\":{\"response_type\":\"ephemeral\",\"text\":\"queued\"}}");

    nm_buf_reset(&b);
    assert_int_equal(slack_ack_build("E1", "{}", &b), SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"envelope_id\":\"E1\",\"payload\":{}}");

    /* escaping: quotes, backslashes, control bytes, slashes left alone; it parses back to the same id */
    const char *odd = "E\"1\\2\n3/4\xc3\xa9";
    nm_buf_reset(&b);
    assert_int_equal(slack_ack_build(odd, NULL, &b), SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"envelope_id\":\"E\\\"1\\\\2\\n3/4\xc3\xa9\"}");
    json_object *o = reparse(b.data, b.len);
    assert_string_equal(at(o, "envelope_id"), odd);
    json_object_put(o);

    /* refusals leave out as it was */
    nm_buf_reset(&b);
    nm_buf_appends(&b, "keep");
    assert_int_equal(slack_ack_build(NULL, NULL, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(slack_ack_build("", NULL, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(slack_ack_build("E1", "{\"text\":", &b), SLACK_PROTO_ERR_JSON);
    assert_int_equal(slack_ack_build("E1", "[1]", &b), SLACK_PROTO_ERR_NOT_OBJECT);
    assert_int_equal(slack_ack_build("E1", "{} {}", &b), SLACK_PROTO_ERR_JSON);
    assert_string_equal(b.data, "keep");
    nm_buf_free(&b);

    nm_buf_init(&b, 10);
    assert_int_equal(slack_ack_build("E1234567890", NULL, &b), SLACK_PROTO_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    nm_buf_free(&b);
}

/* ---- Web API answers (A2.1, A6) ---- */

static int api(const char *method, const char *body, slack_api_result *r, char *err) {
    return slack_api_parse(method, body, strlen(body), r, err, 256);
}

static void test_api_methods(void **state) {
    (void)state;
    slack_api_result r;
    char err[256];

    assert_int_equal(api("apps.connections.open",
                         "{\"ok\":true,\"url\":\"wss://wss-primary.slack.com/link/?ticket=T1&app_id=A1\"}", &r, err),
                     SLACK_PROTO_OK);
    assert_true(r.ok);
    assert_string_equal(r.url, "wss://wss-primary.slack.com/link/?ticket=T1&app_id=A1");

    assert_int_equal(api("chat.postMessage",
                         "{\"ok\":true,\"channel\":\"C0DEPLOY\",\"ts\":\"1700000000.000100\",\n"
                         " \"message\":{\"type\":\"message\",\"subtype\":\"bot_message\",\"bot_id\":\"B0BOT\","
                         "\"text\":\"…\",\"ts\":\"1700000000.000100\",\"blocks\":[]}}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_true(r.ok);
    assert_string_equal(r.channel, "C0DEPLOY");
    assert_string_equal(r.ts, "1700000000.000100");

    assert_int_equal(api("chat.update",
                         "{\"ok\":true,\"channel\":\"C0DEPLOY\",\"ts\":\"1700000000.000100\",\"text\":\"…\","
                         "\"message\":{},\"warning\":\"superfluous_charset\","
                         "\"response_metadata\":{\"warnings\":[\"superfluous_charset\"]}}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_string_equal(r.ts, "1700000000.000100");
    assert_string_equal(r.warning, "superfluous_charset");

    assert_int_equal(api("chat.postEphemeral", "{\"ok\":true,\"message_ts\":\"1502210682.580145\"}", &r, err),
                     SLACK_PROTO_OK);
    assert_string_equal(r.message_ts, "1502210682.580145");
    assert_string_equal(r.ts, "");

    assert_int_equal(api("chat.getPermalink",
                         "{\"ok\":true,\"channel\":\"C0DEPLOY\","
                         "\"permalink\":\"https://acme.slack.com/archives/C0DEPLOY/p1700000000000100\"}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_string_equal(r.permalink, "https://acme.slack.com/archives/C0DEPLOY/p1700000000000100");
    assert_string_equal(r.channel, "C0DEPLOY");

    assert_int_equal(api("users.info",
                         "{\"ok\":true,\"user\":{\"id\":\"U0APPROVER\",\"team_id\":\"T0TEAM\",\"name\":\"ana\","
                         "\"deleted\":false,\n \"real_name\":\"Ana Li\",\"tz\":\"Europe/Berlin\",\"is_admin\":false,"
                         "\"is_owner\":false,\"is_bot\":false,\n \"is_app_user\":false,\"is_restricted\":false,"
                         "\"is_ultra_restricted\":false,\"updated\":1700000000,\n \"profile\":{\"display_name\":"
                         "\"ana\",\"real_name\":\"Ana Li\",\"email\":\"ana@example.com\",\"image_48\":\"https://x\"}}}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_string_equal(r.user_id, "U0APPROVER");
    assert_string_equal(r.team_id, "T0TEAM");
    assert_string_equal(r.user_name, "ana");
    assert_string_equal(r.real_name, "Ana Li");
    assert_string_equal(r.display_name, "ana");
    assert_false(r.is_bot);
    assert_false(r.deleted);

    /* a deleted bot user; real name only in the profile */
    assert_int_equal(api("users.info",
                         "{\"ok\":true,\"user\":{\"id\":\"U0BOT\",\"deleted\":true,\"is_bot\":true,"
                         "\"profile\":{\"real_name\":\"Deploy Bot\",\"display_name\":\"\"}}}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_true(r.is_bot);
    assert_true(r.deleted);
    assert_string_equal(r.real_name, "Deploy Bot");

    assert_int_equal(api("auth.test",
                         "{\"ok\":true,\"url\":\"https://acme.slack.com/\",\"team\":\"Acme\",\"user\":\"nomatron\","
                         "\"team_id\":\"T0TEAM\",\"user_id\":\"U0BOTUSER\",\"bot_id\":\"B0BOT\","
                         "\"is_enterprise_install\":false}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_string_equal(r.url, "https://acme.slack.com/");
    assert_string_equal(r.team, "Acme");
    assert_string_equal(r.user_name, "nomatron");
    assert_string_equal(r.team_id, "T0TEAM");
    assert_string_equal(r.user_id, "U0BOTUSER");
    assert_string_equal(r.bot_id, "B0BOT");
}

static void test_api_errors(void **state) {
    (void)state;
    slack_api_result r;
    char err[256];

    /* ok:false is an answer, not a parse error */
    assert_int_equal(api("chat.postMessage", "{\"ok\":false,\"error\":\"not_in_channel\"}", &r, err), SLACK_PROTO_OK);
    assert_false(r.ok);
    assert_string_equal(r.error, "not_in_channel");
    assert_int_equal(api("apps.connections.open",
                         "{\"ok\":false,\"error\":\"missing_scope\",\"needed\":\"connections:write\","
                         "\"provided\":\"chat:write\"}",
                         &r, err),
                     SLACK_PROTO_OK);
    assert_string_equal(r.error, "missing_scope");
    assert_string_equal(r.needed, "connections:write");
    assert_int_equal(api("users.info", "{\"ok\":false}", &r, err), SLACK_PROTO_OK);
    assert_string_equal(r.error, "unknown_error");
    assert_int_equal(api("chat.update", "{\"ok\":false,\"error\":\"ratelimited\"}", &r, err), SLACK_PROTO_OK);
    assert_string_equal(r.error, "ratelimited");

    static const struct {
        const char *method, *body;
        int code;
        const char *err;
    } cases[] = {
        {"chat.postMessage", "{\"channel\":\"C1\",\"ts\":\"1.2\"}", SLACK_PROTO_ERR_MISSING, "ok: missing"},
        {"chat.postMessage", "{\"ok\":\"true\"}", SLACK_PROTO_ERR_TYPE, "ok: expected true or false"},
        {"chat.postMessage", "{\"ok\":1}", SLACK_PROTO_ERR_TYPE, "ok: expected true or false"},
        {"chat.postMessage", "{\"ok\":true,\"channel\":\"C1\"}", SLACK_PROTO_ERR_MISSING, "ts: missing"},
        {"chat.postMessage", "{\"ok\":true,\"channel\":\"C1\",\"ts\":1700000000.0001}", SLACK_PROTO_ERR_TYPE,
         "ts: expected a string"},
        {"chat.postMessage", "{\"ok\":true,\"channel\":\"C1\",\"ts\":\"1700000000.000100000000000000000000\"}",
         SLACK_PROTO_ERR_TOO_LONG, "ts: 35 bytes, longer than 31"},
        {"chat.update", "{\"ok\":true,\"ts\":\"1.2\"}", SLACK_PROTO_ERR_MISSING, "channel: missing"},
        {"chat.postEphemeral", "{\"ok\":true}", SLACK_PROTO_ERR_MISSING, "message_ts: missing"},
        {"chat.getPermalink", "{\"ok\":true,\"channel\":\"C1\"}", SLACK_PROTO_ERR_MISSING, "permalink: missing"},
        {"apps.connections.open", "{\"ok\":true}", SLACK_PROTO_ERR_MISSING, "url: missing"},
        {"apps.connections.open", "{\"ok\":true,\"url\":\"\"}", SLACK_PROTO_ERR_MISSING, "url: empty"},
        {"users.info", "{\"ok\":true}", SLACK_PROTO_ERR_MISSING, "user: missing"},
        {"users.info", "{\"ok\":true,\"user\":{\"name\":\"ana\"}}", SLACK_PROTO_ERR_MISSING, "user.id: missing"},
        {"users.info", "{\"ok\":true,\"user\":{\"id\":\"U1\",\"is_bot\":0}}", SLACK_PROTO_ERR_TYPE,
         "user.is_bot: expected true or false"},
        {"users.info", "{\"ok\":true,\"user\":{\"id\":\"U1\",\"profile\":{\"display_name\":[]}}}", SLACK_PROTO_ERR_TYPE,
         "user.profile.display_name: expected a string"},
        {"auth.test", "{\"ok\":true,\"team_id\":\"T1\"}", SLACK_PROTO_ERR_MISSING, "user_id: missing"},
        {"chat.postMessage", "{\"ok\":false,\"error\":7}", SLACK_PROTO_ERR_TYPE, "error: expected a string"},
        {"chat.postMessage", "{\"ok\":true,", SLACK_PROTO_ERR_JSON, "chat.postMessage: empty or truncated JSON"},
        {"chat.postMessage", "<html>502 Bad Gateway</html>", SLACK_PROTO_ERR_JSON, "chat.postMessage: malformed JSON"},
        {"chat.postMessage", "[]", SLACK_PROTO_ERR_NOT_OBJECT, "chat.postMessage is not a JSON object"},
        {"chat.delete", "{\"ok\":true}", SLACK_PROTO_ERR_INVALID, "unknown method chat.delete"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(err, 0, sizeof(err));
        int rc = api(cases[i].method, cases[i].body, &r, err);
        if (rc != cases[i].code || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: %s %s\n  got %d \"%s\", want %d \"%s\"", i, cases[i].method, cases[i].body, rc, err,
                     cases[i].code, cases[i].err);
        assert_false(r.ok);   /* never a half-read success */
    }
    assert_int_equal(slack_api_parse(NULL, "{}", 2, &r, err, sizeof(err)), SLACK_PROTO_ERR_INVALID);

    /* the body ceiling */
    size_t big = SLACK_API_BODY_MAX + 1;
    char *s = calloc(1, big);
    assert_non_null(s);
    assert_int_equal(slack_api_parse("users.info", s, big, &r, err, sizeof(err)), SLACK_PROTO_ERR_TOO_LARGE);
    free(s);

    /* names and warnings are cut at a character boundary, not refused */
    nm_buf b;
    nm_buf_init(&b, 0);
    nm_buf_appends(&b, "{\"ok\":true,\"warning\":\"");
    for (int i = 0; i < 100; i++) nm_buf_appends(&b, "missing_charset,");
    nm_buf_appends(&b, "x\",\"user\":{\"id\":\"U1\",\"real_name\":\"");
    for (int i = 0; i < 100; i++) nm_buf_appends(&b, "\xc3\xa9");   /* é: 200 bytes */
    nm_buf_appends(&b, "\"}}");
    assert_int_equal(slack_api_parse("users.info", b.data, b.len, &r, err, sizeof(err)), SLACK_PROTO_OK);
    assert_int_equal(strlen(r.warning), 255);
    assert_int_equal(strlen(r.real_name), 126);   /* 63 whole é, not 127 bytes with half of one */
    assert_true(utf8_valid(r.real_name));
    nm_buf_free(&b);
}

static void test_error_hint(void **state) {
    (void)state;
    const char *generic = slack_error_hint("some_new_error");
    assert_non_null(generic);
    assert_string_equal(slack_error_hint(NULL), generic);
    static const char *known[] = {"invalid_auth",     "not_authed",    "token_revoked",      "missing_scope",
                                  "not_in_channel",   "channel_not_found", "msg_too_long",   "ratelimited",
                                  "not_allowed_token_type", "account_inactive", "token_expired", "is_archived",
                                  "invalid_blocks",   "message_not_found", "cant_update_message",
                                  "user_not_in_channel", "rate_limited", "internal_error"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const char *h = slack_error_hint(known[i]);
        assert_non_null(h);
        if (h == generic) fail_msg("no hint for %s", known[i]);
    }
    assert_non_null(strstr(slack_error_hint("not_allowed_token_type"), "xapp-"));
    assert_non_null(strstr(slack_error_hint("not_in_channel"), "invite"));
}

static void test_retry_after(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int rc, seconds;
    } cases[] = {
        {"30", SLACK_PROTO_OK, 30},
        {"0", SLACK_PROTO_OK, 0},
        {"1", SLACK_PROTO_OK, 1},
        {" 5\r\n", SLACK_PROTO_OK, 5},
        {"\t12 ", SLACK_PROTO_OK, 12},
        {"3600", SLACK_PROTO_OK, 3600},
        {"3601", SLACK_PROTO_OK, 3600},
        {"99999999999999999999999999", SLACK_PROTO_OK, 3600},
        {"007", SLACK_PROTO_OK, 7},
        {"", SLACK_PROTO_ERR_VALUE, -1},
        {"  ", SLACK_PROTO_ERR_VALUE, -1},
        {"-1", SLACK_PROTO_ERR_VALUE, -1},
        {"+5", SLACK_PROTO_ERR_VALUE, -1},
        {"1.5", SLACK_PROTO_ERR_VALUE, -1},
        {"5x", SLACK_PROTO_ERR_VALUE, -1},
        {"5 5", SLACK_PROTO_ERR_VALUE, -1},
        {"0x10", SLACK_PROTO_ERR_VALUE, -1},
        {"Wed, 21 Oct 2015 07:28:00 GMT", SLACK_PROTO_ERR_VALUE, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int s = -1;
        int rc = slack_retry_after_parse(cases[i].in, &s);
        if (rc != cases[i].rc || s != cases[i].seconds)
            fail_msg("\"%s\": got %d/%d, want %d/%d", cases[i].in, rc, s, cases[i].rc, cases[i].seconds);
    }
    int s = -1;
    assert_int_equal(slack_retry_after_parse(NULL, &s), SLACK_PROTO_ERR_VALUE);
}

/* ---- escaping ---- */

static char *esc(const char *in) {
    static char out[4096];
    nm_buf b;
    nm_buf_init(&b, 0);
    slack_escape(&b, in);
    snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
    nm_buf_free(&b);
    return out;
}

static void test_escape(void **state) {
    (void)state;
    assert_string_equal(esc("<!channel> hi"), "&lt;!channel&gt; hi");
    assert_string_equal(esc("<!here|here>"), "&lt;!here|here&gt;");
    assert_string_equal(esc("ping <@U1>"), "ping &lt;@U1&gt;");
    assert_string_equal(esc("<https://evil.example|click>"), "&lt;https://evil.example|click&gt;");
    assert_string_equal(esc("a & b &amp; c"), "a &amp; b &amp;amp; c");
    assert_string_equal(esc("plain *bold* `code` @channel"), "plain *bold* `code` @channel");
    assert_string_equal(esc("line1\nline2\ttab"), "line1\nline2\ttab");
    assert_string_equal(esc("cr\r\nbell\a del\x7f"), "cr\nbell del");
    assert_string_equal(esc("\xF0\x9F\x9A\x80 ship \xE2\x9C\x85 caf\xC3\xA9"), "\xF0\x9F\x9A\x80 ship \xE2\x9C\x85 caf\xC3\xA9");
    /* invalid UTF-8: stray, overlong, surrogate, past U+10FFFF, cut short */
    assert_string_equal(esc("a\xff" "b"), "a\xEF\xBF\xBD" "b");
    assert_string_equal(esc("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(esc("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(esc("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(esc("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(esc(""), "");
    assert_string_equal(esc(NULL), "");

    /* cutting: whole characters and entities only, "…" inside the cap */
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_false(slack_escape_n(&b, "short", 10));
    assert_string_equal(b.data, "short");
    nm_buf_reset(&b);
    assert_true(slack_escape_n(&b, "\xF0\x9F\x9A\x80\xF0\x9F\x9A\x80\xF0\x9F\x9A\x80", 10));   /* 🚀🚀🚀 = 12 bytes */
    assert_string_equal(b.data, "\xF0\x9F\x9A\x80\xE2\x80\xA6");   /* 🚀… = 7: a second 🚀 would be 11 */
    nm_buf_reset(&b);
    assert_true(slack_escape_n(&b, "&&&&", 10));
    assert_string_equal(b.data, "&amp;\xE2\x80\xA6");
    nm_buf_reset(&b);
    assert_false(slack_escape_n(&b, "<>", 8));   /* exactly fits */
    assert_string_equal(b.data, "&lt;&gt;");
    nm_buf_free(&b);

    /* at the buffer's ceiling it stops: never an entity skipped and a later byte written */
    nm_buf_init(&b, 5);
    slack_escape(&b, "a&b");
    assert_string_equal(b.data, "a");
    nm_buf_free(&b);

    /* 10 kB: all of it, or cut to the byte */
    char *big = malloc(10001);
    assert_non_null(big);
    for (size_t i = 0; i < 10000; i++) big[i] = "<a&\xC3\xA9"[i % 5];   /* splits é at odd places when cut */
    big[10000] = '\0';
    nm_buf_init(&b, 0);
    slack_escape(&b, big);
    assert_int_equal(b.len, 2000 * (4 + 1 + 5 + 2));
    assert_null(strchr(b.data, '<'));
    for (size_t max = 3990; max <= 4000; max++) {
        nm_buf_reset(&b);
        assert_true(slack_escape_n(&b, big, max));
        assert_true(b.len <= max && b.len >= max - 8);
        assert_true(utf8_valid(b.data));
        assert_memory_equal(b.data + b.len - 3, "\xE2\x80\xA6", 3);
        assert_null(strchr(b.data, '<'));
    }
    nm_buf_free(&b);
    free(big);
}

/* The escaper takes runs of plain bytes in one step; this holds it to the
 * unit-at-a-time definition (what each byte or character becomes, whole
 * units up to the cap, then "…") on random text of every kind of unit. */
static size_t ref_unit(const unsigned char *p, size_t rem, const char **out, size_t *outlen) {
    static const char fffd[] = "\xEF\xBF\xBD";
    *out = (const char *)p;
    *outlen = 1;
    if (*p == '&') *out = "&amp;", *outlen = 5;
    else if (*p == '<') *out = "&lt;", *outlen = 4;
    else if (*p == '>') *out = "&gt;", *outlen = 4;
    else if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7F) *outlen = 0;
    else if (*p >= 0x80) {
        size_t n = nm_utf8_seq(p, rem);
        if (!n) *out = fffd, *outlen = 3;
        else *outlen = n;
        return n ? n : 1;
    }
    return 1;
}

static void test_escape_runs(void **state) {
    (void)state;
    static const char *const pieces[] = {"a", "Zz", " ", "&", "<", ">", "`", "\n", "\t", "\r", "\x7F",
                                         "\xC3\xA9", "\xF0\x9F\x9A\x80", "\xFF", "\xE2\x82", "abcdefghijklmnop"};
    unsigned seed = 12345;
    nm_buf got, want;
    nm_buf_init(&got, 0);
    nm_buf_init(&want, 0);
    for (int round = 0; round < 3000; round++) {
        char text[256];
        size_t len = 0;
        int n = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 24;
        for (int i = 0; i < n; i++) {
            const char *pc = pieces[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(text + len, pc, strlen(pc));
            len += strlen(pc);
        }
        text[len] = '\0';
        size_t total = 0;
        for (size_t i = 0; i < len;) {
            const char *o;
            size_t ol;
            i += ref_unit((const unsigned char *)text + i, len - i, &o, &ol);
            total += ol;
        }
        for (size_t max = 1; max <= total + 2; max++) {
            bool cut = total > max;
            size_t budget = cut ? (max >= 3 ? max - 3 : 0) : total, used = 0;
            nm_buf_reset(&want);
            for (size_t i = 0; i < len;) {
                const char *o;
                size_t ol;
                size_t in = ref_unit((const unsigned char *)text + i, len - i, &o, &ol);
                if (used + ol > budget) break;
                nm_buf_append(&want, o, ol);
                used += ol;
                i += in;
            }
            if (cut && max >= 3) nm_buf_append(&want, "\xE2\x80\xA6", 3);
            nm_buf_reset(&got);
            assert_int_equal(slack_escape_n(&got, text, max), cut);
            assert_int_equal(got.len, want.len);
            if (want.len) assert_memory_equal(got.data, want.data, want.len);
        }
        nm_buf_reset(&got);
        slack_escape(&got, text);
        assert_int_equal(got.len, total);
    }
    nm_buf_free(&got);
    nm_buf_free(&want);
}

static char *ident(const char *in) {
    static char out[512];
    nm_buf b;
    nm_buf_init(&b, 0);
    slack_identity(&b, in);
    snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
    nm_buf_free(&b);
    return out;
}

static void test_identity(void **state) {
    (void)state;
    assert_string_equal(ident("slack:U123"), "<@U123>");
    assert_string_equal(ident("slack:W0ENTERPRISE9"), "<@W0ENTERPRISE9>");
    assert_string_equal(ident("slack:u123"), "slack:u123");
    assert_string_equal(ident("slack:U1><!channel"), "slack:U1&gt;&lt;!channel");
    assert_string_equal(ident("slack:U1|x"), "slack:U1|x");
    assert_string_equal(ident("slack:"), "slack:");
    assert_string_equal(ident("slack:U123456789012345678901234567890123"), "slack:U123456789012345678901234567890123");
    assert_string_equal(ident("shell:alice"), "shell:alice");
    assert_string_equal(ident("mattermost:<@x>"), "mattermost:&lt;@x&gt;");
    assert_string_equal(ident(""), "someone");
    assert_string_equal(ident(NULL), "someone");
}

/* ---- progress ---- */

static void test_progress_line(void **state) {
    (void)state;
    static const struct {
        slack_progress p;
        const char *want;
    } cases[] = {
        {{.healthy = 0, .desired = 5}, "▱▱▱▱▱ 0/5 healthy"},
        {{.healthy = 3, .desired = 5, .placed = 5}, "▰▰▰▱▱ 3/5 healthy"},
        {{.healthy = 5, .desired = 5, .placed = 5}, "▰▰▰▰▰ 5/5 healthy"},
        {{.healthy = 4, .desired = 5}, "▰▰▰▰▱ 4/5 healthy"},
        {{.healthy = 99, .desired = 100}, "▰▰▰▰▱ 99/100 healthy"},
        {{.healthy = 1, .desired = 3}, "▰▱▱▱▱ 1/3 healthy"},
        {{.healthy = 1, .desired = 6}, "▱▱▱▱▱ 1/6 healthy"},
        {{.healthy = 2, .desired = 3}, "▰▰▰▱▱ 2/3 healthy"},
        {{.healthy = 0, .desired = 0}, "▱▱▱▱▱ 0/0 healthy"},
        {{.healthy = 6, .desired = 5}, "▰▰▰▰▰ 6/5 healthy"},
        {{.healthy = -2, .desired = -1, .unhealthy = -3}, "▱▱▱▱▱ 0/0 healthy"},
        {{.healthy = 3, .desired = 5, .canaries_desired = 1, .canaries_placed = 1, .canaries_healthy = 1},
         "▰▰▰▱▱ 3/5 healthy · 1 canary awaiting promotion"},
        {{.healthy = 2, .desired = 5, .canaries_desired = 2, .canaries_placed = 2, .canaries_healthy = 2},
         "▰▰▱▱▱ 2/5 healthy · 2 canaries awaiting promotion"},
        {{.healthy = 1, .desired = 5, .canaries_desired = 2, .canaries_placed = 2, .canaries_healthy = 1},
         "▰▱▱▱▱ 1/5 healthy · 1/2 canaries healthy"},
        {{.healthy = 0, .desired = 5, .canaries_desired = 1, .canaries_placed = 1},
         "▱▱▱▱▱ 0/5 healthy · 0/1 canary healthy"},
        {{.healthy = 5, .desired = 5, .canaries_desired = 1, .canaries_healthy = 1, .promoted = true},
         "▰▰▰▰▰ 5/5 healthy"},
        {{.healthy = 3, .desired = 5, .unhealthy = 2}, "▰▰▰▱▱ 3/5 healthy · 2 unhealthy"},
        {{.healthy = 1, .desired = 4, .unhealthy = 1, .canaries_desired = 1, .canaries_healthy = 1},
         "▰▱▱▱▱ 1/4 healthy · 1 canary awaiting promotion · 1 unhealthy"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nm_buf b;
        nm_buf_init(&b, 0);
        slack_progress_line(&cases[i].p, &b);
        if (strcmp(b.data, cases[i].want) != 0) fail_msg("case %zu: got \"%s\", want \"%s\"", i, b.data, cases[i].want);
        nm_buf_free(&b);
    }
}

/* ---- the request view ---- */

static int apply(slack_req_view *v, const char *json) {
    json_object *ev = json_tokener_parse(json);
    int rc = slack_req_view_apply(v, ev);
    json_object_put(ev);
    return rc;
}

static void view_12(slack_req_view *v) {
    slack_req_view_init(v, 12);
    snprintf(v->kind, sizeof(v->kind), "deploy");
    snprintf(v->job, sizeof(v->job), "web");
    snprintf(v->version, sizeof(v->version), "v1.4.2");
    snprintf(v->env, sizeof(v->env), "staging");
    snprintf(v->requester, sizeof(v->requester), "slack:U0REQ");
    v->required = 2;
}

static void test_view_sequence(void **state) {
    (void)state;
    slack_req_view v;
    view_12(&v);
    assert_int_equal(v.job_version, -1);

    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"pending_approval\",\"kind\":\"deploy\","
                               "\"job\":\"web\",\"env\":\"staging\",\"version\":\"v1.4.2\",\"detail\":\"plan at "
                               "JobModifyIndex 41 (Edited): web: 0 destructive, 3 in place, 0 new, 0 stopped\"}"),
                     1);
    assert_string_equal(v.state, "pending_approval");
    assert_string_equal(v.plan, "plan at JobModifyIndex 41 (Edited): web: 0 destructive, 3 in place, 0 new, 0 stopped");
    assert_string_equal(v.detail, "");
    /* the same event again: nothing to redraw */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"pending_approval\",\"detail\":\"plan at "
                               "JobModifyIndex 41 (Edited): web: 0 destructive, 3 in place, 0 new, 0 stopped\"}"),
                     0);

    v.given = 1;
    assert_int_equal(slack_req_view_add_approver(&v, "slack:U0ANA"), 1);
    assert_int_equal(slack_req_view_add_approver(&v, "slack:U0ANA"), 0);

    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"approved\"}"), 1);
    assert_string_equal(v.plan, "plan at JobModifyIndex 41 (Edited): web: 0 destructive, 3 in place, 0 new, 0 stopped");
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"queued\"}"), 1);
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"registering\"}"), 1);
    assert_string_equal(v.phase, "registering");
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"rolling\","
                               "\"job_version\":7,\"detail\":\"1/3 healthy, 3 placed, 0 unhealthy\","
                               "\"progress\":{\"healthy\":1,\"desired\":3,\"placed\":3,\"unhealthy\":0,"
                               "\"canaries_desired\":0,\"canaries_placed\":0,\"canaries_healthy\":0,"
                               "\"promoted\":false}}"),
                     1);
    assert_true(v.has_progress);
    assert_int_equal(v.progress.healthy, 1);
    assert_int_equal(v.progress.desired, 3);
    assert_int_equal(v.job_version, 7);
    /* progress moves: visible */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"rolling\","
                               "\"job_version\":7,\"detail\":\"2/3 healthy, 3 placed, 0 unhealthy\","
                               "\"progress\":{\"healthy\":2,\"desired\":3,\"placed\":3}}"),
                     1);
    assert_int_equal(v.progress.healthy, 2);
    /* same again */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"rolling\","
                               "\"job_version\":7,\"detail\":\"2/3 healthy, 3 placed, 0 unhealthy\","
                               "\"progress\":{\"healthy\":2,\"desired\":3,\"placed\":3}}"),
                     0);
    /* the counts in words changed, the drawn progress did not: nothing to redraw */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"rolling\","
                               "\"job_version\":7,\"detail\":\"web: 2/3 healthy, 3 placed, 0 unhealthy\","
                               "\"progress\":{\"healthy\":2,\"desired\":3,\"placed\":3}}"),
                     0);
    /* another request's event changes nothing */
    slack_req_view before = v;
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":13,\"state\":\"failed\",\"reason\":\"unhealthy\"}"), 0);
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":13,\"state\":42}"), 0);
    assert_memory_equal(&before, &v, sizeof(v));

    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"succeeded\",\"job_version\":7,"
                               "\"detail\":\"3/3 healthy\",\"progress\":{\"healthy\":3,\"desired\":3,\"placed\":3}}"),
                     1);
    assert_string_equal(v.state, "succeeded");
    assert_string_equal(v.phase, "");
    /* late and redelivered events after the end: ignored */
    before = v;
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"rolling\"}"), 0);
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"failed\",\"reason\":\"timeout\"}"), 0);
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"succeeded\"}"), 0);
    assert_memory_equal(&before, &v, sizeof(v));
}

static void test_view_edges(void **state) {
    (void)state;
    slack_req_view v;
    view_12(&v);

    /* why there is no plan is the plan section's text */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"pending_approval\","
                               "\"detail\":\"plan: reading the job: HTTP 404: job not found\"}"),
                     1);
    assert_string_equal(v.plan, "plan: reading the job: HTTP 404: job not found");

    /* failure: reason and detail kept */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"failed\",\"reason\":\"conflict\","
                               "\"detail\":\"the job changed in Nomad since the plan that was approved; request "
                               "again\"}"),
                     1);
    assert_string_equal(v.reason, "conflict");
    assert_string_equal(v.detail, "the job changed in Nomad since the plan that was approved; request again");

    /* malformed events: -1, nothing changes */
    view_12(&v);
    slack_req_view before = v;
    static const char *bad[] = {
        "[]",
        "{\"req\":12,\"state\":\"queued\"}",
        "{\"type\":\"status\",\"req\":12,\"state\":\"queued\"}",
        "{\"type\":\"request\",\"state\":\"queued\"}",
        "{\"type\":\"request\",\"req\":\"12\",\"state\":\"queued\"}",
        "{\"type\":\"request\",\"req\":12}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"exploded\"}",
        "{\"type\":\"request\",\"req\":12,\"state\":7}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"phase\":1}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"detail\":{}}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"job_version\":\"7\"}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"job_version\":-3}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"progress\":[]}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"progress\":{\"healthy\":\"1\"}}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"progress\":{\"healthy\":-1}}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"progress\":{\"promoted\":1}}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"job\":\"a-job-name-longer-than-sixty-four-bytes-"
        "which-no-config-allows-xxxxxxxx\"}",
        "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"detail\":\"a\\u0000b\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (apply(&v, bad[i]) != -1) fail_msg("accepted %s", bad[i]);
        assert_memory_equal(&before, &v, sizeof(v));
    }
    assert_int_equal(slack_req_view_apply(&v, NULL), -1);

    /* a long detail is cut at a character boundary */
    nm_buf b;
    nm_buf_init(&b, 0);
    nm_buf_appends(&b, "{\"type\":\"request\",\"req\":12,\"state\":\"queued\",\"detail\":\"");
    for (int i = 0; i < 1000; i++) nm_buf_appends(&b, "\xE2\x82\xAC");   /* € */
    nm_buf_appends(&b, "\"}");
    assert_int_equal(apply(&v, b.data), 1);
    assert_int_equal(strlen(v.detail), 1023 / 3 * 3);
    assert_true(utf8_valid(v.detail));
    nm_buf_free(&b);

    /* approvers: bounded, no duplicates */
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "slack:U%d", i);
        assert_int_equal(slack_req_view_add_approver(&v, id), i < SLACK_VIEW_APPROVERS ? 1 : 0);
    }
    assert_int_equal(v.n_approvers, SLACK_VIEW_APPROVERS);
    assert_int_equal(slack_req_view_add_approver(&v, ""), 0);
}

/* ---- the bodies ---- */

/* Checks every limit of a request message body and returns it parsed. */
static json_object *check_message(const nm_buf *b) {
    assert_true(b->len <= SLACK_BODY_MAX);
    json_object *o = reparse(b->data, b->len);
    const char *text = at(o, "text");
    assert_non_null(text);
    assert_true(strlen(text) <= SLACK_TEXT_MAX);
    json_object *blocks = member(o, "blocks");
    assert_non_null(blocks);
    assert_true(json_object_is_type(blocks, json_type_array));
    size_t n = json_object_array_length(blocks);
    assert_true(n >= 1 && n <= SLACK_BLOCKS_MAX);
    for (size_t i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(blocks, i);
        const char *type = at(blk, "type");
        assert_non_null(type);
        if (strcmp(type, "section") == 0) {
            const char *t = at(blk, "text.text");
            assert_non_null(t);
            assert_true(chars(t) <= SLACK_SECTION_MAX && strlen(t) <= SLACK_SECTION_MAX);
            assert_string_equal(at(blk, "text.type"), "mrkdwn");
        }
    }
    /* nothing anyone typed may become a mention or a link */
    assert_null(strstr(b->data, "<!"));
    assert_null(strstr(b->data, "<http"));
    return o;
}

/* The text of the first section whose text starts with prefix. */
static const char *section_starting(json_object *o, const char *prefix) {
    json_object *blocks = member(o, "blocks");
    for (size_t i = 0; i < json_object_array_length(blocks); i++) {
        const char *t = at(json_object_array_get_idx(blocks, i), "text.text");
        if (t && strncmp(t, prefix, strlen(prefix)) == 0) return t;
    }
    return NULL;
}

static json_object *block_of_type(json_object *o, const char *type) {
    json_object *blocks = member(o, "blocks");
    for (size_t i = 0; i < json_object_array_length(blocks); i++) {
        json_object *blk = json_object_array_get_idx(blocks, i);
        if (strcmp(at(blk, "type"), type) == 0) return blk;
    }
    return NULL;
}

static void test_req_message(void **state) {
    (void)state;
    slack_req_view v;
    view_12(&v);
    snprintf(v.req_reason, sizeof(v.req_reason), "fix <!channel> login & logout");
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"pending_approval\",\"detail\":\"plan at "
                               "JobModifyIndex 41 (Edited): web: 0 destructive, 3 in place\"}"),
                     1);
    v.given = 1;
    slack_req_view_add_approver(&v, "slack:U0ANA");

    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(slack_req_message(&v, "C0DEPLOY", NULL, &b), SLACK_PROTO_OK);
    json_object *o = check_message(&b);
    assert_string_equal(at(o, "channel"), "C0DEPLOY");
    assert_null(member(o, "ts"));
    assert_false(json_object_get_boolean(member(o, "link_names")));
    assert_false(json_object_get_boolean(member(o, "unfurl_links")));
    assert_string_equal(at(o, "text"), "Deploy web v1.4.2 → staging (D-12): waiting for approval 1/2");
    assert_string_equal(at(o, "blocks.0.text.text"),
                        "*Deploy* `web` *v1.4.2* → *staging* · D-12\nRequested by <@U0REQ> · reason: fix "
                        "&lt;!channel&gt; login &amp; logout");
    assert_non_null(section_starting(o, "*Approvals 1/2:* <@U0ANA>"));
    assert_string_equal(section_starting(o, "*Plan*"),
                        "*Plan*\n```plan at JobModifyIndex 41 (Edited): web: 0 destructive, 3 in place```");
    assert_non_null(section_starting(o, "⏳ *Waiting for approval*"));
    json_object *actions = block_of_type(o, "actions");
    assert_non_null(actions);
    assert_string_equal(at(actions, "elements.0.action_id"), SLACK_ACTION_APPROVE);
    assert_string_equal(at(actions, "elements.0.value"), "D-12");
    assert_string_equal(at(actions, "elements.0.style"), "primary");
    assert_string_equal(at(actions, "elements.0.confirm.title.text"), "Approve D-12?");
    assert_string_equal(at(actions, "elements.1.action_id"), SLACK_ACTION_REJECT);
    assert_string_equal(at(actions, "elements.1.confirm.style"), "danger");
    assert_true(strlen(at(actions, "elements.0.confirm.text.text")) <= 300);
    assert_string_equal(at(block_of_type(o, "context"), "elements.0.text"), "Audit trail: `/nomatron audit D-12`");
    json_object_put(o);

    /* running, as chat.update: progress line, no buttons */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"running\",\"phase\":\"rolling\","
                               "\"job_version\":7,\"progress\":{\"healthy\":3,\"desired\":5,\"canaries_desired\":1,"
                               "\"canaries_healthy\":1,\"promoted\":false}}"),
                     1);
    nm_buf_reset(&b);
    assert_int_equal(slack_req_message(&v, "C0DEPLOY", "1700000000.000100", &b), SLACK_PROTO_OK);
    o = check_message(&b);
    assert_string_equal(at(o, "ts"), "1700000000.000100");
    assert_null(member(o, "unfurl_links"));
    assert_string_equal(section_starting(o, "🚀"),
                        "🚀 *Running* (rolling) · job version 7\n▰▰▰▱▱ 3/5 healthy · 1 canary awaiting promotion");
    assert_null(block_of_type(o, "actions"));
    json_object_put(o);

    /* failed: reason — detail */
    assert_int_equal(apply(&v, "{\"type\":\"request\",\"req\":12,\"state\":\"failed\",\"reason\":\"unhealthy\","
                               "\"detail\":\"web: 2 allocations failed: OOM killed <@U9>\"}"),
                     1);
    nm_buf_reset(&b);
    assert_int_equal(slack_req_message(&v, "C0DEPLOY", "1700000000.000100", &b), SLACK_PROTO_OK);
    o = check_message(&b);
    assert_string_equal(section_starting(o, "❌"),
                        "❌ *Failed*: unhealthy — web: 2 allocations failed: OOM killed &lt;@U9&gt;");
    assert_string_equal(at(o, "text"), "Deploy web v1.4.2 → staging (D-12): failed (unhealthy)");
    json_object_put(o);

    /* no approvals; rollback wording; succeeded; break-glass */
    slack_req_view r;
    slack_req_view_init(&r, 30);
    snprintf(r.kind, sizeof(r.kind), "rollback");
    snprintf(r.job, sizeof(r.job), "api");
    snprintf(r.env, sizeof(r.env), "production");
    snprintf(r.requester, sizeof(r.requester), "shell:alice");
    r.break_glass = true;
    snprintf(r.emergency, sizeof(r.emergency), "checkout is down <!here>");
    assert_int_equal(apply(&r, "{\"type\":\"request\",\"req\":30,\"state\":\"succeeded\",\"kind\":\"rollback\","
                               "\"job_version\":9}"),
                     1);
    nm_buf_reset(&b);
    assert_int_equal(slack_req_message(&r, "C0PROD", NULL, &b), SLACK_PROTO_OK);
    o = check_message(&b);
    assert_string_equal(at(o, "blocks.0.text.text"),
                        "*Rollback* `api` in *production* to the previous stable version · D-30\nRequested by "
                        "shell:alice");
    assert_string_equal(at(o, "blocks.1.text.text"), "🚨 *Break-glass*: checkout is down &lt;!here&gt;");
    assert_non_null(section_starting(o, "No approval needed"));
    assert_string_equal(section_starting(o, "✅"), "✅ *Succeeded*: `api` rolled back in *production* (job version 9)");
    assert_null(section_starting(o, "*Plan*"));
    json_object_put(o);

    /* promote wording */
    slack_req_view p;
    slack_req_view_init(&p, 31);
    snprintf(p.kind, sizeof(p.kind), "promote");
    snprintf(p.job, sizeof(p.job), "web");
    snprintf(p.version, sizeof(p.version), "v2");
    snprintf(p.from_env, sizeof(p.from_env), "staging");
    snprintf(p.env, sizeof(p.env), "production");
    nm_buf_reset(&b);
    assert_int_equal(slack_req_message(&p, "C0PROD", NULL, &b), SLACK_PROTO_OK);
    o = check_message(&b);
    assert_string_equal(at(o, "blocks.0.text.text"),
                        "*Promote* `web` *v2* *staging* → *production* · D-31\nRequested by someone");
    assert_non_null(section_starting(o, "📝 *Requested*"));
    json_object_put(o);

    /* refusals */
    nm_buf_reset(&b);
    assert_int_equal(slack_req_message(&p, "", NULL, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(slack_req_message(&p, NULL, NULL, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(b.len, 0);
    nm_buf_free(&b);
    nm_buf_init(&b, 100);
    assert_int_equal(slack_req_message(&p, "C0PROD", NULL, &b), SLACK_PROTO_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    nm_buf_free(&b);
}

/* Fills s (cap bytes) with a repeating pattern, NUL-terminated. */
static void fill(char *s, size_t cap, const char *pattern) {
    size_t pl = strlen(pattern), n = 0;
    while (n + pl < cap) {
        memcpy(s + n, pattern, pl);
        n += pl;
    }
    s[n] = '\0';
}

static void test_req_message_limits(void **state) {
    (void)state;
    /* Worst cases for each piece: JSON doubles quotes, backslashes and
     * newlines; escaping makes & five bytes; names at their maximum. */
    static const char *patterns[] = {"\"\\\n", "&", "<!channel>", "x", "\xF0\x9F\x9A\x80", "`"};
    for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
        slack_req_view v;
        slack_req_view_init(&v, 123456789);
        snprintf(v.kind, sizeof(v.kind), "promote");
        fill(v.job, sizeof(v.job), patterns[k]);
        fill(v.version, sizeof(v.version), patterns[k]);
        fill(v.env, sizeof(v.env), patterns[k]);
        fill(v.from_env, sizeof(v.from_env), patterns[k]);
        fill(v.requester, sizeof(v.requester), patterns[k]);
        fill(v.req_reason, sizeof(v.req_reason), patterns[k]);
        fill(v.emergency, sizeof(v.emergency), patterns[k]);
        v.break_glass = true;
        v.required = 20;
        v.given = 20;
        for (int i = 0; i < SLACK_VIEW_APPROVERS; i++) {
            char id[SLACK_VIEW_IDENTITY_LEN];
            fill(id, sizeof(id), patterns[k]);
            id[0] = (char)('a' + i);   /* distinct */
            slack_req_view_add_approver(&v, id);
        }
        snprintf(v.state, sizeof(v.state), "pending_approval");
        fill(v.plan, sizeof(v.plan), patterns[k]);
        fill(v.detail, sizeof(v.detail), patterns[k]);

        nm_buf b;
        nm_buf_init(&b, 0);
        assert_int_equal(slack_req_message(&v, "C0DEPLOY", "1700000000.000100", &b), SLACK_PROTO_OK);
        json_object *o = check_message(&b);
        const char *plan = section_starting(o, "*Plan*");
        assert_non_null(plan);
        assert_non_null(strstr(plan, "… truncated: `/nomatron audit D-123456789`"));
        assert_non_null(block_of_type(o, "actions"));
        json_object_put(o);

        /* and failed with the huge detail */
        snprintf(v.state, sizeof(v.state), "failed");
        snprintf(v.reason, sizeof(v.reason), "unhealthy");
        nm_buf_reset(&b);
        assert_int_equal(slack_req_message(&v, "C0DEPLOY", NULL, &b), SLACK_PROTO_OK);
        o = check_message(&b);
        assert_non_null(section_starting(o, "❌ *Failed*: unhealthy — "));
        json_object_put(o);
        nm_buf_free(&b);
    }
}

static void test_text_body(void **state) {
    (void)state;
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(slack_text_body("C1", NULL, NULL, "refused: staging is frozen until 18:00 [frozen]\n", false, &b),
                     SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"channel\":\"C1\",\"text\":\"refused: staging is frozen until 18:00 [frozen]\","
                                "\"link_names\":false,\"unfurl_links\":false,\"unfurl_media\":false}");

    nm_buf_reset(&b);
    assert_int_equal(slack_text_body("C1", "U0REQ", "1700000000.000100",
                                     "error: unknown job <!channel> [unknown_job]\nusage: deploy JOB VERSION to ENV\n",
                                     false, &b),
                     SLACK_PROTO_OK);
    json_object *o = reparse(b.data, b.len);
    assert_string_equal(at(o, "user"), "U0REQ");
    assert_string_equal(at(o, "thread_ts"), "1700000000.000100");
    assert_string_equal(at(o, "text"),
                        "error: unknown job &lt;!channel&gt; [unknown_job]\nusage: deploy JOB VERSION to ENV");
    assert_null(member(o, "unfurl_links"));
    json_object_put(o);

    /* preformatted: fenced, backticks cannot close the fence */
    nm_buf_reset(&b);
    assert_int_equal(slack_text_body("C1", NULL, NULL, "D-3  succeeded deploy web\n```x``` & y\n", true, &b),
                     SLACK_PROTO_OK);
    o = reparse(b.data, b.len);
    assert_string_equal(at(o, "text"), "```D-3  succeeded deploy web\n'''x''' &amp; y```");
    json_object_put(o);

    /* long: cut to 4000 with the marker, fences closed, and the body within 16 KiB */
    char *big = malloc(20001);
    assert_non_null(big);
    for (size_t i = 0; i < 20000; i++) big[i] = "ab\"\\\n&\xC3\xA9"[i % 8];
    big[20000] = '\0';
    for (int pre = 0; pre < 2; pre++) {
        nm_buf_reset(&b);
        assert_int_equal(slack_text_body("C1", NULL, NULL, big, pre, &b), SLACK_PROTO_OK);
        assert_true(b.len <= SLACK_BODY_MAX);
        o = reparse(b.data, b.len);
        const char *t = at(o, "text");
        assert_true(strlen(t) <= SLACK_TEXT_MAX);
        assert_true(strlen(t) >= SLACK_TEXT_MAX - 10);
        const char *marker = "\n… (truncated)";
        assert_string_equal(t + strlen(t) - strlen(marker), marker);
        if (pre) {
            assert_memory_equal(t, "```", 3);
            assert_memory_equal(t + strlen(t) - strlen(marker) - 3, "```", 3);
        }
        json_object_put(o);
    }
    free(big);

    /* exactly 4000 escaped bytes: no cut */
    char fit[4001];
    memset(fit, 'x', 4000);
    fit[4000] = '\0';
    nm_buf_reset(&b);
    assert_int_equal(slack_text_body("C1", NULL, NULL, fit, false, &b), SLACK_PROTO_OK);
    o = reparse(b.data, b.len);
    assert_string_equal(at(o, "text"), fit);
    json_object_put(o);

    /* empty and NULL text; refusals */
    nm_buf_reset(&b);
    assert_int_equal(slack_text_body("C1", NULL, NULL, NULL, false, &b), SLACK_PROTO_OK);
    assert_non_null(strstr(b.data, "\"text\":\"\""));
    nm_buf_reset(&b);
    assert_int_equal(slack_text_body("", NULL, NULL, "x", false, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(slack_text_body(NULL, NULL, NULL, "x", false, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(slack_text_body("C1", "", NULL, "x", false, &b), SLACK_PROTO_ERR_INVALID);
    assert_int_equal(b.len, 0);
    nm_buf_free(&b);
    nm_buf_init(&b, 20);
    assert_int_equal(slack_text_body("C1", NULL, NULL, "hello there", false, &b), SLACK_PROTO_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    nm_buf_free(&b);
}

/* The immediate answer that rides in a slash command's ack (A2.3, A3.3). */
static void test_answer_payload(void **state) {
    (void)state;
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(slack_answer_payload("you are slack:U0REQ\n", false, &b), SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"response_type\":\"ephemeral\",\"text\":\"you are slack:U0REQ\"}");

    /* Slack escaping, then JSON escaping; the same text a chat.postEphemeral body would carry. */
    const char *odd = "error: unknown job <!channel> \"q\" \\ & tab\there\nusage: deploy\n";
    nm_buf_reset(&b);
    assert_int_equal(slack_answer_payload(odd, false, &b), SLACK_PROTO_OK);
    json_object *o = reparse(b.data, b.len);
    assert_string_equal(at(o, "response_type"), "ephemeral");
    nm_buf body;
    nm_buf_init(&body, 0);
    assert_int_equal(slack_text_body("C1", "U1", NULL, odd, false, &body), SLACK_PROTO_OK);
    json_object *ob = reparse(body.data, body.len);
    assert_string_equal(at(o, "text"), at(ob, "text"));
    assert_non_null(strstr(at(o, "text"), "&lt;!channel&gt;"));
    json_object_put(ob);
    json_object_put(o);

    /* It is one JSON object that an ack can carry as it is. */
    nm_buf ack;
    nm_buf_init(&ack, 0);
    assert_int_equal(slack_ack_frame("E1", b.data, b.len, &ack), SLACK_PROTO_OK);
    o = reparse(ack.data, ack.len);
    assert_string_equal(at(o, "envelope_id"), "E1");
    assert_true(json_object_is_type(member(o, "payload"), json_type_object));
    json_object_put(o);
    nm_buf_reset(&ack);
    assert_int_equal(slack_ack_build("E1", b.data, &ack), SLACK_PROTO_OK);
    nm_buf_free(&ack);

    /* preformatted and long: fenced, cut with the marker, as slack_text_body */
    char *big = malloc(20001);
    assert_non_null(big);
    for (size_t i = 0; i < 20000; i++) big[i] = "ab\"\\\n&\xC3\xA9\x01"[i % 8];
    big[20000] = '\0';
    for (int pre = 0; pre < 2; pre++) {
        nm_buf_reset(&b);
        nm_buf_reset(&body);
        assert_int_equal(slack_answer_payload(big, pre, &b), SLACK_PROTO_OK);
        assert_int_equal(slack_text_body("C1", "U1", NULL, big, pre, &body), SLACK_PROTO_OK);
        o = reparse(b.data, b.len);
        ob = reparse(body.data, body.len);
        const char *t = at(o, "text");
        assert_true(strlen(t) <= SLACK_TEXT_MAX);
        assert_string_equal(t, at(ob, "text"));
        assert_non_null(strstr(t, "(truncated)"));
        json_object_put(o);
        json_object_put(ob);
    }
    free(big);
    nm_buf_free(&body);

    /* empty text; over the ceiling: an error and the buffer as it was */
    nm_buf_reset(&b);
    assert_int_equal(slack_answer_payload(NULL, false, &b), SLACK_PROTO_OK);
    assert_string_equal(b.data, "{\"response_type\":\"ephemeral\",\"text\":\"\"}");
    nm_buf_free(&b);
    nm_buf_init(&b, 40);
    assert_int_equal(nm_buf_appends(&b, "keep"), NM_BUF_OK);
    assert_int_equal(slack_answer_payload("hello there, a little too long", false, &b), SLACK_PROTO_ERR_TOO_LARGE);
    assert_string_equal(b.data, "keep");
    nm_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_hello),
        cmocka_unit_test(test_frame_disconnect),
        cmocka_unit_test(test_frame_slash),
        cmocka_unit_test(test_frame_slash_text_limit),
        cmocka_unit_test(test_frame_interactive),
        cmocka_unit_test(test_frame_events_and_retry),
        cmocka_unit_test(test_frame_errors),
        cmocka_unit_test(test_frame_bounds),
        cmocka_unit_test(test_ack_build),
        cmocka_unit_test(test_api_methods),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_error_hint),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_runs),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_progress_line),
        cmocka_unit_test(test_view_sequence),
        cmocka_unit_test(test_view_edges),
        cmocka_unit_test(test_req_message),
        cmocka_unit_test(test_req_message_limits),
        cmocka_unit_test(test_text_body),
        cmocka_unit_test(test_answer_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
