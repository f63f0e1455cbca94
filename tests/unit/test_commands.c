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

    /* promote parses, then says it is not available yet; the governance commands are. */
    assert_int_equal(parse("promote web from staging to production", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_PROMOTE);
    assert_string_equal(a.from_env, "staging");
    assert_string_equal(a.env, "production");
    assert_int_equal(parse("approve D-12", &a, &e), CMD_OK);
    assert_int_equal(a.id, 12);
    assert_int_equal(parse("reject 7 not   today", &a, &e), CMD_OK);
    assert_int_equal(a.id, 7);
    assert_string_equal(a.reason, "not today");
    assert_int_equal(parse("rollback web in staging to #7", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_ROLLBACK);
    assert_int_equal(a.job_version, 7);
    assert_int_equal(parse("rollback web in staging to v1", &a, &e), CMD_OK);
    assert_string_equal(a.version, "v1");
    assert_int_equal(a.job_version, -1);
    assert_int_equal(parse("rollback web in staging", &a, &e), CMD_OK);
    assert_string_equal(a.version, "");
    assert_int_equal(parse("canary promote web in production", &a, &e), CMD_OK);
    assert_string_equal(a.sub, "promote");
    assert_int_equal(parse("CANARY FAIL web in production", &a, &e), CMD_OK);
    assert_string_equal(a.sub, "fail");
    assert_int_equal(parse("pause web in staging", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_PAUSE);
    assert_int_equal(parse("resume web in staging", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_RESUME);
    assert_int_equal(parse("explain deploy web v2 to production --canary 1", &a, &e), CMD_OK);
    assert_int_equal(a.kind, CMD_EXPLAIN);
    assert_int_equal(a.explained, CMD_DEPLOY);
    assert_string_equal(a.version, "v2");
    assert_int_equal(a.canary, 1);
    assert_int_equal(parse("lock production release freeze", &a, &e), CMD_OK);
    assert_string_equal(a.reason, "release freeze");
    assert_int_equal(parse("history web --limit 5", &a, &e), CMD_OK);
    assert_int_equal(a.limit, 5);
    assert_int_equal(parse("audit 1700000000.123456", &a, &e), CMD_OK);
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

/* Valid arguments for every command, to build malformed variants from. */
static const struct {
    const char *name, *args;
    bool absorbs_rest;   /* one more word is still valid (a rest or optional slot) */
} samples[] = {
    {"deploy", "web v2 to staging", false},      {"promote", "web from staging to production", false},
    {"approve", "D-1", false},                   {"reject", "D-1", true},
    {"cancel", "12", false},                     {"rollback", "web in staging", false},
    {"canary", "promote web in staging", false}, {"pause", "web in staging", false},
    {"resume", "web in staging", false},         {"status", "web", false},
    {"history", "web", false},                   {"audit", "D-1", false},
    {"explain", "deploy web v2 to staging", false}, {"lock", "staging release day", true},
    {"unlock", "staging", false},                {"envs", "", false},
    {"jobs", "", false},                         {"whoami", "", false},
    {"help", "", true},                         {"dashboard", "", false},
    {"stats", "", true},
};

static void expect_error(const char *text, size_t len, enum cmd_err code, const char *usage) {
    cmd_action a;
    cmd_error e;
    enum cmd_err rc = cmd_parse(text, len, &a, &e);
    if (rc != code || e.usage != usage) {
        print_error("'%.80s': got %s '%s' usage '%s'\n      want %s usage '%s'\n", text, cmd_err_tag(rc), e.message,
                    e.usage ? e.usage : "(none)", cmd_err_tag(code), usage);
        fail();
    }
}

/* Every command, every generic kind of damage: the exact tag and usage. */
static void test_every_command_malformed(void **state) {
    (void)state;
    size_t count;
    const cmd_spec *t = cmd_table_get(&count);
    assert_int_equal(count, sizeof(samples) / sizeof(samples[0]));
    char text[CMD_MAX_TEXT + 64];
    for (size_t i = 0; i < count; i++) {
        const cmd_spec *spec = cmd_lookup(samples[i].name);
        assert_ptr_equal(spec, &t[i]);   /* the samples follow the table */
        const char *sep = *samples[i].args ? " " : "";
        enum cmd_err good = (spec->flags & CMD_F_NOT_AVAILABLE) ? CMD_ERR_NOT_AVAILABLE : CMD_OK;
        /* explain deploy ... reports errors in the words of the command it explains */
        const char *usage = strcmp(samples[i].name, "explain") == 0 ? cmd_lookup("deploy")->usage : spec->usage;

        /* the valid form, with and without the prefix, in any letter case */
        snprintf(text, sizeof(text), "/nomatron %s%s%s", samples[i].name, sep, samples[i].args);
        expect_error(text, strlen(text), good, good == CMD_OK ? NULL : spec->usage);
        /* an extra word */
        if (!samples[i].absorbs_rest) {
            snprintf(text, sizeof(text), "%s%s%s surplus", samples[i].name, sep, samples[i].args);
            expect_error(text, strlen(text), CMD_ERR_EXTRA_ARG, usage);
        }
        /* the last word missing */
        if (*samples[i].args) {
            snprintf(text, sizeof(text), "%s %s", samples[i].name, samples[i].args);
            char *last = strrchr(text, ' ');
            *last = '\0';
            bool optional_tail = strcmp(samples[i].name, "reject") == 0;
            cmd_action a;
            cmd_error e;
            enum cmd_err rc = cmd_parse(text, strlen(text), &a, &e);
            if (!optional_tail && !strchr(text, ' ')) assert_int_equal(rc, CMD_ERR_MISSING_ARG);
            if (rc != CMD_OK && rc != CMD_ERR_NOT_AVAILABLE) assert_ptr_equal(e.usage, usage);
            else assert_true(optional_tail || strcmp(samples[i].name, "lock") == 0);
        }
        /* an unknown flag */
        snprintf(text, sizeof(text), "%s%s%s --nope 1", samples[i].name, sep, samples[i].args);
        expect_error(text, strlen(text), CMD_ERR_BAD_FLAG, usage);
        /* damage the tokenizer catches: the general usage */
        snprintf(text, sizeof(text), "%s%s%s \"open", samples[i].name, sep, samples[i].args);
        expect_error(text, strlen(text), CMD_ERR_UNBALANCED_QUOTE, cmd_general_usage());
        snprintf(text, sizeof(text), "%s%s%s \xc3\x28", samples[i].name, sep, samples[i].args);
        expect_error(text, strlen(text), CMD_ERR_BAD_UTF8, cmd_general_usage());
        size_t n = (size_t)snprintf(text, sizeof(text), "%s%s%s x", samples[i].name, sep, samples[i].args);
        text[n - 2] = '\0';   /* a NUL byte inside the text */
        expect_error(text, n, CMD_ERR_BAD_UTF8, cmd_general_usage());
        n = (size_t)snprintf(text, sizeof(text), "%s ", samples[i].name);
        memset(text + n, 'a', CMD_MAX_TEXT + 1 - n);
        text[CMD_MAX_TEXT + 1] = '\0';
        expect_error(text, CMD_MAX_TEXT + 1, CMD_ERR_TOO_LONG, cmd_general_usage());
    }
}

/* Command-specific malformed variants. */
static void test_each_command_specific_errors(void **state) {
    (void)state;
    static const struct {
        const char *text;
        enum cmd_err code;
        const char *usage_of;
    } cases[] = {
        {"promote web staging to production", CMD_ERR_EXPECTED_WORD, "promote"},
        {"promote web from staging", CMD_ERR_MISSING_ARG, "promote"},
        {"promote web from staging production", CMD_ERR_EXPECTED_WORD, "promote"},
        {"promote w/b from staging to production", CMD_ERR_BAD_NAME, "promote"},
        {"promote web from staging to prod!", CMD_ERR_BAD_NAME, "promote"},
        {"promote web to production from staging", CMD_ERR_EXPECTED_WORD, "promote"},
        {"approve", CMD_ERR_MISSING_ARG, "approve"},
        {"approve D-x", CMD_ERR_BAD_ID, "approve"},
        {"approve D-0", CMD_ERR_BAD_ID, "approve"},
        {"approve 1 2", CMD_ERR_EXTRA_ARG, "approve"},
        {"approve 1;reboot", CMD_ERR_BAD_ID, "approve"},
        {"reject", CMD_ERR_MISSING_ARG, "reject"},
        {"reject web", CMD_ERR_BAD_ID, "reject"},
        {"cancel", CMD_ERR_MISSING_ARG, "cancel"},
        {"cancel D--1", CMD_ERR_BAD_ID, "cancel"},
        {"cancel $(id)", CMD_ERR_BAD_ID, "cancel"},
        {"rollback web staging", CMD_ERR_EXPECTED_WORD, "rollback"},
        {"rollback web in", CMD_ERR_MISSING_ARG, "rollback"},
        {"rollback web in staging to", CMD_ERR_MISSING_ARG, "rollback"},
        {"rollback web in staging to #-1", CMD_ERR_BAD_VERSION, "rollback"},
        {"rollback web in staging to #", CMD_ERR_BAD_VERSION, "rollback"},
        {"rollback web in staging to -v1", CMD_ERR_BAD_VERSION, "rollback"},
        {"rollback web in staging v1", CMD_ERR_EXTRA_ARG, "rollback"},
        {"canary web in staging", CMD_ERR_EXPECTED_WORD, "canary"},
        {"canary promote web", CMD_ERR_MISSING_ARG, "canary"},
        {"canary fail web on staging", CMD_ERR_EXPECTED_WORD, "canary"},
        {"pause web", CMD_ERR_MISSING_ARG, "pause"},
        {"pause web at staging", CMD_ERR_EXPECTED_WORD, "pause"},
        {"resume", CMD_ERR_MISSING_ARG, "resume"},
        {"resume web in stag`ing`", CMD_ERR_BAD_NAME, "resume"},
        {"status web|cat", CMD_ERR_BAD_NAME, "status"},
        {"status web in staging>/tmp/x", CMD_ERR_BAD_NAME, "status"},
        {"history", CMD_ERR_MISSING_ARG, "history"},
        {"history web --limit 0", CMD_ERR_BAD_FLAG, "history"},
        {"history web --limit", CMD_ERR_BAD_FLAG, "history"},
        {"history web --limit 1001", CMD_ERR_BAD_FLAG, "history"},
        {"history web --canary 1", CMD_ERR_BAD_FLAG, "history"},
        {"audit", CMD_ERR_MISSING_ARG, "audit"},
        {"audit a b", CMD_ERR_EXTRA_ARG, "audit"},
        {"explain", CMD_ERR_MISSING_ARG, "explain"},
        {"explain status web", CMD_ERR_EXPECTED_WORD, "explain"},
        {"explain deploy web", CMD_ERR_MISSING_ARG, "deploy"},
        {"explain promote web from staging", CMD_ERR_MISSING_ARG, "promote"},
        {"lock", CMD_ERR_MISSING_ARG, "lock"},
        {"lock staging", CMD_ERR_MISSING_ARG, "lock"},
        {"lock st*ging reason", CMD_ERR_BAD_NAME, "lock"},
        {"unlock", CMD_ERR_MISSING_ARG, "unlock"},
        {"unlock staging now", CMD_ERR_EXTRA_ARG, "unlock"},
        {"stats staging production", CMD_ERR_EXTRA_ARG, "stats"},
        {"stats --days x", CMD_ERR_BAD_FLAG, "stats"},
        {"stats --days=-3", CMD_ERR_BAD_FLAG, "stats"},
        {"help deploy more", CMD_ERR_EXTRA_ARG, "help"},
        {"deploy web v2 to staging --canary 101", CMD_ERR_BAD_FLAG, "deploy"},
        {"deploy web v2 to staging --canary=", CMD_ERR_BAD_FLAG, "deploy"},
        {"deploy web $(rm to staging", CMD_ERR_BAD_VERSION, "deploy"},
        {"deploy web v2;rm to staging", CMD_ERR_BAD_VERSION, "deploy"},
        {"deploy web v2 to staging&&reboot", CMD_ERR_BAD_NAME, "deploy"},
        {"deploy ../web v2 to staging", CMD_ERR_BAD_NAME, "deploy"},
        {"deploy web v2 to ''", CMD_ERR_BAD_NAME, "deploy"},
        {"deploy \"\" v2 to staging", CMD_ERR_BAD_NAME, "deploy"},
        {"v2 deploy web to staging", CMD_ERR_UNKNOWN_COMMAND, NULL},
        {"nomatron deploy web v2 to staging", CMD_ERR_UNKNOWN_COMMAND, NULL},
        {"/nomatron /nomatron deploy", CMD_ERR_UNKNOWN_COMMAND, NULL},
        {"--canary 1", CMD_ERR_UNKNOWN_COMMAND, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, strlen(cases[i].text), cases[i].code,
                     cases[i].usage_of ? cmd_lookup(cases[i].usage_of)->usage : cmd_general_usage());
}

/* Text that looks dangerous is data: stored verbatim, never interpreted. */
static void test_metacharacters_are_data(void **state) {
    (void)state;
    cmd_action a;
    cmd_error e;
    assert_int_equal(parse("lock staging `reboot`; rm -rf / $(id) <!channel>", &a, &e), CMD_OK);
    assert_string_equal(a.reason, "`reboot`; rm -rf / $(id) <!channel>");
    assert_int_equal(parse("deploy web v2 to staging --reason \"'; DROP TABLE requests; --\"", &a, &e), CMD_OK);
    assert_string_equal(a.reason, "'; DROP TABLE requests; --");
}

static void test_docs_in_sync(void **state) {
    (void)state;
    static char want[32768];
    size_t n = cmd_docs_markdown(want, sizeof(want));
    assert_true(n < sizeof(want));
    const char *src = getenv("NOMATRON_SOURCE_DIR");
    assert_non_null(src);
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/commands.md", src);
    const char *write = getenv("NOMATRON_WRITE_DOCS");
    if (write && strcmp(write, "1") == 0) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fwrite(want, 1, n, f);
        fclose(f);
    }
    static char have[32768];
    FILE *f = fopen(path, "r");
    if (!f) {
        print_error("%s is missing: run NOMATRON_WRITE_DOCS=1 build/bin/test_commands\n", path);
        fail();
    }
    size_t got = fread(have, 1, sizeof(have) - 1, f);
    fclose(f);
    have[got] = '\0';
    if (strcmp(have, want) != 0) {
        print_error("docs/commands.md drifted from the command table: run NOMATRON_WRITE_DOCS=1 build/bin/test_commands\n");
        fail();
    }
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
        cmocka_unit_test(test_every_command_malformed),
        cmocka_unit_test(test_each_command_specific_errors),
        cmocka_unit_test(test_metacharacters_are_data),
        cmocka_unit_test(test_docs_in_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
