# The governance state-machine driver with libFuzzer's bytes as its random
# source (see tests/unit/governance_driver.h). Waits for commands/CMakeLists.txt
# to list states.c and governance.c.
get_target_property(_nm_commands_srcs nm_commands SOURCES)
if("governance.c" IN_LIST _nm_commands_srcs AND "states.c" IN_LIST _nm_commands_srcs)
  nm_fuzz_target(fuzz_governance ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_governance.c nm_commands)
endif()
