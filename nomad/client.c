/* nomad/client.c: the Nomad HTTP API client.
 *
 * One CURLM and one reusable CURL easy handle per client, so the connection
 * to Nomad stays alive between calls. A call has three parts kept apart on
 * purpose: request_prepare() sets up the easy handle (URL, method, headers,
 * timeouts), drive() runs the transfer to completion on the calling thread
 * with curl_multi_perform/curl_multi_poll, and response_finish() maps the
 * outcome to a nomad_code and the error text. Moving calls onto an event loop
 * later replaces drive() only.
 *
 * The token lives in one place, the X-Nomad-Token header list, and is wiped
 * when the client is freed. Error text is curl's or Nomad's own and is
 * scrubbed of the token before it is stored. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "nomad.h"

#define NOMAD_ERRSTR_LEN 256
#define NOMAD_URL_MAX 4096
#define NOMAD_DEFAULT_TIMEOUT_MS 30000
#define NOMAD_MAX_WAIT_MS 300000   /* the server caps blocking queries at 300 s (reference §1.5) */
#define NOMAD_POLL_MS 1000         /* upper bound for one curl_multi_poll; curl's own timers cut it short */

struct nomad_client {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;   /* owns the only copy of the token; wiped on free */
    char *address;                /* base URL without trailing slash */
    char *ns_q;                   /* "namespace=<escaped>[&region=<escaped>]", the common query */
    char *token;                  /* kept only to scrub it from error text; wiped on free */
    long timeout_ms;
    bool bad_token;               /* control bytes in the token: refuse to send it */

    /* Last call. */
    long http_status;
    char errstr[NOMAD_ERRSTR_LEN];
    char curl_err[CURL_ERROR_SIZE];

    /* Response of the transfer in flight / just finished. */
    nm_buf body;                  /* ceiling NOMAD_MAX_BODY */
    bool body_too_large;
    bool body_nomem;
    bool have_index;
    uint64_t index;               /* X-Nomad-Index */
    char what[160];               /* "GET /v1/job/web", for error text */
};

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

/* Replaces every occurrence of the token in errstr. Nomad does not echo
 * tokens, but the cost of being sure is one strstr. */
static void scrub_token(nomad_client *c) {
    if (!c->token || !c->token[0]) return;
    size_t tl = strlen(c->token);
    char *p;
    while ((p = strstr(c->errstr, c->token)) != NULL) {
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

static int set_err(nomad_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_err(nomad_client *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
    scrub_token(c);
    return code;
}

/* "HTTP 500: <Nomad's text>": whitespace runs (Nomad's multierror uses
 * "\n\t* ") fold to one space, control bytes are dropped, the result is
 * trimmed and cut to fit without splitting a UTF-8 sequence. */
static void set_http_err(nomad_client *c, long status, const char *body, size_t len) {
    int n = snprintf(c->errstr, sizeof(c->errstr), "HTTP %ld", status);
    size_t o = (size_t)n, cap = sizeof(c->errstr) - 1;
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
            c->errstr[o++] = ':';
            c->errstr[o++] = ' ';
            any = true;
        } else if (space) {
            c->errstr[o++] = ' ';
            if (o >= cap) break;
        }
        space = false;
        c->errstr[o++] = (char)ch;
    }
    if (o >= cap) {
        /* Cut: back up to a character boundary and mark it. */
        o = cap - 3;
        while (o > (size_t)n && ((unsigned char)c->errstr[o] & 0xC0) == 0x80) o--;
        memcpy(c->errstr + o, "...", 3);
        o += 3;
    }
    c->errstr[o] = '\0';
    scrub_token(c);
}

const char *nomad_client_errstr(const nomad_client *c) { return c ? c->errstr : "no client"; }
long nomad_client_http_status(const nomad_client *c) { return c ? c->http_status : 0; }

/* ---- curl callbacks ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    nomad_client *c = ud;
    size_t n = size * nmemb;
    int rc = nm_buf_append(&c->body, ptr, n);
    if (rc == NM_BUF_OK) return n;
    if (rc == NM_BUF_TOO_LARGE) c->body_too_large = true;
    else c->body_nomem = true;
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
    nomad_client *c = ud;
    size_t n = size * nitems;
    static const char name[] = "X-Nomad-Index:";
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        c->have_index = false;   /* a new response (e.g. after a 100 Continue) starts over */
    } else if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        c->have_index = parse_u64(line + sizeof(name) - 1, n - (sizeof(name) - 1), &c->index);
        if (!c->have_index) c->index = 0;
    }
    return n;
}

/* ---- client ---- */

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static void wipe_free(char *s) {
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

nomad_client *nomad_client_new(const config_nomad *target) {
    if (!target) return NULL;
    nomad_client *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    nm_buf_init(&c->body, NOMAD_MAX_BODY);
    c->timeout_ms = target->timeout_ms > 0 && target->timeout_ms < (int64_t)24 * 3600 * 1000
                        ? (long)target->timeout_ms
                        : NOMAD_DEFAULT_TIMEOUT_MS;
    c->address = dup_or_empty(target->address);
    c->token = dup_or_empty(target->token);
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    if (!c->address || !c->token || !c->multi || !c->easy) goto fail;
    size_t al = strlen(c->address);
    while (al > 0 && c->address[al - 1] == '/') c->address[--al] = '\0';

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

    CURLcode e = CURLE_OK;
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);   /* threads: no SIGALRM for DNS */
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->curl_err);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_ACCEPT_ENCODING, "");   /* the ceiling applies after decoding */
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)NOMAD_MAX_BODY);
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    if (!e && target->ca_file && target->ca_file[0]) e = curl_easy_setopt(c->easy, CURLOPT_CAINFO, target->ca_file);
    if (e == CURLE_OUT_OF_MEMORY) goto fail;
    if (e) nm_log(NM_LOG_WARN, "nomad client: curl option refused", "error", curl_easy_strerror(e), NULL);
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
    wipe_free(c->token);
    free(c->address);
    free(c->ns_q);
    nm_buf_free(&c->body);
    free(c);
}

/* ---- one request ---- */

typedef struct nomad_req {
    const char *method;      /* "GET" or "POST" */
    const char *path;        /* "/v1/job/" */
    const char *id;          /* appended URL-escaped; NULL for none */
    const char *suffix;      /* appended as is ("/deployment"); NULL for none */
    uint64_t wait_index;     /* > 0: blocking query */
    int wait_ms;
    const char *body;        /* POST body, borrowed until the call returns */
    size_t body_len;
} nomad_req;

/* Sets up the easy handle for req. Returns NOMAD_OK or an error with errstr set. */
static int request_prepare(nomad_client *c, const nomad_req *req) {
    c->http_status = 0;
    c->errstr[0] = '\0';
    c->curl_err[0] = '\0';
    c->have_index = false;
    c->index = 0;
    c->body_too_large = c->body_nomem = false;
    /* Do not keep an 8 MiB buffer around because of one large answer. */
    if (c->body.cap > 256 * 1024) nm_buf_free(&c->body);
    nm_buf_reset(&c->body);

    if (c->bad_token) return set_err(c, NOMAD_ERR_INVALID, "the Nomad token contains control characters");
    if (req->id && !req->id[0]) return set_err(c, NOMAD_ERR_INVALID, "empty ID in %s %s", req->method, req->path);
    char *eid = req->id ? curl_easy_escape(c->easy, req->id, 0) : NULL;
    if (req->id && !eid) return set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    snprintf(c->what, sizeof(c->what), "%s %s%s%s", req->method, req->path, eid ? eid : "",
             req->suffix ? req->suffix : "");

    long timeout = c->timeout_ms;
    nm_buf url;
    nm_buf_init(&url, NOMAD_URL_MAX);
    int brc = nm_buf_printf(&url, "%s%s%s%s?%s", c->address, req->path, eid ? eid : "",
                            req->suffix ? req->suffix : "", c->ns_q);
    curl_free(eid);
    if (brc == NM_BUF_OK && req->wait_index > 0) {
        int wait = req->wait_ms > 0 && req->wait_ms < NOMAD_MAX_WAIT_MS ? req->wait_ms : NOMAD_MAX_WAIT_MS;
        brc = nm_buf_printf(&url, "&index=%" PRIu64 "&wait=%dms", req->wait_index, wait);
        /* The server may hold the answer for wait plus up to wait/16 of jitter (§1.5). */
        timeout += wait + wait / 16;
    }
    if (brc != NM_BUF_OK) {
        nm_buf_free(&url);
        return brc == NM_BUF_TOO_LARGE ? set_err(c, NOMAD_ERR_INVALID, "request URL too long")
                                       : set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    }

    CURLcode e = curl_easy_setopt(c->easy, CURLOPT_URL, url.data);
    nm_buf_free(&url);   /* curl keeps its own copy */
    if (!e) e = curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout);
    if (!e && strcmp(req->method, "POST") == 0) {
        e = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (!e) e = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (!e) {
        /* The handle is reused: drop the previous POST's body first. */
        e = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
        if (!e) e = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        if (!e) e = curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
    }
    if (e) return set_err(c, e == CURLE_OUT_OF_MEMORY ? NOMAD_ERR_NOMEM : NOMAD_ERR_INVALID, "%s: %s", c->what,
                          curl_easy_strerror(e));
    return NOMAD_OK;
}

/* Runs the prepared transfer to its end on this thread. The only part that
 * knows how the waiting is done; an event-loop version replaces it. */
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
static int response_finish(nomad_client *c, CURLcode e) {
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    c->http_status = status;
    const char *ctext = c->curl_err[0] ? c->curl_err : curl_easy_strerror(e);
    int code = NOMAD_OK;

    if (e == CURLE_WRITE_ERROR && c->body_too_large) e = CURLE_FILESIZE_EXCEEDED;
    if (e == CURLE_WRITE_ERROR && c->body_nomem) e = CURLE_OUT_OF_MEMORY;
    if (e == CURLE_OK)
        code = NOMAD_OK;
    else if (e == CURLE_FILESIZE_EXCEEDED)
        code = set_err(c, NOMAD_ERR_TOO_LARGE, "%s: answer larger than %d bytes", c->what, NOMAD_MAX_BODY);
    else if (e == CURLE_OPERATION_TIMEDOUT)
        code = set_err(c, NOMAD_ERR_TIMEOUT, "%s", ctext);
    else if (e == CURLE_OUT_OF_MEMORY)
        code = set_err(c, NOMAD_ERR_NOMEM, "out of memory");
    else if (e == CURLE_URL_MALFORMAT || e == CURLE_UNSUPPORTED_PROTOCOL)
        code = set_err(c, NOMAD_ERR_INVALID, "%s", ctext);   /* a bad address in the config */
    else if (curl_is_tls_error(e))
        code = set_err(c, NOMAD_ERR_TLS, "%s", ctext);
    else   /* refused, reset, DNS, empty reply, cut-off body: the network failed us */
        code = set_err(c, NOMAD_ERR_CONNECT, "%s", ctext);
    if (code != NOMAD_OK) {
        nm_log(NM_LOG_DEBUG, "nomad request failed", "request", c->what, "error", c->errstr, NULL);
        return code;
    }

    if (status >= 200 && status < 300) return NOMAD_OK;
    set_http_err(c, status, c->body.data ? c->body.data : "", c->body.len);
    if (status == 404) code = NOMAD_ERR_NOT_FOUND;
    else if (status == 403) code = NOMAD_ERR_FORBIDDEN;
    else if (status == 500 && starts_with_trimmed(c->body.data ? c->body.data : "", c->body.len,
                                                  "Enforcing job modify index"))
        code = NOMAD_ERR_CONFLICT;
    else code = NOMAD_ERR_HTTP;
    nm_log(NM_LOG_DEBUG, "nomad request refused", "request", c->what, "error", c->errstr, NULL);
    return code;
}

static int request(nomad_client *c, const nomad_req *req) {
    int rc = request_prepare(c, req);
    if (rc != NOMAD_OK) return rc;
    return response_finish(c, drive(c));
}

static int decode_failed(nomad_client *c, int code, const char *err) {
    return set_err(c, code, "%s: bad answer: %s", c->what, err);
}

/* ---- calls ---- */

int nomad_job_get(nomad_client *c, const char *job_id, json_object **job_out, nomad_job_info *info) {
    if (job_out) *job_out = NULL;
    memset(info, 0, sizeof(*info));
    if (!job_id) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    nomad_req req = {.method = "GET", .path = "/v1/job/", .id = job_id};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    json_object *job = nomad_json_parse(c->body.data, c->body.len, NULL, err, sizeof(err));
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
    rc = nomad_decode_register(c->body.data, c->body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (out->index == 0 && c->have_index) out->index = c->index;
    return NOMAD_OK;
}

int nomad_eval_get(nomad_client *c, const char *eval_id, uint64_t wait_index, int wait_ms, nomad_eval *out,
                   uint64_t *index_out) {
    memset(out, 0, sizeof(*out));
    if (index_out) *index_out = 0;
    if (!eval_id) return set_err(c, NOMAD_ERR_INVALID, "no evaluation ID");
    nomad_req req = {.method = "GET", .path = "/v1/evaluation/", .id = eval_id, .wait_index = wait_index,
                     .wait_ms = wait_ms};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_eval(c->body.data, c->body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (index_out) *index_out = c->have_index ? c->index : 0;
    return NOMAD_OK;
}

int nomad_deployment_get(nomad_client *c, const char *dep_id, uint64_t wait_index, int wait_ms,
                         nomad_deployment *out, uint64_t *index_out) {
    memset(out, 0, sizeof(*out));
    if (index_out) *index_out = 0;
    if (!dep_id) return set_err(c, NOMAD_ERR_INVALID, "no deployment ID");
    nomad_req req = {.method = "GET", .path = "/v1/deployment/", .id = dep_id, .wait_index = wait_index,
                     .wait_ms = wait_ms};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    rc = nomad_decode_deployment(c->body.data, c->body.len, out, err, sizeof(err));
    if (rc != NOMAD_OK) return decode_failed(c, rc, err);
    if (index_out) *index_out = c->have_index ? c->index : 0;
    return NOMAD_OK;
}

int nomad_job_latest_deployment(nomad_client *c, const char *job_id, nomad_deployment *out, bool *found) {
    memset(out, 0, sizeof(*out));
    *found = false;
    if (!job_id) return set_err(c, NOMAD_ERR_INVALID, "no job ID");
    nomad_req req = {.method = "GET", .path = "/v1/job/", .id = job_id, .suffix = "/deployment"};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    bool is_null = false;
    json_object *o = nomad_json_parse(c->body.data, c->body.len, &is_null, err, sizeof(err));
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
    nomad_req req = {.method = "GET", .path = "/v1/status/leader"};
    int rc = request(c, &req);
    if (rc != NOMAD_OK) return rc;
    char err[256];
    json_object *o = nomad_json_parse(c->body.data, c->body.len, NULL, err, sizeof(err));
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
