/* SPDX-License-Identifier: Apache-2.0 */
/*
 * objstore.h: the object-store interface of tierfs (an S3 client and its wrappers).
 *
 * DESIGN
 * An object store is a `struct objstore` whose first member is a pointer to a
 * `const struct objstore_ops` table (SQLite-vfs style). Implementations:
 *   - objstore_s3_create():    the real S3 backend (libcurl multi on one event thread,
 *                              SigV4 with OpenSSL, ListObjectsV2 parsed with libxml2);
 *   - objstore_retry_create(): wraps another store; retries 5xx/SlowDown/resets/timeouts/
 *                              short bodies with exponential backoff and full jitter;
 *   - objstore_stats_create(): wraps another store; counts completed requests by op and
 *                              status class and times them (the metrics endpoint shows
 *                              these; outside the retry layer, so it times what a caller
 *                              waits for);
 *   - objstore_fault_create(): wraps another store; injects errors for tests.
 * Wrappers take ownership of the inner store and destroy it with themselves.
 *
 * Requests are asynchronous: the caller fills a `struct objstore_req`, calls
 * objstore_submit(), and gets exactly one call of req->done (on an internal thread,
 * never inside objstore_submit()) with req->result set to 0 or -errno. The synchronous
 * helpers (objstore_head/get/list) are built on top and may be called from any thread
 * except a done callback.
 *
 * Errors map to errno in one table inside objstore: 404/NoSuchKey/NoSuchBucket -> ENOENT,
 * 403 -> EACCES, 412 -> ESTALE, 416 -> EINVAL (a range wholly past EOF; a GET with
 * OBJSTORE_GET_EOF_OK gets 0 bytes instead), 5xx/SlowDown after retries -> EIO,
 * timeouts -> ETIMEDOUT, refused -> ECONNREFUSED, unreachable -> EHOSTUNREACH.
 * The retry layer retries 5xx, resets, timeouts and short bodies; a reset that persists ends
 * as EIO. 4xx, refused and unreachable are never retried (they fail fast: a wrong endpoint
 * or a server that is down). TLS trust failures -> EPROTO. Each failure gets a message in
 * req->errmsg ("GET bucket/key: AccessDenied: ... (HTTP 403)"), logged once, rate-limited.
 */
#ifndef TIERFS_OBJSTORE_H
#define TIERFS_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/util.h" /* struct cmn_hist */

struct objstore;

#define OBJSTORE_ETAG_MAX 128      /* bytes incl. NUL; S3 ETags are 34-ish, quotes kept */
#define OBJSTORE_UPLOAD_ID_MAX 512 /* a multipart upload's id, incl. NUL */
#define OBJSTORE_PARTS_MAX 10000   /* S3's limit of parts per upload */
#define OBJSTORE_ERRMSG_MAX 256

enum objstore_op {
    OBJSTORE_OP_HEAD = 0,
    OBJSTORE_OP_GET,
    OBJSTORE_OP_LIST,
    OBJSTORE_OP_PUT,          /* PutObject of buf[0, len) in one request */
    OBJSTORE_OP_DELETE,       /* DeleteObject; with upload_id: AbortMultipartUpload */
    OBJSTORE_OP_MPU_CREATE,   /* CreateMultipartUpload: upload_id_out */
    OBJSTORE_OP_MPU_PART,     /* UploadPart part_number of upload_id: buf[0, len); info.etag */
    OBJSTORE_OP_MPU_COMPLETE, /* CompleteMultipartUpload of parts[0, nparts); info.etag */
    OBJSTORE_OP_COUNT
};
/* The class of a request's last HTTP status: 2xx .. 5xx, or none (no answer at all). */
enum objstore_status_class {
    OBJSTORE_STATUS_2XX = 0,
    OBJSTORE_STATUS_3XX,
    OBJSTORE_STATUS_4XX,
    OBJSTORE_STATUS_5XX,
    OBJSTORE_STATUS_NONE,
    OBJSTORE_STATUS_COUNT
};

/* What HEAD returns and what a GET reports about the object it read. */
struct objstore_object_info {
    uint64_t size;                /* whole object size (from Content-Length / Content-Range) */
    char etag[OBJSTORE_ETAG_MAX]; /* as S3 sends it, including the quotes */
    int64_t mtime_sec;            /* Last-Modified, seconds since the epoch */
};

/* One part of a multipart upload, as CompleteMultipartUpload names it. */
struct objstore_part {
    unsigned number;              /* 1 .. OBJSTORE_PARTS_MAX, ascending in the list */
    char etag[OBJSTORE_ETAG_MAX]; /* what UploadPart answered, quotes kept */
};

/* One key of a listing. */
struct objstore_entry {
    char *key; /* decoded (encoding-type=url is undone), full key */
    uint64_t size;
    char etag[OBJSTORE_ETAG_MAX];
    int64_t mtime_sec;
};

/* One page of ListObjectsV2. Free with objstore_list_result_free(). */
struct objstore_list_result {
    struct objstore_entry *entries;
    size_t n_entries;
    char **prefixes; /* common prefixes, decoded, each ends with the delimiter */
    size_t n_prefixes;
    bool truncated;
    char *next_token; /* NextContinuationToken, NULL when not truncated */
};

struct objstore_list_args {
    const char *prefix;             /* NULL or "" for the whole bucket */
    const char *delimiter;          /* NULL for a flat listing, usually "/" */
    const char *continuation_token; /* NULL for the first page */
    const char *start_after;        /* NULL or a key */
    unsigned max_keys;              /* 0 = server default (1000) */
};

/* GET flags */
#define OBJSTORE_GET_EOF_OK                                                                        \
    0x1 /* a range starting at/after EOF reads 0 bytes, not -EINVAL                                \
         * (info.size then is 0 unless the server sent the size) */

struct objstore_req;
typedef void (*objstore_done_fn)(struct objstore_req *req);
/*
 * Progress for GET: called on the event thread as body bytes land in the buffer;
 * @valid is the number of bytes from the start of the buffer that now hold final data.
 * Never called with a smaller value than before for the same request, even across
 * retries (the retry layer resumes where the last attempt stopped).
 */
typedef void (*objstore_progress_fn)(struct objstore_req *req, size_t valid);

struct objstore_req {
    /* ---- in ---- */
    enum objstore_op op;
    const char *key; /* HEAD/GET: object key (not URI-encoded) */
    /* GET */
    uint64_t off;         /* first byte */
    uint64_t len;         /* bytes wanted; 0 = to the end of the object */
    const char *if_match; /* NULL or an ETag (with quotes) */
    void *buf;            /* where the body goes; caller-owned (PUT: the body, len bytes) */
    size_t buf_cap;       /* capacity of buf; a longer body is an error (-EIO) */
    /* GET only, instead of buf: the body is scattered over iov[0, iovcnt) in order, so a
     * multi-block read lands in the blocks' own buffers (no staging copy). buf must be
     * NULL and buf_cap the sum of the iov_len. Caller-owned until done, like buf. */
    const struct iovec *iov;
    unsigned iovcnt;
    unsigned flags;                /* OBJSTORE_GET_* */
    objstore_progress_fn progress; /* optional */
    /* LIST */
    struct objstore_list_args list;
    /* PUT, MPU_PART: buf[0, len) is sent with Content-MD5 (S3 refuses a corrupt body).
     * MPU_PART, MPU_COMPLETE, DELETE of an upload: */
    const char *upload_id;
    const unsigned char *md5; /* PUT, MPU_PART: the body's MD5 if the caller has it, or NULL */
    unsigned part_number;     /* MPU_PART */
    const struct objstore_part *parts; /* MPU_COMPLETE: caller-owned until done */
    unsigned nparts;
    /* completion */
    objstore_done_fn done;
    void *arg; /* caller's cookie */

    /* ---- out (valid in done) ---- */
    int result;                       /* 0 or -errno */
    int http_status;                  /* last HTTP status seen, 0 if none */
    size_t got;                       /* GET: body bytes in buf. After a failed attempt of the S3
                                       * backend: the valid prefix that did land (the retry layer
                                       * resumes from it); the retry layer reports 0 on failure */
    struct objstore_object_info info; /* HEAD and GET */
    struct objstore_list_result list_result; /* LIST; caller frees with objstore_list_result_free */
    char upload_id_out[OBJSTORE_UPLOAD_ID_MAX]; /* MPU_CREATE */
    unsigned attempts;                          /* how many tries it took (retry layer) */
    char errmsg[OBJSTORE_ERRMSG_MAX];           /* readable cause when result < 0 */

    /* ---- private to the layers: do not touch ----
     * The stats layer (stats.c; at most one in a stack) keeps its per-request state here,
     * not in arg, which stays the caller's for its progress callback. */
    struct objstore *stats_layer; /* the stats layer the request went through ... */
    objstore_done_fn stats_done;  /* ... the done it wrapped ... */
    uint64_t stats_t0_ns;         /* ... and when the request reached it */
};

/* Per-store counters, cumulative since creation. */
struct objstore_stats {
    uint64_t requests[OBJSTORE_OP_COUNT]; /* attempts sent, by op */
    uint64_t errors[OBJSTORE_OP_COUNT];   /* completed with result < 0 (after retries) */
    uint64_t ranged_gets;
    uint64_t retries;
    uint64_t bytes_received; /* body bytes */
    uint64_t status_2xx, status_3xx, status_4xx, status_5xx, status_none;
    uint64_t latency_ns_total[OBJSTORE_OP_COUNT]; /* sum of first-attempt-to-done times */
    uint64_t faults_injected;                     /* fault layer only */
    /* stats layer only (objstore_stats_create): completed requests as callers see them,
     * after retries, by op and by the class of their last HTTP status, and their
     * latency from submit to done */
    uint64_t done[OBJSTORE_OP_COUNT][OBJSTORE_STATUS_COUNT];
    uint64_t done_errors[OBJSTORE_OP_COUNT];    /* of those, completed with result < 0, but: */
    uint64_t done_not_found[OBJSTORE_OP_COUNT]; /* HEADs answered 404: "no such object" is
                                                   an answer (a lookup of a directory
                                                   name HEADs it), not an error */
    struct cmn_hist latency[OBJSTORE_OP_COUNT];
    uint32_t inflight; /* requests submitted and not yet done */
    uint32_t inflight_max;
};

struct objstore_ops {
    int version; /* OBJSTORE_OPS_VERSION */
    const char *name;
    /* Start a request. @return 0 (done will be called) or -errno (done will not be called). */
    int (*submit)(struct objstore *os, struct objstore_req *req);
    /* Optional: fill stats (wrappers add their own counters to the inner's). */
    void (*get_stats)(struct objstore *os, struct objstore_stats *st);
    /* Wait for in-flight requests to finish (their callbacks run), stop threads, free. */
    void (*destroy)(struct objstore *os);
};
#define OBJSTORE_OPS_VERSION 1

struct objstore {
    const struct objstore_ops *ops;
};

/* ---- configuration of the S3 backend ---- */

struct objstore_creds; /* see objstore_creds_*: static keys, env, profile, container, IMDS */

struct objstore_s3_conf {
    const char *bucket;   /* required */
    const char *endpoint; /* NULL: $AWS_ENDPOINT_URL, else https://BUCKET.s3.REGION.amazonaws.com */
    const char *region;   /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1 */
    bool path_style;      /* http(s)://endpoint/BUCKET/KEY instead of BUCKET.endpoint */
    const char *profile;  /* NULL: $AWS_PROFILE, else "default" */
    bool anonymous;       /* send unsigned requests */
    const char *ca_bundle;       /* NULL: system default (never the AWS_CA_BUNDLE of the env) */
    bool insecure;               /* disable TLS verification (tests only) */
    unsigned max_connections;    /* 0 = 64 */
    unsigned connect_timeout_ms; /* 0 = 3000 */
    unsigned
        low_speed_time_s; /* abort a transfer slower than low_speed_limit for this long; 0 = 10 */
    unsigned low_speed_limit;     /* bytes/s; 0 = 1024 */
    unsigned request_timeout_ms;  /* abort an attempt not done this long after it could be
                                   * sent (a trickling body); -ETIMEDOUT, retried. 0 = none */
    unsigned stall_timeout_ms;    /* abort an attempt that moves no byte (response head,
                                   * body or upload) for this long once its connection is up;
                                   * -ETIMEDOUT, retried. 0 = off (the low-speed limit only) */
    struct objstore_creds *creds; /* NULL = the default provider chain; the store takes ownership */
};

/* Create the S3 backend. @return 0 and *out, or -errno (message logged). */
int objstore_s3_create(const struct objstore_s3_conf *conf, struct objstore **out);

struct objstore_retry_conf {
    unsigned max_attempts;  /* total tries including the first; 0 = 5 */
    unsigned base_delay_ms; /* 0 = 50 */
    unsigned max_delay_ms;  /* 0 = 2000 */
};
/* Wrap @inner (ownership passes, also on failure) with retries. */
int objstore_retry_create(struct objstore *inner, const struct objstore_retry_conf *conf,
                          struct objstore **out);

/* Wrap @inner (ownership passes, also on failure) with the statistics layer: completed
 * requests by op and status class, errors, latency histograms (objstore_stats.done,
 * done_errors, latency). No allocation per request. @return 0 or -ENOMEM. */
int objstore_stats_create(struct objstore *inner, struct objstore **out);
/* Names for logs and metrics labels: "head", "get", ...; "2xx" .. "5xx", "none". */
const char *objstore_op_label(enum objstore_op op);
const char *objstore_status_label(enum objstore_status_class cls);

/* Fault kinds the test wrapper can inject, each with a probability or a countdown. */
enum objstore_fault_kind {
    OBJSTORE_FAULT_NONE = 0,
    OBJSTORE_FAULT_HTTP_500,   /* answer as if S3 said 500 InternalError */
    OBJSTORE_FAULT_HTTP_503,   /* 503 SlowDown */
    OBJSTORE_FAULT_RESET,      /* connection reset (-ECONNRESET) */
    OBJSTORE_FAULT_SHORT_BODY, /* body shorter than announced */
    OBJSTORE_FAULT_TIMEOUT,    /* -ETIMEDOUT */
    OBJSTORE_FAULT_HTTP_403,   /* AccessDenied */
    OBJSTORE_FAULT_HTTP_404,   /* NoSuchKey */
};
struct objstore_fault_conf {
    enum objstore_fault_kind kind;
    unsigned every_nth;  /* inject on every Nth request (1 = all), 0 = use probability */
    double probability;  /* 0..1 */
    unsigned max_faults; /* stop after this many; 0 = unlimited */
    uint64_t seed;
};
/* Wrap @inner (ownership passes) with fault injection. */
int objstore_fault_create(struct objstore *inner, const struct objstore_fault_conf *conf,
                          struct objstore **out);
/* Change the fault plan at run time (thread safe). */
void objstore_fault_set(struct objstore *fault_store, const struct objstore_fault_conf *conf);

/* ---- wrappers callers use (never os->ops->fn directly) ---- */

/* Submit @req. @return 0 (done will be called exactly once) or -errno (it will not). */
int objstore_submit(struct objstore *os, struct objstore_req *req);
/* Read cumulative counters. */
void objstore_get_stats(struct objstore *os, struct objstore_stats *st);
/* Destroy (NULL is fine). Waits for in-flight requests. */
void objstore_destroy(struct objstore *os);

/* Synchronous helpers. @return 0 or -errno; errmsg (may be NULL) gets the cause. */
int objstore_head(struct objstore *os, const char *key, struct objstore_object_info *info,
                  char *errmsg, size_t errmsg_cap);
/* GET [off, off+len) into buf (len 0 = to end). @return bytes read (>= 0) or -errno. */
ssize_t objstore_get(struct objstore *os, const char *key, uint64_t off, uint64_t len,
                     const char *if_match, void *buf, size_t buf_cap, unsigned flags,
                     struct objstore_object_info *info, char *errmsg, size_t errmsg_cap);
int objstore_list(struct objstore *os, const struct objstore_list_args *args,
                  struct objstore_list_result *res, char *errmsg, size_t errmsg_cap);
/* PUT @len bytes of @buf as @key (one request). @return 0 or -errno; info gets the new ETag. */
int objstore_put(struct objstore *os, const char *key, const void *buf, size_t len,
                 struct objstore_object_info *info, char *errmsg, size_t errmsg_cap);
/* DeleteObject of @key, or with @upload_id, AbortMultipartUpload of that upload. */
int objstore_delete(struct objstore *os, const char *key, const char *upload_id, char *errmsg,
                    size_t errmsg_cap);
/* Multipart upload, synchronously: create (@upload_id gets the id), one part (@etag gets
 * its ETag, OBJSTORE_ETAG_MAX bytes), complete (@info gets the object's ETag). */
int objstore_mpu_create(struct objstore *os, const char *key, char *upload_id, size_t cap,
                        char *errmsg, size_t errmsg_cap);
int objstore_mpu_part(struct objstore *os, const char *key, const char *upload_id, unsigned number,
                      const void *buf, size_t len, char *etag, char *errmsg, size_t errmsg_cap);
int objstore_mpu_complete(struct objstore *os, const char *key, const char *upload_id,
                          const struct objstore_part *parts, unsigned nparts,
                          struct objstore_object_info *info, char *errmsg, size_t errmsg_cap);
void objstore_list_result_free(struct objstore_list_result *res);

/* ---- credentials ---- */

struct objstore_credentials {
    char access_key[128];
    char secret_key[128];
    char session_token[2048]; /* "" if none */
    int64_t expiration;       /* unix seconds, 0 = never */
};

/*
 * A credentials provider resolves (and refreshes before expiry) the keys to sign with.
 * objstore_creds_default(): the AWS CLI order: environment, profile (~/.aws/credentials
 * and ~/.aws/config, AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE honoured), container
 * endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI), EC2 IMDSv2.
 * An explicit @profile skips the environment (as the CLI's --profile does); a named profile
 * (@profile or AWS_PROFILE) found in neither file is an error, not a fall-through.
 * The chain stops at the first source that is configured, even if it fails. Resolution is
 * lazy (first objstore_creds_get); a failure is not retried for 10 s; a failed refresh keeps
 * serving the old keys until they expire. Objects take ownership of nothing passed in.
 */
int objstore_creds_static(const char *access_key, const char *secret_key, const char *token,
                          struct objstore_creds **out);
int objstore_creds_default(const char *profile, struct objstore_creds **out);
/* The CA certificates the providers' TLS requests (STS) verify with: @path (-o ca_bundle),
 * or NULL for the system store; never the environment's bundles. Process-wide: set it at
 * start-up, before any provider runs. */
void objstore_creds_set_ca_bundle(const char *path);
/* Walk the default chain once as a mount would (@profile: -o profile=, or NULL), printing
 * to @out each source looked at, why it was passed over or taken, and the result: the
 * source, the access key's first and last 4 characters, the expiry. No secret is printed.
 * @return 0, or the chain's -errno. */
int objstore_creds_explain(const char *profile, FILE *out);
/*
 * Current credentials (refreshing if within 5 minutes of expiry). Thread safe.
 * @return 0, -EACCES when no source has credentials (one log line names every source
 * tried), -EINVAL for a broken configuration (half a key pair, a bad token file), or the
 * -errno of a configured HTTP source that failed (-EIO, -ETIMEDOUT, -ECONNREFUSED, ...).
 */
int objstore_creds_get(struct objstore_creds *c, struct objstore_credentials *out);
void objstore_creds_destroy(struct objstore_creds *c);

/* Map an errno from this module to a short readable word ("no such key", ...). */
const char *objstore_strerror(int neg_errno);

#endif
