/* bot/: http_client and http_server on ONE libuv loop in one process, and
 * the form decoder.
 *
 * Each test gets a fresh loop with a server on 127.0.0.1:0 and a client;
 * teardown closes both, runs the loop dry and requires uv_loop_close() == 0
 * (no handle left behind by curl, lws or us). Routes of the test server:
 *   GET  /hello    200 "hello <X-Test>", X-Reply: yes
 *   POST /echo     200 with the request's body and Content-Type, X-Len
 *   GET  /later    200 "later <X-Test>" 50 ms later (header read after the handler returned)
 *   GET  /never    never answers (counts handler calls and aborts)
 *   GET  /big      200 with ?n= bytes
 *   GET  /limited  429 Retry-After: 7;  GET /limited-date: Retry-After as an HTTP date 30 s ahead
 *   GET  /query    200 "<query>|<arg a>"
 *   GET  /close    closes the server from inside the handler
 * Raw TCP clients (on the same loop) send what curl will not: broken
 * framing, partial bodies, hand-made chunked bodies. */
#include <curl/curl.h>
#include <libwebsockets.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <cmocka.h>

#include "buf.h"
#include "form.h"
#include "http_client.h"
#include "http_server.h"
#include "uv_guard.h"

#define TIMEOUT_MS 600   /* the test server's request_timeout_ms */

typedef struct result {
    int calls;
    int code;
    long status;
    nm_buf body;
    int retry_after_s;
    char reply_hdr[64];
    char ctype[64];
    char nosniff[32];
    double ms;
} result;

typedef struct later {
    uv_timer_t timer;
    http_exchange *x;
    struct T *t;
    bool aborted;
} later;

typedef struct T {
    uv_loop_t loop;
    http_server *srv;
    http_client *cli;
    int port;
    char base[64];
    int never_calls, never_aborts, later_aborts;
    int hello_calls;
    uv_guard guard;
    int fds_at_start;
} T;

/* ---- loop helpers ------------------------------------------------------ */

/* Runs the loop until *counter >= target or ms pass; true if reached. */
static bool wait_for(T *t, const int *counter, int target, int ms) {
    return uv_guard_wait(&t->loop, &t->guard, counter, target, ms);
}

static void run_for(T *t, int ms) { uv_guard_run_for(&t->loop, &t->guard, ms); }

/* ---- client side ------------------------------------------------------- */

static void on_done(void *ud, const http_response *res) {
    result *r = ud;
    r->calls++;
    r->code = res->code;
    r->status = res->status;
    nm_buf_reset(&r->body);
    nm_buf_append(&r->body, res->body, res->len);
    r->retry_after_s = res->retry_after_s;
    r->ms = res->total_ms;
    const char *h = http_response_header(res, "x-reply");
    snprintf(r->reply_hdr, sizeof(r->reply_hdr), "%s", h ? h : "");
    h = http_response_header(res, "Content-Type");
    snprintf(r->ctype, sizeof(r->ctype), "%s", h ? h : "");
    h = http_response_header(res, "X-Content-Type-Options");
    snprintf(r->nosniff, sizeof(r->nosniff), "%s", h ? h : "");
    if (res->code != HTTP_OK) assert_non_null(res->error);
}

static void result_init(result *r) {
    memset(r, 0, sizeof(*r));
    nm_buf_init(&r->body, 0);
}

static void result_free(result *r) { nm_buf_free(&r->body); }

static int send_req(T *t, const char *method, const char *path, const char *const *headers, const char *body,
                    size_t len, long timeout_ms, result *r) {
    char url[256];
    snprintf(url, sizeof(url), "%s%s", t->base, path);
    http_request req = {.method = method, .url = url, .headers = headers, .body = body, .body_len = len,
                        .timeout_ms = timeout_ms};
    return http_client_send(t->cli, &req, on_done, r);
}

/* One request, run to completion. */
static void roundtrip(T *t, const char *method, const char *path, const char *const *headers, const char *body,
                      size_t len, long timeout_ms, result *r) {
    assert_int_equal(send_req(t, method, path, headers, body, len, timeout_ms, r), 0);
    assert_true(wait_for(t, &r->calls, 1, 5000));
    assert_int_equal(r->calls, 1);
}

/* ---- raw TCP client ---------------------------------------------------- */

typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t w;
    uv_buf_t out;
    nm_buf in;
    int eof;         /* 1 once the server closed (or an error) */
    int closed;      /* 1 once our handle is closed */
} raw;

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
    (void)h;
    (void)hint;
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof(buf));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    raw *r = s->data;
    if (n > 0) nm_buf_append(&r->in, b->base, (size_t)n);
    if (n < 0) {
        r->eof = 1;
        uv_read_stop(s);
    }
}

static void raw_written(uv_write_t *w, int status) {
    (void)w;
    (void)status;
}

static void raw_connected(uv_connect_t *c, int status) {
    raw *r = c->handle->data;
    if (status < 0) {
        r->eof = 1;
        return;
    }
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
    if (r->out.len) uv_write(&r->w, (uv_stream_t *)&r->tcp, &r->out, 1, raw_written);
}

static void raw_start(T *t, raw *r, const char *data, size_t len) {
    memset(r, 0, sizeof(*r));
    nm_buf_init(&r->in, 0);
    r->out = uv_buf_init((char *)data, (unsigned)len);
    uv_tcp_init(&t->loop, &r->tcp);
    r->tcp.data = r;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", t->port, &a);
    assert_int_equal(uv_tcp_connect(&r->conn, &r->tcp, (const struct sockaddr *)&a, raw_connected), 0);
}

static void raw_closed(uv_handle_t *h) { ((raw *)h->data)->closed = 1; }

static void raw_finish(T *t, raw *r) {
    uv_close((uv_handle_t *)&r->tcp, raw_closed);
    assert_true(wait_for(t, &r->closed, 1, 2000));
    nm_buf_free(&r->in);
}

/* Sends data, waits for the server to close the connection, returns what came back. */
static void raw_exchange(T *t, raw *r, const char *data, size_t len) {
    raw_start(t, r, data, len);
    assert_true(wait_for(t, &r->eof, 1, 5000));
}

static bool starts(const nm_buf *b, const char *prefix) {
    return b->data && strncmp(b->data, prefix, strlen(prefix)) == 0;
}

/* ---- server side ------------------------------------------------------- */

static void h_hello(void *ud, http_exchange *x, const http_request_in *req) {
    T *t = ud;
    t->hello_calls++;
    char v[64], body[128];
    const char *xt = http_exchange_header(x, "X-Test", v, sizeof(v));
    int n = snprintf(body, sizeof(body), "hello %s", xt ? xt : "-");
    assert_string_equal(req->remote, "127.0.0.1");
    const char *hs[] = {"X-Reply: yes", NULL};
    assert_int_equal(http_respond_headers(x, 200, "text/plain", hs, body, (size_t)n), 0);
    /* Answered: a second answer is refused (x is gone, but the guard is in the state). */
}

static void h_echo(void *ud, http_exchange *x, const http_request_in *req) {
    (void)ud;
    char len[64];
    snprintf(len, sizeof(len), "X-Len: %zu", req->body_len);
    const char *hs[] = {len, NULL};
    assert_int_equal(strlen(req->body) <= req->body_len, 1);
    assert_int_equal(http_respond_headers(x, 200, req->content_type[0] ? req->content_type : NULL, hs, req->body,
                                          req->body_len),
                     0);
}

static void later_closed(uv_handle_t *h) { free(h->data); }

static void later_fire(uv_timer_t *tm) {
    later *l = tm->data;
    char v[64], body[128];
    const char *xt = http_exchange_header(l->x, "x-test", v, sizeof(v));
    int n = snprintf(body, sizeof(body), "later %s", xt ? xt : "-");
    assert_int_equal(http_respond(l->x, 200, "text/plain", body, (size_t)n), 0);
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void later_abort(void *ud) {
    later *l = ud;
    l->t->later_aborts++;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void h_later(void *ud, http_exchange *x, const http_request_in *req) {
    (void)req;
    later *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->x = x;
    l->t = ud;
    uv_timer_init(&l->t->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, 50, 0);
    http_exchange_on_abort(x, later_abort, l);
}

static void never_abort(void *ud) { ((T *)ud)->never_aborts++; }

static void h_never(void *ud, http_exchange *x, const http_request_in *req) {
    (void)req;
    T *t = ud;
    t->never_calls++;
    http_exchange_on_abort(x, never_abort, t);
}

static void h_big(void *ud, http_exchange *x, const http_request_in *req) {
    (void)ud;
    (void)req;
    char v[32];
    const char *ns = http_exchange_query_arg(x, "n", v, sizeof(v));
    size_t n = ns ? (size_t)strtoul(ns, NULL, 10) : 0;
    char *b = malloc(n + 1);
    assert_non_null(b);
    memset(b, 'b', n);
    assert_int_equal(http_respond(x, 200, "application/octet-stream", b, n), 0);
    free(b);
}

static void h_limited(void *ud, http_exchange *x, const http_request_in *req) {
    (void)ud;
    (void)req;
    const char *hs[] = {"Retry-After: 7", NULL};
    assert_int_equal(http_respond_headers(x, 429, "application/json", hs, "{}", 2), 0);
}

static void h_limited_date(void *ud, http_exchange *x, const http_request_in *req) {
    (void)ud;
    (void)req;
    char date[64], h[96];
    time_t when = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(h, sizeof(h), "Retry-After: %s", date);
    const char *hs[] = {h, NULL};
    assert_int_equal(http_respond_headers(x, 429, NULL, hs, NULL, 0), 0);
}

static void h_query(void *ud, http_exchange *x, const http_request_in *req) {
    (void)ud;
    char v[64], body[256];
    const char *a = http_exchange_query_arg(x, "a", v, sizeof(v));
    int n = snprintf(body, sizeof(body), "%s|%s", req->query, a ? a : "(none)");
    assert_int_equal(http_respond(x, 200, "text/plain", body, (size_t)n), 0);
}

static void h_close(void *ud, http_exchange *x, const http_request_in *req) {
    (void)req;
    (void)x;
    T *t = ud;
    http_server_close(t->srv);   /* from inside a handler, x unanswered */
    t->srv = NULL;
}

static void add_routes(T *t) {
    assert_int_equal(http_server_route(t->srv, "GET", "/hello", h_hello, t), 0);
    assert_int_equal(http_server_route(t->srv, "POST", "/echo", h_echo, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/later", h_later, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/never", h_never, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/big", h_big, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/limited", h_limited, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/limited-date", h_limited_date, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/query", h_query, t), 0);
    assert_int_equal(http_server_route(t->srv, "GET", "/close", h_close, t), 0);
    assert_int_equal(http_server_route(t->srv, "get", "/x", h_close, t), HTTP_SERVER_ERR_INVAL);
    assert_int_equal(http_server_route(t->srv, "GET", "x", h_close, t), HTTP_SERVER_ERR_INVAL);
}

static int setup_with(void **state, const http_server_limits *lim, size_t max_response) {
    T *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->fds_at_start = count_open_fds();
    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_guard_init(&t->loop, &t->guard);
    char err[256];
    http_server_limits l = {.request_timeout_ms = TIMEOUT_MS};
    t->srv = http_server_new(&t->loop, "127.0.0.1:0", lim ? lim : &l, err, sizeof(err));
    assert_non_null(t->srv);
    t->port = http_server_port(t->srv);
    assert_true(t->port > 0);
    snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%d", t->port);
    add_routes(t);
    t->cli = http_client_new(&t->loop, max_response, err, sizeof(err));
    assert_non_null(t->cli);
    *state = t;
    return 0;
}

static int setup(void **state) { return setup_with(state, NULL, 0); }

static void print_handle(uv_handle_t *h, void *arg) {
    (void)arg;
    fprintf(stderr, "left on the loop: %s active=%d closing=%d\n", uv_handle_type_name(h->type), uv_is_active(h),
            uv_is_closing(h));
}

static int teardown(void **state) {
    T *t = *state;
    if (t->cli) http_client_close(t->cli);
    if (t->srv) http_server_close(t->srv);
    uv_guard_drain(&t->loop, &t->guard);
    int rc = uv_loop_close(&t->loop);
    if (rc != 0) uv_walk(&t->loop, print_handle, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(count_open_fds(), t->fds_at_start);
    free(t);
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_get_roundtrip(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    const char *hs[] = {"X-Test: abc", "Authorization: Bearer xoxb-secret", NULL};
    roundtrip(t, "GET", "/hello", hs, NULL, 0, 0, &r);
    assert_int_equal(r.code, HTTP_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "hello abc");
    assert_string_equal(r.reply_hdr, "yes");
    assert_string_equal(r.ctype, "text/plain");
    assert_string_equal(r.nosniff, "nosniff");
    assert_int_equal(r.retry_after_s, -1);
    assert_true(r.ms > 0);
    /* Sequential requests reuse the one keep-alive connection. */
    for (int i = 0; i < 5; i++) {
        result q;
        result_init(&q);
        roundtrip(t, "GET", "/hello", NULL, NULL, 0, 0, &q);
        assert_string_equal(q.body.data, "hello -");
        result_free(&q);
    }
    http_server_stats st;
    http_server_get_stats(t->srv, &st);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.requests, 6);
    assert_int_equal(http_client_pending(t->cli), 0);
    result_free(&r);
}

static void test_post_echo(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    const char *hs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    roundtrip(t, "POST", "/echo", hs, "a=1&b=two", 9, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "a=1&b=two");
    assert_string_equal(r.ctype, "application/x-www-form-urlencoded");
    /* Empty body. */
    result e;
    result_init(&e);
    roundtrip(t, "POST", "/echo", NULL, NULL, 0, 0, &e);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body.len, 0);
    /* 300 KiB each way: many body reads and writes, binary safe. */
    size_t n = 300 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) big[i] = (char)(i * 7 + 3);
    result b;
    result_init(&b);
    const char *bh[] = {"Content-Type: application/octet-stream", NULL};
    roundtrip(t, "POST", "/echo", bh, big, n, 0, &b);
    assert_int_equal(b.status, 200);
    assert_int_equal(b.body.len, n);
    assert_memory_equal(b.body.data, big, n);
    free(big);
    result_free(&r);
    result_free(&e);
    result_free(&b);
}

static void test_not_found_and_method(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/nope", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.ctype, "application/json");
    assert_string_equal(r.body.data, "{\"error\":\"not found\",\"status\":404}");
    result m;
    result_init(&m);
    roundtrip(t, "POST", "/hello", NULL, "x", 1, 0, &m);
    assert_int_equal(m.status, 405);
    assert_non_null(strstr(m.body.data, "method not allowed"));
    result_free(&m);
    /* Allow header, via a raw request (the client keeps only our own names). */
    raw w;
    static const char del[] = "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(t, &w, del, sizeof(del) - 1);
    assert_true(starts(&w.in, "HTTP/1.1 405 "));
    assert_non_null(strstr(w.in.data, "allow: GET, HEAD\r\n") ? strstr(w.in.data, "allow: GET, HEAD\r\n")
                                                              : strstr(w.in.data, "Allow: GET, HEAD\r\n"));
    raw_finish(t, &w);
    /* HEAD on a GET route: headers only. */
    result h;
    result_init(&h);
    roundtrip(t, "HEAD", "/hello", NULL, NULL, 0, 0, &h);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.body.len, 0);
    result_free(&h);
    result_free(&r);
}

static void test_malformed_400(void **state) {
    T *t = *state;
    static const char *const cases[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw w;
        raw_exchange(t, &w, cases[i], strlen(cases[i]));
        if (!starts(&w.in, "HTTP/1.1 400 ")) fail_msg("case %zu got: %s", i, w.in.data ? w.in.data : "(nothing)");
        assert_non_null(strstr(w.in.data, "\"status\":400"));
        raw_finish(t, &w);
    }
    /* Garbage: lws drops it one way or another; the server stays up. */
    raw g;
    static const char junk[] = "\x01\x02garbage\r\n\r\n";
    raw_exchange(t, &g, junk, sizeof(junk) - 1);
    raw_finish(t, &g);
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/hello", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_chunked_request(void **state) {
    T *t = *state;
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"
                              "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
    raw w;
    raw_exchange(t, &w, req, sizeof(req) - 1);
    assert_true(starts(&w.in, "HTTP/1.1 200 "));
    assert_non_null(strstr(w.in.data, "\r\n\r\nhello 0123456789"));
    assert_non_null(strstr(w.in.data, "X-Len: 16\r\n"));
    raw_finish(t, &w);
    /* Through curl, which chunks when asked to. */
    result r;
    result_init(&r);
    const char *hs[] = {"Transfer-Encoding: chunked", "Content-Type: text/plain", NULL};
    roundtrip(t, "POST", "/echo", hs, "chunky body", 11, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "chunky body");
    result_free(&r);
}

static void test_too_large_413(void **state) {
    T *t = *state;
    size_t n = 2 * 1024 * 1024;   /* over the default 1 MiB */
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    /* Content-Length too big: refused before the body is read. */
    result r;
    result_init(&r);
    roundtrip(t, "POST", "/echo", NULL, big, n, 0, &r);
    assert_int_equal(r.code, HTTP_OK);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body.data, "too large"));
    /* Chunked body too big: refused while reading. */
    result c;
    result_init(&c);
    const char *hs[] = {"Transfer-Encoding: chunked", NULL};
    roundtrip(t, "POST", "/echo", hs, big, n, 0, &c);
    assert_int_equal(c.code, HTTP_OK);   /* the lingering close lets curl read the answer */
    assert_int_equal(c.status, 413);
    /* A raw chunked body whose chunk size alone is over the limit. */
    raw w;
    static const char huge[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\nabc";
    raw_exchange(t, &w, huge, sizeof(huge) - 1);
    assert_true(starts(&w.in, "HTTP/1.1 413 "));
    raw_finish(t, &w);
    /* A client that sends its too-large body without waiting: it gets the
     * 413 and then our FIN (lingering close), not a reset. */
    size_t part = 64 * 1024;
    char *eager = malloc(256 + part);
    assert_non_null(eager);
    int k = snprintf(eager, 256, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
    memset(eager + k, 'e', part);
    raw e;
    raw_exchange(t, &e, eager, (size_t)k + part);
    assert_true(starts(&e.in, "HTTP/1.1 413 "));
    assert_non_null(strstr(e.in.data, "connection: close\r\n"));
    raw_finish(t, &e);
    free(eager);
    http_server_stats st;
    http_server_get_stats(t->srv, &st);
    assert_true(st.rejected >= 3);
    /* Still serving. */
    result ok;
    result_init(&ok);
    roundtrip(t, "GET", "/hello", NULL, NULL, 0, 0, &ok);
    assert_int_equal(ok.status, 200);
    free(big);
    result_free(&r);
    result_free(&c);
    result_free(&ok);
}

static void test_answer_later(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    const char *hs[] = {"X-Test: deferred", NULL};
    roundtrip(t, "GET", "/later", hs, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "later deferred");
    assert_true(r.ms >= 45);
    assert_int_equal(t->later_aborts, 0);
    result_free(&r);
}

static void test_handler_never_answers_503(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/never", NULL, NULL, 0, 5000, &r);
    assert_int_equal(r.code, HTTP_OK);
    assert_int_equal(r.status, 503);
    assert_true(r.ms >= TIMEOUT_MS - 20);
    assert_int_equal(t->never_calls, 1);
    assert_int_equal(t->never_aborts, 1);   /* the handler is told its exchange is gone */
    http_server_stats st;
    http_server_get_stats(t->srv, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.exchanges, 0);
    result_free(&r);
}

static void test_body_timeout_408(void **state) {
    T *t = *state;
    static const char partial[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b";
    raw w;
    uint64_t t0 = uv_hrtime();
    raw_exchange(t, &w, partial, sizeof(partial) - 1);
    assert_true(starts(&w.in, "HTTP/1.1 408 "));
    assert_true((uv_hrtime() - t0) / 1000000 >= TIMEOUT_MS - 20);
    raw_finish(t, &w);
}

static void test_client_timeout(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/never", NULL, NULL, 0, 150, &r);
    assert_int_equal(r.code, HTTP_ERR_TIMEOUT);
    assert_int_equal(r.status, 0);
    assert_true(r.ms >= 140 && r.ms < TIMEOUT_MS);
    assert_true(strlen(r.body.data ? r.body.data : "") == 0);
    /* curl dropped the connection: the server aborts the exchange. */
    assert_true(wait_for(t, &t->never_aborts, 1, 2000));
    http_server_stats st;
    http_server_get_stats(t->srv, &st);
    assert_int_equal(st.aborted, 1);
    assert_int_equal(st.timeouts, 0);
    result_free(&r);
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A client that sends a GET and shuts its side while the handler holds the
 * request: lws 4.1 alone would spin on the readable socket until the answer. */
static void test_hangup_while_waiting(void **state) {
    T *t = *state;
    static const char get[] = "GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
    raw w;
    raw_start(t, &w, get, sizeof(get) - 1);
    assert_true(wait_for(t, &t->never_calls, 1, 2000));
    double before = cpu_ms();
    uv_shutdown_t sd;
    assert_int_equal(uv_shutdown(&sd, (uv_stream_t *)&w.tcp, NULL), 0);
    assert_true(wait_for(t, &t->never_aborts, 1, 2000));
    run_for(t, 200);
    assert_true(cpu_ms() - before < 100);   /* no busy loop while waiting or after */
    http_server_stats st;
    http_server_get_stats(t->srv, &st);
    assert_int_equal(st.aborted, 1);
    assert_int_equal(st.exchanges, 0);
    raw_finish(t, &w);
}

/* Headers over max_header (8 KiB by default): lws drops the request. */
static void test_header_too_large(void **state) {
    T *t = *state;
    size_t n = 12 * 1024;
    char *req = malloc(n + 128);
    assert_non_null(req);
    int k = snprintf(req, 128, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + k, 'a', n);
    memcpy(req + k + n, "\r\n\r\n", 5);
    raw w;
    raw_exchange(t, &w, req, (size_t)k + n + 4);
    assert_false(starts(&w.in, "HTTP/1.1 200 "));
    if (w.in.len) fprintf(stderr, "header too large answered: %.40s\n", w.in.data);
    raw_finish(t, &w);
    assert_int_equal(t->hello_calls, 0);
    free(req);
}

/* Expect: 100-continue gets its interim answer (lws 4.1 sends none). */
static void test_expect_continue(void **state) {
    T *t = *state;
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                              "Connection: close\r\n\r\nhello";
    raw w;
    raw_exchange(t, &w, req, sizeof(req) - 1);
    assert_true(starts(&w.in, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "));
    assert_non_null(strstr(w.in.data, "\r\n\r\nhello"));
    raw_finish(t, &w);
}

static void test_response_too_large(void **state) {
    T *t = *state;
    http_client_close(t->cli);
    char err[128];
    t->cli = http_client_new(&t->loop, 1000, err, sizeof(err));
    assert_non_null(t->cli);
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/big?n=5000", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.code, HTTP_ERR_TOO_LARGE);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.body.len, 0);
    result ok;
    result_init(&ok);
    roundtrip(t, "GET", "/big?n=1000", NULL, NULL, 0, 0, &ok);   /* exactly at the limit */
    assert_int_equal(ok.code, HTTP_OK);
    assert_int_equal(ok.body.len, 1000);
    result_free(&ok);
    result_free(&r);
}

static void test_retry_after(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/limited", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.code, HTTP_OK);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after_s, 7);
    result d;
    result_init(&d);
    roundtrip(t, "GET", "/limited-date", NULL, NULL, 0, 0, &d);
    assert_int_equal(d.status, 429);
    assert_in_range(d.retry_after_s, 28, 31);
    result_free(&r);
    result_free(&d);
}

static void test_query(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/query?a=1%262&b=x+y", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "a=1&2&b=x y|1&2");
    result n;
    result_init(&n);
    roundtrip(t, "GET", "/query", NULL, NULL, 0, 0, &n);
    assert_string_equal(n.body.data, "|(none)");
    result_free(&r);
    result_free(&n);
}

typedef struct many {
    result r[200];
} many;

static void test_200_concurrent(void **state) {
    T *t = *state;
    many *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    static const char *paths[] = {"/hello", "/later", "/echo", "/nope"};
    for (int i = 0; i < 200; i++) {
        result_init(&m->r[i]);
        const char *p = paths[i % 4];
        char body[32];
        int n = snprintf(body, sizeof(body), "req-%d", i);
        assert_int_equal(send_req(t, i % 4 == 2 ? "POST" : "GET", p, NULL, i % 4 == 2 ? body : NULL,
                                  i % 4 == 2 ? (size_t)n : 0, 10000, &m->r[i]),
                         0);
    }
    assert_int_equal(http_client_pending(t->cli), 200);
    int done = 0;
    uv_guard_arm(&t->guard, 15000);
    while (!t->guard.fired) {
        done = 0;
        for (int i = 0; i < 200; i++) done += m->r[i].calls;
        if (done >= 200) break;
        uv_run(&t->loop, UV_RUN_ONCE);
    }
    uv_guard_disarm(&t->guard);
    run_for(t, 50);   /* a duplicate completion would show now */
    for (int i = 0; i < 200; i++) {
        result *r = &m->r[i];
        if (r->calls != 1 || r->code != HTTP_OK)
            fail_msg("request %d: calls=%d code=%d (%s)", i, r->calls, r->code, http_strerror(r->code));
        switch (i % 4) {
        case 0: assert_int_equal(r->status, 200); assert_string_equal(r->body.data, "hello -"); break;
        case 1: assert_int_equal(r->status, 200); assert_string_equal(r->body.data, "later -"); break;
        case 2: {
            char want[32];
            snprintf(want, sizeof(want), "req-%d", i);
            assert_int_equal(r->status, 200);
            assert_string_equal(r->body.data, want);
            break;
        }
        default: assert_int_equal(r->status, 404); break;
        }
        result_free(r);
    }
    assert_int_equal(http_client_pending(t->cli), 0);
    free(m);
}

static void test_client_close_pending(void **state) {
    T *t = *state;
    result r[5];
    for (int i = 0; i < 5; i++) {
        result_init(&r[i]);
        assert_int_equal(send_req(t, "GET", "/never", NULL, NULL, 0, 0, &r[i]), 0);
    }
    assert_true(wait_for(t, &t->never_calls, 5, 5000));
    http_client_close(t->cli);
    for (int i = 0; i < 5; i++) {   /* completed inside close */
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, HTTP_ERR_CLOSED);
    }
    /* New requests on the closing client are refused without a callback. */
    result x;
    result_init(&x);
    assert_int_equal(send_req(t, "GET", "/hello", NULL, NULL, 0, 0, &x), HTTP_ERR_CLOSED);
    t->cli = NULL;
    assert_true(wait_for(t, &t->never_aborts, 5, 3000));   /* the server sees the clients go */
    run_for(t, 50);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        result_free(&r[i]);
    }
    assert_int_equal(x.calls, 0);
    result_free(&x);
}

static void close_in_callback(void *ud, const http_response *res) {
    T *t = ud;
    (void)res;
    t->hello_calls += 100;
    http_client_close(t->cli);   /* the other pending request completes here, CLOSED */
    t->cli = NULL;
}

static void count_closed(void *ud, const http_response *res) {
    int *n = ud;
    assert_int_equal(res->code, HTTP_ERR_CLOSED);
    (*n)++;
}

static void test_client_close_in_callback(void **state) {
    T *t = *state;
    char url[128];
    snprintf(url, sizeof(url), "%s/hello", t->base);
    http_request a = {.method = "GET", .url = url};
    int closed = 0;
    snprintf(url, sizeof(url), "%s/hello", t->base);
    assert_int_equal(http_client_send(t->cli, &a, close_in_callback, t), 0);
    char url2[128];
    snprintf(url2, sizeof(url2), "%s/never", t->base);
    http_request b = {.method = "GET", .url = url2};
    assert_int_equal(http_client_send(t->cli, &b, count_closed, &closed), 0);
    int target = 101;
    assert_true(wait_for(t, &t->hello_calls, target, 5000));
    assert_int_equal(closed, 1);
}

static void test_server_close_with_open_exchanges(void **state) {
    T *t = *state;
    result r[3];
    for (int i = 0; i < 3; i++) {
        result_init(&r[i]);
        assert_int_equal(send_req(t, "GET", "/never", NULL, NULL, 0, 0, &r[i]), 0);
    }
    assert_true(wait_for(t, &t->never_calls, 3, 5000));
    http_server_close(t->srv);
    t->srv = NULL;
    assert_int_equal(t->never_aborts, 3);   /* before close returned */
    int done = 0;
    uv_guard_arm(&t->guard, 5000);
    while (!t->guard.fired && (done = r[0].calls + r[1].calls + r[2].calls) < 3) uv_run(&t->loop, UV_RUN_ONCE);
    uv_guard_disarm(&t->guard);
    assert_int_equal(done, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, HTTP_ERR_CONNECT);
        result_free(&r[i]);
    }
    assert_int_equal(t->never_aborts, 3);
}

static void test_server_close_in_handler(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/close", NULL, NULL, 0, 2000, &r);
    assert_int_equal(r.code, HTTP_ERR_CONNECT);
    assert_null(t->srv);
    result_free(&r);
}

static void test_max_connections(void **state) {
    T *t = *state;
    http_server_close(t->srv);
    http_server_limits lim = {.max_connections = 2, .request_timeout_ms = TIMEOUT_MS};
    char err[128];
    t->srv = http_server_new(&t->loop, "127.0.0.1:0", &lim, err, sizeof(err));
    assert_non_null(t->srv);
    t->port = http_server_port(t->srv);
    add_routes(t);
    raw a, b, c;
    raw_start(t, &a, "", 0);
    raw_start(t, &b, "", 0);
    http_server_stats st = {0};
    for (int i = 0; i < 100 && st.connections < 2; i++) {
        run_for(t, 10);
        http_server_get_stats(t->srv, &st);
    }
    assert_int_equal(st.connections, 2);
    static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_exchange(t, &c, get, sizeof(get) - 1);
    assert_int_equal(c.in.len, 0);   /* refused at accept, no answer */
    assert_int_equal(a.eof, 0);
    raw_finish(t, &a);
    raw_finish(t, &b);
    raw_finish(t, &c);
    for (int i = 0; i < 100 && st.connections > 0; i++) {
        run_for(t, 10);
        http_server_get_stats(t->srv, &st);
    }
    assert_int_equal(st.connections, 0);
    raw d;
    static const char get_close[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(t, &d, get_close, sizeof(get_close) - 1);
    assert_true(starts(&d.in, "HTTP/1.1 200 "));
    raw_finish(t, &d);
}

static void test_listen_errors(void **state) {
    T *t = *state;
    char err[256], listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", t->port);
    assert_null(http_server_new(&t->loop, listen, NULL, err, sizeof(err)));   /* in use */
    assert_non_null(strstr(err, "cannot listen"));
    assert_null(http_server_new(&t->loop, "localhost:0", NULL, err, sizeof(err)));
    assert_null(http_server_new(&t->loop, "127.0.0.1", NULL, err, sizeof(err)));
    assert_null(http_server_new(&t->loop, "127.0.0.1:99999", NULL, err, sizeof(err)));
    assert_null(http_server_new(&t->loop, "[::1:80", NULL, err, sizeof(err)));
    /* The half-made server cleans up by itself; the real one still serves. */
    result r;
    result_init(&r);
    roundtrip(t, "GET", "/hello", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);
}

static void test_client_refusals(void **state) {
    T *t = *state;
    result r;
    result_init(&r);
    http_request bad[] = {
        {.method = "get", .url = "http://127.0.0.1/"},
        {.method = "GET", .url = "file:///etc/passwd"},
        {.method = "GET", .url = "http://a b/"},
        {.method = "GET", .url = "http://127.0.0.1/", .headers = (const char *const[]){"X: a\r\nY: b", NULL}},
        {.method = "GET", .url = "http://127.0.0.1/", .headers = (const char *const[]){"no colon", NULL}},
        {.method = "POST", .url = "http://127.0.0.1/", .body = NULL, .body_len = 3},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(http_client_send(t->cli, &bad[i], on_done, &r), HTTP_ERR_INVAL);
    /* Connection refused: one callback, CONNECT. */
    http_request req = {.method = "GET", .url = "http://127.0.0.1:1/", .timeout_ms = 2000};
    assert_int_equal(http_client_send(t->cli, &req, on_done, &r), 0);
    assert_true(wait_for(t, &r.calls, 1, 3000));
    assert_int_equal(r.code, HTTP_ERR_CONNECT);
    assert_true(strlen(r.body.data ? r.body.data : "") == 0);
    run_for(t, 20);
    assert_int_equal(r.calls, 1);
    result_free(&r);
}

/* ---- form -------------------------------------------------------------- */

static void test_form(void **state) {
    (void)state;
    form_field f[8];
    size_t n = 0;
    char out[256], err[128];
    const char *body = "token=abc&text=deploy+web%20to+prod&empty=&flag&&user_name=J%C3%B6rg&x=%2B%26%3D";
    assert_int_equal(form_parse(body, strlen(body), out, sizeof(out), f, 8, &n, err, sizeof(err)), FORM_OK);
    assert_int_equal(n, 6);
    assert_string_equal(form_get(f, n, "token"), "abc");
    assert_string_equal(form_get(f, n, "text"), "deploy web to prod");
    assert_string_equal(form_get(f, n, "empty"), "");
    assert_string_equal(form_get(f, n, "flag"), "");
    assert_string_equal(form_get(f, n, "user_name"), "J\xc3\xb6rg");
    assert_string_equal(form_get(f, n, "x"), "+&=");
    assert_null(form_get(f, n, "missing"));
    assert_null(form_get(f, n, "TOKEN"));
    assert_int_equal(form_find(f, n, "text")->value_len, 18);
    /* Duplicates: first wins; a=b=c keeps the second '='. */
    const char *dup = "a=1&a=2&b=x=y";
    assert_int_equal(form_parse(dup, strlen(dup), out, sizeof(out), f, 8, &n, NULL, 0), FORM_OK);
    assert_string_equal(form_get(f, n, "a"), "1");
    assert_string_equal(form_get(f, n, "b"), "x=y");
    /* Empty body. */
    assert_int_equal(form_parse("", 0, out, sizeof(out), f, 8, &n, NULL, 0), FORM_OK);
    assert_int_equal(n, 0);
    /* Errors. */
    static const struct {
        const char *in;
        int code;
    } bad[] = {
        {"a=%", FORM_ERR_ESCAPE},  {"a=%4", FORM_ERR_ESCAPE}, {"a=%zz", FORM_ERR_ESCAPE},
        {"a=%00", FORM_ERR_ESCAPE}, {"%G1=x", FORM_ERR_ESCAPE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 99;
        assert_int_equal(form_parse(bad[i].in, strlen(bad[i].in), out, sizeof(out), f, 8, &n, err, sizeof(err)),
                         bad[i].code);
        assert_int_equal(n, 0);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(form_parse("a&b&c", 5, out, sizeof(out), f, 2, &n, err, sizeof(err)), FORM_ERR_TOO_MANY);
    char key[FORM_MAX_KEY + 3];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    char big[FORM_MAX_KEY * 2];
    assert_int_equal(form_parse(key, strlen(key), big, sizeof(big), f, 8, &n, err, sizeof(err)), FORM_ERR_KEY_LONG);
    /* The output-size rule holds in the worst case ("a&a&a..."), and one byte less is refused cleanly. */
    const char *w = "a&a&a";
    char tight[FORM_OUT_SIZE(5, 3)];
    assert_int_equal(form_parse(w, 5, tight, sizeof(tight), f, 3, &n, NULL, 0), FORM_OK);
    assert_int_equal(n, 3);
    assert_int_equal(form_parse(w, 5, tight, sizeof(tight) - 1, f, 3, &n, NULL, 0), FORM_ERR_NOSPACE);
    assert_int_equal(form_parse(NULL, 3, out, sizeof(out), f, 8, &n, NULL, 0), FORM_ERR_INVAL);
    assert_int_equal(form_parse("a=b\0c", 5, out, sizeof(out), f, 8, &n, err, sizeof(err)), FORM_ERR_ESCAPE);
    assert_non_null(strstr(err, "NUL"));
    assert_string_equal(form_strerror(FORM_ERR_ESCAPE), "bad percent escape or NUL byte");
}

static void test_form_value_limit(void **state) {
    (void)state;
    size_t len = FORM_MAX_VALUE + 3;
    char *body = malloc(len + 1);
    char *out = malloc(FORM_OUT_SIZE(len, 4));
    assert_non_null(body);
    assert_non_null(out);
    memcpy(body, "v=", 2);
    memset(body + 2, 'x', len - 2);
    body[len] = '\0';
    form_field f[4];
    size_t n;
    assert_int_equal(form_parse(body, len, out, FORM_OUT_SIZE(len, 4), f, 4, &n, NULL, 0), FORM_ERR_VALUE_LONG);
    assert_int_equal(form_parse(body, len - 1, out, FORM_OUT_SIZE(len, 4), f, 4, &n, NULL, 0), FORM_OK);
    assert_int_equal(f[0].value_len, FORM_MAX_VALUE);
    free(body);
    free(out);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* HTTP_TEST_LWS_LOG=<lws level bits> shows lws's own lines; HTTP_TEST_FILTER=<glob> picks tests. */
    const char *lv = getenv("HTTP_TEST_LWS_LOG");
    lws_set_log_level(lv ? atoi(lv) : 0, NULL);
    if (getenv("HTTP_TEST_FILTER")) cmocka_set_test_filter(getenv("HTTP_TEST_FILTER"));
    /* libuv opens a process-wide pipe with the first loop: not a leak of ours. */
    uv_loop_t warm;
    uv_loop_init(&warm);
    uv_loop_close(&warm);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_never_answers_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_timeout_408, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hangup_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_200_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_close_with_open_exchanges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_close_in_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_refusals, setup, teardown),
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_form_value_limit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
