# tools/bench.cmake: tierfs-fuse-null, the FUSE ceiling that tools/bench_peers.sh (the
# side-by-side peer benchmark, issue #5) reads like the real filesystems.
add_executable(tierfs-fuse-null ${CMAKE_CURRENT_SOURCE_DIR}/fuse_null.c)
target_compile_definitions(tierfs-fuse-null PRIVATE FUSE_USE_VERSION=314)
target_link_libraries(tierfs-fuse-null PRIVATE tierfs_common PkgConfig::FUSE3 Threads::Threads)

# tierfs-bench-freshmem: the cost of a first write to fresh memory against recycled and
# huge-page buffers (docs/performance.md, "Fresh memory").
add_executable(tierfs-bench-freshmem ${CMAKE_CURRENT_SOURCE_DIR}/bench_freshmem.c)
target_link_libraries(tierfs-bench-freshmem PRIVATE tierfs_ioengine tierfs_common)
add_test(NAME test_tools_bench_freshmem COMMAND tierfs-bench-freshmem --size 16M)
set_tests_properties(test_tools_bench_freshmem PROPERTIES LABELS "unit;tools" TIMEOUT 60
  PASS_REGULAR_EXPRESSION "fresh, posix_memalign +[0-9.]+ s .*recycled +[0-9.]+ s .*fresh, ioeng_buf_alloc")
add_test(NAME test_tools_bench_freshmem_bad COMMAND tierfs-bench-freshmem --size 1K)
set_tests_properties(test_tools_bench_freshmem_bad PROPERTIES LABELS "unit;tools" TIMEOUT 10
  WILL_FAIL TRUE)
