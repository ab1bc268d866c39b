/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cache_trace.c: tierfs-bench-cache --trace / --gen-trace: replay one key sequence
 * through every memory-tier eviction policy at several cache sizes and print the miss
 * ratios side by side.
 *
 * The replay drives the memory tier itself (hc_mem_* from hc_mem.h) with one shard, so the
 * numbers are the policies' and not the sharding's. Entries carry no data: each is charged
 * --trace-entry-size bytes (the policies size their queues and ghosts in bytes), so a
 * replay of millions of requests needs a few hundred bytes per cached key, not a block.
 * A miss inserts the key, like the cache does after an origin fetch. Every request is an
 * access of its own: the policies' clock advances by the correlation window a request
 * (bc_trace_clock), not with the wall clock the replay races through.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "hybridcache/hc_mem.h"
#include "hybridcache/hybridcache.h"
#include "tools/bench_cache_gen.h"

#define BC_TRACE_PROG "tierfs-bench-cache"
#define BC_TRACE_SIZES_MAX 32

struct bc_trace {
    size_t n;       /* requests */
    uint64_t *hash; /* hc_key_hash of each request's key */
    size_t *off;    /* key of request i: arena + off[i], klen[i] bytes */
    uint32_t *klen;
    char *arena;
    size_t unique;
};

static void bc_trace_free(struct bc_trace *t)
{
    free(t->hash);
    free(t->off);
    free(t->klen);
    free(t->arena);
}

static int bc_trace_alloc(struct bc_trace *t, size_t n)
{
    t->hash = malloc(n * sizeof(*t->hash));
    t->off = malloc(n * sizeof(*t->off));
    t->klen = malloc(n * sizeof(*t->klen));
    return t->hash && t->off && t->klen ? 0 : -ENOMEM;
}

/* Read @path: one key per line (CR LF tolerated, empty lines skipped). @return 0 / -errno. */
static int bc_trace_load(const char *path, struct bc_trace *t)
{
    FILE *f = fopen(path, "rb");
    long size;
    size_t lines = 0, line_no = 0;

    if (!f) {
        int err = errno;
        fprintf(stderr, "%s: --trace: cannot open '%s': %s\n", BC_TRACE_PROG, path, strerror(err));
        return -err;
    }
    if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
        fclose(f);
        fprintf(stderr, "%s: --trace: '%s' is not seekable\n", BC_TRACE_PROG, path);
        return -EINVAL;
    }
    t->arena = malloc((size_t)size + 1);
    if (!t->arena || fread(t->arena, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        fprintf(stderr, "%s: --trace: cannot read '%s'\n", BC_TRACE_PROG, path);
        return -EIO;
    }
    fclose(f);
    t->arena[size] = '\n';
    for (long i = 0; i <= size; i++)
        lines += t->arena[i] == '\n';
    if (bc_trace_alloc(t, lines) < 0)
        return -ENOMEM;
    for (size_t start = 0; start < (size_t)size + 1;) {
        char *nl = memchr(t->arena + start, '\n', (size_t)size + 1 - start);
        size_t end = (size_t)(nl - t->arena), len = end - start;
        line_no++;
        if (len && t->arena[end - 1] == '\r')
            len--;
        if (len > HC_KEY_MAX) {
            fprintf(stderr, "%s: --trace: %s:%zu: key longer than %u bytes\n", BC_TRACE_PROG, path,
                    line_no, HC_KEY_MAX);
            return -EINVAL;
        }
        if (len) {
            t->off[t->n] = start;
            t->klen[t->n] = (uint32_t)len;
            t->hash[t->n] = hc_key_hash(t->arena + start, len);
            t->n++;
        }
        start = end + 1;
    }
    if (!t->n) {
        fprintf(stderr, "%s: --trace: '%s' has no keys\n", BC_TRACE_PROG, path);
        return -EINVAL;
    }
    return 0;
}

static int bc_trace_generate(const struct bc_trace_run *r, struct bc_trace *t)
{
    uint64_t *ids = malloc(r->gen_len * sizeof(*ids));
    int rc = -ENOMEM;

    t->arena = malloc(r->gen_len * BC_KEY_LEN);
    if (!ids || !t->arena || bc_trace_alloc(t, r->gen_len) < 0)
        goto out;
    rc = bc_trace_gen(&r->gen, ids, r->gen_len);
    if (rc < 0) {
        fprintf(stderr, "%s: --gen-trace: bad trace parameters\n", BC_TRACE_PROG);
        goto out;
    }
    for (size_t i = 0; i < r->gen_len; i++) {
        t->off[i] = i * BC_KEY_LEN;
        t->klen[i] = (uint32_t)bc_key_format(ids[i], t->arena + t->off[i]);
        t->hash[i] = hc_key_hash(t->arena + t->off[i], t->klen[i]);
    }
    t->n = r->gen_len;
    if (r->save_path) {
        FILE *f = fopen(r->save_path, "w");
        if (!f) {
            rc = -errno;
            fprintf(stderr, "%s: --trace-out: cannot create '%s': %s\n", BC_TRACE_PROG,
                    r->save_path, strerror(-rc));
            goto out;
        }
        for (size_t i = 0; i < t->n; i++)
            fprintf(f, "%.*s\n", (int)t->klen[i], t->arena + t->off[i]);
        if (fclose(f) != 0) {
            rc = -EIO;
            fprintf(stderr, "%s: --trace-out: write to '%s' failed\n", BC_TRACE_PROG, r->save_path);
            goto out;
        }
    }
    rc = 0;
out:
    free(ids);
    return rc;
}

/* Count distinct keys by hash (a 64-bit collision would undercount by one). */
static int bc_trace_count_unique(struct bc_trace *t)
{
    size_t cap = 16;
    while (cap < 2 * t->n)
        cap *= 2;
    uint64_t *tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return -ENOMEM;
    t->unique = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t h = t->hash[i] ? t->hash[i] : 1; /* 0 marks an empty slot */
        size_t j = h & (cap - 1);
        while (tab[j] && tab[j] != h)
            j = (j + 1) & (cap - 1);
        if (!tab[j]) {
            tab[j] = h;
            t->unique++;
        }
    }
    free(tab);
    return 0;
}

/* Parse "1000,0.5%,5%" into entry counts. @return how many, or -EINVAL (message printed). */
static int bc_trace_sizes(const char *list, size_t unique, uint64_t *out, double *pct)
{
    char buf[512], *save = NULL;
    int n = 0;

    if (strlen(list) >= sizeof(buf)) {
        fprintf(stderr, "%s: --trace-sizes: list too long\n", BC_TRACE_PROG);
        return -EINVAL;
    }
    strcpy(buf, list);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t len = strlen(tok);
        uint64_t v;
        double p;
        if (n == BC_TRACE_SIZES_MAX) {
            fprintf(stderr, "%s: --trace-sizes: more than %d sizes\n", BC_TRACE_PROG,
                    BC_TRACE_SIZES_MAX);
            return -EINVAL;
        }
        if (len > 1 && tok[len - 1] == '%') {
            tok[len - 1] = '\0';
            if (bc_parse_double(tok, 1e-9, 100.0, &p) < 0)
                goto bad;
            v = (uint64_t)llround((double)unique * p / 100.0);
            out[n] = v ? v : 1;
        } else {
            if (cmn_parse_u64(tok, UINT32_MAX, &v) < 0 || v == 0)
                goto bad;
            out[n] = v;
        }
        pct[n] = 100.0 * (double)out[n] / (double)unique;
        n++;
        continue;
    bad:
        fprintf(stderr, "%s: --trace-sizes: invalid size '%s' (want an entry count or N%%)\n",
                BC_TRACE_PROG, tok);
        return -EINVAL;
    }
    if (!n) {
        fprintf(stderr, "%s: --trace-sizes: empty list\n", BC_TRACE_PROG);
        return -EINVAL;
    }
    return n;
}

/* The memory tier's clock for a replay: request i is at i x HC_POLICY_CORRELATED_MS. */
static uint32_t bc_trace_clock(void *arg)
{
    const size_t *i = arg;

    return (uint32_t)(*i * HC_POLICY_CORRELATED_MS);
}

/* Replay @t through @policy with room for @entries entries of @unit bytes.
 * @return 0 and *misses, *secs; or -errno. */
static int bc_trace_replay_one(const struct bc_trace *t, const char *policy, uint64_t entries,
                               uint64_t unit, uint64_t *misses, double *secs)
{
    size_t i;
    struct hc_mem_conf mc = {.capacity = entries * unit,
                             .policy = policy,
                             .shards = 1,
                             .clock_ms = bc_trace_clock,
                             .clock_arg = &i};
    struct hc_mem *m;
    uint64_t miss = 0, t0;
    int rc = hc_mem_create(&mc, &m);

    if (rc < 0)
        return rc;
    t0 = cmn_now_ns();
    for (i = 0; i < t->n; i++) {
        const char *key = t->arena + t->off[i];
        struct hc_entry *e = hc_mem_lookup(m, t->hash[i], key, t->klen[i], true);
        if (e) {
            hc_entry_put(e);
            continue;
        }
        miss++;
        /* no data buffer: only the charge matters to the policy (see the top comment) */
        e = hc_entry_alloc_nodata(key, t->klen[i], (uint32_t)unit);
        if (!e) {
            rc = -ENOMEM;
            break;
        }
        rc = hc_mem_insert(m, e);
        hc_entry_put(e);
        if (rc < 0)
            break;
    }
    *secs = (double)(cmn_now_ns() - t0) / 1e9;
    *misses = miss;
    hc_mem_destroy(m);
    return rc;
}

int bc_trace_replay(const struct bc_trace_run *r)
{
    const char *const *pol = hc_policy_names();
    struct bc_trace t;
    uint64_t sizes[BC_TRACE_SIZES_MAX];
    double pct[BC_TRACE_SIZES_MAX];
    size_t npol = 0;
    int rc, nsizes;

    memset(&t, 0, sizeof(t));
    if (r->entry_bytes > UINT32_MAX) {
        fprintf(stderr, "%s: --trace-entry-size: at most 4G - 1\n", BC_TRACE_PROG);
        return -EINVAL;
    }
    rc = r->path ? bc_trace_load(r->path, &t) : bc_trace_generate(r, &t);
    if (rc == 0)
        rc = bc_trace_count_unique(&t);
    if (rc < 0)
        goto out;
    nsizes = bc_trace_sizes(r->sizes, t.unique, sizes, pct);
    if (nsizes < 0) {
        rc = nsizes;
        goto out;
    }
    while (pol[npol])
        npol++;

    if (r->out == BC_OUT_TEXT) {
        printf("trace: %zu requests, %zu unique keys", t.n, t.unique);
        if (r->path)
            printf(" from %s", r->path);
        else if (r->gen.s > 0)
            printf(" (generated: zipf s=%g over %" PRIu64 " keys, %.0f%% of requests in scans "
                   "of %" PRIu64 " cold keys)",
                   r->gen.s, r->gen.n, r->gen.scan_frac * 100, r->gen.scan_len);
        else
            printf(" (generated: uniform over %" PRIu64 " keys, %.0f%% in scans of %" PRIu64 ")",
                   r->gen.n, r->gen.scan_frac * 100, r->gen.scan_len);
        printf("\nmiss ratio by cache size (one shard, %" PRIu64 " bytes charged per entry)\n",
               r->entry_bytes);
        printf("%-20s", "entries (% unique)");
        for (size_t p = 0; p < npol; p++)
            printf(" %10s", pol[p]);
        printf("\n");
    } else if (r->out == BC_OUT_CSV) {
        printf("requests,unique,entries,pct_unique,policy,misses,miss_ratio,replay_mops\n");
    } else {
        printf("{\"requests\": %zu, \"unique\": %zu, \"results\": [", t.n, t.unique);
    }

    double *secs_sum = calloc(npol, sizeof(*secs_sum));
    if (!secs_sum) {
        rc = -ENOMEM;
        goto out;
    }
    bool first = true;
    for (int s = 0; s < nsizes && rc == 0; s++) {
        if (r->out == BC_OUT_TEXT) {
            char lbl[40];
            snprintf(lbl, sizeof(lbl), "%" PRIu64 " (%.2g%%)", sizes[s], pct[s]);
            printf("%-20s", lbl);
        }
        for (size_t p = 0; p < npol; p++) {
            uint64_t misses;
            double secs;
            rc = bc_trace_replay_one(&t, pol[p], sizes[s], r->entry_bytes, &misses, &secs);
            if (rc < 0) {
                fprintf(stderr, "%s: replay with %s: %s\n", BC_TRACE_PROG, pol[p], strerror(-rc));
                break;
            }
            secs_sum[p] += secs;
            double ratio = (double)misses / (double)t.n, mops = (double)t.n / secs / 1e6;
            if (r->out == BC_OUT_TEXT)
                printf(" %10.4f", ratio);
            else if (r->out == BC_OUT_CSV)
                printf("%zu,%zu,%" PRIu64 ",%.4f,%s,%" PRIu64 ",%.6f,%.2f\n", t.n, t.unique,
                       sizes[s], pct[s], pol[p], misses, ratio, mops);
            else
                printf("%s{\"entries\": %" PRIu64 ", \"pct_unique\": %.4f, \"policy\": \"%s\", "
                       "\"misses\": %" PRIu64 ", \"miss_ratio\": %.6f, \"replay_mops\": %.2f}",
                       first ? "" : ", ", sizes[s], pct[s], pol[p], misses, ratio, mops);
            first = false;
        }
        if (r->out == BC_OUT_TEXT)
            printf("\n");
    }
    if (r->out == BC_OUT_TEXT && rc == 0) {
        printf("%-20s", "replay M req/s");
        for (size_t p = 0; p < npol; p++)
            printf(" %10.2f", (double)t.n * nsizes / secs_sum[p] / 1e6);
        printf("\n");
    } else if (r->out == BC_OUT_JSON) {
        printf("]}\n");
    }
    free(secs_sum);
out:
    bc_trace_free(&t);
    return rc;
}
