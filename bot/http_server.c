/* bot/http_server.c: an HTTP/1.1 listener on lws 4.1 and the bot's libuv
 * loop (http_server.h).
 *
 * Objects:
 *   http_server    one lws context (foreign libuv loop) with one vhost, the
 *                  route table, a uv_timer_t for request deadlines and a
 *                  uv_idle_t that drives the close.
 *   conn           one TCP connection, hung on the wsi's opaque user data
 *                  (lws frees per-request user space between keep-alive
 *                  requests, so it cannot hold state across them).
 *   http_exchange  one request, from its headers to the last byte of the
 *                  answer: X_BODY (reading) -> X_HANDLER (the handler has
 *                  it) -> X_RESPONDING (writing the answer), and X_LINGER
 *                  after an early answer that closes the connection.
 *
 * Lingering close: when the server answers (413, 400, 404, ...) and closes
 * while the client may still be sending its body, closing at once would
 * reset the connection and the client would likely never read the answer.
 * So we shut our side, keep reading and dropping what comes (at most
 * max_body bytes, for at most request_timeout_ms), and close when the
 * client does.
 *
 * Every exchange sits on one list ordered by deadline: they all get the
 * same request_timeout_ms, and a phase change moves an exchange to the
 * tail with a fresh deadline, so the head is always the next to expire and
 * one timer is enough.
 *
 * lws 4.1 peculiarities handled here:
 *  - It never decodes a chunked request body: for POST/PUT/PATCH without
 *    Content-Length it passes up to 100 MiB of raw bytes as the body. A
 *    Transfer-Encoding: chunked body is therefore decoded here, and the
 *    connection is closed after the answer (lws would wait for the rest).
 *  - It never sends "100 Continue"; we do, when a body will be read.
 *  - While a GET waits for its handler, lws neither reads the socket nor
 *    stops polling it, so a client that goes away makes the loop spin. We
 *    switch lws's reading off (rx flow control) until the answer is queued
 *    (lws also writes nothing while it is off) and watch for the hang-up
 *    ourselves, on a dup() of the socket: libuv allows one poll handle per
 *    fd number, and epoll keys on the number.
 *  - The context is made and destroyed through lws_uv.c (two-phase destroy
 *    on a foreign loop, lws's double close of its event fd).
 */
#include "http_server.h"

#include <libwebsockets.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "lws_uv.h"

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_HEADER 8192
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNECTIONS 256
#define DEFAULT_KEEPALIVE_S 5
#define WRITE_CHUNK 16384          /* body bytes per writeable callback */
#define MAX_CHUNK_META 4096        /* chunk extensions + trailers per request */
#define MAX_METHOD 16
#define MAX_HEADER_NAME 64

enum { X_BODY, X_HANDLER, X_RESPONDING, X_LINGER };
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE,
       CH_TRAILER_LINE_LF, CH_TRAILER_LF, CH_DONE };

/* Watches a waiting exchange's socket for the client hanging up. */
typedef struct hup_watch {
    uv_poll_t poll;              /* first: the handle's address is the watch's */
    struct http_server *s;
    struct http_exchange *x;     /* NULL once stopped */
    int fd;                      /* our dup of the connection's socket */
} hup_watch;

typedef struct route {
    char method[MAX_METHOD];
    char *path;
    http_handler h;
    void *ud;
} route;

typedef struct conn {
    struct http_server *s;
    struct lws *wsi;             /* NULL once lws has closed it */
    struct http_exchange *x;     /* the request in progress, if any */
    struct conn *prev, *next;
} conn;

struct http_exchange {
    struct http_server *s;
    conn *c;                     /* NULL once the connection is gone */
    struct http_exchange *prev, *next;   /* the deadline list */
    uint64_t deadline;           /* uv_now() ms */
    int state;
    bool in_handler, head, chunked, close_after, hdr_sent, warned, rx_off;
    bool lws_body;               /* lws is reading a request body (so it will see the client's close) */
    bool shut;                   /* X_LINGER: our side is shut */
    size_t drained;              /* X_LINGER: body bytes dropped */
    hup_watch *hup;
    const route *rt;
    http_request_in req;
    char method[MAX_METHOD];
    char *path, *query;
    char *args;                  /* the query's decoded arguments, each NUL-terminated */
    size_t args_len;
    char content_type[256];
    char remote[64];
    nm_buf body;
    /* chunked decoding */
    int ch_state, ch_digits;
    uint64_t ch_left;
    size_t ch_meta;
    /* abort */
    void (*abort_cb)(void *);
    void *abort_ud;
    /* the answer */
    unsigned char *out;          /* LWS_PRE + header block */
    unsigned char *hp, *hend;    /* header write cursor and end */
    char *resp;
    size_t resp_len, resp_off;
};

struct http_server {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];
    http_server_limits lim;
    route routes[HTTP_SERVER_MAX_ROUTES];
    size_t n_routes;
    conn *conns;
    http_exchange *xhead, *xtail;
    uv_timer_t timer;            /* the head exchange's deadline */
    lws_uv *lu;                  /* the context's safe destroy */
    bool closing;
    int handles_open;
    char iface[64];
    http_server_stats stats;
    unsigned char scratch[LWS_PRE + WRITE_CHUNK];
};

const char *http_server_strerror(int code) {
    switch (code) {
    case HTTP_SERVER_OK: return "ok";
    case HTTP_SERVER_ERR_INVAL: return "invalid argument";
    case HTTP_SERVER_ERR_NOMEM: return "out of memory";
    case HTTP_SERVER_ERR_STATE: return "exchange already answered or gone";
    case HTTP_SERVER_ERR_FULL: return "route table full";
    default: return "unknown http server error";
    }
}

static void server_unref(http_server *s);

/* ---- deadlines ---------------------------------------------------------- */

static void on_deadline(uv_timer_t *t);

static void arm(http_server *s) {
    if (s->closing) return;
    if (!s->xhead) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(s->loop);
    uv_timer_start(&s->timer, on_deadline, s->xhead->deadline > now ? s->xhead->deadline - now : 0, 0);
}

static void x_unlink(http_exchange *x) {
    http_server *s = x->s;
    if (x->prev) x->prev->next = x->next;
    else if (s->xhead == x) s->xhead = x->next;
    if (x->next) x->next->prev = x->prev;
    else if (s->xtail == x) s->xtail = x->prev;
    x->prev = x->next = NULL;
}

/* (Re)starts x's deadline: it goes to the tail of the list. */
static void x_restart(http_exchange *x) {
    http_server *s = x->s;
    x_unlink(x);
    x->deadline = uv_now(s->loop) + (uint64_t)s->lim.request_timeout_ms;
    x->prev = s->xtail;
    if (s->xtail) s->xtail->next = x;
    else s->xhead = x;
    s->xtail = x;
    arm(s);
}

static void hup_stop(http_exchange *x);

static void x_free(http_exchange *x) {
    http_server *s = x->s;
    hup_stop(x);
    x_unlink(x);
    if (x->c) x->c->x = NULL;
    free(x->path);
    free(x->query);
    free(x->args);
    nm_buf_free(&x->body);
    free(x->out);
    free(x->resp);
    free(x);
    s->stats.exchanges--;
    arm(s);
}

/* ---- answering ---------------------------------------------------------- */

static const char *reason_phrase(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

static bool token_char(unsigned char ch) {
    return isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* "Name: value" with a token name and no control bytes in the value. */
static bool header_line_ok(const char *h, size_t *nlen) {
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || (size_t)(colon - h) >= MAX_HEADER_NAME) return false;
    for (const char *p = h; p < colon; p++)
        if (!token_char((unsigned char)*p)) return false;
    for (const char *p = colon + 1; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t') return false;
    static const char *const ours[] = {"content-length", "content-type", "connection", "transfer-encoding"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (strlen(ours[i]) == (size_t)(colon - h) && strncasecmp(h, ours[i], (size_t)(colon - h)) == 0)
            return false;
    *nlen = (size_t)(colon - h);
    return true;
}

/* Builds the header block and queues the answer; x goes to X_RESPONDING. */
static int queue_answer(http_exchange *x, int status, const char *ctype, const char *const *headers,
                        const char *body, size_t len) {
    struct lws *wsi = x->c->wsi;
    size_t cap = 512 + (ctype ? strlen(ctype) : 0);
    if (headers)
        for (const char *const *h = headers; *h; h++) cap += strlen(*h) + 8;
    unsigned char *out = malloc(LWS_PRE + cap);
    char *copy = len ? malloc(len) : NULL;
    if (!out || (len && !copy)) {
        free(out);
        free(copy);
        return HTTP_SERVER_ERR_NOMEM;
    }
    if (len) memcpy(copy, body, len);
    unsigned char *start = out + LWS_PRE, *p = start, *end = start + cap;
    char line[64];
    /* Our own status line: lws 4.1 knows few reason phrases (none for 429). */
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s", status, reason_phrase(status));
    bool bad = lws_add_http_header_by_name(wsi, NULL, (const unsigned char *)line, n, &p, end) != 0;
    bad = bad || lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SERVER, (const unsigned char *)"nomatron", 8,
                                              &p, end);
    static const char *const sec[][2] = {{"x-content-type-options:", "nosniff"},
                                         {"x-frame-options:", "deny"},
                                         {"referrer-policy:", "no-referrer"}};
    for (size_t i = 0; i < sizeof(sec) / sizeof(sec[0]) && !bad; i++)
        bad = lws_add_http_header_by_name(wsi, (const unsigned char *)sec[i][0], (const unsigned char *)sec[i][1],
                                          (int)strlen(sec[i][1]), &p, end) != 0;
    if (ctype && *ctype)
        bad = bad || lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ctype,
                                                  (int)strlen(ctype), &p, end);
    bad = bad || lws_add_http_header_content_length(wsi, (lws_filepos_t)len, &p, end);
    if (x->close_after)
        bad = bad || lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                                  &p, end);
    if (headers) {
        for (const char *const *h = headers; *h && !bad; h++) {
            size_t nlen = 0;
            header_line_ok(*h, &nlen);   /* checked by the caller */
            char name[MAX_HEADER_NAME + 2];
            memcpy(name, *h, nlen);
            name[nlen] = ':';
            name[nlen + 1] = '\0';
            const char *v = *h + nlen + 1;
            while (*v == ' ' || *v == '\t') v++;
            bad = lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)v,
                                              (int)strlen(v), &p, end) != 0;
        }
    }
    if (bad) {
        free(out);
        free(copy);
        return HTTP_SERVER_ERR_INVAL;
    }
    free(x->out);
    free(x->resp);
    x->out = out;
    x->hp = p;
    x->hend = end;
    x->resp = copy;
    x->resp_len = x->head ? 0 : len;
    x->resp_off = 0;
    x->state = X_RESPONDING;
    hup_stop(x);
    if (x->rx_off) {   /* lws writes nothing on a connection whose reading is off */
        lws_rx_flow_control(wsi, 1);
        x->rx_off = false;
    }
    x_restart(x);   /* the client gets request_timeout_ms to read the answer */
    lws_callback_on_writable(wsi);
    return HTTP_SERVER_OK;
}

/* The server's own answers: a constant text, so a fixed JSON template is safe. */
static void reject(http_exchange *x, int status, const char *msg, const char *allow) {
    http_server *s = x->s;
    char body[160], allow_h[160];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"status\":%d}", msg, status);
    const char *extra[2] = {NULL, NULL};
    if (allow) {
        snprintf(allow_h, sizeof(allow_h), "Allow: %s", allow);
        extra[0] = allow_h;
    }
    if (status >= 400 && status < 500 && status != 408) s->stats.rejected++;
    if (queue_answer(x, status, "application/json", extra, body, (size_t)n) != HTTP_SERVER_OK) {
        /* Out of memory: drop the connection rather than leave it hanging. */
        conn *c = x->c;
        x_free(x);
        if (c && c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

static void reject_close(http_exchange *x, int status, const char *msg) {
    x->close_after = true;
    reject(x, status, msg, NULL);
}

int http_respond_headers(http_exchange *x, int status, const char *content_type, const char *const *headers,
                         const char *body, size_t len) {
    if (!x || status < 200 || status > 599 || (len && !body)) return HTTP_SERVER_ERR_INVAL;
    if (x->state != X_HANDLER || !x->c || !x->c->wsi || x->s->closing) return HTTP_SERVER_ERR_STATE;
    if (content_type)
        for (const char *p = content_type; *p; p++)
            if ((unsigned char)*p < 0x20) return HTTP_SERVER_ERR_INVAL;
    if (headers)
        for (const char *const *h = headers; *h; h++) {
            size_t nlen;
            if (!header_line_ok(*h, &nlen)) return HTTP_SERVER_ERR_INVAL;
        }
    return queue_answer(x, status, content_type, headers, body, len);
}

int http_respond(http_exchange *x, int status, const char *content_type, const char *body, size_t len) {
    return http_respond_headers(x, status, content_type, NULL, body, len);
}

void http_exchange_on_abort(http_exchange *x, void (*cb)(void *ud), void *ud) {
    if (!x) return;
    x->abort_cb = cb;
    x->abort_ud = ud;
}

const http_request_in *http_exchange_request(const http_exchange *x) { return x ? &x->req : NULL; }

/* ---- client hang-up while a handler holds the request --------------------- */

static void hup_closed(uv_handle_t *h) {
    hup_watch *w = (hup_watch *)h;
    http_server *s = w->s;
    free(w);
    server_unref(s);
}

static void hup_stop(http_exchange *x) {
    hup_watch *w = x->hup;
    if (!w) return;
    x->hup = NULL;
    w->x = NULL;
    int fd = w->fd;
    uv_close((uv_handle_t *)&w->poll, hup_closed);   /* stops polling fd now */
    close(fd);
}

static void conn_gone(conn *c);

static void on_hup(uv_poll_t *p, int status, int events) {
    (void)status;
    (void)events;
    hup_watch *w = (hup_watch *)p;
    http_exchange *x = w->x;
    if (!x) return;
    conn *c = x->c;
    struct lws *wsi = c ? c->wsi : NULL;
    hup_stop(x);
    if (!c) return;
    conn_gone(c);   /* aborts x */
    if (wsi) lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* The handler kept x: stop lws reading (see the top) and watch for a hang-up. */
static void hup_start(http_exchange *x) {
    http_server *s = x->s;
    struct lws *wsi = x->c->wsi;
    lws_rx_flow_control(wsi, 0);
    x->rx_off = true;
    int fd = fcntl(lws_get_socket_fd(wsi), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return;   /* then only the deadline ends a vanished client's request */
    hup_watch *w = calloc(1, sizeof(*w));
    if (!w || uv_poll_init(s->loop, &w->poll, fd) != 0) {
        free(w);
        close(fd);
        return;
    }
    w->s = s;
    w->x = x;
    w->fd = fd;
    x->hup = w;
    s->handles_open++;
    uv_poll_start(&w->poll, UV_DISCONNECT, on_hup);
}

/* ---- requests ----------------------------------------------------------- */

static void dispatch(http_exchange *x) {
    http_server *s = x->s;
    x->state = X_HANDLER;
    x->req.body = x->body.data ? x->body.data : "";
    x->req.body_len = x->body.len;
    x_restart(x);   /* the handler gets request_timeout_ms to answer */
    if (x->c && x->c->wsi) lws_set_timeout(x->c->wsi, NO_PENDING_TIMEOUT, 0);   /* ours runs now */
    s->stats.requests++;
    x->in_handler = true;
    x->rt->h(x->rt->ud, x, &x->req);
    x->in_handler = false;
    if (x->state != X_HANDLER) return;
    if (!x->c || s->closing) {   /* the handler closed the server */
        x_free(x);
        return;
    }
    if (!x->abort_cb && !x->warned) {
        x->warned = true;
        nm_log(NM_LOG_WARN, "http: handler kept a request without an abort callback", "path", x->path, NULL);
    }
    hup_start(x);
}

static const char *method_of(struct lws *wsi, bool *has_body_method) {
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
        bool body;
    } m[] = {
        {WSI_TOKEN_GET_URI, "GET", false},       {WSI_TOKEN_POST_URI, "POST", true},
        {WSI_TOKEN_PUT_URI, "PUT", true},        {WSI_TOKEN_PATCH_URI, "PATCH", true},
        {WSI_TOKEN_DELETE_URI, "DELETE", false}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS", false},
        {WSI_TOKEN_HEAD_URI, "HEAD", false},     {WSI_TOKEN_CONNECT, "CONNECT", false},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (lws_hdr_total_length(wsi, m[i].tok)) {
            *has_body_method = m[i].body;
            return m[i].name;
        }
    return NULL;
}

/* lws keeps the query as decoded arguments (split on '&' and ';'): joined
 * with '&' for http_request_in.query, and kept apart for lookups, since a
 * decoded value may itself hold a '&'. */
static bool query_of(http_exchange *x, struct lws *wsi) {
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    x->query = malloc((size_t)total + 2);
    x->args = malloc((size_t)total + 2);
    if (!x->query || !x->args) return false;
    size_t len = 0;
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, x->args + len, total + 2 - (int)len, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) break;   /* the buffer holds them all: this is the end */
        memcpy(x->query + len, x->args + len, (size_t)n);
        x->query[len + (size_t)n] = '&';
        len += (size_t)n + 1;
    }
    x->args_len = len;
    x->query[len ? len - 1 : 0] = '\0';
    return true;
}

/* Content-Length: digits only (a repeated header arrives joined with ','). */
static bool parse_length(const char *v, uint64_t *out) {
    uint64_t n = 0;
    size_t digits = 0;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || ++digits > 18) return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return digits > 0;
}

static void allow_list(http_server *s, const char *path, char *out, size_t len) {
    out[0] = '\0';
    size_t used = 0;
    bool get = false, head = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, path) != 0) continue;
        get = get || strcmp(s->routes[i].method, "GET") == 0;
        head = head || strcmp(s->routes[i].method, "HEAD") == 0;
        used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%s", used ? ", " : "",
                                 s->routes[i].method);
    }
    if (get && !head) snprintf(out + used, used < len ? len - used : 0, "%sHEAD", used ? ", " : "");
}

static int on_http(http_server *s, struct lws *wsi, const char *uri, size_t urilen) {
    conn *c = lws_get_opaque_user_data(wsi);
    if (!c || s->closing || c->x) return -1;
    http_exchange *x = calloc(1, sizeof(*x));
    if (!x) return -1;
    x->s = s;
    x->c = c;
    c->x = x;
    x->state = X_BODY;
    s->stats.exchanges++;
    nm_buf_init(&x->body, s->lim.max_body);
    bool body_method = false;
    const char *m = method_of(wsi, &body_method);
    snprintf(x->method, sizeof(x->method), "%s", m ? m : "");
    x->head = m && strcmp(m, "HEAD") == 0;
    x->path = strndup(uri, urilen);
    if (!x->path || !query_of(x, wsi)) {
        x_free(x);
        return -1;
    }
    if (lws_hdr_copy(wsi, x->content_type, sizeof(x->content_type), WSI_TOKEN_HTTP_CONTENT_TYPE) < 0)
        x->content_type[0] = '\0';
    if (!lws_get_peer_simple(wsi, x->remote, sizeof(x->remote))) x->remote[0] = '\0';
    x->req = (http_request_in){.method = x->method, .path = x->path, .query = x->query, .body = "",
                               .content_type = x->content_type, .remote = x->remote};
    x_restart(x);   /* the body gets request_timeout_ms to arrive */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);

    /* Framing first: without it we cannot find the next request. */
    char te[64] = "", cl[32] = "";
    int ten = lws_hdr_copy(wsi, te, sizeof(te), WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    int cln = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    uint64_t length = 0;
    /* What lws makes of it: a body of Content-Length (as atoll() reads it), or
     * of up to 100 MiB for POST, PUT and PATCH without one. */
    x->lws_body = cln > 0 ? atoll(cl) > 0 : body_method;
    if (ten < 0 || cln < 0) {
        reject_close(x, 400, "bad framing headers");
        return 0;
    }
    if (ten > 0 && cln > 0) {
        reject_close(x, 400, "both Content-Length and Transfer-Encoding");
        return 0;
    }
    if (ten > 0) {
        if (strcasecmp(te, "chunked") != 0) {
            reject_close(x, 400, "unsupported transfer coding");
            return 0;
        }
        if (!body_method) {   /* lws would parse the chunks as the next request */
            reject_close(x, 400, "chunked body on a method without a body");
            return 0;
        }
        x->chunked = true;
        x->close_after = true;   /* lws still waits for a body of unknown length */
        x->ch_state = CH_SIZE;
    } else if (cln > 0 && !parse_length(cl, &length)) {
        reject_close(x, 400, "bad Content-Length");
        return 0;
    } else if (cln == 0 && body_method) {
        x->close_after = true;   /* no length: lws would wait for a body that is not coming */
    }

    /* Then the route. */
    const route *rt = NULL;
    bool path_known = false;
    for (size_t i = 0; i < s->n_routes && !rt; i++) {
        if (strcmp(s->routes[i].path, x->path) != 0) continue;
        path_known = true;
        if (strcmp(s->routes[i].method, x->method) == 0) rt = &s->routes[i];
    }
    for (size_t i = 0; i < s->n_routes && !rt && x->head; i++)
        if (strcmp(s->routes[i].path, x->path) == 0 && strcmp(s->routes[i].method, "GET") == 0) rt = &s->routes[i];
    if (!rt) {
        if (length > 0 || x->chunked) x->close_after = true;   /* do not read a body nobody wants */
        if (!path_known) {
            reject(x, 404, "not found", NULL);
        } else {
            char allow[128];
            allow_list(s, x->path, allow, sizeof(allow));
            reject(x, 405, "method not allowed", allow);
        }
        return 0;
    }
    x->rt = rt;
    if (length > s->lim.max_body) {
        reject_close(x, 413, "request body too large");
        return 0;
    }
    if (length > 0 || x->chunked) {
        char expect[32];
        if (lws_hdr_copy(wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
            strcasecmp(expect, "100-continue") == 0) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            unsigned char buf[LWS_PRE + sizeof(cont)];
            memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
            if (lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1, LWS_WRITE_HTTP_HEADERS) < 0) return -1;
        }
        return 0;   /* wait for the body */
    }
    dispatch(x);
    return 0;
}

/* Feeds raw chunked bytes; returns 0 for more, 1 when the body is complete,
 * or the HTTP status to answer with (400, 413, 500). */
static int chunk_feed(http_exchange *x, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        switch (x->ch_state) {
        case CH_SIZE:
            if (isxdigit(ch)) {
                if (++x->ch_digits > 15) return 400;
                x->ch_left = x->ch_left * 16 + (uint64_t)(isdigit(ch) ? ch - '0' : (tolower(ch) - 'a' + 10));
                break;
            }
            if (x->ch_digits == 0) return 400;
            if (ch == '\r') x->ch_state = CH_SIZE_LF;
            else if (ch == ';' || ch == ' ' || ch == '\t') x->ch_state = CH_EXT;
            else return 400;
            break;
        case CH_EXT:
            if (ch == '\r') x->ch_state = CH_SIZE_LF;
            else if (++x->ch_meta > MAX_CHUNK_META || (ch < 0x20 && ch != '\t')) return 400;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return 400;
            if (x->ch_left == 0) {
                x->ch_state = CH_TRAILER;
            } else {
                if (x->ch_left > x->s->lim.max_body - x->body.len) return 413;
                x->ch_state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = n - i < x->ch_left ? n - i : (size_t)x->ch_left;
            int rc = nm_buf_append(&x->body, p + i, take);
            if (rc == NM_BUF_TOO_LARGE) return 413;
            if (rc != NM_BUF_OK) return 500;
            x->ch_left -= take;
            i += take - 1;
            if (x->ch_left == 0) x->ch_state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r') return 400;
            x->ch_state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n') return 400;
            x->ch_state = CH_SIZE;
            x->ch_digits = 0;
            break;
        case CH_TRAILER:
            if (ch == '\r') {
                x->ch_state = CH_TRAILER_LF;
                break;
            }
            x->ch_state = CH_TRAILER_LINE;
            /* fallthrough */
        case CH_TRAILER_LINE:
            if (ch == '\r') x->ch_state = CH_TRAILER_LINE_LF;
            else if (++x->ch_meta > MAX_CHUNK_META) return 400;
            break;
        case CH_TRAILER_LINE_LF:
            if (ch != '\n') return 400;
            x->ch_state = CH_TRAILER;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') return 400;
            x->ch_state = CH_DONE;
            return 1;
        default:
            return 1;
        }
    }
    return 0;
}

static int on_body(http_server *s, struct lws *wsi, const void *in, size_t len) {
    conn *c = lws_get_opaque_user_data(wsi);
    http_exchange *x = c ? c->x : NULL;
    if (x && x->state == X_LINGER) {   /* dropped, up to a point */
        x->drained += len;
        return x->drained > s->lim.max_body ? -1 : 0;
    }
    if (!x || x->state != X_BODY) return 0;   /* after an early answer: discarded */
    if (x->chunked) {
        int rc = chunk_feed(x, in, len);
        if (rc == 1) dispatch(x);
        else if (rc == 400) reject_close(x, 400, "bad chunked encoding");
        else if (rc == 413) reject_close(x, 413, "request body too large");
        else if (rc == 500) reject_close(x, 500, "out of memory");
        return 0;
    }
    int rc = nm_buf_append(&x->body, in, len);
    if (rc == NM_BUF_TOO_LARGE) reject_close(x, 413, "request body too large");
    else if (rc != NM_BUF_OK) reject_close(x, 500, "out of memory");
    return 0;
}

static int on_body_done(struct lws *wsi) {
    conn *c = lws_get_opaque_user_data(wsi);
    http_exchange *x = c ? c->x : NULL;
    if (x && x->state == X_LINGER) return -1;   /* the declared body is in: nothing left to wait for */
    if (x && x->state == X_BODY && !x->chunked) dispatch(x);
    return 0;
}

/* Shuts our side once lws has sent everything it holds. */
static int linger_shut(http_exchange *x, struct lws *wsi) {
    if (lws_partial_buffered(wsi)) {
        lws_callback_on_writable(wsi);   /* lws calls back once its buffer is out */
        return 0;
    }
    x->shut = true;
    if (shutdown(lws_get_socket_fd(wsi), SHUT_WR) != 0) {
        x_free(x);
        return -1;
    }
    return 0;
}

static int on_writeable(http_server *s, struct lws *wsi) {
    conn *c = lws_get_opaque_user_data(wsi);
    http_exchange *x = c ? c->x : NULL;
    if (x && x->state == X_LINGER && !x->shut) return linger_shut(x, wsi);
    if (!x || x->state != X_RESPONDING) return 0;
    if (!x->hdr_sent) {
        if (lws_finalize_write_http_header(wsi, x->out + LWS_PRE, &x->hp, x->hend)) {
            x_free(x);
            return -1;
        }
        x->hdr_sent = true;
        if (x->resp_len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else if (x->resp_off < x->resp_len) {
        size_t chunk = x->resp_len - x->resp_off;
        if (chunk > WRITE_CHUNK) chunk = WRITE_CHUNK;
        bool final = x->resp_off + chunk == x->resp_len;
        memcpy(s->scratch + LWS_PRE, x->resp + x->resp_off, chunk);
        if (lws_write(wsi, s->scratch + LWS_PRE, chunk, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0) {
            x_free(x);
            return -1;
        }
        x->resp_off += chunk;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (x->close_after && x->lws_body) {   /* see "Lingering close" at the top */
        x->state = X_LINGER;
        x_restart(x);
        return linger_shut(x, wsi);
    }
    bool close = x->close_after;
    x_free(x);
    if (close) return -1;   /* lws flushes what it still holds, then closes */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The connection is closing or closed: its exchange dies. */
static void conn_gone(conn *c) {
    c->wsi = NULL;
    http_exchange *x = c->x;
    if (!x) return;
    http_server *s = x->s;
    c->x = NULL;
    x->c = NULL;
    if (x->in_handler) return;   /* dispatch() frees it when the handler returns */
    void (*cb)(void *) = NULL;
    void *ud = x->abort_ud;
    if (x->state == X_HANDLER) {
        s->stats.aborted++;
        cb = x->abort_cb;
    }
    x_free(x);
    if (cb && !s->closing) cb(ud);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    struct lws_context *ctx = lws_get_context(wsi);
    http_server *s = ctx ? lws_context_user(ctx) : NULL;
    if (!s) return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return s->closing || s->stats.connections >= s->lim.max_connections;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        /* Accepted and on the loop; lws has just set the opaque pointer to NULL. */
        if (!lws_get_opaque_user_data(wsi)) {
            conn *c = calloc(1, sizeof(*c));
            if (!c) return -1;
            c->s = s;
            c->wsi = wsi;
            c->next = s->conns;
            if (s->conns) s->conns->prev = c;
            s->conns = c;
            s->stats.connections++;
            lws_set_opaque_user_data(wsi, c);
        }
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP: {
        conn *c = lws_get_opaque_user_data(wsi);
        if (c) conn_gone(c);
        return 0;
    }
    case LWS_CALLBACK_WSI_DESTROY: {
        conn *c = lws_get_opaque_user_data(wsi);
        if (!c) return 0;
        conn_gone(c);
        lws_set_opaque_user_data(wsi, NULL);
        if (c->prev) c->prev->next = c->next;
        else s->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        s->stats.connections--;
        free(c);
        return 0;
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1;   /* no websocket upgrades here */
    case LWS_CALLBACK_HTTP:
        return on_http(s, wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(s, wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_done(wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(s, wsi);
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void on_deadline(uv_timer_t *t) {
    http_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    http_exchange *x;
    while (!s->closing && (x = s->xhead) != NULL && x->deadline <= now) {
        if (x->state == X_BODY) {
            s->stats.timeouts++;
            reject_close(x, 408, "request body not received in time");
        } else if (x->state == X_HANDLER && x->c) {
            s->stats.timeouts++;
            void (*cb)(void *) = x->abort_cb;
            void *ud = x->abort_ud;
            reject(x, 503, "no answer in time", NULL);   /* x is no longer the handler's */
            if (cb) cb(ud);
        } else {   /* the client does not read its answer, or lingers */
            conn *c = x->c;
            x_free(x);
            if (c && c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
        }
    }
    arm(s);
}

/* ---- setup -------------------------------------------------------------- */

static bool parse_listen(const char *listen, char *iface, size_t ilen, int *port, bool *v6, char *err,
                         size_t errlen) {
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "listen address must be ADDR:PORT");
        return false;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535) {
        snprintf(err, errlen, "bad port in listen address");
        return false;
    }
    *port = (int)p;
    size_t alen = (size_t)(colon - listen);
    *v6 = false;
    iface[0] = '\0';
    if (alen == 0 || (alen == 1 && listen[0] == '*')) {
        *v6 = true;   /* all addresses, both families */
        return true;
    }
    if (listen[0] == '[') {
        if (alen < 3 || listen[alen - 1] != ']' || alen - 2 >= ilen) {
            snprintf(err, errlen, "bad IPv6 listen address");
            return false;
        }
        memcpy(iface, listen + 1, alen - 2);
        iface[alen - 2] = '\0';
        *v6 = true;
        return true;
    }
    if (alen >= ilen) {
        snprintf(err, errlen, "listen address too long");
        return false;
    }
    memcpy(iface, listen, alen);
    iface[alen] = '\0';
    unsigned a, b, c, d;
    char extra;
    if (sscanf(iface, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4 || a > 255 || b > 255 || c > 255 || d > 255) {
        snprintf(err, errlen, "listen address must be an IP address (no names: they would resolve on the loop)");
        return false;
    }
    if (strcmp(iface, "0.0.0.0") == 0) iface[0] = '\0';
    return true;
}

static void server_unref(http_server *s) {
    if (--s->handles_open > 0) return;
    while (s->conns) {   /* lws normally destroyed each wsi, and with it its conn */
        conn *c = s->conns;
        s->conns = c->next;
        free(c);
    }
    for (size_t i = 0; i < s->n_routes; i++) free(s->routes[i].path);
    free(s);
}

static void handle_closed(uv_handle_t *h) { server_unref(h->data); }

static void lws_gone(void *ud) {
    http_server *s = ud;
    s->ctx = NULL;
    uv_close((uv_handle_t *)&s->timer, handle_closed);
}

static void begin_close(http_server *s) {
    s->closing = true;
    uv_timer_stop(&s->timer);
    if (s->lu) lws_uv_destroy(s->lu, lws_gone, s);
    else lws_gone(s);
}

http_server *http_server_new(uv_loop_t *loop, const char *listen, const http_server_limits *lim, char *err,
                             size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    char iface[64];
    int port;
    bool v6;
    if (!loop || !parse_listen(listen, iface, sizeof(iface), &port, &v6, err, errlen)) {
        if (!err[0]) snprintf(err, errlen, "invalid argument");
        return NULL;
    }
    http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->lim = (http_server_limits){DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, DEFAULT_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS,
                                  DEFAULT_KEEPALIVE_S};
    if (lim) {
        if (lim->max_body) s->lim.max_body = lim->max_body;
        if (lim->max_header) s->lim.max_header = lim->max_header > 65535 ? 65535 : lim->max_header;
        if (lim->request_timeout_ms > 0) s->lim.request_timeout_ms = lim->request_timeout_ms;
        if (lim->max_connections > 0) s->lim.max_connections = lim->max_connections;
        if (lim->keepalive_s > 0) s->lim.keepalive_s = lim->keepalive_s;
    }
    snprintf(s->iface, sizeof(s->iface), "%s", iface);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->handles_open = 1;

    s->protocols[0] = (struct lws_protocols){.name = "nomatron-http", .callback = callback};
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    ci.user = s;
    ci.max_http_header_data = (unsigned short)s->lim.max_header;
    /* One header table per connection, plus one: when the pool is empty lws
     * stops accepting, and the connection over the limit would wait in the
     * backlog instead of being refused. */
    ci.max_http_header_pool = (unsigned short)(s->lim.max_connections >= 65535 ? 65535 : s->lim.max_connections + 1);
    /* lws's own timeouts (headers, each body read) stay behind ours. */
    ci.timeout_secs = (unsigned int)(s->lim.request_timeout_ms / 1000 + 2);
    ci.server_string = "nomatron";
    s->ctx = lws_uv_create(loop, &ci, &s->lu);
    if (!s->ctx) {
        snprintf(err, errlen, "lws_create_context failed");
        begin_close(s);
        return NULL;
    }
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.port = port;
    vi.iface = iface[0] ? s->iface : NULL;
    vi.protocols = s->protocols;
    vi.keepalive_timeout = s->lim.keepalive_s;
    vi.options = v6 ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.vhost_name = "nomatron";
    s->vh = lws_create_vhost(s->ctx, &vi);
    if (!s->vh) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not local?)", listen);
        begin_close(s);
        return NULL;
    }
    return s;
}

int http_server_route(http_server *s, const char *method, const char *path, http_handler h, void *ud) {
    if (!s || !method || !path || !h || path[0] != '/' || strlen(method) == 0 || strlen(method) >= MAX_METHOD)
        return HTTP_SERVER_ERR_INVAL;
    for (const char *p = method; *p; p++)
        if (*p < 'A' || *p > 'Z') return HTTP_SERVER_ERR_INVAL;
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].method, method) == 0 && strcmp(s->routes[i].path, path) == 0) {
            s->routes[i].h = h;   /* the same route again replaces the handler */
            s->routes[i].ud = ud;
            return HTTP_SERVER_OK;
        }
    if (s->n_routes == HTTP_SERVER_MAX_ROUTES) return HTTP_SERVER_ERR_FULL;
    route *r = &s->routes[s->n_routes];
    r->path = strdup(path);
    if (!r->path) return HTTP_SERVER_ERR_NOMEM;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->h = h;
    r->ud = ud;
    s->n_routes++;
    return HTTP_SERVER_OK;
}

int http_server_port(const http_server *s) { return s && s->vh ? lws_get_vhost_listen_port(s->vh) : -1; }

static const char *hdr_lookup(struct lws *wsi, const char *name, char *buf, size_t len) {
    char lname[MAX_HEADER_NAME + 2];
    size_t n = strlen(name);
    if (n == 0 || n > MAX_HEADER_NAME || len == 0 || len > 65536) return NULL;
    for (size_t i = 0; i < n; i++) lname[i] = (char)tolower((unsigned char)name[i]);
    lname[n] = ':';
    lname[n + 1] = '\0';
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const unsigned char *tn = lws_token_to_string((enum lws_token_indexes)t);
        if (!tn || strcmp((const char *)tn, lname) != 0) continue;
        if (!lws_hdr_total_length(wsi, (enum lws_token_indexes)t)) return NULL;
        return lws_hdr_copy(wsi, buf, (int)len, (enum lws_token_indexes)t) > 0 ? buf : NULL;
    }
    return lws_hdr_custom_copy(wsi, buf, (int)len, lname, (int)n + 1) >= 0 ? buf : NULL;
}

const char *http_exchange_header(http_exchange *x, const char *name, char *buf, size_t len) {
    if (!x || !x->c || !x->c->wsi || !name || !buf) return NULL;
    return hdr_lookup(x->c->wsi, name, buf, len);
}

const char *http_exchange_query_arg(http_exchange *x, const char *name, char *buf, size_t len) {
    if (!x || !x->args || !name || !buf || len == 0) return NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; i < x->args_len;) {
        const char *a = x->args + i;
        size_t alen = strlen(a);
        if (alen > nlen && memcmp(a, name, nlen) == 0 && a[nlen] == '=') {
            if (alen - nlen - 1 >= len) return NULL;
            memcpy(buf, a + nlen + 1, alen - nlen);
            return buf;
        }
        i += alen + 1;
    }
    return NULL;
}

void http_server_get_stats(const http_server *s, http_server_stats *out) {
    if (!out) return;
    if (!s) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = s->stats;
}

void http_server_close(http_server *s) {
    if (!s || s->closing) return;
    s->closing = true;
    /* Abort open exchanges now; an abort callback may touch others, so
     * start from the head each time (each pass frees one). */
    for (;;) {
        http_exchange *x = s->xhead;
        while (x && x->in_handler) x = x->next;
        if (!x) break;
        void (*cb)(void *) = x->state == X_HANDLER ? x->abort_cb : NULL;
        void *ud = x->abort_ud;
        if (x->state == X_HANDLER) s->stats.aborted++;
        x_free(x);
        if (cb) cb(ud);
    }
    begin_close(s);
}

static void lws_to_nm(int level, const char *line) {
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", line);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    nm_log(level == LLL_ERR ? NM_LOG_ERROR : NM_LOG_WARN, "lws", "line", buf, NULL);
}

void http_server_log_to_nm(void) { lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_nm); }
