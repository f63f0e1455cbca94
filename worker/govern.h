/* The impure side of governance: read the facts from PostgreSQL, decide with
 * commands/governance.h (pure), write the outcome and its audit event. Used
 * by the bot (requests, approvals, locks, explain — on its thread pool) and
 * by workers (checks at take and before register, the expiry and reload
 * sweep). Every function blocks on PostgreSQL: never call it on the bot's
 * event loop. Decisions use PostgreSQL's clock. */
#ifndef NM_GOVERN_H
#define NM_GOVERN_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "governance.h"

/* Freeze-window zones, loaded from /usr/share/zoneinfo once per process and
 * shared read-only (a gov_zone_fn; ud unused). */
const tzif_zone *govern_zone(void *ud, const char *name);

/* A new request as typed (deploy or rollback). */
typedef struct govern_in {
    enum gov_kind kind;
    const char *env, *job;
    const char *version;          /* deploy: tag; rollback: tag, "#N" or "" */
    const char *to_image;         /* deploy: image reference; rollback: "" */
    int canary;                   /* -1 = not given */
    const char *user_reason;      /* --reason, may be NULL */
    const char *emergency;        /* --emergency, may be NULL */
    const char *actor, *person;   /* person may be NULL */
    const char *idem_key;
    audit_origin origin;
    /* promote */
    const char *from_env;         /* the source environment */
    const gov_evidence *evidence; /* what runs there now (a worker's answer) */
} govern_in;

/* Decides and records a request. On GOV_OK *id is the request (queued or
 * pending_approval: v->next; *existed for a repeated idempotency key). A
 * refusal is written as a "request.refused" audit event and returned in v
 * (tag, rule, message). Returns an audit code (AUDIT_OK also for a refusal). */
int govern_request(audit_db *db, const config *cfg, const govern_in *in, gov_verdict *v, int64_t *id, bool *existed);

/* approve / reject / cancel ID by actor from channel. On GOV_OK the outcome
 * is written (approval counted; the request approved and queued when
 * complete: *queued set so the caller puts it on the work stream).
 * Returns an audit code; v says what was decided. */
enum govern_act { GOVERN_APPROVE, GOVERN_REJECT, GOVERN_CANCEL };
int govern_decide(audit_db *db, const config *cfg, enum govern_act act, int64_t id, const char *actor,
                  const char *person, const char *channel, const char *why, gov_verdict *v, bool *queued);

/* lock ENV reason / unlock ENV. */
int govern_lock(audit_db *db, const config *cfg, const char *env, bool lock, const char *actor, const char *person,
                const char *channel, const char *reason, gov_verdict *v);

/* explain deploy|rollback ...: what it would take now; creates nothing. */
int govern_explain(audit_db *db, const config *cfg, const govern_in *in, char *out, size_t outlen, gov_verdict *v);

/* Worker checks (GOV_AT_TAKE before starting a queued request,
 * GOV_AT_REGISTER right before the Nomad register). GOV_OK, or a refusal in
 * v (GOV_F_DEFER: not now, retry at v->until). */
int govern_run_check(audit_db *db, const config *cfg, int64_t id, enum gov_point point, gov_verdict *v);

/* promote, again at take: the source must still run the image the request
 * bound, successfully and healthy for promote_after. */
int govern_promote_check(audit_db *db, const config *cfg, const char *target_env, const char *from_env,
                         const gov_evidence *ev, const char *bound_image, gov_verdict *v);

/* canary promote|fail, pause, resume on request id (gov_may_act: approvers,
 * or the requester where approvals: 0; the phase must take it; promote and
 * resume honour freezes). */
int govern_may_act(audit_db *db, const config *cfg, int64_t id, enum cmd_kind action, const char *sub,
                   const char *actor, const char *channel, gov_verdict *v);

/* The timer's sweep: expires requests past approval_ttl and re-decides
 * waiting ones whose environment's policy changed (a reload). fn is told of
 * each request that moved (to publish it). Returns an audit code. */
typedef void (*govern_moved_fn)(void *ud, int64_t id, const char *state, const char *message);
int govern_sweep(audit_db *db, const config *cfg, govern_moved_fn fn, void *ud);

#endif
