# tools/fs.cmake: tierfs-seed, uploads a local tree or the generated demo dataset (issue #4).
if(TARGET tierfs_objstore)
  add_executable(tierfs-seed ${CMAKE_CURRENT_SOURCE_DIR}/seed.c)
  target_link_libraries(tierfs-seed PRIVATE tierfs_objstore tierfs_common Threads::Threads)
  install(TARGETS tierfs-seed RUNTIME DESTINATION bin)
endif()
