/* common/: the logfmt line and its value quoting, the bounded buffer, the JSON scanner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <regex.h>
#include <stdio.h>
#include <time.h>

#include "buf.h"
#include "json_scan.h"
#include "log.h"

static void test_log_value_quoting(void **state) {
    (void)state;
    char out[64];
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"web", "web"},
        {"D-12", "D-12"},
        {"", "\"\""},
        {"two words", "\"two words\""},
        {"a=b", "\"a=b\""},
        {"say \"hi\"", "\"say \\\"hi\\\"\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"line\nbreak", "\"line\\nbreak\""},
        {"bell\x07", "\"bell\\x07\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nm_log_format_value(out, sizeof(out), cases[i].in);
        assert_string_equal(out, cases[i].want);
    }
    /* Truncates within the buffer and stays terminated. */
    size_t n = nm_log_format_value(out, 5, "abcdefgh");
    assert_int_equal(n, 4);
    assert_string_equal(out, "abcd");
}

/* A whole line: time to the millisecond, level, message, the pairs given
 * (a NULL value drops its pair), quoted where needed, one line each. */
static void test_log_line(void **state) {
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    nm_log_set_stream(fp);
    time_t before = time(NULL);
    nm_log_write(NM_LOG_WARN, "slack: command", "actor", "slack:U1", "skipped", NULL, "name", "Ada L", NULL);
    nm_log_write(NM_LOG_ERROR, "second line", NULL);
    time_t after = time(NULL);
    nm_log_set_stream(NULL);
    rewind(fp);
    char line[2][256];
    for (int i = 0; i < 2; i++) assert_non_null(fgets(line[i], sizeof(line[i]), fp));
    assert_null(fgets(line[0] + 200, 56, fp));   /* nothing more */
    fclose(fp);

    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "level=warn msg=\"slack: command\" actor=slack:U1 name=\"Ada L\"\n$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, line[0], 0, NULL, 0), 0);
    regfree(&re);
    assert_non_null(strstr(line[1], "Z level=error msg=\"second line\"\n"));

    /* The seconds are the wall clock's, in UTC. */
    struct tm tm = {0};
    assert_int_equal(sscanf(line[0], "ts=%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    assert_true(t >= before && t <= after);
}

static void test_log_level_parse(void **state) {
    (void)state;
    assert_int_equal(nm_log_level_parse("debug"), NM_LOG_DEBUG);
    assert_int_equal(nm_log_level_parse("error"), NM_LOG_ERROR);
    assert_int_equal(nm_log_level_parse("loud"), -1);
}

static void test_buf_ceiling(void **state) {
    (void)state;
    nm_buf b;
    nm_buf_init(&b, 8);
    assert_int_equal(nm_buf_appends(&b, "12345678"), NM_BUF_OK);
    assert_int_equal(b.len, 8);
    assert_int_equal(nm_buf_append(&b, "9", 1), NM_BUF_TOO_LARGE);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    nm_buf_reset(&b);
    assert_int_equal(nm_buf_printf(&b, "%d-%s", 42, "x"), NM_BUF_OK);
    assert_string_equal(b.data, "42-x");
    assert_int_equal(nm_buf_printf(&b, "%s", "too long now"), NM_BUF_TOO_LARGE);
    char *s = nm_buf_steal(&b);
    assert_string_equal(s, "42-x");
    assert_null(b.data);
    free(s);
    /* SIZE_MAX-sized appends must not wrap around the ceiling check. */
    nm_buf_init(&b, 16);
    assert_int_equal(nm_buf_append(&b, "", SIZE_MAX), NM_BUF_TOO_LARGE);
    nm_buf_free(&b);
}

static void test_buf_json_str(void **state) {
    (void)state;
    nm_buf b;
    nm_buf_init(&b, 64);
    static const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f\x7f/\xc3\xa9";
    assert_int_equal(nm_buf_append_json_str(&b, in, sizeof(in) - 1), NM_BUF_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\xc3\xa9\"");
    /* A NUL inside the span is a control byte like any other. */
    nm_buf_reset(&b);
    assert_int_equal(nm_buf_append_json_str(&b, "x\0y", 3), NM_BUF_OK);
    assert_string_equal(b.data, "\"x\\u0000y\"");
    nm_buf_reset(&b);
    assert_int_equal(nm_buf_append_json_str(&b, NULL, 0), NM_BUF_OK);
    assert_string_equal(b.data, "\"\"");
    /* Over the ceiling: an error, and the buffer as it was. */
    nm_buf_reset(&b);
    assert_int_equal(nm_buf_appends(&b, "{\"k\":"), NM_BUF_OK);
    char big[80];
    memset(big, '\n', sizeof(big));
    assert_int_equal(nm_buf_append_json_str(&b, big, 30), NM_BUF_TOO_LARGE);   /* 5 + 2 + 60 escaped > 64 */
    assert_string_equal(b.data, "{\"k\":");
    assert_int_equal(b.len, 5);
    assert_int_equal(nm_buf_append_json_str(&b, big, 10), NM_BUF_OK);
    assert_int_equal(b.len, 5 + 2 + 20);
    nm_buf_free(&b);
}

/* Reads the one string that is all of json; returns its full length (-1: error). */
static long scan_str(const char *json, char *dst, size_t cap, bool *nul) {
    json_scan s;
    size_t len = 0;
    json_scan_init(&s, json, strlen(json), JSON_SCAN_MAX_DEPTH);
    if (json_scan_string(&s, dst, cap, &len, nul) < 0 || json_scan_finish(&s) < 0) return -1;
    return (long)len;
}

/* Skips the one value that is all of json (len bytes); 0 or -1. */
static int scan_skip_n(const char *json, size_t len, int depth) {
    json_scan s;
    json_scan_init(&s, json, len, depth);
    if (json_scan_skip(&s) < 0) return -1;
    return json_scan_finish(&s);
}

static int scan_skip(const char *json) {
    return scan_skip_n(json, strlen(json), JSON_SCAN_MAX_DEPTH);
}

static void test_json_scan_escapes(void **state) {
    (void)state;
    char b[64];
    bool nul = true;
    assert_int_equal(scan_str("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", b, sizeof(b), &nul), 12);
    assert_string_equal(b, "a\"b\\c/d\b\f\n\r\t");
    assert_false(nul);
    assert_int_equal(scan_str("\"\\u0041\\u00e9\\u20AC\"", b, sizeof(b), NULL), 1 + 2 + 3);
    assert_string_equal(b, "A\xc3\xa9\xe2\x82\xac");
    /* \u0000 is a NUL byte, reported */
    assert_int_equal(scan_str("\"x\\u0000y\"", b, sizeof(b), &nul), 3);
    assert_true(nul);
    assert_memory_equal(b, "x\0y", 4);
    /* raw UTF-8 passes through; malformed UTF-8 does not */
    assert_int_equal(scan_str("\"\xc3\xa9\xf0\x9f\x98\x80\"", b, sizeof(b), NULL), 6);
    assert_int_equal(scan_str("\"\xc0\x80\"", b, sizeof(b), NULL), -1);          /* overlong */
    assert_int_equal(scan_str("\"\xed\xa0\x80\"", b, sizeof(b), NULL), -1);      /* encoded surrogate */
    assert_int_equal(scan_str("\"\xf4\x90\x80\x80\"", b, sizeof(b), NULL), -1);  /* above U+10FFFF */
    assert_int_equal(scan_str("\"\xc3\"", b, sizeof(b), NULL), -1);              /* cut sequence */
    assert_int_equal(scan_str("\"\xff\"", b, sizeof(b), NULL), -1);
    /* bad escapes, raw control bytes, unterminated */
    assert_int_equal(scan_str("\"\\a\"", b, sizeof(b), NULL), -1);
    assert_int_equal(scan_str("\"\\u12\"", b, sizeof(b), NULL), -1);
    assert_int_equal(scan_str("\"\\u12G4\"", b, sizeof(b), NULL), -1);
    assert_int_equal(scan_str("\"a\tb\"", b, sizeof(b), NULL), -1);
    assert_int_equal(scan_str("\"abc", b, sizeof(b), NULL), -1);
    assert_int_equal(scan_str("\"abc\\", b, sizeof(b), NULL), -1);
    assert_int_equal(scan_str("'abc'", b, sizeof(b), NULL), -1);
}

static void test_json_scan_surrogates(void **state) {
    (void)state;
    char b[64];
    assert_int_equal(scan_str("\"\\ud83d\\ude00\"", b, sizeof(b), NULL), 4);   /* U+1F600 */
    assert_string_equal(b, "\xf0\x9f\x98\x80");
    assert_int_equal(scan_str("\"\\uDBFF\\uDFFF\"", b, sizeof(b), NULL), 4);   /* U+10FFFF */
    assert_string_equal(b, "\xf4\x8f\xbf\xbf");
    /* a pair whose code point ends in D800-DFFF is a pair all the same (json-c 0.16 writes U+FFFD) */
    assert_int_equal(scan_str("\"\\ud837\\ude00\"", b, sizeof(b), NULL), 4);   /* U+1DE00 */
    assert_string_equal(b, "\xf0\x9d\xb8\x80");
    /* lone surrogates become U+FFFD, as json-c does; what follows is read on its own */
    assert_int_equal(scan_str("\"\\ud800x\"", b, sizeof(b), NULL), 4);
    assert_string_equal(b, "\xef\xbf\xbdx");
    assert_int_equal(scan_str("\"\\udc00\"", b, sizeof(b), NULL), 3);
    assert_string_equal(b, "\xef\xbf\xbd");
    assert_int_equal(scan_str("\"\\ud800\\ud800\\udc00\"", b, sizeof(b), NULL), 7);
    assert_string_equal(b, "\xef\xbf\xbd\xf0\x90\x80\x80");
    assert_int_equal(scan_str("\"\\ud800\\n\"", b, sizeof(b), NULL), 4);
    assert_string_equal(b, "\xef\xbf\xbd\n");
    assert_int_equal(scan_str("\"\\ud800\\u00e9\"", b, sizeof(b), NULL), 5);
    assert_string_equal(b, "\xef\xbf\xbd\xc3\xa9");
    assert_int_equal(scan_str("\"\\ud800\\uZZZZ\"", b, sizeof(b), NULL), -1);
}

static void test_json_scan_bounds(void **state) {
    (void)state;
    char b[8];
    memset(b, 'Z', sizeof(b));
    /* too long: the full length is told, the buffer holds cap - 1 bytes and a NUL */
    assert_int_equal(scan_str("\"0123456789\"", b, 5, NULL), 10);
    assert_string_equal(b, "0123");
    assert_int_equal(b[5], 'Z');                  /* nothing past cap */
    assert_int_equal(scan_str("\"\\u20ac\\u20ac\\u20ac\"", b, 5, NULL), 9);
    assert_memory_equal(b, "\xe2\x82\xac\xe2\0", 5);
    assert_int_equal(scan_str("\"0123456\"", b, sizeof(b), NULL), 7);   /* exactly fits */
    assert_string_equal(b, "0123456");
    assert_int_equal(scan_str("\"\"", b, sizeof(b), NULL), 0);
    assert_string_equal(b, "");
    assert_int_equal(scan_str("\"abc\"", NULL, 0, NULL), 3);          /* validate only */
    /* only len bytes are read */
    json_scan s;
    json_scan_init(&s, "\"abc\"XYZ", 5, 8);
    assert_int_equal(json_scan_string(&s, b, sizeof(b), NULL, NULL), 0);
    assert_int_equal(json_scan_finish(&s), 0);
    json_scan_init(&s, "\"abc\"", 4, 8);
    assert_int_equal(json_scan_string(&s, b, sizeof(b), NULL, NULL), -1);
    assert_string_equal(s.err_what, "unterminated string");
    assert_int_equal(s.err_at, 4);
    /* a long key is cut like a string, its length told */
    json_scan_init(&s, "{\"a_rather_long_key\":1}", 23, 8);
    size_t klen = 0;
    assert_int_equal(json_scan_enter(&s), 0);
    assert_int_equal(json_scan_next_key(&s, b, sizeof(b), &klen), 1);
    assert_int_equal(klen, 17);
    assert_string_equal(b, "a_rathe");
}

static int64_t scan_num(const char *json, bool *integer) {
    json_scan s;
    int64_t v = 12345;
    json_scan_init(&s, json, strlen(json), 8);
    if (json_scan_number(&s, &v, integer) < 0 || json_scan_finish(&s) < 0) return -77;
    return v;
}

static void test_json_scan_numbers(void **state) {
    (void)state;
    bool in = false;
    assert_int_equal(scan_num("0", &in), 0);
    assert_true(in);
    assert_int_equal(scan_num("-0", &in), 0);
    assert_int_equal(scan_num("2147483648", &in), 2147483648LL);
    assert_int_equal(scan_num("-42", &in), -42);
    assert_true(scan_num("9223372036854775807", &in) == INT64_MAX);
    assert_true(scan_num("9223372036854775808", &in) == INT64_MAX);            /* saturates */
    assert_true(scan_num("123456789012345678901234567890", &in) == INT64_MAX);
    assert_true(in);
    assert_true(scan_num("-9223372036854775808", &in) == INT64_MIN);
    assert_true(scan_num("-9223372036854775809", &in) == INT64_MIN);
    assert_int_equal(scan_num("1.5", &in), 0);
    assert_false(in);
    assert_int_equal(scan_num("1e5", &in), 0);
    assert_false(in);
    assert_int_equal(scan_num("-0.0E-07", &in), 0);
    assert_false(in);
    assert_int_equal(scan_num("1E+400", &in), 0);
    /* not RFC 8259 numbers */
    static const char *const bad[] = {"01", "-01", "00", "1.", ".5", "-.5", "-", "+1", "1e", "1e+", "1.e5",
                                      "0x10", "NaN", "Infinity", "-Infinity", "1..2", "--1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (scan_num(bad[i], &in) != -77) fail_msg("%s was taken as a number", bad[i]);
}

static void test_json_scan_skip(void **state) {
    (void)state;
    assert_int_equal(scan_skip("{\"a\":[1,2.5,\"x\",true,false,null,{},[],{\"b\":{\"c\":[]}}]}"), 0);
    assert_int_equal(scan_skip(" \t\r\n[ 1 , [ ] ] \n"), 0);
    assert_int_equal(scan_skip("\"s\""), 0);
    assert_int_equal(scan_skip("-1.5e3"), 0);
    static const char *const bad[] = {
        "", " ", "{", "[", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[,1]", "{,}", "[1 2]", "{\"a\" 1}",
        "{a:1}", "{'a':1}", "[tru]", "[nul]", "[True]", "[1]]", "{}}", "[1]x", "{}{}", "[\"a\"\"b\"]", "[1,,2]",
        "\f[]", "[]\v", "/* c */[]", "[NaN]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (scan_skip(bad[i]) == 0) fail_msg("%s was taken as JSON", bad[i]);
    /* a NUL byte is a stray byte, outside strings and in */
    assert_int_equal(scan_skip_n("[1]\0", 4, 8), -1);
    assert_int_equal(scan_skip_n("[\"a\0\"]", 6, 8), -1);
    /* skip stops after its value: the cursor is on what follows */
    json_scan s;
    json_scan_init(&s, "{\"a\":{\"x\":[1,{}]},\"b\":2}", 24, 8);
    char k[8];
    assert_int_equal(json_scan_enter(&s), 0);
    assert_int_equal(json_scan_next_key(&s, k, sizeof(k), NULL), 1);
    assert_string_equal(k, "a");
    assert_int_equal(json_scan_skip(&s), 0);
    assert_int_equal(json_scan_next_key(&s, k, sizeof(k), NULL), 1);
    assert_string_equal(k, "b");
    assert_int_equal(json_scan_peek(&s), JSON_SCAN_NUMBER);
    int64_t v = 0;
    assert_int_equal(json_scan_number(&s, &v, NULL), 0);
    assert_int_equal(v, 2);
    assert_int_equal(json_scan_next_key(&s, k, sizeof(k), NULL), 0);
    assert_int_equal(json_scan_finish(&s), 0);
    /* keys are unescaped */
    json_scan_init(&s, "{\"\\u0074ype\":[]}", 16, 8);
    assert_int_equal(json_scan_enter(&s), 0);
    assert_int_equal(json_scan_next_key(&s, k, sizeof(k), NULL), 1);
    assert_string_equal(k, "type");
    assert_int_equal(json_scan_enter(&s), 0);
    assert_int_equal(json_scan_next_item(&s), 0);
    assert_int_equal(json_scan_next_key(&s, k, sizeof(k), NULL), 0);
    /* errors are sticky */
    json_scan_init(&s, "[x]", 3, 8);
    assert_int_equal(json_scan_enter(&s), 0);
    assert_int_equal(json_scan_next_item(&s), 1);
    assert_int_equal(json_scan_skip(&s), -1);
    assert_int_equal(s.err_at, 1);
    assert_int_equal(json_scan_next_item(&s), -1);
    assert_int_equal(json_scan_peek(&s), JSON_SCAN_NONE);
}

static void test_json_scan_depth(void **state) {
    (void)state;
    char doc[2 * 70 + 1];
    for (int depth = 1; depth <= 70; depth++) {
        memset(doc, '[', (size_t)depth);
        memset(doc + depth, ']', (size_t)depth);
        int want = depth <= JSON_SCAN_MAX_DEPTH ? 0 : -1;
        if (scan_skip_n(doc, 2 * (size_t)depth, JSON_SCAN_MAX_DEPTH) != want) fail_msg("depth %d", depth);
    }
    /* a scalar is a level too (json-c's count): inside max_depth open containers it is too deep */
    memset(doc, '[', 63);
    memcpy(doc + 63, "0", 1);
    memset(doc + 64, ']', 63);
    assert_int_equal(scan_skip_n(doc, 127, JSON_SCAN_MAX_DEPTH), 0);
    memset(doc, '[', 64);
    memcpy(doc + 64, "0", 1);
    memset(doc + 65, ']', 64);
    assert_int_equal(scan_skip_n(doc, 129, JSON_SCAN_MAX_DEPTH), -1);
    assert_int_equal(scan_skip_n("[[\"s\"]]", 7, 2), -1);
    assert_int_equal(scan_skip_n("[[true]]", 8, 2), -1);
    assert_int_equal(scan_skip_n("[[]]", 4, 2), 0);
    assert_int_equal(scan_skip_n("[{\"key\":[]}]", 12, 3), 0);   /* keys are no level */
    /* a smaller limit, objects and arrays alike */
    assert_int_equal(scan_skip_n("{\"a\":[{}]}", 10, 3), 0);
    assert_int_equal(scan_skip_n("{\"a\":[{\"b\":[]}]}", 16, 3), -1);
    json_scan s;
    json_scan_init(&s, "[[[[]]]]", 8, 3);
    assert_int_equal(json_scan_skip(&s), -1);
    assert_string_equal(s.err_what, "nesting too deep");
    assert_int_equal(s.err_at, 3);
    /* deep nesting costs no stack: 100,000 levels are refused, not overflowed */
    static char deep[200000];
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    assert_int_equal(scan_skip_n(deep, sizeof(deep), JSON_SCAN_MAX_DEPTH), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_value_quoting),
        cmocka_unit_test(test_log_line),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_buf_ceiling),
        cmocka_unit_test(test_buf_json_str),
        cmocka_unit_test(test_json_scan_escapes),
        cmocka_unit_test(test_json_scan_surrogates),
        cmocka_unit_test(test_json_scan_bounds),
        cmocka_unit_test(test_json_scan_numbers),
        cmocka_unit_test(test_json_scan_skip),
        cmocka_unit_test(test_json_scan_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
