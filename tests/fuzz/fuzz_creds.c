/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_creds.c: the parsers of what remote parties send tierfs for credentials and
 * uploads, on arbitrary bytes: STS replies and errors (os3_xml_parse_sts, _sts_error),
 * CreateMultipartUpload and CompleteMultipartUpload answers (os3_xml_parse_mpu_*), a
 * credential_process command line (os3_split_cmdline) and a number in its JSON
 * (os3_json_get_int). Outputs always end within their capacity; a failure leaves no
 * credentials behind.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "objstore/objstore_i.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_sts(const char *body, size_t len)
{
    static const char *const actions[] = {"AssumeRole", "AssumeRoleWithWebIdentity"};
    for (size_t i = 0; i < 2; i++) {
        struct objstore_credentials cr;
        memset(&cr, 'X', sizeof(cr));
        int rc = os3_xml_parse_sts(body, len, actions[i], &cr);
        FUZZ_CHECK(rc == 0 || rc == -EIO);
        if (rc == 0) {
            FUZZ_CHECK(memchr(cr.access_key, '\0', sizeof(cr.access_key)) && cr.access_key[0]);
            FUZZ_CHECK(memchr(cr.secret_key, '\0', sizeof(cr.secret_key)) && cr.secret_key[0]);
            FUZZ_CHECK(memchr(cr.session_token, '\0', sizeof(cr.session_token)));
        } else {
            FUZZ_CHECK(cr.access_key[0] == '\0' && cr.secret_key[0] == '\0');
        }
    }
}

static void fuzz_small_outputs(const char *body, size_t len)
{
    static const size_t caps[] = {1, 3, 64, 512};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        size_t cap = caps[i];
        char *a = malloc(cap), *b = malloc(cap), *c = malloc(cap);
        FUZZ_CHECK(a && b && c);
        int rc = os3_xml_parse_sts_error(body, len, a, cap, b, cap);
        FUZZ_CHECK((rc == 0 || rc == -EIO) && memchr(a, '\0', cap) && memchr(b, '\0', cap));
        rc = os3_xml_parse_mpu_create(body, len, a, cap);
        FUZZ_CHECK((rc == 0 || rc == -EIO) && memchr(a, '\0', cap) && (rc || a[0]));
        rc = os3_xml_parse_mpu_complete(body, len, a, cap, b, cap, c, cap);
        FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EAGAIN);
        FUZZ_CHECK(memchr(b, '\0', cap) && memchr(c, '\0', cap));
        if (rc == 0)
            FUZZ_CHECK(memchr(a, '\0', cap) && a[0] == '"');
        free(a);
        free(b);
        free(c);
    }
}

static void fuzz_text(const char *text, size_t len)
{
    char buf[256], *argv[9];
    int n = os3_split_cmdline(text, buf, sizeof(buf), argv, 9);
    FUZZ_CHECK(n == -EINVAL || (n >= 1 && n <= 8));
    if (n > 0) {
        FUZZ_CHECK(argv[n] == NULL);
        for (int i = 0; i < n; i++)
            FUZZ_CHECK(argv[i] >= buf && argv[i] < buf + sizeof(buf) &&
                       memchr(argv[i], '\0', (size_t)(buf + sizeof(buf) - argv[i])));
    }
    long long v;
    int rc = os3_json_get_int(text, "Version", &v);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
    (void)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    fuzz_sts((const char *)data, size);
    fuzz_small_outputs((const char *)data, size);
    char *text = malloc(size + 1); /* the text parsers take C strings */
    FUZZ_CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_text(text, size);
    free(text);
    return 0;
}
