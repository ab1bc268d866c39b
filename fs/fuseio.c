/* SPDX-License-Identifier: Apache-2.0 */
/* fuseio.c: /dev/fuse I/O through libfuse's custom-I/O hooks (see fuseio.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fuseio.h"

enum { FS_FIO_WAIT, FS_FIO_READ, FS_FIO_DONE };

void fs_fio_note_request(struct fs_fio *st, const void *buf, size_t len)
{
    struct fuse_in_header h;
    struct fuse_init_in in;

    if (len < sizeof(h))
        return;
    memcpy(&h, buf, sizeof(h));
    if (h.opcode != FUSE_INIT)
        return;
    memset(&in, 0, sizeof(in));
    /* a kernel older than 7.36 sends the short form: no flags2, nothing offered */
    memcpy(&in, (const char *)buf + sizeof(h), CMN_MIN(len - sizeof(h), sizeof(in)));
    st->init_unique = h.unique;
    st->offered = len - sizeof(h) >= offsetof(struct fuse_init_in, flags2) + sizeof(in.flags2) &&
                  (in.flags & FUSE_INIT_EXT) && (in.flags2 & FS_FIO_DIRECT_IO_ALLOW_MMAP);
    __atomic_store_n(&st->state, FS_FIO_READ, __ATOMIC_RELEASE);
}

bool fs_fio_patch_reply(struct fs_fio *st, struct iovec *iov, int count)
{
    struct fuse_out_header h;

    if (count < 2 || iov[0].iov_len < sizeof(h))
        return false;
    memcpy(&h, iov[0].iov_base, sizeof(h));
    if (h.unique != st->init_unique)
        return false;
    __atomic_store_n(&st->state, FS_FIO_DONE, __ATOMIC_RELEASE); /* patched or not */
    if (h.error != 0 || !st->offered || iov[1].iov_len < sizeof(st->patched))
        return false; /* an old kernel's (or a short) reply: leave it as libfuse made it */
    memcpy(&st->patched, iov[1].iov_base, sizeof(st->patched));
    st->patched.flags |= FUSE_INIT_EXT;
    st->patched.flags2 |= FS_FIO_DIRECT_IO_ALLOW_MMAP;
    iov[1].iov_base = &st->patched;
    st->granted = true;
    return true;
}

/* libfuse passes the session's userdata (the daemon's struct fs), not ours: one session
 * per process, so the state is the process's. */
static struct fs_fio *fs_fio_cur;

bool fs_fio_mmap_offered(void)
{
    return fs_fio_cur && fs_fio_cur->offered;
}

static ssize_t fs_fio_read(int fd, void *buf, size_t len, void *userdata)
{
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    if (n > 0 && __atomic_load_n(&fs_fio_cur->state, __ATOMIC_ACQUIRE) == FS_FIO_WAIT)
        fs_fio_note_request(fs_fio_cur, buf, (size_t)n);
    return n;
}

static ssize_t fs_fio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    struct fs_fio *st = fs_fio_cur;
    (void)userdata;
    /* INIT is answered before any other request is read: one writer at that point. The
     * reply is a header and its argument. */
    if (count == 2 && __atomic_load_n(&st->state, __ATOMIC_ACQUIRE) == FS_FIO_READ) {
        struct iovec v[2] = {iov[0], iov[1]};
        if (fs_fio_patch_reply(st, v, count)) {
            TLOG_N("FUSE init: shared mmap of direct-I/O files allowed "
                   "(FUSE_DIRECT_IO_ALLOW_MMAP)");
            return writev(fd, v, count);
        }
        if (__atomic_load_n(&st->state, __ATOMIC_ACQUIRE) == FS_FIO_DONE && !st->offered)
            TLOG_N("FUSE init: this kernel cannot allow shared mmap of direct-I/O files "
                   "(Linux 6.6+): it fails with ENODEV");
    }
    return writev(fd, iov, count);
}

int fs_fio_install(struct fuse_session *se, struct fs_fio *st)
{
    static const struct fuse_custom_io io = {.read = fs_fio_read, .writev = fs_fio_writev};
    int fd = fuse_session_fd(se);

    if (fd < 0)
        return -EBADF;
    memset(st, 0, sizeof(*st));
    fs_fio_cur = st;
    /* The same descriptor: libfuse keeps it, closes it at unmount as before, and only
     * reads and writes it through the hooks. */
    if (fuse_session_custom_io(se, &io, fd) != 0)
        return -EINVAL;
    return 0;
}
