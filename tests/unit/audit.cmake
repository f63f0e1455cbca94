# audit/: the canonical encoding (pure) and the PostgreSQL side (needs
# PG_CONNINFO: a role that may CREATE SCHEMA; each run uses its own schema).
nm_unit_test(test_canon ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_canon.c nm_audit)
nm_unit_test(test_audit ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c nm_audit Threads::Threads)
