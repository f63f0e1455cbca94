# libFuzzer over common/json_scan.h on its own, held to the strict RFC 8259
# checker in slack_frame_oracle.c (which needs nm_bot for the rest of it).
# Seeds in corpus/fuzz_json_scan/.
get_target_property(_nm_bot_srcs nm_bot SOURCES)
if("slack_proto.c" IN_LIST _nm_bot_srcs)
  nm_fuzz_target(fuzz_json_scan ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_json_scan.c nm_bot)
  if(TARGET fuzz_json_scan)
    target_sources(fuzz_json_scan PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/slack_frame_oracle.c)
  endif()
endif()
