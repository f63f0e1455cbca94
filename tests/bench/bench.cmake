# Benchmarks: built with the tests, never run by ctest (they take minutes and
# want a quiet machine). docs/BENCHMARKS.md gives each command and its figures.
add_executable(bench_audit ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_audit.c)
target_link_libraries(bench_audit PRIVATE nm_audit Threads::Threads)
add_executable(bench_queue ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_queue.c)
target_link_libraries(bench_queue PRIVATE nm_queue Threads::Threads)
add_executable(bench_nomad ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_nomad.c)
target_link_libraries(bench_nomad PRIVATE nm_nomad)
