/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tierfs_cache.c: tierfs-cache, offline inspection and maintenance of a tierfs disk cache.
 *
 * DESIGN
 * One subcommand per run (inspect, verify, clear, warm), each on one PATH: the file or block
 * device a daemon uses as disk_cache. The on-device format stays in hybridcache/disk.c;
 * this file only calls its offline API (hc_disk_inspect/verify/wipe, disk_i.h) and prints.
 * The tool never formats and never creates PATH. Before touching the device it takes the
 * advisory lock a running daemon holds (hc_disk_lock): inspect only warns when the lock
 * is taken (it reads), verify and clear refuse (a running daemon rewrites regions under
 * them). Exit status: 0 success, 1 verify found corruption, 2 any error or refusal.
 * The core is ctool_main(argc, argv, out, err) so tests run it in process
 * (-DTIERFS_CACHETOOL_NO_MAIN drops main()).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/hc_offline.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"

#define CTOOL_PROG "tierfs-cache"
#define CTOOL_ENGINE_DEFAULT "psync" /* one synchronous read at a time: no ring needed */
#define CTOOL_KEY_HEX_MAX 96u        /* bytes of an undecodable key shown in hex */

enum { CTOOL_EXIT_OK = 0, CTOOL_EXIT_CORRUPT = 1, CTOOL_EXIT_ERROR = 2 };

/* Options a subcommand accepts beyond --help, --engine and --no-direct-io. */
#define CTOOL_OPT_JSON 0x1u
#define CTOOL_OPT_FORCE 0x2u
#define CTOOL_OPT_VERBOSE 0x4u

struct ctool;

struct ctool_cmd {
    const char *name;
    const char *summary; /* one line for the command list */
    const char *help;    /* the body of `tierfs-cache NAME --help` */
    unsigned opts;       /* CTOOL_OPT_* */
    bool exclusive;      /* needs the device to itself (refuses when in use) */
    int (*run)(struct ctool *t);
    /* A command with its own arguments (warm): gets the whole command line instead. */
    int (*main)(int argc, char **argv, FILE *out, FILE *err);
};

/* tools/cache_warm.c */
int ctool_warm_main(int argc, char **argv, FILE *out, FILE *err);

struct ctool {
    const struct ctool_cmd *cmd;
    FILE *out, *err;
    const char *path;
    const char *engine;
    bool direct_io, json, force, verbose;
    struct dev *dev;
    bool in_use; /* a running daemon holds the lock (inspect goes on) */
    bool is_blockdev;
    char last_log[512]; /* the library's last warning or error, for our one line */
};

/* ---- output helpers ---- */

static void ctool_fail(struct ctool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctool_fail(struct ctool *t, const char *fmt, ...)
{
    va_list ap;
    fprintf(t->err, "%s: ", CTOOL_PROG);
    va_start(ap, fmt);
    vfprintf(t->err, fmt, ap);
    va_end(ap);
    fputc('\n', t->err);
}

/* The library's own words when it logged any (they name the cause), else strerror. */
static const char *ctool_cause(struct ctool *t, int rc)
{
    return t->last_log[0] ? t->last_log : strerror(-rc);
}

/* Keep the library's last warning or error for the one-line message; -v prints them all. */
static void ctool_log_sink(int level, const char *msg, void *arg)
{
    struct ctool *t = arg;
    if (level <= TLOG_WARNING)
        snprintf(t->last_log, sizeof(t->last_log), "%s", msg);
    if (t->verbose)
        fprintf(t->err, "%s: [%s] %s\n", CTOOL_PROG, level <= TLOG_ERR ? "error" : "log", msg);
}

/* Print @n bytes of @s, escaping what would break a line (control bytes, backslash). */
static void ctool_put_text(FILE *f, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
            fprintf(f, "\\x%02x", s[i]);
        else
            fputc(s[i], f);
    }
}

static void ctool_put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static uint64_t ctool_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Print a cache key readably. The filesystem's block key (fs/blockkey.c fs_blockkey_build) is
 * "bucket NUL key NUL etag NUL, block index (8 bytes LE), block size (4 bytes LE)", and a
 * piece key (fs_piecekey_build) has the piece index and then 4 more bytes, the piece size;
 * anything else is shown as text when printable, else in hex.
 */
static void ctool_put_key(FILE *f, const uint8_t *k, size_t n)
{
    const uint8_t *b_end = memchr(k, 0, n);
    const uint8_t *k_end = b_end ? memchr(b_end + 1, 0, n - (size_t)(b_end + 1 - k)) : NULL;
    const uint8_t *e_end = k_end ? memchr(k_end + 1, 0, n - (size_t)(k_end + 1 - k)) : NULL;

    size_t tail = e_end ? n - (size_t)(e_end + 1 - k) : 0;
    if (e_end && b_end > k && k_end > b_end + 1 && (tail == 12 || tail == 16)) {
        uint64_t blk = ctool_le(e_end + 1, 8), bs = ctool_le(e_end + 9, 4);
        uint64_t ps = tail == 16 ? ctool_le(e_end + 13, 4) : 0;
        char sz[32];
        fputs("s3://", f);
        ctool_put_text(f, k, (size_t)(b_end - k));
        fputc('/', f);
        ctool_put_text(f, b_end + 1, (size_t)(k_end - b_end - 1));
        fputs(" etag ", f);
        ctool_put_text(f, k_end + 1, (size_t)(e_end - k_end - 1));
        if (ps)
            fprintf(f, " piece %llu (object offset %llu, piece size %s)", (unsigned long long)blk,
                    (unsigned long long)(blk * ps), cmn_fmt_size(ps, sz, sizeof(sz)));
        else
            fprintf(f, " block %llu (object offset %llu, block size %s)", (unsigned long long)blk,
                    (unsigned long long)(blk * bs), cmn_fmt_size(bs, sz, sizeof(sz)));
        return;
    }
    bool text = n > 0;
    for (size_t i = 0; i < n && text; i++)
        text = k[i] >= 0x20 && k[i] < 0x7f;
    if (text) {
        fputs("key \"", f);
        ctool_put_text(f, k, n);
        fputc('"', f);
        return;
    }
    fputs("key 0x", f);
    for (size_t i = 0; i < n && i < CTOOL_KEY_HEX_MAX; i++)
        fprintf(f, "%02x", k[i]);
    if (n > CTOOL_KEY_HEX_MAX)
        fprintf(f, "... (%zu bytes)", n);
}

/*
 * The daemon's identity is "ENDPOINT BUCKET" (fs/blockkey.c fs_cache_identity); split it when it
 * has that shape. @return true and the two parts (pointers into @id, lengths).
 */
static bool ctool_split_identity(const char *id, size_t *ep_len, const char **bucket)
{
    const char *sp = strchr(id, ' ');
    if (!sp || sp == id || !sp[1] || strchr(sp + 1, ' '))
        return false;
    *ep_len = (size_t)(sp - id);
    *bucket = sp + 1;
    return true;
}

/* ---- opening PATH ---- */

/*
 * Check what PATH is before opening it, so a missing, empty or foreign PATH gets words.
 * @return 0 when it can be opened as a device, 1 when it is an empty file (*what says so),
 * or -errno after printing one line.
 */
static int ctool_stat(struct ctool *t, const char **what)
{
    struct stat st;

    if (stat(t->path, &st) != 0) {
        int rc = -errno;
        if (rc == -ENOENT)
            ctool_fail(t, "%s: does not exist", t->path);
        else
            ctool_fail(t, "%s: %s", t->path, strerror(-rc));
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        ctool_fail(t, "%s: is a directory, not a tierfs cache (give the cache file or device)",
                   t->path);
        return -EISDIR;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ctool_fail(t, "%s: neither a regular file nor a block device", t->path);
        return -EINVAL;
    }
    t->is_blockdev = S_ISBLK(st.st_mode);
    if (S_ISREG(st.st_mode) && st.st_size < IOENG_BUF_ALIGN) {
        *what = st.st_size == 0 ? "empty file (0 bytes)" : "file too small to be a tierfs cache";
        return 1;
    }
    return 0;
}

/* Open t->path (O_DIRECT unless told, falling back to buffered where the filesystem has
 * no O_DIRECT) and take or test the daemon's lock. @return 0 or -errno after one line. */
static int ctool_open(struct ctool *t)
{
    struct dev_conf dc = {.path = t->path, .direct_io = t->direct_io};
    int rc = dev_open(&dc, &t->dev);

    if (rc == -EINVAL && dc.direct_io) {
        t->last_log[0] = 0;
        dc.direct_io = false;
        rc = dev_open(&dc, &t->dev);
    }
    if (rc < 0) {
        ctool_fail(t, "%s", ctool_cause(t, rc));
        return rc;
    }
    rc = hc_disk_lock(t->dev, t->cmd->exclusive, 0);
    if (rc == -EBUSY && t->cmd->exclusive) {
        ctool_fail(t, "%s: in use by a running tierfs (it holds the cache lock); unmount it first",
                   t->path);
        return rc;
    }
    if (rc == -EBUSY) {
        t->in_use = true;
        fprintf(t->err,
                "%s: warning: %s is in use by a running tierfs; what it shows may be "
                "changing\n",
                CTOOL_PROG, t->path);
    } else if (rc < 0) {
        /* No lock to be had (e.g. a filesystem without flock): go on, but say so. */
        fprintf(t->err, "%s: warning: %s: cannot tell whether a tierfs uses it (%s)\n", CTOOL_PROG,
                t->path, strerror(-rc));
    }
    return 0;
}

/* One line for a device that holds no cache this build reads. */
static void ctool_not_cache(struct ctool *t, const struct hc_disk_info *in)
{
    if (in->kind == HC_DISK_KIND_VERSION)
        ctool_fail(t, "%s: tierfs cache of format version %u; this tierfs-cache reads version %u",
                   t->path, in->version, HC_DISK_FORMAT_VERSION);
    else if (in->kind == HC_DISK_KIND_LAYOUT)
        ctool_fail(t,
                   "%s: tierfs cache header describes %llu bytes but the %s has %llu "
                   "(truncated?)",
                   t->path, (unsigned long long)(in->data_off + in->capacity),
                   t->is_blockdev ? "device" : "file", (unsigned long long)in->device_size);
    else
        ctool_fail(t, "%s: not a tierfs cache: %s", t->path, hc_disk_kind_str(in->kind));
}

/* ---- inspect ---- */

static void ctool_inspect_json(struct ctool *t, const struct hc_disk_info *in)
{
    FILE *f = t->out;
    size_t ep_len;
    const char *bucket;

    fputs("{\"path\": ", f);
    ctool_put_json_str(f, t->path);
    fprintf(f,
            ", \"format\": \"tierfs-disk-cache\", \"version\": %u, \"device_size\": %llu,"
            " \"block_size\": %u, \"region_size\": %u, \"region_count\": %u,"
            " \"data_offset\": %llu, \"generation\": \"%016llx\", \"identity\": ",
            in->version, (unsigned long long)in->device_size, in->block_size, in->region_size,
            in->region_count, (unsigned long long)in->data_off, (unsigned long long)in->generation);
    ctool_put_json_str(f, in->identity);
    fprintf(f, ", \"identity_truncated\": %s",
            in->identity_len > HC_DISK_IDENTITY_MAX ? "true" : "false");
    if (ctool_split_identity(in->identity, &ep_len, &bucket)) {
        char ep[HC_DISK_IDENTITY_MAX + 1];
        snprintf(ep, sizeof(ep), "%.*s", (int)ep_len, in->identity);
        fputs(", \"endpoint\": ", f);
        ctool_put_json_str(f, ep);
        fputs(", \"bucket\": ", f);
        ctool_put_json_str(f, bucket);
    }
    fprintf(f,
            ", \"regions_used\": %u, \"regions_free\": %u, \"entries\": %llu,"
            " \"bytes_used\": %llu, \"capacity\": %llu, \"in_use\": %s}\n",
            in->regions_used, in->regions_free, (unsigned long long)in->entries,
            (unsigned long long)in->used_bytes, (unsigned long long)in->capacity,
            t->in_use ? "true" : "false");
}

static void ctool_inspect_text(struct ctool *t, const struct hc_disk_info *in)
{
    FILE *f = t->out;
    char a[32], b[32];
    size_t ep_len;
    const char *bucket;

    fprintf(f, "path:         %s (%s, %s)\n", t->path, t->is_blockdev ? "block device" : "file",
            cmn_fmt_size(in->device_size, a, sizeof(a)));
    fprintf(f, "format:       tierfs disk cache, version %u\n", in->version);
    fprintf(f, "block size:   %s (%u bytes)\n", cmn_fmt_size(in->block_size, a, sizeof(a)),
            in->block_size);
    fprintf(f, "region size:  %s (%u bytes), %u regions from offset %llu\n",
            cmn_fmt_size(in->region_size, a, sizeof(a)), in->region_size, in->region_count,
            (unsigned long long)in->data_off);
    fprintf(f, "identity:     ");
    ctool_put_text(f, (const uint8_t *)in->identity, strlen(in->identity));
    if (in->identity_len > HC_DISK_IDENTITY_MAX)
        fprintf(f, "... (%u bytes, truncated)", in->identity_len);
    fputc('\n', f);
    if (ctool_split_identity(in->identity, &ep_len, &bucket)) {
        fprintf(f, "bucket:       ");
        ctool_put_text(f, (const uint8_t *)bucket, strlen(bucket));
        fprintf(f, "\nendpoint:     ");
        ctool_put_text(f, (const uint8_t *)in->identity, ep_len);
        fputc('\n', f);
    }
    fprintf(f, "generation:   %016llx\n", (unsigned long long)in->generation);
    fprintf(f, "regions:      %u used, %u free\n", in->regions_used, in->regions_free);
    fprintf(f, "entries:      %llu\n", (unsigned long long)in->entries);
    fprintf(f, "bytes:        %s used of %s (%.1f%%)\n", cmn_fmt_size(in->used_bytes, a, sizeof(a)),
            cmn_fmt_size(in->capacity, b, sizeof(b)),
            in->capacity ? 100.0 * (double)in->used_bytes / (double)in->capacity : 0.0);
    fprintf(f, "in use:       %s\n", t->in_use ? "yes, by a running tierfs" : "no");
}

static int ctool_inspect(struct ctool *t)
{
    struct hc_disk_info in;
    int rc = hc_disk_inspect(t->dev, t->engine, &in);

    if (rc < 0) {
        ctool_fail(t, "%s: cannot read: %s", t->path, ctool_cause(t, rc));
        return CTOOL_EXIT_ERROR;
    }
    if (in.kind != HC_DISK_KIND_CACHE) {
        ctool_not_cache(t, &in);
        return CTOOL_EXIT_ERROR;
    }
    if (t->json)
        ctool_inspect_json(t, &in);
    else
        ctool_inspect_text(t, &in);
    return CTOOL_EXIT_OK;
}

/* ---- verify ---- */

static void ctool_verify_entry(const struct hc_disk_ventry *e, void *arg)
{
    struct ctool *t = arg;
    FILE *f = t->out;

    if (e->status == 0 && !t->verbose)
        return;
    fprintf(f, "%s: region %u offset %u (device offset %llu, %u bytes)",
            e->status == 0          ? "ok"
            : e->status == -EBADMSG ? "corrupt"
                                    : "unreadable",
            e->region, e->offset, (unsigned long long)e->dev_off, e->size);
    if (e->why)
        fprintf(f, ": %s%s%s", e->why, e->status != -EBADMSG ? ": " : "",
                e->status != -EBADMSG ? strerror(-e->status) : "");
    if (e->key) {
        fputs(": ", f);
        ctool_put_key(f, e->key, e->klen);
        fprintf(f, ", %u value bytes%s", e->value_len, e->compressed ? " (lz4)" : "");
    } else {
        fputs(": key unknown", f);
    }
    fputc('\n', f);
}

static int ctool_verify(struct ctool *t)
{
    struct hc_disk_verify_stats st;
    struct hc_disk_info in;
    char sz[32];
    int rc = hc_disk_verify(t->dev, t->engine, ctool_verify_entry, t, &in, &st);

    if (rc == -EMEDIUMTYPE) {
        ctool_not_cache(t, &in);
        return CTOOL_EXIT_ERROR;
    }
    if (rc < 0) {
        ctool_fail(t, "%s: verify stopped: %s", t->path, ctool_cause(t, rc));
        return CTOOL_EXIT_ERROR;
    }
    fprintf(t->out, "%s: %llu entries (%s): %llu ok, %llu corrupt, %llu unreadable\n", t->path,
            (unsigned long long)st.entries, cmn_fmt_size(st.bytes, sz, sizeof(sz)),
            (unsigned long long)st.ok, (unsigned long long)st.corrupt,
            (unsigned long long)st.read_errors);
    if (st.corrupt)
        return CTOOL_EXIT_CORRUPT;
    return st.read_errors ? CTOOL_EXIT_ERROR : CTOOL_EXIT_OK;
}

/* ---- clear ---- */

static int ctool_clear(struct ctool *t)
{
    struct hc_disk_info in;
    char sz[32];
    int rc = hc_disk_wipe(t->dev, t->engine, t->force, &in);

    if (rc == -EMEDIUMTYPE) {
        ctool_fail(t, "%s: not a tierfs cache: %s; refusing to clear it without --force", t->path,
                   hc_disk_kind_str(in.kind));
        return CTOOL_EXIT_ERROR;
    }
    if (rc < 0) {
        ctool_fail(t, "%s: cannot clear: %s", t->path, ctool_cause(t, rc));
        return CTOOL_EXIT_ERROR;
    }
    if (in.kind == HC_DISK_KIND_CACHE)
        fprintf(t->out, "%s: cleared (%llu entries, %s dropped); the next mount starts empty\n",
                t->path, (unsigned long long)in.entries,
                cmn_fmt_size(in.used_bytes, sz, sizeof(sz)));
    else if (in.kind == HC_DISK_KIND_EMPTY)
        fprintf(t->out, "%s: already empty\n", t->path);
    else
        fprintf(t->out, "%s: header zeroed (it held: %s); the next mount formats it\n", t->path,
                hc_disk_kind_str(in.kind));
    return CTOOL_EXIT_OK;
}

/* clear on a file too small for a header: it is empty already, or (--force) made so. */
static int ctool_clear_small(struct ctool *t, const char *what)
{
    struct stat st;

    if (stat(t->path, &st) == 0 && st.st_size == 0) {
        fprintf(t->out, "%s: already empty\n", t->path);
        return CTOOL_EXIT_OK;
    }
    if (!t->force) {
        ctool_fail(t, "%s: not a tierfs cache: %s; refusing to clear it without --force", t->path,
                   what);
        return CTOOL_EXIT_ERROR;
    }
    if (truncate(t->path, 0) != 0) {
        ctool_fail(t, "%s: cannot truncate: %s", t->path, strerror(errno));
        return CTOOL_EXIT_ERROR;
    }
    fprintf(t->out, "%s: truncated to 0 bytes (it held: %s); the next mount sizes it\n", t->path,
            what);
    return CTOOL_EXIT_OK;
}

/* ---- the subcommand table ---- */

#define CTOOL_COMMON_HELP                                                                          \
    "  --engine NAME    IO engine: psync (default) or uring\n"                                     \
    "  --no-direct-io   read through the page cache (default: O_DIRECT where the filesystem "      \
    "has it)\n"                                                                                    \
    "  -h, --help       this help\n"

static const struct ctool_cmd ctool_cmds[] = {
    {"inspect", "show what a cache holds (format, identity, entries, bytes)",
     "Usage: " CTOOL_PROG " inspect [OPTIONS] PATH\n"
     "Show the format, block and region size, cache identity (endpoint and bucket), used and\n"
     "free regions, entries and bytes of the tierfs disk cache at PATH, without mounting.\n"
     "Refuses (exit 2) when PATH is missing, empty or not a tierfs cache; warns when a\n"
     "running tierfs uses it.\n"
     "  --json           one JSON object instead of text\n" CTOOL_COMMON_HELP,
     CTOOL_OPT_JSON, false, ctool_inspect, NULL},
    {"verify", "read every entry and check its checksums",
     "Usage: " CTOOL_PROG " verify [OPTIONS] PATH\n"
     "Read every live entry of the cache at PATH, check its header and data checksums and\n"
     "list the corrupt ones (region, offset, key). Exit 0 when all are good, 1 when some are\n"
     "corrupt, 2 on errors. Refuses a cache a running tierfs uses.\n"
     "  -v, --verbose    list every entry, and the library's log lines\n" CTOOL_COMMON_HELP,
     CTOOL_OPT_VERBOSE, true, ctool_verify, NULL},
    {"clear", "empty the cache so the next mount starts empty",
     "Usage: " CTOOL_PROG " clear [OPTIONS] PATH\n"
     "Drop every entry of the cache at PATH (a new header generation; layout and identity\n"
     "stay), without asking. Refuses a PATH that is not a tierfs cache unless --force (then\n"
     "its header is zeroed and the next mount formats it), and a cache a running tierfs\n"
     "uses.\n"
     "  -f, --force      clear PATH even when it holds no tierfs cache\n" CTOOL_COMMON_HELP,
     CTOOL_OPT_FORCE, true, ctool_clear, NULL},
    {"warm", "fetch objects of a bucket into a cache before mounting", NULL, 0, true, NULL,
     ctool_warm_main},
};

static void ctool_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s COMMAND [OPTIONS] PATH\n"
            "Inspect, verify, clear or warm a tierfs disk cache (file or block device) offline.\n"
            "Commands:\n",
            CTOOL_PROG);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(ctool_cmds); i++)
        fprintf(f, "  %-8s %s\n", ctool_cmds[i].name, ctool_cmds[i].summary);
    fprintf(f,
            "Run '%s COMMAND --help' for its options. Exit status: 0 ok, 1 corruption "
            "found (verify), 2 error, 3 cache full (warm).\n",
            CTOOL_PROG);
}

static bool ctool_engine_known(const char *name)
{
    for (const char *const *n = ioeng_names(); *n; n++)
        if (strcmp(*n, name) == 0)
            return true;
    return false;
}

/*
 * Parse the options after the subcommand. @return 0 (run), 1 (help printed) or -EINVAL
 * after one line naming the bad argument.
 */
static int ctool_parse(struct ctool *t, int argc, char **argv)
{
    const char *name = t->cmd->name;
    unsigned ok = t->cmd->opts;

    bool opts_done = false; /* after "--" everything is PATH */

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || !a[1]) {
            if (t->path) {
                ctool_fail(t, "%s: unexpected argument '%s' (one PATH only)", name, a);
                return -EINVAL;
            }
            t->path = a;
        } else if (!strcmp(a, "--")) {
            opts_done = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(t->cmd->help, t->out);
            return 1;
        } else if ((ok & CTOOL_OPT_JSON) && !strcmp(a, "--json")) {
            t->json = true;
        } else if ((ok & CTOOL_OPT_FORCE) && (!strcmp(a, "-f") || !strcmp(a, "--force"))) {
            t->force = true;
        } else if ((ok & CTOOL_OPT_VERBOSE) && (!strcmp(a, "-v") || !strcmp(a, "--verbose"))) {
            t->verbose = true;
        } else if (!strcmp(a, "--no-direct-io")) {
            t->direct_io = false;
        } else if (!strcmp(a, "--engine") || !strncmp(a, "--engine=", 9)) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !*v) {
                ctool_fail(t, "%s: --engine needs a value (psync or uring)", name);
                return -EINVAL;
            }
            if (!ctool_engine_known(v)) {
                ctool_fail(t, "%s: --engine: unknown IO engine '%s' (psync or uring)", name, v);
                return -EINVAL;
            }
            t->engine = v;
        } else {
            ctool_fail(t, "%s: unknown option '%s' (see '%s %s --help')", name, a, CTOOL_PROG,
                       name);
            return -EINVAL;
        }
    }
    if (!t->path || !*t->path) {
        ctool_fail(t, "%s: missing PATH (the cache file or block device)", name);
        return -EINVAL;
    }
    return 0;
}

/*
 * Run one tierfs-cache command line, printing results to @out and messages to @err.
 * @return the exit status (0 ok, 1 corruption found, 2 error). Not thread safe: it
 * points the process-wide log sink at itself while it runs.
 */
int ctool_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct ctool t = {.out = out, .err = err, .engine = CTOOL_ENGINE_DEFAULT, .direct_io = true};
    const char *what = NULL;
    int saved_level = tlog_get_level();
    int ret = CTOOL_EXIT_ERROR, rc;

    if (argc < 2) {
        ctool_usage(err);
        return CTOOL_EXIT_ERROR;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        ctool_usage(out);
        return CTOOL_EXIT_OK;
    }
    for (size_t i = 0; i < CMN_ARRAY_SIZE(ctool_cmds); i++)
        if (!strcmp(argv[1], ctool_cmds[i].name))
            t.cmd = &ctool_cmds[i];
    if (!t.cmd) {
        ctool_fail(&t, "unknown command '%s' (inspect, verify, clear or warm; see '%s --help')",
                   argv[1], CTOOL_PROG);
        return CTOOL_EXIT_ERROR;
    }
    if (t.cmd->main)
        return t.cmd->main(argc, argv, out, err);
    rc = ctool_parse(&t, argc, argv);
    if (rc != 0)
        return rc > 0 ? CTOOL_EXIT_OK : CTOOL_EXIT_ERROR;

    tlog_set_sink(ctool_log_sink, &t);
    tlog_set_level(t.verbose ? TLOG_DEBUG : TLOG_WARNING);
    rc = ctool_stat(&t, &what);
    if (rc == 1) {
        if (t.cmd->run == ctool_clear)
            ret = ctool_clear_small(&t, what);
        else
            ctool_fail(&t, "%s: not a tierfs cache: %s", t.path, what);
    } else if (rc == 0 && ctool_open(&t) == 0) {
        ret = t.cmd->run(&t);
    }
    dev_close(t.dev); /* releases the lock */
    tlog_set_sink(NULL, NULL);
    tlog_set_level(saved_level);
    return ret;
}

#ifndef TIERFS_CACHETOOL_NO_MAIN
int main(int argc, char **argv)
{
    return ctool_main(argc, argv, stdout, stderr);
}
#endif
