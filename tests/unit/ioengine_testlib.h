/* SPDX-License-Identifier: Apache-2.0 */
/* ioengine_testlib.h: what the IO engine tests share: temporary devices, the fixture that runs a
 * test on psync and uring (BOTH), the io_uring probe, batches of requests. */
#ifndef TIERFS_TESTS_IOENGINE_TESTLIB_H
#define TIERFS_TESTS_IOENGINE_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <liburing.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "ioengine/ioengine.h"

/*
 * Every device/engine test is registered twice, with the engine name as its prestate:
 * once for "psync" and once for "uring". Where io_uring cannot be set up (old kernel,
 * seccomp) the uring variants skip; psync always runs, so the program never has only
 * skips and never exits 77.
 */
#define KIB 1024u
#define MIB (1024u * 1024u)
struct fx {
    const char *engine;
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    char loopdev[64]; /* set when a test attached a loop device */
};
/* ---- asynchronous batches ---- */
struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    unsigned remaining; /* protected by lock */
};
struct treq {
    struct ioeng_req r; /* first: the callback gets &r */
    struct batch *b;
    int calls; /* atomic: how often done ran */
};
/* Both variants of a device/engine test, named "<test>/psync" and "<test>/uring". */
/* clang-format off */
#define BOTH(fn)                                                        \
    {#fn "/psync", fn, fx_setup, fx_teardown, (void *)"psync"},         \
    {#fn "/uring", fn, fx_setup, fx_teardown, (void *)"uring"}
/* clang-format on */

int fx_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw);
int fx_setup(void **state);
int fx_teardown(void **state);
struct fx *fx_get(void **state);
struct dev *open_dev(const char *path, uint64_t size, bool direct);
struct ioeng *make_eng(struct fx *f, struct dev *d, unsigned qd, bool reg);
void fill_rand(void *buf, size_t len, uint64_t *seed);
void batch_init(struct batch *b, unsigned n);
void batch_wait(struct batch *b);
void batch_one_done(struct batch *b);
void treq_done(struct ioeng_req *r);
void treq_set(struct treq *t, struct batch *b, enum ioeng_op op, void *buf, size_t len,
              uint64_t off);
bool probe_uring(void);
extern bool uring_ok;

#endif
