nm_unit_test(test_nomad_decode ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_nomad_decode.c nm_nomad)
nm_unit_test(test_nomad_client ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_nomad_client.c nm_nomad Threads::Threads)
nm_unit_test(test_nomad_async ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_nomad_async.c nm_nomad Threads::Threads)
