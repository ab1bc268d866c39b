# SPDX-License-Identifier: Apache-2.0
# objstore unit tests: XML parsing, the errno table, backoff, argument checks (test_objstore);
# the retry, fault and stats layers over a fake store (test_objstore_layers).
tierfs_unit_test(test_objstore SOURCES test_objstore.c LIBS tierfs_objstore TIMEOUT 60)
tierfs_unit_test(test_objstore_layers SOURCES test_objstore_layers.c LIBS tierfs_objstore
                 TIMEOUT 60)
