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
#include "objstore/s3_i.h"

/* ---- easy-handle pool ---- */

CURL *os3_easy_get(struct os3_store *st)
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
    free(x->send);
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
        x->have_cr = true, x->cr_first = a, x->cr_last = b, x->cr_total = t,
        x->cr_total_known = true;
    } else if (sscanf(v, "bytes %llu-%llu/%c", &a, &b, &star) == 3 && star == '*') {
        x->have_cr = true, x->cr_first = a, x->cr_last = b;
    } else if (sscanf(v, "bytes */%llu", &t) == 1) {
        x->cr_unsat = true, x->cr_total = t, x->cr_total_known = true;
    }
}

size_t os3_header_cb(char *data, size_t size, size_t n, void *arg)
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

size_t os3_write_cb(char *data, size_t size, size_t n, void *arg)
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
    bool list_ok = (req->op == OBJSTORE_OP_LIST || req->op == OBJSTORE_OP_MPU_CREATE ||
                    req->op == OBJSTORE_OP_MPU_COMPLETE) &&
                   os3_status_ok(x->status);
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

size_t os3_read_cb(char *dst, size_t size, size_t n, void *arg)
{
    struct os3_xfer *x = arg;
    size_t k = CMN_MIN(size * n, (size_t)x->req->len - x->put_pos);
    memcpy(dst, (const char *)x->req->buf + x->put_pos, k);
    x->put_pos += k;
    x->moved_ms = cmn_now_ms();
    return k;
}

int os3_seek_cb(void *arg, curl_off_t off, int origin)
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
int os3_xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
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
void os3_errmsg(const struct os3_store *st, struct objstore_req *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void os3_errmsg(const struct os3_store *st, struct objstore_req *req, const char *fmt, ...)
{
    int n =
        snprintf(req->errmsg, sizeof(req->errmsg), "%s %s/", objstore_op_name(req->op), st->bucket);
    size_t off = CMN_MIN((size_t)(n < 0 ? 0 : n), sizeof(req->errmsg) - 1);
    /* Long keys are cut so the cause still fits. */
    n = snprintf(req->errmsg + off, sizeof(req->errmsg) - off, "%.120s: ", os3_req_what(req));
    off = CMN_MIN(off + (size_t)(n < 0 ? 0 : n), sizeof(req->errmsg) - 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->errmsg + off, sizeof(req->errmsg) - off, fmt, ap);
    va_end(ap);
}

/* A transfer curl could not complete (@cc): the errno, the cause in *why, and for a 2xx
 * GET body cut short the valid prefix that landed. @return the -errno. */
static int os3_transport_error(struct os3_xfer *x, CURLcode cc, const char **why)
{
    struct os3_store *st = x->st;
    struct objstore_req *req = x->req;
    int rc;

    long oserr = 0;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
    rc = objstore_map_curl_error(cc);
    if (cc == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
        rc = -ETIMEDOUT; /* retried, like curl's own timeouts */
        snprintf(x->errbuf, sizeof(x->errbuf), "no data for %u ms (stall timeout)",
                 st->stall_timeout_ms);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK && x->overtime) {
        rc = -ETIMEDOUT;
        snprintf(x->errbuf, sizeof(x->errbuf), "not done after %u ms (request timeout)",
                 st->request_timeout_ms);
    } else if (cc == CURLE_OPERATION_TIMEDOUT && st->stall_timeout_ms && x->moved_ms &&
               cmn_now_ms() - x->moved_ms + st->poll_ms >= st->stall_timeout_ms) {
        /* curl's low-speed limit, over the same whole seconds, can beat the stall check
         * to a body that stopped: the same event, told the same way. */
        snprintf(x->errbuf, sizeof(x->errbuf), "no data for %u ms (stall timeout)",
                 st->stall_timeout_ms);
    }
    /* CURLE_COULDNT_CONNECT covers refused and unreachable: the OS knows which. */
    if (cc == CURLE_COULDNT_CONNECT && (oserr == EHOSTUNREACH || oserr == ENETUNREACH))
        rc = -EHOSTUNREACH;
    *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
    /* A 2xx body cut short: what did land is a valid prefix of the range asked for.
     * The retry layer resumes from it (pinned to this ETag); callers see got = 0. */
    if (req->op == OBJSTORE_OP_GET && os3_status_ok(x->status) &&
        (x->status == 206 ? x->have_cr && x->cr_first == req->off : req->off == 0)) {
        req->got = x->got;
        memcpy(req->info.etag, x->etag, sizeof(req->info.etag));
        req->info.mtime_sec = x->mtime;
    }
    return rc;
}

/* Count a finished attempt of @x (result @rc) in the store's stats. */
static void os3_count(struct os3_xfer *x, int rc)
{
    struct os3_store *st = x->st;
    struct objstore_req *req = x->req;
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
        if (x->overflow)
            rc = -EIO, why = "body longer than the buffer";
        else if (x->body_too_big)
            rc = -EIO, why = "listing body too large";
        else if (x->status >= 400 && x->body_len && strstr(x->body, "<Code>BadDigest</Code>"))
            /* radosgw refuses a damaged body early and closes before its error ends */
            rc = -EBADMSG, why = "BadDigest: the body was damaged on its way (sent again)";
        else
            rc = os3_transport_error(x, cc, &why);
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
        case OBJSTORE_OP_MPU_CREATE:
            rc = os3_xml_parse_mpu_create(x->body, x->body_len, req->upload_id_out,
                                          sizeof(req->upload_id_out));
            if (rc < 0)
                why = "no UploadId in the CreateMultipartUpload response";
            break;
        case OBJSTORE_OP_MPU_COMPLETE:
            /* S3 may answer 200 and then an Error document: the upload did not complete */
            rc = os3_xml_parse_mpu_complete(x->body, x->body_len, info->etag, sizeof(info->etag),
                                            code, sizeof(code), msg, sizeof(msg));
            if (rc == -EAGAIN) { /* retried as the 500 it is */
                req->http_status = 500;
                rc = objstore_map_error(500, code);
            } else if (rc < 0)
                why = "malformed CompleteMultipartUpload response";
            break;
        case OBJSTORE_OP_MPU_PART:
        case OBJSTORE_OP_PUT:
            info->size = req->len;
            if (!info->etag[0])
                rc = -EIO, why = "no ETag in the response";
            break;
        default:
            info->size = req->len;
            break;
        }
        if (rc == 0 && req->op == OBJSTORE_OP_GET)
            req->got = x->got;
    } else if (x->status == 416 && req->op == OBJSTORE_OP_GET &&
               (req->flags & OBJSTORE_GET_EOF_OK)) {
        req->info.size = x->cr_total_known ? x->cr_total : 0; /* radosgw omits it */
    } else {
        if (x->body_len)
            os3_xml_parse_error(x->body, x->body_len, code, sizeof(code), msg, sizeof(msg));
        rc = objstore_map_error(x->status, code);
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

    os3_count(x, rc);

    if (rc < 0 && !(req->flags & OS3_REQ_QUIET))
        objstore_log_failure(req);
    os3_xfer_free(x);
    req->done(req);
}

/* ---- event thread ---- */

void *os3_loop(void *arg)
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

void os3_free(struct os3_store *st)
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

const struct objstore_ops os3_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "s3",
    .submit = os3_submit,
    .get_stats = os3_get_stats,
    .destroy = os3_destroy,
};
