# tools/cachetool.cmake: tierfs-cache, offline inspect / verify / clear of a disk cache
# (issue #6). tests/unit/test_cachetool.c compiles tierfs_cache.c itself (without main).
if(TARGET tierfs_hybridcache)
  add_executable(tierfs-cache ${CMAKE_CURRENT_SOURCE_DIR}/tierfs_cache.c)
  target_link_libraries(tierfs-cache PRIVATE tierfs_hybridcache tierfs_ioengine tierfs_common)
endif()
