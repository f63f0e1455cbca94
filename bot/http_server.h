/* bot/http_server.h: the bot's HTTP/1.1 listener on its libuv loop.
 *
 * A libwebsockets 4.1 context of its own, attached to the caller's loop
 * (LWS_SERVER_OPTION_LIBUV + foreign loop), with an exact-match route table
 * (method + path). The server answers by itself, with a short JSON body:
 *   400 malformed request (bad Content-Length, both Content-Length and
 *       Transfer-Encoding, a transfer coding other than chunked, bad chunks)
 *   404 unknown path, 405 known path with another method (Allow lists the
 *   methods), 408 body not received within request_timeout_ms, 413 body
 *   over max_body (judged on Content-Length before reading, and while
 *   reading), 503 a handler that has not answered within request_timeout_ms.
 * Requests longer than max_header are dropped by lws without an answer.
 * Chunked request bodies are decoded here (lws 4.1 does not); such a
 * connection is closed after its answer. Connections over max_connections
 * are closed at accept.
 *
 * Everything runs on the loop thread. Handlers may answer at once or later
 * (from any callback on the loop). Paths are matched after lws has
 * percent-decoded them and collapsed "//", "/./" and "/../". */
#ifndef NM_HTTP_SERVER_H
#define NM_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum http_server_code {
    HTTP_SERVER_OK = 0,
    HTTP_SERVER_ERR_INVAL,    /* bad argument: route, status, header line */
    HTTP_SERVER_ERR_NOMEM,
    HTTP_SERVER_ERR_STATE,    /* the exchange was already answered, aborted or timed out */
    HTTP_SERVER_ERR_FULL,     /* route table full */
};
const char *http_server_strerror(int code);

typedef struct http_server_limits {
    size_t max_body;            /* request body bytes; default 1 MiB */
    size_t max_header;          /* request line + headers bytes; default 8 KiB, at most 65535 */
    int request_timeout_ms;     /* body arrival and handler answer, each; default 10000 */
    int max_connections;        /* open connections; more are refused at accept; default 256 */
    int keepalive_s;            /* idle keep-alive connections are closed after; default 5 */
} http_server_limits;

#define HTTP_SERVER_MAX_ROUTES 64

typedef struct http_server http_server;
typedef struct http_exchange http_exchange;   /* one request: valid until answered or aborted */

typedef struct http_request_in {
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* decoded, without the query */
    const char *query;          /* lws has already percent-decoded each argument; they are
                                 * joined with '&' ("" if none); for exact values use
                                 * http_exchange_query_arg() */
    const char *body;           /* NUL-terminated (the NUL is not counted); "" when none */
    size_t body_len;
    const char *content_type;   /* "" when absent */
    const char *remote;         /* peer IP address */
} http_request_in;              /* everything valid as long as the exchange */

/* A handler either answers with http_respond() before returning, or keeps
 * x and registers http_exchange_on_abort() before returning, then answers
 * later. x and req must not be used after the answer or the abort. */
typedef void (*http_handler)(void *ud, http_exchange *x, const http_request_in *req);

/* listen: "ADDR:PORT" with an IPv4 address, "[IPv6]:PORT", or "*:PORT" /
 * ":PORT" for all addresses; port 0 picks a free one. lim NULL = defaults.
 * Returns NULL with err set (e.g. address in use); then anything it put on
 * the loop closes by itself. */
http_server *http_server_new(uv_loop_t *loop, const char *listen, const http_server_limits *lim, char *err,
                             size_t errlen);
/* Adds an exact route (method in capitals). Strings are copied. */
int http_server_route(http_server *s, const char *method, const char *path, http_handler h, void *ud);
int http_server_port(const http_server *s);

/* Answers x (status 200..599; content_type may be NULL). Takes a copy of
 * body. After it returns 0, x is gone for the caller. Returns
 * HTTP_SERVER_ERR_STATE when x was already answered or is being aborted. */
int http_respond(http_exchange *x, int status, const char *content_type, const char *body, size_t len);
/* The same with extra response headers: a NULL-terminated list of
 * "Name: value" lines (no CR/LF; Content-Length, Content-Type, Connection
 * and Transfer-Encoding are the server's). */
int http_respond_headers(http_exchange *x, int status, const char *content_type, const char *const *headers,
                         const char *body, size_t len);

/* Called at most once, when x dies unanswered: the client went away, the
 * request timed out (the client gets a 503), or the server is closing. x
 * is already gone for the caller when cb runs. */
void http_exchange_on_abort(http_exchange *x, void (*cb)(void *ud), void *ud);

/* A request header (case-insensitive name) copied into buf; NULL when
 * absent or longer than len-1. Repeated headers are joined with ','. */
const char *http_exchange_header(http_exchange *x, const char *name, char *buf, size_t len);
/* The value of query argument `name` (decoded) copied into buf; NULL when absent or too long. */
const char *http_exchange_query_arg(http_exchange *x, const char *name, char *buf, size_t len);
const http_request_in *http_exchange_request(const http_exchange *x);

typedef struct http_server_stats {
    uint64_t requests;          /* dispatched to a handler */
    uint64_t rejected;          /* answered 4xx by the server itself */
    uint64_t timeouts;          /* 408 and 503 */
    uint64_t aborted;           /* exchanges whose client went away before the answer */
    int connections;            /* open now */
    int exchanges;              /* open now */
} http_server_stats;
void http_server_get_stats(const http_server *s, http_server_stats *out);

/* Stops listening, aborts every open exchange (abort callbacks run before
 * this returns; no handler or abort callback runs afterwards), and frees s
 * once lws has closed its handles on the loop. Safe inside a handler. */
void http_server_close(http_server *s);

/* Sends lws's own error and warning lines to nm_log (process-wide; call once). */
void http_server_log_to_nm(void);

#endif
