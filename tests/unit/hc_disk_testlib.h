/* SPDX-License-Identifier: Apache-2.0 */
/* hc_disk_testlib.h: what the disk tier's tests share: temporary devices, opening a tier on one,
 * keys and values, synchronous lookups and inserts, stats, scribbling on a device, and the runner
 * that runs each test on psync and uring. */
#ifndef TIERFS_TESTS_HC_DISK_TESTLIB_H
#define TIERFS_TESTS_HC_DISK_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/disk_i.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

#define T_BLOCK (64u << 10)
#define T_REGION (256u << 10)
#define T_HDR 8192u /* >= the device header area (the layout rounds it to 4 KiB) */

/* ---- helpers ---- */
struct t_env {
    const char *engine;
    char path[512];
};
struct t_opts {
    uint64_t size;
    uint32_t block, region;
    bool compression;
    const char *identity;
    uint64_t wq;
    struct dev *dev; /* use this device (wrapped) instead of opening path */
    struct hc_accounting *acct;
};
struct t_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    ssize_t result;
};

void t_path(struct t_env *e, const char *name);
struct dev *t_dev(const char *path, uint64_t size);
struct hc_disk *t_open(const struct t_env *e, const struct t_opts *o);
uint64_t t_hash(const char *key);
void t_key(char *buf, size_t cap, int i);
void t_fill(uint8_t *buf, size_t len, int i, bool compressible);
void t_done(ssize_t result, void *arg);
ssize_t t_lookup(struct hc_disk *d, const char *key, void *buf, size_t cap);
int t_insert(struct hc_disk *d, const char *key, const void *data, size_t len);
void t_put(struct hc_disk *d, int i, size_t len, bool compressible);
int t_check(struct hc_disk *d, int i, size_t len, bool compressible);
struct hc_disk_stats t_stats(struct hc_disk *d);
void t_scribble(const char *path, uint64_t off, size_t len, int byte);
ssize_t t_lookup_range(struct hc_disk *d, const char *key, uint32_t off, uint32_t len, void *buf,
                       size_t cap);
bool t_uring_available(void);

/* A test to run on each engine: its state is the engine's name. */
struct t_case {
    const char *name;
    CMUnitTestFunction fn;
};
/* Run every case on psync and, when io_uring can be set up here, on uring, named
 * "<name>/<engine>". @return cmocka's status (the program's exit code). */
int t_run_cases(const struct t_case *cases, size_t n);

#endif
