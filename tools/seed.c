/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seed.c: tierfs-seed, uploads a local tree or a generated sample dataset to a bucket
 * with many PUTs in flight (objstore, asynchronous).
 *
 *   tierfs-seed [--env FILE] [--endpoint URL --bucket B ...] [--prefix P] [--jobs N]
 *               (--dir LOCALDIR | --sample [--big-size SIZE] [--files N])
 *
 * --sample writes a deterministic dataset: a Hive-style table
 * (table/year=YYYY/month=MM/day=DD/part-N.parquet), nested logs/ and docs/ directories,
 * a few hundred small and medium files, and big/big.bin of --big-size bytes (default 1G).
 * Content is pseudo-random from the key, so it can be regenerated for checks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore.h"

#define SEED_MAX_INFLIGHT_BYTES (1ull << 30)

struct seed_item {
    char *key;
    char *path; /* local file, or NULL for generated content */
    uint64_t size;
};

struct seed {
    struct objstore *os;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned inflight;       /* protected by lock */
    uint64_t inflight_bytes; /* protected by lock */
    unsigned failed;         /* protected by lock */
    uint64_t done_files, done_bytes;
};

struct seed_put {
    struct objstore_req req;
    struct seed *s;
    char *key;
    void *buf;
    uint64_t size;
};

static void seed_fill(const char *key, void *buf, uint64_t size)
{
    uint64_t st = cmn_hash64(key, strlen(key), 42) | 1;
    uint8_t *p = buf;
    uint64_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t v = cmn_rand64(&st);
        memcpy(p + i, &v, 8);
    }
    uint64_t v = cmn_rand64(&st);
    for (; i < size; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static void seed_put_done(struct objstore_req *req)
{
    struct seed_put *p = req->arg;
    struct seed *s = p->s;
    if (req->result < 0)
        fprintf(stderr, "tierfs-seed: PUT %s failed: %s\n", p->key,
                req->errmsg[0] ? req->errmsg : objstore_strerror(req->result));
    pthread_mutex_lock(&s->lock);
    s->inflight--;
    s->inflight_bytes -= p->size;
    if (req->result < 0)
        s->failed++;
    else {
        s->done_files++;
        s->done_bytes += p->size;
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(p->buf);
    free(p->key);
    free(p);
}

/* Read a whole local file. @return 0 or -errno. */
static int seed_read_file(const char *path, void *buf, uint64_t size)
{
    int fd = open(path, O_RDONLY);
    uint64_t got = 0;
    if (fd < 0)
        return -errno;
    while (got < size) {
        ssize_t n = pread(fd, (char *)buf + got, size - got, (off_t)got);
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        got += (uint64_t)n;
    }
    close(fd);
    return 0;
}

/* Queue one PUT, waiting while too many requests or bytes are in flight. */
static int seed_submit(struct seed *s, const struct seed_item *it, unsigned jobs)
{
    struct seed_put *p;
    int rc;

    pthread_mutex_lock(&s->lock);
    while (s->inflight >= jobs ||
           (s->inflight > 0 && s->inflight_bytes + it->size > SEED_MAX_INFLIGHT_BYTES))
        pthread_cond_wait(&s->cond, &s->lock);
    s->inflight++;
    s->inflight_bytes += it->size;
    pthread_mutex_unlock(&s->lock);

    p = calloc(1, sizeof(*p));
    if (!p || !(p->key = strdup(it->key)) || !(p->buf = malloc(it->size ? it->size : 1))) {
        rc = -ENOMEM;
        goto fail;
    }
    p->s = s;
    p->size = it->size;
    if (it->path) {
        if ((rc = seed_read_file(it->path, p->buf, it->size)) < 0) {
            fprintf(stderr, "tierfs-seed: %s: %s\n", it->path, strerror(-rc));
            goto fail;
        }
    } else {
        seed_fill(it->key, p->buf, it->size);
    }
    p->req.op = OBJSTORE_OP_PUT;
    p->req.key = p->key;
    p->req.buf = p->buf;
    p->req.len = it->size;
    p->req.buf_cap = it->size;
    p->req.done = seed_put_done;
    p->req.arg = p;
    if ((rc = objstore_submit(s->os, &p->req)) == 0)
        return 0;
    fprintf(stderr, "tierfs-seed: PUT %s: %s\n", it->key, strerror(-rc));
fail:
    if (p) {
        free(p->buf);
        free(p->key);
        free(p);
    }
    pthread_mutex_lock(&s->lock);
    s->inflight--;
    s->inflight_bytes -= it->size;
    s->failed++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

struct seed_list {
    struct seed_item *v;
    size_t n, cap;
};

static int seed_add(struct seed_list *l, const char *key, const char *path, uint64_t size)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        struct seed_item *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    struct seed_item *it = &l->v[l->n];
    it->key = strdup(key);
    it->path = path ? strdup(path) : NULL;
    it->size = size;
    if (!it->key || (path && !it->path))
        return -ENOMEM;
    l->n++;
    return 0;
}

/* Every regular file under @dir becomes prefix + its relative path. */
static int seed_walk(struct seed_list *l, const char *prefix, const char *root, const char *rel)
{
    char path[PATH_MAX], key[PATH_MAX + 1024];
    if ((size_t)snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel) >= sizeof(path))
        return -ENAMETOOLONG;
    DIR *d = opendir(path);
    struct dirent *de;
    int rc = 0;
    if (!d) {
        fprintf(stderr, "tierfs-seed: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    while (rc == 0 && (de = readdir(d))) {
        char sub[PATH_MAX], full[PATH_MAX];
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
                sizeof(sub) ||
            (size_t)snprintf(full, sizeof(full), "%s/%s", root, sub) >= sizeof(full)) {
            fprintf(stderr, "tierfs-seed: %s/%s: path too long, skipped\n", path, de->d_name);
            continue;
        }
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = seed_walk(l, prefix, root, sub);
        else if (S_ISREG(st.st_mode)) {
            if ((size_t)snprintf(key, sizeof(key), "%s%s", prefix, sub) >= sizeof(key))
                continue;
            rc = seed_add(l, key, full, (uint64_t)st.st_size);
        }
    }
    closedir(d);
    return rc;
}

/* The demo dataset (see the top of the file). */
static int seed_sample(struct seed_list *l, const char *prefix, uint64_t big, unsigned files)
{
    char key[1024];
    uint64_t rnd = 12345;
    int rc = 0;
    unsigned n = 0;

    for (int y = 2023; y <= 2024 && rc == 0; y++)
        for (int m = 1; m <= 12 && rc == 0; m++)
            for (int d = 1; d <= 28 && rc == 0 && n < files / 2; d += 3, n++) {
                snprintf(key, sizeof(key), "%stable/year=%d/month=%02d/day=%02d/part-%05u.parquet",
                         prefix, y, m, d, n);
                rc = seed_add(l, key, NULL, 64 * 1024 + cmn_rand64(&rnd) % (2u << 20));
            }
    for (unsigned i = 0; rc == 0 && n < files; i++, n++) {
        static const char *const dirs[] = {"logs/app",    "logs/web/2024", "docs",
                                           "docs/api/v1", "images/thumbs", "misc"};
        const char *dir = dirs[i % CMN_ARRAY_SIZE(dirs)];
        snprintf(key, sizeof(key), "%s%s/file-%04u.%s", prefix, dir, i,
                 i % 3 == 0   ? "log"
                 : i % 3 == 1 ? "json"
                              : "bin");
        rc = seed_add(l, key, NULL, cmn_rand64(&rnd) % (256u << 10));
    }
    if (rc == 0) {
        snprintf(key, sizeof(key), "%sREADME.txt", prefix);
        rc = seed_add(l, key, NULL, 4096);
    }
    if (rc == 0 && big) {
        snprintf(key, sizeof(key), "%sbig/big.bin", prefix);
        rc = seed_add(l, key, NULL, big);
    }
    return rc;
}

/* KEY=VALUE lines of the test server's env file. */
static char *seed_env_get(const char *file, const char *name)
{
    FILE *f = fopen(file, "r");
    char line[2048];
    size_t nl = strlen(name);
    char *v = NULL;
    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, nl) == 0 && line[nl] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            free(v);
            v = strdup(line + nl + 1);
        }
    }
    fclose(f);
    return v;
}

static void seed_usage(void)
{
    printf("usage: tierfs-seed [options] (--dir LOCALDIR | --sample)\n"
           "  --env FILE        take endpoint, keys, region and bucket from a tests/s3server env "
           "file\n"
           "  --endpoint URL    S3 endpoint            --region NAME   signing region\n"
           "  --bucket NAME     target bucket          --path-style    path-style URLs\n"
           "  --access-key ID   --secret-key KEY       (default: the AWS credential chain)\n"
           "  --prefix P        key prefix for every object (e.g. data/)\n"
           "  --jobs N          PUTs in flight (default 32)\n"
           "  --dir LOCALDIR    upload every regular file under LOCALDIR\n"
           "  --sample          upload the generated demo dataset\n"
           "  --files N         sample: number of small files (default 400)\n"
           "  --big-size SIZE   sample: size of big/big.bin (default 1G, 0 = none)\n");
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {{"env", required_argument, NULL, 'e'},
                                          {"endpoint", required_argument, NULL, 'E'},
                                          {"region", required_argument, NULL, 'r'},
                                          {"bucket", required_argument, NULL, 'b'},
                                          {"path-style", no_argument, NULL, 'p'},
                                          {"access-key", required_argument, NULL, 'a'},
                                          {"secret-key", required_argument, NULL, 's'},
                                          {"prefix", required_argument, NULL, 'P'},
                                          {"jobs", required_argument, NULL, 'j'},
                                          {"dir", required_argument, NULL, 'd'},
                                          {"sample", no_argument, NULL, 'S'},
                                          {"files", required_argument, NULL, 'f'},
                                          {"big-size", required_argument, NULL, 'B'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    char *endpoint = NULL, *region = NULL, *bucket = NULL, *ak = NULL, *sk = NULL;
    const char *prefix = "", *dir = NULL;
    bool path_style = false, sample = false;
    uint64_t jobs = 32, files = 400, big = 1ull << 30;
    struct seed_list l = {0};
    struct seed s;
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoint = seed_env_get(optarg, "S3_ENDPOINT");
            region = seed_env_get(optarg, "S3_REGION");
            bucket = seed_env_get(optarg, "S3_BUCKET");
            ak = seed_env_get(optarg, "S3_ACCESS_KEY");
            sk = seed_env_get(optarg, "S3_SECRET_KEY");
            path_style = true;
            if (!endpoint || !bucket) {
                fprintf(stderr, "tierfs-seed: %s: no S3_ENDPOINT/S3_BUCKET in it\n", optarg);
                return 1;
            }
            break;
        case 'E':
            free(endpoint);
            endpoint = strdup(optarg);
            break;
        case 'r':
            free(region);
            region = strdup(optarg);
            break;
        case 'b':
            free(bucket);
            bucket = strdup(optarg);
            break;
        case 'p':
            path_style = true;
            break;
        case 'a':
            free(ak);
            ak = strdup(optarg);
            break;
        case 's':
            free(sk);
            sk = strdup(optarg);
            break;
        case 'P':
            prefix = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'S':
            sample = true;
            break;
        case 'j':
            if (cmn_parse_u64(optarg, 1024, &jobs) != 0 || jobs == 0) {
                fprintf(stderr, "tierfs-seed: bad value '%s' for --jobs: expected 1..1024\n",
                        optarg);
                return 1;
            }
            break;
        case 'f':
            if (cmn_parse_u64(optarg, 1000000, &files) != 0) {
                fprintf(stderr, "tierfs-seed: bad value '%s' for --files\n", optarg);
                return 1;
            }
            break;
        case 'B':
            if (cmn_parse_size(optarg, &big) != 0) {
                fprintf(stderr,
                        "tierfs-seed: bad value '%s' for --big-size: expected a size like 1G\n",
                        optarg);
                return 1;
            }
            break;
        case 'h':
            seed_usage();
            return 0;
        default:
            seed_usage();
            return 1;
        }
    }
    if (!bucket || (!dir && !sample) || (dir && sample)) {
        seed_usage();
        return 1;
    }
    rc = dir ? seed_walk(&l, prefix, dir, "") : seed_sample(&l, prefix, big, (unsigned)files);
    if (rc < 0)
        return 1;

    struct objstore_creds *creds = NULL;
    if (ak && sk)
        rc = objstore_creds_static(ak, sk, NULL, &creds);
    else
        rc = objstore_creds_default(NULL, &creds);
    if (rc < 0) {
        fprintf(stderr, "tierfs-seed: no credentials: %s\n", strerror(-rc));
        return 1;
    }
    struct objstore_s3_conf sc = {.bucket = bucket,
                                  .endpoint = endpoint,
                                  .region = region,
                                  .path_style = path_style,
                                  .max_connections = (unsigned)jobs,
                                  .creds = creds};
    struct objstore *s3;
    memset(&s, 0, sizeof(s));
    if (objstore_s3_create(&sc, &s3) < 0 || objstore_retry_create(s3, NULL, &s.os) < 0)
        return 1;
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);

    uint64_t t0 = cmn_now_ms(), total = 0;
    for (size_t i = 0; i < l.n; i++) {
        total += l.v[i].size;
        seed_submit(&s, &l.v[i], (unsigned)jobs);
    }
    pthread_mutex_lock(&s.lock);
    while (s.inflight)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);
    uint64_t ms = cmn_now_ms() - t0;
    char sz[32];
    printf("tierfs-seed: %llu of %zu objects (%s) to %s in %.1f s%s\n",
           (unsigned long long)s.done_files, l.n, cmn_fmt_size(total, sz, sizeof(sz)), bucket,
           (double)ms / 1000.0, s.failed ? ", SOME FAILED" : "");
    objstore_destroy(s.os);
    for (size_t i = 0; i < l.n; i++) {
        free(l.v[i].key);
        free(l.v[i].path);
    }
    free(l.v);
    free(endpoint);
    free(region);
    free(bucket);
    free(ak);
    free(sk);
    return s.failed ? 1 : 0;
}
