/* nomad/decode.c: strict decoders for what Nomad answers. Pure: bytes in,
 * structs out; no I/O, no globals, fuzzed by tests/fuzz/fuzz_nomad_decode.c.
 *
 * "Strict" means: the body is exactly one JSON value; a field of the wrong
 * type is an error, never a zero; indexes are unsigned 64-bit integers and
 * nothing is clamped; identifiers that do not fit are refused rather than
 * cut. A missing key and an explicit null are the same thing (Nomad omits
 * empty fields on some objects and writes null for nil ones), so only fields
 * we cannot do without are "required". Human text (descriptions, warnings)
 * is the one thing we shorten, visibly, with a trailing "...". */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nomad.h"

#define NOMAD_JSON_DEPTH 64   /* Nomad jobs nest about a dozen levels; leave room, bound recursion */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NOMAD_ERR_DECODE;
}

static bool is_json_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* json-c 0.16 clamps integer literals outside int64/uint64 to the nearest
 * limit without reporting it, and accepts NaN / Infinity. Neither is JSON we
 * want: an index of 2^64 must not turn into 2^64-1. So before parsing we walk
 * the tokens outside strings: every integer literal must fit int64 (when
 * negative) or uint64, and bare words must be true / false / null. The
 * grammar itself is left to json-c. */
static int lex_check(const char *s, size_t len, char *err, size_t errlen) {
    size_t i = 0;
    while (i < len) {
        char ch = s[i];
        if (ch == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\') i++;   /* skip the escaped byte; json-c checks escapes */
            i++;
            continue;
        }
        if (ch == '-' || (ch >= '0' && ch <= '9')) {
            size_t start = i;
            bool neg = ch == '-', fractional = false;
            if (neg) i++;
            size_t digits = i;
            while (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                               s[i] == '+' || s[i] == '-')) {
                if (s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-') fractional = true;
                i++;
            }
            if (i == digits) return fail(err, errlen, "malformed number at byte %zu", start);
            if (fractional) continue;   /* a double: fields that want integers refuse it by type */
            while (digits + 1 < i && s[digits] == '0') digits++;
            size_t n = i - digits;
            const char *limit = neg ? "9223372036854775808" : "18446744073709551615";
            size_t ln = strlen(limit);
            if (n > ln || (n == ln && memcmp(s + digits, limit, ln) > 0))
                return fail(err, errlen, "number out of 64-bit range at byte %zu", start);
            continue;
        }
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            size_t start = i;
            while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) i++;
            size_t n = i - start;
            if (!((n == 4 && memcmp(s + start, "true", 4) == 0) || (n == 5 && memcmp(s + start, "false", 5) == 0) ||
                  (n == 4 && memcmp(s + start, "null", 4) == 0)))
                return fail(err, errlen, "unexpected word at byte %zu", start);
            continue;
        }
        i++;
    }
    return NOMAD_OK;
}

json_object *nomad_json_parse(const char *body, size_t len, bool *is_null, char *err, size_t errlen) {
    if (is_null) *is_null = false;
    if (err && errlen) err[0] = '\0';
    if (!body || len == 0) {
        fail(err, errlen, "empty body");
        return NULL;
    }
    if (len > NOMAD_MAX_BODY) {
        fail(err, errlen, "body of %zu bytes is over the %d byte limit", len, NOMAD_MAX_BODY);
        return NULL;
    }
    /* A raw NUL is never valid JSON, and json-c would stop reading at it. */
    const char *nul = memchr(body, '\0', len);
    if (nul) {
        fail(err, errlen, "NUL byte at byte %zu", (size_t)(nul - body));
        return NULL;
    }
    if (lex_check(body, len, err, errlen) != NOMAD_OK) return NULL;

    struct json_tokener *tok = json_tokener_new_ex(NOMAD_JSON_DEPTH);
    if (!tok) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && end == len) {
        /* A bare scalar (`null`, `42`) is complete only once the input ends:
         * feed the terminating NUL json-c waits for. Everything was consumed. */
        o = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
    } else if (jerr == json_tokener_success) {
        for (size_t i = end; i < len; i++) {
            if (!is_json_space(body[i])) {
                json_object_put(o);
                json_tokener_free(tok);
                fail(err, errlen, "trailing bytes after the JSON value at byte %zu", i);
                return NULL;
            }
        }
    }
    if (jerr != json_tokener_success) {
        json_object_put(o);
        fail(err, errlen, "invalid JSON near byte %zu: %s", json_tokener_get_parse_end(tok),
             json_tokener_error_desc(jerr));
        json_tokener_free(tok);
        return NULL;
    }
    json_tokener_free(tok);
    if (!o && is_null) *is_null = true;
    if (!o) fail(err, errlen, "body is null");
    return o;
}

/* ---- field helpers ----
 * `where` prefixes field names in messages ("" at top level,
 * "TaskGroups.web." inside a deployment group). */

/* The value of key, or NULL when it is missing or null. json-c's getters
 * take non-const objects though they do not modify them. */
static json_object *field(const json_object *o, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex((json_object *)o, key, &v)) return NULL;
    return v;
}

static int missing(char *err, size_t errlen, const char *where, const char *key) {
    return fail(err, errlen, "missing field %s%s", where, key);
}

static int get_u64(const json_object *o, const char *where, const char *key, bool required, uint64_t *out,
                   char *err, size_t errlen) {
    json_object *v = field(o, key);
    *out = 0;
    if (!v) return required ? missing(err, errlen, where, key) : NOMAD_OK;
    if (!json_object_is_type(v, json_type_int))
        return fail(err, errlen, "%s%s: expected an unsigned integer, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    /* lex_check made sure no literal was clamped; a negative one reads < 0 here. */
    if (json_object_get_int64(v) < 0) return fail(err, errlen, "%s%s: negative value", where, key);
    *out = json_object_get_uint64(v);
    return NOMAD_OK;
}

/* Counts: non-negative and within int64. */
static int get_count(const json_object *o, const char *where, const char *key, int64_t *out, char *err,
                     size_t errlen) {
    uint64_t u;
    int rc = get_u64(o, where, key, false, &u, err, errlen);
    if (rc != NOMAD_OK) return rc;
    if (u > (uint64_t)INT64_MAX) return fail(err, errlen, "%s%s: value out of range", where, key);
    *out = (int64_t)u;
    return NOMAD_OK;
}

static int get_bool(const json_object *o, const char *where, const char *key, bool *out, char *err,
                    size_t errlen) {
    json_object *v = field(o, key);
    *out = false;
    if (!v) return NOMAD_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(err, errlen, "%s%s: expected a boolean, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    *out = json_object_get_boolean(v);
    return NOMAD_OK;
}

/* Identifier-like strings (IDs, statuses, names): copied whole or refused. */
static int copy_ident(const char *where, const char *key, json_object *v, char *out, size_t outlen, char *err,
                      size_t errlen) {
    out[0] = '\0';
    if (!json_object_is_type(v, json_type_string))
        return fail(err, errlen, "%s%s: expected a string, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (memchr(s, '\0', n)) return fail(err, errlen, "%s%s: contains a NUL character", where, key);
    if (n >= outlen) return fail(err, errlen, "%s%s: %zu bytes, longer than %zu", where, key, n, outlen - 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return NOMAD_OK;
}

static int get_ident(const json_object *o, const char *where, const char *key, bool required, char *out,
                     size_t outlen, char *err, size_t errlen) {
    json_object *v = field(o, key);
    out[0] = '\0';
    if (!v) return required ? missing(err, errlen, where, key) : NOMAD_OK;
    int rc = copy_ident(where, key, v, out, outlen, err, errlen);
    if (rc == NOMAD_OK && required && !out[0]) return fail(err, errlen, "%s%s: empty", where, key);
    return rc;
}

/* Human text: shortened with a visible "..." when it does not fit, and cut
 * at an embedded NUL (json allows \u0000; C strings do not). */
static int get_text(const json_object *o, const char *where, const char *key, char *out, size_t outlen, char *err,
                    size_t errlen) {
    json_object *v = field(o, key);
    out[0] = '\0';
    if (!v) return NOMAD_OK;
    if (!json_object_is_type(v, json_type_string))
        return fail(err, errlen, "%s%s: expected a string, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    const char *s = json_object_get_string(v);
    size_t n = strnlen(s, (size_t)json_object_get_string_len(v));
    if (n < outlen) {
        memcpy(out, s, n);
        out[n] = '\0';
        return NOMAD_OK;
    }
    if (outlen < 4) return NOMAD_OK;
    size_t keep = outlen - 4;
    /* Do not split a UTF-8 sequence: back up over continuation bytes. */
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) keep--;
    memcpy(out, s, keep);
    memcpy(out + keep, "...", 4);
    return NOMAD_OK;
}

static int need_object(const json_object *o, const char *what, char *err, size_t errlen) {
    if (!o) return fail(err, errlen, "expected %s object, got null", what);
    if (!json_object_is_type(o, json_type_object))
        return fail(err, errlen, "expected %s object, got %s", what, json_type_to_name(json_object_get_type(o)));
    return NOMAD_OK;
}

#define TRY(expr)                              \
    do {                                       \
        int try_rc_ = (expr);                  \
        if (try_rc_ != NOMAD_OK) return try_rc_; \
    } while (0)

/* ---- job ---- */

static int decode_job_info(const json_object *job, nomad_job_info *out, char *err, size_t errlen) {
    TRY(need_object(job, "a job", err, errlen));
    TRY(get_ident(job, "", "ID", true, out->id, sizeof(out->id), err, errlen));
    TRY(get_ident(job, "", "Namespace", false, out->ns, sizeof(out->ns), err, errlen));
    TRY(get_ident(job, "", "Status", false, out->status, sizeof(out->status), err, errlen));
    TRY(get_u64(job, "", "Version", true, &out->version, err, errlen));
    TRY(get_u64(job, "", "JobModifyIndex", true, &out->job_modify_index, err, errlen));
    TRY(get_u64(job, "", "ModifyIndex", true, &out->modify_index, err, errlen));
    TRY(get_u64(job, "", "CreateIndex", true, &out->create_index, err, errlen));
    TRY(get_bool(job, "", "Stable", &out->stable, err, errlen));
    TRY(get_bool(job, "", "Stop", &out->stop, err, errlen));
    return NOMAD_OK;
}

int nomad_decode_job_info(const json_object *job, nomad_job_info *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    int rc = decode_job_info(job, out, err, errlen);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));   /* nothing half-decoded */
    return rc;
}

/* ---- register ---- */

static int decode_register_obj(const json_object *o, nomad_register_result *out, char *err, size_t errlen) {
    TRY(need_object(o, "a register response", err, errlen));
    /* EvalID is "" (or absent) for periodic and parameterized jobs. */
    TRY(get_ident(o, "", "EvalID", false, out->eval_id, sizeof(out->eval_id), err, errlen));
    TRY(get_u64(o, "", "JobModifyIndex", true, &out->job_modify_index, err, errlen));
    TRY(get_u64(o, "", "Index", false, &out->index, err, errlen));
    TRY(get_text(o, "", "Warnings", out->warnings, sizeof(out->warnings), err, errlen));
    return NOMAD_OK;
}

int nomad_decode_register(const char *body, size_t len, nomad_register_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NOMAD_ERR_DECODE;
    int rc = decode_register_obj(o, out, err, errlen);
    json_object_put(o);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- evaluation ---- */

static int decode_eval_obj(const json_object *o, nomad_eval *out, char *err, size_t errlen) {
    TRY(need_object(o, "an evaluation", err, errlen));
    TRY(get_ident(o, "", "ID", true, out->id, sizeof(out->id), err, errlen));
    TRY(get_ident(o, "", "Status", true, out->status, sizeof(out->status), err, errlen));
    TRY(get_text(o, "", "StatusDescription", out->status_description, sizeof(out->status_description), err,
                 errlen));
    /* Missing while the eval is pending (§13): empty, not an error. */
    TRY(get_ident(o, "", "DeploymentID", false, out->deployment_id, sizeof(out->deployment_id), err, errlen));
    TRY(get_ident(o, "", "BlockedEval", false, out->blocked_eval, sizeof(out->blocked_eval), err, errlen));
    TRY(get_u64(o, "", "ModifyIndex", true, &out->modify_index, err, errlen));
    json_object *f = field(o, "FailedTGAllocs");
    if (f) {
        if (!json_object_is_type(f, json_type_object))
            return fail(err, errlen, "FailedTGAllocs: expected an object, got %s",
                        json_type_to_name(json_object_get_type(f)));
        out->failed_tg_allocs = json_object_object_length(f) > 0;
    }
    return NOMAD_OK;
}

int nomad_decode_eval(const char *body, size_t len, nomad_eval *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NOMAD_ERR_DECODE;
    int rc = decode_eval_obj(o, out, err, errlen);
    json_object_put(o);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- deployment ---- */

static int decode_group(const char *name, json_object *g, nomad_deployment_group *out, char *err,
                        size_t errlen) {
    char where[NOMAD_ID_LEN + 16];
    snprintf(where, sizeof(where), "TaskGroups.%s.", name);
    if (!json_object_is_type(g, json_type_object))
        return fail(err, errlen, "TaskGroups.%s: expected an object, got %s", name,
                    json_type_to_name(json_object_get_type(g)));
    TRY(get_bool(g, where, "Promoted", &out->promoted, err, errlen));
    TRY(get_bool(g, where, "AutoRevert", &out->auto_revert, err, errlen));
    TRY(get_bool(g, where, "AutoPromote", &out->auto_promote, err, errlen));
    TRY(get_count(g, where, "DesiredCanaries", &out->desired_canaries, err, errlen));
    TRY(get_count(g, where, "DesiredTotal", &out->desired_total, err, errlen));
    TRY(get_count(g, where, "PlacedAllocs", &out->placed_allocs, err, errlen));
    TRY(get_count(g, where, "HealthyAllocs", &out->healthy_allocs, err, errlen));
    TRY(get_count(g, where, "UnhealthyAllocs", &out->unhealthy_allocs, err, errlen));
    json_object *pc = field(g, "PlacedCanaries");
    if (pc) {
        if (!json_object_is_type(pc, json_type_array))
            return fail(err, errlen, "%sPlacedCanaries: expected an array, got %s", where,
                        json_type_to_name(json_object_get_type(pc)));
        size_t n = json_object_array_length(pc);
        for (size_t i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(pc, i), json_type_string))
                return fail(err, errlen, "%sPlacedCanaries[%zu]: expected a string", where, i);
        out->placed_canaries = n;
    }
    return NOMAD_OK;
}

static int decode_deployment(const json_object *o, nomad_deployment *out, char *err, size_t errlen) {
    TRY(need_object(o, "a deployment", err, errlen));
    TRY(get_ident(o, "", "ID", true, out->id, sizeof(out->id), err, errlen));
    TRY(get_ident(o, "", "JobID", true, out->job_id, sizeof(out->job_id), err, errlen));
    TRY(get_u64(o, "", "JobVersion", true, &out->job_version, err, errlen));
    TRY(get_u64(o, "", "JobCreateIndex", false, &out->job_create_index, err, errlen));
    TRY(get_ident(o, "", "Status", true, out->status, sizeof(out->status), err, errlen));
    TRY(get_text(o, "", "StatusDescription", out->status_description, sizeof(out->status_description), err,
                 errlen));
    TRY(get_u64(o, "", "CreateIndex", true, &out->create_index, err, errlen));
    TRY(get_u64(o, "", "ModifyIndex", true, &out->modify_index, err, errlen));

    json_object *tgs = field(o, "TaskGroups");
    if (!tgs) return NOMAD_OK;
    if (!json_object_is_type(tgs, json_type_object))
        return fail(err, errlen, "TaskGroups: expected an object, got %s",
                    json_type_to_name(json_object_get_type(tgs)));
    if (json_object_object_length(tgs) > NOMAD_MAX_GROUPS)
        return fail(err, errlen, "TaskGroups: %d groups, more than %d", json_object_object_length(tgs),
                    NOMAD_MAX_GROUPS);
    json_object_object_foreach(tgs, name, g) {
        nomad_deployment_group *grp = &out->groups[out->n_groups];
        size_t n = strlen(name);
        if (n == 0) return fail(err, errlen, "TaskGroups: empty group name");
        if (n >= sizeof(grp->name))
            return fail(err, errlen, "TaskGroups: group name of %zu bytes, longer than %zu", n,
                        sizeof(grp->name) - 1);
        memcpy(grp->name, name, n + 1);
        TRY(decode_group(name, g, grp, err, errlen));
        out->n_groups++;
    }
    return NOMAD_OK;
}

int nomad_decode_deployment_obj(const json_object *o, nomad_deployment *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    int rc = decode_deployment(o, out, err, errlen);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));
    return rc;
}

int nomad_decode_deployment(const char *body, size_t len, nomad_deployment *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NOMAD_ERR_DECODE;
    int rc = nomad_decode_deployment_obj(o, out, err, errlen);
    json_object_put(o);
    return rc;
}

/* ---- terminal states ---- */

bool nomad_eval_terminal(const nomad_eval *e) {
    return strcmp(e->status, "complete") == 0 || strcmp(e->status, "failed") == 0 ||
           strcmp(e->status, "canceled") == 0;
}

/* Deployments spell it "cancelled", evaluations "canceled" (reference §4.1). */
bool nomad_deployment_terminal(const nomad_deployment *d) {
    return strcmp(d->status, "successful") == 0 || strcmp(d->status, "failed") == 0 ||
           strcmp(d->status, "cancelled") == 0;
}
