# tierfs-cache (tools/tierfs_cache.c, issue #6): its core compiled into the test without
# main(), plus the executable itself for the exit statuses.
if(TARGET tierfs-cache)
  tierfs_unit_test(test_cachetool SOURCES test_cachetool.c ${CMAKE_SOURCE_DIR}/tools/tierfs_cache.c
                   ${CMAKE_SOURCE_DIR}/tools/cache_warm.c LIBS tierfs_fsutil tierfs_hybridcache
                   TIMEOUT 120)
  target_compile_definitions(test_cachetool PRIVATE TIERFS_CACHETOOL_NO_MAIN
                             TIERFS_CACHETOOL_BIN="$<TARGET_FILE:tierfs-cache>")
  add_dependencies(test_cachetool tierfs-cache)
endif()
