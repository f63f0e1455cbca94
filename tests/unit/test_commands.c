/* commands/: tokenizer, grammar, checks against a config, help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmd.h"

static enum cmd_err tok(const char *s, cmd_tokens *t) {
    cmd_error e;
    return cmd_tokenize(s, strlen(s), t, &e);
}

static void test_tokenize_words_and_quotes(void **state) {
    (void)state;
    cmd_tokens t;
    assert_int_equal(tok("  deploy\tweb  v2 to staging ", &t), CMD_OK);
    assert_int_equal(t.argc, 5);
    assert_string_equal(t.argv[0], "deploy");
    assert_string_equal(t.argv[4], "staging");

    assert_int_equal(tok("--reason \"fix the \\\"login\\\" bug\" 'it''s' a\"b c\"d", &t), CMD_OK);
    assert_int_equal(t.argc, 4);
    assert_string_equal(t.argv[1], "fix the \"login\" bug");
    assert_true(t.quoted[1]);
    assert_false(t.quoted[0]);
    assert_string_equal(t.argv[2], "its");
    assert_string_equal(t.argv[3], "ab cd");

    /* Typographic quotes from chat clients pair up like straight ones. */
    assert_int_equal(tok("--reason \xe2\x80\x9chello world\xe2\x80\x9d \xe2\x80\x98x y\xe2\x80\x99", &t), CMD_OK);
    assert_int_equal(t.argc, 3);
    assert_string_equal(t.argv[1], "hello world");
    assert_string_equal(t.argv[2], "x y");

    assert_int_equal(tok("\"\"", &t), CMD_OK);   /* an empty quoted word is a word */
    assert_int_equal(t.argc, 1);
    assert_string_equal(t.argv[0], "");
    assert_int_equal(tok("   ", &t), CMD_OK);
    assert_int_equal(t.argc, 0);
    assert_int_equal(tok("status web\r\n", &t), CMD_OK);   /* pasted line ending */
    assert_int_equal(t.argc, 2);
}

static void test_tokenize_refusals(void **state) {
    (void)state;
    cmd_tokens t;
    cmd_error e;
    assert_int_equal(tok("deploy \"web", &t), CMD_ERR_UNBALANCED_QUOTE);
    assert_int_equal(tok("deploy 'web", &t), CMD_ERR_UNBALANCED_QUOTE);
    assert_int_equal(tok("deploy \"web\\\"", &t), CMD_ERR_UNBALANCED_QUOTE);
    assert_int_equal(tok("deploy \xff\xfe", &t), CMD_ERR_BAD_UTF8);
    assert_int_equal(tok("deploy \xc0\xaf", &t), CMD_ERR_BAD_UTF8);          /* overlong '/' */
    assert_int_equal(tok("deploy \xed\xa0\x80", &t), CMD_ERR_BAD_UTF8);      /* surrogate */
    assert_int_equal(tok("deploy \xf4\x90\x80\x80", &t), CMD_ERR_BAD_UTF8);  /* > U+10FFFF */
    assert_int_equal(tok("deploy \xe2\x82", &t), CMD_ERR_BAD_UTF8);          /* truncated */
    assert_int_equal(tok("deploy \x1b[31m", &t), CMD_ERR_BAD_UTF8);          /* terminal escape */
    assert_int_equal(tok("a\nb", &t), CMD_ERR_BAD_UTF8);
    assert_int_equal(cmd_tokenize("a\0b", 3, &t, &e), CMD_ERR_BAD_UTF8);
    assert_int_equal(tok("deploy caf\xc3\xa9 \xf0\x9f\x9a\x80", &t), CMD_OK);  /* é and 🚀 are fine */

    char *big = malloc(CMD_MAX_TEXT + 2);
    memset(big, 'a', CMD_MAX_TEXT + 1);
    big[CMD_MAX_TEXT + 1] = '\0';
    assert_int_equal(cmd_tokenize(big, CMD_MAX_TEXT + 1, &t, &e), CMD_ERR_TOO_LONG);
    assert_int_equal(cmd_tokenize(big, CMD_MAX_TEXT, &t, &e), CMD_OK);
    assert_int_equal(t.argc, 1);
    assert_int_equal(strlen(t.argv[0]), CMD_MAX_TEXT);
    /* The worst case for storage: every byte its own word would exceed the word limit first. */
    for (size_t i = 0; i < CMD_MAX_TEXT; i++) big[i] = (i % 2) ? ' ' : 'x';
    assert_int_equal(cmd_tokenize(big, CMD_MAX_TEXT, &t, &e), CMD_ERR_TOO_MANY_ARGS);
    assert_int_equal(cmd_tokenize(big, CMD_MAX_ARGS * 2, &t, &e), CMD_OK);
    assert_int_equal(t.argc, CMD_MAX_ARGS);
    free(big);
}

static enum cmd_err parse(const char *s, cmd_action *a, cmd_error *e) { return cmd_parse(s, strlen(s), a, e); }

static void test_parse_deploy(void **state) {
    (void)state;
    cmd_action a;
    cmd_error e;
    assert_int_equal(parse("/nomatron deploy web v1.4.2 to staging", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_DEPLOY);
    assert_string_equal(a.job, "web");
    assert_string_equal(a.version, "v1.4.2");
    assert_string_equal(a.env, "staging");
    assert_int_equal(a.canary, -1);
    assert_string_equal(a.reason, "");

    assert_int_equal(parse("DEPLOY web 2024_01.rc-1 TO production --canary 2 --reason \"hotfix: login\" "
                           "--emergency='site down'", &a, &e), CMD_OK);
    assert_int_equal(a.canary, 2);
    assert_string_equal(a.version, "2024_01.rc-1");
    assert_string_equal(a.reason, "hotfix: login");
    assert_string_equal(a.emergency, "site down");
    /* Flags may come first. */
    assert_int_equal(parse("@nomatron deploy --canary=1 web v2 to staging", &a, &e), CMD_OK);
    assert_int_equal(a.canary, 1);
    assert_string_equal(a.env, "staging");
}

static void test_parse_other_commands(void **state) {
    (void)state;
    cmd_action a;
    cmd_error e;
    assert_int_equal(parse("status web", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_STATUS);
    assert_string_equal(a.env, "");
    assert_int_equal(parse("status web in production", &a, &e), CMD_OK);
    assert_string_equal(a.env, "production");
    assert_int_equal(parse("help", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_HELP);
    assert_string_equal(a.topic, "");
    assert_int_equal(parse("help deploy", &a, &e), CMD_OK);
    assert_string_equal(a.topic, "deploy");

    /* Commands of the contract issue parse, then say they are not available yet. */
    assert_int_equal(parse("promote web from staging to production", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_int_equal(a.kind, CMD_PROMOTE);
    assert_string_equal(a.from_env, "staging");
    assert_string_equal(a.env, "production");
    assert_int_equal(parse("approve D-12", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_int_equal(a.id, 12);
    assert_int_equal(parse("reject 7 not   today", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_int_equal(a.id, 7);
    assert_string_equal(a.reason, "not today");
    assert_int_equal(parse("rollback web in staging to #7", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_int_equal(a.job_version, 7);
    assert_int_equal(parse("rollback web in staging to v1", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_string_equal(a.version, "v1");
    assert_int_equal(parse("canary promote web in production", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_string_equal(a.sub, "promote");
    assert_int_equal(parse("explain deploy web v2 to production --canary 1", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_int_equal(a.kind, CMD_EXPLAIN);
    assert_int_equal(a.explained, CMD_DEPLOY);
    assert_string_equal(a.version, "v2");
    assert_int_equal(a.canary, 1);
    assert_int_equal(parse("lock production release freeze", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_string_equal(a.reason, "release freeze");
    assert_int_equal(parse("history web --limit 5", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_int_equal(a.limit, 5);
    assert_int_equal(parse("audit 1700000000.123456", &a, &e), CMD_ERR_NOT_AVAILABLE);
    assert_string_equal(a.ref, "1700000000.123456");
}

/* Every malformed variant names what was wrong, with the command's usage. */
static void test_parse_errors(void **state) {
    (void)state;
    static const struct {
        const char *text;
        enum cmd_err code;
        const char *usage_of;   /* command whose usage is shown; NULL = general */
        const char *says;       /* substring of the message */
    } cases[] = {
        {"", CMD_ERR_EMPTY, NULL, "empty"},
        {"/nomatron", CMD_ERR_EMPTY, NULL, "empty"},
        {"frobnicate", CMD_ERR_UNKNOWN_COMMAND, NULL, "'frobnicate'"},
        {"deploy", CMD_ERR_MISSING_ARG, "deploy", "missing JOB"},
        {"deploy web", CMD_ERR_MISSING_ARG, "deploy", "missing VERSION"},
        {"deploy web v2", CMD_ERR_MISSING_ARG, "deploy", "missing the word 'to'"},
        {"deploy web v2 to", CMD_ERR_MISSING_ARG, "deploy", "missing ENV"},
        {"deploy web v2 staging", CMD_ERR_EXPECTED_WORD, "deploy", "expected 'to' where 'staging' is"},
        {"deploy web to staging v2", CMD_ERR_EXPECTED_WORD, "deploy", "expected 'to'"},
        {"deploy web v2 to staging now", CMD_ERR_EXTRA_ARG, "deploy", "unexpected 'now'"},
        {"deploy web -bad to staging", CMD_ERR_BAD_VERSION, "deploy", "'-bad'"},
        {"deploy web .v2 to staging", CMD_ERR_BAD_VERSION, "deploy", "not a valid version"},
        {"deploy web v2:latest to staging", CMD_ERR_BAD_VERSION, "deploy", "not a valid version"},
        {"deploy we/b v2 to staging", CMD_ERR_BAD_NAME, "deploy", "job name"},
        {"deploy web v2 to stag$ing", CMD_ERR_BAD_NAME, "deploy", "environment name"},
        {"deploy web v2 to staging --canary", CMD_ERR_BAD_FLAG, "deploy", "needs a value"},
        {"deploy web v2 to staging --canary x", CMD_ERR_BAD_FLAG, "deploy", "whole number"},
        {"deploy web v2 to staging --canary -1", CMD_ERR_BAD_FLAG, "deploy", "whole number"},
        {"deploy web v2 to staging --force", CMD_ERR_BAD_FLAG, "deploy", "no flag --force"},
        {"deploy web v2 to staging --reason \"\"", CMD_ERR_BAD_FLAG, "deploy", "needs a text"},
        {"deploy web v2 to staging \"unterminated", CMD_ERR_UNBALANCED_QUOTE, NULL, "quote"},
        {"status", CMD_ERR_MISSING_ARG, "status", "missing JOB"},
        {"status web in", CMD_ERR_MISSING_ARG, "status", "missing ENV"},
        {"status web staging", CMD_ERR_EXTRA_ARG, "status", "unexpected 'staging'"},
        {"status web --limit 3", CMD_ERR_BAD_FLAG, "status", "no flag"},
        {"approve X-1", CMD_ERR_BAD_ID, "approve", "not a request ID"},
        {"approve D-", CMD_ERR_BAD_ID, "approve", "not a request ID"},
        {"approve 0", CMD_ERR_BAD_ID, "approve", "not a request ID"},
        {"approve 99999999999999999999", CMD_ERR_BAD_ID, "approve", "not a request ID"},
        {"rollback web in staging to #x", CMD_ERR_BAD_VERSION, "rollback", "job version"},
        {"canary explode web in staging", CMD_ERR_EXPECTED_WORD, "canary", "expected 'promote|fail'"},
        {"lock production", CMD_ERR_MISSING_ARG, "lock", "missing REASON"},
        {"help deploy extra", CMD_ERR_EXTRA_ARG, "help", "unexpected"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cmd_action a;
        cmd_error e;
        enum cmd_err rc = parse(cases[i].text, &a, &e);
        if (rc != cases[i].code || !strstr(e.message, cases[i].says)) {
            print_error("case '%s': got %s '%s'\n", cases[i].text, cmd_err_tag(rc), e.message);
            fail();
        }
        const char *want = cases[i].usage_of ? cmd_lookup(cases[i].usage_of)->usage : cmd_general_usage();
        assert_ptr_equal(e.usage, want);
        assert_true(strlen(e.message) < sizeof(e.message));
    }
}

static void test_error_echo_is_bounded(void **state) {
    (void)state;
    char text[600] = "deploy web ";
    memset(text + strlen(text), 'x', 300);
    strcat(text, "! to staging");
    cmd_action a;
    cmd_error e;
    assert_int_equal(parse(text, &a, &e), CMD_ERR_BAD_VERSION);
    assert_non_null(strstr(e.message, "..."));
    assert_true(strlen(e.message) < 200);
}

static void test_parse_id(void **state) {
    (void)state;
    assert_int_equal(cmd_parse_id("D-12"), 12);
    assert_int_equal(cmd_parse_id("d-3"), 3);
    assert_int_equal(cmd_parse_id("42"), 42);
    assert_int_equal(cmd_parse_id("D-"), -1);
    assert_int_equal(cmd_parse_id("D-1x"), -1);
    assert_int_equal(cmd_parse_id("-1"), -1);
    assert_int_equal(cmd_parse_id(""), -1);
}

static config *test_config(void) {
    static const char yaml[] = "redis: redis://127.0.0.1:6379/0\n"
                               "postgres: dbname=x\n"
                               "environments:\n"
                               "  staging: {nomad: {address: http://127.0.0.1:4646}}\n"
                               "  production: {nomad: {address: http://127.0.0.1:4646}}\n"
                               "jobs:\n"
                               "  web: {tasks: [web], image: registry.example.com/web}\n";
    config *cfg;
    char err[256];
    assert_int_equal(config_parse(yaml, sizeof(yaml) - 1, "t.yaml", &config_resolver_system, &cfg, err, sizeof(err)),
                     CONFIG_OK);
    return cfg;
}

static void test_check(void **state) {
    (void)state;
    config *cfg = test_config();
    cmd_action a;
    cmd_error e;
    assert_int_equal(parse("deploy web v2 to staging", &a, &e), CMD_OK);
    assert_int_equal(cmd_check(&a, cfg, &e), CMD_OK);
    assert_int_equal(parse("deploy web v2 to nowhere", &a, &e), CMD_OK);
    assert_int_equal(cmd_check(&a, cfg, &e), CMD_ERR_UNKNOWN_ENV);
    assert_string_equal(e.message, "unknown environment 'nowhere' (known: staging, production)");
    assert_ptr_equal(e.usage, cmd_lookup("deploy")->usage);
    assert_int_equal(parse("deploy api v2 to staging", &a, &e), CMD_OK);
    assert_int_equal(cmd_check(&a, cfg, &e), CMD_ERR_UNKNOWN_JOB);
    assert_string_equal(e.message, "unknown job 'api' (known: web)");
    assert_int_equal(parse("status web", &a, &e), CMD_OK);
    assert_int_equal(cmd_check(&a, cfg, &e), CMD_OK);
    assert_int_equal(parse("help", &a, &e), CMD_OK);
    assert_int_equal(cmd_check(&a, cfg, &e), CMD_OK);
    config_free(cfg);
}

static void test_help(void **state) {
    (void)state;
    char out[8192];
    size_t n = cmd_help_text(NULL, out, sizeof(out));
    assert_int_equal(n, strlen(out));
    size_t count;
    const cmd_spec *t = cmd_table_get(&count);
    assert_int_equal(count, 21);
    for (size_t i = 0; i < count; i++) assert_non_null(strstr(out, t[i].usage));
    cmd_help_text("deploy", out, sizeof(out));
    assert_non_null(strstr(out, "usage: /nomatron deploy JOB VERSION to ENV"));
    cmd_help_text("nope", out, sizeof(out));
    assert_non_null(strstr(out, "unknown command 'nope'"));
    /* A short buffer is still terminated and the needed length is reported. */
    char small[16];
    assert_true(cmd_help_text(NULL, small, sizeof(small)) > sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_words_and_quotes),
        cmocka_unit_test(test_tokenize_refusals),
        cmocka_unit_test(test_parse_deploy),
        cmocka_unit_test(test_parse_other_commands),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_error_echo_is_bounded),
        cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
