/* SPDX-License-Identifier: Apache-2.0 */
/* guard.c: the process that ends a dead daemon's FUSE connection (see guard.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/guard.h"

#define FS_GUARD_CTL "/sys/fs/fuse/connections"

/* /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo. */
static void fs_guard_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 5 < cap; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\%03o", (unsigned char)*s);
        else
            out[o++] = *s;
    }
    out[o] = '\0';
}

int fs_guard_abort_path(const char *mnt, char *buf, size_t cap)
{
    char want[4096], line[8192];
    unsigned maj = 0, mnr = 0;
    bool found = false;
    FILE *f;

    /* The device from mountinfo, not stat(2): a stat of the root would be a FUSE request,
     * and this runs before the session loop answers any. The last match is the newest. */
    fs_guard_escape(mnt, want, sizeof(want));
    if (!(f = fopen("/proc/self/mountinfo", "re")))
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char point[4096];
        unsigned a, b;
        if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &a, &b, point) == 3 &&
            strcmp(point, want) == 0) {
            maj = a;
            mnr = b;
            found = true;
        }
    }
    fclose(f);
    if (!found)
        return -ENOENT;
    /* fusectl names a connection by the kernel's dev_t of its superblock. */
    snprintf(buf, cap, FS_GUARD_CTL "/%u/abort", (maj << 20) | mnr);
    if (access(buf, W_OK) == 0)
        return 0;
    /* fusectl is not mounted (containers, minimal systems): mount it, as systemd does at
     * boot. Needs root; EBUSY means someone else just did. */
    if (mount("fusectl", FS_GUARD_CTL, "fusectl", 0, NULL) != 0 && errno != EBUSY)
        return -errno;
    return access(buf, W_OK) == 0 ? 0 : -errno;
}

/* State letter of process @pid from /proc/PID/stat, 0 when it is gone. Async-signal-safe
 * (the guard is a fork of a threaded process). */
static char fs_guard_state(const char *stat_path)
{
    char buf[512];
    int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'); /* the name may hold ')' itself */
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

static void fs_guard_say(const char *msg)
{
    ssize_t w = write(STDERR_FILENO, msg, strlen(msg));
    (void)w;
}

/* The guard's whole life, in a process of its own (exec'd: nothing of the daemon's memory,
 * threads or descriptors but fds 3 and 4). */
static int fs_guard_loop(int rd, int abort_fd, pid_t daemon, unsigned period_ms)
{
    char stat_path[64];
    sigset_t all;
    int dead = 0;
    bool aborted = false;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* ends with the daemon, not with its signals */
    setsid();                             /* and not with its process group */
    prctl(PR_SET_NAME, "tierfs-guard", 0, 0, 0);
    snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)daemon);

    for (;;) {
        struct pollfd p = {.fd = rd, .events = POLLIN};
        int n = poll(&p, 1, (int)period_ms);
        if (n > 0)
            return 0; /* EOF: the daemon's last thread is gone, and its descriptors */
        if (n < 0 && errno != EINTR)
            return 1;
        if (n != 0)
            continue;
        /* The main thread is dead (zombie) yet the descriptors live: a thread is stuck.
         * Twice in a row, so a normal exit caught between the two never triggers it. */
        char st = fs_guard_state(stat_path);
        dead = st == 'Z' || st == 'X' ? dead + 1 : 0;
        if (dead >= 2 && !aborted) {
            aborted = write(abort_fd, "1", 1) == 1;
            fs_guard_say(aborted ? "tierfs-guard: the daemon died with a thread stuck in "
                                   "the kernel; aborted its FUSE connection\n"
                                 : "tierfs-guard: cannot abort the dead daemon's FUSE "
                                   "connection; run umount -f on the mountpoint\n");
        }
    }
}

int fs_guard_main(int argc, char **argv)
{
    long pid, period;
    char *end;

    if (argc != 4 || strcmp(argv[1], FS_GUARD_ARG) != 0)
        return -1;
    pid = strtol(argv[2], &end, 10);
    if (*end || pid <= 0)
        return 2;
    period = strtol(argv[3], &end, 10);
    if (*end || period <= 0 || period > 60000)
        return 2;
    return fs_guard_loop(3, 4, (pid_t)pid, (unsigned)period);
}

int fs_guard_start(const char *mnt, unsigned period_ms, bool keep_stderr)
{
    char path[128], exe[PATH_MAX], spid[24], speriod[24];
    int pfd[2], epfd[2], abort_fd, rc;
    pid_t pid;
    ssize_t n;

    if ((rc = fs_guard_abort_path(mnt, path, sizeof(path))) < 0)
        return rc;
    if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
        return -errno;
    exe[n] = '\0';
    snprintf(spid, sizeof(spid), "%d", (int)getpid());
    snprintf(speriod, sizeof(speriod), "%u", period_ms);
    if ((abort_fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -errno;
    /* Opened before the fork: open(2) is safe after it, but a failure is easier here. */
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
        rc = -errno;
        if (null_fd >= 0)
            close(null_fd);
        close(abort_fd);
        return rc;
    }
    /* epfd: the child's errno if it cannot exec; EOF (close-on-exec) when it did. */
    if (pipe2(epfd, O_CLOEXEC) != 0) {
        rc = -errno;
        close(pfd[0]);
        close(pfd[1]);
        close(null_fd);
        close(abort_fd);
        return rc;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(pfd[0]);
        close(pfd[1]);
        close(epfd[0]);
        close(epfd[1]);
        close(abort_fd);
        close(null_fd);
        return rc;
    }
    if (pid == 0) {
        /* A fork of a threaded process: only async-signal-safe calls until exec. The pipe
         * and the abort file become 3 and 4 (dup2 clears close-on-exec), the exec-status
         * pipe 5 (close-on-exec); nothing else survives, least of all /dev/fuse, which
         * would keep the connection alive. */
        char *args[] = {exe, FS_GUARD_ARG, spid, speriod, NULL};
        int r = fcntl(pfd[0], F_DUPFD, 10), a = fcntl(abort_fd, F_DUPFD, 10);
        int e = fcntl(epfd[1], F_DUPFD_CLOEXEC, 10);
        if (r < 0 || a < 0 || e < 0 || dup2(r, 3) != 3 || dup2(a, 4) != 4 || dup2(e, 5) != 5 ||
            fcntl(5, F_SETFD, FD_CLOEXEC) != 0)
            _exit(1);
        /* No hold on the caller's terminal or pipes (a shell reading a daemonizing
         * mount's output would wait for the guard), nor on its working directory. */
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        if (!keep_stderr)
            dup2(null_fd, 2);
        int err = 0;
        if (chdir("/") != 0) {
            err = errno;
        } else {
            close_range(6, ~0u, 0);
            execv(exe, args);
            err = errno;
        }
        ssize_t w = write(5, &err, sizeof(err));
        (void)w;
        _exit(1);
    }
    /* The write end stays open in the daemon until its last thread is gone. */
    close(pfd[0]);
    close(epfd[1]);
    close(abort_fd);
    close(null_fd);
    int err = 0;
    ssize_t got;
    while ((got = read(epfd[0], &err, sizeof(err))) < 0 && errno == EINTR)
        ;
    close(epfd[0]);
    if (got != 0) {
        /* It did not exec (or the pipe failed): reap it, no guard. */
        close(pfd[1]);
        waitpid(pid, NULL, 0);
        return got == (ssize_t)sizeof(err) && err ? -err : -EIO;
    }
    TLOG_I("guard %d watches FUSE connection %s", (int)pid, path);
    return 0;
}
