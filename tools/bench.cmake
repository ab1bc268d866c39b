# tools/bench.cmake: tierfs-fuse-null, the FUSE ceiling that tools/bench_peers.sh (the
# side-by-side peer benchmark, issue #5) reads like the real filesystems.
add_executable(tierfs-fuse-null ${CMAKE_CURRENT_SOURCE_DIR}/fuse_null.c)
target_compile_definitions(tierfs-fuse-null PRIVATE FUSE_USE_VERSION=314)
target_link_libraries(tierfs-fuse-null PRIVATE tierfs_common PkgConfig::FUSE3 Threads::Threads)
