tierfs_unit_test(test_common SOURCES test_common.c LIBS tierfs_common)
