/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_uri.c: os3_uri_encode() / os3_uri_decode().
 *   - encode then decode gives the input back (the input is a C string: the bytes up to
 *     the first NUL), with and without keep_slash;
 *   - encoded output holds only unreserved characters, "%XX" with upper-case hex, and '/'
 *     when kept;
 *   - decoding arbitrary bytes never crashes: NULL with errno EINVAL (bad escape or %00),
 *     or a string no longer than the input that survives its own round trip.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "objstore/objstore_i.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fuzz_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static bool fuzz_upper_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void fuzz_round_trip(const char *s, bool keep_slash)
{
    size_t len = strlen(s);
    char *enc = os3_uri_encode(s, keep_slash);
    FUZZ_CHECK(enc != NULL);
    size_t elen = strlen(enc);
    FUZZ_CHECK(elen >= len && elen <= 3 * len);
    for (size_t i = 0; i < elen; i++) {
        unsigned char c = (unsigned char)enc[i];
        if (c == '%') {
            FUZZ_CHECK(i + 2 < elen && fuzz_upper_hex((unsigned char)enc[i + 1]) &&
                       fuzz_upper_hex((unsigned char)enc[i + 2]));
            /* Only what must be escaped is escaped. */
            unsigned v = (unsigned)strtoul((char[]){enc[i + 1], enc[i + 2], 0}, NULL, 16);
            FUZZ_CHECK(!fuzz_unreserved((unsigned char)v) && !(keep_slash && v == '/') && v != 0);
            i += 2;
        } else {
            FUZZ_CHECK(fuzz_unreserved(c) || (keep_slash && c == '/'));
        }
    }
    char *dec = os3_uri_decode(enc);
    FUZZ_CHECK(dec != NULL);
    FUZZ_CHECK(strcmp(dec, s) == 0);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0'; /* the string is the bytes before the first NUL */

    fuzz_round_trip(s, false);
    fuzz_round_trip(s, true);

    errno = 0;
    char *dec = os3_uri_decode(s);
    if (!dec) {
        FUZZ_CHECK(errno == EINVAL || errno == ENOMEM);
        /* Only a '%' can make decoding fail. */
        FUZZ_CHECK(strchr(s, '%') != NULL || errno == ENOMEM);
    } else {
        FUZZ_CHECK(strlen(dec) <= strlen(s));
        if (!strchr(s, '%'))
            FUZZ_CHECK(strcmp(dec, s) == 0);
        fuzz_round_trip(dec, false);
        /* Canonical input (what encode produces) decodes and re-encodes to itself. */
        char *enc = os3_uri_encode(dec, false);
        FUZZ_CHECK(enc != NULL);
        char *dec2 = os3_uri_decode(enc);
        FUZZ_CHECK(dec2 && strcmp(dec2, dec) == 0);
        free(dec2);
        free(enc);
        free(dec);
    }
    free(s);
    return 0;
}
