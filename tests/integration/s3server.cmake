# SPDX-License-Identifier: Apache-2.0
# The local S3 server (tests/s3server: radosgw + shaping proxy) and s3env work as tests expect.
tierfs_integration_test(test_s3server SOURCES test_s3server.c TIMEOUT 120 LABELS s3server)
