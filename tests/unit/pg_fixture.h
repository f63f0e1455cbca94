/* The audit tests' PostgreSQL fixture (see pg_fixture.c). */
#ifndef NM_TEST_PG_FIXTURE_H
#define NM_TEST_PG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"

typedef struct fixture {
    char schema[64];
    char conninfo[1024]; /* base + search_path of the test schema */
    audit_db db;         /* connected to the test schema */
} fixture;

extern const char *base_conninfo;       /* PG_CONNINFO, set by group_setup */
extern const char *pg_fixture_prefix;   /* schema names: <prefix>_<pid>_<n> */

/* Admin SQL without parameters (test setup only; the code under test uses parameters). */
bool admin_sql(const char *conninfo, const char *sql);
/* base_conninfo with search_path set to schema. */
void schema_conninfo(char *dst, size_t n, const char *schema);

/* The first column of the first row of sql (params: n values), as a copy
 * the caller frees; "<NULL>" for SQL NULL; NULL when there is no row or the
 * query fails (said on stderr). */
char *fixture_value(fixture *f, const char *sql, int n, const char *const *params);

/* cmocka group setup and per-test setup / teardown (state is a fixture *). */
int group_setup(void **state);
int setup_empty(void **state);
int setup_migrated(void **state);
int teardown(void **state);

#endif
