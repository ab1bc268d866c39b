# The disk tier of hybridcache (hybridcache/disk*.c). Every device test runs on psync and uring.
#   test_hc_disk: the live path; test_hc_disk_format: format and recovery;
#   test_hc_disk_read: partial reads. hc_disk_testlib.c: what they share.
# TIERFS_DISK_RECOVERY_BENCH=1 adds the 4 GiB recovery-time measurement (writes 4 GiB).
if(TARGET tierfs_hybridcache)
  foreach(t test_hc_disk test_hc_disk_format test_hc_disk_read)
    tierfs_unit_test(${t} SOURCES ${t}.c hc_disk_testlib.c LIBS tierfs_hybridcache LABELS tsan
                     TIMEOUT 240)
  endforeach()
  # Allocation failures are injected through these wrappers (test_insert_nomem).
  target_link_options(test_hc_disk PRIVATE -Wl,--wrap=calloc,--wrap=malloc,--wrap=free)
endif()
