/* Governance decisions (issue 7; the rules are in docs/GOVERNANCE.md): who
 * may request, approvals, promotion paths, freezes, break-glass, actions on
 * a running deployment, explain, limits.
 *
 * Pure: no I/O, no clock, no allocation, no globals. Every decision takes
 * what it needs -- the config snapshot, the actor, the request as
 * PostgreSQL recorded it, the current time as UTC seconds from PostgreSQL's
 * clock, the manual lock, the promotion evidence -- and fills a gov_verdict:
 * a stable tag (metrics count it, tests match it), the rule that decided
 * (a config key or a built-in limit) and a one-line human message naming it.
 *
 * Callers (bot, worker) read the facts, call one function, write the outcome
 * (the verdict's `next` state and the audit event with tag + message) in one
 * PostgreSQL transaction, and reply with the message. A refusal is an audit
 * event too.
 *
 * Strings given in are borrowed for the call only; nothing is retained. */
#ifndef NM_GOVERNANCE_H
#define NM_GOVERNANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"
#include "config.h"
#include "freeze.h"
#include "states.h"
#include "tzif.h"

#define GOV_MAX_IDENTITY 128          /* "platform:user_id" */
#define GOV_MAX_APPROVALS 32          /* approvals kept on one request; approvals: is far below */
#define GOV_MAX_IMAGE 512             /* registry/repo:tag */
#define GOV_MAX_MESSAGE 256
#define GOV_MAX_PEOPLE 256            /* distinct approvers considered when counting who could approve */

/* Stable tags. GOV_OK = 0; gov_tag_name() gives the string. */
enum gov_tag {
    GOV_OK = 0,
    GOV_BAD_INPUT,            /* "bad_input": missing / oversized identity, unknown kind */
    GOV_UNKNOWN_ENV,          /* "unknown_env" */
    GOV_UNKNOWN_JOB,          /* "unknown_job" */
    GOV_NOT_DEPLOYER,         /* "not_deployer": deployers */
    GOV_WRONG_CHANNEL,        /* "wrong_channel": channels */
    GOV_RATE_LIMITED,         /* "rate_limited": per-person command rate */
    GOV_TOO_MANY_OPEN,        /* "too_many_open": per-person open requests cap */
    GOV_OPEN_EXISTS,          /* "open_request_exists": one open request per (env, job) with approvals */
    GOV_PROMOTE_REQUIRED,     /* "promote_required": target has promote_from; deploy refused */
    GOV_PROMOTE_WRONG_SOURCE, /* "promote_wrong_source": promote from an env other than promote_from */
    GOV_PROMOTE_SAME_ENV,     /* "promote_same_env" */
    GOV_EVIDENCE_MISSING,     /* "evidence_missing": nothing known about the source */
    GOV_EVIDENCE_NOT_SUCCESSFUL, /* "not_successful": latest deployment in the source not successful */
    GOV_EVIDENCE_UNHEALTHY,   /* "unhealthy": source not healthy now */
    GOV_EVIDENCE_TOO_SOON,    /* "too_soon": healthy for less than promote_after */
    GOV_EVIDENCE_IMAGE_CHANGED, /* "image_changed": the source now runs another image than the request bound */
    GOV_APPROVALS_IMPOSSIBLE, /* "approvals_impossible": fewer eligible people than approvals needed */
    GOV_FROZEN,               /* "frozen": inside a freeze window */
    GOV_LOCKED,               /* "locked": manual lock */
    GOV_FREEZE_UNUSABLE,      /* "freeze_unusable": a window's zone is not loaded or its text does not parse
                                 (fails closed: treated as frozen) */
    GOV_NOT_APPROVER,         /* "not_approver" */
    GOV_SELF_APPROVAL,        /* "self_approval": the requester, by any identity */
    GOV_ALREADY_COUNTED,      /* "already_counted": this person's approval is already counted */
    GOV_APPROVALS_FULL,       /* "approvals_full": GOV_MAX_APPROVALS reached (defensive) */
    GOV_WRONG_STATE,          /* "wrong_state": the request is not in a state that allows this */
    GOV_EXPIRED,              /* "expired": approval_ttl passed */
    GOV_NOT_ALLOWED,          /* "not_allowed": cancel / act / lock by someone the rule does not name */
    GOV_WRONG_PHASE,          /* "wrong_phase": canary/pause/resume in a phase that does not take it */
    GOV_ALREADY_LOCKED,       /* "already_locked" */
    GOV_NOT_LOCKED,           /* "not_locked" */
    GOV_NOT_ENOUGH_APPROVALS, /* "not_enough_approvals": fewer than required (after a reload; defensive at take) */
    GOV_POLICY_CHANGED,       /* "policy_changed": approve on a request whose env policy changed (reload first) */
    GOV_TAG_COUNT
};
const char *gov_tag_name(enum gov_tag tag);

/* Verdict flags. */
enum {
    GOV_F_COUNTED = 1u << 0,      /* gov_approve: this approval counts */
    GOV_F_COMPLETE = 1u << 1,     /* gov_approve: the request now has every approval it needs */
    GOV_F_BREAK_GLASS = 1u << 2,  /* passes a freeze by --emergency with the extra approval: flag it loudly */
    GOV_F_EMERGENCY = 1u << 3,    /* the request carries --emergency (needs one extra approval) */
    GOV_F_VOIDED = 1u << 4,       /* gov_reload: the recorded approvals are void */
    GOV_F_DEFER = 1u << 5,        /* worker: not now; keep (or hand back) queued and retry at `until` */
    GOV_F_REBOUND = 1u << 6,      /* gov_reload: store v->required and the new policy hash */
};

typedef struct gov_verdict {
    enum gov_tag tag;
    const char *rule;             /* static: "deployers", "channels", "approvals", "approvers", "self_approval",
                                     "approval_ttl", "promote_from", "promote_after", "freeze", "lock",
                                     "emergency", "open_requests", "rate_limit", "state", ... ("" on OK) */
    char message[GOV_MAX_MESSAGE];/* one line for the reply and the audit event */
    unsigned flags;               /* GOV_F_* */
    enum req_state next;          /* the state the request moves to; REQ_STATE_NONE = unchanged */
    int required;                 /* approvals the request needs (request, approve, reload, explain) */
    int counted;                  /* distinct people counted so far (approve, reload, run checks) */
    int64_t until;                /* frozen until / retry at / expires at (UTC s); 0 = not applicable,
                                     INT64_MAX = until unlocked / further notice */
} gov_verdict;

/* ---- inputs ---- */

enum gov_kind { GOV_KIND_DEPLOY = 1, GOV_KIND_PROMOTE, GOV_KIND_ROLLBACK };
const char *gov_kind_name(enum gov_kind k);   /* "deploy", "promote", "rollback" */

/* Zones for freeze windows, loaded once by the caller (tzif_load) and shared
 * read-only. Returns the zone named (never for "UTC", which is NULL = UTC),
 * or NULL if it is not loaded: the decision then fails closed. */
typedef const tzif_zone *(*gov_zone_fn)(void *ud, const char *name);

/* Built-in limits (there are no config keys for them yet). */
typedef struct gov_limits {
    int max_open_per_person;      /* open requests (pending_approval..running) one person may have; 0 = no cap */
    int max_commands;             /* commands per person per window; 0 = no limit */
    int64_t window_s;             /* the rate window, seconds */
} gov_limits;
#define GOV_DEFAULT_MAX_OPEN 5
#define GOV_DEFAULT_MAX_COMMANDS 30
#define GOV_DEFAULT_WINDOW_S 60
extern const gov_limits gov_limits_default;

/* What every decision runs under. */
typedef struct gov_ctx {
    const config *cfg;            /* the current snapshot */
    gov_zone_fn zone;             /* may be NULL when every window is in UTC */
    void *zone_ud;
    gov_limits limits;
    int64_t now;                  /* UTC seconds, from PostgreSQL's clock */
} gov_ctx;

/* A manual lock (`lock ENV reason`), as PostgreSQL records it. */
typedef struct gov_lock {
    bool locked;
    char by[GOV_MAX_IDENTITY + 1];
    char reason[CMD_MAX_REASON + 1];
    int64_t since;
} gov_lock;

/* One approval a request recorded. person "" = identity not under people:. */
typedef struct gov_approval {
    char identity[GOV_MAX_IDENTITY + 1];
    char person[CONFIG_MAX_NAME + 1];
    int64_t at;
} gov_approval;

/* A request as PostgreSQL records it (the facts governance needs). */
typedef struct gov_request {
    int64_t id;
    enum gov_kind kind;
    char env[CONFIG_MAX_NAME + 1];
    char job[CONFIG_MAX_NAME + 1];
    char requester[GOV_MAX_IDENTITY + 1];
    char requester_person[CONFIG_MAX_NAME + 1];   /* "" = not under people: */
    char emergency[CMD_MAX_REASON + 1];           /* "" = none */
    char image[GOV_MAX_IMAGE + 1];                /* promote: the image bound at request time */
    int64_t created_at;
    enum req_state state;
    enum req_phase phase;
    enum req_reason reason;
    int required;                                 /* approvals needed, fixed at creation / reload */
    uint64_t policy_hash;                         /* gov_policy_hash() of the env at creation / reload */
    size_t n_approvals;
    gov_approval approvals[GOV_MAX_APPROVALS];    /* counted approvals only, in order */
} gov_request;

/* What the source environment runs now (a worker's answer), for promote. */
enum gov_deploy_status {
    GOV_DEPLOY_UNKNOWN = 0, GOV_DEPLOY_RUNNING, GOV_DEPLOY_SUCCESSFUL, GOV_DEPLOY_FAILED, GOV_DEPLOY_CANCELLED,
};
typedef struct gov_evidence {
    bool known;                   /* false: no answer about the source (yet) */
    char image[GOV_MAX_IMAGE + 1];/* image running in the source now; "" = nothing running */
    enum gov_deploy_status status;/* of the latest deployment of the job there */
    bool healthy;                 /* all allocations healthy now */
    int64_t healthy_since;        /* UTC s since when (continuously); 0 = unknown */
} gov_evidence;

/* A new request as typed. */
typedef struct gov_request_in {
    enum gov_kind kind;
    const char *env;              /* target */
    const char *from_env;         /* promote: the source; else NULL */
    const char *job;
    const char *actor;            /* identity */
    const char *channel;          /* where it was typed; "shell:console" for the shell; NULL = unknown (refused
                                     where the env lists channels) */
    const char *emergency;        /* --emergency text or NULL / "" */
    const gov_lock *lock;         /* the target's manual lock; NULL = none */
    const gov_evidence *evidence; /* promote: the source's facts; NULL = not known */
    int open_of_person;           /* open requests of the requester's person (all their identities) */
    int recent_commands;          /* commands of that person within limits.window_s, this one excluded */
    int64_t open_same_job;        /* ID of an open request for (env, job), 0 = none */
} gov_request_in;

/* ---- policy ---- */

/* A hash of everything in an environment's policy that governs a request:
 * deployers, approvals, approvers, promote_from, promote_after,
 * self_approval, approval_ttl, freeze, channels, and the people and groups
 * those lists reach. Equal hashes: approvals stay valid across a reload. */
uint64_t gov_policy_hash(const config *cfg, const config_env *env);

/* Approvals a request needs: approvals:, plus one for --emergency. */
int gov_required_approvals(const config_env *env, bool emergency);

/* The key a person counts under: their person name, else the identity itself.
 * Writes at most outlen bytes (NUL-terminated). */
void gov_person_key(const config *cfg, const char *identity, char *out, size_t outlen);

/* How many distinct people could approve a request by `requester` (the
 * requester left out where self_approval is false). Names of up to `max`
 * of them go to names (", "-separated) when names != NULL. */
int gov_eligible_approvers(const config *cfg, const config_env *env, const char *requester, char *names,
                           size_t nameslen);

/* ---- decisions ---- */

/* Per-person command rate limit (every command, before anything else). */
enum gov_tag gov_rate_check(const gov_ctx *ctx, const char *actor, int recent_commands, gov_verdict *v);

/* May this deploy / promote / rollback be requested now? On GOV_OK, v->next
 * is the initial state (pending_approval, or queued where none is needed),
 * v->required the approvals needed, v->flags GOV_F_EMERGENCY and, inside a
 * freeze, GOV_F_BREAK_GLASS. Checks, in order: input, env, job, rate,
 * channels, deployers, promote path, open cap, one open request per
 * (env, job), emergency needs approvers, approvals possible, promote
 * evidence, freeze / lock (passed only by --emergency). */
enum gov_tag gov_may_request(const gov_ctx *ctx, const gov_request_in *in, gov_verdict *v);

/* Fills a new gov_request from an accepted request_in and its verdict
 * (created_at = ctx->now, state = v->next). For tests and in-memory callers. */
void gov_request_init(gov_request *req, const gov_ctx *ctx, const gov_request_in *in, const gov_verdict *v,
                      int64_t id);

/* An approval click / `approve ID` by `actor` from `channel` (NULL = a
 * button on the request's own message). Checks state, expiry, channel,
 * approvers, self_approval, distinct people, freeze (an emergency request
 * passes it) and a policy changed since the request (approvals void first:
 * gov_reload). On GOV_OK the approval counts (GOV_F_COUNTED); with
 * GOV_F_COMPLETE, v->next = approved. v->required / v->counted after it. */
enum gov_tag gov_approve(const gov_ctx *ctx, const gov_request *req, const char *actor, const char *channel,
                         const gov_lock *lock, gov_verdict *v);

/* Records a counted approval in the model (after gov_approve said GOV_OK).
 * Returns 0, or -1 if full. */
int gov_request_add_approval(gov_request *req, const config *cfg, const char *actor, int64_t at);

/* `reject ID`: an approver of the environment (the requester too, if they
 * are one) ends a pending request: v->next = rejected. */
enum gov_tag gov_reject(const gov_ctx *ctx, const gov_request *req, const char *actor, const char *channel,
                        gov_verdict *v);

/* `cancel ID`: the requester (any of their identities) or an approver, before
 * it runs: v->next = cancelled. */
enum gov_tag gov_cancel(const gov_ctx *ctx, const gov_request *req, const char *actor, const char *channel,
                        gov_verdict *v);

/* When does a waiting request expire? created_at + approval_ttl of its
 * environment; INT64_MAX for one that needs no approvals or is not waiting. */
int64_t gov_expires_at(const gov_ctx *ctx, const gov_request *req);

/* Expiry sweep: GOV_EXPIRED with v->next = expired if the request's
 * approval_ttl has passed at ctx->now, else GOV_OK (v->until = expiry). */
enum gov_tag gov_expire(const gov_ctx *ctx, const gov_request *req, gov_verdict *v);

/* A config reload: re-decides a request under the new snapshot ctx->cfg
 * (its recorded policy_hash is the old policy). Nothing to do (GOV_OK, no
 * flags) when the request is running or terminal, or its environment's
 * policy hash is unchanged. Otherwise:
 *   - environment gone: GOV_UNKNOWN_ENV, next = cancelled;
 *   - requester no longer a deployer: GOV_NOT_DEPLOYER, next = cancelled;
 *   - a deploy into an environment that now takes only promote:
 *     GOV_PROMOTE_REQUIRED, next = cancelled;
 *   - pending_approval: approvals void (GOV_F_VOIDED | GOV_F_REBOUND), it
 *     stays pending needing v->required under the new policy, or moves to
 *     approved (GOV_F_COMPLETE) if that is 0;
 *   - approved / queued (past their approvals): kept (GOV_F_REBOUND) if the
 *     approvals also satisfy the new policy, else GOV_NOT_ENOUGH_APPROVALS,
 *     next = expired. */
enum gov_tag gov_reload(const gov_ctx *ctx, const gov_request *req, gov_verdict *v);

/* Applies a reload verdict to the model: clears approvals when voided,
 * stores required and hash, and moves state when v->next says so.
 * Returns 0 or -1 (illegal transition; nothing changed). */
int gov_request_apply_reload(gov_request *req, const gov_ctx *ctx, const gov_verdict *v);

/* Moves the model's state through the transition table. Returns 0, or -1
 * (nothing changed) when request_step_check() refuses. */
int gov_request_set_state(gov_request *req, enum req_state to, enum req_phase phase, enum req_reason reason);

/* Is the environment frozen at ctx->now (windows and manual lock)? GOV_OK,
 * or GOV_FROZEN / GOV_LOCKED / GOV_FREEZE_UNUSABLE with v->until = the first
 * instant it is free (windows that touch or overlap are chained;
 * INT64_MAX = until unlocked or further notice). Ignores --emergency: see
 * gov_freeze_check for that. */
enum gov_tag gov_frozen(const gov_ctx *ctx, const config_env *env, const gov_lock *lock, gov_verdict *v);

/* Where a freeze is checked. */
enum gov_point { GOV_AT_REQUEST = 1, GOV_AT_APPROVAL, GOV_AT_TAKE, GOV_AT_REGISTER };

/* The freeze rule at one point, with break-glass: an emergency request
 * passes (GOV_F_BREAK_GLASS) at request and approval; at take and register
 * only with its required approvals (approvals + 1) counted. req NULL = a
 * request without --emergency. At take and register a refusal carries
 * GOV_F_DEFER. */
enum gov_tag gov_freeze_check(const gov_ctx *ctx, const config_env *env, const gov_lock *lock,
                              const gov_request *req, enum gov_point point, gov_verdict *v);

/* A worker about to take a queued request (GOV_AT_TAKE: v->next = running)
 * or about to send the Nomad register (GOV_AT_REGISTER: state running,
 * phase registering). Re-checks state, expiry, the approvals counted
 * against the required number (defensive), the policy (a changed one must
 * also be satisfied), freeze. A freeze: GOV_FROZEN|GOV_LOCKED with
 * GOV_F_DEFER and v->until; at register v->next = queued (hand back). */
enum gov_tag gov_run_check(const gov_ctx *ctx, const gov_request *req, const gov_lock *lock, enum gov_point point,
                           gov_verdict *v);

/* Promote evidence: the source's latest deployment is successful, healthy
 * for at least the target's promote_after, and (bound_image != NULL) still
 * runs exactly the image the request bound. */
enum gov_tag gov_promote_evidence(const gov_ctx *ctx, const config_env *target, const char *from_env,
                                  const gov_evidence *ev, const char *bound_image, gov_verdict *v);

/* `canary promote|fail`, `pause`, `resume` on the running request `req`:
 * approvers of its environment, or the requester where approvals: 0.
 * canary needs phase awaiting_promotion (fail also rolling), pause rolling
 * or awaiting_promotion, resume paused. canary promote and resume advance a
 * rollout, so they honour freezes (break-glass as at take). action is
 * CMD_CANARY (sub "promote" / "fail"), CMD_PAUSE or CMD_RESUME. */
enum gov_tag gov_may_act(const gov_ctx *ctx, const gov_request *req, enum cmd_kind action, const char *sub,
                         const char *actor, const char *channel, const gov_lock *lock, gov_verdict *v);

/* `lock ENV reason` / `unlock ENV`: approvers of the environment (its
 * deployers where it has no approvers), from its channels. */
enum gov_tag gov_may_lock(const gov_ctx *ctx, const char *env, const char *actor, const char *channel,
                          const gov_lock *current, gov_verdict *v);
enum gov_tag gov_may_unlock(const gov_ctx *ctx, const char *env, const char *actor, const char *channel,
                            const gov_lock *current, gov_verdict *v);

/* `explain deploy|promote ...`: what it would take right now, one line per
 * rule ("ok"/"no" + why), creating nothing. Returns the verdict of
 * gov_may_request for the same input (its first refusal) and writes the
 * text (always NUL-terminated, truncated to outlen). */
enum gov_tag gov_explain(const gov_ctx *ctx, const gov_request_in *in, char *out, size_t outlen, gov_verdict *v);

/* Distinct people among the request's recorded approvals who are, under
 * ctx->cfg, eligible (approvers, not the requester without self_approval). */
int gov_count_approvals(const config *cfg, const gov_request *req);

#endif
