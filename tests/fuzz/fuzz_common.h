/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_common.h: helpers shared by the libFuzzer harnesses (checks that abort, quiet logs). */
#ifndef TIERFS_FUZZ_COMMON_H
#define TIERFS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

/*
 * An invariant of the code under test. Unlike assert() it stays in release builds, and it
 * aborts so libFuzzer records the input as a crash. It writes to fd 2, not to stderr,
 * which a noisy harness may point at /dev/null.
 */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            dprintf(2, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_log_sink(int level, const char *msg, void *arg)
{
    (void)level;
    (void)msg;
    (void)arg;
}

/* Keep formatting every message (format bugs surface) but print none of them. */
static inline void fuzz_quiet_logs(void)
{
    tlog_set_level(TLOG_DEBUG);
    tlog_set_sink(fuzz_log_sink, NULL);
}

#endif
