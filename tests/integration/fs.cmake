# tests/integration/fs.cmake: tests that mount tierfs against the local S3 server (issue #4).
# test_fs_check is a helper the scripts run (random preads, version pinning), not a test.
if(TARGET tierfs)
  add_executable(test_fs_check ${CMAKE_CURRENT_SOURCE_DIR}/test_fs_check.c)
  set_target_properties(test_fs_check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${TIERFS_TEST_BIN_DIR})
  foreach(t tree pread concurrent readdir remount outage orphan options fstab consistency prefetch
          timeouts pagecache tls cacheopts blockdev fleet smallmem columnar dense creds write)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_fs_${t}.sh)
      # The mount tests that drive concurrency also run against a TSan build of the
      # daemon (label tsan; run-all.sh's tsan stage).
      if(t STREQUAL "smallmem")
        # Three cold reads and three remounts of 512 MiB: about a minute on 2 quiet cores.
        tierfs_integration_test(test_fs_${t} SCRIPT test_fs_${t}.sh TIMEOUT 300 LABELS fs)
      elseif(t STREQUAL "write")
        # 96 MiB and 8 x 48 MiB written, faults with retries, 500 small files: a minute.
        tierfs_integration_test(test_fs_${t} SCRIPT test_fs_${t}.sh TIMEOUT 300 LABELS fs)
      elseif(t STREQUAL "concurrent" OR t STREQUAL "prefetch")
        tierfs_integration_test(test_fs_${t} SCRIPT test_fs_${t}.sh TIMEOUT 240 LABELS fs tsan)
      else()
        tierfs_integration_test(test_fs_${t} SCRIPT test_fs_${t}.sh TIMEOUT 120 LABELS fs)
      endif()
    endif()
  endforeach()
endif()
