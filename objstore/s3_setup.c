/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_setup.c: the S3 backend's work off the event thread: a request prepared on the
 * submitter's thread (credentials, URL and query encoding, SigV4 signing, easy-handle
 * options) and the store's creation (endpoint, addressing style, TLS, the event thread).
 * The design is at the top of s3.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
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

static pthread_once_t os3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode os3_curl_init_rc;

static void os3_curl_init(void)
{
    os3_curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
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

/* A request's URL, headers and their values while it is prepared (os3_prepare). */
struct os3_prep {
    struct os3_kv query[8], headers[10];
    size_t nq, nh;
    char *path, *qs, *enc;
    char range[64], maxkeys[16], partno[16], date[17], sha[65], md5[32], auth[1024];
};

/* The path as sent is the canonical URI: S3 keys are not normalised (PATH_AS_IS).
 * @return 0 and x->url, or -ENOMEM. */
static int os3_prep_url(const struct os3_store *st, struct os3_xfer *x, struct os3_prep *p)
{
    struct objstore_req *req = x->req;
    int rc;

    if (req->op == OBJSTORE_OP_LIST) {
        const struct objstore_list_args *a = &req->list;
        p->path = strdup(st->path_prefix[0] ? st->path_prefix : "/");
        p->query[p->nq++] = (struct os3_kv){"list-type", "2"};
        p->query[p->nq++] = (struct os3_kv){"encoding-type", "url"};
        if (a->prefix && a->prefix[0])
            p->query[p->nq++] = (struct os3_kv){"prefix", a->prefix};
        if (a->delimiter && a->delimiter[0])
            p->query[p->nq++] = (struct os3_kv){"delimiter", a->delimiter};
        if (a->continuation_token && a->continuation_token[0])
            p->query[p->nq++] = (struct os3_kv){"continuation-token", a->continuation_token};
        if (a->start_after && a->start_after[0])
            p->query[p->nq++] = (struct os3_kv){"start-after", a->start_after};
        if (a->max_keys) {
            snprintf(p->maxkeys, sizeof(p->maxkeys), "%u", a->max_keys);
            p->query[p->nq++] = (struct os3_kv){"max-keys", p->maxkeys};
        }
    } else {
        if (req->op == OBJSTORE_OP_MPU_CREATE)
            p->query[p->nq++] = (struct os3_kv){"uploads", ""};
        if (req->op == OBJSTORE_OP_MPU_PART) {
            snprintf(p->partno, sizeof(p->partno), "%u", req->part_number);
            p->query[p->nq++] = (struct os3_kv){"partNumber", p->partno};
        }
        if (req->upload_id &&
            (req->op == OBJSTORE_OP_MPU_PART || req->op == OBJSTORE_OP_MPU_COMPLETE ||
             req->op == OBJSTORE_OP_DELETE))
            p->query[p->nq++] = (struct os3_kv){"uploadId", req->upload_id};
        p->enc = os3_uri_encode(req->key, true);
        if (!p->enc || asprintf(&p->path, "%s/%s", st->path_prefix, p->enc) < 0)
            p->path = NULL;
    }
    if (!p->path)
        return -ENOMEM;
    for (size_t i = 0; i < p->nq; i++)
        if ((rc = os3_query_add(&p->qs, p->query[i].name, p->query[i].value)) < 0)
            return rc;
    if (asprintf(&x->url, "%s%s%s%s", st->origin, p->path, p->qs ? "?" : "", p->qs ? p->qs : "") <
        0) {
        x->url = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* The headers, signed with SigV4 unless anonymous, into x->hdrs: exactly the values that
 * were signed (Host included). @return 0 or -errno (req->errmsg set for credentials and
 * signing failures). */
static int os3_prep_headers(const struct os3_store *st, struct os3_xfer *x, struct os3_prep *p)
{
    struct objstore_req *req = x->req;
    struct objstore_credentials cr;
    bool bad = false;
    int rc;

    if (req->op == OBJSTORE_OP_PUT || req->op == OBJSTORE_OP_MPU_PART) {
        /* The body is not hashed for the signature (a second pass over every byte, as
         * costly as the MD5): Content-MD5, which is signed, makes S3 check the bytes. */
        memcpy(p->sha, "UNSIGNED-PAYLOAD", sizeof("UNSIGNED-PAYLOAD"));
        if (req->md5)
            EVP_EncodeBlock((unsigned char *)p->md5, req->md5, 16);
        else
            os3_md5_base64(req->buf, req->len, p->md5);
        p->headers[p->nh++] = (struct os3_kv){"content-md5", p->md5};
    } else if (x->send) {
        os3_sha256_hex(x->send, x->send_len, p->sha);
        os3_md5_base64(x->send, x->send_len, p->md5);
        p->headers[p->nh++] = (struct os3_kv){"content-md5", p->md5};
    } else {
        memcpy(p->sha, OS3_EMPTY_SHA256, sizeof(p->sha));
    }
    os3_amz_date((int64_t)time(NULL), p->date);
    p->headers[p->nh++] = (struct os3_kv){"host", st->host};
    if (req->op == OBJSTORE_OP_GET && (req->off || req->len)) {
        if (req->len)
            snprintf(p->range, sizeof(p->range), "bytes=%llu-%llu", (unsigned long long)req->off,
                     (unsigned long long)(req->off + req->len - 1));
        else
            snprintf(p->range, sizeof(p->range), "bytes=%llu-", (unsigned long long)req->off);
        p->headers[p->nh++] = (struct os3_kv){"range", p->range};
        x->ranged = true;
    }
    if (req->op == OBJSTORE_OP_GET && req->if_match)
        p->headers[p->nh++] = (struct os3_kv){"if-match", req->if_match};
    if (!st->anonymous) {
        rc = objstore_creds_get(st->creds, &cr);
        if (rc < 0) {
            os3_errmsg(st, req, "no credentials: %s", objstore_strerror(rc));
            return rc;
        }
        p->headers[p->nh++] = (struct os3_kv){"x-amz-date", p->date};
        p->headers[p->nh++] = (struct os3_kv){"x-amz-content-sha256", p->sha};
        if (cr.session_token[0])
            p->headers[p->nh++] = (struct os3_kv){"x-amz-security-token", cr.session_token};
        struct os3_sign_input in = {
            .method = os3_method(req->op),
            .canonical_uri = p->path,
            .query = p->query,
            .n_query = p->nq,
            .headers = p->headers,
            .n_headers = p->nh,
            .payload_hash = p->sha,
            .amz_date = p->date,
            .region = st->region,
            .service = "s3",
        };
        rc = os3_sigv4_authorization(&in, &cr, p->auth, sizeof(p->auth));
        if (rc < 0) {
            OPENSSL_cleanse(&cr, sizeof(cr));
            os3_errmsg(st, req, "signing failed: %s", objstore_strerror(rc));
            return rc;
        }
    }
    /* The token header's value points into cr: copy the headers out before cr is wiped. */
    for (size_t i = 0; i < p->nh; i++)
        x->hdrs = os3_hdr_add(x->hdrs, p->headers[i].name, p->headers[i].value, &bad);
    if (!st->anonymous) {
        OPENSSL_cleanse(&cr, sizeof(cr)); /* keep secrets off the stack */
        x->hdrs = os3_hdr_add(x->hdrs, "Authorization", p->auth, &bad);
    }
    x->hdrs = os3_hdr_add(x->hdrs, "Expect", "", &bad); /* no 100-continue round trip */
    return bad ? -ENOMEM : 0;
}

/* An easy handle for @x with every option of its op. @return 0 or -ENOMEM. */
static int os3_prep_easy(struct os3_store *st, struct os3_xfer *x)
{
    const struct objstore_req *req = x->req;
    CURL *e = x->easy = os3_easy_get(st);

    if (!e)
        return -ENOMEM;
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
    } else if (req->op == OBJSTORE_OP_DELETE) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else if (req->op == OBJSTORE_OP_MPU_CREATE || req->op == OBJSTORE_OP_MPU_COMPLETE) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->send ? x->send : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->send_len);
    } else if (req->op == OBJSTORE_OP_PUT || req->op == OBJSTORE_OP_MPU_PART) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        /* 256 KiB a read callback (curl's default 64 KiB): fewer calls and send()s a part */
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)OS3_PUT_BUFFER);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, os3_read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, os3_seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
    }
    return 0;
}

/* The CompleteMultipartUpload document of @req's parts into x->send. @return 0 or -errno. */
static int os3_prep_complete(struct os3_xfer *x)
{
    const struct objstore_req *req = x->req;
    size_t cap = 64 + (size_t)req->nparts * (64 + OBJSTORE_ETAG_MAX), len = 0;
    char *b;

    if (!req->upload_id || !req->parts || req->nparts == 0 || req->nparts > OBJSTORE_PARTS_MAX)
        return -EINVAL;
    b = malloc(cap);
    if (!b)
        return -ENOMEM;
    len += (size_t)snprintf(b, cap, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < req->nparts; i++) {
        const char *et = req->parts[i].etag;
        if (strpbrk(et, "<>&")) { /* an ETag never holds markup; refuse rather than escape */
            free(b);
            return -EINVAL;
        }
        len += (size_t)snprintf(b + len, cap - len,
                                "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                                req->parts[i].number, et);
    }
    len += (size_t)snprintf(b + len, cap - len, "</CompleteMultipartUpload>");
    x->send = b;
    x->send_len = len;
    return 0;
}

int os3_prepare(struct os3_store *st, struct os3_xfer *x)
{
    struct os3_prep p = {0};
    int rc = x->req->op == OBJSTORE_OP_MPU_COMPLETE ? os3_prep_complete(x) : 0;

    if (rc == 0)
        rc = os3_prep_url(st, x, &p);

    if (rc == 0)
        rc = os3_prep_headers(st, x, &p);
    if (rc == 0)
        rc = os3_prep_easy(st, x);
    free(p.path);
    free(p.qs);
    free(p.enc);
    OPENSSL_cleanse(p.auth, sizeof(p.auth));
    if (rc < 0 && !x->req->errmsg[0])
        os3_errmsg(st, x->req, "%s", objstore_strerror(rc));
    return rc;
}
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
    if (st->insecure)
        TLOG_W("objstore: TLS certificate and host name checks are off (insecure): anyone on "
               "the path to the endpoint can read and change what tierfs reads");
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
