/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsutil.h: the public interface of tierfs_fsutil, what the daemon shares with the tools
 * that must agree with it (tierfs-cache warm fills a cache the mount then reads):
 *   opts.c      - the one fuse_opt table, validation, --help (fs_opts_*)
 *   store.c     - the S3 client the options describe (fs_store_create)
 *   cacheconf.c - the hybrid cache configuration the options describe (fs_cache_conf)
 * The block key format and cache identity are in fs/blockkey.h.
 */
#ifndef TIERFS_FS_FSUTIL_H
#define TIERFS_FS_FSUTIL_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314 /* libfuse 3.14: fuse_loop_cfg_* */
#endif
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct objstore;
struct hc_conf;

/* mem_cache_size: 1/FS_MEM_CACHE_RAM_SHARE of what the process may use (cmn_mem_limit),
 * within these bounds (fs_default_mem_cache). */
#define FS_DEFAULT_MEM_CACHE_MIN (256ull << 20)
#define FS_DEFAULT_MEM_CACHE_MAX (4ull << 30)
#define FS_MEM_CACHE_RAM_SHARE 16
#define FS_DEFAULT_DISK_CACHE (1ull << 30) /* only when disk_cache names a new file */
#define FS_DEFAULT_TTL_MS 60000
#define FS_DEFAULT_NEG_TTL_MS 5000
#define FS_DEFAULT_MAX_THREADS 16
#define FS_DEFAULT_READ_AHEAD (1u << 20)
/* prefetch_window: sixteen 8 MiB GETs in flight, the size past which a cold scan behind a
 * slow first byte gained little for much more memory (docs/performance.md, "Constants").
 * Half the memory budget caps it anyway (FS_PF_BUDGET_SHARE). */
#define FS_DEFAULT_PREFETCH_WINDOW (128u << 20)
#define FS_DEFAULT_PREFETCH_MAX_REQUEST (8u << 20) /* prefetch_max_request */
/* page_cache_fill: the aligned range around a lone small read that goes to the kernel's
 * page cache (fs/fill.c). 64 KiB: sixteen pages per disk read, at about the cost of one
 * 4 KiB O_DIRECT read plus a 64 KiB copy. */
#define FS_DEFAULT_PAGE_CACHE_FILL (64u << 10)
/* partial_grain: the piece a forward-skipping reader fetches and caches (fs/piece.c); 64 KiB
 * keeps a 20 KB column chunk at one or two pieces and a GET per piece run
 * (docs/performance.md, "Column-selective reads"). */
#define FS_DEFAULT_PARTIAL_GRAIN (64u << 10)
/* dense_prefetch: the largest file fetched whole for a dense random reader (fs/dense.c) */
#define FS_DEFAULT_DENSE_PREFETCH (1ull << 30)
/* writes (-o rw): 8 MiB parts, 4 in flight per file, 64 MiB of part buffers in all */
#define FS_DEFAULT_PART_SIZE (8ull << 20)
#define FS_DEFAULT_UPLOAD_PARALLEL 4
#define FS_DEFAULT_UPLOAD_MEMORY (64ull << 20)
#define FS_FILL_SEEN_BITS 12 /* blocks remembered for "read alone again": 4096 */
#define FS_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define FS_DEFAULT_READ_TIMEOUT_MS 10000
#define FS_DEFAULT_RETRIES 4 /* 5 attempts */
#define FS_NEG_MAX 256       /* negative entries kept per directory */
/* Bytes of inodes (with their listings) kept after the kernel forgot them, so metadata
 * stays cached for metadata_ttl whatever the kernel's inode cache does (ns.c). */
#define FS_IDLE_MAX_BYTES (64ull << 20)

/*
 * Everything the command line and -o options set. fuse_opt writes the raw strings
 * (offsetof into this struct); fs_opts_validate() turns them into the typed fields.
 */
struct fs_conf {
    /* ---- raw, from fuse_opt ---- */
    char *endpoint, *region, *profile, *ca_bundle, *access_key, *secret_key;
    int path_style, no_sign_request, insecure;
    char *block_size_s, *mem_cache_size_s, *disk_cache, *disk_cache_size_s, *direct_io_s;
    int disk_cache_overwrite; /* format a disk_cache that holds data of something else */
    char *io_engine, *eviction, *compression;
    char *metadata_ttl_s, *negative_ttl_s, *max_connections_s, *max_threads_s;
    char *connect_timeout_s, *read_timeout_s, *request_timeout_s, *retries_s;
    char *read_ahead_s, *prefetch_s, *page_cache_s;
    char *prefetch_window_s, *prefetch_max_request_s, *page_cache_fill_s, *partial_grain_s;
    char *dense_prefetch_s;
    char *uid_s, *gid_s, *file_mode_s, *dir_mode_s, *log_level_s;
    char *metrics; /* HOST:PORT of the metrics endpoint, or NULL (off) */
    char *fleet, *fleet_secret, *fleet_timeout_s, *fleet_lease_s, *fleet_retry_s;
    char *fleet_piece_size_s, *fleet_store_queue_s;
    int writable, allow_overwrite, allow_delete; /* writes (write.c) */
    char *part_size_s, *upload_parallel_s, *upload_memory_s;
    int foreground, debug, show_help, show_version, explain_creds;
    char *source, *mountpoint; /* the two positional arguments */

    /* ---- validated ---- */
    char *bucket; /* owned */
    char *prefix; /* owned; "" or "some/dir/" */
    uint32_t block_size;
    uint64_t mem_cache_size, disk_cache_size;
    bool direct_io, compress;
    uint64_t metadata_ttl_ms, negative_ttl_ms;
    unsigned max_connections, max_threads;
    uint64_t connect_timeout_ms; /* one TCP (and TLS) connection attempt */
    uint64_t read_timeout_ms; /* an attempt that moves no byte this long fails (and is retried) */
    uint64_t
        request_timeout_ms; /* an attempt not done this long fails (and is retried); 0 = none */
    unsigned retries;       /* of a failed S3 request: attempts = retries + 1 */
    uint64_t read_ahead;
    uint64_t prefetch_window;      /* -o prefetch_window (and -o prefetch): the largest
                                      window in bytes, 0 = off */
    uint64_t prefetch_max_request; /* bytes of one prefetch GET, whole blocks */
    bool page_cache;               /* false: reads bypass the kernel's page cache */
    bool page_cache_auto;          /* page_cache=auto: a file whose last open read its tail
                                      first (a footer) is opened around it (ns.c); atomic:
                                      set at FUSE init when page_cache_default */
    bool page_cache_default;       /* page_cache not given: auto where the kernel allows a
                                      shared mmap of direct-I/O files (fs/fuseio.h), else yes */
    uint64_t page_cache_fill;      /* 0 = off, else a power of two from 4K to the block */
    uint64_t partial_grain;        /* 0 = off, else a power of two from 4K to half a block */
    uint64_t dense_prefetch;       /* 0 = off, else the largest file fetched whole (dense.c) */
    uid_t uid;
    gid_t gid;
    mode_t file_mode, dir_mode;
    uint64_t part_size;       /* -o rw: bytes of one UploadPart (5M..5G, whole blocks) */
    unsigned upload_parallel; /* parts of one file in flight */
    uint64_t upload_memory;   /* part buffers of all files together */
    int log_level;
    const char *fleet_servers; /* -o fleet without "memcached://" (in fleet), or NULL */
    uint64_t fleet_timeout_ms, fleet_lease_ms, fleet_retry_ms, fleet_store_queue;
    uint32_t fleet_piece_size;
    uint8_t *fleet_key; /* owned: the contents of fleet_secret, or NULL */
    size_t fleet_key_len;
    struct sockaddr_storage metrics_addr; /* valid when metrics != NULL */
    socklen_t metrics_addr_len;
};

/*
 * Parse argv with the one fuse_opt table. Options that are ours are removed from @args;
 * everything else (ro, allow_other, fsname, ...) stays for fuse_session_new(). Mount(8)
 * noise that libfuse would reject (_netdev, nofail, auto, x-systemd.*, ...) is dropped.
 * @return 0, or -EINVAL after printing one line.
 */
int fs_opts_parse(struct fuse_args *args, struct fs_conf *conf);
/* Check and convert every value; name the bad option in one line. @return 0 or -EINVAL. */
int fs_opts_validate(struct fs_conf *conf);
/* The default mem_cache_size for a process that may use @mem_limit bytes. */
uint64_t fs_default_mem_cache(uint64_t mem_limit);
/* Print the usage text (every option) to stdout. */
void fs_opts_help(const char *argv0);
/* Free what parsing and validation allocated. */
void fs_opts_free(struct fs_conf *conf);
/* For the option files (opts*.c): print "bad value" for @opt naming what it @accepts;
 * parse a size or a duration between bounds (NULL @val: *@out is left). @return 0 or
 * -EINVAL (one line printed). */
int fs_opts_bad(const char *opt, const char *val, const char *accepts);
int fs_opts_size(const char *opt, const char *val, uint64_t min, uint64_t max, const char *accepts,
                 uint64_t *out);
int fs_opts_duration(const char *opt, const char *val, uint64_t min_ms, uint64_t max_ms,
                     const char *accepts, uint64_t *out);
/* opts_fleet.c: the fleet tier's options. @return 0 or -EINVAL (one line printed). */
int fs_opts_parse_fleet(struct fs_conf *conf);

/* ---- store.c ---- */

/*
 * Create the S3 client @c describes: credentials (static keys, anonymous, or the default
 * chain), the S3 backend, the retry layer. Nothing is sent yet.
 * @return 0 and *out, or -errno (a log line names the cause; *creds_failed says whether
 * it was the credentials).
 */
int fs_store_create(const struct fs_conf *c, struct objstore **out, bool *creds_failed);

/* ---- cacheconf.c ---- */

/*
 * The hybrid cache configuration of the mount @c describes, with @identity (the cache
 * identity, fs_cache_identity(); borrowed, like the strings of @c, for as long as *out is
 * used). A disk_cache that names a new or empty file gets FS_DEFAULT_DISK_CACHE when
 * disk_cache_size is not given (an existing file or device brings its own size). The
 * daemon and tierfs-cache warm both open their cache with it, so they cannot drift.
 */
void fs_cache_conf(const struct fs_conf *c, const char *identity, struct hc_conf *out);

#endif
