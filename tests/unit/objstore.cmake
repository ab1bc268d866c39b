# SPDX-License-Identifier: Apache-2.0
# objstore unit tests: XML parsing, the errno table, retry/fault layers over a fake store.
tierfs_unit_test(test_objstore SOURCES test_objstore.c LIBS tierfs_objstore TIMEOUT 60)
