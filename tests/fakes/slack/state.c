#include "state.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- rings ---------- */

static int ring_init(sf_ring *r, size_t cap) {
    r->items = calloc(cap, sizeof(*r->items));
    r->cap = cap;
    r->head = r->len = 0;
    r->dropped = 0;
    return r->items ? 0 : -1;
}

/* Adds item; returns the evicted oldest item (the caller frees it) or NULL. */
static void *ring_push(sf_ring *r, void *item) {
    void *old = NULL;
    if (r->len == r->cap) {
        old = r->items[r->head];
        r->items[r->head] = item;
        r->head = (r->head + 1) % r->cap;
        r->dropped++;
        return old;
    }
    r->items[(r->head + r->len) % r->cap] = item;
    r->len++;
    return NULL;
}

/* i = 0 is the oldest. */
static void *ring_at(const sf_ring *r, size_t i) { return r->items[(r->head + i) % r->cap]; }

static void ring_clear(sf_ring *r, void (*free_fn)(void *)) {
    for (size_t i = 0; i < r->len; i++) free_fn(ring_at(r, i));
    r->head = r->len = 0;
    r->dropped = 0;
}

static void free_msg_v(void *p) { sf_msg_free(p); }
static void free_eph_v(void *p) { sf_ephemeral_free(p); }
static void free_call_v(void *p) { sf_call_free(p); }
static void free_conn_v(void *p) { free(p); }

static void env_free(sf_env *e) {
    if (!e) return;
    free(e->frame);
    free(e->ack_payload);
    free(e);
}

/* ---------- small helpers ---------- */

static void copy_str(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

const char *sf_json_text(json_object *o) {
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static char *json_dup_text(json_object *o) {
    const char *s = sf_json_text(o);
    return s ? strdup(s) : NULL;
}

/* The default users: the names the reference uses in its samples (A4, A6). */
static const struct {
    const char *id, *name, *real, *tz, *email;
    bool admin, bot;
} builtin_users[] = {
    {"U0APPROVER", "ana", "Ana Li", "Europe/Berlin", "ana@example.com", false, false},
    {"U0REQUESTER", "bob", "Bob Stone", "America/New_York", "bob@example.com", false, false},
    {"U0ADMIN", "carol", "Carol Diaz", "UTC", "carol@example.com", true, false},
    {"U0DAVE", "dave", "Dave Park", "Asia/Tokyo", "dave@example.com", false, false},
};

static json_object *user_object(const char *team, const char *id, const char *name, const char *real,
                                const char *tz, const char *email, bool admin, bool bot) {
    json_object *u = json_object_new_object();
    json_object_object_add(u, "id", json_object_new_string(id));
    json_object_object_add(u, "team_id", json_object_new_string(team));
    json_object_object_add(u, "name", json_object_new_string(name));
    json_object_object_add(u, "deleted", json_object_new_boolean(0));
    json_object_object_add(u, "real_name", json_object_new_string(real));
    json_object_object_add(u, "tz", json_object_new_string(tz));
    json_object_object_add(u, "is_admin", json_object_new_boolean(admin));
    json_object_object_add(u, "is_owner", json_object_new_boolean(0));
    json_object_object_add(u, "is_bot", json_object_new_boolean(bot));
    json_object_object_add(u, "is_app_user", json_object_new_boolean(0));
    json_object_object_add(u, "is_restricted", json_object_new_boolean(0));
    json_object_object_add(u, "is_ultra_restricted", json_object_new_boolean(0));
    json_object_object_add(u, "updated", json_object_new_int64(1700000000));
    json_object *p = json_object_new_object();
    json_object_object_add(p, "display_name", json_object_new_string(name));
    json_object_object_add(p, "real_name", json_object_new_string(real));
    if (email) json_object_object_add(p, "email", json_object_new_string(email));
    json_object_object_add(p, "image_48", json_object_new_string("https://avatars.example.com/48.png"));
    json_object_object_add(u, "profile", p);
    return u;
}

static void load_builtin_users(sf_state *st) {
    json_object_put(st->users);
    st->users = json_object_new_object();
    for (size_t i = 0; i < sizeof(builtin_users) / sizeof(builtin_users[0]); i++) {
        json_object *u = user_object(st->team_id, builtin_users[i].id, builtin_users[i].name, builtin_users[i].real,
                                     builtin_users[i].tz, builtin_users[i].email, builtin_users[i].admin,
                                     builtin_users[i].bot);
        json_object_object_add(st->users, builtin_users[i].id, u);
    }
    json_object_object_add(st->users, st->bot_user_id,
                           user_object(st->team_id, st->bot_user_id, st->bot_user_name, "nomatron", "UTC", NULL,
                                       false, true));
}

/* ---------- lifecycle ---------- */

sf_state *sf_state_new(const sf_config *cfg) {
    sf_state *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    copy_str(st->team_id, sizeof(st->team_id), cfg->team_id ? cfg->team_id : "T0TEAM");
    copy_str(st->domain, sizeof(st->domain), cfg->domain ? cfg->domain : "acme");
    copy_str(st->app_id, sizeof(st->app_id), cfg->app_id ? cfg->app_id : "A0NOMATRON");
    copy_str(st->host, sizeof(st->host), cfg->host ? cfg->host : "127.0.0.1");
    st->tls = cfg->tls;
    copy_str(st->bot_user_id, sizeof(st->bot_user_id), "U0NOMATRON");
    copy_str(st->bot_user_name, sizeof(st->bot_user_name), "nomatron");
    copy_str(st->bot_id, sizeof(st->bot_id), "B0NOMATRON");
    st->app_token = strdup(cfg->app_token ? cfg->app_token : "");
    st->bot_token = strdup(cfg->bot_token ? cfg->bot_token : "");
    st->ack_deadline_us = (cfg->ack_deadline_ms > 0 ? cfg->ack_deadline_ms : 3000) * 1000;
    st->connection_time_s = cfg->connection_time_s > 0 ? cfg->connection_time_s : 18060;
    st->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ull;
    st->env_buckets = calloc(SF_ENV_BUCKETS, sizeof(*st->env_buckets));
    if (!st->app_token || !st->bot_token || !st->env_buckets || ring_init(&st->calls, SF_MAX_CALLS) ||
        ring_init(&st->messages, SF_MAX_MESSAGES) || ring_init(&st->ephemeral, SF_MAX_EPHEMERAL) ||
        ring_init(&st->envs, SF_MAX_ENVELOPES) || ring_init(&st->conns, SF_MAX_CONN_RECORDS)) {
        sf_state_free(st);
        return NULL;
    }
    load_builtin_users(st);
    st->url_uses = json_object_new_object();
    st->next_conn_id = 1;
    return st;
}

static void envs_clear(sf_state *st) {
    for (size_t i = 0; i < st->envs.len; i++) env_free(ring_at(&st->envs, i));
    st->envs.head = st->envs.len = 0;
    st->envs.dropped = 0;
    if (st->env_buckets) memset(st->env_buckets, 0, SF_ENV_BUCKETS * sizeof(*st->env_buckets));
    st->unknown_acks = st->bad_frames = 0;
    st->ack_answers = st->bad_ack_payloads = 0;
}

void sf_state_free(sf_state *st) {
    if (!st) return;
    if (st->calls.items) ring_clear(&st->calls, free_call_v);
    if (st->messages.items) ring_clear(&st->messages, free_msg_v);
    if (st->ephemeral.items) ring_clear(&st->ephemeral, free_eph_v);
    if (st->conns.items) ring_clear(&st->conns, free_conn_v);
    if (st->envs.items) envs_clear(st);
    free(st->calls.items);
    free(st->messages.items);
    free(st->ephemeral.items);
    free(st->envs.items);
    free(st->conns.items);
    free(st->env_buckets);
    json_object_put(st->users);
    json_object_put(st->url_uses);
    free(st->app_token);
    free(st->bot_token);
    free(st);
}

void sf_state_reset(sf_state *st) {
    ring_clear(&st->calls, free_call_v);
    ring_clear(&st->messages, free_msg_v);
    ring_clear(&st->ephemeral, free_eph_v);
    envs_clear(st);
    st->n_faults = 0;
    json_object_put(st->url_uses);
    st->url_uses = json_object_new_object();
    for (size_t i = 0; i < st->conns.len; i++) {
        sf_conn_rec *c = ring_at(&st->conns, i);
        c->envelopes = c->acks = c->bad_frames = 0;
    }
}

/* ---------- users ---------- */

int sf_users_load(sf_state *st, const char *text, size_t len, char *err, size_t errlen) {
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object *arr = json_tokener_parse_ex(tok, text, (int)len);
    bool complete = json_tokener_get_error(tok) == json_tokener_success &&
                    json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (!arr || !complete || !json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "not a JSON array of users.info user objects");
        json_object_put(arr);
        return -1;
    }
    size_t n = json_object_array_length(arr);
    if (n > SF_MAX_USERS) {
        snprintf(err, errlen, "more than %d users", SF_MAX_USERS);
        json_object_put(arr);
        return -1;
    }
    json_object *users = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        json_object *u = json_object_array_get_idx(arr, i), *id;
        if (!json_object_is_type(u, json_type_object) || !json_object_object_get_ex(u, "id", &id) ||
            !json_object_is_type(id, json_type_string) || json_object_get_string_len(id) == 0 ||
            json_object_get_string_len(id) >= SF_ID_MAX) {
            snprintf(err, errlen, "user %zu: needs a string \"id\" (under %d bytes)", i, SF_ID_MAX);
            json_object_put(users);
            json_object_put(arr);
            return -1;
        }
        if (!json_object_object_get_ex(u, "team_id", NULL))
            json_object_object_add(u, "team_id", json_object_new_string(st->team_id));
        json_object_object_add(users, json_object_get_string(id), json_object_get(u));
    }
    json_object_put(arr);
    /* The bot's own user always exists (auth.test names it). */
    if (!json_object_object_get_ex(users, st->bot_user_id, NULL))
        json_object_object_add(users, st->bot_user_id,
                               user_object(st->team_id, st->bot_user_id, st->bot_user_name, "nomatron", "UTC", NULL,
                                           false, true));
    json_object_put(st->users);
    st->users = users;
    return 0;
}

json_object *sf_user_find(sf_state *st, const char *id) {
    json_object *u = NULL;
    if (!id || !json_object_object_get_ex(st->users, id, &u)) return NULL;
    return u;
}

/* ---------- identifiers ---------- */

uint64_t sf_rand(sf_state *st) {
    /* xorshift64*: reproducible with --seed, no quality claims. */
    uint64_t x = st->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void sf_new_envelope_id(sf_state *st, char out[SF_ID_MAX]) {
    uint64_t a = sf_rand(st), b = sf_rand(st);
    snprintf(out, SF_ID_MAX, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
             a >> 32, (a >> 16) & 0xffff, a & 0xfff, 0x8000 | ((b >> 48) & 0x3fff), b & (uint64_t)0xffffffffffff);
}

void sf_new_trigger_id(sf_state *st, char out[SF_ID_MAX]) {
    uint64_t a = sf_rand(st), b = sf_rand(st), c = sf_rand(st);
    snprintf(out, SF_ID_MAX, "%013" PRIu64 ".%010" PRIu64 ".%016" PRIx64 "%016" PRIx64, a % (uint64_t)10000000000000,
             b % (uint64_t)10000000000, c, sf_rand(st));
}

void sf_next_ts(sf_state *st, int64_t wall_us, char out[SF_TS_MAX]) {
    int64_t t = wall_us > st->last_ts_us ? wall_us : st->last_ts_us + 1;
    st->last_ts_us = t;
    snprintf(out, SF_TS_MAX, "%" PRId64 ".%06" PRId64, t / 1000000, t % 1000000);
}

bool sf_ts_valid(const char *s) {
    if (!s || !isdigit((unsigned char)*s)) return false;
    const char *dot = strchr(s, '.');
    if (!dot || dot - s > 12) return false;
    for (const char *p = s; p < dot; p++)
        if (!isdigit((unsigned char)*p)) return false;
    for (int i = 1; i <= 6; i++)
        if (!isdigit((unsigned char)dot[i])) return false;
    return dot[7] == '\0';
}

int sf_permalink(const char *domain, const char *channel, const char *ts, const char *thread_ts, char *out,
                 size_t outlen) {
    char digits[SF_TS_MAX];
    size_t j = 0;
    for (const char *p = ts; *p && j + 1 < sizeof(digits); p++)
        if (*p != '.') digits[j++] = *p;
    digits[j] = '\0';
    int n;
    if (thread_ts && *thread_ts && strcmp(thread_ts, ts) != 0)
        n = snprintf(out, outlen, "https://%s.slack.com/archives/%s/p%s?thread_ts=%s&cid=%s", domain, channel,
                     digits, thread_ts, channel);
    else
        n = snprintf(out, outlen, "https://%s.slack.com/archives/%s/p%s", domain, channel, digits);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

size_t sf_utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

size_t sf_utf8_prefix(const char *s, size_t max) {
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max) break;
            chars++;
        }
    }
    return i;
}

/* ---------- tickets ---------- */

void sf_ticket_new(sf_state *st, char out[40]) {
    snprintf(out, 40, "%016" PRIx64 "%016" PRIx64, sf_rand(st), sf_rand(st));
    sf_ticket *t = &st->tickets[st->ticket_next];
    st->ticket_next = (st->ticket_next + 1) % SF_MAX_TICKETS;
    memcpy(t->id, out, 40);
    t->used = false;
}

bool sf_ticket_use(sf_state *st, const char *ticket) {
    if (!ticket || !*ticket) return false;
    for (size_t i = 0; i < SF_MAX_TICKETS; i++) {
        sf_ticket *t = &st->tickets[i];
        if (t->id[0] && strcmp(t->id, ticket) == 0) {
            if (t->used) return false;
            t->used = true;
            return true;
        }
    }
    return false;
}

/* ---------- messages ---------- */

void sf_msg_free(sf_msg *m) {
    if (!m) return;
    free(m->text);
    json_object_put(m->blocks);
    json_object_put(m->attachments);
    json_object_put(m->versions);
    free(m);
}

void sf_msg_add(sf_state *st, sf_msg *m) { sf_msg_free(ring_push(&st->messages, m)); }

sf_msg *sf_msg_find(sf_state *st, const char *channel, const char *ts) {
    if (!channel || !ts) return NULL;
    for (size_t i = st->messages.len; i-- > 0;) {
        sf_msg *m = ring_at(&st->messages, i);
        if (strcmp(m->ts, ts) == 0 && strcmp(m->channel, channel) == 0) return m;
    }
    return NULL;
}

void sf_msg_add_version(sf_msg *m, const char *text) {
    if (!m->versions) m->versions = json_object_new_array();
    if (json_object_array_length(m->versions) >= SF_MAX_VERSIONS) json_object_array_del_idx(m->versions, 0, 1);
    json_object_array_add(m->versions, json_object_new_string(text));
}

void sf_ephemeral_free(sf_ephemeral *e) {
    if (!e) return;
    free(e->text);
    json_object_put(e->blocks);
    json_object_put(e->attachments);
    free(e);
}

void sf_ephemeral_add(sf_state *st, sf_ephemeral *e) { sf_ephemeral_free(ring_push(&st->ephemeral, e)); }

sf_ephemeral *sf_ephemeral_find(sf_state *st, const char *ts) {
    if (!ts) return NULL;
    for (size_t i = st->ephemeral.len; i-- > 0;) {
        sf_ephemeral *e = ring_at(&st->ephemeral, i);
        if (strcmp(e->ts, ts) == 0) return e;
    }
    return NULL;
}

/* ---------- message fields ---------- */

const char *sf_array_field(json_object *obj, const char *key, const char *format_error, json_object **out) {
    *out = NULL;
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !v) return NULL;
    json_object *arr = NULL;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        json_tokener *tok = json_tokener_new();
        if (!tok) return "internal_error";
        arr = json_tokener_parse_ex(tok, s, (int)len);
        bool complete = json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len;
        json_tokener_free(tok);
        if (!complete) {
            json_object_put(arr);
            return format_error;
        }
    } else {
        arr = json_object_get(v);
    }
    if (!json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        return format_error;
    }
    if (json_object_array_length(arr) == 0) {
        json_object_put(arr);
        return NULL;
    }
    *out = arr;
    return NULL;
}

const char *sf_blocks_field(json_object *obj, json_object **out) {
    const char *err = sf_array_field(obj, "blocks", "invalid_blocks_format", out);
    if (err || !*out) return err;
    size_t n = json_object_array_length(*out);
    bool ok = n <= SF_MAX_BLOCKS;
    for (size_t i = 0; ok && i < n; i++) {
        json_object *b = json_object_array_get_idx(*out, i), *t;
        ok = json_object_is_type(b, json_type_object) && json_object_object_get_ex(b, "type", &t) &&
             json_object_is_type(t, json_type_string);
    }
    if (!ok) {
        json_object_put(*out);
        *out = NULL;
        return "invalid_blocks";
    }
    return NULL;
}

const char *sf_attachments_field(json_object *obj, json_object **out) {
    const char *err = sf_array_field(obj, "attachments", "invalid_attachments", out);
    if (err || !*out) return err;
    if (json_object_array_length(*out) > SF_MAX_ATTACHMENTS) {
        json_object_put(*out);
        *out = NULL;
        return "too_many_attachments";
    }
    return NULL;
}

const char *sf_message_fields(json_object *obj, const char **text, json_object **blocks, json_object **atts) {
    *text = NULL;
    *blocks = *atts = NULL;
    json_object *v;
    const char *t = NULL;
    if (json_object_object_get_ex(obj, "text", &v) && v) {
        if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array))
            return "invalid_arguments";
        t = json_object_get_string(v);
        if (sf_utf8_chars(t) > SF_MAX_EDIT_TEXT) return "msg_too_long";
    }
    const char *err = sf_blocks_field(obj, blocks);
    if (err) return err;
    if ((err = sf_attachments_field(obj, atts)) != NULL) {
        json_object_put(*blocks);
        *blocks = NULL;
        return err;
    }
    if ((!t || !*t) && !*blocks && !*atts) return "no_text";
    *text = t;
    return NULL;
}

/* ---------- calls ---------- */

void sf_call_free(sf_call *c) {
    if (!c) return;
    json_object_put(c->args);
    json_object_put(c->response);
    free(c);
}

void sf_call_add(sf_state *st, sf_call *c) {
    c->seq = ++st->call_seq;
    sf_call_free(ring_push(&st->calls, c));
}

/* ---------- faults ---------- */

int sf_fault_add(sf_state *st, const sf_fault *f) {
    if (st->n_faults >= SF_MAX_FAULTS) return -1;
    st->faults[st->n_faults++] = *f;
    return 0;
}

bool sf_fault_take(sf_state *st, int kind, const char *method, sf_fault *out) {
    for (size_t i = 0; i < st->n_faults; i++) {
        sf_fault *f = &st->faults[i];
        if (f->kind != kind || (strcmp(f->method, "*") != 0 && strcmp(f->method, method) != 0)) continue;
        *out = *f;
        if (--f->count <= 0) {
            memmove(f, f + 1, (st->n_faults - i - 1) * sizeof(*f));
            st->n_faults--;
        }
        return true;
    }
    return false;
}

/* ---------- connections ---------- */

sf_conn_rec *sf_conn_new(sf_state *st, int64_t wall_ms) {
    sf_conn_rec *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->id = st->next_conn_id++;
    c->open = true;
    c->opened_ms = wall_ms;
    /* At the ceiling the oldest record goes, open or not: its live
     * connection keeps working, only its statistics are gone. */
    free(ring_push(&st->conns, c));
    return c;
}

sf_conn_rec *sf_conn_find(sf_state *st, int id) {
    for (size_t i = st->conns.len; i-- > 0;) {
        sf_conn_rec *c = ring_at(&st->conns, i);
        if (c->id == id) return c;
    }
    return NULL;
}

int sf_conn_open_count(const sf_state *st) {
    int n = 0;
    for (size_t i = 0; i < st->conns.len; i++)
        if (((sf_conn_rec *)ring_at(&st->conns, i))->open) n++;
    return n;
}

/* ---------- envelopes ---------- */

static uint32_t hash_id(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (SF_ENV_BUCKETS - 1);
}

static void env_unhash(sf_state *st, sf_env *e) {
    sf_env **pp = &st->env_buckets[hash_id(e->id)];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
}

char *sf_envelope_frame(const char *envelope_id, const char *type, bool accepts_response_payload,
                        json_object *payload, int retry_attempt, const char *retry_reason) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "envelope_id", json_object_new_string(envelope_id));
    json_object_object_add(o, "payload", json_object_get(payload));
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "accepts_response_payload", json_object_new_boolean(accepts_response_payload));
    if (retry_attempt >= 0) {
        json_object_object_add(o, "retry_attempt", json_object_new_int(retry_attempt));
        json_object_object_add(o, "retry_reason", json_object_new_string(retry_reason ? retry_reason : ""));
    }
    char *s = json_dup_text(o);
    json_object_put(o);
    return s;
}

sf_env *sf_env_add(sf_state *st, const char *id, const char *type, int conn, int retry_attempt, char *frame,
                   int64_t now_us) {
    sf_env *e = calloc(1, sizeof(*e));
    if (!e) {
        free(frame);
        return NULL;
    }
    copy_str(e->id, sizeof(e->id), id);
    copy_str(e->type, sizeof(e->type), type);
    e->conn = conn;
    e->retry_attempt = retry_attempt;
    e->frame = frame;
    e->queued_us = now_us;
    e->load_idx = -1;
    if (st->envs.len == st->envs.cap) env_unhash(st, ring_at(&st->envs, 0));
    env_free(ring_push(&st->envs, e));
    /* Newest first in its chain: a reused id finds the latest envelope. */
    uint32_t h = hash_id(e->id);
    e->hnext = st->env_buckets[h];
    st->env_buckets[h] = e;
    sf_conn_rec *c = sf_conn_find(st, conn);
    if (c) c->envelopes++;
    return e;
}

sf_env *sf_env_find(sf_state *st, const char *id) {
    if (!id) return NULL;
    for (sf_env *e = st->env_buckets[hash_id(id)]; e; e = e->hnext)
        if (strcmp(e->id, id) == 0) return e;
    return NULL;
}

void sf_env_mark_sent(sf_env *e, int64_t now_us, int64_t wall_ms, bool swallowed) {
    if (e->sent_us) return;
    e->sent_us = now_us > 0 ? now_us : 1;
    e->sent_wall_ms = wall_ms;
    e->swallowed = swallowed;
}

/* The answer a slash command's ack carries (A2.3, A3.3), shown as Slack
 * shows it; the rules are with sf_ack_frame in state.h. slash is the
 * payload the fake sent in the envelope: the answer goes to its user_id
 * and channel_id. Returns NULL (shown, or nothing to show) or why the
 * payload was refused. */
static const char *ack_show(sf_state *st, sf_env *e, json_object *payload, json_object *slash, int64_t wall_us) {
    json_object *rt = NULL, *v = NULL;
    bool in_channel = false;
    if (json_object_object_get_ex(payload, "response_type", &rt) && rt) {
        const char *t = json_object_is_type(rt, json_type_string) ? json_object_get_string(rt) : "";
        if (strcmp(t, "in_channel") == 0) in_channel = true;
        else if (strcmp(t, "ephemeral") != 0) return "invalid_response_type";
    }
    static const char *const fields[] = {"text", "blocks", "attachments"};
    bool message = false;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (json_object_object_get_ex(payload, fields[i], &v) && v) message = true;
    /* No message: a silent ack. {"response_type":"in_channel"} alone shows
     * the person's command in the channel (A3.3); the fake keeps no record
     * of what people type, so it shows nothing. */
    if (!message) return NULL;
    const char *text = NULL;
    json_object *blocks = NULL, *atts = NULL;
    const char *err = sf_message_fields(payload, &text, &blocks, &atts);
    if (err) return err;
    json_object *u = NULL, *ch = NULL;
    const char *user = slash && json_object_object_get_ex(slash, "user_id", &u) ? json_object_get_string(u) : NULL;
    const char *channel =
        slash && json_object_object_get_ex(slash, "channel_id", &ch) ? json_object_get_string(ch) : NULL;
    char *body = strdup(text ? text : "");
    /* An envelope pushed through /_fake/envelope may lack the slash
     * fields: the answer has nowhere to go, which is not the client's fault. */
    if (!user || !*user || !channel || !*channel || !body) {
        free(body);
        json_object_put(blocks);
        json_object_put(atts);
        return NULL;
    }
    if (in_channel) {
        sf_msg *m = calloc(1, sizeof(*m));
        if (!m) goto oom;
        m->text = body;
        copy_str(m->channel, sizeof(m->channel), channel);
        /* Posted as the app, but not by chat.postMessage: by_bot stays
         * false, so chat.update answers cant_update_message. */
        copy_str(m->user, sizeof(m->user), st->bot_user_id);
        sf_next_ts(st, wall_us, m->ts);
        m->blocks = blocks;
        m->attachments = atts;
        m->via_ack = true;
        sf_msg_add_version(m, m->text);
        sf_msg_add(st, m);
    } else {
        sf_ephemeral *x = calloc(1, sizeof(*x));
        if (!x) goto oom;
        x->text = body;
        copy_str(x->channel, sizeof(x->channel), channel);
        copy_str(x->user, sizeof(x->user), user);
        sf_next_ts(st, wall_us, x->ts);
        x->blocks = blocks;
        x->attachments = atts;
        x->via_ack = true;
        sf_ephemeral_add(st, x);
    }
    e->answered_in_ack = true;
    st->ack_answers++;
    return NULL;
oom:
    free(body);
    json_object_put(blocks);
    json_object_put(atts);
    return NULL;
}

/* Decides what the first ack's payload does. Returns NULL or why it was
 * refused (a static string). */
static const char *ack_answer(sf_state *st, sf_env *e, json_object *payload, int64_t wall_us) {
    bool is_object = json_object_is_type(payload, json_type_object);
    /* null is the default (A5) and {} a silent ack (the Node SDK always
     * sends one, A2.3): nothing to do, and no need to parse the frame. */
    if (!payload || (is_object && json_object_object_length(payload) == 0)) return NULL;
    json_object *frame = e->frame ? json_tokener_parse(e->frame) : NULL, *accepts = NULL, *slash = NULL;
    const char *err = NULL;
    if (!frame || !json_object_object_get_ex(frame, "accepts_response_payload", &accepts) ||
        !json_object_get_boolean(accepts))
        err = "payload_not_accepted";  /* Slack drops it; the client believes it answered */
    else if (strcmp(e->type, "slash_commands") != 0)
        err = NULL;                    /* interactive: what Slack does is unverified (A2.3); shown nowhere */
    else if (!is_object)
        err = "payload_not_object";
    else
        err = ack_show(st, e, payload, json_object_object_get_ex(frame, "payload", &slash) ? slash : NULL, wall_us);
    json_object_put(frame);
    return err;
}

int sf_ack_frame(sf_state *st, int conn, const char *text, size_t len, int64_t now_us, int64_t wall_us,
                 sf_env **env_out) {
    *env_out = NULL;
    sf_conn_rec *c = sf_conn_find(st, conn);
    json_tokener *tok = json_tokener_new();
    if (!tok) return SF_ACK_BAD;
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    bool complete = json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    json_object *id = NULL, *payload = NULL;
    if (!o || !complete || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "envelope_id", &id) || !json_object_is_type(id, json_type_string)) {
        json_object_put(o);
        st->bad_frames++;
        if (c) c->bad_frames++;
        return SF_ACK_BAD;
    }
    sf_env *e = sf_env_find(st, json_object_get_string(id));
    if (!e) {
        json_object_put(o);
        st->unknown_acks++;
        return SF_ACK_UNKNOWN;
    }
    *env_out = e;
    if (e->acked) {
        e->extra_acks++;
        json_object_put(o);
        return SF_ACK_DUPLICATE;
    }
    e->acked = true;
    e->latency_us = e->sent_us ? now_us - e->sent_us : 0;
    if (json_object_object_get_ex(o, "payload", &payload)) {
        e->ack_payload = json_dup_text(payload);
        e->ack_error = ack_answer(st, e, payload, wall_us);
        if (e->ack_error) st->bad_ack_payloads++;
    }
    if (c) c->acks++;
    json_object_put(o);
    return SF_ACK_OK;
}

bool sf_env_late(const sf_state *st, const sf_env *e, int64_t now_us) {
    if (e->acked) return e->latency_us > st->ack_deadline_us;
    return e->sent_us && now_us - e->sent_us > st->ack_deadline_us;
}

char *sf_env_redelivery(const sf_env *e, const char *new_id, int *attempt_out) {
    json_object *o = e->frame ? json_tokener_parse(e->frame) : NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    int attempt = (e->retry_attempt < 0 ? 0 : e->retry_attempt) + 1;
    json_object_object_add(o, "envelope_id", json_object_new_string(new_id));
    json_object_object_add(o, "retry_attempt", json_object_new_int(attempt));
    json_object_object_add(o, "retry_reason", json_object_new_string("timeout"));
    char *s = json_dup_text(o);
    json_object_put(o);
    *attempt_out = attempt;
    return s;
}

/* ---------- slash commands ---------- */

void sf_channel_name(const char *id, char *out, size_t outlen) {
    size_t i = 0;
    for (; id[i] && i + 1 < outlen; i++) out[i] = (char)tolower((unsigned char)id[i]);
    out[i] = '\0';
}

json_object *sf_slash_payload(sf_state *st, const sf_slash *s, char trigger_out[SF_ID_MAX]) {
    if (s->trigger_id && *s->trigger_id) copy_str(trigger_out, SF_ID_MAX, s->trigger_id);
    else sf_new_trigger_id(st, trigger_out);
    const char *user_name = "unknown";
    json_object *u = sf_user_find(st, s->user_id), *name;
    if (u && json_object_object_get_ex(u, "name", &name)) user_name = json_object_get_string(name);
    char chname[SF_ID_MAX], url[256];
    sf_channel_name(s->channel_id, chname, sizeof(chname));
    /* response_url points back at the fake, never at hooks.slack.com. */
    snprintf(url, sizeof(url), "%s://%s:%d/commands/%s/%013" PRIu64 "/%016" PRIx64, st->tls ? "https" : "http",
             st->host, st->port, s->team_id ? s->team_id : st->team_id, sf_rand(st) % (uint64_t)10000000000000,
             sf_rand(st));
    json_object *p = json_object_new_object();
    /* A3.1: every value a string, as in the HTTP-mode form. */
    json_object_object_add(p, "token", json_object_new_string("fake-verification-token"));
    json_object_object_add(p, "team_id", json_object_new_string(s->team_id ? s->team_id : st->team_id));
    json_object_object_add(p, "team_domain", json_object_new_string(st->domain));
    json_object_object_add(p, "channel_id", json_object_new_string(s->channel_id));
    json_object_object_add(p, "channel_name", json_object_new_string(chname));
    json_object_object_add(p, "user_id", json_object_new_string(s->user_id));
    json_object_object_add(p, "user_name", json_object_new_string(user_name));
    json_object_object_add(p, "command", json_object_new_string(s->command ? s->command : "/nomatron"));
    json_object_object_add(p, "text", json_object_new_string(s->text ? s->text : ""));
    json_object_object_add(p, "api_app_id", json_object_new_string(st->app_id));
    json_object_object_add(p, "is_enterprise_install", json_object_new_string("false"));
    json_object_object_add(p, "response_url", json_object_new_string(url));
    json_object_object_add(p, "trigger_id", json_object_new_string(trigger_out));
    return p;
}

/* ---------- control views ---------- */

static char *put_text(json_object *o) {
    char *s = json_dup_text(o);
    json_object_put(o);
    return s;
}

char *sf_calls_json(sf_state *st, const char *method) {
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < st->calls.len; i++) {
        sf_call *c = ring_at(&st->calls, i);
        if (method && strcmp(method, c->method) != 0) continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "seq", json_object_new_int64((int64_t)c->seq));
        json_object_object_add(o, "method", json_object_new_string(c->method));
        json_object_object_add(o, "time_ms", json_object_new_int64(c->time_ms));
        json_object_object_add(o, "http_method", json_object_new_string(c->verb));
        json_object_object_add(o, "style", json_object_new_string(c->style ? c->style : "none"));
        json_object_object_add(o, "status", json_object_new_int(c->status));
        json_object_object_add(o, "auth", json_object_new_string(c->auth ? c->auth : "missing"));
        json_object_object_add(o, "auth_ok", json_object_new_boolean(c->auth_ok));
        json_object_object_add(o, "token_in_args", json_object_new_boolean(c->token_in_args));
        json_object_object_add(o, "args", json_object_get(c->args));
        json_object_object_add(o, "response", json_object_get(c->response));
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "calls", arr);
    json_object_object_add(r, "dropped", json_object_new_int64((int64_t)st->calls.dropped));
    return put_text(r);
}

char *sf_messages_json(sf_state *st, const char *channel) {
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < st->messages.len; i++) {
        sf_msg *m = ring_at(&st->messages, i);
        if (channel && strcmp(channel, m->channel) != 0) continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "channel", json_object_new_string(m->channel));
        json_object_object_add(o, "ts", json_object_new_string(m->ts));
        if (m->thread_ts[0]) json_object_object_add(o, "thread_ts", json_object_new_string(m->thread_ts));
        json_object_object_add(o, "user", json_object_new_string(m->user));
        json_object_object_add(o, "by_bot", json_object_new_boolean(m->by_bot));
        json_object_object_add(o, "text", json_object_new_string(m->text));
        json_object_object_add(o, "blocks", json_object_get(m->blocks));
        json_object_object_add(o, "attachments", json_object_get(m->attachments));
        json_object_object_add(o, "edits", json_object_new_int(m->edits));
        json_object_object_add(o, "edited", json_object_new_boolean(m->edited));
        json_object_object_add(o, "versions", json_object_get(m->versions));
        json_object_object_add(o, "via", json_object_new_string(m->via_ack ? "ack" : "api"));
        json_object_array_add(arr, o);
    }
    json_object *eph = json_object_new_array();
    for (size_t i = 0; i < st->ephemeral.len; i++) {
        sf_ephemeral *e = ring_at(&st->ephemeral, i);
        if (channel && strcmp(channel, e->channel) != 0) continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "channel", json_object_new_string(e->channel));
        json_object_object_add(o, "user", json_object_new_string(e->user));
        json_object_object_add(o, "message_ts", json_object_new_string(e->ts));
        if (e->thread_ts[0]) json_object_object_add(o, "thread_ts", json_object_new_string(e->thread_ts));
        json_object_object_add(o, "text", json_object_new_string(e->text));
        json_object_object_add(o, "blocks", json_object_get(e->blocks));
        json_object_object_add(o, "attachments", json_object_get(e->attachments));
        json_object_object_add(o, "via", json_object_new_string(e->via_ack ? "ack" : "api"));
        json_object_array_add(eph, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "messages", arr);
    json_object_object_add(r, "ephemeral", eph);
    json_object_object_add(r, "dropped_messages", json_object_new_int64((int64_t)st->messages.dropped));
    json_object_object_add(r, "dropped_ephemeral", json_object_new_int64((int64_t)st->ephemeral.dropped));
    return put_text(r);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t sf_percentile(const int64_t *sorted, size_t n, double p) {
    if (n == 0) return 0;
    size_t rank = (size_t)(p * (double)n + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

char *sf_acks_json(sf_state *st, int64_t now_us) {
    json_object *arr = json_object_new_array();
    int64_t *lat = malloc((st->envs.len + 1) * sizeof(*lat));
    if (!lat) {
        json_object_put(arr);
        return NULL;
    }
    size_t n_lat = 0;
    uint64_t sent = 0, acked = 0, late = 0, unacked = 0;
    for (size_t i = 0; i < st->envs.len; i++) {
        sf_env *e = ring_at(&st->envs, i);
        bool is_late = sf_env_late(st, e, now_us);
        if (e->sent_us) sent++;
        if (e->acked) {
            acked++;
            lat[n_lat++] = e->latency_us;
        } else {
            unacked++;
        }
        if (is_late) late++;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "envelope_id", json_object_new_string(e->id));
        json_object_object_add(o, "type", json_object_new_string(e->type));
        json_object_object_add(o, "connection", json_object_new_int(e->conn));
        if (e->retry_attempt >= 0) json_object_object_add(o, "retry_attempt", json_object_new_int(e->retry_attempt));
        json_object_object_add(o, "sent", json_object_new_boolean(e->sent_us != 0));
        json_object_object_add(o, "sent_ms", json_object_new_int64(e->sent_wall_ms));
        json_object_object_add(o, "swallowed", json_object_new_boolean(e->swallowed));
        json_object_object_add(o, "acked", json_object_new_boolean(e->acked));
        json_object_object_add(o, "late", json_object_new_boolean(is_late));
        json_object_object_add(o, "ack_us", e->acked ? json_object_new_int64(e->latency_us) : NULL);
        json_object_object_add(o, "ack_payload", e->ack_payload ? json_tokener_parse(e->ack_payload) : NULL);
        json_object_object_add(o, "has_ack_payload", json_object_new_boolean(e->ack_payload != NULL));
        json_object_object_add(o, "answered_in_ack", json_object_new_boolean(e->answered_in_ack));
        json_object_object_add(o, "ack_error", e->ack_error ? json_object_new_string(e->ack_error) : NULL);
        json_object_object_add(o, "extra_acks", json_object_new_int(e->extra_acks));
        json_object_array_add(arr, o);
    }
    qsort(lat, n_lat, sizeof(*lat), cmp_i64);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "envelopes", arr);
    json_object_object_add(r, "sent", json_object_new_int64((int64_t)sent));
    json_object_object_add(r, "acked", json_object_new_int64((int64_t)acked));
    json_object_object_add(r, "late", json_object_new_int64((int64_t)late));
    json_object_object_add(r, "unacked", json_object_new_int64((int64_t)unacked));
    json_object_object_add(r, "unknown_acks", json_object_new_int64((int64_t)st->unknown_acks));
    json_object_object_add(r, "bad_frames", json_object_new_int64((int64_t)st->bad_frames));
    json_object_object_add(r, "ack_answers", json_object_new_int64((int64_t)st->ack_answers));
    json_object_object_add(r, "bad_ack_payloads", json_object_new_int64((int64_t)st->bad_ack_payloads));
    json_object_object_add(r, "deadline_ms", json_object_new_int64(st->ack_deadline_us / 1000));
    json_object_object_add(r, "dropped", json_object_new_int64((int64_t)st->envs.dropped));
    json_object *q = json_object_new_object();
    json_object_object_add(q, "p50", json_object_new_int64(sf_percentile(lat, n_lat, 0.50)));
    json_object_object_add(q, "p99", json_object_new_int64(sf_percentile(lat, n_lat, 0.99)));
    json_object_object_add(q, "max", json_object_new_int64(n_lat ? lat[n_lat - 1] : 0));
    json_object_object_add(r, "ack_us", q);
    free(lat);
    return put_text(r);
}

char *sf_conns_json(sf_state *st) {
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < st->conns.len; i++) {
        sf_conn_rec *c = ring_at(&st->conns, i);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int(c->id));
        json_object_object_add(o, "open", json_object_new_boolean(c->open));
        json_object_object_add(o, "hello_sent", json_object_new_boolean(c->hello_sent));
        json_object_object_add(o, "halfopen", json_object_new_boolean(c->halfopen));
        json_object_object_add(o, "client_close", json_object_new_boolean(c->client_close));
        json_object_object_add(o, "opened_ms", json_object_new_int64(c->opened_ms));
        json_object_object_add(o, "closed_ms", c->open ? NULL : json_object_new_int64(c->closed_ms));
        json_object_object_add(o, "pings_sent", json_object_new_int64((int64_t)c->pings_sent));
        json_object_object_add(o, "pongs_received", json_object_new_int64((int64_t)c->pongs_received));
        json_object_object_add(o, "envelopes", json_object_new_int64((int64_t)c->envelopes));
        json_object_object_add(o, "acks", json_object_new_int64((int64_t)c->acks));
        json_object_object_add(o, "bad_frames", json_object_new_int64((int64_t)c->bad_frames));
        if (c->note[0]) json_object_object_add(o, "note", json_object_new_string(c->note));
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "connections", arr);
    json_object_object_add(r, "connections_open_calls", json_object_new_int64((int64_t)st->connections_open_calls));
    json_object_object_add(r, "open", json_object_new_int(sf_conn_open_count(st)));
    return put_text(r);
}
