# Fuzz targets for the freeze grammar and the TZif reader (see tests/unit/freeze.cmake
# for why they wait until the sources are listed in their libraries).
get_target_property(_nm_config_srcs nm_config SOURCES)
get_target_property(_nm_commands_srcs nm_commands SOURCES)
if("tzif.c" IN_LIST _nm_config_srcs)
  nm_fuzz_target(fuzz_tzif ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_tzif.c nm_config)
  if("freeze_eval.c" IN_LIST _nm_commands_srcs)
    nm_fuzz_target(fuzz_freeze ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_freeze.c nm_commands)
  endif()
endif()
