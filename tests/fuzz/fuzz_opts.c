/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_opts.c: the daemon's option parsing (fs_opts_parse + fs_opts_validate from
 * fs/opts.c), which runs before anything is mounted.
 *
 * Input: lines. Line 0 is SOURCE (BUCKET[:/PREFIX] or s3://...); every further line is
 * one more argument: as is when it starts with '-', else "-o LINE" (so commas, escapes
 * and "name=value" are fuzzed inside one -o). The mountpoint is fixed.
 * Checks: no crash or leak; validation either fails or leaves a conf whose typed fields
 * are all in range (the ranges fs_opts_validate promises and the rest of the daemon
 * relies on); everything is freed by fs_opts_free + fuse_opt_free_args.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_i.h"
#include "hybridcache/hybridcache.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_ARGS 64

static bool fuzz_starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void fuzz_check_conf(const struct fs_conf *c)
{
    static const char *const engines[] = {"uring", "psync"};

    FUZZ_CHECK(c->bucket && c->prefix);
    size_t blen = strlen(c->bucket), plen = strlen(c->prefix);
    FUZZ_CHECK(blen >= 1 && blen <= 255 && !strchr(c->bucket, '/'));
    /* "" or "seg/.../seg/": no leading '/', no empty, "." or ".." segment */
    if (plen) {
        FUZZ_CHECK(c->prefix[0] != '/' && c->prefix[plen - 1] == '/');
        FUZZ_CHECK(!strstr(c->prefix, "//"));
        for (const char *s = c->prefix; *s;) {
            const char *e = strchr(s, '/');
            size_t n = (size_t)(e - s);
            FUZZ_CHECK(n > 0 && !(n == 1 && s[0] == '.') &&
                       !(n == 2 && s[0] == '.' && s[1] == '.'));
            s = e + 1;
        }
    }
    FUZZ_CHECK(c->block_size >= HC_BLOCK_SIZE_MIN && c->block_size <= HC_BLOCK_SIZE_MAX);
    FUZZ_CHECK((c->block_size & (c->block_size - 1)) == 0);
    FUZZ_CHECK(c->mem_cache_size >= 4ull * c->block_size);
    FUZZ_CHECK(c->disk_cache_size == 0 || c->disk_cache_size >= (16ull << 20));
    FUZZ_CHECK(!c->disk_cache || c->disk_cache[0]);
    FUZZ_CHECK(c->max_threads >= 1 && c->max_threads <= 1024);
    FUZZ_CHECK(c->max_connections <= 4096);
    FUZZ_CHECK(c->connect_timeout_ms >= 10 && c->connect_timeout_ms <= 600000);
    FUZZ_CHECK(c->read_timeout_ms >= 100 && c->read_timeout_ms <= 3600000);
    FUZZ_CHECK(c->retries <= 100);
    FUZZ_CHECK(c->metadata_ttl_ms <= 365ull * 24 * 3600 * 1000);
    FUZZ_CHECK(c->negative_ttl_ms <= 365ull * 24 * 3600 * 1000);
    FUZZ_CHECK(c->prefetch_window <= (1ull << 32) && c->read_ahead <= (1ull << 30));
    FUZZ_CHECK(c->file_mode <= 07777 && c->dir_mode <= 07777);
    FUZZ_CHECK(c->log_level >= 0 && c->log_level <= 7);
    FUZZ_CHECK(!!c->access_key == !!c->secret_key);
    FUZZ_CHECK(!(c->no_sign_request && c->access_key));
    FUZZ_CHECK(!c->endpoint || fuzz_starts(c->endpoint, "http://") ||
               fuzz_starts(c->endpoint, "https://"));
    if (c->io_engine)
        FUZZ_CHECK(strcmp(c->io_engine, engines[0]) == 0 || strcmp(c->io_engine, engines[1]) == 0);
    if (c->eviction) {
        bool found = false;
        for (const char *const *n = hc_policy_names(); *n; n++)
            found = found || strcmp(*n, c->eviction) == 0;
        FUZZ_CHECK(found);
    }
    FUZZ_CHECK(c->compress == (c->compression && strcmp(c->compression, "lz4") == 0));
    FUZZ_CHECK(c->source && c->mountpoint);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[FUZZ_MAX_ARGS + 1];
    int argc = 0;
    char *buf = malloc(size + 1);

    static bool quiet;
    if (!quiet && !getenv("FUZZ_VERBOSE")) {
        /* One line per bad option is the parser's job; it would drown libFuzzer's output.
         * Sanitizer reports and FUZZ_CHECK write to fd 2 and still show. */
        FILE *null = fopen("/dev/null", "w");
        if (null)
            stderr = null;
    }
    quiet = true;
    fuzz_quiet_logs();
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';

    argv[argc++] = "tierfs";
    char *save = NULL, *line = buf, *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    argv[argc++] = line; /* SOURCE, possibly "" or starting with '-' */
    argv[argc++] = "/mnt/fuzz";
    for (line = nl ? strtok_r(nl + 1, "\n", &save) : NULL; line && argc < FUZZ_MAX_ARGS - 1;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != '-')
            argv[argc++] = "-o";
        argv[argc++] = line;
    }
    argv[argc] = NULL;

    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fs_conf conf;
    memset(&conf, 0, sizeof(conf));
    int rc = fs_opts_parse(&args, &conf);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0 && !conf.show_help && !conf.show_version) {
        rc = fs_opts_validate(&conf);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
        if (rc == 0)
            fuzz_check_conf(&conf);
    }
    fs_opts_free(&conf);
    fuse_opt_free_args(&args);
    free(buf);
    return 0;
}
