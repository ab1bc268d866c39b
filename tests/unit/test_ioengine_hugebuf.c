/* SPDX-License-Identifier: Apache-2.0 */
/* test_ioengine_hugebuf.c: the aligned buffer allocator's huge-page slots (hugebuf.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ioengine/ioengine.h"

#if defined(__SANITIZE_ADDRESS__)
#define T_SLOTS 0 /* hugebuf.c: every buffer is a malloc block under ASan */
#else
#define T_SLOTS 1
#endif

#define MIB (1ul << 20)
#define SLOT (2 * MIB)

/* @return the process's resident memory in KiB (VmRSS). */
static long t_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void t_fill(uint8_t *p, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i += 4096)
        p[i] = (uint8_t)(seed + i / 4096);
    p[len - 1] = seed;
}

static void t_check(const uint8_t *p, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i += 4096)
        assert_int_equal(p[i], (uint8_t)(seed + i / 4096));
    assert_int_equal(p[len - 1], seed);
}

/* Two 1 MiB buffers share a 2 MiB slot; a freed one is handed out again before a new
 * slot is taken; every buffer is aligned to its size. */
static void test_slots_share(void **state)
{
    (void)state;
    uint8_t *a = ioeng_buf_alloc(MIB), *b = ioeng_buf_alloc(MIB), *c;

    assert_non_null(a);
    assert_non_null(b);
    assert_true(ioeng_buf_huge(a) == T_SLOTS && ioeng_buf_huge(b) == T_SLOTS);
    assert_true((uintptr_t)a % 4096 == 0 && (uintptr_t)b % 4096 == 0);
    t_fill(a, MIB, 1);
    t_fill(b, MIB, 2);
    t_check(a, MIB, 1);
    t_check(b, MIB, 2);
    if (T_SLOTS) {
        assert_true((uintptr_t)a % MIB == 0);
        assert_true((uintptr_t)a / SLOT == (uintptr_t)b / SLOT); /* one slot */
    }
    ioeng_buf_free(a);
    c = ioeng_buf_alloc(MIB);
    assert_non_null(c);
    if (T_SLOTS)
        assert_ptr_equal(c, a); /* the slot's free half, not a new slot */
    t_fill(c, MIB, 3);
    t_check(b, MIB, 2); /* the neighbour's bytes survived the free of its half */
    ioeng_buf_free(b);
    ioeng_buf_free(c);
    ioeng_buf_free(NULL);
}

/* Sizes: powers of two from 64 KiB to 2 MiB and multiples of 2 MiB go to the slots,
 * aligned to their size (to 2 MiB for the large ones); other sizes are plain aligned
 * buffers. 33 buffers of 64 KiB fill one slot and start another, none overlapping. */
static void test_slot_sizes(void **state)
{
    (void)state;
    uint8_t *small[33], *odd = ioeng_buf_alloc(100000), *big = ioeng_buf_alloc(4 * MIB);
    uint8_t *three = ioeng_buf_alloc(3 * MIB), *zero = ioeng_buf_alloc(0);

    assert_non_null(odd);
    assert_non_null(big);
    assert_non_null(three);
    assert_non_null(zero);
    assert_false(ioeng_buf_huge(odd));
    assert_false(ioeng_buf_huge(three));
    assert_false(ioeng_buf_huge(zero));
    assert_true(ioeng_buf_huge(big) == T_SLOTS);
    if (T_SLOTS)
        assert_true((uintptr_t)big % SLOT == 0);
    t_fill(big, 4 * MIB, 7);
    t_fill(odd, 100000, 8);
    for (int i = 0; i < 33; i++) {
        small[i] = ioeng_buf_alloc(64 << 10);
        assert_non_null(small[i]);
        assert_true(ioeng_buf_huge(small[i]) == T_SLOTS);
        if (T_SLOTS)
            assert_true((uintptr_t)small[i] % (64 << 10) == 0);
        t_fill(small[i], 64 << 10, (uint8_t)(20 + i));
    }
    for (int i = 0; i < 33; i++)
        t_check(small[i], 64 << 10, (uint8_t)(20 + i));
    t_check(big, 4 * MIB, 7);
    t_check(odd, 100000, 8);
    for (int i = 0; i < 33; i += 2) /* every other one, then the rest */
        ioeng_buf_free(small[i]);
    for (int i = 1; i < 33; i += 2)
        t_check(small[i], 64 << 10, (uint8_t)(20 + i));
    for (int i = 1; i < 33; i += 2)
        ioeng_buf_free(small[i]);
    ioeng_buf_free(big);
    ioeng_buf_free(odd);
    ioeng_buf_free(three);
    ioeng_buf_free(zero);
}

/* Freed buffers give their memory back: 96 MiB touched and freed leaves the process's
 * resident memory where it was (within 16 MiB), whole slots or halves. */
static void test_memory_returned(void **state)
{
    (void)state;
    enum { N = 96 };
    uint8_t *b[N];
    long r0 = t_rss_kib();

    for (int i = 0; i < N; i++) {
        b[i] = ioeng_buf_alloc(MIB);
        assert_non_null(b[i]);
        memset(b[i], 0x11, MIB);
    }
    long r1 = t_rss_kib();
    assert_true(r1 - r0 >= (N - 8) * 1024); /* the buffers were resident */
    if (!T_SLOTS) { /* ASan's allocator keeps freed memory in its quarantine */
        for (int i = 0; i < N; i++)
            ioeng_buf_free(b[i]);
        return;
    }
    for (int i = 0; i < N; i += 2) /* one half of every slot: the other keeps it */
        ioeng_buf_free(b[i]);
    long r2 = t_rss_kib();
    assert_true(r1 - r2 >= (N / 2 - 8) * 1024);
    for (int i = 1; i < N; i += 2)
        assert_true(b[i][0] == 0x11 && b[i][MIB - 1] == 0x11);
    for (int i = 1; i < N; i += 2)
        ioeng_buf_free(b[i]);
    long r3 = t_rss_kib();
    assert_true(r3 - r0 < 16 * 1024);
}

/* Threads allocating and freeing mixed sizes at once: every buffer keeps its own bytes. */
struct t_thr {
    unsigned seed;
    int bad;
};

static void *t_worker(void *arg)
{
    struct t_thr *t = arg;
    static const size_t sizes[] = {64 << 10, 128 << 10, MIB, SLOT, 4 * MIB, 5000, MIB + 4096};
    enum { SLOTS = 12 };
    uint8_t *held[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    uint8_t tag[SLOTS] = {0};

    for (int round = 0; round < 1500; round++) {
        unsigned k = (unsigned)rand_r(&t->seed) % SLOTS;
        if (held[k]) {
            for (size_t i = 0; i < len[k]; i += 4096)
                if (held[k][i] != tag[k])
                    t->bad++;
            if (held[k][len[k] - 1] != tag[k])
                t->bad++;
            ioeng_buf_free(held[k]);
            held[k] = NULL;
            continue;
        }
        len[k] = sizes[(unsigned)rand_r(&t->seed) % (sizeof(sizes) / sizeof(sizes[0]))];
        held[k] = ioeng_buf_alloc(len[k]);
        if (!held[k]) {
            t->bad++;
            continue;
        }
        tag[k] = (uint8_t)rand_r(&t->seed);
        for (size_t i = 0; i < len[k]; i += 4096)
            held[k][i] = tag[k];
        held[k][len[k] - 1] = tag[k];
    }
    for (int k = 0; k < SLOTS; k++)
        ioeng_buf_free(held[k]);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    struct t_thr t[4];

    for (int i = 0; i < 4; i++) {
        t[i] = (struct t_thr){.seed = 77u + (unsigned)i};
        assert_int_equal(pthread_create(&th[i], NULL, t_worker, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].bad, 0);
    }
}

/* The child of test_as_limit, in a fresh process (the reservation is made once): under a
 * 2 GiB address-space limit the slots take 1 GiB of it (half), 1024 buffers of 1 MiB;
 * past them buffers still come (posix_memalign). Not under a sanitizer: its shadow
 * memory needs an unlimited address space. @return 0 when all held. */
static int t_as_child(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 0;
#else
    struct rlimit lim = {.rlim_cur = 2ull << 30, .rlim_max = 2ull << 30};
    enum { N = 1100 };
    static uint8_t *b[N];
    int huge = 0;

    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return 10;
    for (int i = 0; i < N; i++) {
        if (!(b[i] = ioeng_buf_alloc(MIB)))
            return 11;
        huge += ioeng_buf_huge(b[i]);
    }
    if (huge != 1024)
        return 12;
    b[0][0] = 1; /* a slot buffer is writable memory */
    b[N - 1][0] = 1;
    for (int i = 0; i < N; i++)
        ioeng_buf_free(b[i]);
    return 0;
#endif
}

/* The child of test_env_off: TIERFS_HUGE_BUFFERS=0 before the first buffer keeps every
 * buffer off the slots. @return 0 when it did. */
static int t_env_child(void)
{
    setenv("TIERFS_HUGE_BUFFERS", "0", 1);
    uint8_t *b = ioeng_buf_alloc(MIB);
    int rc = !b ? 20 : ioeng_buf_huge(b) ? 21 : 0;
    if (b)
        b[MIB - 1] = 1;
    ioeng_buf_free(b);
    return rc;
}

/* Run this program again with @arg (a fresh process: the reservation is made once).
 * @return its exit status. */
static int t_child(const char *arg)
{
    pid_t pid = fork();
    int st = 0;

    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_ioengine_hugebuf", arg, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_as_limit(void **state)
{
    (void)state;
    assert_int_equal(t_child("--as-limit-child"), 0);
}

static void test_env_off(void **state)
{
    (void)state;
    assert_int_equal(t_child("--env-off-child"), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--as-limit-child") == 0)
        return t_as_child();
    if (argc > 1 && strcmp(argv[1], "--env-off-child") == 0)
        return t_env_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_as_limit),        cmocka_unit_test(test_env_off),
        cmocka_unit_test(test_slots_share),     cmocka_unit_test(test_slot_sizes),
        cmocka_unit_test(test_memory_returned), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
