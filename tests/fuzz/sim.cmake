# nomad-sim: HTTP request parser + API layer.
nm_fuzz_target(fuzz_sim_http ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_sim_http.c nm_sim)
