nm_unit_test(test_commands ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commands.c nm_commands)
nm_unit_test(test_config ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c nm_config)
