#include "webapi.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------- argument decoding ---------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) into a new NUL-terminated string; NULL if malformed. */
static char *form_decode(const char *s, size_t len) {
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = len - i >= 3 ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = len - i >= 3 ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0') {
            free(out);
            return NULL;
        }
        out[j++] = c;
    }
    out[j] = '\0';
    return out;
}

int sf_form_parse(const char *s, size_t len, json_object *obj) {
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&') end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && s[eq] != '=') eq++;
            char *k = form_decode(s + i, eq - i);
            char *v = eq < end ? form_decode(s + eq + 1, end - eq - 1) : strdup("");
            if (!k || !v) {
                free(k);
                free(v);
                return -1;
            }
            if (*k) json_object_object_add(obj, k, json_object_new_string(v));
            free(k);
            free(v);
        }
        i = end + 1;
    }
    return 0;
}

int sf_token_equal(const char *token, const char *want) {
    size_t n = strlen(want), m = strlen(token);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(want[i] ^ (i < m ? token[i] : 0));
    return diff == 0 && n > 0;
}

/* ---------- the call being answered ---------- */

typedef struct call_ctx {
    sf_state *st;
    json_object *args;  /* borrowed: what the method sees */
    json_object *resp;  /* the response object; "ok" first */
    int64_t wall_us;
} call_ctx;

/* NULL when absent or null (A5: explicit null means "use the default").
 * Scalars read as their string form; objects and arrays as NULL with *bad. */
static const char *arg_str(call_ctx *c, const char *key, bool *bad) {
    json_object *v;
    if (!json_object_object_get_ex(c->args, key, &v) || !v) return NULL;
    if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array)) {
        if (bad) *bad = true;
        return NULL;
    }
    return json_object_get_string(v);
}

static bool arg_given(call_ctx *c, const char *key) {
    json_object *v;
    return json_object_object_get_ex(c->args, key, &v) && v != NULL;
}

static bool arg_true(call_ctx *c, const char *key) {
    const char *s = arg_str(c, key, NULL);
    return s && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

/* blocks / attachments: the checks live in state.c (sf_*_field), shared
 * with the answers slash commands carry in their acks. */
static const char *arg_blocks(call_ctx *c, json_object **out) { return sf_blocks_field(c->args, out); }
static const char *arg_attachments(call_ctx *c, json_object **out) { return sf_attachments_field(c->args, out); }

/* 'C' public, 'G' private, 'D' DM, 'U' user (DM by user ID), 0 = malformed. */
static char channel_kind(const char *id) {
    if (!id) return 0;
    size_t n = strlen(id);
    if (n < 2 || n >= SF_ID_MAX || !strchr("CGDU", id[0])) return 0;
    for (size_t i = 1; i < n; i++)
        if (!isupper((unsigned char)id[i]) && !isdigit((unsigned char)id[i])) return 0;
    return id[0];
}

static json_object *msg_json(sf_state *st, const sf_msg *m) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("message"));
    if (m->by_bot) {
        json_object_object_add(o, "subtype", json_object_new_string("bot_message"));
        json_object_object_add(o, "bot_id", json_object_new_string(st->bot_id));
        json_object_object_add(o, "app_id", json_object_new_string(st->app_id));
    }
    json_object_object_add(o, "user", json_object_new_string(m->user));
    json_object_object_add(o, "team", json_object_new_string(st->team_id));
    json_object_object_add(o, "text", json_object_new_string(m->text));
    json_object_object_add(o, "ts", json_object_new_string(m->ts));
    if (m->thread_ts[0]) json_object_object_add(o, "thread_ts", json_object_new_string(m->thread_ts));
    if (m->blocks) json_object_object_add(o, "blocks", json_object_get(m->blocks));
    if (m->attachments) json_object_object_add(o, "attachments", json_object_get(m->attachments));
    if (m->edited) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "user", json_object_new_string(m->user));
        json_object_object_add(e, "ts", json_object_new_string(m->edited_ts));
        json_object_object_add(o, "edited", e);
    }
    return o;
}

/* ---------- methods ---------- */

static const char *m_connections_open(call_ctx *c) {
    char ticket[40], url[160];
    sf_ticket_new(c->st, ticket);
    snprintf(url, sizeof(url), "%s://%s:%d/link/?ticket=%s", c->st->tls ? "wss" : "ws", c->st->host, c->st->port,
             ticket);
    c->st->connections_open_calls++;
    json_object_object_add(c->resp, "url", json_object_new_string(url));
    return NULL;
}

static const char *m_auth_test(call_ctx *c) {
    char url[SF_ID_MAX + 32];
    snprintf(url, sizeof(url), "https://%s.slack.com/", c->st->domain);
    json_object_object_add(c->resp, "url", json_object_new_string(url));
    json_object_object_add(c->resp, "team", json_object_new_string(c->st->domain));
    json_object_object_add(c->resp, "user", json_object_new_string(c->st->bot_user_name));
    json_object_object_add(c->resp, "team_id", json_object_new_string(c->st->team_id));
    json_object_object_add(c->resp, "user_id", json_object_new_string(c->st->bot_user_id));
    json_object_object_add(c->resp, "bot_id", json_object_new_string(c->st->bot_id));
    json_object_object_add(c->resp, "is_enterprise_install", json_object_new_boolean(0));
    return NULL;
}

/* Text argument: NULL (and *err) if it is an object or array. */
static const char *text_arg(call_ctx *c, const char **err) {
    bool bad = false;
    const char *t = arg_str(c, "text", &bad);
    if (bad) *err = "invalid_arguments";
    return t;
}

static const char *m_post_message(call_ctx *c) {
    const char *channel = arg_str(c, "channel", NULL);
    char kind = channel_kind(channel);
    if (!kind) return "channel_not_found";
    char real[SF_ID_MAX];
    if (kind == 'U') {
        /* A6: a user ID posts to the bot's DM with that user. */
        if (!sf_user_find(c->st, channel)) return "channel_not_found";
        snprintf(real, sizeof(real), "D%s", channel + 1);
    } else {
        snprintf(real, sizeof(real), "%s", channel);
    }
    const char *err = NULL;
    const char *text = text_arg(c, &err);
    if (err) return err;
    json_object *blocks = NULL, *atts = NULL;
    if ((err = arg_blocks(c, &blocks)) != NULL) return err;
    if ((err = arg_attachments(c, &atts)) != NULL) {
        json_object_put(blocks);
        return err;
    }
    if ((!text || !*text) && !blocks && !atts) return "no_text";
    const char *thread_ts = arg_str(c, "thread_ts", NULL);
    sf_msg *m = calloc(1, sizeof(*m));
    if (!m) {
        json_object_put(blocks);
        json_object_put(atts);
        return "internal_error";
    }
    snprintf(m->channel, sizeof(m->channel), "%s", real);
    sf_next_ts(c->st, c->wall_us, m->ts);
    if (thread_ts && *thread_ts) snprintf(m->thread_ts, sizeof(m->thread_ts), "%s", thread_ts);
    snprintf(m->user, sizeof(m->user), "%s", c->st->bot_user_id);
    m->by_bot = true;
    /* A6: text over 40,000 characters is truncated, not refused. */
    const char *t = text ? text : "";
    m->text = strndup(t, sf_utf8_prefix(t, SF_MAX_POST_TEXT));
    m->blocks = blocks;
    m->attachments = atts;
    if (!m->text) {
        sf_msg_free(m);
        return "internal_error";
    }
    sf_msg_add_version(m, m->text);
    sf_msg_add(c->st, m);
    json_object_object_add(c->resp, "channel", json_object_new_string(m->channel));
    json_object_object_add(c->resp, "ts", json_object_new_string(m->ts));
    json_object_object_add(c->resp, "message", msg_json(c->st, m));
    return NULL;
}

static const char *m_update(call_ctx *c) {
    const char *channel = arg_str(c, "channel", NULL);
    char kind = channel_kind(channel);
    if (!kind || kind == 'U') return "channel_not_found"; /* A6: the real channel ID, not a user ID */
    const char *ts = arg_str(c, "ts", NULL);
    sf_msg *m = sf_msg_find(c->st, channel, ts);
    if (!m) return "message_not_found"; /* ephemeral message_ts included (A6) */
    if (!m->by_bot) return "cant_update_message";
    const char *err = NULL;
    const char *text = text_arg(c, &err);
    if (err) return err;
    if (text && sf_utf8_chars(text) > SF_MAX_EDIT_TEXT) return "msg_too_long";
    bool has_blocks = arg_given(c, "blocks"), has_atts = arg_given(c, "attachments");
    json_object *blocks = NULL, *atts = NULL;
    if ((err = arg_blocks(c, &blocks)) != NULL) return err;
    if ((err = arg_attachments(c, &atts)) != NULL) {
        json_object_put(blocks);
        return err;
    }
    /* A6: blocks given replace them ([] clears); text without blocks
     * removes them; neither keeps them. Attachments: omitted kept, [] clears. */
    json_object *new_blocks = has_blocks ? blocks : text ? NULL : json_object_get(m->blocks);
    json_object *new_atts = has_atts ? atts : json_object_get(m->attachments);
    const char *new_text = text ? text : m->text;
    if (!*new_text && !new_blocks && !new_atts) {
        json_object_put(new_blocks);
        json_object_put(new_atts);
        return "no_text";
    }
    char *t = strdup(new_text);
    if (!t) {
        json_object_put(new_blocks);
        json_object_put(new_atts);
        return "internal_error";
    }
    free(m->text);
    m->text = t;
    json_object_put(m->blocks);
    m->blocks = new_blocks;
    json_object_put(m->attachments);
    m->attachments = new_atts;
    m->edits++;
    /* A6: updating via blocks hides the "edited" marker. */
    m->edited = !has_blocks;
    if (m->edited) sf_next_ts(c->st, c->wall_us, m->edited_ts);
    sf_msg_add_version(m, m->text);
    json_object_object_add(c->resp, "channel", json_object_new_string(m->channel));
    json_object_object_add(c->resp, "ts", json_object_new_string(m->ts));
    json_object_object_add(c->resp, "text", json_object_new_string(m->text));
    json_object_object_add(c->resp, "message", msg_json(c->st, m));
    return NULL;
}

static const char *m_post_ephemeral(call_ctx *c) {
    const char *channel = arg_str(c, "channel", NULL);
    char kind = channel_kind(channel);
    if (!kind || kind == 'U') return "channel_not_found";
    const char *user = arg_str(c, "user", NULL);
    if (!user || !sf_user_find(c->st, user)) return "user_not_in_channel";
    /* The same checks apply to an answer carried by a slash command's ack. */
    const char *text = NULL;
    json_object *blocks = NULL, *atts = NULL;
    const char *err = sf_message_fields(c->args, &text, &blocks, &atts);
    if (err) return err;
    sf_ephemeral *e = calloc(1, sizeof(*e));
    if (!e || !(e->text = strdup(text ? text : ""))) {
        free(e);
        json_object_put(blocks);
        json_object_put(atts);
        return "internal_error";
    }
    snprintf(e->channel, sizeof(e->channel), "%s", channel);
    snprintf(e->user, sizeof(e->user), "%s", user);
    const char *thread_ts = arg_str(c, "thread_ts", NULL);
    if (thread_ts) snprintf(e->thread_ts, sizeof(e->thread_ts), "%s", thread_ts);
    sf_next_ts(c->st, c->wall_us, e->ts);
    e->blocks = blocks;
    e->attachments = atts;
    sf_ephemeral_add(c->st, e);
    json_object_object_add(c->resp, "message_ts", json_object_new_string(e->ts));
    return NULL;
}

static const char *m_permalink(call_ctx *c) {
    const char *channel = arg_str(c, "channel", NULL);
    char kind = channel_kind(channel);
    if (!kind || kind == 'U') return "channel_not_found";
    const char *ts = arg_str(c, "message_ts", NULL);
    sf_msg *m = sf_msg_find(c->st, channel, ts);
    if (!m) return "message_not_found";
    char link[512];
    if (sf_permalink(c->st->domain, m->channel, m->ts, m->thread_ts, link, sizeof(link)) != 0)
        return "internal_error";
    json_object_object_add(c->resp, "channel", json_object_new_string(m->channel));
    json_object_object_add(c->resp, "permalink", json_object_new_string(link));
    return NULL;
}

static const char *m_users_info(call_ctx *c) {
    json_object *u = sf_user_find(c->st, arg_str(c, "user", NULL));
    if (!u) return "user_not_found";
    json_object *copy = NULL;
    if (json_object_deep_copy(u, &copy, NULL) != 0) return "internal_error";
    if (!arg_true(c, "include_locale")) json_object_object_del(copy, "locale");
    json_object_object_add(c->resp, "user", copy);
    return NULL;
}

static const char *m_conversations_info(call_ctx *c) {
    const char *id = arg_str(c, "channel", NULL);
    char kind = channel_kind(id);
    if (!kind || kind == 'U') return "channel_not_found";
    char name[SF_ID_MAX];
    sf_channel_name(id, name, sizeof(name));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    if (kind != 'D') json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "is_channel", json_object_new_boolean(kind == 'C'));
    json_object_object_add(o, "is_group", json_object_new_boolean(kind == 'G'));
    json_object_object_add(o, "is_im", json_object_new_boolean(kind == 'D'));
    json_object_object_add(o, "is_mpim", json_object_new_boolean(0));
    json_object_object_add(o, "is_private", json_object_new_boolean(kind != 'C'));
    json_object_object_add(o, "is_archived", json_object_new_boolean(0));
    json_object_object_add(o, "is_general", json_object_new_boolean(0));
    json_object_object_add(o, "is_member", json_object_new_boolean(1));
    json_object_object_add(o, "created", json_object_new_int64(1449252889));
    if (kind == 'D') {
        /* The DM the fake opens for user U<x> is D<x> (chat.postMessage). */
        char user[SF_ID_MAX];
        snprintf(user, sizeof(user), "U%s", id + 1);
        json_object_object_add(o, "user", json_object_new_string(user));
    } else {
        json_object_object_add(o, "creator", json_object_new_string("U0ADMIN"));
        json_object *topic = json_object_new_object(), *purpose = json_object_new_object();
        json_object_object_add(topic, "value", json_object_new_string(""));
        json_object_object_add(topic, "creator", json_object_new_string(""));
        json_object_object_add(topic, "last_set", json_object_new_int(0));
        json_object_object_add(purpose, "value", json_object_new_string(""));
        json_object_object_add(purpose, "creator", json_object_new_string(""));
        json_object_object_add(purpose, "last_set", json_object_new_int(0));
        json_object_object_add(o, "topic", topic);
        json_object_object_add(o, "purpose", purpose);
    }
    if (arg_true(c, "include_num_members"))
        json_object_object_add(o, "num_members", json_object_new_int(json_object_object_length(c->st->users)));
    json_object_object_add(c->resp, "channel", o);
    return NULL;
}

enum { TOKEN_BOT, TOKEN_APP };

/* The one table: name, which token, whether JSON bodies are read (A5: JSON
 * is for write methods), handler. */
static const struct method {
    const char *name;
    int token;
    bool json_body;
    const char *(*fn)(call_ctx *c);
} methods[] = {
    {"apps.connections.open", TOKEN_APP, true, m_connections_open},
    {"auth.test", TOKEN_BOT, true, m_auth_test},
    {"chat.postMessage", TOKEN_BOT, true, m_post_message},
    {"chat.update", TOKEN_BOT, true, m_update},
    {"chat.postEphemeral", TOKEN_BOT, true, m_post_ephemeral},
    {"chat.getPermalink", TOKEN_BOT, false, m_permalink},
    {"users.info", TOKEN_BOT, false, m_users_info},
    {"conversations.info", TOKEN_BOT, false, m_conversations_info},
};

static const struct method *find_method(const char *name) {
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, name) == 0) return &methods[i];
    return NULL;
}

/* ---------- the request pipeline ---------- */

static json_object *error_body(const char *error) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(error));
    return o;
}

/* Media type of a Content-Type (lowercase, no parameters) and whether its
 * charset parameter, if any, is UTF-8. */
static void parse_content_type(const char *ct, char *type, size_t typelen, bool *charset_ok) {
    *charset_ok = true;
    size_t i = 0;
    while (*ct == ' ') ct++;
    for (; ct[i] && ct[i] != ';' && ct[i] != ' ' && i + 1 < typelen; i++) type[i] = (char)tolower((unsigned char)ct[i]);
    type[i] = '\0';
    const char *cs = NULL;
    for (const char *q = ct; *q && !cs; q++)
        if (strncasecmp(q, "charset=", 8) == 0) cs = q;
    if (cs) {
        cs += 8;
        if (*cs == '"') cs++;
        *charset_ok = strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0;
    }
}

static void finish(sf_state *st, sf_call *call, json_object *resp, int status, int retry_after, sf_response *out) {
    const char *text = sf_json_text(resp);
    out->status = status;
    out->retry_after = retry_after;
    out->body = strdup(text ? text : "{}");
    out->body_len = out->body ? strlen(out->body) : 0;
    call->status = status;
    call->response = resp;
    sf_call_add(st, call);
}

void sf_webapi_reject(sf_state *st, const char *verb, const char *method, int status, const char *error,
                      int64_t wall_us, sf_response *out) {
    memset(out, 0, sizeof(*out));
    sf_call *call = calloc(1, sizeof(*call));
    json_object *resp = error_body(error);
    if (!call) {
        out->status = status;
        out->body = strdup(sf_json_text(resp));
        out->body_len = out->body ? strlen(out->body) : 0;
        json_object_put(resp);
        return;
    }
    call->time_ms = wall_us / 1000;
    snprintf(call->method, sizeof(call->method), "%s", method ? method : "");
    snprintf(call->verb, sizeof(call->verb), "%s", verb ? verb : "");
    call->style = "none";
    call->auth = "missing";
    finish(st, call, resp, status, 0, out);
}

void sf_webapi_handle(sf_state *st, const sf_request *rq, int64_t wall_us, sf_response *out) {
    memset(out, 0, sizeof(*out));
    sf_call *call = calloc(1, sizeof(*call));
    if (!call) {
        out->status = 500;
        out->body = strdup("{\"ok\":false,\"error\":\"internal_error\"}");
        out->body_len = out->body ? strlen(out->body) : 0;
        return;
    }
    call->time_ms = wall_us / 1000;
    snprintf(call->method, sizeof(call->method), "%s", rq->method ? rq->method : "");
    snprintf(call->verb, sizeof(call->verb), "%s", rq->verb ? rq->verb : "");
    call->style = "none";
    call->auth = "missing";

    bool post = rq->verb && strcmp(rq->verb, "POST") == 0;
    if (!post && !(rq->verb && strcmp(rq->verb, "GET") == 0)) {
        finish(st, call, error_body("method_not_allowed"), 405, 0, out);
        return;
    }
    const struct method *m = find_method(call->method);
    if (!m) {
        json_object *r = error_body("unknown_method");
        json_object_object_add(r, "req_method", json_object_new_string(call->method));
        finish(st, call, r, 200, 0, out);
        return;
    }

    /* Injected faults come first, as a throttle in front of the method would. */
    sf_fault f;
    if (sf_fault_take(st, SF_FAULT_RATELIMIT, m->name, &f)) {
        finish(st, call, error_body("ratelimited"), 429, f.retry_after > 0 ? f.retry_after : 1, out);
        return;
    }
    if (sf_fault_take(st, SF_FAULT_FAIL, m->name, &f)) {
        finish(st, call, error_body(f.error), 200, 0, out);
        return;
    }

    /* Arguments: query string, form body, or JSON body (A5). */
    const char *error = NULL;
    json_object *sent = json_object_new_object(); /* what the client sent, for the log */
    json_object *seen = NULL;                     /* what the method reads */
    json_object *form_token = NULL;               /* a token in a form body (allowed for bot methods) */
    bool query_token = false, json_token = false;
    if (rq->query) {
        json_object_object_foreach(rq->query, qk, qv) json_object_object_add(sent, qk, json_object_get(qv));
        query_token = json_object_object_get_ex(rq->query, "token", NULL);
        call->style = "query";
    }
    if (post && rq->body_len > 0) {
        char type[64];
        bool charset_ok;
        if (!rq->content_type || !*rq->content_type) {
            error = "missing_post_type";
        } else {
            parse_content_type(rq->content_type, type, sizeof(type), &charset_ok);
            if (!charset_ok) {
                error = "invalid_charset";
            } else if (strcmp(type, "application/json") == 0) {
                call->style = "json";
                json_tokener *tok = json_tokener_new();
                json_object *body = tok ? json_tokener_parse_ex(tok, rq->body, (int)rq->body_len) : NULL;
                bool complete = tok && json_tokener_get_error(tok) == json_tokener_success &&
                                json_tokener_get_parse_end(tok) == rq->body_len;
                if (tok) json_tokener_free(tok);
                if (!complete) {
                    error = "invalid_json";
                } else if (!json_object_is_type(body, json_type_object)) {
                    error = "json_not_object";
                } else {
                    json_token = json_object_object_get_ex(body, "token", NULL);
                    json_object_put(sent);
                    sent = json_object_get(body);
                    /* A5: JSON bodies are for write methods; read methods
                     * see no arguments from them. */
                    seen = m->json_body ? json_object_get(body) : json_object_new_object();
                }
                json_object_put(body);
            } else if (strcmp(type, "application/x-www-form-urlencoded") == 0) {
                call->style = "form";
                json_object *form = json_object_new_object();
                if (sf_form_parse(rq->body, rq->body_len, form) != 0) {
                    error = "invalid_form_data";
                } else {
                    json_object *tk;
                    if (json_object_object_get_ex(form, "token", &tk)) form_token = json_object_get(tk);
                    json_object_object_foreach(form, fk, fv) json_object_object_add(sent, fk, json_object_get(fv));
                }
                json_object_put(form);
            } else {
                error = "invalid_post_type";
            }
        }
    }
    if (!seen) seen = json_object_get(sent);
    call->token_in_args = query_token || json_token || form_token != NULL;
    json_object_object_del(sent, "token"); /* never recorded */
    json_object_object_del(seen, "token");
    call->args = sent;

    /* The token (A1, A5): the header; a form-body token for bot methods;
     * never the query string or JSON. apps.connections.open takes the
     * header only (A2.1). */
    const char *token = NULL;
    char hdr[1024];
    if (rq->authorization && strncasecmp(rq->authorization, "Bearer ", 7) == 0) {
        snprintf(hdr, sizeof(hdr), "%s", rq->authorization + 7);
        token = hdr;
        while (*token == ' ') token++;
    }
    if (!token && form_token && m->token == TOKEN_BOT) token = json_object_get_string(form_token);
    const char *auth_error = NULL;
    if (!token || !*token) {
        auth_error = "not_authed";
    } else {
        const char *want = m->token == TOKEN_APP ? st->app_token : st->bot_token;
        const char *other = m->token == TOKEN_APP ? st->bot_token : st->app_token;
        if (sf_token_equal(token, want)) {
            call->auth_ok = true;
            call->auth = m->token == TOKEN_APP ? "app" : "bot";
        } else if (sf_token_equal(token, other)) {
            auth_error = "not_allowed_token_type";
            call->auth = m->token == TOKEN_APP ? "bot" : "app";
        } else {
            auth_error = "invalid_auth";
            call->auth = "invalid";
        }
    }
    if (m->token == TOKEN_APP && call->token_in_args) {
        /* A2.1: the app token must be in the header; sent as a parameter
         * it is an error (which code is not documented). */
        auth_error = "not_authed";
        call->auth_ok = false;
    }
    if (!error) error = auth_error;
    memset(hdr, 0, sizeof(hdr));
    json_object_put(form_token);

    json_object *resp = json_object_new_object();
    json_object_object_add(resp, "ok", json_object_new_boolean(1));
    if (!error) {
        call_ctx c = {.st = st, .args = seen, .resp = resp, .wall_us = wall_us};
        error = m->fn(&c);
    }
    json_object_put(seen);
    if (error) {
        json_object_put(resp);
        resp = error_body(error);
    }
    finish(st, call, resp, 200, 0, out);
}

void sf_webapi_response_url(sf_state *st, const char *path, const char *content_type, const char *body,
                            size_t body_len, int64_t wall_us, sf_response *out) {
    memset(out, 0, sizeof(*out));
    sf_call *call = calloc(1, sizeof(*call));
    if (!call) {
        out->status = 500;
        out->body = strdup("{\"ok\":false,\"error\":\"internal_error\"}");
        out->body_len = out->body ? strlen(out->body) : 0;
        return;
    }
    call->time_ms = wall_us / 1000;
    snprintf(call->method, sizeof(call->method), "response_url");
    snprintf(call->verb, sizeof(call->verb), "POST");
    call->auth = "missing";
    call->auth_ok = true; /* A3.4: no auth header; the URL is the secret */
    char type[64] = "";
    bool charset_ok = true;
    if (content_type) parse_content_type(content_type, type, sizeof(type), &charset_ok);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "url", json_object_new_string(path));
    json_object *sent = NULL;
    if (strcmp(type, "application/json") == 0) {
        call->style = "json";
        json_tokener *tok = json_tokener_new();
        sent = tok ? json_tokener_parse_ex(tok, body ? body : "", (int)body_len) : NULL;
        if (tok && (json_tokener_get_error(tok) != json_tokener_success ||
                    json_tokener_get_parse_end(tok) != body_len)) {
            json_object_put(sent);
            sent = NULL;
        }
        if (tok) json_tokener_free(tok);
    }
    if (!sent) {
        if (!call->style) call->style = body_len ? "text" : "none";
        sent = json_object_new_string_len(body ? body : "", (int)body_len);
    }
    json_object_object_add(args, "body", sent);
    call->args = args;

    if (json_object_object_length(st->url_uses) >= SF_MAX_URLS) {
        json_object_put(st->url_uses);
        st->url_uses = json_object_new_object();
    }
    json_object *n;
    int uses = json_object_object_get_ex(st->url_uses, path, &n) ? json_object_get_int(n) : 0;
    json_object_object_add(st->url_uses, path, json_object_new_int(++uses));
    if (uses > SF_RESPONSE_URL_USES) {
        finish(st, call, error_body("used_url"), 404, 0, out);
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    finish(st, call, r, 200, 0, out);
}
