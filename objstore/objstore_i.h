/* SPDX-License-Identifier: Apache-2.0 */
/*
 * objstore_i.h: private interfaces between the parts of objstore/:
 *   sigv4.c   - URI encoding, canonical request, SigV4 signing (os3_sigv4_*, os3_uri_encode)
 *   creds.c   - credential providers and the default chain (objstore_creds_*, os3_creds_*)
 *   creds_http.c - the providers' HTTP request, JSON and time parsing (os3_creds_http, ...)
 *   s3.c, s3_setup.c - the S3 backend (curl multi event thread; s3_i.h)
 *   s3xml.c   - ListObjectsV2 and error XML parsing (os3_xml_*)
 *   errmap.c  - the one HTTP/S3-code -> errno table (objstore_map_error)
 *   retry.c, stats.c, fault.c - the wrapper layers (objstore_retry_*, _stats_*, _fault_*)
 *   sync.c    - the synchronous helpers and the public wrappers (objstore_submit, ...)
 * Prefixes: objstore_ for the module's generic code, public or not; os3_ only for what is
 * particular to S3 and AWS (the backend, SigV4, the XML, the AWS credential sources).
 * Unit tests include this header.
 */
#ifndef TIERFS_OBJSTORE_I_H
#define TIERFS_OBJSTORE_I_H

#include "objstore/objstore.h"

/* ---- URI encoding (S3 flavour: every byte but A-Z a-z 0-9 - _ . ~ is %XX, upper hex) ---- */

/* Encode @in; '/' is kept when @keep_slash (object key paths). @return malloc'd string or NULL. */
char *os3_uri_encode(const char *in, bool keep_slash);
/* Decode %XX (and '+' is NOT a space: S3 url encoding-type uses %20). @return malloc'd or NULL. */
char *os3_uri_decode(const char *in);

/* ---- SigV4 ---- */

struct os3_kv {
    const char *name;
    const char *value;
};

struct os3_sign_input {
    const char *method;         /* "GET", "HEAD", ... */
    const char *canonical_uri;  /* already URI-encoded path, e.g. "/bucket/my%20key" */
    const struct os3_kv *query; /* raw (unencoded) query parameters, any order */
    size_t n_query;
    const struct os3_kv *headers; /* headers to sign (host, x-amz-*, range, ...), any order/case */
    size_t n_headers;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;     /* "YYYYMMDDTHHMMSSZ" */
    const char *region;
    const char *service; /* "s3" */
};

/* Build the canonical request (for tests and debugging). @return malloc'd string or NULL. */
char *os3_sigv4_canonical_request(const struct os3_sign_input *in, char **signed_headers_out);
/* Build the string to sign. @return malloc'd string or NULL. */
char *os3_sigv4_string_to_sign(const struct os3_sign_input *in, const char *canonical_request);
/* Compute the Authorization header value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=..."). @return 0 or -errno. */
int os3_sigv4_authorization(const struct os3_sign_input *in, const struct objstore_credentials *cr,
                            char *out, size_t cap);
/* Hex SHA-256 of @len bytes into @hex (65 bytes). */
void os3_sha256_hex(const void *data, size_t len, char hex[65]);
#define OS3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Format @t (unix seconds) as "YYYYMMDDTHHMMSSZ". */
void os3_amz_date(int64_t t, char out[17]);

/* ---- credentials: providers are a vtable too ---- */

struct objstore_creds_ops {
    const char *name;
    /* Fetch fresh credentials. @return 0 or -errno (-ENOENT: this source has none). */
    int (*fetch)(struct objstore_creds *c, struct objstore_credentials *out);
    void (*destroy)(struct objstore_creds *c);
};
struct objstore_creds {
    const struct objstore_creds_ops *ops;
};
/* Individual sources, exposed for tests (each honours the env vars the CLI does). */
int os3_creds_from_env(struct objstore_credentials *out);
int os3_creds_from_profile(const char *profile, struct objstore_credentials *out);
int os3_creds_from_container(struct objstore_credentials *out);
/* @imds_endpoint: NULL = $AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254 */
int os3_creds_from_imds(const char *imds_endpoint, struct objstore_credentials *out);

/* creds_http.c: what the HTTP sources share. One request, bounded by ~1 s timeouts, never
 * through a proxy, no redirects: @headers is NULL-terminated ("Name: value"), the body
 * lands NUL-terminated in @body (at most @cap - 1 bytes). @return 0 with *status set (any
 * HTTP status), or a transport -errno (-ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -EIO,
 * -ENOMEM). */
int os3_creds_http(const char *method, const char *url, const char *const *headers, char *body,
                   size_t cap, long *status);
/* The string value of top-level member @key of the JSON object @json, copied to @out.
 * @return 0, -ENOENT (absent or not a string), -EINVAL (malformed), -ENAMETOOLONG. */
int os3_json_get(const char *json, const char *key, char *out, size_t cap);
/* Parse "2024-05-01T12:00:00Z" (fraction and +HH:MM offsets accepted) into Unix seconds.
 * @return 0 or -EINVAL. */
int os3_parse_iso8601(const char *s, int64_t *out);

/* ---- XML ---- */

/* Parse a ListObjectsV2 body; keys are url-decoded when EncodingType is "url".
 * @return 0 or -EIO (malformed/truncated), res is left empty on failure. */
int os3_xml_parse_list(const char *body, size_t len, struct objstore_list_result *res);
/* Parse an S3 error body into code/message (either may come back ""). @return 0 / -EIO. */
int os3_xml_parse_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                        size_t msg_cap);

/* ---- errors ---- */

/* The one table: HTTP status + S3 error code (may be NULL) -> -errno. */
int objstore_map_error(int http_status, const char *s3_code);
/* Curl transport failures -> -errno (CURLcode passed as int to keep curl out of this header). */
int objstore_map_curl_error(int curl_code);
/* True when a failed attempt with this result is worth retrying. */
bool objstore_is_retryable(int neg_errno, int http_status);

/* ---- shared by the layers (errmap.c) ---- */

/* In req->flags: a wrapper above will log the final failure, so this layer stays quiet.
 * Set by the retry layer on the attempts it sends, passed down by the fault layer. */
#define OS3_REQ_QUIET 0x80000000u
/* "HEAD", "GET", "LIST", "PUT". */
const char *objstore_op_name(enum objstore_op op);
/* Log req->errmsg once, rate-limited, at a level that fits req->result (ENOENT is debug). */
void objstore_log_failure(const struct objstore_req *req);
/* Full-jitter backoff before retry number @retry (0 = the first retry):
 * a uniform draw from [0, min(max_ms, base_ms * 2^retry)]. @return milliseconds. */
uint64_t objstore_backoff_ms(unsigned retry, unsigned base_ms, unsigned max_ms, uint64_t *rng);

#endif
