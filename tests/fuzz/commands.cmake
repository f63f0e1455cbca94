nm_fuzz_target(fuzz_command ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_command.c nm_commands)
nm_fuzz_target(fuzz_config ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_config.c nm_config)
