# ioengine: devices, fault wrapper, psync and uring engines (each test runs with both engines).
tierfs_unit_test(test_ioengine SOURCES test_ioengine.c LIBS tierfs_ioengine TIMEOUT 120 LABELS tsan)
