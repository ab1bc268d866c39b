/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_xml_error.c: os3_xml_parse_error() on arbitrary bodies, with roomy and with tiny
 * output buffers: outputs are always terminated within their capacity, "" on failure.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "objstore/objstore_i.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one(const uint8_t *data, size_t size, size_t code_cap, size_t msg_cap)
{
    /* Exactly-sized heap buffers, so ASan sees a write one past the capacity. */
    char *code = malloc(code_cap ? code_cap : 1), *msg = malloc(msg_cap ? msg_cap : 1);
    FUZZ_CHECK(code && msg);
    memset(code, 'X', code_cap ? code_cap : 1);
    memset(msg, 'X', msg_cap ? msg_cap : 1);
    int rc = os3_xml_parse_error((const char *)data, size, code, code_cap, msg, msg_cap);
    FUZZ_CHECK(rc == 0 || rc == -EIO);
    if (code_cap) {
        FUZZ_CHECK(memchr(code, '\0', code_cap) != NULL);
        if (rc != 0)
            FUZZ_CHECK(code[0] == '\0');
    }
    if (msg_cap) {
        FUZZ_CHECK(memchr(msg, '\0', msg_cap) != NULL);
        if (rc != 0)
            FUZZ_CHECK(msg[0] == '\0');
    }
    free(code);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    fuzz_one(data, size, 64, 256);
    fuzz_one(data, size, 1, 3);
    fuzz_one(data, size, 0, 0);
    return 0;
}
