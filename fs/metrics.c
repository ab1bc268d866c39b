/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c: tierfs counters and histograms, what the S3 layers count, and the metrics
 * endpoint (libmicrohttpd): GET /metrics (Prometheus text 0.0.4), GET /stats.json.
 * See metrics.h for the design and docs/observability.md for every name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fill.h"
#include "fs/fs_i.h"
#include "fs/metrics.h"
#include "hybridcache/fleet.h"
#include "hybridcache/hybridcache.h"

#ifndef TIERFS_VERSION
#define TIERFS_VERSION "0.0.0"
#endif

struct fs_metrics {
    /* all counters: __atomic_* relaxed */
    struct cmn_hist fuse_read;
    uint64_t fuse_read_errors, fuse_read_bytes;
    struct cmn_hist disk_read;
    struct MHD_Daemon *httpd; /* NULL unless serving */
    char addr[96];            /* what we listen on, for the stats */
};

static void fs_add(uint64_t *c, uint64_t n)
{
    __atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static uint64_t fs_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

int fs_metrics_create(struct fs_metrics **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void fs_metrics_stop(struct fs_metrics *m)
{
    if (m && m->httpd) {
        MHD_stop_daemon(m->httpd);
        m->httpd = NULL;
    }
}

void fs_metrics_destroy(struct fs_metrics *m)
{
    fs_metrics_stop(m);
    free(m);
}

void fs_metrics_fuse_read(struct fs_metrics *m, uint64_t start_ns, int err, const struct iovec *iov,
                          int cnt)
{
    size_t bytes = 0;

    if (!m)
        return;
    cmn_hist_observe(&m->fuse_read, cmn_now_ns() - start_ns);
    for (int i = 0; i < cnt; i++)
        bytes += iov[i].iov_len;
    if (err)
        fs_add(&m->fuse_read_errors, 1);
    else
        fs_add(&m->fuse_read_bytes, bytes);
}

void fs_metrics_disk_read(struct fs_metrics *m, uint64_t start_ns)
{
    if (m)
        cmn_hist_observe(&m->disk_read, cmn_now_ns() - start_ns);
}

/* ---- rendering ---- */

/* The writes' counters (write.c, -o writable): JSON name, tierfs_NAME in Prometheus (with
 * _total for counters), type, help. */
static const struct {
    const char *name;
    bool gauge;
    const char *help;
    size_t off;
} fs_upload_ctrs[] = {
#define FS_UPLOAD_CTR(n, g, h)                                                                     \
    {                                                                                              \
#n, g, h, offsetof(struct fs_counters, n)                                                  \
    }
    FS_UPLOAD_CTR(uploads_open, true, "files open for writing"),
    FS_UPLOAD_CTR(uploads_started, false, "multipart uploads created"),
    FS_UPLOAD_CTR(uploads_done, false, "files written and completed in S3"),
    FS_UPLOAD_CTR(upload_failures, false, "files whose upload failed (close returned EIO)"),
    FS_UPLOAD_CTR(upload_aborts, false, "multipart uploads aborted"),
    FS_UPLOAD_CTR(upload_parts, false, "parts sent"),
    FS_UPLOAD_CTR(upload_parts_inflight, true, "parts on their way to S3 now"),
    FS_UPLOAD_CTR(upload_bytes, false, "bytes S3 took in parts and PUTs"),
    FS_UPLOAD_CTR(upload_buffer_bytes, true, "bytes of part buffers allocated (upload_memory)"),
    FS_UPLOAD_CTR(upload_cached_blocks, false,
                  "blocks written put in the cache under the new ETag"),
    FS_UPLOAD_CTR(uploads_rekeying, true,
                  "completed files whose cached blocks are being moved to the new ETag's keys"),
#undef FS_UPLOAD_CTR
};

/* Everything one rendering shows, read once. */
struct fs_snap {
    struct hc_stats hc;
    struct objstore_stats os;
    uint64_t open_files, pf_issued, pf_used, pf_wasted, pf_wasted_bytes, pf_disk, pf_fleet;
    uint64_t read_skips, piece_prefetched, piece_fetches, piece_bytes, piece_reads, piece_asm;
    uint64_t dense_sweeps, dense_blocks;
    uint64_t up[CMN_ARRAY_SIZE(fs_upload_ctrs)];
    struct hc_fleet_stats fl;  /* zero without the fleet tier */
    struct fs_fill_stats fill; /* zero when page_cache_fill is off */
};

static void fs_snap_take(struct fs *fs, struct fs_snap *sn)
{
    memset(sn, 0, sizeof(*sn));
    if (fs->cache)
        hc_get_stats(fs->cache, &sn->hc);
    if (fs->os)
        objstore_get_stats(fs->os, &sn->os);
    sn->open_files = fs_get(&fs->ctr.open_files);
    sn->pf_issued = fs_get(&fs->ctr.prefetch_issued);
    sn->pf_used = fs_get(&fs->ctr.prefetch_used);
    sn->pf_wasted = fs_get(&fs->ctr.prefetch_wasted);
    sn->pf_wasted_bytes = fs_get(&fs->ctr.prefetch_wasted_bytes);
    sn->read_skips = fs_get(&fs->ctr.read_skips);
    sn->piece_prefetched = fs_get(&fs->ctr.piece_prefetched);
    sn->piece_fetches = fs_get(&fs->ctr.piece_fetches);
    sn->piece_bytes = fs_get(&fs->ctr.piece_bytes);
    sn->piece_reads = fs_get(&fs->ctr.piece_reads);
    sn->piece_asm = fs_get(&fs->ctr.piece_assembled);
    sn->dense_sweeps = fs_get(&fs->ctr.dense_sweeps);
    sn->dense_blocks = fs_get(&fs->ctr.dense_blocks);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(fs_upload_ctrs); i++)
        sn->up[i] = fs_get((uint64_t *)((char *)&fs->ctr + fs_upload_ctrs[i].off));
    sn->pf_disk = fs_get(&fs->ctr.prefetch_disk);
    sn->pf_fleet = fs_get(&fs->ctr.prefetch_fleet);
    hc_fleet_get_stats(fs->fleet, &sn->fl);
    fs_read_fill_stats(fs, &sn->fill); /* zero when the fill is off */
}

static void fs_prom_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void fs_prom_one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
    fs_prom_head(f, name, type, help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* One histogram sample set; @labels is "" or `op="get",` (with the trailing comma). */
static void fs_prom_hist(FILE *f, const char *name, const char *labels, const struct cmn_hist *live)
{
    struct cmn_hist hc, *h = &hc;
    uint64_t cum = 0;
    size_t ll = strlen(labels);

    cmn_hist_read(live, &hc);
    for (size_t i = 0; i < CMN_HIST_NB; i++) {
        cum += h->b[i];
        fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, cmn_hist_le[i],
                (unsigned long long)cum);
    }
    cum += h->b[CMN_HIST_NB];
    fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    /* _sum/_count take the labels without the trailing comma */
    fprintf(f, "%s_sum%s%.*s%s %.9f\n", name, ll ? "{" : "", (int)(ll ? ll - 1 : 0), labels,
            ll ? "}" : "", (double)h->sum_ns / 1e9);
    fprintf(f, "%s_count%s%.*s%s %llu\n", name, ll ? "{" : "", (int)(ll ? ll - 1 : 0), labels,
            ll ? "}" : "", (unsigned long long)cum);
}

/* A counter with one label taking two values (tier="memory"/"disk", ...). */
static void fs_prom_pair(FILE *f, const char *name, const char *help, const char *label,
                         const char *a, uint64_t va, const char *b, uint64_t vb)
{
    fs_prom_head(f, name, "counter", help);
    fprintf(f, "%s{%s=\"%s\"} %llu\n%s{%s=\"%s\"} %llu\n", name, label, a, (unsigned long long)va,
            name, label, b, (unsigned long long)vb);
}

static int fs_render_close(FILE *f, char **out, size_t *len)
{
    if (ferror(f)) {
        fclose(f);
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    if (fclose(f) != 0) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* The cache tiers (hc_get_stats). */
static void fs_prom_cache(FILE *f, const struct hc_stats *h)
{
    fs_prom_pair(f, "tierfs_cache_hits_total", "block lookups a tier answered", "tier", "memory",
                 h->mem_hits, "disk", h->disk_hits);
    fs_prom_pair(f, "tierfs_cache_misses_total", "block lookups a tier did not answer", "tier",
                 "memory", h->mem_misses, "disk", h->disk_misses);
    fs_prom_head(f, "tierfs_cache_read_bytes_total", "counter",
                 "block bytes served, by the tier that had them (s3: fetched on a miss)");
    fprintf(f,
            "tierfs_cache_read_bytes_total{tier=\"memory\"} %llu\n"
            "tierfs_cache_read_bytes_total{tier=\"disk\"} %llu\n"
            "tierfs_cache_read_bytes_total{tier=\"s3\"} %llu\n",
            (unsigned long long)h->mem_bytes_read, (unsigned long long)h->disk_bytes_read,
            (unsigned long long)h->origin_bytes);
    fs_prom_pair(f, "tierfs_cache_inserts_total", "blocks stored in a tier", "tier", "memory",
                 h->mem_inserts, "disk", h->disk_inserts);
    fs_prom_pair(f, "tierfs_cache_evictions_total", "blocks a tier dropped to make room", "tier",
                 "memory", h->mem_evictions, "disk", h->disk_evictions);
    fs_prom_one(f, "tierfs_cache_disk_partial_hits_total", "counter",
                "disk hits that read only the chunks a small read needed (also in hits)",
                h->disk_partial_hits);
    fs_prom_one(f, "tierfs_cache_disk_partial_read_bytes_total", "counter",
                "bytes those partial disk hits read (also in read_bytes)", h->disk_partial_bytes);
    fs_prom_one(f, "tierfs_cache_disk_reinserts_total", "counter",
                "hot blocks the disk reclaimer rewrote instead of dropping", h->disk_reinserts);
    fs_prom_one(f, "tierfs_cache_disk_written_bytes_total", "counter",
                "bytes written to the disk tier", h->disk_bytes_written);
    fs_prom_pair(f, "tierfs_cache_disk_errors_total", "disk tier IO errors", "op", "read",
                 h->disk_read_errors, "write", h->disk_write_errors);
    fs_prom_one(f, "tierfs_cache_admission_drops_total", "counter",
                "disk writes dropped because the disk fell behind", h->admission_drops);
    fs_prom_one(f, "tierfs_cache_disk_deferred_total", "counter",
                "disk writes that waited for room in the write queue instead of being dropped",
                h->disk_deferred);
    fs_prom_one(f, "tierfs_cache_checksum_failures_total", "counter",
                "disk entries that failed their checksum (read as misses)", h->checksum_failures);
    fs_prom_one(f, "tierfs_cache_origin_fetches_total", "counter",
                "block misses fetched from S3 (one GET each)", h->origin_fetches);
    fs_prom_one(f, "tierfs_cache_origin_errors_total", "counter",
                "block fetches from S3 that failed", h->origin_errors);
    fs_prom_one(f, "tierfs_cache_singleflight_merges_total", "counter",
                "lookups that joined one already in flight for the same block", h->merges);
    fs_prom_one(f, "tierfs_cache_memory_used_bytes", "gauge",
                "memory tier, in-flight fetches and disk write queue", h->mem_used);
    fs_prom_one(f, "tierfs_cache_memory_limit_bytes", "gauge", "mem_cache_size", h->mem_limit);
    fs_prom_one(f, "tierfs_cache_pool_bytes", "gauge",
                "idle block buffers kept for reuse (the budget's free room, not in memory_used)",
                h->pool_bytes);
    fs_prom_one(f, "tierfs_cache_disk_used_bytes", "gauge", "bytes of live disk entries",
                h->disk_used);
    fs_prom_one(f, "tierfs_cache_disk_capacity_bytes", "gauge", "disk tier size", h->disk_capacity);
    fs_prom_one(f, "tierfs_cache_disk_entries", "gauge", "blocks on the disk tier",
                h->disk_entries);
}

/* S3, as the objstore layers count it (the stats layer: completed requests and latency). */
static void fs_prom_s3(FILE *f, const struct objstore_stats *os)
{
    fs_prom_head(f, "tierfs_s3_requests_total", "counter",
                 "S3 requests completed (after retries), by op and HTTP status class");
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++)
        for (unsigned c = 0; c < OBJSTORE_STATUS_COUNT; c++)
            fprintf(f, "tierfs_s3_requests_total{op=\"%s\",status=\"%s\"} %llu\n",
                    objstore_op_label(op), objstore_status_label(c),
                    (unsigned long long)os->done[op][c]);
    fs_prom_head(f, "tierfs_s3_request_errors_total", "counter",
                 "S3 requests that failed after retries, by op");
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++)
        fprintf(f, "tierfs_s3_request_errors_total{op=\"%s\"} %llu\n", objstore_op_label(op),
                (unsigned long long)os->done_errors[op]);
    fs_prom_head(f, "tierfs_s3_not_found_total", "counter",
                 "HEADs answered 404 (a lookup of a name that is no object): not errors");
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++)
        fprintf(f, "tierfs_s3_not_found_total{op=\"%s\"} %llu\n", objstore_op_label(op),
                (unsigned long long)os->done_not_found[op]);
    fs_prom_head(f, "tierfs_s3_attempts_total", "counter",
                 "HTTP requests sent to S3, retries included, by op");
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++)
        fprintf(f, "tierfs_s3_attempts_total{op=\"%s\"} %llu\n", objstore_op_label(op),
                (unsigned long long)os->requests[op]);
    fs_prom_one(f, "tierfs_s3_retries_total", "counter", "S3 attempts that were retries",
                os->retries);
    fs_prom_one(f, "tierfs_s3_received_bytes_total", "counter", "S3 response body bytes",
                os->bytes_received);
    fs_prom_one(f, "tierfs_s3_inflight_requests", "gauge", "S3 requests in flight", os->inflight);
    fs_prom_head(f, "tierfs_s3_request_duration_seconds", "histogram",
                 "S3 request latency, submit to completion (retries included), by op");
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++) {
        char lab[32];
        snprintf(lab, sizeof(lab), "op=\"%s\",", objstore_op_label(op));
        fs_prom_hist(f, "tierfs_s3_request_duration_seconds", lab, &os->latency[op]);
    }
}

/* Reads through FUSE, prefetch and the page-cache fill. */
static void fs_prom_reads(FILE *f, const struct fs_metrics *m, const struct fs_snap *sn)
{
    fs_prom_head(f, "tierfs_fuse_read_duration_seconds", "histogram",
                 "FUSE read latency, request to reply");
    fs_prom_hist(f, "tierfs_fuse_read_duration_seconds", "", &m->fuse_read);
    fs_prom_one(f, "tierfs_fuse_read_bytes_total", "counter", "bytes returned by FUSE reads",
                fs_get(&m->fuse_read_bytes));
    fs_prom_one(f, "tierfs_fuse_read_errors_total", "counter", "FUSE reads that failed",
                fs_get(&m->fuse_read_errors));
    fs_prom_head(f, "tierfs_disk_read_duration_seconds", "histogram",
                 "latency of block lookups the disk tier served");
    fs_prom_hist(f, "tierfs_disk_read_duration_seconds", "", &m->disk_read);
    fs_prom_one(f, "tierfs_prefetch_issued_total", "counter", "blocks prefetch asked the cache for",
                sn->pf_issued);
    fs_prom_one(f, "tierfs_prefetch_used_total", "counter", "prefetched blocks a read then used",
                sn->pf_used);
    fs_prom_one(f, "tierfs_prefetch_wasted_total", "counter",
                "prefetched blocks dropped before any read used them", sn->pf_wasted);
    fs_prom_one(f, "tierfs_prefetch_wasted_bytes_total", "counter",
                "bytes of prefetched blocks dropped before any read used them",
                sn->pf_wasted_bytes);
    fs_prom_one(f, "tierfs_read_skips_total", "counter",
                "reads that skipped forward over unread bytes within a run (column chunks)",
                sn->read_skips);
    fs_prom_one(f, "tierfs_piece_reads_total", "counter",
                "reads of skipping readers that took pieces of blocks (partial_grain)",
                sn->piece_reads);
    fs_prom_one(f, "tierfs_piece_prefetched_total", "counter",
                "pieces prefetched up to a skipping reader's predicted stretch end",
                sn->piece_prefetched);
    fs_prom_one(f, "tierfs_piece_fetches_total", "counter", "pieces fetched from S3",
                sn->piece_fetches);
    fs_prom_one(f, "tierfs_piece_fetch_bytes_total", "counter", "bytes of pieces fetched from S3",
                sn->piece_bytes);
    fs_prom_one(f, "tierfs_piece_assembled_total", "counter",
                "blocks fetched whole that copied cached pieces and GET only the rest",
                sn->piece_asm);
    fs_prom_one(f, "tierfs_dense_sweeps_total", "counter",
                "files fetched whole in the background for dense random reads", sn->dense_sweeps);
    fs_prom_one(f, "tierfs_dense_blocks_total", "counter",
                "blocks the dense-random sweeps handed to the cache", sn->dense_blocks);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(fs_upload_ctrs); i++) {
        char name[64];
        snprintf(name, sizeof(name), "tierfs_%s%s", fs_upload_ctrs[i].name,
                 fs_upload_ctrs[i].gauge ? "" : "_total");
        fs_prom_one(f, name, fs_upload_ctrs[i].gauge ? "gauge" : "counter", fs_upload_ctrs[i].help,
                    sn->up[i]);
    }
    fs_prom_one(f, "tierfs_prefetch_disk_total", "counter",
                "prefetched blocks read ahead from the disk tier", sn->pf_disk);
    fs_prom_one(f, "tierfs_page_cache_fill_total", "counter",
                "ranges around small reads put into the kernel's page cache", sn->fill.stored);
    fs_prom_one(f, "tierfs_page_cache_fill_bytes_total", "counter",
                "bytes put into the kernel's page cache", sn->fill.stored_bytes);
    fs_prom_one(f, "tierfs_page_cache_fill_skipped_total", "counter",
                "page-cache fills skipped: queue full, or refused (stale version, kernel)",
                sn->fill.dropped + sn->fill.failed);
    fs_prom_one(f, "tierfs_page_cache_fill_merged_total", "counter",
                "page-cache fills not queued: a queued or running fill covers the range",
                sn->fill.duplicates);
    fs_prom_one(f, "tierfs_open_files", "gauge", "open file handles", sn->open_files);
}

/* The fleet tier's counters: metric and JSON names (tierfs_fleet_NAME_total, fleet_NAME). */
static const struct {
    const char *name, *help;
    size_t off;
} fs_fleet_ctrs[] = {
#define FS_FLEET_CTR(n, h)                                                                         \
    {                                                                                              \
#n, h, offsetof(struct hc_fleet_stats, n)                                                  \
    }
    FS_FLEET_CTR(lookups, "blocks looked up in the fleet tier"),
    FS_FLEET_CTR(hits, "blocks the fleet tier served (verified)"),
    FS_FLEET_CTR(misses, "blocks the fleet tier did not have (or had bad)"),
    FS_FLEET_CTR(bad_values, "values under tierfs keys that did not verify (never served)"),
    FS_FLEET_CTR(lease_taken, "misses this mount fetched from S3 under its lease"),
    FS_FLEET_CTR(lease_waits, "misses that waited for another mount's fetch"),
    FS_FLEET_CTR(lease_wait_hits, "waits that ended with the other mount's copy"),
    FS_FLEET_CTR(lease_timeouts, "waits that ran out the lease period and fetched from S3"),
    FS_FLEET_CTR(lease_extends, "waits extended because the holder's fetch moved on"),
    FS_FLEET_CTR(stores, "blocks stored into the fleet tier"),
    FS_FLEET_CTR(store_drops, "stores dropped because the store queue was full"),
    FS_FLEET_CTR(store_errors, "stores that failed on a server"),
    FS_FLEET_CTR(errors, "failed memcached calls (timeouts, refused, ...)"),
    FS_FLEET_CTR(bytes_in, "bytes of values read from the fleet tier"),
    FS_FLEET_CTR(bytes_out, "bytes of values written to the fleet tier"),
#undef FS_FLEET_CTR
};

static uint64_t fs_fleet_ctr(const struct hc_fleet_stats *st, size_t i)
{
    return *(const uint64_t *)((const char *)st + fs_fleet_ctrs[i].off);
}

static void fs_prom_fleet(FILE *f, const struct fs_snap *sn)
{
    char name[96];

    for (size_t i = 0; i < CMN_ARRAY_SIZE(fs_fleet_ctrs); i++) {
        snprintf(name, sizeof(name), "tierfs_fleet_%s_total", fs_fleet_ctrs[i].name);
        fs_prom_one(f, name, "counter", fs_fleet_ctrs[i].help, fs_fleet_ctr(&sn->fl, i));
    }
    fs_prom_one(f, "tierfs_fleet_store_queue_bytes", "gauge",
                "bytes of blocks waiting to be stored into the fleet tier",
                sn->fl.store_queue_bytes);
    fs_prom_one(f, "tierfs_prefetch_fleet_total", "counter",
                "prefetched blocks copied from the fleet tier", sn->pf_fleet);
    fs_prom_head(f, "tierfs_fleet_server_errors_total", "counter",
                 "failed memcached calls per server");
    for (unsigned s = 0; s < sn->fl.servers && s < 16; s++)
        fprintf(f, "tierfs_fleet_server_errors_total{server=\"%s\"} %llu\n", sn->fl.server_names[s],
                (unsigned long long)sn->fl.server_errors[s]);
}

int fs_metrics_prometheus(struct fs *fs, char **out, size_t *len)
{
    struct fs_metrics *m = fs->metrics;
    struct fs_snap sn;
    FILE *f;

    *out = NULL;
    f = open_memstream(out, len);
    if (!f)
        return -ENOMEM;
    fs_snap_take(fs, &sn);

    fs_prom_head(f, "tierfs_info", "gauge", "tierfs version and mount (always 1)");
    fprintf(f, "tierfs_info{version=\"%s\",io_engine=\"%s\"} 1\n", TIERFS_VERSION,
            sn.hc.disk_engine ? sn.hc.disk_engine : "none");
    fs_prom_one(f, "tierfs_start_time_seconds", "gauge", "when the daemon mounted (unix time)",
                (uint64_t)fs->mount_time);
    fs_prom_one(f, "tierfs_log_level", "gauge", "current syslog level (3 err .. 7 debug)",
                (uint64_t)tlog_get_level());

    fs_prom_cache(f, &sn.hc);
    fs_prom_s3(f, &sn.os);
    fs_prom_reads(f, m, &sn);
    fs_prom_fleet(f, &sn);
    return fs_render_close(f, out, len);
}

static void fs_json_u(FILE *f, const char *name, uint64_t v, bool last)
{
    fprintf(f, "  \"%s\": %llu%s\n", name, (unsigned long long)v, last ? "" : ",");
}

/* A JSON string value; the inputs (source, mountpoint) are escaped. */
static void fs_json_s(FILE *f, const char *name, const char *v)
{
    fprintf(f, "  \"%s\": \"", name);
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputs("\",\n", f);
}

int fs_metrics_json(struct fs *fs, char **out, size_t *len)
{
    struct fs_metrics *m = fs->metrics;
    struct fs_snap sn;
    FILE *f;
    uint64_t s3_req = 0, s3_err = 0, s3_nf = 0;

    *out = NULL;
    f = open_memstream(out, len);
    if (!f)
        return -ENOMEM;
    fs_snap_take(fs, &sn);
    const struct hc_stats *h = &sn.hc;
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++) {
        for (unsigned c = 0; c < OBJSTORE_STATUS_COUNT; c++)
            s3_req += sn.os.done[op][c];
        s3_err += sn.os.done_errors[op];
        s3_nf += sn.os.done_not_found[op];
    }
    uint64_t gets = 0;
    for (unsigned c = 0; c < OBJSTORE_STATUS_COUNT; c++)
        gets += sn.os.done[OBJSTORE_OP_GET][c];

    fputs("{\n", f);
    fs_json_s(f, "version", TIERFS_VERSION);
    fs_json_s(f, "source", fs->conf->source);
    fs_json_s(f, "mountpoint", fs->mnt);
    fs_json_s(f, "disk_cache", fs->conf->disk_cache);
    fs_json_s(f, "io_engine", sn.hc.disk_engine);
    fs_json_s(f, "disk_device",
              !sn.hc.disk_engine    ? ""
              : sn.hc.disk_blockdev ? "block device"
                                    : "file");
    fs_json_s(f, "eviction", fs->conf->eviction ? fs->conf->eviction : "s3fifo");
    fs_json_s(f, "compression", fs->conf->compress ? "lz4" : "none");
    fs_json_s(f, "metrics_address", m->httpd ? m->addr : "");
    fs_json_u(f, "pid", (uint64_t)getpid(), false);
    fs_json_u(f, "start_time", (uint64_t)fs->mount_time, false);
    fs_json_u(f, "log_level", (uint64_t)tlog_get_level(), false);
    fs_json_u(f, "block_size", fs->conf->block_size, false);
    fs_json_u(f, "open_files", sn.open_files, false);
    fs_json_u(f, "mem_hits", h->mem_hits, false);
    fs_json_u(f, "mem_misses", h->mem_misses, false);
    fs_json_u(f, "mem_bytes_read", h->mem_bytes_read, false);
    fs_json_u(f, "mem_evictions", h->mem_evictions, false);
    fs_json_u(f, "mem_used", h->mem_used, false);
    fs_json_u(f, "mem_limit", h->mem_limit, false);
    fs_json_u(f, "pool_bytes", h->pool_bytes, false);
    fs_json_u(f, "disk_hits", h->disk_hits, false);
    fs_json_u(f, "disk_partial_hits", h->disk_partial_hits, false);
    fs_json_u(f, "disk_partial_bytes", h->disk_partial_bytes, false);
    fs_json_u(f, "disk_misses", h->disk_misses, false);
    fs_json_u(f, "disk_bytes_read", h->disk_bytes_read, false);
    fs_json_u(f, "disk_bytes_written", h->disk_bytes_written, false);
    fs_json_u(f, "disk_evictions", h->disk_evictions, false);
    fs_json_u(f, "disk_used", h->disk_used, false);
    fs_json_u(f, "disk_capacity", h->disk_capacity, false);
    fs_json_u(f, "disk_region_size", h->disk_region_size, false);
    fs_json_u(f, "disk_entries", h->disk_entries, false);
    fs_json_u(f, "disk_compressed_blocks", h->compressed_blocks, false);
    fs_json_u(f, "disk_compressed_saved_bytes", h->compressed_saved_bytes, false);
    fs_json_u(f, "admission_drops", h->admission_drops, false);
    fs_json_u(f, "disk_deferred", h->disk_deferred, false);
    fs_json_u(f, "disk_defer_pending", h->disk_defer_pending, false);
    fs_json_u(f, "disk_defer_holds", h->disk_defer_holds, false);
    fs_json_u(f, "checksum_failures", h->checksum_failures, false);
    fs_json_u(f, "origin_fetches", h->origin_fetches, false);
    fs_json_u(f, "origin_bytes", h->origin_bytes, false);
    fs_json_u(f, "singleflight_merges", h->merges, false);
    fs_json_u(f, "s3_requests", s3_req, false);
    fs_json_u(f, "s3_gets", gets, false);
    fs_json_u(f, "s3_errors", s3_err, false);
    fs_json_u(f, "s3_not_found", s3_nf, false);
    fs_json_u(f, "s3_retries", sn.os.retries, false);
    fs_json_u(f, "s3_bytes", sn.os.bytes_received, false);
    fs_json_u(f, "s3_inflight", sn.os.inflight, false);
    fs_json_u(f, "fuse_reads", fs_get(&m->fuse_read.count), false);
    fs_json_u(f, "fuse_read_bytes", fs_get(&m->fuse_read_bytes), false);
    fs_json_u(f, "fuse_read_errors", fs_get(&m->fuse_read_errors), false);
    fs_json_u(f, "fuse_read_ns_sum", fs_get(&m->fuse_read.sum_ns), false);
    fs_json_u(f, "prefetch_issued", sn.pf_issued, false);
    fs_json_u(f, "prefetch_used", sn.pf_used, false);
    fs_json_u(f, "prefetch_wasted", sn.pf_wasted, false);
    fs_json_u(f, "prefetch_wasted_bytes", sn.pf_wasted_bytes, false);
    fs_json_u(f, "read_skips", sn.read_skips, false);
    fs_json_u(f, "piece_reads", sn.piece_reads, false);
    fs_json_u(f, "piece_prefetched", sn.piece_prefetched, false);
    fs_json_u(f, "piece_fetches", sn.piece_fetches, false);
    fs_json_u(f, "piece_bytes", sn.piece_bytes, false);
    fs_json_u(f, "piece_assembled", sn.piece_asm, false);
    fs_json_u(f, "dense_sweeps", sn.dense_sweeps, false);
    fs_json_u(f, "dense_blocks", sn.dense_blocks, false);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(fs_upload_ctrs); i++)
        fs_json_u(f, fs_upload_ctrs[i].name, sn.up[i], false);
    fs_json_u(f, "prefetch_disk", sn.pf_disk, false);
    fs_json_u(f, "prefetch_fleet", sn.pf_fleet, false);
    fs_json_s(f, "fleet", fs->conf->fleet);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(fs_fleet_ctrs); i++) {
        char name[64];
        snprintf(name, sizeof(name), "fleet_%s", fs_fleet_ctrs[i].name);
        fs_json_u(f, name, fs_fleet_ctr(&sn.fl, i), false);
    }
    fs_json_u(f, "fleet_store_queue_bytes", sn.fl.store_queue_bytes, false);
    fs_json_u(f, "page_cache_fills", sn.fill.stored, false);
    fs_json_u(f, "page_cache_fill_bytes", sn.fill.stored_bytes, false);
    fs_json_u(f, "page_cache_fills_skipped", sn.fill.dropped + sn.fill.failed, false);
    fs_json_u(f, "page_cache_fills_merged", sn.fill.duplicates, true);
    fputs("}\n", f);
    return fs_render_close(f, out, len);
}

/* ---- the HTTP endpoint ---- */

static enum MHD_Result fs_http_send(struct MHD_Connection *c, unsigned status, const char *type,
                                    char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret;

    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fs_http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    static char not_found[] = "not found: try /metrics or /stats.json\n";
    static char bad_method[] = "only GET\n";
    struct fs *fs = cls;
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return fs_http_send(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method,
                            strlen(bad_method), MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0)
        rc = fs_metrics_prometheus(fs, &body, &len);
    else if (strcmp(url, "/stats.json") == 0)
        rc = fs_metrics_json(fs, &body, &len);
    else
        return fs_http_send(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found, strlen(not_found),
                            MHD_RESPMEM_PERSISTENT);
    if (rc < 0)
        return MHD_NO;
    return fs_http_send(c, MHD_HTTP_OK,
                        url[1] == 'm' ? "text/plain; version=0.0.4; charset=utf-8"
                                      : "application/json",
                        body, len, MHD_RESPMEM_MUST_FREE);
}

static void fs_http_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    TLOG_I("metrics endpoint: %s", line);
}

/* "127.0.0.1:9464" / "[::1]:9464" of a bound socket. */
static void fs_fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
        snprintf(buf, cap, "[%s]:%u", host, ntohs(a6->sin6_port));
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
        snprintf(buf, cap, "%s:%u", host, ntohs(a4->sin_port));
    }
}

int fs_metrics_serve(struct fs *fs, char *err, size_t errcap)
{
    const struct fs_conf *c = fs->conf;
    struct fs_metrics *m = fs->metrics;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    int one = 1, rc;

    if (!c->metrics)
        return 0;
    /* Our own socket: a bind failure gets its errno (libmicrohttpd would only say NULL). */
    int sfd = socket(c->metrics_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sfd < 0) {
        rc = -errno;
        snprintf(err, errcap, "%s: socket: %s", c->metrics, strerror(-rc));
        return rc;
    }
    (void)setsockopt(sfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(sfd, (const struct sockaddr *)&c->metrics_addr, c->metrics_addr_len) != 0 ||
        listen(sfd, 16) != 0 || getsockname(sfd, (struct sockaddr *)&bound, &blen) != 0) {
        rc = -errno;
        snprintf(err, errcap, "%s: %s", c->metrics, strerror(-rc));
        close(sfd);
        return rc;
    }
    fs_fmt_addr(&bound, m->addr, sizeof(m->addr));
    m->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG,
                                0, NULL, NULL, fs_http_handler, fs, MHD_OPTION_LISTEN_SOCKET, sfd,
                                MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT,
                                10u, MHD_OPTION_EXTERNAL_LOGGER, fs_http_log, NULL, MHD_OPTION_END);
    if (!m->httpd) {
        close(sfd);
        snprintf(err, errcap, "%s: cannot start the HTTP server", c->metrics);
        return -EIO;
    }
    TLOG_N("metrics on http://%s/metrics", m->addr);
    return 0;
}
