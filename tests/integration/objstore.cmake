# SPDX-License-Identifier: Apache-2.0
# objstore against radosgw through the shaping proxy (faults, counters).
tierfs_integration_test(test_objstore_s3 SOURCES test_objstore_s3.c LIBS tierfs_objstore
                        TIMEOUT 180 LABELS objstore)
# Multipart uploads, aborts and deletes (issue #20's foundation), faults retried.
tierfs_integration_test(test_objstore_mpu SOURCES test_objstore_mpu.c LIBS tierfs_objstore
                        PkgConfig::OPENSSL TIMEOUT 180 LABELS objstore)
