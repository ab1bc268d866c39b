# tests/integration/tools.cmake: the benchmark harness in tools/ run end to end against the
# local S3 server (issue #5): tools/bench_peers.sh in its quick mode, tierfs only.
if(TARGET tierfs AND TARGET tierfs-bench-objstore AND TARGET tierfs-seed)
  tierfs_integration_test(test_tools_bench_peers SCRIPT test_tools_bench_peers.sh TIMEOUT 600
                          LABELS tools)
endif()
