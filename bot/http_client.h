/* bot/http_client.h: HTTP(S) requests on the bot's libuv loop.
 *
 * One curl multi handle driven by the loop (curl_multi_socket_action with a
 * uv_poll_t per socket and one uv_timer_t), so requests never block it: the
 * libcurl here resolves names on its own threads (AsynchDNS). Connections
 * are kept alive and reused across requests to the same host.
 *
 * Callbacks run on the loop thread. Each request accepted by
 * http_client_send() gets exactly one completion callback, never from inside
 * http_client_send() itself; a request it refuses gets none. The process
 * calls curl_global_init() once before the first client is made.
 *
 * Nothing here logs a request's headers (they carry tokens) or its URL. */
#ifndef NM_HTTP_CLIENT_H
#define NM_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Transport outcome: HTTP_OK means a response arrived, whatever its status. */
enum http_code {
    HTTP_OK = 0,
    HTTP_ERR_CONNECT,     /* resolve, connect, TLS, or the connection broke */
    HTTP_ERR_TIMEOUT,     /* the request's timeout_ms passed */
    HTTP_ERR_TOO_LARGE,   /* response body over max_response (or headers over HTTP_CLIENT_MAX_HEADERS) */
    HTTP_ERR_NOMEM,
    HTTP_ERR_CLOSED,      /* http_client_close() ended it */
    HTTP_ERR_INVAL,       /* refused by http_client_send(): bad method, URL or header */
};
const char *http_strerror(int code);

#define HTTP_CLIENT_TIMEOUT_MS 30000          /* when a request says 0 */
#define HTTP_CLIENT_CONNECT_TIMEOUT_MS 10000  /* connect phase, capped by the request's timeout */
#define HTTP_CLIENT_MAX_HEADERS (64 * 1024)   /* response header bytes kept */
#define HTTP_CLIENT_MAXCONNECTS 64            /* idle connections kept for reuse */

typedef struct http_client http_client;

typedef struct http_request {
    const char *method;                /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" */
    const char *url;                   /* http:// or https:// only */
    const char *const *headers;        /* NULL-terminated "Name: value" lines, or NULL; no CR/LF */
    const char *body;                  /* may be NULL; body_len bytes are sent when not NULL */
    size_t body_len;
    long timeout_ms;                   /* whole request; 0 = HTTP_CLIENT_TIMEOUT_MS */
} http_request;

typedef struct http_response {
    int code;               /* enum http_code */
    long status;            /* HTTP status when code == HTTP_OK, else 0 */
    const char *body;       /* borrowed for the callback; NUL-terminated; "" when none */
    size_t len;
    int retry_after_s;      /* Retry-After in seconds (a date is turned into seconds from now), -1 if none */
    const char *error;      /* text when code != HTTP_OK ("" otherwise); never a header or the URL's query */
    double total_ms;        /* from http_client_send() to completion */
    const void *priv_;      /* private: for http_response_header() */
} http_response;

/* Called once per accepted request; res and everything it points to are
 * borrowed until the callback returns. The callback may send new requests
 * and may close the client. */
typedef void (*http_done_cb)(void *ud, const http_response *res);

/* Value of a response header of the final response (case-insensitive name,
 * first occurrence), borrowed like res; NULL when absent. */
const char *http_response_header(const http_response *res, const char *name);

/* max_response: ceiling on a response body (0 = 16 MiB). NULL with err set on failure. */
http_client *http_client_new(uv_loop_t *loop, size_t max_response, char *err, size_t errlen);

/* TLS for later requests: a CA bundle file (NULL = the system's) and
 * whether peers are verified (default true). Copies ca_file. Returns 0 or
 * HTTP_ERR_NOMEM. */
int http_client_set_tls(http_client *c, const char *ca_file, bool verify);

/* Starts a request; copies everything in req. Returns 0 (cb will be called
 * exactly once, later) or an http_code (cb is never called). */
int http_client_send(http_client *c, const http_request *req, http_done_cb cb, void *ud);

/* Requests accepted and not yet completed. */
int http_client_pending(const http_client *c);

/* Completes every pending request with HTTP_ERR_CLOSED (before returning),
 * refuses new ones, and frees c once the loop has closed its handles. Safe
 * to call from a completion callback. */
void http_client_close(http_client *c);

#endif
