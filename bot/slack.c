#include "slack.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "buf.h"
#include "http_client.h"
#include "log.h"
#include "slack_api.h"
#include "slack_proto.h"
#include "slack_render.h"
#include "slack_socket.h"
#include "states.h"
#include "str.h"

#define SEEN_MAX 1024          /* recent trigger / event IDs remembered against redelivery */
#define SEEN_BUCKETS 2048      /* open hash over the ring: a power of two, twice SEEN_MAX */
#define MESSAGES_MAX 4096      /* request messages followed at once; the oldest is forgotten beyond */
#define HTTP_RESPONSE_MAX (1024 * 1024)
#define BODY_MAX (64 * 1024)   /* one Web API request body */
#define AUTH_RETRY_MS 5000
#define NAMES_MAX 256          /* Slack users whose names are remembered for the log */
#define NOT_OURS_MAX 256       /* requests known not to have a Slack message (other platforms) */
#define RECOVER_EVENTS_MAX 32  /* events kept, in order, while a message is looked up */

/* A request's message in a channel, edited as the request moves. */
typedef struct posted {
    struct posted *next;
    slack_adapter *s;
    char channel[SLACK_ID_LEN];
    char user[SLACK_ID_LEN];   /* who asked: told privately if the message cannot be posted */
    char ts[SLACK_TS_LEN];   /* "" until chat.postMessage answers */
    bool posting;            /* chat.postMessage in flight */
    bool dirty;              /* changed since the last text sent */
    bool final;              /* the request is over: forgotten once the last edit is sent */
    slack_req_view view;
} posted;

/* One slash command on its way through the core. */
typedef struct slack_cmd {
    slack_adapter *s;
    char team[SLACK_ID_LEN];
    char channel[SLACK_ID_LEN];
    char user[SLACK_ID_LEN];
} slack_cmd;

struct slack_adapter {
    uv_loop_t *loop;
    config *cfg;
    bot_core *core;
    dbpool *db;
    http_client *http;
    slack_api *api;
    slack_socket *sock;
    char team_id[SLACK_ID_LEN];    /* configured, else auth.test's */
    char bot_user[SLACK_ID_LEN];
    bool authed, input_stopped, closing;
    uv_timer_t auth_timer;
    posted *msgs;
    int n_msgs;
    /* While a slash command is handed over: its ack, open for an answer the
     * core gives at once, and the command it belongs to. */
    slack_ack *ack;
    const struct slack_cmd *ack_cmd;
    char seen[SEEN_MAX][SLACK_TRIGGER_LEN];   /* a ring of the last SEEN_MAX keys */
    int seen_next;
    int16_t seen_index[SEEN_BUCKETS];          /* key hash -> ring slot + 1 (0 = empty), linear probing */
    struct {
        char id[SLACK_ID_LEN];
        char name[128];            /* "" while users.info is asked */
    } names[NAMES_MAX];            /* a ring: the oldest name is forgotten */
    int names_next;
    struct recovering *recovering; /* requests whose message is being looked up in PostgreSQL */
    int64_t not_ours[NOT_OURS_MAX];
    int not_ours_next;
    int db_writes;                 /* message records in flight on the thread pool */
    int handles;                   /* socket + timer + api still closing */
    void (*closed)(void *);
    void *closed_ud;
    slack_stats st;
};

static void maybe_closed(slack_adapter *s);

/* ---- redelivery ---- */

static uint32_t seen_hash(const char *key) {
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *key; key++) h = (h ^ (unsigned char)*key) * 16777619u;
    return h;
}

/* The bucket holding ring slot `slot` (whose key is k), or -1. */
static int seen_find(const slack_adapter *s, const char *k, int *free_bucket) {
    uint32_t b = seen_hash(k) & (SEEN_BUCKETS - 1);
    for (int n = 0; n < SEEN_BUCKETS; n++, b = (b + 1) & (SEEN_BUCKETS - 1)) {
        int v = s->seen_index[b];
        if (v == 0) {
            if (free_bucket) *free_bucket = (int)b;
            return -1;
        }
        if (strcmp(s->seen[v - 1], k) == 0) return (int)b;
    }
    return -1;
}

/* Removes a bucket and re-seats the probe chain after it (no tombstones). */
static void seen_unindex(slack_adapter *s, int b) {
    s->seen_index[b] = 0;
    for (int n = (b + 1) & (SEEN_BUCKETS - 1); s->seen_index[n]; n = (n + 1) & (SEEN_BUCKETS - 1)) {
        int v = s->seen_index[n];
        s->seen_index[n] = 0;
        int fb = -1;
        seen_find(s, s->seen[v - 1], &fb);
        s->seen_index[fb] = (int16_t)v;
    }
}

/* True when key was seen recently; remembers it otherwise. The ring forgets
 * the oldest key; the index finds a key in O(1). */
static bool seen_before(slack_adapter *s, const char *key) {
    if (!key || !*key) return false;
    int fb = -1;
    if (seen_find(s, key, &fb) >= 0) return true;
    int slot = s->seen_next;
    if (s->seen[slot][0]) {
        int old = seen_find(s, s->seen[slot], NULL);
        if (old >= 0) seen_unindex(s, old);
        seen_find(s, key, &fb);   /* the chain may have moved */
    }
    nm_str_copy(s->seen[slot], sizeof(s->seen[0]), key);
    s->seen_index[fb] = (int16_t)(slot + 1);
    s->seen_next = (slot + 1) % SEEN_MAX;
    return false;
}

/* A message ts ("1700000000.000100"): digits and a dot, safe in a URL query. */
static bool ts_ok(const char *ts) {
    size_t n = 0;
    for (; ts[n]; n++)
        if (!((ts[n] >= '0' && ts[n] <= '9') || ts[n] == '.')) return false;
    return n > 0 && n < SLACK_TS_LEN;
}

/* ---- people's names (users.info), for the log only: IDs decide everything ---- */

typedef struct name_ctx {
    slack_adapter *s;
    int slot;
    char id[SLACK_ID_LEN];
} name_ctx;

static void name_done(void *ud, int code, const slack_api_result *res) {
    name_ctx *n = ud;
    slack_adapter *s = n->s;
    if (code == SLACK_API_OK && !s->closing && strcmp(s->names[n->slot].id, n->id) == 0)
        snprintf(s->names[n->slot].name, sizeof(s->names[0].name), "%s",
                 res->display_name[0] ? res->display_name : res->user_name[0] ? res->user_name : res->real_name);
    free(n);
}

/* The user's name if known; otherwise asks Slack once and returns NULL. */
static const char *user_name(slack_adapter *s, const char *id) {
    if (!slack_id_valid(id)) return NULL;
    for (int i = 0; i < NAMES_MAX; i++)
        if (strcmp(s->names[i].id, id) == 0) return s->names[i].name[0] ? s->names[i].name : NULL;
    int slot = s->names_next;
    s->names_next = (slot + 1) % NAMES_MAX;
    snprintf(s->names[slot].id, sizeof(s->names[0].id), "%s", id);
    s->names[slot].name[0] = '\0';
    name_ctx *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->s = s;
    n->slot = slot;
    snprintf(n->id, sizeof(n->id), "%s", id);
    char query[96];
    snprintf(query, sizeof(query), "user=%s", id);   /* IDs are [A-Z0-9] (slack_proto bounds them) */
    if (slack_api_get(s->api, "users.info", query, name_done, n) != SLACK_API_OK) free(n);
    return NULL;
}

/* ---- the audit record of a posted message ---- */

typedef struct msg_record {
    uv_work_t work;
    slack_adapter *s;
    int64_t req;
    char team[SLACK_ID_LEN], channel[SLACK_ID_LEN + 8], ts[SLACK_TS_LEN], permalink[512];
    char actor[SLACK_ID_LEN + 8];   /* "in": who clicked; "" for our own messages */
    int rc;
} msg_record;

static void record_work(uv_work_t *w) {
    msg_record *m = w->data;
    char err[256];
    audit_db *db = dbpool_get(m->s->db, err, sizeof(err));
    if (!db) {
        m->rc = AUDIT_ERR_CONNECT;
        return;
    }
    audit_origin o = {.platform = "slack", .team = m->team[0] ? m->team : NULL, .channel = m->channel,
                      .message_ref = m->ts, .permalink = m->permalink[0] ? m->permalink : NULL};
    m->rc = audit_message_record(db, m->req, &o, m->actor[0] ? "in" : "out", m->actor[0] ? m->actor : NULL);
    dbpool_put(m->s->db, db, m->rc == AUDIT_ERR_CONNECT);
}

static void record_done(uv_work_t *w, int status) {
    msg_record *m = w->data;
    slack_adapter *s = m->s;
    if (status != 0 || m->rc != AUDIT_OK) {
        char id[24];
        snprintf(id, sizeof(id), "D-%" PRId64, m->req);
        nm_log(NM_LOG_WARN, "slack: message not recorded in the audit trail", "req", id, "ts", m->ts, "error",
               audit_strerror(m->rc), NULL);
    }
    s->db_writes--;
    free(m);
    maybe_closed(s);
}

/* actor NULL: a message we posted ("out"); else a click on a message by actor ("in"). */
static void record_message_as(slack_adapter *s, int64_t req, const char *channel, const char *ts,
                              const char *permalink, const char *actor) {
    msg_record *m = calloc(1, sizeof(*m));
    if (!m) return;
    snprintf(m->actor, sizeof(m->actor), "%s", actor ? actor : "");
    m->s = s;
    m->req = req;
    snprintf(m->team, sizeof(m->team), "%s", s->team_id);
    snprintf(m->channel, sizeof(m->channel), "slack:%s", channel);
    snprintf(m->ts, sizeof(m->ts), "%s", ts);
    snprintf(m->permalink, sizeof(m->permalink), "%s", permalink ? permalink : "");
    m->work.data = m;
    if (uv_queue_work(s->loop, &m->work, record_work, record_done) == 0) s->db_writes++;
    else free(m);
}

static void record_message(slack_adapter *s, int64_t req, const char *channel, const char *ts, const char *permalink) {
    record_message_as(s, req, channel, ts, permalink, NULL);
}

typedef struct perma_ctx {
    slack_adapter *s;
    int64_t req;
    char channel[SLACK_ID_LEN];
    char ts[SLACK_TS_LEN];
} perma_ctx;

/* The permalink is a nicety: without it the ts alone finds the request. */
static void permalink_done(void *ud, int code, const slack_api_result *res) {
    perma_ctx *p = ud;
    if (code != SLACK_API_ERR_CLOSED)
        record_message(p->s, p->req, p->channel, p->ts, code == SLACK_API_OK ? res->permalink : NULL);
    free(p);
}

static void ask_permalink(slack_adapter *s, int64_t req, const char *channel, const char *ts) {
    if (!slack_id_valid(channel) || !ts_ok(ts)) {
        record_message(s, req, channel, ts, NULL);
        return;
    }
    perma_ctx *p = calloc(1, sizeof(*p));
    if (!p) return;
    p->s = s;
    p->req = req;
    snprintf(p->channel, sizeof(p->channel), "%s", channel);
    snprintf(p->ts, sizeof(p->ts), "%s", ts);
    char query[160];
    snprintf(query, sizeof(query), "channel=%s&message_ts=%s", channel, ts);   /* IDs and ts need no escaping */
    if (slack_api_get(s->api, "chat.getPermalink", query, permalink_done, p) != SLACK_API_OK) {
        record_message(s, req, channel, ts, NULL);
        free(p);
    }
}

/* ---- request messages ---- */

static posted *find_posted(slack_adapter *s, int64_t id) {
    for (posted *p = s->msgs; p; p = p->next)
        if (p->view.id == id) return p;
    return NULL;
}

static void forget_posted(slack_adapter *s, posted *p) {
    for (posted **pp = &s->msgs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            s->n_msgs--;
            free(p);
            return;
        }
}

static void api_error(slack_adapter *s, const char *what, int code, const slack_api_result *res) {
    if (code == SLACK_API_OK || code == SLACK_API_ERR_SUPERSEDED || code == SLACK_API_ERR_CLOSED) return;
    s->st.api_errors++;
    nm_log(NM_LOG_WARN, "slack: message not delivered", "what", what, "error",
           code == SLACK_API_ERR_SLACK && res ? res->error : slack_api_strerror(code), NULL);
}

static void send_update(posted *p);
static void say_ephemeral(slack_adapter *s, const slack_cmd *c, const char *text, bool pre);

static void update_done(void *ud, int code, const slack_api_result *res) {
    posted *p = ud;
    if (code == SLACK_API_ERR_SUPERSEDED) return;   /* the newer call carries p on */
    api_error(p->s, "chat.update", code, res);
    if (p->final && !p->dirty) forget_posted(p->s, p);
}

static void send_update(posted *p) {
    slack_adapter *s = p->s;
    if (!p->ts[0] || s->closing) return;   /* posted meanwhile: sent when the ts arrives */
    nm_buf body;
    nm_buf_init(&body, BODY_MAX);
    char key[SLACK_ID_LEN + SLACK_TS_LEN + 2];
    snprintf(key, sizeof(key), "%s:%s", p->channel, p->ts);
    p->dirty = false;
    if (slack_req_message(&p->view, p->channel, p->ts, &body) == 0 &&
        slack_api_post(s->api, "chat.update", body.data, body.len, p->channel, key, update_done, p) == SLACK_API_OK)
        s->st.updates++;
    else if (p->final)
        forget_posted(s, p);
    nm_buf_free(&body);
}

static void post_done(void *ud, int code, const slack_api_result *res) {
    posted *p = ud;
    slack_adapter *s = p->s;
    p->posting = false;
    if (code != SLACK_API_OK) {
        api_error(s, "chat.postMessage", code, res);
        if (code != SLACK_API_ERR_CLOSED) {
            /* The request exists: whoever asked must learn its ID even when the channel refuses the message. */
            char text[320];
            snprintf(text, sizeof(text),
                     "D-%" PRId64 " was created, but its message could not be posted here (%s); follow it with "
                     "/nomatron audit D-%" PRId64 "\n",
                     p->view.id, code == SLACK_API_ERR_SLACK && res ? res->error : slack_api_strerror(code), p->view.id);
            slack_cmd c = {.s = s};
            snprintf(c.channel, sizeof(c.channel), "%s", p->channel);
            snprintf(c.user, sizeof(c.user), "%s", p->user);
            say_ephemeral(s, &c, text, false);
        }
        forget_posted(s, p);
        return;
    }
    snprintf(p->ts, sizeof(p->ts), "%s", res->ts);
    ask_permalink(s, p->view.id, p->channel, p->ts);
    if (p->dirty) send_update(p);
    else if (p->final) forget_posted(s, p);
}

/* The view of a request just created, from the command's facts. */
static void view_from_facts(slack_req_view *v, const bot_request_facts *f) {
    slack_req_view_init(v, f->id);
    nm_str_copy(v->kind, sizeof(v->kind), f->kind);
    nm_str_copy(v->job, sizeof(v->job), f->job);
    nm_str_copy(v->version, sizeof(v->version), f->version);
    nm_str_copy(v->env, sizeof(v->env), f->env);
    nm_str_copy(v->from_env, sizeof(v->from_env), f->from_env);
    nm_str_copy(v->requester, sizeof(v->requester), f->actor);
    nm_str_copy(v->state, sizeof(v->state), f->state);
    nm_str_copy(v->req_reason, sizeof(v->req_reason), f->reason);
    nm_str_copy(v->emergency, sizeof(v->emergency), f->emergency);
    v->required = f->required;
    v->given = f->counted;
    v->break_glass = f->break_glass;
}

/* approve / reject / cancel as the view shows them; 1 when it changed. */
static int view_decided(slack_req_view *v, const bot_request_facts *f) {
    int changed = 0;
    if (f->decision == CMD_APPROVE && f->counted_now) {
        changed |= slack_req_view_add_approver(v, f->actor);
        if (f->counted != v->given) {
            v->given = f->counted;
            changed = 1;
        }
    }
    if (f->state && *f->state && strcmp(v->state, f->state) != 0) {
        nm_str_copy(v->state, sizeof(v->state), f->state);
        changed = 1;
    }
    return changed;
}

/* The request is over: the states table says which states are terminal. */
static bool view_final(const slack_req_view *v) {
    enum req_state st;
    return req_state_parse(v->state, &st) && req_state_terminal(st);
}

static void post_request(slack_adapter *s, const slack_cmd *c, const bot_request_facts *f) {
    if (s->n_msgs >= MESSAGES_MAX) {
        /* The oldest is dropped: its later edits are lost, never the new request's message. */
        posted *last = s->msgs;
        while (last && last->next) last = last->next;
        if (last && !last->posting) forget_posted(s, last);
    }
    posted *p = calloc(1, sizeof(*p));
    if (!p) return;
    p->s = s;
    snprintf(p->channel, sizeof(p->channel), "%s", c->channel);
    snprintf(p->user, sizeof(p->user), "%s", c->user);
    view_from_facts(&p->view, f);
    nm_buf body;
    nm_buf_init(&body, BODY_MAX);
    if (slack_req_message(&p->view, p->channel, NULL, &body) != 0 ||
        slack_api_post(s->api, "chat.postMessage", body.data, body.len, p->channel, NULL, post_done, p) !=
            SLACK_API_OK) {
        nm_log(NM_LOG_WARN, "slack: request message not posted", "channel", c->channel, NULL);
        free(p);
    } else {
        p->posting = true;
        p->next = s->msgs;
        s->msgs = p;
        s->n_msgs++;
        s->st.posts++;
    }
    nm_buf_free(&body);
}

/* ---- messages this process did not post: found in the audit trail ----
 * Events are applied by whichever bot replica reads them from the group, and
 * a restarted bot has forgotten its messages: the request's Slack message
 * (channel, ts) and its approvals are read back from PostgreSQL, and the
 * events that arrived meanwhile are applied in order. */

typedef struct recovering {
    struct recovering *next;
    uv_work_t work;
    slack_adapter *s;
    int64_t id;
    json_object *events[RECOVER_EVENTS_MAX];   /* held references, oldest first */
    int n_events;
    /* filled on the pool thread */
    int rc;
    bool ours;
    char channel[SLACK_ID_LEN], ts[SLACK_TS_LEN];
    slack_req_view view;
} recovering;

static int recover_row(const audit_row *row, void *arg) {
    recovering *r = arg;
    const audit_event *e = &row->ev;
    if (e->action && strcmp(e->action, "message.out") == 0 && e->platform && strcmp(e->platform, "slack") == 0 &&
        e->channel && strncmp(e->channel, "slack:", 6) == 0 && e->message_ref) {
        snprintf(r->channel, sizeof(r->channel), "%s", e->channel + 6);
        snprintf(r->ts, sizeof(r->ts), "%s", e->message_ref);
    } else if (e->action && strcmp(e->action, "approval.given") == 0 && e->actor) {
        if (slack_req_view_add_approver(&r->view, e->actor) == 1) r->view.given++;
    }
    return 0;
}

static void recover_work(uv_work_t *w) {
    recovering *r = w->data;
    char err[256];
    audit_db *db = dbpool_get(r->s->db, err, sizeof(err));
    if (!db) {
        r->rc = AUDIT_ERR_CONNECT;
        return;
    }
    audit_facts f;
    audit_request req;
    r->rc = audit_request_facts(db, r->id, &f);
    if (r->rc == AUDIT_OK) r->rc = audit_request_get(db, r->id, &req);
    if (r->rc == AUDIT_OK && strcmp(req.platform, "slack") == 0) {
        slack_req_view *v = &r->view;
        slack_req_view_init(v, r->id);
        nm_str_copy(v->kind, sizeof(v->kind), f.kind);
        nm_str_copy(v->job, sizeof(v->job), f.job);
        nm_str_copy(v->version, sizeof(v->version), req.version);
        nm_str_copy(v->env, sizeof(v->env), f.env);
        nm_str_copy(v->from_env, sizeof(v->from_env), f.from_env);
        nm_str_copy(v->requester, sizeof(v->requester), f.actor);
        nm_str_copy(v->state, sizeof(v->state), f.state);
        nm_str_copy(v->phase, sizeof(v->phase), f.phase);
        nm_str_copy(v->reason, sizeof(v->reason), f.reason);
        nm_str_copy(v->emergency, sizeof(v->emergency), f.emergency);
        v->break_glass = f.emergency[0] != '\0';
        v->required = f.required;
        v->job_version = req.nomad_job_version;
        r->rc = audit_trail(db, r->id, recover_row, r);
        r->ours = r->rc == AUDIT_OK && r->ts[0];
    }
    dbpool_put(r->s->db, db, r->rc == AUDIT_ERR_CONNECT);
}

static void remember_not_ours(slack_adapter *s, int64_t id) {
    s->not_ours[s->not_ours_next] = id;
    s->not_ours_next = (s->not_ours_next + 1) % NOT_OURS_MAX;
}

static void recover_done(uv_work_t *w, int status) {
    recovering *r = w->data;
    slack_adapter *s = r->s;
    for (recovering **pp = &s->recovering; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    s->db_writes--;
    if (status == 0 && r->ours && !s->closing && !find_posted(s, r->id)) {
        posted *p = calloc(1, sizeof(*p));
        if (p) {
            p->s = s;
            snprintf(p->channel, sizeof(p->channel), "%s", r->channel);
            snprintf(p->ts, sizeof(p->ts), "%s", r->ts);
            p->view = r->view;
            for (int i = 0; i < r->n_events; i++) slack_req_view_apply(&p->view, r->events[i]);
            p->dirty = true;
            p->final = view_final(&p->view);
            p->next = s->msgs;
            s->msgs = p;
            s->n_msgs++;
            char id[24];
            snprintf(id, sizeof(id), "D-%" PRId64, r->id);
            nm_log(NM_LOG_INFO, "slack: following a message posted before", "req", id, "ts", p->ts, NULL);
            send_update(p);
        }
    } else if (status == 0 && r->rc != AUDIT_ERR_CONNECT && !r->ours) {
        remember_not_ours(s, r->id);
    }
    for (int i = 0; i < r->n_events; i++) json_object_put(r->events[i]);
    free(r);
    maybe_closed(s);
}

static void recover(slack_adapter *s, int64_t id, const json_object *ev) {
    for (int i = 0; i < NOT_OURS_MAX; i++)
        if (s->not_ours[i] == id) return;
    for (recovering *r = s->recovering; r; r = r->next)
        if (r->id == id) {
            if (r->n_events < RECOVER_EVENTS_MAX) r->events[r->n_events++] = json_object_get((json_object *)ev);
            return;
        }
    recovering *r = calloc(1, sizeof(*r));
    if (!r) return;
    r->s = s;
    r->id = id;
    r->events[r->n_events++] = json_object_get((json_object *)ev);
    r->work.data = r;
    if (uv_queue_work(s->loop, &r->work, recover_work, recover_done) != 0) {
        json_object_put(r->events[0]);
        free(r);
        return;
    }
    s->db_writes++;
    r->next = s->recovering;
    s->recovering = r;
}

void slack_adapter_event(slack_adapter *s, const json_object *ev) {
    json_object *v;
    if (s->closing) return;
    if (!json_object_object_get_ex(ev, "type", &v) || strcmp(json_object_get_string(v), "request") != 0) return;
    if (!json_object_object_get_ex(ev, "req", &v)) return;
    int64_t id = json_object_get_int64(v);
    posted *p = find_posted(s, id);
    if (!p) {
        if (id > 0) recover(s, id, ev);
        return;
    }
    if (slack_req_view_apply(&p->view, ev) == 1) {
        p->dirty = true;
        p->final = view_final(&p->view);
        send_update(p);
    }
}

/* ---- answers from the core ---- */

/* An ephemeral answer that cannot be shown in the channel (the person is
 * not a member of it, or it is a DM the bot is not in) goes to them as a
 * direct message instead: the answer still reaches who asked. */
typedef struct eph_ctx {
    slack_adapter *s;
    char user[SLACK_ID_LEN];
    bool pre;
    char text[];
} eph_ctx;

static void dm_done(void *ud, int code, const slack_api_result *res) {
    api_error(ud, "chat.postMessage (direct message)", code, res);
}

static void ephemeral_done(void *ud, int code, const slack_api_result *res) {
    eph_ctx *e = ud;
    slack_adapter *s = e->s;
    if (code == SLACK_API_ERR_SLACK && res &&
        (strcmp(res->error, "user_not_in_channel") == 0 || strcmp(res->error, "not_in_channel") == 0 ||
         strcmp(res->error, "channel_not_found") == 0) &&
        !s->closing) {
        nm_buf body;
        nm_buf_init(&body, BODY_MAX);
        /* chat.postMessage to a user ID opens the bot's DM with them (A6). */
        if (slack_text_body(e->user, NULL, NULL, e->text, e->pre, &body) == 0 &&
            slack_api_post(s->api, "chat.postMessage", body.data, body.len, e->user, NULL, dm_done, s) ==
                SLACK_API_OK)
            s->st.posts++;
        nm_buf_free(&body);
    } else {
        api_error(s, "chat.postEphemeral", code, res);
    }
    free(e);
}

/* An answer given while its command is still being handed over goes in the
 * command's ack: no Web API call, and Slack shows it even where the bot is
 * not a member. Once only; anything later goes through the Web API. */
static bool answer_in_ack(slack_adapter *s, const slack_cmd *c, const char *text, bool pre) {
    if (!s->ack || s->ack_cmd != c) return false;
    nm_buf p;
    nm_buf_init(&p, 0);
    bool ok = slack_answer_payload(text, pre, &p) == SLACK_PROTO_OK && slack_ack_respond(s->ack, p.data, p.len) == 0;
    nm_buf_free(&p);
    if (ok) {
        s->ack = NULL;
        s->st.answered_in_ack++;
    }
    return ok;
}

static void say_ephemeral(slack_adapter *s, const slack_cmd *c, const char *text, bool pre) {
    if (answer_in_ack(s, c, text, pre)) return;
    size_t n = strlen(text);
    if (n > SLACK_TEXT_MAX + 64) n = SLACK_TEXT_MAX + 64;   /* slack_text_body cuts at SLACK_TEXT_MAX anyway */
    eph_ctx *e = malloc(sizeof(*e) + n + 1);
    if (!e) return;
    e->s = s;
    snprintf(e->user, sizeof(e->user), "%s", c->user);
    e->pre = pre;
    memcpy(e->text, text, n);
    e->text[n] = '\0';
    nm_buf body;
    nm_buf_init(&body, BODY_MAX);
    if (slack_text_body(c->channel, c->user, NULL, text, pre, &body) == 0 &&
        slack_api_post(s->api, "chat.postEphemeral", body.data, body.len, NULL, NULL, ephemeral_done, e) ==
            SLACK_API_OK)
        s->st.ephemerals++;
    else
        free(e);
    nm_buf_free(&body);
}

static void channel_done(void *ud, int code, const slack_api_result *res) {
    api_error(ud, "chat.postMessage", code, res);
}

static void say_channel(slack_adapter *s, const slack_cmd *c, const char *text) {
    nm_buf body;
    nm_buf_init(&body, BODY_MAX);
    if (slack_text_body(c->channel, NULL, NULL, text, false, &body) == 0 &&
        slack_api_post(s->api, "chat.postMessage", body.data, body.len, c->channel, NULL, channel_done, s) ==
            SLACK_API_OK)
        s->st.posts++;
    nm_buf_free(&body);
}

static void on_reply(void *ud, const bot_reply *r) {
    slack_cmd *c = ud;
    slack_adapter *s = c->s;
    if (s->closing) return;
    switch (r->kind) {
    case BOT_REPLY_REQUEST:
        if (r->req) post_request(s, c, r->req);
        else say_ephemeral(s, c, r->text, false);
        break;
    case BOT_REPLY_DECISION: {
        const bot_request_facts *f = r->req;
        if (f && (f->decision == CMD_LOCK || f->decision == CMD_UNLOCK)) {
            say_channel(s, c, r->text);   /* news for everyone in the channel */
            break;
        }
        say_ephemeral(s, c, r->text, false);
        posted *p = f && f->id ? find_posted(s, f->id) : NULL;
        if (p && view_decided(&p->view, f) == 1) {
            p->dirty = true;
            p->final = view_final(&p->view);
            send_update(p);
        }
        break;
    }
    case BOT_REPLY_ANSWER:
    default: say_ephemeral(s, c, r->text, r->preformatted); break;
    }
}

static void on_done(void *ud) { free(ud); }

static const bot_replier slack_replier = {on_reply, on_done};

/* ---- envelopes ---- */

/* A slash command that passed the checks, to the core. */
static void handle_slash(slack_adapter *s, slack_cmd *c, const slack_frame *f, const char *key) {
    const char *team = c->team;
    char channel[SLACK_ID_LEN + 8], actor[SLACK_ID_LEN + 8], idem[SLACK_ID_LEN + SLACK_TRIGGER_LEN + 16];
    snprintf(channel, sizeof(channel), "slack:%s", c->channel);
    snprintf(actor, sizeof(actor), "slack:%s", c->user);
    snprintf(idem, sizeof(idem), "slack:%s:%s", team, key);
    bot_inbound in = {.platform = "slack", .team = team, .channel = channel, .actor = actor, .idem_key = idem,
                      .route = "slack"};
    nm_log(NM_LOG_INFO, "slack: command", "actor", actor, "name", user_name(s, c->user), "channel", channel, NULL);
    bot_core_handle(s->core, &in, f->slash.text, strlen(f->slash.text), &slack_replier, c);
}

static void on_slash(slack_adapter *s, const slack_frame *f, slack_ack *ack) {
    const char *team = f->slash.team_id;
    if (s->team_id[0] && strcmp(team, s->team_id) != 0) {
        s->st.refused_team++;
        nm_log(NM_LOG_WARN, "slack: command from another workspace refused", "team", team, NULL);
        return;
    }
    /* A redelivery carries the same trigger: answered once. */
    char key[SLACK_TRIGGER_LEN];
    nm_str_copy(key, sizeof(key), f->slash.trigger_id[0] ? f->slash.trigger_id : f->envelope_id);
    if (seen_before(s, key)) {
        s->st.duplicates++;
        nm_log(NM_LOG_INFO, "slack: redelivered command dropped", "envelope", f->envelope_id, NULL);
        return;
    }
    slack_cmd *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->s = s;
    nm_str_copy(c->team, sizeof(c->team), team);
    nm_str_copy(c->channel, sizeof(c->channel), f->slash.channel_id);
    nm_str_copy(c->user, sizeof(c->user), f->slash.user_id);
    s->st.commands++;
    /* Answers the core gives during the call ride in the ack (answer_in_ack). */
    s->ack = ack;
    s->ack_cmd = c;
    if (f->slash.text_too_long) bot_core_too_long(s->core, &slack_replier, c);
    else handle_slash(s, c, f, key);
    s->ack = NULL;   /* the ack leaves now; c may be freed already */
    s->ack_cmd = NULL;
}

/* Approve / Reject on a request's message: the same commands as typed, by
 * the person who clicked (a second click is answered, never counted twice). */
static void on_button(slack_adapter *s, const slack_frame *f) {
    const char *verb = strcmp(f->interactive.action_id, SLACK_ACTION_APPROVE) == 0  ? "approve"
                       : strcmp(f->interactive.action_id, SLACK_ACTION_REJECT) == 0 ? "reject"
                                                                                    : NULL;
    if (!verb || !f->interactive.user_id[0] || !f->interactive.channel_id[0]) {
        nm_log(NM_LOG_INFO, "slack: interaction ignored", "action", f->interactive.action_id, NULL);
        return;
    }
    if (seen_before(s, f->interactive.trigger_id)) {
        s->st.duplicates++;
        return;
    }
    slack_cmd *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->s = s;
    snprintf(c->team, sizeof(c->team), "%s", s->team_id);
    snprintf(c->channel, sizeof(c->channel), "%s", f->interactive.channel_id);
    snprintf(c->user, sizeof(c->user), "%s", f->interactive.user_id);
    char text[64 + SLACK_ACTION_VALUE_LEN], channel[SLACK_ID_LEN + 8], actor[SLACK_ID_LEN + 8];
    snprintf(text, sizeof(text), "%s %s", verb, f->interactive.action_value);
    snprintf(channel, sizeof(channel), "slack:%s", c->channel);
    snprintf(actor, sizeof(actor), "slack:%s", c->user);
    bot_inbound in = {.platform = "slack", .team = s->team_id, .channel = channel, .actor = actor,
                      .message_ref = f->interactive.message_ts, .route = "slack"};
    s->st.commands++;
    /* The click is part of the trail: who pressed what on which message. */
    const char *v = f->interactive.action_value;
    char *end = NULL;
    long long req = strtoll(v + (strncmp(v, "D-", 2) == 0 ? 2 : 0), &end, 10);
    if (req > 0 && end && *end == '\0' && ts_ok(f->interactive.message_ts))
        record_message_as(s, req, c->channel, f->interactive.message_ts, NULL, actor);
    bot_core_handle(s->core, &in, text, strlen(text), &slack_replier, c);
}

static void on_envelope(void *ud, const slack_frame *f, slack_ack *ack) {
    slack_adapter *s = ud;
    if (s->input_stopped) return;
    switch (f->kind) {
    case SLACK_FRAME_SLASH: on_slash(s, f, ack); break;
    case SLACK_FRAME_INTERACTIVE:
        if (s->team_id[0] && f->interactive.team_id[0] && strcmp(f->interactive.team_id, s->team_id) != 0) {
            s->st.refused_team++;
            nm_log(NM_LOG_WARN, "slack: interaction from another workspace refused", "team", f->interactive.team_id,
                   NULL);
            break;
        }
        on_button(s, f);
        break;
    case SLACK_FRAME_EVENTS:
        if (s->team_id[0] && f->events.team_id[0] && strcmp(f->events.team_id, s->team_id) != 0) {
            s->st.refused_team++;
            nm_log(NM_LOG_WARN, "slack: event from another workspace refused", "team", f->events.team_id, NULL);
        } else if (seen_before(s, f->events.event_id)) {
            s->st.duplicates++;
        }
        break;
    default: break;
    }
}

/* ---- the socket's URL and the bot's identity ---- */

static void url_done(void *ud, int code, const slack_api_result *res) {
    slack_adapter *s = ud;
    if (!s->sock || code == SLACK_API_ERR_CLOSED) return;
    if (code == SLACK_API_OK) {
        slack_socket_give_url(s->sock, res->url);
        return;
    }
    bool fatal = code == SLACK_API_ERR_SLACK && (strcmp(res->error, "invalid_auth") == 0 ||
                                                 strcmp(res->error, "not_authed") == 0 ||
                                                 strcmp(res->error, "not_allowed_token_type") == 0 ||
                                                 strcmp(res->error, "token_revoked") == 0);
    slack_socket_url_failed(s->sock, fatal);
}

static void need_url(void *ud) {
    slack_adapter *s = ud;
    if (slack_api_open_connection(s->api, url_done, s) != SLACK_API_OK) slack_socket_url_failed(s->sock, false);
}

static void socket_state(void *ud, int ready) {
    slack_adapter *s = ud;
    char n[16];
    snprintf(n, sizeof(n), "%d", ready);
    nm_log(ready ? NM_LOG_INFO : NM_LOG_WARN, "slack: connections ready", "count", n, NULL);
    (void)s;
}

static const slack_socket_hooks socket_hooks = {need_url, on_envelope, socket_state};

static void auth_fire(uv_timer_t *t);

static void auth_done(void *ud, int code, const slack_api_result *res) {
    slack_adapter *s = ud;
    if (s->closing || code == SLACK_API_ERR_CLOSED) return;
    if (code != SLACK_API_OK) {
        nm_log(NM_LOG_ERROR, "slack: auth.test failed; retrying", "error",
               code == SLACK_API_ERR_SLACK ? res->error : slack_api_strerror(code), "hint",
               code == SLACK_API_ERR_SLACK ? slack_error_hint(res->error) : NULL, NULL);
        uv_timer_start(&s->auth_timer, auth_fire, AUTH_RETRY_MS, 0);
        return;
    }
    if (s->team_id[0] && strcmp(s->team_id, res->team_id) != 0) {
        nm_log(NM_LOG_ERROR, "slack: the bot token belongs to another workspace than chat.slack.team_id", "token_team",
               res->team_id, "configured", s->team_id, NULL);
        uv_timer_start(&s->auth_timer, auth_fire, AUTH_RETRY_MS * 6, 0);
        return;
    }
    if (!s->team_id[0]) snprintf(s->team_id, sizeof(s->team_id), "%s", res->team_id);
    snprintf(s->bot_user, sizeof(s->bot_user), "%s", res->user_id);
    s->authed = true;
    nm_log(NM_LOG_INFO, "slack: authenticated", "team", s->team_id, "bot_user", s->bot_user, NULL);
    if (!s->input_stopped) slack_socket_start(s->sock);
}

static void auth_fire(uv_timer_t *t) {
    slack_adapter *s = t->data;
    if (s->closing) return;
    if (slack_api_post(s->api, "auth.test", "{}", 2, NULL, NULL, auth_done, s) != SLACK_API_OK)
        uv_timer_start(&s->auth_timer, auth_fire, AUTH_RETRY_MS, 0);
}

/* ---- lifecycle ---- */

slack_adapter *slack_adapter_new(uv_loop_t *loop, config *cfg, bot_core *core, dbpool *db, char *err,
                                 size_t errlen) {
    const config_slack *sc = cfg->slack;
    if (!sc) {
        snprintf(err, errlen, "chat.slack is not configured");
        return NULL;
    }
    slack_adapter *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = config_ref(cfg);
    s->core = core;
    s->db = db;
    snprintf(s->team_id, sizeof(s->team_id), "%s", sc->team_id ? sc->team_id : "");
    s->http = http_client_new(loop, HTTP_RESPONSE_MAX, err, errlen);
    /* chat.slack.ca_file: a private CA (a TLS-inspecting proxy, the TLS test) for both halves. */
    const char *ca = sc->ca_file && *sc->ca_file ? sc->ca_file : NULL;
    if (s->http && ca && http_client_set_tls(s->http, ca, true) != HTTP_OK) {
        http_client_close(s->http);
        s->http = NULL;
        snprintf(err, errlen, "out of memory");
    }
    if (s->http) s->api = slack_api_new(loop, s->http, sc->api_url, sc->bot_token, sc->app_token, err, errlen);
    slack_socket_opts so = {.num_connections = sc->num_connections > 0 ? sc->num_connections : 1, .ca_file = ca};
    /* Tests shorten the liveness timers; production keeps the defaults. */
    const char *ping = getenv("NOMATRON_SLACK_PING_MS");
    if (ping && atoi(ping) > 0) {
        so.ping_ms = atoi(ping);
        so.dead_ms = 5 * so.ping_ms / 2;
    }
    if (s->api) s->sock = slack_socket_new(loop, &so, &socket_hooks, s, err, errlen);
    if (!s->sock) {
        if (s->api) slack_api_close(s->api);
        if (s->http) http_client_close(s->http);
        config_free(s->cfg);
        free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->auth_timer);
    s->auth_timer.data = s;
    return s;
}

void slack_adapter_start(slack_adapter *s) { auth_fire(&s->auth_timer); }

void slack_adapter_set_config(slack_adapter *s, config *cfg) {
    /* Tokens and URLs are read at start; a reload changes policy, not the connection. */
    config *old = s->cfg;
    s->cfg = config_ref(cfg);
    config_free(old);
}

int slack_adapter_ready(const slack_adapter *s) {
    return s->sock && s->authed && !s->input_stopped ? slack_socket_ready(s->sock) : 0;
}

void slack_adapter_get_stats(const slack_adapter *s, slack_stats *out) { *out = s->st; }

static void socket_closed(void *ud) {
    slack_adapter *s = ud;
    s->handles--;
    maybe_closed(s);
}

void slack_adapter_stop_input(slack_adapter *s) {
    if (s->input_stopped) return;
    s->input_stopped = true;
    uv_timer_stop(&s->auth_timer);
    if (s->sock) {
        s->handles++;
        slack_socket_close(s->sock, socket_closed, s);
        s->sock = NULL;
    }
}

int slack_adapter_pending(const slack_adapter *s) {
    int n = s->api ? slack_api_pending(s->api) : 0;
    for (const posted *p = s->msgs; p; p = p->next)
        if (p->posting || p->dirty) n++;
    return n + s->db_writes;
}

static void timer_closed(uv_handle_t *h) {
    slack_adapter *s = h->data;
    s->handles--;
    maybe_closed(s);
}

static void maybe_closed(slack_adapter *s) {
    if (!s->closing || s->handles > 0 || s->db_writes > 0) return;
    while (s->msgs) {
        posted *p = s->msgs;
        s->msgs = p->next;
        free(p);
    }
    config_free(s->cfg);
    void (*closed)(void *) = s->closed;
    void *ud = s->closed_ud;
    free(s);
    if (closed) closed(ud);
}

void slack_adapter_close(slack_adapter *s, void (*closed)(void *ud), void *ud) {
    if (s->closing) return;
    slack_adapter_stop_input(s);
    s->closing = true;
    s->closed = closed;
    s->closed_ud = ud;
    /* Waiting calls end now; the http client ends those in flight. */
    slack_api_close(s->api);
    http_client_close(s->http);
    s->api = NULL;
    s->http = NULL;
    s->handles++;
    uv_close((uv_handle_t *)&s->auth_timer, timer_closed);
}
