# libFuzzer over Slack's parsers: Socket Mode frames (fuzz_slack_frame) and Web
# API answers, the first byte picking the method (fuzz_slack_api). fuzz_slack_frame
# also compares every frame with the json-c parser it replaced (slack_frame_oracle.c). Seeds in
# corpus/fuzz_slack_frame/ and corpus/fuzz_slack_api/.
get_target_property(_nm_bot_srcs nm_bot SOURCES)
if("slack_proto.c" IN_LIST _nm_bot_srcs AND "slack_render.c" IN_LIST _nm_bot_srcs)
  nm_fuzz_target(fuzz_slack_frame ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_slack_frame.c nm_bot)
  if(TARGET fuzz_slack_frame)
    # The json-c parser the scanner replaced, as the oracle it is held to.
    target_sources(fuzz_slack_frame PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/slack_frame_oracle.c)
  endif()
  nm_fuzz_target(fuzz_slack_api ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_slack_api.c nm_bot)
endif()
