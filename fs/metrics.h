/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h: counters and latency histograms of the tierfs daemon, rendered as Prometheus
 * text (GET /metrics on -o metrics=HOST:PORT), as JSON (GET /stats.json, and the
 * user.tierfs.stats xattr of the mount root that tierfs-stat reads).
 *
 * DESIGN
 * The numbers live in the layers (hc_get_stats; objstore_get_stats, whose stats layer,
 * objstore_stats_create outside the retry layer, counts S3 requests by op and final HTTP
 * status and times what a reader waits for) and are read when a scrape comes; this module
 * adds only what no layer can see: histograms of FUSE read latency (request to reply) and
 * of reads served by the disk tier. Every counter
 * is a relaxed atomic: a scrape sees each value whole, not all of them at one instant.
 * The HTTP server is libmicrohttpd on one internal thread, started after the daemon has
 * forked (no thread may exist before the fork).
 */
#ifndef TIERFS_FS_METRICS_H
#define TIERFS_FS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The xattr of the mount root that holds fs_metrics_json() (tierfs-stat reads it). */
#define FS_STATS_XATTR "user.tierfs.stats"

struct fs;
struct fs_metrics;

/* Create the counters (always: the stats xattr needs them). @return 0 or -ENOMEM. */
int fs_metrics_create(struct fs_metrics **out);
/* Stop serving (if started): no handler runs after this returns. NULL is fine. */
void fs_metrics_stop(struct fs_metrics *m);
/* Stop serving and free. NULL is fine. */
void fs_metrics_destroy(struct fs_metrics *m);

/* A FUSE read that started at @start_ns (cmn_now_ns()) was replied: with error @err, or
 * (@err 0) with the @cnt buffers of @iov. Thread safe. */
void fs_metrics_fuse_read(struct fs_metrics *m, uint64_t start_ns, int err, const struct iovec *iov,
                          int cnt);
/* A block of a read was served by the disk tier; the lookup started at @start_ns. */
void fs_metrics_disk_read(struct fs_metrics *m, uint64_t start_ns);

/*
 * Bind fs->conf->metrics and serve /metrics and /stats.json on it. @return 0, or -errno
 * after writing the cause into @err (like "127.0.0.1:9464: Address already in use").
 */
int fs_metrics_serve(struct fs *fs, char *err, size_t errcap);

/* Render every metric. @return 0 and a malloc'd NUL-terminated text in *out, or -ENOMEM. */
int fs_metrics_prometheus(struct fs *fs, char **out, size_t *len);
int fs_metrics_json(struct fs *fs, char **out, size_t *len);

#endif
