/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuseio.h: the daemon's reads and writes of /dev/fuse, through libfuse's custom-I/O hooks,
 * to ask the kernel for FUSE_DIRECT_IO_ALLOW_MMAP in the INIT reply.
 *
 * Files opened with FOPEN_DIRECT_IO (page_cache=no, and page_cache=auto's files read footer
 * first) refuse a shared mmap (MAP_SHARED, even read-only) with ENODEV unless the INIT
 * reply carries that flag (Linux 6.6+). libfuse learnt to send it in 3.16; Debian 12 has
 * 3.14, whose custom I/O hooks (fuse_session_custom_io) let the daemon set the bit in the
 * reply it writes, when the kernel offered it in the request.
 */
#ifndef TIERFS_FS_FUSEIO_H
#define TIERFS_FS_FUSEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/fuse.h>

/* flags2 bit of the INIT request and reply (bit 36 of the 64-bit flags); Linux 6.6+ */
#define FS_FIO_DIRECT_IO_ALLOW_MMAP (1u << (36 - 32))

struct fs_fio {
    uint64_t init_unique;         /* the INIT request's id, once read */
    int state;                    /* atomic: 0 waiting for INIT, 1 INIT read, 2 replied */
    bool offered;                 /* the kernel offered FUSE_DIRECT_IO_ALLOW_MMAP */
    bool granted;                 /* the reply asked for it */
    struct fuse_init_out patched; /* the reply's argument, with the bit set */
};

/* Look at a request read from /dev/fuse (@len bytes of @buf): remember an INIT's id and
 * whether it offers the flag. */
void fs_fio_note_request(struct fs_fio *st, const void *buf, size_t len);
/* A reply about to be written (@iov, @count): if it is the INIT reply (success) and the
 * kernel offered the flag, point its argument at a copy with the flag (and FUSE_INIT_EXT)
 * set. @return true when patched. */
bool fs_fio_patch_reply(struct fs_fio *st, struct iovec *iov, int count);

/* Whether the INIT request read so far offered FUSE_DIRECT_IO_ALLOW_MMAP (the reply will
 * ask for it): for the INIT callback. */
bool fs_fio_mmap_offered(void);

struct fuse_session;
/* Route @se's /dev/fuse I/O through the hooks (after fuse_session_mount). @return 0 or
 * -errno (then libfuse's own I/O stays: shared mmap of direct-I/O files fails). */
int fs_fio_install(struct fuse_session *se, struct fs_fio *st);

#endif
