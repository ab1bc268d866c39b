# Unit tests of the tools' own logic (the benchmark's workload generator).
if(TARGET tierfs_bench_gen)
  tierfs_unit_test(test_bench_cache SOURCES test_bench_cache.c LIBS tierfs_bench_gen)
endif()

# The Kubernetes manifests of docs/k8s/ (issue #19): each object against the Kubernetes
# schema of its kind, and the pieces fitting together (tools/k8s_lint.mjs); --selftest
# also breaks them eleven ways and wants each one refused. The npm packages are installed
# at test time into the build tree (a fixture); without them the check fails.
if(TARGET tierfs)
  add_test(NAME k8s_lint_fetch
           COMMAND npm install --prefix ${CMAKE_BINARY_DIR}/npm-k8s --no-audit --no-fund
                   --fetch-retries=2 --fetch-timeout=60000 kubernetes-models@5.1.0 yaml@2.9.1)
  set_tests_properties(k8s_lint_fetch PROPERTIES FIXTURES_SETUP k8s_lint_modules LABELS unit
                       TIMEOUT 240)
  add_test(NAME check_k8s_manifests
           COMMAND node ${CMAKE_SOURCE_DIR}/tools/k8s_lint.mjs --selftest $<TARGET_FILE:tierfs>
                   ${CMAKE_SOURCE_DIR}/docs/k8s/tierfs.yaml)
  set_tests_properties(check_k8s_manifests PROPERTIES FIXTURES_REQUIRED k8s_lint_modules
                       LABELS unit TIMEOUT 60
                       ENVIRONMENT "K8S_LINT_MODULES=${CMAKE_BINARY_DIR}/npm-k8s/node_modules")
endif()
