/* nomad-sim: routes, query parameters, blocking queries and status codes
 * (shared/reference/nomad-api.md §1, §3). */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT "text/plain; charset=utf-8"
#define JSON "application/json"
#define NOT_IMPLEMENTED "nomad-sim: this Nomad endpoint is not simulated"

void sim_response_init(sim_response *r) {
    memset(r, 0, sizeof(*r));
    nm_buf_init(&r->body, 0);
}

void sim_response_free(sim_response *r) { nm_buf_free(&r->body); }

/* ---------- Go's time.ParseDuration ---------- */

int sim_parse_duration_ms(const char *s, int64_t *ms) {
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
    };
    bool neg = false;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (!*s) return -1;
    double total = 0;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.') return -1;
        const char *num = s;
        bool digits = false;
        while (isdigit((unsigned char)*s)) s++, digits = true;
        if (*s == '.') {
            s++;
            while (isdigit((unsigned char)*s)) s++, digits = true;
        }
        if (!digits) return -1;
        char nb[64];
        size_t nl = (size_t)(s - num);
        if (nl >= sizeof(nb)) return -1;
        memcpy(nb, num, nl);
        nb[nl] = '\0';
        double v = strtod(nb, NULL);
        size_t best = 0, blen = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, ul) == 0 && ul > blen) best = i, blen = ul;
        }
        if (!blen) return -1;   /* missing or unknown unit */
        s += blen;
        total += v * units[best].ns;
        if (total > 9.2e18) return -1;   /* Go: invalid duration (overflow) */
    }
    int64_t r = (int64_t)(total / 1e6);
    *ms = neg ? -r : r;
    return 0;
}

/* ---------- test control ---------- */

int sim_ctl_init(sim_ctl *ctl, uint64_t seed) {
    memset(ctl, 0, sizeof(*ctl));
    ctl->rng = seed ? seed : 0x2545F4914F6CDD1DULL;
    ctl->speed = 1;
    ctl->log = calloc(SIM_LOG_CAP, sizeof(*ctl->log));
    return ctl->log ? 0 : -1;
}

static void tokens_free(sim_ctl *ctl) {
    for (size_t i = 0; i < ctl->n_tokens; i++) {
        sim_acl_token *t = &ctl->tokens[i];
        free(t->secret);
        free(t->accessor);
        free(t->name);
        free(t->type);
        json_object_put(t->namespaces);
        json_object_put(t->policies);
    }
    free(ctl->tokens);
    ctl->tokens = NULL;
    ctl->n_tokens = 0;
}

void sim_ctl_free(sim_ctl *ctl) {
    tokens_free(ctl);
    free(ctl->log);
    ctl->log = NULL;
}

static const char *ostr(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

int sim_ctl_load_acl(sim_ctl *ctl, const char *json, size_t len, char *err, size_t errlen) {
    json_tokener *tok = json_tokener_new();
    if (!tok) return snprintf(err, errlen, "out of memory"), -1;
    json_object *arr = json_tokener_parse_ex(tok, json, (int)(len > (size_t)INT32_MAX ? INT32_MAX : len));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!arr || jerr != json_tokener_success || !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        snprintf(err, errlen, "ACL tokens file must be a JSON array of tokens (%s)", json_tokener_error_desc(jerr));
        return -1;
    }
    size_t n = json_object_array_length(arr);
    if (n > SIM_MAX_TOKENS) {
        json_object_put(arr);
        snprintf(err, errlen, "ACL tokens file: at most %d tokens", SIM_MAX_TOKENS);
        return -1;
    }
    tokens_free(ctl);
    ctl->tokens = calloc(n ? n : 1, sizeof(*ctl->tokens));
    if (!ctl->tokens) {
        json_object_put(arr);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *t = json_object_array_get_idx(arr, i);
        const char *secret = ostr(t, "SecretID"), *type = ostr(t, "Type");
        json_object *nsv = NULL, *pol = NULL;
        if (t) json_object_object_get_ex(t, "Namespaces", &nsv);
        if (t) json_object_object_get_ex(t, "Policies", &pol);
        if (!secret || !*secret || !type || (strcmp(type, "client") != 0 && strcmp(type, "management") != 0) ||
            (nsv && !json_object_is_type(nsv, json_type_object))) {
            snprintf(err, errlen,
                     "ACL token %zu: needs SecretID, Type \"client\" or \"management\" and Namespaces as an object", i);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < ctl->n_tokens; k++)
            if (strcmp(ctl->tokens[k].secret, secret) == 0) {
                snprintf(err, errlen, "ACL token %zu: SecretID listed twice", i);
                rc = -1;
            }
        if (rc) break;
        sim_acl_token *x = &ctl->tokens[ctl->n_tokens++];
        x->secret = strdup(secret);
        x->accessor = strdup(ostr(t, "AccessorID") ? ostr(t, "AccessorID") : "");
        x->name = strdup(ostr(t, "Name") ? ostr(t, "Name") : "");
        x->type = strdup(type);
        x->namespaces = nsv ? json_object_get(nsv) : json_object_new_object();
        x->policies = pol && json_object_is_type(pol, json_type_array) ? json_object_get(pol) : NULL;
        if (!x->secret || !x->accessor || !x->name || !x->type) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    json_object_put(arr);
    if (rc) tokens_free(ctl);
    else ctl->acl = true;
    return rc;
}

static bool num_in(json_object *o, const char *key, double lo, double hi, double *out, bool *bad) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return false;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
        *bad = true;
        return false;
    }
    double d = json_object_get_double(v);
    if (d < lo || d > hi) {
        *bad = true;
        return false;
    }
    *out = d;
    return true;
}

int sim_ctl_set_faults(sim_ctl *ctl, json_object *o, char *err, size_t errlen) {
    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "faults: a JSON object is required");
        return -1;
    }
    sim_faults f = ctl->faults;
    bool bad = false;
    double d;
    if (num_in(o, "error_ratio", 0, 1, &d, &bad)) f.error_ratio = d;
    if (num_in(o, "reset_ratio", 0, 1, &d, &bad)) f.reset_ratio = d;
    if (num_in(o, "truncate_ratio", 0, 1, &d, &bad)) f.truncate_ratio = d;
    if (num_in(o, "latency_ms", 0, 600000, &d, &bad)) f.latency_ms = (int64_t)d;
    json_object *v;
    if (json_object_object_get_ex(o, "hang_blocking", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) bad = true;
        else f.hang_blocking = json_object_get_boolean(v);
    }
    if (bad) {
        snprintf(err, errlen, "faults: ratios are numbers in 0..1, latency_ms 0..600000, hang_blocking a bool");
        return -1;
    }
    ctl->faults = f;
    return 0;
}

void sim_ctl_log(sim_ctl *ctl, int64_t at_ms, const char *method, const char *target, int status, const char *fault) {
    if (!ctl || !ctl->log) return;
    size_t slot = (ctl->log_head + ctl->log_len) % SIM_LOG_CAP;
    if (ctl->log_len == SIM_LOG_CAP) ctl->log_head = (ctl->log_head + 1) % SIM_LOG_CAP;
    else ctl->log_len++;
    sim_log_entry *e = &ctl->log[slot];
    e->seq = ++ctl->log_seq;
    e->at_ms = at_ms;
    snprintf(e->method, sizeof(e->method), "%s", method ? method : "-");
    snprintf(e->target, sizeof(e->target), "%s", target ? target : "-");
    e->status = status;
    snprintf(e->fault, sizeof(e->fault), "%s", fault ? fault : "");
}

static double ctl_rand(sim_ctl *ctl) {   /* xorshift64*: fault dice, not security */
    uint64_t x = ctl->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ctl->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* A ratio of 1 always fires, 0 never (the dice are in [0, 1)). */
static bool roll(sim_ctl *ctl, double ratio) { return ratio > 0 && ctl_rand(ctl) < ratio; }

/* ---------- request context ---------- */

typedef struct ctx {
    sim_state *st;
    sim_ctl *ctl;
    const sim_http_req *req;
    int64_t now, parked_at;
    bool force;
    sim_response *out;
    int64_t *deadline;
    char ns[256];
    bool pretty;
    uint64_t min_index;
    int64_t wait_ms;
    /* ACL: acl on; tok NULL = anonymous; bad_token = a token nobody issued */
    bool acl;
    const sim_acl_token *tok;
    bool bad_token;
} ctx;

static bool is(const ctx *c, const char *m) { return strcmp(c->req->method, m) == 0; }
static bool is_write(const ctx *c) { return is(c, "PUT") || is(c, "POST"); }

static int reply_text(ctx *c, int status, const char *text) {
    c->out->status = status;
    c->out->content_type = text && *text ? TEXT : NULL;
    nm_buf_reset(&c->out->body);
    if (text && nm_buf_appends(&c->out->body, text) != NM_BUF_OK) c->out->status = 500;
    return SIM_API_DONE;
}

/* Takes ownership of v (NULL renders as `null`). */
static int reply_json(ctx *c, int status, json_object *v, bool has_index, uint64_t index) {
    int flags = JSON_C_TO_STRING_NOSLASHESCAPE | (c->pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN);
    const char *s = v ? json_object_to_json_string_ext(v, flags) : "null";
    c->out->status = status;
    c->out->content_type = JSON;
    c->out->has_index = has_index;
    c->out->index = index;
    nm_buf_reset(&c->out->body);
    if (nm_buf_appends(&c->out->body, s) != NM_BUF_OK) c->out->status = 500;
    json_object_put(v);
    return SIM_API_DONE;
}

static int method_not_allowed(ctx *c) { return reply_text(c, 405, "Invalid method"); }
static int denied(ctx *c) { return reply_text(c, 403, "Permission denied"); }

/* ---------- ACL (§9) ---------- */

static const char *const read_caps[] = {"list-jobs", "parse-job", "read-job", "csi-list-volume", "csi-read-volume",
                                        "read-job-scaling", "list-scaling-policies", "read-scaling-policy",
                                        "host-volume-read", NULL};
static const char *const write_extra[] = {"scale-job", "submit-job", "dispatch-job", "read-logs", "read-fs",
                                          "alloc-exec", "alloc-lifecycle", "csi-mount-volume", "csi-write-volume",
                                          "submit-recommendation", "host-volume-create", NULL};
static const char *const scale_caps[] = {"list-scaling-policies", "read-scaling-policy", "read-job-scaling",
                                         "scale-job", "read-job", "submit-recommendation", NULL};
/* Nomad 2.0 split of submit-job (PR nomad#27287): submit-job implies all. */
static const char *const submit_split[] = {"register-job", "plan-job", "revert-job", "deregister-job", "purge-job",
                                           "evaluate-job", "stable-job", "tag-job-version", "fail-deployment",
                                           "pause-deployment", "promote-deployment", "unblock-deployment",
                                           "cancel-deployment", "set-alloc-health-deployment", "gc-allocation",
                                           "pause-allocation", "force-periodic-job", "delete-service-registration",
                                           NULL};

static bool in_list(const char *const *l, const char *s) {
    for (; *l; l++)
        if (strcmp(*l, s) == 0) return true;
    return false;
}

/* Does a granted capability list (JSON array) give `cap`? */
static bool grants(json_object *caps, const char *cap) {
    bool any = false;
    for (size_t i = 0; caps && json_object_is_type(caps, json_type_array) && i < json_object_array_length(caps); i++) {
        const char *g = json_object_get_string(json_object_array_get_idx(caps, i));
        if (!g) continue;
        if (strcmp(g, "deny") == 0) return false;   /* deny overrides everything */
        if (strcmp(g, cap) == 0 || (strcmp(g, "submit-job") == 0 && in_list(submit_split, cap)) ||
            (strcmp(g, "read") == 0 && in_list(read_caps, cap)) ||
            (strcmp(g, "write") == 0 && (in_list(read_caps, cap) || in_list(write_extra, cap) ||
                                         in_list(submit_split, cap))) ||
            (strcmp(g, "scale") == 0 && in_list(scale_caps, cap)))
            any = true;
    }
    return any;
}

/* '*' matches any run of characters. */
static bool glob_match(const char *pat, const char *s) {
    if (!*pat) return !*s;
    if (*pat == '*') return glob_match(pat + 1, s) || (*s && glob_match(pat, s + 1));
    return *s == *pat && glob_match(pat + 1, s + 1);
}

/* The rule for namespace ns: exact name beats globs; among globs the
 * longest pattern (closest match) wins. */
static json_object *rule_for(const sim_acl_token *t, const char *ns) {
    json_object *exact = NULL, *best = NULL;
    size_t best_len = 0;
    json_object_object_foreach(t->namespaces, k, v) {
        if (strcmp(k, ns) == 0) exact = v;
        else if (strchr(k, '*') && glob_match(k, ns) && (!best || strlen(k) > best_len)) best = v, best_len = strlen(k);
    }
    return exact ? exact : best;
}

/* Is the caller allowed `cap` (or `alt`, the 2.0 fine-grained name) in ns? */
static bool allowed(const ctx *c, const char *ns, const char *cap, const char *alt) {
    if (!c->acl) return true;
    if (c->bad_token || !c->tok) return false;   /* the anonymous policy grants nothing here */
    if (strcmp(c->tok->type, "management") == 0) return true;
    json_object *rule = rule_for(c->tok, ns);
    return rule && (grants(rule, cap) || (alt && grants(rule, alt)));
}

/* Fills c->tok / c->bad_token from X-Nomad-Token or Authorization: Bearer (§1.2). */
static void identify(ctx *c) {
    c->acl = c->ctl && c->ctl->acl;
    if (!c->acl) return;
    const char *t = sim_http_header_get(c->req, "X-Nomad-Token");
    if (!t || !*t) {
        const char *auth = sim_http_header_get(c->req, "Authorization");
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
            t = auth + 7;
            while (*t == ' ') t++;
        }
    }
    if (!t || !*t) return;
    for (size_t i = 0; i < c->ctl->n_tokens; i++)
        if (strcmp(c->ctl->tokens[i].secret, t) == 0) {
            c->tok = &c->ctl->tokens[i];
            return;
        }
    c->bad_token = true;
}

/* ---------- blocking reads ---------- */

/* Blocking-query gate (§1.5): park while the index has not passed ?index=. */
static bool must_park(ctx *c, uint64_t index) {
    if (c->min_index == 0 || c->force) return false;
    if (c->ctl && c->ctl->faults.hang_blocking) {
        *c->deadline = INT64_MAX;   /* fault: never answer */
        return true;
    }
    if (index > c->min_index) return false;
    int64_t wait = c->wait_ms <= 0 ? SIM_DEFAULT_WAIT_MS : c->wait_ms;
    if (wait > SIM_MAX_WAIT_MS) wait = SIM_MAX_WAIT_MS;
    *c->deadline = c->parked_at + wait;
    return c->now < *c->deadline;
}

/* A blocking read: v (owned) answered as JSON, or 404 `notfound` when NULL
 * and notfound is set (NULL with notfound unset answers `null`). */
static int read_reply(ctx *c, json_object *v, uint64_t index, const char *notfound) {
    if (must_park(c, index)) {
        json_object_put(v);
        return SIM_API_PARK;
    }
    if (!v && notfound) {
        reply_text(c, 404, notfound);
        c->out->has_index = true;   /* Nomad sets the query meta before the 404 */
        c->out->index = index;
        return SIM_API_DONE;
    }
    return reply_json(c, 200, v, true, index);
}

/* read_reply() taking the index by pointer: the getter that fills it is
 * another argument of the same call, and C leaves the order in which
 * arguments are evaluated unspecified — the pointer is read in the body. */
static int read_obj(ctx *c, json_object *v, const uint64_t *index, const char *notfound) {
    return read_reply(c, v, *index, notfound);
}

/* Decodes src[0..len) (a path segment) into a new string; NULL if invalid. */
static char *path_decode(const char *src, size_t len) {
    char *d = malloc(len + 1);
    if (!d) return NULL;
    if (sim_http_unescape(src, len, d, len + 1, false) < 0) {
        free(d);
        return NULL;
    }
    return d;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem) {
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m || strcmp(s + n - m, suffix) != 0) return false;
    *stem = n - m;
    return true;
}

/* Drops the entries of a list whose "Namespace" the caller cannot `cap`. */
static json_object *acl_filter(const ctx *c, json_object *list, const char *cap) {
    if (!c->acl || !list) return list;
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *x = json_object_array_get_idx(list, i);
        const char *ns = ostr(x, "Namespace");
        if (ns && allowed(c, ns, cap, NULL)) json_object_array_add(out, json_object_get(x));
    }
    json_object_put(list);
    return out;
}

/* ---------- handlers ---------- */

/* The namespace a register / plan body lands in (§1.3 precedence). */
static void body_namespace(ctx *c, char *out, size_t outlen) {
    char q[256];
    if (sim_http_query_get(c->req->query, "namespace", q, sizeof(q)) == 1 && *q) {
        snprintf(out, outlen, "%s", q);
        return;
    }
    snprintf(out, outlen, "default");
    json_object *b = c->req->body_len ? json_tokener_parse(c->req->body) : NULL;
    json_object *job = NULL;
    if (b && json_object_is_type(b, json_type_object)) json_object_object_get_ex(b, "Job", &job);
    const char *ns = ostr(b, "Namespace");
    if (!ns || !*ns) ns = job && json_object_is_type(job, json_type_object) ? ostr(job, "Namespace") : NULL;
    if (ns && *ns) snprintf(out, outlen, "%s", ns);
    json_object_put(b);
}

static int do_register(ctx *c, const char *path_id, bool plan) {
    char bns[256];
    body_namespace(c, bns, sizeof(bns));
    if (!allowed(c, bns, "submit-job", plan ? "plan-job" : "register-job")) return denied(c);
    char region[256];
    int has_region = sim_http_query_get(c->req->query, "region", region, sizeof(region));
    sim_register_args a = {.path_id = path_id, .q_namespace = NULL, .q_region = has_region == 1 ? region : NULL};
    char nsq[256];
    if (sim_http_query_get(c->req->query, "namespace", nsq, sizeof(nsq)) == 1 && *nsq) a.q_namespace = nsq;
    json_object *resp;
    uint64_t index;
    char err[4096];
    int rc = plan ? sim_job_plan(c->st, c->req->body, c->req->body_len, &a, c->now, &resp, &index, err, sizeof(err))
                  : sim_register(c->st, c->req->body, c->req->body_len, &a, c->now, &resp, &index, err, sizeof(err));
    if (rc != SIM_OK) return reply_text(c, rc, err);
    return reply_json(c, 200, resp, true, index);
}

/* /v1/job/<rest>, routed by suffix as Nomad's jobSpecificRequest does. */
static int route_job(ctx *c, const char *rest) {
    static const char *const unsimulated[] = {"/evaluate", "/periodic/force", "/summary", "/dispatch", "/stable",
                                              "/scale",    "/services",       "/submission"};
    static const struct {
        const char *suffix;
        json_object *(*get)(const sim_state *, const char *, const char *, uint64_t *);
        const char *notfound;
        bool any_verb;
    } reads[] = {
        {"/deployments", sim_job_deployments, NULL, false},
        {"/deployment", sim_job_latest_deployment, NULL, false},
        {"/versions", sim_job_versions, "job versions not found", true},   /* any verb (§13) */
        {"/evaluations", sim_job_evaluations, NULL, false},
        {"/allocations", sim_job_allocations, NULL, false},
    };
    size_t stem;
    uint64_t index;
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        if (!ends_with(rest, reads[i].suffix, &stem)) continue;
        if (!reads[i].any_verb && !is(c, "GET")) return method_not_allowed(c);
        if (!allowed(c, c->ns, "read-job", NULL)) return denied(c);
        char *id = strndup(rest, stem);
        if (!id) return reply_text(c, 500, "out of memory");
        int rc = read_obj(c, reads[i].get(c->st, c->ns, id, &index), &index, reads[i].notfound);
        free(id);
        return rc;
    }
    if (ends_with(rest, "/plan", &stem) || ends_with(rest, "/revert", &stem)) {
        bool plan = rest[stem + 1] == 'p';
        if (!is_write(c)) return method_not_allowed(c);
        char *id = strndup(rest, stem);
        if (!id) return reply_text(c, 500, "out of memory");
        int rc;
        if (plan) {
            rc = do_register(c, id, true);
        } else if (!allowed(c, c->ns, "submit-job", "revert-job")) {
            rc = denied(c);
        } else {
            json_object *resp;
            char err[1024];
            rc = sim_job_revert(c->st, c->ns, id, c->req->body, c->req->body_len, c->now, &resp, &index, err, sizeof(err));
            rc = rc != SIM_OK ? reply_text(c, rc, err) : reply_json(c, 200, resp, true, index);
        }
        free(id);
        return rc;
    }
    for (size_t i = 0; i < sizeof(unsimulated) / sizeof(unsimulated[0]); i++)
        if (ends_with(rest, unsimulated[i], &stem)) return reply_text(c, 501, NOT_IMPLEMENTED);
    if (is(c, "GET")) {
        if (!allowed(c, c->ns, "read-job", NULL)) return denied(c);
        return read_obj(c, sim_job_get(c->st, c->ns, rest, &index), &index, "job not found");
    }
    if (is_write(c)) return do_register(c, rest, false);
    if (is(c, "DELETE")) {
        char v[16];
        bool purge = sim_http_query_get(c->req->query, "purge", v, sizeof(v)) == 1 && (!strcmp(v, "true") || !strcmp(v, "1"));
        if (!allowed(c, c->ns, "submit-job", "purge-job") &&
            (purge || !allowed(c, c->ns, "submit-job", "deregister-job")))
            return denied(c);
        json_object *resp;
        char err[512];
        int rc = sim_job_stop(c->st, c->ns, rest, purge, c->now, &resp, &index, err, sizeof(err));
        return rc != SIM_OK ? reply_text(c, rc, err) : reply_json(c, 200, resp, true, index);
    }
    return method_not_allowed(c);
}

enum dep_write { DW_PROMOTE, DW_FAIL, DW_PAUSE };

static int deployment_write(ctx *c, const char *id, enum dep_write kind) {
    static const char *const fine[] = {"promote-deployment", "fail-deployment", "pause-deployment"};
    json_object *resp = NULL;
    uint64_t index = 0;
    char err[2048];
    int rc;
    if (!is_write(c)) return method_not_allowed(c);
    /* Deployment writes check the deployment's own namespace (§1.3). */
    const char *dns = sim_object_namespace(c->st, SIM_KIND_DEPLOYMENT, id);
    if (c->acl && (c->bad_token || !c->tok)) return denied(c);
    if (dns && !allowed(c, dns, "submit-job", fine[kind])) return denied(c);
    if (kind == DW_FAIL)   /* fail reads no body (§13) */
        rc = sim_deployment_fail(c->st, id, c->now, &resp, &index, err, sizeof(err));
    else {
        if (c->req->body_len == 0) return reply_text(c, 400, "Request body is empty");
        json_object *b = json_tokener_parse(c->req->body);
        if (!b || !json_object_is_type(b, json_type_object)) {
            json_object_put(b);
            return reply_text(c, 400, "invalid character looking for beginning of value");
        }
        const char *bid = ostr(b, "DeploymentID");
        if (!bid || !*bid) {
            json_object_put(b);
            return reply_text(c, 400, "DeploymentID must be specified");
        }
        if (strcmp(bid, id) != 0) {
            json_object_put(b);
            return reply_text(c, 400, "Deployment ID does not match");
        }
        json_object *v;
        if (kind == DW_PAUSE) {
            bool pause = json_object_object_get_ex(b, "Pause", &v) && json_object_get_boolean(v);
            rc = sim_deployment_pause(c->st, id, pause, c->now, &resp, &index, err, sizeof(err));
        } else {
            bool all = json_object_object_get_ex(b, "All", &v) && json_object_get_boolean(v);
            json_object *groups =
                json_object_object_get_ex(b, "Groups", &v) && json_object_is_type(v, json_type_array) ? v : NULL;
            size_t n = groups ? json_object_array_length(groups) : 0;
            if (n > 1024) n = 1024;
            const char **names = n ? calloc(n, sizeof(*names)) : NULL;
            if (n && !names) {
                json_object_put(b);
                return reply_text(c, 500, "out of memory");
            }
            for (size_t i = 0; i < n; i++) names[i] = json_object_get_string(json_object_array_get_idx(groups, i));
            rc = sim_deployment_promote(c->st, id, all || !n ? NULL : names, n, c->now, &resp, &index, err, sizeof(err));
            free(names);
        }
        json_object_put(b);
    }
    if (rc != SIM_OK) return reply_text(c, rc, err);
    return reply_json(c, 200, resp, true, index);
}

/* ID-addressed read of a deployment (§1.3): read-job in the request
 * namespace (else 403), then objects in namespaces the caller cannot read
 * are hidden (404). */
static int route_deployment(ctx *c, const char *rest) {
    uint64_t index;
    if (strncmp(rest, "promote/", 8) == 0) return deployment_write(c, rest + 8, DW_PROMOTE);
    if (strncmp(rest, "fail/", 5) == 0) return deployment_write(c, rest + 5, DW_FAIL);
    if (strncmp(rest, "pause/", 6) == 0) return deployment_write(c, rest + 6, DW_PAUSE);
    if (strncmp(rest, "allocation-health/", 18) == 0 || strncmp(rest, "unblock/", 8) == 0)
        return reply_text(c, 501, NOT_IMPLEMENTED);
    bool allocs = strncmp(rest, "allocations/", 12) == 0;
    const char *id = allocs ? rest + 12 : rest;
    if (!is(c, "GET")) return method_not_allowed(c);
    if (!allowed(c, c->ns, "read-job", NULL)) return denied(c);
    const char *dns = sim_object_namespace(c->st, SIM_KIND_DEPLOYMENT, id);
    bool hidden = c->acl && dns && !allowed(c, dns, "read-job", NULL);
    if (allocs) {
        json_object *v = sim_deployment_allocations(c->st, id, &index);
        if (hidden) {
            json_object_put(v);
            v = json_object_new_array();
        }
        return read_obj(c, v, &index, NULL);
    }
    json_object *d = sim_deployment_get(c->st, id, &index);
    if (hidden) {
        json_object_put(d);
        d = NULL;
    }
    return read_obj(c, d, &index, "deployment not found");
}

static int route_eval(ctx *c, const char *rest) {
    uint64_t index;
    size_t stem;
    if (!is(c, "GET")) return method_not_allowed(c);
    if (!allowed(c, c->ns, "read-job", NULL)) return denied(c);
    bool allocs = ends_with(rest, "/allocations", &stem);
    char *id = strndup(rest, allocs ? stem : strlen(rest));
    if (!id) return reply_text(c, 500, "out of memory");
    /* With ACLs on an eval of another namespace answers 403 (§13). */
    const char *ens = sim_object_namespace(c->st, SIM_KIND_EVAL, id);
    int rc;
    if (c->acl && ens && strcmp(ens, c->ns) != 0) rc = denied(c);
    else if (allocs) rc = read_obj(c, sim_eval_allocations(c->st, id, &index), &index, NULL);
    else rc = read_obj(c, sim_eval_get(c->st, id, &index), &index, "eval not found");
    free(id);
    return rc;
}

static int route_alloc(ctx *c, const char *id) {
    uint64_t index;
    if (!is(c, "GET")) return method_not_allowed(c);
    if (c->acl && (c->bad_token || !c->tok)) return denied(c);
    /* With ACLs on an allocation of another namespace is unknown (§13). */
    const char *ans = sim_object_namespace(c->st, SIM_KIND_ALLOC, id);
    if (c->acl && ans && strcmp(ans, c->ns) == 0 && !allowed(c, ans, "read-job", NULL)) return denied(c);
    if (c->acl && ans && strcmp(ans, c->ns) != 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "Unknown allocation \"%s\"", id);
        return reply_text(c, 500, msg);
    }
    return read_obj(c, sim_alloc_get(c->st, id, &index), &index, "alloc not found");
}

static json_object *token_json(const char *accessor, const char *secret, const char *name, const char *type,
                               json_object *policies) {
    json_object *t = json_object_new_object();
    json_object_object_add(t, "AccessorID", json_object_new_string(accessor));
    json_object_object_add(t, "SecretID", json_object_new_string(secret));
    json_object_object_add(t, "Name", json_object_new_string(name));
    json_object_object_add(t, "Type", json_object_new_string(type));
    json_object_object_add(t, "Policies", policies);
    json_object_object_add(t, "Roles", NULL);
    json_object_object_add(t, "Global", json_object_new_boolean(true));
    json_object_object_add(t, "Hash", json_object_new_string(""));
    json_object_object_add(t, "CreateTime", json_object_new_string("2026-01-01T00:00:00Z"));
    json_object_object_add(t, "ExpirationTime", NULL);
    json_object_object_add(t, "ExpirationTTL", json_object_new_int64(0));
    json_object_object_add(t, "CreateIndex", json_object_new_int64(1));
    json_object_object_add(t, "ModifyIndex", json_object_new_int64(1));
    return t;
}

/* GET /v1/acl/token/self (§3.12, §13). */
static int token_self(ctx *c) {
    if (!is(c, "GET")) return method_not_allowed(c);
    json_object *t;
    if (!c->acl) {
        t = token_json("acls-disabled", "acls-disabled", "ACLs disabled", "management", NULL);
    } else if (c->bad_token) {
        return denied(c);
    } else if (!c->tok) {
        json_object *p = json_object_new_array();
        json_object_array_add(p, json_object_new_string("anonymous"));
        t = token_json("anonymous", "anonymous", "Anonymous Token", "client", p);
    } else {
        t = token_json(c->tok->accessor, c->tok->secret, c->tok->name, c->tok->type,
                       c->tok->policies ? json_object_get(c->tok->policies) : NULL);
    }
    return reply_json(c, 200, t, true, 1);
}

/* ---------- /_sim/ control endpoints (JSON in and out) ---------- */

static json_object *faults_json(const sim_faults *f) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error_ratio", json_object_new_double(f->error_ratio));
    json_object_object_add(o, "reset_ratio", json_object_new_double(f->reset_ratio));
    json_object_object_add(o, "truncate_ratio", json_object_new_double(f->truncate_ratio));
    json_object_object_add(o, "latency_ms", json_object_new_int64(f->latency_ms));
    json_object_object_add(o, "hang_blocking", json_object_new_boolean(f->hang_blocking));
    return o;
}

static int ctl_error(ctx *c, int status, const char *msg) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    return reply_json(c, status, o, false, 0);
}

static int route_sim(ctx *c, const char *rest) {
    sim_ctl *ctl = c->ctl;
    char err[512];
    json_object *body = NULL;
    if (is_write(c)) {
        if (c->req->body_len == 0) {
            if (strcmp(rest, "reset") != 0) return ctl_error(c, 400, "a JSON body is required");
        } else {
            body = json_tokener_parse(c->req->body);
            if (!body) return ctl_error(c, 400, "body is not valid JSON");
        }
    }
    int rc;
    if (strcmp(rest, "behaviour") == 0 || strcmp(rest, "behavior") == 0) {
        if (is(c, "GET")) {
            rc = reply_json(c, 200, sim_behaviour_list(c->st), false, 0);
        } else if (is(c, "DELETE")) {
            sim_behaviour_clear(c->st);
            rc = reply_json(c, 200, sim_behaviour_list(c->st), false, 0);
        } else if (is_write(c)) {
            bool ok = true;
            if (json_object_is_type(body, json_type_array)) {
                for (size_t i = 0; ok && i < json_object_array_length(body); i++)
                    ok = sim_behaviour_set_json(c->st, json_object_array_get_idx(body, i), err, sizeof(err)) == 0;
            } else {
                ok = sim_behaviour_set_json(c->st, body, err, sizeof(err)) == 0;
            }
            rc = ok ? reply_json(c, 200, sim_behaviour_list(c->st), false, 0) : ctl_error(c, 400, err);
        } else {
            rc = method_not_allowed(c);
        }
    } else if (strcmp(rest, "faults") == 0) {
        if (is(c, "GET")) rc = reply_json(c, 200, faults_json(&ctl->faults), false, 0);
        else if (is_write(c))
            rc = sim_ctl_set_faults(ctl, body, err, sizeof(err)) == 0 ? reply_json(c, 200, faults_json(&ctl->faults), false, 0)
                                                                      : ctl_error(c, 400, err);
        else rc = method_not_allowed(c);
    } else if (strcmp(rest, "requests") == 0) {
        if (is(c, "DELETE")) {
            ctl->log_len = ctl->log_head = 0;
            rc = reply_json(c, 200, json_object_new_array(), false, 0);
        } else if (is(c, "GET")) {
            json_object *a = json_object_new_array();
            for (size_t i = 0; i < ctl->log_len; i++) {
                const sim_log_entry *e = &ctl->log[(ctl->log_head + i) % SIM_LOG_CAP];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "seq", json_object_new_uint64(e->seq));
                json_object_object_add(o, "time_ms", json_object_new_int64(e->at_ms));
                json_object_object_add(o, "method", json_object_new_string(e->method));
                json_object_object_add(o, "target", json_object_new_string(e->target));
                json_object_object_add(o, "status", json_object_new_int(e->status));
                if (e->fault[0]) json_object_object_add(o, "fault", json_object_new_string(e->fault));
                json_object_array_add(a, o);
            }
            rc = reply_json(c, 200, a, false, 0);
        } else {
            rc = method_not_allowed(c);
        }
    } else if (strcmp(rest, "reset") == 0) {
        if (!is_write(c)) {
            rc = method_not_allowed(c);
        } else {
            memset(&ctl->faults, 0, sizeof(ctl->faults));
            sim_behaviour_clear(c->st);
            ctl->log_len = ctl->log_head = 0;
            json_object *o = json_object_new_object();
            json_object_object_add(o, "reset", json_object_new_boolean(true));
            rc = reply_json(c, 200, o, false, 0);
        }
    } else if (strcmp(rest, "status") == 0) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "now_ms", json_object_new_int64(c->now));
        json_object_object_add(o, "index", json_object_new_uint64(sim_state_index(c->st)));
        json_object_object_add(o, "speed", json_object_new_double(ctl->speed));
        json_object_object_add(o, "acl", json_object_new_boolean(ctl->acl));
        json_object_object_add(o, "next_event_ms", json_object_new_int64(sim_state_next_event(c->st)));
        rc = is(c, "GET") ? reply_json(c, 200, o, false, 0) : (json_object_put(o), method_not_allowed(c));
    } else {
        rc = reply_text(c, 404, NULL);
    }
    json_object_put(body);
    return rc;
}

/* Parses the common query parameters (§1.3). Returns false after filling
 * an error reply. Reads validate index/wait/stale; writes do not. */
static bool parse_query(ctx *c, bool read) {
    const char *q = c->req->query;
    char v[256];
    if (sim_http_query_get(q, "namespace", c->ns, sizeof(c->ns)) != 1 || !c->ns[0])
        snprintf(c->ns, sizeof(c->ns), "default");
    c->pretty = sim_http_query_get(q, "pretty", v, sizeof(v)) == 1;
    if (sim_http_query_get(q, "region", v, sizeof(v)) == 1 && *v && strcmp(v, SIM_REGION) != 0) {
        reply_text(c, 500, "No path to region");
        return false;
    }
    if (!read) return true;
    if (sim_http_query_get(q, "stale", v, sizeof(v)) == 1 && *v) {
        static const char *const ok[] = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"};
        bool good = false;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) good |= strcmp(v, ok[i]) == 0;
        if (!good) {
            reply_text(c, 400, "Expect `true` or `false` for `stale` query string parameter");
            return false;
        }
    }
    int has = sim_http_query_get(q, "wait", v, sizeof(v));
    if (has == -1 || (has == 1 && *v && sim_parse_duration_ms(v, &c->wait_ms) != 0)) {
        reply_text(c, 400, "Invalid wait time");
        return false;
    }
    has = sim_http_query_get(q, "index", v, sizeof(v));
    if (has == 1 && *v) {
        char *end;
        if (!isdigit((unsigned char)v[0]) || strlen(v) > 20) {
            reply_text(c, 400, "Invalid index");
            return false;
        }
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end || errno) {
            reply_text(c, 400, "Invalid index");
            return false;
        }
        c->min_index = n;
    } else if (has == -1) {
        reply_text(c, 400, "Invalid index");
        return false;
    }
    return true;
}

static int route_v1(ctx *c, const char *path, bool read) {
    sim_state *st = c->st;
    uint64_t index;
    if (strcmp(path, "/v1/jobs") == 0) {
        if (read) {
            bool all = strcmp(c->ns, "*") == 0;
            if (!all && !allowed(c, c->ns, "list-jobs", NULL)) return denied(c);
            return read_obj(c, acl_filter(c, sim_job_list(st, c->ns, &index), "list-jobs"), &index, NULL);
        }
        if (is_write(c)) return do_register(c, NULL, false);
        return method_not_allowed(c);
    }
    if (strncmp(path, "/v1/job/", 8) == 0) return route_job(c, path + 8);
    if (strncmp(path, "/v1/deployment/", 15) == 0) return route_deployment(c, path + 15);
    if (strcmp(path, "/v1/deployments") == 0) {
        if (!read) return method_not_allowed(c);
        if (strcmp(c->ns, "*") != 0 && !allowed(c, c->ns, "read-job", NULL)) return denied(c);
        return read_obj(c, acl_filter(c, sim_deployment_list(st, c->ns, &index), "read-job"), &index, NULL);
    }
    if (strncmp(path, "/v1/evaluation/", 15) == 0) return route_eval(c, path + 15);
    if (strncmp(path, "/v1/allocation/", 15) == 0) return route_alloc(c, path + 15);
    if (strcmp(path, "/v1/acl/token/self") == 0) return token_self(c);
    if (strcmp(path, "/v1/status/leader") == 0)   /* no ACL, no X-Nomad-Index (§13) */
        return read ? reply_json(c, 200, json_object_new_string(SIM_LEADER), false, 0) : method_not_allowed(c);
    if (strcmp(path, "/v1/status/peers") == 0 || strcmp(path, "/v1/regions") == 0) {
        if (!read) return method_not_allowed(c);
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(path[4] == 's' ? SIM_LEADER : SIM_REGION));
        return reply_json(c, 200, a, false, 0);
    }
    if (strcmp(path, "/v1/agent/health") == 0) {
        if (!read) return method_not_allowed(c);
        return reply_json(c, 200,
                          json_tokener_parse("{\"client\":{\"ok\":true,\"message\":\"ok\"},"
                                             "\"server\":{\"ok\":true,\"message\":\"ok\"}}"),
                          false, 0);
    }
    return reply_text(c, 404, NULL);   /* root fall-through: empty body */
}

int sim_api_handle_ctl(sim_state *st, sim_ctl *ctl, const sim_http_req *req, int64_t now_ms, int64_t parked_at_ms,
                       bool force, sim_response *out, int64_t *deadline_ms) {
    ctx c = {.st = st, .ctl = ctl, .req = req, .now = now_ms, .parked_at = parked_at_ms, .force = force, .out = out,
             .deadline = deadline_ms};
    *deadline_ms = 0;
    sim_state_advance(st, now_ms);
    out->has_index = false;
    out->content_type = NULL;
    out->fault = SIM_FAULT_NONE;
    out->delay_ms = 0;
    nm_buf_reset(&out->body);

    char *path = path_decode(req->path, strlen(req->path));
    if (!path) return reply_text(&c, 400, "400 Bad Request: invalid URL escape");
    int rc;
    bool read = strcmp(req->method, "GET") == 0;
    if (ctl && strncmp(path, "/_sim/", 6) == 0) {
        parse_query(&c, false);
        rc = route_sim(&c, path + 6);
    } else if (strncmp(path, "/v1/", 4) != 0) {
        rc = reply_text(&c, 404, NULL);
    } else if (ctl && roll(ctl, ctl->faults.error_ratio)) {
        rc = reply_text(&c, 500, "No cluster leader");   /* injected 5xx */
    } else if (!parse_query(&c, read)) {
        rc = SIM_API_DONE;
    } else {
        identify(&c);
        rc = route_v1(&c, path, read);
    }
    if (ctl && rc == SIM_API_DONE && strncmp(path, "/v1/", 4) == 0) {
        out->delay_ms = ctl->faults.latency_ms;
        if (roll(ctl, ctl->faults.reset_ratio)) out->fault = SIM_FAULT_RESET;
        else if (roll(ctl, ctl->faults.truncate_ratio)) out->fault = SIM_FAULT_TRUNCATE;
    }
    free(path);
    return rc;
}

int sim_api_handle(sim_state *st, const sim_http_req *req, int64_t now_ms, int64_t parked_at_ms, bool force,
                   sim_response *out, int64_t *deadline_ms) {
    return sim_api_handle_ctl(st, NULL, req, now_ms, parked_at_ms, force, out, deadline_ms);
}
