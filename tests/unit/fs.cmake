# SPDX-License-Identifier: Apache-2.0
# fs unit tests, no mount: option parsing and validation (opts.c, in tierfs_fsutil); the
# namespace (ns.c, compiled in as test_cachetool does with tools/tierfs_cache.c) against
# an in-test object store, the block key format (blockkey.c, tierfs_fsutil), and the
# page-cache fill queue (fill.c) against an in-test sink, the INIT reply patch (fuseio.c).
if(TARGET tierfs_fsutil)
  tierfs_unit_test(test_fs_opts SOURCES test_fs_opts.c LIBS tierfs_fsutil TIMEOUT 60)
  tierfs_unit_test(test_fs_ns SOURCES test_fs_ns.c ${CMAKE_SOURCE_DIR}/fs/ns.c ${CMAKE_SOURCE_DIR}/fs/ns_write.c
                   ${CMAKE_SOURCE_DIR}/fs/listing.c
                   LIBS tierfs_fsutil Threads::Threads TIMEOUT 60)
  tierfs_unit_test(test_fs_fuseio SOURCES test_fs_fuseio.c ${CMAKE_SOURCE_DIR}/fs/fuseio.c
                   LIBS tierfs_fsutil TIMEOUT 60)
  tierfs_unit_test(test_fs_fill SOURCES test_fs_fill.c ${CMAKE_SOURCE_DIR}/fs/fill.c
                   LIBS Threads::Threads LABELS tsan TIMEOUT 60)
endif()
