/* Connection handling, error text and the small statement helpers the rest
 * of audit/ is built on. Every statement goes through audit__exec(): values
 * travel as parameters, never inside SQL text. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

const char *audit_strerror(int code) {
    switch (code) {
    case AUDIT_OK: return "ok";
    case AUDIT_ERR_CONNECT: return "cannot reach PostgreSQL";
    case AUDIT_ERR_SQL: return "database statement failed";
    case AUDIT_ERR_NOT_FOUND: return "no such request";
    case AUDIT_ERR_STATE: return "the request is not in the expected state";
    case AUDIT_ERR_SCHEMA: return "database schema does not match this build (run nomatron migrate)";
    case AUDIT_ERR_BROKEN: return "audit hash chain is broken";
    case AUDIT_ERR_INVALID: return "invalid argument";
    case AUDIT_ERR_NOMEM: return "out of memory";
    case AUDIT_ERR_IO: return "file read or write failed";
    case AUDIT_ERR_EXISTS: return "an open request already exists";
    }
    return "unknown audit error";
}

/* libpq messages end in newlines and may span lines: one line reads better in logs. */
static void set_errstr_oneline(audit_db *db, const char *prefix, const char *msg) {
    char tmp[sizeof(db->errstr)];
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < sizeof(tmp); p++) {
        if (*p == '\n' || *p == '\r') {
            if (p[1] && n + 2 < sizeof(tmp) && n > 0) {
                tmp[n++] = ';';
                tmp[n++] = ' ';
            }
            continue;
        }
        tmp[n++] = *p;
    }
    tmp[n] = '\0';
    while (n > 0 && (tmp[n - 1] == ' ' || tmp[n - 1] == ';')) tmp[--n] = '\0';
    snprintf(db->errstr, sizeof(db->errstr), "%s%s", prefix, tmp[0] ? tmp : "unknown error");
}

int audit__fail(audit_db *db, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errstr, sizeof(db->errstr), fmt, ap);
    va_end(ap);
    db->sqlstate[0] = '\0';
    return code;
}

/* Server NOTICEs ("relation already exists, skipping") are not errors; keep them off stderr. */
static void quiet_notice(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

int audit_connect(audit_db *db, const char *dsn) {
    memset(db, 0, sizeof(*db));
    if (!dsn || !dsn[0]) return audit__fail(db, AUDIT_ERR_CONNECT, "no PostgreSQL connection string configured");

    /* A malformed string makes libpq quote the offending part, which may be
     * a password: check it first and say only that it is malformed. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    if (!opts) {
        PQfreemem(perr);
        return audit__fail(db, AUDIT_ERR_CONNECT, "the PostgreSQL connection string is malformed");
    }
    PQconninfoFree(opts);

    /* connect_timeout comes first so the DSN's own setting overrides it.
     * Texts are hashed as the bytes libpq hands over: UTF-8 always (the
     * encoding says so), whatever the database's or the environment's
     * default (PGCLIENTENCODING). */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "client_encoding", "dbname", NULL};
    const char *const vals[] = {"10", "nomatron", "UTF8", dsn, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) return audit__fail(db, AUDIT_ERR_NOMEM, "out of memory connecting to PostgreSQL");
    db->conn = c;
    if (PQstatus(c) != CONNECTION_OK) {
        set_errstr_oneline(db, "cannot connect to PostgreSQL: ", PQerrorMessage(c));
        return AUDIT_ERR_CONNECT;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return AUDIT_OK;
}

/* ---- prepared statements ----
 * Every statement of audit/ is one of a few dozen fixed texts with
 * parameters. Parsing and planning them again on every call was about half
 * of PostgreSQL's time per append (docs/BENCHMARKS.md), so each text is
 * prepared once per connection, on first use, and executed by name after.
 * Transaction control (BEGIN, COMMIT, SAVEPOINT, SET ...) is sent as text. */

#define STMT_SLOTS 256   /* distinct texts cached per connection; more run unprepared */

typedef struct stmt_slot {
    char *sql;           /* owned copy; NULL = empty slot */
    unsigned id;         /* name "nm_s<id>" */
    bool prepared;       /* on the current backend */
    bool refused;        /* PostgreSQL would not prepare it: always sent as text */
} stmt_slot;

typedef struct stmt_cache {
    int backend_pid;     /* prepared statements belong to one server session */
    unsigned next_id;
    stmt_slot slot[STMT_SLOTS];
} stmt_cache;

static void stmts_free(audit_db *db) {
    stmt_cache *sc = db->stmts;
    if (!sc) return;
    for (int i = 0; i < STMT_SLOTS; i++) free(sc->slot[i].sql);
    free(sc);
    db->stmts = NULL;
}

static bool preparable(const char *sql) {
    static const char *const verbs[] = {"SELECT", "INSERT", "UPDATE", "WITH", "DELETE"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strncmp(sql, verbs[i], strlen(verbs[i])) == 0) return true;
    return false;
}

/* The slot for sql (created when absent and there is room), or NULL. A
 * connection that was reset (another backend) forgets what it prepared. */
static stmt_slot *stmt_find(audit_db *db, const char *sql) {
    if (!preparable(sql)) return NULL;
    PGconn *c = db->conn;
    stmt_cache *sc = db->stmts;
    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        if (!sc) return NULL;
        db->stmts = sc;
        sc->backend_pid = PQbackendPID(c);
    }
    if (sc->backend_pid != PQbackendPID(c)) {
        for (int i = 0; i < STMT_SLOTS; i++) sc->slot[i].prepared = false;
        sc->backend_pid = PQbackendPID(c);
    }
    uint32_t h = 2166136261u;   /* FNV-1a over the text */
    for (const char *p = sql; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    for (int n = 0; n < STMT_SLOTS; n++) {
        stmt_slot *sl = &sc->slot[(h + (uint32_t)n) % STMT_SLOTS];
        if (!sl->sql) {
            sl->sql = strdup(sql);
            if (!sl->sql) return NULL;
            sl->id = sc->next_id++;
            return sl;
        }
        if (strcmp(sl->sql, sql) == 0) return sl;
    }
    return NULL;
}

static void stmt_name(const stmt_slot *sl, char *out, size_t outlen) { snprintf(out, outlen, "nm_s%u", sl->id); }

/* "cached plan must not change result type" (0A000): a migration changed a
 * table under a prepared statement. Every statement is prepared again, under
 * new names (the old ones live until the connection closes). */
static void stmts_after_error(audit_db *db) {
    stmt_cache *sc = db->stmts;
    if (!sc || strcmp(db->sqlstate, "0A000") != 0) return;
    for (int i = 0; i < STMT_SLOTS; i++)
        if (sc->slot[i].sql) {
            sc->slot[i].prepared = false;
            sc->slot[i].id = sc->next_id++;
        }
}

/* Outside a pipeline: prepares sl now if it is not yet. False when it
 * cannot be (then the caller sends the text). */
static bool stmt_ready(audit_db *db, stmt_slot *sl, int nparams) {
    if (!sl || sl->refused) return false;
    if (sl->prepared) return true;
    char name[32];
    stmt_name(sl, name, sizeof(name));
    PGresult *r = PQprepare(db->conn, name, sl->sql, nparams, NULL);
    sl->prepared = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    /* A text PostgreSQL cannot prepare (or a failed transaction) just runs as text. */
    if (!sl->prepared && PQtransactionStatus(db->conn) == PQTRANS_IDLE) sl->refused = true;
    PQclear(r);
    return sl->prepared;
}

void audit_close(audit_db *db) {
    if (!db) return;
    if (db->conn) PQfinish(db->conn);
    db->conn = NULL;
    stmts_free(db);
}

PGconn *audit__conn(audit_db *db, int *rc) {
    PGconn *c = db->conn;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        *rc = audit__fail(db, AUDIT_ERR_CONNECT, "not connected to PostgreSQL");
        return NULL;
    }
    if (PQpipelineStatus(c) != PQ_PIPELINE_OFF) PQexitPipelineMode(c);
    /* A previous failure may have left a transaction open; never build on it. */
    if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    *rc = AUDIT_OK;
    return c;
}

bool audit_ping(audit_db *db) {
    if (!db || !db->conn) return false;
    PGconn *c = db->conn;
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
        PGresult *r = PQexecParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (ok) return true;
    }
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK) {
        set_errstr_oneline(db, "cannot reconnect to PostgreSQL: ", PQerrorMessage(c));
        return false;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return true;
}

/* Sets errstr/sqlstate from a failed result (r may be NULL) and maps it to a code. */
int audit__result_error(audit_db *db, const char *what, PGresult *r) {
    PGconn *c = db->conn;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "%s: ", what);
    set_errstr_oneline(db, prefix, msg ? msg : PQerrorMessage(c));
    if (PQstatus(c) != CONNECTION_OK) return AUDIT_ERR_CONNECT;
    /* 08xxx: connection exceptions; 57P0x: the server is shutting down. */
    if (strncmp(db->sqlstate, "08", 2) == 0 || strncmp(db->sqlstate, "57P0", 4) == 0) return AUDIT_ERR_CONNECT;
    return r ? AUDIT_ERR_SQL : AUDIT_ERR_NOMEM;
}

int audit__exec(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                PGresult **res) {
    return audit__exec_fmt(db, what, sql, nparams, params, res, 0);
}

int audit__exec_fmt(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                    PGresult **res, int result_format) {
    if (res) *res = NULL;
    PGconn *c = db->conn;
    if (!c) return audit__fail(db, AUDIT_ERR_CONNECT, "%s: not connected to PostgreSQL", what);
    stmt_slot *sl = PQtransactionStatus(c) == PQTRANS_INERROR ? NULL : stmt_find(db, sql);
    PGresult *r;
    if (stmt_ready(db, sl, nparams)) {
        char name[32];
        stmt_name(sl, name, sizeof(name));
        r = PQexecPrepared(c, name, nparams, params, NULL, NULL, result_format);
    } else {
        r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, result_format);
    }
    ExecStatusType st = PQresultStatus(r);
    if (r && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
        db->sqlstate[0] = '\0';
        if (res) *res = r;
        else PQclear(r);
        return AUDIT_OK;
    }
    int rc = audit__result_error(db, what, r);
    PQclear(r);
    stmts_after_error(db);
    return rc;
}

int audit__pipeline(audit_db *db, const audit__stmt *st, int n, PGresult **res) {
    PGconn *c = db->conn;
    for (int i = 0; i < n; i++) res[i] = NULL;
    if (!c || PQstatus(c) != CONNECTION_OK) return audit__fail(db, AUDIT_ERR_CONNECT, "not connected to PostgreSQL");
    /* Statements seen for the first time are prepared before the pipeline
     * (once per connection); a pipeline then carries names, not texts. */
    stmt_slot **slots = n > 0 ? calloc((size_t)n, sizeof(*slots)) : NULL;   /* NULL: all as text */
    for (int i = 0; slots && i < n; i++) {
        slots[i] = PQtransactionStatus(c) != PQTRANS_INERROR ? stmt_find(db, st[i].sql) : NULL;
        if (slots[i] && !stmt_ready(db, slots[i], st[i].nparams)) slots[i] = NULL;
    }
    if (PQenterPipelineMode(c) != 1) {
        free(slots);
        return audit__result_error(db, "entering pipeline mode", NULL);
    }
    int rc = AUDIT_OK, sent = 0;
    for (; sent < n; sent++) {
        int ok;
        if (slots && slots[sent]) {
            char name[32];
            stmt_name(slots[sent], name, sizeof(name));
            ok = PQsendQueryPrepared(c, name, st[sent].nparams, st[sent].params, NULL, NULL, 0);
        } else {
            ok = PQsendQueryParams(c, st[sent].sql, st[sent].nparams, NULL, st[sent].params, NULL, NULL, 0);
        }
        if (!ok) {
            rc = audit__result_error(db, st[sent].what, NULL);
            break;
        }
    }
    free(slots);
    if (PQpipelineSync(c) != 1 && rc == AUDIT_OK) rc = audit__result_error(db, "sending", NULL);
    /* Each statement yields its result(s) then NULL; the sync point yields
     * PGRES_PIPELINE_SYNC. After a failure the rest come back ABORTED. */
    for (int i = 0; i < sent; i++) {
        PGresult *r;
        bool got = false;
        while ((r = PQgetResult(c)) != NULL) {
            ExecStatusType s = PQresultStatus(r);
            got = true;
            if ((s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) && !res[i]) {
                res[i] = r;
                continue;
            }
            if (s != PGRES_PIPELINE_ABORTED && rc == AUDIT_OK) rc = audit__result_error(db, st[i].what, r);
            PQclear(r);
        }
        if (!got && PQstatus(c) != CONNECTION_OK) {
            if (rc == AUDIT_OK) rc = audit__result_error(db, st[i].what, NULL);
            return rc; /* audit_ping() resets the connection, pipeline state with it */
        }
    }
    for (int nulls = 0;;) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            /* Only the sync result is left; NULL again means the protocol lost its place. */
            if (PQstatus(c) != CONNECTION_OK || ++nulls > 2) {
                if (rc == AUDIT_OK) rc = audit__result_error(db, "waiting for the pipeline sync", NULL);
                if (PQstatus(c) == CONNECTION_OK) PQreset(c);
                return rc;
            }
            continue;
        }
        ExecStatusType s = PQresultStatus(r);
        PQclear(r);
        if (s == PGRES_PIPELINE_SYNC) break;
    }
    if (PQexitPipelineMode(c) != 1 && rc == AUDIT_OK) rc = audit__result_error(db, "leaving pipeline mode", NULL);
    if (rc == AUDIT_OK) db->sqlstate[0] = '\0';
    else stmts_after_error(db);
    return rc;
}

int audit__begin(audit_db *db) { return audit__exec(db, "BEGIN", "BEGIN", 0, NULL, NULL); }

int audit__commit(audit_db *db) {
    PGresult *r = NULL;
    int rc = audit__exec(db, "COMMIT", "COMMIT", 0, NULL, &r);
    /* A COMMIT in a failed transaction "succeeds" as ROLLBACK: treat that as the failure it is. */
    if (rc == AUDIT_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = audit__fail(db, AUDIT_ERR_SQL, "COMMIT: transaction was rolled back");
    PQclear(r);
    return rc;
}

void audit__rollback(audit_db *db) {
    PGconn *c = db->conn;
    if (!c || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) == PQTRANS_IDLE) return;
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
}

int audit__stream(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                  audit__row_fn fn, void *arg) {
    int rc;
    PGconn *c = audit__conn(db, &rc);
    if (!c) return rc;
    if (!PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0)) return audit__result_error(db, what, NULL);
    PQsetSingleRowMode(c);
    bool stopped = false;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            if (!stopped && fn(r, arg) != 0) {
                stopped = true;
                /* Ask the server to stop sending; what is in flight is drained below. */
                PGcancel *cn = PQgetCancel(c);
                char eb[128];
                if (cn) {
                    PQcancel(cn, eb, sizeof(eb));
                    PQfreeCancel(cn);
                }
            }
        } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && !stopped && rc == AUDIT_OK) {
            rc = audit__result_error(db, what, r);
        }
        PQclear(r);
    }
    if (PQstatus(c) != CONNECTION_OK && rc == AUDIT_OK) rc = audit__result_error(db, what, NULL);
    if (rc == AUDIT_OK) db->sqlstate[0] = '\0';
    return rc;
}

static const char *col_str(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

void audit__row_read(PGresult *r, int i, audit_row *out) {
    audit_event *e = &out->ev;
    memset(out, 0, sizeof(*out));
    e->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    e->request_id = PQgetisnull(r, i, 1) ? 0 : strtoll(PQgetvalue(r, i, 1), NULL, 10);
    e->at_us = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    const char **texts_a[] = {&e->action, &e->actor, &e->person, &e->outcome, &e->from_state, &e->to_state,
                              &e->phase,  &e->reason, &e->env,   &e->job,     &e->from_image, &e->to_image};
    for (int k = 0; k < 12; k++) *texts_a[k] = col_str(r, i, 3 + k);
    e->nomad_job_version = PQgetisnull(r, i, 15) ? -1 : strtoll(PQgetvalue(r, i, 15), NULL, 10);
    const char **texts_b[] = {&e->eval_id, &e->deployment_id, &e->detail, &e->platform, &e->team,
                              &e->channel, &e->message_ref,   &e->thread, &e->permalink};
    for (int k = 0; k < 9; k++) *texts_b[k] = col_str(r, i, 16 + k);
    e->enc_version = atoi(PQgetvalue(r, i, 25));
    e->prev_hash = PQgetvalue(r, i, 26);
    out->hash = PQgetvalue(r, i, 27);
    out->at = PQgetvalue(r, i, 28);
}

const char *audit__time_param(const char *t, char dst[64]) {
    if (!t) return NULL;
    if (strlen(t) == 10) snprintf(dst, 64, "%sT00:00:00Z", t);
    else snprintf(dst, 64, "%s", t);
    return dst;
}
