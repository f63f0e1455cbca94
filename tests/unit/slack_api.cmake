# bot/slack_api.c against a scripted Web API (http_server on 127.0.0.1:0, a
# real http_client on the same loop), and slack_socket.c's URL parser.
# Each binary run with the argument "bugs" runs the cases written for the
# defects these tests found (all fixed): regression tests now.
nm_unit_test(test_slack_api ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_slack_api.c nm_bot)
nm_unit_test(test_slack_socket ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_slack_socket.c nm_bot)
foreach(_t test_slack_api test_slack_socket)
  add_test(NAME ${_t}_bugs COMMAND ${_t} bugs)
  set_tests_properties(${_t}_bugs PROPERTIES TIMEOUT 60
    ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;NOMATRON_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endforeach()
