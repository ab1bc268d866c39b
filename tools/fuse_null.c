// SPDX-License-Identifier: Apache-2.0
/*
 * fuse_null.c: tierfs-fuse-null, a do-nothing FUSE filesystem: the FUSE ceiling.
 *
 * DESIGN: one directory holding one read-only file of a given size whose every byte comes
 * from one static buffer, so a read costs only the kernel <-> daemon round trip. It runs
 * the same way the tierfs daemon does (low-level API, multithreaded loop with the same
 * default thread count, max_background, the mount's bdi read_ahead_kb raised after the
 * mount), so `tools/bench_peers.sh` can read it with the same workloads and report how
 * close tierfs comes to what FUSE on this machine can carry at all.
 *
 *   tierfs-fuse-null MOUNTPOINT [-f] [-o size=2G,name=file,read_ahead=1M,max_threads=16,
 *                                        direct_io=no]
 *
 * Unknown -o options go to libfuse (allow_other, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "common/util.h"

#define FN_ROOT_INO 1
#define FN_FILE_INO 2
#define FN_BUF_SIZE (1u << 20) /* larger replies repeat the buffer in an iovec */
#define FN_MAX_IOV 1024u       /* 1 GiB per reply: far above any kernel max_read */
#define FN_TTL 3600.0          /* nothing here ever changes */

/* Options as parsed; the *_s strings are validated into the fields after fuse_opt_parse. */
struct fn_conf {
    char *size_s;
    char *name;
    char *read_ahead_s;
    char *max_threads_s;
    char *direct_io_s;
    int show_help;
    int foreground;
    char *mountpoint;
    uint64_t size;
    uint64_t read_ahead;
    uint64_t max_threads;
    int direct_io;
};

enum { FN_KEY_HELP, FN_KEY_FOREGROUND };

#define FN_OPT(t, m)                                                                               \
    {                                                                                              \
        t, offsetof(struct fn_conf, m), 0                                                          \
    }
static const struct fuse_opt fn_opt_table[] = {
    FN_OPT("size=%s", size_s),
    FN_OPT("name=%s", name),
    FN_OPT("read_ahead=%s", read_ahead_s),
    FN_OPT("max_threads=%s", max_threads_s),
    FN_OPT("direct_io=%s", direct_io_s),
    FUSE_OPT_KEY("-h", FN_KEY_HELP),
    FUSE_OPT_KEY("--help", FN_KEY_HELP),
    FUSE_OPT_KEY("-f", FN_KEY_FOREGROUND),
    FUSE_OPT_END,
};

/* Read-only after main() fills it; the buffer every read reply points into. */
static struct fn_conf fn_conf;
static char fn_buf[FN_BUF_SIZE];
static time_t fn_mtime;
static char fn_mnt[PATH_MAX];
static pthread_once_t fn_ra_once = PTHREAD_ONCE_INIT;

static int fn_set_read_ahead(const char *mnt, uint64_t bytes);

/*
 * Raise the read-ahead once, on the first request after INIT. Not earlier: the kernel's
 * INIT handling sets the bdi's ra_pages to min(current, max_readahead it offered), and it
 * offered the default 128 KiB, so a value written between mount and INIT is undone. Every
 * other request waits in the kernel until INIT is processed, so here it sticks.
 */
static void fn_read_ahead_apply(void)
{
    int rc = fn_set_read_ahead(fn_mnt, fn_conf.read_ahead);
    if (rc < 0)
        fprintf(stderr, "tierfs-fuse-null: read_ahead not set: %s\n", strerror(-rc));
}

static void fn_first_request(void)
{
    pthread_once(&fn_ra_once, fn_read_ahead_apply);
}

static int fn_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct fn_conf *c = data;
    switch (key) {
    case FN_KEY_HELP:
        c->show_help = 1;
        return 0;
    case FN_KEY_FOREGROUND:
        c->foreground = 1;
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (!c->mountpoint) {
            c->mountpoint = strdup(arg);
            return c->mountpoint ? 0 : -1;
        }
        fprintf(stderr, "tierfs-fuse-null: unexpected argument '%s'\n", arg);
        return -1;
    default:
        return 1; /* libfuse's own options (max_read=, allow_other, ...) */
    }
}

static void fn_usage(const char *argv0)
{
    printf("usage: %s MOUNTPOINT [-f] [-o options]\n"
           "A FUSE filesystem serving one file from one static buffer: the FUSE ceiling.\n"
           "    -f                    stay in the foreground\n"
           "    -o size=SIZE          size of the file (default 2G)\n"
           "    -o name=NAME          its name (default 'file')\n"
           "    -o read_ahead=SIZE    kernel read-ahead of the mount (default 1M, as tierfs;\n"
           "                          0 = kernel default)\n"
           "    -o max_threads=N      FUSE worker threads (default 16, as tierfs)\n"
           "    -o direct_io=yes|no   FOPEN_DIRECT_IO on open: bypass the page cache (default no)\n"
           "Other -o options go to libfuse (allow_other, ...).\n",
           argv0);
}

/* @return 0, or -EINVAL after naming the bad option. */
static int fn_validate(struct fn_conf *c)
{
    c->size = 2ull << 30;
    c->read_ahead = 1u << 20;
    c->max_threads = 16;
    if (!c->name)
        c->name = strdup("file");
    if (!c->name)
        return -ENOMEM;
    if (c->size_s && cmn_parse_size(c->size_s, &c->size) != 0) {
        fprintf(stderr, "tierfs-fuse-null: bad size '%s'\n", c->size_s);
        return -EINVAL;
    }
    if (c->read_ahead_s &&
        (cmn_parse_size(c->read_ahead_s, &c->read_ahead) != 0 || c->read_ahead > (1ull << 30))) {
        fprintf(stderr, "tierfs-fuse-null: bad read_ahead '%s' (0..1G)\n", c->read_ahead_s);
        return -EINVAL;
    }
    if (c->max_threads_s &&
        (cmn_parse_u64(c->max_threads_s, 1024, &c->max_threads) != 0 || c->max_threads == 0)) {
        fprintf(stderr, "tierfs-fuse-null: bad max_threads '%s' (1..1024)\n", c->max_threads_s);
        return -EINVAL;
    }
    if (c->direct_io_s && cmn_parse_bool(c->direct_io_s, &c->direct_io) != 0) {
        fprintf(stderr, "tierfs-fuse-null: bad direct_io '%s' (yes|no)\n", c->direct_io_s);
        return -EINVAL;
    }
    if (!c->name[0] || strchr(c->name, '/') || strcmp(c->name, ".") == 0 ||
        strcmp(c->name, "..") == 0) {
        fprintf(stderr, "tierfs-fuse-null: bad name '%s'\n", c->name);
        return -EINVAL;
    }
    return 0;
}

static void fn_stat(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_mtime = st->st_ctime = st->st_atime = fn_mtime;
    st->st_blksize = FN_BUF_SIZE;
    if (ino == FN_ROOT_INO) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)fn_conf.size;
        st->st_blocks = (blkcnt_t)((fn_conf.size + 511) / 512);
    }
}

static void fn_init(void *userdata, struct fuse_conn_info *conn)
{
    /* As tierfs (fs/ops.c): deep async queue; read-ahead is raised through the bdi after
     * INIT (fn_first_request). */
    conn->max_background = 64;
    conn->congestion_threshold = 48;
}

static void fn_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    fn_first_request();
    if (parent != FN_ROOT_INO || strcmp(name, fn_conf.name) != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    memset(&e, 0, sizeof(e));
    e.ino = FN_FILE_INO;
    e.attr_timeout = e.entry_timeout = FN_TTL;
    fn_stat(FN_FILE_INO, &e.attr);
    fuse_reply_entry(req, &e);
}

static void fn_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    fn_first_request();
    if (ino != FN_ROOT_INO && ino != FN_FILE_INO) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fn_stat(ino, &st);
    fuse_reply_attr(req, &st, FN_TTL);
}

static void fn_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    const char *names[] = {".", "..", fn_conf.name};
    const fuse_ino_t inos[] = {FN_ROOT_INO, FN_ROOT_INO, FN_FILE_INO};
    char buf[4096];
    size_t used = 0;

    if (ino != FN_ROOT_INO) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    if (size > sizeof(buf))
        size = sizeof(buf);
    for (off_t i = off; i < 3; i++) {
        struct stat st = {.st_ino = inos[i], .st_mode = i < 2 ? S_IFDIR : S_IFREG};
        size_t n = fuse_add_direntry(req, buf + used, size - used, names[i], &st, i + 1);
        if (n > size - used)
            break;
        used += n;
    }
    fuse_reply_buf(req, buf, used);
}

static void fn_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fn_first_request();
    if (ino != FN_FILE_INO) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    fi->keep_cache = 1;
    fi->direct_io = fn_conf.direct_io ? 1 : 0;
    fuse_reply_open(req, fi);
}

/* Every reply points into fn_buf; a reply crossing its end wraps around in the iovec. */
static void fn_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct iovec iov[FN_MAX_IOV];
    uint64_t left;
    unsigned n = 0;

    if ((uint64_t)off >= fn_conf.size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    left = fn_conf.size - (uint64_t)off;
    if (left > size)
        left = size;
    /* Byte X of the file is fn_buf[X % FN_BUF_SIZE], whatever the read sizes were. */
    size_t at = (size_t)((uint64_t)off % FN_BUF_SIZE);
    while (left > 0 && n < FN_MAX_IOV) {
        size_t len = FN_BUF_SIZE - at;
        if (len > left)
            len = (size_t)left;
        iov[n].iov_base = fn_buf + at;
        iov[n].iov_len = len;
        n++;
        left -= len;
        at = 0;
    }
    fuse_reply_iov(req, iov, (int)n);
}

static void fn_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    fn_first_request();
    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = sv.f_frsize = 4096;
    sv.f_blocks = (fn_conf.size + 4095) / 4096;
    sv.f_files = 2;
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fn_ops = {
    .init = fn_init,
    .lookup = fn_lookup,
    .getattr = fn_getattr,
    .readdir = fn_readdir,
    .open = fn_open,
    .read = fn_read,
    .statfs = fn_statfs,
};

/*
 * Raise the mount's bdi read_ahead_kb (the bdi is named after the device number that
 * /proc/self/mountinfo gives for MOUNTPOINT; the topmost matching line wins). Nothing here
 * may stat the mountpoint: the session loop is not running yet.
 * @return 0, or -errno (the caller only reports it).
 */
static int fn_set_read_ahead(const char *mnt, uint64_t bytes)
{
    char line[4096], dev[64] = "", path[128];
    FILE *f;
    int rc = 0;

    if (bytes == 0)
        return 0;
    f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char mm[64], where[PATH_MAX], un[PATH_MAX];
        size_t j = 0;
        if (sscanf(line, "%*u %*u %63s %*s %4095s", mm, where) != 2)
            continue;
        for (size_t i = 0; where[i] && j + 1 < sizeof(un); i++) { /* undo \ooo escapes */
            if (where[i] == '\\' && where[i + 1] >= '0' && where[i + 1] <= '3' &&
                where[i + 2] >= '0' && where[i + 2] <= '7' && where[i + 3] >= '0' &&
                where[i + 3] <= '7') {
                un[j++] = (char)(((where[i + 1] - '0') << 6) | ((where[i + 2] - '0') << 3) |
                                 (where[i + 3] - '0'));
                i += 3;
            } else {
                un[j++] = where[i];
            }
        }
        un[j] = '\0';
        if (strcmp(un, mnt) == 0)
            snprintf(dev, sizeof(dev), "%s", mm);
    }
    fclose(f);
    if (!dev[0])
        return -ENOENT;
    snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
    f = fopen(path, "w");
    if (!f)
        return -errno;
    if (fprintf(f, "%llu\n", (unsigned long long)(bytes >> 10)) < 0)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_session *se = NULL;
    struct fuse_loop_config *lc = NULL;
    char *mnt = fn_mnt;
    int ret = 1, rc;

    if (fuse_opt_parse(&args, &fn_conf, fn_opt_table, fn_opt_proc) != 0)
        goto out_args;
    if (fn_conf.show_help) {
        fn_usage(argv[0]);
        ret = 0;
        goto out_args;
    }
    if (!fn_conf.mountpoint) {
        fprintf(stderr, "tierfs-fuse-null: no mountpoint (try --help)\n");
        goto out_args;
    }
    if (fn_validate(&fn_conf) != 0)
        goto out_args;
    if (!realpath(fn_conf.mountpoint, mnt)) {
        fprintf(stderr, "tierfs-fuse-null: mountpoint %s: %s\n", fn_conf.mountpoint,
                strerror(errno));
        goto out_args;
    }
    /* A pattern, not zeros, so a reader that checks sees that data really came through. */
    for (size_t i = 0; i < sizeof(fn_buf); i++)
        fn_buf[i] = (char)('a' + i % 26);
    fn_mtime = time(NULL);
    if (fuse_opt_add_arg(&args, "-osubtype=tierfs-fuse-null,fsname=fuse-null,ro") != 0)
        goto out_args;

    se = fuse_session_new(&args, &fn_ops, sizeof(fn_ops), NULL);
    if (!se)
        goto out_args;
    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, mnt) != 0)
        goto out_signals;
    if (fuse_daemonize(fn_conf.foreground) != 0)
        goto out_unmount;

    lc = fuse_loop_cfg_create();
    if (!lc)
        goto out_unmount;
    fuse_loop_cfg_set_max_threads(lc, (unsigned)fn_conf.max_threads);
    fuse_loop_cfg_set_idle_threads(lc,
                                   fn_conf.max_threads < 10 ? (unsigned)fn_conf.max_threads : 10u);
    rc = fuse_session_loop_mt(se, lc);
    ret = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
    fuse_loop_cfg_destroy(lc);
out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out_args:
    free(fn_conf.size_s);
    free(fn_conf.name);
    free(fn_conf.read_ahead_s);
    free(fn_conf.max_threads_s);
    free(fn_conf.direct_io_s);
    free(fn_conf.mountpoint);
    fuse_opt_free_args(&args);
    return ret;
}
