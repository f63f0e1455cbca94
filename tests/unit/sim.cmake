# nomad-sim: parser and state model (with the API layer), no sockets.
nm_unit_test(test_sim_http ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_http.c nm_sim)
nm_unit_test(test_sim_state ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_state.c nm_sim)
nm_unit_test(test_sim_api ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_api.c nm_sim)
# nomad-sim over real sockets: --speed, --acl, injected faults, request log.
add_test(NAME sim_server
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim_test.sh $<TARGET_FILE:nomad-sim>
                 ${PROJECT_SOURCE_DIR}/deploy/dev/nomad-jobs.json)
set_tests_properties(sim_server PROPERTIES TIMEOUT 60)
