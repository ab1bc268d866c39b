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
/* Base64 of the MD5 of @len bytes into @out (25 bytes): a Content-MD5 value. */
void os3_md5_base64(const void *data, size_t len, char out[32]);
/* Hex SHA-256 of @len bytes into @hex (65 bytes). */
void os3_sha256_hex(const void *data, size_t len, char hex[65]);
#define OS3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* The HTTP method of @op ("POST" for CreateMultipartUpload, ...). */
const char *os3_method(enum objstore_op op);
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
/* A profile whole (role, web identity, keys, credential_process), without the chain. */
int os3_creds_from_profile(const char *profile, struct objstore_credentials *out);
/* AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (+ AWS_ROLE_SESSION_NAME). @return 0,
 * -ENOENT (no token file named), -errno. */
int os3_creds_web_identity_env(struct objstore_credentials *out);
/* creds_profile.c: the parts of a profile, in the order the chain takes them. */
enum os3_profile_part {
    OS3_PROFILE_ROLE,         /* role_arn with source_profile or credential_source */
    OS3_PROFILE_WEB_IDENTITY, /* role_arn with web_identity_token_file */
    OS3_PROFILE_KEYS,         /* static keys, else credential_process */
};
/* @found: the profile exists in either file. @return 0, -ENOENT (not this part), -errno. */
int os3_creds_profile_part(const char *name, enum os3_profile_part part,
                           struct objstore_credentials *out, bool *found);
void os3_creds_profile_paths(char *cred_path, char *conf_path, size_t cap);
/* @profile, else $AWS_PROFILE, else "default". */
const char *os3_creds_profile_name(const char *profile);
/* creds.c helpers shared with the other sources */
const char *os3_creds_env(const char *name); /* NULL when unset or empty */
bool os3_creds_env_true(const char *name);
int os3_creds_fill(struct objstore_credentials *out, const char *ak, const char *sk,
                   const char *token, int64_t expiration, const char *from);
char *os3_creds_trim(char *s);
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
/* os3_creds_http for a remote service (STS): sends @send (NULL: no body), through the
 * proxy the environment names, with longer timeouts (OS3_CREDS_REMOTE_TIMEOUT_MS). */
int os3_creds_http_remote(const char *method, const char *url, const char *const *headers,
                          const char *send, char *body, size_t cap, long *status);
/* The integer value of top-level member @key of the JSON object @json (a number, or a
 * string of digits). @return 0, -ENOENT, -EINVAL. */
int os3_json_get_int(const char *json, const char *key, long long *out);

/* ---- credential sources that take settings (creds_sts.c, creds_process.c) ---- */

/* Where STS is: AWS_ENDPOINT_URL_STS, else the regional endpoint of @region (or of
 * AWS_REGION / AWS_DEFAULT_REGION) unless @regional_mode (or AWS_STS_REGIONAL_ENDPOINTS)
 * says "legacy", else the global one. @region_out: the region to sign for. */
void os3_sts_endpoint(const char *region, const char *regional_mode, char *url, size_t cap,
                      char *region_out, size_t rcap);
struct os3_sts_role {
    const char *role_arn;
    const char *session_name;  /* NULL: "tierfs-<unix time>" */
    const char *external_id;   /* AssumeRole only; NULL: none */
    int duration_s;            /* 0: STS's default */
    const char *region;        /* NULL: the environment's */
    const char *regional_mode; /* "regional", "legacy" or NULL */
};
/* AssumeRoleWithWebIdentity with the token read now from @token_file (Kubernetes rotates
 * it). @return 0, or -EACCES (STS refused; logged with its code), -EIO, transport -errno. */
int os3_sts_web_identity(const struct os3_sts_role *r, const char *token_file,
                         struct objstore_credentials *out);
/* AssumeRole signed with @src. @return as os3_sts_web_identity. */
int os3_sts_assume_role(const struct os3_sts_role *r, const struct objstore_credentials *src,
                        struct objstore_credentials *out);
/* credential_process: run @cmdline (split like a shell's words, no shell), parse its JSON
 * (Version 1). Gives up after $TIERFS_CREDENTIAL_PROCESS_TIMEOUT seconds (default 60).
 * Its output is never logged. @return 0, -EINVAL (bad command line or JSON), -ETIMEDOUT,
 * -EIO (failed to run or a non-zero exit). */
int os3_creds_from_process(const char *cmdline, struct objstore_credentials *out);
/* Split @cmdline into at most @max - 1 words (NULL-terminated @argv) in @buf, with the
 * quoting of a POSIX shell's words: '...' literal, "..." with \ \" \$ \` escapes, \ outside
 * quotes. @return the word count, or -EINVAL (unbalanced quote, nothing, too many words). */
int os3_split_cmdline(const char *cmdline, char *buf, size_t cap, char **argv, int max);

/* Explaining the chain: while a thread explains (objstore_creds_explain), the sources
 * note what they looked at and why they were taken or passed over. */
void os3_creds_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "AKIA...WXYZ": an access key id with all but its first 4 and last 4 characters hidden. */
void os3_creds_key_hint(const char *access_key, char *out, size_t cap);
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
/* Parse an STS reply to @action ("AssumeRole", "AssumeRoleWithWebIdentity"): its
 * Credentials (all four members, none cut). @return 0 or -EIO; @out cleared on failure. */
int os3_xml_parse_sts(const char *body, size_t len, const char *action,
                      struct objstore_credentials *out);
/* Parse an InitiateMultipartUploadResult: its UploadId. @return 0 or -EIO. */
int os3_xml_parse_mpu_create(const char *body, size_t len, char *upload_id, size_t cap);
/* Parse the answer to CompleteMultipartUpload: the object's ETag (0), an Error document
 * sent with status 200 (-EAGAIN, code and message set), or neither (-EIO). */
int os3_xml_parse_mpu_complete(const char *body, size_t len, char *etag, size_t etag_cap,
                               char *code, size_t code_cap, char *msg, size_t msg_cap);
/* Parse an STS ErrorResponse into code/message. @return 0 / -EIO. */
int os3_xml_parse_sts_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
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
