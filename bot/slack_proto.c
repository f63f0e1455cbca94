/* See slack_proto.h. Field paths in error sentences are written as Slack
 * nests them ("payload.user.id"), so a log line points at the byte to check. */
#include "slack_proto.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json_scan.h"

/* Nesting Slack actually sends stays well under this (a block_actions
 * payload carries the message's blocks); deeper input is refused, by json-c
 * for Web API answers and by json_scan for frames (which counts levels as
 * json-c does). */
#define SLACK_JSON_DEPTH 64

const char *slack_proto_strerror(int code) {
    switch (code) {
    case SLACK_PROTO_OK: return "ok";
    case SLACK_PROTO_ERR_TOO_LARGE: return "too large";
    case SLACK_PROTO_ERR_JSON: return "malformed JSON";
    case SLACK_PROTO_ERR_NOT_OBJECT: return "not a JSON object";
    case SLACK_PROTO_ERR_MISSING: return "missing field";
    case SLACK_PROTO_ERR_TYPE: return "wrong field type";
    case SLACK_PROTO_ERR_TOO_LONG: return "field too long";
    case SLACK_PROTO_ERR_VALUE: return "bad value";
    case SLACK_PROTO_ERR_INVALID: return "invalid argument";
    case SLACK_PROTO_ERR_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}

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

/* As get_str for text only shown or logged (names, warnings): a longer value
 * is cut at a UTF-8 character boundary instead of refused. */
static int get_str_cut(pctx *c, const json_object *o, const char *path, const char *key, char *dst, size_t dstlen) {
    dst[0] = '\0';
    json_object *v = member(o, key);
    if (!v) return SLACK_PROTO_OK;
    if (!json_object_is_type(v, json_type_string))
        return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected a string", path, key);
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (memchr(s, '\0', len)) return failf(c, SLACK_PROTO_ERR_VALUE, "%s%s: contains a NUL byte", path, key);
    if (len >= dstlen) {
        len = dstlen - 1;
        while (len && ((unsigned char)s[len] & 0xC0) == 0x80) len--;   /* s[len] would start the cut-off part */
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
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

/* ---- Socket Mode frames: one pass with common/json_scan.h ----
 *
 * The frame is scanned once, from its first byte to its last, before any
 * field is judged: a syntax error anywhere wins over a field error, as when
 * json-c built the whole tree first. The scan only notes where the value of
 * each field we know starts (last one wins, as in json-c); the fields are
 * then read from there in a fixed order, so the first error reported does not
 * depend on the order of the keys in the frame. Nothing is allocated. */

/* Where a known field's value starts in the frame; NULL when absent. */
enum frame_slot {
    R_ENVELOPE_ID, R_TYPE, R_ACCEPTS, R_RETRY_ATTEMPT, R_RETRY_REASON, R_NUM_CONNECTIONS, R_REASON,
    R_CONNECTION_INFO, R_CI_APP_ID, R_DEBUG_INFO, R_DI_CONNECTION_TIME, R_PAYLOAD,
    P_TEAM_ID, P_TEAM_DOMAIN, P_USER_ID, P_USER_NAME, P_CHANNEL_ID, P_CHANNEL_NAME, P_COMMAND, P_TEXT,
    P_TRIGGER_ID, P_RESPONSE_URL, P_API_APP_ID, P_ENTERPRISE_ID, P_TYPE, P_EVENT_ID,
    P_TEAM, P_TEAM_ID2, P_USER, P_USER_ID2, P_CONTAINER, P_CONTAINER_CHANNEL_ID, P_CONTAINER_MESSAGE_TS,
    P_CHANNEL, P_CHANNEL_ID2, P_MESSAGE, P_MESSAGE_TS, P_ACTIONS, P_ACTION0, P_ACTION_ID, P_ACTION_VALUE,
    P_EVENT, P_EVENT_TYPE,
    FRAME_SLOTS
};

/* A field we read: its key, its slot and, for an object, the fields inside.
 * elem >= 0: an array of which element 0 is noted in slot elem and read with kids. */
typedef struct frame_field {
    const char *key;
    unsigned char keylen;
    unsigned char slot;
    signed char elem;
    unsigned char nkids;
    const struct frame_field *kids;
} frame_field;

#define LEAF(k, s) {k, sizeof(k) - 1, s, -1, 0, NULL}
#define NODE(k, s, kids) {k, sizeof(k) - 1, s, -1, sizeof(kids) / sizeof(kids[0]), kids}

static const frame_field ci_fields[] = {LEAF("app_id", R_CI_APP_ID)};
static const frame_field di_fields[] = {LEAF("approximate_connection_time", R_DI_CONNECTION_TIME)};
static const frame_field team_fields[] = {LEAF("id", P_TEAM_ID2)};
static const frame_field user_fields[] = {LEAF("id", P_USER_ID2)};
static const frame_field container_fields[] = {LEAF("channel_id", P_CONTAINER_CHANNEL_ID),
                                               LEAF("message_ts", P_CONTAINER_MESSAGE_TS)};
static const frame_field channel_fields[] = {LEAF("id", P_CHANNEL_ID2)};
static const frame_field message_fields[] = {LEAF("ts", P_MESSAGE_TS)};
static const frame_field action_fields[] = {LEAF("action_id", P_ACTION_ID), LEAF("value", P_ACTION_VALUE)};
static const frame_field event_fields[] = {LEAF("type", P_EVENT_TYPE)};
/* One table for the three payload shapes: the frame's type may come after its payload. */
static const frame_field payload_fields[] = {
    LEAF("team_id", P_TEAM_ID), LEAF("team_domain", P_TEAM_DOMAIN), LEAF("user_id", P_USER_ID),
    LEAF("user_name", P_USER_NAME), LEAF("channel_id", P_CHANNEL_ID), LEAF("channel_name", P_CHANNEL_NAME),
    LEAF("command", P_COMMAND), LEAF("text", P_TEXT), LEAF("trigger_id", P_TRIGGER_ID),
    LEAF("response_url", P_RESPONSE_URL), LEAF("api_app_id", P_API_APP_ID), LEAF("enterprise_id", P_ENTERPRISE_ID),
    LEAF("type", P_TYPE), LEAF("event_id", P_EVENT_ID), NODE("team", P_TEAM, team_fields),
    NODE("user", P_USER, user_fields), NODE("container", P_CONTAINER, container_fields),
    NODE("channel", P_CHANNEL, channel_fields), NODE("message", P_MESSAGE, message_fields),
    {"actions", 7, P_ACTIONS, P_ACTION0, sizeof(action_fields) / sizeof(action_fields[0]), action_fields},
    NODE("event", P_EVENT, event_fields),
};
static const frame_field root_fields[] = {
    LEAF("envelope_id", R_ENVELOPE_ID), LEAF("type", R_TYPE), LEAF("accepts_response_payload", R_ACCEPTS),
    LEAF("retry_attempt", R_RETRY_ATTEMPT), LEAF("retry_reason", R_RETRY_REASON),
    LEAF("num_connections", R_NUM_CONNECTIONS), LEAF("reason", R_REASON),
    NODE("connection_info", R_CONNECTION_INFO, ci_fields), NODE("debug_info", R_DEBUG_INFO, di_fields),
    NODE("payload", R_PAYLOAD, payload_fields),
};
static const frame_field root_field = {"", 0, 0, -1, sizeof(root_fields) / sizeof(root_fields[0]), root_fields};

typedef struct frame_scan {
    json_scan s;
    const char *at[FRAME_SLOTS];
} frame_scan;

/* A repeated key replaces all its earlier value said. */
static void forget(frame_scan *fs, const frame_field *n) {
    if (n->elem >= 0) fs->at[n->elem] = NULL;
    for (unsigned i = 0; i < n->nkids; i++) {
        fs->at[n->kids[i].slot] = NULL;
        if (n->kids[i].nkids) forget(fs, &n->kids[i]);
    }
}

static int scan_members(frame_scan *fs, const frame_field *n);

/* Scans the value at the cursor, noting the fields of n inside it. */
static int scan_field(frame_scan *fs, const frame_field *n) {
    if (!n->nkids) return json_scan_skip(&fs->s);
    forget(fs, n);
    enum json_scan_type t = json_scan_peek(&fs->s);
    if (n->elem < 0) return t == JSON_SCAN_OBJECT ? scan_members(fs, n) : json_scan_skip(&fs->s);
    if (t != JSON_SCAN_ARRAY) return json_scan_skip(&fs->s);
    if (json_scan_enter(&fs->s) < 0) return -1;
    int r = json_scan_next_item(&fs->s);
    if (r == 1) {
        fs->at[n->elem] = fs->s.p;
        r = json_scan_peek(&fs->s) == JSON_SCAN_OBJECT ? scan_members(fs, n) : json_scan_skip(&fs->s);
        while (r == 0 && (r = json_scan_next_item(&fs->s)) == 1) r = json_scan_skip(&fs->s);
    }
    return r < 0 ? -1 : 0;
}

static const frame_field *match(const frame_field *n, const char *key, size_t len) {
    for (unsigned i = 0; i < n->nkids; i++)
        if (n->kids[i].keylen == len && memcmp(n->kids[i].key, key, len) == 0) return &n->kids[i];
    return NULL;
}

/* The object at the cursor, whose known fields are n's kids. */
static int scan_members(frame_scan *fs, const frame_field *n) {
    char key[32];
    size_t klen;
    int r;
    if (json_scan_enter(&fs->s) < 0) return -1;
    while ((r = json_scan_next_key(&fs->s, key, sizeof(key), &klen)) == 1) {
        const frame_field *kid = match(n, key, klen);
        /* A key with a \u0000 in it is read up to the NUL, as json-c (C
         * strings) read it; the check costs nothing on ordinary keys. */
        if (!kid && klen && memchr(key, '\0', klen < sizeof(key) ? klen : sizeof(key) - 1))
            kid = match(n, key, strlen(key));
        if (kid) fs->at[kid->slot] = fs->s.p;
        if ((kid ? scan_field(fs, kid) : json_scan_skip(&fs->s)) < 0) return -1;
    }
    return r;
}

/* A cursor on a noted value (the frame is known to be valid from there). */
static json_scan *at(frame_scan *fs, const char *p) {
    fs->s.p = p;
    return &fs->s;
}

/* The value at slot, NULL when absent or null. */
static const char *value(const frame_scan *fs, int slot) {
    const char *p = fs->at[slot];
    return p && *p != 'n' ? p : NULL;
}

static int frame_str(pctx *c, frame_scan *fs, int slot, const char *path, const char *key, char *dst, size_t dstlen,
                     int required) {
    dst[0] = '\0';
    const char *v = value(fs, slot);
    if (!v) return required ? failf(c, SLACK_PROTO_ERR_MISSING, "%s%s: missing", path, key) : SLACK_PROTO_OK;
    if (*v != '"') return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected a string", path, key);
    size_t len;
    bool nul;
    json_scan_string(at(fs, v), dst, dstlen, &len, &nul);
    int rc = SLACK_PROTO_OK;
    if (nul) rc = failf(c, SLACK_PROTO_ERR_VALUE, "%s%s: contains a NUL byte", path, key);
    else if (len >= dstlen)
        rc = failf(c, SLACK_PROTO_ERR_TOO_LONG, "%s%s: %zu bytes, longer than %zu", path, key, len, dstlen - 1);
    else if (!len && required) rc = failf(c, SLACK_PROTO_ERR_MISSING, "%s%s: empty", path, key);
    if (rc != SLACK_PROTO_OK) memset(dst, 0, dstlen);   /* leave no cut piece behind the NUL */
    return rc;
}

/* An object: *present false when absent or null (or _MISSING when required). */
static int frame_obj(pctx *c, frame_scan *fs, int slot, const char *path, const char *key, bool *present,
                     int required) {
    const char *v = value(fs, slot);
    *present = false;
    if (!v) return required ? failf(c, SLACK_PROTO_ERR_MISSING, "%s%s: missing", path, key) : SLACK_PROTO_OK;
    if (*v != '{') return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected an object", path, key);
    *present = true;
    return SLACK_PROTO_OK;
}

/* An integer in [0, INT_MAX]; absent leaves *dst as it is. Fractions and exponents are a type error. */
static int frame_int(pctx *c, frame_scan *fs, int slot, const char *path, const char *key, int *dst) {
    const char *v = value(fs, slot);
    if (!v) return SLACK_PROTO_OK;
    int64_t n = 0;
    bool integer = false;
    if (*v == '-' || (*v >= '0' && *v <= '9')) json_scan_number(at(fs, v), &n, &integer);
    if (!integer) return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected an integer", path, key);
    if (n < 0 || n > INT_MAX) return failf(c, SLACK_PROTO_ERR_VALUE, "%s%s: out of range", path, key);
    *dst = (int)n;
    return SLACK_PROTO_OK;
}

static int frame_bool(pctx *c, frame_scan *fs, int slot, const char *path, const char *key, bool *dst) {
    const char *v = value(fs, slot);
    if (!v) return SLACK_PROTO_OK;
    if (*v != 't' && *v != 'f') return failf(c, SLACK_PROTO_ERR_TYPE, "%s%s: expected true or false", path, key);
    *dst = *v == 't';
    return SLACK_PROTO_OK;
}

static int read_hello(pctx *c, frame_scan *fs, slack_frame *f) {
    bool ci, di;
    TRY(frame_int(c, fs, R_NUM_CONNECTIONS, "", "num_connections", &f->hello.num_connections));
    TRY(frame_obj(c, fs, R_CONNECTION_INFO, "", "connection_info", &ci, OPTIONAL));
    if (ci)
        TRY(frame_str(c, fs, R_CI_APP_ID, "connection_info.", "app_id", f->hello.app_id, sizeof(f->hello.app_id),
                      OPTIONAL));
    TRY(frame_obj(c, fs, R_DEBUG_INFO, "", "debug_info", &di, OPTIONAL));
    if (di)
        TRY(frame_int(c, fs, R_DI_CONNECTION_TIME, "debug_info.", "approximate_connection_time",
                      &f->hello.approximate_connection_time));
    return SLACK_PROTO_OK;
}

static int read_slash(pctx *c, frame_scan *fs, slack_frame *f) {
    const char *pp = "payload.";
    TRY(frame_str(c, fs, P_TEAM_ID, pp, "team_id", f->slash.team_id, sizeof(f->slash.team_id), OPTIONAL));
    TRY(frame_str(c, fs, P_TEAM_DOMAIN, pp, "team_domain", f->slash.team_domain, sizeof(f->slash.team_domain),
                  OPTIONAL));
    TRY(frame_str(c, fs, P_USER_ID, pp, "user_id", f->slash.user_id, sizeof(f->slash.user_id), REQUIRED));
    TRY(frame_str(c, fs, P_USER_NAME, pp, "user_name", f->slash.user_name, sizeof(f->slash.user_name), OPTIONAL));
    TRY(frame_str(c, fs, P_CHANNEL_ID, pp, "channel_id", f->slash.channel_id, sizeof(f->slash.channel_id), REQUIRED));
    TRY(frame_str(c, fs, P_CHANNEL_NAME, pp, "channel_name", f->slash.channel_name, sizeof(f->slash.channel_name),
                  OPTIONAL));
    TRY(frame_str(c, fs, P_COMMAND, pp, "command", f->slash.command, sizeof(f->slash.command), REQUIRED));
    TRY(frame_str(c, fs, P_TRIGGER_ID, pp, "trigger_id", f->slash.trigger_id, sizeof(f->slash.trigger_id), OPTIONAL));
    TRY(frame_str(c, fs, P_RESPONSE_URL, pp, "response_url", f->slash.response_url, sizeof(f->slash.response_url),
                  OPTIONAL));
    TRY(frame_str(c, fs, P_API_APP_ID, pp, "api_app_id", f->slash.api_app_id, sizeof(f->slash.api_app_id), OPTIONAL));
    TRY(frame_str(c, fs, P_ENTERPRISE_ID, pp, "enterprise_id", f->slash.enterprise_id, sizeof(f->slash.enterprise_id),
                  OPTIONAL));

    /* The text: over CMD_MAX_TEXT is not a protocol error but an answer ("over 4 KiB", SPEC §5). */
    const char *v = value(fs, P_TEXT);
    if (!v) return SLACK_PROTO_OK;
    if (*v != '"') return failf(c, SLACK_PROTO_ERR_TYPE, "payload.text: expected a string");
    size_t len;
    bool nul;
    json_scan_string(at(fs, v), f->slash.text, sizeof(f->slash.text), &len, &nul);
    if (nul || len > CMD_MAX_TEXT) memset(f->slash.text, 0, sizeof(f->slash.text));
    if (nul) return failf(c, SLACK_PROTO_ERR_VALUE, "payload.text: contains a NUL byte");
    if (len > CMD_MAX_TEXT) f->slash.text_too_long = true;
    return SLACK_PROTO_OK;
}

static int read_interactive(pctx *c, frame_scan *fs, slack_frame *f) {
    const char *pp = "payload.";
    bool team, user, container, channel, message;
    TRY(frame_str(c, fs, P_TYPE, pp, "type", f->interactive.type, sizeof(f->interactive.type), REQUIRED));
    bool block_actions = strcmp(f->interactive.type, "block_actions") == 0;

    TRY(frame_obj(c, fs, P_TEAM, pp, "team", &team, OPTIONAL));
    if (team)
        TRY(frame_str(c, fs, P_TEAM_ID2, "payload.team.", "id", f->interactive.team_id,
                      sizeof(f->interactive.team_id), OPTIONAL));
    TRY(frame_obj(c, fs, P_USER, pp, "user", &user, block_actions));
    if (user)
        TRY(frame_str(c, fs, P_USER_ID2, "payload.user.", "id", f->interactive.user_id,
                      sizeof(f->interactive.user_id), block_actions));

    TRY(frame_obj(c, fs, P_CONTAINER, pp, "container", &container, OPTIONAL));
    if (container) {
        TRY(frame_str(c, fs, P_CONTAINER_CHANNEL_ID, "payload.container.", "channel_id", f->interactive.channel_id,
                      sizeof(f->interactive.channel_id), OPTIONAL));
        TRY(frame_str(c, fs, P_CONTAINER_MESSAGE_TS, "payload.container.", "message_ts", f->interactive.message_ts,
                      sizeof(f->interactive.message_ts), OPTIONAL));
    }
    /* channel and message repeat what the container says; they fill in where it is silent. */
    TRY(frame_obj(c, fs, P_CHANNEL, pp, "channel", &channel, OPTIONAL));
    if (channel && !f->interactive.channel_id[0])
        TRY(frame_str(c, fs, P_CHANNEL_ID2, "payload.channel.", "id", f->interactive.channel_id,
                      sizeof(f->interactive.channel_id), OPTIONAL));
    TRY(frame_obj(c, fs, P_MESSAGE, pp, "message", &message, OPTIONAL));
    if (message && !f->interactive.message_ts[0])
        TRY(frame_str(c, fs, P_MESSAGE_TS, "payload.message.", "ts", f->interactive.message_ts,
                      sizeof(f->interactive.message_ts), OPTIONAL));

    TRY(frame_str(c, fs, P_TRIGGER_ID, pp, "trigger_id", f->interactive.trigger_id, sizeof(f->interactive.trigger_id),
                  OPTIONAL));
    TRY(frame_str(c, fs, P_RESPONSE_URL, pp, "response_url", f->interactive.response_url,
                  sizeof(f->interactive.response_url), OPTIONAL));
    if (!block_actions) return SLACK_PROTO_OK;

    const char *actions = value(fs, P_ACTIONS);
    if (!actions) return failf(c, SLACK_PROTO_ERR_MISSING, "payload.actions: missing");
    if (*actions != '[') return failf(c, SLACK_PROTO_ERR_TYPE, "payload.actions: expected an array");
    const char *a = fs->at[P_ACTION0];
    if (!a) return failf(c, SLACK_PROTO_ERR_MISSING, "payload.actions: empty");
    if (*a != '{') return failf(c, SLACK_PROTO_ERR_TYPE, "payload.actions[0]: expected an object");
    TRY(frame_str(c, fs, P_ACTION_ID, "payload.actions[0].", "action_id", f->interactive.action_id,
                  sizeof(f->interactive.action_id), REQUIRED));
    TRY(frame_str(c, fs, P_ACTION_VALUE, "payload.actions[0].", "value", f->interactive.action_value,
                  sizeof(f->interactive.action_value), OPTIONAL));
    return SLACK_PROTO_OK;
}

static int read_events(pctx *c, frame_scan *fs, slack_frame *f) {
    bool event;
    TRY(frame_str(c, fs, P_TEAM_ID, "payload.", "team_id", f->events.team_id, sizeof(f->events.team_id), OPTIONAL));
    /* Optional: app_rate_limited notices carry no event_id. */
    TRY(frame_str(c, fs, P_EVENT_ID, "payload.", "event_id", f->events.event_id, sizeof(f->events.event_id),
                  OPTIONAL));
    TRY(frame_obj(c, fs, P_EVENT, "payload.", "event", &event, OPTIONAL));
    if (event)
        TRY(frame_str(c, fs, P_EVENT_TYPE, "payload.event.", "type", f->events.event_type,
                      sizeof(f->events.event_type), OPTIONAL));
    return SLACK_PROTO_OK;
}

static int read_frame(pctx *c, frame_scan *fs, slack_frame *f) {
    /* envelope_id first: whatever fails later, the caller can still ack. */
    TRY(frame_str(c, fs, R_ENVELOPE_ID, "", "envelope_id", f->envelope_id, sizeof(f->envelope_id), OPTIONAL));
    TRY(frame_str(c, fs, R_TYPE, "", "type", f->type, sizeof(f->type), REQUIRED));
    if (strcmp(f->type, "hello") == 0) f->kind = SLACK_FRAME_HELLO;
    else if (strcmp(f->type, "disconnect") == 0) f->kind = SLACK_FRAME_DISCONNECT;
    else if (strcmp(f->type, "slash_commands") == 0) f->kind = SLACK_FRAME_SLASH;
    else if (strcmp(f->type, "interactive") == 0) f->kind = SLACK_FRAME_INTERACTIVE;
    else if (strcmp(f->type, "events_api") == 0) f->kind = SLACK_FRAME_EVENTS;
    else f->kind = SLACK_FRAME_OTHER;

    bool envelope = f->kind == SLACK_FRAME_SLASH || f->kind == SLACK_FRAME_INTERACTIVE || f->kind == SLACK_FRAME_EVENTS;
    if (envelope && !f->envelope_id[0])
        return failf(c, SLACK_PROTO_ERR_MISSING, "envelope_id: missing on a %s envelope", f->type);
    TRY(frame_bool(c, fs, R_ACCEPTS, "", "accepts_response_payload", &f->accepts_response_payload));
    TRY(frame_int(c, fs, R_RETRY_ATTEMPT, "", "retry_attempt", &f->retry_attempt));
    TRY(frame_str(c, fs, R_RETRY_REASON, "", "retry_reason", f->retry_reason, sizeof(f->retry_reason), OPTIONAL));

    bool payload;
    if (envelope) TRY(frame_obj(c, fs, R_PAYLOAD, "", "payload", &payload, REQUIRED));
    switch (f->kind) {
    case SLACK_FRAME_HELLO: return read_hello(c, fs, f);
    case SLACK_FRAME_DISCONNECT:
        return frame_str(c, fs, R_REASON, "", "reason", f->disconnect.reason, sizeof(f->disconnect.reason), OPTIONAL);
    case SLACK_FRAME_SLASH: return read_slash(c, fs, f);
    case SLACK_FRAME_INTERACTIVE: return read_interactive(c, fs, f);
    case SLACK_FRAME_EVENTS: return read_events(c, fs, f);
    case SLACK_FRAME_OTHER: break;
    }
    return SLACK_PROTO_OK;
}

/* Checks the whole frame and notes where the known fields are. */
static int scan_frame(pctx *c, frame_scan *fs, const char *json, size_t len) {
    json_scan *s = &fs->s;
    json_scan_init(s, json, len, SLACK_JSON_DEPTH);
    memset(fs->at, 0, sizeof(fs->at));
    if (!len) return failf(c, SLACK_PROTO_ERR_JSON, "frame: empty or truncated JSON");
    enum json_scan_type t = json_scan_peek(s);
    int r = t == JSON_SCAN_OBJECT ? scan_members(fs, &root_field) : json_scan_skip(s);
    if (r == 0 && json_scan_finish(s) < 0) {
        /* The sentences json-c and the old byte check gave: json-c stops at a NUL. */
        if (json[s->err_at] == '\0')
            return failf(c, SLACK_PROTO_ERR_JSON, "frame: unexpected bytes after the JSON value at byte %zu", s->err_at);
        return failf(c, SLACK_PROTO_ERR_JSON, "frame: malformed JSON at byte %zu: unexpected character", s->err_at);
    }
    if (r < 0) {
        if (s->err_at >= len) return failf(c, SLACK_PROTO_ERR_JSON, "frame: empty or truncated JSON");
        return failf(c, SLACK_PROTO_ERR_JSON, "frame: malformed JSON at byte %zu: %s", s->err_at, s->err_what);
    }
    if (t != JSON_SCAN_OBJECT) {
        /* As json-c: null is no value at all, and a bare number or literal ending the input reads as unfinished. */
        bool open_end = (t == JSON_SCAN_NUMBER || t == JSON_SCAN_TRUE || t == JSON_SCAN_FALSE || t == JSON_SCAN_NULL) &&
                        strchr(" \t\r\n", json[len - 1]) == NULL;
        if (open_end) return failf(c, SLACK_PROTO_ERR_JSON, "frame: empty or truncated JSON");
        if (t == JSON_SCAN_NULL) return failf(c, SLACK_PROTO_ERR_JSON, "frame: malformed JSON: a bare null");
        return failf(c, SLACK_PROTO_ERR_NOT_OBJECT, "frame is not a JSON object");
    }
    return SLACK_PROTO_OK;
}

int slack_frame_parse(const char *json, size_t len, slack_frame *out, char *err, size_t errlen) {
    pctx c = {err, errlen};
    memset(out, 0, sizeof(*out));
    out->kind = SLACK_FRAME_OTHER;
    out->hello.num_connections = -1;
    out->hello.approximate_connection_time = -1;
    if (err && errlen) err[0] = '\0';
    if (len > SLACK_FRAME_MAX)
        return failf(&c, SLACK_PROTO_ERR_TOO_LARGE, "frame of %zu bytes is over the %zu-byte limit", len,
                     (size_t)SLACK_FRAME_MAX);
    if (!json && len) return failf(&c, SLACK_PROTO_ERR_INVALID, "frame: no data");
    frame_scan fs;
    int rc = scan_frame(&c, &fs, json, len);
    if (rc != SLACK_PROTO_OK) return rc;
    return read_frame(&c, &fs, out);
}

int slack_ack_frame(const char *envelope_id, const char *payload, size_t len, nm_buf *out) {
    if (!envelope_id || !*envelope_id) return SLACK_PROTO_ERR_INVALID;
    /* Written out by hand: one ack per envelope is the hottest frame we send. */
    size_t start = out->len;
    int rc = nm_buf_append(out, "{\"envelope_id\":", 15);
    if (rc == NM_BUF_OK) rc = nm_buf_append_json_str(out, envelope_id, strlen(envelope_id));
    if (rc == NM_BUF_OK && payload) rc = nm_buf_append(out, ",\"payload\":", 11);
    if (rc == NM_BUF_OK && payload) rc = nm_buf_append(out, payload, len);
    if (rc == NM_BUF_OK) rc = nm_buf_append(out, "}", 1);
    if (rc == NM_BUF_OK) return SLACK_PROTO_OK;
    nm_buf_truncate(out, start);
    return rc == NM_BUF_TOO_LARGE ? SLACK_PROTO_ERR_TOO_LARGE : SLACK_PROTO_ERR_NOMEM;
}

int slack_ack_build(const char *envelope_id, const char *payload_json, nm_buf *out) {
    if (!envelope_id || !*envelope_id) return SLACK_PROTO_ERR_INVALID;
    if (!payload_json) return slack_ack_frame(envelope_id, NULL, 0, out);
    pctx c = {NULL, 0};
    json_object *payload = NULL;
    int rc = parse_object(&c, "payload", payload_json, strlen(payload_json), SLACK_FRAME_MAX, &payload);
    if (rc != SLACK_PROTO_OK) return rc;
    size_t n = 0;
    const char *text =
        json_object_to_json_string_length(payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    rc = text ? slack_ack_frame(envelope_id, text, n, out) : SLACK_PROTO_ERR_NOMEM;
    json_object_put(payload);
    return rc;
}

/* ---- Web API answers ---- */

enum {
    F_TS = 1 << 0,
    F_CHANNEL = 1 << 1,
    F_MESSAGE_TS = 1 << 2,
    F_PERMALINK = 1 << 3,
    F_URL = 1 << 4,
    F_USER = 1 << 5,   /* users.info: the user object */
    F_AUTH = 1 << 6,   /* auth.test: flat url, team, user, team_id, user_id, bot_id */
};

/* What each method returns on ok:true (A2.1, A6); `required` must be there. */
static const struct api_method {
    const char *name;
    unsigned fields, required;
} api_methods[] = {
    {"apps.connections.open", F_URL, F_URL},
    {"chat.postMessage", F_TS | F_CHANNEL, F_TS | F_CHANNEL},
    {"chat.update", F_TS | F_CHANNEL, F_TS | F_CHANNEL},
    {"chat.postEphemeral", F_MESSAGE_TS, F_MESSAGE_TS},
    {"chat.getPermalink", F_CHANNEL | F_PERMALINK, F_PERMALINK},
    {"users.info", F_USER, F_USER},
    {"auth.test", F_AUTH, F_AUTH},
};

static int parse_user(pctx *c, const json_object *root, slack_api_result *r) {
    json_object *u, *profile;
    TRY(get_obj(c, root, "", "user", &u, REQUIRED));
    TRY(get_str(c, u, "user.", "id", r->user_id, sizeof(r->user_id), REQUIRED));
    TRY(get_str(c, u, "user.", "team_id", r->team_id, sizeof(r->team_id), OPTIONAL));
    TRY(get_str_cut(c, u, "user.", "name", r->user_name, sizeof(r->user_name)));
    TRY(get_str_cut(c, u, "user.", "real_name", r->real_name, sizeof(r->real_name)));
    TRY(get_bool(c, u, "user.", "is_bot", &r->is_bot));
    TRY(get_bool(c, u, "user.", "deleted", &r->deleted));
    TRY(get_obj(c, u, "user.", "profile", &profile, OPTIONAL));
    if (profile) {
        TRY(get_str_cut(c, profile, "user.profile.", "display_name", r->display_name, sizeof(r->display_name)));
        if (!r->real_name[0])
            TRY(get_str_cut(c, profile, "user.profile.", "real_name", r->real_name, sizeof(r->real_name)));
    }
    return SLACK_PROTO_OK;
}

static int parse_api(pctx *c, const struct api_method *m, const json_object *root, slack_api_result *r) {
    json_object *okv = member(root, "ok");
    if (!okv) return failf(c, SLACK_PROTO_ERR_MISSING, "ok: missing");
    if (!json_object_is_type(okv, json_type_boolean)) return failf(c, SLACK_PROTO_ERR_TYPE, "ok: expected true or false");
    r->ok = json_object_get_boolean(okv) != 0;
    TRY(get_str_cut(c, root, "", "warning", r->warning, sizeof(r->warning)));
    if (!r->ok) {
        TRY(get_str(c, root, "", "error", r->error, sizeof(r->error), OPTIONAL));
        if (!r->error[0]) snprintf(r->error, sizeof(r->error), "unknown_error");
        return get_str_cut(c, root, "", "needed", r->needed, sizeof(r->needed));
    }
    unsigned f = m->fields, req = m->required;
    if (f & F_TS) TRY(get_str(c, root, "", "ts", r->ts, sizeof(r->ts), (req & F_TS) != 0));
    if (f & F_CHANNEL) TRY(get_str(c, root, "", "channel", r->channel, sizeof(r->channel), (req & F_CHANNEL) != 0));
    if (f & F_MESSAGE_TS)
        TRY(get_str(c, root, "", "message_ts", r->message_ts, sizeof(r->message_ts), (req & F_MESSAGE_TS) != 0));
    if (f & F_PERMALINK)
        TRY(get_str(c, root, "", "permalink", r->permalink, sizeof(r->permalink), (req & F_PERMALINK) != 0));
    if (f & F_URL) TRY(get_str(c, root, "", "url", r->url, sizeof(r->url), (req & F_URL) != 0));
    if (f & F_USER) TRY(parse_user(c, root, r));
    if (f & F_AUTH) {
        /* auth.test: who the token is; a bot token also names its bot_id. */
        TRY(get_str(c, root, "", "url", r->url, sizeof(r->url), OPTIONAL));
        TRY(get_str_cut(c, root, "", "team", r->team, sizeof(r->team)));
        TRY(get_str_cut(c, root, "", "user", r->user_name, sizeof(r->user_name)));
        TRY(get_str(c, root, "", "team_id", r->team_id, sizeof(r->team_id), REQUIRED));
        TRY(get_str(c, root, "", "user_id", r->user_id, sizeof(r->user_id), REQUIRED));
        TRY(get_str(c, root, "", "bot_id", r->bot_id, sizeof(r->bot_id), OPTIONAL));
    }
    return SLACK_PROTO_OK;
}

int slack_api_parse(const char *method, const char *body, size_t len, slack_api_result *out, char *err,
                    size_t errlen) {
    pctx c = {err, errlen};
    memset(out, 0, sizeof(*out));
    if (err && errlen) err[0] = '\0';
    const struct api_method *m = NULL;
    for (size_t i = 0; method && i < sizeof(api_methods) / sizeof(api_methods[0]); i++)
        if (strcmp(api_methods[i].name, method) == 0) m = &api_methods[i];
    if (!m) return failf(&c, SLACK_PROTO_ERR_INVALID, "unknown method %.64s", method ? method : "(null)");
    json_object *root;
    int rc = parse_object(&c, m->name, body, len, SLACK_API_BODY_MAX, &root);
    if (rc != SLACK_PROTO_OK) return rc;
    rc = parse_api(&c, m, root, out);
    json_object_put(root);
    if (rc != SLACK_PROTO_OK) out->ok = false;   /* never a half-read success */
    return rc;
}

/* ---- errors for the log ---- */

static const struct {
    const char *code, *hint;
} slack_hints[] = {
    {"not_authed", "no token was sent: set chat.slack.bot_token (xoxb-) and chat.slack.app_token (xapp-)"},
    {"invalid_auth", "Slack does not accept the token: check chat.slack.bot_token (xoxb-) and app_token (xapp-), "
                     "and that the app is installed in this workspace"},
    {"account_inactive", "the token belongs to a deleted user or a deactivated workspace: reinstall the app"},
    {"token_revoked", "the token was revoked (the app was uninstalled or the token rotated): install the app again "
                      "and update the token"},
    {"token_expired", "the token expired (token rotation is on): refresh it, or turn rotation off for this app"},
    {"no_permission", "the token lacks the permission this call needs: check the app's scopes and install"},
    {"missing_scope", "the token lacks a scope this call needs (see needed=): add it under OAuth & Permissions and "
                      "reinstall the app"},
    {"not_allowed_token_type", "wrong kind of token: apps.connections.open needs the app-level token (xapp-, scope "
                               "connections:write), every other call the bot token (xoxb-)"},
    {"not_in_channel", "the bot is not a member of the channel: invite it (/invite @nomatron) or grant "
                       "chat:write.public"},
    {"channel_not_found", "no such channel, or the bot cannot see it: check the channel ID and invite the bot"},
    {"is_archived", "the channel is archived: unarchive it or configure another channel"},
    {"msg_too_long", "the message text is over Slack's limit (4,000 characters): nomatron should have cut it"},
    {"msg_blocks_too_long", "the message blocks are over Slack's limit: nomatron should have cut them"},
    {"no_text", "the message had neither text nor blocks"},
    {"invalid_blocks", "Slack refused the message blocks (a Block Kit limit or field was violated)"},
    {"invalid_blocks_format", "the blocks are not a JSON array of block objects"},
    {"message_not_found", "the message to update or link to no longer exists (deleted, or a wrong ts)"},
    {"cant_update_message", "only the bot's own messages can be updated"},
    {"edit_window_closed", "the message is too old to be edited in this workspace"},
    {"user_not_in_channel", "the user is not a member of the channel, so an ephemeral message cannot reach them"},
    {"user_not_found", "no such user in this workspace"},
    {"user_not_visible", "the bot may not see this user (users:read scope, or a shared-channel restriction)"},
    {"restricted_action", "a workspace setting stops the bot from posting in this channel"},
    {"ratelimited", "Slack rate-limited this method (HTTP 429): wait for Retry-After before calling it again"},
    {"rate_limited", "the app posted too many messages: Slack dropped this one, slow down"},
    {"invalid_arguments", "Slack refused the arguments of the call: a bug in nomatron, report it"},
    {"invalid_json", "Slack could not read the JSON body: a bug in nomatron, report it"},
    {"json_not_object", "the JSON body was not an object: a bug in nomatron, report it"},
    {"invalid_post_type", "Slack refused the Content-Type of the call: a bug in nomatron, report it"},
    {"missing_post_type", "the call had no Content-Type: a bug in nomatron, report it"},
    {"invalid_charset", "Slack refused the charset of the call: a bug in nomatron, report it"},
    {"invalid_form_data", "Slack could not read the form body: a bug in nomatron, report it"},
    {"missing_args", "a required argument was missing: a bug in nomatron, report it"},
    {"forbidden_team", "this workspace may not use the app token: check which workspace the app is installed in"},
    {"insecure_request", "Slack refused a request that was not HTTPS: check chat.slack.api_url"},
    {"request_timeout", "the request reached Slack incomplete or too slowly; the next edit or answer tries again"},
    {"fatal_error", "Slack failed on its side; check status.slack.com if it persists"},
    {"internal_error", "Slack failed on its side; check status.slack.com if it persists"},
    {"service_unavailable", "Slack is unavailable; check status.slack.com if it persists"},
    {"trigger_expired", "the trigger_id is older than 3 seconds: a modal can no longer be opened with it"},
    {"trigger_exchanged", "the trigger_id was already used once"},
};

const char *slack_error_hint(const char *error) {
    for (size_t i = 0; error && i < sizeof(slack_hints) / sizeof(slack_hints[0]); i++)
        if (strcmp(slack_hints[i].code, error) == 0) return slack_hints[i].hint;
    return "Slack refused the call: see the error code in Slack's documentation of the method";
}

int slack_retry_after_parse(const char *header_value, int *seconds) {
    if (!header_value) return SLACK_PROTO_ERR_VALUE;
    const char *p = header_value;
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return SLACK_PROTO_ERR_VALUE;
    long n = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (n <= 3600) n = n * 10 + (*p - '0');   /* saturates past the cap, never overflows */
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (*p) return SLACK_PROTO_ERR_VALUE;
    *seconds = n > 3600 ? 3600 : (int)n;
    return SLACK_PROTO_OK;
}

bool slack_id_valid(const char *id) {
    size_t n = 0;
    for (; id && id[n]; n++)
        if (!((id[n] >= 'A' && id[n] <= 'Z') || (id[n] >= '0' && id[n] <= '9'))) return false;
    return n >= 1 && n <= 32;
}
