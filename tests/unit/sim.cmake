# nomad-sim: parser and state model (with the API layer), no sockets.
nm_unit_test(test_sim_http ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_http.c nm_sim)
nm_unit_test(test_sim_state ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_state.c nm_sim)
