# bot/: the HTTP client (libcurl multi) and listener (lws) on one libuv loop,
# and the form decoder. Built from the three sources rather than nm_bot, so
# this test needs nothing else of the bot.
add_library(nm_test_http STATIC ${PROJECT_SOURCE_DIR}/bot/http_client.c ${PROJECT_SOURCE_DIR}/bot/http_server.c
            ${PROJECT_SOURCE_DIR}/bot/form.c ${PROJECT_SOURCE_DIR}/bot/lws_uv.c)
target_include_directories(nm_test_http PUBLIC ${PROJECT_SOURCE_DIR}/bot)
target_link_libraries(nm_test_http PUBLIC nm_common PkgConfig::UV PkgConfig::CURL PkgConfig::LWS)
nm_unit_test(test_http ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http.c nm_test_http)
