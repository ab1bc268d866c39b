# tests/integration/tools.cmake: the benchmark harness in tools/ run end to end against the
# local S3 server (issue #5): tools/bench_peers.sh in its quick mode, tierfs only.
if(TARGET tierfs AND TARGET tierfs-bench-objstore AND TARGET tierfs-seed)
  tierfs_integration_test(test_tools_bench_peers SCRIPT test_tools_bench_peers.sh TIMEOUT 600
                          LABELS tools)
endif()
# The README's demo and the fleet demo (docs/fleet.md) end to end with this build's
# binaries, on the test server (issue #18 point 7).
if(TARGET tierfs AND TARGET tierfs-seed AND TARGET tierfs-stat)
  tierfs_integration_test(test_tools_demo SCRIPT test_tools_demo.sh TIMEOUT 300 LABELS tools)
endif()
