/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errmap.c: the one table that turns HTTP statuses, S3 error codes and curl failures
 * into -errno, the retry policy's idea of "transient", and failure logging.
 *
 * DESIGN
 * An S3 error code, when the body carried one, is more precise than the status (a 400
 * can be a bad argument or an expired token), so code rows win over status rows.
 * Attempt-level results vs. final results:
 *   - ECONNRESET and "short body" (-EIO with a 2xx status) are attempt-level: the retry
 *     layer retries them and turns a final ECONNRESET into -EIO, because a read() that
 *     fails with a socket errno only confuses applications.
 *   - ETIMEDOUT is retried and kept as the final result (the header promises it).
 *   - ECONNREFUSED and EHOSTUNREACH (DNS failures included) are NOT retried: they come
 *     back at once and almost always mean a wrong endpoint or a server that is down;
 *     retrying only delays a clear error by seconds. The caller may try again later.
 *   - 4xx is never retried; 5xx (SlowDown included) is, and ends as -EIO.
 */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

struct objstore_err_row {
    int status_lo, status_hi; /* inclusive; used by rows without a code */
    const char *code;         /* S3 error code; NULL for status rows */
    int err;                  /* positive errno */
};

/* Code rows first (matched by code alone), then status rows (first match wins). */
static const struct objstore_err_row objstore_err_table[] = {
    {0, 0, "NoSuchKey", ENOENT},
    {0, 0, "NoSuchBucket", ENOENT},
    {0, 0, "NoSuchVersion", ENOENT},
    {0, 0, "AccessDenied", EACCES},
    {0, 0, "AllAccessDisabled", EACCES},
    {0, 0, "InvalidAccessKeyId", EACCES},
    {0, 0, "SignatureDoesNotMatch", EACCES},
    {0, 0, "ExpiredToken", EACCES},
    {0, 0, "InvalidToken", EACCES},
    {0, 0, "TokenRefreshRequired", EACCES},
    {0, 0, "RequestTimeTooSkewed", EACCES},
    {0, 0, "PreconditionFailed", ESTALE},
    {0, 0, "InvalidRange", EINVAL},
    {0, 0, "InvalidArgument", EINVAL},
    {0, 0, "InvalidBucketName", EINVAL},
    {0, 0, "KeyTooLongError", ENAMETOOLONG},
    {0, 0, "EntityTooLarge", EFBIG},
    {0, 0, "BadDigest", EBADMSG},                 /* a body damaged on its way: send it again */
    {0, 0, "XAmzContentSHA256Mismatch", EBADMSG}, /* the same, seen by the signed hash */
    {0, 0, "RequestTimeout", ETIMEDOUT},          /* S3 gave up on a slow upload: again */
    {0, 0, "SlowDown", EIO},
    {0, 0, "InternalError", EIO},
    {0, 0, "ServiceUnavailable", EIO},
    {404, 404, NULL, ENOENT},
    {401, 401, NULL, EACCES},
    {403, 403, NULL, EACCES},
    {412, 412, NULL, ESTALE},
    {416, 416, NULL, EINVAL},
    {400, 400, NULL, EINVAL},
    {413, 413, NULL, EFBIG},
    {400, 499, NULL, EIO},
    {500, 599, NULL, EIO},
    {300, 399, NULL, EIO}, /* PermanentRedirect: wrong region or endpoint */
};

int objstore_map_error(int http_status, const char *s3_code)
{
    if (http_status >= 200 && http_status < 300)
        return 0;
    if (s3_code && *s3_code) {
        for (size_t i = 0; i < CMN_ARRAY_SIZE(objstore_err_table); i++) {
            const struct objstore_err_row *r = &objstore_err_table[i];
            if (r->code && strcmp(r->code, s3_code) == 0)
                return -r->err;
        }
    }
    for (size_t i = 0; i < CMN_ARRAY_SIZE(objstore_err_table); i++) {
        const struct objstore_err_row *r = &objstore_err_table[i];
        if (!r->code && http_status >= r->status_lo && http_status <= r->status_hi)
            return -r->err;
    }
    return -EIO;
}

int objstore_map_curl_error(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT: /* also the low-speed (stall) abort */
        return -ETIMEDOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return -ECONNRESET;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return -EPROTO; /* a trust problem is configuration, never retried */
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EINVAL;
    case CURLE_PARTIAL_FILE: /* fewer body bytes than Content-Length: short body */
    case CURLE_WRITE_ERROR:  /* our write callback refused: body longer than the buffer */
    case CURLE_WEIRD_SERVER_REPLY:
    default:
        return -EIO;
    }
}

bool objstore_is_retryable(int neg_errno, int http_status)
{
    if (neg_errno >= 0)
        return false;
    if (neg_errno == -EBADMSG || neg_errno == -ETIMEDOUT)
        return true; /* damaged or too slow on the way (a 400 from S3, or no answer) */
    if (http_status >= 500)
        return true;
    if (http_status >= 400)
        return false;
    switch (-neg_errno) {
    case ECONNRESET:
    case ETIMEDOUT:
        return true;
    case EIO:
        /* No status or a 2xx status: a short/garbled body or a truncated listing. */
        return http_status == 0 || (http_status >= 200 && http_status < 300);
    default:
        return false;
    }
}

const char *objstore_strerror(int neg_errno)
{
    switch (-neg_errno) {
    case 0:
        return "success";
    case ENOENT:
        return "no such key or bucket";
    case EACCES:
        return "access denied (credentials or permissions)";
    case ESTALE:
        return "object changed (ETag mismatch)";
    case EINVAL:
        return "invalid argument or range";
    case EIO:
        return "object store I/O error";
    case ETIMEDOUT:
        return "timed out";
    case ECONNREFUSED:
        return "connection refused";
    case EHOSTUNREACH:
        return "host unreachable or name not resolved";
    case ECONNRESET:
        return "connection reset";
    case EPROTO:
        return "TLS or protocol failure";
    case ENOMEM:
        return "out of memory";
    case ENAMETOOLONG:
        return "key too long";
    case EFBIG:
        return "object too large";
    case ESHUTDOWN:
        return "object store is shutting down";
    default:
        return strerror(-neg_errno);
    }
}

const char *objstore_op_name(enum objstore_op op)
{
    static const char *const names[OBJSTORE_OP_COUNT] = {"HEAD",       "GET",
                                                         "LIST",       "PUT",
                                                         "DELETE",     "CreateMultipartUpload",
                                                         "UploadPart", "CompleteMultipartUpload"};
    return (unsigned)op < OBJSTORE_OP_COUNT ? names[op] : "?";
}

/* One limiter for the whole module: a dead endpoint makes every request fail the same way. */
static struct tlog_ratelimit objstore_log_rl = {.interval_ms = 5000, .burst = 10};

void objstore_log_failure(const struct objstore_req *req)
{
    int level;
    switch (-req->result) {
    case ENOENT:
        level = TLOG_DEBUG; /* lookups of missing keys are normal */
        break;
    case ESTALE:
    case EINVAL:
        level = TLOG_INFO;
        break;
    default:
        level = TLOG_WARNING;
    }
    tlog_rl_msg(&objstore_log_rl, level, "objstore: %s",
                req->errmsg[0] ? req->errmsg : objstore_strerror(req->result));
}

uint64_t objstore_backoff_ms(unsigned retry, unsigned base_ms, unsigned max_ms, uint64_t *rng)
{
    uint64_t cap = base_ms;
    for (unsigned i = 0; i < retry && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    return cmn_rand64(rng) % (cap + 1);
}
