/* A driver for the governance state machine, shared by the seeded random
 * test (tests/unit/test_governance_random.c) and the libFuzzer target
 * (tests/fuzz/fuzz_governance.c). It plays random requests, approvals,
 * rejections, cancels, expiries, locks, reloads, clock jumps (also
 * backwards), worker takes, registers and deployment actions against
 * commands/governance.c, applying every verdict through the transition
 * table, and checks after each step, with oracles written here
 * independently of governance.c:
 *   - nothing reaches queued (or running) without the required number of
 *     distinct eligible people under the policy in force;
 *   - nothing is taken or registered inside a freeze (windows or lock)
 *     without break-glass: --emergency with approvals + 1;
 *   - terminal states never change, and every move is a legal transition.
 * A violation calls gd_fail (abort in both users). Header-only, static. */
#ifndef GOVERNANCE_DRIVER_H
#define GOVERNANCE_DRIVER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freeze_eval.h"
#include "governance.h"
#include "tzif.h"

#define GD_VARIANTS 3
#define GD_MAX_REQ 48

/* Three policies the driver reloads between. People and groups are the same. */
#define GD_HEAD                                                                                      \
    "redis: redis://127.0.0.1\npostgres: x\n"                                                        \
    "people:\n  bob: [slack:U1, shell:bob]\n  carol: [slack:U2]\n  dave: [slack:U3]\n"               \
    "  alice: [shell:alice, slack:UA]\n  erin: [slack:U5]\n"                                         \
    "groups:\n  sre: [bob, carol, slack:U7]\n  developers: [alice, dave]\n  leads: [erin]\n"          \
    "jobs:\n  web: {tasks: [web], image: r/web}\n  api: {tasks: [api], image: r/api}\n"               \
    "environments:\n"                                                                                \
    "  staging: {nomad: {address: http://n}, deployers: [developers, sre], approvers: [sre]}\n"       \
    "  qa: {nomad: {address: http://n}, deployers: [developers, sre], approvals: 1, approvers: [sre, leads],\n" \
    "       self_approval: true, approval_ttl: 2h, freeze: [\"daily 23:00 - 01:00 UTC\"]}\n"

static const char *const gd_yaml[GD_VARIANTS] = {
    GD_HEAD "  production:\n    nomad: {address: http://n}\n    deployers: [sre, developers]\n"
            "    approvals: 2\n    approvers: [sre]\n    approval_ttl: 4h\n"
            "    freeze: [\"Fri 16:00 - Mon 08:00 Europe/Berlin\", \"daily 12:00 - 13:00 Europe/Berlin\"]\n",
    GD_HEAD "  production:\n    nomad: {address: http://n}\n    deployers: [sre, developers]\n"
            "    approvals: 3\n    approvers: [sre, leads]\n    approval_ttl: 4h\n"
            "    freeze: [\"Fri 16:00 - Mon 08:00 Europe/Berlin\"]\n",
    GD_HEAD "  production:\n    nomad: {address: http://n}\n    deployers: [sre]\n"
            "    approvals: 1\n    approvers: [sre]\n    self_approval: true\n    approval_ttl: 1h\n"
            "    freeze: [\"Sat - Sun Europe/Berlin\"]\n",
};

/* ---- oracles (independent of governance.c) ---- */

static const char *const gd_ids[] = {"slack:U1", "shell:bob", "slack:U2", "slack:U7", "shell:alice",
                                     "slack:UA", "slack:U3", "slack:U5", "slack:U8"};
#define GD_NIDS 9

static const char *gd_person(const char *id) {
    if (!strcmp(id, "slack:U1") || !strcmp(id, "shell:bob")) return "bob";
    if (!strcmp(id, "slack:U2")) return "carol";
    if (!strcmp(id, "slack:U3")) return "dave";
    if (!strcmp(id, "shell:alice") || !strcmp(id, "slack:UA")) return "alice";
    if (!strcmp(id, "slack:U5")) return "erin";
    return id;
}

static int gd_env_index(const char *env) { return !strcmp(env, "staging") ? 0 : !strcmp(env, "qa") ? 1 : 2; }

/* Approvers by person, per variant and environment. */
static int gd_is_approver(int variant, const char *env, const char *person) {
    int sre = !strcmp(person, "bob") || !strcmp(person, "carol") || !strcmp(person, "slack:U7");
    int leads = !strcmp(person, "erin");
    switch (gd_env_index(env)) {
    case 0: return sre;
    case 1: return sre || leads;
    default: return variant == 1 ? (sre || leads) : sre;
    }
}
static int gd_self_ok(int variant, const char *env) {
    int e = gd_env_index(env);
    return e == 1 || (e == 2 && variant == 2);
}
static int gd_required(int variant, const char *env, int emergency) {
    int e = gd_env_index(env);
    int n = e == 0 ? 0 : e == 1 ? 1 : variant == 0 ? 2 : variant == 1 ? 3 : 1;
    return n + (emergency ? 1 : 0);
}
/* Distinct eligible people among the approvals, under `variant`. */
static int gd_count(int variant, const gov_request *r) {
    const char *seen[GOV_MAX_APPROVALS];
    int n = 0;
    const char *req_person = gd_person(r->requester);
    for (size_t i = 0; i < r->n_approvals; i++) {
        const char *p = gd_person(r->approvals[i].identity);
        if (!gd_is_approver(variant, r->env, p)) continue;
        if (!gd_self_ok(variant, r->env) && !strcmp(p, req_person)) continue;
        int dup = 0;
        for (int k = 0; k < n; k++) dup |= !strcmp(seen[k], p);
        if (!dup) seen[n++] = p;
    }
    return n;
}

/* ---- the world ---- */

typedef struct gd_world {
    config *cfgs[GD_VARIANTS];
    tzif_zone *berlin;
    int variant;
    int64_t now;
    gov_lock locks[3];
    gov_request req[GD_MAX_REQ];
    enum req_state terminal_seen[GD_MAX_REQ];   /* NONE until the slot's request ended */
    int64_t next_id;
    /* the random source: bytes (fuzzer) or xorshift (seeded test) */
    const uint8_t *data;
    size_t size, pos;
    uint64_t rng;
    int exhausted;
    /* what happened, for the reports */
    unsigned long steps, created, approvals, queued, ran, break_glass, refusals, expired, voided, deferred;
} gd_world;

static const char *const gd_envs[] = {"staging", "qa", "production"};

static void gd_fail(const gd_world *w, const char *what, const gov_request *r) {
    fprintf(stderr, "governance invariant broken at step %lu (variant %d, now %lld): %s", w->steps, w->variant,
            (long long)w->now, what);
    if (r)
        fprintf(stderr, " [D-%lld %s %s by %s state %s, %zu approvals, required %d, emergency '%s']", (long long)r->id,
                r->env, r->job, r->requester, req_state_name(r->state), r->n_approvals, r->required, r->emergency);
    fprintf(stderr, "\n");
    abort();
}

static unsigned gd_rand(gd_world *w, unsigned n) {
    if (n <= 1) return 0;
    if (w->data) {
        if (w->pos >= w->size) {
            w->exhausted = 1;
            return 0;
        }
        return w->data[w->pos++] % n;
    }
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (unsigned)((x >> 11) % n);
}

static const tzif_zone *gd_zone(void *ud, const char *name) {
    const gd_world *w = ud;
    return strcmp(name, "Europe/Berlin") == 0 ? w->berlin : NULL;
}

static gov_ctx gd_ctx(gd_world *w) {
    gov_ctx c = {w->cfgs[w->variant], gd_zone, w, gov_limits_default, w->now};
    c.limits.max_open_per_person = 8;
    return c;
}

/* Frozen now for env (oracle: each window with freeze_active, plus the lock). */
static int gd_frozen(gd_world *w, int e) {
    if (w->locks[e].locked) return 1;
    const config_env *env = config_find_env(w->cfgs[w->variant], gd_envs[e]);
    for (size_t i = 0; i < env->freeze.n; i++) {
        config_freeze f;
        char err[128];
        if (config_freeze_parse(env->freeze.v[i], &f, err, sizeof err) != 0) gd_fail(w, "window parse", NULL);
        const tzif_zone *z = strcmp(f.zone, "UTC") == 0 ? NULL : w->berlin;
        if (freeze_active(&f, z, w->now, NULL)) return 1;
    }
    return 0;
}

/* A fresh walk on an initialised world: keeps the parsed configs and zone. */
static void gd_reset(gd_world *w, const uint8_t *data, size_t size, uint64_t seed) {
    config *cfgs[GD_VARIANTS];
    memcpy(cfgs, w->cfgs, sizeof cfgs);
    tzif_zone *berlin = w->berlin;
    memset(w, 0, sizeof *w);
    memcpy(w->cfgs, cfgs, sizeof cfgs);
    w->berlin = berlin;
    w->data = data;
    w->size = size;
    w->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    w->now = INT64_C(1774000000);   /* March 2026, days before Berlin's DST change */
    w->next_id = 1;
}

static int gd_init(gd_world *w, const uint8_t *data, size_t size, uint64_t seed) {
    memset(w, 0, sizeof *w);
    char err[256];
    for (int i = 0; i < GD_VARIANTS; i++)
        if (config_parse(gd_yaml[i], strlen(gd_yaml[i]), "gd.yaml", &config_resolver_system, &w->cfgs[i], err,
                         sizeof err) != 0) {
            fprintf(stderr, "driver config %d: %s\n", i, err);
            return -1;
        }
    if (tzif_load(NULL, "Europe/Berlin", &w->berlin, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    gd_reset(w, data, size, seed);
    return 0;
}

static inline void gd_free(gd_world *w) {
    for (int i = 0; i < GD_VARIANTS; i++) config_free(w->cfgs[i]);
    tzif_free(w->berlin);
}

/* Every verdict: a refusal names its rule and says why; a move is legal. */
static void gd_check_verdict(gd_world *w, const gov_verdict *v, enum gov_tag t, const gov_request *r) {
    if (t != v->tag) gd_fail(w, "returned tag differs from verdict", r);
    if (!strcmp(gov_tag_name(t), "?")) gd_fail(w, "unnamed tag", r);
    if (t != GOV_OK) {
        w->refusals++;
        if (!v->message[0] || !v->rule || !v->rule[0]) gd_fail(w, "refusal without rule or message", r);
    }
    if (r && v->next != REQ_STATE_NONE && !request_transition_allowed(r->state, v->next))
        gd_fail(w, "verdict names an illegal transition", r);
}

static void gd_move(gd_world *w, gov_request *r, enum req_state to, enum req_phase ph, enum req_reason why) {
    enum req_state from = r->state;
    if (gov_request_set_state(r, to, ph, why) != 0) gd_fail(w, "illegal transition attempted by a verdict", r);
    if (to == REQ_QUEUED && from != REQ_RUNNING) {
        /* Nothing reaches queued without the required distinct eligible people. */
        int need = gd_required(w->variant, r->env, r->emergency[0] != 0);
        if (gd_count(w->variant, r) < need) gd_fail(w, "queued without enough distinct eligible approvals", r);
        w->queued++;
    }
    if (to == REQ_EXPIRED) w->expired++;
}

static gov_request *gd_pick(gd_world *w) {
    unsigned i = gd_rand(w, GD_MAX_REQ);
    return w->req[i].id ? &w->req[i] : NULL;
}

/* Mostly a request in `state` (from a random start), sometimes any slot. */
static gov_request *gd_pick_in(gd_world *w, enum req_state state) {
    unsigned start = gd_rand(w, GD_MAX_REQ);
    if (gd_rand(w, 5) == 0) return gd_pick(w);
    for (unsigned k = 0; k < GD_MAX_REQ; k++) {
        gov_request *r = &w->req[(start + k) % GD_MAX_REQ];
        if (r->id && r->state == state) return r;
    }
    return NULL;
}

static void gd_request(gd_world *w) {
    int slot = -1;
    for (int i = 0; i < GD_MAX_REQ && slot < 0; i++)
        if (!w->req[i].id || req_state_terminal(w->req[i].state)) slot = i;
    if (slot < 0) return;
    int e = (int)gd_rand(w, 3);
    const char *actor = gd_ids[gd_rand(w, GD_NIDS)];
    const char *emergency = gd_rand(w, 4) == 0 ? "outage" : NULL;
    enum gov_kind kind = gd_rand(w, 5) == 0 ? GOV_KIND_ROLLBACK : GOV_KIND_DEPLOY;
    int64_t open_same = 0;
    int open_of_person = 0;
    for (int i = 0; i < GD_MAX_REQ; i++) {
        const gov_request *o = &w->req[i];
        if (!o->id || !req_state_open(o->state)) continue;
        if (!strcmp(o->env, gd_envs[e]) && !strcmp(o->job, "web")) open_same = o->id;
        if (!strcmp(gd_person(o->requester), gd_person(actor))) open_of_person++;
    }
    gov_ctx ctx = gd_ctx(w);
    gov_request_in in = {kind, gd_envs[e], NULL, "web", actor, NULL, emergency, &w->locks[e], NULL,
                         open_of_person, (int)gd_rand(w, 40), open_same};
    gov_verdict v;
    enum gov_tag t = gov_may_request(&ctx, &in, &v);
    gd_check_verdict(w, &v, t, NULL);
    if (t != GOV_OK) return;
    if (gd_frozen(w, e) && !emergency) gd_fail(w, "request accepted inside a freeze without --emergency", NULL);
    if (v.required != gd_required(w->variant, gd_envs[e], emergency != NULL)) gd_fail(w, "required count", NULL);
    gov_request *r = &w->req[slot];
    gov_request_init(r, &ctx, &in, &v, w->next_id++);
    w->terminal_seen[slot] = REQ_STATE_NONE;
    w->created++;
    if (!request_initial_allowed(r->state)) gd_fail(w, "created in a state that is not initial", r);
    if (r->state == REQ_QUEUED && v.required != 0) gd_fail(w, "queued at creation with approvals required", r);
}

static void gd_approve(gd_world *w) {
    gov_request *r = gd_pick_in(w, REQ_PENDING_APPROVAL);
    if (!r) return;
    const char *actor = gd_ids[gd_rand(w, GD_NIDS)];
    int e = gd_env_index(r->env);
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    enum gov_tag t = gov_approve(&ctx, r, actor, NULL, &w->locks[e], &v);
    gd_check_verdict(w, &v, t, r);
    if (t == GOV_EXPIRED) gd_move(w, r, REQ_EXPIRED, 0, 0);
    if (t != GOV_OK) return;
    /* Oracle: this person is eligible and not yet counted. */
    const char *p = gd_person(actor);
    if (!gd_is_approver(w->variant, r->env, p)) gd_fail(w, "a non-approver's approval counted", r);
    if (!gd_self_ok(w->variant, r->env) && !strcmp(p, gd_person(r->requester)))
        gd_fail(w, "the requester's approval counted", r);
    for (size_t i = 0; i < r->n_approvals; i++)
        if (!strcmp(gd_person(r->approvals[i].identity), p)) gd_fail(w, "a person counted twice", r);
    if (gd_frozen(w, e) && !r->emergency[0]) gd_fail(w, "approval counted inside a freeze without break-glass", r);
    if (gov_request_add_approval(r, ctx.cfg, actor, w->now) != 0) gd_fail(w, "approval list full", r);
    w->approvals++;
    if (v.flags & GOV_F_COMPLETE) {
        gd_move(w, r, REQ_APPROVED, 0, 0);
        gd_move(w, r, REQ_QUEUED, 0, 0);   /* the bot hands an approved request to the queue at once */
    }
}

static void gd_reject_cancel(gd_world *w, int cancel) {
    gov_request *r = gd_pick(w);
    if (!r) return;
    const char *actor = gd_ids[gd_rand(w, GD_NIDS)];
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    enum gov_tag t = cancel ? gov_cancel(&ctx, r, actor, NULL, &v) : gov_reject(&ctx, r, actor, NULL, &v);
    gd_check_verdict(w, &v, t, r);
    if (t == GOV_OK) gd_move(w, r, v.next, 0, 0);
}

static void gd_expire_sweep(gd_world *w) {
    gov_ctx ctx = gd_ctx(w);
    for (int i = 0; i < GD_MAX_REQ; i++) {
        gov_request *r = &w->req[i];
        if (!r->id) continue;
        gov_verdict v;
        enum gov_tag t = gov_expire(&ctx, r, &v);
        gd_check_verdict(w, &v, t, r);
        if (t == GOV_EXPIRED) gd_move(w, r, REQ_EXPIRED, 0, 0);
    }
}

static void gd_reload(gd_world *w) {
    w->variant = (int)gd_rand(w, GD_VARIANTS);
    gov_ctx ctx = gd_ctx(w);
    for (int i = 0; i < GD_MAX_REQ; i++) {
        gov_request *r = &w->req[i];
        if (!r->id) continue;
        gov_verdict v;
        enum gov_tag t = gov_reload(&ctx, r, &v);
        gd_check_verdict(w, &v, t, r);
        if (v.flags & GOV_F_VOIDED) w->voided++;
        enum req_state before = r->state;
        if (gov_request_apply_reload(r, &ctx, &v) != 0) gd_fail(w, "reload verdict not applicable", r);
        if (before == REQ_PENDING_APPROVAL && r->state == REQ_APPROVED) gd_move(w, r, REQ_QUEUED, 0, 0);
        /* A waiting request past its approvals must satisfy the new policy. */
        if ((r->state == REQ_APPROVED || r->state == REQ_QUEUED) &&
            gd_count(w->variant, r) < gd_required(w->variant, r->env, r->emergency[0] != 0))
            gd_fail(w, "queued request kept after a reload without enough approvals", r);
    }
}

static void gd_lock(gd_world *w) {
    int e = (int)gd_rand(w, 3);
    const char *actor = gd_ids[gd_rand(w, GD_NIDS)];
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    gov_lock *l = &w->locks[e];
    enum gov_tag t = l->locked ? gov_may_unlock(&ctx, gd_envs[e], actor, NULL, l, &v)
                               : gov_may_lock(&ctx, gd_envs[e], actor, NULL, l, &v);
    gd_check_verdict(w, &v, t, NULL);
    if (t != GOV_OK) return;
    if (l->locked) {
        memset(l, 0, sizeof *l);
    } else {
        l->locked = true;
        snprintf(l->by, sizeof l->by, "%s", actor);
        snprintf(l->reason, sizeof l->reason, "random");
        l->since = w->now;
    }
}

static void gd_clock(gd_world *w) {
    switch (gd_rand(w, 12)) {
    case 0: w->now += 1; break;
    case 1: case 2: case 3: case 4: w->now += 1 + gd_rand(w, 600); break;
    case 5: w->now += 3600 * (1 + (int64_t)gd_rand(w, 72)); break;
    case 6: case 7: w->now -= gd_rand(w, 600); break;          /* PostgreSQL's clock stepped back */
    case 8: w->now += 86400 * (1 + (int64_t)gd_rand(w, 6)); break;
    default: w->now += 60 * (int64_t)gd_rand(w, 60); break;
    }
}

/* Both points of the freeze rule run here, checked against the oracle. */
static void gd_run_checked(gd_world *w, gov_request *r, const gov_verdict *v) {
    int e = gd_env_index(r->env);
    int need = gd_required(w->variant, r->env, r->emergency[0] != 0);
    if (gd_count(w->variant, r) < need) gd_fail(w, "runs without enough distinct eligible approvals", r);
    if (gd_frozen(w, e)) {
        if (!r->emergency[0]) gd_fail(w, "runs inside a freeze without break-glass", r);
        if (!(v->flags & GOV_F_BREAK_GLASS)) gd_fail(w, "break-glass not flagged", r);
        w->break_glass++;
    }
}

static void gd_take(gd_world *w) {
    gov_request *r = gd_pick_in(w, REQ_QUEUED);
    if (!r) return;
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    enum gov_tag t = gov_run_check(&ctx, r, &w->locks[gd_env_index(r->env)], GOV_AT_TAKE, &v);
    gd_check_verdict(w, &v, t, r);
    if (t == GOV_OK) {
        gd_run_checked(w, r, &v);
        gd_move(w, r, REQ_RUNNING, REQ_PHASE_REGISTERING, 0);
    } else if (v.next != REQ_STATE_NONE) {
        gd_move(w, r, v.next, 0, 0);
    } else if (v.flags & GOV_F_DEFER) {
        w->deferred++;
    }
}

static void gd_register(gd_world *w) {
    gov_request *r = gd_pick_in(w, REQ_RUNNING);
    if (!r) return;
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    enum gov_tag t = gov_run_check(&ctx, r, &w->locks[gd_env_index(r->env)], GOV_AT_REGISTER, &v);
    gd_check_verdict(w, &v, t, r);
    if (t == GOV_OK) {
        gd_run_checked(w, r, &v);
        if (gov_request_set_state(r, REQ_RUNNING, REQ_PHASE_ROLLING, 0) != 0) gd_fail(w, "phase change", r);
        w->ran++;
    } else if (v.next != REQ_STATE_NONE) {
        gd_move(w, r, v.next, 0, 0);
    }
}

static void gd_deployment(gd_world *w) {
    gov_request *r = gd_pick_in(w, REQ_RUNNING);
    if (!r || r->state != REQ_RUNNING || r->phase == REQ_PHASE_REGISTERING) return;
    unsigned k = gd_rand(w, 6);
    if (k == 0) {
        gd_move(w, r, REQ_SUCCEEDED, 0, 0);
        return;
    }
    if (k == 1) {
        gd_move(w, r, REQ_FAILED, 0, (enum req_reason)(1 + gd_rand(w, REQ_REASON_COUNT - 1)));
        return;
    }
    if (k == 2) {   /* Nomad reports canaries waiting */
        if (r->phase == REQ_PHASE_ROLLING) gov_request_set_state(r, REQ_RUNNING, REQ_PHASE_AWAITING_PROMOTION, 0);
        return;
    }
    static const enum cmd_kind acts[] = {CMD_CANARY, CMD_CANARY, CMD_PAUSE, CMD_RESUME};
    unsigned a = gd_rand(w, 4);
    const char *sub = a == 0 ? "promote" : a == 1 ? "fail" : NULL;
    const char *actor = gd_ids[gd_rand(w, GD_NIDS)];
    int e = gd_env_index(r->env);
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    enum gov_tag t = gov_may_act(&ctx, r, acts[a], sub, actor, NULL, &w->locks[e], &v);
    gd_check_verdict(w, &v, t, r);
    if (t != GOV_OK) return;
    if ((a == 0 || a == 3) && gd_frozen(w, e) && !r->emergency[0])
        gd_fail(w, "rollout advanced inside a freeze without break-glass", r);
    enum req_phase to = a == 0 ? REQ_PHASE_ROLLING : a == 1 ? REQ_PHASE_NONE : a == 2 ? REQ_PHASE_PAUSED
                                                                                     : REQ_PHASE_ROLLING;
    if (a == 1)
        gd_move(w, r, REQ_FAILED, 0, REQ_REASON_UNHEALTHY);
    else if (gov_request_set_state(r, REQ_RUNNING, to, 0) != 0)
        gd_fail(w, "an allowed action led to an illegal phase change", r);
}

/* Terminal requests: every operation refuses and nothing changes. */
static void gd_poke_terminal(gd_world *w) {
    gov_request *r = gd_pick(w);
    if (!r || !req_state_terminal(r->state)) return;
    gov_request before = *r;
    gov_ctx ctx = gd_ctx(w);
    gov_verdict v;
    const char *actor = gd_ids[gd_rand(w, GD_NIDS)];
    if (gov_approve(&ctx, r, actor, NULL, NULL, &v) == GOV_OK || gov_reject(&ctx, r, actor, NULL, &v) == GOV_OK ||
        gov_cancel(&ctx, r, actor, NULL, &v) == GOV_OK || gov_expire(&ctx, r, &v) != GOV_OK ||
        gov_run_check(&ctx, r, NULL, GOV_AT_TAKE, &v) == GOV_OK ||
        gov_run_check(&ctx, r, NULL, GOV_AT_REGISTER, &v) == GOV_OK ||
        gov_may_act(&ctx, r, CMD_PAUSE, NULL, actor, NULL, NULL, &v) == GOV_OK)
        gd_fail(w, "an operation on a terminal request was allowed", r);
    if (gov_reload(&ctx, r, &v) != GOV_OK || v.next != REQ_STATE_NONE || v.flags)
        gd_fail(w, "a reload touched a terminal request", r);
    for (int s = 0; s < REQ_STATE_COUNT; s++)
        if (gov_request_set_state(r, (enum req_state)s, s == REQ_RUNNING ? REQ_PHASE_REGISTERING : 0,
                                  s == REQ_FAILED ? REQ_REASON_TIMEOUT : 0) == 0)
            gd_fail(w, "a terminal request moved", r);
    if (memcmp(&before, r, sizeof before) != 0) gd_fail(w, "a terminal request changed", r);
}

static void gd_check_terminals(gd_world *w) {
    for (int i = 0; i < GD_MAX_REQ; i++) {
        gov_request *r = &w->req[i];
        if (!r->id) continue;
        if (w->terminal_seen[i] != REQ_STATE_NONE && r->state != w->terminal_seen[i])
            gd_fail(w, "a terminal state changed", r);
        if (req_state_terminal(r->state)) w->terminal_seen[i] = r->state;
    }
}

/* One random step. Returns 0 when the byte source ran out. */
static int gd_step(gd_world *w) {
    unsigned op = gd_rand(w, 24);
    if (w->exhausted) return 0;
    switch (op) {
    case 0: case 1: case 2: gd_request(w); break;
    case 3: case 4: case 5: case 6: case 20: case 21: case 22: case 23: gd_approve(w); break;
    case 7: gd_reject_cancel(w, 0); break;
    case 8: gd_reject_cancel(w, 1); break;
    case 9: gd_expire_sweep(w); break;
    case 10: gd_reload(w); break;
    case 11: gd_lock(w); break;
    case 12: case 13: gd_clock(w); break;
    case 14: case 15: gd_take(w); break;
    case 16: gd_register(w); break;
    case 17: case 18: gd_deployment(w); break;
    default: gd_poke_terminal(w); break;
    }
    w->steps++;
    gd_check_terminals(w);
    /* Slots are reused for new requests only once terminal: forget what the slot saw. */
    return !w->exhausted;
}

#endif
