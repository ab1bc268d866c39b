/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3.c: the S3 backend: HEAD/GET/LIST/PUT over libcurl multi, many requests in flight
 * from one event thread.
 *
 * DESIGN
 * objstore_submit() does the expensive, fallible work on the caller's thread: credentials
 * (a refresh may block on IMDS), URL and query encoding, SigV4 signing, and easy-handle
 * setup. The prepared transfer is queued and the event thread woken with
 * curl_multi_wakeup(); the event thread only adds handles, drives curl_multi_perform /
 * curl_multi_poll and completes transfers. One multi handle owns the connection cache and
 * the DNS cache, so keep-alive connections are reused across requests; the multi also caps
 * connections (CURLMOPT_MAX_TOTAL_CONNECTIONS / MAX_HOST_CONNECTIONS) and queues the rest.
 *
 * GET bodies are written straight into req->buf, or scattered over req->iov (a multi-block
 * read landing in the cache's block buffers). A body that would not fit, or whose length
 * disagrees with Content-Length / Content-Range, fails the request with -EIO: never partial
 * data as success. Errors are parsed from the S3 error XML and mapped by errmap.c.
 *
 * Timeouts: connecting (connect_timeout_ms), the low-speed limit, an optional whole-request
 * limit, and the stall check (stall_timeout_ms, os3_xferinfo_cb), which is what bounds a
 * transfer that stops moving: the low-speed limit averages the rate over seconds.
 *
 * Threads: submitters (any thread) and the event thread. st->lock protects the queue,
 * the stop flag, the easy-handle pool and the counters; it is a leaf lock and is never
 * held while calling curl on an active handle or a user callback.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

#define OS3_POOL_MAX 64                  /* idle easy handles kept for reuse */
#define OS3_ERRBODY_MAX (64u << 10)      /* error XML kept for the message */
#define OS3_LISTBODY_MAX (64u << 20)     /* a 1000-key page is ~300 KiB; this is a sanity cap */
#define OS3_USER_AGENT "tierfs/0.1"
/* Receive buffer of a GET (curl's default is 16 KiB): one recv() per 60 KiB instead of
 * per 16 KiB. On a cold scan that is ~4x fewer recv calls, write and progress callbacks,
 * and TCP window updates (each of which, on a loopback or a busy host, also runs the
 * sender's transmit path in our context). Under 64 KiB on purpose: curl (7.88) mallocs
 * this buffer for every transfer and frees it after, and tierfs sets malloc's mmap
 * threshold to 64 KiB (fs/main.c), so a larger buffer was a fresh mapping per GET:
 * 256 KiB cost 16,000 page faults per 2 GiB read (each page faulted again on every GET)
 * and ~6 % more daemon CPU than 60 KiB. Below the threshold it comes from the heap, so
 * small GETs take it too. */
#define OS3_GET_BUFFER (60L << 10)

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
    bool ranged;                    /* a Range header was sent */
    /* response of the last status line seen (a 100 Continue resets it) */
    int status;
    bool have_cl, have_cr, cr_total_known, cr_unsat;
    uint64_t cl, cr_first, cr_last, cr_total;
    char etag[OBJSTORE_ETAG_MAX];
    int64_t mtime;
    /* body */
    size_t got;                     /* GET bytes in req->buf (or req->iov) */
    unsigned iov_i;                 /* GET with req->iov: the segment got ends in */
    size_t iov_off;                 /* and the bytes of it already filled */
    bool overflow;                  /* GET body longer than req->buf_cap */
    bool body_too_big;              /* listing body past OS3_LISTBODY_MAX */
    char *body;                     /* LIST body or error body */
    size_t body_len, body_cap;
    size_t put_pos;                 /* PUT bytes handed to curl */
    uint64_t moved_ms;              /* stall check: when a byte last moved (0 = not yet
                                     * sending; the connect timeout covers that part) */
    bool stalled;                   /* aborted by the stall check */
    uint64_t sent_ms;               /* request timeout: when the request could be sent (0 =
                                     * not yet; the connect timeout covers that part) */
    bool overtime;                  /* aborted by the request timeout */
    struct os3_xfer *next;          /* submission queue */
};

struct os3_store {
    struct objstore base; /* first: the vtable pointer */
    char *bucket, *region;
    char *origin;         /* "scheme://host[:port]" the URLs start with */
    char *host;           /* Host header, signed */
    char *path_prefix;    /* "/bucket" for path style, "" for virtual-hosted */
    char *ca_bundle;
    bool anonymous, insecure;
    unsigned connect_timeout_ms, low_speed_time_s, low_speed_limit, request_timeout_ms;
    unsigned stall_timeout_ms;  /* 0 = off */
    unsigned poll_ms;     /* longest sleep of the event thread: a stall is seen this late */
    struct objstore_creds *creds;

    CURLM *multi;         /* used by the event thread only, except curl_multi_wakeup */
    pthread_t thread;
    pthread_mutex_t lock;
    struct os3_xfer *q_head, *q_tail;   /* protected by lock */
    bool stop;                          /* protected by lock */
    CURL *pool[OS3_POOL_MAX];           /* protected by lock */
    size_t n_pool;
    struct objstore_stats stats;        /* protected by lock */
};

static pthread_once_t os3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode os3_curl_init_rc;

static void os3_curl_init(void)
{
    os3_curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

/* ---- easy-handle pool ---- */

static CURL *os3_easy_get(struct os3_store *st)
{
    CURL *e = NULL;
    pthread_mutex_lock(&st->lock);
    if (st->n_pool)
        e = st->pool[--st->n_pool];
    pthread_mutex_unlock(&st->lock);
    return e ? e : curl_easy_init();
}

static void os3_easy_put(struct os3_store *st, CURL *e)
{
    if (!e)
        return;
    curl_easy_reset(e);
    pthread_mutex_lock(&st->lock);
    if (st->n_pool < OS3_POOL_MAX) {
        st->pool[st->n_pool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    if (e)
        curl_easy_cleanup(e);
}

static void os3_xfer_free(struct os3_xfer *x)
{
    if (!x)
        return;
    os3_easy_put(x->st, x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->url);
    free(x->body);
    free(x);
}

/* ---- curl callbacks (event thread) ---- */

static void os3_parse_content_range(struct os3_xfer *x, const char *v)
{
    /* "bytes 0-99/1234", "bytes 0-99/" plus a star when the total is unknown, or, with a
     * 416, "bytes " star "/1234". */
    unsigned long long a, b, t;
    char star;
    if (sscanf(v, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
        x->have_cr = true, x->cr_first = a, x->cr_last = b, x->cr_total = t, x->cr_total_known = true;
    } else if (sscanf(v, "bytes %llu-%llu/%c", &a, &b, &star) == 3 && star == '*') {
        x->have_cr = true, x->cr_first = a, x->cr_last = b;
    } else if (sscanf(v, "bytes */%llu", &t) == 1) {
        x->cr_unsat = true, x->cr_total = t, x->cr_total_known = true;
    }
}

static size_t os3_header_cb(char *data, size_t size, size_t n, void *arg)
{
    struct os3_xfer *x = arg;
    size_t len = size * n;
    x->moved_ms = cmn_now_ms();
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue, say): forget the previous one's headers. */
        x->status = 0;
        x->have_cl = x->have_cr = x->cr_total_known = x->cr_unsat = false;
        x->etag[0] = '\0';
        x->mtime = 0;
        const char *sp = memchr(data, ' ', len);
        if (sp && (size_t)(sp - data) + 4 <= len)
            x->status = atoi(sp + 1);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char val[OBJSTORE_ETAG_MAX];
    size_t vlen = CMN_MIN((size_t)(end - v), sizeof(val) - 1);
    memcpy(val, v, vlen);
    val[vlen] = '\0';

    if (nlen == 14 && strncasecmp(data, "content-length", 14) == 0) {
        char *e;
        unsigned long long cl = strtoull(val, &e, 10);
        if (e != val && !*e)
            x->have_cl = true, x->cl = cl;
    } else if (nlen == 13 && strncasecmp(data, "content-range", 13) == 0) {
        os3_parse_content_range(x, val);
    } else if (nlen == 4 && strncasecmp(data, "etag", 4) == 0) {
        memcpy(x->etag, val, vlen + 1);
    } else if (nlen == 13 && strncasecmp(data, "last-modified", 13) == 0) {
        time_t t = curl_getdate(val, NULL);
        x->mtime = t < 0 ? 0 : (int64_t)t;
    }
    return len;
}

static bool os3_status_ok(int status)
{
    return status >= 200 && status < 300;
}

/* Copy @len body bytes to where req->iov says byte x->got goes (the caller checked that
 * they fit in buf_cap, the sum of the segments). */
static void os3_scatter(struct os3_xfer *x, const char *data, size_t len)
{
    const struct iovec *iov = x->req->iov;

    while (len > 0) {
        size_t k;
        if (x->iov_off == iov[x->iov_i].iov_len) {
            x->iov_i++;
            x->iov_off = 0;
            continue;
        }
        k = CMN_MIN(len, iov[x->iov_i].iov_len - x->iov_off);
        memcpy((char *)iov[x->iov_i].iov_base + x->iov_off, data, k);
        x->iov_off += k;
        data += k;
        len -= k;
    }
}

static size_t os3_write_cb(char *data, size_t size, size_t n, void *arg)
{
    struct os3_xfer *x = arg;
    struct objstore_req *req = x->req;
    size_t len = size * n;
    if (len == 0)
        return 0;
    x->moved_ms = cmn_now_ms();
    if (req->op == OBJSTORE_OP_GET && os3_status_ok(x->status)) {
        /* Fail early when the announced length cannot fit instead of reading it all. */
        if (len > req->buf_cap - x->got || (x->have_cl && x->cl > req->buf_cap)) {
            x->overflow = true;
            return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        if (req->iov)
            os3_scatter(x, data, len);
        else
            memcpy((char *)req->buf + x->got, data, len);
        x->got += len;
        if (req->progress)
            req->progress(req, x->got);
        return len;
    }
    bool list_ok = req->op == OBJSTORE_OP_LIST && os3_status_ok(x->status);
    size_t limit = list_ok ? OS3_LISTBODY_MAX : OS3_ERRBODY_MAX;
    if (x->body_len + len > limit) {
        if (!list_ok)
            return len; /* an error body only feeds the message: drop the excess */
        x->body_too_big = true;
        return 0;
    }
    if (x->body_len + len + 1 > x->body_cap) {
        size_t cap = CMN_MAX(x->body_cap * 2, x->body_len + len + 1);
        cap = CMN_MAX(cap, (size_t)4096);
        char *nb = realloc(x->body, cap);
        if (!nb)
            return 0;
        x->body = nb;
        x->body_cap = cap;
    }
    memcpy(x->body + x->body_len, data, len);
    x->body_len += len;
    x->body[x->body_len] = '\0';
    return len;
}

static size_t os3_read_cb(char *dst, size_t size, size_t n, void *arg)
{
    struct os3_xfer *x = arg;
    size_t k = CMN_MIN(size * n, (size_t)x->req->len - x->put_pos);
    memcpy(dst, (const char *)x->req->buf + x->put_pos, k);
    x->put_pos += k;
    x->moved_ms = cmn_now_ms();
    return k;
}

static int os3_seek_cb(void *arg, curl_off_t off, int origin)
{
    struct os3_xfer *x = arg;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->req->len)
        return CURL_SEEKFUNC_FAIL;
    x->put_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/*
 * The stall check and the request timeout (stall_timeout_ms, request_timeout_ms), called
 * by curl while the transfer runs. Unlike the low-speed limit, which averages the rate over
 * a few seconds (after a burst a dead connection is noticed only seconds later), the stall
 * check bounds the time without any byte exactly, to the event thread's poll_ms; the
 * request timeout bounds a body that trickles just fast enough for both. Both clocks start
 * when the request is ready to go (pretransfer): waiting for a connection slot, DNS and
 * connecting have their own limit, and a burst of queued prefetches must not time out.
 * @return nonzero to abort the transfer (CURLE_ABORTED_BY_CALLBACK; x->stalled or
 * x->overtime says why).
 */
static int os3_xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    struct os3_xfer *x = arg;
    uint64_t now = cmn_now_ms();
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;

    if (!x->sent_ms) {
        curl_off_t pre = 0;
        if (curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK || pre <= 0)
            return 0;
        x->sent_ms = now;
        if (!x->moved_ms)
            x->moved_ms = now;
        return 0;
    }
    if (x->st->request_timeout_ms && now - x->sent_ms >= x->st->request_timeout_ms) {
        x->overtime = true;
        return 1;
    }
    if (!x->st->stall_timeout_ms || now - x->moved_ms < x->st->stall_timeout_ms)
        return 0;
    x->stalled = true;
    return 1;
}

/* ---- completion (event thread) ---- */

/* Length of ETag @s without a weak prefix and quotes, from *start. */
static size_t os3_etag_core(const char *s, const char **start)
{
    size_t n;
    if (strncmp(s, "W/", 2) == 0)
        s += 2;
    n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
        s++, n -= 2;
    *start = s;
    return n;
}

/* Do two ETags name the same version (quotes and W/ aside)? */
static bool os3_etag_eq(const char *a, const char *b)
{
    const char *pa, *pb;
    size_t na = os3_etag_core(a, &pa), nb = os3_etag_core(b, &pb);
    return na == nb && memcmp(pa, pb, na) == 0;
}

/* Validate a 2xx GET. @return 0, -ESTALE (another version answered) or -EIO, @why set. */
static int os3_check_get(struct os3_xfer *x, const char **why)
{
    struct objstore_req *req = x->req;
    struct objstore_object_info *info = &req->info;
    /* The server honoured If-Match, so the body is that version; check it anyway (cheap):
     * bytes of another version must never be cached under the pinned one's key. */
    if (req->if_match && x->etag[0] && !os3_etag_eq(req->if_match, x->etag)) {
        *why = "response ETag differs from If-Match";
        return -ESTALE;
    }
    if (x->status == 206) {
        if (!x->have_cr) {
            *why = "206 without Content-Range";
            return -EIO;
        }
        uint64_t n = x->cr_last - x->cr_first + 1;
        if (x->cr_first != req->off || x->cr_last < x->cr_first || (req->len && n > req->len)) {
            *why = "Content-Range does not match the requested range";
            return -EIO;
        }
        if ((x->have_cl && x->cl != n) || x->got != n) {
            *why = "body length does not match Content-Range";
            return -EIO;
        }
        info->size = x->cr_total_known ? x->cr_total : x->cr_last + 1;
        return 0;
    }
    if (x->ranged && req->off != 0) {
        *why = "server ignored the Range header";
        return -EIO;
    }
    if ((x->have_cl && x->cl != x->got) || (req->len && x->got > req->len)) {
        *why = "body length does not match Content-Length";
        return -EIO;
    }
    info->size = x->have_cl ? x->cl : x->got;
    return 0;
}

/* Name of the object a request is about, for messages: "bucket/key" or "bucket/prefix". */
static const char *os3_req_what(const struct objstore_req *req)
{
    if (req->op == OBJSTORE_OP_LIST)
        return req->list.prefix ? req->list.prefix : "";
    return req->key ? req->key : "";
}

/* Set req->errmsg to "OP bucket/key: " and the formatted text (truncated to fit). */
static void os3_errmsg(const struct os3_store *st, struct objstore_req *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void os3_errmsg(const struct os3_store *st, struct objstore_req *req, const char *fmt, ...)
{
    int n = snprintf(req->errmsg, sizeof(req->errmsg), "%s %s/", os3_op_name(req->op), st->bucket);
    size_t off = CMN_MIN((size_t)(n < 0 ? 0 : n), sizeof(req->errmsg) - 1);
    /* Long keys are cut so the cause still fits. */
    n = snprintf(req->errmsg + off, sizeof(req->errmsg) - off, "%.120s: ", os3_req_what(req));
    off = CMN_MIN(off + (size_t)(n < 0 ? 0 : n), sizeof(req->errmsg) - 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->errmsg + off, sizeof(req->errmsg) - off, fmt, ap);
    va_end(ap);
}

static void os3_finish(struct os3_xfer *x, CURLcode cc)
{
    struct os3_store *st = x->st;
    struct objstore_req *req = x->req;
    const char *why = NULL;
    char code[64] = "", msg[160] = "";
    int rc = 0;

    req->http_status = x->status;
    req->attempts = 1;
    req->got = 0;
    if (cc != CURLE_OK) {
        if (x->overflow) {
            rc = -EIO, why = "body longer than the buffer";
        } else if (x->body_too_big) {
            rc = -EIO, why = "listing body too large";
        } else {
            long oserr = 0;
            curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
            rc = os3_map_curl_error(cc);
            if (cc == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
                rc = -ETIMEDOUT; /* retried, like curl's own timeouts */
                snprintf(x->errbuf, sizeof(x->errbuf), "no data for %u ms (stall timeout)",
                         st->stall_timeout_ms);
            } else if (cc == CURLE_ABORTED_BY_CALLBACK && x->overtime) {
                rc = -ETIMEDOUT;
                snprintf(x->errbuf, sizeof(x->errbuf), "not done after %u ms (request timeout)",
                         st->request_timeout_ms);
            }
            /* CURLE_COULDNT_CONNECT covers refused and unreachable: the OS knows which. */
            if (cc == CURLE_COULDNT_CONNECT && (oserr == EHOSTUNREACH || oserr == ENETUNREACH))
                rc = -EHOSTUNREACH;
            why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
            /* A 2xx body cut short: what did land is a valid prefix of the range asked for.
             * The retry layer resumes from it (pinned to this ETag); callers see got = 0. */
            if (req->op == OBJSTORE_OP_GET && os3_status_ok(x->status) &&
                (x->status == 206 ? x->have_cr && x->cr_first == req->off : req->off == 0)) {
                req->got = x->got;
                memcpy(req->info.etag, x->etag, sizeof(req->info.etag));
                req->info.mtime_sec = x->mtime;
            }
        }
    } else if (os3_status_ok(x->status)) {
        struct objstore_object_info *info = &req->info;
        memcpy(info->etag, x->etag, sizeof(info->etag));
        info->mtime_sec = x->mtime;
        switch (req->op) {
        case OBJSTORE_OP_HEAD:
            if (!x->have_cl)
                rc = -EIO, why = "HEAD without Content-Length";
            info->size = x->cl;
            break;
        case OBJSTORE_OP_GET:
            rc = os3_check_get(x, &why);
            break;
        case OBJSTORE_OP_LIST:
            rc = os3_xml_parse_list(x->body, x->body_len, &req->list_result);
            if (rc < 0)
                why = "malformed ListObjectsV2 response";
            break;
        default:
            info->size = req->len;
            break;
        }
        if (rc == 0 && req->op == OBJSTORE_OP_GET)
            req->got = x->got;
    } else if (x->status == 416 && req->op == OBJSTORE_OP_GET && (req->flags & OBJSTORE_GET_EOF_OK)) {
        req->info.size = x->cr_total_known ? x->cr_total : 0; /* radosgw omits it */
    } else {
        if (x->body_len)
            os3_xml_parse_error(x->body, x->body_len, code, sizeof(code), msg, sizeof(msg));
        rc = os3_map_error(x->status, code);
    }
    if (rc < 0) {
        if (why && x->status)
            os3_errmsg(st, req, "%s (HTTP %d)", why, x->status);
        else if (why)
            os3_errmsg(st, req, "%s", why);
        else if (code[0])
            os3_errmsg(st, req, "%s: %s (HTTP %d)", code, msg[0] ? msg : objstore_strerror(rc),
                       x->status);
        else
            os3_errmsg(st, req, "%s (HTTP %d)", objstore_strerror(rc), x->status);
    }
    req->result = rc;

    uint64_t lat = cmn_now_ns() - x->t0_ns;
    pthread_mutex_lock(&st->lock);
    struct objstore_stats *s = &st->stats;
    s->bytes_received += req->op == OBJSTORE_OP_GET ? x->got : x->body_len;
    s->latency_ns_total[req->op] += lat;
    if (rc < 0)
        s->errors[req->op]++;
    if (x->status == 0)
        s->status_none++;
    else if (x->status < 300)
        s->status_2xx++;
    else if (x->status < 400)
        s->status_3xx++;
    else if (x->status < 500)
        s->status_4xx++;
    else
        s->status_5xx++;
    s->inflight--; /* before done: a caller woken by done sees itself finished */
    pthread_mutex_unlock(&st->lock);

    if (rc < 0 && !(req->flags & OS3_REQ_QUIET))
        os3_log_failure(req);
    os3_xfer_free(x);
    req->done(req);
}

/* ---- event thread ---- */

static void *os3_loop(void *arg)
{
    struct os3_store *st = arg;
    unsigned active = 0;
    for (;;) {
        pthread_mutex_lock(&st->lock);
        struct os3_xfer *q = st->q_head;
        st->q_head = st->q_tail = NULL;
        bool stop = st->stop;
        pthread_mutex_unlock(&st->lock);

        while (q) {
            struct os3_xfer *x = q;
            q = q->next;
            CURLMcode mc = curl_multi_add_handle(st->multi, x->easy);
            if (mc != CURLM_OK) {
                snprintf(x->errbuf, sizeof(x->errbuf), "curl_multi_add_handle: %s",
                         curl_multi_strerror(mc));
                os3_finish(x, CURLE_OUT_OF_MEMORY);
                continue;
            }
            active++;
        }
        if (stop && active == 0)
            break; /* the queue was empty above and nothing is running */

        int running = 0;
        curl_multi_perform(st->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(st->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            CURLcode cc = m->data.result; /* m dies with remove_handle */
            struct os3_xfer *x = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
            curl_multi_remove_handle(st->multi, e);
            active--;
            os3_finish(x, cc);
        }
        /* Woken early by curl_multi_wakeup() when a request is queued or on destroy. */
        curl_multi_poll(st->multi, NULL, 0, (int)st->poll_ms, NULL);
    }
    return NULL;
}

/* ---- request preparation (submitter's thread) ---- */

/* Append "name=value" to the query string, URI-encoded. @return 0 or -ENOMEM. */
static int os3_query_add(char **qs, const char *name, const char *value)
{
    char *enc = os3_uri_encode(value, false);
    if (!enc)
        return -ENOMEM;
    char *n = NULL;
    int r = asprintf(&n, "%s%s%s=%s", *qs ? *qs : "", *qs ? "&" : "", name, enc);
    free(enc);
    if (r < 0)
        return -ENOMEM;
    free(*qs);
    *qs = n;
    return 0;
}

static struct curl_slist *os3_hdr_add(struct curl_slist *l, const char *name, const char *value,
                                      bool *fail)
{
    char line[4096];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n)
        *fail = true;
    return n ? n : l;
}

/* Build URL, headers and signature of @x. @return 0 or -errno with req->errmsg set. */
static int os3_prepare(struct os3_store *st, struct os3_xfer *x)
{
    struct objstore_req *req = x->req;
    struct os3_kv query[8], headers[8];
    size_t nq = 0, nh = 0;
    char *path = NULL, *qs = NULL, *enc = NULL;
    char range[64], maxkeys[16], date[17], sha[65], auth[1024];
    struct objstore_credentials cr;
    int rc = -ENOMEM;

    /* The path as sent is the canonical URI: S3 keys are not normalised (PATH_AS_IS). */
    if (req->op == OBJSTORE_OP_LIST) {
        path = strdup(st->path_prefix[0] ? st->path_prefix : "/");
        query[nq++] = (struct os3_kv){ "list-type", "2" };
        query[nq++] = (struct os3_kv){ "encoding-type", "url" };
        const struct objstore_list_args *a = &req->list;
        if (a->prefix && a->prefix[0])
            query[nq++] = (struct os3_kv){ "prefix", a->prefix };
        if (a->delimiter && a->delimiter[0])
            query[nq++] = (struct os3_kv){ "delimiter", a->delimiter };
        if (a->continuation_token && a->continuation_token[0])
            query[nq++] = (struct os3_kv){ "continuation-token", a->continuation_token };
        if (a->start_after && a->start_after[0])
            query[nq++] = (struct os3_kv){ "start-after", a->start_after };
        if (a->max_keys) {
            snprintf(maxkeys, sizeof(maxkeys), "%u", a->max_keys);
            query[nq++] = (struct os3_kv){ "max-keys", maxkeys };
        }
    } else {
        enc = os3_uri_encode(req->key, true);
        if (!enc || asprintf(&path, "%s/%s", st->path_prefix, enc) < 0)
            path = NULL;
    }
    if (!path)
        goto fail;
    for (size_t i = 0; i < nq; i++)
        if ((rc = os3_query_add(&qs, query[i].name, query[i].value)) < 0)
            goto fail;
    rc = -ENOMEM;
    if (asprintf(&x->url, "%s%s%s%s", st->origin, path, qs ? "?" : "", qs ? qs : "") < 0) {
        x->url = NULL;
        goto fail;
    }

    if (req->op == OBJSTORE_OP_PUT)
        os3_sha256_hex(req->buf, req->len, sha);
    else
        memcpy(sha, OS3_EMPTY_SHA256, sizeof(sha));
    os3_amz_date((int64_t)time(NULL), date);
    headers[nh++] = (struct os3_kv){ "host", st->host };
    if (req->op == OBJSTORE_OP_GET && (req->off || req->len)) {
        if (req->len)
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)req->off,
                     (unsigned long long)(req->off + req->len - 1));
        else
            snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)req->off);
        headers[nh++] = (struct os3_kv){ "range", range };
        x->ranged = true;
    }
    if (req->op == OBJSTORE_OP_GET && req->if_match)
        headers[nh++] = (struct os3_kv){ "if-match", req->if_match };
    if (!st->anonymous) {
        rc = objstore_creds_get(st->creds, &cr);
        if (rc < 0) {
            os3_errmsg(st, req, "no credentials: %s", objstore_strerror(rc));
            goto fail;
        }
        headers[nh++] = (struct os3_kv){ "x-amz-date", date };
        headers[nh++] = (struct os3_kv){ "x-amz-content-sha256", sha };
        if (cr.session_token[0])
            headers[nh++] = (struct os3_kv){ "x-amz-security-token", cr.session_token };
        static const char *const methods[OBJSTORE_OP_COUNT] = { "HEAD", "GET", "GET", "PUT" };
        struct os3_sign_input in = {
            .method = methods[req->op], .canonical_uri = path, .query = query, .n_query = nq,
            .headers = headers, .n_headers = nh, .payload_hash = sha, .amz_date = date,
            .region = st->region, .service = "s3",
        };
        rc = os3_sigv4_authorization(&in, &cr, auth, sizeof(auth));
        memset(&cr, 0, sizeof(cr)); /* keep secrets off the stack */
        if (rc < 0) {
            os3_errmsg(st, req, "signing failed: %s", objstore_strerror(rc));
            goto fail;
        }
    }
    rc = -ENOMEM;
    bool bad = false;
    /* Send exactly the header values that were signed (Host included). */
    for (size_t i = 0; i < nh; i++)
        x->hdrs = os3_hdr_add(x->hdrs, headers[i].name, headers[i].value, &bad);
    if (!st->anonymous)
        x->hdrs = os3_hdr_add(x->hdrs, "Authorization", auth, &bad);
    x->hdrs = os3_hdr_add(x->hdrs, "Expect", "", &bad); /* no 100-continue round trip */
    if (bad)
        goto fail;

    CURL *e = x->easy = os3_easy_get(st);
    if (!e)
        goto fail;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)st->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)st->low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)st->low_speed_time_s);
    if (st->stall_timeout_ms || st->request_timeout_ms) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, os3_xferinfo_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(e, CURLOPT_USERAGENT, OS3_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, os3_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, os3_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, st->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, st->insecure ? 0L : 2L);
    if (st->ca_bundle) /* only from the configuration, never from the environment */
        curl_easy_setopt(e, CURLOPT_CAINFO, st->ca_bundle);
    if (req->op == OBJSTORE_OP_GET)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, OS3_GET_BUFFER);
    if (req->op == OBJSTORE_OP_HEAD) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (req->op == OBJSTORE_OP_PUT) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, os3_read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, os3_seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
    }
    rc = 0;
fail:
    free(path);
    free(qs);
    free(enc);
    if (rc < 0 && !req->errmsg[0])
        os3_errmsg(st, req, "%s", objstore_strerror(rc));
    return rc;
}

static int os3_submit(struct objstore *os, struct objstore_req *req)
{
    struct os3_store *st = (struct os3_store *)os;
    struct os3_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->st = st;
    x->req = req;
    x->t0_ns = cmn_now_ns();
    int rc = os3_prepare(st, x);
    if (rc < 0)
        goto fail_xfer;

    pthread_mutex_lock(&st->lock);
    if (st->stop) {
        pthread_mutex_unlock(&st->lock);
        rc = -ESHUTDOWN;
        goto fail_xfer;
    }
    if (st->q_tail)
        st->q_tail->next = x;
    else
        st->q_head = x;
    st->q_tail = x;
    st->stats.requests[req->op]++;
    st->stats.ranged_gets += x->ranged;
    if (++st->stats.inflight > st->stats.inflight_max)
        st->stats.inflight_max = st->stats.inflight;
    pthread_mutex_unlock(&st->lock);
    curl_multi_wakeup(st->multi);
    return 0;

fail_xfer:
    os3_xfer_free(x);
    return rc;
}

static void os3_get_stats(struct objstore *os, struct objstore_stats *out)
{
    struct os3_store *st = (struct os3_store *)os;
    pthread_mutex_lock(&st->lock);
    *out = st->stats;
    pthread_mutex_unlock(&st->lock);
}

static void os3_free(struct os3_store *st)
{
    for (size_t i = 0; i < st->n_pool; i++)
        curl_easy_cleanup(st->pool[i]);
    if (st->multi)
        curl_multi_cleanup(st->multi);
    objstore_creds_destroy(st->creds);
    pthread_mutex_destroy(&st->lock);
    free(st->bucket);
    free(st->region);
    free(st->origin);
    free(st->host);
    free(st->path_prefix);
    free(st->ca_bundle);
    free(st);
}

static void os3_destroy(struct objstore *os)
{
    struct os3_store *st = (struct os3_store *)os;
    pthread_mutex_lock(&st->lock);
    st->stop = true;
    pthread_mutex_unlock(&st->lock);
    curl_multi_wakeup(st->multi);
    pthread_join(st->thread, NULL); /* returns once every queued request has completed */
    os3_free(st);
}

static const struct objstore_ops os3_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "s3",
    .submit = os3_submit,
    .get_stats = os3_get_stats,
    .destroy = os3_destroy,
};

/* ---- creation ---- */

static const char *os3_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* Work out origin, Host and path prefix from the configuration. @return 0 or -EINVAL/-ENOMEM. */
static int os3_setup_endpoint(struct os3_store *st, const struct objstore_s3_conf *conf)
{
    const char *endpoint = conf->endpoint;
    if (!endpoint)
        endpoint = os3_env("AWS_ENDPOINT_URL_S3");
    if (!endpoint)
        endpoint = os3_env("AWS_ENDPOINT_URL");
    char *authority = NULL, *scheme = NULL;
    int rc = -EINVAL;

    if (!endpoint) {
        scheme = strdup("https");
        if (asprintf(&authority, "s3.%s.amazonaws.com", st->region) < 0)
            authority = NULL;
    } else {
        CURLU *u = curl_url();
        char *host = NULL, *port = NULL, *upath = NULL;
        if (!u || curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
            TLOG_E("objstore: endpoint '%s' is not a URL", endpoint);
            curl_url_cleanup(u);
            return -EINVAL;
        }
        curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when given explicitly */
        curl_url_get(u, CURLUPART_PATH, &upath, 0);
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
            TLOG_E("objstore: endpoint '%s': only http and https are supported", endpoint);
        } else if (upath && strcmp(upath, "/") != 0 && upath[0]) {
            TLOG_E("objstore: endpoint '%s' must not have a path", endpoint);
        } else if (asprintf(&authority, "%s%s%s", host, port ? ":" : "", port ? port : "") < 0) {
            authority = NULL;
            rc = -ENOMEM;
        } else {
            rc = 0;
        }
        char *s = scheme;
        scheme = rc == 0 ? strdup(s) : NULL;
        curl_free(s);
        curl_free(host);
        curl_free(port);
        curl_free(upath);
        curl_url_cleanup(u);
        if (rc < 0)
            return rc;
    }
    rc = -ENOMEM;
    if (!scheme || !authority)
        goto out;
    if (conf->path_style) {
        st->host = strdup(authority);
        if (asprintf(&st->path_prefix, "/%s", st->bucket) < 0)
            st->path_prefix = NULL;
    } else {
        if (asprintf(&st->host, "%s.%s", st->bucket, authority) < 0)
            st->host = NULL;
        st->path_prefix = strdup("");
    }
    if (!st->host || !st->path_prefix || asprintf(&st->origin, "%s://%s", scheme, st->host) < 0)
        goto out;
    rc = 0;
out:
    free(scheme);
    free(authority);
    return rc;
}

int objstore_s3_create(const struct objstore_s3_conf *conf, struct objstore **out)
{
    struct objstore_creds *creds = conf ? conf->creds : NULL;
    struct os3_store *st = NULL;
    int rc = -EINVAL;

    if (!conf || !out || !conf->bucket || !conf->bucket[0] || strchr(conf->bucket, '/')) {
        TLOG_E("objstore: a bucket name is required (without '/')");
        goto fail_creds;
    }
    pthread_once(&os3_curl_once, os3_curl_init);
    if (os3_curl_init_rc != CURLE_OK) {
        TLOG_E("objstore: curl_global_init: %s", curl_easy_strerror(os3_curl_init_rc));
        rc = -EIO;
        goto fail_creds;
    }
    rc = -ENOMEM;
    st = calloc(1, sizeof(*st));
    if (!st)
        goto fail_creds;
    pthread_mutex_init(&st->lock, NULL);
    st->base.ops = &os3_ops;
    st->creds = creds; /* owned from here on: os3_free() destroys it */
    creds = NULL;
    const char *region = conf->region;
    if (!region || !region[0])
        region = os3_env("AWS_REGION");
    if (!region)
        region = os3_env("AWS_DEFAULT_REGION");
    st->bucket = strdup(conf->bucket);
    st->region = strdup(region ? region : "us-east-1");
    st->ca_bundle = conf->ca_bundle ? strdup(conf->ca_bundle) : NULL;
    if (!st->bucket || !st->region || (conf->ca_bundle && !st->ca_bundle))
        goto fail_store;
    st->anonymous = conf->anonymous;
    st->insecure = conf->insecure;
    st->connect_timeout_ms = conf->connect_timeout_ms ? conf->connect_timeout_ms : 3000;
    st->low_speed_time_s = conf->low_speed_time_s ? conf->low_speed_time_s : 10;
    st->low_speed_limit = conf->low_speed_limit ? conf->low_speed_limit : 1024;
    st->request_timeout_ms = conf->request_timeout_ms;
    st->stall_timeout_ms = conf->stall_timeout_ms;
    /* curl runs the stall check when the event thread wakes: often enough to see a stall
     * (or an attempt past its time) within a quarter of its limit, not more often than
     * every 10 ms. */
    unsigned tmin = st->stall_timeout_ms;
    if (st->request_timeout_ms && (!tmin || st->request_timeout_ms < tmin))
        tmin = st->request_timeout_ms;
    st->poll_ms = tmin ? CMN_MAX(CMN_MIN(tmin / 4, 1000u), 10u) : 1000;
    unsigned max_conn = conf->max_connections ? conf->max_connections : 64;

    rc = os3_setup_endpoint(st, conf);
    if (rc < 0)
        goto fail_store;
    if (!st->anonymous && !st->creds) {
        rc = objstore_creds_default(conf->profile, &st->creds);
        if (rc < 0) {
            TLOG_E("objstore: no credentials provider: %s", objstore_strerror(rc));
            goto fail_store;
        }
    }
    rc = -ENOMEM;
    st->multi = curl_multi_init();
    if (!st->multi)
        goto fail_store;
    curl_multi_setopt(st->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_conn);
    curl_multi_setopt(st->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_conn);
    curl_multi_setopt(st->multi, CURLMOPT_MAXCONNECTS, (long)max_conn); /* idle ones kept */
    rc = -pthread_create(&st->thread, NULL, os3_loop, st);
    if (rc < 0)
        goto fail_store;
    TLOG_D("objstore: s3 store %s (bucket %s, region %s%s)", st->origin, st->bucket, st->region,
           st->anonymous ? ", anonymous" : "");
    *out = &st->base;
    return 0;

fail_store:
    os3_free(st);
fail_creds:
    objstore_creds_destroy(creds);
    return rc;
}
