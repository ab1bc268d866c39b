/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore_mpu.c: multipart uploads and deletes of the S3 backend (issue #20's
 * foundation) against radosgw through the shaping proxy: parts sent out of order and
 * completed, the object's bytes and its multipart ETag (the MD5 of the parts' MD5s),
 * an aborted upload that cannot be completed afterwards, DeleteObject, parts retried
 * through injected 503s and resets with the object still exact, and bad requests refused
 * before they reach the network. Every PUT and part carries Content-MD5.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/util.h"
#include "objstore/objstore.h"
#include "tests/integration/s3env.h"

static struct s3env env;

static struct objstore *store_new(void)
{
    struct objstore_creds *creds;
    assert_int_equal(objstore_creds_static(env.access_key, env.secret_key, NULL, &creds), 0);
    struct objstore_s3_conf conf = {.bucket = env.bucket,
                                    .endpoint = env.endpoint,
                                    .region = env.region,
                                    .path_style = true,
                                    .creds = creds,
                                    .connect_timeout_ms = 1000,
                                    .max_connections = 16};
    struct objstore *os;
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    struct objstore_retry_conf rc = {.max_attempts = 5, .base_delay_ms = 10, .max_delay_ms = 100};
    assert_int_equal(objstore_retry_create(os, &rc, &os), 0);
    return os;
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(cmn_rand64(&s) >> 56);
    return p;
}

/* The ETag S3 gives a multipart object: hex MD5 of the parts' binary MD5s, "-N". */
static void mpu_etag(const unsigned char *data, const size_t *sizes, unsigned n, char *out)
{
    unsigned char cat[16 * 16], md[16];
    unsigned len;
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_true(EVP_Digest(data + off, sizes[i], cat + 16 * i, &len, EVP_md5(), NULL));
        off += sizes[i];
    }
    assert_true(EVP_Digest(cat, 16 * n, md, &len, EVP_md5(), NULL));
    char *o = out;
    *o++ = '"';
    for (int i = 0; i < 16; i++)
        o += sprintf(o, "%02x", md[i]);
    sprintf(o, "-%u\"", n);
}

/* Upload @data (@n parts of @sizes) to @key, parts sent last first. */
static void upload(struct objstore *os, const char *key, const unsigned char *data,
                   const size_t *sizes, unsigned n, struct objstore_object_info *info)
{
    char uid[OBJSTORE_UPLOAD_ID_MAX], err[OBJSTORE_ERRMSG_MAX];
    struct objstore_part parts[8];
    size_t offs[8], off = 0;

    for (unsigned i = 0; i < n; i++)
        offs[i] = off, off += sizes[i];
    assert_int_equal(objstore_mpu_create(os, key, uid, sizeof(uid), err, sizeof(err)), 0);
    assert_true(strlen(uid) > 0);
    for (unsigned k = n; k-- > 0;) { /* out of order: S3 orders them by number */
        parts[k].number = k + 1;
        int rc = objstore_mpu_part(os, key, uid, k + 1, data + offs[k], sizes[k], parts[k].etag,
                                   err, sizeof(err));
        if (rc)
            fail_msg("part %u: %s", k + 1, err);
        assert_int_equal(parts[k].etag[0], '"');
    }
    int rc = objstore_mpu_complete(os, key, uid, parts, n, info, err, sizeof(err));
    if (rc)
        fail_msg("complete: %s", err);
}

static void check_object(struct objstore *os, const char *key, const unsigned char *data,
                         size_t size, const char *etag)
{
    struct objstore_object_info info;
    char err[OBJSTORE_ERRMSG_MAX];
    unsigned char *buf = malloc(size);

    assert_int_equal(objstore_head(os, key, &info, err, sizeof(err)), 0);
    assert_int_equal(info.size, size);
    assert_string_equal(info.etag, etag);
    assert_int_equal(objstore_get(os, key, 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
                     (ssize_t)size);
    assert_memory_equal(buf, data, size);
    free(buf);
}

static void test_multipart(void **state)
{
    (void)state;
    struct objstore *os = store_new();
    const size_t sizes[3] = {5u << 20, 5u << 20, 1000003};
    const size_t size = sizes[0] + sizes[1] + sizes[2];
    unsigned char *data = pattern(size, 1);
    struct objstore_object_info info;
    char want[64];

    s3env_counters_reset(&env);
    upload(os, "mpu/three.bin", data, sizes, 3, &info);
    mpu_etag(data, sizes, 3, want);
    assert_string_equal(info.etag, want); /* what the caller can check after a lost reply */
    struct s3env_counters c;
    assert_int_equal(s3env_counters(&env, &c), 0);
    assert_int_equal(c.put, 3); /* the parts; create and complete are POSTs */
    check_object(os, "mpu/three.bin", data, size, want);

    /* one part is a valid upload too (a file of under a part, closed) */
    upload(os, "mpu/one.bin", data, &sizes[2], 1, &info);
    mpu_etag(data, &sizes[2], 1, want);
    check_object(os, "mpu/one.bin", data, sizes[2], want);
    objstore_destroy(os);
    free(data);
}

static void test_abort_and_delete(void **state)
{
    (void)state;
    struct objstore *os = store_new();
    char uid[OBJSTORE_UPLOAD_ID_MAX], err[OBJSTORE_ERRMSG_MAX];
    struct objstore_part part = {.number = 1};
    struct objstore_object_info info;
    unsigned char *data = pattern(1 << 20, 2);

    assert_int_equal(objstore_mpu_create(os, "mpu/aborted.bin", uid, sizeof(uid), err, sizeof(err)),
                     0);
    assert_int_equal(objstore_mpu_part(os, "mpu/aborted.bin", uid, 1, data, 1 << 20, part.etag, err,
                                       sizeof(err)),
                     0);
    assert_int_equal(objstore_delete(os, "mpu/aborted.bin", uid, err, sizeof(err)), 0);
    /* gone: it cannot be completed (AWS: NoSuchUpload; radosgw: an InternalError), and
     * no object appeared */
    assert_true(
        objstore_mpu_complete(os, "mpu/aborted.bin", uid, &part, 1, &info, err, sizeof(err)) < 0);
    assert_int_equal(objstore_head(os, "mpu/aborted.bin", &info, err, sizeof(err)), -ENOENT);

    /* DeleteObject */
    assert_int_equal(objstore_put(os, "mpu/deleted.bin", data, 1000, &info, err, sizeof(err)), 0);
    assert_int_equal(objstore_head(os, "mpu/deleted.bin", &info, err, sizeof(err)), 0);
    assert_int_equal(objstore_delete(os, "mpu/deleted.bin", NULL, err, sizeof(err)), 0);
    assert_int_equal(objstore_head(os, "mpu/deleted.bin", &info, err, sizeof(err)), -ENOENT);

    /* refused before the network: no upload id, part 0, no parts */
    assert_int_equal(objstore_mpu_part(os, "k", "", 1, data, 10, part.etag, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(objstore_mpu_part(os, "k", uid, 0, data, 10, part.etag, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(objstore_mpu_complete(os, "k", uid, &part, 0, &info, err, sizeof(err)),
                     -EINVAL);
    objstore_destroy(os);
    free(data);
}

/* Parts and the completion go through 503s and connection resets: retried, exact. */
static void test_faults_retried(void **state)
{
    (void)state;
    struct objstore *os = store_new();
    const size_t sizes[2] = {5u << 20, 3u << 20};
    unsigned char *data = pattern(sizes[0] + sizes[1], 3);
    struct objstore_object_info info;
    char want[64];

    assert_int_equal(s3env_proxy_config(&env, "{\"fault\":{\"kind\":\"503\",\"every_nth\":1,"
                                              "\"count\":2,\"match\":\"PUT\"}}"),
                     0);
    s3env_counters_reset(&env);
    upload(os, "mpu/faulty.bin", data, sizes, 2, &info);
    struct s3env_counters c;
    assert_int_equal(s3env_counters(&env, &c), 0);
    assert_int_equal(c.faults, 2);
    assert_int_equal(s3env_proxy_config(&env, "{\"fault\":{\"kind\":\"reset\",\"every_nth\":1,"
                                              "\"count\":2,\"match\":\"OTHER\"}}"),
                     0);
    upload(os, "mpu/faulty2.bin", data, sizes, 2, &info); /* POSTs reset twice */
    s3env_proxy_reset(&env);
    mpu_etag(data, sizes, 2, want);
    check_object(os, "mpu/faulty.bin", data, sizes[0] + sizes[1], want);
    check_object(os, "mpu/faulty2.bin", data, sizes[0] + sizes[1], want);
    objstore_destroy(os);
    free(data);
}

int main(void)
{
    if (s3env_load(&env) < 0) {
        fprintf(stderr, "SKIP: no test S3 server ($TIERFS_S3_ENV)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_abort_and_delete),
        cmocka_unit_test(test_faults_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
