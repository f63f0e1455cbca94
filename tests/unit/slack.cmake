# Slack's pure half: frame and Web API parsing, Block Kit bodies (bot/slack_proto.c,
# bot/slack_render.c). Registered once bot/CMakeLists.txt lists both sources.
get_target_property(_nm_bot_srcs nm_bot SOURCES)
if("slack_proto.c" IN_LIST _nm_bot_srcs AND "slack_render.c" IN_LIST _nm_bot_srcs)
  nm_unit_test(test_slack ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_slack.c nm_bot)
endif()
