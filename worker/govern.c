/* See govern.h. */
#include "govern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- zones ---- */

#define ZONES_MAX 64

static pthread_mutex_t zones_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char name[CONFIG_FREEZE_MAX_ZONE + 1];
    tzif_zone *zone;   /* NULL: could not be loaded (decisions then fail closed) */
} zones[ZONES_MAX];
static size_t n_zones;

const tzif_zone *govern_zone(void *ud, const char *name) {
    (void)ud;
    const tzif_zone *found = NULL;
    pthread_mutex_lock(&zones_mu);
    size_t i = 0;
    while (i < n_zones && strcmp(zones[i].name, name) != 0) i++;
    if (i < n_zones) {
        found = zones[i].zone;
    } else if (n_zones < ZONES_MAX && strlen(name) <= CONFIG_FREEZE_MAX_ZONE) {
        char err[160];
        tzif_zone *z = NULL;
        if (tzif_load(NULL, name, &z, err, sizeof(err)) != 0)
            nm_log(NM_LOG_ERROR, "time zone not loaded; its freezes count as frozen", "zone", name, "error", err, NULL);
        snprintf(zones[n_zones].name, sizeof(zones[n_zones].name), "%s", name);
        zones[n_zones++].zone = z;   /* loaded once; shared read-only for the life of the process */
        found = z;
    }
    pthread_mutex_unlock(&zones_mu);
    return found;
}

/* ---- facts ---- */

static int ctx_init(audit_db *db, const config *cfg, gov_ctx *ctx) {
    memset(ctx, 0, sizeof(*ctx));
    ctx->cfg = cfg;
    ctx->zone = govern_zone;
    ctx->limits = gov_limits_default;
    ctx->limits.max_open_per_person = cfg->limit_open_requests;
    ctx->limits.max_commands = cfg->limit_commands;
    ctx->limits.window_s = 60;
    return audit_now(db, &ctx->now);
}

static int approval_row(const char *identity, const char *person, int64_t at, void *arg) {
    gov_request *g = arg;
    if (g->n_approvals >= GOV_MAX_APPROVALS) return 1;
    gov_approval *a = &g->approvals[g->n_approvals++];
    snprintf(a->identity, sizeof(a->identity), "%s", identity);
    snprintf(a->person, sizeof(a->person), "%s", person ? person : "");
    a->at = at;
    return 0;
}

static enum gov_kind kind_of(const char *k) {
    return strcmp(k, "promote") == 0 ? GOV_KIND_PROMOTE : strcmp(k, "rollback") == 0 ? GOV_KIND_ROLLBACK
                                                                                    : GOV_KIND_DEPLOY;
}

/* The request as governance sees it: the row and its counted approvals. */
static int load(audit_db *db, int64_t id, gov_request *g, audit_facts *f) {
    int rc = audit_request_facts(db, id, f);
    if (rc != AUDIT_OK) return rc;
    memset(g, 0, sizeof(*g));
    g->id = id;
    g->kind = kind_of(f->kind);
    snprintf(g->env, sizeof(g->env), "%s", f->env);
    snprintf(g->job, sizeof(g->job), "%s", f->job);
    snprintf(g->requester, sizeof(g->requester), "%s", f->actor);
    snprintf(g->requester_person, sizeof(g->requester_person), "%s", f->person);
    snprintf(g->emergency, sizeof(g->emergency), "%s", f->emergency);
    snprintf(g->image, sizeof(g->image), "%s", f->bound_image);
    g->created_at = f->created_at;
    req_state_parse(f->state, &g->state);
    if (f->phase[0]) req_phase_parse(f->phase, &g->phase);
    if (f->reason[0]) req_reason_parse(f->reason, &g->reason);
    g->required = f->required;
    g->policy_hash = f->policy_hash;
    return audit_approvals_each(db, id, approval_row, g);
}

static int lock_of(audit_db *db, const char *env, gov_lock *lock) {
    memset(lock, 0, sizeof(*lock));
    return audit_lock_get(db, env, &lock->locked, lock->by, lock->reason, &lock->since);
}

/* Everything a decision about an existing request needs: the clock, the
 * request with its approvals, its environment's lock. */
static int load_all(audit_db *db, const config *cfg, int64_t id, gov_ctx *ctx, gov_request *g, audit_facts *f,
                    gov_lock *lock) {
    int rc = ctx_init(db, cfg, ctx);
    if (rc == AUDIT_OK) rc = load(db, id, g, f);
    if (rc == AUDIT_OK) rc = lock_of(db, g->env, lock);
    return rc;
}

/* ---- requests ---- */

static int fill_in(audit_db *db, const config *cfg, const govern_in *in, gov_request_in *r, gov_lock *lock,
                   gov_ctx *ctx) {
    int rc = ctx_init(db, cfg, ctx);
    if (rc != AUDIT_OK) return rc;
    memset(r, 0, sizeof(*r));
    r->kind = in->kind;
    r->env = in->env;
    r->job = in->job;
    r->actor = in->actor;
    r->channel = in->origin.channel;
    r->emergency = in->emergency;
    r->from_env = in->from_env;
    r->evidence = in->evidence;
    if ((rc = lock_of(db, in->env, lock)) != AUDIT_OK) return rc;
    r->lock = lock;
    char key[GOV_MAX_IDENTITY + 1];
    gov_person_key(cfg, in->actor, key, sizeof(key));
    if ((rc = audit_open_count(db, key, &r->open_of_person)) != AUDIT_OK) return rc;
    return audit_recent_commands(db, key, ctx->limits.window_s, &r->recent_commands);
}

int govern_request(audit_db *db, const config *cfg, const govern_in *in, gov_verdict *v, int64_t *id, bool *existed) {
    gov_ctx ctx;
    gov_request_in r;
    gov_lock lock;
    *id = 0;
    *existed = false;
    memset(v, 0, sizeof(*v));
    int rc = fill_in(db, cfg, in, &r, &lock, &ctx);
    if (rc != AUDIT_OK) return rc;
    if (gov_may_request(&ctx, &r, v) != GOV_OK)
        return audit_refusal(db, &in->origin, in->actor, in->person, in->env, in->job, gov_tag_name(v->tag),
                             v->message);
    const config_env *env = config_find_env(cfg, in->env);
    audit_new_request n = {
        .idem_key = in->idem_key, .kind = gov_kind_name(in->kind), .env = in->env, .job = in->job,
        .version = in->version, .to_image = in->to_image, .canary = in->canary, .user_reason = in->user_reason,
        .actor = in->actor, .person = in->person, .state = req_state_name(v->next), .origin = in->origin,
        .emergency = in->emergency && *in->emergency ? in->emergency : NULL, .required_approvals = v->required,
        .policy_hash = env ? gov_policy_hash(cfg, env) : 0,
        .from_env = in->kind == GOV_KIND_PROMOTE ? in->from_env : NULL,
        .bound_image = in->kind == GOV_KIND_PROMOTE && in->evidence ? in->evidence->image : NULL,
    };
    rc = audit_request_create(db, &n, id, existed);
    if (rc == AUDIT_OK && !*existed && (v->flags & GOV_F_BREAK_GLASS)) {
        /* Announced loudly: the log now, the environment's notify channels when chat is configured. */
        char ref[24], notify[256] = "";
        snprintf(ref, sizeof(ref), "D-%lld", (long long)*id);
        for (size_t i = 0; env && i < env->notify.n; i++)
            snprintf(notify + strlen(notify), sizeof(notify) - strlen(notify), "%s%s", i ? "," : "", env->notify.v[i]);
        nm_log(NM_LOG_WARN, "break-glass: a request passes a freeze", "req", ref, "env", in->env, "job", in->job,
               "actor", in->actor, "emergency", in->emergency, "notify", notify[0] ? notify : NULL, NULL);
    }
    if (rc == AUDIT_ERR_EXISTS) {
        /* SPEC §6: one open request per (environment, job) where approvals are required. */
        v->tag = GOV_OPEN_EXISTS;
        v->rule = "approvals";
        snprintf(v->message, sizeof(v->message), "D-%lld is still open for %s in %s; finish or cancel it first",
                 (long long)*id, in->job, in->env);
        *id = 0;
        return audit_refusal(db, &in->origin, in->actor, in->person, in->env, in->job, gov_tag_name(v->tag),
                             v->message);
    }
    return rc;
}

int govern_explain(audit_db *db, const config *cfg, const govern_in *in, char *out, size_t outlen, gov_verdict *v) {
    gov_ctx ctx;
    gov_request_in r;
    gov_lock lock;
    int rc = fill_in(db, cfg, in, &r, &lock, &ctx);
    if (rc != AUDIT_OK) return rc;
    gov_explain(&ctx, &r, out, outlen, v);
    return AUDIT_OK;
}

int govern_promote_check(audit_db *db, const config *cfg, const char *target_env, const char *from_env,
                         const gov_evidence *ev, const char *bound_image, gov_verdict *v) {
    gov_ctx ctx;
    memset(v, 0, sizeof(*v));
    int rc = ctx_init(db, cfg, &ctx);
    if (rc != AUDIT_OK) return rc;
    const config_env *target = config_find_env(cfg, target_env);
    if (!target) {
        v->tag = GOV_UNKNOWN_ENV;
        snprintf(v->message, sizeof(v->message), "environment %s is no longer configured", target_env);
        return AUDIT_OK;
    }
    gov_promote_evidence(&ctx, target, from_env, ev, bound_image, v);
    return AUDIT_OK;
}

/* ---- approve, reject, cancel ---- */

int govern_decide(audit_db *db, const config *cfg, enum govern_act act, int64_t id, const char *actor,
                  const char *person, const char *channel, const char *why, gov_verdict *v, bool *queued) {
    gov_ctx ctx;
    gov_request g;
    audit_facts f;
    gov_lock lock;
    *queued = false;
    memset(v, 0, sizeof(*v));
    int rc = load_all(db, cfg, id, &ctx, &g, &f, &lock);
    if (rc != AUDIT_OK) return rc;

    enum gov_tag tag = act == GOVERN_APPROVE  ? gov_approve(&ctx, &g, actor, channel, &lock, v)
                       : act == GOVERN_REJECT ? gov_reject(&ctx, &g, actor, channel, v)
                                              : gov_cancel(&ctx, &g, actor, channel, v);
    if (tag != GOV_OK)
        return audit_refusal(db, &(audit_origin){.channel = channel}, actor, person, g.env, g.job, gov_tag_name(tag),
                             v->message);
    if (act != GOVERN_APPROVE) {
        audit_transition t = {.from_state = f.state, .to_state = req_state_name(v->next),
                              .action = act == GOVERN_REJECT ? "request.rejected" : "request.cancelled",
                              .actor = actor, .person = person, .outcome = req_state_name(v->next),
                              .detail = why && *why ? why : v->message, .nomad_job_version = -1};
        return audit_request_transition(db, id, &t);
    }
    audit_transition t = {.from_state = "pending_approval", .to_state = "approved", .action = "request.approved",
                          .actor = actor, .person = person, .outcome = "approved", .detail = v->message,
                          .nomad_job_version = -1};
    bool counted = false;
    rc = audit_approval_add(db, id, actor, person, &counted, (v->flags & GOV_F_COMPLETE) ? &t : NULL);
    if (rc != AUDIT_OK) return rc;
    if (!counted) {
        v->tag = GOV_ALREADY_COUNTED;
        v->rule = "approvals";
        snprintf(v->message, sizeof(v->message), "your approval of D-%lld is already counted", (long long)id);
        v->flags &= ~(unsigned)(GOV_F_COUNTED | GOV_F_COMPLETE);
        return AUDIT_OK;
    }
    if (!(v->flags & GOV_F_COMPLETE)) {
        /* Racing approvers may each have seen one too few: decide again on fresh facts. */
        if (load(db, id, &g, &f) == AUDIT_OK && g.state == REQ_PENDING_APPROVAL &&
            gov_count_approvals(cfg, &g) >= g.required) {
            if (audit_request_transition(db, id, &t) == AUDIT_OK) v->flags |= GOV_F_COMPLETE;
        }
    }
    if (v->flags & GOV_F_COMPLETE) {
        audit_transition q = {.from_state = "approved", .to_state = "queued", .action = "request.queued",
                              .actor = "nomatron", .outcome = "queued", .nomad_job_version = -1};
        if (audit_request_transition(db, id, &q) == AUDIT_OK) *queued = true;
    }
    return AUDIT_OK;
}

int govern_may_act(audit_db *db, const config *cfg, int64_t id, enum cmd_kind action, const char *sub,
                   const char *actor, const char *channel, gov_verdict *v) {
    gov_ctx ctx;
    gov_request g;
    audit_facts f;
    gov_lock lock;
    memset(v, 0, sizeof(*v));
    int rc = load_all(db, cfg, id, &ctx, &g, &f, &lock);
    if (rc != AUDIT_OK) return rc;
    if (gov_may_act(&ctx, &g, action, sub, actor, channel, &lock, v) != GOV_OK)
        return audit_refusal(db, &(audit_origin){.channel = channel}, actor, NULL, g.env, g.job, gov_tag_name(v->tag),
                             v->message);
    return AUDIT_OK;
}

/* ---- locks ---- */

int govern_lock(audit_db *db, const config *cfg, const char *env, bool lock, const char *actor, const char *person,
                const char *channel, const char *reason, gov_verdict *v) {
    gov_ctx ctx;
    gov_lock cur;
    memset(v, 0, sizeof(*v));
    int rc = ctx_init(db, cfg, &ctx);
    if (rc == AUDIT_OK) rc = lock_of(db, env, &cur);
    if (rc != AUDIT_OK) return rc;
    enum gov_tag tag = lock ? gov_may_lock(&ctx, env, actor, channel, &cur, v)
                            : gov_may_unlock(&ctx, env, actor, channel, &cur, v);
    if (tag != GOV_OK)
        return audit_refusal(db, &(audit_origin){.channel = channel}, actor, person, env, NULL, gov_tag_name(tag),
                             v->message);
    rc = audit_lock_set(db, env, lock, actor, person, reason);
    if (rc == AUDIT_ERR_STATE) {
        v->tag = lock ? GOV_ALREADY_LOCKED : GOV_NOT_LOCKED;
        snprintf(v->message, sizeof(v->message), "%s is %s already", env, lock ? "locked" : "unlocked");
        return AUDIT_OK;
    }
    return rc;
}

/* ---- workers ---- */

int govern_run_check(audit_db *db, const config *cfg, int64_t id, enum gov_point point, gov_verdict *v) {
    gov_ctx ctx;
    gov_request g;
    audit_facts f;
    gov_lock lock;
    memset(v, 0, sizeof(*v));
    int rc = load_all(db, cfg, id, &ctx, &g, &f, &lock);
    if (rc != AUDIT_OK) return rc;
    gov_run_check(&ctx, &g, &lock, point, v);
    return AUDIT_OK;
}

typedef struct sweep_item {
    int64_t id;
} sweep_item;

typedef struct sweep_list {
    sweep_item items[256];
    size_t n;
} sweep_list;

static int waiting_row(int64_t id, const char *env, const char *state, int required, int64_t created_at, void *arg) {
    (void)env, (void)state, (void)required, (void)created_at;
    sweep_list *l = arg;
    if (l->n >= sizeof(l->items) / sizeof(l->items[0])) return 1;
    l->items[l->n++].id = id;
    return 0;
}

int govern_sweep(audit_db *db, const config *cfg, govern_moved_fn fn, void *ud) {
    sweep_list *l = calloc(1, sizeof(*l));
    if (!l) return AUDIT_ERR_NOMEM;
    gov_ctx ctx;
    int rc = ctx_init(db, cfg, &ctx);
    if (rc == AUDIT_OK) rc = audit_pending_expired(db, waiting_row, l);
    gov_request *g = calloc(1, sizeof(*g));
    for (size_t i = 0; rc == AUDIT_OK && g && i < l->n; i++) {
        audit_facts f;
        if (load(db, l->items[i].id, g, &f) != AUDIT_OK) continue;
        gov_verdict v;
        /* A reload first (its verdict may already end the request), then expiry. */
        const config_env *env = config_find_env(cfg, g->env);
        if (!env || g->policy_hash != gov_policy_hash(cfg, env)) {
            if (gov_reload(&ctx, g, &v) != GOV_OK || (v.flags & (GOV_F_REBOUND | GOV_F_VOIDED))) {
                audit_transition t = {.from_state = f.state, .to_state = req_state_name(v.next), .action =
                                      "request.reload", .actor = "nomatron", .outcome = req_state_name(v.next),
                                      .detail = v.message, .nomad_job_version = -1};
                int r2;
                if (v.tag != GOV_OK) {
                    r2 = audit_request_transition(db, g->id, &t);
                } else {
                    bool moves = v.next != REQ_STATE_NONE && v.next != g->state;
                    uint64_t hash = env ? gov_policy_hash(cfg, env) : 0;
                    r2 = audit_request_rebind(db, g->id, v.required, hash, (v.flags & GOV_F_VOIDED) != 0, "nomatron",
                                              v.message, moves ? &t : NULL);
                }
                if (r2 == AUDIT_OK && fn) fn(ud, g->id, v.next != REQ_STATE_NONE ? req_state_name(v.next) : f.state,
                                             v.message);
                continue;
            }
        }
        if (gov_expire(&ctx, g, &v) == GOV_EXPIRED) {
            audit_transition t = {.from_state = f.state, .to_state = "expired", .action = "request.expired",
                                  .actor = "nomatron", .outcome = "expired", .detail = v.message,
                                  .nomad_job_version = -1};
            if (audit_request_transition(db, g->id, &t) == AUDIT_OK && fn) fn(ud, g->id, "expired", v.message);
        }
    }
    free(g);
    free(l);
    return rc;
}
