/* SPDX-License-Identifier: Apache-2.0 */
/* cacheconf.c: the mount options mapped to the hybrid cache configuration, in one place. */
#include <string.h>
#include <sys/stat.h>

#include "fs/fsutil.h"
#include "hybridcache/hybridcache.h"

void fs_cache_conf(const struct fs_conf *c, const char *identity, struct hc_conf *out)
{
    struct stat st;
    uint64_t disk_size = c->disk_cache_size;

    /* A new (or empty) file needs a size; an existing file or device brings its own. */
    if (c->disk_cache && !disk_size &&
        (stat(c->disk_cache, &st) != 0 || (S_ISREG(st.st_mode) && st.st_size == 0)))
        disk_size = FS_DEFAULT_DISK_CACHE;
    memset(out, 0, sizeof(*out));
    out->block_size = c->block_size;
    out->mem_capacity = c->mem_cache_size;
    out->mem_policy = c->eviction;
    out->disk_path = c->disk_cache;
    out->disk_capacity = disk_size;
    out->direct_io = c->direct_io;
    out->io_engine = c->io_engine;
    out->compression = c->compress;
    out->identity = identity;
    out->refuse_unknown = !c->disk_cache_overwrite;
}
