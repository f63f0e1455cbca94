# libFuzzer over slack_ws_url_parse (bot/slack_socket.c), the parser of the
# URL that apps.connections.open returns. Seeds in corpus/fuzz_ws_url/.
nm_fuzz_target(fuzz_ws_url ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_ws_url.c nm_bot)
