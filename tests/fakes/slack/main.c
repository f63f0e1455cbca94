/* slack-fake: a protocol-faithful fake of Slack's Web API and Socket Mode
 * for nomatron's tests (docs/SLACK-FAKE.md; shared/reference/
 * chat-protocols.md Part A and the Part C checklist).
 *
 * One process, one thread, one libwebsockets server on 127.0.0.1 serving
 * plain HTTP and the WebSocket upgrade on the same port, driven by lws' own
 * poll loop. The Web API and all records live in the pure modules
 * (webapi.c, state.c); this file does the I/O: HTTP requests, the
 * per-connection frame queues, pings, the control API under /_fake/ and
 * the load driver. Periodic work runs from lws_sul timers; nothing polls. */
#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "loopback.h"
#include "state.h"
#include "webapi.h"

#define SF_MAX_FRAME (1024 * 1024)   /* inbound WebSocket message; over -> close 1009 */
#define SF_MAX_OUT_QUEUE 65536       /* frames queued per connection; pushes beyond are refused (503) */
#define SF_MAX_PATH 512              /* request path; longer -> 414 */
#define SF_MAX_QUERY 16384           /* decoded query string; longer -> 414 */
#define SF_MAX_AUTH 1024             /* Authorization header; longer is an invalid token */
#define SF_LOAD_MAX_COUNT 50000
#define SF_LOAD_MAX_RATE 100000
#define SF_LOAD_GRACE_US 1000000     /* after the last envelope: ack deadline + this, then answer */
#define SF_LOOPBACK_TRIPS 1000

enum { FR_TEXT, FR_HELLO, FR_ENVELOPE };

typedef struct out_frame {
    struct out_frame *next;
    int kind;
    char env_id[SF_ID_MAX];
    size_t len;
    unsigned char data[]; /* LWS_PRE headroom, then len bytes */
} out_frame;

/* One open WebSocket. Freed in LWS_CALLBACK_CLOSED. */
typedef struct live {
    struct live *next, *prev;
    struct lws *wsi;
    int id;                   /* the sf_conn_rec id */
    bool halfopen;            /* /_fake/halfopen: nothing in, nothing out */
    bool kill;                /* close at the next writeable */
    bool kill_close_frame;    /* ... with a close frame (else the TCP just closes) */
    bool close_when_drained;  /* close (with a close frame) once the queue is empty */
    bool ping_due;
    out_frame *head, *tail;
    size_t queued;
    nm_buf rx;
    lws_sorted_usec_list_t close_sul;
    char note[48];
} live;

/* One HTTP request: what the dispatcher needs, captured while lws still
 * holds the headers, and the answer waiting for a writeable callback. */
typedef struct http_req {
    char verb[8];
    char path[SF_MAX_PATH];
    char *auth;               /* owned; wiped before free */
    char ctype[128];
    json_object *query;       /* owned */
    nm_buf body;
    bool too_big, bad_head;
    int bad_status;
    bool answered;            /* status/resp are set */
    int status, retry_after;
    char *resp;
    size_t resp_len;
    bool close_after;
} http_req;

/* lws per-session data: an HTTP transaction or a WebSocket. */
typedef struct pss {
    http_req *req;
    live *lc;
} pss;

typedef struct load {
    bool active, sending_done;
    uint32_t gen;
    struct lws *http_wsi;     /* waiting for the answer; NULL once it went away */
    int rate, count, sent, acked;
    int answered_in_ack;      /* first acks whose payload was shown as a message (A3.3) */
    int64_t start_us, last_sent_us;
    int64_t *lat;             /* per envelope: ack latency µs, -1 = none yet */
    char user[SF_ID_MAX], channel[SF_ID_MAX];
    char *text;
    sf_loopback *lb;
    lws_sorted_usec_list_t sul;
} load;

static struct server {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    sf_state *st;
    int ping_interval_s;
    live *lives, *lives_tail;
    int rr_last;              /* id of the connection the last envelope went to */
    lws_sorted_usec_list_t ping_sul;
    volatile sig_atomic_t stop;
    load load;
} S;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *json_take(json_object *o) {
    const char *s = sf_json_text(o);
    char *r = strdup(s ? s : "null");
    json_object_put(o);
    return r;
}

static char *error_json(const char *msg) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    return json_take(o);
}

/* ---------- HTTP answers ---------- */

static void http_req_free(pss *p) {
    http_req *r = p ? p->req : NULL;
    if (!r) return;
    if (r->auth) {
        memset(r->auth, 0, strlen(r->auth));
        free(r->auth);
    }
    json_object_put(r->query);
    nm_buf_free(&r->body);
    free(r->resp);
    free(r);
    p->req = NULL;
}

/* Sets the answer (body taken) and asks for a writeable callback. */
static void respond(struct lws *wsi, http_req *r, int status, char *body) {
    if (!r) {
        free(body);
        return;
    }
    free(r->resp);
    r->answered = true;
    r->status = status;
    r->resp = body ? body : strdup("{}");
    r->resp_len = r->resp ? strlen(r->resp) : 0;
    lws_callback_on_writable(wsi);
}

static void respond_json(struct lws *wsi, http_req *r, int status, json_object *o) { respond(wsi, r, status, json_take(o)); }

/* Headers and body in one write; lws keeps what the socket does not take
 * and completes the transaction when it is flushed. Returns -1 to close. */
static int write_answer(struct lws *wsi, int status, int retry_after, bool close_after, const char *body,
                        size_t len) {
    size_t cap = LWS_PRE + 1024 + len;
    unsigned char *buf = malloc(cap);
    if (!buf) return -1;
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + cap - len - 1;
    int rc = lws_add_http_common_headers(wsi, (unsigned int)status, "application/json; charset=utf-8",
                                         (lws_filepos_t)len, &p, end);
    if (!rc && retry_after > 0) {
        char v[16];
        int n = snprintf(v, sizeof(v), "%d", retry_after);
        rc = lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:", (const unsigned char *)v, n, &p,
                                         end);
    }
    if (!rc && close_after)
        rc = lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:", (const unsigned char *)"close", 5,
                                         &p, end);
    if (!rc) rc = lws_finalize_http_header(wsi, &p, end);
    if (rc) {
        free(buf);
        return -1;
    }
    memcpy(p, body, len);
    p += len;
    int n = lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL);
    free(buf);
    return n < 0 ? -1 : 0;
}

static int on_http_writeable(struct lws *wsi, pss *p) {
    http_req *r = p->req;
    if (!r || !r->answered) return 0;
    bool close_after = r->close_after;
    int rc = write_answer(wsi, r->status, r->retry_after, close_after, r->resp, r->resp_len);
    http_req_free(p);
    if (rc < 0 || close_after) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---------- WebSocket frames ---------- */

static out_frame *frame_new(int kind, const char *text, size_t len, const char *env_id) {
    out_frame *f = malloc(sizeof(*f) + LWS_PRE + len);
    if (!f) return NULL;
    f->next = NULL;
    f->kind = kind;
    snprintf(f->env_id, sizeof(f->env_id), "%s", env_id ? env_id : "");
    f->len = len;
    memcpy(f->data + LWS_PRE, text, len);
    return f;
}

static void enqueue(live *lc, out_frame *f) {
    if (lc->tail) lc->tail->next = f;
    else lc->head = f;
    lc->tail = f;
    lc->queued++;
    lws_callback_on_writable(lc->wsi);
}

static int queue_text(live *lc, int kind, const char *text) {
    if (lc->queued >= SF_MAX_OUT_QUEUE) return -1;
    out_frame *f = frame_new(kind, text, strlen(text), NULL);
    if (!f) return -1;
    enqueue(lc, f);
    return 0;
}

/* Frames never written (half-open, closing): envelopes among them count as
 * swallowed, as Slack would count them delivered. */
static void drop_queue(live *lc) {
    while (lc->head) {
        out_frame *f = lc->head;
        lc->head = f->next;
        if (f->kind == FR_ENVELOPE) {
            sf_env *e = sf_env_find(S.st, f->env_id);
            if (e) sf_env_mark_sent(e, mono_us(), wall_us() / 1000, true);
        }
        free(f);
    }
    lc->tail = NULL;
    lc->queued = 0;
}

static void disconnect_json(char *out, size_t n, const char *reason) {
    json_object *o = json_object_new_object(), *d = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("disconnect"));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    json_object_object_add(d, "host", json_object_new_string("slack-fake"));
    json_object_object_add(o, "debug_info", d);
    snprintf(out, n, "%s", sf_json_text(o));
    json_object_put(o);
}

static void queue_hello(live *lc, int num_connections) {
    /* A2.2: hello first, with the count of open connections incl. this one. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char started[40];
    strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S.000", &tm);
    json_object *o = json_object_new_object(), *ci = json_object_new_object(), *d = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("hello"));
    json_object_object_add(o, "num_connections", json_object_new_int(num_connections));
    json_object_object_add(ci, "app_id", json_object_new_string(S.st->app_id));
    json_object_object_add(o, "connection_info", ci);
    json_object_object_add(d, "host", json_object_new_string("slack-fake"));
    json_object_object_add(d, "started", json_object_new_string(started));
    json_object_object_add(d, "build_number", json_object_new_int(1));
    json_object_object_add(d, "approximate_connection_time", json_object_new_int(S.st->connection_time_s));
    json_object_object_add(o, "debug_info", d);
    queue_text(lc, FR_HELLO, sf_json_text(o));
    json_object_put(o);
}

static live *live_find(int id) {
    for (live *lc = S.lives; lc; lc = lc->next)
        if (lc->id == id) return lc;
    return NULL;
}

static bool live_usable(const live *lc) { return !lc->kill && !lc->close_when_drained; }

/* Round robin over open connections (A2.4: each payload goes to one). A
 * half-open connection is used only when every connection is half-open, so
 * a client that reconnected gets its envelopes (documented difference). */
static live *pick(int want) {
    if (want > 0) {
        live *lc = live_find(want);
        return lc && live_usable(lc) ? lc : NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        bool halfopen_ok = pass == 1;
        live *first = NULL, *after = NULL;
        for (live *lc = S.lives; lc; lc = lc->next) {
            if (!live_usable(lc) || lc->halfopen != halfopen_ok) continue;
            if (!first) first = lc;
            if (!after && lc->id > S.rr_last) after = lc;
        }
        live *lc = after ? after : first;
        if (lc) {
            S.rr_last = lc->id;
            return lc;
        }
    }
    return NULL;
}

/* Records and queues one envelope (frame taken). NULL when refused. */
static sf_env *push_envelope(live *lc, const char *id, const char *type, int retry_attempt, char *frame,
                             int load_idx) {
    if (!frame) return NULL;
    out_frame *f = NULL;
    if (!lc->halfopen) {
        if (lc->queued >= SF_MAX_OUT_QUEUE || !(f = frame_new(FR_ENVELOPE, frame, strlen(frame), id))) {
            free(frame);
            return NULL;
        }
    }
    sf_env *e = sf_env_add(S.st, id, type, lc->id, retry_attempt, frame, mono_us());
    if (!e) {
        free(f);
        return NULL;
    }
    if (load_idx >= 0) {
        e->load_idx = load_idx;
        e->load_gen = S.load.gen;
    }
    if (lc->halfopen) sf_env_mark_sent(e, mono_us(), wall_us() / 1000, true);
    else enqueue(lc, f);
    return e;
}

static void on_close_timer(lws_sorted_usec_list_t *sul) {
    live *lc = lws_container_of(sul, live, close_sul);
    lc->kill = true;
    snprintf(lc->note, sizeof(lc->note), "closed after disconnect");
    lws_callback_on_writable(lc->wsi);
}

static void on_ping_timer(lws_sorted_usec_list_t *sul) {
    (void)sul;
    for (live *lc = S.lives; lc; lc = lc->next) {
        if (lc->halfopen || lc->kill) continue;
        lc->ping_due = true;
        lws_callback_on_writable(lc->wsi);
    }
    lws_sul_schedule(S.ctx, 0, &S.ping_sul, on_ping_timer, (lws_usec_t)S.ping_interval_s * LWS_US_PER_SEC);
}

/* ---------- WebSocket callbacks ---------- */

static void load_ack(sf_env *e);

static int on_ws_open(struct lws *wsi, pss *p) {
    live *lc = calloc(1, sizeof(*lc));
    sf_conn_rec *rec = lc ? sf_conn_new(S.st, wall_us() / 1000) : NULL;
    if (!rec) {
        free(lc);
        return -1;
    }
    lc->wsi = wsi;
    lc->id = rec->id;
    nm_buf_init(&lc->rx, SF_MAX_FRAME);
    lc->prev = S.lives_tail;
    if (S.lives_tail) S.lives_tail->next = lc;
    else S.lives = lc;
    S.lives_tail = lc;
    p->lc = lc;
    int open = sf_conn_open_count(S.st);
    char idbuf[16];
    snprintf(idbuf, sizeof(idbuf), "%d", lc->id);
    if (open > SF_MAX_CONNECTIONS) {
        /* A2.4 allows 10; the reason is the one the Node SDK knows (A2.2). */
        char d[256];
        disconnect_json(d, sizeof(d), "too_many_websockets");
        queue_text(lc, FR_TEXT, d);
        lc->close_when_drained = true;
        snprintf(lc->note, sizeof(lc->note), "too_many_websockets");
        nm_log(NM_LOG_WARN, "connection over the limit; refused", "conn", idbuf, NULL);
        return 0;
    }
    queue_hello(lc, open);
    nm_log(NM_LOG_INFO, "socket mode connection open", "conn", idbuf, NULL);
    return 0;
}

static int on_ws_writeable(struct lws *wsi, pss *p) {
    live *lc = p->lc;
    if (!lc) return 0;
    sf_conn_rec *rec = sf_conn_find(S.st, lc->id);
    if (lc->kill) {
        if (rec && lc->note[0]) snprintf(rec->note, sizeof(rec->note), "%s", lc->note);
        if (lc->kill_close_frame) lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1; /* without lws_close_reason: no close frame, just the TCP close */
    }
    if (lc->halfopen) return 0;
    if (lc->ping_due) {
        lc->ping_due = false;
        unsigned char buf[LWS_PRE + 16];
        memcpy(buf + LWS_PRE, "slack-fake", 10);
        if (lws_write(wsi, buf + LWS_PRE, 10, LWS_WRITE_PING) < 10) return -1;
        if (rec) rec->pings_sent++;
        if (lc->head || lc->close_when_drained) lws_callback_on_writable(wsi);
        return 0;
    }
    out_frame *f = lc->head;
    if (!f) {
        if (lc->close_when_drained) {
            if (rec && lc->note[0]) snprintf(rec->note, sizeof(rec->note), "%s", lc->note);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
            return -1;
        }
        return 0;
    }
    lc->head = f->next;
    if (!lc->head) lc->tail = NULL;
    lc->queued--;
    /* Stamped before the write: on loopback the peer can read the frame
     * and answer before the send call has returned here. */
    int64_t now = mono_us();
    int n = lws_write(wsi, f->data + LWS_PRE, f->len, LWS_WRITE_TEXT);
    if (n < (int)f->len) {
        free(f);
        return -1;
    }
    if (f->kind == FR_HELLO && rec) rec->hello_sent = true;
    if (f->kind == FR_ENVELOPE) {
        sf_env *e = sf_env_find(S.st, f->env_id);
        if (e) sf_env_mark_sent(e, now, wall_us() / 1000, false);
    }
    free(f);
    if (lc->head || lc->close_when_drained) lws_callback_on_writable(wsi);
    return 0;
}

static int on_ws_receive(struct lws *wsi, pss *p, const void *in, size_t len) {
    live *lc = p->lc;
    if (!lc || lc->halfopen) return 0; /* half-open: reads are ignored */
    if (nm_buf_append(&lc->rx, in, len) != NM_BUF_OK) {
        nm_log(NM_LOG_WARN, "websocket message over the ceiling; closing", NULL);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    int64_t now = mono_us();
    if (lws_frame_is_binary(wsi)) {
        sf_conn_rec *rec = sf_conn_find(S.st, lc->id);
        if (rec) rec->bad_frames++;
        S.st->bad_frames++;
    } else {
        sf_env *e = NULL;
        int rc = sf_ack_frame(S.st, lc->id, lc->rx.data ? lc->rx.data : "", lc->rx.len, now, wall_us(), &e);
        if (rc == SF_ACK_OK) {
            load_ack(e);
            /* Slack would show the person an error or nothing (A2.3, A3.3). */
            if (e->ack_error)
                nm_log(NM_LOG_WARN, "ack payload shown nowhere", "envelope_id", e->id, "type", e->type, "error",
                       e->ack_error, NULL);
        } else if (rc == SF_ACK_BAD) {
            nm_log(NM_LOG_WARN, "frame from the client is not an ack", NULL);
        }
    }
    nm_buf_reset(&lc->rx);
    return 0;
}

static void on_ws_closed(pss *p) {
    live *lc = p->lc;
    if (!lc) return;
    sf_conn_rec *rec = sf_conn_find(S.st, lc->id);
    if (rec) {
        rec->open = false;
        rec->closed_ms = wall_us() / 1000;
    }
    char idbuf[16];
    snprintf(idbuf, sizeof(idbuf), "%d", lc->id);
    nm_log(NM_LOG_INFO, "socket mode connection closed", "conn", idbuf, "note", lc->note[0] ? lc->note : NULL, NULL);
    lws_sul_cancel(&lc->close_sul);
    drop_queue(lc);
    nm_buf_free(&lc->rx);
    if (lc->prev) lc->prev->next = lc->next;
    else S.lives = lc->next;
    if (lc->next) lc->next->prev = lc->prev;
    else S.lives_tail = lc->prev;
    free(lc);
    p->lc = NULL;
}

/* Writes an answer right away (upgrade refusals, while lws holds the
 * request); returns 1 as LWS_CALLBACK_HTTP_CONFIRM_UPGRADE expects. */
static int refuse_upgrade(struct lws *wsi, int status, const char *error) {
    char *body = error_json(error);
    if (!body) return -1;
    int rc = write_answer(wsi, status, 0, false, body, strlen(body));
    free(body);
    return rc < 0 ? -1 : 1;
}

static int on_confirm_upgrade(struct lws *wsi, const char *what) {
    char path[SF_MAX_PATH];
    if (!what || strcasecmp(what, "websocket") != 0) return refuse_upgrade(wsi, 400, "websocket only");
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0 ||
        (strcmp(path, "/link/") != 0 && strcmp(path, "/link") != 0))
        return refuse_upgrade(wsi, 404, "not found");
    char arg[256], ticket[64] = "";
    for (int i = 0; lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++)
        if (strncmp(arg, "ticket=", 7) == 0) snprintf(ticket, sizeof(ticket), "%s", arg + 7);
    if (!sf_ticket_use(S.st, ticket)) {
        /* A2.1: the URL is single-use (treated so; the docs say short-lived). */
        nm_log(NM_LOG_WARN, "websocket upgrade with an unknown or used ticket; refused", NULL);
        return refuse_upgrade(wsi, 403, "invalid or used ticket");
    }
    return 0;
}

/* ---------- control API (/_fake/) ---------- */

typedef void (*ctl_fn)(struct lws *wsi, http_req *r, json_object *body);

static const char *jstr(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

/* Integer field: *out unchanged when absent; -1 when present but not an int. */
static int jint(json_object *o, const char *key, int64_t *out) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !v) return 0;
    if (!json_object_is_type(v, json_type_int)) return -1;
    *out = json_object_get_int64(v);
    return 0;
}

static bool id_ok(const char *s) { return s && *s && strlen(s) < SF_ID_MAX; }

static void ctl_slash(struct lws *wsi, http_req *r, json_object *b) {
    const char *user = jstr(b, "user_id"), *channel = jstr(b, "channel_id");
    int64_t conn = 0;
    if (!id_ok(user) || !id_ok(channel) || jint(b, "connection", &conn) != 0) {
        respond(wsi, r, 400, error_json("user_id and channel_id (strings) required; connection is an integer"));
        return;
    }
    const char *text = jstr(b, "text");
    if (text && strlen(text) > SF_MAX_POST_TEXT) {
        respond(wsi, r, 400, error_json("text too long"));
        return;
    }
    live *lc = pick((int)conn);
    if (!lc) {
        respond(wsi, r, 409, error_json("no open connection"));
        return;
    }
    sf_slash s = {.user_id = user,
                  .channel_id = channel,
                  .text = text,
                  .team_id = id_ok(jstr(b, "team_id")) ? jstr(b, "team_id") : NULL,
                  .command = id_ok(jstr(b, "command")) ? jstr(b, "command") : NULL,
                  .trigger_id = id_ok(jstr(b, "trigger_id")) ? jstr(b, "trigger_id") : NULL};
    char trigger[SF_ID_MAX], id[SF_ID_MAX];
    json_object *payload = sf_slash_payload(S.st, &s, trigger);
    sf_new_envelope_id(S.st, id);
    char *frame = sf_envelope_frame(id, "slash_commands", true, payload, -1, NULL);
    json_object_put(payload);
    if (!push_envelope(lc, id, "slash_commands", -1, frame, -1)) {
        respond(wsi, r, 503, error_json("connection queue full"));
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "envelope_id", json_object_new_string(id));
    json_object_object_add(o, "trigger_id", json_object_new_string(trigger));
    json_object_object_add(o, "connection", json_object_new_int(lc->id));
    respond_json(wsi, r, 200, o);
}

static void ctl_envelope(struct lws *wsi, http_req *r, json_object *b) {
    const char *type = jstr(b, "type"), *reason = jstr(b, "retry_reason"), *given = jstr(b, "envelope_id");
    json_object *payload = NULL, *accepts = NULL;
    int64_t attempt = -1, conn = 0;
    if (!type || !*type || strlen(type) >= 32 || !json_object_object_get_ex(b, "payload", &payload) ||
        !json_object_is_type(payload, json_type_object) || jint(b, "retry_attempt", &attempt) != 0 ||
        jint(b, "connection", &conn) != 0 || (given && !id_ok(given))) {
        respond(wsi, r, 400,
                error_json("type (string) and payload (object) required; retry_attempt, connection integers"));
        return;
    }
    /* A2.2: events_api envelopes carry retry fields (0 / "" at first) and
     * do not accept a response payload. */
    bool events = strcmp(type, "events_api") == 0;
    if (events && attempt < 0) attempt = 0;
    bool accepts_payload = !events;
    if (json_object_object_get_ex(b, "accepts_response_payload", &accepts))
        accepts_payload = json_object_get_boolean(accepts);
    live *lc = pick((int)conn);
    if (!lc) {
        respond(wsi, r, 409, error_json("no open connection"));
        return;
    }
    char id[SF_ID_MAX];
    if (given) snprintf(id, sizeof(id), "%s", given);
    else sf_new_envelope_id(S.st, id);
    char *frame = sf_envelope_frame(id, type, accepts_payload, payload, attempt < 0 ? -1 : (int)attempt,
                                    reason ? reason : "");
    if (!push_envelope(lc, id, type, attempt < 0 ? -1 : (int)attempt, frame, -1)) {
        respond(wsi, r, 503, error_json("connection queue full"));
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "envelope_id", json_object_new_string(id));
    json_object_object_add(o, "connection", json_object_new_int(lc->id));
    respond_json(wsi, r, 200, o);
}

static void ctl_redeliver(struct lws *wsi, http_req *r, json_object *b) {
    const char *old_id = jstr(b, "envelope_id");
    int64_t conn = 0;
    sf_env *old = sf_env_find(S.st, old_id);
    if (!old || jint(b, "connection", &conn) != 0) {
        respond(wsi, r, 404, error_json("no such envelope"));
        return;
    }
    live *lc = pick((int)conn);
    if (!lc) {
        respond(wsi, r, 409, error_json("no open connection"));
        return;
    }
    char id[SF_ID_MAX], type[32];
    sf_new_envelope_id(S.st, id);
    snprintf(type, sizeof(type), "%s", old->type);
    int attempt = 0;
    char *frame = sf_env_redelivery(old, id, &attempt);
    if (!frame) {
        respond(wsi, r, 500, error_json("stored envelope unreadable"));
        return;
    }
    if (!push_envelope(lc, id, type, attempt, frame, -1)) {
        respond(wsi, r, 503, error_json("connection queue full"));
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "envelope_id", json_object_new_string(id));
    json_object_object_add(o, "retry_attempt", json_object_new_int(attempt));
    json_object_object_add(o, "connection", json_object_new_int(lc->id));
    respond_json(wsi, r, 200, o);
}

static void ctl_disconnect(struct lws *wsi, http_req *r, json_object *b) {
    static const char *const reasons[] = {"warning", "refresh_requested", "link_disabled", "too_many_websockets"};
    const char *reason = jstr(b, "reason");
    bool ok = false;
    for (size_t i = 0; reason && i < sizeof(reasons) / sizeof(reasons[0]); i++) ok |= strcmp(reason, reasons[i]) == 0;
    int64_t after = -1, conn = 0;
    json_object *cf = NULL;
    bool close_frame = json_object_object_get_ex(b, "close_frame", &cf) && json_object_get_boolean(cf);
    if (!ok || jint(b, "close_after_ms", &after) != 0 || jint(b, "connection", &conn) != 0 || after > 3600000) {
        respond(wsi, r, 400,
                error_json("reason: warning|refresh_requested|link_disabled|too_many_websockets; "
                           "close_after_ms 0..3600000"));
        return;
    }
    char frame[256];
    disconnect_json(frame, sizeof(frame), reason);
    int n = 0;
    for (live *lc = S.lives; lc; lc = lc->next) {
        if (lc->halfopen || !live_usable(lc) || (conn > 0 && lc->id != conn)) continue;
        if (queue_text(lc, FR_TEXT, frame) != 0) continue;
        n++;
        if (after >= 0) {
            lc->kill_close_frame = close_frame;
            lws_sul_schedule(S.ctx, 0, &lc->close_sul, on_close_timer, (lws_usec_t)after * LWS_US_PER_MS);
        }
    }
    nm_log(NM_LOG_INFO, "disconnect sent", "reason", reason, NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sent", json_object_new_int(n));
    respond_json(wsi, r, 200, o);
}

static void ctl_drop(struct lws *wsi, http_req *r, json_object *b) {
    int64_t conn = 0;
    if (jint(b, "connection", &conn) != 0) {
        respond(wsi, r, 400, error_json("connection is an integer"));
        return;
    }
    int n = 0;
    for (live *lc = S.lives; lc; lc = lc->next) {
        if (conn > 0 && lc->id != conn) continue;
        lc->kill = true;
        lc->kill_close_frame = false;
        snprintf(lc->note, sizeof(lc->note), "dropped");
        lws_callback_on_writable(lc->wsi);
        n++;
    }
    nm_log(NM_LOG_INFO, "connections dropped without a close frame", NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "dropped", json_object_new_int(n));
    respond_json(wsi, r, 200, o);
}

static void ctl_halfopen(struct lws *wsi, http_req *r, json_object *b) {
    int64_t conn = 0;
    if (jint(b, "connection", &conn) != 0) {
        respond(wsi, r, 400, error_json("connection is an integer"));
        return;
    }
    int n = 0;
    for (live *lc = S.lives; lc; lc = lc->next) {
        if (lc->halfopen || (conn > 0 && lc->id != conn)) continue;
        /* Not reading at all means no pongs either: lws answers pings only
         * for frames it reads. The socket stays open. */
        lc->halfopen = true;
        lc->ping_due = false;
        drop_queue(lc);
        lws_rx_flow_control(lc->wsi, 0);
        sf_conn_rec *rec = sf_conn_find(S.st, lc->id);
        if (rec) rec->halfopen = true;
        n++;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "halfopen", json_object_new_int(n));
    respond_json(wsi, r, 200, o);
}

static void ctl_fault(struct lws *wsi, http_req *r, json_object *b, int kind) {
    sf_fault f = {.kind = kind, .count = 1, .retry_after = 1};
    const char *method = jstr(b, "method"), *error = jstr(b, "error");
    int64_t count = 1, retry = 1;
    if (!id_ok(method) || jint(b, "count", &count) != 0 || count < 1 || count > 1000000 ||
        jint(b, "retry_after", &retry) != 0 || retry < 0 || retry > 3600 ||
        (kind == SF_FAULT_FAIL && !id_ok(error))) {
        respond(wsi, r, 400,
                error_json(kind == SF_FAULT_FAIL ? "method and error (strings) required; count 1..1000000"
                                                 : "method (string, \"*\" = all) required; count 1..1000000, "
                                                   "retry_after 0..3600"));
        return;
    }
    snprintf(f.method, sizeof(f.method), "%s", method);
    if (error) snprintf(f.error, sizeof(f.error), "%s", error);
    f.count = (int)count;
    f.retry_after = (int)retry;
    if (sf_fault_add(S.st, &f) != 0) {
        respond(wsi, r, 409, error_json("too many pending faults (64)"));
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    respond_json(wsi, r, 200, o);
}

static void ctl_ratelimit(struct lws *wsi, http_req *r, json_object *b) { ctl_fault(wsi, r, b, SF_FAULT_RATELIMIT); }
static void ctl_fail(struct lws *wsi, http_req *r, json_object *b) { ctl_fault(wsi, r, b, SF_FAULT_FAIL); }

static const char *query_arg(http_req *r, const char *key) {
    json_object *v;
    return r->query && json_object_object_get_ex(r->query, key, &v) ? json_object_get_string(v) : NULL;
}

static void ctl_calls(struct lws *wsi, http_req *r, json_object *b) {
    (void)b;
    respond(wsi, r, 200, sf_calls_json(S.st, query_arg(r, "method")));
}

static void ctl_messages(struct lws *wsi, http_req *r, json_object *b) {
    (void)b;
    respond(wsi, r, 200, sf_messages_json(S.st, query_arg(r, "channel")));
}

static void ctl_acks(struct lws *wsi, http_req *r, json_object *b) {
    (void)b;
    respond(wsi, r, 200, sf_acks_json(S.st, mono_us()));
}

static void ctl_connections(struct lws *wsi, http_req *r, json_object *b) {
    (void)b;
    respond(wsi, r, 200, sf_conns_json(S.st));
}

static void ctl_reset(struct lws *wsi, http_req *r, json_object *b) {
    (void)b;
    if (S.load.active) {
        respond(wsi, r, 409, error_json("a load is running"));
        return;
    }
    sf_state_reset(S.st);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    respond_json(wsi, r, 200, o);
}

/* A message not posted by the bot (a person's), for cant_update_message. */
static void ctl_message(struct lws *wsi, http_req *r, json_object *b) {
    const char *channel = jstr(b, "channel"), *user = jstr(b, "user"), *text = jstr(b, "text");
    const char *thread_ts = jstr(b, "thread_ts");
    if (!id_ok(channel) || !id_ok(user) || (thread_ts && !sf_ts_valid(thread_ts)) ||
        (text && strlen(text) > SF_MAX_POST_TEXT)) {
        respond(wsi, r, 400, error_json("channel and user (strings) required; thread_ts a ts"));
        return;
    }
    sf_msg *m = calloc(1, sizeof(*m));
    if (!m || !(m->text = strdup(text ? text : ""))) {
        free(m);
        respond(wsi, r, 500, error_json("out of memory"));
        return;
    }
    snprintf(m->channel, sizeof(m->channel), "%s", channel);
    snprintf(m->user, sizeof(m->user), "%s", user);
    if (thread_ts) snprintf(m->thread_ts, sizeof(m->thread_ts), "%s", thread_ts);
    sf_next_ts(S.st, wall_us(), m->ts);
    sf_msg_add_version(m, m->text);
    sf_msg_add(S.st, m);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "channel", json_object_new_string(m->channel));
    json_object_object_add(o, "ts", json_object_new_string(m->ts));
    respond_json(wsi, r, 200, o);
}

/* ---------- load driver ---------- */

static void load_tick(lws_sorted_usec_list_t *sul);

static void load_ack(sf_env *e) {
    load *L = &S.load;
    if (!L->active || !e || e->load_idx < 0 || e->load_gen != L->gen || e->load_idx >= L->count) return;
    if (L->lat[e->load_idx] < 0) {
        L->acked++;
        if (e->answered_in_ack) L->answered_in_ack++;
    }
    L->lat[e->load_idx] = e->latency_us;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void load_finish(void) {
    load *L = &S.load;
    int64_t lb50 = 0, lb99 = 0;
    int lb_n = 0;
    sf_loopback_finish(L->lb, &lb50, &lb99, &lb_n);
    L->lb = NULL;
    int64_t deadline = S.st->ack_deadline_us;
    size_t n = 0;
    int late = 0;
    for (int i = 0; i < L->sent; i++) {
        if (L->lat[i] < 0) {
            late++;
            continue;
        }
        if (L->lat[i] > deadline) late++;
        L->lat[n++] = L->lat[i];
    }
    qsort(L->lat, n, sizeof(*L->lat), cmp_i64);
    json_object *o = json_object_new_object(), *a = json_object_new_object(), *lbo = json_object_new_object();
    json_object_object_add(o, "sent", json_object_new_int(L->sent));
    json_object_object_add(o, "acked", json_object_new_int((int)n));
    json_object_object_add(o, "answered_in_ack", json_object_new_int(L->answered_in_ack));
    json_object_object_add(o, "late", json_object_new_int(late));
    json_object_object_add(o, "unacked", json_object_new_int(L->sent - (int)n));
    json_object_object_add(o, "duration_ms", json_object_new_int64((mono_us() - L->start_us) / 1000));
    json_object_object_add(a, "p50", json_object_new_int64(sf_percentile(L->lat, n, 0.50)));
    json_object_object_add(a, "p90", json_object_new_int64(sf_percentile(L->lat, n, 0.90)));
    json_object_object_add(a, "p99", json_object_new_int64(sf_percentile(L->lat, n, 0.99)));
    json_object_object_add(a, "max", json_object_new_int64(n ? L->lat[n - 1] : 0));
    json_object_object_add(o, "ack_us", a);
    json_object_object_add(lbo, "p50", json_object_new_int64(lb50));
    json_object_object_add(lbo, "p99", json_object_new_int64(lb99));
    json_object_object_add(lbo, "trips", json_object_new_int(lb_n));
    json_object_object_add(o, "loopback_us", lbo);
    char sent[16], acked[16], p50[24];
    snprintf(sent, sizeof(sent), "%d", L->sent);
    snprintf(acked, sizeof(acked), "%zu", n);
    snprintf(p50, sizeof(p50), "%" PRId64, sf_percentile(L->lat, n, 0.50));
    nm_log(NM_LOG_INFO, "load done", "sent", sent, "acked", acked, "ack_p50_us", p50, NULL);
    struct lws *wsi = L->http_wsi;
    pss *p = wsi ? lws_wsi_user(wsi) : NULL;
    if (p && p->req) respond_json(wsi, p->req, 200, o);
    else json_object_put(o);
    free(L->lat);
    free(L->text);
    L->lat = NULL;
    L->text = NULL;
    L->http_wsi = NULL;
    L->active = false;
}

static void load_tick(lws_sorted_usec_list_t *sul) {
    (void)sul;
    load *L = &S.load;
    int64_t now = mono_us();
    if (!L->sending_done) {
        int64_t due = (now - L->start_us) * L->rate / 1000000 + 1;
        if (due > L->count) due = L->count;
        while (L->sent < due) {
            live *lc = pick(0);
            sf_slash s = {.user_id = L->user, .channel_id = L->channel, .text = L->text};
            char trigger[SF_ID_MAX], id[SF_ID_MAX];
            json_object *payload = lc ? sf_slash_payload(S.st, &s, trigger) : NULL;
            if (payload) sf_new_envelope_id(S.st, id);
            char *frame = payload ? sf_envelope_frame(id, "slash_commands", true, payload, -1, NULL) : NULL;
            json_object_put(payload);
            if (!lc || !push_envelope(lc, id, "slash_commands", -1, frame, L->sent)) {
                /* No connection left (or its queue is full): stop sending. */
                L->sending_done = true;
                break;
            }
            L->sent++;
        }
        if (L->sent >= L->count) L->sending_done = true;
        if (L->sending_done) L->last_sent_us = now;
    }
    if (L->sending_done) {
        if (L->acked >= L->sent || now - L->last_sent_us > S.st->ack_deadline_us + SF_LOAD_GRACE_US) {
            load_finish();
            return;
        }
        lws_sul_schedule(S.ctx, 0, &L->sul, load_tick, 2 * LWS_US_PER_MS);
        return;
    }
    int64_t next = L->start_us + (int64_t)L->sent * 1000000 / L->rate - now;
    lws_sul_schedule(S.ctx, 0, &L->sul, load_tick, next > 100 ? next : 100);
}

static void ctl_load(struct lws *wsi, http_req *r, json_object *b) {
    load *L = &S.load;
    int64_t rate = 1000, count = 1000;
    const char *user = jstr(b, "user_id"), *channel = jstr(b, "channel_id"), *text = jstr(b, "text");
    if (jint(b, "rate", &rate) != 0 || jint(b, "count", &count) != 0 || rate < 1 || rate > SF_LOAD_MAX_RATE ||
        count < 1 || count > SF_LOAD_MAX_COUNT || (user && !id_ok(user)) || (channel && !id_ok(channel)) ||
        (text && strlen(text) > 4096)) {
        respond(wsi, r, 400, error_json("rate 1..100000, count 1..50000; user_id, channel_id, text strings"));
        return;
    }
    if (L->active) {
        respond(wsi, r, 409, error_json("a load is already running"));
        return;
    }
    if (!pick(0)) {
        respond(wsi, r, 409, error_json("no open connection"));
        return;
    }
    L->lat = malloc((size_t)count * sizeof(*L->lat));
    L->text = strdup(text ? text : "status web");
    if (!L->lat || !L->text) {
        free(L->lat);
        free(L->text);
        L->lat = NULL;
        L->text = NULL;
        respond(wsi, r, 500, error_json("out of memory"));
        return;
    }
    for (int64_t i = 0; i < count; i++) L->lat[i] = -1;
    snprintf(L->user, sizeof(L->user), "%s", user ? user : "U0REQUESTER");
    snprintf(L->channel, sizeof(L->channel), "%s", channel ? channel : "C0DEPLOY");
    L->active = true;
    L->sending_done = false;
    L->gen++;
    L->rate = (int)rate;
    L->count = (int)count;
    L->sent = L->acked = L->answered_in_ack = 0;
    L->http_wsi = wsi;
    L->start_us = mono_us();
    /* The loopback floor is measured during the same run, spread over it. */
    int64_t run_us = count * 1000000 / rate;
    int64_t spacing = run_us / SF_LOOPBACK_TRIPS;
    L->lb = sf_loopback_start(SF_LOOPBACK_TRIPS, spacing > 100000 ? 100000 : spacing);
    load_tick(&L->sul);
    /* The answer comes from load_finish; lws has no timeout on a request
     * whose body is complete, so the client just waits. */
}

static const struct ctl_route {
    const char *verb, *path;
    ctl_fn fn;
} ctl_routes[] = {
    {"POST", "/_fake/slash", ctl_slash},
    {"POST", "/_fake/envelope", ctl_envelope},
    {"POST", "/_fake/redeliver", ctl_redeliver},
    {"POST", "/_fake/disconnect", ctl_disconnect},
    {"POST", "/_fake/drop", ctl_drop},
    {"POST", "/_fake/halfopen", ctl_halfopen},
    {"POST", "/_fake/ratelimit", ctl_ratelimit},
    {"POST", "/_fake/fail", ctl_fail},
    {"POST", "/_fake/message", ctl_message},
    {"POST", "/_fake/load", ctl_load},
    {"POST", "/_fake/reset", ctl_reset},
    {"GET", "/_fake/calls", ctl_calls},
    {"GET", "/_fake/messages", ctl_messages},
    {"GET", "/_fake/acks", ctl_acks},
    {"GET", "/_fake/connections", ctl_connections},
};

static void dispatch_ctl(struct lws *wsi, http_req *r) {
    const struct ctl_route *route = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof(ctl_routes) / sizeof(ctl_routes[0]); i++) {
        if (strcmp(ctl_routes[i].path, r->path) != 0) continue;
        path_known = true;
        if (strcmp(ctl_routes[i].verb, r->verb) == 0) route = &ctl_routes[i];
    }
    if (!route) {
        respond(wsi, r, path_known ? 405 : 404, error_json(path_known ? "method not allowed" : "not found"));
        return;
    }
    json_object *body = NULL;
    if (r->body.len > 0) {
        json_tokener *tok = json_tokener_new();
        body = tok ? json_tokener_parse_ex(tok, r->body.data, (int)r->body.len) : NULL;
        bool complete = tok && json_tokener_get_error(tok) == json_tokener_success &&
                        json_tokener_get_parse_end(tok) == r->body.len;
        if (tok) json_tokener_free(tok);
        if (!complete || !json_object_is_type(body, json_type_object)) {
            json_object_put(body);
            respond(wsi, r, 400, error_json("body must be a JSON object"));
            return;
        }
    } else {
        body = json_object_new_object();
    }
    route->fn(wsi, r, body);
    json_object_put(body);
}

/* ---------- HTTP requests ---------- */

static void dispatch(struct lws *wsi, http_req *r) {
    if (r->bad_head) {
        respond(wsi, r, r->bad_status,
                error_json(r->bad_status == 413   ? "request body over 1 MiB"
                           : r->bad_status == 411 ? "a Content-Length is required (no chunked bodies)"
                                                  : "request too long"));
        r->close_after = true;
        return;
    }
    if (strncmp(r->path, "/api/", 5) == 0) {
        const char *method = r->path + 5;
        sf_response out;
        if (r->too_big) {
            sf_webapi_reject(S.st, r->verb, method, 413, "request_too_large", wall_us(), &out);
            r->close_after = true;
        } else {
            sf_request rq = {.verb = r->verb,
                             .method = method,
                             .authorization = r->auth,
                             .content_type = r->ctype[0] ? r->ctype : NULL,
                             .query = r->query,
                             .body = r->body.data,
                             .body_len = r->body.len};
            sf_webapi_handle(S.st, &rq, wall_us(), &out);
        }
        r->retry_after = out.retry_after;
        respond(wsi, r, out.status, out.body);
        return;
    }
    if (r->too_big) {
        respond(wsi, r, 413, error_json("request body over 1 MiB"));
        r->close_after = true;
        return;
    }
    if (strncmp(r->path, "/_fake/", 7) == 0) {
        dispatch_ctl(wsi, r);
        return;
    }
    if (strncmp(r->path, "/commands/", 10) == 0 || strncmp(r->path, "/actions/", 9) == 0) {
        if (strcmp(r->verb, "POST") != 0) {
            respond(wsi, r, 405, error_json("method not allowed"));
            return;
        }
        sf_response out;
        sf_webapi_response_url(S.st, r->path, r->ctype[0] ? r->ctype : NULL, r->body.data, r->body.len, wall_us(),
                               &out);
        respond(wsi, r, out.status, out.body);
        return;
    }
    respond(wsi, r, 404, error_json("not found"));
}

static const char *const verbs[] = {"GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD"};

static int on_http(struct lws *wsi, pss *p, const char *uri) {
    http_req_free(p);
    http_req *r = calloc(1, sizeof(*r));
    if (!r) return -1;
    p->req = r;
    nm_buf_init(&r->body, SF_MAX_BODY);
    char *up = NULL;
    int ulen = 0;
    int m = lws_http_get_uri_and_method(wsi, &up, &ulen);
    snprintf(r->verb, sizeof(r->verb), "%s", m >= 0 && (size_t)m < sizeof(verbs) / sizeof(verbs[0]) ? verbs[m] : "?");
    if (!uri || strlen(uri) >= sizeof(r->path)) {
        r->bad_head = true;
        r->bad_status = 414;
    } else {
        snprintf(r->path, sizeof(r->path), "%s", uri);
    }
    int alen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (alen > 0) {
        char *a = calloc(1, (size_t)alen + 1);
        if (!a) return -1;
        if (alen < SF_MAX_AUTH && lws_hdr_copy(wsi, a, alen + 1, WSI_TOKEN_HTTP_AUTHORIZATION) >= 0) {
            r->auth = a;
        } else {
            free(a);
            r->auth = strdup("Bearer !"); /* over the ceiling: an invalid token */
        }
    }
    if (lws_hdr_copy(wsi, r->ctype, sizeof(r->ctype), WSI_TOKEN_HTTP_CONTENT_TYPE) < 0) r->ctype[0] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) > SF_MAX_QUERY) {
        r->bad_head = true;
        r->bad_status = 414;
    } else if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) > 0) {
        /* lws has already %-decoded each argument and turned '+' into ' '. */
        static char arg[SF_MAX_QUERY + 1];
        r->query = json_object_new_object();
        for (int i = 0; lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++) {
            char *eq = strchr(arg, '=');
            if (eq) *eq = '\0';
            if (arg[0]) json_object_object_add(r->query, arg, json_object_new_string(eq ? eq + 1 : ""));
        }
    }
    char cl[32];
    bool has_length = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (has_length && strtoull(cl, NULL, 10) > SF_MAX_BODY) {
        /* Answer before the body: a client that sent Expect: 100-continue
         * stops there; the connection closes after the answer. */
        r->bad_head = true;
        r->bad_status = 413;
        if (strncmp(r->path, "/api/", 5) == 0) {
            sf_response out;
            sf_webapi_reject(S.st, r->verb, r->path + 5, 413, "request_too_large", wall_us(), &out);
            respond(wsi, r, 413, out.body);
            r->close_after = true;
            return 0;
        }
        dispatch(wsi, r);
        return 0;
    }
    if (strcmp(r->verb, "POST") == 0 && has_length) return 0; /* the body comes, then BODY_COMPLETION */
    if (strcmp(r->verb, "POST") == 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* lws 4.1 does not decode chunked request bodies. */
        r->bad_head = true;
        r->bad_status = 411;
    }
    dispatch(wsi, r);
    return 0;
}

static int on_http_body(pss *p, const void *in, size_t len) {
    http_req *r = p->req;
    if (!r || r->too_big || !len) return 0;
    if (nm_buf_append(&r->body, in, len) != NM_BUF_OK) r->too_big = true;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(wsi, p, in);
    case LWS_CALLBACK_HTTP_BODY:
        return on_http_body(p, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p && p->req && !p->req->answered) dispatch(wsi, p->req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return p ? on_http_writeable(wsi, p) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (S.load.http_wsi == wsi) S.load.http_wsi = NULL;
        if (p) http_req_free(p);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return on_confirm_upgrade(wsi, in);
    case LWS_CALLBACK_ESTABLISHED:
        if (p) http_req_free(p);
        return on_ws_open(wsi, p);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_ws_writeable(wsi, p);
    case LWS_CALLBACK_RECEIVE:
        return on_ws_receive(wsi, p, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        if (p && p->lc) {
            sf_conn_rec *rec = sf_conn_find(S.st, p->lc->id);
            if (rec) rec->pongs_received++;
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (p && p->lc) {
            sf_conn_rec *rec = sf_conn_find(S.st, p->lc->id);
            if (rec) rec->client_close = true;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (p) on_ws_closed(p);
        return 0;
    default:
        return 0;
    }
}

/* ---------- startup ---------- */

static void on_signal(int sig) {
    (void)sig;
    S.stop = 1;
    if (S.ctx) lws_cancel_service(S.ctx);
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: slack-fake --port N --app-token xapp-... --bot-token xoxb-... [options]\n"
            "\n"
            "A fake Slack (Web API + Socket Mode) on 127.0.0.1 for nomatron's tests (docs/SLACK-FAKE.md).\n"
            "Point chat.slack.api_url at http://127.0.0.1:PORT/api/.\n"
            "\n"
            "  --port N               port to listen on; 0 picks a free one\n"
            "  --team ID              workspace id (default T0TEAM)\n"
            "  --domain NAME          workspace domain, for permalinks and auth.test (default acme)\n"
            "  --app-id ID            app id in hello and payloads (default A0NOMATRON)\n"
            "  --app-token xapp-...   the only token apps.connections.open accepts (Authorization header)\n"
            "  --bot-token xoxb-...   the only token the other methods accept\n"
            "  --users FILE           JSON array of users.info user objects (default: built-in users)\n"
            "  --ping-interval S      ping every open connection every S seconds, 0..24 (default 20; 0 = never)\n"
            "  --ack-deadline-ms MS   an envelope not acked within MS is late (default 3000)\n"
            "  --connection-time S    hello debug_info.approximate_connection_time (default 18060)\n"
            "  --seed N               seed for ids, tickets and ts-independent randomness\n"
            "  --log-level L          debug|info|warn|error|off (default info; stderr, logfmt)\n"
            "  --tls-cert FILE        serve TLS with this certificate (PEM; with --tls-key): https, wss\n"
            "  --tls-key FILE         its private key (PEM)\n"
            "  --host NAME            the host name in the URLs it hands out (default 127.0.0.1; with\n"
            "                         TLS, a name the certificate holds, e.g. localhost)\n"
            "\n"
            "Web API under /api/: apps.connections.open, auth.test, chat.postMessage, chat.update,\n"
            "chat.postEphemeral, chat.getPermalink, users.info, conversations.info.\n"
            "WebSocket: ws://HOST:PORT/link/?ticket=T (wss:// with TLS; single-use ticket from\n"
            "apps.connections.open).\n"
            "\n"
            "Control API (JSON in and out, no token):\n"
            "  POST /_fake/slash       {user_id,channel_id,text[,team_id,command,trigger_id,connection]}\n"
            "  POST /_fake/envelope    {type,payload[,retry_attempt,retry_reason,envelope_id,\n"
            "                           accepts_response_payload,connection]}\n"
            "  POST /_fake/redeliver   {envelope_id[,connection]}: retry_attempt+1, retry_reason timeout\n"
            "  POST /_fake/disconnect  {reason[,close_after_ms,close_frame,connection]}\n"
            "  POST /_fake/drop        close every connection's TCP socket, no close frame\n"
            "  POST /_fake/halfopen    existing connections get nothing and are not read\n"
            "  POST /_fake/ratelimit   {method,count,retry_after}: the next count calls get 429\n"
            "  POST /_fake/fail        {method,error,count}: the next count calls get ok:false\n"
            "  POST /_fake/message     {channel,user,text[,thread_ts]}: a message not posted by the bot\n"
            "  POST /_fake/load        {rate,count[,user_id,channel_id,text]}: slash envelopes, ack stats\n"
            "  POST /_fake/reset       forget calls, messages, acks, faults\n"
            "  GET  /_fake/calls[?method=M]   /_fake/messages[?channel=C]   /_fake/acks   /_fake/connections\n"
            "\n"
            "Prints `slack-fake listening on 127.0.0.1:PORT` when ready. SIGTERM/SIGINT stop it (exit 0).\n");
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi) {
        fprintf(stderr, "slack-fake: %s wants an integer %ld..%ld, got \"%s\"\n", opt, lo, hi, v);
        return -1;
    }
    *out = n;
    return 0;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "slack-fake: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    nm_buf b;
    nm_buf_init(&b, 16 * 1024 * 1024);
    char chunk[65536];
    size_t n;
    int rc = NM_BUF_OK;
    while (rc == NM_BUF_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) rc = nm_buf_append(&b, chunk, n);
    bool err = ferror(f);
    fclose(f);
    if (rc != NM_BUF_OK || err) {
        fprintf(stderr, "slack-fake: cannot read %s\n", path);
        nm_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return nm_buf_steal(&b);
}

static const struct lws_protocols protocols[] = {
    {"slack-fake", callback, sizeof(pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* No lws validity pings or idle hang-ups: pings are ours (--ping-interval). */
static const lws_retry_bo_t no_validity = {0};

int main(int argc, char **argv) {
    long port = -1, ping = 20, deadline = 3000, conn_time = 18060;
    const char *team = "T0TEAM", *domain = "acme", *app_id = "A0NOMATRON", *app_token = NULL, *bot_token = NULL;
    const char *users = NULL, *level = "info", *tls_cert = NULL, *tls_key = NULL, *host = "127.0.0.1";
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "slack-fake: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0) {
            if (parse_int(a, v, 0, 65535, &port) != 0) return 2;
        } else if (strcmp(a, "--ping-interval") == 0) {
            /* A2.5: if the server pings, the interval must stay under ~25 s. */
            if (parse_int(a, v, 0, 24, &ping) != 0) return 2;
        } else if (strcmp(a, "--ack-deadline-ms") == 0) {
            if (parse_int(a, v, 1, 600000, &deadline) != 0) return 2;
        } else if (strcmp(a, "--connection-time") == 0) {
            if (parse_int(a, v, 1, 86400 * 7, &conn_time) != 0) return 2;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (!*v || *end || errno) {
                fprintf(stderr, "slack-fake: --seed wants an unsigned integer\n");
                return 2;
            }
        } else if (strcmp(a, "--team") == 0) team = v;
        else if (strcmp(a, "--domain") == 0) domain = v;
        else if (strcmp(a, "--app-id") == 0) app_id = v;
        else if (strcmp(a, "--app-token") == 0) app_token = v;
        else if (strcmp(a, "--bot-token") == 0) bot_token = v;
        else if (strcmp(a, "--users") == 0) users = v;
        else if (strcmp(a, "--log-level") == 0) level = v;
        else if (strcmp(a, "--tls-cert") == 0) tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0) tls_key = v;
        else if (strcmp(a, "--host") == 0) host = v;
        else {
            fprintf(stderr, "slack-fake: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (port < 0 || !app_token || !bot_token) {
        fprintf(stderr, "slack-fake: --port, --app-token and --bot-token are required\n");
        usage(stderr);
        return 2;
    }
    /* A1: app-level tokens start xapp-, bot tokens xoxb-. */
    if (strncmp(app_token, "xapp-", 5) != 0 || strncmp(bot_token, "xoxb-", 5) != 0) {
        fprintf(stderr, "slack-fake: --app-token must start with xapp- and --bot-token with xoxb-\n");
        return 2;
    }
    if (!tls_cert != !tls_key) {
        fprintf(stderr, "slack-fake: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (!id_ok(team) || !id_ok(domain) || !id_ok(app_id) || !id_ok(host)) {
        fprintf(stderr, "slack-fake: --team, --domain, --app-id and --host must be 1..63 bytes\n");
        return 2;
    }
    int lvl = nm_log_level_parse(level);
    if (lvl < 0) {
        fprintf(stderr, "slack-fake: --log-level wants debug|info|warn|error|off\n");
        return 2;
    }
    nm_log_set_level((enum nm_log_level)lvl);
    if (!seed) seed = (unsigned long long)wall_us() ^ (unsigned long long)getpid() << 32;

    sf_config cfg = {.team_id = team,
                     .domain = domain,
                     .app_id = app_id,
                     .app_token = app_token,
                     .bot_token = bot_token,
                     .host = host,
                     .tls = tls_cert != NULL,
                     .ack_deadline_ms = deadline,
                     .connection_time_s = (int)conn_time,
                     .seed = seed};
    S.st = sf_state_new(&cfg);
    if (!S.st) {
        fprintf(stderr, "slack-fake: out of memory\n");
        return 1;
    }
    if (users) {
        size_t len = 0;
        char *text = read_file(users, &len);
        char err[256];
        if (!text || sf_users_load(S.st, text, len, err, sizeof(err)) != 0) {
            if (text) fprintf(stderr, "slack-fake: %s: %s\n", users, err);
            free(text);
            sf_state_free(S.st);
            return 1;
        }
        free(text);
    }
    S.ping_interval_s = (int)ping;

    lws_set_log_level(lvl == NM_LOG_DEBUG ? LLL_ERR | LLL_WARN : 0, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* A context option in lws 4.1: text frames must be UTF-8 (else close 1007). */
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (tls_cert) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.max_http_header_data = SF_MAX_QUERY + 4096;
    S.ctx = lws_create_context(&info);
    if (!S.ctx) {
        fprintf(stderr, "slack-fake: cannot create the lws context\n");
        sf_state_free(S.st);
        return 1;
    }
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof(vinfo));
    vinfo.port = (int)port;
    vinfo.iface = "127.0.0.1";
    vinfo.protocols = protocols;
    vinfo.vhost_name = "slack-fake";
    vinfo.server_string = "slack-fake";
    vinfo.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    vinfo.retry_and_idle_policy = &no_validity;
    if (tls_cert) vinfo.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;   /* lws reads it per vhost too */
    vinfo.alpn = "http/1.1";   /* the fake speaks HTTP/1.1 only; lws would offer h2 */
    vinfo.ssl_cert_filepath = tls_cert;
    vinfo.ssl_private_key_filepath = tls_key;
    S.vh = lws_create_vhost(S.ctx, &vinfo);
    if (!S.vh) {
        fprintf(stderr, "slack-fake: cannot listen on 127.0.0.1:%ld\n", port);
        lws_context_destroy(S.ctx);
        sf_state_free(S.st);
        return 1;
    }
    S.st->port = lws_get_vhost_listen_port(S.vh);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (S.ping_interval_s > 0)
        lws_sul_schedule(S.ctx, 0, &S.ping_sul, on_ping_timer, (lws_usec_t)S.ping_interval_s * LWS_US_PER_SEC);

    printf("slack-fake listening on 127.0.0.1:%d\n", S.st->port);
    fflush(stdout);

    while (!S.stop)
        if (lws_service(S.ctx, 0) < 0) break;

    if (S.load.lb) {
        int64_t a, b;
        int n;
        sf_loopback_finish(S.load.lb, &a, &b, &n);
    }
    lws_sul_cancel(&S.ping_sul);
    lws_sul_cancel(&S.load.sul);
    lws_context_destroy(S.ctx);
    free(S.load.lat);
    free(S.load.text);
    sf_state_free(S.st);
    return 0;
}
