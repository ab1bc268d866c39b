# SPDX-License-Identifier: Apache-2.0
# tierfs-bench-objstore: the network ceiling (parallel ranged GETs of one object).
add_executable(tierfs-bench-objstore ${CMAKE_CURRENT_SOURCE_DIR}/bench_objstore.c)
target_link_libraries(tierfs-bench-objstore PRIVATE tierfs_objstore)
