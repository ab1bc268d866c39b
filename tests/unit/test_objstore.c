/* SPDX-License-Identifier: Apache-2.0 */
/* test_objstore.c: unit tests of objstore without a network or a store: ListObjectsV2 and error XML
 * parsing, the errno table, the backoff bounds, the S3 backend's argument checks. The layers over a
 * fake store: test_objstore_layers.c. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "objstore/objstore_i.h"

/* ================= XML ================= */
static const char list_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>false</IsTruncated>"
    "<Contents><Key>a.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>dir/b &amp; c</Key><LastModified>1970-01-01T00:00:01.000Z</LastModified>"
    "<ETag>\"x\"</ETag><Size>0</Size></Contents>"
    "</ListBucketResult>";

static void test_xml_list_normal(void **state)
{
    struct objstore_list_result r;
    assert_int_equal(os3_xml_parse_list(list_page, strlen(list_page), &r), 0);
    assert_int_equal(r.n_entries, 2);
    assert_int_equal(r.n_prefixes, 0);
    assert_false(r.truncated);
    assert_null(r.next_token);
    assert_string_equal(r.entries[0].key, "a.txt");
    assert_int_equal(r.entries[0].size, 434234);
    assert_string_equal(r.entries[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
    assert_int_equal(r.entries[0].mtime_sec, 1255369830);
    assert_string_equal(r.entries[1].key, "dir/b & c"); /* not url-encoded: kept as is */
    assert_int_equal(r.entries[1].size, 0);
    assert_int_equal(r.entries[1].mtime_sec, 1);
    objstore_list_result_free(&r);
    assert_null(r.entries);
}

static void test_xml_list_prefixes(void **state)
{
    static const char page[] =
        "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
        "<Delimiter>/</Delimiter>"
        "<Contents><Key>top%20file</Key><Size>5</Size></Contents>"
        "<CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>"
        "<CommonPrefixes><Prefix>a%2Bb%25/</Prefix></CommonPrefixes>"
        "</ListBucketResult>";
    struct objstore_list_result r;
    assert_int_equal(os3_xml_parse_list(page, strlen(page), &r), 0);
    assert_int_equal(r.n_entries, 1);
    assert_string_equal(r.entries[0].key, "top file");
    assert_int_equal(r.entries[0].mtime_sec, 0);
    assert_int_equal(r.n_prefixes, 2);
    assert_string_equal(r.prefixes[0], "photos/");
    assert_string_equal(r.prefixes[1], "a+b%/");
    objstore_list_result_free(&r);
}

static void test_xml_list_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "not xml at all",
        /* truncated mid-element, as after a connection reset */
        "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Si",
        "<Error><Code>x</Code></Error>",                                            /* wrong root */
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", /* no Key */
        "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>yesterday"
        "</LastModified></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
        /* a DTD with an entity: refused outright */
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY e \"boom\">]>"
        "<ListBucketResult><Contents><Key>&e;</Key><Size>1</Size></Contents></ListBucketResult>",
        /* an external entity must never be fetched */
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
        "<ListBucketResult><Contents><Key>&e;</Key><Size>1</Size></Contents></ListBucketResult>",
        /* bad percent-encoding in an url-encoded listing */
        "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key><Size>1</Size>"
        "</Contents></ListBucketResult>",
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(bad); i++) {
        struct objstore_list_result r;
        memset(&r, 0x5a, sizeof(r));
        assert_int_equal(os3_xml_parse_list(bad[i], strlen(bad[i]), &r), -EIO);
        assert_int_equal(r.n_entries, 0); /* left empty */
        assert_null(r.entries);
    }
    /* Every proper prefix of a valid page is a truncated body and must fail. */
    for (size_t n = 1; n < strlen(list_page) - 1; n += 7) {
        struct objstore_list_result r;
        assert_int_equal(os3_xml_parse_list(list_page, n, &r), -EIO);
    }
}

static void test_xml_list_generated_1000(void **state)
{
    size_t cap = 1 << 20, len = 0;
    char *xml = malloc(cap);
    assert_non_null(xml);
    len += (size_t)snprintf(xml + len, cap - len,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
                            "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                            "<Prefix>d%%2F</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys>"
                            "<IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
                            "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
                            "</NextContinuationToken>");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Contents><Key>d/k%%20%04d%%2B%%25%%3D%%26%%C3%%A9</Key>"
                                "<LastModified>2024-02-29T23:59:59.123Z</LastModified>"
                                "<ETag>&quot;%032d&quot;</ETag><Size>%d</Size></Contents>",
                                i, i, i * 1000);
    len += (size_t)snprintf(xml + len, cap - len, "</ListBucketResult>");
    assert_true(len < cap);

    struct objstore_list_result r;
    assert_int_equal(os3_xml_parse_list(xml, len, &r), 0);
    assert_int_equal(r.n_entries, 1000);
    assert_true(r.truncated);
    assert_string_equal(r.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    for (int i = 0; i < 1000; i++) {
        char want[64];
        snprintf(want, sizeof(want), "d/k %04d+%%=&\xc3\xa9", i);
        assert_string_equal(r.entries[i].key, want);
        assert_int_equal(r.entries[i].size, (uint64_t)i * 1000);
        assert_int_equal(r.entries[i].mtime_sec, 1709251199);
    }
    objstore_list_result_free(&r);
    free(xml);
}

static void test_xml_error(void **state)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey"
        "</Code><Message>The resource you requested does not exist</Message>"
        "<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9"
        "</RequestId></Error>";
    char code[64], msg[128];
    assert_int_equal(os3_xml_parse_error(body, strlen(body), code, sizeof(code), msg, sizeof(msg)),
                     0);
    assert_string_equal(code, "NoSuchKey");
    assert_string_equal(msg, "The resource you requested does not exist");
    /* Small buffers truncate, never overflow. */
    char c4[4];
    assert_int_equal(os3_xml_parse_error(body, strlen(body), c4, sizeof(c4), msg, sizeof(msg)), 0);
    assert_string_equal(c4, "NoS");
    static const char nomsg[] = "<Error><Code>SlowDown</Code></Error>";
    assert_int_equal(
        os3_xml_parse_error(nomsg, strlen(nomsg), code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "SlowDown");
    assert_string_equal(msg, "");
    assert_int_equal(
        os3_xml_parse_error("<Error><Code>x", 14, code, sizeof(code), msg, sizeof(msg)), -EIO);
    assert_string_equal(code, "");
    assert_int_equal(
        os3_xml_parse_error("<html>502</html>", 16, code, sizeof(code), msg, sizeof(msg)), -EIO);
}

/* ================= errno table ================= */
static void test_errmap_table(void **state)
{
    static const struct {
        int status;
        const char *code;
        int want;
    } cases[] = {
        {200, NULL, 0},
        {206, NULL, 0},
        {404, "NoSuchKey", -ENOENT},
        {404, "NoSuchBucket", -ENOENT},
        {404, NULL, -ENOENT}, /* HEAD: no body, no code */
        {403, "AccessDenied", -EACCES},
        {403, "SignatureDoesNotMatch", -EACCES},
        {403, "InvalidAccessKeyId", -EACCES},
        {403, NULL, -EACCES},
        {400, "ExpiredToken", -EACCES}, /* the code wins over the status */
        {412, "PreconditionFailed", -ESTALE},
        {412, NULL, -ESTALE},
        {416, "InvalidRange", -EINVAL},
        {416, NULL, -EINVAL},
        {400, "InvalidArgument", -EINVAL},
        {503, "SlowDown", -EIO},
        {500, "InternalError", -EIO},
        {502, NULL, -EIO},
        {504, "", -EIO},
        {409, "SomethingNew", -EIO},
        {301, "PermanentRedirect", -EIO},
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(cases); i++)
        assert_int_equal(objstore_map_error(cases[i].status, cases[i].code), cases[i].want);

    assert_int_equal(objstore_map_curl_error(0), 0);
    assert_int_equal(objstore_map_curl_error(7 /* COULDNT_CONNECT */), -ECONNREFUSED);
    assert_int_equal(objstore_map_curl_error(6 /* COULDNT_RESOLVE_HOST */), -EHOSTUNREACH);
    assert_int_equal(objstore_map_curl_error(28 /* OPERATION_TIMEDOUT */), -ETIMEDOUT);
    assert_int_equal(objstore_map_curl_error(56 /* RECV_ERROR */), -ECONNRESET);
    assert_int_equal(objstore_map_curl_error(52 /* GOT_NOTHING */), -ECONNRESET);
    assert_int_equal(objstore_map_curl_error(18 /* PARTIAL_FILE */), -EIO);
    assert_int_equal(objstore_map_curl_error(60 /* PEER_FAILED_VERIFICATION */), -EPROTO);

    /* The retry policy: 5xx, resets, timeouts and short bodies yes; 4xx and refusals no. */
    assert_true(objstore_is_retryable(-EIO, 503));
    assert_true(objstore_is_retryable(-EIO, 500));
    assert_true(objstore_is_retryable(-ECONNRESET, 0));
    assert_true(objstore_is_retryable(-ETIMEDOUT, 0));
    assert_true(objstore_is_retryable(-EIO, 206)); /* short body */
    assert_true(objstore_is_retryable(-EIO, 200));
    assert_false(objstore_is_retryable(0, 200));
    assert_false(objstore_is_retryable(-EACCES, 403));
    assert_false(objstore_is_retryable(-ENOENT, 404));
    assert_false(objstore_is_retryable(-ESTALE, 412));
    assert_false(objstore_is_retryable(-EIO, 429));
    assert_false(objstore_is_retryable(-ECONNREFUSED, 0));
    assert_false(objstore_is_retryable(-EHOSTUNREACH, 0));
    assert_false(objstore_is_retryable(-EPROTO, 0));

    assert_string_equal(objstore_strerror(-ENOENT), "no such key or bucket");
    assert_string_not_equal(objstore_strerror(-EACCES), objstore_strerror(-ESTALE));
    assert_non_null(objstore_strerror(-12345));
}

static void test_backoff_bounds(void **state)
{
    uint64_t rng = 42;
    for (unsigned retry = 0; retry < 8; retry++) {
        uint64_t cap = CMN_MIN(50ull << retry, 2000ull);
        uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
        for (int i = 0; i < 2000; i++) {
            uint64_t d = objstore_backoff_ms(retry, 50, 2000, &rng);
            assert_true(d <= cap);
            lo = CMN_MIN(lo, d);
            hi = CMN_MAX(hi, d);
            sum += d;
        }
        /* Full jitter: the whole [0, cap] range is used, the mean sits near cap/2. */
        assert_true(lo <= cap / 10);
        assert_true(hi >= cap - cap / 10);
        uint64_t mean = sum / 2000;
        assert_true(mean > cap * 4 / 10 && mean < cap * 6 / 10);
    }
    assert_true(objstore_backoff_ms(40, 50, 2000, &rng) <= 2000); /* no overflow for big retries */
}

static void test_s3_create_args(void **state)
{
    /* Configuration errors are caught at creation, before any request. */
    struct objstore *os = NULL;
    struct objstore_s3_conf conf = {.bucket = "b", .anonymous = true, .endpoint = "ftp://h"};
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.endpoint = "http://h:9000/some/path";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.endpoint = "not a url";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.endpoint = "http://h:9000/";
    conf.bucket = "";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.bucket = "a/b";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    assert_null(os);
    assert_int_equal(objstore_s3_create(NULL, &os), -EINVAL);

    /* Good ones: nothing is contacted until a request is sent. */
    conf.bucket = "b";
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    struct objstore_stats st;
    objstore_get_stats(os, &st);
    assert_int_equal(st.requests[OBJSTORE_OP_GET], 0);
    objstore_destroy(os);
    setenv("AWS_REGION", "eu-west-3", 1);
    conf.endpoint = NULL; /* https://b.s3.eu-west-3.amazonaws.com */
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    objstore_destroy(os);
    unsetenv("AWS_REGION");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_list_normal),    cmocka_unit_test(test_xml_list_prefixes),
        cmocka_unit_test(test_xml_list_malformed), cmocka_unit_test(test_xml_list_generated_1000),
        cmocka_unit_test(test_xml_error),          cmocka_unit_test(test_errmap_table),
        cmocka_unit_test(test_backoff_bounds),     cmocka_unit_test(test_s3_create_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
