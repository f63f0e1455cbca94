/* nomad-sim: simulated cluster state. See state.h for the lifecycle and
 * shared/reference/nomad-api.md for every text and shape reproduced here. */
#include "state.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_ID_LEN 37
#define SIM_MAX_EVALS 4096         /* older terminal objects are garbage-collected past these */
#define SIM_MAX_DEPLOYMENTS 4096
#define SIM_MAX_NAMESPACES 256
#define SIM_NAME_MAX 256

/* Default update strategy (§2.1), in ns where a duration. */
#define DEF_STAGGER 30000000000LL
#define DEF_MIN_HEALTHY 10000000000LL
#define DEF_HEALTHY_DEADLINE 300000000000LL
#define DEF_PROGRESS_DEADLINE 600000000000LL

#define ENFORCE_PREFIX "Enforcing job modify index"

enum phase { PH_ROLL, PH_CANARY, PH_WAIT_PROMOTE, PH_DONE };

typedef struct sim_group {
    char name[SIM_NAME_MAX];
    int64_t count, max_parallel, canary;
    bool auto_revert, auto_promote, promoted;
    int64_t progress_deadline_ns;
    /* The current phase moves `todo` allocations from base_* in nb batches
     * spread evenly over [t0, t1]. */
    enum phase ph;
    int64_t t0, t1, nb, todo, base_placed, base_healthy;
    int64_t placed, healthy, unhealthy;
    int64_t progress_ms;        /* last placement / health change, for RequireProgressBy */
    char (*canary_ids)[SIM_ID_LEN];
} sim_group;

typedef struct sim_deployment {
    char id[SIM_ID_LEN];
    char *ns, *job_id;
    uint64_t job_version, job_modify_index, job_spec_modify_index, job_create_index;
    int64_t priority;
    char status[16];
    char desc[192];
    sim_group *groups;
    size_t n_groups;
    int64_t end_ms;             /* planned end of the rolling phase */
    uint64_t create_index, modify_index;
    int64_t create_ms, modify_ms;
} sim_deployment;

typedef struct sim_eval {
    char id[SIM_ID_LEN];
    char *ns, *job_id, *job_type;
    int64_t priority;
    char triggered_by[32];
    uint64_t job_modify_index, snapshot_index;
    char status[16];
    char deployment_id[SIM_ID_LEN];
    int64_t reg_ms, due_ms;     /* register time; when the "scheduler" finishes it */
    uint64_t version;           /* job version it was created for */
    bool spec_changed;
    uint64_t create_index, modify_index;
    int64_t create_ms, modify_ms;
} sim_eval;

typedef struct sim_job {
    char *ns, *id;
    json_object *cur;                          /* owned; the job as read back */
    json_object *versions[SIM_MAX_VERSIONS];   /* owned copies, oldest first */
    size_t n_versions;
    uint64_t create_index, modify_index, job_modify_index;
} sim_job;

struct sim_state {
    int64_t health_ms, sched_ms, wall_offset_ms, now_ms;
    uint64_t rng;
    uint64_t index, idx_jobs, idx_deployments, idx_evals;
    sim_job **jobs;
    size_t n_jobs;
    sim_deployment **deps;
    size_t n_deps;
    sim_eval **evals;
    size_t n_evals;
    char *namespaces[SIM_MAX_NAMESPACES];
    size_t n_namespaces;
};

/* ---------- small helpers ---------- */

static void seterr(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static uint64_t rnd(sim_state *st) {   /* xorshift64*: IDs only, not security */
    uint64_t x = st->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void new_uuid(sim_state *st, char out[SIM_ID_LEN]) {
    uint64_t a = rnd(st), b = rnd(st);
    snprintf(out, SIM_ID_LEN, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff, (uint32_t)a & 0xfff,
             (uint32_t)(0x8000 | ((b >> 48) & 0x3fff)), (uint64_t)(b & 0xffffffffffffULL));
}

static int64_t wall_ns(const sim_state *st, int64_t mono_ms) { return (mono_ms + st->wall_offset_ms) * 1000000LL; }

/* RFC 3339 as Go marshals time.Time (fraction trimmed of trailing zeros). */
static void rfc3339(const sim_state *st, int64_t mono_ms, char *out, size_t outlen) {
    int64_t ms = mono_ms + st->wall_offset_ms;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    int frac = (int)(ms % 1000);
    if (frac) {
        char f[8];
        snprintf(f, sizeof(f), ".%03d", frac);
        for (size_t l = strlen(f); l > 1 && f[l - 1] == '0'; l--) f[l - 1] = '\0';
        snprintf(out + n, outlen - n, "%sZ", f);
    } else {
        snprintf(out + n, outlen - n, "Z");
    }
}

static uint64_t bump(sim_state *st) { return ++st->index; }

static const char *jstr(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

/* Returns true and sets *out when `key` holds a number (or a bool for bools). */
static bool jint(json_object *o, const char *key, int64_t *out) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v)) return false;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return false;
    *out = json_object_get_int64(v);
    return true;
}

static bool jbool(json_object *o, const char *key, bool *out) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean)) return false;
    *out = json_object_get_boolean(v);
    return true;
}

static json_object *jobj(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object)) return NULL;
    return v;
}

static json_object *jarr(json_object *o, const char *key) {
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array)) return NULL;
    return v;
}

static void set_u64(json_object *o, const char *key, uint64_t v) {
    json_object_object_add(o, key, json_object_new_uint64(v));
}
static void set_i64(json_object *o, const char *key, int64_t v) {
    json_object_object_add(o, key, json_object_new_int64(v));
}
static void set_str(json_object *o, const char *key, const char *v) {
    json_object_object_add(o, key, json_object_new_string(v ? v : ""));
}
static void set_bool(json_object *o, const char *key, bool v) {
    json_object_object_add(o, key, json_object_new_boolean(v));
}
static void set_default(json_object *o, const char *key, json_object *v) {
    if (json_object_object_get_ex(o, key, NULL)) {
        json_object_put(v);
        return;
    }
    json_object_object_add(o, key, v);
}

static json_object *deep_copy(json_object *o) {
    json_object *c = NULL;
    if (json_object_deep_copy(o, &c, NULL) != 0) return NULL;
    return c;
}

/* ---------- lifecycle ---------- */

sim_state *sim_state_new(int64_t health_ms, int64_t sched_ms, int64_t wall_offset_ms, uint64_t seed) {
    sim_state *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    st->health_ms = health_ms < 0 ? 0 : health_ms;
    st->sched_ms = sched_ms < 0 ? 0 : sched_ms;
    if (st->sched_ms > st->health_ms / 2) st->sched_ms = st->health_ms / 2;
    st->wall_offset_ms = wall_offset_ms;
    st->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    st->namespaces[0] = xstrdup("default");
    if (!st->namespaces[0]) {
        free(st);
        return NULL;
    }
    st->n_namespaces = 1;
    return st;
}

static void dep_free(sim_deployment *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_groups; i++) free(d->groups[i].canary_ids);
    free(d->groups);
    free(d->ns);
    free(d->job_id);
    free(d);
}

static void eval_free(sim_eval *e) {
    if (!e) return;
    free(e->ns);
    free(e->job_id);
    free(e->job_type);
    free(e);
}

static void job_free(sim_job *j) {
    if (!j) return;
    json_object_put(j->cur);
    for (size_t i = 0; i < j->n_versions; i++) json_object_put(j->versions[i]);
    free(j->ns);
    free(j->id);
    free(j);
}

void sim_state_free(sim_state *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_jobs; i++) job_free(st->jobs[i]);
    for (size_t i = 0; i < st->n_deps; i++) dep_free(st->deps[i]);
    for (size_t i = 0; i < st->n_evals; i++) eval_free(st->evals[i]);
    for (size_t i = 0; i < st->n_namespaces; i++) free(st->namespaces[i]);
    free(st->jobs);
    free(st->deps);
    free(st->evals);
    free(st);
}

uint64_t sim_state_index(const sim_state *st) { return st->index; }

bool sim_namespace_exists(const sim_state *st, const char *ns) {
    for (size_t i = 0; i < st->n_namespaces; i++)
        if (strcmp(st->namespaces[i], ns) == 0) return true;
    return false;
}

static int add_namespace(sim_state *st, const char *ns) {
    if (sim_namespace_exists(st, ns)) return 0;
    if (st->n_namespaces == SIM_MAX_NAMESPACES) return -1;
    char *c = xstrdup(ns);
    if (!c) return -1;
    st->namespaces[st->n_namespaces++] = c;
    return 0;
}

static sim_job *find_job(const sim_state *st, const char *ns, const char *id) {
    for (size_t i = 0; i < st->n_jobs; i++)
        if (strcmp(st->jobs[i]->ns, ns) == 0 && strcmp(st->jobs[i]->id, id) == 0) return st->jobs[i];
    return NULL;
}

static sim_deployment *find_dep(const sim_state *st, const char *id) {
    for (size_t i = 0; i < st->n_deps; i++)
        if (strcmp(st->deps[i]->id, id) == 0) return st->deps[i];
    return NULL;
}

static sim_eval *find_eval(const sim_state *st, const char *id) {
    for (size_t i = 0; i < st->n_evals; i++)
        if (strcmp(st->evals[i]->id, id) == 0) return st->evals[i];
    return NULL;
}

static bool dep_active(const sim_deployment *d) {
    return strcmp(d->status, "running") == 0 || strcmp(d->status, "paused") == 0;
}

static bool eval_terminal(const sim_eval *e) { return strcmp(e->status, "pending") != 0; }

/* Nomad garbage-collects old terminal objects; we do the same past a ceiling
 * so a client that registers forever cannot grow us without bound. */
static void gc(sim_state *st) {
    while (st->n_evals > SIM_MAX_EVALS) {
        size_t i = 0;
        while (i < st->n_evals && !eval_terminal(st->evals[i])) i++;
        if (i == st->n_evals) break;
        eval_free(st->evals[i]);
        memmove(&st->evals[i], &st->evals[i + 1], (st->n_evals - i - 1) * sizeof(st->evals[0]));
        st->n_evals--;
    }
    while (st->n_deps > SIM_MAX_DEPLOYMENTS) {
        size_t i = 0;
        while (i < st->n_deps && dep_active(st->deps[i])) i++;
        if (i == st->n_deps) break;
        dep_free(st->deps[i]);
        memmove(&st->deps[i], &st->deps[i + 1], (st->n_deps - i - 1) * sizeof(st->deps[0]));
        st->n_deps--;
    }
}

static int push(void ***arr, size_t *n, void *item) {
    void **p = realloc(*arr, (*n + 1) * sizeof(void *));
    if (!p) return -1;
    p[(*n)++] = item;
    *arr = p;
    return 0;
}

/* ---------- job canonicalisation, validation, spec comparison ---------- */

static bool is_service_like(const char *type) {
    /* Deployments: service jobs; system jobs too since Nomad 1.11 (§2). */
    return strcmp(type, "service") == 0 || strcmp(type, "system") == 0;
}

/* Effective value of an update field: group block > job block > default. */
static json_object *merged_update(json_object *job_upd, json_object *grp_upd) {
    static const struct {
        const char *key;
        enum { T_INT, T_BOOL, T_STR } type;
        int64_t def;
        const char *defs;
    } fields[] = {
        {"AutoPromote", T_BOOL, 0, NULL},       {"AutoRevert", T_BOOL, 0, NULL},
        {"Canary", T_INT, 0, NULL},             {"HealthCheck", T_STR, 0, "checks"},
        {"HealthyDeadline", T_INT, DEF_HEALTHY_DEADLINE, NULL},
        {"MaxParallel", T_INT, 1, NULL},        {"MinHealthyTime", T_INT, DEF_MIN_HEALTHY, NULL},
        {"ProgressDeadline", T_INT, DEF_PROGRESS_DEADLINE, NULL},
        {"Stagger", T_INT, DEF_STAGGER, NULL},
    };
    json_object *u = json_object_new_object();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_object *src[2] = {grp_upd, job_upd};
        bool done = false;
        for (int s = 0; s < 2 && !done; s++) {
            int64_t iv;
            bool bv;
            const char *sv;
            if (fields[i].type == T_INT && jint(src[s], fields[i].key, &iv)) {
                set_i64(u, fields[i].key, iv);
                done = true;
            } else if (fields[i].type == T_BOOL && jbool(src[s], fields[i].key, &bv)) {
                set_bool(u, fields[i].key, bv);
                done = true;
            } else if (fields[i].type == T_STR && (sv = jstr(src[s], fields[i].key)) && *sv) {
                set_str(u, fields[i].key, sv);
                done = true;
            }
        }
        if (done) continue;
        if (fields[i].type == T_INT) set_i64(u, fields[i].key, fields[i].def);
        else if (fields[i].type == T_BOOL) set_bool(u, fields[i].key, false);
        else set_str(u, fields[i].key, fields[i].defs);
    }
    return u;
}

/* Fills in what Nomad's canonicalisation fills in, so a job submitted in a
 * short form compares equal to the same job read back. */
static void canonicalize(json_object *job, const char *ns, const char *region) {
    const char *id = jstr(job, "ID");
    set_str(job, "Namespace", ns);
    set_str(job, "Region", region);
    if (!jstr(job, "Name") || !*jstr(job, "Name")) set_str(job, "Name", id);
    if (!jstr(job, "Type") || !*jstr(job, "Type")) set_str(job, "Type", "service");
    int64_t prio;
    if (!jint(job, "Priority", &prio) || prio == 0) set_i64(job, "Priority", 50);
    if (!jarr(job, "Datacenters") || json_object_array_length(jarr(job, "Datacenters")) == 0) {
        json_object *dc = json_object_new_array();
        json_object_array_add(dc, json_object_new_string("*"));
        json_object_object_add(job, "Datacenters", dc);
    }
    set_default(job, "AllAtOnce", json_object_new_boolean(false));
    set_default(job, "Stop", json_object_new_boolean(false));
    set_default(job, "Meta", NULL);
    set_default(job, "ParentID", json_object_new_string(""));
    set_default(job, "Dispatched", json_object_new_boolean(false));
    set_default(job, "NodePool", json_object_new_string("default"));

    json_object *job_upd = jobj(job, "Update");
    bool svc = is_service_like(jstr(job, "Type"));
    json_object *tgs = jarr(job, "TaskGroups");
    for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
        json_object *g = json_object_array_get_idx(tgs, i);
        if (!json_object_is_type(g, json_type_object)) continue;
        int64_t count;
        if (!jint(g, "Count", &count)) set_i64(g, "Count", 1);
        if (svc) json_object_object_add(g, "Update", merged_update(job_upd, jobj(g, "Update")));
    }
    /* After registration only Stagger and MaxParallel survive at job level (§2). */
    int64_t stagger = DEF_STAGGER, mp = 1;
    if (job_upd) {
        jint(job_upd, "Stagger", &stagger);
        jint(job_upd, "MaxParallel", &mp);
    }
    json_object *u = json_object_new_object();
    set_bool(u, "AutoPromote", false);
    set_bool(u, "AutoRevert", false);
    set_i64(u, "Canary", 0);
    set_str(u, "HealthCheck", "");
    set_i64(u, "HealthyDeadline", 0);
    set_i64(u, "MaxParallel", mp);
    set_i64(u, "MinHealthyTime", 0);
    set_i64(u, "ProgressDeadline", 0);
    set_i64(u, "Stagger", stagger);
    json_object_object_add(job, "Update", u);
}

/* Server-managed fields: not part of the spec (structs.Job.SpecChanged). */
static const char *const volatile_keys[] = {
    "Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex",
    "ModifyIndex", "JobModifyIndex", "NomadTokenID", "VersionTag",
};

static bool spec_equal(json_object *a, json_object *b) {
    json_object *ca = deep_copy(a), *cb = deep_copy(b);
    bool eq = false;
    if (ca && cb) {
        for (size_t i = 0; i < sizeof(volatile_keys) / sizeof(volatile_keys[0]); i++) {
            json_object_object_del(ca, volatile_keys[i]);
            json_object_object_del(cb, volatile_keys[i]);
        }
        eq = json_object_equal(ca, cb);
    }
    json_object_put(ca);
    json_object_put(cb);
    return eq;
}

/* Accumulates errors and renders them as hashicorp/go-multierror does. */
typedef struct merr {
    char items[16][512];
    size_t n;
} merr;

static void merr_add(merr *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void merr_add(merr *m, const char *fmt, ...) {
    if (m->n == sizeof(m->items) / sizeof(m->items[0])) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->items[m->n++], sizeof(m->items[0]), fmt, ap);
    va_end(ap);
}

static void merr_format(const merr *m, char *out, size_t outlen) {
    size_t o = (size_t)snprintf(out, outlen, m->n == 1 ? "1 error occurred:" : "%zu errors occurred:", m->n);
    for (size_t i = 0; i < m->n && o < outlen; i++) o += (size_t)snprintf(out + o, outlen - o, "\n\t* %s", m->items[i]);
    if (o < outlen) snprintf(out + o, outlen - o, "\n\n");
}

/* structs.Job.Validate, the parts a deploy tool can trip over. */
static bool validate_job(json_object *job, char *err, size_t errlen) {
    merr m = {.n = 0};
    const char *id = jstr(job, "ID");
    const char *type = jstr(job, "Type");
    if (!id || !*id) merr_add(&m, "Missing job ID");
    else if (strchr(id, ' ')) merr_add(&m, "Job ID contains a space");
    if (type && strcmp(type, "service") && strcmp(type, "batch") && strcmp(type, "system") &&
        strcmp(type, "sysbatch"))
        merr_add(&m, "Invalid job type: \"%s\"", type);
    int64_t prio = 50;
    jint(job, "Priority", &prio);
    if (prio < 1 || prio > 100) merr_add(&m, "Job priority must be between [1, 100]");
    json_object *tgs = jarr(job, "TaskGroups");
    if (!tgs || json_object_array_length(tgs) == 0) merr_add(&m, "Missing job task groups");
    for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
        json_object *g = json_object_array_get_idx(tgs, i);
        const char *gname = jstr(g, "Name");
        merr gm = {.n = 0};
        if (!gname || !*gname) merr_add(&gm, "Missing task group name");
        int64_t count = 1;
        jint(g, "Count", &count);
        if (count < 0) merr_add(&gm, "Task group count can't be negative");
        for (size_t k = 0; k < i && gname; k++) {
            const char *other = jstr(json_object_array_get_idx(tgs, k), "Name");
            if (other && strcmp(other, gname) == 0)
                merr_add(&m, "Job task group %zu redefines '%s' from group %zu", i + 1, gname, k + 1);
        }
        json_object *tasks = jarr(g, "Tasks");
        if (!tasks || json_object_array_length(tasks) == 0) merr_add(&gm, "Missing tasks for task group");
        for (size_t t = 0; tasks && t < json_object_array_length(tasks); t++) {
            json_object *task = json_object_array_get_idx(tasks, t);
            const char *tname = jstr(task, "Name");
            merr tm = {.n = 0};
            if (!tname || !*tname) merr_add(&tm, "Missing task name");
            const char *drv = jstr(task, "Driver");
            if (!drv || !*drv) merr_add(&tm, "Missing task driver");
            if (tm.n) {
                char sub[1024];
                merr_format(&tm, sub, sizeof(sub));
                merr_add(&gm, "Task %s validation failed: %s", tname ? tname : "", sub);
            }
        }
        if (gm.n) {
            char sub[2048];
            merr_format(&gm, sub, sizeof(sub));
            merr_add(&m, "Task group %s validation failed: %s", gname ? gname : "", sub);
        }
    }
    if (m.n == 0) return true;
    merr_format(&m, err, errlen);
    return false;
}

/* ---------- deployments ---------- */

static int64_t jget_i64(json_object *o, const char *key, int64_t def) {
    int64_t v;
    return jint(o, key, &v) ? v : def;
}

/* Groups of the job that roll out under a deployment (MaxParallel > 0). */
static size_t deploy_groups(json_object *job, sim_group **out) {
    *out = NULL;
    const char *type = jstr(job, "Type");
    bool stop = false;
    jbool(job, "Stop", &stop);
    if (!type || !is_service_like(type) || stop) return 0;
    json_object *tgs = jarr(job, "TaskGroups");
    size_t n = 0, cap = tgs ? json_object_array_length(tgs) : 0;
    if (!cap) return 0;
    sim_group *g = calloc(cap, sizeof(*g));
    if (!g) return 0;
    for (size_t i = 0; i < cap; i++) {
        json_object *tg = json_object_array_get_idx(tgs, i);
        json_object *u = jobj(tg, "Update");
        int64_t mp = jget_i64(u, "MaxParallel", 1);
        if (mp <= 0) continue;
        sim_group *x = &g[n++];
        snprintf(x->name, sizeof(x->name), "%s", jstr(tg, "Name") ? jstr(tg, "Name") : "");
        x->count = jget_i64(tg, "Count", 1);
        x->max_parallel = mp;
        x->canary = jget_i64(u, "Canary", 0);
        jbool(u, "AutoRevert", &x->auto_revert);
        jbool(u, "AutoPromote", &x->auto_promote);
        x->progress_deadline_ns = jget_i64(u, "ProgressDeadline", DEF_PROGRESS_DEADLINE);
    }
    if (!n) {
        free(g);
        return 0;
    }
    *out = g;
    return n;
}

static int64_t ceil_div(int64_t a, int64_t b) { return b <= 0 ? 0 : (a + b - 1) / b; }

static void phase_start(sim_group *g, enum phase ph, int64_t t0, int64_t t1, int64_t todo) {
    g->ph = ph;
    g->t0 = t0;
    g->t1 = t1 < t0 ? t0 : t1;
    g->todo = todo < 0 ? 0 : todo;
    g->nb = ph == PH_CANARY ? 1 : ceil_div(g->todo, g->max_parallel);
    g->base_placed = g->placed;
    g->base_healthy = g->healthy;
}

static int64_t boundary(const sim_group *g, int64_t k) {
    return g->nb ? g->t0 + (g->t1 - g->t0) * k / g->nb : g->t0;
}

/* Counts of the group's current phase at time t. */
static void phase_counts(const sim_group *g, int64_t t, int64_t *placed, int64_t *healthy) {
    int64_t started = 0, done = 0;
    for (int64_t k = 0; k < g->nb; k++) {
        if (boundary(g, k) <= t) started++;
        if (boundary(g, k + 1) <= t) done++;
    }
    int64_t per = g->ph == PH_CANARY ? g->todo : g->max_parallel;
    int64_t p = started * per, h = done * per;
    if (p > g->todo) p = g->todo;
    if (h > g->todo) h = g->todo;
    *placed = g->base_placed + p;
    *healthy = g->base_healthy + h;
}

static int64_t phase_next(const sim_group *g, int64_t after) {
    for (int64_t k = 0; k <= g->nb; k++)
        if (boundary(g, k) > after) return boundary(g, k);
    return -1;
}

static void dep_touch(sim_state *st, sim_deployment *d, int64_t now) {
    d->modify_index = bump(st);
    d->modify_ms = now;
    st->idx_deployments = d->modify_index;
}

static void set_desc_running(sim_deployment *d) {
    bool waiting = false, all_auto = true;
    for (size_t i = 0; i < d->n_groups; i++) {
        const sim_group *g = &d->groups[i];
        if (g->canary > 0 && !g->promoted) {
            waiting = true;
            if (!g->auto_promote) all_auto = false;
        }
    }
    snprintf(d->desc, sizeof(d->desc), "%s",
             !waiting  ? "Deployment is running"
             : all_auto ? "Deployment is running pending automatic promotion"
                        : "Deployment is running but requires manual promotion");
}

/* Starts the rolling phase of a group at `now`, ending at `end`. */
static void group_roll(sim_group *g, int64_t now, int64_t end) {
    int64_t todo = g->count - g->healthy;
    phase_start(g, todo > 0 ? PH_ROLL : PH_DONE, now, end, todo);
}

static void job_mark_stable(sim_state *st, sim_job *j, uint64_t version, int64_t now) {
    (void)now;
    for (size_t i = 0; i < j->n_versions; i++)
        if ((uint64_t)jget_i64(j->versions[i], "Version", -1) == version)
            set_bool(j->versions[i], "Stable", true);
    if ((uint64_t)jget_i64(j->cur, "Version", -1) == version) {
        set_bool(j->cur, "Stable", true);
        j->modify_index = bump(st);
        set_u64(j->cur, "ModifyIndex", j->modify_index);
        st->idx_jobs = j->modify_index;
    }
}

static void dep_finish(sim_state *st, sim_deployment *d, const char *status, const char *desc, int64_t now) {
    snprintf(d->status, sizeof(d->status), "%s", status);
    snprintf(d->desc, sizeof(d->desc), "%s", desc);
    for (size_t i = 0; i < d->n_groups; i++)
        if (d->groups[i].ph != PH_DONE) d->groups[i].ph = PH_DONE;
    dep_touch(st, d, now);
}

/* Moves one deployment to time `now`. Returns true if it changed. */
static bool dep_advance(sim_state *st, sim_deployment *d, int64_t now) {
    if (!dep_active(d) || strcmp(d->status, "paused") == 0) return false;
    bool changed = false;
    for (size_t i = 0; i < d->n_groups; i++) {
        sim_group *g = &d->groups[i];
        if (g->ph == PH_DONE || g->ph == PH_WAIT_PROMOTE) continue;
        int64_t p, h;
        phase_counts(g, now, &p, &h);
        if (p != g->placed || h != g->healthy) {
            if (g->ph == PH_CANARY) {
                for (int64_t k = g->placed; k < p && k < g->canary; k++) {
                    char id[SIM_ID_LEN];
                    new_uuid(st, id);
                    memcpy(g->canary_ids[k], id, SIM_ID_LEN);
                }
            }
            g->placed = p;
            g->healthy = h;
            g->progress_ms = now;
            changed = true;
        }
        if (now >= g->t1 && g->healthy >= g->base_healthy + g->todo) {
            if (g->ph == PH_CANARY) {
                g->ph = PH_WAIT_PROMOTE;
            } else {
                g->ph = PH_DONE;
            }
            changed = true;
        }
    }
    /* Auto-promotion: every canary group healthy and every one AutoPromote. */
    bool any_wait = false, all_ready = true, all_auto = true;
    for (size_t i = 0; i < d->n_groups; i++) {
        const sim_group *g = &d->groups[i];
        if (g->canary > 0 && !g->promoted) {
            any_wait = true;
            if (g->ph != PH_WAIT_PROMOTE) all_ready = false;
            if (!g->auto_promote) all_auto = false;
        }
    }
    if (any_wait && all_ready && all_auto) {
        int64_t end = now + (d->end_ms - d->create_ms) / 2;
        for (size_t i = 0; i < d->n_groups; i++) {
            sim_group *g = &d->groups[i];
            if (g->canary > 0 && !g->promoted) {
                g->promoted = true;
                g->progress_ms = now;
                group_roll(g, now, end);
            }
        }
        changed = true;
    }
    bool all_done = true;
    for (size_t i = 0; i < d->n_groups; i++)
        if (d->groups[i].ph != PH_DONE) all_done = false;
    if (all_done) {
        dep_finish(st, d, "successful", "Deployment completed successfully", now);
        sim_job *j = find_job(st, d->ns, d->job_id);
        if (j && j->create_index == d->job_create_index) job_mark_stable(st, j, d->job_version, now);
        return true;
    }
    if (changed) {
        set_desc_running(d);
        dep_touch(st, d, now);
    }
    return changed;
}

/* Creates a deployment for the job's current version; start at `now`,
 * planned end `end`. Returns NULL if the job rolls out nothing. */
static sim_deployment *dep_create(sim_state *st, sim_job *j, int64_t now, int64_t end) {
    sim_group *groups;
    size_t n = deploy_groups(j->cur, &groups);
    if (!n) return NULL;
    sim_deployment *d = calloc(1, sizeof(*d));
    if (!d) {
        free(groups);
        return NULL;
    }
    d->groups = groups;
    d->n_groups = n;
    d->ns = xstrdup(j->ns);
    d->job_id = xstrdup(j->id);
    bool ok = d->ns && d->job_id;
    for (size_t i = 0; i < n && ok; i++) {
        sim_group *g = &groups[i];
        if (g->canary > 0) {
            g->canary_ids = calloc((size_t)g->canary, SIM_ID_LEN);
            ok = g->canary_ids != NULL;
        }
    }
    if (!ok || push((void ***)&st->deps, &st->n_deps, d) != 0) {
        dep_free(d);
        return NULL;
    }
    new_uuid(st, d->id);
    d->job_version = (uint64_t)jget_i64(j->cur, "Version", 0);
    d->job_modify_index = j->modify_index;
    d->job_spec_modify_index = j->job_modify_index;
    d->job_create_index = j->create_index;
    d->priority = jget_i64(j->cur, "Priority", 50);
    snprintf(d->status, sizeof(d->status), "running");
    d->end_ms = end < now ? now : end;
    d->create_ms = now;
    for (size_t i = 0; i < n; i++) {
        sim_group *g = &groups[i];
        if (g->canary > 0) {
            int64_t c = g->canary;
            phase_start(g, PH_CANARY, now, now + (d->end_ms - now) / 2, c);
        } else {
            group_roll(g, now, d->end_ms);
        }
    }
    set_desc_running(d);
    d->create_index = bump(st);
    d->modify_index = d->create_index;
    d->modify_ms = now;
    st->idx_deployments = d->create_index;
    dep_advance(st, d, now);   /* a zero-length rollout finishes at once */
    return d;
}

static void cancel_active(sim_state *st, sim_job *j, const char *desc, const sim_deployment *keep, int64_t now) {
    for (size_t i = 0; i < st->n_deps; i++) {
        sim_deployment *d = st->deps[i];
        if (d != keep && dep_active(d) && strcmp(d->ns, j->ns) == 0 && strcmp(d->job_id, j->id) == 0)
            dep_finish(st, d, "cancelled", desc, now);
    }
}

static sim_deployment *active_dep(const sim_state *st, const sim_job *j) {
    for (size_t i = st->n_deps; i-- > 0;) {
        sim_deployment *d = st->deps[i];
        if (dep_active(d) && strcmp(d->ns, j->ns) == 0 && strcmp(d->job_id, j->id) == 0) return d;
    }
    return NULL;
}

/* The "scheduler": completes a pending evaluation at its due time. */
static void eval_process(sim_state *st, sim_eval *e, int64_t now) {
    sim_job *j = find_job(st, e->ns, e->job_id);
    const sim_deployment *dep = NULL;
    if (j) {
        bool stop = false;
        jbool(j->cur, "Stop", &stop);
        if (stop) {
            cancel_active(st, j, "Cancelled because job is stopped", NULL, now);
        } else if (e->spec_changed && (uint64_t)jget_i64(j->cur, "Version", 0) == e->version) {
            sim_deployment *d = dep_create(st, j, now, e->reg_ms + st->health_ms);
            cancel_active(st, j, "Cancelled due to newer version of job", d, now);
            dep = d;
        } else {
            dep = active_dep(st, j);
        }
        const char *status = jstr(j->cur, "Status");
        const char *want = stop ? "dead" : "running";
        if (!status || strcmp(status, want) != 0) {
            set_str(j->cur, "Status", want);
            j->modify_index = bump(st);
            set_u64(j->cur, "ModifyIndex", j->modify_index);
            st->idx_jobs = j->modify_index;
        }
    }
    snprintf(e->status, sizeof(e->status), "complete");
    if (dep) snprintf(e->deployment_id, sizeof(e->deployment_id), "%s", dep->id);
    e->snapshot_index = st->index;
    e->modify_index = bump(st);
    e->modify_ms = now;
    st->idx_evals = e->modify_index;
}

bool sim_state_advance(sim_state *st, int64_t now_ms) {
    uint64_t before = st->index;
    if (now_ms > st->now_ms) st->now_ms = now_ms;
    now_ms = st->now_ms;
    for (size_t i = 0; i < st->n_evals; i++) {
        sim_eval *e = st->evals[i];
        if (!eval_terminal(e) && e->due_ms <= now_ms) eval_process(st, e, now_ms);
    }
    for (size_t i = 0; i < st->n_deps; i++) dep_advance(st, st->deps[i], now_ms);
    gc(st);
    return st->index != before;
}

int64_t sim_state_next_event(const sim_state *st) {
    int64_t best = -1;
    for (size_t i = 0; i < st->n_evals; i++) {
        const sim_eval *e = st->evals[i];
        if (!eval_terminal(e) && (best < 0 || e->due_ms < best)) best = e->due_ms;
    }
    for (size_t i = 0; i < st->n_deps; i++) {
        const sim_deployment *d = st->deps[i];
        if (strcmp(d->status, "running") != 0) continue;
        for (size_t k = 0; k < d->n_groups; k++) {
            const sim_group *g = &d->groups[k];
            if (g->ph != PH_ROLL && g->ph != PH_CANARY) continue;
            int64_t t = phase_next(g, st->now_ms);
            if (t < 0) t = g->t1 > st->now_ms ? g->t1 : st->now_ms;
            if (best < 0 || t < best) best = t;
        }
    }
    return best;
}

/* ---------- jobs ---------- */

static int job_push_version(sim_job *j) {
    json_object *c = deep_copy(j->cur);
    if (!c) return -1;
    if (j->n_versions == SIM_MAX_VERSIONS) {
        json_object_put(j->versions[0]);
        memmove(&j->versions[0], &j->versions[1], (SIM_MAX_VERSIONS - 1) * sizeof(j->versions[0]));
        j->n_versions--;
    }
    j->versions[j->n_versions++] = c;
    return 0;
}

static sim_eval *eval_create(sim_state *st, sim_job *j, const char *trigger, bool spec_changed, uint64_t index,
                             int64_t now) {
    sim_eval *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->ns = xstrdup(j->ns);
    e->job_id = xstrdup(j->id);
    e->job_type = xstrdup(jstr(j->cur, "Type") ? jstr(j->cur, "Type") : "service");
    if (!e->ns || !e->job_id || !e->job_type || push((void ***)&st->evals, &st->n_evals, e) != 0) {
        eval_free(e);
        return NULL;
    }
    new_uuid(st, e->id);
    e->priority = jget_i64(j->cur, "Priority", 50);
    snprintf(e->triggered_by, sizeof(e->triggered_by), "%s", trigger);
    snprintf(e->status, sizeof(e->status), "pending");
    e->job_modify_index = j->job_modify_index;
    e->version = (uint64_t)jget_i64(j->cur, "Version", 0);
    e->spec_changed = spec_changed;
    e->reg_ms = now;
    e->due_ms = now + st->sched_ms;
    e->create_index = e->modify_index = index;
    e->create_ms = e->modify_ms = now;
    st->idx_evals = index;
    return e;
}

/* Stores `job` (taken) as the job's new current version at `index`. */
static sim_job *job_upsert(sim_state *st, json_object *job, const char *ns, uint64_t index, int64_t now,
                           bool keep_stable_and_time) {
    const char *id = jstr(job, "ID");
    sim_job *j = find_job(st, ns, id);
    bool fresh = j == NULL;
    if (fresh) {
        if (st->n_jobs >= SIM_MAX_JOBS) {
            json_object_put(job);
            return NULL;
        }
        j = calloc(1, sizeof(*j));
        if (!j || !(j->ns = xstrdup(ns)) || !(j->id = xstrdup(id)) || push((void ***)&st->jobs, &st->n_jobs, j)) {
            if (j) {
                free(j->ns);
                free(j->id);
                free(j);
            }
            json_object_put(job);
            return NULL;
        }
        j->create_index = index;
    }
    uint64_t version = fresh ? 0 : (uint64_t)jget_i64(j->cur, "Version", 0) + 1;
    const char *old_status = fresh ? NULL : jstr(j->cur, "Status");
    set_u64(job, "Version", version);
    if (!keep_stable_and_time) {
        set_bool(job, "Stable", false);
        set_i64(job, "SubmitTime", wall_ns(st, now));
    }
    set_str(job, "Status", old_status && strcmp(old_status, "pending") != 0 ? old_status : "pending");
    set_str(job, "StatusDescription", "");
    set_default(job, "NomadTokenID", json_object_new_string(""));
    j->modify_index = j->job_modify_index = index;
    set_u64(job, "CreateIndex", j->create_index);
    set_u64(job, "ModifyIndex", index);
    set_u64(job, "JobModifyIndex", index);
    json_object_put(j->cur);
    j->cur = job;
    st->idx_jobs = index;
    if (job_push_version(j) != 0) return NULL;
    return j;
}

/* Decodes the top-level JSON of a request body the way Go's encoding/json
 * reports problems (texts approximate Go's decoder messages). */
static json_object *decode_body(const char *body, size_t len, char *err, size_t errlen) {
    if (len == 0) {
        seterr(err, errlen, "Request body is empty");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, body, (int)(len > (size_t)INT32_MAX ? INT32_MAX : len));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr == json_tokener_continue) {
        json_object_put(o);
        seterr(err, errlen, "unexpected EOF");
        return NULL;
    }
    if (!o && jerr != json_tokener_success) {
        unsigned char c = end < len ? (unsigned char)body[end] : 0;
        if (c >= 0x20 && c < 0x7f)
            seterr(err, errlen, "invalid character '%c' looking for beginning of value", c);
        else
            seterr(err, errlen, "invalid character looking for beginning of value");
        return NULL;
    }
    /* Go's decoder reads one value and ignores what follows; json-c does too. */
    if (o && !json_object_is_type(o, json_type_object)) {
        seterr(err, errlen, "json: cannot unmarshal %s into Go value of type api.JobRegisterRequest",
               json_object_is_type(o, json_type_array) ? "array" : json_object_is_type(o, json_type_string) ? "string"
               : json_object_is_type(o, json_type_boolean)                                                ? "bool"
                                                                                                          : "number");
        json_object_put(o);
        return NULL;
    }
    if (!o) seterr(err, errlen, "Job must be specified");   /* body "null" */
    return o;
}

int sim_register(sim_state *st, const char *body, size_t len, const sim_register_args *a, int64_t now_ms,
                 json_object **resp, uint64_t *index, char *err, size_t errlen) {
    *resp = NULL;
    *index = 0;
    sim_state_advance(st, now_ms);
    now_ms = st->now_ms;
    json_object *req = decode_body(body, len, err, errlen);
    if (!req) return SIM_ERR_BAD_REQUEST;
    json_object *jv;
    json_object_object_get_ex(req, "Job", &jv);
    if (jv && !json_object_is_type(jv, json_type_object)) {
        seterr(err, errlen, "json: cannot unmarshal %s into Go struct field JobRegisterRequest.Job of type api.Job",
               json_object_is_type(jv, json_type_array) ? "array" : "string");
        json_object_put(req);
        return SIM_ERR_BAD_REQUEST;
    }
    if (!jv) {
        seterr(err, errlen, "Job must be specified");
        json_object_put(req);
        return SIM_ERR_BAD_REQUEST;
    }
    json_object *idv;
    if (!json_object_object_get_ex(jv, "ID", &idv) || !idv) {
        seterr(err, errlen, "Job ID hasn't been provided");
        json_object_put(req);
        return SIM_ERR_BAD_REQUEST;
    }
    if (!json_object_is_type(idv, json_type_string)) {
        seterr(err, errlen, "json: cannot unmarshal number into Go struct field Job.Job.ID of type string");
        json_object_put(req);
        return SIM_ERR_BAD_REQUEST;
    }
    const char *jid = json_object_get_string(idv);
    if (a->path_id && strcmp(a->path_id, jid) != 0) {
        seterr(err, errlen, "Job ID does not match name");
        json_object_put(req);
        return SIM_ERR_BAD_REQUEST;
    }
    /* Precedence (§1.3): query > body top-level > Job field > default. */
    const char *ns = a->q_namespace && *a->q_namespace ? a->q_namespace : NULL;
    if (!ns && jstr(req, "Namespace") && *jstr(req, "Namespace")) ns = jstr(req, "Namespace");
    if (!ns && jstr(jv, "Namespace") && *jstr(jv, "Namespace")) ns = jstr(jv, "Namespace");
    if (!ns) ns = "default";
    const char *region = a->q_region && *a->q_region ? a->q_region : NULL;
    if (!region && jstr(req, "Region") && *jstr(req, "Region")) region = jstr(req, "Region");
    if (!region && jstr(jv, "Region") && *jstr(jv, "Region")) region = jstr(jv, "Region");
    if (!region) region = SIM_REGION;
    if (strcmp(region, SIM_REGION) != 0) {
        seterr(err, errlen, "No path to region");
        json_object_put(req);
        return SIM_ERR_SERVER;
    }
    int64_t prio;
    if (jint(req, "EvalPriority", &prio) && prio != 0 && (prio < 1 || prio > 100)) {
        seterr(err, errlen, "Eval priority must be between 1 and 100 inclusively");
        json_object_put(req);
        return SIM_ERR_BAD_REQUEST;
    }

    char nsbuf[SIM_NAME_MAX];
    snprintf(nsbuf, sizeof(nsbuf), "%s", ns);
    json_object *job = deep_copy(jv);
    if (!job) {
        json_object_put(req);
        seterr(err, errlen, "out of memory");
        return SIM_ERR_SERVER;
    }
    canonicalize(job, nsbuf, SIM_REGION);
    if (!validate_job(job, err, errlen)) {
        json_object_put(job);
        json_object_put(req);
        return SIM_ERR_SERVER;
    }
    bool enforce = false;
    jbool(req, "EnforceIndex", &enforce);
    int64_t jmi_s = 0;
    jint(req, "JobModifyIndex", &jmi_s);
    uint64_t jmi = (uint64_t)jmi_s;
    json_object_put(req);   /* jid and ns were copied or are not used below */

    const char *id = jstr(job, "ID");
    sim_job *existing = find_job(st, nsbuf, id);
    if (enforce) {
        if (existing) {
            if (jmi == 0) {
                seterr(err, errlen, ENFORCE_PREFIX " 0: job already exists");
                json_object_put(job);
                return SIM_ERR_SERVER;
            }
            if (jmi != existing->job_modify_index) {
                seterr(err, errlen, ENFORCE_PREFIX " %" PRIu64 ": job exists with conflicting job modify index: %" PRIu64,
                       jmi, existing->job_modify_index);
                json_object_put(job);
                return SIM_ERR_SERVER;
            }
        } else if (jmi != 0) {
            seterr(err, errlen, ENFORCE_PREFIX " %" PRIu64 ": job does not exist", jmi);
            json_object_put(job);
            return SIM_ERR_SERVER;
        }
    }
    if (!sim_namespace_exists(st, nsbuf)) {
        seterr(err, errlen, "job \"%s\" is in nonexistent namespace \"%s\"", id, nsbuf);
        json_object_put(job);
        return SIM_ERR_SERVER;
    }

    bool changed = !existing || !spec_equal(existing->cur, job);
    uint64_t idx = bump(st);
    uint64_t job_modify_index;
    sim_job *j = existing;
    if (changed) {
        j = job_upsert(st, job, nsbuf, idx, now_ms, false);
        if (!j) {
            seterr(err, errlen, "out of memory");
            return SIM_ERR_SERVER;
        }
        job_modify_index = j->job_modify_index;
    } else {
        json_object_put(job);
        job_modify_index = existing->modify_index;   /* §3.2: echoes the existing job's ModifyIndex */
    }
    sim_eval *e = eval_create(st, j, "job-register", changed, idx, now_ms);
    if (!e) {
        seterr(err, errlen, "out of memory");
        return SIM_ERR_SERVER;
    }
    json_object *r = json_object_new_object();
    set_str(r, "EvalID", e->id);
    set_u64(r, "EvalCreateIndex", e->create_index);
    set_u64(r, "JobModifyIndex", job_modify_index);
    set_str(r, "Warnings", "");
    set_u64(r, "Index", idx);
    set_i64(r, "LastContact", 0);
    set_bool(r, "KnownLeader", false);
    set_str(r, "NextToken", "");
    *resp = r;
    *index = idx;
    sim_state_advance(st, now_ms);   /* a zero scheduler delay completes the eval now */
    return SIM_OK;
}

int sim_state_load(sim_state *st, const char *json, size_t len, int64_t now_ms, char *err, size_t errlen) {
    st->now_ms = now_ms;
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        seterr(err, errlen, "out of memory");
        return SIM_ERR_SERVER;
    }
    json_object *arr = json_tokener_parse_ex(tok, json, (int)(len > (size_t)INT32_MAX ? INT32_MAX : len));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!arr || jerr != json_tokener_success) {
        json_object_put(arr);
        seterr(err, errlen, "jobs file is not valid JSON (offset %zu): %s", end, json_tokener_error_desc(jerr));
        return SIM_ERR_BAD_REQUEST;
    }
    for (; end < len; end++)
        if (!strchr(" \t\r\n", json[end])) {
            json_object_put(arr);
            seterr(err, errlen, "jobs file has trailing bytes at offset %zu", end);
            return SIM_ERR_BAD_REQUEST;
        }
    if (!json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        seterr(err, errlen, "jobs file must hold a JSON array of jobs");
        return SIM_ERR_BAD_REQUEST;
    }
    int rc = SIM_OK;
    for (size_t i = 0; i < json_object_array_length(arr) && rc == SIM_OK; i++) {
        json_object *in = json_object_array_get_idx(arr, i);
        const char *id = jstr(in, "ID");
        const char *ns = jstr(in, "Namespace");
        if (!json_object_is_type(in, json_type_object) || !id || !*id) {
            seterr(err, errlen, "job %zu: not an object with an ID", i);
            rc = SIM_ERR_BAD_REQUEST;
            break;
        }
        if (!ns || !*ns) ns = "default";
        if (find_job(st, ns, id)) {
            seterr(err, errlen, "job %zu: %s is listed twice in namespace %s", i, id, ns);
            rc = SIM_ERR_BAD_REQUEST;
            break;
        }
        char nsbuf[SIM_NAME_MAX];
        snprintf(nsbuf, sizeof(nsbuf), "%s", ns);
        if (add_namespace(st, nsbuf) != 0) {
            seterr(err, errlen, "too many namespaces");
            rc = SIM_ERR_SERVER;
            break;
        }
        json_object *job = deep_copy(in);
        if (!job) {
            rc = SIM_ERR_SERVER;
            break;
        }
        int64_t version = jget_i64(job, "Version", 0);
        bool stable = false;
        jbool(job, "Stable", &stable);
        const char *status = jstr(job, "Status");
        char statusbuf[32];
        snprintf(statusbuf, sizeof(statusbuf), "%s", status && *status ? status : "running");
        bool has_submit = json_object_object_get_ex(job, "SubmitTime", NULL);
        canonicalize(job, nsbuf, SIM_REGION);
        char verr[2048];
        if (!validate_job(job, verr, sizeof(verr))) {
            seterr(err, errlen, "job %s (namespace %s) is invalid: %s", jstr(job, "ID"), nsbuf, verr);
            json_object_put(job);
            rc = SIM_ERR_BAD_REQUEST;
            break;
        }
        if (!has_submit) set_i64(job, "SubmitTime", wall_ns(st, now_ms));
        uint64_t idx = bump(st);
        sim_job *j = job_upsert(st, job, nsbuf, idx, now_ms, true);
        if (!j) {
            seterr(err, errlen, "out of memory");
            rc = SIM_ERR_SERVER;
            break;
        }
        /* Keep the file's version history position and status. */
        set_i64(j->cur, "Version", version);
        set_bool(j->cur, "Stable", stable);
        set_str(j->cur, "Status", statusbuf);
        json_object_put(j->versions[j->n_versions - 1]);
        j->versions[j->n_versions - 1] = deep_copy(j->cur);
        if (!j->versions[j->n_versions - 1]) {
            j->n_versions--;
            rc = SIM_ERR_SERVER;
            break;
        }
        /* A job that was deployed before has a finished deployment. */
        if (stable && strcmp(statusbuf, "running") == 0) {
            sim_deployment *d = dep_create(st, j, now_ms, now_ms);
            if (d) dep_advance(st, d, now_ms);
        }
    }
    json_object_put(arr);
    return rc;
}

/* ---------- rendering ---------- */

static json_object *render_dep(const sim_state *st, const sim_deployment *d) {
    json_object *o = json_object_new_object();
    set_str(o, "ID", d->id);
    set_str(o, "Namespace", d->ns);
    set_str(o, "JobID", d->job_id);
    set_u64(o, "JobVersion", d->job_version);
    set_u64(o, "JobModifyIndex", d->job_modify_index);
    set_u64(o, "JobSpecModifyIndex", d->job_spec_modify_index);
    set_u64(o, "JobCreateIndex", d->job_create_index);
    set_bool(o, "IsMultiregion", false);
    set_i64(o, "EvalPriority", d->priority);
    set_str(o, "Status", d->status);
    set_str(o, "StatusDescription", d->desc);
    json_object *tgs = json_object_new_object();
    for (size_t i = 0; i < d->n_groups; i++) {
        const sim_group *g = &d->groups[i];
        json_object *s = json_object_new_object();
        set_bool(s, "AutoRevert", g->auto_revert);
        set_bool(s, "AutoPromote", g->auto_promote);
        set_i64(s, "ProgressDeadline", g->progress_deadline_ns);
        char ts[48] = "0001-01-01T00:00:00Z";
        if (g->placed > 0 && g->progress_deadline_ns > 0)
            rfc3339(st, g->progress_ms + g->progress_deadline_ns / 1000000, ts, sizeof(ts));
        set_str(s, "RequireProgressBy", ts);
        set_bool(s, "Promoted", g->promoted);
        int64_t placed_canaries = g->canary > 0 ? (g->placed < g->canary ? g->placed : g->canary) : 0;
        if (placed_canaries > 0) {
            json_object *pc = json_object_new_array();
            for (int64_t k = 0; k < placed_canaries; k++) json_object_array_add(pc, json_object_new_string(g->canary_ids[k]));
            json_object_object_add(s, "PlacedCanaries", pc);
        } else {
            json_object_object_add(s, "PlacedCanaries", NULL);
        }
        set_i64(s, "DesiredCanaries", g->canary);
        set_i64(s, "DesiredTotal", g->count);
        set_i64(s, "PlacedAllocs", g->placed);
        set_i64(s, "HealthyAllocs", g->healthy);
        set_i64(s, "UnhealthyAllocs", g->unhealthy);
        json_object_object_add(tgs, g->name, s);
    }
    json_object_object_add(o, "TaskGroups", tgs);
    set_u64(o, "CreateIndex", d->create_index);
    set_u64(o, "ModifyIndex", d->modify_index);
    set_i64(o, "CreateTime", wall_ns(st, d->create_ms));
    set_i64(o, "ModifyTime", wall_ns(st, d->modify_ms));
    return o;
}

/* Evaluations omit empty fields (§13). */
static json_object *render_eval(const sim_state *st, const sim_eval *e) {
    json_object *o = json_object_new_object();
    set_str(o, "ID", e->id);
    set_str(o, "Namespace", e->ns);
    set_i64(o, "Priority", e->priority);
    set_str(o, "Type", e->job_type);
    set_str(o, "TriggeredBy", e->triggered_by);
    set_str(o, "JobID", e->job_id);
    set_u64(o, "JobModifyIndex", e->job_modify_index);
    if (e->deployment_id[0]) set_str(o, "DeploymentID", e->deployment_id);
    set_str(o, "Status", e->status);
    if (eval_terminal(e)) {
        sim_job *j = find_job(st, e->ns, e->job_id);
        json_object *q = json_object_new_object();
        json_object *tgs = j ? jarr(j->cur, "TaskGroups") : NULL;
        for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
            const char *gn = jstr(json_object_array_get_idx(tgs, i), "Name");
            if (gn) set_i64(q, gn, 0);
        }
        json_object_object_add(o, "QueuedAllocations", q);
        set_u64(o, "SnapshotIndex", e->snapshot_index);
    }
    set_u64(o, "CreateIndex", e->create_index);
    set_u64(o, "ModifyIndex", e->modify_index);
    set_i64(o, "CreateTime", wall_ns(st, e->create_ms));
    set_i64(o, "ModifyTime", wall_ns(st, e->modify_ms));
    return o;
}

/* ---------- reads ---------- */

json_object *sim_job_get(const sim_state *st, const char *ns, const char *id, uint64_t *index) {
    sim_job *j = find_job(st, ns, id);
    *index = j ? j->modify_index : st->idx_jobs;
    return j ? deep_copy(j->cur) : NULL;
}

json_object *sim_job_list(const sim_state *st, const char *ns, uint64_t *index) {
    json_object *a = json_object_new_array();
    *index = st->idx_jobs;
    for (size_t i = 0; i < st->n_jobs; i++) {
        const sim_job *j = st->jobs[i];
        if (strcmp(ns, "*") != 0 && strcmp(j->ns, ns) != 0) continue;
        json_object *s = json_object_new_object();
        static const char *const keys[] = {"ID", "ParentID", "Name", "Namespace", "Datacenters", "Type", "Priority",
                                           "Periodic", "ParameterizedJob", "Stop", "Status", "StatusDescription",
                                           "Version", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            json_object *v;
            if (json_object_object_get_ex(j->cur, keys[k], &v)) json_object_object_add(s, keys[k], json_object_get(v));
        }
        json_object_object_add(s, "JobSummary", NULL);
        json_object_array_add(a, s);
    }
    return a;
}

json_object *sim_job_versions(const sim_state *st, const char *ns, const char *id, uint64_t *index) {
    sim_job *j = find_job(st, ns, id);
    *index = j ? j->modify_index : st->idx_jobs;
    if (!j) return NULL;
    json_object *o = json_object_new_object();
    json_object *v = json_object_new_array();
    for (size_t i = j->n_versions; i-- > 0;) json_object_array_add(v, deep_copy(j->versions[i]));
    json_object_object_add(o, "Diffs", NULL);
    set_u64(o, "Index", *index);
    set_bool(o, "KnownLeader", true);
    set_i64(o, "LastContact", 0);
    set_str(o, "NextToken", "");
    json_object_object_add(o, "Versions", v);
    return o;
}

json_object *sim_job_latest_deployment(const sim_state *st, const char *ns, const char *id, uint64_t *index) {
    *index = st->idx_deployments;
    const sim_deployment *best = NULL;
    for (size_t i = 0; i < st->n_deps; i++) {
        const sim_deployment *d = st->deps[i];
        if (strcmp(d->ns, ns) == 0 && strcmp(d->job_id, id) == 0 && (!best || d->create_index > best->create_index))
            best = d;
    }
    return best ? render_dep(st, best) : NULL;
}

static int cmp_dep_id(const void *a, const void *b) {
    return strcmp(json_object_get_string(json_object_object_get(*(json_object *const *)a, "ID")),
                  json_object_get_string(json_object_object_get(*(json_object *const *)b, "ID")));
}

json_object *sim_job_deployments(const sim_state *st, const char *ns, const char *id, uint64_t *index) {
    *index = st->idx_deployments;
    json_object *a = json_object_new_array();
    sim_job *j = find_job(st, ns, id);
    for (size_t i = 0; i < st->n_deps; i++) {
        const sim_deployment *d = st->deps[i];
        /* Without ?all only the current incarnation's deployments (§3.6). */
        if (strcmp(d->ns, ns) == 0 && strcmp(d->job_id, id) == 0 && (!j || d->job_create_index == j->create_index))
            json_object_array_add(a, render_dep(st, d));
    }
    json_object_array_sort(a, cmp_dep_id);   /* index order, effectively by ID */
    return a;
}

json_object *sim_job_evaluations(const sim_state *st, const char *ns, const char *id, uint64_t *index) {
    *index = st->idx_evals;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < st->n_evals; i++) {
        const sim_eval *e = st->evals[i];
        if (strcmp(e->ns, ns) == 0 && strcmp(e->job_id, id) == 0) json_object_array_add(a, render_eval(st, e));
    }
    return a;
}

json_object *sim_deployment_get(const sim_state *st, const char *id, uint64_t *index) {
    const sim_deployment *d = find_dep(st, id);
    *index = d ? d->modify_index : st->idx_deployments;
    return d ? render_dep(st, d) : NULL;
}

json_object *sim_deployment_list(const sim_state *st, const char *ns, uint64_t *index) {
    *index = st->idx_deployments;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < st->n_deps; i++)
        if (strcmp(ns, "*") == 0 || strcmp(st->deps[i]->ns, ns) == 0) json_object_array_add(a, render_dep(st, st->deps[i]));
    json_object_array_sort(a, cmp_dep_id);
    return a;
}

json_object *sim_eval_get(const sim_state *st, const char *id, uint64_t *index) {
    const sim_eval *e = find_eval(st, id);
    *index = e ? e->modify_index : st->idx_evals;
    return e ? render_eval(st, e) : NULL;
}

/* ---------- deployment writes ---------- */

static json_object *dep_write_resp(const sim_eval *e, const sim_deployment *d, const int64_t *reverted, uint64_t idx) {
    json_object *r = json_object_new_object();
    set_str(r, "EvalID", e ? e->id : "");
    set_u64(r, "EvalCreateIndex", e ? e->create_index : 0);
    set_u64(r, "DeploymentModifyIndex", d->modify_index);
    if (reverted) set_i64(r, "RevertedJobVersion", *reverted);
    else json_object_object_add(r, "RevertedJobVersion", NULL);
    set_u64(r, "Index", idx);
    return r;
}

int sim_deployment_promote(sim_state *st, const char *id, const char *const *groups, size_t n_groups, int64_t now_ms,
                           json_object **resp, uint64_t *index, char *err, size_t errlen) {
    *resp = NULL;
    sim_state_advance(st, now_ms);
    now_ms = st->now_ms;
    sim_deployment *d = find_dep(st, id);
    if (!d) {
        seterr(err, errlen, "deployment not found");
        return SIM_ERR_SERVER;
    }
    if (!dep_active(d)) {
        seterr(err, errlen, "can't promote terminal deployment");
        return SIM_ERR_SERVER;
    }
    merr m = {.n = 0};
    for (size_t i = 0; i < d->n_groups; i++) {
        sim_group *g = &d->groups[i];
        bool chosen = !groups;
        for (size_t k = 0; groups && k < n_groups; k++)
            if (strcmp(groups[k], g->name) == 0) chosen = true;
        if (!chosen || g->canary == 0) continue;
        int64_t healthy_canaries = g->ph == PH_CANARY ? g->healthy - g->base_healthy : g->canary;
        if (healthy_canaries < g->canary)
            merr_add(&m, "Task group \"%s\" has %" PRId64 "/%" PRId64 " healthy allocations", g->name, healthy_canaries,
                     g->canary);
    }
    if (m.n) {
        merr_format(&m, err, errlen);
        return SIM_ERR_SERVER;
    }
    int64_t end = now_ms + (d->end_ms - d->create_ms) / 2;
    for (size_t i = 0; i < d->n_groups; i++) {
        sim_group *g = &d->groups[i];
        bool chosen = !groups;
        for (size_t k = 0; groups && k < n_groups; k++)
            if (strcmp(groups[k], g->name) == 0) chosen = true;
        if (!chosen || g->promoted) continue;
        g->promoted = true;
        g->progress_ms = now_ms;
        if (g->canary > 0) group_roll(g, now_ms, end);
    }
    set_desc_running(d);
    dep_touch(st, d, now_ms);
    sim_job *j = find_job(st, d->ns, d->job_id);
    sim_eval *e = j ? eval_create(st, j, "deployment-watcher", false, d->modify_index, now_ms) : NULL;
    *resp = dep_write_resp(e, d, NULL, d->modify_index);
    *index = d->modify_index;
    sim_state_advance(st, now_ms);
    return SIM_OK;
}

int sim_deployment_fail(sim_state *st, const char *id, int64_t now_ms, json_object **resp, uint64_t *index,
                        char *err, size_t errlen) {
    *resp = NULL;
    sim_state_advance(st, now_ms);
    now_ms = st->now_ms;
    sim_deployment *d = find_dep(st, id);
    if (!d) {
        seterr(err, errlen, "deployment not found");
        return SIM_ERR_SERVER;
    }
    if (!dep_active(d)) {
        seterr(err, errlen, "can't fail terminal deployment");
        return SIM_ERR_SERVER;
    }
    bool auto_revert = false;
    for (size_t i = 0; i < d->n_groups; i++) auto_revert |= d->groups[i].auto_revert;
    char desc[192] = "Deployment marked as failed";
    sim_job *j = find_job(st, d->ns, d->job_id);
    json_object *target = NULL;
    int64_t reverted = -1;
    if (auto_revert && j) {
        /* Newest stable version other than the failing one (§7 step 6). */
        for (size_t i = j->n_versions; i-- > 0 && !target;) {
            bool stable = false;
            jbool(j->versions[i], "Stable", &stable);
            if (stable && (uint64_t)jget_i64(j->versions[i], "Version", -1) != d->job_version) target = j->versions[i];
        }
        if (!target) {
            snprintf(desc, sizeof(desc), "Deployment marked as failed - no stable job version to auto revert to");
        } else if (spec_equal(target, j->cur)) {
            snprintf(desc, sizeof(desc),
                     "Deployment marked as failed - not rolling back to stable job version %" PRId64
                     " as current job has same specification",
                     jget_i64(target, "Version", 0));
            target = NULL;
        } else {
            reverted = jget_i64(target, "Version", 0);
            snprintf(desc, sizeof(desc), "Deployment marked as failed - rolling back to job version %" PRId64, reverted);
        }
    }
    dep_finish(st, d, "failed", desc, now_ms);
    sim_eval *e = NULL;
    if (target && j) {
        /* Auto-revert copies the stable version as stored (§13). */
        json_object *copy = deep_copy(target);
        uint64_t idx = bump(st);
        sim_job *nj = copy ? job_upsert(st, copy, j->ns, idx, now_ms, true) : NULL;
        if (nj) e = eval_create(st, nj, "deployment-watcher", true, idx, now_ms);
    } else if (j) {
        e = eval_create(st, j, "deployment-watcher", false, bump(st), now_ms);
    }
    *resp = dep_write_resp(e, d, reverted >= 0 ? &reverted : NULL, st->index);
    *index = st->index;
    sim_state_advance(st, now_ms);
    return SIM_OK;
}
