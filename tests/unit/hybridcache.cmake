# hybridcache memory tier: eviction policies against reference models, the sharded index.
if(TARGET tierfs_hybridcache)
  tierfs_unit_test(test_hc_policy SOURCES test_hc_policy.c LIBS tierfs_hybridcache)
  tierfs_unit_test(test_hc_mem SOURCES test_hc_mem.c LIBS tierfs_hybridcache LABELS tsan)
endif()
# The fleet tier without memcached: the key and value format, the lease logic over an
# in-process backend shared by two fleets, the server list parser.
if(TARGET tierfs_hybridcache)
  tierfs_unit_test(test_hc_fleet SOURCES test_hc_fleet.c LIBS tierfs_hybridcache LABELS tsan
                   TIMEOUT 60)
  tierfs_unit_test(test_hc_fleet_lease SOURCES test_hc_fleet_lease.c LIBS tierfs_hybridcache
                   LABELS tsan TIMEOUT 60)
endif()
