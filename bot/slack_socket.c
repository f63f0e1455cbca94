#include "slack_socket.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "lws_uv.h"

#define SLOTS (2 * SLACK_SOCKET_MAX_CONNECTIONS)   /* room for a replacement per connection */
#define OUT_MAX 64                                 /* acks queued on one connection before it is dropped */
#define CLOSE_GRACE_MS 300                         /* close frames out before the context goes */
#define ACK_MAX 256                                /* an ack frame: {"envelope_id":"..."} */
#define ACK_ANSWER_MAX (64 * 1024)                 /* an ack with an answer: 4,000 characters, escaped twice */

/* Reconnect delays: the first retry is quick (a dropped socket is usually
 * fine again at once), then slower; lws adds the jitter. */
static const uint32_t backoff_table[] = {250, 1000, 2000, 5000, 10000, 30000};
static const lws_retry_bo_t backoff = {
    .retry_ms_table = backoff_table,
    .retry_ms_table_count = sizeof(backoff_table) / sizeof(backoff_table[0]),
    .conceal_count = UINT16_MAX,   /* never give up: /readyz says when nothing is up */
    .jitter_percent = 20,
};

enum sc_state { SC_IDLE, SC_WANT_URL, SC_RESOLVING, SC_CONNECTING, SC_OPEN, SC_READY, SC_WAIT };

typedef struct pending_env {
    struct pending_env *next;
    bool drop;    /* malformed: acknowledged, not handed over */
    slack_frame f;
} pending_env;

/* The ack of the envelope being handed over on the fast path (ack_now). */
struct slack_ack {
    const char *envelope_id;
    bool can_respond;   /* the envelope accepts a response payload (slash commands) */
    bool answered;
    nm_buf frame;       /* LWS_PRE bytes, then the ack frame once built */
};

typedef struct sconn {
    slack_socket *s;
    int idx;
    enum sc_state st;
    bool in_use;             /* a slot that should be (or is being) connected */
    bool draining;           /* asked to refresh: replaced once a new connection is ready */
    int replaced_by;         /* slot of the replacement, -1 none */
    struct lws *wsi;
    bool tls;
    char host[256], addr[64], path[1024];
    int port;
    uv_getaddrinfo_t gai;
    bool resolving;
    uv_timer_t retry;
    uint16_t ctry;           /* backoff step */
    nm_buf rx;               /* fragments of one message */
    char out[OUT_MAX][ACK_MAX];   /* acks to write, oldest first */
    size_t out_len[OUT_MAX];
    int out_head, out_n;
    bool ping_due, ping_out;
    int64_t opened_at, last_rx;
    pending_env *acked;      /* envelopes whose ack was queued, in order */
    pending_env **acked_tail;
} sconn;

struct slack_socket {
    uv_loop_t *loop;
    struct lws_context *ctx;
    lws_uv *lu;              /* the context's safe destroy */
    slack_socket_opts o;
    char ca_file[512];
    slack_socket_hooks h;
    void *ud;
    sconn c[SLOTS];
    bool url_asked;          /* need_url outstanding */
    bool closing;
    int ready_reported;
    uv_timer_t tick;         /* liveness */
    pending_env *todo;       /* acked and written, waiting for `deliver` */
    pending_env **todo_tail;
    int handles_open;
    void (*closed)(void *);
    void *closed_ud;
    slack_socket_stats st;
};

static void conn_lost(sconn *c, const char *why);
static void want_url(sconn *c);
static void maybe_done(slack_socket *s);
static void destroy_when_quiet(slack_socket *s);
static int write_one(sconn *c);

/* ---- URL ---- */

int slack_ws_url_parse(const char *url, bool *tls, char *host, size_t hostlen, int *port, char *path,
                       size_t pathlen) {
    if (!url) return -1;
    const char *p;
    if (strncmp(url, "wss://", 6) == 0) {
        *tls = true;
        p = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        *tls = false;
        p = url + 5;
    } else {
        return -1;
    }
    *port = *tls ? 443 : 80;
    const char *end = p + strcspn(p, "/?#");
    const char *hs = p, *he;
    const char *portp = NULL;
    if (*p == '[') {   /* IPv6 literal */
        he = memchr(p, ']', (size_t)(end - p));
        if (!he) return -1;
        hs = p + 1;
        if (he + 1 < end) {
            if (he[1] != ':') return -1;
            portp = he + 2;
        }
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (he) portp = he + 1;
        else he = end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostlen) return -1;
    for (const char *q = hs; q < he; q++)
        if (*q == '@' || (unsigned char)*q < 0x21 || *q == 0x7f) return -1;   /* no userinfo, blanks, controls */
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (portp) {
        long v = 0;
        if (portp == end) return -1;
        for (const char *q = portp; q < end; q++) {
            if (*q < '0' || *q > '9') return -1;
            v = v * 10 + (*q - '0');
            if (v > 65535) return -1;
        }
        if (v == 0) return -1;
        *port = (int)v;
    }
    const char *rest = end;
    if (*rest == '#') rest = "";
    size_t rl = strcspn(rest, "#");
    if (rl + 2 > pathlen) return -1;
    if (rl == 0 || rest[0] != '/') {
        path[0] = '/';
        memcpy(path + 1, rest, rl);
        path[rl + 1] = '\0';
    } else {
        memcpy(path, rest, rl);
        path[rl] = '\0';
    }
    for (const char *q = path; *q; q++)
        if ((unsigned char)*q < 0x21 || *q == 0x7f) return -1;
    return 0;
}

/* ---- counting ready connections ---- */

/* A draining connection still carries envelopes until Slack closes it or
 * its replacement is ready: it counts. */
static int count_ready(const slack_socket *s) {
    int n = 0;
    for (int i = 0; i < SLOTS; i++)
        if (s->c[i].st == SC_READY) n++;
    return n;
}

static void report_state(slack_socket *s) {
    int n = count_ready(s);
    if (n == s->ready_reported || s->closing) return;
    s->ready_reported = n;
    if (s->h.state) s->h.state(s->ud, n);
}

/* ---- envelopes: acked first, handed over after ---- */

static void deliver(slack_socket *s) {
    while (s->todo && !s->closing) {
        pending_env *e = s->todo;
        s->todo = e->next;
        if (!s->todo) s->todo_tail = &s->todo;
        s->st.envelopes++;
        if (!e->drop) s->h.envelope(s->ud, &e->f, NULL);
        free(e);
    }
}

static int queue_out(sconn *c, const char *data, size_t len) {
    if (c->out_n == OUT_MAX || len >= ACK_MAX) return -1;
    int slot = (c->out_head + c->out_n) % OUT_MAX;
    memcpy(c->out[slot], data, len);
    c->out_len[slot] = len;
    c->out_n++;
    return 0;
}

int slack_ack_respond(slack_ack *a, const char *payload, size_t len) {
    if (!a || !a->can_respond || a->answered || !payload) return -1;
    if (slack_ack_frame(a->envelope_id, payload, len, &a->frame) != SLACK_PROTO_OK) return -1;
    a->answered = true;
    return 0;
}

/* The common case: nothing waits before this ack on the socket. The owner
 * sees the envelope first, so that an answer it has at once rides in the ack
 * (A2.3, A3.3) instead of costing a Web API call; then the ack is written,
 * still inside this receive callback. The owner does not wait for anything
 * in that call (slack_socket.h), so the ack still leaves within microseconds. */
static void ack_now(sconn *c, const slack_frame *f, bool drop) {
    static const char headroom[LWS_PRE];
    slack_socket *s = c->s;
    slack_ack a = {.envelope_id = f->envelope_id, .can_respond = f->accepts_response_payload && !drop};
    nm_buf_init(&a.frame, LWS_PRE + ACK_ANSWER_MAX);
    if (nm_buf_append(&a.frame, headroom, LWS_PRE) != NM_BUF_OK) goto fail;
    s->st.envelopes++;
    if (!drop) s->h.envelope(s->ud, f, &a);
    if (!a.answered && slack_ack_frame(f->envelope_id, NULL, 0, &a.frame) != SLACK_PROTO_OK) goto fail;
    size_t n = a.frame.len - LWS_PRE;
    /* lws keeps what the socket does not take now and sends it first. */
    if (!c->wsi || lws_write(c->wsi, (unsigned char *)a.frame.data + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n) goto fail;
    s->st.acks++;
    nm_buf_free(&a.frame);
    return;
fail:
    nm_log(NM_LOG_WARN, "slack: cannot acknowledge an envelope; dropping the connection", "envelope", f->envelope_id,
           "answered", a.answered ? "yes" : "no", NULL);
    nm_buf_free(&a.frame);
    if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void on_frame(sconn *c, const char *raw, size_t len) {
    slack_socket *s = c->s;
    slack_frame f;
    char err[160];
    bool drop = false;
    if (slack_frame_parse(raw, len, &f, err, sizeof(err)) != SLACK_PROTO_OK) {
        nm_log(NM_LOG_WARN, "slack: malformed frame ignored", "error", err, NULL);
        if (!f.envelope_id[0]) return;
        drop = true;   /* still acked: a redelivery would be just as malformed */
        f.kind = SLACK_FRAME_OTHER;
    }
    switch (f.kind) {
    case SLACK_FRAME_HELLO:
        if (c->st != SC_READY) {
            c->st = SC_READY;
            c->ctry = 0;
            char n[16], slot[16];
            snprintf(n, sizeof(n), "%d", f.hello.num_connections);
            snprintf(slot, sizeof(slot), "%d", c->idx);
            nm_log(NM_LOG_INFO, "slack: connection ready", "slot", slot, "num_connections", n, NULL);
            /* A replacement is up: the connection it replaces can go now. */
            for (int i = 0; i < SLOTS; i++) {
                sconn *o = &s->c[i];
                if (o->draining && o->replaced_by == c->idx) {
                    o->in_use = false;
                    if (o->wsi) lws_set_timeout(o->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                }
            }
            report_state(s);
        }
        return;
    case SLACK_FRAME_DISCONNECT: {
        nm_log(NM_LOG_INFO, "slack: disconnect requested", "reason", f.disconnect.reason, NULL);
        if (c->draining) return;
        if (strcmp(f.disconnect.reason, "link_disabled") == 0) {
            /* Socket Mode is off in the app's settings: retrying soon will not help. */
            nm_log(NM_LOG_ERROR, "slack: Socket Mode is disabled for this app; turn it on in the app settings", NULL);
            c->ctry = (uint16_t)backoff.retry_ms_table_count;
            if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            return;
        }
        /* refresh_requested, warning, or anything else: a replacement first. */
        for (int i = 0; i < SLOTS; i++) {
            sconn *n = &s->c[i];
            if (n->in_use) continue;
            s->st.refreshes++;
            c->draining = true;
            c->replaced_by = i;
            n->in_use = true;
            n->ctry = 0;
            want_url(n);
            report_state(s);
            return;
        }
        if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);   /* no room: reconnect */
        return;
    }
    case SLACK_FRAME_SLASH:
    case SLACK_FRAME_INTERACTIVE:
    case SLACK_FRAME_EVENTS:
    case SLACK_FRAME_OTHER:
        break;
    }
    if (!f.envelope_id[0]) return;   /* not an envelope: nothing to ack or handle */
    /* Closing: nothing will handle it, so it is not acknowledged either
     * (Slack redelivers events; the user of a command sees it fail). */
    if (s->closing) return;
    if (c->out_n == 0 && !lws_partial_buffered(c->wsi)) {
        ack_now(c, &f, drop);
        return;
    }
    /* Acks are waiting on a full socket: this one queues behind them and the
     * envelope is handed over once its ack is out. */
    nm_buf ack;
    nm_buf_init(&ack, ACK_MAX - 1);
    pending_env *e = malloc(sizeof(*e));
    if (slack_ack_frame(f.envelope_id, NULL, 0, &ack) != 0 || !e || queue_out(c, ack.data, ack.len) != 0) {
        nm_log(NM_LOG_WARN, "slack: cannot acknowledge an envelope; dropping the connection", "envelope",
               f.envelope_id, NULL);
        free(e);
        nm_buf_free(&ack);
        if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    nm_buf_free(&ack);
    e->next = NULL;
    e->f = f;
    e->drop = drop;
    *c->acked_tail = e;
    c->acked_tail = &e->next;
    lws_callback_on_writable(c->wsi);
}

/* Called after an ack went out: the envelopes up to it move to `todo`. */
static void acks_written(sconn *c, int n) {
    slack_socket *s = c->s;
    while (n-- > 0 && c->acked) {
        pending_env *e = c->acked;
        c->acked = e->next;
        if (!c->acked) c->acked_tail = &c->acked;
        e->next = NULL;
        *s->todo_tail = e;
        s->todo_tail = &e->next;
        s->st.acks++;
    }
    /* Handed over at once: the acks are out, and the owner's work (the
     * core, Web API calls) touches no lws state, so it may run inside this
     * callback. A loop iteration per envelope saved is most of a command's
     * cost at a thousand a second. */
    if (s->todo) deliver(s);
}

/* ---- lws ---- */

/* Writes the oldest queued ack. */
static int write_one(sconn *c) {
    unsigned char buf[LWS_PRE + ACK_MAX];
    int slot = c->out_head;
    memcpy(buf + LWS_PRE, c->out[slot], c->out_len[slot]);
    if (lws_write(c->wsi, buf + LWS_PRE, c->out_len[slot], LWS_WRITE_TEXT) < (int)c->out_len[slot]) return -1;
    c->out_head = (c->out_head + 1) % OUT_MAX;
    c->out_n--;
    acks_written(c, 1);
    return 0;
}

static int on_writeable(sconn *c) {
    unsigned char buf[LWS_PRE];
    if (c->out_n > 0) {
        if (write_one(c) != 0) return -1;
    } else if (c->ping_due) {
        c->ping_due = false;
        c->ping_out = true;
        c->s->st.pings++;
        if (lws_write(c->wsi, buf + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
    }
    if (c->out_n > 0 || c->ping_due) lws_callback_on_writable(c->wsi);
    return 0;
}

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    sconn *c = user;
    /* A connection given up on (silent) may still report in: it is not ours any more. */
    if (c && c->wsi != wsi && reason != LWS_CALLBACK_CLIENT_ESTABLISHED && reason != LWS_CALLBACK_WSI_DESTROY)
        return reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE ? -1 : 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c || c->wsi != wsi) return -1;
        c->st = SC_OPEN;
        c->opened_at = c->last_rx = nm_mono_ms();
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c) return -1;
        c->last_rx = nm_mono_ms();
        c->ping_out = false;
        if (nm_buf_append(&c->rx, in, len) != NM_BUF_OK) {
            nm_log(NM_LOG_WARN, "slack: frame over the ceiling; dropping the connection", NULL);
            return -1;
        }
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            on_frame(c, c->rx.data, c->rx.len);
            nm_buf_reset(&c->rx);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (c) {
            c->last_rx = nm_mono_ms();
            c->ping_out = false;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c) return -1;
        if (c->s->closing) {
            /* Going away on purpose (1001). */
            static const char bye[] = "shutting down";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)bye, sizeof(bye) - 1);
            return -1;
        }
        return on_writeable(c);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            c->wsi = NULL;   /* lws destroys it after this callback */
            /* lws reports a refused certificate as "connect SSL err 1: error:00000001:lib(0)::reason(1)":
             * say what it means. */
            if (c->tls && in && len && strstr((const char *)in, "SSL"))
                nm_log(NM_LOG_WARN, "slack: TLS handshake failed", "host", c->host, "why", (const char *)in, "hint",
                       "the server's certificate is not trusted, or not for this host name; chat.slack.ca_file "
                       "names a CA to trust",
                       NULL);
            conn_lost(c, in && len ? (const char *)in : "connection error");
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            c->wsi = NULL;
            conn_lost(c, "closed");
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c && c->wsi == wsi) {
            c->wsi = NULL;
            conn_lost(c, "closed");
        }
        return 0;
    default: return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"nomatron-slack", lws_cb, 0, 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- connecting ---- */

static void retry_fire(uv_timer_t *t) {
    sconn *c = t->data;
    if (c->s->closing || !c->in_use) return;
    want_url(c);
}

static void schedule_retry(sconn *c) {
    slack_socket *s = c->s;
    char conceal;
    uint32_t ms = lws_retry_get_delay_ms(s->ctx, &backoff, &c->ctry, &conceal);
    c->st = SC_WAIT;
    s->st.reconnects++;
    uv_timer_start(&c->retry, retry_fire, ms, 0);
}

static void conn_lost(sconn *c, const char *why) {
    slack_socket *s = c->s;
    if (c->st == SC_IDLE || c->st == SC_WAIT) return;
    bool was_ready = c->st == SC_READY;
    /* Acks that never went out: Slack redelivers events; the rest is lost to
     * the user, who sees an error after 3 s and can type it again. */
    while (c->acked) {
        pending_env *e = c->acked;
        c->acked = e->next;
        free(e);
    }
    c->acked_tail = &c->acked;
    c->out_n = c->out_head = 0;
    c->ping_due = c->ping_out = false;
    nm_buf_reset(&c->rx);
    c->wsi = NULL;
    c->st = SC_IDLE;
    if (s->closing) {
        destroy_when_quiet(s);
        return;
    }
    {
        nm_log(was_ready ? NM_LOG_WARN : NM_LOG_INFO, "slack: connection lost", "why", why, NULL);
        if (c->draining) {
            c->draining = false;
            c->in_use = false;   /* its replacement carries on */
        } else if (c->in_use) {
            schedule_retry(c);
        }
    }
    report_state(s);
}

static void connect_now(sconn *c) {
    slack_socket *s = c->s;
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = s->ctx;
    i.address = c->addr;
    i.port = c->port;
    i.path = c->path;
    i.host = c->host;
    i.origin = c->host;
    i.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
    i.local_protocol_name = protocols[0].name;
    i.ietf_version_or_minus_one = -1;
    i.userdata = c;
    i.pwsi = &c->wsi;
    c->st = SC_CONNECTING;
    if (!lws_client_connect_via_info(&i)) {
        c->wsi = NULL;
        nm_log(NM_LOG_WARN, "slack: cannot start a connection", "host", c->host, NULL);
        schedule_retry(c);
    }
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    sconn *c = req->data;
    slack_socket *s = c->s;
    c->resolving = false;
    if (s->closing || !c->in_use) {
        if (res) uv_freeaddrinfo(res);
        s->handles_open--;   /* counted as a handle while it was in flight */
        return;
    }
    s->handles_open--;
    if (status != 0 || !res) {
        nm_log(NM_LOG_WARN, "slack: cannot resolve the socket host", "host", c->host, "error", uv_strerror(status),
               NULL);
        if (res) uv_freeaddrinfo(res);
        schedule_retry(c);
        return;
    }
    if (res->ai_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, c->addr, sizeof(c->addr));
    else
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, c->addr, sizeof(c->addr));
    uv_freeaddrinfo(res);
    connect_now(c);
}

static void ask_next_url(slack_socket *s) {
    if (s->url_asked || s->closing) return;
    for (int i = 0; i < SLOTS; i++)
        if (s->c[i].st == SC_WANT_URL) {
            s->url_asked = true;
            s->h.need_url(s->ud);
            return;
        }
}

static void want_url(sconn *c) {
    c->st = SC_WANT_URL;
    ask_next_url(c->s);
}

void slack_socket_give_url(slack_socket *s, const char *url) {
    s->url_asked = false;
    if (s->closing) return;
    sconn *c = NULL;
    for (int i = 0; i < SLOTS && !c; i++)
        if (s->c[i].st == SC_WANT_URL) c = &s->c[i];
    if (!c) return;
    if (slack_ws_url_parse(url, &c->tls, c->host, sizeof(c->host), &c->port, c->path, sizeof(c->path)) != 0) {
        nm_log(NM_LOG_ERROR, "slack: apps.connections.open gave a URL we cannot use", NULL);
        schedule_retry(c);
    } else {
        struct in6_addr a6;
        struct in_addr a4;
        if (inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1) {
            snprintf(c->addr, sizeof(c->addr), "%s", c->host);
            connect_now(c);
        } else {
            struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
            c->gai.data = c;
            c->st = SC_RESOLVING;
            if (uv_getaddrinfo(s->loop, &c->gai, resolved, c->host, NULL, &hints) == 0) {
                c->resolving = true;
                s->handles_open++;
            } else {
                schedule_retry(c);
            }
        }
    }
    ask_next_url(s);
}

void slack_socket_url_failed(slack_socket *s, bool fatal) {
    s->url_asked = false;
    if (s->closing) return;
    for (int i = 0; i < SLOTS; i++) {
        sconn *c = &s->c[i];
        if (c->st != SC_WANT_URL) continue;
        if (fatal) c->ctry = (uint16_t)backoff.retry_ms_table_count;
        schedule_retry(c);
    }
}

/* ---- liveness ---- */

static void tick_fire(uv_timer_t *t) {
    slack_socket *s = t->data;
    int64_t now = nm_mono_ms();
    for (int i = 0; i < SLOTS; i++) {
        sconn *c = &s->c[i];
        if (!c->wsi) continue;
        if (c->st == SC_OPEN && now - c->opened_at > s->o.hello_ms) {
            nm_log(NM_LOG_WARN, "slack: no hello after the upgrade; reconnecting", NULL);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else if (c->st == SC_READY || c->st == SC_OPEN) {
            int64_t quiet = now - c->last_rx;
            if (quiet >= s->o.dead_ms) {
                s->st.dropped_dead++;
                nm_log(NM_LOG_WARN, "slack: connection silent (half-open?); reconnecting", NULL);
                /* lws may linger on a socket that is gone: let it, and
                 * forget it now (its late callbacks are recognised as stale). */
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                c->wsi = NULL;
                conn_lost(c, "silent");
            } else if (quiet >= s->o.ping_ms && !c->ping_out && !c->ping_due) {
                c->ping_due = true;
                lws_callback_on_writable(c->wsi);
            }
        }
    }
}

/* ---- lifecycle ---- */

slack_socket *slack_socket_new(uv_loop_t *loop, const slack_socket_opts *opts, const slack_socket_hooks *hooks,
                               void *ud, char *err, size_t errlen) {
    slack_socket *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->o = *opts;
    if (s->o.num_connections < 1) s->o.num_connections = 1;
    if (s->o.num_connections > SLACK_SOCKET_MAX_CONNECTIONS) s->o.num_connections = SLACK_SOCKET_MAX_CONNECTIONS;
    if (s->o.ping_ms <= 0) s->o.ping_ms = 10000;
    if (s->o.dead_ms <= 0) s->o.dead_ms = 25000;
    if (s->o.hello_ms <= 0) s->o.hello_ms = 10000;
    if (opts->ca_file) snprintf(s->ca_file, sizeof(s->ca_file), "%s", opts->ca_file);
    s->h = *hooks;
    s->ud = ud;
    s->todo_tail = &s->todo;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.gid = -1;
    info.uid = -1;
    info.user = s;
    if (s->ca_file[0]) info.client_ssl_ca_filepath = s->ca_file;
    s->ctx = lws_uv_create(loop, &info, &s->lu);
    if (!s->ctx) {
        snprintf(err, errlen, "cannot create the libwebsockets context for Slack");
        free(s);
        return NULL;
    }
    for (int i = 0; i < SLOTS; i++) {
        sconn *c = &s->c[i];
        c->s = s;
        c->idx = i;
        c->replaced_by = -1;
        c->acked_tail = &c->acked;
        nm_buf_init(&c->rx, SLACK_FRAME_MAX);
        uv_timer_init(loop, &c->retry);
        c->retry.data = c;
        s->handles_open++;
    }
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    s->handles_open += 1;
    return s;
}

void slack_socket_start(slack_socket *s) {
    for (int i = 0; i < s->o.num_connections; i++) {
        s->c[i].in_use = true;
        want_url(&s->c[i]);
    }
    int period = s->o.ping_ms / 4 > 50 ? s->o.ping_ms / 4 : 50;
    uv_timer_start(&s->tick, tick_fire, (uint64_t)period, (uint64_t)period);
}

int slack_socket_ready(const slack_socket *s) { return count_ready(s); }

void slack_socket_get_stats(const slack_socket *s, slack_socket_stats *out) { *out = s->st; }

static void maybe_done(slack_socket *s) {
    if (s->handles_open > 0) return;
    for (int i = 0; i < SLOTS; i++) nm_buf_free(&s->c[i].rx);
    void (*closed)(void *) = s->closed;
    void *ud = s->closed_ud;
    free(s);
    if (closed) closed(ud);
}

static void tick_closed(uv_handle_t *h) {
    slack_socket *s = h->data;
    s->handles_open--;
    maybe_done(s);
}

static void retry_closed(uv_handle_t *h) {
    slack_socket *s = ((sconn *)h->data)->s;
    s->handles_open--;
    maybe_done(s);
}

/* The lws context goes once every connection has closed (or the grace
 * timer ran out): destroying it first would cut them without a close frame. */
static void context_gone(void *ud) {
    slack_socket *s = ud;
    s->handles_open--;
    maybe_done(s);
}

static void destroy_context(slack_socket *s) {
    if (!s->ctx) return;
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, tick_closed);
    s->handles_open++;   /* released by context_gone */
    s->ctx = NULL;
    lws_uv_destroy(s->lu, context_gone, s);
}

static void grace_fire(uv_timer_t *t) { destroy_context(t->data); }

/* Called from lws callbacks: the context is destroyed from the loop, never inside its own callback. */
static void destroy_when_quiet(slack_socket *s) {
    if (!s->ctx) return;
    for (int i = 0; i < SLOTS; i++)
        if (s->c[i].wsi) return;
    uv_timer_start(&s->tick, grace_fire, 0, 0);
}

void slack_socket_close(slack_socket *s, void (*closed)(void *ud), void *ud) {
    if (s->closing) return;
    s->closing = true;
    s->closed = closed;
    s->closed_ud = ud;
    while (s->todo) {
        pending_env *e = s->todo;
        s->todo = e->next;
        free(e);
    }
    bool open = false;
    for (int i = 0; i < SLOTS; i++) {
        sconn *c = &s->c[i];
        while (c->acked) {
            pending_env *e = c->acked;
            c->acked = e->next;
            free(e);
        }
        c->acked_tail = &c->acked;
        c->in_use = false;
        if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
        uv_timer_stop(&c->retry);
        uv_close((uv_handle_t *)&c->retry, retry_closed);
        if (c->wsi) {
            open = true;
            lws_callback_on_writable(c->wsi);   /* sends the close frame */
        }
    }
    if (!open) {
        destroy_context(s);
        return;
    }
    /* The tick timer doubles as the grace timer: a peer that never answers
     * the close does not hold the shutdown for long. */
    uv_timer_stop(&s->tick);
    uv_timer_start(&s->tick, grace_fire, CLOSE_GRACE_MS, 0);
}
