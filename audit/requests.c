/* Requests and the audit events that record them. Every change commits
 * together with its event; the event is appended under the chain lock so
 * the chain has one order, with no gaps and no forks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "canon.h"

#define IDEM_KEY_MAX 512

static const char *const valid_states[] = {"pending_approval", "approved", "queued",    "running",   "succeeded",
                                           "failed",           "rejected", "expired",   "cancelled", NULL};

static bool state_valid(const char *s) {
    for (int i = 0; s && valid_states[i]; i++)
        if (strcmp(s, valid_states[i]) == 0) return true;
    return false;
}

/* Returns the name of the first of the n texts longer than AUDIT_FIELD_MAX, or NULL. */
static const char *too_long(const char *const *names, const char *const *vals, int n) {
    for (int i = 0; i < n; i++)
        if (vals[i] && strlen(vals[i]) > AUDIT_FIELD_MAX) return names[i];
    return NULL;
}

static const char *nz(const char *s) { return s && s[0] ? s : NULL; }

static bool col_null(PGresult *r, int row, int col) { return PQgetisnull(r, row, col); }
static const char *col_str(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}
static int64_t col_i64(PGresult *r, int row, int col, int64_t if_null) {
    return col_null(r, row, col) ? if_null : (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* The request columns an event copies, in this order, after RETURNING. */
#define EVENT_COLS "id, env, job, from_image, to_image, nomad_job_version, eval_id, deployment_id, phase, reason, " \
                   "platform, team, channel, message_ref, thread, permalink"

static void event_from_row(audit_event *e, PGresult *r) {
    e->request_id = col_i64(r, 0, 0, 0);
    e->env = col_str(r, 0, 1);
    e->job = col_str(r, 0, 2);
    e->from_image = col_str(r, 0, 3);
    e->to_image = col_str(r, 0, 4);
    e->nomad_job_version = col_i64(r, 0, 5, -1);
    e->eval_id = col_str(r, 0, 6);
    e->deployment_id = col_str(r, 0, 7);
    e->phase = col_str(r, 0, 8);
    e->reason = col_str(r, 0, 9);
    e->platform = col_str(r, 0, 10);
    e->team = col_str(r, 0, 11);
    e->channel = col_str(r, 0, 12);
    e->message_ref = col_str(r, 0, 13);
    e->thread = col_str(r, 0, 14);
    e->permalink = col_str(r, 0, 15);
}

/* Appends e to the chain inside the caller's open transaction. Fills in
 * id, at_us, enc_version and prev_hash. The chain lock is held until the
 * caller's COMMIT or ROLLBACK. */
static int append_event(audit_db *db, audit_event *e) {
    int rc;
    const char *key[] = {AUDIT_LOCK_CHAIN};
    if ((rc = audit__exec(db, "taking the audit chain lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1, key,
                          NULL)))
        return rc;

    /* The head and the time are read after the lock, so ids, hashes and
     * times all advance together. */
    PGresult *h = NULL;
    rc = audit__exec(db, "reading the audit chain head",
                     "SELECT (extract(epoch FROM t.now) * 1000000)::bigint, h.id, h.hash\n"
                     "FROM (SELECT clock_timestamp() AS now) t\n"
                     "LEFT JOIN LATERAL (SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1) h ON true",
                     0, NULL, &h);
    if (rc) return rc;
    char prev[AUDIT_HASH_HEX_LEN + 1];
    e->at_us = col_i64(h, 0, 0, 0);
    e->id = col_i64(h, 0, 1, 0) + 1;
    snprintf(prev, sizeof(prev), "%s", col_null(h, 0, 2) ? AUDIT_GENESIS_HASH : PQgetvalue(h, 0, 2));
    PQclear(h);
    e->prev_hash = prev;
    e->enc_version = AUDIT_ENC_VERSION;

    char hash[AUDIT_HASH_HEX_LEN + 1];
    int crc = audit_canon_event_hash(e, hash);
    if (crc != AUDIT_CANON_OK)
        return audit__fail(db, crc == AUDIT_CANON_NOMEM ? AUDIT_ERR_NOMEM : AUDIT_ERR_INVALID,
                           "cannot encode audit event: %s", audit_canon_strerror(crc));

    char id_s[24], req_s[24], at_s[24], njv_s[24], ver_s[8];
    snprintf(id_s, sizeof(id_s), "%" PRId64, e->id);
    snprintf(req_s, sizeof(req_s), "%" PRId64, e->request_id);
    snprintf(at_s, sizeof(at_s), "%" PRId64, e->at_us);
    snprintf(njv_s, sizeof(njv_s), "%" PRId64, e->nomad_job_version);
    snprintf(ver_s, sizeof(ver_s), "%d", e->enc_version);
    const char *p[] = {id_s,          e->request_id > 0 ? req_s : NULL,
                       at_s,          e->action,
                       e->actor,      e->person,
                       e->outcome,    e->from_state,
                       e->to_state,   e->phase,
                       e->reason,     e->env,
                       e->job,        e->from_image,
                       e->to_image,   e->nomad_job_version >= 0 ? njv_s : NULL,
                       e->eval_id,    e->deployment_id,
                       e->detail,     e->platform,
                       e->team,       e->channel,
                       e->message_ref, e->thread,
                       e->permalink,  ver_s,
                       e->prev_hash,  hash};
    /* at: whole seconds and microseconds added separately keep the
     * interval arithmetic exact (no float rounding). */
    return audit__exec(
        db, "appending the audit event",
        "INSERT INTO audit_events (id, request_id, at, action, actor, person, outcome, from_state, to_state, phase,\n"
        "  reason, env, job, from_image, to_image, nomad_job_version, eval_id, deployment_id, detail, platform,\n"
        "  team, channel, message_ref, thread, permalink, enc_version, prev_hash, hash)\n"
        "VALUES ($1::bigint, $2::bigint,\n"
        "  timestamptz 'epoch' + ($3::bigint / 1000000) * interval '1 second'\n"
        "                      + ($3::bigint % 1000000) * interval '1 microsecond',\n"
        "  $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::bigint, $17, $18, $19, $20, $21, $22, $23,\n"
        "  $24, $25, $26::smallint, $27, $28)",
        (int)(sizeof(p) / sizeof(p[0])), p, NULL);
}

int audit_request_create(audit_db *db, const audit_new_request *r, int64_t *id_out, bool *existed) {
    int rc;
    if (id_out) *id_out = 0;
    if (existed) *existed = false;
    if (!r || !nz(r->kind) || !nz(r->env) || !nz(r->job) || !nz(r->actor))
        return audit__fail(db, AUDIT_ERR_INVALID, "a request needs kind, env, job and actor");
    if (!state_valid(r->state))
        return audit__fail(db, AUDIT_ERR_INVALID, "'%.32s' is not a request state", r->state ? r->state : "(null)");
    if (r->canary < -1) return audit__fail(db, AUDIT_ERR_INVALID, "canary must be -1 (not given) or a count");
    /* The key sits in a unique btree index, whose entries must stay small. */
    if (r->idem_key && (!r->idem_key[0] || strlen(r->idem_key) > IDEM_KEY_MAX))
        return audit__fail(db, AUDIT_ERR_INVALID, "idem_key must be 1 to %d bytes", IDEM_KEY_MAX);
    const audit_origin *o = &r->origin;
    static const char *const names[] = {"idem_key",   "kind",    "env",      "job",  "version",     "to_image",
                                        "reason",     "actor",   "person",   "platform", "team",    "channel",
                                        "message_ref", "thread", "permalink", "route"};
    const char *const vals[] = {r->idem_key,   r->kind,   r->env,      r->job,      r->version,    r->to_image,
                                r->user_reason, r->actor, r->person,   o->platform, o->team,       o->channel,
                                o->message_ref, o->thread, o->permalink, o->route};
    const char *bad = too_long(names, vals, (int)(sizeof(vals) / sizeof(vals[0])));
    if (bad) return audit__fail(db, AUDIT_ERR_INVALID, "%s is longer than %d bytes", bad, AUDIT_FIELD_MAX);
    if (!audit__conn(db, &rc)) return rc;

    char canary_s[16];
    snprintf(canary_s, sizeof(canary_s), "%d", r->canary);
    const char *p[] = {r->idem_key, r->kind,        r->state,  r->env,      r->job,     r->version ? r->version : "",
                       r->to_image ? r->to_image : "", canary_s, r->user_reason, r->actor, r->person, o->platform,
                       o->team,     o->channel,     o->message_ref, o->thread, o->permalink, o->route};
    PGresult *res = NULL;
    if (r->idem_key) {
        /* The common repeat: answer without an INSERT, which would use up a
         * request number even when ON CONFLICT discards the row. */
        const char *k[] = {r->idem_key};
        if ((rc = audit__exec(db, "looking up the idempotency key", "SELECT id FROM requests WHERE idem_key = $1", 1,
                              k, &res)))
            return rc;
        if (PQntuples(res) == 1) {
            if (id_out) *id_out = col_i64(res, 0, 0, 0);
            if (existed) *existed = true;
            PQclear(res);
            db->errstr[0] = '\0';
            return AUDIT_OK;
        }
        PQclear(res);
    }
    if ((rc = audit__begin(db))) return rc;
    rc = audit__exec(db, "inserting the request",
                     "INSERT INTO requests (idem_key, kind, state, env, job, version, to_image, canary, user_reason,\n"
                     "  actor, person, platform, team, channel, message_ref, thread, permalink, route)\n"
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)\n"
                     "ON CONFLICT (idem_key) DO NOTHING\n"
                     "RETURNING " EVENT_COLS,
                     (int)(sizeof(p) / sizeof(p[0])), p, &res);
    if (rc) goto fail;

    if (PQntuples(res) == 0) {
        /* The key was seen before (possibly committed by a racing
         * transaction we just waited for): report that request. */
        PQclear(res);
        const char *k[] = {r->idem_key};
        rc = audit__exec(db, "looking up the idempotency key", "SELECT id FROM requests WHERE idem_key = $1", 1, k,
                         &res);
        if (rc) goto fail;
        if (PQntuples(res) != 1) {
            PQclear(res);
            rc = audit__fail(db, AUDIT_ERR_SQL, "idempotency key conflicted but no request holds it");
            goto fail;
        }
        if (id_out) *id_out = col_i64(res, 0, 0, 0);
        if (existed) *existed = true;
        PQclear(res);
        audit__rollback(db);
        db->errstr[0] = '\0';
        return AUDIT_OK;
    }

    audit_event e = {
        .action = "request.created", .actor = r->actor, .person = r->person, .outcome = r->state,
        .to_state = r->state, .detail = r->user_reason,
    };
    event_from_row(&e, res);
    int64_t id = e.request_id;
    rc = append_event(db, &e);
    PQclear(res); /* e borrowed its strings from res */
    if (rc) goto fail;
    if ((rc = audit__commit(db))) return rc;
    if (id_out) *id_out = id;
    db->errstr[0] = '\0';
    return AUDIT_OK;

fail:
    audit__rollback(db);
    return rc;
}

#define REQUEST_COLS                                                                                            \
    "id, kind, state, phase, reason, env, job, version, to_image, from_image, canary, actor, person, platform,"  \
    " channel, route, nomad_job_version, eval_id, deployment_id, detail,"                                       \
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                             \
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static void copy_col(char *dst, size_t n, PGresult *r, int col) {
    snprintf(dst, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

int audit_request_get(audit_db *db, int64_t id, audit_request *out) {
    int rc;
    memset(out, 0, sizeof(*out));
    if (id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    if (!audit__conn(db, &rc)) return rc;
    char id_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, id);
    const char *p[] = {id_s};
    PGresult *r = NULL;
    if ((rc = audit__exec(db, "reading the request", "SELECT " REQUEST_COLS " FROM requests WHERE id = $1::bigint", 1,
                          p, &r)))
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    }
    /* Columns longer than the struct's buffers are truncated (display only). */
    out->id = col_i64(r, 0, 0, 0);
    copy_col(out->kind, sizeof(out->kind), r, 1);
    copy_col(out->state, sizeof(out->state), r, 2);
    copy_col(out->phase, sizeof(out->phase), r, 3);
    copy_col(out->reason, sizeof(out->reason), r, 4);
    copy_col(out->env, sizeof(out->env), r, 5);
    copy_col(out->job, sizeof(out->job), r, 6);
    copy_col(out->version, sizeof(out->version), r, 7);
    copy_col(out->to_image, sizeof(out->to_image), r, 8);
    copy_col(out->from_image, sizeof(out->from_image), r, 9);
    out->canary = (int)col_i64(r, 0, 10, -1);
    copy_col(out->actor, sizeof(out->actor), r, 11);
    copy_col(out->person, sizeof(out->person), r, 12);
    copy_col(out->platform, sizeof(out->platform), r, 13);
    copy_col(out->channel, sizeof(out->channel), r, 14);
    copy_col(out->route, sizeof(out->route), r, 15);
    out->nomad_job_version = col_i64(r, 0, 16, -1);
    copy_col(out->eval_id, sizeof(out->eval_id), r, 17);
    copy_col(out->deployment_id, sizeof(out->deployment_id), r, 18);
    copy_col(out->detail, sizeof(out->detail), r, 19);
    copy_col(out->created_at, sizeof(out->created_at), r, 20);
    copy_col(out->updated_at, sizeof(out->updated_at), r, 21);
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

int audit_request_transition(audit_db *db, int64_t id, const audit_transition *t) {
    int rc;
    if (!t || !nz(t->from_state) || !nz(t->to_state) || !nz(t->action) || !nz(t->actor))
        return audit__fail(db, AUDIT_ERR_INVALID, "a transition needs from_state, to_state, action and actor");
    if (!state_valid(t->from_state) || !state_valid(t->to_state))
        return audit__fail(db, AUDIT_ERR_INVALID, "'%.32s' is not a request state",
                           state_valid(t->from_state) ? t->to_state : t->from_state);
    if (id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    static const char *const names[] = {"phase",  "reason",     "action",  "actor",         "person",
                                        "outcome", "detail",    "from_image", "eval_id", "deployment_id"};
    const char *const vals[] = {t->phase,   t->reason, t->action,     t->actor,   t->person,
                                t->outcome, t->detail, t->from_image, t->eval_id, t->deployment_id};
    const char *bad = too_long(names, vals, (int)(sizeof(vals) / sizeof(vals[0])));
    if (bad) return audit__fail(db, AUDIT_ERR_INVALID, "%s is longer than %d bytes", bad, AUDIT_FIELD_MAX);
    if (!audit__conn(db, &rc)) return rc;

    char id_s[24], njv_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, id);
    snprintf(njv_s, sizeof(njv_s), "%" PRId64, t->nomad_job_version);
    const char *p[] = {id_s,    t->from_state, t->to_state,       t->phase,
                       t->reason, t->from_image, t->eval_id,      t->deployment_id,
                       t->nomad_job_version >= 0 ? njv_s : NULL, t->detail};
    if ((rc = audit__begin(db))) return rc;
    PGresult *res = NULL;
    /* The WHERE on state is the guard: two workers racing on one request
     * cannot both move it, and a stale caller gets AUDIT_ERR_STATE. */
    rc = audit__exec(db, "updating the request",
                     "UPDATE requests SET state = $3,\n"
                     "  phase = COALESCE($4, phase), reason = COALESCE($5, reason),\n"
                     "  from_image = COALESCE($6, from_image), eval_id = COALESCE($7, eval_id),\n"
                     "  deployment_id = COALESCE($8, deployment_id),\n"
                     "  nomad_job_version = COALESCE($9::bigint, nomad_job_version),\n"
                     "  detail = COALESCE($10, detail), updated_at = now()\n"
                     "WHERE id = $1::bigint AND state = $2\n"
                     "RETURNING " EVENT_COLS,
                     (int)(sizeof(p) / sizeof(p[0])), p, &res);
    if (rc) goto fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        audit__rollback(db);
        const char *q[] = {id_s};
        if ((rc = audit__exec(db, "reading the request", "SELECT state FROM requests WHERE id = $1::bigint", 1, q,
                              &res)))
            return rc;
        if (PQntuples(res) == 0) rc = audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
        else
            rc = audit__fail(db, AUDIT_ERR_STATE, "D-%" PRId64 " is %.24s, not %.24s", id, PQgetvalue(res, 0, 0),
                             t->from_state);
        PQclear(res);
        return rc;
    }

    audit_event e = {
        .action = t->action, .actor = t->actor, .person = t->person, .outcome = t->outcome,
        .from_state = t->from_state, .to_state = t->to_state, .detail = t->detail,
    };
    event_from_row(&e, res);
    rc = append_event(db, &e);
    PQclear(res);
    if (rc) goto fail;
    if ((rc = audit__commit(db))) return rc;
    db->errstr[0] = '\0';
    return AUDIT_OK;

fail:
    audit__rollback(db);
    return rc;
}
