# tests/unit/rel.cmake: reliability (issue #7): device faults under a concurrent read
# workload through the cooperator, refusal of a device holding other data.
if(TARGET tierfs_hybridcache)
  tierfs_unit_test(test_rel_disk SOURCES test_rel_disk.c LIBS tierfs_hybridcache TIMEOUT 180)
endif()
