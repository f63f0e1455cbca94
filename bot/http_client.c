/* bot/http_client.c: libcurl's multi interface on a libuv loop (http_client.h).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to wake it (CURLMOPT_TIMERFUNCTION); a uv_poll_t per socket and one
 * uv_timer_t feed those events back with curl_multi_socket_action(), after
 * which finished transfers are read off curl_multi_info_read() and their
 * callbacks run. A completion callback never runs inside a curl callback,
 * so it may add transfers or close the client. */
#include "http_client.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"

#define POOL 16                         /* idle easy handles kept for reuse */
#define DEFAULT_MAX_RESPONSE (16u << 20)
#define MAX_METHOD 16
#define MAX_RETRY_AFTER_S 86400         /* a longer wait is treated as a day */

typedef struct sock_ctx {
    uv_poll_t poll;                     /* first: the handle's address is the context's */
    curl_socket_t fd;
    struct http_client *c;
    struct sock_ctx *prev, *next;
} sock_ctx;

typedef struct transfer {
    struct transfer *prev, *next;
    struct http_client *c;
    CURL *easy;
    struct curl_slist *hdrs;
    char *req_body;
    nm_buf body;                        /* response body, ceiling max_response */
    nm_buf rhdr;                        /* final response's headers: "name\0value\0" pairs */
    bool too_large, nomem;
    int retry_after_s;
    uint64_t start_ns;
    http_done_cb cb;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    transfer *head;
    int n;
    sock_ctx *socks;
    size_t max_response;
    char *ca_file;
    bool verify;
    bool closing;
    int handles_open;                   /* the timer and poll handles not yet closed */
    CURL *pool[POOL];
    size_t n_pool;
};

const char *http_strerror(int code) {
    switch (code) {
    case HTTP_OK: return "ok";
    case HTTP_ERR_CONNECT: return "connection failed";
    case HTTP_ERR_TIMEOUT: return "timed out";
    case HTTP_ERR_TOO_LARGE: return "response too large";
    case HTTP_ERR_NOMEM: return "out of memory";
    case HTTP_ERR_CLOSED: return "client closed";
    case HTTP_ERR_INVAL: return "invalid request";
    default: return "unknown http error";
    }
}

/* ---- handles and freeing ----------------------------------------------- */

static void maybe_free(http_client *c) {
    if (!c->closing || c->handles_open > 0) return;
    free(c->ca_file);
    free(c);
}

static void timer_closed(uv_handle_t *h) {
    http_client *c = h->data;
    c->handles_open--;
    maybe_free(c);
}

static void sock_closed(uv_handle_t *h) {
    sock_ctx *s = (sock_ctx *)h;
    http_client *c = s->c;
    free(s);
    c->handles_open--;
    maybe_free(c);
}

/* Stops watching and closes the poll handle now: curl closes the socket
 * right after telling us, and libuv must be done with the fd by then. */
static void sock_drop(http_client *c, sock_ctx *s) {
    if (s->prev) s->prev->next = s->next;
    else c->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void dispatch(http_client *c);

static void on_poll(uv_poll_t *p, int status, int events) {
    sock_ctx *s = (sock_ctx *)p;
    http_client *c = s->c;
    int flags = 0, running = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    dispatch(c);
}

static void on_timer(uv_timer_t *t) {
    http_client *c = t->data;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    dispatch(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "soon, but not from
 * inside this callback", which a 0 ms uv timer gives. */
static int curl_timer_cb(CURLM *m, long timeout_ms, void *userp) {
    (void)m;
    http_client *c = userp;
    if (c->closing) return 0;
    if (timeout_ms < 0) uv_timer_stop(&c->timer);
    else uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION */
static int curl_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)e;
    http_client *c = userp;
    sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (!c->closing) curl_multi_assign(c->multi, fd, NULL);
            sock_drop(c, s);
        }
        return 0;
    }
    if (c->closing) return 0;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->next = c->socks;
        if (c->socks) c->socks->prev = s;
        c->socks = s;
        c->handles_open++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* ---- client ------------------------------------------------------------ */

http_client *http_client_new(uv_loop_t *loop, size_t max_response, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    http_client *c = calloc(1, sizeof(*c));
    if (!c) {
        if (err) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->max_response = max_response ? max_response : DEFAULT_MAX_RESPONSE;
    c->verify = true;
    c->multi = curl_multi_init();
    if (!c->multi) {
        if (err) snprintf(err, errlen, "curl_multi_init failed");
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)HTTP_CLIENT_MAXCONNECTS);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    return c;
}

int http_client_set_tls(http_client *c, const char *ca_file, bool verify) {
    char *copy = NULL;
    if (ca_file && !(copy = strdup(ca_file))) return HTTP_ERR_NOMEM;
    free(c->ca_file);
    c->ca_file = copy;
    c->verify = verify;
    return HTTP_OK;
}

int http_client_pending(const http_client *c) { return c ? c->n : 0; }

static void unlink_transfer(http_client *c, transfer *t) {
    if (t->prev) t->prev->next = t->next;
    else c->head = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    c->n--;
}

/* Frees t; its easy handle (already out of the multi) goes back to the pool. */
static void release(http_client *c, transfer *t) {
    if (t->easy) {
        if (!c->closing && c->n_pool < POOL) {
            curl_easy_reset(t->easy);   /* nothing of this request leaks into the next */
            c->pool[c->n_pool++] = t->easy;
        } else {
            curl_easy_cleanup(t->easy);
        }
    }
    curl_slist_free_all(t->hdrs);
    free(t->req_body);
    nm_buf_free(&t->body);
    nm_buf_free(&t->rhdr);
    free(t);
}

static bool method_ok(const char *m) {
    size_t n = strlen(m);
    if (n == 0 || n > MAX_METHOD) return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z') return false;
    return true;
}

static bool url_ok(const char *u) {
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0) return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return false;
    return true;
}

static bool header_ok(const char *h) {
    const char *colon = strchr(h, ':');
    if (!colon || colon == h) return false;
    for (const char *p = h; *p; p++)
        if (*p == '\r' || *p == '\n') return false;
    return true;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    transfer *t = ud;
    size_t n = size * nmemb;
    int rc = nm_buf_append(&t->body, ptr, n);
    if (rc == NM_BUF_TOO_LARGE) t->too_large = true;
    if (rc == NM_BUF_NOMEM) t->nomem = true;
    return rc == NM_BUF_OK ? n : 0;   /* anything else aborts the transfer */
}

static int parse_retry_after(const char *v) {
    while (*v == ' ' || *v == '\t') v++;
    if (*v >= '0' && *v <= '9') {
        long s = 0;
        for (; *v >= '0' && *v <= '9'; v++) {
            s = s * 10 + (*v - '0');
            if (s > MAX_RETRY_AFTER_S) return MAX_RETRY_AFTER_S;
        }
        while (*v == ' ' || *v == '\t') v++;
        return *v ? -1 : (int)s;
    }
    time_t when = curl_getdate(v, NULL);   /* an HTTP-date */
    if (when == (time_t)-1) return -1;
    double d = difftime(when, time(NULL));
    if (d < 0) return 0;
    return d > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : (int)d;
}

/* One header line at a time, status lines included: a new status line
 * starts a new response (after a 100 Continue, say), so only the final
 * response's headers are kept. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    transfer *t = ud;
    size_t n = size * nmemb, len = n;
    while (len && (ptr[len - 1] == '\r' || ptr[len - 1] == '\n')) len--;
    if (len >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        nm_buf_reset(&t->rhdr);
        t->retry_after_s = -1;
        return n;
    }
    if (len == 0 || ptr[0] == ' ' || ptr[0] == '\t') return n;   /* end of block, obsolete folding */
    const char *colon = memchr(ptr, ':', len);
    if (!colon) return n;
    size_t nlen = (size_t)(colon - ptr);
    const char *v = colon + 1, *end = ptr + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t vlen = (size_t)(end - v);
    char nul = '\0';
    int rc = nm_buf_append(&t->rhdr, ptr, nlen);
    if (!rc) rc = nm_buf_append(&t->rhdr, &nul, 1);
    if (!rc) rc = nm_buf_append(&t->rhdr, v, vlen);
    if (!rc) rc = nm_buf_append(&t->rhdr, &nul, 1);
    if (rc == NM_BUF_TOO_LARGE) t->too_large = true;
    if (rc == NM_BUF_NOMEM) t->nomem = true;
    if (rc) return 0;
    if (nlen == 11 && strncasecmp(ptr, "Retry-After", 11) == 0) {
        char tmp[128];
        if (vlen < sizeof(tmp)) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            t->retry_after_s = parse_retry_after(tmp);
        }
    }
    return n;
}

const char *http_response_header(const http_response *res, const char *name) {
    if (!res || !res->priv_ || !name) return NULL;
    const nm_buf *b = &((const transfer *)res->priv_)->rhdr;
    size_t i = 0;
    while (b->data && i < b->len) {
        const char *k = b->data + i;
        size_t kl = strlen(k);
        const char *v = k + kl + 1;
        if (strcasecmp(k, name) == 0) return v;
        i += kl + 1 + strlen(v) + 1;
    }
    return NULL;
}

/* Sets up t->easy for req; false when out of memory. */
static bool prepare(http_client *c, transfer *t, const http_request *req) {
    CURL *e = t->easy;
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTP_CLIENT_TIMEOUT_MS;
    long connect = timeout < HTTP_CLIENT_CONNECT_TIMEOUT_MS ? timeout : HTTP_CLIENT_CONNECT_TIMEOUT_MS;
    bool ok = true;
#define SET(opt, val) ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PRIVATE, (void *)t);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)t);
    SET(CURLOPT_TIMEOUT_MS, timeout);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);   /* refuses a too-long Content-Length early */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, c->verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, c->verify ? 2L : 0L);
    if (c->ca_file) SET(CURLOPT_CAINFO, c->ca_file);
    if (t->hdrs) SET(CURLOPT_HTTPHEADER, t->hdrs);
    const char *m = req->method;
    if (strcmp(m, "GET") == 0 && !req->body) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(m, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, m);
        if (req->body || strcmp(m, "POST") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
            SET(CURLOPT_POSTFIELDS, t->req_body);
        }
    }
#undef SET
    return ok;
}

int http_client_send(http_client *c, const http_request *req, http_done_cb cb, void *ud) {
    if (!c || c->closing) return HTTP_ERR_CLOSED;
    if (!req || !cb || !req->method || !req->url || !method_ok(req->method) || !url_ok(req->url) ||
        (req->body_len && !req->body))
        return HTTP_ERR_INVAL;
    if (req->headers)
        for (const char *const *h = req->headers; *h; h++)
            if (!header_ok(*h)) return HTTP_ERR_INVAL;
    transfer *t = calloc(1, sizeof(*t));
    if (!t) return HTTP_ERR_NOMEM;
    t->c = c;
    t->retry_after_s = -1;
    nm_buf_init(&t->body, c->max_response);
    nm_buf_init(&t->rhdr, HTTP_CLIENT_MAX_HEADERS);
    int rc = HTTP_ERR_NOMEM;
    if (req->headers) {
        for (const char *const *h = req->headers; *h; h++) {
            struct curl_slist *l = curl_slist_append(t->hdrs, *h);
            if (!l) goto fail;
            t->hdrs = l;
        }
    }
    t->req_body = malloc(req->body ? req->body_len + 1 : 1);
    if (!t->req_body) goto fail;
    if (req->body && req->body_len) memcpy(t->req_body, req->body, req->body_len);
    t->req_body[req->body ? req->body_len : 0] = '\0';
    t->easy = c->n_pool ? c->pool[--c->n_pool] : curl_easy_init();
    if (!t->easy || !prepare(c, t, req)) goto fail;
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) goto fail;
    t->cb = cb;
    t->ud = ud;
    t->start_ns = uv_hrtime();
    t->next = c->head;
    if (c->head) c->head->prev = t;
    c->head = t;
    c->n++;
    return HTTP_OK;
fail:
    release(c, t);
    return rc;
}

static void complete(transfer *t, int code, long status, const char *error) {
    http_response r = {
        .code = code,
        .status = code == HTTP_OK ? status : 0,
        .body = code == HTTP_OK && t->body.data ? t->body.data : "",
        .len = code == HTTP_OK && t->body.data ? t->body.len : 0,
        .retry_after_s = code == HTTP_OK ? t->retry_after_s : -1,
        .error = code == HTTP_OK ? "" : error,
        .total_ms = (double)(uv_hrtime() - t->start_ns) / 1e6,
        .priv_ = code == HTTP_OK ? t : NULL,
    };
    t->cb(t->ud, &r);
}

static void finish(transfer *t, CURLcode result) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    int code;
    switch (result) {
    case CURLE_OK: code = HTTP_OK; break;
    case CURLE_OPERATION_TIMEDOUT: code = HTTP_ERR_TIMEOUT; break;
    case CURLE_FILESIZE_EXCEEDED: code = HTTP_ERR_TOO_LARGE; break;
    case CURLE_OUT_OF_MEMORY: code = HTTP_ERR_NOMEM; break;
    case CURLE_WRITE_ERROR:
        code = t->too_large ? HTTP_ERR_TOO_LARGE : t->nomem ? HTTP_ERR_NOMEM : HTTP_ERR_CONNECT;
        break;
    default: code = HTTP_ERR_CONNECT; break;
    }
    const char *error = "";
    if (code == HTTP_ERR_TOO_LARGE) error = t->errbuf[0] && result == CURLE_FILESIZE_EXCEEDED ? t->errbuf
                                            : "response larger than the client's limit";
    else if (code != HTTP_OK) error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(result);
    complete(t, code, status, error);
}

/* Runs the callbacks of finished transfers until none is left or a
 * callback closed the client. */
static void dispatch(http_client *c) {
    CURLMsg *m;
    int left;
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode result = m->data.result;   /* m is gone after remove_handle */
        transfer *t = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(c->multi, e);
        if (!t) continue;
        unlink_transfer(c, t);
        finish(t, result);
        release(c, t);
    }
}

void http_client_close(http_client *c) {
    if (!c || c->closing) return;
    c->closing = true;
    while (c->head) {
        transfer *t = c->head;
        unlink_transfer(c, t);
        curl_multi_remove_handle(c->multi, t->easy);
        complete(t, HTTP_ERR_CLOSED, 0, "client closed");
        release(c, t);
    }
    for (size_t i = 0; i < c->n_pool; i++) curl_easy_cleanup(c->pool[i]);
    c->n_pool = 0;
    /* Closes the cached connections (their sockets come back as REMOVE). */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks) sock_drop(c, c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}
