/* SPDX-License-Identifier: Apache-2.0 */
/* opts_fleet.c: validation of the fleet tier's options (-o fleet, fleet_secret, ...). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fs/fs_i.h"
#include "hybridcache/fleet.h"

/* The key of fleet_secret=FILE: its bytes, one trailing newline dropped, at least 16.
 * @return 0 or -EINVAL (one line printed). */
static int fs_read_fleet_key(struct fs_conf *conf)
{
    FILE *fp = fopen(conf->fleet_secret, "rb");
    uint8_t buf[4097];
    size_t n;

    if (!fp)
        return fs_opts_bad("fleet_secret", conf->fleet_secret, "a readable file holding the key");
    n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    if (n < 16 || n > 4096) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return fs_opts_bad("fleet_secret", conf->fleet_secret, "a file of 16 to 4096 bytes of key");
    }
    conf->fleet_key = malloc(n);
    if (!conf->fleet_key)
        return -ENOMEM;
    memcpy(conf->fleet_key, buf, n);
    conf->fleet_key_len = n;
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* The fleet tier's options. @return 0 or -EINVAL (one line printed). */
int fs_opts_parse_fleet(struct fs_conf *conf)
{
    struct hc_fleet_backend *be = NULL;
    const char *dur = "a duration like 50ms or 2s";
    int rc;

    conf->fleet_timeout_ms = 50;
    conf->fleet_lease_ms = 2000;
    conf->fleet_retry_ms = 2000;
    conf->fleet_piece_size = HC_FLEET_PIECE_DEFAULT;
    /* references to cache entries, not copies (docs/fleet.md: why 128M, not 32M) */
    conf->fleet_store_queue = CMN_MIN(128ull << 20, conf->mem_cache_size / 4);
    if ((rc = fs_opts_duration("fleet_timeout", conf->fleet_timeout_s, 1, 60000, dur,
                               &conf->fleet_timeout_ms)) != 0 ||
        (rc = fs_opts_duration("fleet_lease", conf->fleet_lease_s, 10, 600000, dur,
                               &conf->fleet_lease_ms)) != 0 ||
        (rc = fs_opts_duration("fleet_retry", conf->fleet_retry_s, 1000, 3600000,
                               "a duration from 1s, like 2s", &conf->fleet_retry_ms)) != 0 ||
        (rc = fs_opts_size("fleet_store_queue", conf->fleet_store_queue_s, 0, 1ull << 30,
                           "a size up to 1G, like 32M (0: never store)",
                           &conf->fleet_store_queue)) != 0)
        return rc;
    if (conf->fleet_piece_size_s) {
        uint64_t v;
        if (cmn_parse_size(conf->fleet_piece_size_s, &v) != 0 || v < HC_FLEET_PIECE_MIN ||
            v > HC_FLEET_PIECE_MAX - 4096)
            return fs_opts_bad("fleet_piece_size", conf->fleet_piece_size_s,
                               "a size from 16K to 1020K (under memcached's item limit)");
        conf->fleet_piece_size = (uint32_t)v;
    }
    if (!conf->fleet) {
        if (conf->fleet_secret)
            return fs_opts_bad("fleet_secret", conf->fleet_secret, "fleet=SERVERS with it");
        return 0;
    }
    conf->fleet_servers = conf->fleet;
    if (strncmp(conf->fleet, "memcached://", 12) == 0)
        conf->fleet_servers = conf->fleet + 12;
    else if (strstr(conf->fleet, "://"))
        return fs_opts_bad("fleet", conf->fleet, "memcached://HOST[:PORT]+HOST[:PORT]... or @FILE");
    /* the same parse as the mount's, which names what is wrong in one line */
    if (hc_fleet_memcached_create(conf->fleet_servers, 50, 2, &be) != 0)
        return -EINVAL;
    hc_fleet_backend_destroy(be);
    if (conf->fleet_secret && (rc = fs_read_fleet_key(conf)) != 0)
        return rc;
    return 0;
}
