/* Export (JSONL, CSV) and the offline verifier of JSONL exports.
 *
 * The writer streams rows from the server (audit_events_each: single-row
 * mode) and writes each as it comes, so memory stays constant. JSON is built
 * with json-c, never by pasting text. The reader is strict and bounded: one
 * line at a time, at most AUDIT_EXPORT_LINE_MAX bytes, exact keys and types. */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "audit_int.h"
#include "canon.h"

/* Text columns in encoding order, with the JSON/CSV keys; integers are
 * placed around them by the code below. */
static const char *const text_a[] = {"action",    "actor",   "person", "outcome", "from_state", "to_state",
                                     "phase",     "reason",  "env",    "job",     "from_image", "to_image"};
static const char *const text_b[] = {"eval_id", "deployment_id", "detail", "platform", "team",
                                     "channel", "message_ref",   "thread", "permalink"};
#define N_TEXT_A 12
#define N_TEXT_B 9
/* type, id, request_id, at, at_us, enc_version, 12 texts, nomad_job_version, 9 texts, prev_hash, hash */
#define N_EVENT_KEYS 30

static const char **text_a_ptr(audit_event *e, int k) {
    const char **p[] = {&e->action, &e->actor, &e->person, &e->outcome, &e->from_state, &e->to_state,
                        &e->phase,  &e->reason, &e->env,   &e->job,     &e->from_image, &e->to_image};
    return p[k];
}
static const char **text_b_ptr(audit_event *e, int k) {
    const char **p[] = {&e->eval_id, &e->deployment_id, &e->detail, &e->platform, &e->team,
                        &e->channel, &e->message_ref,   &e->thread, &e->permalink};
    return p[k];
}

void audit_format_us(int64_t us, char dst[40]) {
    int64_t sec = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(dst, 40, "invalid");
        return;
    }
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(dst, 40, "%s.%06dZ", base, (int)frac);
}

/* ---- writing ---- */

typedef struct export_ctx {
    audit_db *db;
    FILE *out;
    int format;
    int64_t n, last_id;
    char last_hash[AUDIT_HASH_LEN + 1];
    int io_errno;
    bool nomem;
    nm_buf line;
} export_ctx;

static json_object *jstr(const char *s) { return s ? json_object_new_string(s) : NULL; }

static int write_line(export_ctx *x, const char *s, size_t n) {
    if (fwrite(s, 1, n, x->out) != n) {
        x->io_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

static int write_json(export_ctx *x, json_object *o) {
    if (!o) {
        x->nomem = true;
        return -1;
    }
    size_t n = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    int rc = s ? write_line(x, s, n) : -1;
    if (!s) x->nomem = true;
    if (rc == 0) rc = write_line(x, "\n", 1);
    json_object_put(o);
    return rc;
}

static int jsonl_row(const audit_row *row, export_ctx *x) {
    audit_event e = row->ev;
    json_object *o = json_object_new_object();
    if (!o) {
        x->nomem = true;
        return -1;
    }
    json_object_object_add(o, "type", json_object_new_string("event"));
    json_object_object_add(o, "id", json_object_new_int64(e.id));
    json_object_object_add(o, "request_id", e.request_id > 0 ? json_object_new_int64(e.request_id) : NULL);
    json_object_object_add(o, "at", json_object_new_string(row->at));
    json_object_object_add(o, "at_us", json_object_new_int64(e.at_us));
    json_object_object_add(o, "enc_version", json_object_new_int(e.enc_version));
    for (int k = 0; k < N_TEXT_A; k++) json_object_object_add(o, text_a[k], jstr(*text_a_ptr(&e, k)));
    json_object_object_add(o, "nomad_job_version",
                           e.nomad_job_version >= 0 ? json_object_new_int64(e.nomad_job_version) : NULL);
    for (int k = 0; k < N_TEXT_B; k++) json_object_object_add(o, text_b[k], jstr(*text_b_ptr(&e, k)));
    json_object_object_add(o, "prev_hash", json_object_new_string(e.prev_hash));
    json_object_object_add(o, "hash", json_object_new_string(row->hash));
    return write_json(x, o);
}

int audit_csv_cell(nm_buf *out, const char *s) {
    if (!s) return NM_BUF_OK;
    bool neutralise = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    int rc = NM_BUF_OK;
    if (quote) rc = nm_buf_append(out, "\"", 1);
    if (!rc && neutralise) rc = nm_buf_append(out, "'", 1);
    for (const char *p = s; !rc && *p;) {
        const char *q = quote ? strchr(p, '"') : NULL;
        size_t n = q ? (size_t)(q - p) + 1 : strlen(p);
        rc = nm_buf_append(out, p, n);
        if (!rc && q) rc = nm_buf_append(out, "\"", 1); /* "" inside quotes */
        p += n;
    }
    if (!rc && quote) rc = nm_buf_append(out, "\"", 1);
    return rc;
}

static const char csv_header[] =
    "id,request_id,at,at_us,enc_version,action,actor,person,outcome,from_state,to_state,phase,reason,env,job,"
    "from_image,to_image,nomad_job_version,eval_id,deployment_id,detail,platform,team,channel,message_ref,thread,"
    "permalink,prev_hash,hash\r\n";

static int csv_row(const audit_row *row, export_ctx *x) {
    audit_event e = row->ev;
    nm_buf *b = &x->line;
    nm_buf_reset(b);
    char num[24];
    int rc = nm_buf_printf(b, "%" PRId64 ",", e.id);
    if (!rc && e.request_id > 0) rc = nm_buf_printf(b, "%" PRId64, e.request_id);
    if (!rc) rc = nm_buf_printf(b, ",%s,%" PRId64 ",%d", row->at, e.at_us, e.enc_version);
    for (int k = 0; !rc && k < N_TEXT_A; k++)
        if (!(rc = nm_buf_append(b, ",", 1))) rc = audit_csv_cell(b, *text_a_ptr(&e, k));
    if (!rc) rc = nm_buf_append(b, ",", 1);
    if (!rc && e.nomad_job_version >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, e.nomad_job_version);
        rc = nm_buf_appends(b, num);
    }
    for (int k = 0; !rc && k < N_TEXT_B; k++)
        if (!(rc = nm_buf_append(b, ",", 1))) rc = audit_csv_cell(b, *text_b_ptr(&e, k));
    if (!rc) rc = nm_buf_printf(b, ",%s,%s\r\n", e.prev_hash, row->hash);
    if (rc) {
        x->nomem = true;
        return -1;
    }
    return write_line(x, b->data, b->len);
}

static int export_row(const audit_row *row, void *arg) {
    export_ctx *x = arg;
    int rc = x->format == AUDIT_EXPORT_CSV ? csv_row(row, x) : jsonl_row(row, x);
    if (rc) return rc;
    x->n++;
    x->last_id = row->ev.id;
    snprintf(x->last_hash, sizeof(x->last_hash), "%s", row->hash);
    return 0;
}

int audit_export(audit_db *db, const audit_filter *f, int format, FILE *out, int64_t *count) {
    audit_filter none = {0};
    if (count) *count = 0;
    if (!f) f = &none;
    if (!out || (format != AUDIT_EXPORT_JSONL && format != AUDIT_EXPORT_CSV))
        return audit__fail(db, AUDIT_ERR_INVALID, "export needs an output and a format (jsonl or csv)");
    if (format == AUDIT_EXPORT_JSONL && (f->request_id || f->job || f->env || f->actor))
        return audit__fail(db, AUDIT_ERR_INVALID, "a JSONL export covers a range of the chain: filter by time only");
    export_ctx x = {.db = db, .out = out, .format = format};
    nm_buf_init(&x.line, AUDIT_EXPORT_LINE_MAX);
    int rc = AUDIT_OK;
    if (format == AUDIT_EXPORT_JSONL) {
        /* The newest checkpoint, read before the events: the export then
         * reaches at least to its head, and verify --file can compare. */
        audit_checkpoint_info cp;
        rc = audit_checkpoint_latest(db, &cp);
        if (rc != AUDIT_OK && rc != AUDIT_ERR_NOT_FOUND) goto done;
        json_object *o = json_object_new_object(), *c = NULL;
        if (o) {
            json_object_object_add(o, "type", json_object_new_string("begin"));
            json_object_object_add(o, "format", json_object_new_string("nomatron-audit-export"));
            json_object_object_add(o, "version", json_object_new_int(1));
            json_object_object_add(o, "since", jstr(f->since));
            json_object_object_add(o, "until", jstr(f->until));
            json_object_object_add(o, "through_head", json_object_new_boolean(!f->until && !f->limit));
            if (rc == AUDIT_OK && (c = json_object_new_object())) {
                json_object_object_add(c, "id", json_object_new_int64(cp.id));
                json_object_object_add(c, "head_id", json_object_new_int64(cp.head_id));
                json_object_object_add(c, "head_hash", json_object_new_string(cp.head_hash));
                json_object_object_add(c, "events", json_object_new_int64(cp.events));
                json_object_object_add(c, "at", json_object_new_string(cp.at));
            }
            json_object_object_add(o, "checkpoint", c);
        }
        rc = AUDIT_OK;
        if (write_json(&x, o)) goto done;
    } else if (write_line(&x, csv_header, sizeof(csv_header) - 1)) {
        goto done;
    }
    rc = audit_events_each(db, f, export_row, &x);
    if (rc || x.io_errno || x.nomem) goto done;
    if (format == AUDIT_EXPORT_JSONL) {
        json_object *o = json_object_new_object();
        if (o) {
            json_object_object_add(o, "type", json_object_new_string("end"));
            json_object_object_add(o, "events", json_object_new_int64(x.n));
            json_object_object_add(o, "last_id", x.n ? json_object_new_int64(x.last_id) : NULL);
            json_object_object_add(o, "last_hash", x.n ? json_object_new_string(x.last_hash) : NULL);
        }
        write_json(&x, o);
    }
    if (!x.io_errno && fflush(out) != 0) x.io_errno = errno ? errno : EIO;
done:
    nm_buf_free(&x.line);
    if (rc == AUDIT_OK && x.io_errno)
        rc = audit__fail(db, AUDIT_ERR_IO, "writing the export: %s", strerror(x.io_errno));
    else if (rc == AUDIT_OK && x.nomem)
        rc = audit__fail(db, AUDIT_ERR_NOMEM, "out of memory writing the export");
    if (count) *count = x.n;
    if (rc == AUDIT_OK) snprintf(db->errstr, sizeof(db->errstr), "%" PRId64 " events exported", x.n);
    return rc;
}

/* ---- reading ---- */

void audit_fverify_init(audit_fverify *v) {
    memset(v, 0, sizeof(*v));
    nm_buf_init(&v->enc, AUDIT_ENC_MAX);
}

void audit_fverify_free(audit_fverify *v) { nm_buf_free(&v->enc); }

static int fv_fail(audit_fverify *v, int64_t event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fv_fail(audit_fverify *v, int64_t event, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof(v->why), fmt, ap);
    va_end(ap);
    v->first_broken = event;
    v->status = AUDIT_ERR_BROKEN;
    return v->status;
}

/* Typed getters: false if the key is absent or of the wrong type. */
static bool get_int(json_object *o, const char *k, bool nullable, bool *is_null, int64_t *out) {
    json_object *f;
    if (!json_object_object_get_ex(o, k, &f)) return false;
    if (!f) {
        if (is_null) *is_null = true;
        return nullable;
    }
    if (is_null) *is_null = false;
    if (!json_object_is_type(f, json_type_int)) return false;
    errno = 0;
    *out = json_object_get_int64(f);
    return errno == 0;
}

/* Text: a JSON string without NUL bytes (PostgreSQL text holds none), or null. */
static bool get_text(json_object *o, const char *k, bool nullable, const char **out) {
    json_object *f;
    *out = NULL;
    if (!json_object_object_get_ex(o, k, &f)) return false;
    if (!f) return nullable;
    if (!json_object_is_type(f, json_type_string)) return false;
    const char *s = json_object_get_string(f);
    size_t n = (size_t)json_object_get_string_len(f);
    if (strlen(s) != n || n > AUDIT_FIELD_MAX) return false;
    *out = s;
    return true;
}

static bool get_hash(json_object *o, const char *k, const char **out) {
    return get_text(o, k, false, out) && audit_canon_hash_valid(*out);
}

/* The begin line: format, version, since, until, through_head, checkpoint. */
static int fv_begin(audit_fverify *v, json_object *o) {
    const char *fmt, *s;
    int64_t ver;
    json_object *th, *cp;
    if (json_object_object_length(o) != 7 || !get_text(o, "format", false, &fmt) ||
        strcmp(fmt, "nomatron-audit-export") != 0 || !get_int(o, "version", false, NULL, &ver) ||
        !get_text(o, "since", true, &s) || !get_text(o, "until", true, &s) ||
        !json_object_object_get_ex(o, "through_head", &th) || !json_object_is_type(th, json_type_boolean) ||
        !json_object_object_get_ex(o, "checkpoint", &cp))
        return fv_fail(v, 0, "line %" PRId64 ": not the begin line of a nomatron audit export", v->line);
    if (ver != 1) return fv_fail(v, 0, "line %" PRId64 ": export format version %" PRId64 " is unknown", v->line, ver);
    v->through_head = json_object_get_boolean(th);
    if (cp) {
        const char *h, *at;
        int64_t events;
        if (!json_object_is_type(cp, json_type_object) || json_object_object_length(cp) != 5 ||
            !get_int(cp, "id", false, NULL, &v->cp_id) || !get_int(cp, "head_id", false, NULL, &v->cp_head_id) ||
            !get_hash(cp, "head_hash", &h) || !get_int(cp, "events", false, NULL, &events) ||
            !get_text(cp, "at", false, &at) || v->cp_id <= 0 || v->cp_head_id < 0)
            return fv_fail(v, 0, "line %" PRId64 ": malformed checkpoint in the begin line", v->line);
        snprintf(v->cp_hash, sizeof(v->cp_hash), "%s", h);
    }
    v->begun = true;
    return AUDIT_OK;
}

static int fv_end(audit_fverify *v, json_object *o) {
    int64_t events = -1, last_id = 0;
    bool null_id = true;
    const char *last_hash = NULL;
    if (json_object_object_length(o) != 4 || !get_int(o, "events", false, NULL, &events) ||
        !get_int(o, "last_id", true, &null_id, &last_id) || !get_text(o, "last_hash", true, &last_hash) ||
        (last_hash && !audit_canon_hash_valid(last_hash)))
        return fv_fail(v, 0, "line %" PRId64 ": malformed end line", v->line);
    if (v->missing_id) return AUDIT_OK; /* reported at finish */
    if (events != v->events || (events > 0 && (null_id || last_id != v->last_id || !last_hash ||
                                               strcmp(last_hash, v->last_hash) != 0)))
        return fv_fail(v, v->last_id + 1,
                       "the end line says %" PRId64 " events ending at event %" PRId64
                       " but the file holds %" PRId64 " ending at event %" PRId64 " (events missing or added)",
                       events, null_id ? 0 : last_id, v->events, v->last_id);
    v->ended = true;
    return AUDIT_OK;
}

static int fv_event(audit_fverify *v, json_object *o) {
    audit_event e;
    memset(&e, 0, sizeof(e));
    bool rnull = false, vnull = false;
    int64_t ver = 0;
    const char *at, *hash, *prev;
    bool ok = json_object_object_length(o) == N_EVENT_KEYS && get_int(o, "id", false, NULL, &e.id) && e.id > 0 &&
              get_int(o, "request_id", true, &rnull, &e.request_id) && (rnull || e.request_id > 0) &&
              get_text(o, "at", false, &at) && get_int(o, "at_us", false, NULL, &e.at_us) &&
              get_int(o, "enc_version", false, NULL, &ver) &&
              get_int(o, "nomad_job_version", true, &vnull, &e.nomad_job_version) &&
              (vnull || e.nomad_job_version >= 0) && get_hash(o, "prev_hash", &prev) && get_hash(o, "hash", &hash);
    for (int k = 0; ok && k < N_TEXT_A; k++) ok = get_text(o, text_a[k], true, text_a_ptr(&e, k));
    for (int k = 0; ok && k < N_TEXT_B; k++) ok = get_text(o, text_b[k], true, text_b_ptr(&e, k));
    if (!ok)
        return fv_fail(v, v->expect_id, "line %" PRId64 ": malformed event (keys or types not as documented)",
                       v->line);
    if (rnull) e.request_id = 0;
    if (vnull) e.nomad_job_version = -1;

    /* Looking ahead for a missing id: only ids matter now. */
    if (v->missing_id) {
        if (e.id == v->missing_id)
            return fv_fail(v, v->missing_id, "event %" PRId64 ": reordered (it comes %d lines later than its place)",
                           v->missing_id, v->lookahead + 1);
        if (++v->lookahead >= AUDIT_EXPORT_LOOKAHEAD) {
            snprintf(v->why, sizeof(v->why), "%s", v->pending_why);
            return fv_fail(v, v->missing_id, "%s", v->pending_why);
        }
        return AUDIT_OK;
    }
    if (v->expect_id == 0) {
        /* The first event anchors the walk: its predecessor is not in the
         * file unless it is event 1, whose predecessor is genesis. */
        v->expect_id = e.id;
        v->first_id = e.id;
        snprintf(v->first_prev, sizeof(v->first_prev), "%s", prev);
        snprintf(v->prev, sizeof(v->prev), "%s", e.id == 1 ? AUDIT_GENESIS_HASH : prev);
    }
    if (e.id < v->expect_id)
        return fv_fail(v, e.id, "event %" PRId64 ": reordered (it follows event %" PRId64 ")", e.id, v->expect_id - 1);
    if (e.id > v->expect_id) {
        v->missing_id = v->expect_id;
        v->lookahead = 0;
        snprintf(v->pending_why, sizeof(v->pending_why), "event %" PRId64 ": missing (event %" PRId64 " follows event %" PRId64 ")",
                 v->expect_id, e.id, v->expect_id - 1);
        return AUDIT_OK;
    }
    if (ver != AUDIT_ENC_VERSION)
        return fv_fail(v, e.id, "event %" PRId64 ": unknown encoding version %" PRId64, e.id, ver);
    e.enc_version = (int)ver;
    char at_want[40];
    audit_format_us(e.at_us, at_want);
    if (strcmp(at, at_want) != 0)
        return fv_fail(v, e.id, "event %" PRId64 ": at (%.40s) does not match at_us (altered)", e.id, at);
    if (strcmp(prev, v->prev) != 0)
        return e.id == 1 ? fv_fail(v, 1, "event 1: prev_hash is not the genesis value (altered)")
                         : fv_fail(v, e.id, "event %" PRId64 ": prev_hash does not match event %" PRId64 " (altered)",
                                   e.id, e.id - 1);
    e.prev_hash = prev;
    nm_buf_reset(&v->enc);
    char want[AUDIT_HASH_LEN + 1];
    int crc = audit_canon_encode(&e, &v->enc);
    if (crc == AUDIT_CANON_OK) crc = audit_canon_chain_hash(prev, v->enc.data ? v->enc.data : "", v->enc.len, want);
    if (crc == AUDIT_CANON_NOMEM) {
        snprintf(v->why, sizeof(v->why), "out of memory");
        return v->status = AUDIT_ERR_NOMEM;
    }
    if (crc != AUDIT_CANON_OK || strcmp(want, hash) != 0)
        return fv_fail(v, e.id, "event %" PRId64 ": hash does not match its content (altered)", e.id);
    if (v->cp_id && e.id == v->cp_head_id && strcmp(hash, v->cp_hash) != 0)
        return fv_fail(v, e.id, "event %" PRId64 ": hash differs from checkpoint %" PRId64 " (altered)", e.id,
                       v->cp_id);
    memcpy(v->prev, hash, sizeof(v->prev));
    memcpy(v->last_hash, hash, sizeof(v->last_hash));
    v->last_id = e.id;
    v->expect_id = e.id + 1;
    v->events++;
    return AUDIT_OK;
}

int audit_fverify_line(audit_fverify *v, const char *line, size_t len) {
    if (v->status != AUDIT_OK) return v->status;
    v->line++;
    if (len > AUDIT_EXPORT_LINE_MAX)
        return fv_fail(v, v->expect_id, "line %" PRId64 ": longer than %zu bytes", v->line, AUDIT_EXPORT_LINE_MAX);
    if (v->ended) return fv_fail(v, 0, "line %" PRId64 ": text after the end line", v->line);
    json_tokener *tok = json_tokener_new_ex(4);
    if (!tok) {
        snprintf(v->why, sizeof(v->why), "out of memory");
        return v->status = AUDIT_ERR_NOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = len ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    bool whole = o && json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    const char *type = NULL;
    if (!whole || !json_object_is_type(o, json_type_object) || !get_text(o, "type", false, &type)) {
        json_object_put(o);
        return fv_fail(v, v->expect_id, "line %" PRId64 ": not a JSON object with a type (malformed)", v->line);
    }
    int rc;
    if (!v->begun) rc = strcmp(type, "begin") == 0 ? fv_begin(v, o)
                                                   : fv_fail(v, 0, "line 1: an export starts with its begin line");
    else if (strcmp(type, "event") == 0) rc = fv_event(v, o);
    else if (strcmp(type, "end") == 0) rc = fv_end(v, o);
    else rc = fv_fail(v, v->expect_id, "line %" PRId64 ": unknown line type", v->line);
    json_object_put(o);
    return rc;
}

int audit_fverify_finish(audit_fverify *v) {
    if (v->status != AUDIT_OK) return v->status;
    if (v->missing_id) return fv_fail(v, v->missing_id, "%s", v->pending_why);
    if (!v->begun) return fv_fail(v, 0, "empty file: not a nomatron audit export");
    if (!v->ended)
        return fv_fail(v, v->last_id + 1, "the export has no end line: events after event %" PRId64 " missing (truncated)",
                       v->last_id);
    /* The checkpoint's head lies past the export's last event although the
     * export ran to the head: events were removed after the checkpoint. */
    if (v->cp_id && v->through_head && v->cp_head_id > v->last_id && (v->events == 0 || v->cp_head_id >= v->first_id))
        return fv_fail(v, v->last_id + 1,
                       "events after event %" PRId64 " missing: checkpoint %" PRId64 " recorded head event %" PRId64,
                       v->last_id, v->cp_id, v->cp_head_id);
    if (v->events == 0) snprintf(v->why, sizeof(v->why), "0 events verified");
    else if (v->first_id == 1)
        snprintf(v->why, sizeof(v->why), "%" PRId64 " events verified (1..%" PRId64 "), last hash %s", v->events,
                 v->last_id, v->last_hash);
    else
        snprintf(v->why, sizeof(v->why),
                 "%" PRId64 " events verified (%" PRId64 "..%" PRId64 "), last hash %s; anchored at event %" PRId64
                 "'s hash %.16s… (not in the file)",
                 v->events, v->first_id, v->last_id, v->last_hash, v->first_id - 1, v->first_prev);
    return AUDIT_OK;
}

int audit_verify_file(const char *path, audit_fverify *v) {
    audit_fverify_init(v);
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    if (!in) {
        snprintf(v->why, sizeof(v->why), "cannot open %.200s: %s", path, strerror(errno));
        return v->status = AUDIT_ERR_IO;
    }
    /* Bounded line assembly: a line longer than the ceiling is an error,
     * never an unbounded allocation. */
    nm_buf line;
    nm_buf_init(&line, AUDIT_EXPORT_LINE_MAX);
    char chunk[65536];
    size_t n;
    bool too_long = false;
    while (v->status == AUDIT_OK && (n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
        const char *p = chunk, *end = chunk + n;
        while (p < end && v->status == AUDIT_OK) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t seg = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (!too_long && nm_buf_append(&line, p, seg) != NM_BUF_OK) too_long = true;
            if (nl) {
                if (too_long) {
                    v->line++;
                    fv_fail(v, v->expect_id, "line %" PRId64 ": longer than %zu bytes", v->line,
                            AUDIT_EXPORT_LINE_MAX);
                } else {
                    audit_fverify_line(v, line.data ? line.data : "", line.len);
                }
                nm_buf_reset(&line);
                too_long = false;
            }
            p += seg + (nl ? 1 : 0);
        }
    }
    int err = ferror(in) ? errno : 0;
    if (v->status == AUDIT_OK && err) {
        snprintf(v->why, sizeof(v->why), "reading %.200s: %s", path, strerror(err));
        v->status = AUDIT_ERR_IO;
    } else if (v->status == AUDIT_OK && (line.len > 0 || too_long)) {
        /* A last line without its newline: a cut-off file. */
        if (too_long) fv_fail(v, v->expect_id, "line %" PRId64 ": longer than %zu bytes", v->line + 1, AUDIT_EXPORT_LINE_MAX);
        else fv_fail(v, v->expect_id, "line %" PRId64 ": no newline at the end (truncated)", v->line + 1);
    }
    nm_buf_free(&line);
    if (!is_stdin) fclose(in);
    return audit_fverify_finish(v);
}
