# tests/integration/rel.cmake: reliability tests (issue #7): S3 and disk faults under a
# byte-checked concurrent read workload, kill -9 crash loops, bad input, load, valgrind.
# test_rel_reader is the checker the scripts run, not a test. Labels: rel (all of them),
# long (the long variants, run by tests/run-all.sh --long), valgrind.
if(TARGET tierfs)
  add_executable(test_rel_reader ${CMAKE_CURRENT_SOURCE_DIR}/test_rel_reader.c)
  set_target_properties(test_rel_reader PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${TIERFS_TEST_BIN_DIR})
  # The checker itself, on plain directories (no mount, no server).
  add_test(NAME check_rel_reader
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/check_rel_reader.sh ${TIERFS_TEST_BIN_DIR})
  set_tests_properties(check_rel_reader PROPERTIES LABELS "unit;rel" TIMEOUT 60)
  foreach(t s3faults cachefile badinput crash load guard)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_rel_${t}.sh)
      if(t STREQUAL "load")
        # 64 readers against a TSan build of the daemon too (run-all.sh's tsan stage)
        tierfs_integration_test(test_rel_${t} SCRIPT test_rel_${t}.sh TIMEOUT 300 LABELS rel tsan)
      else()
        tierfs_integration_test(test_rel_${t} SCRIPT test_rel_${t}.sh TIMEOUT 180 LABELS rel)
      endif()
    endif()
  endforeach()
  tierfs_integration_test(test_rel_valgrind SCRIPT test_rel_valgrind.sh TIMEOUT 600
                          LABELS "rel;valgrind")
  # The long variants (2-minute load, 20 crashes, 30 s per S3 fault): ctest -L long
  tierfs_integration_test(test_rel_long SCRIPT test_rel_long.sh TIMEOUT 1800 LABELS long)
endif()
