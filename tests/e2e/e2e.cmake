# End-to-end tests: the real nomatron binary against real Redis and PostgreSQL
# (PG_ADMIN_CONNINFO, NOMATRON_REDIS_PORT from deploy/dev/test) and nomad-sim.
add_test(NAME e2e_deploy
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/deploy.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_deploy PROPERTIES TIMEOUT 300
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME e2e_lifecycle
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/lifecycle.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_lifecycle PROPERTIES TIMEOUT 300
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME e2e_cli
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/cli.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_cli PROPERTIES TIMEOUT 120
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME e2e_faults
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/faults.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_faults PROPERTIES TIMEOUT 600
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME e2e_watch
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/watch.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_watch PROPERTIES TIMEOUT 600
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME e2e_governance
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/governance.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
set_tests_properties(e2e_governance PROPERTIES TIMEOUT 300
  ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
