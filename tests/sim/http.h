/* nomad-sim: an incremental HTTP/1.x request parser. Pure: bytes in, a
 * request or an error out; no I/O, no clock, so unit tests and the fuzzer
 * feed it directly.
 *
 * Usage:
 *     sim_http_parser p;
 *     sim_http_parser_init(&p, SIM_HTTP_MAX_HEAD, SIM_HTTP_MAX_BODY);
 *     size_t used;
 *     int rc = sim_http_parse(&p, data, len, &used);
 *     // SIM_HTTP_AGAIN: all `used` (== len) bytes taken, need more.
 *     // SIM_HTTP_DONE:  p.req is complete; bytes after `used` belong to the
 *     //                 next (pipelined) request. Call sim_http_parser_reset()
 *     //                 before parsing it.
 *     // < 0:            malformed / too large; answer sim_http_error_status()
 *     //                 and close the connection (the stream is out of sync).
 *     sim_http_parser_free(&p);
 *
 * Strings in p.req point into the parser's own buffers and stay valid until
 * the next reset or free. */
#ifndef NM_SIM_HTTP_H
#define NM_SIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SIM_HTTP_MAX_HEAD (64 * 1024)         /* request line + headers */
#define SIM_HTTP_MAX_BODY (4 * 1024 * 1024)   /* decoded body */
#define SIM_HTTP_MAX_HEADERS 64
#define SIM_HTTP_MAX_CHUNK_LINE 1024          /* chunk-size line incl. extensions */

enum sim_http_rc {
    SIM_HTTP_DONE = 0,
    SIM_HTTP_AGAIN = 1,
    SIM_HTTP_ERR_BAD = -1,            /* 400: malformed request */
    SIM_HTTP_ERR_HEAD_TOO_LARGE = -2, /* 431: head over the ceiling or too many headers */
    SIM_HTTP_ERR_BODY_TOO_LARGE = -3, /* 413 */
    SIM_HTTP_ERR_TE = -4,             /* 501: a transfer coding other than chunked */
    SIM_HTTP_ERR_VERSION = -5,        /* 505: not HTTP/1.0 or 1.1 */
    SIM_HTTP_ERR_NOMEM = -6,          /* 500 */
};

typedef struct sim_http_header {
    const char *name;   /* as sent; compare case-insensitively */
    const char *value;  /* surrounding whitespace trimmed */
} sim_http_header;

typedef struct sim_http_req {
    const char *method;
    const char *target;   /* raw request target, e.g. "/v1/job/web?namespace=x" */
    const char *path;     /* raw (still percent-encoded) path part of target */
    const char *query;    /* raw query after '?', "" if none */
    int version_minor;    /* HTTP/1.<minor> */
    bool keep_alive;
    bool expect_continue;
    bool chunked;
    int64_t content_length;   /* -1 when absent */
    size_t n_headers;
    sim_http_header headers[SIM_HTTP_MAX_HEADERS];
    const char *body;     /* NUL-terminated for convenience; may hold NULs */
    size_t body_len;
} sim_http_req;

enum sim_http_state {
    SIM_HTTP_S_HEAD,
    SIM_HTTP_S_BODY,
    SIM_HTTP_S_CHUNK_SIZE,
    SIM_HTTP_S_CHUNK_DATA,
    SIM_HTTP_S_CHUNK_CRLF,
    SIM_HTTP_S_TRAILER,
    SIM_HTTP_S_DONE,
    SIM_HTTP_S_ERROR,
};

typedef struct sim_http_parser {
    enum sim_http_state state;
    int err;                /* sticky error once state is ERROR */
    const char *errstr;     /* static text for the 4xx/5xx body */
    nm_buf head;            /* request line + headers (owned) */
    size_t line_start;      /* offset of the current line in head */
    nm_buf body;            /* decoded body (owned) */
    nm_buf target;          /* copy of the raw request target (owned) */
    nm_buf line;            /* chunk-size / trailer line being collected */
    size_t trailer_bytes;
    uint64_t remaining;     /* body or chunk bytes still expected */
    size_t max_head, max_body;
    bool continue_due;      /* head done, body pending, client asked for 100-continue */
    sim_http_req req;
} sim_http_parser;

void sim_http_parser_init(sim_http_parser *p, size_t max_head, size_t max_body);
/* Ready for the next request on the same connection; keeps buffer memory. */
void sim_http_parser_reset(sim_http_parser *p);
void sim_http_parser_free(sim_http_parser *p);
int sim_http_parse(sim_http_parser *p, const char *data, size_t len, size_t *used);

/* Case-insensitive header lookup; the first match, or NULL. */
const char *sim_http_header_get(const sim_http_req *r, const char *name);
/* HTTP status for a parse error code (400, 413, 431, 501, 505, 500). */
int sim_http_error_status(int rc);
const char *sim_http_reason(int status);

/* Percent-decodes src[0..len) into dst (size dstlen). plus_is_space for
 * query strings. Returns the decoded length, or -1 on an invalid escape,
 * an encoded NUL, or when dst is too small. */
long sim_http_unescape(const char *src, size_t len, char *dst, size_t dstlen, bool plus_is_space);
/* Finds query parameter `name` in a raw query string and decodes its value
 * into dst. Returns 1 when present (value may be empty), 0 when absent, -1
 * when the value cannot be decoded or does not fit. */
int sim_http_query_get(const char *query, const char *name, char *dst, size_t dstlen);

#endif
