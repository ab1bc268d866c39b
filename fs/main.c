/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c: the tierfs daemon: options, startup checks, daemonizing, the FUSE session loop.
 *
 * DESIGN
 * Everything that can fail for a reason the user must see happens before the parent
 * process exits: option validation, listing the bucket (credentials, endpoint, bucket),
 * opening the cache device, and the mount itself. In the background case the process
 * forks first (before any thread exists) and the parent waits on a pipe for the child's
 * verdict, so `tierfs ...`, `mount -t fuse.tierfs` and fstab mounts return the real exit
 * status and one line naming the cause. Only then does the child detach and log to syslog.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/blockkey.h"
#include "fs/fs_i.h"
#include "fs/fuseio.h"
#include "fs/guard.h"
#include "fs/metrics.h"
#include "hybridcache/fleet.h"
#include "hybridcache/hybridcache.h"

#ifndef TIERFS_VERSION
#define TIERFS_VERSION "0.0.0"
#endif

#define FS_CAPTURE_MAX 8

/* Messages logged while starting: kept so a failure prints one line, not a cascade. */
struct fs_capture {
    int n;
    int level[FS_CAPTURE_MAX];
    char msg[FS_CAPTURE_MAX][256];
};

static void fs_capture_sink(int level, const char *msg, void *arg)
{
    struct fs_capture *cap = arg;
    if (level > TLOG_WARNING)
        return;
    int i = cap->n < FS_CAPTURE_MAX ? cap->n++ : FS_CAPTURE_MAX - 1;
    cap->level[i] = level;
    snprintf(cap->msg[i], sizeof(cap->msg[i]), "%s", msg);
}

static const char *fs_capture_last(const struct fs_capture *cap, const char *fallback)
{
    return cap->n ? cap->msg[cap->n - 1] : fallback;
}

/* libfuse's messages, through our log. It prints some lines in pieces
 * ("unknown option(s): `" "-o " "x'\n"), so pieces are joined until the newline. */
static void fs_fuse_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
    static __thread char line[1024];
    size_t len = strlen(line);
    vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    len = strlen(line);
    if (len == 0 || (line[len - 1] != '\n' && len + 1 < sizeof(line)))
        return;
    while (len && line[len - 1] == '\n')
        line[--len] = '\0';
    int lvl = (int)level < TLOG_ERR ? TLOG_ERR : (int)level;
    TLOG(lvl, "%s", line);
    line[0] = '\0';
}

/*
 * Fork; the parent waits for the child's verdict byte and exits with it (EOF: 1).
 * @return in the child: the fd to report on.
 */
static int fs_daemon_fork(void)
{
    int p[2];
    if (pipe(p) != 0) {
        fprintf(stderr, "tierfs: pipe: %s\n", strerror(errno));
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tierfs: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        unsigned char st = 1;
        ssize_t n;
        close(p[1]);
        do
            n = read(p[0], &st, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? st : 1);
    }
    close(p[0]);
    return p[1];
}

/* Tell the waiting parent how it went, then detach from the terminal. */
static void fs_daemon_report(int fd, int status)
{
    unsigned char st = (unsigned char)status;
    if (fd < 0)
        return;
    if (status == 0) {
        int nullfd = open("/dev/null", O_RDWR);
        (void)setsid();
        if (chdir("/") != 0)
            TLOG_D("chdir /: %s", strerror(errno));
        if (nullfd >= 0) {
            dup2(nullfd, 0);
            dup2(nullfd, 1);
            dup2(nullfd, 2);
            if (nullfd > 2)
                close(nullfd);
        }
    }
    if (write(fd, &st, 1) != 1)
        TLOG_D("report to parent: %s", strerror(errno));
    close(fd);
}

/*
 * Raise the kernel read-ahead of the new mount: libfuse can only lower max_readahead,
 * and the default 128 KiB caps sequential reads at 128 KiB requests. The kernel clamps
 * the bdi's read-ahead when FUSE INIT completes, so this runs on its own thread after a
 * stat of the mount root has gone through the session loop (INIT is done by then); the
 * root's st_dev names the bdi.
 */
struct fs_ra {
    char mnt[PATH_MAX];
    uint64_t bytes;
};

static void *fs_ra_thread(void *arg)
{
    struct fs_ra *ra = arg;
    struct stat st;
    char path[128];
    FILE *f;

    if (stat(ra->mnt, &st) != 0) {
        TLOG_I("stat %s: %s; kernel read-ahead stays at its default", ra->mnt, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
             minor(st.st_dev));
    f = fopen(path, "w");
    if (!f || fprintf(f, "%llu\n", (unsigned long long)(ra->bytes >> 10)) < 0 || fclose(f) != 0) {
        TLOG_I("cannot set %s (%s): kernel read-ahead stays at its default", path, strerror(errno));
        goto out;
    }
    TLOG_I("read-ahead of %s set to %llu KiB", ra->mnt, (unsigned long long)(ra->bytes >> 10));
out:
    free(ra);
    return NULL;
}

static void fs_set_read_ahead(const char *mnt, uint64_t bytes)
{
    struct fs_ra *ra;
    pthread_t t;
    pthread_attr_t attr;

    if (bytes == 0 || !(ra = calloc(1, sizeof(*ra))))
        return;
    snprintf(ra->mnt, sizeof(ra->mnt), "%s", mnt);
    ra->bytes = bytes;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, fs_ra_thread, ra) != 0)
        free(ra);
    pthread_attr_destroy(&attr);
}

/*
 * Log level at run time: SIGUSR1 raises the verbosity one step (towards debug), SIGUSR2
 * lowers it (towards err). Both signals are blocked in every thread (the mask is set
 * before the first thread starts) and taken here with sigwait, so the level change and
 * its log line run in a normal thread, not in a signal handler.
 */
static const char *fs_level_name(int level)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                        "warning", "notice", "info", "debug"};
    return level >= 0 && level <= TLOG_DEBUG ? names[level] : "?";
}

static void fs_sig_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

static void *fs_sig_thread(void *arg)
{
    const sigset_t *set = arg;
    int sig;

    for (;;) {
        if (sigwait(set, &sig) != 0)
            continue;
        int lvl = tlog_get_level();
        if (sig == SIGUSR1 && lvl < TLOG_DEBUG)
            lvl++;
        else if (sig == SIGUSR2 && lvl > TLOG_ERR)
            lvl--;
        tlog_set_level(lvl);
        /* tlog_msg, not TLOG_N: the change is reported even when it silences notices */
        tlog_msg(TLOG_NOTICE, "log level is now %s (%s)", fs_level_name(lvl),
                 sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
    }
    return NULL;
}

/* Start the log-level thread; it runs until the process exits. @return 0 or -errno. */
static int fs_sig_start(sigset_t *set)
{
    pthread_t t;
    pthread_attr_t attr;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, fs_sig_thread, set);
    pthread_attr_destroy(&attr);
    return -rc;
}

/*
 * Create the object store and check the bucket with one ListObjectsV2 (max-keys 1).
 * @return 0, or -errno after printing one line.
 */
static int fs_start_store(struct fs *fs, struct fs_capture *cap)
{
    const struct fs_conf *c = fs->conf;
    struct objstore_list_result res;
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    int rc;

    bool creds_failed;

    rc = fs_store_create(c, &fs->os, &creds_failed);
    if (rc < 0 && creds_failed) {
        fprintf(stderr, "tierfs: no credentials for %s: %s\n", c->source,
                fs_capture_last(cap, strerror(-rc)));
        return rc;
    }
    if (rc < 0) {
        fprintf(stderr, "tierfs: cannot set up the S3 client: %s\n",
                fs_capture_last(cap, strerror(-rc)));
        return rc;
    }
    if ((rc = objstore_stats_create(fs->os, &fs->os)) < 0) {
        fprintf(stderr, "tierfs: cannot set up the S3 client: %s\n", strerror(-rc));
        return rc;
    }

    struct objstore_list_args la = {.prefix = c->prefix, .delimiter = "/", .max_keys = 1};
    memset(&res, 0, sizeof(res));
    rc = objstore_list(fs->os, &la, &res, errmsg, sizeof(errmsg));
    if (rc < 0) {
        const char *ep = c->endpoint ? c->endpoint : "the default endpoint";
        if (rc == -ENOENT)
            fprintf(stderr, "tierfs: cannot mount %s: no such bucket '%s' at %s\n", c->source,
                    c->bucket, ep);
        else if (rc == -EACCES || rc == -EPERM)
            fprintf(stderr, "tierfs: cannot mount %s: access denied listing bucket '%s' (%s)\n",
                    c->source, c->bucket, errmsg[0] ? errmsg : "check the credentials");
        else
            fprintf(stderr, "tierfs: cannot mount %s: %s %s (%s)\n", c->source, fs_cause(rc), ep,
                    errmsg[0] ? errmsg : objstore_strerror(rc));
        return rc;
    }
    objstore_list_result_free(&res);
    return 0;
}

/* Open (or recover) the cache. @return 0, or -errno after printing one line. */
static int fs_start_cache(struct fs *fs, struct fs_capture *cap)
{
    const struct fs_conf *c = fs->conf;
    struct hc_conf hc;
    int rc;

    fs->cache_identity = fs_cache_identity(c->endpoint, c->bucket);
    if (!fs->cache_identity)
        return -ENOMEM;
    fs_cache_conf(c, fs->cache_identity, &hc);
    if ((rc = hc_create(&hc, &fs->cache)) < 0) {
        if (rc == -EEXIST && c->disk_cache)
            fprintf(stderr,
                    "tierfs: cache path not usable: %s: it holds data that is not a "
                    "tierfs cache (-o disk_cache_overwrite formats it)\n",
                    c->disk_cache);
        else if (rc == -EINVAL)
            fprintf(stderr, "tierfs: bad cache settings: %s\n",
                    fs_capture_last(cap, "invalid configuration"));
        else if (c->disk_cache)
            fprintf(stderr, "tierfs: cache path not usable: %s: %s\n", c->disk_cache,
                    fs_capture_last(cap, strerror(-rc)));
        else
            fprintf(stderr, "tierfs: cannot create the memory cache: %s\n",
                    fs_capture_last(cap, strerror(-rc)));
        return rc;
    }
    return 0;
}

/* The fleet tier, with -o fleet (no server is contacted here: one that is down only
 * sends its share to S3). @return 0, or -errno after printing one line. */
static int fs_start_fleet(struct fs *fs, struct fs_capture *cap)
{
    const struct fs_conf *c = fs->conf;
    struct hc_fleet_backend *be;
    struct hc_fleet_conf fc = {
        .piece_size = c->fleet_piece_size,
        .lease_ms = (unsigned)c->fleet_lease_ms,
        .store_queue = c->fleet_store_queue ? c->fleet_store_queue : 1,
        .secret = c->fleet_key,
        .secret_len = c->fleet_key_len,
    };
    int rc;

    if (!c->fleet_servers)
        return 0;
    rc = hc_fleet_memcached_create(c->fleet_servers, (unsigned)c->fleet_timeout_ms,
                                   (unsigned)((c->fleet_retry_ms + 999) / 1000), &be);
    if (rc == 0)
        rc = hc_fleet_create(&fc, be, &fs->fleet);
    if (rc < 0)
        fprintf(stderr, "tierfs: cannot start the fleet tier %s: %s\n", c->fleet,
                fs_capture_last(cap, strerror(-rc)));
    return rc;
}

/*
 * Is a tierfs already mounted on @mnt (an absolute, resolved path)? The kernel would stack
 * a second mount on top of it, hiding the first: an fstab line mounted twice, or a mount
 * retried by a script. @return true and the source in @src, else false.
 */
static bool fs_already_mounted(const char *mnt, char *src, size_t cap)
{
    FILE *f = setmntent("/proc/self/mounts", "r");
    struct mntent me, *m;
    char buf[4 * PATH_MAX];
    bool found = false;

    if (!f)
        return false;
    while (!found && (m = getmntent_r(f, &me, buf, sizeof(buf))) != NULL) {
        if (strcmp(m->mnt_dir, mnt) == 0 && strcmp(m->mnt_type, "fuse.tierfs") == 0) {
            snprintf(src, cap, "%s", m->mnt_fsname);
            found = true;
        }
    }
    endmntent(f);
    return found;
}

/* Options every tierfs mount gets; added after the user's so they win (ro). */
static int fs_add_mount_args(struct fuse_args *args, const struct fs_conf *conf)
{
    char *fsname = NULL, *opt = NULL;
    int rc = -ENOMEM;

    if (fuse_opt_add_opt_escaped(&fsname, conf->source) != 0)
        goto out;
    if (asprintf(&opt, "-o%s,default_permissions,subtype=tierfs,fsname=%s",
                 conf->writable ? "rw" : "ro", fsname) < 0) {
        opt = NULL;
        goto out;
    }
    if (fuse_opt_add_arg(args, opt) != 0)
        goto out;
    rc = 0;
out:
    free(opt);
    free(fsname);
    return rc;
}

/* --explain-credentials: which credentials a mount with these options would sign with,
 * and why (tierfs(1), CREDENTIALS). Prints no secret. @return 0 or -errno. */
static int fs_explain_creds(const struct fs_conf *conf)
{
    if (conf->no_sign_request) {
        printf("credentials: none: -o no_sign_request sends anonymous, unsigned requests\n");
        return 0;
    }
    if (conf->access_key || conf->secret_key) {
        if (!conf->access_key || !conf->secret_key) {
            fprintf(stderr, "tierfs: -o access_key and -o secret_key go together\n");
            return -EINVAL;
        }
        size_t n = strlen(conf->access_key);
        printf("credentials: chosen: -o access_key/secret_key (static); access key %.4s...%s\n",
               conf->access_key, n >= 12 ? conf->access_key + n - 4 : "");
        return 0;
    }
    int lvl = conf->log_level_s ? tlog_parse_level(conf->log_level_s) : TLOG_WARNING;
    tlog_set_level(lvl >= 0 ? lvl : TLOG_WARNING);
    objstore_creds_set_ca_bundle(conf->ca_bundle);
    return objstore_creds_explain(conf->profile, stdout);
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fs_conf conf;
    struct fs fs;
    struct fs_capture cap;
    static struct fs_fio fio; /* the hooks keep a pointer to it until exit */
    struct fuse_session *se = NULL;
    struct fuse_loop_config *lc = NULL;
    static sigset_t sigs; /* read by the log-level thread until exit */
    char mnt[PATH_MAX];
    char merr[256];
    int status_fd = -1, rc, ret = 1;

    if ((rc = fs_guard_main(argc, argv)) >= 0)
        return rc; /* this process is a mount's guard (fs/guard.h), not a daemon */
    memset(&conf, 0, sizeof(conf));
    memset(&fs, 0, sizeof(fs));
    memset(&cap, 0, sizeof(cap));
    fs.conf = &conf;
    fs.mount_time = (int64_t)time(NULL);
    fuse_set_log_func(fs_fuse_log);
    /*
     * Cache blocks (64 KiB and up) get their own mappings, returned to the kernel on free.
     * With glibc's default (a threshold that rises to 32 MiB after the first large free),
     * blocks come from per-thread arenas, and blocks freed by another thread stay resident:
     * 64 readers with mem_cache_size=64M measured 177 MiB RSS, 64 MiB with this.
     */
    mallopt(M_MMAP_THRESHOLD, (int)HC_BLOCK_SIZE_MIN);

    if (fs_opts_parse(&args, &conf) != 0)
        goto out_opts;
    if (conf.show_help) {
        fs_opts_help(argv[0]);
        ret = 0;
        goto out_opts;
    }
    if (conf.show_version) {
        printf("tierfs %s (libfuse %s)\n", TIERFS_VERSION, fuse_pkgversion());
        ret = 0;
        goto out_opts;
    }
    if (conf.explain_creds) {
        ret = fs_explain_creds(&conf) == 0 ? 0 : 1;
        goto out_opts;
    }
    if (fs_opts_validate(&conf) != 0)
        goto out_opts;
    tlog_set_level(conf.log_level);
    if (!realpath(conf.mountpoint, mnt)) {
        fprintf(stderr, "tierfs: mountpoint %s: %s\n", conf.mountpoint, strerror(errno));
        goto out_opts;
    }
    struct stat st;
    if (stat(mnt, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "tierfs: mountpoint %s: not a directory\n", conf.mountpoint);
        goto out_opts;
    }
    char other[256];
    if (fs_already_mounted(mnt, other, sizeof(other))) {
        fprintf(stderr, "tierfs: mountpoint %s: already mounted (%s); unmount it first\n",
                conf.mountpoint, other);
        goto out_opts;
    }
    if (fs_add_mount_args(&args, &conf) != 0)
        goto out_opts;
    /* Unknown options fail here, before any network traffic (libfuse names them). */
    struct fuse_lowlevel_ops ops = fs_ops;
    if (conf.writable)
        fs_ops_add_write(&ops); /* without them the kernel's ro mount answers EROFS */
    se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
    if (!se)
        goto out_opts;
    fs.se = se;

    /* No thread may exist before this fork: the child continues alone. */
    if (!conf.foreground)
        status_fd = fs_daemon_fork();

    /* Before any thread exists, so every thread inherits it (see fs_sig_thread). */
    fs_sig_block(&sigs);
    fs.mnt = mnt;
    if (fs_metrics_create(&fs.metrics) != 0 || fs_ns_init(&fs) != 0 || fs_handles_init(&fs) != 0 ||
        fs_write_init(&fs) != 0) {
        fprintf(stderr, "tierfs: out of memory\n");
        goto out_session;
    }
    tlog_set_sink(fs_capture_sink, &cap);
    rc = fs_start_store(&fs, &cap);
    if (rc == 0)
        rc = fs_start_cache(&fs, &cap);
    if (rc == 0 && (rc = fs_start_fleet(&fs, &cap)) < 0)
        hc_destroy(fs.cache);
    tlog_set_sink(NULL, NULL);
    if (rc < 0)
        goto out_store;
    if (fs_metrics_serve(&fs, merr, sizeof(merr)) < 0) {
        fprintf(stderr, "tierfs: cannot serve metrics on %s\n", merr);
        goto out_cache;
    }
    for (int i = 0; i < cap.n; i++)
        tlog_msg(cap.level[i], "%s", cap.msg[i]); /* startup warnings of a good mount */

    if (fuse_set_signal_handlers(se) != 0) {
        fprintf(stderr, "tierfs: cannot install signal handlers\n");
        goto out_cache;
    }
    if (fuse_session_mount(se, mnt) != 0) {
        fprintf(stderr, "tierfs: cannot mount on %s (see the message above)\n", mnt);
        goto out_signals;
    }
    /* Before the session loop reads INIT: its reply asks for shared mmap of direct-I/O
     * files (fs/fuseio.h). */
    if ((rc = fs_fio_install(se, &fio)) < 0)
        TLOG_W("cannot hook the FUSE device I/O (%s): a shared mmap of a file read around the "
               "page cache fails with ENODEV",
               strerror(-rc));
    fs_set_read_ahead(mnt, conf.read_ahead);
    /* Filling the page cache can leave a killed daemon unable to die (fs/guard.h): fill
     * only with a guard that can end the connection then. */
    if (conf.page_cache_fill && (rc = fs_guard_start(mnt, 1000, conf.foreground)) < 0) {
        TLOG_W("page_cache_fill is off: cannot watch the FUSE connection (%s; it needs "
               "root and fusectl)",
               strerror(-rc));
        conf.page_cache_fill = 0;
    }
    if ((rc = fs_read_fill_start(&fs)) < 0)
        TLOG_W("cannot start the page-cache fill thread (%s); page_cache_fill is off",
               strerror(-rc));
    if (fs_sig_start(&sigs) != 0)
        TLOG_W("cannot start the log-level signal thread; SIGUSR1/SIGUSR2 are ignored");
    TLOG_N("mounted %s on %s (block %u KiB, memory %llu MiB%s%s)", conf.source, mnt,
           conf.block_size >> 10, (unsigned long long)(conf.mem_cache_size >> 20),
           conf.disk_cache ? ", disk " : "", conf.disk_cache ? conf.disk_cache : "");
    if (!conf.foreground) {
        fs_daemon_report(status_fd, 0);
        status_fd = -1;
        tlog_use_syslog("tierfs");
    }

    lc = fuse_loop_cfg_create();
    if (!lc) {
        TLOG_E("out of memory");
        goto out_unmount;
    }
    fuse_loop_cfg_set_max_threads(lc, conf.max_threads);
    fuse_loop_cfg_set_idle_threads(lc, CMN_MIN(conf.max_threads, 10u));
    rc = fuse_session_loop_mt(se, lc);
    ret = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
    TLOG_N("unmounting %s", mnt);
    fuse_loop_cfg_destroy(lc);

out_unmount:
    fs_read_fill_stop(&fs); /* its jobs hold handles: before they are released */
    unsigned orphans = fs_read_release_all(&fs);
    if (orphans)
        TLOG_N("released %u file handle(s) whose RELEASE did not arrive before the unmount",
               orphans);
    orphans = fs_ops_release_dirs(&fs);
    if (orphans)
        TLOG_N("released %u directory handle(s) whose RELEASEDIR did not arrive before the "
               "unmount",
               orphans);
    orphans = fs_write_release_all(&fs);
    if (orphans)
        TLOG_N("aborted %u upload(s) of files still open for writing at the unmount", orphans);
    fs_write_stop(&fs); /* aborts that failed earlier: S3 may answer now */
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_cache:
    fs_metrics_stop(fs.metrics); /* no scrape may read the cache or store past here */
    /* Flushes the disk tier's index so the next mount with this cache recovers it. */
    hc_destroy(fs.cache);
    hc_fleet_destroy(fs.fleet); /* after the cache: its last fetches stored or abandoned */
out_store:
    objstore_destroy(fs.os);
    fs_write_fini(&fs);
    fs_handles_fini(&fs);
    fs_ns_fini(&fs);
    fs_metrics_destroy(fs.metrics); /* last: the FUSE threads counted into it */
out_session:
    fuse_session_destroy(se);
out_opts:
    if (status_fd >= 0)
        fs_daemon_report(status_fd, ret ? ret : 1);
    free(fs.cache_identity);
    fs_opts_free(&conf);
    fuse_opt_free_args(&args);
    return ret;
}
