# Governance decisions and the request state machine (commands/states.c,
# commands/governance.c). Registered only once commands/CMakeLists.txt lists
# both sources, so a tree without them still builds.
get_target_property(_nm_commands_srcs nm_commands SOURCES)
if("states.c" IN_LIST _nm_commands_srcs)
  nm_unit_test(test_states ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_states.c nm_commands)
endif()
if("governance.c" IN_LIST _nm_commands_srcs AND "states.c" IN_LIST _nm_commands_srcs)
  nm_unit_test(test_governance ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_governance.c nm_commands)
  nm_unit_test(test_governance_random ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_governance_random.c nm_commands)
endif()
