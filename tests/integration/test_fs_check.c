/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fs_check.c: data checks the mount tests run against a tierfs mount.
 *
 *   test_fs_check rand FILE REF N SEED MAXLEN
 *       N preads at random offsets (some past EOF) and lengths (1..MAXLEN) on FILE, each
 *       compared with the same pread on REF (length and bytes).
 *   test_fs_check stale FILE OLD NEW
 *       Open FILE, check its first 4 KiB against OLD, print "open", wait for a line on
 *       stdin (the test replaces the object meanwhile), then read the whole file through
 *       the same descriptor: every read must fail or match OLD; a byte of NEW that differs
 *       from OLD is a mixed version. Prints "old N errors M" and exits 0 unless mixed.
 * Exit 0 = pass, 1 = mismatch (printed), 2 = usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t check_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int check_open(const char *path, off_t *size)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    *size = st.st_size;
    return fd;
}

/* pread until @len bytes or EOF. @return bytes or -errno. */
static ssize_t check_pread_full(int fd, char *buf, size_t len, off_t off)
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

static int check_random(const char *file, const char *ref, long n, uint64_t seed, size_t maxlen)
{
    off_t fsize, rsize;
    int fd = check_open(file, &fsize), rfd = check_open(ref, &rsize);
    char *a = malloc(maxlen), *b = malloc(maxlen);
    uint64_t s = seed ? seed : 1;
    int rc;

    if (!a || !b) {
        rc = 2;
        goto out;
    }
    if (fsize != rsize) {
        printf("size %lld != reference %lld\n", (long long)fsize, (long long)rsize);
        rc = 1;
        goto out;
    }
    for (long i = 0; i < n; i++) {
        off_t off = (off_t)(check_rand(&s) % (uint64_t)(rsize + (off_t)maxlen / 4 + 1));
        size_t len = 1 + (size_t)(check_rand(&s) % maxlen);
        ssize_t x = check_pread_full(fd, a, len, off), y = check_pread_full(rfd, b, len, off);
        if (x != y || (x > 0 && memcmp(a, b, (size_t)x) != 0)) {
            printf("pread #%ld off %lld len %zu: got %zd, want %zd%s\n", i, (long long)off, len, x,
                   y, x == y ? " (data differs)" : "");
            rc = 1;
            goto out;
        }
    }
    printf("%ld random preads match\n", n);
    rc = 0;
out:
    free(a);
    free(b);
    return rc;
}

static int check_stale(const char *file, const char *oldp, const char *newp)
{
    off_t fsize, osize, nsize;
    int fd = check_open(file, &fsize), ofd = check_open(oldp, &osize),
        nfd = check_open(newp, &nsize);
    const size_t chunk = 64 * 1024;
    char *a = malloc(chunk), *o = malloc(chunk), *w = malloc(chunk);
    char line[64];
    long old = 0, errors = 0;
    int rc;

    if (!a || !o || !w) {
        rc = 2;
        goto out;
    }
    if (check_pread_full(fd, a, 4096, 0) != 4096 || check_pread_full(ofd, o, 4096, 0) != 4096 ||
        memcmp(a, o, 4096) != 0) {
        printf("first 4 KiB differ from the old version\n");
        rc = 1;
        goto out;
    }
    printf("open\n");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) {
        rc = 2;
        goto out;
    }
    for (off_t off = 0; off < osize; off += (off_t)chunk) {
        ssize_t x = check_pread_full(fd, a, chunk, off);
        if (x < 0) {
            errors++;
            continue;
        }
        ssize_t y = check_pread_full(ofd, o, chunk, off);
        ssize_t z = check_pread_full(nfd, w, chunk, off);
        if (x == y && memcmp(a, o, (size_t)x) == 0) {
            old++;
            continue;
        }
        printf("chunk at %lld is not the old version (%s)\n", (long long)off,
               x == z && memcmp(a, w, (size_t)x) == 0 ? "it is the new one" : "garbage");
        rc = 1;
        goto out;
    }
    printf("old %ld errors %ld\n", old, errors);
    rc = 0;
out:
    free(a);
    free(o);
    free(w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "rand") == 0)
        return check_random(argv[2], argv[3], atol(argv[4]), strtoull(argv[5], NULL, 0),
                            (size_t)atol(argv[6]));
    if (argc == 5 && strcmp(argv[1], "stale") == 0)
        return check_stale(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: test_fs_check rand FILE REF N SEED MAXLEN | stale FILE OLD NEW\n");
    return 2;
}
