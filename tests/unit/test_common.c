/* common/: logfmt value quoting and the bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_value_quoting),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_buf_ceiling),
        cmocka_unit_test(test_buf_json_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
