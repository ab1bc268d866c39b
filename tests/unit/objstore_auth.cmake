# SPDX-License-Identifier: Apache-2.0
# objstore_auth.cmake: unit tests for SigV4 signing and the credential providers.

# AWS's SigV4 test vectors come from npm at test time (fixture below); the test runs its
# built-in vectors either way and reports the suite as skipped when npm is unreachable.
set(TIERFS_SIGV4_SUITE_DIR ${CMAKE_BINARY_DIR}/sigv4-suite)
add_test(NAME objstore_sigv4_suite_fetch
         COMMAND ${CMAKE_COMMAND} -DNPM_PREFIX=${CMAKE_BINARY_DIR}/npm
                 -DOUT_DIR=${TIERFS_SIGV4_SUITE_DIR}
                 -DEXPLODE_JS=${CMAKE_CURRENT_SOURCE_DIR}/fixtures/sigv4/explode.js
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/sigv4/fetch_suite.cmake)
set_tests_properties(objstore_sigv4_suite_fetch PROPERTIES FIXTURES_SETUP objstore_sigv4_suite
                     LABELS "unit" TIMEOUT 180)

tierfs_unit_test(test_objstore_sigv4 SOURCES test_objstore_sigv4.c LIBS tierfs_objstore
                 LABELS tsan TIMEOUT 60)
set_tests_properties(test_objstore_sigv4 PROPERTIES FIXTURES_REQUIRED objstore_sigv4_suite)
set_property(TEST test_objstore_sigv4 APPEND PROPERTY ENVIRONMENT
             "TIERFS_SIGV4_SUITE_DIR=${TIERFS_SIGV4_SUITE_DIR}")

# Each credential source against a local fake: temp profile files, env vars, and an
# in-test HTTP server on 127.0.0.1 playing the container endpoint and IMDSv2.
tierfs_unit_test(test_objstore_creds SOURCES test_objstore_creds.c LIBS tierfs_objstore
                 LABELS tsan TIMEOUT 60)

# Web identity and assumed roles against an in-test fake STS on 127.0.0.1: request
# parameters, AssumeRole's signature, replies and errors, profile chains, the chain's
# order and refresh, the STS endpoint, --explain-credentials.
tierfs_unit_test(test_objstore_sts SOURCES test_objstore_sts.c LIBS tierfs_objstore TIMEOUT 60)

# credential_process: the command line split, good, bad, failing, missing and hanging
# helpers, a profile's helper through the chain with refresh, nothing it prints logged.
tierfs_unit_test(test_objstore_credproc SOURCES test_objstore_credproc.c LIBS tierfs_objstore
                 TIMEOUT 60)
