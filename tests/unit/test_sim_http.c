/* nomad-sim: the incremental HTTP request parser (tests/sim/http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

static const char GET_REQ[] = "GET /v1/job/web?namespace=staging&index=5 HTTP/1.1\r\n"
                              "Host: 127.0.0.1:4646\r\n"
                              "User-Agent: test\r\n"
                              "X-Nomad-Token:   secret  \r\n"
                              "\r\n";

static const char POST_REQ[] = "PUT /v1/jobs?namespace=staging HTTP/1.1\r\n"
                               "Host: x\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 27\r\n"
                               "\r\n"
                               "{\"Job\":{\"ID\":\"web\"},\"x\":12}";

static const char CHUNKED_REQ[] = "POST /v1/jobs HTTP/1.1\r\n"
                                  "Host: x\r\n"
                                  "Transfer-Encoding: chunked\r\n"
                                  "\r\n"
                                  "5\r\nhello\r\n"
                                  "1;ext=1\r\n \r\n"
                                  "A\r\n0123456789\r\n"
                                  "0\r\n"
                                  "Trailer-Field: x\r\n"
                                  "\r\n";

/* Feeds `raw` in one piece; expects one complete request using all bytes. */
static void parse_all(sim_http_parser *p, const char *raw, size_t len) {
    size_t used = 0;
    assert_int_equal(sim_http_parse(p, raw, len, &used), SIM_HTTP_DONE);
    assert_int_equal(used, len);
}

static void test_get(void **state) {
    (void)state;
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    parse_all(&p, GET_REQ, strlen(GET_REQ));
    assert_string_equal(p.req.method, "GET");
    assert_string_equal(p.req.target, "/v1/job/web?namespace=staging&index=5");
    assert_string_equal(p.req.path, "/v1/job/web");
    assert_string_equal(p.req.query, "namespace=staging&index=5");
    assert_int_equal(p.req.version_minor, 1);
    assert_true(p.req.keep_alive);
    assert_int_equal(p.req.n_headers, 3);
    assert_string_equal(sim_http_header_get(&p.req, "x-nomad-token"), "secret");
    assert_string_equal(sim_http_header_get(&p.req, "HOST"), "127.0.0.1:4646");
    assert_null(sim_http_header_get(&p.req, "Content-Length"));
    assert_int_equal(p.req.body_len, 0);
    assert_int_equal(p.req.content_length, -1);
    sim_http_parser_free(&p);
}

/* Every split point, and byte by byte, gives the same request. */
static void check_splits(const char *raw, size_t len, const char *want_body, size_t want_len) {
    for (size_t cut = 0; cut <= len; cut++) {
        sim_http_parser p;
        sim_http_parser_init(&p, 0, 0);
        size_t used = 0;
        int rc = sim_http_parse(&p, raw, cut, &used);
        if (cut < len) {
            assert_int_equal(rc, SIM_HTTP_AGAIN);
            assert_int_equal(used, cut);
            rc = sim_http_parse(&p, raw + cut, len - cut, &used);
            assert_int_equal(used, len - cut);
        }
        assert_int_equal(rc, SIM_HTTP_DONE);
        assert_int_equal(p.req.body_len, want_len);
        assert_memory_equal(p.req.body, want_body, want_len);
        sim_http_parser_free(&p);
    }
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    int rc = SIM_HTTP_AGAIN;
    for (size_t i = 0; i < len; i++) {
        size_t used = 0;
        rc = sim_http_parse(&p, raw + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(rc, i + 1 == len ? SIM_HTTP_DONE : SIM_HTTP_AGAIN);
    }
    assert_int_equal(p.req.body_len, want_len);
    assert_memory_equal(p.req.body, want_body, want_len);
    sim_http_parser_free(&p);
}

static void test_splits(void **state) {
    (void)state;
    check_splits(GET_REQ, strlen(GET_REQ), "", 0);
    check_splits(POST_REQ, strlen(POST_REQ), "{\"Job\":{\"ID\":\"web\"},\"x\":12}", 27);
    check_splits(CHUNKED_REQ, strlen(CHUNKED_REQ), "hello 0123456789", 16);
}

static void test_pipelining(void **state) {
    (void)state;
    char buf[2048];
    int n = snprintf(buf, sizeof(buf), "%s%s%s", POST_REQ, GET_REQ, CHUNKED_REQ);
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    size_t off = 0, used = 0;
    const char *want_methods[] = {"PUT", "GET", "POST"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sim_http_parse(&p, buf + off, (size_t)n - off, &used), SIM_HTTP_DONE);
        assert_string_equal(p.req.method, want_methods[i]);
        off += used;
        sim_http_parser_reset(&p);
    }
    assert_int_equal(off, (size_t)n);
    /* Empty lines between requests are ignored (RFC 9112 §2.2). */
    n = snprintf(buf, sizeof(buf), "\r\n\r\n%s", GET_REQ);
    parse_all(&p, buf, (size_t)n);
    assert_string_equal(p.req.path, "/v1/job/web");
    sim_http_parser_free(&p);
}

static void test_keep_alive_and_continue(void **state) {
    (void)state;
    static const struct {
        const char *raw;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\nHost: x\n\n", true},   /* bare LF line ends are tolerated */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sim_http_parser p;
        sim_http_parser_init(&p, 0, 0);
        parse_all(&p, cases[i].raw, strlen(cases[i].raw));
        assert_int_equal(p.req.keep_alive, cases[i].keep);
        sim_http_parser_free(&p);
    }
    /* Expect: 100-continue: due once the head is in and the body is not. */
    const char *head = "PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    size_t used;
    assert_int_equal(sim_http_parse(&p, head, strlen(head), &used), SIM_HTTP_AGAIN);
    assert_true(p.continue_due);
    assert_int_equal(sim_http_parse(&p, "{}", 2, &used), SIM_HTTP_DONE);
    assert_false(p.continue_due);
    assert_string_equal(p.req.body, "{}");
    sim_http_parser_free(&p);
}

static void test_limits(void **state) {
    (void)state;
    sim_http_parser p;
    size_t used;
    /* Head ceiling: 431, even when no blank line ever comes. */
    sim_http_parser_init(&p, 256, 64);
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    assert_int_equal(sim_http_parse(&p, big, sizeof(big), &used), SIM_HTTP_ERR_HEAD_TOO_LARGE);
    assert_int_equal(sim_http_error_status(p.err), 431);
    /* Sticky: more input gets the same answer. */
    assert_int_equal(sim_http_parse(&p, "x", 1, &used), SIM_HTTP_ERR_HEAD_TOO_LARGE);
    sim_http_parser_free(&p);

    /* Content-Length over the body ceiling: 413 before any body byte. */
    sim_http_parser_init(&p, 256, 64);
    const char *cl = "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n";
    assert_int_equal(sim_http_parse(&p, cl, strlen(cl), &used), SIM_HTTP_ERR_BODY_TOO_LARGE);
    assert_int_equal(sim_http_error_status(p.err), 413);
    sim_http_parser_free(&p);

    /* Exactly at the ceiling is fine. */
    sim_http_parser_init(&p, 256, 64);
    char req[256];
    int n = snprintf(req, sizeof(req), "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n%064d", 7);
    parse_all(&p, req, (size_t)n);
    assert_int_equal(p.req.body_len, 64);
    sim_http_parser_free(&p);

    /* Chunked bodies count decoded bytes against the ceiling. */
    sim_http_parser_init(&p, 256, 64);
    const char *ch = "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "20\r\n01234567890123456789012345678901\r\n21\r\n";
    assert_int_equal(sim_http_parse(&p, ch, strlen(ch), &used), SIM_HTTP_ERR_BODY_TOO_LARGE);
    sim_http_parser_free(&p);

    /* Too many header fields. */
    sim_http_parser_init(&p, 0, 0);
    char many[4096] = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < SIM_HTTP_MAX_HEADERS + 1; i++) {
        size_t l = strlen(many);
        snprintf(many + l, sizeof(many) - l, "H%d: v\r\n", i);
    }
    strcat(many, "\r\n");
    assert_int_equal(sim_http_parse(&p, many, strlen(many), &used), SIM_HTTP_ERR_HEAD_TOO_LARGE);
    sim_http_parser_free(&p);
}

static void test_malformed(void **state) {
    (void)state;
    static const struct {
        const char *raw;
        int rc;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", SIM_HTTP_ERR_BAD},                                   /* no Host */
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_VERSION},
        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_VERSION},
        {"GET / HTTX/1.1\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET /\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n  folded\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7f\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", SIM_HTTP_ERR_TE},
        {"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", SIM_HTTP_ERR_BAD},
        {"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", SIM_HTTP_ERR_BAD},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sim_http_parser p;
        sim_http_parser_init(&p, 0, 0);
        size_t used;
        int rc = sim_http_parse(&p, cases[i].raw, strlen(cases[i].raw), &used);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, p.errstr);
        assert_non_null(p.errstr);
        sim_http_parser_free(&p);
    }
    /* A NUL in the head. */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n";
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    size_t used;
    assert_int_equal(sim_http_parse(&p, nul, sizeof(nul) - 1, &used), SIM_HTTP_ERR_BAD);
    sim_http_parser_free(&p);
    assert_int_equal(sim_http_error_status(SIM_HTTP_ERR_TE), 501);
    assert_int_equal(sim_http_error_status(SIM_HTTP_ERR_VERSION), 505);
    assert_int_equal(sim_http_error_status(SIM_HTTP_ERR_BAD), 400);
}

static void test_absolute_form(void **state) {
    (void)state;
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    const char *raw = "GET http://127.0.0.1:4646/v1/status/leader?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    parse_all(&p, raw, strlen(raw));
    assert_string_equal(p.req.path, "/v1/status/leader");
    assert_string_equal(p.req.query, "x=1");
    sim_http_parser_free(&p);
}

static void test_query(void **state) {
    (void)state;
    char v[16];
    assert_int_equal(sim_http_query_get("namespace=staging&index=5", "index", v, sizeof(v)), 1);
    assert_string_equal(v, "5");
    assert_int_equal(sim_http_query_get("namespace=a%2Fb+c&x", "namespace", v, sizeof(v)), 1);
    assert_string_equal(v, "a/b c");
    assert_int_equal(sim_http_query_get("stale&x=1", "stale", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(sim_http_query_get("a=1&a=2", "a", v, sizeof(v)), 1);   /* first wins, as Go's Get */
    assert_string_equal(v, "1");
    assert_int_equal(sim_http_query_get("namespaces=x", "namespace", v, sizeof(v)), 0);
    assert_int_equal(sim_http_query_get("", "namespace", v, sizeof(v)), 0);
    assert_int_equal(sim_http_query_get("n=%zz", "n", v, sizeof(v)), -1);
    assert_int_equal(sim_http_query_get("n=%00", "n", v, sizeof(v)), -1);
    assert_int_equal(sim_http_query_get("n=%4", "n", v, sizeof(v)), -1);
    assert_int_equal(sim_http_query_get("n=0123456789abcdefXYZ", "n", v, sizeof(v)), -1);   /* does not fit */
    char d[8];
    assert_int_equal(sim_http_unescape("a%2Fb", 5, d, sizeof(d), false), 3);
    assert_string_equal(d, "a/b");
    assert_int_equal(sim_http_unescape("a+b", 3, d, sizeof(d), false), 3);
    assert_string_equal(d, "a+b");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_pipelining), cmocka_unit_test(test_keep_alive_and_continue),
        cmocka_unit_test(test_limits),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_absolute_form), cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
