/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_i.h: the S3 backend's state, shared by s3.c (the event thread: callbacks, completion,
 * submit, destroy) and s3_setup.c (what runs on the submitter's thread and at creation:
 * endpoint, URL and query, SigV4 headers, easy-handle setup). The design is in s3.c.
 */
#ifndef TIERFS_OBJSTORE_S3_I_H
#define TIERFS_OBJSTORE_S3_I_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "objstore/objstore_i.h"

#define OS3_POOL_MAX 64              /* idle easy handles kept for reuse */
#define OS3_ERRBODY_MAX (64u << 10)  /* error XML kept for the message */
#define OS3_LISTBODY_MAX (64u << 20) /* a 1000-key page is ~300 KiB; this is a sanity cap */
#define OS3_USER_AGENT "tierfs/0.1"
/* Receive buffer of a GET (curl's default is 16 KiB): one recv() per 60 KiB instead of
 * per 16 KiB, so far fewer recv calls, write and progress callbacks and TCP window
 * updates (each of which, on a loopback or a busy host, also runs the sender's transmit
 * path in our context). Under 64 KiB on purpose: curl (7.88) mallocs this buffer for
 * every transfer and frees it after, and tierfs sets malloc's mmap threshold to 64 KiB
 * (fs/main.c), so a larger buffer was a fresh mapping, and its page faults, per GET
 * (docs/performance.md, "Constants"). Below the threshold it comes from the heap, so
 * small GETs take it too. */
#define OS3_GET_BUFFER (60L << 10)
#define OS3_PUT_BUFFER                                                                             \
    (256L << 10) /* curl's upload buffer for PUT and UploadPart (a pooled handle may keep it) */

struct os3_store;

/* One HTTP exchange. Owned by the submitter until queued, then by the event thread. */
struct os3_xfer {
    struct os3_store *st;
    struct objstore_req *req;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t t0_ns;
    bool ranged; /* a Range header was sent */
    /* response of the last status line seen (a 100 Continue resets it) */
    int status;
    bool have_cl, have_cr, cr_total_known, cr_unsat;
    uint64_t cl, cr_first, cr_last, cr_total;
    char etag[OBJSTORE_ETAG_MAX];
    int64_t mtime;
    /* body */
    size_t got;        /* GET bytes in req->buf (or req->iov) */
    unsigned iov_i;    /* GET with req->iov: the segment got ends in */
    size_t iov_off;    /* and the bytes of it already filled */
    bool overflow;     /* GET body longer than req->buf_cap */
    bool body_too_big; /* listing body past OS3_LISTBODY_MAX */
    char *body;        /* LIST body or error body */
    size_t body_len, body_cap;
    size_t put_pos; /* PUT bytes handed to curl */
    char *send;     /* a POST's body (CompleteMultipartUpload), or NULL */
    size_t send_len;
    uint64_t moved_ms;     /* stall check: when a byte last moved (0 = not yet
                            * sending; the connect timeout covers that part) */
    bool stalled;          /* aborted by the stall check */
    uint64_t sent_ms;      /* request timeout: when the request could be sent (0 =
                            * not yet; the connect timeout covers that part) */
    bool overtime;         /* aborted by the request timeout */
    struct os3_xfer *next; /* submission queue */
};

struct os3_store {
    struct objstore base; /* first: the vtable pointer */
    char *bucket, *region;
    char *origin;      /* "scheme://host[:port]" the URLs start with */
    char *host;        /* Host header, signed */
    char *path_prefix; /* "/bucket" for path style, "" for virtual-hosted */
    char *ca_bundle;
    bool anonymous, insecure;
    unsigned connect_timeout_ms, low_speed_time_s, low_speed_limit, request_timeout_ms;
    unsigned stall_timeout_ms; /* 0 = off */
    unsigned poll_ms;          /* longest sleep of the event thread: a stall is seen this late */
    struct objstore_creds *creds;

    CURLM *multi; /* used by the event thread only, except curl_multi_wakeup */
    pthread_t thread;
    pthread_mutex_t lock;
    struct os3_xfer *q_head, *q_tail; /* protected by lock */
    bool stop;                        /* protected by lock */
    CURL *pool[OS3_POOL_MAX];         /* protected by lock */
    size_t n_pool;
    struct objstore_stats stats; /* protected by lock */
};

/* ---- between s3.c and s3_setup.c ---- */

/* s3.c: the curl callbacks os3_prepare installs (event thread), the event loop the store
 * starts, the easy-handle pool, the error message helper, the vtable, teardown. */
CURL *os3_easy_get(struct os3_store *st);
int os3_seek_cb(void *arg, curl_off_t off, int origin);
int os3_xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow);
size_t os3_header_cb(char *data, size_t size, size_t n, void *arg);
size_t os3_read_cb(char *dst, size_t size, size_t n, void *arg);
size_t os3_write_cb(char *data, size_t size, size_t n, void *arg);
void *os3_loop(void *arg);
/* Write the failure message of @req ("GET bucket/key: ..."). */
void os3_errmsg(const struct os3_store *st, struct objstore_req *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The backend's vtable (objstore_s3_create installs it). */
extern const struct objstore_ops os3_ops;
void os3_free(struct os3_store *st);

/* s3_setup.c: everything a request needs before it is queued (credentials, URL, SigV4,
 * easy-handle options), on the submitter's thread. @return 0 or -errno (req->errmsg set). */
int os3_prepare(struct os3_store *st, struct os3_xfer *x);

#endif
