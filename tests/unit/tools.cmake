# Unit tests of the tools' own logic (the benchmark's workload generator).
if(TARGET tierfs_bench_gen)
  tierfs_unit_test(test_bench_cache SOURCES test_bench_cache.c LIBS tierfs_bench_gen)
endif()
