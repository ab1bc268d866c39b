/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guard.h: a small process that aborts the mount's FUSE connection when the daemon dies
 * with a thread stuck on a page lock of its own mount.
 *
 * Why: fuse_lowlevel_notify_store (fs/fill.c) waits, uninterruptibly, for the lock of each
 * page it fills; a page under a read the kernel sent is locked until the daemon answers.
 * Killed at that moment (kill -9, a crash, the OOM killer), the daemon can never answer,
 * the filling thread never wakes, and the process never finishes dying: its /dev/fuse
 * descriptor stays open, so the kernel never ends the connection, and every reader of the
 * mount, and sync(2), hangs with it (seen: 6 of 25 kill -9 under random readers). The
 * only ways out are `umount -f` and the connection's abort file in fusectl; the guard
 * writes the latter once the daemon's main thread is dead and its descriptor still open.
 */
#ifndef TIERFS_FS_GUARD_H
#define TIERFS_FS_GUARD_H

#include <stdbool.h>
#include <sys/types.h>

/* The fusectl abort file of the FUSE mount at @mnt (mounting fusectl on
 * /sys/fs/fuse/connections if it is not, which needs root), into @buf.
 * @return 0 or -errno. */
int fs_guard_abort_path(const char *mnt, char *buf, size_t cap);

/*
 * Start the guard of this process (the daemon, after mounting @mnt): the daemon's own
 * executable, exec'd as `tierfs --guard-internal PID PERIOD_MS` with only the read end of
 * a pipe whose write end the daemon keeps until its last thread is gone (fd 3), and the
 * abort file (fd 4); stdin and stdout on /dev/null, and stderr too unless @keep_stderr
 * (a foreground daemon: its message goes to the daemon's log). It looks every
 * @period_ms and ends when the pipe does.
 * @return 0, or -errno (no guard: the caller should not fill the page cache).
 */
int fs_guard_start(const char *mnt, unsigned period_ms, bool keep_stderr);

#define FS_GUARD_ARG "--guard-internal"
/* main() of the guard: call first thing with main's arguments. @return -1 when argv is not
 * a guard's (go on as the daemon), else the exit status. */
int fs_guard_main(int argc, char **argv);

#endif
