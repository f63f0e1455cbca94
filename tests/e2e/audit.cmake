# The audit trail end to end: the real nomatron binary, nomad-sim, real
# Redis and PostgreSQL (PG_ADMIN_CONNINFO, NOMATRON_REDIS_PORT).
add_test(NAME e2e_audit
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/audit.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_audit PROPERTIES TIMEOUT 120
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
