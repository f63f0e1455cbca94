/* Governance decisions. See governance.h and docs/GOVERNANCE.md.
 *
 * Every function here fills a verdict and returns its tag; none keeps state
 * between calls, reads a clock or allocates. Messages name the rule (the
 * config key) that decided, so a reply is self-explaining. */
#include "governance.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "freeze_eval.h"
#include "policy.h"

const gov_limits gov_limits_default = {GOV_DEFAULT_MAX_OPEN, GOV_DEFAULT_MAX_COMMANDS, GOV_DEFAULT_WINDOW_S};

static const char *const tag_names[GOV_TAG_COUNT] = {
    [GOV_OK] = "ok",
    [GOV_BAD_INPUT] = "bad_input",
    [GOV_UNKNOWN_ENV] = "unknown_env",
    [GOV_UNKNOWN_JOB] = "unknown_job",
    [GOV_NOT_DEPLOYER] = "not_deployer",
    [GOV_WRONG_CHANNEL] = "wrong_channel",
    [GOV_RATE_LIMITED] = "rate_limited",
    [GOV_TOO_MANY_OPEN] = "too_many_open",
    [GOV_OPEN_EXISTS] = "open_request_exists",
    [GOV_PROMOTE_REQUIRED] = "promote_required",
    [GOV_PROMOTE_WRONG_SOURCE] = "promote_wrong_source",
    [GOV_PROMOTE_SAME_ENV] = "promote_same_env",
    [GOV_EVIDENCE_MISSING] = "evidence_missing",
    [GOV_EVIDENCE_NOT_SUCCESSFUL] = "not_successful",
    [GOV_EVIDENCE_UNHEALTHY] = "unhealthy",
    [GOV_EVIDENCE_TOO_SOON] = "too_soon",
    [GOV_EVIDENCE_IMAGE_CHANGED] = "image_changed",
    [GOV_APPROVALS_IMPOSSIBLE] = "approvals_impossible",
    [GOV_FROZEN] = "frozen",
    [GOV_LOCKED] = "locked",
    [GOV_FREEZE_UNUSABLE] = "freeze_unusable",
    [GOV_NOT_APPROVER] = "not_approver",
    [GOV_SELF_APPROVAL] = "self_approval",
    [GOV_ALREADY_COUNTED] = "already_counted",
    [GOV_APPROVALS_FULL] = "approvals_full",
    [GOV_WRONG_STATE] = "wrong_state",
    [GOV_EXPIRED] = "expired",
    [GOV_NOT_ALLOWED] = "not_allowed",
    [GOV_WRONG_PHASE] = "wrong_phase",
    [GOV_ALREADY_LOCKED] = "already_locked",
    [GOV_NOT_LOCKED] = "not_locked",
    [GOV_NOT_ENOUGH_APPROVALS] = "not_enough_approvals",
    [GOV_POLICY_CHANGED] = "policy_changed",
};

const char *gov_tag_name(enum gov_tag tag) {
    return (int)tag >= 0 && tag < GOV_TAG_COUNT && tag_names[tag] ? tag_names[tag] : "?";
}

const char *gov_kind_name(enum gov_kind k) {
    switch (k) {
    case GOV_KIND_DEPLOY: return "deploy";
    case GOV_KIND_PROMOTE: return "promote";
    case GOV_KIND_ROLLBACK: return "rollback";
    }
    return "?";
}

/* ---- verdict helpers ---- */

static void verdict_clear(gov_verdict *v) {
    memset(v, 0, sizeof *v);
    v->rule = "";
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static enum gov_tag say(gov_verdict *v, enum gov_tag tag, const char *rule, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    v->tag = tag;
    v->rule = rule;
    return tag;
}

/* snprintf whose truncation is intended (messages are one bounded line). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void textf(char *out, size_t outlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
}

/* "D-12" for messages. */
static void req_label(const gov_request *req, char *out, size_t outlen) {
    snprintf(out, outlen, "D-%" PRId64, req->id);
}

/* "2026-03-27 15:04:05 UTC". */
static void fmt_utc(int64_t t, char *out, size_t outlen) {
    if (t < -TZIF_TIME_LIMIT || t > TZIF_TIME_LIMIT) {
        snprintf(out, outlen, "?");
        return;
    }
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sod = t - days * 86400;
    int64_t y;
    int mo, d;
    tzif_civil_from_days(days, &y, &mo, &d);
    snprintf(out, outlen, "%04" PRId64 "-%02d-%02d %02d:%02d:%02d UTC", y, mo, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

static void fmt_duration_s(int64_t secs, char *out, size_t outlen) {
    if (secs <= 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    config_format_duration(secs * 1000, out, outlen);
}

/* ---- identities and people ---- */

static bool identity_ok(const char *id) {
    if (!id || !*id) return false;
    size_t n = strnlen(id, GOV_MAX_IDENTITY + 1);
    return n <= GOV_MAX_IDENTITY && strchr(id, ':') != NULL;
}

static bool name_ok(const char *s) { return s && *s && strnlen(s, CONFIG_MAX_NAME + 1) <= CONFIG_MAX_NAME; }

void gov_person_key(const config *cfg, const char *identity, char *out, size_t outlen) {
    if (!outlen) return;
    const config_person *p = policy_person(cfg, identity);
    snprintf(out, outlen, "%s", p ? p->name : identity ? identity : "");
}

/* Person names cannot contain ':' and identities always do, so one key
 * space holds both without collisions. */
static bool is_requester(const config *cfg, const gov_request *req, const char *actor) {
    if (strcmp(actor, req->requester) == 0) return true;
    char a[GOV_MAX_IDENTITY + 1], r[GOV_MAX_IDENTITY + 1];
    gov_person_key(cfg, actor, a, sizeof a);
    gov_person_key(cfg, req->requester, r, sizeof r);
    if (strcmp(a, r) == 0) return true;
    return req->requester_person[0] && strcmp(a, req->requester_person) == 0;
}

static void list_text(const config_strv *who, char *out, size_t outlen) {
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < who->n && off < outlen; i++) {
        int n = snprintf(out + off, outlen - off, "%s%s", i ? ", " : "", who->v[i]);
        if (n < 0) break;
        off += (size_t)n;
    }
    if (who->n == 0) snprintf(out, outlen, "nobody");
}

/* ---- distinct eligible people ---- */

typedef struct keyset {
    size_t n;
    char k[GOV_MAX_PEOPLE][GOV_MAX_IDENTITY + 1];
} keyset;

static bool keyset_has(const keyset *s, const char *key) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->k[i], key) == 0) return true;
    return false;
}

static void keyset_add(keyset *s, const char *key) {
    if (!*key || keyset_has(s, key) || s->n >= GOV_MAX_PEOPLE) return;
    snprintf(s->k[s->n++], sizeof s->k[0], "%s", key);
}

static const config_person *person_named(const config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_people; i++)
        if (strcmp(cfg->people[i].name, name) == 0) return &cfg->people[i];
    return NULL;
}

static const config_group *group_named(const config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_groups; i++)
        if (strcmp(cfg->groups[i].name, name) == 0) return &cfg->groups[i];
    return NULL;
}

/* An entry of a group or a who-list: a person name or a raw identity. */
static void add_member(const config *cfg, keyset *s, const char *entry) {
    if (strchr(entry, ':')) {
        char key[GOV_MAX_IDENTITY + 1];
        gov_person_key(cfg, entry, key, sizeof key);
        keyset_add(s, key);
    } else if (person_named(cfg, entry)) {
        keyset_add(s, entry);
    }
}

/* Every person (or unlisted identity) an approvers list reaches, mirroring policy_in(). */
static void approver_keys(const config *cfg, const config_env *env, keyset *s) {
    s->n = 0;
    for (size_t i = 0; i < env->approvers.n; i++) {
        const char *entry = env->approvers.v[i];
        add_member(cfg, s, entry);
        const config_group *g = group_named(cfg, entry);
        for (size_t m = 0; g && m < g->members.n; m++) add_member(cfg, s, g->members.v[m]);
    }
}

int gov_eligible_approvers(const config *cfg, const config_env *env, const char *requester, char *names,
                           size_t nameslen) {
    keyset s;   /* ~33 KiB on the stack; no recursion here */
    approver_keys(cfg, env, &s);
    char rkey[GOV_MAX_IDENTITY + 1] = "";
    if (requester) gov_person_key(cfg, requester, rkey, sizeof rkey);
    int count = 0;
    size_t off = 0;
    if (names && nameslen) names[0] = '\0';
    for (size_t i = 0; i < s.n; i++) {
        if (!env->self_approval && requester && strcmp(s.k[i], rkey) == 0) continue;
        count++;
        if (names && off < nameslen) {
            int n = snprintf(names + off, nameslen - off, "%s%s", off ? ", " : "", s.k[i]);
            if (n > 0) off += (size_t)n;
        }
    }
    return count;
}

int gov_required_approvals(const config_env *env, bool emergency) {
    int n = env->approvals < 0 ? 0 : env->approvals;
    return n + (emergency ? 1 : 0);
}

static bool eligible_approval(const config *cfg, const config_env *env, const gov_request *req, const char *id) {
    if (!policy_may_approve(cfg, env, id)) return false;
    return env->self_approval || !is_requester(cfg, req, id);
}

int gov_count_approvals(const config *cfg, const gov_request *req) {
    const config_env *env = config_find_env(cfg, req->env);
    if (!env) return 0;
    int counted = 0;
    size_t n = req->n_approvals > GOV_MAX_APPROVALS ? GOV_MAX_APPROVALS : req->n_approvals;
    char keys[GOV_MAX_APPROVALS][GOV_MAX_IDENTITY + 1];
    bool counts[GOV_MAX_APPROVALS];
    for (size_t i = 0; i < n; i++) {
        const gov_approval *a = &req->approvals[i];
        gov_person_key(cfg, a->identity, keys[i], sizeof keys[i]);
        counts[i] = false;
        if (!eligible_approval(cfg, env, req, a->identity)) continue;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) {
            if (!counts[j]) continue;
            const gov_approval *b = &req->approvals[j];
            /* Same person now, or same person when recorded: count once. */
            dup = strcmp(keys[i], keys[j]) == 0 || (a->person[0] && strcmp(a->person, b->person) == 0) ||
                  (a->person[0] && strcmp(a->person, keys[j]) == 0) || (b->person[0] && strcmp(b->person, keys[i]) == 0);
        }
        if (dup) continue;
        counts[i] = true;
        counted++;
    }
    return counted;
}

/* ---- policy hash ---- */

typedef struct fnv {
    uint64_t h;
} fnv;

static void fnv_bytes(fnv *f, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        f->h ^= b[i];
        f->h *= UINT64_C(0x100000001b3);
    }
}
/* Strings end with a 0 byte so ("ab","c") and ("a","bc") differ. */
static void fnv_str(fnv *f, const char *s) { fnv_bytes(f, s ? s : "", (s ? strlen(s) : 0) + 1); }
static void fnv_i64(fnv *f, int64_t v) { fnv_bytes(f, &v, sizeof v); }
static void fnv_strv(fnv *f, const config_strv *v) {
    fnv_i64(f, (int64_t)v->n);
    for (size_t i = 0; i < v->n; i++) fnv_str(f, v->v[i]);
}

static void fnv_person(fnv *f, const config_person *p) {
    fnv_str(f, "person");
    fnv_str(f, p->name);
    fnv_strv(f, &p->identities);
}

/* A who-list entry and whatever it reaches: groups, people, and the person
 * behind a raw identity (which decides distinctness and self-approval). */
static void fnv_entry(fnv *f, const config *cfg, const char *entry) {
    fnv_str(f, entry);
    const config_person *p = strchr(entry, ':') ? policy_person(cfg, entry) : person_named(cfg, entry);
    if (p) fnv_person(f, p);
    const config_group *g = group_named(cfg, entry);
    if (g) {
        fnv_str(f, "group");
        fnv_strv(f, &g->members);
        for (size_t m = 0; m < g->members.n; m++) {
            const char *e = g->members.v[m];
            const config_person *q = strchr(e, ':') ? policy_person(cfg, e) : person_named(cfg, e);
            if (q) fnv_person(f, q);
        }
    }
}

uint64_t gov_policy_hash(const config *cfg, const config_env *env) {
    fnv f = {UINT64_C(0xcbf29ce484222325)};
    fnv_str(&f, env->name);
    fnv_str(&f, "deployers");
    fnv_i64(&f, (int64_t)env->deployers.n);
    for (size_t i = 0; i < env->deployers.n; i++) fnv_entry(&f, cfg, env->deployers.v[i]);
    fnv_str(&f, "approvers");
    fnv_i64(&f, (int64_t)env->approvers.n);
    for (size_t i = 0; i < env->approvers.n; i++) fnv_entry(&f, cfg, env->approvers.v[i]);
    fnv_i64(&f, env->approvals);
    fnv_str(&f, env->promote_from ? env->promote_from : "\x01none");
    fnv_i64(&f, env->promote_after_ms);
    fnv_i64(&f, env->self_approval);
    fnv_i64(&f, env->approval_ttl_ms);
    fnv_strv(&f, &env->freeze);
    fnv_strv(&f, &env->channels);
    return f.h;
}

/* ---- freezes ---- */

static enum gov_tag lock_verdict(const config_env *env, const gov_lock *lock, gov_verdict *v) {
    char since[40];
    fmt_utc(lock->since, since, sizeof since);
    v->until = INT64_MAX;
    return say(v, GOV_LOCKED, "lock", "%s is locked by %s since %s: %s; `unlock %s` lifts it", env->name,
               lock->by[0] ? lock->by : "someone", since, lock->reason[0] ? lock->reason : "no reason given",
               env->name);
}

/* Parses window i and finds its zone. Returns 0, or -1 with the verdict set (fails closed). */
static int load_window(const gov_ctx *ctx, const config_env *env, size_t i, config_freeze *f, const tzif_zone **z,
                       gov_verdict *v) {
    char err[160];
    *z = NULL;
    if (config_freeze_parse(env->freeze.v[i], f, err, sizeof err) != 0) {
        v->until = INT64_MAX;
        say(v, GOV_FREEZE_UNUSABLE, "freeze", "%s: freeze window '%.80s' does not parse (%s); treated as frozen",
            env->name, env->freeze.v[i], err);
        return -1;
    }
    if (strcmp(f->zone, "UTC") == 0) return 0;
    *z = ctx->zone ? ctx->zone(ctx->zone_ud, f->zone) : NULL;
    if (!*z) {
        v->until = INT64_MAX;
        say(v, GOV_FREEZE_UNUSABLE, "freeze", "%s: time zone %s of freeze window '%.80s' is not loaded; treated as frozen",
            env->name, f->zone, f->text);
        return -1;
    }
    return 0;
}

/* Windows that touch or overlap are chained, so "until" is the first free
 * instant. The chain is bounded: each step moves forward by at least a second. */
#define FREEZE_CHAIN_MAX 64

enum gov_tag gov_frozen(const gov_ctx *ctx, const config_env *env, const gov_lock *lock, gov_verdict *v) {
    verdict_clear(v);
    if (lock && lock->locked) return lock_verdict(env, lock, v);
    int64_t t = ctx->now;
    size_t first = SIZE_MAX, last = SIZE_MAX;
    config_freeze lastf;
    const tzif_zone *lastz = NULL;
    for (int step = 0; step < FREEZE_CHAIN_MAX && t != FREEZE_FOREVER; step++) {
        int64_t next = t;
        for (size_t i = 0; i < env->freeze.n; i++) {
            config_freeze f;
            const tzif_zone *z;
            if (load_window(ctx, env, i, &f, &z, v) != 0) return v->tag;
            int64_t until = 0;
            if (freeze_active(&f, z, t, &until) && until > next) {
                next = until;
                if (first == SIZE_MAX) first = i;
                last = i;
                lastf = f;
                lastz = z;
            }
        }
        if (next == t) break;
        t = next;
    }
    if (first == SIZE_MAX) return GOV_OK;
    v->until = t;
    char until[120];
    freeze_format_until(&lastf, lastz, t, until, sizeof until);
    (void)last;
    return say(v, GOV_FROZEN, "freeze", "%s is frozen until %s (freeze: %.80s)", env->name, until,
               env->freeze.v[first]);
}

static enum gov_tag freeze_rule(const gov_ctx *ctx, const config_env *env, const gov_lock *lock, bool emergency,
                                int counted, int required, enum gov_point point, gov_verdict *v) {
    enum gov_tag t = gov_frozen(ctx, env, lock, v);
    if (t == GOV_OK) return GOV_OK;
    bool at_run = point == GOV_AT_TAKE || point == GOV_AT_REGISTER;
    if (emergency && (!at_run || counted >= required)) {
        /* Break-glass: the message stays (it says what was passed), the tag is OK. */
        char why[GOV_MAX_MESSAGE];
        snprintf(why, sizeof why, "%s", v->message);
        v->flags |= GOV_F_BREAK_GLASS;
        v->tag = GOV_OK;
        v->rule = "emergency";
        textf(v->message, sizeof v->message, "break-glass (--emergency, %d approvals): %s", required, why);
        return GOV_OK;
    }
    if (at_run) v->flags |= GOV_F_DEFER;
    if (emergency && at_run) {
        char why[GOV_MAX_MESSAGE];
        snprintf(why, sizeof why, "%s", v->message);
        textf(v->message, sizeof v->message, "%s; break-glass needs %d approvals, %d counted", why, required, counted);
    } else if (!at_run && point == GOV_AT_REQUEST) {
        char why[GOV_MAX_MESSAGE];
        snprintf(why, sizeof why, "%s", v->message);
        textf(v->message, sizeof v->message, "%s; --emergency \"why\" passes it with %d approvals", why,
                 gov_required_approvals(env, true));
    }
    return t;
}

enum gov_tag gov_freeze_check(const gov_ctx *ctx, const config_env *env, const gov_lock *lock,
                              const gov_request *req, enum gov_point point, gov_verdict *v) {
    bool emergency = req && req->emergency[0];
    int counted = req ? gov_count_approvals(ctx->cfg, req) : 0;
    int required = req ? req->required : gov_required_approvals(env, emergency);
    enum gov_tag t = freeze_rule(ctx, env, lock, emergency, counted, required, point, v);
    v->counted = counted;
    v->required = required;
    return t;
}

/* ---- requests ---- */

enum gov_tag gov_rate_check(const gov_ctx *ctx, const char *actor, int recent_commands, gov_verdict *v) {
    verdict_clear(v);
    const gov_limits *l = &ctx->limits;
    if (l->max_commands > 0 && recent_commands >= l->max_commands) {
        char w[32];
        fmt_duration_s(l->window_s, w, sizeof w);
        v->until = ctx->now + (l->window_s > 0 ? l->window_s : 1);
        return say(v, GOV_RATE_LIMITED, "rate_limit",
                   "easy there, %.80s: at most %d commands per %s; please try again in a moment", actor ? actor : "",
                   l->max_commands, w);
    }
    return GOV_OK;
}

static enum gov_tag check_channel(const config_env *env, const char *channel, gov_verdict *v) {
    if (env->channels.n == 0) return GOV_OK;
    if (channel && policy_channel_allowed(env, channel)) return GOV_OK;
    char list[160];
    list_text(&env->channels, list, sizeof list);
    return say(v, GOV_WRONG_CHANNEL, "channels", "commands for %s are taken only in %s (channels), not %.80s",
               env->name, list, channel && *channel ? channel : "here");
}

enum gov_tag gov_promote_evidence(const gov_ctx *ctx, const config_env *target, const char *from_env,
                                  const gov_evidence *ev, const char *bound_image, gov_verdict *v) {
    verdict_clear(v);
    const char *src = from_env ? from_env : "?";
    if (!ev || !ev->known)
        return say(v, GOV_EVIDENCE_MISSING, "promote_from", "nothing is known yet about what runs in %.64s", src);
    if (!ev->image[0])
        return say(v, GOV_EVIDENCE_MISSING, "promote_from", "nothing of this job runs in %.64s to promote", src);
    if (bound_image && strcmp(bound_image, ev->image) != 0)
        return say(v, GOV_EVIDENCE_IMAGE_CHANGED, "promote_from",
                   "%.64s now runs %.80s, not %.80s which this promote was approved for; request again", src,
                   ev->image, bound_image);
    if (ev->status != GOV_DEPLOY_SUCCESSFUL)
        return say(v, GOV_EVIDENCE_NOT_SUCCESSFUL, "promote_from",
                   "the latest deployment of %.80s in %.64s is %s, not successful", ev->image, src,
                   ev->status == GOV_DEPLOY_RUNNING    ? "still running"
                   : ev->status == GOV_DEPLOY_FAILED   ? "failed"
                   : ev->status == GOV_DEPLOY_CANCELLED ? "cancelled"
                                                        : "unknown");
    if (!ev->healthy)
        return say(v, GOV_EVIDENCE_UNHEALTHY, "promote_from", "%.80s is not healthy in %.64s right now", ev->image, src);
    int64_t need = target->promote_after_ms > 0 ? (target->promote_after_ms + 999) / 1000 : 0;
    if (need > 0) {
        char w[32];
        fmt_duration_s(need, w, sizeof w);
        if (ev->healthy_since <= 0)
            return say(v, GOV_EVIDENCE_TOO_SOON, "promote_after",
                       "%s needs %.80s healthy in %.64s for %s (promote_after); since when is unknown", target->name,
                       ev->image, src, w);
        if (ev->healthy_since > ctx->now || ctx->now - ev->healthy_since < need) {
            int64_t ready = ev->healthy_since + need;
            char at[40], left[32];
            fmt_utc(ready, at, sizeof at);
            fmt_duration_s(ready - ctx->now, left, sizeof left);
            v->until = ready;
            return say(v, GOV_EVIDENCE_TOO_SOON, "promote_after",
                       "%s needs %.80s healthy in %.64s for %s (promote_after): %s to go, at %s", target->name,
                       ev->image, src, w, left, at);
        }
    }
    return GOV_OK;
}

/* Everything gov_may_request checks up to (not including) evidence and freeze. */
static enum gov_tag request_rules(const gov_ctx *ctx, const gov_request_in *in, const config_env **envp,
                                  gov_verdict *v) {
    const config *cfg = ctx->cfg;
    *envp = NULL;
    if (!identity_ok(in->actor))
        return say(v, GOV_BAD_INPUT, "identity", "an actor identity (platform:user) is required");
    if (in->kind != GOV_KIND_DEPLOY && in->kind != GOV_KIND_PROMOTE && in->kind != GOV_KIND_ROLLBACK)
        return say(v, GOV_BAD_INPUT, "command", "not a request: only deploy, promote and rollback are");
    if (!name_ok(in->env)) return say(v, GOV_BAD_INPUT, "command", "an environment name is required");
    if (!name_ok(in->job)) return say(v, GOV_BAD_INPUT, "command", "a job name is required");
    if (in->emergency && strnlen(in->emergency, CMD_MAX_REASON + 1) > CMD_MAX_REASON)
        return say(v, GOV_BAD_INPUT, "emergency", "the --emergency reason is over %d bytes", CMD_MAX_REASON);
    const config_env *env = config_find_env(cfg, in->env);
    if (!env) return say(v, GOV_UNKNOWN_ENV, "environments", "there is no environment %s", in->env);
    *envp = env;
    if (!config_find_job(cfg, in->job)) return say(v, GOV_UNKNOWN_JOB, "jobs", "there is no job %s", in->job);
    if (in->kind == GOV_KIND_PROMOTE) {
        if (!name_ok(in->from_env)) return say(v, GOV_BAD_INPUT, "command", "promote needs a source environment");
        if (!config_find_env(cfg, in->from_env))
            return say(v, GOV_UNKNOWN_ENV, "environments", "there is no environment %s", in->from_env);
    }
    if (gov_rate_check(ctx, in->actor, in->recent_commands, v) != GOV_OK) return v->tag;
    if (check_channel(env, in->channel, v) != GOV_OK) return v->tag;
    if (!policy_may_deploy(cfg, env, in->actor)) {
        char list[160];
        list_text(&env->deployers, list, sizeof list);
        return say(v, GOV_NOT_DEPLOYER, "deployers", "only %s may request changes to %s (deployers)", list, env->name);
    }
    if (in->kind == GOV_KIND_DEPLOY && env->promote_from)
        return say(v, GOV_PROMOTE_REQUIRED, "promote_from",
                   "%s takes only promotions from %s: `promote %s from %s to %s` (promote_from)", env->name,
                   env->promote_from, in->job, env->promote_from, env->name);
    if (in->kind == GOV_KIND_PROMOTE) {
        if (strcmp(in->from_env, env->name) == 0)
            return say(v, GOV_PROMOTE_SAME_ENV, "promote_from", "cannot promote %s from %s to itself", in->job,
                       env->name);
        if (env->promote_from && strcmp(env->promote_from, in->from_env) != 0)
            return say(v, GOV_PROMOTE_WRONG_SOURCE, "promote_from", "%s takes promotions only from %s, not %s",
                       env->name, env->promote_from, in->from_env);
    }
    const gov_limits *l = &ctx->limits;
    if (l->max_open_per_person > 0 && in->open_of_person >= l->max_open_per_person)
        return say(v, GOV_TOO_MANY_OPEN, "open_requests",
                   "you already have %d open requests (the limit is %d); please let some finish or cancel one first",
                   in->open_of_person, l->max_open_per_person);
    bool emergency = in->emergency && in->emergency[0];
    int required = gov_required_approvals(env, emergency);
    v->required = required;
    if (emergency) v->flags |= GOV_F_EMERGENCY;
    if (required > 0 && in->open_same_job > 0)
        return say(v, GOV_OPEN_EXISTS, "one_open_request",
                   "D-%" PRId64 " is already open for %s in %s; approve, reject or cancel it first", in->open_same_job,
                   in->job, env->name);
    if (required > 0) {
        char names[160];
        int eligible = gov_eligible_approvers(cfg, env, in->actor, names, sizeof names);
        if (eligible < required) {
            if (emergency && env->approvers.n == 0)
                return say(v, GOV_APPROVALS_IMPOSSIBLE, "emergency",
                           "--emergency needs an approval from %s's approvers, and it has none", env->name);
            /* Name self_approval only when leaving the requester out is what makes it impossible. */
            bool self = !env->self_approval && gov_eligible_approvers(cfg, env, NULL, NULL, 0) >= required;
            return say(v, GOV_APPROVALS_IMPOSSIBLE, self ? "self_approval" : "approvers",
                       "%s needs %d approvals from distinct people%s, and only %d can give them%s%s", env->name,
                       required, env->self_approval ? "" : " other than you (self_approval: false)", eligible,
                       eligible ? ": " : "", eligible ? names : "");
        }
    }
    return GOV_OK;
}

enum gov_tag gov_may_request(const gov_ctx *ctx, const gov_request_in *in, gov_verdict *v) {
    verdict_clear(v);
    const config_env *env;
    if (request_rules(ctx, in, &env, v) != GOV_OK) return v->tag;
    int required = v->required;
    unsigned flags = v->flags;
    if (in->kind == GOV_KIND_PROMOTE &&
        gov_promote_evidence(ctx, env, in->from_env, in->evidence, NULL, v) != GOV_OK) {
        v->required = required;
        v->flags |= flags;
        return v->tag;
    }
    bool emergency = in->emergency && in->emergency[0];
    enum gov_tag t = freeze_rule(ctx, env, in->lock, emergency, 0, required, GOV_AT_REQUEST, v);
    v->required = required;
    v->flags |= flags;
    if (t != GOV_OK) return t;
    v->next = required > 0 ? REQ_PENDING_APPROVAL : REQ_QUEUED;
    if (!(v->flags & GOV_F_BREAK_GLASS)) {
        v->rule = "";
        if (required > 0)
            say(v, GOV_OK, "", "%s %s to %s waits for %d approval%s", gov_kind_name(in->kind), in->job, env->name,
                required, required == 1 ? "" : "s");
        else
            say(v, GOV_OK, "", "%s %s to %s is queued", gov_kind_name(in->kind), in->job, env->name);
    }
    return GOV_OK;
}

void gov_request_init(gov_request *req, const gov_ctx *ctx, const gov_request_in *in, const gov_verdict *v,
                      int64_t id) {
    memset(req, 0, sizeof *req);
    req->id = id;
    req->kind = in->kind;
    snprintf(req->env, sizeof req->env, "%s", in->env ? in->env : "");
    snprintf(req->job, sizeof req->job, "%s", in->job ? in->job : "");
    snprintf(req->requester, sizeof req->requester, "%s", in->actor ? in->actor : "");
    const config_person *p = policy_person(ctx->cfg, in->actor);
    snprintf(req->requester_person, sizeof req->requester_person, "%s", p ? p->name : "");
    snprintf(req->emergency, sizeof req->emergency, "%s", in->emergency ? in->emergency : "");
    if (in->evidence && in->evidence->known)
        snprintf(req->image, sizeof req->image, "%s", in->evidence->image);
    req->created_at = ctx->now;
    req->state = v->next;
    req->required = v->required;
    const config_env *env = config_find_env(ctx->cfg, req->env);
    req->policy_hash = env ? gov_policy_hash(ctx->cfg, env) : 0;
}

int gov_request_set_state(gov_request *req, enum req_state to, enum req_phase phase, enum req_reason reason) {
    if (request_step_check(req->state, req->phase, to, phase, reason, NULL, 0) != 0) return -1;
    req->state = to;
    req->phase = phase;
    req->reason = reason;
    return 0;
}

int gov_request_add_approval(gov_request *req, const config *cfg, const char *actor, int64_t at) {
    if (req->n_approvals >= GOV_MAX_APPROVALS || !identity_ok(actor)) return -1;
    gov_approval *a = &req->approvals[req->n_approvals++];
    memset(a, 0, sizeof *a);
    snprintf(a->identity, sizeof a->identity, "%s", actor);
    const config_person *p = policy_person(cfg, actor);
    snprintf(a->person, sizeof a->person, "%s", p ? p->name : "");
    a->at = at;
    return 0;
}

/* ---- approvals, reject, cancel, expiry ---- */

int64_t gov_expires_at(const gov_ctx *ctx, const gov_request *req) {
    if (!req_state_waiting(req->state) || req->required <= 0) return INT64_MAX;
    const config_env *env = config_find_env(ctx->cfg, req->env);
    if (!env) return req->created_at;
    if (env->approval_ttl_ms <= 0) return INT64_MAX;
    int64_t ttl = env->approval_ttl_ms / 1000;
    if (req->created_at > INT64_MAX - ttl) return INT64_MAX;
    return req->created_at + ttl;
}

static enum gov_tag expired_verdict(const gov_ctx *ctx, const gov_request *req, const config_env *env, int64_t at,
                                    gov_verdict *v) {
    char label[32], ttl[32], when[40];
    req_label(req, label, sizeof label);
    fmt_duration_s(env ? env->approval_ttl_ms / 1000 : 0, ttl, sizeof ttl);
    fmt_utc(at, when, sizeof when);
    (void)ctx;
    v->until = at;
    v->next = REQ_EXPIRED;
    return say(v, GOV_EXPIRED, "approval_ttl", "%s expired at %s: not run within approval_ttl %s of the request",
               label, when, ttl);
}

enum gov_tag gov_expire(const gov_ctx *ctx, const gov_request *req, gov_verdict *v) {
    verdict_clear(v);
    int64_t at = gov_expires_at(ctx, req);
    v->until = at == INT64_MAX ? 0 : at;
    if (at == INT64_MAX || ctx->now < at) return GOV_OK;
    return expired_verdict(ctx, req, config_find_env(ctx->cfg, req->env), at, v);
}

static enum gov_tag wrong_state(const gov_request *req, const char *what, gov_verdict *v) {
    char label[32];
    req_label(req, label, sizeof label);
    const char *hint = req->state == REQ_RUNNING ? "; to stop it use `canary fail` or `rollback`"
                       : req_state_terminal(req->state) ? ""
                       : req->state != REQ_PENDING_APPROVAL ? "; `cancel` withdraws it"
                                                            : "";
    return say(v, GOV_WRONG_STATE, "state", "%s is %s: nothing to %s%s", label, req_state_name(req->state), what,
               hint);
}

enum gov_tag gov_approve(const gov_ctx *ctx, const gov_request *req, const char *actor, const char *channel,
                         const gov_lock *lock, gov_verdict *v) {
    verdict_clear(v);
    const config *cfg = ctx->cfg;
    char label[32];
    req_label(req, label, sizeof label);
    if (!identity_ok(actor)) return say(v, GOV_BAD_INPUT, "identity", "an actor identity (platform:user) is required");
    if (req->state != REQ_PENDING_APPROVAL) return wrong_state(req, "approve", v);
    const config_env *env = config_find_env(cfg, req->env);
    if (!env) return say(v, GOV_UNKNOWN_ENV, "environments", "environment %s of %s no longer exists", req->env, label);
    v->required = req->required;
    v->counted = gov_count_approvals(cfg, req);
    int64_t at = gov_expires_at(ctx, req);
    if (ctx->now >= at) return expired_verdict(ctx, req, env, at, v);
    if (req->policy_hash != gov_policy_hash(cfg, env))
        return say(v, GOV_POLICY_CHANGED, "policy", "%s's policy changed since %s was requested; its approvals are void",
                   env->name, label);
    if (channel && check_channel(env, channel, v) != GOV_OK) return v->tag;
    if (!policy_may_approve(cfg, env, actor)) {
        char list[160];
        list_text(&env->approvers, list, sizeof list);
        return say(v, GOV_NOT_APPROVER, "approvers", "only %s may approve requests for %s (approvers)", list,
                   env->name);
    }
    if (!env->self_approval && is_requester(cfg, req, actor))
        return say(v, GOV_SELF_APPROVAL, "self_approval",
                   "you requested %s (as %s); %s does not count the requester's approval (self_approval: false)",
                   label, req->requester_person[0] ? req->requester_person : req->requester, env->name);
    char key[GOV_MAX_IDENTITY + 1];
    gov_person_key(cfg, actor, key, sizeof key);
    const config_person *p = policy_person(cfg, actor);
    for (size_t i = 0; i < req->n_approvals && i < GOV_MAX_APPROVALS; i++) {
        const gov_approval *a = &req->approvals[i];
        char k[GOV_MAX_IDENTITY + 1];
        gov_person_key(cfg, a->identity, k, sizeof k);
        if (strcmp(k, key) == 0 || (p && strcmp(a->person, p->name) == 0))
            return say(v, GOV_ALREADY_COUNTED, "approvals", "%s's approval of %s is already counted (as %s)", key,
                       label, a->identity);
    }
    if (req->n_approvals >= GOV_MAX_APPROVALS)
        return say(v, GOV_APPROVALS_FULL, "approvals", "%s has no room for more approvals", label);
    int required = req->required, counted = v->counted;
    if (freeze_rule(ctx, env, lock, req->emergency[0] != '\0', counted, required, GOV_AT_APPROVAL, v) != GOV_OK) {
        v->required = required;
        v->counted = counted;
        return v->tag;
    }
    unsigned flags = v->flags | GOV_F_COUNTED;
    char glass[GOV_MAX_MESSAGE];
    snprintf(glass, sizeof glass, "%s", (flags & GOV_F_BREAK_GLASS) ? v->message : "");
    counted++;
    v->required = required;
    v->counted = counted;
    v->flags = flags | (req->emergency[0] ? GOV_F_EMERGENCY : 0);
    if (counted >= required) {
        v->flags |= GOV_F_COMPLETE;
        v->next = REQ_APPROVED;
        say(v, GOV_OK, "", "%s approved by %s: %d of %d, ready to run%s%s", label, key, counted, required,
            glass[0] ? "; " : "", glass);
    } else {
        say(v, GOV_OK, "", "%s approved by %s: %d of %d%s%s", label, key, counted, required, glass[0] ? "; " : "",
            glass);
    }
    return GOV_OK;
}

enum gov_tag gov_reject(const gov_ctx *ctx, const gov_request *req, const char *actor, const char *channel,
                        gov_verdict *v) {
    verdict_clear(v);
    char label[32];
    req_label(req, label, sizeof label);
    if (!identity_ok(actor)) return say(v, GOV_BAD_INPUT, "identity", "an actor identity (platform:user) is required");
    if (req->state != REQ_PENDING_APPROVAL) return wrong_state(req, "reject", v);
    const config_env *env = config_find_env(ctx->cfg, req->env);
    if (!env) return say(v, GOV_UNKNOWN_ENV, "environments", "environment %s of %s no longer exists", req->env, label);
    if (channel && check_channel(env, channel, v) != GOV_OK) return v->tag;
    if (!policy_may_approve(ctx->cfg, env, actor)) {
        char list[160];
        list_text(&env->approvers, list, sizeof list);
        return say(v, GOV_NOT_APPROVER, "approvers", "only %s may reject requests for %s (approvers)%s", list,
                   env->name, is_requester(ctx->cfg, req, actor) ? "; `cancel` withdraws your own" : "");
    }
    v->next = REQ_REJECTED;
    return say(v, GOV_OK, "", "%s rejected", label);
}

enum gov_tag gov_cancel(const gov_ctx *ctx, const gov_request *req, const char *actor, const char *channel,
                        gov_verdict *v) {
    verdict_clear(v);
    char label[32];
    req_label(req, label, sizeof label);
    if (!identity_ok(actor)) return say(v, GOV_BAD_INPUT, "identity", "an actor identity (platform:user) is required");
    if (!req_state_waiting(req->state)) return wrong_state(req, "cancel", v);
    const config_env *env = config_find_env(ctx->cfg, req->env);
    bool mine = is_requester(ctx->cfg, req, actor);
    if (env && channel && check_channel(env, channel, v) != GOV_OK) return v->tag;
    if (!mine && !(env && policy_may_approve(ctx->cfg, env, actor)))
        return say(v, GOV_NOT_ALLOWED, "approvers", "only the requester or an approver of %s may cancel %s", req->env,
                   label);
    v->next = REQ_CANCELLED;
    return say(v, GOV_OK, "", "%s cancelled", label);
}

/* ---- reload ---- */

enum gov_tag gov_reload(const gov_ctx *ctx, const gov_request *req, gov_verdict *v) {
    verdict_clear(v);
    char label[32];
    req_label(req, label, sizeof label);
    v->required = req->required;
    if (!req_state_waiting(req->state)) return GOV_OK;
    const config *cfg = ctx->cfg;
    const config_env *env = config_find_env(cfg, req->env);
    if (!env) {
        v->next = REQ_CANCELLED;
        return say(v, GOV_UNKNOWN_ENV, "environments", "environment %s was removed from the config; %s is cancelled",
                   req->env, label);
    }
    uint64_t h = gov_policy_hash(cfg, env);
    if (h == req->policy_hash) return GOV_OK;
    if (!policy_may_deploy(cfg, env, req->requester)) {
        v->next = REQ_CANCELLED;
        return say(v, GOV_NOT_DEPLOYER, "deployers",
                   "%s's policy changed: %s may no longer request changes there (deployers); %s is cancelled",
                   env->name, req->requester, label);
    }
    if (req->kind == GOV_KIND_DEPLOY && env->promote_from) {
        v->next = REQ_CANCELLED;
        return say(v, GOV_PROMOTE_REQUIRED, "promote_from",
                   "%s's policy changed: it takes only promotions from %s (promote_from); %s is cancelled", env->name,
                   env->promote_from, label);
    }
    int required = gov_required_approvals(env, req->emergency[0] != '\0');
    v->required = required;
    if (req->state == REQ_PENDING_APPROVAL) {
        v->flags |= GOV_F_VOIDED | GOV_F_REBOUND;
        v->counted = 0;
        if (required == 0) {
            v->flags |= GOV_F_COMPLETE;
            v->next = REQ_APPROVED;
            return say(v, GOV_OK, "approvals", "%s's policy changed: %s needs no approval any more", env->name, label);
        }
        return say(v, GOV_OK, "approvals", "%s's policy changed: approvals of %s are void; it needs %d again",
                   env->name, label, required);
    }
    int counted = gov_count_approvals(cfg, req);
    v->counted = counted;
    if (counted >= required) {
        v->flags |= GOV_F_REBOUND;
        return say(v, GOV_OK, "approvals", "%s's policy changed: %s's %d approvals still satisfy it", env->name, label,
                   counted);
    }
    v->next = REQ_EXPIRED;
    return say(v, GOV_NOT_ENOUGH_APPROVALS, "approvals",
               "%s's policy changed: %s has %d of the %d approvals it now needs and has lapsed; request again",
               env->name, label, counted, required);
}

int gov_request_apply_reload(gov_request *req, const gov_ctx *ctx, const gov_verdict *v) {
    if (v->next != REQ_STATE_NONE && gov_request_set_state(req, v->next, REQ_PHASE_NONE, REQ_REASON_NONE) != 0)
        return -1;
    if (v->flags & GOV_F_VOIDED) req->n_approvals = 0;
    if (v->flags & GOV_F_REBOUND) {
        const config_env *env = config_find_env(ctx->cfg, req->env);
        req->required = v->required;
        req->policy_hash = env ? gov_policy_hash(ctx->cfg, env) : 0;
    }
    return 0;
}

/* ---- workers ---- */

enum gov_tag gov_run_check(const gov_ctx *ctx, const gov_request *req, const gov_lock *lock, enum gov_point point,
                           gov_verdict *v) {
    verdict_clear(v);
    char label[32];
    req_label(req, label, sizeof label);
    if (point == GOV_AT_TAKE) {
        if (req->state != REQ_QUEUED) return wrong_state(req, "take", v);
    } else if (point == GOV_AT_REGISTER) {
        if (req->state != REQ_RUNNING || req->phase != REQ_PHASE_REGISTERING) return wrong_state(req, "register", v);
    } else {
        return say(v, GOV_BAD_INPUT, "state", "gov_run_check is for take and register");
    }
    const config *cfg = ctx->cfg;
    const config_env *env = config_find_env(cfg, req->env);
    /* At register the request is running: going back to queued is the only way out the table allows. */
    enum req_state out = point == GOV_AT_TAKE ? REQ_CANCELLED : REQ_QUEUED;
    if (!env) {
        v->next = out;
        return say(v, GOV_UNKNOWN_ENV, "environments", "environment %s of %s no longer exists", req->env, label);
    }
    if (point == GOV_AT_TAKE) {
        int64_t at = gov_expires_at(ctx, req);
        if (ctx->now >= at) return expired_verdict(ctx, req, env, at, v);
    }
    bool changed = req->policy_hash != gov_policy_hash(cfg, env);
    int required = req->required;
    if (changed) {
        int now_required = gov_required_approvals(env, req->emergency[0] != '\0');
        if (now_required > required) required = now_required;
    }
    int counted = gov_count_approvals(cfg, req);
    v->required = required;
    v->counted = counted;
    if (counted < required) {
        v->next = point == GOV_AT_TAKE ? REQ_EXPIRED : REQ_QUEUED;
        return say(v, GOV_NOT_ENOUGH_APPROVALS, "approvals",
                   "%s has %d of the %d approvals %s needs (approvals%s); it does not run", label, counted, required,
                   env->name, changed ? ", policy changed" : "");
    }
    if (freeze_rule(ctx, env, lock, req->emergency[0] != '\0', counted, required, point, v) != GOV_OK) {
        v->required = required;
        v->counted = counted;
        v->next = point == GOV_AT_REGISTER ? REQ_QUEUED : REQ_STATE_NONE;
        return v->tag;
    }
    v->required = required;
    v->counted = counted;
    v->next = point == GOV_AT_TAKE ? REQ_RUNNING : REQ_STATE_NONE;
    if (!(v->flags & GOV_F_BREAK_GLASS)) say(v, GOV_OK, "", "%s may run", label);
    return GOV_OK;
}

/* ---- acting on a running deployment ---- */

enum gov_tag gov_may_act(const gov_ctx *ctx, const gov_request *req, enum cmd_kind action, const char *sub,
                         const char *actor, const char *channel, const gov_lock *lock, gov_verdict *v) {
    verdict_clear(v);
    char label[32];
    req_label(req, label, sizeof label);
    if (!identity_ok(actor)) return say(v, GOV_BAD_INPUT, "identity", "an actor identity (platform:user) is required");
    bool canary_promote = action == CMD_CANARY && sub && strcmp(sub, "promote") == 0;
    bool canary_fail = action == CMD_CANARY && sub && strcmp(sub, "fail") == 0;
    if (!canary_promote && !canary_fail && action != CMD_PAUSE && action != CMD_RESUME)
        return say(v, GOV_BAD_INPUT, "command", "only canary promote|fail, pause and resume act on a deployment");
    const char *what = canary_promote ? "canary promote" : canary_fail ? "canary fail" : action == CMD_PAUSE ? "pause"
                                                                                                           : "resume";
    if (req->state != REQ_RUNNING) return wrong_state(req, what, v);
    const config_env *env = config_find_env(ctx->cfg, req->env);
    if (!env) return say(v, GOV_UNKNOWN_ENV, "environments", "environment %s of %s no longer exists", req->env, label);
    if (check_channel(env, channel, v) != GOV_OK) return v->tag;
    bool allowed = policy_may_approve(ctx->cfg, env, actor) || (env->approvals == 0 && is_requester(ctx->cfg, req, actor));
    if (!allowed) {
        char list[160];
        list_text(&env->approvers, list, sizeof list);
        return say(v, GOV_NOT_ALLOWED, "approvers", "only %s (approvers)%s may %s %s in %s", list,
                   env->approvals == 0 ? " or the requester" : "", what, req->job, env->name);
    }
    enum req_phase ph = req->phase;
    bool phase_ok = canary_promote ? ph == REQ_PHASE_AWAITING_PROMOTION
                    : canary_fail  ? (ph == REQ_PHASE_AWAITING_PROMOTION || ph == REQ_PHASE_ROLLING)
                    : action == CMD_PAUSE ? (ph == REQ_PHASE_ROLLING || ph == REQ_PHASE_AWAITING_PROMOTION)
                                          : ph == REQ_PHASE_PAUSED;
    if (!phase_ok)
        return say(v, GOV_WRONG_PHASE, "state", "%s of %s is %s: %s does not apply", label, req->job,
                   req_phase_name(ph), what);
    /* Promoting canaries and resuming move a rollout forward: a freeze holds them. */
    if (canary_promote || action == CMD_RESUME) {
        int required = req->required, counted = gov_count_approvals(ctx->cfg, req);
        if (freeze_rule(ctx, env, lock, req->emergency[0] != '\0', counted, required, GOV_AT_TAKE, v) != GOV_OK) {
            v->flags &= ~(unsigned)GOV_F_DEFER;
            return v->tag;
        }
        if (v->flags & GOV_F_BREAK_GLASS) return GOV_OK;
    }
    return say(v, GOV_OK, "", "%s may %s %s in %s", actor, what, req->job, env->name);
}

/* ---- manual locks ---- */

static enum gov_tag lock_rules(const gov_ctx *ctx, const char *envname, const char *actor, const char *channel,
                               const char *what, const config_env **envp, gov_verdict *v) {
    verdict_clear(v);
    *envp = NULL;
    if (!identity_ok(actor)) return say(v, GOV_BAD_INPUT, "identity", "an actor identity (platform:user) is required");
    if (!name_ok(envname)) return say(v, GOV_BAD_INPUT, "command", "an environment name is required");
    const config_env *env = config_find_env(ctx->cfg, envname);
    if (!env) return say(v, GOV_UNKNOWN_ENV, "environments", "there is no environment %s", envname);
    *envp = env;
    if (check_channel(env, channel, v) != GOV_OK) return v->tag;
    bool ok = env->approvers.n ? policy_may_approve(ctx->cfg, env, actor) : policy_may_deploy(ctx->cfg, env, actor);
    if (!ok) {
        char list[160];
        list_text(env->approvers.n ? &env->approvers : &env->deployers, list, sizeof list);
        return say(v, GOV_NOT_ALLOWED, env->approvers.n ? "approvers" : "deployers", "only %s may %s %s (%s)", list,
                   what, env->name, env->approvers.n ? "approvers" : "deployers");
    }
    return GOV_OK;
}

enum gov_tag gov_may_lock(const gov_ctx *ctx, const char *envname, const char *actor, const char *channel,
                          const gov_lock *current, gov_verdict *v) {
    const config_env *env;
    if (lock_rules(ctx, envname, actor, channel, "lock", &env, v) != GOV_OK) return v->tag;
    if (current && current->locked) {
        char since[40];
        fmt_utc(current->since, since, sizeof since);
        return say(v, GOV_ALREADY_LOCKED, "lock", "%s is already locked by %s since %s", env->name, current->by, since);
    }
    return say(v, GOV_OK, "", "%s locked", env->name);
}

enum gov_tag gov_may_unlock(const gov_ctx *ctx, const char *envname, const char *actor, const char *channel,
                            const gov_lock *current, gov_verdict *v) {
    const config_env *env;
    if (lock_rules(ctx, envname, actor, channel, "unlock", &env, v) != GOV_OK) return v->tag;
    if (!current || !current->locked) return say(v, GOV_NOT_LOCKED, "lock", "%s is not locked", env->name);
    return say(v, GOV_OK, "", "%s unlocked", env->name);
}

/* ---- explain ---- */

typedef struct outbuf {
    char *p;
    size_t len, off;
} outbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void out_printf(outbuf *o, const char *fmt, ...) {
    if (o->off >= o->len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->off, o->len - o->off, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    o->off += (size_t)n;
    if (o->off >= o->len) o->off = o->len;   /* truncated; the text stays NUL-terminated */
}

static void explain_line(outbuf *o, const char *rule, bool ok, const char *text) {
    out_printf(o, "- %s: %s%s%s\n", rule, ok ? "ok" : "no", text && *text ? " - " : "", text ? text : "");
}

enum gov_tag gov_explain(const gov_ctx *ctx, const gov_request_in *in, char *out, size_t outlen, gov_verdict *v) {
    outbuf o = {out, outlen, 0};
    if (outlen) out[0] = '\0';
    enum gov_tag final = gov_may_request(ctx, in, v);
    const config *cfg = ctx->cfg;
    const config_env *env = in->env && name_ok(in->env) ? config_find_env(cfg, in->env) : NULL;
    char now[40];
    fmt_utc(ctx->now, now, sizeof now);
    out_printf(&o, "what %s %s to %s would take now (%s), for %s:\n", gov_kind_name(in->kind),
               in->job ? in->job : "?", in->env ? in->env : "?", now, identity_ok(in->actor) ? in->actor : "?");
    if (!env || !identity_ok(in->actor) || final == GOV_BAD_INPUT || final == GOV_UNKNOWN_ENV ||
        final == GOV_UNKNOWN_JOB) {
        explain_line(&o, v->rule[0] ? v->rule : "command", false, v->message);
        out_printf(&o, "verdict: refused (%s)\n", gov_tag_name(final));
        return final;
    }
    gov_verdict t;
    char text[GOV_MAX_MESSAGE + 64], list[160];

    verdict_clear(&t);
    bool ok = check_channel(env, in->channel, &t) == GOV_OK;
    explain_line(&o, "channels", ok, ok ? (env->channels.n ? "this channel is allowed" : "any channel") : t.message);

    ok = policy_may_deploy(cfg, env, in->actor);
    list_text(&env->deployers, list, sizeof list);
    textf(text, sizeof text, "%s %s in deployers (%s)", in->actor, ok ? "is" : "is not",
             env->deployers.n ? list : "anyone");
    explain_line(&o, "deployers", ok, text);

    if (env->promote_from || in->kind == GOV_KIND_PROMOTE) {
        ok = true;
        if (in->kind == GOV_KIND_DEPLOY && env->promote_from) {
            ok = false;
            textf(text, sizeof text, "only `promote %s from %s to %s`", in->job ? in->job : "JOB",
                     env->promote_from, env->name);
        } else if (in->kind == GOV_KIND_PROMOTE && in->from_env && env->promote_from &&
                   strcmp(in->from_env, env->promote_from) != 0) {
            ok = false;
            textf(text, sizeof text, "only from %s", env->promote_from);
        } else {
            textf(text, sizeof text, "%s", env->promote_from ? env->promote_from : "any source");
        }
        explain_line(&o, "promote_from", ok, text);
    }
    if (in->kind == GOV_KIND_PROMOTE) {
        ok = gov_promote_evidence(ctx, env, in->from_env, in->evidence, NULL, &t) == GOV_OK;
        if (ok) {
            char w[32];
            fmt_duration_s(env->promote_after_ms / 1000, w, sizeof w);
            textf(text, sizeof text, "%s is successful and healthy in %s%s%s", in->evidence->image, in->from_env,
                     env->promote_after_ms > 0 ? " for at least " : "", env->promote_after_ms > 0 ? w : "");
        }
        explain_line(&o, "promote_after", ok, ok ? text : t.message);
    }

    bool emergency = in->emergency && in->emergency[0];
    int required = gov_required_approvals(env, emergency);
    if (required > 0) {
        char names[160];
        int eligible = gov_eligible_approvers(cfg, env, in->actor, names, sizeof names);
        list_text(&env->approvers, list, sizeof list);
        textf(text, sizeof text, "%d from distinct people in %s%s%s; eligible: %s", required, list,
                 env->self_approval ? "" : ", not you", emergency ? " (one extra for --emergency)" : "",
                 eligible ? names : "nobody");
        explain_line(&o, "approvals", eligible >= required, text);
        if (in->open_same_job > 0) {
            textf(text, sizeof text, "D-%" PRId64 " is open for %s in %s", in->open_same_job, in->job, env->name);
            explain_line(&o, "one_open_request", false, text);
        }
    } else {
        explain_line(&o, "approvals", true, "none needed: goes straight to the queue");
    }

    enum gov_tag ft = gov_frozen(ctx, env, in->lock, &t);
    if (ft == GOV_OK) {
        explain_line(&o, "freeze", true, env->freeze.n ? "no freeze window is active" : "no freeze windows");
    } else {
        textf(text, sizeof text, "%s%s", t.message,
                 emergency ? "; --emergency passes it" : "; --emergency \"why\" passes it with one extra approval");
        explain_line(&o, ft == GOV_LOCKED ? "lock" : "freeze", emergency, text);
    }

    const gov_limits *l = &ctx->limits;
    if (l->max_open_per_person > 0) {
        textf(text, sizeof text, "%d of %d open requests", in->open_of_person, l->max_open_per_person);
        explain_line(&o, "open_requests", in->open_of_person < l->max_open_per_person, text);
    }
    if (final == GOV_OK)
        out_printf(&o, "verdict: would be accepted: %s%s\n", v->message,
                   (v->flags & GOV_F_BREAK_GLASS) ? " (flagged break-glass)" : "");
    else
        out_printf(&o, "verdict: refused by %s (%s): %s\n", v->rule, gov_tag_name(final), v->message);
    return final;
}
