# audit/appender.c: group commit of chained writes (PG_CONNINFO as for test_audit;
# PG_ADMIN_CONNINFO, when set, adds the test that kills a batch leader's backend).
nm_unit_test(test_audit_group ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_group.c nm_audit nm_test_pg Threads::Threads)
