/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_objstore.c: the network ceiling: pull one object with N parallel ranged GETs of a
 * fixed size through the objstore S3 client and report MiB/s, requests and latency
 * percentiles. Cache benchmarks compare against this number.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore.h"

struct bench_opts {
    const char *endpoint, *bucket, *key, *region, *access_key, *secret_key, *ca_bundle;
    bool path_style, insecure, anonymous, no_retry;
    unsigned parallel;
    uint64_t request_size, size, create_size, duration_ms;
};

/* One request slot: its buffer is reused by every request the slot carries. */
struct bench_slot {
    struct objstore_req req;
    void *buf;
    uint64_t t0_ns;
    struct bench *b;
};

struct bench {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bench_slot **free_slots; /* protected by lock */
    unsigned n_free;
    uint64_t *lat_ns; /* protected by lock; one per finished request */
    size_t n_lat, cap_lat;
    uint64_t bytes, errors; /* protected by lock */
    char first_err[OBJSTORE_ERRMSG_MAX];
};

static void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: tierfs-bench-objstore --bucket B --key K [options]\n"
            "Pull one object with parallel ranged GETs; print MiB/s, requests, p50/p99 latency.\n"
            "  --endpoint URL         S3 endpoint (default $AWS_ENDPOINT_URL or AWS)\n"
            "  --bucket NAME          bucket (required)\n"
            "  --key KEY              object key (required)\n"
            "  --region R             region (default $AWS_REGION or us-east-1)\n"
            "  --path-style           path-style URLs (endpoint/bucket/key)\n"
            "  --access-key K         access key (default: the AWS credential chain)\n"
            "  --secret-key S         secret key (with --access-key)\n"
            "  --anonymous            unsigned requests\n"
            "  --ca-bundle FILE       CA certificates for TLS\n"
            "  --insecure             do not verify TLS certificates\n"
            "  --parallel N           requests in flight (default 16)\n"
            "  --request-size SIZE    bytes per GET, K/M/G suffixes (default 8M)\n"
            "  --size SIZE            read only the first SIZE bytes (default the whole object)\n"
            "  --create SIZE          first PUT SIZE bytes of random data as KEY\n"
            "  --duration TIME        repeat passes for TIME (e.g. 10s); default one pass\n"
            "  --no-retry             bare S3 client, no retry layer\n"
            "  --help                 this text\n");
}

/* Print a one-line error and exit 2. */
static void bench_die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "tierfs-bench-objstore: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

static uint64_t bench_size_arg(const char *name, const char *v)
{
    uint64_t x;
    if (cmn_parse_size(v, &x) < 0 || x == 0)
        bench_die_usage("bad size for %s", name);
    return x;
}

static void bench_parse(int argc, char **argv, struct bench_opts *o)
{
    enum {
        O_EP = 256,
        O_BUCKET,
        O_KEY,
        O_REGION,
        O_PATH,
        O_AK,
        O_SK,
        O_ANON,
        O_CA,
        O_INSEC,
        O_PAR,
        O_RSZ,
        O_SIZE,
        O_CREATE,
        O_DUR,
        O_NORETRY,
        O_HELP
    };
    static const struct option lo[] = {
        {"endpoint", required_argument, NULL, O_EP},
        {"bucket", required_argument, NULL, O_BUCKET},
        {"key", required_argument, NULL, O_KEY},
        {"region", required_argument, NULL, O_REGION},
        {"path-style", no_argument, NULL, O_PATH},
        {"access-key", required_argument, NULL, O_AK},
        {"secret-key", required_argument, NULL, O_SK},
        {"anonymous", no_argument, NULL, O_ANON},
        {"ca-bundle", required_argument, NULL, O_CA},
        {"insecure", no_argument, NULL, O_INSEC},
        {"parallel", required_argument, NULL, O_PAR},
        {"request-size", required_argument, NULL, O_RSZ},
        {"size", required_argument, NULL, O_SIZE},
        {"create", required_argument, NULL, O_CREATE},
        {"duration", required_argument, NULL, O_DUR},
        {"no-retry", no_argument, NULL, O_NORETRY},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->parallel = 16;
    o->request_size = 8ull << 20;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_EP:
            o->endpoint = optarg;
            break;
        case O_BUCKET:
            o->bucket = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_REGION:
            o->region = optarg;
            break;
        case O_PATH:
            o->path_style = true;
            break;
        case O_AK:
            o->access_key = optarg;
            break;
        case O_SK:
            o->secret_key = optarg;
            break;
        case O_ANON:
            o->anonymous = true;
            break;
        case O_CA:
            o->ca_bundle = optarg;
            break;
        case O_INSEC:
            o->insecure = true;
            break;
        case O_NORETRY:
            o->no_retry = true;
            break;
        case O_PAR:
            if (cmn_parse_u64(optarg, 4096, &v) < 0 || v == 0)
                bench_die_usage("bad --parallel '%s' (1..4096)", optarg);
            o->parallel = (unsigned)v;
            break;
        case O_RSZ:
            o->request_size = bench_size_arg("--request-size", optarg);
            break;
        case O_SIZE:
            o->size = bench_size_arg("--size", optarg);
            break;
        case O_CREATE:
            o->create_size = bench_size_arg("--create", optarg);
            break;
        case O_DUR:
            if (cmn_parse_duration_ms(optarg, &o->duration_ms) < 0 || o->duration_ms == 0)
                bench_die_usage("bad --duration '%s'", optarg);
            break;
        case O_HELP:
            bench_usage(stdout);
            exit(0);
        default:
            bench_die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bench_die_usage("unexpected argument '%s'", argv[optind]);
    if (!o->bucket || !o->key)
        bench_die_usage("%s", "--bucket and --key are required");
    if (!o->access_key != !o->secret_key)
        bench_die_usage("%s", "--access-key and --secret-key go together");
    if (o->request_size > (1ull << 31))
        bench_die_usage("%s", "--request-size is at most 2G");
}

static void bench_done(struct objstore_req *req)
{
    struct bench_slot *s = req->arg;
    struct bench *b = s->b;
    uint64_t lat = cmn_now_ns() - s->t0_ns;
    pthread_mutex_lock(&b->lock);
    if (req->result < 0) {
        if (!b->errors++)
            snprintf(b->first_err, sizeof(b->first_err), "%s", req->errmsg);
    } else {
        b->bytes += req->got;
        if (b->n_lat == b->cap_lat) {
            size_t cap = b->cap_lat ? b->cap_lat * 2 : 1024;
            uint64_t *n = realloc(b->lat_ns, cap * sizeof(*n));
            if (n)
                b->lat_ns = n, b->cap_lat = cap;
        }
        if (b->n_lat < b->cap_lat)
            b->lat_ns[b->n_lat++] = lat;
    }
    b->free_slots[b->n_free++] = s;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int bench_open(const struct bench_opts *o, struct objstore **out)
{
    struct objstore_creds *creds = NULL;
    int rc;
    if (o->access_key &&
        (rc = objstore_creds_static(o->access_key, o->secret_key, NULL, &creds)) < 0)
        return rc;
    struct objstore_s3_conf conf = {
        .bucket = o->bucket,
        .endpoint = o->endpoint,
        .region = o->region,
        .path_style = o->path_style,
        .anonymous = o->anonymous,
        .ca_bundle = o->ca_bundle,
        .insecure = o->insecure,
        .max_connections = o->parallel,
        .creds = creds,
    };
    struct objstore *os;
    rc = objstore_s3_create(&conf, &os);
    if (rc < 0)
        return rc;
    if (!o->no_retry && (rc = objstore_retry_create(os, NULL, &os)) < 0)
        return rc;
    *out = os;
    return 0;
}

/* PUT --create bytes of pseudo-random data. @return 0 or -errno. */
static int bench_create(struct objstore *os, const struct bench_opts *o)
{
    uint64_t *data = malloc(CMN_ALIGN_UP(o->create_size, 8));
    if (!data)
        return -ENOMEM;
    uint64_t seed = 0x1234567u;
    for (uint64_t i = 0; i < CMN_ALIGN_UP(o->create_size, 8) / 8; i++)
        data[i] = cmn_rand64(&seed);
    char err[OBJSTORE_ERRMSG_MAX];
    uint64_t t0 = cmn_now_ns();
    int rc = objstore_put(os, o->key, data, o->create_size, NULL, err, sizeof(err));
    double s = (double)(cmn_now_ns() - t0) / 1e9;
    if (rc < 0)
        fprintf(stderr, "tierfs-bench-objstore: create failed: %s\n", err);
    else
        printf("created %s: %llu bytes in %.2f s (%.1f MiB/s)\n", o->key,
               (unsigned long long)o->create_size, s, (double)o->create_size / 1048576.0 / s);
    free(data);
    return rc;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    bench_parse(argc, argv, &o);
    struct objstore *os;
    int rc = bench_open(&o, &os);
    if (rc < 0) {
        fprintf(stderr, "tierfs-bench-objstore: cannot create the S3 client: %s\n",
                objstore_strerror(rc));
        return 1;
    }
    if (o.create_size && bench_create(os, &o) < 0)
        goto fail_store;

    struct objstore_object_info info;
    char err[OBJSTORE_ERRMSG_MAX];
    rc = objstore_head(os, o.key, &info, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "tierfs-bench-objstore: %s\n", err);
        goto fail_store;
    }
    uint64_t size = o.size ? CMN_MIN(o.size, info.size) : info.size;
    if (size == 0) {
        fprintf(stderr, "tierfs-bench-objstore: %s is empty\n", o.key);
        goto fail_store;
    }

    struct bench b = {.n_free = 0};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    struct bench_slot *slots = calloc(o.parallel, sizeof(*slots));
    b.free_slots = calloc(o.parallel, sizeof(*b.free_slots));
    if (!slots || !b.free_slots)
        goto fail_mem;
    for (unsigned i = 0; i < o.parallel; i++) {
        slots[i].b = &b;
        slots[i].buf = malloc(o.request_size);
        if (!slots[i].buf)
            goto fail_mem;
        b.free_slots[b.n_free++] = &slots[i];
    }

    uint64_t t0 = cmn_now_ns(), off = 0, sent = 0;
    bool stop = false;
    while (!stop) {
        pthread_mutex_lock(&b.lock);
        while (b.n_free == 0)
            pthread_cond_wait(&b.cond, &b.lock);
        struct bench_slot *s = b.free_slots[--b.n_free];
        pthread_mutex_unlock(&b.lock);

        uint64_t len = CMN_MIN(o.request_size, size - off);
        s->req = (struct objstore_req){.op = OBJSTORE_OP_GET,
                                       .key = o.key,
                                       .off = off,
                                       .len = len,
                                       .if_match = info.etag,
                                       .buf = s->buf,
                                       .buf_cap = len,
                                       .done = bench_done,
                                       .arg = s};
        s->t0_ns = cmn_now_ns();
        rc = objstore_submit(os, &s->req);
        if (rc < 0) {
            fprintf(stderr, "tierfs-bench-objstore: submit: %s\n", objstore_strerror(rc));
            pthread_mutex_lock(&b.lock);
            b.free_slots[b.n_free++] = s;
            pthread_mutex_unlock(&b.lock);
            break;
        }
        sent++;
        off += len;
        if (off >= size) {
            off = 0;
            stop = !o.duration_ms || cmn_now_ns() - t0 >= o.duration_ms * 1000000ull;
        }
    }
    pthread_mutex_lock(&b.lock);
    while (b.n_free < o.parallel)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    double secs = (double)(cmn_now_ns() - t0) / 1e9;

    struct objstore_stats st;
    objstore_get_stats(os, &st);
    qsort(b.lat_ns, b.n_lat, sizeof(*b.lat_ns), bench_cmp_u64);
    double p50 = b.n_lat ? (double)b.lat_ns[b.n_lat / 2] / 1e6 : 0;
    double p99 = b.n_lat ? (double)b.lat_ns[CMN_MIN(b.n_lat - 1, b.n_lat * 99 / 100)] / 1e6 : 0;
    char rs[32];
    printf("%llu bytes in %.2f s: %.1f MiB/s, %llu requests of %s, %u parallel, "
           "latency p50 %.1f ms p99 %.1f ms, %llu errors, %llu retries\n",
           (unsigned long long)b.bytes, secs, (double)b.bytes / 1048576.0 / secs,
           (unsigned long long)sent, cmn_fmt_size(o.request_size, rs, sizeof(rs)), o.parallel, p50,
           p99, (unsigned long long)b.errors, (unsigned long long)st.retries);
    if (b.errors)
        fprintf(stderr, "tierfs-bench-objstore: first error: %s\n", b.first_err);
    rc = b.errors ? 1 : 0;
    for (unsigned i = 0; i < o.parallel; i++)
        free(slots[i].buf);
    free(slots);
    free(b.free_slots);
    free(b.lat_ns);
    objstore_destroy(os);
    return rc;

fail_mem:
    fprintf(stderr, "tierfs-bench-objstore: out of memory\n");
    /* nothing was submitted yet: the slots die with the process */
fail_store:
    objstore_destroy(os);
    return 1;
}
