# tests/integration/obs.cmake: observability and cache tools against the local S3 server
# (issue #6): metrics endpoint, tierfs-stat, log level by signal, tierfs-cache warm.
if(TARGET tierfs AND TARGET tierfs-cache AND TARGET tierfs-stat)
  foreach(t metrics warm secrets grafana)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_obs_${t}.sh)
      tierfs_integration_test(test_obs_${t} SCRIPT test_obs_${t}.sh TIMEOUT 240 LABELS obs)
    endif()
  endforeach()
endif()
