# End-to-end tests: the real nomatron binary against real Redis and PostgreSQL
# (PG_ADMIN_CONNINFO, NOMATRON_REDIS_PORT from deploy/dev/test) and nomad-sim.
# nm_e2e_test(NAME SCRIPT TIMEOUT): runs e2e/SCRIPT NOMATRON NOMAD_SIM.
function(nm_e2e_test name script timeout)
  add_test(NAME ${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/${script} $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>)
  set_tests_properties(${name} PROPERTIES TIMEOUT ${timeout} ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

nm_e2e_test(e2e_deploy deploy.sh 300)
nm_e2e_test(e2e_lifecycle lifecycle.sh 300)
nm_e2e_test(e2e_cli cli.sh 120)
nm_e2e_test(e2e_faults faults.sh 600)
nm_e2e_test(e2e_watch watch.sh 600)
nm_e2e_test(e2e_governance governance.sh 300)
nm_e2e_test(e2e_audit audit.sh 120)

# Slack: the same, with slack-fake as the third argument.
add_test(NAME e2e_slack
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/slack.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>
                 $<TARGET_FILE:slack-fake>)
set_tests_properties(e2e_slack PROPERTIES TIMEOUT 300 ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")

# Slack over TLS: slack-fake with a certificate from a CA the test makes.
add_test(NAME e2e_slack_tls
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/slack_tls.sh $<TARGET_FILE:nomatron> $<TARGET_FILE:nomad-sim>
                 $<TARGET_FILE:slack-fake>)
set_tests_properties(e2e_slack_tls PROPERTIES TIMEOUT 120 ENVIRONMENT "NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
