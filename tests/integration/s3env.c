/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3env.c: the test side of tests/s3server: read the env file that start.sh wrote, drive
 * the shaping proxy's control API, and make signed S3 requests with libcurl.
 *
 * Plain http on loopback: CA bundle variables and proxy variables are ignored on purpose
 * (CURLOPT_NOPROXY "*"). libcurl's SigV4 (CURLOPT_AWS_SIGV4) signs; we add
 * x-amz-content-sha256: UNSIGNED-PAYLOAD ourselves because libcurl 7.88 does not, and
 * radosgw insists on it.
 */
#include "tests/integration/s3env.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pthread_once_t s3env_curl_once = PTHREAD_ONCE_INIT;

static void s3env_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Copy @src into @dst (size @cap), stripping one pair of surrounding quotes. */
static void s3env_copy_val(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= 2 && (src[0] == '"' || src[0] == '\'') && src[n - 1] == src[0]) {
        src++;
        n -= 2;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int s3env_load(struct s3env *env)
{
    const char *path = getenv("TIERFS_S3_ENV");
    char line[1024];
    FILE *f;

    memset(env, 0, sizeof(*env));
    if (path == NULL || path[0] == '\0')
        return -ENOENT;
    f = fopen(path, "re");
    if (f == NULL)
        return -ENOENT;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *eq, *val;

        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || (eq = strchr(line, '=')) == NULL)
            continue;
        *eq = '\0';
        val = eq + 1;
        if (strcmp(line, "S3_ENDPOINT") == 0)
            s3env_copy_val(env->endpoint, sizeof(env->endpoint), val);
        else if (strcmp(line, "S3_DIRECT_ENDPOINT") == 0)
            s3env_copy_val(env->direct_endpoint, sizeof(env->direct_endpoint), val);
        else if (strcmp(line, "S3_CONTROL") == 0)
            s3env_copy_val(env->control, sizeof(env->control), val);
        else if (strcmp(line, "S3_CONTROL_MAIN") == 0)
            s3env_copy_val(env->control_main, sizeof(env->control_main), val);
        else if (strcmp(line, "S3_ACCESS_KEY") == 0)
            s3env_copy_val(env->access_key, sizeof(env->access_key), val);
        else if (strcmp(line, "S3_SECRET_KEY") == 0)
            s3env_copy_val(env->secret_key, sizeof(env->secret_key), val);
        else if (strcmp(line, "S3_REGION") == 0)
            s3env_copy_val(env->region, sizeof(env->region), val);
        else if (strcmp(line, "S3_BUCKET") == 0)
            s3env_copy_val(env->bucket, sizeof(env->bucket), val);
        else if (strcmp(line, "S3_DIR") == 0)
            s3env_copy_val(env->dir, sizeof(env->dir), val);
        else if (strcmp(line, "S3CLI") == 0)
            s3env_copy_val(env->s3cli, sizeof(env->s3cli), val);
        else if (strcmp(line, "RGW_PID") == 0)
            env->rgw_pid = atoi(val);
        else if (strcmp(line, "PROXY_PID") == 0)
            env->proxy_pid = atoi(val);
        else if (strcmp(line, "MON_PID") == 0)
            env->mon_pid = atoi(val);
        else if (strcmp(line, "OSD_PID") == 0)
            env->osd_pid = atoi(val);
    }
    fclose(f);
    if (env->region[0] == '\0')
        strcpy(env->region, "us-east-1");
    if (env->endpoint[0] == '\0' || env->control[0] == '\0' || env->bucket[0] == '\0')
        return -ENOENT;
    if (env->direct_endpoint[0] == '\0')
        strcpy(env->direct_endpoint, env->endpoint);
    pthread_once(&s3env_curl_once, s3env_curl_init);
    return 0;
}

/* ------------------------------------------------------------------ HTTP plumbing */

struct s3env_buf {
    char *data;
    size_t len, cap;
    int oom;
};

static size_t s3env_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct s3env_buf *b = arg;
    size_t n = size * nmemb;

    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL) {
            b->oom = 1;
            return 0; /* makes libcurl fail the transfer */
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

struct s3env_src {
    const char *data;
    size_t len, off;
};

static size_t s3env_read_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct s3env_src *s = arg;
    size_t n = size * nmemb;

    if (n > s->len - s->off)
        n = s->len - s->off;
    memcpy(ptr, s->data + s->off, n);
    s->off += n;
    return n;
}

static CURL *s3env_easy(void)
{
    CURL *c;

    pthread_once(&s3env_curl_once, s3env_curl_init);
    c = curl_easy_init();
    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    return c;
}

/* Control API call: @method on control base + @suffix. @return HTTP status or -EIO. */
static long s3env_control(const struct s3env *env, const char *method, const char *suffix,
                          const char *json, struct s3env_buf *out)
{
    char url[512];
    struct curl_slist *hdrs = NULL;
    long status = 0;
    CURL *c;
    CURLcode rc;

    if ((size_t)snprintf(url, sizeof(url), "%s%s", env->control, suffix) >= sizeof(url))
        return -EINVAL;
    c = s3env_easy();
    if (c == NULL)
        return -ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3env_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "POST") == 0) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "");
    }
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? status : -EIO;
}

/* Find "key": in a flat JSON object and parse the number after it. @return 0 or -ENOENT. */
static int s3env_json_u64(const char *json, const char *key, uint64_t *out)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\"", key);
    p = strstr(json, pat);
    if (p == NULL)
        return -ENOENT;
    p += strlen(pat);
    while (*p == ' ' || *p == ':' || *p == '\t')
        p++;
    *out = strtoull(p, NULL, 10);
    return 0;
}

int s3env_counters(const struct s3env *env, struct s3env_counters *out)
{
    struct s3env_buf b = {0};
    long st = s3env_control(env, "GET", "/counters", NULL, &b);
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (st != 200 || b.data == NULL) {
        rc = st < 0 ? (int)st : -EIO;
        goto out_free;
    }
    if (s3env_json_u64(b.data, "get", &out->get) < 0 ||
        s3env_json_u64(b.data, "ranged_get", &out->ranged_get) < 0 ||
        s3env_json_u64(b.data, "head", &out->head) < 0 ||
        s3env_json_u64(b.data, "list", &out->list) < 0 ||
        s3env_json_u64(b.data, "put", &out->put) < 0 ||
        s3env_json_u64(b.data, "other", &out->other) < 0 ||
        s3env_json_u64(b.data, "bytes_sent", &out->bytes_sent) < 0 ||
        s3env_json_u64(b.data, "max_concurrent", &out->max_concurrent) < 0 ||
        s3env_json_u64(b.data, "faults", &out->faults) < 0) {
        rc = -EIO;
        goto out_free;
    }
    s3env_json_u64(b.data, "requests", &out->requests);
    s3env_json_u64(b.data, "concurrent", &out->concurrent);
    s3env_json_u64(b.data, "bytes_received", &out->bytes_received);
    s3env_json_u64(b.data, "upstream_errors", &out->upstream_errors);
out_free:
    free(b.data);
    return rc;
}

int s3env_counters_reset(const struct s3env *env)
{
    struct s3env_buf b = {0};
    long st = s3env_control(env, "POST", "/counters/reset", "", &b);

    free(b.data);
    return st == 200 ? 0 : st < 0 ? (int)st : -EIO;
}

int s3env_proxy_config(const struct s3env *env, const char *json)
{
    struct s3env_buf b = {0};
    long st = s3env_control(env, "POST", "/config", json, &b);

    if (st == 400)
        fprintf(stderr, "s3env: proxy rejected config %s: %s", json, b.data ? b.data : "\n");
    free(b.data);
    return st == 200 ? 0 : st == 400 ? -EINVAL : st < 0 ? (int)st : -EIO;
}

int s3env_proxy_reset(const struct s3env *env)
{
    return s3env_proxy_config(env, "{}");
}

int s3env_tmpdir(const char *prefix, char *out, size_t cap)
{
    const char *base = getenv("TIERFS_TEST_TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (mkdir(base, 0755) < 0 && errno != EEXIST)
        return -errno;
    if ((size_t)snprintf(out, cap, "%s/%s.XXXXXX", base, prefix ? prefix : "test") >= cap)
        return -ENAMETOOLONG;
    if (mkdtemp(out) == NULL)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------------ signed S3 requests */

void s3env_http_free(struct s3env_http *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/*
 * Core of every signed request. Exactly one of @body/@file is the upload source (or
 * neither). @sink NULL collects the body into @out. @return like s3env_request().
 */
static int s3env_do(const struct s3env *env, const char *endpoint, const char *method,
                    const char *key, const char *query, const char *range, const void *body,
                    size_t body_len, FILE *file, curl_off_t file_len, struct s3env_http *out)
{
    char url[2048], sigv4[128], userpwd[300], rangehdr[160];
    struct s3env_buf b = {0};
    struct s3env_src src = {body, body_len, 0};
    struct curl_slist *hdrs = NULL;
    curl_off_t cl = -1;
    CURL *c;
    CURLcode rc;

    memset(out, 0, sizeof(*out));
    out->content_length = -1;
    if ((size_t)snprintf(url, sizeof(url), "%s/%s%s%s%s%s", endpoint, env->bucket, key ? "/" : "",
                         key ? key : "", query ? "?" : "", query ? query : "") >= sizeof(url))
        return -EINVAL;
    c = s3env_easy();
    if (c == NULL)
        return -ENOMEM;
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", env->region);
    snprintf(userpwd, sizeof(userpwd), "%s:%s", env->access_key, env->secret_key);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    hdrs = curl_slist_append(hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (range != NULL) {
        snprintf(rangehdr, sizeof(rangehdr), "Range: %s", range);
        hdrs = curl_slist_append(hdrs, rangehdr);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3env_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        if (file != NULL) {
            curl_easy_setopt(c, CURLOPT_READDATA, file); /* default read callback: fread */
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, file_len);
        } else {
            curl_easy_setopt(c, CURLOPT_READFUNCTION, s3env_read_cb);
            curl_easy_setopt(c, CURLOPT_READDATA, &src);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
        }
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = curl_easy_perform(c);
    out->curl_rc = (int)rc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    out->content_length = cl;
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME, &out->ttfb_s);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->total_s);
    out->body = b.data;
    out->body_len = b.len;
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (b.oom)
        return -ENOMEM;
    return rc == CURLE_OK ? 0 : -EIO;
}

int s3env_request(const struct s3env *env, const char *endpoint, const char *method,
                  const char *key, const char *query, const char *range, const void *body,
                  size_t body_len, struct s3env_http *out)
{
    return s3env_do(env, endpoint, method, key, query, range, body, body_len, NULL, 0, out);
}

/* Map a finished setup request to 0 / -errno and free it. */
static int s3env_status_rc(int rc, struct s3env_http *r, const char *what, const char *key)
{
    if (rc == 0 && (r->status < 200 || r->status > 299)) {
        fprintf(stderr, "s3env: %s %s: HTTP %ld %s\n", what, key, r->status,
                r->body ? r->body : "");
        rc = r->status == 404 ? -ENOENT : r->status == 403 ? -EACCES : -EIO;
    } else if (rc < 0) {
        fprintf(stderr, "s3env: %s %s: %s\n", what, key, curl_easy_strerror(r->curl_rc));
    }
    s3env_http_free(r);
    return rc;
}

int s3env_put(const struct s3env *env, const char *key, const void *data, size_t len)
{
    struct s3env_http r;
    int rc = s3env_do(env, env->direct_endpoint, "PUT", key, NULL, NULL, data, len, NULL, 0, &r);

    return s3env_status_rc(rc, &r, "PUT", key);
}

int s3env_put_file(const struct s3env *env, const char *key, const char *path)
{
    struct s3env_http r;
    struct stat st;
    FILE *f = fopen(path, "rbe");
    int rc;

    if (f == NULL)
        return -errno;
    if (fstat(fileno(f), &st) < 0) {
        rc = -errno;
        fclose(f);
        return rc;
    }
    rc = s3env_do(env, env->direct_endpoint, "PUT", key, NULL, NULL, NULL, 0, f,
                  (curl_off_t)st.st_size, &r);
    fclose(f);
    return s3env_status_rc(rc, &r, "PUT", key);
}

int s3env_delete(const struct s3env *env, const char *key)
{
    struct s3env_http r;
    int rc = s3env_do(env, env->direct_endpoint, "DELETE", key, NULL, NULL, NULL, 0, NULL, 0, &r);

    return s3env_status_rc(rc, &r, "DELETE", key);
}
