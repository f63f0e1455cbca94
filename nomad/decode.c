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
#include <stdlib.h>
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

static int get_i64(const json_object *o, const char *where, const char *key, int64_t *out, char *err,
                   size_t errlen);

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
    TRY(get_i64(o, "", "ModifyTime", &out->modify_time, err, errlen));

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

/* ---- more field helpers ---- */

/* Signed integers (SubmitTime, ExitCode): within int64. */
static int get_i64(const json_object *o, const char *where, const char *key, int64_t *out, char *err,
                   size_t errlen) {
    json_object *v = field(o, key);
    *out = 0;
    if (!v) return NOMAD_OK;
    if (!json_object_is_type(v, json_type_int))
        return fail(err, errlen, "%s%s: expected an integer, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    int64_t i = json_object_get_int64(v);
    /* json-c keeps values above INT64_MAX as uint64 and get_int64 clamps them. */
    if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        return fail(err, errlen, "%s%s: value out of range", where, key);
    *out = i;
    return NOMAD_OK;
}

/* An object or null/missing (NULL in *out); anything else is an error. */
static int get_opt_object(const json_object *o, const char *where, const char *key, json_object **out, char *err,
                          size_t errlen) {
    json_object *v = field(o, key);
    *out = NULL;
    if (!v) return NOMAD_OK;
    if (!json_object_is_type(v, json_type_object))
        return fail(err, errlen, "%s%s: expected an object, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    *out = v;
    return NOMAD_OK;
}

static int get_opt_array(const json_object *o, const char *where, const char *key, json_object **out, char *err,
                         size_t errlen) {
    json_object *v = field(o, key);
    *out = NULL;
    if (!v) return NOMAD_OK;
    if (!json_object_is_type(v, json_type_array))
        return fail(err, errlen, "%s%s: expected an array, got %s", where, key,
                    json_type_to_name(json_object_get_type(v)));
    *out = v;
    return NOMAD_OK;
}

/* Copies a name (map key) whole or refuses it. */
static int copy_name(const char *what, const char *name, char *out, size_t outlen, char *err, size_t errlen) {
    size_t n = strlen(name);
    if (n == 0) return fail(err, errlen, "%s: empty name", what);
    if (n >= outlen) return fail(err, errlen, "%s: name of %zu bytes, longer than %zu", what, n, outlen - 1);
    memcpy(out, name, n + 1);
    return NOMAD_OK;
}

/* Parses body as a JSON array; NULL with err set otherwise. */
static json_object *parse_array(const char *body, size_t len, const char *what, char *err, size_t errlen) {
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NULL;
    if (!json_object_is_type(o, json_type_array)) {
        fail(err, errlen, "expected an array of %s, got %s", what, json_type_to_name(json_object_get_type(o)));
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* ---- job versions ---- */

static int decode_version(json_object *job, const char *task, size_t i, nomad_job_version *out, char *err,
                          size_t errlen) {
    char where[48];
    snprintf(where, sizeof(where), "Versions[%zu].", i);
    if (!json_object_is_type(job, json_type_object))
        return fail(err, errlen, "Versions[%zu]: expected an object, got %s", i,
                    json_type_to_name(json_object_get_type(job)));
    TRY(get_u64(job, where, "Version", true, &out->version, err, errlen));
    TRY(get_bool(job, where, "Stable", &out->stable, err, errlen));
    TRY(get_i64(job, where, "SubmitTime", &out->submit_time, err, errlen));
    TRY(get_u64(job, where, "JobModifyIndex", false, &out->job_modify_index, err, errlen));
    if (task && task[0]) {
        const char *img = nomad_job_task_image(job, task);
        if (img) {
            size_t n = strlen(img);
            if (n >= sizeof(out->image))
                return fail(err, errlen, "%simage of task %s: %zu bytes, longer than %zu", where, task, n,
                            sizeof(out->image) - 1);
            memcpy(out->image, img, n + 1);
        }
    }
    return NOMAD_OK;
}

static int decode_versions_obj(const json_object *o, const char *task, nomad_version_list *out, char *err,
                               size_t errlen) {
    TRY(need_object(o, "a job versions", err, errlen));
    json_object *vs = field(o, "Versions");
    if (!vs) return missing(err, errlen, "", "Versions");
    if (!json_object_is_type(vs, json_type_array))
        return fail(err, errlen, "Versions: expected an array, got %s", json_type_to_name(json_object_get_type(vs)));
    size_t n = json_object_array_length(vs);
    out->n_total = n;
    for (size_t i = 0; i < n; i++) {
        nomad_job_version tmp;
        memset(&tmp, 0, sizeof(tmp));
        /* Every entry is checked; the newest NOMAD_MAX_VERSIONS are kept (Nomad sends newest first). */
        TRY(decode_version(json_object_array_get_idx(vs, i), task, i, &tmp, err, errlen));
        if (out->n < NOMAD_MAX_VERSIONS) out->v[out->n++] = tmp;
    }
    return NOMAD_OK;
}

int nomad_decode_job_versions(const char *body, size_t len, const char *task, nomad_version_list *out, char *err,
                              size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NOMAD_ERR_DECODE;
    int rc = decode_versions_obj(o, task, out, err, errlen);
    json_object_put(o);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- plan ---- */

static nomad_plan_group *plan_group(nomad_plan *p, const char *name, char *err, size_t errlen, int *rc) {
    for (size_t i = 0; i < p->n_groups; i++)
        if (strcmp(p->groups[i].name, name) == 0) return &p->groups[i];
    if (p->n_groups >= NOMAD_MAX_GROUPS) {
        *rc = fail(err, errlen, "plan: more than %d task groups", NOMAD_MAX_GROUPS);
        return NULL;
    }
    nomad_plan_group *g = &p->groups[p->n_groups];
    *rc = copy_name("plan task group", name, g->name, sizeof(g->name), err, errlen);
    if (*rc != NOMAD_OK) return NULL;
    p->n_groups++;
    return g;
}

static int decode_plan(const json_object *o, nomad_plan *out, char *err, size_t errlen) {
    TRY(need_object(o, "a plan", err, errlen));
    TRY(get_u64(o, "", "JobModifyIndex", true, &out->job_modify_index, err, errlen));
    TRY(get_u64(o, "", "Index", false, &out->index, err, errlen));
    TRY(get_text(o, "", "Warnings", out->warnings, sizeof(out->warnings), err, errlen));
    json_object *f;
    TRY(get_opt_object(o, "", "FailedTGAllocs", &f, err, errlen));
    out->failed_tg_allocs = f && json_object_object_length(f) > 0;

    json_object *ann, *desired;
    TRY(get_opt_object(o, "", "Annotations", &ann, err, errlen));
    if (ann) {
        TRY(get_opt_object(ann, "Annotations.", "DesiredTGUpdates", &desired, err, errlen));
        if (desired) {
            json_object_object_foreach(desired, name, u) {
                int rc = NOMAD_OK;
                nomad_plan_group *g = plan_group(out, name, err, errlen, &rc);
                if (!g) return rc;
                char where[NOMAD_ID_LEN + 40];
                snprintf(where, sizeof(where), "Annotations.DesiredTGUpdates.%s.", g->name);
                if (!json_object_is_type(u, json_type_object))
                    return fail(err, errlen, "%s: expected an object", where);
                TRY(get_u64(u, where, "Ignore", false, &g->ignore, err, errlen));
                TRY(get_u64(u, where, "Place", false, &g->place, err, errlen));
                TRY(get_u64(u, where, "Migrate", false, &g->migrate, err, errlen));
                TRY(get_u64(u, where, "Stop", false, &g->stop, err, errlen));
                TRY(get_u64(u, where, "InPlaceUpdate", false, &g->in_place, err, errlen));
                TRY(get_u64(u, where, "DestructiveUpdate", false, &g->destructive, err, errlen));
                TRY(get_u64(u, where, "Canary", false, &g->canary, err, errlen));
                TRY(get_u64(u, where, "Preemptions", false, &g->preemptions, err, errlen));
            }
        }
    }

    json_object *diff, *tgs;
    TRY(get_opt_object(o, "", "Diff", &diff, err, errlen));
    if (!diff) return NOMAD_OK;
    TRY(get_ident(diff, "Diff.", "Type", true, out->diff_type, sizeof(out->diff_type), err, errlen));
    TRY(get_opt_array(diff, "Diff.", "TaskGroups", &tgs, err, errlen));
    size_t n = tgs ? json_object_array_length(tgs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *gd = json_object_array_get_idx(tgs, i);
        char where[48], name[NOMAD_ID_LEN];
        snprintf(where, sizeof(where), "Diff.TaskGroups[%zu].", i);
        if (!gd || !json_object_is_type(gd, json_type_object)) return fail(err, errlen, "%s: expected an object", where);
        TRY(get_ident(gd, where, "Name", true, name, sizeof(name), err, errlen));
        int rc = NOMAD_OK;
        nomad_plan_group *g = plan_group(out, name, err, errlen, &rc);
        if (!g) return rc;
        TRY(get_ident(gd, where, "Type", true, g->diff_type, sizeof(g->diff_type), err, errlen));
    }
    return NOMAD_OK;
}

int nomad_decode_plan_obj(const json_object *o, nomad_plan *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    int rc = decode_plan(o, out, err, errlen);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));
    return rc;
}

int nomad_decode_plan(const char *body, size_t len, nomad_plan *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NOMAD_ERR_DECODE;
    int rc = nomad_decode_plan_obj(o, out, err, errlen);
    json_object_put(o);
    return rc;
}

/* ---- promote / fail / pause answer ---- */

static int decode_update(const json_object *o, nomad_deployment_update *out, char *err, size_t errlen) {
    TRY(need_object(o, "a deployment update", err, errlen));
    TRY(get_ident(o, "", "EvalID", false, out->eval_id, sizeof(out->eval_id), err, errlen));
    TRY(get_u64(o, "", "EvalCreateIndex", false, &out->eval_create_index, err, errlen));
    TRY(get_u64(o, "", "DeploymentModifyIndex", false, &out->deployment_modify_index, err, errlen));
    TRY(get_u64(o, "", "Index", false, &out->index, err, errlen));
    out->reverted = field(o, "RevertedJobVersion") != NULL;
    TRY(get_u64(o, "", "RevertedJobVersion", false, &out->reverted_job_version, err, errlen));
    return NOMAD_OK;
}

int nomad_decode_deployment_update(const char *body, size_t len, nomad_deployment_update *out, char *err,
                                   size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_object *o = nomad_json_parse(body, len, NULL, err, errlen);
    if (!o) return NOMAD_ERR_DECODE;
    int rc = decode_update(o, out, err, errlen);
    json_object_put(o);
    if (rc != NOMAD_OK) memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- allocations ---- */

/* Event types that explain a failure or a restart (reference §5). */
static bool is_reason_type(const char *t) {
    static const char *const types[] = {"Driver Failure",      "Setup Failure",     "Failed Validation",
                                        "Failed Artifact Download", "Terminated",  "Task hook failed",
                                        "Alloc Unhealthy",     "Sibling Task Failed", "Leader Task Dead",
                                        "Killed"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(t, types[i]) == 0) return true;
    return false;
}

/* Details is map[string]string; refuse anything else. */
static int check_details(json_object *d, const char *where, char *err, size_t errlen) {
    if (!json_object_is_type(d, json_type_object))
        return fail(err, errlen, "%sDetails: expected an object, got %s", where,
                    json_type_to_name(json_object_get_type(d)));
    json_object_object_foreach(d, k, v) {
        if (!v || !json_object_is_type(v, json_type_string))
            return fail(err, errlen, "%sDetails.%.64s: expected a string", where, k);
    }
    return NOMAD_OK;
}

static const char *detail_str(json_object *d, const char *key) {
    json_object *v = d ? field(d, key) : NULL;
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void copy_text(char *out, size_t outlen, const char *s) {
    size_t n = strlen(s);
    if (n < outlen) {
        memcpy(out, s, n + 1);
        return;
    }
    size_t keep = outlen - 4;
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) keep--;
    memcpy(out, s, keep);
    memcpy(out + keep, "...", 4);
}

static int decode_task(const char *tname, json_object *ts, nomad_task_summary *out, char *err, size_t errlen) {
    char where[2 * NOMAD_ID_LEN + 32];
    snprintf(where, sizeof(where), "TaskStates.%s.", tname);
    if (!json_object_is_type(ts, json_type_object))
        return fail(err, errlen, "TaskStates.%s: expected an object", tname);
    TRY(copy_name("TaskStates", tname, out->name, sizeof(out->name), err, errlen));
    TRY(get_ident(ts, where, "State", false, out->state, sizeof(out->state), err, errlen));
    TRY(get_bool(ts, where, "Failed", &out->failed, err, errlen));
    TRY(get_u64(ts, where, "Restarts", false, &out->restarts, err, errlen));
    json_object *evs;
    TRY(get_opt_array(ts, where, "Events", &evs, err, errlen));
    size_t n = evs ? json_object_array_length(evs) : 0;
    bool have_reason = false;
    /* Oldest first in Nomad's list: walk from the newest. */
    for (size_t k = n; k-- > 0;) {
        json_object *ev = json_object_array_get_idx(evs, k);
        char ew[sizeof(where) + 24];
        snprintf(ew, sizeof(ew), "%sEvents[%zu].", where, k);
        if (!ev || !json_object_is_type(ev, json_type_object)) return fail(err, errlen, "%s: expected an object", ew);
        char type[sizeof(out->last_type)], display[NOMAD_MSG_LEN], msg[NOMAD_MSG_LEN];
        bool fails = false;
        int64_t code = 0;
        json_object *details;
        TRY(get_ident(ev, ew, "Type", false, type, sizeof(type), err, errlen));
        TRY(get_text(ev, ew, "DisplayMessage", display, sizeof(display), err, errlen));
        TRY(get_text(ev, ew, "Message", msg, sizeof(msg), err, errlen));
        TRY(get_bool(ev, ew, "FailsTask", &fails, err, errlen));
        TRY(get_i64(ev, ew, "ExitCode", &code, err, errlen));
        TRY(get_opt_object(ev, ew, "Details", &details, err, errlen));
        if (details) TRY(check_details(details, ew, err, errlen));
        const char *text = display[0] ? display : msg;
        if (k == n - 1) {
            memcpy(out->last_type, type, sizeof(type));
            copy_text(out->last_message, sizeof(out->last_message), text);
        }
        if (have_reason || !(fails || is_reason_type(type))) continue;
        /* A restart note ("Not Restarting") is not the cause; the event before it is. */
        if (strcmp(type, "Not Restarting") == 0 || strcmp(type, "Restarting") == 0) continue;
        if (strcmp(type, "Killed") == 0 && !fails) continue;   /* a normal stop */
        const char *oom = detail_str(details, "oom_killed");
        bool oom_killed = oom && strcmp(oom, "true") == 0;
        /* Every exit is "Terminated"; only a failing one is a reason. */
        if (strcmp(type, "Terminated") == 0 && !fails && code == 0 && !oom_killed) continue;
        have_reason = true;
        memcpy(out->reason_type, type, sizeof(type));
        static const char *const why[] = {"driver_error", "setup_error", "validation_error", "download_error",
                                          "kill_error", "kill_reason", "exit_message"};
        const char *d = NULL;
        for (size_t w = 0; !text[0] && !d && w < sizeof(why) / sizeof(why[0]); w++) d = detail_str(details, why[w]);
        copy_text(out->reason, sizeof(out->reason), text[0] ? text : d ? d : "");
        out->oom_killed = oom_killed;
        out->exit_code = code;
    }
    return NOMAD_OK;
}

static int decode_alloc(json_object *a, size_t i, nomad_alloc *out, char *err, size_t errlen) {
    char where[32];
    snprintf(where, sizeof(where), "[%zu].", i);
    if (!a || !json_object_is_type(a, json_type_object)) return fail(err, errlen, "[%zu]: expected an object", i);
    TRY(get_ident(a, where, "ID", true, out->id, sizeof(out->id), err, errlen));
    TRY(get_ident(a, where, "TaskGroup", true, out->task_group, sizeof(out->task_group), err, errlen));
    TRY(get_ident(a, where, "ClientStatus", true, out->client_status, sizeof(out->client_status), err, errlen));
    TRY(get_ident(a, where, "DesiredStatus", false, out->desired_status, sizeof(out->desired_status), err, errlen));
    TRY(get_u64(a, where, "JobVersion", false, &out->job_version, err, errlen));
    TRY(get_u64(a, where, "CreateIndex", false, &out->create_index, err, errlen));
    TRY(get_u64(a, where, "ModifyIndex", false, &out->modify_index, err, errlen));
    json_object *ds, *ts;
    TRY(get_opt_object(a, where, "DeploymentStatus", &ds, err, errlen));
    if (ds) {
        out->has_deployment_status = true;
        out->healthy_set = field(ds, "Healthy") != NULL;   /* null: not decided yet */
        TRY(get_bool(ds, "DeploymentStatus.", "Healthy", &out->healthy, err, errlen));
        TRY(get_bool(ds, "DeploymentStatus.", "Canary", &out->canary, err, errlen));
    }
    TRY(get_opt_object(a, where, "TaskStates", &ts, err, errlen));
    if (ts) {
        json_object_object_foreach(ts, tname, tstate) {
            nomad_task_summary tmp;
            memset(&tmp, 0, sizeof(tmp));
            TRY(decode_task(tname, tstate, &tmp, err, errlen));
            out->n_tasks_total++;
            if (out->n_tasks < NOMAD_MAX_TASKS) out->tasks[out->n_tasks++] = tmp;
        }
    }
    return NOMAD_OK;
}

int nomad_decode_allocations(const char *body, size_t len, nomad_alloc *out, size_t max, size_t *n,
                             size_t *n_total, char *err, size_t errlen) {
    *n = 0;
    *n_total = 0;
    if (!out) max = 0;
    json_object *arr = parse_array(body, len, "allocations", err, errlen);
    if (!arr) return NOMAD_ERR_DECODE;
    size_t total = json_object_array_length(arr), kept = 0;
    int rc = NOMAD_OK;
    nomad_alloc *tmp = malloc(sizeof(*tmp));
    if (!tmp) rc = fail(err, errlen, "out of memory");
    for (size_t i = 0; rc == NOMAD_OK && i < total; i++) {
        memset(tmp, 0, sizeof(*tmp));
        rc = decode_alloc(json_object_array_get_idx(arr, i), i, tmp, err, errlen);
        if (rc != NOMAD_OK || max == 0) continue;
        /* Insert sorted by CreateIndex, newest first; drop the oldest when full. */
        size_t pos = kept;
        while (pos > 0 && out[pos - 1].create_index < tmp->create_index) pos--;
        if (pos >= max) continue;
        size_t move = (kept < max ? kept : max - 1) - pos;
        memmove(&out[pos + 1], &out[pos], move * sizeof(*out));
        out[pos] = *tmp;
        if (kept < max) kept++;
    }
    free(tmp);
    json_object_put(arr);
    if (rc != NOMAD_OK) {
        if (max) memset(out, 0, max * sizeof(*out));
        return rc;
    }
    *n = kept;
    *n_total = total;
    return NOMAD_OK;
}

int nomad_decode_deployments(const char *body, size_t len, nomad_deployment *out, size_t max, size_t *n,
                             size_t *n_total, char *err, size_t errlen) {
    *n = 0;
    *n_total = 0;
    if (!out) max = 0;
    json_object *arr = parse_array(body, len, "deployments", err, errlen);
    if (!arr) return NOMAD_ERR_DECODE;
    size_t total = json_object_array_length(arr), kept = 0;
    int rc = NOMAD_OK;
    nomad_deployment *tmp = malloc(sizeof(*tmp));
    if (!tmp) rc = fail(err, errlen, "out of memory");
    for (size_t i = 0; rc == NOMAD_OK && i < total; i++) {
        rc = nomad_decode_deployment_obj(json_object_array_get_idx(arr, i), tmp, err, errlen);
        if (rc != NOMAD_OK) {
            /* Say which entry: prefix the index to the message. */
            char inner[200];
            snprintf(inner, sizeof(inner), "%s", err ? err : "");
            rc = fail(err, errlen, "[%zu]: %s", i, inner);
            continue;
        }
        if (max == 0) continue;
        size_t pos = kept;
        while (pos > 0 && out[pos - 1].create_index < tmp->create_index) pos--;
        if (pos >= max) continue;
        size_t move = (kept < max ? kept : max - 1) - pos;
        memmove(&out[pos + 1], &out[pos], move * sizeof(*out));
        out[pos] = *tmp;
        if (kept < max) kept++;
    }
    free(tmp);
    json_object_put(arr);
    if (rc != NOMAD_OK) {
        if (max) memset(out, 0, max * sizeof(*out));
        return rc;
    }
    *n = kept;
    *n_total = total;
    return NOMAD_OK;
}

bool nomad_alloc_terminal(const nomad_alloc *a) {
    return strcmp(a->client_status, "complete") == 0 || strcmp(a->client_status, "failed") == 0 ||
           strcmp(a->client_status, "lost") == 0 || strcmp(a->desired_status, "stop") == 0 ||
           strcmp(a->desired_status, "evict") == 0;
}

void nomad_deployment_count_canaries(nomad_deployment *d, const nomad_alloc *allocs, size_t n) {
    for (size_t g = 0; g < d->n_groups; g++) {
        nomad_deployment_group *grp = &d->groups[g];
        grp->healthy_canaries = grp->unhealthy_canaries = 0;
        grp->canaries_counted = true;
        for (size_t i = 0; i < n; i++) {
            const nomad_alloc *a = &allocs[i];
            if (!a->canary || !a->healthy_set || a->job_version != d->job_version ||
                strcmp(a->task_group, grp->name) != 0)
                continue;
            /* Promotion counts healthy, non-terminal canaries only (reference §3.10). */
            if (a->healthy && !nomad_alloc_terminal(a)) grp->healthy_canaries++;
            else if (!a->healthy) grp->unhealthy_canaries++;
        }
    }
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
