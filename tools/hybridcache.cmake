# tools/hybridcache.cmake: tierfs-bench-cache, the hybrid cache benchmark (issue #3).
# The workload generator is a library of its own so tests/unit/test_bench_cache.c can link
# it without the cache.
add_library(tierfs_bench_gen STATIC ${CMAKE_CURRENT_SOURCE_DIR}/bench_cache_gen.c)
target_link_libraries(tierfs_bench_gen PUBLIC tierfs_common m)

set(TIERFS_BENCH_CACHE_SRC ${CMAKE_CURRENT_SOURCE_DIR}/bench_cache.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/bench_cache_opts.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/bench_cache_report.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/bench_cache_trace.c)
# Built once the cooperator (hybridcache/cache.c, the hc_* API) is in the tree.
if(TARGET tierfs_hybridcache AND EXISTS ${CMAKE_SOURCE_DIR}/hybridcache/cache.c
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/bench_cache.c)
  add_executable(tierfs-bench-cache ${TIERFS_BENCH_CACHE_SRC})
  target_link_libraries(tierfs-bench-cache PRIVATE tierfs_bench_gen tierfs_hybridcache
                        tierfs_ioengine tierfs_common Threads::Threads m)
  # The fio comparison script sits next to the binary it drives.
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/bench_cache_vs_fio.sh
                 ${CMAKE_BINARY_DIR}/bin/bench_cache_vs_fio.sh COPYONLY)
endif()
