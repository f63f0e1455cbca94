/* A private schema per test in a real PostgreSQL (PG_CONNINFO), for the
 * audit tests: each test connects with search_path set to its own schema,
 * migrated or empty, and drops it at the end. Shared by test_audit*.c. */
#include "pg_fixture.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *base_conninfo;
static int schema_seq;
const char *pg_fixture_prefix = "t";


static void quiet(void *arg, const char *msg) {
    (void)arg;
    (void)msg;
}

/* Runs admin SQL with no parameters (test setup only; the code under test
 * uses parameters). Returns true on success. */
bool admin_sql(const char *conninfo, const char *sql) {
    PGconn *c = PQconnectdb(conninfo);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, quiet, NULL);
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok) fprintf(stderr, "admin SQL failed: %s", PQerrorMessage(c));
        PQclear(r);
    } else {
        fprintf(stderr, "cannot connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

void schema_conninfo(char *dst, size_t n, const char *schema) {
    if (strstr(base_conninfo, "://"))
        snprintf(dst, n, "%s%soptions=-c%%20search_path%%3D%s", base_conninfo, strchr(base_conninfo, '?') ? "&" : "?",
                 schema);
    else
        snprintf(dst, n, "%s options='-c search_path=%s'", base_conninfo, schema);
}

int group_setup(void **state) {
    (void)state;
    base_conninfo = getenv("PG_CONNINFO");
    if (!base_conninfo || !base_conninfo[0]) {
        fprintf(stderr, "PG_CONNINFO is not set: point it at a PostgreSQL role that may CREATE SCHEMA, e.g.\n"
                        "  PG_CONNINFO='host=127.0.0.1 port=5441 user=nomatron dbname=nomatron'\n");
        return -1;
    }
    return 0;
}

int setup_empty(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    snprintf(f->schema, sizeof(f->schema), "%s_%ld_%d", pg_fixture_prefix, (long)getpid(), ++schema_seq);
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", f->schema, f->schema);
    if (!admin_sql(base_conninfo, sql)) {
        free(f);
        return -1;
    }
    schema_conninfo(f->conninfo, sizeof(f->conninfo), f->schema);
    if (audit_connect(&f->db, f->conninfo) != AUDIT_OK) {
        fprintf(stderr, "audit_connect: %s\n", f->db.errstr);
        audit_close(&f->db);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int setup_migrated(void **state) {
    if (setup_empty(state)) return -1;
    fixture *f = *state;
    int applied = -1;
    if (audit_migrate(&f->db, &applied) != AUDIT_OK || applied < 1) {
        fprintf(stderr, "migrate: %s\n", f->db.errstr);
        return -1;
    }
    return 0;
}

int teardown(void **state) {
    fixture *f = *state;
    if (!f) return 0;
    audit_close(&f->db);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
    bool ok = admin_sql(base_conninfo, sql);
    free(f);
    return ok ? 0 : -1;
}

char *fixture_value(fixture *f, const char *sql, int n, const char *const *params) {
    PGresult *r = PQexecParams(f->db.conn, sql, n, NULL, params, NULL, NULL, 0);
    char *out = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        out = strdup(PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "query failed: %s", PQerrorMessage(f->db.conn));
    PQclear(r);
    return out;
}
