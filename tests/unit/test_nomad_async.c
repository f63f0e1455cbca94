/* nomad/: the asynchronous engine (nomad_async.h) against a responder
 * that serves every connection on its own thread, so many requests are in
 * flight at once. The answer is chosen by the request path:
 *   /v1/deployment/d-N?...&index=I  200 after (20-N)*15 ms, X-Nomad-Index I+1
 *   /v1/fast/...                    200 at once
 *   /v1/hang                        never answers
 *   /v1/big                         200 announcing NOMAD_MAX_BODY+1 bytes
 *   /v1/status/500                  500 "No cluster leader"
 *   anything else                   404 "job not found"
 * It counts accepted connections, the measure of connection reuse. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "nomad.h"
#include "nomad_async.h"

#define MAX_CONNS 128
#define REQ_BUF 16384

typedef struct responder {
    int lfd, port;
    int stop[2];
    pthread_t thread;
    pthread_mutex_t mu;
    int connections, requests;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    size_t n_conns;
    char last_line[512];
    char last_headers[2048];
} responder;

typedef struct conn_arg {
    responder *r;
    int fd;
} conn_arg;

static bool wait_readable(responder *r, int fd, int timeout_ms) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = r->stop[0], .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    return n > 0 && !(p[1].revents & POLLIN) && (p[0].revents & (POLLIN | POLLHUP | POLLERR));
}

/* Sleeps ms unless stopped; false when stopped. */
static bool nap(responder *r, int ms) {
    struct pollfd p = {.fd = r->stop[0], .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

static bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool reply(int fd, int status, const char *body, const char *extra) {
    char hdr[512];
    size_t blen = strlen(body);
    snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
             status, blen, extra ? extra : "");
    return send_all(fd, hdr, strlen(hdr)) && send_all(fd, body, blen);
}

static void *serve(void *arg) {
    conn_arg *ca = arg;
    responder *r = ca->r;
    int fd = ca->fd;
    free(ca);
    char *buf = malloc(REQ_BUF + 1);
    if (!buf) return NULL;
    for (;;) {
        size_t len = 0;
        char *end = NULL;
        while (!end) {
            if (len == REQ_BUF || !wait_readable(r, fd, -1)) goto out;
            ssize_t k = recv(fd, buf + len, REQ_BUF - len, 0);
            if (k <= 0) goto out;
            len += (size_t)k;
            buf[len] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        size_t head = (size_t)(end - buf) + 4, clen = 0;
        for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
            if (strncasecmp(h + 2, "Content-Length:", 15) == 0) clen = strtoul(h + 17, NULL, 10);
        while (len < head + clen) {
            if (len == REQ_BUF || !wait_readable(r, fd, -1)) goto out;
            ssize_t k = recv(fd, buf + len, REQ_BUF - len, 0);
            if (k <= 0) goto out;
            len += (size_t)k;
        }
        char *eol = strstr(buf, "\r\n");
        pthread_mutex_lock(&r->mu);
        r->requests++;
        snprintf(r->last_line, sizeof(r->last_line), "%.*s", (int)(eol - buf), buf);
        snprintf(r->last_headers, sizeof(r->last_headers), "%.*s", (int)(end + 2 - (eol + 2)), eol + 2);
        pthread_mutex_unlock(&r->mu);

        char path[512] = "";
        sscanf(buf, "%*s %511s", path);
        int n;
        char body[256], extra[128];
        if (sscanf(path, "/v1/deployment/d-%d", &n) == 1) {
            const char *ix = strstr(path, "index=");
            unsigned long long idx = ix ? strtoull(ix + 6, NULL, 10) : 0;
            if (!nap(r, (20 - n) * 15)) goto out;
            snprintf(body, sizeof(body), "{\"ID\":\"d-%d\"}", n);
            snprintf(extra, sizeof(extra), "X-Nomad-Index: %llu\r\n", idx + 1);
            if (!reply(fd, 200, body, extra)) goto out;
        } else if (strncmp(path, "/v1/fast/", 9) == 0) {
            if (!reply(fd, 200, "{\"ok\":true}", "X-Nomad-Index: 7\r\n")) goto out;
        } else if (strncmp(path, "/v1/hang", 8) == 0) {
            while (wait_readable(r, fd, -1) && recv(fd, buf, REQ_BUF, 0) > 0) {}
            goto out;
        } else if (strncmp(path, "/v1/big", 7) == 0) {
            snprintf(extra, sizeof(extra), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", NOMAD_MAX_BODY + 1);
            send_all(fd, extra, strlen(extra));
            static char chunk[65536];
            memset(chunk, 'x', sizeof(chunk));
            for (size_t left = (size_t)NOMAD_MAX_BODY + 1; left;) {
                size_t k = left < sizeof(chunk) ? left : sizeof(chunk);
                if (!send_all(fd, chunk, k)) break;
                left -= k;
            }
            goto out;
        } else if (strncmp(path, "/v1/status/500", 14) == 0) {
            if (!reply(fd, 500, "No cluster leader", NULL)) goto out;
        } else {
            if (!reply(fd, 404, "job not found", NULL)) goto out;
        }
    }
out:
    free(buf);
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg) {
    responder *r = arg;
    while (wait_readable(r, r->lfd, -1)) {
        int fd = accept(r->lfd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&r->mu);
        r->connections++;
        bool room = r->n_conns < MAX_CONNS;
        conn_arg *ca = room ? malloc(sizeof(*ca)) : NULL;
        if (ca) {
            ca->r = r;
            ca->fd = fd;
            r->conn_fds[r->n_conns] = fd;
            if (pthread_create(&r->conn_threads[r->n_conns], NULL, serve, ca) == 0) r->n_conns++;
            else free(ca), close(fd);
        } else {
            close(fd);
        }
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static int setup(void **state) {
    responder *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(r->lfd, 128), 0);
    socklen_t al = sizeof(a);
    getsockname(r->lfd, (struct sockaddr *)&a, &al);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pipe(r->stop), 0);
    pthread_mutex_init(&r->mu, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, accept_main, r), 0);
    *state = r;
    return 0;
}

static int teardown(void **state) {
    responder *r = *state;
    assert_int_equal(write(r->stop[1], "x", 1), 1);
    pthread_join(r->thread, NULL);
    for (size_t i = 0; i < r->n_conns; i++) {
        pthread_join(r->conn_threads[i], NULL);
        close(r->conn_fds[i]);
    }
    close(r->lfd);
    close(r->stop[0]);
    close(r->stop[1]);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return 0;
}

static int locked(responder *r, const int *field) {
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

static nomad_client *client(responder *r, const char *token, int64_t timeout_ms) {
    char addr[64];
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", r->port);
    config_nomad t = {.address = addr, .namespace = "prod", .region = "eu", .token = (char *)token,
                      .timeout_ms = timeout_ms};
    nomad_client *c = nomad_client_new(&t);
    assert_non_null(c);
    return c;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs l until nothing is pending or ms pass. */
static void run_until_idle(nomad_loop *l, int ms) {
    int64_t end = now_ms() + ms;
    while (nomad_loop_pending(l) > 0 && now_ms() < end) assert_true(nomad_loop_run(l, 200) >= 0);
}

/* ---- callbacks ---- */

typedef struct result {
    int calls;
    int code;
    long status;
    uint64_t index;
    char body[128];
    char errstr[256];
    int order;
} result;

static int completion_counter;

static void on_done(void *ud, const nomad_response *r) {
    result *res = ud;
    res->calls++;
    res->code = r->code;
    res->status = r->http_status;
    res->index = r->index;
    snprintf(res->body, sizeof(res->body), "%s", r->body);
    snprintf(res->errstr, sizeof(res->errstr), "%s", r->errstr);
    assert_true(strlen(r->body) == r->body_len);
    res->order = completion_counter++;
}

/* ---- tests ---- */

#define N_WATCH 20

static void start_round(nomad_loop *l, nomad_client *c, result *res, uint64_t base) {
    for (int i = 0; i < N_WATCH; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/deployment/d-%d", i);
        memset(&res[i], 0, sizeof(res[i]));
        assert_true(nomad_async(l, c, "GET", path, base + (uint64_t)i, 2000, NULL, on_done, &res[i]) > 0);
    }
}

static void test_concurrent_out_of_order_and_reuse(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "s3cr3t-token", 2000);
    nomad_loop *l = nomad_loop_new();
    assert_non_null(l);
    result res[N_WATCH];
    for (int round = 0; round < 3; round++) {
        completion_counter = 0;
        start_round(l, c, res, 100);
        assert_int_equal(nomad_loop_pending(l), N_WATCH);
        int64_t t0 = now_ms();
        run_until_idle(l, 5000);
        int64_t took = now_ms() - t0;
        assert_int_equal(nomad_loop_pending(l), 0);
        /* All in parallel: about the slowest answer (300 ms), not the sum (3 s). */
        assert_true(took < 1500);
        for (int i = 0; i < N_WATCH; i++) {
            assert_int_equal(res[i].calls, 1);
            assert_int_equal(res[i].code, NOMAD_OK);
            assert_int_equal(res[i].status, 200);
            assert_true(res[i].index == 100 + (uint64_t)i + 1);
            char want[32];
            snprintf(want, sizeof(want), "{\"ID\":\"d-%d\"}", i);
            assert_string_equal(res[i].body, want);
        }
        /* Answered out of order: the last one started finished first. */
        assert_true(res[N_WATCH - 1].order < res[0].order);
    }
    /* 60 blocking queries, 20 at a time: 20 connections, reused by every round. */
    int conns = locked(r, &r->connections);
    int reqs = locked(r, &r->requests);
    print_message("async: %d requests over %d connections (loop counted %llu)\n", reqs, conns,
                  (unsigned long long)nomad_loop_connects(l));
    assert_int_equal(reqs, 3 * N_WATCH);
    assert_int_equal(conns, N_WATCH);
    assert_true(nomad_loop_connects(l) == N_WATCH);
    pthread_mutex_lock(&r->mu);
    assert_non_null(strstr(r->last_line, "?namespace=prod&region=eu&index="));
    assert_non_null(strstr(r->last_line, "&wait=2000ms HTTP/1.1"));
    assert_non_null(strstr(r->last_headers, "X-Nomad-Token: s3cr3t-token\r\n"));
    pthread_mutex_unlock(&r->mu);
    nomad_loop_free(l);
    nomad_client_free(c);
}

static void test_cancel_and_free_pending(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "", 5000);
    nomad_loop *l = nomad_loop_new();
    result h1 = {0}, h2 = {0}, h3 = {0}, quick = {0};
    uint64_t a = nomad_async(l, c, "GET", "/v1/hang", 0, 0, NULL, on_done, &h1);
    uint64_t b = nomad_async(l, c, "GET", "/v1/hang", 0, 0, NULL, on_done, &h2);
    uint64_t d = nomad_async(l, c, "GET", "/v1/hang", 5, 1000, NULL, on_done, &h3);
    uint64_t q = nomad_async(l, c, "GET", "/v1/fast/x", 0, 0, NULL, on_done, &quick);
    assert_true(a > 0 && b > a && d > b && q > d);
    assert_int_equal(nomad_loop_pending(l), 4);
    assert_true(nomad_loop_run(l, 50) >= 0);   /* all sent */
    nomad_async_cancel(l, a);
    nomad_async_cancel(l, a);      /* twice: ignored */
    nomad_async_cancel(l, 9999);   /* unknown: ignored */
    nomad_async_cancel(l, b);
    int64_t end = now_ms() + 2000;
    while (quick.calls == 0 && now_ms() < end) nomad_loop_run(l, 100);
    assert_int_equal(quick.calls, 1);
    assert_int_equal(quick.code, NOMAD_OK);
    assert_true(quick.index == 7);
    assert_int_equal(nomad_loop_pending(l), 1);
    /* Freed with one in flight: its callback never runs. */
    nomad_loop_free(l);
    assert_int_equal(h1.calls + h2.calls + h3.calls, 0);
    nomad_client_free(c);
}

typedef struct waker {
    nomad_loop *l;
    int delay_ms;
} waker;

static void *wake_later(void *arg) {
    waker *w = arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)w->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    nomad_loop_wakeup(w->l);
    return NULL;
}

static void test_wakeup_from_another_thread(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "", 5000);
    nomad_loop *l = nomad_loop_new();
    result h = {0};
    assert_true(nomad_async(l, c, "GET", "/v1/hang", 0, 0, NULL, on_done, &h) > 0);
    waker w = {.l = l, .delay_ms = 150};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wake_later, &w), 0);
    int64_t t0 = now_ms();
    assert_int_equal(nomad_loop_run(l, 5000), 0);
    int64_t took = now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(took >= 100 && took < 2000);
    assert_int_equal(h.calls, 0);
    /* With nothing in flight the loop just waits: wakeup works there too. */
    nomad_async_cancel(l, 1);
    assert_int_equal(nomad_loop_pending(l), 0);
    assert_int_equal(pthread_create(&th, NULL, wake_later, &w), 0);
    t0 = now_ms();
    assert_int_equal(nomad_loop_run(l, 5000), 0);
    assert_true(now_ms() - t0 < 2000);
    pthread_join(th, NULL);
    /* No wakeup: a run waits out its timeout. */
    t0 = now_ms();
    assert_int_equal(nomad_loop_run(l, 100), 0);
    assert_true(now_ms() - t0 >= 90);
    nomad_loop_free(l);
    nomad_client_free(c);
}

static void test_errors_cap_timeout(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "s3cr3t-token", 300);
    nomad_loop *l = nomad_loop_new();
    result nf = {0}, e500 = {0}, big = {0}, slow = {0}, post = {0};
    assert_true(nomad_async(l, c, "GET", "/v1/job/nope", 0, 0, NULL, on_done, &nf) > 0);
    assert_true(nomad_async(l, c, "GET", "/v1/status/500", 0, 0, NULL, on_done, &e500) > 0);
    assert_true(nomad_async(l, c, "GET", "/v1/big", 0, 0, NULL, on_done, &big) > 0);
    assert_true(nomad_async(l, c, "GET", "/v1/hang", 0, 0, NULL, on_done, &slow) > 0);
    assert_true(nomad_async(l, c, "POST", "/v1/fast/post?x=1", 0, 0, "{\"a\":1}", on_done, &post) > 0);
    int64_t t0 = now_ms();
    run_until_idle(l, 5000);
    assert_int_equal(nomad_loop_pending(l), 0);
    assert_int_equal(nf.code, NOMAD_ERR_NOT_FOUND);
    assert_int_equal(nf.status, 404);
    assert_string_equal(nf.errstr, "HTTP 404: job not found");
    assert_int_equal(e500.code, NOMAD_ERR_HTTP);
    assert_string_equal(e500.errstr, "HTTP 500: No cluster leader");
    assert_int_equal(big.code, NOMAD_ERR_TOO_LARGE);
    assert_non_null(strstr(big.errstr, "larger than 8388608 bytes"));
    assert_int_equal(slow.code, NOMAD_ERR_TIMEOUT);   /* the client's 300 ms per-call timeout */
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(post.code, NOMAD_OK);
    assert_string_equal(post.body, "{\"ok\":true}");
    const result *all[] = {&nf, &e500, &big, &slow, &post};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) assert_null(strstr(all[i]->errstr, "s3cr3t-token"));

    /* Refused before starting: no id, no callback. */
    result none = {0};
    assert_true(nomad_async(l, c, "GET", "v1/no-slash", 0, 0, NULL, on_done, &none) == 0);
    assert_true(nomad_async(l, c, "GET", "/v1/a b", 0, 0, NULL, on_done, &none) == 0);
    assert_true(nomad_async(l, c, "PATCH", "/v1/x", 0, 0, NULL, on_done, &none) == 0);
    assert_true(nomad_async(l, c, "GET", "/v1/x", 0, 0, NULL, NULL, &none) == 0);
    assert_true(nomad_async(NULL, c, "GET", "/v1/x", 0, 0, NULL, on_done, &none) == 0);
    assert_int_equal(nomad_loop_pending(l), 0);
    assert_int_equal(nomad_loop_run(l, 0), 0);
    assert_int_equal(none.calls, 0);
    nomad_loop_free(l);
    nomad_client_free(c);

    /* A token that would split the header is refused at start too. */
    char addr[64];
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", r->port);
    config_nomad t = {.address = addr, .namespace = "prod", .token = "a\r\nb", .timeout_ms = 1000};
    c = nomad_client_new(&t);
    l = nomad_loop_new();
    assert_true(nomad_async(l, c, "GET", "/v1/fast/x", 0, 0, NULL, on_done, &none) == 0);
    nomad_loop_free(l);
    nomad_client_free(c);
}

/* A callback that starts the next query: how a watcher re-arms. */
typedef struct chain {
    nomad_loop *l;
    nomad_client *c;
    int left;
    uint64_t last_index;
} chain;

static void on_chain(void *ud, const nomad_response *r) {
    chain *ch = ud;
    assert_int_equal(r->code, NOMAD_OK);
    ch->last_index = r->index;
    if (--ch->left > 0) assert_true(nomad_async(ch->l, ch->c, "GET", "/v1/deployment/d-19", r->index, 1000, NULL,
                                                on_chain, ch) > 0);
}

static void test_rearm_in_callback(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "", 2000);
    nomad_loop *l = nomad_loop_new();
    chain ch = {.l = l, .c = c, .left = 10};
    assert_true(nomad_async(l, c, "GET", "/v1/deployment/d-19", 1, 1000, NULL, on_chain, &ch) > 0);
    run_until_idle(l, 5000);
    assert_int_equal(ch.left, 0);
    assert_true(ch.last_index == 11);
    assert_int_equal(locked(r, &r->connections), 1);   /* one connection for the whole chain */
    nomad_loop_free(l);
    nomad_client_free(c);
}

/* Throughput: 2000 quick requests, 50 in flight. Printed, loosely checked. */
typedef struct pump {
    nomad_loop *l;
    nomad_client *c;
    int to_start, done;
} pump;

static void on_pump(void *ud, const nomad_response *r) {
    pump *p = ud;
    assert_int_equal(r->code, NOMAD_OK);
    p->done++;
    if (p->to_start > 0) {
        p->to_start--;
        assert_true(nomad_async(p->l, p->c, "GET", "/v1/fast/p", 0, 0, NULL, on_pump, p) > 0);
    }
}

static void test_throughput(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "", 2000);
    nomad_loop *l = nomad_loop_new();
    pump p = {.l = l, .c = c, .to_start = 2000 - 50};
    for (int i = 0; i < 50; i++) assert_true(nomad_async(l, c, "GET", "/v1/fast/p", 0, 0, NULL, on_pump, &p) > 0);
    int64_t t0 = now_ms();
    run_until_idle(l, 8000);
    int64_t took = now_ms() - t0;
    assert_int_equal(p.done, 2000);
    int conns = locked(r, &r->connections);
    print_message("async: 2000 requests in %lld ms (%.0f/s), %d connections\n", (long long)took,
                  took > 0 ? 2000.0 * 1000.0 / (double)took : 0.0, conns);
    assert_true(conns <= 50);
    nomad_loop_free(l);
    nomad_client_free(c);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_out_of_order_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wakeup_from_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_cap_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rearm_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
