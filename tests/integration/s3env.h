/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3env.h: what integration tests know about the local S3 server and its shaping proxy.
 * tests/s3server/start.sh writes a KEY=VALUE env file; $TIERFS_S3_ENV names it.
 */
#ifndef TIERFS_TEST_S3ENV_H
#define TIERFS_TEST_S3ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct s3env {
    char endpoint[256];        /* through the proxy: http://127.0.0.1:PORT */
    char direct_endpoint[256]; /* radosgw itself */
    char control[256];         /* proxy control base URL: http://127.0.0.1:PORT/__proxy */
    char access_key[128];
    char secret_key[128];
    char region[64];
    char bucket[128]; /* an empty bucket created for the test run */
    char dir[512];    /* the server's temp dir */
    int rgw_pid, proxy_pid;
    /* Added after the first version (append only): */
    char control_main[256]; /* /__proxy on the main port (gone while "down") */
    char s3cli[512];        /* tests/s3server/s3cli.js (node) */
    int mon_pid, osd_pid;
};

/* Load $TIERFS_S3_ENV. @return 0, or -ENOENT when unset/missing (tests then exit 77). */
int s3env_load(struct s3env *env);

/*
 * Proxy counters (since the last reset). Control requests are not counted.
 * get: every GET of an object, ranged or not; ranged_get: the subset with a Range header.
 * list: a GET on a bucket root or with ?list-type. head, put: by method; other: the rest
 * (DELETE, POST, ...). requests = get + head + list + put + other.
 */
struct s3env_counters {
    uint64_t get, ranged_get, head, list, put, other;
    uint64_t bytes_sent;     /* response body bytes sent to clients */
    uint64_t max_concurrent; /* most S3 requests in flight at once */
    uint64_t faults;         /* faults injected */
    /* Added after the first version (append only): */
    uint64_t requests;
    uint64_t concurrent;      /* in flight now */
    uint64_t bytes_received;  /* request body bytes (PUT data) */
    uint64_t upstream_errors; /* radosgw unreachable (proxy answered 502) */
};
int s3env_counters(const struct s3env *env, struct s3env_counters *out);
int s3env_counters_reset(const struct s3env *env);

/*
 * Set proxy knobs with a JSON object, merged into the current ones, e.g.
 *   {"ttfb_ms":30,"bandwidth":80000000,"fault":{"kind":"503","rate":0.2}}
 * ttfb_ms (+ uniform 0..ttfb_jitter_ms): delay added before each response head.
 * bandwidth: bytes/s per response body, paced smoothly; 0 = unlimited.
 * fault: null (off) or {kind, rate, every_nth, count, match, stall_ms, after_bytes}.
 * Kinds: "500" (InternalError XML), "503" (SlowDown XML), "reset" (head + after_bytes of
 * the body, then a TCP reset), "short" (head with the real Content-Length + after_bytes,
 * then a clean close), "stall" (head + after_bytes, pause stall_ms, then the rest; an empty
 * body's head is held back stall_ms).
 * after_bytes defaults to half the body. A HEAD hit by reset/short loses its connection.
 * Which requests: "match" (GET|RANGED_GET|HEAD|LIST|PUT|OTHER or an array; GET covers
 * ranged GETs too), then every_nth-th match, else with probability rate, else every
 * match; at most count faults. Setting "fault" restarts the nth/count bookkeeping.
 * "down":true closes the main port (connection refused; open connections dropped)
 * until "down":false. "{}" resets all knobs. @return 0, -EINVAL (rejected), or -EIO.
 */
int s3env_proxy_config(const struct s3env *env, const char *json);
/* Same as s3env_proxy_config(env, "{}"). */
int s3env_proxy_reset(const struct s3env *env);

/* Make a fresh per-test temp dir under $TIERFS_TEST_TMPDIR (or /tmp). @return 0 / -errno. */
int s3env_tmpdir(const char *prefix, char *out, size_t cap);

/*
 * Object setup helpers. They talk to radosgw DIRECTLY (not through the proxy), so they
 * neither count in nor suffer from the proxy's knobs. SigV4 via libcurl. Keys are used
 * as given (URL-safe keys only). @return 0, -ENOENT (404), -EACCES (403), or -EIO.
 */
int s3env_put(const struct s3env *env, const char *key, const void *data, size_t len);
int s3env_put_file(const struct s3env *env, const char *key, const char *path);
int s3env_delete(const struct s3env *env, const char *key);

/* One signed S3 request and what came back (for tests of the proxy itself). */
struct s3env_http {
    long status; /* HTTP status; 0 if no response head arrived */
    int curl_rc; /* CURLcode: 0, 7 (refused), 18 (short), 56 (reset), ... */
    char *body;  /* malloc'd, NUL-terminated; free with s3env_http_free() */
    size_t body_len;
    int64_t content_length; /* from the response head; -1 if none */
    double ttfb_s, total_s; /* time to first byte / total */
};
/*
 * @endpoint: env->endpoint (proxy) or env->direct_endpoint. @key NULL = bucket root.
 * @query without '?', may be NULL. @range like "bytes=0-99" or NULL. @body for PUT.
 * @return 0 when a complete response arrived (any status); -EIO when the transfer failed
 * (out->curl_rc says how; out is filled as far as it got). Free out with s3env_http_free().
 */
int s3env_request(const struct s3env *env, const char *endpoint, const char *method,
                  const char *key, const char *query, const char *range, const void *body,
                  size_t body_len, struct s3env_http *out);
void s3env_http_free(struct s3env_http *r);

#endif
