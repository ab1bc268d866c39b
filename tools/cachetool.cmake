# tools/cachetool.cmake: the operator tools of issue #6.
#   tierfs-cache: offline inspect / verify / clear / warm of a disk cache;
#                 tests/unit/test_cachetool.c compiles tierfs_cache.c itself (without main).
#   tierfs-stat:  a summary of a running mount (its user.tierfs.stats xattr).
if(TARGET tierfs_hybridcache)
  add_executable(tierfs-cache ${CMAKE_CURRENT_SOURCE_DIR}/tierfs_cache.c
                 ${CMAKE_CURRENT_SOURCE_DIR}/cache_warm.c)
  target_link_libraries(tierfs-cache PRIVATE tierfs_fsutil tierfs_hybridcache tierfs_ioengine
                        tierfs_common Threads::Threads)
  install(TARGETS tierfs-cache RUNTIME DESTINATION bin)
  install(FILES ${CMAKE_SOURCE_DIR}/man/tierfs-cache.1 DESTINATION share/man/man1 OPTIONAL)
endif()
add_executable(tierfs-stat ${CMAKE_CURRENT_SOURCE_DIR}/tierfs_stat.c)
target_link_libraries(tierfs-stat PRIVATE tierfs_common)
install(TARGETS tierfs-stat RUNTIME DESTINATION bin)
install(FILES ${CMAKE_SOURCE_DIR}/man/tierfs-stat.1 DESTINATION share/man/man1 OPTIONAL)
