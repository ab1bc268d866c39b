# tests/unit/scripts.cmake: rules for the test scripts themselves (issue #7:
# tests/unit/check_test_scripts.sh).
add_test(NAME check_test_scripts COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/check_test_scripts.sh)
set_tests_properties(check_test_scripts PROPERTIES LABELS unit TIMEOUT 60)
# Module boundaries (issue #15): no file includes another module's private header; mount
# options become a cache configuration only through fs_cache_conf.
add_test(NAME check_structure COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/check_structure.sh)
set_tests_properties(check_structure PROPERTIES LABELS unit TIMEOUT 60)
# Formatting (issue #15): every C file as .clang-format says.
add_test(NAME check_format COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/check_format.sh)
set_tests_properties(check_format PROPERTIES LABELS unit TIMEOUT 120)
# run-all.sh's judgement of a run (issue #16): counts, and skips fail a strict run.
add_test(NAME check_run_all COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/check_run_all.sh)
set_tests_properties(check_run_all PROPERTIES LABELS unit TIMEOUT 60)
