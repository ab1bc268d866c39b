#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_rel_long.sh: the long variants of the reliability tests (label long; not in the
# default CI run, `bash tests/run-all.sh --long` runs them): 30 s per S3 fault, 20 kill -9
# crashes, 2 minutes of 64 readers. About 12 minutes.
here=$(dirname "$0")
REL_PHASE_S=30 bash "$here/test_rel_s3faults.sh" || exit 1
REL_CRASHES=20 bash "$here/test_rel_crash.sh" || exit 1
REL_LOAD_S=60 bash "$here/test_rel_load.sh" || exit 1
