/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_strict.h: skipping a unit test, or failing it in strict mode. tests/run-all.sh sets
 * TIERFS_STRICT=1 under CI=true or --strict: there a test that cannot run (io_uring not
 * available, no loop device, the AWS SigV4 suite not fetched) fails with the reason
 * instead of skipping, so a green run means every case ran. Include after <cmocka.h>.
 */
#ifndef TIERFS_TESTS_T_STRICT_H
#define TIERFS_TESTS_T_STRICT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* @return true when TIERFS_STRICT is set to anything but "" or "0". */
static inline bool t_strict(void)
{
    const char *s = getenv("TIERFS_STRICT");
    return s && *s && strcmp(s, "0") != 0;
}

/* Skip the running test with a printf-style reason, or fail it in strict mode. */
#define T_SKIP(...)                                                                                \
    do {                                                                                           \
        if (t_strict())                                                                            \
            fail_msg("TIERFS_STRICT: this test cannot run here: " __VA_ARGS__);                    \
        skip();                                                                                    \
    } while (0)

#endif
