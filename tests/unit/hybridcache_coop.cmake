# hybridcache cooperator (hybridcache.h): single-flight, memory bound, placement, disk mode.
if(TARGET tierfs_hybridcache)
  tierfs_unit_test(test_hybridcache SOURCES test_hybridcache.c LIBS tierfs_hybridcache
                   LABELS tsan TIMEOUT 120)
endif()
