nm_unit_test(test_queue ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_queue.c nm_queue)
nm_unit_test(test_common ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_common.c nm_common)
nm_unit_test(test_render ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_render.c nm_bot)
