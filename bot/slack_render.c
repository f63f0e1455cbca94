/* See slack_render.h. Bodies are json-c trees serialized once; text inside
 * them is assembled in a scratch nm_buf with every outside piece escaped and
 * capped in bytes, so the limits hold by construction. The request message
 * then checks the serialized size and, should the JSON escaping of the plan
 * and detail push it over, renders again with smaller caps. */
#include "slack_render.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "states.h"
#include "str.h"

/* ---- escaping ---- */

static const char REPLACEMENT[] = "\xEF\xBF\xBD";   /* U+FFFD */
static const char ELLIPSIS[] = "\xE2\x80\xA6";      /* … */

/* Escaping flavours: code spans and ``` blocks cannot hold a backtick
 * (it would close them), so there it becomes a quote. */
enum { ESC_TEXT = 0, ESC_CODE = 1 };

/* One input unit (a byte, a character, an invalid byte) and what it becomes. */
typedef struct esc_unit {
    size_t in;
    const char *out;
    size_t outlen;
} esc_unit;

static esc_unit esc_next(const char *p, size_t rem, int mode) {
    const unsigned char *s = (const unsigned char *)p;
    switch (s[0]) {
    case '&': return (esc_unit){1, "&amp;", 5};
    case '<': return (esc_unit){1, "&lt;", 4};
    case '>': return (esc_unit){1, "&gt;", 4};
    case '`':
        if (mode == ESC_CODE) return (esc_unit){1, "'", 1};
        return (esc_unit){1, p, 1};
    case '\n':
    case '\t': return (esc_unit){1, p, 1};
    default: break;
    }
    if (s[0] < 0x20 || s[0] == 0x7F) return (esc_unit){1, "", 0};
    if (s[0] < 0x80) return (esc_unit){1, p, 1};
    size_t n = nm_utf8_seq(s, rem);
    if (!n) return (esc_unit){1, REPLACEMENT, 3};
    return (esc_unit){n, p, n};
}

/* Bytes that stay as they are in every mode: printable ASCII but & < > and
 * the backtick, plus newline and tab. Runs of them are taken in one step. */
static const unsigned char esc_plain[256] = {
    ['\t'] = 1, ['\n'] = 1,
    [' '] = 1, ['!'] = 1, ['"'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    [':'] = 1, [';'] = 1, ['='] = 1, ['?'] = 1, ['@'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['['] = 1, ['\\'] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1,
};

static const char *plain_run(const char *p, const char *end) {
    while (p < end && esc_plain[(unsigned char)*p]) p++;
    return p;
}

/* The escaper behind slack_escape*, over len bytes of text: at most max
 * bytes out (0 = no cap); when it cuts, "…" ends the text if `ellipsis`.
 * Returns true when it cut. */
static bool escape_len(nm_buf *out, const char *text, size_t len, size_t max, int mode, bool ellipsis) {
    if (!text) return false;
    const char *end = text + len;
    size_t total = 0;
    bool changed = false;   /* some unit is written otherwise than it is */
    for (const char *p = text; p < end;) {
        const char *q = plain_run(p, end);
        total += (size_t)(q - p);
        if ((p = q) == end) break;
        esc_unit u = esc_next(p, (size_t)(end - p), mode);
        total += u.outlen;
        changed |= u.out != p;
        p += u.in;
    }
    bool cut = max && total > max;
    if (!cut && !changed) return nm_buf_append(out, text, len) != NM_BUF_OK;
    size_t budget = !cut ? total : ellipsis ? (max >= 3 ? max - 3 : 0) : max;
    size_t used = 0;
    const char *p = text, *run = text;   /* [run, p): units that stay as they are, not written yet */
    while (p < end) {
        const char *q = plain_run(p, end);
        if (used + (size_t)(q - p) > budget) {   /* single bytes: the cut may fall anywhere in the run */
            p += budget - used;
            break;
        }
        used += (size_t)(q - p);
        p = q;
        if (p == end) break;
        esc_unit u = esc_next(p, (size_t)(end - p), mode);
        if (used + u.outlen > budget) break;
        if (u.out != p) {
            /* At out's ceiling: stop, rather than skip this unit and write later ones. */
            if (p > run && nm_buf_append(out, run, (size_t)(p - run)) != NM_BUF_OK) return true;
            if (nm_buf_append(out, u.out, u.outlen) != NM_BUF_OK) return true;
            run = p + u.in;
        }
        used += u.outlen;
        p += u.in;
    }
    if (p > run && nm_buf_append(out, run, (size_t)(p - run)) != NM_BUF_OK) return true;
    if (cut && ellipsis && max >= 3) nm_buf_append(out, ELLIPSIS, 3);
    return cut;
}

static bool escape_into(nm_buf *out, const char *text, size_t max, int mode, bool ellipsis) {
    return text ? escape_len(out, text, strlen(text), max, mode, ellipsis) : false;
}

void slack_escape(nm_buf *out, const char *text) { escape_into(out, text, 0, ESC_TEXT, true); }

bool slack_escape_n(nm_buf *out, const char *text, size_t max) {
    if (!max) return text && *text;
    return escape_into(out, text, max, ESC_TEXT, true);
}

void slack_identity(nm_buf *out, const char *identity) {
    if (!identity || !*identity) {
        nm_buf_appends(out, "someone");
        return;
    }
    if (strncmp(identity, "slack:", 6) == 0 && slack_id_valid(identity + 6)) {
        nm_buf_printf(out, "<@%s>", identity + 6);
        return;
    }
    escape_into(out, identity, 200, ESC_TEXT, true);
}

/* ---- progress ---- */

static int64_t nonneg(int64_t n) { return n < 0 ? 0 : n; }

void slack_progress_line(const slack_progress *p, nm_buf *out) {
    int64_t healthy = nonneg(p->healthy), desired = nonneg(p->desired), unhealthy = nonneg(p->unhealthy);
    int64_t cd = nonneg(p->canaries_desired), ch = nonneg(p->canaries_healthy);
    /* Rounded down, so the bar is full only once every allocation is healthy;
     * nothing desired yet (counts not in) draws an empty bar. */
    int filled = desired <= 0 ? 0 : healthy >= desired ? 5 : (int)(healthy * 5 / desired);
    for (int i = 0; i < 5; i++) nm_buf_appends(out, i < filled ? "\xE2\x96\xB0" : "\xE2\x96\xB1");   /* ▰ ▱ */
    nm_buf_printf(out, " %" PRId64 "/%" PRId64 " healthy", healthy, desired);
    if (cd > 0 && !p->promoted) {
        if (ch >= cd)
            nm_buf_printf(out, " \xC2\xB7 %" PRId64 " %s awaiting promotion", cd, cd == 1 ? "canary" : "canaries");
        else
            nm_buf_printf(out, " \xC2\xB7 %" PRId64 "/%" PRId64 " %s healthy", ch, cd, cd == 1 ? "canary" : "canaries");
    }
    if (unhealthy > 0) nm_buf_printf(out, " \xC2\xB7 %" PRId64 " unhealthy", unhealthy);
}

/* ---- the request view ---- */

void slack_req_view_init(slack_req_view *v, int64_t id) {
    memset(v, 0, sizeof(*v));
    v->id = id;
    v->job_version = -1;
}

int slack_req_view_add_approver(slack_req_view *v, const char *identity) {
    if (!identity || !*identity || strlen(identity) >= SLACK_VIEW_IDENTITY_LEN) return 0;
    for (size_t i = 0; i < v->n_approvers; i++)
        if (strcmp(v->approvers[i], identity) == 0) return 0;
    if (v->n_approvers >= SLACK_VIEW_APPROVERS) return 0;
    snprintf(v->approvers[v->n_approvers++], SLACK_VIEW_IDENTITY_LEN, "%s", identity);
    return 1;
}

/* A string member: 1 and *out when present, 0 when absent or null, -1 when
 * not a string or holding a NUL byte. */
static int ev_str(const json_object *ev, const char *key, const char **out) {
    json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(ev, key, &v) || !v) return 0;
    if (!json_object_is_type(v, json_type_string)) return -1;
    *out = json_object_get_string(v);
    if (strlen(*out) != (size_t)json_object_get_string_len(v)) return -1;
    return 1;
}

/* Copies a name; false when it does not fit (names are never cut: a cut job
 * or environment name would name another one). */
static bool put_name(char *dst, size_t dstlen, const char *s) {
    size_t n = strlen(s);
    if (n >= dstlen) return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* Copies display text, cut at a UTF-8 boundary when longer. */
static void put_text(char *dst, size_t dstlen, const char *s) {
    size_t n = strlen(s);
    if (n >= dstlen) {
        n = dstlen - 1;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int ev_progress(const json_object *o, slack_progress *p) {
    static const char *keys[] = {"healthy",          "desired",         "placed",          "unhealthy",
                                 "canaries_desired", "canaries_placed", "canaries_healthy"};
    int64_t *dst[] = {&p->healthy,          &p->desired,         &p->placed,          &p->unhealthy,
                      &p->canaries_desired, &p->canaries_placed, &p->canaries_healthy};
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, keys[i], &v) || !v) continue;
        if (!json_object_is_type(v, json_type_int)) return -1;
        int64_t n = json_object_get_int64(v);
        if (n < 0 || n > 1000000000) return -1;   /* counts of allocations: anything else is not Nomad's */
        *dst[i] = n;
    }
    json_object *v = NULL;
    if (json_object_object_get_ex(o, "promoted", &v) && v) {
        if (!json_object_is_type(v, json_type_boolean)) return -1;
        p->promoted = json_object_get_boolean(v) != 0;
    }
    return 0;
}

/* Whether the message would read differently: rendered both ways and
 * compared, so this can never drift from what slack_req_message shows. */
static bool view_shown_equal(const slack_req_view *a, const slack_req_view *b) {
    nm_buf ra, rb;
    nm_buf_init(&ra, 0);
    nm_buf_init(&rb, 0);
    bool same = slack_req_message(a, "C", NULL, &ra) == SLACK_PROTO_OK &&
                slack_req_message(b, "C", NULL, &rb) == SLACK_PROTO_OK && ra.len == rb.len &&
                memcmp(ra.data, rb.data, ra.len) == 0;
    nm_buf_free(&ra);
    nm_buf_free(&rb);
    return same;
}

static bool is_final(const char *state) {
    enum req_state s;
    return req_state_parse(state, &s) && req_state_terminal(s);
}

int slack_req_view_apply(slack_req_view *v, const json_object *ev) {
    if (!v || !ev || !json_object_is_type(ev, json_type_object)) return -1;
    const char *type;
    if (ev_str(ev, "type", &type) != 1 || strcmp(type, "request") != 0) return -1;
    json_object *req = NULL;
    if (!json_object_object_get_ex(ev, "req", &req) || !req || !json_object_is_type(req, json_type_int)) return -1;
    if (json_object_get_int64(req) != v->id) return 0;

    /* Read and check everything before touching *v: a bad event changes nothing. */
    const char *state, *phase, *reason, *kind, *job, *env, *version, *detail;
    if (ev_str(ev, "state", &state) != 1 || ev_str(ev, "phase", &phase) < 0 || ev_str(ev, "reason", &reason) < 0 ||
        ev_str(ev, "kind", &kind) < 0 || ev_str(ev, "job", &job) < 0 || ev_str(ev, "env", &env) < 0 ||
        ev_str(ev, "version", &version) < 0 || ev_str(ev, "detail", &detail) < 0)
        return -1;
    enum req_state st;
    if (!req_state_parse(state, &st)) return -1;
    int64_t job_version = v->job_version;
    json_object *jv = NULL;
    if (json_object_object_get_ex(ev, "job_version", &jv) && jv) {
        if (!json_object_is_type(jv, json_type_int) || json_object_get_int64(jv) < 0) return -1;
        job_version = json_object_get_int64(jv);
    }
    slack_progress progress;
    bool has_progress = false;
    json_object *po = NULL;
    if (json_object_object_get_ex(ev, "progress", &po) && po) {
        if (!json_object_is_type(po, json_type_object) || ev_progress(po, &progress) != 0) return -1;
        has_progress = true;
    }

    /* A final state is never reopened: a late or redelivered event changes nothing. */
    if (is_final(v->state)) return 0;

    slack_req_view n = *v;
    if (!put_name(n.state, sizeof(n.state), state) || !put_name(n.phase, sizeof(n.phase), phase ? phase : "") ||
        !put_name(n.reason, sizeof(n.reason), reason ? reason : "") ||
        (kind && !put_name(n.kind, sizeof(n.kind), kind)) || (job && !put_name(n.job, sizeof(n.job), job)) ||
        (env && !put_name(n.env, sizeof(n.env), env)) ||
        (version && !put_name(n.version, sizeof(n.version), version)))
        return -1;
    n.job_version = job_version;
    if (st == REQ_PENDING_APPROVAL) {
        /* Waiting for approval, the detail is the plan people approve (or why there is none). */
        if (detail) put_text(n.plan, sizeof(n.plan), detail);
        n.detail[0] = '\0';
    } else {
        put_text(n.detail, sizeof(n.detail), detail ? detail : "");
    }
    if (has_progress) {
        n.progress = progress;
        n.has_progress = true;
    }
    bool same = view_shown_equal(v, &n);
    *v = n;
    return same ? 0 : 1;
}

/* ---- building bodies ---- */

/* A body under construction: the json-c tree and a scratch buffer for text. */
typedef struct body {
    json_object *root, *blocks;
    nm_buf t;
    bool nomem;
} body;

static void add_str(body *b, json_object *o, const char *key, const char *s) {
    json_object *v = json_object_new_string(s);
    if (!v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        b->nomem = true;
    }
}

static void add_bool(body *b, json_object *o, const char *key, bool val) {
    json_object *v = json_object_new_boolean(val);
    if (!v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        b->nomem = true;
    }
}

static void add_obj(body *b, json_object *o, const char *key, json_object *v) {
    if (!v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        b->nomem = true;
    }
}

static void push(body *b, json_object *arr, json_object *v) {
    if (!v || json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        b->nomem = true;
    }
}

/* {"type":type,"text":text} */
static json_object *text_obj(body *b, const char *type, const char *text) {
    json_object *o = json_object_new_object();
    if (!o) {
        b->nomem = true;
        return NULL;
    }
    add_str(b, o, "type", type);
    add_str(b, o, "text", text);
    return o;
}

/* Cuts b->t to at most max bytes without splitting a character, an entity
 * (&lt;) or a mention (<@U…>), ending it with "…". The escapers keep their
 * own caps, so this only guards the sum. */
static void safe_cut(nm_buf *t, size_t max) {
    if (t->len <= max || max < 3) return;
    size_t n = max - 3;
    while (n && ((unsigned char)t->data[n] & 0xC0) == 0x80) n--;
    for (size_t i = n; i-- > 0;) {
        if (t->data[i] == '>' || t->data[i] == ';') break;
        if (t->data[i] == '<' || t->data[i] == '&') {
            n = i;
            break;
        }
    }
    t->len = n;
    t->data[n] = '\0';
    nm_buf_append(t, ELLIPSIS, 3);
}

/* Appends a mrkdwn section holding b->t (cut to SLACK_SECTION_MAX), then empties b->t. */
static void section_from_scratch(body *b) {
    if (b->t.len > SLACK_SECTION_MAX) safe_cut(&b->t, SLACK_SECTION_MAX);
    if (json_object_array_length(b->blocks) >= SLACK_BLOCKS_MAX) goto done;
    json_object *s = json_object_new_object();
    if (!s) {
        b->nomem = true;
        goto done;
    }
    add_str(b, s, "type", "section");
    add_obj(b, s, "text", text_obj(b, "mrkdwn", b->t.data ? b->t.data : ""));
    push(b, b->blocks, s);
done:
    nm_buf_reset(&b->t);
}

/* Caps of one rendering attempt (bytes of escaped text). */
typedef struct msg_caps {
    size_t plan, detail;
    size_t approvers;   /* how many approvers are named */
} msg_caps;

static const char *kind_title(const char *kind) {
    if (strcmp(kind, "rollback") == 0) return "Rollback";
    if (strcmp(kind, "promote") == 0) return "Promote";
    return "Deploy";
}

/* "*Deploy* `web` *v1.4.2* → *staging* · D-12" and its variants. */
static void summary_line(const slack_req_view *v, nm_buf *t) {
    nm_buf_printf(t, "*%s* `", kind_title(v->kind));
    escape_into(t, v->job, 200, ESC_CODE, true);
    nm_buf_appends(t, "`");
    if (strcmp(v->kind, "rollback") == 0) {
        nm_buf_appends(t, " in *");
        escape_into(t, v->env, 200, ESC_TEXT, true);
        nm_buf_appends(t, "* to ");
        if (v->version[0]) {
            nm_buf_appends(t, "*");
            escape_into(t, v->version, 300, ESC_TEXT, true);
            nm_buf_appends(t, "*");
        } else {
            nm_buf_appends(t, "the previous stable version");
        }
    } else {
        if (v->version[0]) {
            nm_buf_appends(t, " *");
            escape_into(t, v->version, 300, ESC_TEXT, true);
            nm_buf_appends(t, "*");
        }
        nm_buf_appends(t, " ");
        if (strcmp(v->kind, "promote") == 0 && v->from_env[0]) {
            nm_buf_appends(t, "*");
            escape_into(t, v->from_env, 200, ESC_TEXT, true);
            nm_buf_appends(t, "* ");
        }
        nm_buf_appends(t, "\xE2\x86\x92 *");   /* → */
        escape_into(t, v->env, 200, ESC_TEXT, true);
        nm_buf_appends(t, "*");
    }
    nm_buf_printf(t, " \xC2\xB7 D-%" PRId64, v->id);
}

static void state_words(const slack_req_view *v, nm_buf *t, size_t detail_cap) {
    const char *s = v->state;
    bool show_detail = true;
    if (!*s) nm_buf_appends(t, "\xF0\x9F\x93\x9D *Requested*");   /* 📝 */
    else if (!strcmp(s, "pending_approval")) nm_buf_appends(t, "\xE2\x8F\xB3 *Waiting for approval*");   /* ⏳ */
    else if (!strcmp(s, "approved")) nm_buf_appends(t, "\xF0\x9F\x91\x8D *Approved*");   /* 👍 */
    else if (!strcmp(s, "queued")) nm_buf_appends(t, "\xF0\x9F\x95\x92 *Queued*");   /* 🕒 */
    else if (!strcmp(s, "running")) {
        nm_buf_appends(t, "\xF0\x9F\x9A\x80 *Running*");   /* 🚀 */
        if (v->phase[0]) {
            nm_buf_appends(t, " (");
            escape_into(t, v->phase, 60, ESC_TEXT, true);
            nm_buf_appends(t, ")");
        }
        if (v->job_version >= 0) nm_buf_printf(t, " \xC2\xB7 job version %" PRId64, v->job_version);
        if (v->has_progress) {
            nm_buf_appends(t, "\n");
            slack_progress_line(&v->progress, t);
            show_detail = false;   /* the detail of a running event is the same counts in words */
        }
    } else if (!strcmp(s, "succeeded")) {
        nm_buf_appends(t, "\xE2\x9C\x85 *Succeeded*: `");   /* ✅ */
        escape_into(t, v->job, 200, ESC_CODE, true);
        if (!strcmp(v->kind, "rollback")) nm_buf_appends(t, "` rolled back in *");
        else {
            nm_buf_appends(t, "` ");
            escape_into(t, v->version, 300, ESC_TEXT, true);
            nm_buf_appends(t, " is live in *");
        }
        escape_into(t, v->env, 200, ESC_TEXT, true);
        nm_buf_appends(t, "*");
        if (v->job_version >= 0) nm_buf_printf(t, " (job version %" PRId64 ")", v->job_version);
        show_detail = false;   /* the final counts, already said */
    } else if (!strcmp(s, "failed")) nm_buf_appends(t, "\xE2\x9D\x8C *Failed*");   /* ❌ */
    else if (!strcmp(s, "rejected")) nm_buf_appends(t, "\xF0\x9F\x9A\xAB *Rejected*");   /* 🚫 */
    else if (!strcmp(s, "expired")) nm_buf_appends(t, "\xE2\x8C\x9B *Expired*");   /* ⌛ */
    else if (!strcmp(s, "cancelled")) nm_buf_appends(t, "\xE2\x9C\x96\xEF\xB8\x8F *Cancelled*");   /* ✖️ */
    else {
        nm_buf_appends(t, "*");
        escape_into(t, s, 60, ESC_TEXT, true);
        nm_buf_appends(t, "*");
    }
    if (v->reason[0] && strcmp(s, "running") != 0) {
        nm_buf_appends(t, ": ");
        escape_into(t, v->reason, 60, ESC_TEXT, true);
    }
    if (show_detail && v->detail[0] && detail_cap) {
        nm_buf_appends(t, " \xE2\x80\x94 ");   /* — */
        escape_into(t, v->detail, detail_cap, ESC_TEXT, true);
    }
}

/* {"type":"button",...,"confirm":{...}} for Approve / Reject (A8). */
static json_object *button(body *b, const slack_req_view *v, bool approve, const char *value) {
    json_object *btn = json_object_new_object();
    json_object *confirm = json_object_new_object();
    if (!btn || !confirm) {
        json_object_put(btn);
        json_object_put(confirm);
        b->nomem = true;
        return NULL;
    }
    add_str(b, btn, "type", "button");
    add_str(b, btn, "action_id", approve ? SLACK_ACTION_APPROVE : SLACK_ACTION_REJECT);
    add_str(b, btn, "value", value);
    add_str(b, btn, "style", approve ? "primary" : "danger");
    add_obj(b, btn, "text", text_obj(b, "plain_text", approve ? "Approve" : "Reject"));

    char title[64];
    snprintf(title, sizeof(title), "%s %s?", approve ? "Approve" : "Reject", value);
    add_obj(b, confirm, "title", text_obj(b, "plain_text", title));
    /* Confirm text <= 300 characters: names capped well under it. */
    nm_buf_reset(&b->t);
    if (approve) {
        nm_buf_printf(&b->t, "This lets the %s of `", strcmp(v->kind, "rollback") == 0  ? "rollback"
                                                       : strcmp(v->kind, "promote") == 0 ? "promote"
                                                                                          : "deploy");
        escape_into(&b->t, v->job, 60, ESC_CODE, true);
        nm_buf_appends(&b->t, "`");
        if (v->version[0]) {
            nm_buf_appends(&b->t, " ");
            escape_into(&b->t, v->version, 80, ESC_TEXT, true);
        }
        nm_buf_appends(&b->t, strcmp(v->kind, "rollback") == 0 ? " in " : " to ");
        escape_into(&b->t, v->env, 60, ESC_TEXT, true);
        nm_buf_appends(&b->t, " go ahead once approvals are complete.");
    } else {
        nm_buf_appends(&b->t, "The request will be closed.");
    }
    add_obj(b, confirm, "text", text_obj(b, "mrkdwn", b->t.data ? b->t.data : ""));
    nm_buf_reset(&b->t);
    add_obj(b, confirm, "confirm", text_obj(b, "plain_text", approve ? "Approve" : "Reject"));
    add_obj(b, confirm, "deny", text_obj(b, "plain_text", "Cancel"));
    if (!approve) add_str(b, confirm, "style", "danger");
    add_obj(b, btn, "confirm", confirm);
    return btn;
}

/* A block {"type": type, "elements": []} whose elements the caller fills
 * (*elements is borrowed from the block); NULL, with nomem set, when out of memory. */
static json_object *block_with_elements(body *b, const char *type, json_object **elements) {
    json_object *blk = json_object_new_object(), *els = json_object_new_array();
    if (!blk || !els) {
        json_object_put(blk);
        json_object_put(els);
        b->nomem = true;
        return NULL;
    }
    add_str(b, blk, "type", type);
    *elements = els;
    return blk;
}

static void actions_block(body *b, const slack_req_view *v) {
    char value[32], block_id[64];
    snprintf(value, sizeof(value), "D-%" PRId64, v->id);
    /* block_id changes with each update (A8), so a stale client view cannot match it. */
    snprintf(block_id, sizeof(block_id), "req-%" PRId64 "-actions-%d", v->id, v->given);
    json_object *elements, *blk = block_with_elements(b, "actions", &elements);
    if (!blk) return;
    add_str(b, blk, "block_id", block_id);
    push(b, elements, button(b, v, true, value));
    push(b, elements, button(b, v, false, value));
    add_obj(b, blk, "elements", elements);
    push(b, b->blocks, blk);
}

static void context_block(body *b, const char *mrkdwn) {
    json_object *elements, *blk = block_with_elements(b, "context", &elements);
    if (!blk) return;
    push(b, elements, text_obj(b, "mrkdwn", mrkdwn));
    add_obj(b, blk, "elements", elements);
    push(b, b->blocks, blk);
}

/* The fallback text (notifications, screen readers): one plain line. */
static void fallback_text(const slack_req_view *v, nm_buf *t) {
    nm_buf_printf(t, "%s ", kind_title(v->kind));
    escape_into(t, v->job, 200, ESC_TEXT, true);
    if (v->version[0]) {
        nm_buf_appends(t, " ");
        escape_into(t, v->version, 300, ESC_TEXT, true);
    }
    nm_buf_appends(t, strcmp(v->kind, "rollback") == 0 ? " in " : " \xE2\x86\x92 ");
    escape_into(t, v->env, 200, ESC_TEXT, true);
    nm_buf_printf(t, " (D-%" PRId64 "): ", v->id);
    if (!strcmp(v->state, "pending_approval")) nm_buf_printf(t, "waiting for approval %d/%d", v->given, v->required);
    else if (v->state[0]) {
        for (const char *p = v->state; *p && p < v->state + 24; p++) nm_buf_append(t, *p == '_' ? " " : p, 1);
        if (v->reason[0]) {
            nm_buf_appends(t, " (");
            escape_into(t, v->reason, 60, ESC_TEXT, true);
            nm_buf_appends(t, ")");
        }
    } else nm_buf_appends(t, "requested");
}

static void body_free(body *b) {
    json_object_put(b->root);
    nm_buf_free(&b->t);
}

static int body_start(body *b, const char *channel, const char *ts) {
    memset(b, 0, sizeof(*b));
    nm_buf_init(&b->t, 0);
    b->root = json_object_new_object();
    if (!b->root) return SLACK_PROTO_ERR_NOMEM;
    add_str(b, b->root, "channel", channel);
    if (ts) add_str(b, b->root, "ts", ts);
    return SLACK_PROTO_OK;
}

/* One rendering of the request message at the given caps. */
static int build_req(const slack_req_view *v, const char *channel, const char *ts, const msg_caps *caps, body *b) {
    int rc = body_start(b, channel, ts);
    if (rc != SLACK_PROTO_OK) return rc;
    b->blocks = json_object_new_array();
    if (!b->blocks) return SLACK_PROTO_ERR_NOMEM;

    fallback_text(v, &b->t);
    if (b->t.len > SLACK_TEXT_MAX) safe_cut(&b->t, SLACK_TEXT_MAX);
    add_str(b, b->root, "text", b->t.data ? b->t.data : "");
    nm_buf_reset(&b->t);

    /* 1. what, where, who, why */
    summary_line(v, &b->t);
    nm_buf_appends(&b->t, "\nRequested by ");
    slack_identity(&b->t, v->requester);
    if (v->req_reason[0]) {
        nm_buf_appends(&b->t, " \xC2\xB7 reason: ");
        escape_into(&b->t, v->req_reason, 600, ESC_TEXT, true);
    }
    section_from_scratch(b);

    /* 2. break-glass, flagged on its own line */
    if (v->break_glass) {
        nm_buf_appends(&b->t, "\xF0\x9F\x9A\xA8 *Break-glass*");   /* 🚨 */
        if (v->emergency[0]) {
            nm_buf_appends(&b->t, ": ");
            escape_into(&b->t, v->emergency, 700, ESC_TEXT, true);
        }
        section_from_scratch(b);
    }

    /* 3. approvals */
    if (v->required <= 0) {
        nm_buf_appends(&b->t, "No approval needed");
    } else {
        nm_buf_printf(&b->t, "*Approvals %d/%d:* ", v->given < 0 ? 0 : v->given, v->required);
        size_t n = v->n_approvers < SLACK_VIEW_APPROVERS ? v->n_approvers : SLACK_VIEW_APPROVERS;
        size_t shown = n < caps->approvers ? n : caps->approvers;
        for (size_t i = 0; i < shown; i++) {
            if (i) nm_buf_appends(&b->t, ", ");
            slack_identity(&b->t, v->approvers[i]);
        }
        if (n > shown) nm_buf_printf(&b->t, " and %zu more", n - shown);
        if (!n) nm_buf_appends(&b->t, "none yet");
    }
    section_from_scratch(b);

    /* 4. the plan people approve, preformatted; cut with a pointer to the whole trail */
    if (v->plan[0] && caps->plan) {
        char pointer[80];
        snprintf(pointer, sizeof(pointer), "\n\xE2\x80\xA6 truncated: `/nomatron audit D-%" PRId64 "`", v->id);
        size_t room = SLACK_SECTION_MAX - 40 - strlen(pointer);
        size_t cap = caps->plan < room ? caps->plan : room;
        nm_buf_appends(&b->t, "*Plan*\n```");
        bool cut = escape_into(&b->t, v->plan, cap, ESC_CODE, true);
        nm_buf_appends(&b->t, "```");
        if (cut) nm_buf_appends(&b->t, pointer);
        section_from_scratch(b);
    } else if (v->plan[0]) {
        nm_buf_printf(&b->t, "*Plan*: too long to show here, see `/nomatron audit D-%" PRId64 "`", v->id);
        section_from_scratch(b);
    }

    /* 5. where it stands: progress while running, the outcome once final */
    state_words(v, &b->t, caps->detail);
    section_from_scratch(b);

    /* 6. buttons while people can still decide */
    if (!strcmp(v->state, "pending_approval")) actions_block(b, v);

    char ctx[96];
    snprintf(ctx, sizeof(ctx), "Audit trail: `/nomatron audit D-%" PRId64 "`", v->id);
    context_block(b, ctx);

    add_obj(b, b->root, "blocks", b->blocks);
    b->blocks = NULL;
    add_bool(b, b->root, "link_names", false);
    if (!ts) {
        add_bool(b, b->root, "unfurl_links", false);
        add_bool(b, b->root, "unfurl_media", false);
    }
    return b->nomem ? SLACK_PROTO_ERR_NOMEM : SLACK_PROTO_OK;
}

static const int JSON_FLAGS = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

static int append_json(json_object *root, nm_buf *out) {
    size_t n = 0;
    const char *s = json_object_to_json_string_length(root, JSON_FLAGS, &n);
    if (!s) return SLACK_PROTO_ERR_NOMEM;
    int rc = nm_buf_append(out, s, n);
    return rc == NM_BUF_OK ? SLACK_PROTO_OK : rc == NM_BUF_TOO_LARGE ? SLACK_PROTO_ERR_TOO_LARGE : SLACK_PROTO_ERR_NOMEM;
}

static bool channel_ok(const char *s) { return s && *s && strlen(s) < 256; }

int slack_req_message(const slack_req_view *v, const char *channel, const char *ts, nm_buf *out) {
    if (!v || !channel_ok(channel) || (ts && strlen(ts) >= 256)) return SLACK_PROTO_ERR_INVALID;
    msg_caps caps = {.plan = SLACK_SECTION_MAX, .detail = 1500, .approvers = SLACK_VIEW_APPROVERS};
    /* The caps above fit 16 KiB unless JSON escaping of quotes, backslashes and
     * newlines in the plan or detail doubles them: then shrink by the excess. */
    for (int attempt = 0; attempt < 8; attempt++) {
        body b;
        int rc = build_req(v, channel, ts, &caps, &b);
        size_t n = 0;
        const char *s = rc == SLACK_PROTO_OK ? json_object_to_json_string_length(b.root, JSON_FLAGS, &n) : NULL;
        if (rc == SLACK_PROTO_OK && !s) rc = SLACK_PROTO_ERR_NOMEM;
        if (rc != SLACK_PROTO_OK) {
            body_free(&b);
            return rc;
        }
        if (n <= SLACK_BODY_MAX) {
            int arc = nm_buf_append(out, s, n);
            body_free(&b);
            return arc == NM_BUF_OK ? SLACK_PROTO_OK : arc == NM_BUF_TOO_LARGE ? SLACK_PROTO_ERR_TOO_LARGE : SLACK_PROTO_ERR_NOMEM;
        }
        body_free(&b);
        size_t excess = n - SLACK_BODY_MAX + 64;
        if (caps.plan > 0) caps.plan = caps.plan > excess ? caps.plan - excess : 0;
        else if (caps.detail > 0) caps.detail = caps.detail > excess ? caps.detail - excess : 0;
        else if (caps.approvers > 0) caps.approvers = caps.approvers > 4 ? 4 : 0;
        else break;
    }
    /* Unreachable with the struct's bounds; still, never fail: the fallback line alone. */
    body b;
    int rc = body_start(&b, channel, ts);
    if (rc == SLACK_PROTO_OK) {
        fallback_text(v, &b.t);
        if (b.t.len > 1000) safe_cut(&b.t, 1000);
        add_str(&b, b.root, "text", b.t.data ? b.t.data : "");
        rc = b.nomem ? SLACK_PROTO_ERR_NOMEM : append_json(b.root, out);
    }
    body_free(&b);
    return rc;
}

/* A console answer as message text: escaped, in ``` when preformatted, cut
 * at SLACK_TEXT_MAX with a marker. Appends to t. */
static void answer_text(nm_buf *t, const char *text, bool preformatted) {
    static const char marker[] = "\n\xE2\x80\xA6 (truncated)";
    const char *fence = preformatted ? "```" : "";
    size_t fences = 2 * strlen(fence), start = t->len;
    /* Console answers end in a newline; inside a message it is only a blank line. */
    size_t len = text ? strlen(text) : 0;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
    int mode = preformatted ? ESC_CODE : ESC_TEXT;
    nm_buf_appends(t, fence);
    bool cut = escape_len(t, text, len, SLACK_TEXT_MAX - fences, mode, false);
    if (cut) {
        /* Again, leaving room for the marker after the closing fence. */
        nm_buf_truncate(t, start);
        nm_buf_appends(t, fence);
        escape_len(t, text, len, SLACK_TEXT_MAX - fences - (sizeof(marker) - 1), mode, false);
    }
    nm_buf_appends(t, fence);
    if (cut) nm_buf_appends(t, marker);
}

int slack_text_body(const char *channel, const char *user, const char *thread_ts, const char *text,
                    bool preformatted, nm_buf *out) {
    if (!channel_ok(channel) || (user && !channel_ok(user)) || (thread_ts && !channel_ok(thread_ts)))
        return SLACK_PROTO_ERR_INVALID;
    body b;
    int rc = body_start(&b, channel, NULL);
    if (rc != SLACK_PROTO_OK) {
        body_free(&b);
        return rc;
    }
    if (user) add_str(&b, b.root, "user", user);
    if (thread_ts) add_str(&b, b.root, "thread_ts", thread_ts);
    answer_text(&b.t, text, preformatted);
    add_str(&b, b.root, "text", b.t.data ? b.t.data : "");
    add_bool(&b, b.root, "link_names", false);
    if (!user) {
        add_bool(&b, b.root, "unfurl_links", false);
        add_bool(&b, b.root, "unfurl_media", false);
    }
    rc = b.nomem ? SLACK_PROTO_ERR_NOMEM : append_json(b.root, out);
    body_free(&b);
    return rc;
}

int slack_answer_payload(const char *text, bool preformatted, nm_buf *out) {
    /* Built by hand: it answers most commands, at the rate they come. */
    nm_buf t;
    nm_buf_init(&t, 0);
    answer_text(&t, text, preformatted);
    size_t start = out->len;
    int rc = nm_buf_appends(out, "{\"response_type\":\"ephemeral\",\"text\":");
    if (rc == NM_BUF_OK) rc = nm_buf_append_json_str(out, t.data ? t.data : "", t.len);
    if (rc == NM_BUF_OK) rc = nm_buf_append(out, "}", 1);
    nm_buf_free(&t);
    if (rc == NM_BUF_OK) return SLACK_PROTO_OK;
    nm_buf_truncate(out, start);
    return rc == NM_BUF_TOO_LARGE ? SLACK_PROTO_ERR_TOO_LARGE : SLACK_PROTO_ERR_NOMEM;
}
