nm_fuzz_target(fuzz_nomad_decode ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_nomad_decode.c nm_nomad)
