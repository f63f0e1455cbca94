/* nomad/client.c: the Nomad HTTP API client.
 *
 * One CURLM and one reusable CURL easy handle per client, so the connection
 * to Nomad stays alive between calls. A call has three parts kept apart on
 * purpose: nomad_int_prepare() sets up an easy handle (URL, method, headers,
 * timeouts, TLS), drive() runs the transfer to completion on the calling
 * thread with curl_multi_perform/curl_multi_poll, and nomad_int_finish()
 * maps the outcome to a nomad_code and the error text. async.c reuses the
 * first and the last with its own multi handle (nomad_async.h).
 *
 * The token lives in one place, the X-Nomad-Token header list, and is wiped
 * when the client is freed. Error text is curl's or Nomad's own and is
 * scrubbed of the token before it is stored.
 *
 * TLS: ca_file -> CURLOPT_CAINFO, client_cert/client_key -> CURLOPT_SSLCERT /
 * CURLOPT_SSLKEY (PEM). tls_server_name uses CURLOPT_CONNECT_TO rather than
 * CURLOPT_RESOLVE: the URL's host becomes the configured name, so SNI, the
 * certificate check and the Host header all use it, while the TCP connection
 * goes to the configured address's host and port. CONNECT_TO takes a host
 * name as the target (RESOLVE needs an IP address, which would mean resolving
 * the address ourselves and pinning it for the life of the client). The same
 * mapping applies to an http:// address: only the Host header changes.
 *
 * Retries (nomad.h): each call says whether it is safe to repeat. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "nomad.h"
#include "nomad_int.h"

#define NOMAD_DEFAULT_TIMEOUT_MS 30000
#define NOMAD_MAX_WAIT_MS 300000   /* the server caps blocking queries at 300 s (reference §1.5) */
#define NOMAD_POLL_MS 1000         /* upper bound for one curl_multi_poll; curl's own timers cut it short */

const char *nomad_strerror(int code) {
    switch (code) {
    case NOMAD_OK: return "ok";
    case NOMAD_ERR_CONNECT: return "cannot connect to Nomad";
    case NOMAD_ERR_TIMEOUT: return "Nomad did not answer in time";
    case NOMAD_ERR_TLS: return "TLS error talking to Nomad";
    case NOMAD_ERR_NOT_FOUND: return "not found in Nomad";
    case NOMAD_ERR_FORBIDDEN: return "Nomad refused the token (permission denied)";
    case NOMAD_ERR_CONFLICT: return "the job changed in Nomad (modify index conflict)";
    case NOMAD_ERR_HTTP: return "Nomad answered with an error";
    case NOMAD_ERR_DECODE: return "unexpected answer from Nomad";
    case NOMAD_ERR_TOO_LARGE: return "answer from Nomad too large";
    case NOMAD_ERR_INVALID: return "invalid argument";
    case NOMAD_ERR_NOMEM: return "out of memory";
    default: return "unknown nomad error";
    }
}

/* ---- error text ---- */

/* Replaces every occurrence of the token in buf. Nomad does not echo
 * tokens, but the cost of being sure is one strstr. */
static void scrub_token(const nomad_client *c, char *buf) {
    if (!c->token || !c->token[0]) return;
    size_t tl = strlen(c->token);
    char *p;
    while ((p = strstr(buf, c->token)) != NULL) {
        static const char mask[] = "[token]";
        size_t ml = sizeof(mask) - 1, rest = strlen(p + tl);
        if (tl >= ml) {
            memcpy(p, mask, ml);
            memmove(p + ml, p + tl, rest + 1);
        } else {
            memset(p, '*', tl);   /* a very short token: mask in place, no growth */
        }
    }
}

static int fmt_err(const nomad_client *c, char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fmt_err(const nomad_client *c, char *buf, size_t len, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    scrub_token(c, buf);
    return code;
}

static int set_err(nomad_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_err(nomad_client *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
    scrub_token(c, c->errstr);
    return code;
}

/* "HTTP 500: <Nomad's text>": whitespace runs (Nomad's multierror uses
 * "\n\t* ") fold to one space, control bytes are dropped, the result is
 * trimmed and cut to fit without splitting a UTF-8 sequence. */
static void set_http_err(const nomad_client *c, char *buf, size_t buflen, long status, const char *body,
                         size_t len) {
    int n = snprintf(buf, buflen, "HTTP %ld", status);
    size_t o = (size_t)n, cap = buflen - 1;
    bool any = false, space = false;
    for (size_t i = 0; i < len && o < cap; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            space = any;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f) continue;
        if (!any) {
            if (o + 2 >= cap) break;
            buf[o++] = ':';
            buf[o++] = ' ';
            any = true;
        } else if (space) {
            buf[o++] = ' ';
            if (o >= cap) break;
        }
        space = false;
        buf[o++] = (char)ch;
    }
    if (o >= cap) {
        /* Cut: back up to a character boundary and mark it. */
        o = cap - 3;
        while (o > (size_t)n && ((unsigned char)buf[o] & 0xC0) == 0x80) o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    scrub_token(c, buf);
}

const char *nomad_client_errstr(const nomad_client *c) { return c ? c->errstr : "no client"; }
long nomad_client_http_status(const nomad_client *c) { return c ? c->http_status : 0; }
int nomad_client_attempts(const nomad_client *c) { return c ? c->attempts : 0; }

/* ---- per-transfer state and curl callbacks ---- */

void nomad_xfer_init(nomad_xfer *x) {
    memset(x, 0, sizeof(*x));
    nm_buf_init(&x->body, NOMAD_MAX_BODY);
}

void nomad_xfer_reset(nomad_xfer *x) {
    x->curl_err[0] = '\0';
    x->have_index = false;
    x->index = 0;
    x->body_too_large = x->body_nomem = false;
    /* Do not keep an 8 MiB buffer around because of one large answer. */
    if (x->body.cap > 256 * 1024) {
        nm_buf_free(&x->body);
        nm_buf_init(&x->body, NOMAD_MAX_BODY);
    }
    nm_buf_reset(&x->body);
}

void nomad_xfer_free(nomad_xfer *x) { nm_buf_free(&x->body); }

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    nomad_xfer *x = ud;
    size_t n = size * nmemb;
    int rc = nm_buf_append(&x->body, ptr, n);
    if (rc == NM_BUF_OK) return n;
    if (rc == NM_BUF_TOO_LARGE) x->body_too_large = true;
    else x->body_nomem = true;
    return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
}

/* Parses a decimal uint64 header value; false if it is not one. */
static bool parse_u64(const char *s, size_t len, uint64_t *out) {
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n')) len--;
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud) {
    nomad_xfer *x = ud;
    size_t n = size * nitems;
    static const char name[] = "X-Nomad-Index:";
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        x->have_index = false;   /* a new response (e.g. after a 100 Continue) starts over */
    } else if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        x->have_index = parse_u64(line + sizeof(name) - 1, n - (sizeof(name) - 1), &x->index);
        if (!x->have_index) x->index = 0;
    }
    return n;
}

/* ---- client ---- */

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }
static char *dup_or_null(const char *s) { return s && s[0] ? strdup(s) : NULL; }

static void wipe_free(char *s) {
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* With tls_server_name set: the base URL gets that name as its host and
 * connect_to maps "name:port" to the configured host and port. A bad
 * address is left alone (the first call reports it). Returns false only
 * when out of memory. */
static bool apply_server_name(nomad_client *c, const char *name) {
    CURLU *u = curl_url();
    if (!u) return false;
    char *host = NULL, *port = NULL, *url = NULL, *scheme = NULL;
    bool ok = true;
    if (curl_url_set(u, CURLUPART_URL, c->address, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) c->https = strcasecmp(scheme, "https") == 0;
    if (!name || !name[0]) goto out;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
        goto out;
    size_t n = strlen(name) + strlen(port) * 2 + strlen(host) + 4;
    char *map = malloc(n);
    char *base = strdup(url);
    if (!map || !base) {
        free(map);
        free(base);
        ok = false;
        goto out;
    }
    snprintf(map, n, "%s:%s:%s:%s", name, port, host, port);
    struct curl_slist *l = curl_slist_append(NULL, map);
    free(map);
    if (!l) {
        free(base);
        ok = false;
        goto out;
    }
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/') base[--bl] = '\0';
    free(c->address);
    c->address = base;
    c->connect_to = l;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(url);
    curl_url_cleanup(u);
    return ok;
}

nomad_client *nomad_client_new(const config_nomad *target) {
    if (!target) return NULL;
    nomad_client *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    nomad_xfer_init(&c->x);
    c->timeout_ms = target->timeout_ms > 0 && target->timeout_ms < (int64_t)24 * 3600 * 1000
                        ? (long)target->timeout_ms
                        : NOMAD_DEFAULT_TIMEOUT_MS;
    c->retries = NOMAD_DEFAULT_RETRIES;
    c->backoff_base_ms = NOMAD_DEFAULT_BACKOFF_BASE_MS;
    c->backoff_cap_ms = NOMAD_DEFAULT_BACKOFF_CAP_MS;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->rnd = (uint32_t)((uintptr_t)c ^ (uintptr_t)ts.tv_nsec ^ ((uintptr_t)ts.tv_sec << 16)) | 1u;
    c->address = dup_or_empty(target->address);
    c->token = dup_or_empty(target->token);
    c->ca_file = dup_or_null(target->ca_file);
    c->client_cert = dup_or_null(target->client_cert);
    c->client_key = dup_or_null(target->client_key);
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    if (!c->address || !c->token || !c->multi || !c->easy) goto fail;
    if ((target->ca_file && target->ca_file[0] && !c->ca_file) ||
        (target->client_cert && target->client_cert[0] && !c->client_cert) ||
        (target->client_key && target->client_key[0] && !c->client_key))
        goto fail;
    size_t al = strlen(c->address);
    while (al > 0 && c->address[al - 1] == '/') c->address[--al] = '\0';
    if (!apply_server_name(c, target->tls_server_name)) goto fail;

    /* The namespace and region go on every request, ID-addressed reads too (§1.3). */
    const char *ns = target->namespace && target->namespace[0] ? target->namespace : "default";
    char *ens = curl_easy_escape(c->easy, ns, 0);
    char *ereg = target->region && target->region[0] ? curl_easy_escape(c->easy, target->region, 0) : NULL;
    nm_buf q;
    nm_buf_init(&q, NOMAD_URL_MAX);
    int brc = !ens || (target->region && target->region[0] && !ereg) ? NM_BUF_NOMEM
                                                                       : nm_buf_printf(&q, "namespace=%s", ens);
    if (brc == NM_BUF_OK && ereg) brc = nm_buf_printf(&q, "&region=%s", ereg);
    curl_free(ens);
    curl_free(ereg);
    if (brc != NM_BUF_OK) {
        nm_buf_free(&q);
        goto fail;
    }
    c->ns_q = nm_buf_steal(&q);

    /* Headers: the token header is built once; curl copies the string, so
     * the temporary is wiped right away. "Expect:" turns off 100-continue. */
    static const char *const fixed[] = {"Content-Type: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        struct curl_slist *h = curl_slist_append(c->headers, fixed[i]);
        if (!h) goto fail;   /* curl_slist_append leaves the list intact on failure */
        c->headers = h;
    }
    for (const char *p = c->token; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) c->bad_token = true;   /* would break the header */
    if (c->token[0] && !c->bad_token) {
        size_t hl = strlen(c->token) + sizeof("X-Nomad-Token: ");
        char *line = malloc(hl);
        if (!line) goto fail;
        snprintf(line, hl, "X-Nomad-Token: %s", c->token);
        struct curl_slist *h = curl_slist_append(c->headers, line);
        explicit_bzero(line, hl);
        free(line);
        if (!h) goto fail;
        c->headers = h;
    }
    return c;

fail:
    nomad_client_free(c);
    return NULL;
}

void nomad_client_free(nomad_client *c) {
    if (!c) return;
    if (c->multi && c->easy) curl_multi_remove_handle(c->multi, c->easy);   /* harmless when not added */
    if (c->easy) curl_easy_cleanup(c->easy);
    if (c->multi) curl_multi_cleanup(c->multi);
    for (struct curl_slist *h = c->headers; h; h = h->next) explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->connect_to);
    wipe_free(c->token);
    free(c->address);
    free(c->ns_q);
    free(c->ca_file);
    free(c->client_cert);
    free(c->client_key);
    nomad_xfer_free(&c->x);
    free(c);
}

void nomad_client_set_retry(nomad_client *c, int retries, int base_ms, int cap_ms) {
    if (!c) return;
    c->retries = retries < 0 ? 0 : retries > NOMAD_MAX_RETRIES ? NOMAD_MAX_RETRIES : retries;
    c->backoff_base_ms = base_ms < 0 ? 0 : base_ms;
    c->backoff_cap_ms = cap_ms < 0 ? 0 : cap_ms;
}

int nomad_backoff_ms(int attempt, int base_ms, int cap_ms, uint32_t rnd) {
    if (base_ms <= 0 || cap_ms <= 0) return 0;
    if (attempt < 0) attempt = 0;
    int64_t e = base_ms;
    for (int i = 0; i < attempt && e < cap_ms; i++) e *= 2;
    if (e > cap_ms) e = cap_ms;
    /* Equal jitter: at least half the step so retries still back off, at
     * most the whole step; spreads clients that failed together. */
    int64_t half = e / 2;
    return (int)(e - half + (int64_t)(rnd % (uint32_t)(half + 1)));
}

/* ---- one request ---- */

static bool readable(const char *path, char *why, size_t whylen) {
    if (access(path, R_OK) == 0) return true;
    snprintf(why, whylen, "%s", strerror(errno));
    return false;
}

int nomad_int_prepare(nomad_client *c, CURL *easy, nomad_xfer *x, const char *method, const char *path,
                      uint64_t wait_index, int wait_ms, const char *body, size_t body_len, bool copy_body,
                      char *errbuf, size_t errlen) {
    nomad_xfer_reset(x);
    errbuf[0] = '\0';
    if (c->bad_token)
        return fmt_err(c, errbuf, errlen, NOMAD_ERR_INVALID, "the Nomad token contains control characters");
    if (c->https) {
        /* Say which file is missing rather than curl's generic TLS error. */
        char why[128];
        const char *files[] = {c->ca_file, c->client_cert, c->client_key};
        const char *names[] = {"CA file", "client certificate", "client key"};
        for (size_t i = 0; i < 3; i++)
            if (files[i] && !readable(files[i], why, sizeof(why)))
                return fmt_err(c, errbuf, errlen, NOMAD_ERR_TLS, "cannot read the Nomad %s %s: %s", names[i],
                               files[i], why);
    }

    long timeout = c->timeout_ms;
    nm_buf url;
    nm_buf_init(&url, NOMAD_URL_MAX);
    int brc = nm_buf_printf(&url, "%s%s%c%s", c->address, path, strchr(path, '?') ? '&' : '?', c->ns_q);
    if (brc == NM_BUF_OK && wait_index > 0) {
        int wait = wait_ms > 0 && wait_ms < NOMAD_MAX_WAIT_MS ? wait_ms : NOMAD_MAX_WAIT_MS;
        brc = nm_buf_printf(&url, "&index=%" PRIu64 "&wait=%dms", wait_index, wait);
        /* The server may hold the answer for wait plus up to wait/16 of jitter (§1.5). */
        timeout += wait + wait / 16;
    }
    if (brc != NM_BUF_OK) {
        nm_buf_free(&url);
        return brc == NM_BUF_TOO_LARGE ? fmt_err(c, errbuf, errlen, NOMAD_ERR_INVALID, "request URL too long")
                                       : fmt_err(c, errbuf, errlen, NOMAD_ERR_NOMEM, "out of memory");
    }

    CURLcode e = curl_easy_setopt(easy, CURLOPT_URL, url.data);
    nm_buf_free(&url);   /* curl keeps its own copy */
    if (!e) e = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);   /* threads: no SIGALRM for DNS */
    if (!e) e = curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->curl_err);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!e) e = curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");   /* the ceiling applies after decoding */
    if (!e) e = curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)NOMAD_MAX_BODY);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
    if (!e && c->ca_file) e = curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
    if (!e && c->client_cert) e = curl_easy_setopt(easy, CURLOPT_SSLCERT, c->client_cert);
    if (!e && c->client_key) e = curl_easy_setopt(easy, CURLOPT_SSLKEY, c->client_key);
    if (!e) e = curl_easy_setopt(easy, CURLOPT_CONNECT_TO, c->connect_to);
    if (!e && strcmp(method, "GET") == 0) {
        /* A reused handle: drop the previous POST's body first. */
        e = curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
        if (!e) e = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        if (!e) e = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, NULL);
        if (!e) e = curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (!e) {
        const char *b = body ? body : "";
        if (!e) e = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        if (!e) e = curl_easy_setopt(easy, copy_body ? CURLOPT_COPYPOSTFIELDS : CURLOPT_POSTFIELDS, b);
        /* POST is curl's default for a body; PUT / DELETE are asked for by name. */
        if (!e) e = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method);
    }
    if (e)
        return fmt_err(c, errbuf, errlen, e == CURLE_OUT_OF_MEMORY ? NOMAD_ERR_NOMEM : NOMAD_ERR_INVALID,
                       "%s %s: %s", method, path, curl_easy_strerror(e));
    return NOMAD_OK;
}

/* Runs the prepared transfer to its end on this thread. */
static CURLcode drive(nomad_client *c) {
    if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode result = CURLE_FAILED_INIT;
    bool done = false;
    while (!done) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) {
            result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
            break;
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == c->easy) {
                result = m->data.result;
                done = true;
            }
        }
        if (done || running == 0) break;
        mc = curl_multi_poll(c->multi, NULL, 0, NOMAD_POLL_MS, NULL);
        if (mc != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
    }
    curl_multi_remove_handle(c->multi, c->easy);
    return result;
}

static bool curl_is_tls_error(CURLcode e) {
    switch (e) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

static bool starts_with_trimmed(const char *s, size_t len, const char *prefix) {
    while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++, len--;
    size_t pl = strlen(prefix);
    return len >= pl && memcmp(s, prefix, pl) == 0;
}

/* Maps the transfer's outcome: transport errors first, then the HTTP status. */
int nomad_int_finish(const nomad_client *c, CURL *easy, nomad_xfer *x, CURLcode e, const char *what, long *status_out,
                     char *errbuf, size_t errlen) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    *status_out = status;
    errbuf[0] = '\0';
    const char *ctext = x->curl_err[0] ? x->curl_err : curl_easy_strerror(e);
    int code = NOMAD_OK;

    if (e == CURLE_WRITE_ERROR && x->body_too_large) e = CURLE_FILESIZE_EXCEEDED;
    if (e == CURLE_WRITE_ERROR && x->body_nomem) e = CURLE_OUT_OF_MEMORY;
    if (e == CURLE_OK)
        code = NOMAD_OK;
    else if (e == CURLE_FILESIZE_EXCEEDED)
        code = fmt_err(c, errbuf, errlen, NOMAD_ERR_TOO_LARGE, "%s: answer larger than %d bytes", what,
                       NOMAD_MAX_BODY);
    else if (e == CURLE_OPERATION_TIMEDOUT)
        code = fmt_err(c, errbuf, errlen, NOMAD_ERR_TIMEOUT, "%s", ctext);
    else if (e == CURLE_OUT_OF_MEMORY)
        code = fmt_err(c, errbuf, errlen, NOMAD_ERR_NOMEM, "out of memory");
    else if (e == CURLE_URL_MALFORMAT || e == CURLE_UNSUPPORTED_PROTOCOL)
        code = fmt_err(c, errbuf, errlen, NOMAD_ERR_INVALID, "%s", ctext);   /* a bad address in the config */
    else if (curl_is_tls_error(e))
        code = fmt_err(c, errbuf, errlen, NOMAD_ERR_TLS, "%s", ctext);
    else   /* refused, reset, DNS, empty reply, cut-off body: the network failed us */
        code = fmt_err(c, errbuf, errlen, NOMAD_ERR_CONNECT, "%s", ctext);
    if (code != NOMAD_OK) {
        nm_log(NM_LOG_DEBUG, "nomad request failed", "request", what, "error", errbuf, NULL);
        return code;
    }

    if (status >= 200 && status < 300) return NOMAD_OK;
    const char *b = x->body.data ? x->body.data : "";
    set_http_err(c, errbuf, errlen, status, b, x->body.len);
    if (status == 404) code = NOMAD_ERR_NOT_FOUND;
    else if (status == 403) code = NOMAD_ERR_FORBIDDEN;
    else if (status == 500 && starts_with_trimmed(b, x->body.len, "Enforcing job modify index"))
        code = NOMAD_ERR_CONFLICT;
    else code = NOMAD_ERR_HTTP;
    nm_log(NM_LOG_DEBUG, "nomad request refused", "request", what, "error", errbuf, NULL);
    return code;
}

int nomad_path(char *out, size_t outlen, const char *prefix, const char *id, const char *suffix) {
    if (!out || outlen == 0) return NOMAD_ERR_INVALID;
    out[0] = '\0';
    if (!prefix || !id || !id[0]) return NOMAD_ERR_INVALID;
    char *eid = curl_easy_escape(NULL, id, 0);
    if (!eid) return NOMAD_ERR_NOMEM;
    int n = snprintf(out, outlen, "%s%s%s", prefix, eid, suffix ? suffix : "");
    curl_free(eid);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return NOMAD_ERR_INVALID;
    }
    return NOMAD_OK;
}

typedef struct nomad_req {
    const char *method;      /* "GET" or "POST" */
    const char *path;        /* "/v1/job/" */
    const char *id;          /* appended URL-escaped; NULL for none */
    const char *suffix;      /* appended as is ("/deployment"); NULL for none */
    uint64_t wait_index;     /* > 0: blocking query */
    int wait_ms;
    const char *body;        /* POST body, borrowed until the call returns */
    size_t body_len;
    bool idempotent;         /* safe to repeat after a 5xx or a cut connection */
} nomad_req;

static int request_once(nomad_client *c, const nomad_req *req) {
    c->http_status = 0;
    c->errstr[0] = '\0';
    c->last_curl = CURLE_OK;
    if (req->id && !req->id[0]) return set_err(c, NOMAD_ERR_INVALID, "empty ID in %s %s", req->method, req->path);
    char path[NOMAD_URL_MAX];
    int rc = req->id ? nomad_path(path, sizeof(path), req->path, req->id, req->suffix)
                     : (snprintf(path, sizeof(path), "%s%s", req->path, req->suffix ? req->suffix : "") <
                                (int)sizeof(path)
                            ? NOMAD_OK
                            : NOMAD_ERR_INVALID);
    if (rc != NOMAD_OK) return set_err(c, rc, "%s %s: request path too long", req->method, req->path);
    snprintf(c->what, sizeof(c->what), "%s %s", req->method, path);
    rc = nomad_int_prepare(c, c->easy, &c->x, req->method, path, req->wait_index, req->wait_ms, req->body,
                           req->body_len, false, c->errstr, sizeof(c->errstr));
    if (rc != NOMAD_OK) {
        c->last_curl = CURLE_FAILED_INIT;
        return rc;
    }
    c->last_curl = drive(c);
    return nomad_int_finish(c, c->easy, &c->x, c->last_curl, c->what, &c->http_status, c->errstr,
                            sizeof(c->errstr));
}

static bool should_retry(const nomad_client *c, const nomad_req *req, int rc) {
    /* Nothing reached the server: safe for any call. */
    if (c->last_curl == CURLE_COULDNT_CONNECT || c->last_curl == CURLE_COULDNT_RESOLVE_HOST ||
        c->last_curl == CURLE_COULDNT_RESOLVE_PROXY)
        return true;
    if (!req->idempotent) return false;
    return rc == NOMAD_ERR_CONNECT || (rc == NOMAD_ERR_HTTP && c->http_status >= 500);
}

static uint32_t next_rand(nomad_client *c) {
    uint32_t x = c->rnd;   /* xorshift32: jitter needs spread, not secrecy */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return c->rnd = x;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int request(nomad_client *c, const nomad_req *req) {
    c->attempts = 0;
    for (int attempt = 0;; attempt++) {
        int rc = request_once(c, req);
        c->attempts++;
        if (rc == NOMAD_OK || attempt >= c->retries || !should_retry(c, req, rc)) return rc;
        int ms = nomad_backoff_ms(attempt, c->backoff_base_ms, c->backoff_cap_ms, next_rand(c));
        char a[16], w[16];
        snprintf(a, sizeof(a), "%d", attempt + 1);
        snprintf(w, sizeof(w), "%d", ms);
        nm_log(NM_LOG_DEBUG, "nomad request retried", "request", c->what, "error", c->errstr, "attempt", a,
               "wait_ms", w, NULL);
        sleep_ms(ms);
    }
}

static int decode_failed(nomad_client *c, int code, const char *err) {
    return set_err(c, code, "%s: bad answer: %s", c->what, err);
}

/* Serializes o (borrowed) as the compact JSON body. */
static const char *json_body(json_object *o, size_t *len) {
    return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

/* ---- calls ---- */

int nomad_job_get(nomad_client *c, const char *job_id, json_object **job_out, nomad_job_info *info) {
    if (job_out) *job_out = NULL;
    memset(info, 0, sizeof(*info));
    if (!job_id) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/job/", .id = job_id};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    json_object *job = nomad_json_parse(c->x.body.data, c->x.body.len, NULL, err, sizeof(err));
    if (!job) return decode_failed(c, NOMAD_ERR_DECODE, err);
    rc = nomad_decode_job_info(job, info, err, sizeof(err));
    if (rc != NOMAD_OK) {
        json_object_put(job);
        return decode_failed(c, rc, err);
    }
    if (job_out) *job_out = job;
    else json_object_put(job);
    return NOMAD_OK;
}

int nomad_job_register(nomad_client *c, json_object *job, bool enforce, uint64_t job_modify_index,
                       nomad_register_result *out) {
    memset(out, 0, sizeof(*out));
    if (!job || !json_object_is_type(job, json_type_object)) return set_err(c, NOMAD_ERR_INVALID, "no job to register");
    json_object *body = json_object_new_object();
    json_object *jenf = json_object_new_boolean(enforce);
    json_object *jidx = json_object_new_uint64(job_modify_index);
    if (!body || !jenf || !jidx) {
        json_object_put(body);
        json_object_put(jenf);
        json_object_put(jidx);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    json_object_object_add(body, "Job", json_object_get(job));   /* job stays the caller's */
    json_object_object_add(body, "EnforceIndex", jenf);
    json_object_object_add(body, "JobModifyIndex", jidx);
    size_t len = 0;
    const char *text =
        json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!text) {
        json_object_put(body);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    nomad_req req = {.method = "POST", .path = "/v1/jobs", .body = text, .body_len = len};
    int rc = request(c, &req);
    json_object_put(body);   /* text belonged to body; the transfer is over */
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_register(c->x.body.data, c->x.body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (out->index == 0 && c->x.have_index) out->index = c->x.index;
    return NOMAD_OK;
}

int nomad_eval_get(nomad_client *c, const char *eval_id, uint64_t wait_index, int wait_ms, nomad_eval *out,
                   uint64_t *index_out) {
    memset(out, 0, sizeof(*out));
    if (index_out) *index_out = 0;
    if (!eval_id) return set_err(c, NOMAD_ERR_INVALID, "no evaluation ID");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/evaluation/", .id = eval_id, .wait_index = wait_index,
                     .wait_ms = wait_ms};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_eval(c->x.body.data, c->x.body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (index_out) *index_out = c->x.have_index ? c->x.index : 0;
    return NOMAD_OK;
}

int nomad_deployment_get(nomad_client *c, const char *dep_id, uint64_t wait_index, int wait_ms,
                         nomad_deployment *out, uint64_t *index_out) {
    memset(out, 0, sizeof(*out));
    if (index_out) *index_out = 0;
    if (!dep_id) return set_err(c, NOMAD_ERR_INVALID, "no deployment ID");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/deployment/", .id = dep_id, .wait_index = wait_index,
                     .wait_ms = wait_ms};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_deployment(c->x.body.data, c->x.body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (index_out) *index_out = c->x.have_index ? c->x.index : 0;
    return NOMAD_OK;
}

int nomad_job_latest_deployment(nomad_client *c, const char *job_id, nomad_deployment *out, bool *found) {
    memset(out, 0, sizeof(*out));
    *found = false;
    if (!job_id) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/job/", .id = job_id, .suffix = "/deployment"};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    bool is_null = false;
    json_object *o = nomad_json_parse(c->x.body.data, c->x.body.len, &is_null, err, sizeof(err));
    if (!o) return is_null ? NOMAD_OK : decode_failed(c, NOMAD_ERR_DECODE, err);   /* null: no deployment */
    rc = nomad_decode_deployment_obj(o, out, err, sizeof(err));
    json_object_put(o);
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    *found = true;
    return NOMAD_OK;
}

int nomad_status_leader(nomad_client *c, char *out, size_t outlen) {
    if (!out || outlen == 0) return set_err(c, NOMAD_ERR_INVALID, "no output buffer");
    out[0] = '\0';
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/status/leader"};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    json_object *o = nomad_json_parse(c->x.body.data, c->x.body.len, NULL, err, sizeof(err));
    if (!o) return decode_failed(c, NOMAD_ERR_DECODE, err);
    if (!json_object_is_type(o, json_type_string)) {
        json_object_put(o);
        return decode_failed(c, NOMAD_ERR_DECODE, "expected a JSON string");
    }
    size_t n = (size_t)json_object_get_string_len(o);
    const char *s = json_object_get_string(o);
    if (n >= outlen || memchr(s, '\0', n)) {
        json_object_put(o);
        return decode_failed(c, NOMAD_ERR_DECODE, "leader address too long");
    }
    memcpy(out, s, n + 1);
    json_object_put(o);
    return NOMAD_OK;
}

/* ---- more calls ---- */

int nomad_job_versions(nomad_client *c, const char *job_id, const char *task, nomad_version_list *out) {
    memset(out, 0, sizeof(*out));
    if (!job_id) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/job/", .id = job_id, .suffix = "/versions"};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_job_versions(c->x.body.data, c->x.body.len, task, out, err, sizeof(err));
    return rc != NOMAD_OK ? decode_failed(c, rc, err) : NOMAD_OK;
}

/* Plan is a dry run: repeating it changes nothing, so it is retried like a read. */
int nomad_job_plan(nomad_client *c, json_object *job, nomad_plan *out, json_object **plan_out) {
    memset(out, 0, sizeof(*out));
    if (plan_out) *plan_out = NULL;
    json_object *jid = NULL;
    if (!job || !json_object_is_type(job, json_type_object) || !json_object_object_get_ex(job, "ID", &jid) ||
        !json_object_is_type(jid, json_type_string) || json_object_get_string_len(jid) == 0)
        return set_err(c, NOMAD_ERR_INVALID, "no job (with an ID) to plan");
    json_object *body = json_object_new_object();
    json_object *jdiff = json_object_new_boolean(1);
    if (!body || !jdiff) {
        json_object_put(body);
        json_object_put(jdiff);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    json_object_object_add(body, "Job", json_object_get(job));   /* job stays the caller's */
    json_object_object_add(body, "Diff", jdiff);
    size_t len = 0;
    const char *text = json_body(body, &len);
    if (!text) {
        json_object_put(body);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    nomad_req req = {.method = "POST", .idempotent = true, .path = "/v1/job/", .id = json_object_get_string(jid),
                     .suffix = "/plan", .body = text, .body_len = len};
    int rc = request(c, &req);
    json_object_put(body);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    json_object *o = nomad_json_parse(c->x.body.data, c->x.body.len, NULL, err, sizeof(err));
    if (!o) return decode_failed(c, NOMAD_ERR_DECODE, err);
    rc = nomad_decode_plan_obj(o, out, err, sizeof(err));
    if (rc != NOMAD_OK) {
        json_object_put(o);
        return decode_failed(c, rc, err);
    }
    if (out->index == 0 && c->x.have_index) out->index = c->x.index;
    if (plan_out) *plan_out = o;
    else json_object_put(o);
    return NOMAD_OK;
}

/* Sends body (owned here, put on return) and decodes a register-shaped answer. */
static int post_register_shaped(nomad_client *c, nomad_req *req, json_object *body, nomad_register_result *out) {
    size_t len = 0;
    const char *text = json_body(body, &len);
    if (!text) {
        json_object_put(body);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    req->body = text;
    req->body_len = len;
    int rc = request(c, req);
    json_object_put(body);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_register(c->x.body.data, c->x.body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (out->index == 0 && c->x.have_index) out->index = c->x.index;
    return NOMAD_OK;
}

/* Not retried after a 5xx: a revert that went through but whose answer was
 * lost would, repeated, revert again to the same spec (a no-op at best, a
 * "can't revert to current version" error at worst). */
int nomad_job_revert(nomad_client *c, const char *job_id, uint64_t version, bool enforce_prior,
                     uint64_t prior_version, nomad_register_result *out) {
    memset(out, 0, sizeof(*out));
    if (!job_id || !job_id[0]) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    json_object *body = json_object_new_object();
    json_object *jid = json_object_new_string(job_id);
    json_object *jver = json_object_new_uint64(version);
    json_object *jprior = enforce_prior ? json_object_new_uint64(prior_version) : NULL;
    if (!body || !jid || !jver || (enforce_prior && !jprior)) {
        json_object_put(body);
        json_object_put(jid);
        json_object_put(jver);
        json_object_put(jprior);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    json_object_object_add(body, "JobID", jid);
    json_object_object_add(body, "JobVersion", jver);
    if (jprior) json_object_object_add(body, "EnforcePriorVersion", jprior);
    nomad_req req = {.method = "POST", .path = "/v1/job/", .id = job_id, .suffix = "/revert"};
    return post_register_shaped(c, &req, body, out);
}

/* promote / fail / pause: body (owned here) to /v1/deployment/<kind>/:id. */
static int deployment_write(nomad_client *c, const char *kind, const char *dep_id, json_object *body,
                            nomad_deployment_update *out) {
    size_t len = 0;
    const char *text = json_body(body, &len);
    if (!text) {
        json_object_put(body);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "/v1/deployment/%s/", kind);
    nomad_req req = {.method = "POST", .path = prefix, .id = dep_id, .body = text, .body_len = len};
    int rc = request(c, &req);
    json_object_put(body);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_deployment_update(c->x.body.data, c->x.body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (out->index == 0 && c->x.have_index) out->index = c->x.index;
    return NOMAD_OK;
}

/* {"DeploymentID": id}; NULL when out of memory. */
static json_object *dep_body(const char *dep_id) {
    json_object *body = json_object_new_object();
    json_object *jid = json_object_new_string(dep_id);
    if (!body || !jid) {
        json_object_put(body);
        json_object_put(jid);
        return NULL;
    }
    json_object_object_add(body, "DeploymentID", jid);
    return body;
}

/* Promote, fail and pause are not retried after a 5xx: a promote or fail that
 * went through answers "can't promote terminal deployment" or similar the
 * second time, which would hide the success; resume creates an evaluation
 * each time. */
int nomad_deployment_promote(nomad_client *c, const char *dep_id, const char *const *groups, size_t n_groups,
                             nomad_deployment_update *out) {
    memset(out, 0, sizeof(*out));
    if (!dep_id || !dep_id[0]) return set_err(c, NOMAD_ERR_INVALID, "no deployment ID");
    if (n_groups > NOMAD_MAX_GROUPS || (n_groups && !groups))
        return set_err(c, NOMAD_ERR_INVALID, "bad group list to promote");
    json_object *body = dep_body(dep_id);
    if (!body) return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    if (n_groups == 0) {
        json_object *all = json_object_new_boolean(1);
        if (!all) {
            json_object_put(body);
            return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
        }
        json_object_object_add(body, "All", all);
    } else {
        json_object *arr = json_object_new_array();
        if (!arr) {
            json_object_put(body);
            return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
        }
        json_object_object_add(body, "Groups", arr);
        for (size_t i = 0; i < n_groups; i++) {
            json_object *g = groups[i] && groups[i][0] ? json_object_new_string(groups[i]) : NULL;
            if (!g || json_object_array_add(arr, g) != 0) {
                json_object_put(g);
                json_object_put(body);
                return groups[i] && groups[i][0] ? set_err(c, NOMAD_ERR_NOMEM, "out of memory")
                                                 : set_err(c, NOMAD_ERR_INVALID, "empty group name to promote");
            }
        }
    }
    return deployment_write(c, "promote", dep_id, body, out);
}

int nomad_deployment_fail(nomad_client *c, const char *dep_id, nomad_deployment_update *out) {
    memset(out, 0, sizeof(*out));
    if (!dep_id || !dep_id[0]) return set_err(c, NOMAD_ERR_INVALID, "no deployment ID");
    json_object *body = dep_body(dep_id);   /* fail reads no body (§13); sending the ID is harmless */
    if (!body) return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    return deployment_write(c, "fail", dep_id, body, out);
}

int nomad_deployment_pause(nomad_client *c, const char *dep_id, bool pause, nomad_deployment_update *out) {
    memset(out, 0, sizeof(*out));
    if (!dep_id || !dep_id[0]) return set_err(c, NOMAD_ERR_INVALID, "no deployment ID");
    json_object *body = dep_body(dep_id);
    json_object *jp = json_object_new_boolean(pause);
    if (!body || !jp) {
        json_object_put(body);
        json_object_put(jp);
        return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }
    json_object_object_add(body, "Pause", jp);
    return deployment_write(c, "pause", dep_id, body, out);
}

int nomad_deployment_allocations(nomad_client *c, const char *dep_id, nomad_alloc *out, size_t max, size_t *n,
                                 size_t *n_total) {
    *n = *n_total = 0;
    if (!dep_id) return set_err(c, NOMAD_ERR_INVALID, "no deployment ID");
    if (max && !out) return set_err(c, NOMAD_ERR_INVALID, "no output array");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/deployment/allocations/", .id = dep_id};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_allocations(c->x.body.data, c->x.body.len, out, max, n, n_total, err, sizeof(err));
    return rc != NOMAD_OK ? decode_failed(c, rc, err) : NOMAD_OK;
}

int nomad_job_deployments(nomad_client *c, const char *job_id, bool all, nomad_deployment *out, size_t max,
                          size_t *n, size_t *n_total) {
    *n = *n_total = 0;
    if (!job_id) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    if (max && !out) return set_err(c, NOMAD_ERR_INVALID, "no output array");
    nomad_req req = {.method = "GET", .idempotent = true, .path = "/v1/job/", .id = job_id,
                     .suffix = all ? "/deployments?all=true" : "/deployments"};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_deployments(c->x.body.data, c->x.body.len, out, max, n, n_total, err, sizeof(err));
    return rc != NOMAD_OK ? decode_failed(c, rc, err) : NOMAD_OK;
}
