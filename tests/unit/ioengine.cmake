# ioengine: devices, fault wrapper, psync and uring engines (each test runs with both engines):
# test_ioengine (registry, devices, alignment, many in flight, lifecycle), test_ioengine_fault
# (short transfers, errors, the psync fallback, raw block devices); ioengine_testlib.c.
foreach(t test_ioengine test_ioengine_fault)
  tierfs_unit_test(${t} SOURCES ${t}.c ioengine_testlib.c LIBS tierfs_ioengine TIMEOUT 120
                   LABELS tsan)
endforeach()
# test_ioengine_hugebuf: the buffer allocator's huge-page slots (sharing, sizes, memory
# given back, threads).
tierfs_unit_test(test_ioengine_hugebuf SOURCES test_ioengine_hugebuf.c LIBS tierfs_ioengine
                 TIMEOUT 60 LABELS tsan)
