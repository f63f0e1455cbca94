/* Governance storage (issue 7): approvals, environment locks, refusals, the
 * counts behind the limits, the facts a decision reads, plans and reloads.
 * The decisions themselves are pure (commands/governance.h); this file only
 * reads what they need and writes what they decided, each write one
 * transaction whose events join the chain through audit__write_with_events(),
 * so `audit verify` covers them like every other event. Values always travel
 * as parameters. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "canon.h"

#define OPEN_STATES "('pending_approval', 'approved', 'queued', 'running')"
/* The key a person counts under; the same expression as the indexes of migration 3. */
#define PERSON_KEY "coalesce(nullif(person, ''), actor)"

static const char *nz(const char *s) { return s && s[0] ? s : NULL; }

static const char *col_str(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int64_t col_i64(PGresult *r, int row, int col, int64_t if_null) {
    return PQgetisnull(r, row, col) ? if_null : (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Fails with the name of the first text over its ceiling, or returns AUDIT_OK. */
static int check_len(audit_db *db, const char *name, const char *s, size_t max) {
    if (s && strlen(s) > max) return audit__fail(db, AUDIT_ERR_INVALID, "%s is longer than %zu bytes", name, max);
    return AUDIT_OK;
}

bool audit__unique_violation(const audit_db *db, const char *constraint) {
    char quoted[96];
    snprintf(quoted, sizeof(quoted), "\"%s\"", constraint);
    return strcmp(db->sqlstate, "23505") == 0 && strstr(db->errstr, quoted) != NULL;
}

static bool state_name_ok(const char *s) {
    static const char *const states[] = {"pending_approval", "approved", "queued",  "running",   "succeeded",
                                         "failed",           "rejected", "expired", "cancelled", NULL};
    for (int i = 0; s && states[i]; i++)
        if (strcmp(s, states[i]) == 0) return true;
    return false;
}

/* Checks a transition given beside another write (same rules as audit_request_transition). */
static int check_transition(audit_db *db, const audit_transition *t) {
    if (!nz(t->from_state) || !nz(t->to_state) || !nz(t->action) || !nz(t->actor))
        return audit__fail(db, AUDIT_ERR_INVALID, "a transition needs from_state, to_state, action and actor");
    if (!state_name_ok(t->from_state) || !state_name_ok(t->to_state))
        return audit__fail(db, AUDIT_ERR_INVALID, "'%.32s' is not a request state",
                           state_name_ok(t->from_state) ? t->to_state : t->from_state);
    const char *const vals[] = {t->phase, t->reason, t->action, t->actor, t->person, t->outcome, t->detail};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        if (vals[i] && strlen(vals[i]) > AUDIT_FIELD_MAX)
            return audit__fail(db, AUDIT_ERR_INVALID, "a transition text is longer than %d bytes", AUDIT_FIELD_MAX);
    return AUDIT_OK;
}

static audit_event transition_event(const audit_transition *t) {
    return (audit_event){.action = t->action, .actor = t->actor, .person = t->person, .outcome = t->outcome,
                         .from_state = t->from_state, .to_state = t->to_state, .detail = t->detail};
}

/* After a guarded write matched no row: which guard? AUDIT_ERR_NOT_FOUND or
 * AUDIT_ERR_STATE naming the state the request is in. */
static int explain_no_row(audit_db *db, const char *id_s, const char *expected) {
    PGresult *r = NULL;
    const char *p[] = {id_s};
    int rc = audit__exec(db, "reading the request", "SELECT state FROM requests WHERE id = $1::bigint", 1, p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 0) rc = audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%s does not exist", id_s);
    else
        rc = audit__fail(db, AUDIT_ERR_STATE, "D-%s is %.24s, not %.24s", id_s, PQgetvalue(r, 0, 0), expected);
    PQclear(r);
    return rc;
}

/* ---- facts ---- */

/* Copies column col of row 0 into dst (n bytes) or fails: facts are never truncated. */
static int fact_text(audit_db *db, PGresult *r, int col, char *dst, size_t n, int64_t id) {
    const char *v = PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col);
    size_t len = strlen(v);
    if (len >= n)
        return audit__fail(db, AUDIT_ERR_INVALID, "D-%" PRId64 ": %s is %zu bytes, more than governance reads (%zu)",
                           id, PQfname(r, col), len, n - 1);
    memcpy(dst, v, len + 1);
    return AUDIT_OK;
}

int audit_request_facts(audit_db *db, int64_t id, audit_facts *out) {
    int rc;
    memset(out, 0, sizeof(*out));
    out->plan_modify_index = -1;
    if (id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    if (!audit__conn(db, &rc)) return rc;
    char id_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, id);
    const char *p[] = {id_s};
    PGresult *r = NULL;
    if ((rc = audit__exec(db, "reading the request",
                          "SELECT kind, state, phase, reason, env, job, actor, person, emergency, bound_image,\n"
                          "  from_env, required_approvals, policy_hash, floor(extract(epoch FROM created_at))::bigint,\n"
                          "  plan_modify_index, plan_hash\n"
                          "FROM requests WHERE id = $1::bigint",
                          1, p, &r)))
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    }
    out->id = id;
    struct {
        char *dst;
        size_t n;
    } texts[] = {
        {out->kind, sizeof(out->kind)},       {out->state, sizeof(out->state)},
        {out->phase, sizeof(out->phase)},     {out->reason, sizeof(out->reason)},
        {out->env, sizeof(out->env)},         {out->job, sizeof(out->job)},
        {out->actor, sizeof(out->actor)},     {out->person, sizeof(out->person)},
        {out->emergency, sizeof(out->emergency)}, {out->bound_image, sizeof(out->bound_image)},
        {out->from_env, sizeof(out->from_env)},
    };
    for (int i = 0; i < (int)(sizeof(texts) / sizeof(texts[0])); i++)
        if ((rc = fact_text(db, r, i, texts[i].dst, texts[i].n, id))) goto out;
    out->required = (int)col_i64(r, 0, 11, 0);
    out->policy_hash = PQgetisnull(r, 0, 12) ? 0 : (uint64_t)strtoull(PQgetvalue(r, 0, 12), NULL, 16);
    out->created_at = col_i64(r, 0, 13, 0);
    out->plan_modify_index = col_i64(r, 0, 14, -1);
    if ((rc = fact_text(db, r, 15, out->plan_hash, sizeof(out->plan_hash), id))) goto out;
    db->errstr[0] = '\0';
out:
    PQclear(r);
    return rc;
}

/* ---- approvals ---- */

/* The approval's event reads the request row; the approval row itself is in
 * the event's actor / person. */
static void fill_request(audit_event *e, PGresult *r, int row) { audit__event_from_request(e, r, row); }

int audit_approval_add(audit_db *db, int64_t request_id, const char *identity, const char *person, bool *counted,
                       const audit_transition *t) {
    int rc;
    if (counted) *counted = false;
    if (!nz(identity)) return audit__fail(db, AUDIT_ERR_INVALID, "an approval needs an identity");
    if ((rc = check_len(db, "identity", identity, AUDIT_IDENTITY_MAX)) ||
        (rc = check_len(db, "person", person, AUDIT_NAME_MAX)))
        return rc;
    if (t && (rc = check_transition(db, t))) return rc;
    if (request_id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", request_id);
    char id_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, request_id);
    /* ON CONFLICT on the (request, round, person_key) constraint: a racing
     * approval by the same person waits for the first to commit, then
     * inserts nothing, so the statement returns no row and nothing is
     * written. With a transition, the UPDATE is guarded by its from_state;
     * a mismatch returns no row too and the insert is rolled back. */
    const char *p[] = {id_s,
                       identity,
                       nz(person),
                       t ? t->from_state : NULL,
                       t ? t->to_state : NULL,
                       t ? t->phase : NULL,
                       t ? t->reason : NULL,
                       t ? t->detail : NULL};
    audit__stmt ins = {
        "recording the approval",
        t ? "WITH a AS (INSERT INTO request_approvals (request_id, round, identity, person)\n"
            "           SELECT id, approval_round, $2, $3 FROM requests\n"
            "           WHERE id = $1::bigint AND state = 'pending_approval'\n"
            "           ON CONFLICT ON CONSTRAINT request_approvals_once DO NOTHING RETURNING request_id),\n"
            "u AS (UPDATE requests SET state = $5, phase = COALESCE($6, phase), reason = COALESCE($7, reason),\n"
            "        detail = COALESCE($8, detail), updated_at = now()\n"
            "      WHERE id = (SELECT request_id FROM a) AND state = $4\n"
            "      RETURNING " AUDIT__REQ_EVENT_COLS ")\n"
            "SELECT * FROM u"
          : "WITH a AS (INSERT INTO request_approvals (request_id, round, identity, person)\n"
            "           SELECT id, approval_round, $2, $3 FROM requests\n"
            "           WHERE id = $1::bigint AND state = 'pending_approval'\n"
            "           ON CONFLICT ON CONSTRAINT request_approvals_once DO NOTHING RETURNING request_id)\n"
            "SELECT " AUDIT__REQ_EVENT_COLS " FROM requests WHERE id = (SELECT request_id FROM a)",
        t ? 8 : 3, p};
    audit_event evs[2];
    memset(evs, 0, sizeof(evs));
    evs[0] = (audit_event){.action = "approval.given", .actor = identity, .person = nz(person),
                           .outcome = "counted", .from_state = "pending_approval", .to_state = "pending_approval"};
    if (t) evs[1] = transition_event(t);
    bool no_row = false;
    if ((rc = audit__write_with_events(db, &ins, fill_request, evs, t ? 2 : 1, &no_row))) return rc;
    if (!no_row) {
        if (counted) *counted = true;
        db->errstr[0] = '\0';
        return AUDIT_OK;
    }
    /* Nothing written: the person counted already, or a guard did not hold. */
    PGresult *r = NULL;
    const char *q[] = {id_s, identity, nz(person)};
    if ((rc = audit__exec(db, "reading the approvals",
                          "SELECT r.state, EXISTS (SELECT 1 FROM request_approvals a WHERE a.request_id = r.id\n"
                          "  AND a.round = r.approval_round AND a.person_key = coalesce($3, $2))\n"
                          "FROM requests r WHERE r.id = $1::bigint",
                          3, q, &r)))
        return rc;
    if (PQntuples(r) == 0) rc = audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%s does not exist", id_s);
    else if (PQgetvalue(r, 0, 1)[0] == 't')
        rc = audit__fail(db, AUDIT_OK, "%.64s already counted on D-%s", nz(person) ? person : identity, id_s);
    else if (strcmp(PQgetvalue(r, 0, 0), "pending_approval") != 0)
        rc = audit__fail(db, AUDIT_ERR_STATE, "D-%s is %.24s: it takes no approvals", id_s, PQgetvalue(r, 0, 0));
    else
        rc = audit__fail(db, AUDIT_ERR_STATE, "D-%s is pending_approval, not %.24s", id_s, t ? t->from_state : "?");
    PQclear(r);
    return rc;
}

typedef struct approvals_ctx {
    audit_approval_cb cb;
    void *arg;
} approvals_ctx;

static int approval_row(PGresult *r, void *arg) {
    approvals_ctx *x = arg;
    const char *person = col_str(r, 0, 1);
    return x->cb(PQgetvalue(r, 0, 0), person ? person : "", col_i64(r, 0, 2, 0), x->arg);
}

int audit_approvals_each(audit_db *db, int64_t request_id, audit_approval_cb cb, void *arg) {
    if (!cb) return audit__fail(db, AUDIT_ERR_INVALID, "no callback");
    char id_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, request_id);
    const char *p[] = {id_s};
    approvals_ctx x = {cb, arg};
    int rc = audit__stream(db, "reading the approvals",
                           "SELECT a.identity, a.person, floor(extract(epoch FROM a.at))::bigint\n"
                           "FROM requests r JOIN request_approvals a ON a.request_id = r.id AND a.round = r.approval_round\n"
                           "WHERE r.id = $1::bigint ORDER BY a.id",
                           1, p, approval_row, &x);
    if (rc == AUDIT_OK) db->errstr[0] = '\0';
    return rc;
}

int audit_request_rebind(audit_db *db, int64_t id, int required, uint64_t policy_hash, bool void_approvals,
                         const char *actor, const char *detail, const audit_transition *t) {
    int rc;
    if (!nz(actor)) return audit__fail(db, AUDIT_ERR_INVALID, "a rebind needs an actor");
    if (required < 0 || required > AUDIT_APPROVALS_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "required approvals must be 0 to %d", AUDIT_APPROVALS_MAX);
    if ((rc = check_len(db, "actor", actor, AUDIT_FIELD_MAX)) || (rc = check_len(db, "detail", detail, AUDIT_FIELD_MAX)))
        return rc;
    if (t && (rc = check_transition(db, t))) return rc;
    if (id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    char id_s[24], req_s[16], hash_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, id);
    snprintf(req_s, sizeof(req_s), "%d", required);
    snprintf(hash_s, sizeof(hash_s), "%016" PRIx64, policy_hash);
    const char *p[] = {id_s,
                       req_s,
                       policy_hash ? hash_s : NULL,
                       void_approvals ? "1" : "0",
                       t ? t->from_state : NULL,
                       t ? t->to_state : NULL,
                       t ? t->phase : NULL,
                       t ? t->reason : NULL,
                       t ? t->detail : NULL};
    audit__stmt upd = {"rebinding the request",
                       "UPDATE requests SET required_approvals = $2::integer, policy_hash = $3,\n"
                       "  approval_round = approval_round + $4::integer, state = COALESCE($6, state),\n"
                       "  phase = COALESCE($7, phase), reason = COALESCE($8, reason), detail = COALESCE($9, detail),\n"
                       "  updated_at = now()\n"
                       "WHERE id = $1::bigint AND ($5::text IS NULL OR state = $5)\n"
                       "RETURNING " AUDIT__REQ_EVENT_COLS,
                       9, p};
    char outcome[96];
    snprintf(outcome, sizeof(outcome), "needs %d approvals%s", required, void_approvals ? "; approvals void" : "");
    audit_event evs[2];
    memset(evs, 0, sizeof(evs));
    evs[0] = (audit_event){.action = "policy.rebound", .actor = actor, .outcome = outcome, .detail = detail,
                           .from_state = t ? t->from_state : NULL, .to_state = t ? t->from_state : NULL};
    if (t) evs[1] = transition_event(t);
    bool no_row = false;
    rc = audit__write_with_events(db, &upd, fill_request, evs, t ? 2 : 1, &no_row);
    if (rc != AUDIT_OK && audit__unique_violation(db, "requests_one_open_idx"))
        return audit__fail(db, AUDIT_ERR_EXISTS, "D-%s: another request is open for its job and environment", id_s);
    if (rc) return rc;
    if (no_row) return explain_no_row(db, id_s, t ? t->from_state : "?");
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* ---- locks ---- */

int audit_lock_get(audit_db *db, const char *env, bool *locked, char *by, char *reason, int64_t *since_unix) {
    int rc;
    if (locked) *locked = false;
    if (by) by[0] = '\0';
    if (reason) reason[0] = '\0';
    if (since_unix) *since_unix = 0;
    if (!nz(env)) return audit__fail(db, AUDIT_ERR_INVALID, "a lock needs an environment");
    if ((rc = check_len(db, "env", env, AUDIT_NAME_MAX))) return rc;
    if (!audit__conn(db, &rc)) return rc;
    const char *p[] = {env};
    PGresult *r = NULL;
    if ((rc = audit__exec(db, "reading the lock",
                          "SELECT locked, by_identity, reason, floor(extract(epoch FROM at))::bigint\n"
                          "FROM env_locks WHERE env = $1 ORDER BY seq DESC LIMIT 1",
                          1, p, &r)))
        return rc;
    if (PQntuples(r) == 1) {
        if (locked) *locked = PQgetvalue(r, 0, 0)[0] == 't';
        /* Written through audit_lock_set, which bounds both: a longer value
         * was put there by hand and is cut, not trusted to fit. */
        if (by) snprintf(by, AUDIT_IDENTITY_MAX + 1, "%s", PQgetvalue(r, 0, 1));
        if (reason) snprintf(reason, AUDIT_REASON_MAX + 1, "%s", PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2));
        if (since_unix) *since_unix = col_i64(r, 0, 3, 0);
    }
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

static void fill_lock(audit_event *e, PGresult *r, int row) {
    e->env = col_str(r, row, 0);
    e->nomad_job_version = -1;
}

int audit_lock_set(audit_db *db, const char *env, bool locked, const char *by_identity, const char *person,
                   const char *reason) {
    int rc;
    if (!nz(env) || !nz(by_identity)) return audit__fail(db, AUDIT_ERR_INVALID, "a lock needs an environment and who");
    if ((rc = check_len(db, "env", env, AUDIT_NAME_MAX)) ||
        (rc = check_len(db, "by_identity", by_identity, AUDIT_IDENTITY_MAX)) ||
        (rc = check_len(db, "person", person, AUDIT_NAME_MAX)) ||
        (rc = check_len(db, "reason", reason, AUDIT_REASON_MAX)))
        return rc;
    const char *p[] = {env, locked ? "true" : "false", by_identity, nz(person), nz(reason)};
    /* The guard (state differs) and the next seq come from one read; a racing
     * writer that read the same row collides on (env, seq). */
    audit__stmt ins = {"recording the lock",
                       "WITH cur AS (SELECT seq, locked FROM env_locks WHERE env = $1 ORDER BY seq DESC LIMIT 1)\n"
                       "INSERT INTO env_locks (env, seq, locked, by_identity, person, reason)\n"
                       "SELECT $1, coalesce((SELECT seq FROM cur), 0) + 1, $2::boolean, $3, $4, $5\n"
                       "WHERE coalesce((SELECT locked FROM cur), false) <> $2::boolean\n"
                       "RETURNING env",
                       5, p};
    audit_event e = {.action = locked ? "env.locked" : "env.unlocked", .actor = by_identity, .person = nz(person),
                     .outcome = locked ? "locked" : "unlocked", .detail = nz(reason)};
    bool no_row = false;
    rc = audit__write_with_events(db, &ins, fill_lock, &e, 1, &no_row);
    if (rc != AUDIT_OK && audit__unique_violation(db, "env_locks_seq"))
        return audit__fail(db, AUDIT_ERR_STATE, "the lock of %.64s changed meanwhile: look again", env);
    if (rc) return rc;
    if (no_row) return audit__fail(db, AUDIT_ERR_STATE, "%.64s is %s", env, locked ? "already locked" : "not locked");
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* ---- refusals and counts ---- */

static void fill_nothing(audit_event *e, PGresult *r, int row) {
    (void)r;
    (void)row;
    e->nomad_job_version = -1;
}

int audit_refusal(audit_db *db, const audit_origin *o, const char *actor, const char *person, const char *env,
                  const char *job, const char *tag, const char *message) {
    int rc;
    audit_origin none = {0};
    if (!o) o = &none;
    if (!nz(actor) || !nz(tag)) return audit__fail(db, AUDIT_ERR_INVALID, "a refusal needs an actor and a tag");
    const char *const names[] = {"actor", "person", "env", "job", "tag", "message", "platform", "team", "channel",
                                 "message_ref", "thread", "permalink"};
    const char *const vals[] = {actor, person, env, job, tag, message, o->platform, o->team, o->channel,
                                o->message_ref, o->thread, o->permalink};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        if ((rc = check_len(db, names[i], vals[i], AUDIT_FIELD_MAX))) return rc;
    audit__stmt none_stmt = {"recording the refusal", "SELECT 1", 0, NULL};
    audit_event e = {.action = "request.refused", .actor = actor, .person = nz(person), .outcome = tag,
                     .detail = message, .env = nz(env), .job = nz(job), .platform = o->platform, .team = o->team,
                     .channel = o->channel, .message_ref = o->message_ref, .thread = o->thread,
                     .permalink = o->permalink};
    bool no_row = false;
    if ((rc = audit__write_with_events(db, &none_stmt, fill_nothing, &e, 1, &no_row))) return rc;
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* One count(*) with the given parameters into *n. */
static int count_one(audit_db *db, const char *what, const char *sql, int np, const char *const *p, int *n) {
    int rc;
    *n = 0;
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    if ((rc = audit__exec(db, what, sql, np, p, &r))) return rc;
    int64_t v = col_i64(r, 0, 0, 0);
    PQclear(r);
    *n = v > INT32_MAX ? INT32_MAX : (int)v;
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

int audit_open_count(audit_db *db, const char *person_key, int *n) {
    int dummy;
    if (!n) n = &dummy;
    *n = 0;
    if (!nz(person_key)) return audit__fail(db, AUDIT_ERR_INVALID, "counting needs a person or identity");
    const char *p[] = {person_key};
    return count_one(db, "counting open requests",
                     "SELECT count(*) FROM requests WHERE " PERSON_KEY " = $1 AND state IN " OPEN_STATES, 1, p, n);
}

int audit_recent_commands(audit_db *db, const char *person_key, int64_t window_seconds, int *n) {
    int dummy;
    if (!n) n = &dummy;
    *n = 0;
    if (!nz(person_key)) return audit__fail(db, AUDIT_ERR_INVALID, "counting needs a person or identity");
    /* A year bounds the interval arithmetic well inside PostgreSQL's range. */
    if (window_seconds <= 0 || window_seconds > 366 * 86400)
        return audit__fail(db, AUDIT_ERR_INVALID, "the window is 1 s to a year");
    char w[24];
    snprintf(w, sizeof(w), "%" PRId64, window_seconds);
    const char *p[] = {person_key, w};
    return count_one(db, "counting recent commands",
                     "SELECT count(*) FROM audit_events\n"
                     "WHERE action IN ('request.created', 'request.refused') AND " PERSON_KEY " = $1\n"
                     "  AND at > now() - $2::bigint * interval '1 second'",
                     2, p, n);
}

int audit_now(audit_db *db, int64_t *unix_seconds) {
    int rc;
    if (unix_seconds) *unix_seconds = 0;
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    if ((rc = audit__exec(db, "reading the clock", "SELECT floor(extract(epoch FROM now()))::bigint", 0, NULL, &r)))
        return rc;
    if (unix_seconds) *unix_seconds = col_i64(r, 0, 0, 0);
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* ---- expiry ---- */

typedef struct waiting_ctx {
    audit_waiting_cb cb;
    void *arg;
} waiting_ctx;

static int waiting_row(PGresult *r, void *arg) {
    waiting_ctx *x = arg;
    return x->cb(col_i64(r, 0, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), (int)col_i64(r, 0, 3, 0),
                 col_i64(r, 0, 4, 0), x->arg);
}

int audit_pending_expired(audit_db *db, audit_waiting_cb cb, void *arg) {
    if (!cb) return audit__fail(db, AUDIT_ERR_INVALID, "no callback");
    waiting_ctx x = {cb, arg};
    int rc = audit__stream(db, "reading waiting requests",
                           "SELECT id, env, state, required_approvals, floor(extract(epoch FROM created_at))::bigint\n"
                           "FROM requests WHERE state IN " OPEN_STATES "\n"
                           "  AND (state = 'pending_approval' OR (state IN ('approved', 'queued') AND required_approvals > 0))\n"
                           "ORDER BY id",
                           0, NULL, waiting_row, &x);
    if (rc == AUDIT_OK) db->errstr[0] = '\0';
    return rc;
}

/* ---- plans ---- */

int audit_plan_record(audit_db *db, int64_t id, int64_t job_modify_index, const char *plan_hash, const char *detail) {
    int rc;
    if (job_modify_index < 0) return audit__fail(db, AUDIT_ERR_INVALID, "job_modify_index must not be negative");
    if (!nz(plan_hash)) return audit__fail(db, AUDIT_ERR_INVALID, "a plan needs its hash");
    if ((rc = check_len(db, "plan_hash", plan_hash, AUDIT_PLAN_HASH_MAX)) ||
        (rc = check_len(db, "detail", detail, AUDIT_FIELD_MAX - 64)))
        return rc;
    if (id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    char id_s[24], jmi_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, id);
    snprintf(jmi_s, sizeof(jmi_s), "%" PRId64, job_modify_index);
    /* The index is part of the chained record, not only of the column. */
    nm_buf d;
    nm_buf_init(&d, AUDIT_FIELD_MAX);
    if (nm_buf_printf(&d, "job_modify_index=%s%s%s", jmi_s, nz(detail) ? ": " : "", nz(detail) ? detail : "")) {
        nm_buf_free(&d);
        return audit__fail(db, AUDIT_ERR_NOMEM, "out of memory");
    }
    const char *p[] = {id_s, jmi_s, plan_hash};
    audit__stmt upd = {"recording the plan",
                       "UPDATE requests SET plan_modify_index = $2::bigint, plan_hash = $3, updated_at = now()\n"
                       "WHERE id = $1::bigint RETURNING " AUDIT__REQ_EVENT_COLS,
                       3, p};
    audit_event e = {.action = "plan.made", .actor = "nomatron", .outcome = plan_hash, .detail = d.data};
    bool no_row = false;
    rc = audit__write_with_events(db, &upd, fill_request, &e, 1, &no_row);
    nm_buf_free(&d);
    if (rc) return rc;
    if (no_row) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}
