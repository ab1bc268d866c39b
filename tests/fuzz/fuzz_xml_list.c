/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_xml_list.c: os3_xml_parse_list() on arbitrary bodies. Success must yield a result
 * whose counts match its arrays, whose keys are non-empty C strings, and whose
 * truncated flag agrees with next_token; failure must leave the result empty.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "objstore/objstore_i.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct objstore_list_result res;

    fuzz_quiet_logs();
    /* Garbage in the result must not matter: the parser owns its initialisation. */
    memset(&res, 0xa5, sizeof(res));
    int rc = os3_xml_parse_list((const char *)data, size, &res);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
    if (rc != 0) {
        FUZZ_CHECK(res.entries == NULL && res.n_entries == 0);
        FUZZ_CHECK(res.prefixes == NULL && res.n_prefixes == 0);
        FUZZ_CHECK(res.next_token == NULL);
        objstore_list_result_free(&res); /* freeing an empty result is fine too */
        return 0;
    }
    /* One array slot per <Contents>, each one parsed or the whole page fails. */
    FUZZ_CHECK((res.n_entries == 0) == (res.entries == NULL));
    FUZZ_CHECK(res.n_prefixes == 0 || res.prefixes != NULL);
    FUZZ_CHECK(res.n_entries <= size && res.n_prefixes <= size);
    for (size_t i = 0; i < res.n_entries; i++) {
        const struct objstore_entry *e = &res.entries[i];
        FUZZ_CHECK(e->key != NULL);
        FUZZ_CHECK(e->key[0] != '\0');
        FUZZ_CHECK(strlen(e->key) <= size);
        FUZZ_CHECK(memchr(e->etag, '\0', sizeof(e->etag)) != NULL);
    }
    for (size_t i = 0; i < res.n_prefixes; i++) {
        FUZZ_CHECK(res.prefixes[i] != NULL);
        FUZZ_CHECK(strlen(res.prefixes[i]) <= size);
    }
    if (res.truncated)
        FUZZ_CHECK(res.next_token != NULL && res.next_token[0] != '\0');
    else
        FUZZ_CHECK(res.next_token == NULL);
    objstore_list_result_free(&res);
    FUZZ_CHECK(res.entries == NULL && res.prefixes == NULL && res.next_token == NULL);
    return 0;
}
