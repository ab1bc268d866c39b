# tests/unit/manpages.cmake: every program in bin/ has a man page in man/ that names every
# option of its --help (tests/unit/check_manpages.sh; issue #6).
add_test(NAME check_manpages COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/check_manpages.sh)
set_tests_properties(check_manpages PROPERTIES LABELS unit TIMEOUT 120
                     ENVIRONMENT "TIERFS_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
