/* Connection handling, error text and the small statement helpers the rest
 * of audit/ is built on. Every statement goes through audit__exec(): values
 * travel as parameters, never inside SQL text. */
#include <stdarg.h>
#include <stdio.h>
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

    /* connect_timeout comes first so the DSN's own setting overrides it. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const vals[] = {"10", "nomatron", dsn, NULL};
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

void audit_close(audit_db *db) {
    if (!db) return;
    if (db->conn) PQfinish(db->conn);
    db->conn = NULL;
}

PGconn *audit__conn(audit_db *db, int *rc) {
    PGconn *c = db->conn;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        *rc = audit__fail(db, AUDIT_ERR_CONNECT, "not connected to PostgreSQL");
        return NULL;
    }
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

int audit__exec(audit_db *db, const char *what, const char *sql, int nparams, const char *const *params,
                PGresult **res) {
    if (res) *res = NULL;
    PGconn *c = db->conn;
    if (!c) return audit__fail(db, AUDIT_ERR_CONNECT, "%s: not connected to PostgreSQL", what);
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (r && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
        db->sqlstate[0] = '\0';
        if (res) *res = r;
        else PQclear(r);
        return AUDIT_OK;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "%s: ", what);
    set_errstr_oneline(db, prefix, msg ? msg : PQerrorMessage(c));
    bool had_result = r != NULL;
    PQclear(r);
    if (PQstatus(c) != CONNECTION_OK) return AUDIT_ERR_CONNECT;
    /* 08xxx: connection exceptions; 57P0x: the server is shutting down. */
    /* (db->sqlstate, not state: that pointed into the result just cleared) */
    if (strncmp(db->sqlstate, "08", 2) == 0 || strncmp(db->sqlstate, "57P0", 4) == 0) return AUDIT_ERR_CONNECT;
    return had_result ? AUDIT_ERR_SQL : AUDIT_ERR_NOMEM;
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
