/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rel_reader.c: a concurrent read workload on a tierfs mount that checks every byte.
 *
 *   test_rel_reader [-p PROCS] [-d SECONDS | -n OPS] [-s SEED] [-m MAXLEN] [-e] [-L MS]
 *                   [-a ALTDIR] [-D] MNTDIR REFDIR
 *
 * Every regular file under REFDIR is expected at the same relative path under MNTDIR.
 * PROCS processes (default 8) loop until SECONDS pass (or each did OPS opens): pick a
 * file, open it, then either read it sequentially to the end in chunks of random size
 * (one open in three) or do 1..16 preads at random offsets (some past EOF) of 1..MAXLEN
 * bytes. Each read is compared with the same range of the reference file. With -a, a
 * file may also match ALTDIR/path (an object replaced during the run): each open handle
 * must then match ONE of the two versions for all its reads; a mix is wrong bytes.
 *
 * Errors: without -e any failed open or read fails the run. With -e, EIO, ESTALE,
 * ETIMEDOUT, EACCES and ENOENT are counted and tolerated; any other errno fails the run.
 * -L MS fails the run when one open or read took longer than MS milliseconds (a hang).
 * -D drops the file's kernel page cache (POSIX_FADV_DONTNEED) before each close, so the
 * next open reads through the daemon again instead of from the kernel's pages. -O opens
 * with O_DIRECT (no kernel page cache at all).
 *
 * Prints one line:  reads R bytes B opens O errors E (eio a estale b eacces c other d) wrong W
 *                   short S max_ms M
 * Exit 0 = pass, 1 = wrong bytes / disallowed error / too slow, 2 = usage or setup.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct rel_file {
    char *rel; /* path relative to REFDIR */
    off_t size;
    off_t alt_size; /* -1 when there is no ALTDIR version */
};

/* Per-process counters in shared memory. */
struct rel_counts {
    uint64_t reads, bytes, opens, errors, eio, estale, eacces, other_err, wrong, shortr, max_ms;
    int fatal; /* a disallowed error or wrong bytes */
    char why[256];
};

static struct rel_file *rel_files;
static size_t rel_nfiles, rel_cap;
static const char *rel_refdir, *rel_altdir, *rel_mnt;
static size_t rel_refdir_len;

static uint64_t rel_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t rel_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int rel_walk(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    if (rel_nfiles == rel_cap) {
        size_t cap = rel_cap ? rel_cap * 2 : 256;
        struct rel_file *n = realloc(rel_files, cap * sizeof(*rel_files));
        if (!n)
            return -1;
        rel_files = n;
        rel_cap = cap;
    }
    struct rel_file *f = &rel_files[rel_nfiles++];
    f->rel = strdup(path + rel_refdir_len + 1);
    f->size = st->st_size;
    f->alt_size = -1;
    if (rel_altdir) {
        char alt[4096];
        struct stat ast;
        snprintf(alt, sizeof(alt), "%s/%s", rel_altdir, f->rel);
        if (stat(alt, &ast) == 0)
            f->alt_size = ast.st_size;
    }
    return f->rel ? 0 : -1;
}

/* pread until @len bytes or EOF. @return bytes or -errno. */
static ssize_t rel_pread_full(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

__attribute__((format(printf, 2, 3))) static void rel_fatal(struct rel_counts *c, const char *fmt,
                                                            ...)
{
    va_list ap;
    if (!c->fatal) {
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
    }
    c->fatal = 1;
}

/* Count an error; @return 0 when tolerated. */
static int rel_error(struct rel_counts *c, int err, bool allow, const char *what, const char *path)
{
    c->errors++;
    if (err == EIO)
        c->eio++;
    else if (err == ESTALE)
        c->estale++;
    else if (err == EACCES)
        c->eacces++;
    else
        c->other_err++;
    if (allow &&
        (err == EIO || err == ESTALE || err == ETIMEDOUT || err == EACCES || err == ENOENT))
        return 0;
    if (!c->fatal)
        snprintf(c->why, sizeof(c->why), "%s %s: %s", what, path, strerror(err));
    c->fatal = 1;
    return -1;
}

/* Versions a handle may still be: bit 0 = REFDIR, bit 1 = ALTDIR. */
static int rel_check_chunk(const char *got, ssize_t n, int rfd, int afd, off_t off, char *tmp,
                           size_t len)
{
    int ok = 0;
    ssize_t y = rel_pread_full(rfd, tmp, len, off);
    if (y == n && (n == 0 || memcmp(got, tmp, (size_t)n) == 0))
        ok |= 1;
    if (afd >= 0) {
        y = rel_pread_full(afd, tmp, len, off);
        if (y == n && (n == 0 || memcmp(got, tmp, (size_t)n) == 0))
            ok |= 2;
    }
    return ok;
}

static bool rel_drop;
static int rel_oflags = O_RDONLY; /* -O adds O_DIRECT: no page cache at all */

/* First offset in @got (n bytes) that differs from @fd at @off, or -1. */
static long long rel_first_diff(const char *got, ssize_t n, int fd, off_t off, char *tmp)
{
    ssize_t y = rel_pread_full(fd, tmp, (size_t)n, off);
    for (ssize_t i = 0; i < n; i++)
        if (i >= y || got[i] != tmp[i])
            return i;
    return -1;
}

static void rel_worker(unsigned idx, uint64_t seed, uint64_t deadline_ms, long ops, size_t maxlen,
                       bool allow, uint64_t limit_ms, struct rel_counts *c)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + idx + 1;
    char *a = malloc(maxlen), *b = malloc(maxlen);
    char path[4096], ref[4096], alt[4096];

    if (!a || !b) {
        c->fatal = 1;
        snprintf(c->why, sizeof(c->why), "out of memory");
        return;
    }
    for (long op = 0; ops ? op < ops : rel_now_ms() < deadline_ms; op++) {
        struct rel_file *f = &rel_files[rel_rand(&s) % rel_nfiles];
        snprintf(path, sizeof(path), "%s/%s", rel_mnt, f->rel);
        snprintf(ref, sizeof(ref), "%s/%s", rel_refdir, f->rel);
        int rfd = open(ref, O_RDONLY), afd = -1;
        if (rfd < 0) {
            rel_fatal(c, "open reference %s: %s", ref, strerror(errno));
            break;
        }
        if (f->alt_size >= 0) {
            snprintf(alt, sizeof(alt), "%s/%s", rel_altdir, f->rel);
            afd = open(alt, O_RDONLY);
        }
        off_t size = f->alt_size > f->size ? f->alt_size : f->size;
        uint64_t t0 = rel_now_ms();
        int fd = open(path, rel_oflags);
        uint64_t dt = rel_now_ms() - t0;
        if (dt > c->max_ms)
            c->max_ms = dt;
        c->opens++;
        if (fd < 0) {
            int err = errno;
            close(rfd);
            if (afd >= 0)
                close(afd);
            if (rel_error(c, err, allow, "open", path) != 0)
                break;
            continue;
        }
        int versions = 3; /* what this handle may still be */
        bool seq = rel_rand(&s) % 3 == 0;
        unsigned nreads = seq ? UINT32_MAX : 1 + (unsigned)(rel_rand(&s) % 16);
        off_t pos = 0;
        for (unsigned r = 0; r < nreads; r++) {
            size_t len = 1 + (size_t)(rel_rand(&s) % maxlen);
            off_t off =
                seq ? pos : (off_t)(rel_rand(&s) % (uint64_t)(size + (off_t)maxlen / 8 + 1));
            t0 = rel_now_ms();
            ssize_t n = rel_pread_full(fd, a, len, off);
            dt = rel_now_ms() - t0;
            if (dt > c->max_ms)
                c->max_ms = dt;
            c->reads++;
            if (n < 0) {
                if (rel_error(c, (int)-n, allow, "read", path) != 0)
                    goto out;
                break; /* the handle failed: a new open */
            }
            c->bytes += (uint64_t)n;
            if ((size_t)n < len && off + n < size) /* EOF of which version? checked below */
                c->shortr++;
            int ok = rel_check_chunk(a, n, rfd, afd, off, b, len);
            versions &= ok;
            if (!versions) {
                c->wrong++;
                /* where the chunk stops matching each version, for the report */
                long long d1 = rel_first_diff(a, n, rfd, off, b), d2 = -1;
                if (afd >= 0)
                    d2 = rel_first_diff(a, n, afd, off, b);
                rel_fatal(
                    c,
                    "%s: wrong bytes at offset %lld (len %lld, got %lld; this handle "
                    "matched %s so far; the chunk differs from %s at +%lld, from %s at +%lld)",
                    path, (long long)off, (long long)len, (long long)n,
                    ok ? "the other version" : "neither version", "the reference", d1,
                    "the alternative", d2);
                goto out;
            }
            if (seq) {
                if (n == 0)
                    break;
                pos += n;
            }
        }
        if (rel_drop)
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
        close(rfd);
        if (afd >= 0)
            close(afd);
        continue;
    out:
        close(fd);
        close(rfd);
        if (afd >= 0)
            close(afd);
        break;
    }
    if (limit_ms && c->max_ms > limit_ms && !c->fatal) {
        c->fatal = 1;
        snprintf(c->why, sizeof(c->why), "one call took %llu ms (limit %llu)",
                 (unsigned long long)c->max_ms, (unsigned long long)limit_ms);
    }
    free(a);
    free(b);
}

static void rel_usage(void)
{
    fprintf(stderr, "usage: test_rel_reader [-p PROCS] [-d SECONDS | -n OPS] [-s SEED] [-m MAXLEN] "
                    "[-e] [-L MS] [-a ALTDIR] [-D] [-O] MNTDIR REFDIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned procs = 8;
    double secs = 10;
    long ops = 0;
    uint64_t seed = 1, limit_ms = 0;
    size_t maxlen = 256 * 1024;
    bool allow = false;
    int opt;

    while ((opt = getopt(argc, argv, "p:d:n:s:m:eL:a:DO")) != -1) {
        switch (opt) {
        case 'p':
            procs = (unsigned)atoi(optarg);
            break;
        case 'd':
            secs = atof(optarg);
            break;
        case 'n':
            ops = atol(optarg);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'm':
            maxlen = (size_t)atol(optarg);
            break;
        case 'e':
            allow = true;
            break;
        case 'L':
            limit_ms = strtoull(optarg, NULL, 0);
            break;
        case 'a':
            rel_altdir = optarg;
            break;
        case 'D':
            rel_drop = true;
            break;
        case 'O':
            rel_oflags |= O_DIRECT;
            break;
        default:
            rel_usage();
        }
    }
    if (argc - optind != 2 || procs == 0 || procs > 1024 || maxlen == 0)
        rel_usage();
    rel_mnt = argv[optind];
    rel_refdir = argv[optind + 1];
    rel_refdir_len = strlen(rel_refdir);
    while (rel_refdir_len > 1 && rel_refdir[rel_refdir_len - 1] == '/')
        rel_refdir_len--;
    if (nftw(rel_refdir, rel_walk, 32, FTW_PHYS) != 0 || rel_nfiles == 0) {
        fprintf(stderr, "test_rel_reader: no files under %s\n", rel_refdir);
        return 2;
    }
    struct rel_counts *cs =
        mmap(NULL, procs * sizeof(*cs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (cs == MAP_FAILED)
        return 2;
    memset(cs, 0, procs * sizeof(*cs));
    uint64_t deadline = rel_now_ms() + (uint64_t)(secs * 1000);
    for (unsigned i = 0; i < procs; i++) {
        pid_t p = fork();
        if (p < 0)
            return 2;
        if (p == 0) {
            rel_worker(i, seed, deadline, ops, maxlen, allow, limit_ms, &cs[i]);
            _exit(0);
        }
    }
    int status, crashed = 0;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            crashed++;
    struct rel_counts t;
    memset(&t, 0, sizeof(t));
    int fatal = crashed != 0;
    for (unsigned i = 0; i < procs; i++) {
        t.reads += cs[i].reads;
        t.bytes += cs[i].bytes;
        t.opens += cs[i].opens;
        t.errors += cs[i].errors;
        t.eio += cs[i].eio;
        t.estale += cs[i].estale;
        t.eacces += cs[i].eacces;
        t.other_err += cs[i].other_err;
        t.wrong += cs[i].wrong;
        t.shortr += cs[i].shortr;
        if (cs[i].max_ms > t.max_ms)
            t.max_ms = cs[i].max_ms;
        if (cs[i].fatal) {
            /* every worker's reason: a wrong byte seen by a later worker must not hide
             * behind an earlier worker's error */
            fprintf(stderr, "test_rel_reader: process %u: %s\n", i, cs[i].why);
            fatal = 1;
        }
    }
    printf("reads %llu bytes %llu opens %llu errors %llu (eio %llu estale %llu eacces %llu other "
           "%llu) "
           "wrong %llu short %llu max_ms %llu\n",
           (unsigned long long)t.reads, (unsigned long long)t.bytes, (unsigned long long)t.opens,
           (unsigned long long)t.errors, (unsigned long long)t.eio, (unsigned long long)t.estale,
           (unsigned long long)t.eacces, (unsigned long long)t.other_err,
           (unsigned long long)t.wrong, (unsigned long long)t.shortr, (unsigned long long)t.max_ms);
    if (crashed)
        fprintf(stderr, "test_rel_reader: %d worker(s) crashed\n", crashed);
    return fatal ? 1 : 0;
}
