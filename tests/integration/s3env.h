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
    char bucket[128];          /* an empty bucket created for the test run */
    char dir[512];             /* the server's temp dir */
    int rgw_pid, proxy_pid;
};

/* Load $TIERFS_S3_ENV. @return 0, or -ENOENT when unset/missing (tests then exit 77). */
int s3env_load(struct s3env *env);

/* Proxy counters (since the last reset). */
struct s3env_counters {
    uint64_t get, ranged_get, head, list, put, other;
    uint64_t bytes_sent;       /* response body bytes sent to clients */
    uint64_t max_concurrent;
    uint64_t faults;
};
int s3env_counters(const struct s3env *env, struct s3env_counters *out);
int s3env_counters_reset(const struct s3env *env);

/*
 * Set proxy knobs with a JSON object, e.g.
 *   {"ttfb_ms":30,"bandwidth":80000000,"fault":{"kind":"503","rate":0.2}}
 * Kinds: "500", "503" (SlowDown), "reset" (mid-body), "short" (body cut short),
 * "stall" (stall_ms). Optional "match" restricts faults to GET|HEAD|LIST|PUT.
 * "{}" resets all knobs. @return 0 or -errno.
 */
int s3env_proxy_config(const struct s3env *env, const char *json);

/* Make a fresh per-test temp dir under $TIERFS_TEST_TMPDIR (or /tmp). @return 0 / -errno. */
int s3env_tmpdir(const char *prefix, char *out, size_t cap);

#endif
