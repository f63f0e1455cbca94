/* nomad-sim: incremental HTTP/1.x request parser (see http.h).
 *
 * The head is collected into one buffer and parsed in place once the blank
 * line arrives; the body is decoded (Content-Length or chunked) into a second
 * buffer. Both have ceilings. Anything ambiguous that could desynchronise a
 * keep-alive stream (Content-Length together with Transfer-Encoding,
 * conflicting lengths, obs-fold, bare CR) is refused, as RFC 9112 allows. */
#include "http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sim_http_parser_init(sim_http_parser *p, size_t max_head, size_t max_body) {
    memset(p, 0, sizeof(*p));
    p->max_head = max_head ? max_head : SIM_HTTP_MAX_HEAD;
    p->max_body = max_body ? max_body : SIM_HTTP_MAX_BODY;
    nm_buf_init(&p->head, p->max_head);
    nm_buf_init(&p->body, p->max_body);
    nm_buf_init(&p->line, SIM_HTTP_MAX_CHUNK_LINE);
    nm_buf_init(&p->target, p->max_head);
    p->state = SIM_HTTP_S_HEAD;
}

void sim_http_parser_reset(sim_http_parser *p) {
    nm_buf_reset(&p->head);
    nm_buf_reset(&p->body);
    nm_buf_reset(&p->line);
    nm_buf_reset(&p->target);
    p->line_start = 0;
    p->trailer_bytes = 0;
    p->remaining = 0;
    p->continue_due = false;
    p->err = 0;
    p->errstr = NULL;
    memset(&p->req, 0, sizeof(p->req));
    p->state = SIM_HTTP_S_HEAD;
}

void sim_http_parser_free(sim_http_parser *p) {
    nm_buf_free(&p->head);
    nm_buf_free(&p->body);
    nm_buf_free(&p->line);
    nm_buf_free(&p->target);
}

static int fail(sim_http_parser *p, int code, const char *why) {
    p->state = SIM_HTTP_S_ERROR;
    p->err = code;
    p->errstr = why;
    return code;
}

int sim_http_error_status(int rc) {
    switch (rc) {
    case SIM_HTTP_ERR_BAD: return 400;
    case SIM_HTTP_ERR_HEAD_TOO_LARGE: return 431;
    case SIM_HTTP_ERR_BODY_TOO_LARGE: return 413;
    case SIM_HTTP_ERR_TE: return 501;
    case SIM_HTTP_ERR_VERSION: return 505;
    default: return 500;
    }
}

const char *sim_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Request Entity Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c) {
    if (isalnum(c)) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s)) return false;
    return true;
}

/* Does the comma-separated list `v` contain token `tok` (case-insensitive)? */
static bool list_has(const char *v, const char *tok) {
    size_t tl = strlen(tok);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',') v++;
        const char *s = v;
        while (*v && *v != ',') v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0) return true;
    }
    return false;
}

const char *sim_http_header_get(const sim_http_req *r, const char *name) {
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

/* Parses the complete head in place (pieces are NUL-terminated inside
 * p->head) and decides how the body is framed. */
static int process_head(sim_http_parser *p) {
    char *buf = p->head.data;
    size_t len = p->head.len;
    sim_http_req *r = &p->req;
    r->content_length = -1;

    if (memchr(buf, '\0', len)) return fail(p, SIM_HTTP_ERR_BAD, "NUL byte in request head");
    /* Split into lines, dropping the CR of each CRLF; a bare CR is refused. */
    char *lines[SIM_HTTP_MAX_HEADERS + 2];
    size_t n = 0;
    char *s = buf;
    char *end = buf + len;
    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) break;
        *nl = '\0';
        if (nl > s && nl[-1] == '\r') nl[-1] = '\0';
        if (strchr(s, '\r')) return fail(p, SIM_HTTP_ERR_BAD, "bare CR in request head");
        if (!*s) break;   /* the blank line */
        if (n == sizeof(lines) / sizeof(lines[0]))
            return fail(p, SIM_HTTP_ERR_HEAD_TOO_LARGE, "too many header fields");
        lines[n++] = s;
        s = nl + 1;
    }
    if (n == 0) return fail(p, SIM_HTTP_ERR_BAD, "empty request");

    /* Request line: METHOD SP target SP HTTP/1.x */
    char *rl = lines[0];
    char *sp1 = strchr(rl, ' ');
    if (!sp1) return fail(p, SIM_HTTP_ERR_BAD, "malformed request line");
    *sp1 = '\0';
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2) return fail(p, SIM_HTTP_ERR_BAD, "malformed request line");
    *sp2 = '\0';
    char *version = sp2 + 1;
    if (!is_token(rl) || strlen(rl) > 16) return fail(p, SIM_HTTP_ERR_BAD, "malformed method");
    if (strncmp(version, "HTTP/", 5) != 0 || !isdigit((unsigned char)version[5]) || version[6] != '.' ||
        !isdigit((unsigned char)version[7]) || version[8])
        return fail(p, SIM_HTTP_ERR_BAD, "malformed HTTP version");
    if (version[5] != '1') return fail(p, SIM_HTTP_ERR_VERSION, "HTTP version not supported");
    r->version_minor = version[7] - '0';
    if (r->version_minor > 1) return fail(p, SIM_HTTP_ERR_VERSION, "HTTP version not supported");
    for (const unsigned char *t = (const unsigned char *)target; *t; t++)
        if (*t <= 0x20 || *t >= 0x7f) return fail(p, SIM_HTTP_ERR_BAD, "invalid character in request target");
    /* absolute-form (proxies) carries the authority: keep only path?query */
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        char *slash = strchr(strstr(target, "//") + 2, '/');
        target = slash ? slash : (char *)"/";
    }
    if (target[0] != '/') return fail(p, SIM_HTTP_ERR_BAD, "request target must be a path");
    r->method = rl;
    r->target = target;

    bool have_host = false, conn_close = false, conn_keep = false;
    int te_count = 0;
    for (size_t i = 1; i < n; i++) {
        char *h = lines[i];
        if (*h == ' ' || *h == '\t') return fail(p, SIM_HTTP_ERR_BAD, "obsolete header line folding");
        char *colon = strchr(h, ':');
        if (!colon) return fail(p, SIM_HTTP_ERR_BAD, "header line without a colon");
        *colon = '\0';
        if (!is_token(h)) return fail(p, SIM_HTTP_ERR_BAD, "malformed header name");
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) *--ve = '\0';
        for (const unsigned char *c = (const unsigned char *)v; *c; c++)
            if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
                return fail(p, SIM_HTTP_ERR_BAD, "control character in header value");
        if (r->n_headers == SIM_HTTP_MAX_HEADERS)
            return fail(p, SIM_HTTP_ERR_HEAD_TOO_LARGE, "too many header fields");
        r->headers[r->n_headers].name = h;
        r->headers[r->n_headers].value = v;
        r->n_headers++;

        if (strcasecmp(h, "Content-Length") == 0) {
            if (!*v || strlen(v) > 18 || strspn(v, "0123456789") != strlen(v))
                return fail(p, SIM_HTTP_ERR_BAD, "invalid Content-Length");
            int64_t cl = strtoll(v, NULL, 10);
            if (r->content_length >= 0 && r->content_length != cl)
                return fail(p, SIM_HTTP_ERR_BAD, "conflicting Content-Length headers");
            r->content_length = cl;
        } else if (strcasecmp(h, "Transfer-Encoding") == 0) {
            te_count++;
            if (strcasecmp(v, "chunked") != 0) return fail(p, SIM_HTTP_ERR_TE, "unsupported transfer coding");
            r->chunked = true;
        } else if (strcasecmp(h, "Host") == 0) {
            if (have_host) return fail(p, SIM_HTTP_ERR_BAD, "more than one Host header");
            have_host = true;
        } else if (strcasecmp(h, "Connection") == 0) {
            if (list_has(v, "close")) conn_close = true;
            if (list_has(v, "keep-alive")) conn_keep = true;
        } else if (strcasecmp(h, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0) r->expect_continue = true;
        }
    }
    if (te_count > 1) return fail(p, SIM_HTTP_ERR_BAD, "more than one Transfer-Encoding header");
    if (r->chunked && r->content_length >= 0)
        return fail(p, SIM_HTTP_ERR_BAD, "both Content-Length and Transfer-Encoding");
    if (r->chunked && r->version_minor == 0)
        return fail(p, SIM_HTTP_ERR_BAD, "chunked transfer coding in HTTP/1.0");
    if (r->version_minor == 1 && !have_host) return fail(p, SIM_HTTP_ERR_BAD, "missing required Host header");
    r->keep_alive = r->version_minor == 1 ? !conn_close : (conn_keep && !conn_close);

    nm_buf_reset(&p->target);
    if (nm_buf_appends(&p->target, target) != NM_BUF_OK) return fail(p, SIM_HTTP_ERR_NOMEM, "out of memory");
    r->target = p->target.data;
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    } else {
        r->query = "";
    }
    r->path = target;

    if (r->chunked) {
        p->state = SIM_HTTP_S_CHUNK_SIZE;
        p->continue_due = r->expect_continue;
    } else if (r->content_length > 0) {
        if ((uint64_t)r->content_length > p->max_body)
            return fail(p, SIM_HTTP_ERR_BODY_TOO_LARGE, "request body too large");
        p->remaining = (uint64_t)r->content_length;
        p->state = SIM_HTTP_S_BODY;
        p->continue_due = r->expect_continue;
    } else {
        p->state = SIM_HTTP_S_DONE;
    }
    return SIM_HTTP_AGAIN;
}

/* Collects one line (up to '\n') into p->line. Returns 1 when complete
 * (line holds it without CR/LF), 0 when more input is needed, <0 on error. */
static int collect_line(sim_http_parser *p, const char *data, size_t len, size_t *i) {
    const char *nl = memchr(data + *i, '\n', len - *i);
    size_t n = nl ? (size_t)(nl - (data + *i)) : len - *i;
    if (nm_buf_append(&p->line, data + *i, n) != NM_BUF_OK)
        return fail(p, SIM_HTTP_ERR_BAD, "chunk line too long");
    *i += n;
    if (!nl) return 0;
    (*i)++;   /* the LF */
    if (p->line.len && p->line.data[p->line.len - 1] == '\r') p->line.data[--p->line.len] = '\0';
    if (memchr(p->line.data, '\r', p->line.len) || memchr(p->line.data, '\0', p->line.len))
        return fail(p, SIM_HTTP_ERR_BAD, "bare CR in chunked framing");
    return 1;
}

static int chunk_size_line(sim_http_parser *p) {
    const char *s = p->line.data;
    uint64_t v = 0;
    size_t digits = 0;
    for (; isxdigit((unsigned char)*s); s++, digits++) {
        if (digits >= 15) return fail(p, SIM_HTTP_ERR_BODY_TOO_LARGE, "chunk too large");
        int d = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
        v = v * 16 + (uint64_t)d;
    }
    if (!digits) return fail(p, SIM_HTTP_ERR_BAD, "malformed chunk size");
    while (*s == ' ' || *s == '\t') s++;
    if (*s && *s != ';') return fail(p, SIM_HTTP_ERR_BAD, "malformed chunk size");
    if (v > p->max_body - p->body.len) return fail(p, SIM_HTTP_ERR_BODY_TOO_LARGE, "request body too large");
    nm_buf_reset(&p->line);
    if (v == 0) {
        p->state = SIM_HTTP_S_TRAILER;
    } else {
        p->remaining = v;
        p->state = SIM_HTTP_S_CHUNK_DATA;
    }
    return 0;
}

static int take_body(sim_http_parser *p, const char *data, size_t len, size_t *i) {
    size_t n = len - *i;
    if (n > p->remaining) n = (size_t)p->remaining;
    int rc = nm_buf_append(&p->body, data + *i, n);
    if (rc == NM_BUF_TOO_LARGE) return fail(p, SIM_HTTP_ERR_BODY_TOO_LARGE, "request body too large");
    if (rc != NM_BUF_OK) return fail(p, SIM_HTTP_ERR_NOMEM, "out of memory");
    *i += n;
    p->remaining -= n;
    return 0;
}

int sim_http_parse(sim_http_parser *p, const char *data, size_t len, size_t *used) {
    size_t i = 0;
    *used = 0;
    if (p->state == SIM_HTTP_S_ERROR) return p->err;
    if (p->state == SIM_HTTP_S_DONE) return SIM_HTTP_DONE;

    while (i < len || p->state == SIM_HTTP_S_DONE) {
        switch (p->state) {
        case SIM_HTTP_S_HEAD: {
            /* RFC 9112 §2.2: ignore empty lines before the request line. */
            if (p->head.len == 0 && (data[i] == '\r' || data[i] == '\n')) {
                i++;
                break;
            }
            const char *nl = memchr(data + i, '\n', len - i);
            size_t n = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
            int rc = nm_buf_append(&p->head, data + i, n);
            if (rc == NM_BUF_TOO_LARGE) {
                *used = i;
                return fail(p, SIM_HTTP_ERR_HEAD_TOO_LARGE, "request header too large");
            }
            if (rc != NM_BUF_OK) return fail(p, SIM_HTTP_ERR_NOMEM, "out of memory");
            i += n;
            if (!nl) break;
            size_t lf = p->head.len - 1;
            size_t l = lf - p->line_start;
            if (l > 0 && p->head.data[lf - 1] == '\r') l--;
            if (l == 0) {
                rc = process_head(p);
                if (rc < 0) {
                    *used = i;
                    return rc;
                }
            } else {
                p->line_start = p->head.len;
            }
            break;
        }
        case SIM_HTTP_S_BODY:
            if (take_body(p, data, len, &i) < 0) goto error;
            if (p->remaining == 0) p->state = SIM_HTTP_S_DONE;
            break;
        case SIM_HTTP_S_CHUNK_SIZE: {
            int rc = collect_line(p, data, len, &i);
            if (rc < 0) goto error;
            if (rc == 1 && chunk_size_line(p) < 0) goto error;
            break;
        }
        case SIM_HTTP_S_CHUNK_DATA:
            if (take_body(p, data, len, &i) < 0) goto error;
            if (p->remaining == 0) p->state = SIM_HTTP_S_CHUNK_CRLF;
            break;
        case SIM_HTTP_S_CHUNK_CRLF: {
            int rc = collect_line(p, data, len, &i);
            if (rc < 0) goto error;
            if (rc == 1) {
                if (p->line.len != 0) {
                    fail(p, SIM_HTTP_ERR_BAD, "missing CRLF after chunk data");
                    goto error;
                }
                p->state = SIM_HTTP_S_CHUNK_SIZE;
            }
            break;
        }
        case SIM_HTTP_S_TRAILER: {
            size_t before = i;
            int rc = collect_line(p, data, len, &i);
            if (rc < 0) goto error;
            p->trailer_bytes += i - before;
            if (p->trailer_bytes > p->max_head) {
                fail(p, SIM_HTTP_ERR_HEAD_TOO_LARGE, "trailer section too large");
                goto error;
            }
            if (rc == 1) {
                if (p->line.len == 0) p->state = SIM_HTTP_S_DONE;
                nm_buf_reset(&p->line);   /* trailer fields are read and dropped */
            }
            break;
        }
        case SIM_HTTP_S_DONE:
            p->req.body = p->body.data ? p->body.data : "";
            p->req.body_len = p->body.len;
            p->continue_due = false;
            *used = i;
            return SIM_HTTP_DONE;
        case SIM_HTTP_S_ERROR:
            goto error;
        }
    }
    *used = i;
    return SIM_HTTP_AGAIN;
error:
    *used = i;
    return p->err;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

long sim_http_unescape(const char *src, size_t len, char *dst, size_t dstlen, bool plus_is_space) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            int h = hexval((unsigned char)src[i + 1]), l = hexval((unsigned char)src[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            if (c == '\0') return -1;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= dstlen) return -1;
        dst[o++] = c;
    }
    if (dstlen == 0) return -1;
    dst[o] = '\0';
    return (long)o;
}

int sim_http_query_get(const char *query, const char *name, char *dst, size_t dstlen) {
    size_t nl = strlen(name);
    const char *s = query;
    while (s && *s) {
        const char *amp = strchr(s, '&');
        size_t seg = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', seg);
        size_t klen = eq ? (size_t)(eq - s) : seg;
        char key[64];
        long kn = klen < sizeof(key) ? sim_http_unescape(s, klen, key, sizeof(key), true) : -1;
        if (kn >= 0 && (size_t)kn == nl && memcmp(key, name, nl) == 0) {
            const char *v = eq ? eq + 1 : s + seg;
            size_t vlen = eq ? seg - klen - 1 : 0;
            return sim_http_unescape(v, vlen, dst, dstlen, true) < 0 ? -1 : 1;
        }
        s = amp ? amp + 1 : NULL;
    }
    return 0;
}
