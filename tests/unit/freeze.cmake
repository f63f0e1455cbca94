# Freeze windows and the TZif reader. Registered only once config/CMakeLists.txt
# lists freeze.c tzif.c and commands/CMakeLists.txt lists freeze_eval.c, so a
# tree without them still builds.
get_target_property(_nm_config_srcs nm_config SOURCES)
get_target_property(_nm_commands_srcs nm_commands SOURCES)
if("tzif.c" IN_LIST _nm_config_srcs AND "freeze.c" IN_LIST _nm_config_srcs)
  nm_unit_test(test_tzif ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tzif.c nm_config)
  if("freeze_eval.c" IN_LIST _nm_commands_srcs)
    nm_unit_test(test_freeze ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_freeze.c nm_commands)
  endif()
endif()
