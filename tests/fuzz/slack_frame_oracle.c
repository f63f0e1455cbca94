/* The json-c implementation of slack_frame_parse as it was before the
 * single-pass scanner (bot/slack_proto.c) replaced it, kept verbatim as an
 * oracle for fuzz_slack_frame: the fuzzer checks that both agree on every
 * valid JSON input (code, fields, error sentence) and that the new parser
 * refuses whatever is not strict RFC 8259 JSON. Built into the fuzz target
 * only; never linked into nomatron. */
#include "slack_frame_oracle.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SLACK_JSON_DEPTH 64

/* ---- helpers: each returns a code and writes the sentence once ---- */

typedef struct pctx {
    char *err;
    size_t errlen;
} pctx;

static int failf(pctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(pctx *c, int code, const char *fmt, ...) {
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Parses exactly one JSON object from len bytes: trailing bytes other than
 * whitespace are an error (json-c would otherwise stop early and say yes). */
static int parse_object(pctx *c, const char *what, const char *json, size_t len, size_t max, json_object **out) {
    *out = NULL;
    if (len > max) return failf(c, SLACK_PROTO_ERR_TOO_LARGE, "%s of %zu bytes is over the %zu-byte limit", what, len, max);
    if (!json && len) return failf(c, SLACK_PROTO_ERR_INVALID, "%s: no data", what);
    json_tokener *tok = json_tokener_new_ex(SLACK_JSON_DEPTH);
    if (!tok) return failf(c, SLACK_PROTO_ERR_NOMEM, "%s: out of memory", what);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = len ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o) {
        /* A bare number or literal at the very end also reads as "continue": the top level must be an object anyway. */
        if (!len || jerr == json_tokener_continue)
            return failf(c, SLACK_PROTO_ERR_JSON, "%s: empty or truncated JSON", what);
        return failf(c, SLACK_PROTO_ERR_JSON, "%s: malformed JSON at byte %zu: %s", what, end,
                     json_tokener_error_desc(jerr));
    }
    for (size_t i = end; i < len; i++) {
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\r' && json[i] != '\n') {
            json_object_put(o);
            return failf(c, SLACK_PROTO_ERR_JSON, "%s: unexpected bytes after the JSON value at byte %zu", what, i);
        }
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return failf(c, SLACK_PROTO_ERR_NOT_OBJECT, "%s is not a JSON object", what);
    }
    *out = o;
    return SLACK_PROTO_OK;
}

/* The member `key` of o; NULL when absent or null (json-c stores null as NULL). */
static json_object *member(const json_object *o, const char *key) {
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v)) return NULL;
    return v;
}

enum { OPTIONAL = 0, REQUIRED = 1 };

/* Reads a string member into dst (dstlen bytes with the NUL). Absent: ""
 * (or _MISSING when required; an empty required string counts as absent). */
static int get_str(pctx *c, const json_object *o, const char *path, const char *key, char *dst, size_t dstlen,
                   int required) {
    dst[0] = '\0';
    json_object *v = member(o, key);
    if (!v) return required ? failf(c, SLACK_PROTO_ERR_MISSING, "%s%s: missing", path, key) : SLACK_PROTO_OK;
    if (!json_object_is_type(v, json_type_string))
        return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected a string", path, key);
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (memchr(s, '\0', len)) return failf(c, SLACK_PROTO_ERR_VALUE, "%s%s: contains a NUL byte", path, key);
    if (len >= dstlen)
        return failf(c, SLACK_PROTO_ERR_TOO_LONG, "%s%s: %zu bytes, longer than %zu", path, key, len, dstlen - 1);
    if (!len && required) return failf(c, SLACK_PROTO_ERR_MISSING, "%s%s: empty", path, key);
    memcpy(dst, s, len + 1);
    return SLACK_PROTO_OK;
}

/* An object member; *out NULL when absent or null (or _MISSING when required). */
static int get_obj(pctx *c, const json_object *o, const char *path, const char *key, json_object **out,
                   int required) {
    json_object *v = member(o, key);
    *out = NULL;
    if (!v) return required ? failf(c, SLACK_PROTO_ERR_MISSING, "%s%s: missing", path, key) : SLACK_PROTO_OK;
    if (!json_object_is_type(v, json_type_object))
        return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected an object", path, key);
    *out = v;
    return SLACK_PROTO_OK;
}

/* An integer member in [0, INT_MAX]; absent leaves *dst as it is. Doubles are a type error. */
static int get_int(pctx *c, const json_object *o, const char *path, const char *key, int *dst) {
    json_object *v = member(o, key);
    if (!v) return SLACK_PROTO_OK;
    if (!json_object_is_type(v, json_type_int))
        return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected an integer", path, key);
    int64_t n = json_object_get_int64(v);   /* saturates: a uint64 above INT64_MAX reads INT64_MAX */
    if (n < 0 || n > INT_MAX) return failf(c, SLACK_PROTO_ERR_VALUE, "%s%s: out of range", path, key);
    *dst = (int)n;
    return SLACK_PROTO_OK;
}

static int get_bool(pctx *c, const json_object *o, const char *path, const char *key, bool *dst) {
    json_object *v = member(o, key);
    if (!v) return SLACK_PROTO_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected true or false", path, key);
    *dst = json_object_get_boolean(v) != 0;
    return SLACK_PROTO_OK;
}

#define TRY(expr)                                                                                                      \
    do {                                                                                                               \
        int rc_ = (expr);                                                                                              \
        if (rc_ != SLACK_PROTO_OK) return rc_;                                                                         \
    } while (0)

/* ---- Socket Mode frames ---- */

static int parse_hello(pctx *c, const json_object *root, slack_frame *f) {
    json_object *ci, *di;
    TRY(get_int(c, root, "", "num_connections", &f->hello.num_connections));
    TRY(get_obj(c, root, "", "connection_info", &ci, OPTIONAL));
    if (ci) TRY(get_str(c, ci, "connection_info.", "app_id", f->hello.app_id, sizeof(f->hello.app_id), OPTIONAL));
    TRY(get_obj(c, root, "", "debug_info", &di, OPTIONAL));
    if (di) TRY(get_int(c, di, "debug_info.", "approximate_connection_time", &f->hello.approximate_connection_time));
    return SLACK_PROTO_OK;
}

static int parse_slash(pctx *c, const json_object *p, slack_frame *f) {
    const char *pp = "payload.";
    TRY(get_str(c, p, pp, "team_id", f->slash.team_id, sizeof(f->slash.team_id), OPTIONAL));
    TRY(get_str(c, p, pp, "team_domain", f->slash.team_domain, sizeof(f->slash.team_domain), OPTIONAL));
    TRY(get_str(c, p, pp, "user_id", f->slash.user_id, sizeof(f->slash.user_id), REQUIRED));
    TRY(get_str(c, p, pp, "user_name", f->slash.user_name, sizeof(f->slash.user_name), OPTIONAL));
    TRY(get_str(c, p, pp, "channel_id", f->slash.channel_id, sizeof(f->slash.channel_id), REQUIRED));
    TRY(get_str(c, p, pp, "channel_name", f->slash.channel_name, sizeof(f->slash.channel_name), OPTIONAL));
    TRY(get_str(c, p, pp, "command", f->slash.command, sizeof(f->slash.command), REQUIRED));
    TRY(get_str(c, p, pp, "trigger_id", f->slash.trigger_id, sizeof(f->slash.trigger_id), OPTIONAL));
    TRY(get_str(c, p, pp, "response_url", f->slash.response_url, sizeof(f->slash.response_url), OPTIONAL));
    TRY(get_str(c, p, pp, "api_app_id", f->slash.api_app_id, sizeof(f->slash.api_app_id), OPTIONAL));
    TRY(get_str(c, p, pp, "enterprise_id", f->slash.enterprise_id, sizeof(f->slash.enterprise_id), OPTIONAL));

    /* The text: over CMD_MAX_TEXT is not a protocol error but an answer ("over 4 KiB", SPEC §5). */
    json_object *v = member(p, "text");
    if (!v) return SLACK_PROTO_OK;
    if (!json_object_is_type(v, json_type_string)) return failf(c, SLACK_PROTO_ERR_TYPE, "payload.text: expected a string");
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (memchr(s, '\0', len)) return failf(c, SLACK_PROTO_ERR_VALUE, "payload.text: contains a NUL byte");
    if (len > CMD_MAX_TEXT) {
        f->slash.text_too_long = true;
        return SLACK_PROTO_OK;
    }
    memcpy(f->slash.text, s, len + 1);
    return SLACK_PROTO_OK;
}

static int parse_interactive(pctx *c, const json_object *p, slack_frame *f) {
    json_object *team, *user, *container, *channel, *message;
    TRY(get_str(c, p, "payload.", "type", f->interactive.type, sizeof(f->interactive.type), REQUIRED));
    bool block_actions = strcmp(f->interactive.type, "block_actions") == 0;

    TRY(get_obj(c, p, "payload.", "team", &team, OPTIONAL));
    if (team) TRY(get_str(c, team, "payload.team.", "id", f->interactive.team_id, sizeof(f->interactive.team_id), OPTIONAL));
    TRY(get_obj(c, p, "payload.", "user", &user, block_actions));
    if (user)
        TRY(get_str(c, user, "payload.user.", "id", f->interactive.user_id, sizeof(f->interactive.user_id),
                    block_actions));

    TRY(get_obj(c, p, "payload.", "container", &container, OPTIONAL));
    if (container) {
        TRY(get_str(c, container, "payload.container.", "channel_id", f->interactive.channel_id,
                    sizeof(f->interactive.channel_id), OPTIONAL));
        TRY(get_str(c, container, "payload.container.", "message_ts", f->interactive.message_ts,
                    sizeof(f->interactive.message_ts), OPTIONAL));
    }
    /* channel and message repeat what the container says; they fill in where it is silent. */
    TRY(get_obj(c, p, "payload.", "channel", &channel, OPTIONAL));
    if (channel && !f->interactive.channel_id[0])
        TRY(get_str(c, channel, "payload.channel.", "id", f->interactive.channel_id, sizeof(f->interactive.channel_id),
                    OPTIONAL));
    TRY(get_obj(c, p, "payload.", "message", &message, OPTIONAL));
    if (message && !f->interactive.message_ts[0])
        TRY(get_str(c, message, "payload.message.", "ts", f->interactive.message_ts, sizeof(f->interactive.message_ts),
                    OPTIONAL));

    TRY(get_str(c, p, "payload.", "trigger_id", f->interactive.trigger_id, sizeof(f->interactive.trigger_id), OPTIONAL));
    TRY(get_str(c, p, "payload.", "response_url", f->interactive.response_url, sizeof(f->interactive.response_url),
                OPTIONAL));
    if (!block_actions) return SLACK_PROTO_OK;

    json_object *actions = member(p, "actions");
    if (!actions) return failf(c, SLACK_PROTO_ERR_MISSING, "payload.actions: missing");
    if (!json_object_is_type(actions, json_type_array))
        return failf(c, SLACK_PROTO_ERR_TYPE, "payload.actions: expected an array");
    if (json_object_array_length(actions) == 0) return failf(c, SLACK_PROTO_ERR_MISSING, "payload.actions: empty");
    json_object *a = json_object_array_get_idx(actions, 0);
    if (!a || !json_object_is_type(a, json_type_object))
        return failf(c, SLACK_PROTO_ERR_TYPE, "payload.actions[0]: expected an object");
    TRY(get_str(c, a, "payload.actions[0].", "action_id", f->interactive.action_id, sizeof(f->interactive.action_id),
                REQUIRED));
    TRY(get_str(c, a, "payload.actions[0].", "value", f->interactive.action_value,
                sizeof(f->interactive.action_value), OPTIONAL));
    return SLACK_PROTO_OK;
}

static int parse_events(pctx *c, const json_object *p, slack_frame *f) {
    json_object *event;
    TRY(get_str(c, p, "payload.", "team_id", f->events.team_id, sizeof(f->events.team_id), OPTIONAL));
    /* Optional: app_rate_limited notices carry no event_id. */
    TRY(get_str(c, p, "payload.", "event_id", f->events.event_id, sizeof(f->events.event_id), OPTIONAL));
    TRY(get_obj(c, p, "payload.", "event", &event, OPTIONAL));
    if (event) TRY(get_str(c, event, "payload.event.", "type", f->events.event_type, sizeof(f->events.event_type), OPTIONAL));
    return SLACK_PROTO_OK;
}

static int parse_frame(pctx *c, const json_object *root, slack_frame *f) {
    /* envelope_id first: whatever fails later, the caller can still ack. */
    TRY(get_str(c, root, "", "envelope_id", f->envelope_id, sizeof(f->envelope_id), OPTIONAL));
    TRY(get_str(c, root, "", "type", f->type, sizeof(f->type), REQUIRED));
    if (strcmp(f->type, "hello") == 0) f->kind = SLACK_FRAME_HELLO;
    else if (strcmp(f->type, "disconnect") == 0) f->kind = SLACK_FRAME_DISCONNECT;
    else if (strcmp(f->type, "slash_commands") == 0) f->kind = SLACK_FRAME_SLASH;
    else if (strcmp(f->type, "interactive") == 0) f->kind = SLACK_FRAME_INTERACTIVE;
    else if (strcmp(f->type, "events_api") == 0) f->kind = SLACK_FRAME_EVENTS;
    else f->kind = SLACK_FRAME_OTHER;

    bool envelope = f->kind == SLACK_FRAME_SLASH || f->kind == SLACK_FRAME_INTERACTIVE || f->kind == SLACK_FRAME_EVENTS;
    if (envelope && !f->envelope_id[0])
        return failf(c, SLACK_PROTO_ERR_MISSING, "envelope_id: missing on a %s envelope", f->type);
    TRY(get_bool(c, root, "", "accepts_response_payload", &f->accepts_response_payload));
    TRY(get_int(c, root, "", "retry_attempt", &f->retry_attempt));
    TRY(get_str(c, root, "", "retry_reason", f->retry_reason, sizeof(f->retry_reason), OPTIONAL));

    json_object *payload = NULL;
    if (envelope) TRY(get_obj(c, root, "", "payload", &payload, REQUIRED));
    switch (f->kind) {
    case SLACK_FRAME_HELLO: return parse_hello(c, root, f);
    case SLACK_FRAME_DISCONNECT:
        return get_str(c, root, "", "reason", f->disconnect.reason, sizeof(f->disconnect.reason), OPTIONAL);
    case SLACK_FRAME_SLASH: return parse_slash(c, payload, f);
    case SLACK_FRAME_INTERACTIVE: return parse_interactive(c, payload, f);
    case SLACK_FRAME_EVENTS: return parse_events(c, payload, f);
    case SLACK_FRAME_OTHER: break;
    }
    return SLACK_PROTO_OK;
}

int slack_frame_parse_oracle(const char *json, size_t len, slack_frame *out, char *err, size_t errlen) {
    pctx c = {err, errlen};
    memset(out, 0, sizeof(*out));
    out->kind = SLACK_FRAME_OTHER;
    out->hello.num_connections = -1;
    out->hello.approximate_connection_time = -1;
    if (err && errlen) err[0] = '\0';
    json_object *root;
    int rc = parse_object(&c, "frame", json, len, SLACK_FRAME_MAX, &root);
    if (rc != SLACK_PROTO_OK) return rc;
    rc = parse_frame(&c, root, out);
    json_object_put(root);
    return rc;
}

/* ---- a referee: strict RFC 8259, written apart from common/json_scan.c ---- */

typedef struct vstate {
    const unsigned char *p, *end;
    int depth;
} vstate;

/* Far past both parsers' 64; deeper is called invalid so the referee's stack stays small. */
#define V_MAX_DEPTH 256

static void v_ws(vstate *v) {
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r')) v->p++;
}

static bool v_value(vstate *v);

static bool v_string(vstate *v) {
    if (v->p == v->end || *v->p != '"') return false;
    v->p++;
    while (v->p < v->end) {
        unsigned c = *v->p;
        if (c == '"') {
            v->p++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (v->end - v->p < 2) return false;
            unsigned char e = v->p[1];
            if (e == 'u') {
                if (v->end - v->p < 6) return false;
                for (int i = 2; i < 6; i++)
                    if (!strchr("0123456789abcdefABCDEF", v->p[i]) || !v->p[i]) return false;
                v->p += 6;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                v->p += 2;
            } else
                return false;
            continue;
        }
        if (c < 0x80) {
            v->p++;
            continue;
        }
        /* UTF-8 by code point value: decode, then refuse overlong, surrogates, > U+10FFFF. */
        int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (!n || c >= 0xF8 || v->end - v->p < n) return false;
        unsigned long cp = c & (0xFF >> (n + 1));
        for (int i = 1; i < n; i++) {
            if ((v->p[i] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (v->p[i] & 0x3F);
        }
        static const unsigned long minimum[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < minimum[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        v->p += n;
    }
    return false;
}

static bool v_digits(vstate *v) {
    const unsigned char *s = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9') v->p++;
    return v->p > s;
}

static bool v_number(vstate *v) {
    if (v->p < v->end && *v->p == '-') v->p++;
    if (v->p == v->end) return false;
    if (*v->p == '0') v->p++;
    else if (!v_digits(v)) return false;
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!v_digits(v)) return false;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-')) v->p++;
        if (!v_digits(v)) return false;
    }
    return true;
}

static bool v_word(vstate *v, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, w, n) != 0) return false;
    v->p += n;
    return true;
}

static bool v_value(vstate *v) {
    v_ws(v);
    if (v->p == v->end) return false;
    bool ok;
    if ((*v->p == '{' || *v->p == '[') && ++v->depth > V_MAX_DEPTH) return false;
    switch (*v->p) {
    case '{':
        v->p++;
        v_ws(v);
        if (v->p < v->end && *v->p == '}') {
            v->p++;
            ok = true;
            break;
        }
        for (;;) {
            v_ws(v);
            if (!v_string(v)) return false;
            v_ws(v);
            if (v->p == v->end || *v->p != ':') return false;
            v->p++;
            if (!v_value(v)) return false;
            v_ws(v);
            if (v->p == v->end) return false;
            if (*v->p == '}') break;
            if (*v->p != ',') return false;
            v->p++;
        }
        v->p++;
        ok = true;
        break;
    case '[':
        v->p++;
        v_ws(v);
        if (v->p < v->end && *v->p == ']') {
            v->p++;
            ok = true;
            break;
        }
        for (;;) {
            if (!v_value(v)) return false;
            v_ws(v);
            if (v->p == v->end) return false;
            if (*v->p == ']') break;
            if (*v->p != ',') return false;
            v->p++;
        }
        v->p++;
        ok = true;
        break;
    case '"': ok = v_string(v); break;
    case 't': ok = v_word(v, "true"); break;
    case 'f': ok = v_word(v, "false"); break;
    case 'n': ok = v_word(v, "null"); break;
    default: ok = v_number(v); break;
    }
    if (ok && (v->p[-1] == '}' || v->p[-1] == ']') && v->depth > 0) v->depth--;
    return ok;
}

bool json_strict_valid(const char *json, size_t len) {
    vstate v = {(const unsigned char *)json, (const unsigned char *)json + len, 0};
    if (!v_value(&v)) return false;
    v_ws(&v);
    return v.p == v.end;
}
