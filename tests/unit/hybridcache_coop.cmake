# hybridcache cooperator (hybridcache.h): single-flight, memory bound, placement, ranged
# fetches (test_hybridcache); with a disk tier (test_hc_coop_disk). hc_testlib.c holds the
# test origin and the cache builders both use.
if(TARGET tierfs_hybridcache)
  tierfs_unit_test(test_hybridcache SOURCES test_hybridcache.c hc_testlib.c
                   LIBS tierfs_hybridcache LABELS tsan TIMEOUT 120)
  tierfs_unit_test(test_hc_coop_disk SOURCES test_hc_coop_disk.c hc_testlib.c
                   LIBS tierfs_hybridcache LABELS tsan TIMEOUT 120)
endif()
