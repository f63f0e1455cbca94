/* Requests and the audit events that record them. Every change commits
 * together with its event; the event is appended under the chain lock so
 * the chain has one order, with no gaps and no forks. */
#include <inttypes.h>
#include <json-c/json.h>
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

#define EVENT_COLS AUDIT__REQ_EVENT_COLS

static void event_from_row(audit_event *e, PGresult *r, int row) {
    e->request_id = col_i64(r, row, 0, 0);
    e->env = col_str(r, row, 1);
    e->job = col_str(r, row, 2);
    e->from_image = col_str(r, row, 3);
    e->to_image = col_str(r, row, 4);
    e->nomad_job_version = col_i64(r, row, 5, -1);
    e->eval_id = col_str(r, row, 6);
    e->deployment_id = col_str(r, row, 7);
    e->phase = col_str(r, row, 8);
    e->reason = col_str(r, row, 9);
    e->platform = col_str(r, row, 10);
    e->team = col_str(r, row, 11);
    e->channel = col_str(r, row, 12);
    e->message_ref = col_str(r, row, 13);
    e->thread = col_str(r, row, 14);
    e->permalink = col_str(r, row, 15);
}

typedef audit__fill_fn fill_fn;

static const char INSERT_EVENT_SQL[] =
    "INSERT INTO audit_events (id, request_id, at, action, actor, person, outcome, from_state, to_state, phase,\n"
    "  reason, env, job, from_image, to_image, nomad_job_version, eval_id, deployment_id, detail, platform,\n"
    "  team, channel, message_ref, thread, permalink, enc_version, prev_hash, hash)\n"
    "VALUES ($1::bigint, $2::bigint,\n"
    "  timestamptz 'epoch' + ($3::bigint / 1000000) * interval '1 second'\n"
    "                      + ($3::bigint % 1000000) * interval '1 microsecond',\n"
    "  $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::bigint, $17, $18, $19, $20, $21, $22, $23,\n"
    "  $24, $25, $26::smallint, $27, $28)";

/* Text parameters of one event's INSERT; the strings live here. */
typedef struct event_params {
    char id_s[24], req_s[24], at_s[24], njv_s[24], ver_s[8];
    char prev[AUDIT_HASH_HEX_LEN + 1], hash[AUDIT_HASH_HEX_LEN + 1];
    const char *p[28];
} event_params;

static void event_params_fill(event_params *ep, const audit_event *e) {
    snprintf(ep->id_s, sizeof(ep->id_s), "%" PRId64, e->id);
    snprintf(ep->req_s, sizeof(ep->req_s), "%" PRId64, e->request_id);
    snprintf(ep->at_s, sizeof(ep->at_s), "%" PRId64, e->at_us);
    snprintf(ep->njv_s, sizeof(ep->njv_s), "%" PRId64, e->nomad_job_version);
    snprintf(ep->ver_s, sizeof(ep->ver_s), "%d", e->enc_version);
    const char *p[] = {ep->id_s,    e->request_id > 0 ? ep->req_s : NULL,
                       ep->at_s,    e->action,
                       e->actor,    e->person,
                       e->outcome,  e->from_state,
                       e->to_state, e->phase,
                       e->reason,   e->env,
                       e->job,      e->from_image,
                       e->to_image, e->nomad_job_version >= 0 ? ep->njv_s : NULL,
                       e->eval_id,  e->deployment_id,
                       e->detail,   e->platform,
                       e->team,     e->channel,
                       e->message_ref, e->thread,
                       e->permalink, ep->ver_s,
                       ep->prev,    ep->hash};
    memcpy(ep->p, p, sizeof(p));
}

#define MAX_EVENTS (1 + AUDIT_NOTES_MAX)

static const char *const chain_key[] = {AUDIT_LOCK_CHAIN};
static const char LOCK_SQL[] = "SELECT pg_advisory_xact_lock($1::bigint)";
static const char HEAD_SQL[] =
    "SELECT (extract(epoch FROM t.now) * 1000000)::bigint, h.id, h.hash\n"
    "FROM (SELECT clock_timestamp() AS now) t\n"
    "LEFT JOIN LATERAL (SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1) h ON true";

/* Fills evs[0..n-1] from row `row` of r with `fill`, numbers them from first_id, stamps
 * them at_us, chains and hashes them, and fills their INSERT parameters
 * (ep[0..n-1]) and statements (st[0..n-1]). ep[0].prev must hold the hash
 * they follow. */
static int chain_events(audit_db *db, fill_fn fill, PGresult *r, int row, audit_event *evs, int n,
                        int64_t first_id, int64_t at_us, event_params *ep, audit__stmt *st) {
    for (int i = 0; i < n; i++) {
        audit_event *e = &evs[i];
        fill(e, r, row);
        e->id = first_id + i;
        e->at_us = at_us;
        e->enc_version = AUDIT_ENC_VERSION;
        if (i > 0) memcpy(ep[i].prev, ep[i - 1].hash, sizeof(ep[i].prev));
        e->prev_hash = ep[i].prev;
        int crc = audit_canon_event_hash(e, ep[i].hash);
        if (crc != AUDIT_CANON_OK)
            return audit__fail(db, crc == AUDIT_CANON_NOMEM ? AUDIT_ERR_NOMEM : AUDIT_ERR_INVALID,
                               "cannot encode audit event: %s", audit_canon_strerror(crc));
        if (!st) continue;
        event_params_fill(&ep[i], e);
        st[i] = (audit__stmt){"appending the audit event", INSERT_EVENT_SQL, 28, ep[i].p};
    }
    return AUDIT_OK;
}

/* Runs `main` (an INSERT or UPDATE ... RETURNING the columns `fill` reads)
 * and appends evs[0..n-1], all in one transaction, in two round trips:
 *   1. BEGIN; main; take the chain lock; read the head and the clock
 *   2. INSERT each event; COMMIT
 * The chain lock is taken after the row change (whose row lock orders
 * racing movers of one request) and is held only from step 1's third
 * statement to the COMMIT: one round trip plus hashing. Reading the head in
 * a statement of its own after the lock gives it a snapshot that includes
 * the previous holder's commit.
 * If main returns no row, nothing is written and *no_row is set. */
static int write_alone(audit_db *db, const audit__stmt *main, fill_fn fill, audit_event *evs, int n, bool *no_row) {
    int rc;
    *no_row = false;
    if (!audit__conn(db, &rc)) return rc;
    const audit__stmt first[] = {
        {"BEGIN", "BEGIN", 0, NULL},
        *main,
        {"taking the audit chain lock", LOCK_SQL, 1, chain_key},
        {"reading the audit chain head", HEAD_SQL, 0, NULL},
    };
    PGresult *r1[4];
    rc = audit__pipeline(db, first, 4, r1);
    if (rc == AUDIT_OK && PQntuples(r1[1]) == 0) *no_row = true;
    if (rc || *no_row) {
        for (int i = 0; i < 4; i++) PQclear(r1[i]);
        audit__rollback(db);
        return rc;
    }
    PGresult *h = r1[3];
    int64_t at_us = col_i64(h, 0, 0, 0), head = col_i64(h, 0, 1, 0);
    event_params *ep = calloc((size_t)n, sizeof(*ep));
    if (!ep) {
        rc = audit__fail(db, AUDIT_ERR_NOMEM, "out of memory appending audit events");
        goto out;
    }
    snprintf(ep[0].prev, sizeof(ep[0].prev), "%s", col_null(h, 0, 2) ? AUDIT_GENESIS_HASH : PQgetvalue(h, 0, 2));
    audit__stmt second[MAX_EVENTS + 1];
    if ((rc = chain_events(db, fill, r1[1], 0, evs, n, head + 1, at_us, ep, second))) goto out;
    second[n] = (audit__stmt){"COMMIT", "COMMIT", 0, NULL};
    PGresult *r2[MAX_EVENTS + 1];
    rc = audit__pipeline(db, second, n + 1, r2);
    /* A COMMIT in a failed transaction "succeeds" as ROLLBACK. */
    if (rc == AUDIT_OK && strcmp(PQcmdStatus(r2[n]), "COMMIT") != 0)
        rc = audit__fail(db, AUDIT_ERR_SQL, "COMMIT: transaction was rolled back");
    for (int i = 0; i <= n; i++) PQclear(r2[i]);
out:
    free(ep);
    for (int i = 0; i < 4; i++) PQclear(r1[i]);
    if (rc) audit__rollback(db);
    return rc;
}

/* ---- group commit: one transaction for the writes of several threads ----
 *
 * docs/AUDIT.md, "Group commit". The batch runs on the leader's connection:
 *   1. BEGIN; SET LOCAL lock_timeout; for each write: SAVEPOINT oI; its main
 *      statement; then lock_timeout back to the default; the chain lock; the
 *      head and the clock — one round trip when every main returns its row.
 *   2. every event of every write, chained in order; COMMIT — one round trip.
 * A main that fails (a unique violation) or returns no row (a state guard)
 * is undone alone with ROLLBACK TO SAVEPOINT oI, which also undoes what
 * came after it in that round trip (the savepoints nest; the pipeline skips
 * the rest after an error): those writes are sent again, after it, in the
 * next round trip. So each write's row change is either in the transaction
 * with all its events or not at all, and it saw exactly the writes before it.
 *
 * lock_timeout: a main that waits for a row or index entry another
 * transaction holds may be waiting for another process's batch that waits
 * for one of ours — a deadlock that PostgreSQL would break only after
 * deadlock_timeout, by failing one write. Instead such a write leaves the
 * batch after a short wait and runs alone on its caller's connection, where
 * it waits as long as it must (no batch holds anything it waits for). */
#define BATCH_LOCK_WAIT_SQL "SET LOCAL lock_timeout = '50ms'"

/* The events of a batch travel as one JSON array per statement (json-c does
 * the escaping): one parse, one plan and one executor start for them all
 * instead of one per event. The times are computed as in INSERT_EVENT_SQL. */
static const char INSERT_EVENTS_JSON_SQL[] =
    "INSERT INTO audit_events (id, request_id, at, action, actor, person, outcome, from_state, to_state, phase,\n"
    "  reason, env, job, from_image, to_image, nomad_job_version, eval_id, deployment_id, detail, platform,\n"
    "  team, channel, message_ref, thread, permalink, enc_version, prev_hash, hash)\n"
    "SELECT id, request_id, timestamptz 'epoch' + (at_us / 1000000) * interval '1 second'\n"
    "                                           + (at_us % 1000000) * interval '1 microsecond',\n"
    "  action, actor, person, outcome, from_state, to_state, phase, reason, env, job, from_image, to_image,\n"
    "  nomad_job_version, eval_id, deployment_id, detail, platform, team, channel, message_ref, thread,\n"
    "  permalink, enc_version, prev_hash, hash\n"
    "FROM json_to_recordset($1::json) AS e(id bigint, request_id bigint, at_us bigint, action text, actor text,\n"
    "  person text, outcome text, from_state text, to_state text, phase text, reason text, env text, job text,\n"
    "  from_image text, to_image text, nomad_job_version bigint, eval_id text, deployment_id text, detail text,\n"
    "  platform text, team text, channel text, message_ref text, thread text, permalink text,\n"
    "  enc_version smallint, prev_hash text, hash text)";

/* Ceiling on one statement's JSON, estimated before escaping (which at most
 * sextuples a text); past it the batch's events go on in another statement. */
#define BATCH_JSON_MAX (1024 * 1024)

static const char *const event_json_keys[] = {"action",     "actor",         "person",        "outcome", "from_state",
                                              "to_state",   "phase",         "reason",        "env",     "job",
                                              "from_image", "to_image",      "eval_id",       "deployment_id",
                                              "detail",     "platform",      "team",          "channel",
                                              "message_ref", "thread",       "permalink"};
#define EVENT_JSON_TEXTS ((int)(sizeof(event_json_keys) / sizeof(event_json_keys[0])))

static void event_json_texts(const audit_event *e, const char *v[EVENT_JSON_TEXTS]) {
    const char *t[] = {e->action,   e->actor,    e->person,  e->outcome,     e->from_state, e->to_state,
                       e->phase,    e->reason,   e->env,     e->job,         e->from_image, e->to_image,
                       e->eval_id,  e->deployment_id, e->detail, e->platform, e->team,      e->channel,
                       e->message_ref, e->thread, e->permalink};
    memcpy(v, t, sizeof(t));
}

static size_t event_json_estimate(const audit_event *e) {
    const char *v[EVENT_JSON_TEXTS];
    event_json_texts(e, v);
    size_t n = 512;
    for (int i = 0; i < EVENT_JSON_TEXTS; i++)
        if (v[i]) n += strlen(v[i]);
    return n;
}

/* One event as a JSON object with the keys INSERT_EVENTS_JSON_SQL reads;
 * NULL texts and integers stay out (json_to_recordset reads them as NULL). */
static json_object *event_json(const audit_event *e, const char *hash) {
    json_object *o = json_object_new_object();
    if (!o) return NULL;
    const char *v[EVENT_JSON_TEXTS];
    event_json_texts(e, v);
    int bad = json_object_object_add(o, "id", json_object_new_int64(e->id));
    if (e->request_id > 0) bad |= json_object_object_add(o, "request_id", json_object_new_int64(e->request_id));
    bad |= json_object_object_add(o, "at_us", json_object_new_int64(e->at_us));
    if (e->nomad_job_version >= 0)
        bad |= json_object_object_add(o, "nomad_job_version", json_object_new_int64(e->nomad_job_version));
    bad |= json_object_object_add(o, "enc_version", json_object_new_int(e->enc_version));
    bad |= json_object_object_add(o, "prev_hash", json_object_new_string(e->prev_hash));
    bad |= json_object_object_add(o, "hash", json_object_new_string(hash));
    for (int i = 0; i < EVENT_JSON_TEXTS; i++)
        if (v[i]) bad |= json_object_object_add(o, event_json_keys[i], json_object_new_string(v[i]));
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

enum batch_state { B_OPEN = 0, B_ROW, B_NOROW, B_FAILED, B_ALONE };

typedef struct batch_slot {
    int state;
    PGresult *res;      /* B_ROW: the main's row, owned until the batch ends... */
    int row;            /* ...as row `row`; or of the batch's shared multi-row result */
} batch_slot;

/* A failure of the batch itself (not of one write's main). On a lost
 * connection every write fails (the commit's fate is the caller's to find
 * out, as for a write of its own); otherwise nothing was committed and each
 * write runs again alone, so the write that caused it gets its own error. */
static void batch_fail(audit_db *db, audit__op **ops, int m, int rc) {
    PGconn *c = db->conn;
    bool lost = rc == AUDIT_ERR_CONNECT || !c || PQstatus(c) != CONNECTION_OK;
    for (int i = 0; i < m; i++) {
        audit__op *o = ops[i];
        o->no_row = false;
        o->alone = !lost;
        o->rc = lost ? AUDIT_ERR_CONNECT : AUDIT_OK;
        if (lost) {
            snprintf(o->errstr, sizeof(o->errstr), "%s%s", i == 0 ? "" : "group commit: ", db->errstr);
            memcpy(o->sqlstate, db->sqlstate, sizeof(o->sqlstate));
        }
    }
    audit__rollback(db);
}

/* A batch whose writes all share one audit__multi sends their mains as one
 * statement: one executor start, one set of CHECK expressions and
 * triggers, no savepoints (docs/AUDIT.md, "Group commit"). Its parameters
 * are text[] literals, at most this many bytes in all; a larger batch goes
 * the one-statement-per-write way. */
#define BATCH_MULTI_MAX (1024 * 1024)
#define MULTI_PARAMS_MAX 32
#define MULTI_FALLBACK 1000     /* not an audit code: "run the batch one statement per write" */

/* Whether ops[0..m-1] can run their mains as one statement. */
static bool multi_applies(audit__op **ops, int m) {
    const audit__multi *mu = ops[0]->multi;
    if (m < 2 || !mu || mu->nparams > MULTI_PARAMS_MAX) return false;
    for (int i = 0; i < m; i++)
        if (ops[i]->multi != mu || ops[i]->main->nparams != mu->nparams) return false;
    return true;
}

/* The text[] literals of the multi statement, p[k] holding every write's
 * parameter k: {"v1",NULL,"v\"3"}. One allocation, the caller's to free;
 * NULL when over BATCH_MULTI_MAX or out of memory. */
static char *multi_params(audit__op **ops, int m, int np, const char **p) {
    size_t size = 0;
    for (int k = 0; k < np; k++) {
        size += 3; /* { } NUL */
        for (int i = 0; i < m && size <= BATCH_MULTI_MAX; i++) {
            const char *v = ops[i]->main->params[k];
            size += v ? 3 + 2 * strlen(v) : 5; /* quotes, escapes, comma; NULL, comma */
        }
    }
    if (size > BATCH_MULTI_MAX) return NULL;
    char *buf = malloc(size), *w = buf;
    if (!buf) return NULL;
    for (int k = 0; k < np; k++) {
        p[k] = w;
        *w++ = '{';
        for (int i = 0; i < m; i++) {
            const char *v = ops[i]->main->params[k];
            if (i > 0) *w++ = ',';
            if (!v) {
                memcpy(w, "NULL", 4);
                w += 4;
                continue;
            }
            *w++ = '"';
            for (; *v; v++) {
                if (*v == '"' || *v == '\\') *w++ = '\\';
                *w++ = *v;
            }
            *w++ = '"';
        }
        *w++ = '}';
        *w++ = '\0';
    }
    return buf;
}

/* Round trip 1 with the mains as one statement: BEGIN; the lock wait; the
 * multi statement; the default lock wait; the chain lock; the head.
 * AUDIT_OK with the slots set (rows of *mres), *mres and *head (both owned);
 * MULTI_FALLBACK when it could not be built or any statement failed (a
 * unique violation, a lock wait over 50 ms...): the transaction is rolled
 * back and the batch runs one statement per write, where each write gets
 * its own answer; AUDIT_ERR_CONNECT when the connection is lost. */
static int batch_mains_multi(audit_db *db, audit__op **ops, int m, batch_slot *sl, PGresult **mres,
                             PGresult **head) {
    const audit__multi *mu = ops[0]->multi;
    const char *p[MULTI_PARAMS_MAX];
    *mres = *head = NULL;
    char *buf = multi_params(ops, m, mu->nparams, p);
    if (!buf) return MULTI_FALLBACK;
    const audit__stmt st[] = {
        {"BEGIN", "BEGIN", 0, NULL},
        {"setting the lock wait", BATCH_LOCK_WAIT_SQL, 0, NULL},
        {ops[0]->main->what, mu->sql, mu->nparams, p},
        {"resetting the lock wait", "SET LOCAL lock_timeout TO DEFAULT", 0, NULL},
        {"taking the audit chain lock", LOCK_SQL, 1, chain_key},
        {"reading the audit chain head", HEAD_SQL, 0, NULL},
    };
    enum { N = sizeof(st) / sizeof(st[0]) };
    PGresult *res[N];
    int rc = audit__pipeline(db, st, N, res);
    free(buf);
    PGconn *c = db->conn;
    if (rc != AUDIT_OK && (rc == AUDIT_ERR_CONNECT || !c || PQstatus(c) != CONNECTION_OK)) goto out;
    for (int j = 0; rc == AUDIT_OK && j < N; j++)
        if (!res[j]) rc = MULTI_FALLBACK;
    if (rc != AUDIT_OK) {
        rc = MULTI_FALLBACK;
        goto out;
    }
    /* Rows come in write order, each naming its write; a write without one
     * returned no row (a repeated idempotency key). */
    PGresult *r = res[2];
    int nf = PQnfields(r), rows = PQntuples(r);
    for (int i = 0; i < m; i++) sl[i] = (batch_slot){.state = B_NOROW};
    for (int row = 0, last = 0; row < rows; row++) {
        long ord = nf > 0 && !PQgetisnull(r, row, nf - 1) ? strtol(PQgetvalue(r, row, nf - 1), NULL, 10) : 0;
        if (ord <= last || ord > m) {
            rc = MULTI_FALLBACK; /* not the promised shape: trust the slow way */
            goto out;
        }
        sl[ord - 1] = (batch_slot){.state = B_ROW, .row = row};
        last = (int)ord;
    }
    *mres = res[2];
    *head = res[5];
    res[2] = res[5] = NULL;
out:
    for (int j = 0; j < N; j++) PQclear(res[j]);
    if (rc == MULTI_FALLBACK) audit__rollback(db);
    return rc;
}

/* Round trip 1, repeated after each write that fails or finds no row.
 * Returns AUDIT_OK with *head (owned) when every main is settled and the
 * chain lock is held; otherwise the batch failure's code. */
static int batch_mains(audit_db *db, audit__op **ops, int m, batch_slot *sl, char (*sp)[32], char *rb,
                       audit__stmt *st, PGresult **res, PGresult **head) {
    int start = 0, undo = -1, rc = AUDIT_OK;
    *head = NULL;
    for (bool begun = false;; begun = true) {
        int k = 0;
        if (!begun) {
            st[k++] = (audit__stmt){"BEGIN", "BEGIN", 0, NULL};
            st[k++] = (audit__stmt){"setting the lock wait", BATCH_LOCK_WAIT_SQL, 0, NULL};
        } else if (undo >= 0) {
            snprintf(rb, 48, "ROLLBACK TO SAVEPOINT o%d", undo);
            st[k++] = (audit__stmt){"undoing one write", rb, 0, NULL};
        }
        int first = k;
        for (int i = start; i < m; i++) {
            st[k++] = (audit__stmt){"opening a savepoint", sp[i], 0, NULL};
            st[k++] = *ops[i]->main;
        }
        st[k++] = (audit__stmt){"resetting the lock wait", "SET LOCAL lock_timeout TO DEFAULT", 0, NULL};
        st[k++] = (audit__stmt){"taking the audit chain lock", LOCK_SQL, 1, chain_key};
        st[k++] = (audit__stmt){"reading the audit chain head", HEAD_SQL, 0, NULL};
        rc = audit__pipeline(db, st, k, res);
        PGconn *c = db->conn;
        if (rc != AUDIT_OK && (rc == AUDIT_ERR_CONNECT || !c || PQstatus(c) != CONNECTION_OK)) goto fail;
        for (int j = 0; j < first; j++)
            if (!res[j]) goto fail_sql;
        int bad = -1;
        for (int i = start; i < m && bad < 0; i++) {
            int j = first + 2 * (i - start);
            if (!res[j]) goto fail_sql;
            audit__op *o = ops[i];
            if (!res[j + 1]) {
                /* This main is the pipeline's first failure: errstr is its own. */
                bool wait = strcmp(db->sqlstate, "55P03") == 0 || strcmp(db->sqlstate, "40P01") == 0;
                sl[i].state = wait ? B_ALONE : B_FAILED;
                o->rc = rc != AUDIT_OK ? rc : AUDIT_ERR_SQL;
                snprintf(o->errstr, sizeof(o->errstr), "%s", db->errstr);
                memcpy(o->sqlstate, db->sqlstate, sizeof(o->sqlstate));
                bad = i;
            } else if (PQntuples(res[j + 1]) == 0) {
                sl[i].state = B_NOROW;
                bad = i;
            } else {
                sl[i].state = B_ROW;
                sl[i].res = res[j + 1];
                res[j + 1] = NULL;
            }
        }
        if (bad < 0 && (!res[k - 2] || !res[k - 1])) goto fail_sql;
        if (bad < 0) {
            *head = res[k - 1];
            res[k - 1] = NULL;
        }
        for (int j = 0; j < k; j++) {
            PQclear(res[j]);
            res[j] = NULL;
        }
        if (bad < 0) return AUDIT_OK;
        undo = bad;
        start = bad + 1;
    }
fail_sql:
    if (rc == AUDIT_OK) rc = audit__fail(db, AUDIT_ERR_SQL, "group commit: a statement of the batch failed");
fail:
    for (int j = 0; j < 2 * m + 8; j++) {
        PQclear(res[j]);
        res[j] = NULL;
    }
    return rc;
}

int audit__batch_run(audit_db *db, audit__op **ops, int m) {
    for (int i = 0; i < m; i++) {
        ops[i]->rc = AUDIT_OK;
        ops[i]->no_row = ops[i]->alone = false;
        ops[i]->errstr[0] = ops[i]->sqlstate[0] = '\0';
    }
    if (m == 1) {
        /* Nobody to share with: the plain path, on the op's own connection. */
        audit__op *o = ops[0];
        o->rc = write_alone(db, o->main, o->fill, o->evs, o->n, &o->no_row);
        snprintf(o->errstr, sizeof(o->errstr), "%s", db->errstr);
        memcpy(o->sqlstate, db->sqlstate, sizeof(o->sqlstate));
        return AUDIT__BATCH_EACH;
    }
    int rc, how = AUDIT__BATCH_EACH;
    batch_slot *sl = calloc((size_t)m, sizeof(*sl));
    char(*sp)[32] = calloc((size_t)m, sizeof(*sp));
    audit__stmt *st = calloc((size_t)(2 * m + 8), sizeof(*st));
    PGresult **res = calloc((size_t)(2 * m + 8), sizeof(*res));
    event_params *ep = NULL;
    audit__stmt *st2 = NULL;
    PGresult **res2 = NULL, *head = NULL, *mres = NULL;
    json_object **chunks = NULL;   /* one JSON array of events per INSERT statement */
    const char **params = NULL;    /* their texts, owned by chunks */
    char rb[48];
    int total = 0, nchunks = 0;
    if (!sl || !sp || !st || !res) {
        rc = audit__fail(db, AUDIT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!audit__conn(db, &rc)) goto fail;
    rc = MULTI_FALLBACK;
    if (multi_applies(ops, m)) {
        rc = batch_mains_multi(db, ops, m, sl, &mres, &head);
        how = rc == MULTI_FALLBACK ? AUDIT__BATCH_FELL_BACK
              : rc == AUDIT_OK     ? AUDIT__BATCH_MULTI
                                   : AUDIT__BATCH_EACH;
    }
    if (rc == MULTI_FALLBACK) {
        memset(sl, 0, (size_t)m * sizeof(*sl));
        for (int i = 0; i < m; i++) snprintf(sp[i], sizeof(sp[i]), "SAVEPOINT o%d", i);
        rc = batch_mains(db, ops, m, sl, sp, rb, st, res, &head);
    }
    if (rc) goto fail;

    for (int i = 0; i < m; i++)
        if (sl[i].state == B_ROW) total += ops[i]->n;
    if (total == 0) {
        audit__rollback(db); /* nothing to write; let go of the chain lock */
        goto done;
    }
    ep = calloc((size_t)total, sizeof(*ep));
    chunks = calloc((size_t)total, sizeof(*chunks));
    params = calloc((size_t)total, sizeof(*params));
    st2 = calloc((size_t)total + 1, sizeof(*st2));
    res2 = calloc((size_t)total + 1, sizeof(*res2));
    if (!ep || !chunks || !params || !st2 || !res2) {
        rc = audit__fail(db, AUDIT_ERR_NOMEM, "out of memory appending audit events");
        goto fail;
    }
    int64_t at_us = col_i64(head, 0, 0, 0), next_id = col_i64(head, 0, 1, 0) + 1;
    snprintf(ep[0].prev, sizeof(ep[0].prev), "%s", col_null(head, 0, 2) ? AUDIT_GENESIS_HASH : PQgetvalue(head, 0, 2));
    int k = 0;
    size_t size = 0;
    for (int i = 0; i < m; i++) {
        if (sl[i].state != B_ROW) continue;
        audit__op *o = ops[i];
        if (k > 0) memcpy(ep[k].prev, ep[k - 1].hash, sizeof(ep[k].prev));
        PGresult *r = sl[i].res ? sl[i].res : mres;
        if ((rc = chain_events(db, o->fill, r, sl[i].row, o->evs, o->n, next_id, at_us, ep + k, NULL))) goto fail;
        for (int j = 0; j < o->n; j++) {
            /* A new statement when the current one's JSON would pass the ceiling. */
            size_t est = event_json_estimate(&o->evs[j]);
            if (nchunks == 0 || size + est > BATCH_JSON_MAX) {
                if (!(chunks[nchunks++] = json_object_new_array())) goto nomem;
                size = 0;
            }
            json_object *jo = event_json(&o->evs[j], ep[k + j].hash);
            if (!jo || json_object_array_add(chunks[nchunks - 1], jo) != 0) {
                json_object_put(jo);
                goto nomem;
            }
            size += est;
        }
        next_id += o->n;
        k += o->n;
    }
    for (int c = 0; c < nchunks; c++) {
        params[c] = json_object_to_json_string_ext(chunks[c], JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!params[c]) goto nomem;
        st2[c] = (audit__stmt){"appending the audit events", INSERT_EVENTS_JSON_SQL, 1, &params[c]};
    }
    st2[nchunks] = (audit__stmt){"COMMIT", "COMMIT", 0, NULL};
    rc = audit__pipeline(db, st2, nchunks + 1, res2);
    if (rc == AUDIT_OK && strcmp(PQcmdStatus(res2[nchunks]), "COMMIT") != 0)
        rc = audit__fail(db, AUDIT_ERR_SQL, "COMMIT: transaction was rolled back");
    for (int i = 0; i <= nchunks; i++) PQclear(res2[i]);
    if (rc) goto fail;
done:
    for (int i = 0; i < m; i++) {
        audit__op *o = ops[i];
        o->no_row = sl[i].state == B_NOROW;
        o->alone = sl[i].state == B_ALONE;
        if (sl[i].state != B_FAILED) {
            o->rc = AUDIT_OK;
            o->errstr[0] = o->sqlstate[0] = '\0';
        }
    }
    goto out;
nomem:
    rc = audit__fail(db, AUDIT_ERR_NOMEM, "out of memory appending audit events");
fail:
    batch_fail(db, ops, m, rc);
out:
    for (int c = 0; c < nchunks; c++) json_object_put(chunks[c]);
    free(chunks);
    free(params);
    if (sl)
        for (int i = 0; i < m; i++) PQclear(sl[i].res);
    PQclear(head);
    PQclear(mres);
    free(sl);
    free(sp);
    free(st);
    free(res);
    free(ep);
    free(st2);
    free(res2);
    return how;
}

/* Every chained write comes here: through the appender when one is
 * attached, else alone as always. */
static int write_with_events_multi(audit_db *db, const audit__stmt *main, const audit__multi *multi, fill_fn fill,
                                   audit_event *evs, int n, bool *no_row) {
    *no_row = false;
    if (n < 1 || n > MAX_EVENTS)
        return audit__fail(db, AUDIT_ERR_INVALID, "1 to %d events per transaction", MAX_EVENTS);
    if (!db->appender) return write_alone(db, main, fill, evs, n, no_row);
    PGconn *c = db->conn;
    audit__op op = {.main = main, .multi = multi, .fill = fill, .evs = evs, .n = n,
                    .can_lead = c && PQstatus(c) == CONNECTION_OK};
    audit__appender_run(db->appender, db, &op);
    if (op.alone) return write_alone(db, main, fill, evs, n, no_row);
    *no_row = op.no_row;
    snprintf(db->errstr, sizeof(db->errstr), "%s", op.errstr);
    memcpy(db->sqlstate, op.sqlstate, sizeof(db->sqlstate));
    return op.rc;
}

static int write_with_events(audit_db *db, const audit__stmt *main, fill_fn fill, audit_event *evs, int n,
                             bool *no_row) {
    return write_with_events_multi(db, main, NULL, fill, evs, n, no_row);
}

void audit__event_from_request(audit_event *e, PGresult *r, int row) { event_from_row(e, r, row); }

int audit__write_with_events(audit_db *db, const audit__stmt *main, audit__fill_fn fill, audit_event *evs, int n,
                             bool *no_row) {
    return write_with_events(db, main, fill, evs, n, no_row);
}

/* audit_request_create's INSERT for a whole batch (audit__multi): the
 * requests in the batch's order, ids drawn before the INSERT so that each
 * returned row can be tied to its write (RETURNING sees only the table's
 * columns). A repeated idempotency key, in the table or earlier in the
 * batch, returns no row, as the one-row INSERT does. */
static const audit__multi CREATE_MULTI = {
    "WITH s AS MATERIALIZED (\n"
    "  SELECT nextval('requests_id_seq') AS id, u.*\n"
    "  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],\n"
    "              $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],\n"
    "              $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[],\n"
    "              $23::text[]) WITH ORDINALITY\n"
    "    AS u(idem_key, kind, state, env, job, version, to_image, canary, user_reason, actor, person, platform, team,\n"
    "         channel, message_ref, thread, permalink, route, emergency, required_approvals, policy_hash,\n"
    "         bound_image, from_env, ord)),\n"
    "i AS (\n"
    "  INSERT INTO requests (id, idem_key, kind, state, env, job, version, to_image, canary, user_reason, actor,\n"
    "    person, platform, team, channel, message_ref, thread, permalink, route, emergency, required_approvals,\n"
    "    policy_hash, bound_image, from_env)\n"
    "  SELECT id, idem_key, kind, state, env, job, version, to_image, canary::integer, user_reason, actor, person,\n"
    "    platform, team, channel, message_ref, thread, permalink, route, emergency, required_approvals::integer,\n"
    "    policy_hash, bound_image, from_env\n"
    "  FROM s ORDER BY ord\n"
    "  ON CONFLICT (idem_key) DO NOTHING\n"
    "  RETURNING " EVENT_COLS ")\n"
    "SELECT i.*, s.ord FROM i JOIN s ON s.id = i.id ORDER BY s.ord",
    23};

static const char OPEN_SAME_JOB_SQL[] =
    "SELECT id FROM requests WHERE env = $1 AND job = $2 AND required_approvals > 0\n"
    "  AND state IN ('pending_approval', 'approved', 'queued', 'running') ORDER BY id LIMIT 1";

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
    /* Governance facts are read back into fixed buffers (audit_facts): refuse
     * here what could not be read back whole. */
    if (r->required_approvals < 0 || r->required_approvals > AUDIT_APPROVALS_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "required_approvals must be 0 to %d", AUDIT_APPROVALS_MAX);
    if (r->emergency && strlen(r->emergency) > AUDIT_REASON_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "emergency is longer than %d bytes", AUDIT_REASON_MAX);
    if (r->bound_image && strlen(r->bound_image) > AUDIT_BOUND_IMAGE_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "bound_image is longer than %d bytes", AUDIT_BOUND_IMAGE_MAX);
    if (r->from_env && strlen(r->from_env) > AUDIT_NAME_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "from_env is longer than %d bytes", AUDIT_NAME_MAX);
    if (!audit__conn(db, &rc)) return rc;

    char canary_s[16], req_s[16], hash_s[24];
    snprintf(canary_s, sizeof(canary_s), "%d", r->canary);
    snprintf(req_s, sizeof(req_s), "%d", r->required_approvals);
    snprintf(hash_s, sizeof(hash_s), "%016" PRIx64, r->policy_hash);
    const char *p[] = {r->idem_key, r->kind,        r->state,  r->env,      r->job,     r->version ? r->version : "",
                       r->to_image ? r->to_image : "", canary_s, r->user_reason, r->actor, r->person, o->platform,
                       o->team,     o->channel,     o->message_ref, o->thread, o->permalink, o->route,
                       nz(r->emergency), req_s, r->policy_hash ? hash_s : NULL, nz(r->bound_image), nz(r->from_env)};
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
    audit__stmt ins = {"inserting the request",
                       "INSERT INTO requests (idem_key, kind, state, env, job, version, to_image, canary, user_reason,\n"
                       "  actor, person, platform, team, channel, message_ref, thread, permalink, route,\n"
                       "  emergency, required_approvals, policy_hash, bound_image, from_env)\n"
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,\n"
                       "  $19, $20::integer, $21, $22, $23)\n"
                       "ON CONFLICT (idem_key) DO NOTHING\n"
                       "RETURNING " EVENT_COLS,
                       (int)(sizeof(p) / sizeof(p[0])), p};
    char need[64];
    snprintf(need, sizeof(need), "needs %d approvals", r->required_approvals);
    audit_event e[2] = {
        {.action = "request.created", .actor = r->actor, .person = r->person, .outcome = r->state,
         .to_state = r->state, .detail = r->user_reason},
        /* Break-glass is flagged in the chain, not only in a column. */
        {.action = "request.emergency", .actor = r->actor, .person = r->person, .outcome = need,
         .from_state = r->state, .to_state = r->state, .detail = r->emergency},
    };
    bool no_row = false;
    for (int attempt = 0;; attempt++) {
        rc = write_with_events_multi(db, &ins, &CREATE_MULTI, event_from_row, e, nz(r->emergency) ? 2 : 1, &no_row);
        if (rc != AUDIT_OK && r->required_approvals > 0 && audit__unique_violation(db, "requests_one_open_idx")) {
            /* SPEC §6: one open request per (env, job) where approvals are
             * required. Name the open one; if it closed meanwhile, try again once. */
            const char *q[] = {r->env, r->job};
            int qrc = audit__exec(db, "looking up the open request", OPEN_SAME_JOB_SQL, 2, q, &res);
            if (qrc) return qrc;
            int64_t open = PQntuples(res) == 1 ? col_i64(res, 0, 0, 0) : 0;
            PQclear(res);
            if (open == 0 && attempt == 0) continue;
            if (id_out) *id_out = open;
            return audit__fail(db, AUDIT_ERR_EXISTS, "D-%" PRId64 " is already open for %.64s in %.64s", open,
                               r->job, r->env);
        }
        break;
    }
    if (rc) return rc;
    if (no_row) {
        /* The key was seen before (committed by a racing transaction we
         * waited for on the unique index): report that request. */
        const char *k[] = {r->idem_key};
        if ((rc = audit__exec(db, "looking up the idempotency key", "SELECT id FROM requests WHERE idem_key = $1", 1,
                              k, &res)))
            return rc;
        if (PQntuples(res) != 1) {
            PQclear(res);
            return audit__fail(db, AUDIT_ERR_SQL, "idempotency key conflicted but no request holds it");
        }
        if (id_out) *id_out = col_i64(res, 0, 0, 0);
        if (existed) *existed = true;
        PQclear(res);
        db->errstr[0] = '\0';
        return AUDIT_OK;
    }
    if (id_out) *id_out = e[0].request_id;
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

#define REQUEST_COLS                                                                                            \
    "id, kind, state, phase, reason, env, job, version, to_image, from_image, canary, actor, person, platform,"  \
    " channel, route, nomad_job_version, eval_id, deployment_id, detail,"                                       \
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                             \
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static void copy_col(char *dst, size_t n, PGresult *r, int col) {
    snprintf(dst, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/* Row 0 of r (REQUEST_COLS) into out. Columns longer than the struct's
 * buffers are truncated (display only). */
static void request_read(PGresult *r, audit_request *out) {
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
    request_read(r, out);
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

int audit_request_transition(audit_db *db, int64_t id, const audit_transition *t) {
    return audit_request_transition_notes(db, id, t, NULL, 0);
}

int audit_request_transition_notes(audit_db *db, int64_t id, const audit_transition *t, const audit_note *notes,
                                   size_t n) {
    int rc;
    if (!t || !nz(t->from_state) || !nz(t->to_state) || !nz(t->action) || !nz(t->actor))
        return audit__fail(db, AUDIT_ERR_INVALID, "a transition needs from_state, to_state, action and actor");
    if (!state_valid(t->from_state) || !state_valid(t->to_state))
        return audit__fail(db, AUDIT_ERR_INVALID, "'%.32s' is not a request state",
                           state_valid(t->from_state) ? t->to_state : t->from_state);
    if (n > AUDIT_NOTES_MAX || (n > 0 && !notes))
        return audit__fail(db, AUDIT_ERR_INVALID, "at most %d notes per transition", AUDIT_NOTES_MAX);
    if (id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", id);
    static const char *const names[] = {"phase",  "reason",     "action",  "actor",         "person",
                                        "outcome", "detail",    "from_image", "eval_id", "deployment_id"};
    const char *const vals[] = {t->phase,   t->reason, t->action,     t->actor,   t->person,
                                t->outcome, t->detail, t->from_image, t->eval_id, t->deployment_id};
    const char *bad = too_long(names, vals, (int)(sizeof(vals) / sizeof(vals[0])));
    if (bad) return audit__fail(db, AUDIT_ERR_INVALID, "%s is longer than %d bytes", bad, AUDIT_FIELD_MAX);
    audit_event evs[MAX_EVENTS];
    memset(evs, 0, sizeof(evs));
    evs[0] = (audit_event){
        .action = t->action, .actor = t->actor, .person = t->person, .outcome = t->outcome,
        .from_state = t->from_state, .to_state = t->to_state, .detail = t->detail,
    };
    for (size_t i = 0; i < n; i++) {
        const audit_note *no = &notes[i];
        static const char *const nnames[] = {"note action", "note actor", "note person", "note outcome",
                                             "note detail"};
        const char *const nvals[] = {no->action, no->actor, no->person, no->outcome, no->detail};
        if (!nz(no->action)) return audit__fail(db, AUDIT_ERR_INVALID, "note %zu has no action", i + 1);
        if ((bad = too_long(nnames, nvals, 5)))
            return audit__fail(db, AUDIT_ERR_INVALID, "%s is longer than %d bytes", bad, AUDIT_FIELD_MAX);
        evs[1 + i] = (audit_event){
            .action = no->action, .actor = nz(no->actor) ? no->actor : t->actor, .person = no->person,
            .outcome = no->outcome, .from_state = t->to_state, .to_state = t->to_state, .detail = no->detail,
        };
    }

    char id_s[24], njv_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, id);
    snprintf(njv_s, sizeof(njv_s), "%" PRId64, t->nomad_job_version);
    const char *p[] = {id_s,    t->from_state, t->to_state,       t->phase,
                       t->reason, t->from_image, t->eval_id,      t->deployment_id,
                       t->nomad_job_version >= 0 ? njv_s : NULL, t->detail};
    /* The WHERE on state is the guard: two workers racing on one request
     * cannot both move it, and a stale caller gets AUDIT_ERR_STATE. */
    audit__stmt upd = {"updating the request",
                       "UPDATE requests SET state = $3,\n"
                       "  phase = COALESCE($4, phase), reason = COALESCE($5, reason),\n"
                       "  from_image = COALESCE($6, from_image), eval_id = COALESCE($7, eval_id),\n"
                       "  deployment_id = COALESCE($8, deployment_id),\n"
                       "  nomad_job_version = COALESCE($9::bigint, nomad_job_version),\n"
                       "  detail = COALESCE($10, detail), updated_at = now()\n"
                       "WHERE id = $1::bigint AND state = $2\n"
                       "RETURNING " EVENT_COLS,
                       (int)(sizeof(p) / sizeof(p[0])), p};
    bool no_row = false;
    rc = write_with_events(db, &upd, event_from_row, evs, 1 + (int)n, &no_row);
    if (rc) return rc;
    if (no_row) {
        PGresult *res = NULL;
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
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* Only the request's id, env and job: a message event carries the
 * message's own platform, channel and ts, not the request's origin. */
static void fill_message(audit_event *e, PGresult *r, int row) {
    e->request_id = col_i64(r, row, 0, 0);
    e->env = col_str(r, row, 1);
    e->job = col_str(r, row, 2);
    e->nomad_job_version = -1;
}

int audit_message_record(audit_db *db, int64_t request_id, const audit_origin *msg, const char *direction,
                         const char *actor) {
    if (!msg || !nz(msg->platform) || !nz(msg->message_ref))
        return audit__fail(db, AUDIT_ERR_INVALID, "a message needs a platform and a message reference");
    if (!direction || (strcmp(direction, "in") != 0 && strcmp(direction, "out") != 0))
        return audit__fail(db, AUDIT_ERR_INVALID, "direction is \"in\" or \"out\"");
    if (request_id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", request_id);
    static const char *const names[] = {"platform", "team", "channel", "message_ref", "thread", "permalink", "actor"};
    const char *const vals[] = {msg->platform, msg->team, msg->channel, msg->message_ref, msg->thread, msg->permalink,
                                actor};
    const char *bad = too_long(names, vals, 7);
    if (bad) return audit__fail(db, AUDIT_ERR_INVALID, "%s is longer than %d bytes", bad, AUDIT_FIELD_MAX);
    /* message_ref and permalink sit in btree indexes, whose entries must stay small. */
    if (strlen(msg->message_ref) > AUDIT_REF_MAX || (msg->permalink && strlen(msg->permalink) > AUDIT_REF_MAX))
        return audit__fail(db, AUDIT_ERR_INVALID, "message_ref and permalink are at most %d bytes", AUDIT_REF_MAX);
    char id_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, request_id);
    const char *p[] = {id_s, direction, msg->platform, msg->team, msg->channel, msg->message_ref, msg->thread,
                       msg->permalink};
    audit__stmt ins = {"recording the message",
                       "WITH r AS (SELECT id, env, job FROM requests WHERE id = $1::bigint),\n"
                       "m AS (INSERT INTO audit_messages (request_id, direction, platform, team, channel, message_ref,\n"
                       "        thread, permalink)\n"
                       "      SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM r RETURNING request_id)\n"
                       "SELECT r.id, r.env, r.job FROM r JOIN m ON m.request_id = r.id",
                       8, p};
    audit_event e = {
        .action = strcmp(direction, "in") == 0 ? "message.in" : "message.out",
        .actor = nz(actor) ? actor : "nomatron", .platform = msg->platform, .team = msg->team,
        .channel = msg->channel, .message_ref = msg->message_ref, .thread = msg->thread,
        .permalink = msg->permalink,
    };
    bool no_row = false;
    int rc = write_with_events(db, &ins, fill_message, &e, 1, &no_row);
    if (rc) return rc;
    if (no_row) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", request_id);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

typedef struct history_ctx {
    audit_request_cb cb;
    void *arg;
    audit_request req;
} history_ctx;

static int history_row(PGresult *r, void *arg) {
    history_ctx *x = arg;
    memset(&x->req, 0, sizeof(x->req));
    request_read(r, &x->req);
    return x->cb(&x->req, x->arg);
}

int audit_history(audit_db *db, const char *job, const char *env, int limit, audit_request_cb cb, void *arg) {
    if (!nz(job) || !cb) return audit__fail(db, AUDIT_ERR_INVALID, "history needs a job");
    if (limit < 1 || limit > AUDIT_HISTORY_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "history shows 1 to %d requests", AUDIT_HISTORY_MAX);
    char lim_s[16];
    snprintf(lim_s, sizeof(lim_s), "%d", limit);
    const char *p[] = {job, nz(env), lim_s};
    history_ctx *x = malloc(sizeof(*x)); /* audit_request is a few kB: keep it off small stacks */
    if (!x) return audit__fail(db, AUDIT_ERR_NOMEM, "out of memory");
    x->cb = cb;
    x->arg = arg;
    int rc = audit__stream(db, "reading the history",
                           "SELECT " REQUEST_COLS " FROM requests\n"
                           "WHERE job = $1 AND ($2::text IS NULL OR env = $2) ORDER BY id DESC LIMIT $3::integer",
                           3, p, history_row, x);
    free(x);
    if (rc == AUDIT_OK) db->errstr[0] = '\0';
    return rc;
}
