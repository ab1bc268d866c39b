/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_testlib.h: what the cooperator's tests share (test_hybridcache.c, test_hc_coop_disk.c):
 * a test origin that completes inline or from its own thread, keys and their bytes, the
 * single-flight and streaming drivers, caches with and without a disk tier.
 */
#ifndef TIERFS_TESTS_HC_TESTLIB_H
#define TIERFS_TESTS_HC_TESTLIB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

#define KB 1024u
#define BS (64u * KB)

/* ---- a test origin: completes inline, or later from its own thread ---- */
struct origin;

struct oreq {
    struct origin *o;
    unsigned id;           /* bytes are pattern(id) */
    struct hc_flight *ctx; /* set while queued */
    void *buf;
    size_t cap;
    struct oreq *next;
    void *user; /* the caller's (stream tests) */
};

struct origin {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct oreq *head, *tail; /* protected by lock */
    bool stop;
    pthread_t thread;
    bool async;
    unsigned delay_us;                  /* per request, async only */
    int fail;                           /* complete with this -errno */
    size_t len;                         /* bytes per value (0 = cap) */
    struct hc_cache *wait_merges_cache; /* async: hold the first request until... */
    uint64_t wait_merges;               /* ...stats.merges reaches this */
    _Atomic unsigned calls;
};

/* ---- single flight ---- */
#define NTHREADS 32

struct sf_arg {
    struct hc_cache *c;
    struct origin *o;
    pthread_barrier_t *bar;
    unsigned id;
    int rc;
    enum hc_source src;
    const void *data;
};

/* ---- memory bound ---- */
struct stream {
    struct hc_cache *c;
    struct origin *o;
    struct oreq *reqs;
    unsigned first, n;
    bool pin; /* keep every entry (readers pin the budget) */
    pthread_mutex_t lock;
    unsigned done, bad;
    struct hc_entry **pinned;
};

struct issuer {
    struct stream *s;
    unsigned from, to;
};

struct monitor {
    struct hc_cache *c;
    _Atomic bool stop;
    uint64_t max_used;
};

#define DISK_BYTES (32u << 20)

#define REGION (1u << 20)

struct hc_count_box {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
};

unsigned char pattern(unsigned id);
void origin_serve(struct origin *o, struct oreq *r);
void *origin_thread(void *p);
void fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg);
void origin_start(struct origin *o, bool async);
void origin_stop(struct origin *o);
int key_of(unsigned id, char *key);
bool bytes_are(const struct hc_entry *e, unsigned id, size_t len);
int fetch_id(struct hc_cache *c, struct origin *o, unsigned id, unsigned flags, enum hc_source *src,
             size_t expect_len);
struct hc_cache *mem_cache(uint64_t mem, const char *policy);
/* How many of the ids [from, to) the memory tier holds (hc_get). */
unsigned held_ids(struct hc_cache *c, unsigned from, unsigned to);
void *sf_thread(void *p);
void run_single_flight_src(struct hc_cache *c, struct origin *o, unsigned id, int expect_rc,
                           uint64_t merges_before, enum hc_source src, bool all_merge);
void run_single_flight(struct hc_cache *c, struct origin *o, unsigned id, int expect_rc,
                       uint64_t merges_before);
void stream_done(int result, struct hc_entry *e, enum hc_source src, void *arg);
void *issue_thread(void *p);
void *monitor_thread(void *p);
uint64_t run_stream(struct hc_cache *c, struct origin *o, unsigned first, unsigned n, bool pin,
                    struct stream *s);
void stream_free(struct stream *s);
void t_path(char *path, size_t cap, const char *name);
struct hc_conf disk_conf(const char *path, enum hc_write_mode wm, uint64_t mem);
struct hc_cache *disk_cache_conf(struct hc_conf *conf);
struct hc_cache *disk_cache(const char *path, enum hc_write_mode wm, uint64_t mem);
/* Wait (up to 10 s) until the deferred disk writer holds no block; @return its count of
 * blocks deferred so far. */
uint64_t wait_defer(struct hc_cache *c);
struct dev *t_dev(const char *path);
void stream_done_box(int result, struct hc_entry *e, enum hc_source src, void *arg);

#endif
