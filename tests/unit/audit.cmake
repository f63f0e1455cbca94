# audit/: the canonical encoding and the export reader (pure), and the
# PostgreSQL side (needs PG_CONNINFO: a role that may CREATE SCHEMA; each run
# uses its own schema; PG_ADMIN_CONNINFO, when set, adds the service-role test).
nm_unit_test(test_canon ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_canon.c nm_audit)
nm_unit_test(test_audit_export ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_export.c nm_audit)
add_library(nm_test_pg STATIC ${CMAKE_CURRENT_SOURCE_DIR}/unit/pg_fixture.c)
target_link_libraries(nm_test_pg PUBLIC nm_audit)
nm_unit_test(test_audit ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c nm_audit nm_test_pg Threads::Threads)
# governance storage (migration 3: approvals, locks, refusals, counts); PG_CONNINFO as above.
nm_unit_test(test_audit_gov ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_gov.c nm_audit nm_test_pg Threads::Threads)
