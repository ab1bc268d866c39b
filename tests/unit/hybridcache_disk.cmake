# The disk tier of hybridcache (hybridcache/disk*.c). Every device test runs on psync and uring.
# TIERFS_DISK_RECOVERY_BENCH=1 adds the 4 GiB recovery-time measurement (writes 4 GiB).
if(TARGET tierfs_hybridcache)
  tierfs_unit_test(test_hc_disk SOURCES test_hc_disk.c LIBS tierfs_hybridcache LABELS tsan
                   TIMEOUT 240)
  # Allocation failures are injected through these wrappers (test_insert_nomem).
  target_link_options(test_hc_disk PRIVATE -Wl,--wrap=calloc,--wrap=malloc,--wrap=free)
endif()
