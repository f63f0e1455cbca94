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


#define SIM_MAX_ALLOCS 16384
#define SIM_MAX_EVENTS 10          /* task events kept per allocation */
#define SIM_MAX_COUNT 1000         /* ceiling on a group's Count, so one register cannot exhaust memory */

typedef struct sim_group {
    char name[SIM_NAME_MAX];
    int64_t count, max_parallel, canary;
    bool auto_revert, auto_promote, promoted;
    int64_t progress_deadline_ns, healthy_deadline_ms;
    int64_t rpb_ms;             /* RequireProgressBy on the state clock; 0 = Go's zero time */
    int mode;                   /* behaviour resolved when the deployment was created */
    int64_t after_ms;
    int64_t placed, healthy, unhealthy;
    int64_t n_canary_ids;
    char (*canary_ids)[SIM_ID_LEN];
} sim_group;

typedef struct sim_deployment {
    char id[SIM_ID_LEN];
    char eval_id[SIM_ID_LEN];   /* the eval that created it: allocations carry it */
    char *ns, *job_id;
    uint64_t job_version, job_modify_index, job_spec_modify_index, job_create_index;
    int64_t priority;
    char status[16];
    char desc[192];
    sim_group *groups;
    size_t n_groups;
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
    json_object *failed_tg;     /* owned; FailedTGAllocs or NULL */
    uint64_t create_index, modify_index;
    int64_t create_ms, modify_ms;
} sim_eval;

typedef struct sim_alloc {
    char id[SIM_ID_LEN], eval_id[SIM_ID_LEN], dep_id[SIM_ID_LEN], node_id[SIM_ID_LEN];
    char *ns, *job_id, *group, *job_type, *image;
    char name[SIM_NAME_MAX * 2 + 32];
    json_object *tasks;         /* owned: array of task names */
    uint64_t job_version;
    bool canary, desired_stop, replaced_old;
    char client[12];            /* pending | running | complete | failed */
    char desired_desc[96];
    int health;                 /* -1 not yet determined, 0 unhealthy, 1 healthy */
    int64_t health_ms;
    int mode;
    int64_t after_ms, placed_ms, deadline_ms, finished_ms;
    int64_t restarts;
    uint64_t create_index, modify_index;
    int64_t create_ms, modify_ms;
} sim_alloc;

typedef struct sim_job {
    char *ns, *id;
    json_object *cur;                          /* owned; the job as read back */
    json_object *versions[SIM_MAX_VERSIONS];   /* owned copies, oldest first */
    size_t n_versions;
    uint64_t create_index, modify_index, job_modify_index;
} sim_job;

typedef struct sim_behaviour {
    char ns[SIM_NAME_MAX], job[SIM_NAME_MAX];
    int64_t version;            /* -1: every version */
    int mode;
    int64_t after_ms;           /* -1: default */
} sim_behaviour;

struct sim_state {
    int64_t health_ms, sched_ms, wall_offset_ms, now_ms;
    uint64_t rng;
    uint64_t index, idx_jobs, idx_deployments, idx_evals, idx_allocs;
    sim_job **jobs;
    size_t n_jobs;
    sim_deployment **deps;
    size_t n_deps;
    sim_eval **evals;
    size_t n_evals;
    sim_alloc **allocs;
    size_t n_allocs;
    char *namespaces[SIM_MAX_NAMESPACES];
    size_t n_namespaces;
    sim_behaviour behaviours[SIM_MAX_BEHAVIOURS];
    size_t n_behaviours;
};

static bool alloc_terminal(const sim_alloc *a);
static void alloc_free(sim_alloc *a);

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
    json_object_put(e->failed_tg);
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
    for (size_t i = 0; i < st->n_allocs; i++) alloc_free(st->allocs[i]);
    free(st->allocs);
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
    while (st->n_allocs > SIM_MAX_ALLOCS * 3 / 4) {
        size_t i = 0;
        while (i < st->n_allocs && !(st->allocs[i]->desired_stop || alloc_terminal(st->allocs[i]))) i++;
        if (i == st->n_allocs) break;
        alloc_free(st->allocs[i]);
        memmove(&st->allocs[i], &st->allocs[i + 1], (st->n_allocs - i - 1) * sizeof(st->allocs[0]));
        st->n_allocs--;
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


/* ---------- behaviours ---------- */

static const char *const mode_names[] = {"healthy", "unhealthy", "never_placed", "flapping"};

int sim_mode_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, mode_names[i]) == 0) return i;
    return -1;
}

const char *sim_mode_name(int mode) { return mode >= 0 && mode < 4 ? mode_names[mode] : "healthy"; }

int sim_behaviour_set(sim_state *st, const char *ns, const char *job, int64_t version, int mode, int64_t after_ms) {
    if (mode < 0 || mode > 3 || !ns || !job || strlen(ns) >= SIM_NAME_MAX || strlen(job) >= SIM_NAME_MAX) return -1;
    sim_behaviour *b = NULL;
    for (size_t i = 0; i < st->n_behaviours && !b; i++) {
        sim_behaviour *x = &st->behaviours[i];
        if (strcmp(x->ns, ns) == 0 && strcmp(x->job, job) == 0 && x->version == (version < 0 ? -1 : version)) b = x;
    }
    if (!b) {
        if (st->n_behaviours == SIM_MAX_BEHAVIOURS) return -1;
        b = &st->behaviours[st->n_behaviours++];
    }
    snprintf(b->ns, sizeof(b->ns), "%s", ns);
    snprintf(b->job, sizeof(b->job), "%s", job);
    b->version = version < 0 ? -1 : version;
    b->mode = mode;
    b->after_ms = after_ms < 0 ? -1 : after_ms;
    return 0;
}

int sim_behaviour_set_json(sim_state *st, json_object *o, char *err, size_t errlen) {
    if (!o || !json_object_is_type(o, json_type_object)) {
        seterr(err, errlen, "a behaviour must be a JSON object");
        return -1;
    }
    const char *ns = jstr(o, "namespace"), *job = jstr(o, "job"), *mode = jstr(o, "mode");
    if (!ns || !*ns) ns = "default";
    if (!job || !*job) {
        seterr(err, errlen, "behaviour: \"job\" (string) is required");
        return -1;
    }
    int m = sim_mode_parse(mode);
    if (m < 0) {
        seterr(err, errlen, "behaviour: \"mode\" must be healthy, unhealthy, never_placed or flapping");
        return -1;
    }
    int64_t version = -1, after = -1;
    json_object *v;
    if (json_object_object_get_ex(o, "version", &v) && v) {
        if (!jint(o, "version", &version) || version < 0) {
            seterr(err, errlen, "behaviour: \"version\" must be a non-negative integer or null");
            return -1;
        }
    }
    if (json_object_object_get_ex(o, "after_ms", &v) && v) {
        if (!jint(o, "after_ms", &after) || after < 0 || after > 24LL * 3600 * 1000) {
            seterr(err, errlen, "behaviour: \"after_ms\" must be 0..86400000");
            return -1;
        }
    }
    if (sim_behaviour_set(st, ns, job, version, m, after) != 0) {
        seterr(err, errlen, "behaviour: table full (%d entries) or names too long", SIM_MAX_BEHAVIOURS);
        return -1;
    }
    return 0;
}

void sim_behaviour_clear(sim_state *st) { st->n_behaviours = 0; }

json_object *sim_behaviour_list(const sim_state *st) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < st->n_behaviours; i++) {
        const sim_behaviour *b = &st->behaviours[i];
        json_object *o = json_object_new_object();
        set_str(o, "namespace", b->ns);
        set_str(o, "job", b->job);
        json_object_object_add(o, "version", b->version < 0 ? NULL : json_object_new_int64(b->version));
        set_str(o, "mode", sim_mode_name(b->mode));
        json_object_object_add(o, "after_ms", b->after_ms < 0 ? NULL : json_object_new_int64(b->after_ms));
        json_object_array_add(a, o);
    }
    return a;
}

/* The most specific behaviour for (ns, job, version): exact version first. */
static const sim_behaviour *behaviour_for(const sim_state *st, const char *ns, const char *job, uint64_t version) {
    const sim_behaviour *any = NULL;
    for (size_t i = 0; i < st->n_behaviours; i++) {
        const sim_behaviour *b = &st->behaviours[i];
        if (strcmp(b->ns, ns) != 0 || strcmp(b->job, job) != 0) continue;
        if (b->version == (int64_t)version) return b;
        if (b->version < 0) any = b;
    }
    return any;
}

/* ---------- allocations ---------- */

static int64_t jget_i64(json_object *o, const char *key, int64_t def) {
    int64_t v;
    return jint(o, key, &v) ? v : def;
}

static void alloc_free(sim_alloc *a) {
    if (!a) return;
    free(a->ns);
    free(a->job_id);
    free(a->group);
    free(a->job_type);
    free(a->image);
    json_object_put(a->tasks);
    free(a);
}

static sim_alloc *find_alloc(const sim_state *st, const char *id) {
    for (size_t i = 0; i < st->n_allocs; i++)
        if (strcmp(st->allocs[i]->id, id) == 0) return st->allocs[i];
    return NULL;
}

static bool alloc_terminal(const sim_alloc *a) {
    return strcmp(a->client, "complete") == 0 || strcmp(a->client, "failed") == 0;
}

static bool same_job(const sim_alloc *a, const char *ns, const char *job) {
    return strcmp(a->ns, ns) == 0 && strcmp(a->job_id, job) == 0;
}

static void alloc_touch(sim_state *st, sim_alloc *a, int64_t now) {
    a->modify_index = bump(st);
    a->modify_ms = now;
    st->idx_allocs = a->modify_index;
}

static json_object *job_group(json_object *job, const char *name) {
    json_object *tgs = jarr(job, "TaskGroups");
    for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
        json_object *g = json_object_array_get_idx(tgs, i);
        const char *n = jstr(g, "Name");
        if (n && strcmp(n, name) == 0) return g;
    }
    return NULL;
}

/* Places one allocation of group `tg` of job j's current version. dep may
 * be NULL (no deployment). Returns NULL when out of memory or over the
 * ceiling (the simulator then just places fewer). */
static sim_alloc *alloc_place(sim_state *st, sim_job *j, json_object *tg, const sim_deployment *d, const char *eval_id,
                              bool canary, int mode, int64_t after_ms, int64_t healthy_deadline_ms, int64_t now) {
    if (st->n_allocs >= SIM_MAX_ALLOCS) return NULL;
    sim_alloc *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    const char *gname = jstr(tg, "Name") ? jstr(tg, "Name") : "";
    a->ns = xstrdup(j->ns);
    a->job_id = xstrdup(j->id);
    a->group = xstrdup(gname);
    a->job_type = xstrdup(jstr(j->cur, "Type") ? jstr(j->cur, "Type") : "service");
    a->tasks = json_object_new_array();
    json_object *tasks = jarr(tg, "Tasks");
    const char *image = "";
    for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++) {
        json_object *t = json_object_array_get_idx(tasks, i);
        const char *tn = jstr(t, "Name");
        json_object_array_add(a->tasks, json_object_new_string(tn ? tn : ""));
        const char *im = jstr(jobj(t, "Config"), "image");
        if (i == 0 && im) image = im;
    }
    a->image = xstrdup(image);
    if (!a->ns || !a->job_id || !a->group || !a->job_type || !a->image || !a->tasks ||
        push((void ***)&st->allocs, &st->n_allocs, a) != 0) {
        alloc_free(a);
        return NULL;
    }
    /* Name index: the next "job.group[i]" among this version's live allocations
     * (one pass: a scan per candidate index would be quadratic in Count). */
    int64_t idx = 0;
    uint64_t version = (uint64_t)jget_i64(j->cur, "Version", 0);
    for (size_t i = 0; i + 1 < st->n_allocs; i++) {
        const sim_alloc *o = st->allocs[i];
        if (!o->desired_stop && o->job_version == version && same_job(o, j->ns, j->id) && strcmp(o->group, gname) == 0)
            idx++;
    }
    snprintf(a->name, sizeof(a->name), "%s.%s[%" PRId64 "]", j->id, gname, idx);
    new_uuid(st, a->id);
    new_uuid(st, a->node_id);
    snprintf(a->eval_id, sizeof(a->eval_id), "%s", eval_id ? eval_id : "");
    if (d) snprintf(a->dep_id, sizeof(a->dep_id), "%s", d->id);
    a->job_version = (uint64_t)jget_i64(j->cur, "Version", 0);
    a->canary = canary;
    snprintf(a->client, sizeof(a->client), "pending");
    a->health = -1;
    a->mode = mode;
    a->after_ms = after_ms < 0 ? 0 : after_ms;
    a->placed_ms = now;
    a->deadline_ms = now + (healthy_deadline_ms > 0 ? healthy_deadline_ms : DEF_HEALTHY_DEADLINE / 1000000);
    a->create_index = a->modify_index = bump(st);
    a->create_ms = a->modify_ms = now;
    st->idx_allocs = a->create_index;
    return a;
}

static void alloc_stop(sim_state *st, sim_alloc *a, const char *why, int64_t now) {
    if (a->desired_stop) return;
    a->desired_stop = true;
    snprintf(a->desired_desc, sizeof(a->desired_desc), "%s", why);
    if (!alloc_terminal(a)) {
        snprintf(a->client, sizeof(a->client), "complete");
        a->finished_ms = now;
    }
    alloc_touch(st, a, now);
}

/* Moves one allocation to `now` per its behaviour. True if it changed. */
static bool alloc_advance(sim_state *st, sim_alloc *a, int64_t now) {
    if (a->desired_stop || alloc_terminal(a)) return false;
    bool changed = false;
    int64_t run_at = a->placed_ms + a->after_ms / 2, done_at = a->placed_ms + a->after_ms;
    if (strcmp(a->client, "pending") == 0 && now >= run_at) {
        snprintf(a->client, sizeof(a->client), "running");
        changed = true;
    }
    bool in_dep = a->dep_id[0] != '\0';
    switch (a->mode) {
    case SIM_MODE_HEALTHY:
        if (in_dep && a->health < 0 && now >= done_at) {
            a->health = 1;
            a->health_ms = done_at;
            changed = true;
        }
        break;
    case SIM_MODE_UNHEALTHY:
        if (now >= done_at) {
            snprintf(a->client, sizeof(a->client), "failed");
            a->finished_ms = done_at;
            if (in_dep) a->health = 0;
            a->health_ms = done_at;
            changed = true;
        }
        break;
    case SIM_MODE_FLAPPING: {
        int64_t until = now < a->deadline_ms ? now : a->deadline_ms;
        int64_t r = a->after_ms > 0 && until > a->placed_ms ? (until - a->placed_ms) / a->after_ms : 0;
        if (r != a->restarts) {
            a->restarts = r;
            changed = true;
        }
        if (now >= a->deadline_ms) {
            /* Never ran MinHealthyTime in one go: the deadline marks it unhealthy. */
            snprintf(a->client, sizeof(a->client), "failed");
            a->finished_ms = a->deadline_ms;
            if (in_dep) a->health = 0;
            a->health_ms = a->deadline_ms;
            changed = true;
        }
        break;
    }
    default:
        break;
    }
    if (changed) alloc_touch(st, a, now);
    return changed;
}

static int64_t alloc_next_event(const sim_alloc *a) {
    if (a->desired_stop || alloc_terminal(a)) return -1;
    int64_t run_at = a->placed_ms + a->after_ms / 2, done_at = a->placed_ms + a->after_ms;
    if (strcmp(a->client, "pending") == 0) return run_at;
    if (a->mode == SIM_MODE_HEALTHY) return a->health < 0 && a->dep_id[0] ? done_at : -1;
    if (a->mode == SIM_MODE_UNHEALTHY) return done_at;
    if (a->mode == SIM_MODE_FLAPPING) {
        int64_t next = a->after_ms > 0 ? a->placed_ms + (a->restarts + 1) * a->after_ms : a->deadline_ms;
        return next < a->deadline_ms ? next : a->deadline_ms;
    }
    return -1;
}

/* ---------- deployments ---------- */

static sim_eval *eval_create(sim_state *st, sim_job *j, const char *trigger, bool spec_changed, uint64_t index,
                             int64_t now);
static sim_job *job_upsert(sim_state *st, json_object *job, const char *ns, uint64_t index, int64_t now,
                           bool keep_stable_and_time);

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
        if (x->count > SIM_MAX_COUNT) x->count = SIM_MAX_COUNT;
        x->max_parallel = mp;
        x->canary = jget_i64(u, "Canary", 0);
        if (x->canary < 0) x->canary = 0;
        if (x->canary > SIM_MAX_COUNT) x->canary = SIM_MAX_COUNT;
        jbool(u, "AutoRevert", &x->auto_revert);
        jbool(u, "AutoPromote", &x->auto_promote);
        x->progress_deadline_ns = jget_i64(u, "ProgressDeadline", DEF_PROGRESS_DEADLINE);
        x->healthy_deadline_ms = jget_i64(u, "HealthyDeadline", DEF_HEALTHY_DEADLINE) / 1000000;
    }
    if (!n) {
        free(g);
        return 0;
    }
    *out = g;
    return n;
}

static int64_t ceil_div(int64_t a, int64_t b) { return b <= 0 ? 0 : (a + b - 1) / b; }

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

static void job_set_status(sim_state *st, sim_job *j, const char *status) {
    const char *cur = jstr(j->cur, "Status");
    if (cur && strcmp(cur, status) == 0) return;
    set_str(j->cur, "Status", status);
    j->modify_index = bump(st);
    set_u64(j->cur, "ModifyIndex", j->modify_index);
    st->idx_jobs = j->modify_index;
}

static void job_mark_stable(sim_state *st, sim_job *j, uint64_t version) {
    for (size_t i = 0; i < j->n_versions; i++)
        if ((uint64_t)jget_i64(j->versions[i], "Version", -1) == version) set_bool(j->versions[i], "Stable", true);
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
    /* Non-promoted canaries of a finished-unsuccessfully deployment are stopped (§7 step 4). */
    if (strcmp(status, "successful") != 0) {
        for (size_t i = 0; i < st->n_allocs; i++) {
            sim_alloc *a = st->allocs[i];
            if (a->canary && strcmp(a->dep_id, d->id) == 0) {
                const sim_group *g = NULL;
                for (size_t k = 0; k < d->n_groups; k++)
                    if (strcmp(d->groups[k].name, a->group) == 0) g = &d->groups[k];
                if (g && !g->promoted) alloc_stop(st, a, "alloc not needed as deployment is no longer active", now);
            }
        }
    }
    dep_touch(st, d, now);
}


/* Stops up to n live allocations of the group that belong to older versions. */
static void stop_old(sim_state *st, const sim_deployment *d, const char *group, int64_t n, int64_t now) {
    for (size_t i = 0; i < st->n_allocs && n > 0; i++) {
        sim_alloc *a = st->allocs[i];
        if (a->desired_stop || !same_job(a, d->ns, d->job_id) || strcmp(a->group, group) != 0) continue;
        if (strcmp(a->dep_id, d->id) == 0) continue;
        alloc_stop(st, a, "alloc is being updated due to job update", now);
        n--;
    }
}

static sim_deployment *find_dep(const sim_state *st, const char *id);

/* Fails a deployment with base description `base`; with AutoRevert on any
 * group re-registers the newest stable version (§7 step 6). Returns the
 * follow-up eval (or NULL) and the version reverted to in *reverted (-1). */
static sim_eval *dep_fail(sim_state *st, sim_deployment *d, const char *base, int64_t now, int64_t *reverted) {
    *reverted = -1;
    bool auto_revert = false;
    for (size_t i = 0; i < d->n_groups; i++) auto_revert |= d->groups[i].auto_revert;
    char desc[192];
    snprintf(desc, sizeof(desc), "%s", base);
    sim_job *j = find_job(st, d->ns, d->job_id);
    json_object *target = NULL;
    if (auto_revert && j) {
        for (size_t i = j->n_versions; i-- > 0 && !target;) {
            bool stable = false;
            jbool(j->versions[i], "Stable", &stable);
            if (stable && (uint64_t)jget_i64(j->versions[i], "Version", -1) != d->job_version) target = j->versions[i];
        }
        if (!target) {
            snprintf(desc, sizeof(desc), "%s - no stable job version to auto revert to", base);
        } else if (spec_equal(target, j->cur)) {
            snprintf(desc, sizeof(desc),
                     "%s - not rolling back to stable job version %" PRId64 " as current job has same specification",
                     base, jget_i64(target, "Version", 0));
            target = NULL;
        } else {
            *reverted = jget_i64(target, "Version", 0);
            snprintf(desc, sizeof(desc), "%s - rolling back to job version %" PRId64, base, *reverted);
        }
    }
    dep_finish(st, d, "failed", desc, now);
    if (!j) return NULL;
    if (target) {
        /* Auto-revert copies the stable version as stored (§13). */
        json_object *copy = deep_copy(target);
        uint64_t idx = bump(st);
        sim_job *nj = copy ? job_upsert(st, copy, j->ns, idx, now, true) : NULL;
        return nj ? eval_create(st, nj, "deployment-watcher", true, idx, now) : NULL;
    }
    return eval_create(st, j, "deployment-watcher", false, bump(st), now);
}

static bool group_complete(const sim_group *g) { return (g->canary == 0 || g->promoted) && g->healthy >= g->count; }

/* Short of progress for the deadline: canaries count until promotion (§7 step 6). */
static bool group_behind(const sim_group *g) {
    return g->canary > 0 && !g->promoted ? g->healthy < g->canary : g->healthy < g->count;
}

static void group_promote(sim_state *st, sim_deployment *d, sim_group *g, int64_t now) {
    g->promoted = true;
    if (g->progress_deadline_ns > 0) g->rpb_ms = now + g->progress_deadline_ns / 1000000;
    /* Promoted canaries replace as many old allocations. */
    stop_old(st, d, g->name, g->n_canary_ids, now);
    for (size_t i = 0; i < st->n_allocs; i++) {
        sim_alloc *a = st->allocs[i];
        if (a->canary && strcmp(a->dep_id, d->id) == 0 && strcmp(a->group, g->name) == 0) {
            a->canary = false;   /* promotion clears Canary (§3.10) */
            a->replaced_old = true;
            alloc_touch(st, a, now);
        }
    }
}

/* Moves one deployment to time `now`. Returns true if it changed. */
static bool dep_advance(sim_state *st, sim_deployment *d, int64_t now) {
    if (strcmp(d->status, "running") != 0 && strcmp(d->status, "paused") != 0) return false;
    bool paused = strcmp(d->status, "paused") == 0;
    bool changed = false;
    sim_job *j = find_job(st, d->ns, d->job_id);
    for (size_t gi = 0; gi < d->n_groups; gi++) {
        sim_group *g = &d->groups[gi];
        int64_t placed = 0, healthy = 0, unhealthy = 0, inflight = 0;
        for (size_t i = 0; i < st->n_allocs; i++) {
            sim_alloc *a = st->allocs[i];
            if (strcmp(a->dep_id, d->id) != 0 || strcmp(a->group, g->name) != 0) continue;
            if (a->desired_stop && a->health < 0) continue;
            placed++;
            if (a->health == 1) {
                healthy++;
                if (!a->canary && !a->replaced_old) {
                    a->replaced_old = true;
                    stop_old(st, d, g->name, 1, now);
                }
            } else if (a->health == 0) {
                unhealthy++;
            } else {
                inflight++;
            }
        }
        if (healthy > g->healthy && g->progress_deadline_ns > 0) g->rpb_ms = now + g->progress_deadline_ns / 1000000;
        if (placed != g->placed || healthy != g->healthy || unhealthy != g->unhealthy) changed = true;
        g->placed = placed;
        g->healthy = healthy;
        g->unhealthy = unhealthy;
        if (paused || !j) continue;
        /* Failures (§7 step 6). The simulator does not reschedule: the first
         * unhealthy allocation fails the deployment. */
        if (unhealthy > 0) {
            int64_t rev;
            dep_fail(st, d, "Failed due to unhealthy allocations", now, &rev);
            return true;
        }
        if (g->progress_deadline_ns > 0 && g->rpb_ms > 0 && now >= g->rpb_ms && group_behind(g)) {
            int64_t rev;
            dep_fail(st, d, "Failed due to progress deadline", now, &rev);
            return true;
        }
        if (g->mode == SIM_MODE_NEVER_PLACED) continue;
        json_object *tg = job_group(j->cur, g->name);
        if (!tg || (uint64_t)jget_i64(j->cur, "Version", 0) != d->job_version) continue;
        if (g->canary > 0 && !g->promoted) {
            while (g->n_canary_ids < g->canary) {
                sim_alloc *a = alloc_place(st, j, tg, d, d->eval_id, true, g->mode, g->after_ms, g->healthy_deadline_ms, now);
                if (!a) break;
                memcpy(g->canary_ids[g->n_canary_ids++], a->id, SIM_ID_LEN);
                g->placed++;
                changed = true;
            }
        } else {
            while (g->placed < g->count && inflight < g->max_parallel) {
                if (!alloc_place(st, j, tg, d, d->eval_id, false, g->mode, g->after_ms, g->healthy_deadline_ms, now)) break;
                g->placed++;
                inflight++;
                changed = true;
            }
        }
    }
    if (paused) {
        if (changed) dep_touch(st, d, now);
        return changed;
    }
    /* Auto-promotion: every waiting canary group healthy and AutoPromote. */
    bool any_wait = false, all_ready = true, all_auto = true;
    for (size_t i = 0; i < d->n_groups; i++) {
        const sim_group *g = &d->groups[i];
        if (g->canary > 0 && !g->promoted) {
            any_wait = true;
            if (g->healthy < g->canary) all_ready = false;
            if (!g->auto_promote) all_auto = false;
        }
    }
    if (any_wait && all_ready && all_auto) {
        for (size_t i = 0; i < d->n_groups; i++)
            if (d->groups[i].canary > 0 && !d->groups[i].promoted) group_promote(st, d, &d->groups[i], now);
        set_desc_running(d);
        dep_touch(st, d, now);
        return dep_advance(st, d, now) || true;   /* place the rest at once */
    }
    bool all_done = true;
    for (size_t i = 0; i < d->n_groups; i++)
        if (!group_complete(&d->groups[i])) all_done = false;
    if (all_done) {
        for (size_t i = 0; i < d->n_groups; i++) stop_old(st, d, d->groups[i].name, INT64_MAX, now);
        dep_finish(st, d, "successful", "Deployment completed successfully", now);
        if (j && j->create_index == d->job_create_index) job_mark_stable(st, j, d->job_version);
        return true;
    }
    if (changed) {
        set_desc_running(d);
        dep_touch(st, d, now);
    }
    return changed;
}

/* Creates a deployment for the job's current version at `now`. Returns NULL
 * if the job rolls out nothing. */
static sim_deployment *dep_create(sim_state *st, sim_job *j, const char *eval_id, int64_t now, int64_t budget_ms) {
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
    snprintf(d->eval_id, sizeof(d->eval_id), "%s", eval_id ? eval_id : "");
    d->job_version = (uint64_t)jget_i64(j->cur, "Version", 0);
    d->job_modify_index = j->modify_index;
    d->job_spec_modify_index = j->job_modify_index;
    d->job_create_index = j->create_index;
    d->priority = jget_i64(j->cur, "Priority", 50);
    snprintf(d->status, sizeof(d->status), "running");
    d->create_ms = now;
    const sim_behaviour *b = behaviour_for(st, j->ns, j->id, d->job_version);
    for (size_t i = 0; i < n; i++) {
        sim_group *g = &groups[i];
        /* Default per-allocation delay: the batches share the health budget. */
        int64_t batches = ceil_div(g->count - g->canary, g->max_parallel) + (g->canary > 0 ? 1 : 0);
        g->after_ms = batches > 0 ? budget_ms / batches : budget_ms;
        g->mode = SIM_MODE_HEALTHY;
        if (b) {
            g->mode = b->mode;
            if (b->after_ms >= 0) g->after_ms = b->after_ms;
        }
        if (g->progress_deadline_ns > 0) g->rpb_ms = now + g->progress_deadline_ns / 1000000;
    }
    set_desc_running(d);
    d->create_index = bump(st);
    d->modify_index = d->create_index;
    d->modify_ms = now;
    st->idx_deployments = d->create_index;
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

/* FailedTGAllocs entry (§6): the group did not fit anywhere (memory). */
static void add_failed_tg(sim_eval *e, const char *group, int64_t count) {
    if (!e->failed_tg) e->failed_tg = json_object_new_object();
    json_object *m = json_object_new_object();
    set_i64(m, "NodesEvaluated", 1);
    set_i64(m, "NodesFiltered", 0);
    set_i64(m, "NodesExhausted", 1);
    json_object *dim = json_object_new_object();
    set_i64(dim, "memory", 1);
    json_object_object_add(m, "DimensionExhausted", dim);
    set_i64(m, "CoalescedFailures", count - 1);
    json_object_object_add(e->failed_tg, group, m);
}

/* Without a deployment (batch jobs, MaxParallel 0): replace every live
 * allocation of the job at once (§7). Never-placed groups land in
 * FailedTGAllocs. */
static void replace_allocs(sim_state *st, sim_job *j, sim_eval *e, int64_t now) {
    for (size_t i = 0; i < st->n_allocs; i++)
        if (same_job(st->allocs[i], j->ns, j->id)) alloc_stop(st, st->allocs[i], "alloc is being updated due to job update", now);
    const sim_behaviour *b = behaviour_for(st, j->ns, j->id, (uint64_t)jget_i64(j->cur, "Version", 0));
    json_object *tgs = jarr(j->cur, "TaskGroups");
    for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
        json_object *tg = json_object_array_get_idx(tgs, i);
        int64_t count = jget_i64(tg, "Count", 1);
        if (count > SIM_MAX_COUNT) count = SIM_MAX_COUNT;
        int mode = b ? b->mode : SIM_MODE_HEALTHY;
        int64_t after = b && b->after_ms >= 0 ? b->after_ms : st->health_ms - st->sched_ms;
        int64_t hd = jget_i64(jobj(tg, "Update"), "HealthyDeadline", DEF_HEALTHY_DEADLINE) / 1000000;
        if (mode == SIM_MODE_NEVER_PLACED && count > 0) {
            add_failed_tg(e, jstr(tg, "Name") ? jstr(tg, "Name") : "", count);
            continue;
        }
        for (int64_t k = 0; k < count; k++) alloc_place(st, j, tg, NULL, e->id, false, mode, after, hd, now);
    }
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
            for (size_t i = 0; i < st->n_allocs; i++)
                if (same_job(st->allocs[i], j->ns, j->id)) alloc_stop(st, st->allocs[i], "alloc not needed due to job update", now);
        } else if (e->spec_changed && (uint64_t)jget_i64(j->cur, "Version", 0) == e->version) {
            sim_deployment *d = dep_create(st, j, e->id, now, st->health_ms - (now - e->reg_ms));
            cancel_active(st, j, "Cancelled due to newer version of job", d, now);
            if (d) {
                for (size_t i = 0; i < d->n_groups; i++)
                    if (d->groups[i].mode == SIM_MODE_NEVER_PLACED && d->groups[i].count > 0)
                        add_failed_tg(e, d->groups[i].name, d->groups[i].count);
                dep_advance(st, d, now);   /* first placements now */
            } else {
                replace_allocs(st, j, e, now);
            }
            dep = d;
        } else {
            dep = active_dep(st, j);
        }
        job_set_status(st, j, stop ? "dead" : "running");
    }
    snprintf(e->status, sizeof(e->status), "complete");
    if (dep) snprintf(e->deployment_id, sizeof(e->deployment_id), "%s", dep->id);
    e->snapshot_index = st->index;
    e->modify_index = bump(st);
    e->modify_ms = now;
    st->idx_evals = e->modify_index;
}

/* Applies everything due at st->now_ms; a few rounds let chains (healthy →
 * next placement) settle. */
static void step(sim_state *st) {
    int64_t now_ms = st->now_ms;
    for (int round = 0; round < 8; round++) {
        uint64_t mark = st->index;
        for (size_t i = 0; i < st->n_evals; i++) {
            sim_eval *e = st->evals[i];
            if (!eval_terminal(e) && e->due_ms <= now_ms) eval_process(st, e, now_ms);
        }
        for (size_t i = 0; i < st->n_allocs; i++) alloc_advance(st, st->allocs[i], now_ms);
        for (size_t i = 0; i < st->n_deps; i++) dep_advance(st, st->deps[i], now_ms);
        if (st->index == mark) break;
    }
}

bool sim_state_advance(sim_state *st, int64_t now_ms) {
    uint64_t before = st->index;
    /* Walk through every event time up to now_ms in order, so a long jump
     * (a slow caller, a test) gives the same history as small steps. The
     * iteration cap only guards against a model bug spinning forever. */
    for (int guard = 0; guard < 100000; guard++) {
        int64_t t = sim_state_next_event(st);
        if (t < 0 || t > now_ms) break;
        uint64_t mark = st->index;
        if (t > st->now_ms) st->now_ms = t;
        step(st);
        if (st->index == mark && t <= st->now_ms && sim_state_next_event(st) <= t) break;
    }
    if (now_ms > st->now_ms) st->now_ms = now_ms;
    step(st);
    gc(st);
    return st->index != before;
}

int64_t sim_state_next_event(const sim_state *st) {
    int64_t best = -1;
#define CONSIDER(t)                                           \
    do {                                                      \
        int64_t t_ = (t);                                     \
        if (t_ >= 0 && (best < 0 || t_ < best)) best = t_;    \
    } while (0)
    for (size_t i = 0; i < st->n_evals; i++)
        if (!eval_terminal(st->evals[i])) CONSIDER(st->evals[i]->due_ms);
    for (size_t i = 0; i < st->n_allocs; i++) CONSIDER(alloc_next_event(st->allocs[i]));
    for (size_t i = 0; i < st->n_deps; i++) {
        const sim_deployment *d = st->deps[i];
        if (strcmp(d->status, "running") != 0) continue;
        for (size_t k = 0; k < d->n_groups; k++) {
            const sim_group *g = &d->groups[k];
            if (g->progress_deadline_ns > 0 && g->rpb_ms > 0 && group_behind(g)) CONSIDER(g->rpb_ms);
        }
    }
#undef CONSIDER
    if (best >= 0 && best < st->now_ms) best = st->now_ms;
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
    bool enforce = false, preserve = false;
    jbool(req, "EnforceIndex", &enforce);
    jbool(req, "PreserveCounts", &preserve);
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

    /* PreserveCounts: live group counts win over the submitted ones. A
     * count-only change still makes a new (identical) version (§13). */
    bool count_overridden = false;
    json_object *tgs = existing && preserve ? jarr(job, "TaskGroups") : NULL;
    for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
        json_object *g = json_object_array_get_idx(tgs, i);
        json_object *live = jstr(g, "Name") ? job_group(existing->cur, jstr(g, "Name")) : NULL;
        int64_t lc, nc = jget_i64(g, "Count", 1);
        if (live && jint(live, "Count", &lc) && lc != nc) {
            set_i64(g, "Count", lc);
            count_overridden = true;
        }
    }
    bool changed = !existing || !spec_equal(existing->cur, job) || count_overridden;
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

static void load_running(sim_state *st, sim_job *j, bool stable, int64_t now);

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
        /* A running job has its allocations; one deployed before (Stable)
         * has a finished deployment too. */
        bool stopped = false;
        jbool(j->cur, "Stop", &stopped);
        if (strcmp(statusbuf, "running") == 0 && !stopped) load_running(st, j, stable, now_ms);
    }
    json_object_put(arr);
    return rc;
}


/* ---------- rendering ---------- */

static const char *const ZERO_TIME = "0001-01-01T00:00:00Z";

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
        char ts[48];
        snprintf(ts, sizeof(ts), "%s", ZERO_TIME);
        if (g->rpb_ms > 0 && g->progress_deadline_ns > 0) rfc3339(st, g->rpb_ms, ts, sizeof(ts));
        set_str(s, "RequireProgressBy", ts);
        set_bool(s, "Promoted", g->promoted);
        if (g->n_canary_ids > 0) {
            json_object *pc = json_object_new_array();
            for (int64_t k = 0; k < g->n_canary_ids; k++) json_object_array_add(pc, json_object_new_string(g->canary_ids[k]));
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
    if (e->failed_tg) json_object_object_add(o, "FailedTGAllocs", json_object_get(e->failed_tg));
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

static json_object *task_event(const sim_state *st, const char *type, int64_t at_ms, const char *display, bool fails) {
    json_object *ev = json_object_new_object();
    set_str(ev, "Type", type);
    set_i64(ev, "Time", wall_ns(st, at_ms));
    set_str(ev, "DisplayMessage", display);
    json_object_object_add(ev, "Details", json_object_new_object());
    set_bool(ev, "FailsTask", fails);
    set_str(ev, "Message", "");
    set_i64(ev, "ExitCode", 0);
    set_i64(ev, "Signal", 0);
    static const char *const empty[] = {"DriverError", "SetupError", "DownloadError", "ValidationError",
                                        "KillReason",  "KillError",  "RestartReason", "FailedSibling"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) set_str(ev, empty[i], "");
    return ev;
}

static void detail(json_object *ev, const char *key, const char *val) {
    json_object_object_add(json_object_object_get(ev, "Details"), key, json_object_new_string(val));
}

/* TaskStates with the events a real client would have reported (§5). */
static json_object *render_task_states(const sim_state *st, const sim_alloc *a) {
    json_object *ts = json_object_new_object();
    bool running = strcmp(a->client, "pending") != 0;
    for (size_t t = 0; t < json_object_array_length(a->tasks); t++) {
        const char *tn = json_object_get_string(json_object_array_get_idx(a->tasks, t));
        json_object *s = json_object_new_object();
        json_object *evs = json_object_new_array();
        char started[48], finished[48], last_restart[48];
        snprintf(started, sizeof(started), "%s", ZERO_TIME);
        snprintf(finished, sizeof(finished), "%s", ZERO_TIME);
        snprintf(last_restart, sizeof(last_restart), "%s", ZERO_TIME);
        int64_t run_at = a->placed_ms + a->after_ms / 2;
        json_object_array_add(evs, task_event(st, "Received", a->placed_ms, "Task received by client", false));
        json_object_array_add(evs, task_event(st, "Task Setup", a->placed_ms, "Building Task Directory", false));
        const char *state = "pending";
        bool failed = false;
        if (a->mode == SIM_MODE_UNHEALTHY && strcmp(a->client, "failed") == 0) {
            /* Image pull failure: the task never starts. */
            char msg[512];
            snprintf(msg, sizeof(msg), "Failed to pull `%s`: Error response from daemon: manifest unknown", a->image);
            json_object *ev = task_event(st, "Driver Failure", a->finished_ms, msg, true);
            set_str(ev, "DriverError", msg);
            detail(ev, "driver_error", msg);
            detail(ev, "fails_task", "true");
            json_object_array_add(evs, ev);
            ev = task_event(st, "Not Restarting", a->finished_ms, "Error was unrecoverable", true);
            set_str(ev, "RestartReason", "Error was unrecoverable");
            json_object_array_add(evs, ev);
            state = "dead";
            failed = true;
            rfc3339(st, a->finished_ms, finished, sizeof(finished));
        } else if (running) {
            rfc3339(st, run_at, started, sizeof(started));
            json_object_array_add(evs, task_event(st, "Started", run_at, "Task started by client", false));
            state = "running";
            /* Flapping: OOM kills and restarts; only the newest events are kept. */
            int64_t from = a->restarts > (SIM_MAX_EVENTS - 4) / 2 ? a->restarts - (SIM_MAX_EVENTS - 4) / 2 : 0;
            for (int64_t r = from; r < a->restarts; r++) {
                int64_t at = a->placed_ms + (r + 1) * a->after_ms;
                json_object *ev = task_event(st, "Terminated", at, "Exit Code: 137, Exit Message: \"OOM Killed\"", false);
                json_object_object_add(ev, "ExitCode", json_object_new_int(137));
                detail(ev, "exit_code", "137");
                detail(ev, "oom_killed", "true");
                json_object_array_add(evs, ev);
                ev = task_event(st, "Restarting", at, "Task restarting in 15s", false);
                set_str(ev, "RestartReason", "Restart within policy");
                json_object_array_add(evs, ev);
                rfc3339(st, at, last_restart, sizeof(last_restart));
            }
            if (a->mode == SIM_MODE_FLAPPING && strcmp(a->client, "failed") == 0) {
                json_object *ev = task_event(st, "Not Restarting", a->finished_ms,
                                             "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"", true);
                set_str(ev, "RestartReason", "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"");
                json_object_array_add(evs, ev);
                state = "dead";
                failed = true;
                rfc3339(st, a->finished_ms, finished, sizeof(finished));
            } else if (strcmp(a->client, "complete") == 0) {
                int64_t at = a->finished_ms;
                json_object_array_add(evs, task_event(st, "Killing", at, "Sent interrupt. Waiting 5s before force killing", false));
                json_object_array_add(evs, task_event(st, "Killed", at, "Task successfully killed", false));
                state = "dead";
                rfc3339(st, at, finished, sizeof(finished));
            }
        } else if (strcmp(a->client, "complete") == 0) {
            state = "dead";
        }
        set_str(s, "State", state);
        set_bool(s, "Failed", failed);
        set_i64(s, "Restarts", a->restarts);
        set_str(s, "LastRestart", last_restart);
        set_str(s, "StartedAt", started);
        set_str(s, "FinishedAt", finished);
        json_object_object_add(s, "Events", evs);
        json_object_object_add(ts, tn, s);
    }
    return ts;
}

/* AllocListStub (§5); empty fields are omitted as the server does (§13).
 * full: the Allocation instead (embedded Job, DeploymentID, no JobVersion). */
static json_object *render_alloc(const sim_state *st, const sim_alloc *a, bool full) {
    json_object *o = json_object_new_object();
    set_str(o, "ID", a->id);
    if (a->eval_id[0]) set_str(o, "EvalID", a->eval_id);
    set_str(o, "Name", a->name);
    set_str(o, "Namespace", a->ns);
    set_str(o, "NodeID", a->node_id);
    set_str(o, "NodeName", "sim-node-1");
    set_str(o, "JobID", a->job_id);
    set_str(o, "JobType", a->job_type);
    if (!full) set_u64(o, "JobVersion", a->job_version);
    set_str(o, "TaskGroup", a->group);
    set_str(o, "DesiredStatus", a->desired_stop ? "stop" : "run");
    if (a->desired_desc[0]) set_str(o, "DesiredDescription", a->desired_desc);
    set_str(o, "ClientStatus", a->client);
    set_str(o, "ClientDescription",
            strcmp(a->client, "running") == 0    ? "Tasks are running"
            : strcmp(a->client, "pending") == 0  ? "No tasks have started"
            : strcmp(a->client, "failed") == 0   ? "Failed tasks"
                                                 : "All tasks have completed");
    json_object_object_add(o, "TaskStates", render_task_states(st, a));
    if (a->dep_id[0] && (a->canary || a->health >= 0)) {
        json_object *ds = json_object_new_object();
        json_object_object_add(ds, "Healthy", a->health < 0 ? NULL : json_object_new_boolean(a->health == 1));
        char ts[48];
        snprintf(ts, sizeof(ts), "%s", ZERO_TIME);
        if (a->health >= 0) rfc3339(st, a->health_ms, ts, sizeof(ts));
        set_str(ds, "Timestamp", ts);
        set_bool(ds, "Canary", a->canary);
        set_u64(ds, "ModifyIndex", a->modify_index);
        json_object_object_add(o, "DeploymentStatus", ds);
    }
    if (full) {
        if (a->dep_id[0]) set_str(o, "DeploymentID", a->dep_id);
        const sim_job *j = find_job(st, a->ns, a->job_id);
        json_object *spec = NULL;
        for (size_t i = 0; j && i < j->n_versions && !spec; i++)
            if ((uint64_t)jget_i64(j->versions[i], "Version", -1) == a->job_version) spec = j->versions[i];
        if (!spec && j) spec = j->cur;
        if (spec) json_object_object_add(o, "Job", deep_copy(spec));
        json_object *m = json_object_new_object();
        set_i64(m, "NodesEvaluated", 1);
        set_i64(m, "NodesFiltered", 0);
        set_i64(m, "NodesExhausted", 0);
        set_i64(m, "CoalescedFailures", 0);
        json_object_object_add(o, "Metrics", m);
    }
    set_u64(o, "CreateIndex", a->create_index);
    set_u64(o, "ModifyIndex", a->modify_index);
    set_i64(o, "CreateTime", wall_ns(st, a->create_ms));
    set_i64(o, "ModifyTime", wall_ns(st, a->modify_ms));
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


static int cmp_alloc_create(const void *a, const void *b) {
    uint64_t x = json_object_get_uint64(json_object_object_get(*(json_object *const *)a, "CreateIndex"));
    uint64_t y = json_object_get_uint64(json_object_object_get(*(json_object *const *)b, "CreateIndex"));
    return x < y ? 1 : x > y ? -1 : 0;   /* newest first, like the CLI shows them */
}

json_object *sim_job_allocations(const sim_state *st, const char *ns, const char *id, uint64_t *index) {
    *index = st->idx_allocs;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < st->n_allocs; i++)
        if (same_job(st->allocs[i], ns, id)) json_object_array_add(a, render_alloc(st, st->allocs[i], false));
    json_object_array_sort(a, cmp_alloc_create);
    return a;
}

json_object *sim_deployment_allocations(const sim_state *st, const char *id, uint64_t *index) {
    *index = st->idx_allocs;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < st->n_allocs; i++)
        if (strcmp(st->allocs[i]->dep_id, id) == 0) json_object_array_add(a, render_alloc(st, st->allocs[i], false));
    json_object_array_sort(a, cmp_alloc_create);
    return a;
}

json_object *sim_eval_allocations(const sim_state *st, const char *id, uint64_t *index) {
    *index = st->idx_allocs;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < st->n_allocs; i++)
        if (strcmp(st->allocs[i]->eval_id, id) == 0) json_object_array_add(a, render_alloc(st, st->allocs[i], false));
    json_object_array_sort(a, cmp_alloc_create);
    return a;
}

json_object *sim_alloc_get(const sim_state *st, const char *id, uint64_t *index) {
    const sim_alloc *a = find_alloc(st, id);
    *index = a ? a->modify_index : st->idx_allocs;
    return a ? render_alloc(st, a, true) : NULL;
}

const char *sim_object_namespace(const sim_state *st, enum sim_kind kind, const char *id) {
    if (kind == SIM_KIND_DEPLOYMENT) {
        const sim_deployment *d = find_dep(st, id);
        return d ? d->ns : NULL;
    }
    if (kind == SIM_KIND_EVAL) {
        const sim_eval *e = find_eval(st, id);
        return e ? e->ns : NULL;
    }
    const sim_alloc *a = find_alloc(st, id);
    return a ? a->ns : NULL;
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

static bool group_chosen(const sim_group *g, const char *const *groups, size_t n_groups) {
    if (!groups) return true;
    for (size_t k = 0; k < n_groups; k++)
        if (groups[k] && strcmp(groups[k], g->name) == 0) return true;
    return false;
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
        const sim_group *g = &d->groups[i];
        if (!group_chosen(g, groups, n_groups) || g->canary == 0 || g->promoted) continue;
        if (g->healthy < g->canary)
            merr_add(&m, "Task group \"%s\" has %" PRId64 "/%" PRId64 " healthy allocations", g->name, g->healthy,
                     g->canary);
    }
    if (m.n) {
        merr_format(&m, err, errlen);
        return SIM_ERR_SERVER;
    }
    for (size_t i = 0; i < d->n_groups; i++) {
        sim_group *g = &d->groups[i];
        if (group_chosen(g, groups, n_groups) && !g->promoted) group_promote(st, d, g, now_ms);
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
    int64_t reverted;
    sim_eval *e = dep_fail(st, d, "Deployment marked as failed", now_ms, &reverted);
    *resp = dep_write_resp(e, d, reverted >= 0 ? &reverted : NULL, st->index);
    *index = st->index;
    sim_state_advance(st, now_ms);
    return SIM_OK;
}

int sim_deployment_pause(sim_state *st, const char *id, bool pause, int64_t now_ms, json_object **resp,
                         uint64_t *index, char *err, size_t errlen) {
    *resp = NULL;
    sim_state_advance(st, now_ms);
    now_ms = st->now_ms;
    sim_deployment *d = find_dep(st, id);
    if (!d) {
        seterr(err, errlen, "deployment not found");
        return SIM_ERR_SERVER;
    }
    if (!dep_active(d)) {
        seterr(err, errlen, pause ? "can't pause terminal deployment" : "can't resume terminal deployment");
        return SIM_ERR_SERVER;
    }
    sim_eval *e = NULL;
    if (pause) {
        snprintf(d->status, sizeof(d->status), "paused");
        snprintf(d->desc, sizeof(d->desc), "Deployment is paused");
        dep_touch(st, d, now_ms);
    } else {
        snprintf(d->status, sizeof(d->status), "running");
        set_desc_running(d);
        /* The time spent paused does not count against the deadline. */
        for (size_t i = 0; i < d->n_groups; i++)
            if (d->groups[i].progress_deadline_ns > 0) d->groups[i].rpb_ms = now_ms + d->groups[i].progress_deadline_ns / 1000000;
        dep_touch(st, d, now_ms);
        sim_job *j = find_job(st, d->ns, d->job_id);
        if (j) e = eval_create(st, j, "deployment-watcher", false, bump(st), now_ms);
    }
    *resp = dep_write_resp(e, d, NULL, st->index);
    *index = st->index;
    sim_state_advance(st, now_ms);
    return SIM_OK;
}

/* ---------- revert, stop ---------- */

static json_object *register_resp(const sim_eval *e, uint64_t jmi, uint64_t idx) {
    json_object *r = json_object_new_object();
    set_str(r, "EvalID", e ? e->id : "");
    set_u64(r, "EvalCreateIndex", e ? e->create_index : 0);
    set_u64(r, "JobModifyIndex", jmi);
    set_str(r, "Warnings", "");
    set_u64(r, "Index", idx);
    set_i64(r, "LastContact", 0);
    set_bool(r, "KnownLeader", false);
    set_str(r, "NextToken", "");
    return r;
}

static json_object *decode_body(const char *body, size_t len, char *err, size_t errlen);

int sim_job_revert(sim_state *st, const char *ns, const char *path_id, const char *body, size_t len, int64_t now_ms,
                   json_object **resp, uint64_t *index, char *err, size_t errlen) {
    *resp = NULL;
    *index = 0;
    sim_state_advance(st, now_ms);
    now_ms = st->now_ms;
    json_object *req = decode_body(body, len, err, errlen);
    if (!req) return SIM_ERR_BAD_REQUEST;
    const char *jid = jstr(req, "JobID");
    if (!jid || !*jid) {
        json_object_put(req);
        seterr(err, errlen, "JobID must be specified");
        return SIM_ERR_BAD_REQUEST;
    }
    if (strcmp(jid, path_id) != 0) {
        json_object_put(req);
        seterr(err, errlen, "Job ID does not match");
        return SIM_ERR_BAD_REQUEST;
    }
    int64_t want = 0, prior = -1;
    jint(req, "JobVersion", &want);
    bool has_prior = jint(req, "EnforcePriorVersion", &prior);
    json_object_put(req);
    sim_job *j = find_job(st, ns, path_id);
    if (!j) {
        seterr(err, errlen, "job \"%s\" not found", path_id);
        return SIM_ERR_SERVER;
    }
    int64_t cur = jget_i64(j->cur, "Version", 0);
    if (has_prior && prior != cur) {
        seterr(err, errlen, "Current job has version %" PRId64 "; enforcing version %" PRId64, cur, prior);
        return SIM_ERR_SERVER;
    }
    if (want == cur) {
        seterr(err, errlen, "can't revert to current version");
        return SIM_ERR_SERVER;
    }
    json_object *target = NULL;
    for (size_t i = 0; i < j->n_versions && !target; i++)
        if (jget_i64(j->versions[i], "Version", -1) == want) target = j->versions[i];
    if (!target) {
        seterr(err, errlen, "job \"%s\" in namespace \"%s\" at version %" PRId64 " not found", path_id, ns, want);
        return SIM_ERR_SERVER;
    }
    bool changed = !spec_equal(target, j->cur);
    uint64_t idx = bump(st);
    if (changed) {
        json_object *copy = deep_copy(target);
        if (!copy || !job_upsert(st, copy, ns, idx, now_ms, false)) {
            seterr(err, errlen, "out of memory");
            return SIM_ERR_SERVER;
        }
        j = find_job(st, ns, path_id);
    }
    sim_eval *e = eval_create(st, j, "job-register", changed, idx, now_ms);
    *resp = register_resp(e, changed ? j->job_modify_index : j->modify_index, idx);
    *index = idx;
    sim_state_advance(st, now_ms);
    return SIM_OK;
}

int sim_job_stop(sim_state *st, const char *ns, const char *id, bool purge, int64_t now_ms, json_object **resp,
                 uint64_t *index, char *err, size_t errlen) {
    *resp = NULL;
    *index = 0;
    sim_state_advance(st, now_ms);
    now_ms = st->now_ms;
    sim_job *j = find_job(st, ns, id);
    if (!j) {
        /* §3.8: an unknown job is not an error. */
        json_object *r = register_resp(NULL, 0, 0);
        json_object_object_del(r, "Warnings");
        set_str(r, "VolumeEvalID", "");
        set_u64(r, "VolumeEvalIndex", 0);
        *resp = r;
        return SIM_OK;
    }
    bool stopped = false;
    jbool(j->cur, "Stop", &stopped);
    uint64_t idx = bump(st);
    if (!stopped) {
        json_object *copy = deep_copy(j->cur);
        if (!copy) {
            seterr(err, errlen, "out of memory");
            return SIM_ERR_SERVER;
        }
        set_bool(copy, "Stop", true);
        j = job_upsert(st, copy, ns, idx, now_ms, false);
        if (!j) {
            seterr(err, errlen, "out of memory");
            return SIM_ERR_SERVER;
        }
    }
    sim_eval *e = eval_create(st, j, "job-deregister", true, idx, now_ms);
    uint64_t jmi = j->job_modify_index;
    if (purge) {
        /* Gone at once: cancel, stop, forget (the eval still completes). */
        cancel_active(st, j, "Cancelled because job is stopped", NULL, now_ms);
        for (size_t i = 0; i < st->n_allocs; i++)
            if (same_job(st->allocs[i], ns, id)) alloc_stop(st, st->allocs[i], "alloc not needed due to job update", now_ms);
        for (size_t i = 0; i < st->n_jobs; i++)
            if (st->jobs[i] == j) {
                memmove(&st->jobs[i], &st->jobs[i + 1], (st->n_jobs - i - 1) * sizeof(st->jobs[0]));
                st->n_jobs--;
                break;
            }
        job_free(j);
        st->idx_jobs = bump(st);
    }
    json_object *r = register_resp(e, jmi, idx);
    json_object_object_del(r, "Warnings");
    set_str(r, "VolumeEvalID", "");
    set_u64(r, "VolumeEvalIndex", 0);
    *resp = r;
    *index = idx;
    sim_state_advance(st, now_ms);
    return SIM_OK;
}

/* Allocations of a job loaded from the jobs file: Count running, healthy
 * allocations per group; a stable job also gets its finished deployment. */
static void load_running(sim_state *st, sim_job *j, bool stable, int64_t now) {
    sim_deployment *d = stable ? dep_create(st, j, "", now, 0) : NULL;
    sim_eval *e = eval_create(st, j, "job-register", false, bump(st), now);
    if (e) eval_process(st, e, now);   /* a finished eval, like the one that placed them */
    json_object *tgs = jarr(j->cur, "TaskGroups");
    for (size_t i = 0; tgs && i < json_object_array_length(tgs); i++) {
        json_object *tg = json_object_array_get_idx(tgs, i);
        const char *gname = jstr(tg, "Name") ? jstr(tg, "Name") : "";
        sim_group *g = NULL;
        for (size_t k = 0; d && k < d->n_groups; k++)
            if (strcmp(d->groups[k].name, gname) == 0) g = &d->groups[k];
        int64_t count = jget_i64(tg, "Count", 1);
        if (count > SIM_MAX_COUNT) count = SIM_MAX_COUNT;
        for (int64_t k = 0; k < count; k++) {
            sim_alloc *a = alloc_place(st, j, tg, g ? d : NULL, e ? e->id : "", false, SIM_MODE_HEALTHY, 0, 0, now);
            if (!a) break;
            snprintf(a->client, sizeof(a->client), "running");
            a->replaced_old = true;
            if (g) {
                a->health = 1;
                a->health_ms = now;
            }
        }
        if (g) {
            g->placed = g->healthy = count;
            g->promoted = g->canary > 0;
            g->n_canary_ids = 0;
        }
    }
    if (d) {
        dep_finish(st, d, "successful", "Deployment completed successfully", now);
        if (e) snprintf(e->deployment_id, sizeof(e->deployment_id), "%s", d->id);
    }
}

/* ---------- plan (§3.3) ---------- */

/* Go's diff renders values as strings; null and absent are "". */
static const char *diff_str(json_object *v) {
    if (!v) return "";
    if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
    return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static bool is_scalar(json_object *v) {
    return !v || (!json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array));
}

static const char *diff_type(json_object *o, json_object *n) {
    if (!o && n) return "Added";
    if (o && !n) return "Deleted";
    return json_object_equal(o, n) ? "None" : "Edited";
}

static json_object *field_diff(const char *type, const char *name, json_object *o, json_object *n) {
    json_object *f = json_object_new_object();
    set_str(f, "Type", type);
    set_str(f, "Name", name);
    set_str(f, "Old", diff_str(o));
    set_str(f, "New", diff_str(n));
    json_object_object_add(f, "Annotations", NULL);
    return f;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Fields[] and Objects[] of the changes between two JSON objects (either
 * may be NULL). skip: keys handled elsewhere. Only changed fields are
 * listed (Nomad's non-verbose diff). */
static void diff_members(json_object *o, json_object *n, const char *const *skip, json_object *fields, json_object *objects) {
    const char *keys[512];
    size_t nk = 0;
    json_object *srcs[2] = {o, n};
    for (int s = 0; s < 2; s++) {
        if (!srcs[s] || !json_object_is_type(srcs[s], json_type_object)) continue;
        json_object_object_foreach(srcs[s], k, v) {
            (void)v;
            bool dup = false;
            for (size_t i = 0; i < nk && !dup; i++) dup = strcmp(keys[i], k) == 0;
            for (size_t i = 0; skip && skip[i] && !dup; i++) dup = strcmp(skip[i], k) == 0;
            if (!dup && nk < sizeof(keys) / sizeof(keys[0])) keys[nk++] = k;
        }
    }
    qsort(keys, nk, sizeof(keys[0]), cmp_str);
    for (size_t i = 0; i < nk; i++) {
        json_object *ov = NULL, *nv = NULL;
        bool oh = o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, keys[i], &ov);
        bool nh = n && json_object_is_type(n, json_type_object) && json_object_object_get_ex(n, keys[i], &nv);
        if (oh && nh && json_object_equal(ov, nv)) continue;
        if (is_scalar(ov) && is_scalar(nv)) {
            if (!oh && !nv) continue;
            json_object_array_add(fields, field_diff(!oh || !ov ? "Added" : !nh || !nv ? "Deleted" : "Edited", keys[i], ov, nv));
        } else if ((ov && json_object_is_type(ov, json_type_array) && (!nv || json_object_is_type(nv, json_type_array))) ||
                   (nv && json_object_is_type(nv, json_type_array) && !ov)) {
            /* Arrays of primitives: one field per added / deleted element. */
            size_t lo = ov ? json_object_array_length(ov) : 0, ln = nv ? json_object_array_length(nv) : 0;
            json_object *sub_f = json_object_new_array(), *sub_o = json_object_new_array();
            for (size_t a = 0; a < lo; a++) {
                json_object *x = json_object_array_get_idx(ov, a);
                bool found = false;
                for (size_t b = 0; b < ln && !found; b++) found = json_object_equal(x, json_object_array_get_idx(nv, b));
                if (found) continue;
                if (is_scalar(x)) json_object_array_add(fields, field_diff("Deleted", keys[i], x, NULL));
                else json_object_array_add(sub_o, json_object_get(x));
            }
            for (size_t b = 0; b < ln; b++) {
                json_object *x = json_object_array_get_idx(nv, b);
                bool found = false;
                for (size_t a = 0; a < lo && !found; a++) found = json_object_equal(x, json_object_array_get_idx(ov, a));
                if (found) continue;
                if (is_scalar(x)) json_object_array_add(fields, field_diff("Added", keys[i], NULL, x));
                else json_object_array_add(sub_o, json_object_get(x));
            }
            if (json_object_array_length(sub_o)) {
                /* Arrays of objects: one Edited object (the simulator does not pair elements). */
                json_object *ob = json_object_new_object();
                set_str(ob, "Type", "Edited");
                set_str(ob, "Name", keys[i]);
                json_object_object_add(ob, "Fields", sub_f);
                json_object_object_add(ob, "Objects", NULL);
                json_object_array_add(objects, ob);
                sub_f = NULL;
            }
            json_object_put(sub_f);
            json_object_put(sub_o);
        } else {
            json_object *ob = json_object_new_object();
            json_object *ff = json_object_new_array(), *oo = json_object_new_array();
            json_object *oo_src = ov && json_object_is_type(ov, json_type_object) ? ov : NULL;
            json_object *nn_src = nv && json_object_is_type(nv, json_type_object) ? nv : NULL;
            diff_members(oo_src, nn_src, NULL, ff, oo);
            set_str(ob, "Type", diff_type(oo_src, nn_src));
            set_str(ob, "Name", keys[i]);
            json_object_object_add(ob, "Fields", json_object_array_length(ff) ? ff : (json_object_put(ff), NULL));
            json_object_object_add(ob, "Objects", json_object_array_length(oo) ? oo : (json_object_put(oo), NULL));
            json_object_array_add(objects, ob);
        }
    }
}

static json_object *named(json_object *arr, const char *name) {
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *x = json_object_array_get_idx(arr, i);
        const char *n = jstr(x, "Name");
        if (n && strcmp(n, name) == 0) return x;
    }
    return NULL;
}

static void add_nonzero(json_object *o, const char *key, int64_t v) {
    if (v) set_i64(o, key, v);
}

/* Diff of one task group plus its DesiredTGUpdates. */
static json_object *diff_group(json_object *og, json_object *ng, json_object *desired, bool job_edited) {
    const char *name = jstr(ng ? ng : og, "Name");
    json_object *d = json_object_new_object();
    json_object *fields = json_object_new_array(), *objects = json_object_new_array(), *tasks = json_object_new_array();
    static const char *const skip[] = {"Tasks", "Name", NULL};
    diff_members(og, ng, skip, fields, objects);
    bool destructive = false;
    json_object *ot = jarr(og, "Tasks"), *nt = jarr(ng, "Tasks");
    json_object *srcs[2] = {nt, ot};
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; srcs[s] && i < json_object_array_length(srcs[s]); i++) {
            const char *tn = jstr(json_object_array_get_idx(srcs[s], i), "Name");
            if (!tn || (s == 1 && named(nt, tn))) continue;
            json_object *o = named(ot, tn), *n = named(nt, tn);
            json_object *td = json_object_new_object();
            json_object *tf = json_object_new_array(), *to = json_object_new_array();
            static const char *const tskip[] = {"Name", NULL};
            diff_members(o, n, tskip, tf, to);
            const char *type = !o ? "Added" : !n ? "Deleted" : json_object_equal(o, n) ? "None" : "Edited";
            set_str(td, "Type", type);
            set_str(td, "Name", tn);
            json_object_object_add(td, "Fields", tf);
            json_object_object_add(td, "Objects", to);
            json_object *ann = NULL;
            if (strcmp(type, "None") != 0) {
                ann = json_object_new_array();
                json_object_array_add(ann, json_object_new_string(strcmp(type, "Added") == 0     ? "forces create"
                                                                  : strcmp(type, "Deleted") == 0 ? "forces destroy"
                                                                                                 : "forces create/destroy update"));
                destructive = true;
            }
            json_object_object_add(td, "Annotations", ann);
            json_object_array_add(tasks, td);
        }
    }
    int64_t c0 = og ? jget_i64(og, "Count", 1) : 0, c1 = ng ? jget_i64(ng, "Count", 1) : 0;
    int64_t canary = ng ? jget_i64(jobj(ng, "Update"), "Canary", 0) : 0;
    int64_t keep = c0 < c1 ? c0 : c1;
    int64_t ignore = 0, place = c1 > c0 ? c1 - c0 : 0, stop = c0 > c1 ? c0 - c1 : 0, inplace = 0, destr = 0, can = 0;
    bool group_edited = json_object_array_length(fields) > 0 || json_object_array_length(objects) > 0;
    if (!og) {
        place = c1;
    } else if (!ng) {
        stop = c0;
    } else if (destructive && canary > 0) {
        can = canary;
        ignore = c0;
        place = stop = 0;
    } else if (destructive) {
        destr = keep;
    } else if (group_edited && !(json_object_array_length(fields) == 1 && !json_object_array_length(objects) &&
                                 strcmp(jstr(json_object_array_get_idx(fields, 0), "Name"), "Count") == 0)) {
        inplace = keep;
    } else if (job_edited) {
        inplace = keep;
    } else {
        ignore = keep;
    }
    json_object *u = json_object_new_object();
    add_nonzero(u, "ignore", ignore);
    add_nonzero(u, "create", place);
    add_nonzero(u, "destroy", stop);
    add_nonzero(u, "in-place update", inplace);
    add_nonzero(u, "create/destroy update", destr);
    add_nonzero(u, "canary", can);
    json_object *dt = json_object_new_object();
    static const char *const keys[] = {"Ignore", "Place", "Migrate", "Stop", "InPlaceUpdate", "DestructiveUpdate",
                                       "Canary", "Preemptions", "Disconnect", "Reconnect", "RescheduleNow",
                                       "RescheduleLater"};
    int64_t vals[] = {ignore, place, 0, stop, inplace, destr, can, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) set_i64(dt, keys[i], vals[i]);
    if (ng) json_object_object_add(desired, name, dt);
    else json_object_put(dt);
    set_str(d, "Type", !og ? "Added" : !ng ? "Deleted" : (group_edited || destructive) ? "Edited" : "None");
    set_str(d, "Name", name ? name : "");
    json_object_object_add(d, "Fields", fields);
    json_object_object_add(d, "Objects", objects);
    json_object_object_add(d, "Tasks", tasks);
    json_object_object_add(d, "Updates", u);
    return d;
}

int sim_job_plan(sim_state *st, const char *body, size_t len, const sim_register_args *a, int64_t now_ms,
                 json_object **resp, uint64_t *index, char *err, size_t errlen) {
    *resp = NULL;
    *index = 0;
    sim_state_advance(st, now_ms);
    json_object *req = decode_body(body, len, err, errlen);
    if (!req) return SIM_ERR_BAD_REQUEST;
    json_object *jv = jobj(req, "Job");
    if (!jv) {
        json_object_put(req);
        seterr(err, errlen, "Job must be specified");
        return SIM_ERR_BAD_REQUEST;
    }
    const char *jid = jstr(jv, "ID");
    if (!jid || !*jid) {
        json_object_put(req);
        seterr(err, errlen, "Job must have a valid ID");
        return SIM_ERR_BAD_REQUEST;
    }
    if (a->path_id && strcmp(a->path_id, jid) != 0) {
        json_object_put(req);
        seterr(err, errlen, "Job ID does not match");
        return SIM_ERR_BAD_REQUEST;
    }
    const char *ns = a->q_namespace && *a->q_namespace ? a->q_namespace : NULL;
    if (!ns && jstr(req, "Namespace") && *jstr(req, "Namespace")) ns = jstr(req, "Namespace");
    if (!ns && jstr(jv, "Namespace") && *jstr(jv, "Namespace")) ns = jstr(jv, "Namespace");
    if (!ns) ns = "default";
    char nsbuf[SIM_NAME_MAX];
    snprintf(nsbuf, sizeof(nsbuf), "%s", ns);
    bool want_diff = false;
    jbool(req, "Diff", &want_diff);
    json_object *job = deep_copy(jv);
    json_object_put(req);
    if (!job) {
        seterr(err, errlen, "out of memory");
        return SIM_ERR_SERVER;
    }
    canonicalize(job, nsbuf, SIM_REGION);
    if (!validate_job(job, err, errlen)) {
        json_object_put(job);
        return SIM_ERR_SERVER;
    }
    sim_job *j = find_job(st, nsbuf, jstr(job, "ID"));
    json_object *old = j ? j->cur : NULL;
    json_object *diff = json_object_new_object();
    json_object *fields = json_object_new_array(), *objects = json_object_new_array(), *groups = json_object_new_array();
    json_object *desired = json_object_new_object();
    static const char *const skip[] = {"TaskGroups", "Status", "StatusDescription", "Stable", "Version", "SubmitTime",
                                       "CreateIndex", "ModifyIndex", "JobModifyIndex", "NomadTokenID", "VersionTag", NULL};
    diff_members(old, job, skip, fields, objects);
    bool job_edited = json_object_array_length(fields) || json_object_array_length(objects);
    json_object *otg = jarr(old, "TaskGroups"), *ntg = jarr(job, "TaskGroups");
    bool any = job_edited;
    for (size_t i = 0; ntg && i < json_object_array_length(ntg); i++) {
        json_object *ng = json_object_array_get_idx(ntg, i);
        json_object *gd = diff_group(old ? named(otg, jstr(ng, "Name")) : NULL, ng, desired, job_edited);
        any |= strcmp(jstr(gd, "Type"), "None") != 0;
        json_object_array_add(groups, gd);
    }
    for (size_t i = 0; otg && i < json_object_array_length(otg); i++) {
        json_object *og = json_object_array_get_idx(otg, i);
        if (named(ntg, jstr(og, "Name"))) continue;
        json_object_array_add(groups, diff_group(og, NULL, desired, job_edited));
        any = true;
    }
    set_str(diff, "Type", !old ? "Added" : any ? "Edited" : "None");
    set_str(diff, "ID", jstr(job, "ID"));
    json_object_object_add(diff, "Fields", fields);
    json_object_object_add(diff, "Objects", objects);
    json_object_object_add(diff, "TaskGroups", groups);

    json_object *r = json_object_new_object();
    json_object *ann = json_object_new_object();
    json_object_object_add(ann, "DesiredTGUpdates", desired);
    json_object_object_add(ann, "PreemptedAllocs", NULL);
    json_object_object_add(r, "Annotations", ann);
    json_object_object_add(r, "FailedTGAllocs", NULL);
    set_u64(r, "JobModifyIndex", j ? j->job_modify_index : 0);
    json_object_object_add(r, "CreatedEvals", NULL);
    if (want_diff) json_object_object_add(r, "Diff", diff);
    else json_object_put(diff);
    set_str(r, "NextPeriodicLaunch", ZERO_TIME);
    set_str(r, "Warnings", "");
    set_u64(r, "Index", j ? j->job_modify_index : st->idx_jobs);
    *index = j ? j->job_modify_index : st->idx_jobs;
    json_object_put(job);
    *resp = r;
    return SIM_OK;
}
