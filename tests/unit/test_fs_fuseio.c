/* SPDX-License-Identifier: Apache-2.0 */
/* test_fs_fuseio.c: the INIT reply patch of fs/fuseio.c: FUSE_DIRECT_IO_ALLOW_MMAP is asked
 * for only in the reply to the INIT request that offered it, with FUSE_INIT_EXT, the other
 * fields as libfuse wrote them; other replies, error replies and old kernels' INITs are
 * left alone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "fs/fuseio.h"

/* An INIT request as the kernel sends it: header, then fuse_init_in (@len bytes of it). */
struct t_init {
    struct fuse_in_header h;
    struct fuse_init_in in;
};

static size_t t_init(struct t_init *r, uint64_t unique, uint32_t flags, uint32_t flags2)
{
    memset(r, 0, sizeof(*r));
    r->h.opcode = FUSE_INIT;
    r->h.unique = unique;
    r->in.major = 7;
    r->in.minor = 41;
    r->in.flags = flags;
    r->in.flags2 = flags2;
    r->h.len = sizeof(*r);
    return sizeof(*r);
}

/* A reply: header @unique/@error and a fuse_init_out libfuse filled. */
struct t_reply {
    struct fuse_out_header h;
    struct fuse_init_out out;
    struct iovec iov[2];
};

static void t_reply(struct t_reply *r, uint64_t unique, int error)
{
    memset(r, 0, sizeof(*r));
    r->h.unique = unique;
    r->h.error = error;
    r->h.len = sizeof(r->h) + sizeof(r->out);
    r->out.major = 7;
    r->out.minor = 38;
    r->out.max_write = 1 << 20;
    r->out.flags = 0x1234;
    r->out.flags2 = 0x8;
    r->iov[0] = (struct iovec){&r->h, sizeof(r->h)};
    r->iov[1] = (struct iovec){&r->out, sizeof(r->out)};
}

static void test_offered_is_asked_for(void **state)
{
    struct fs_fio st = {0};
    struct t_init req;
    struct t_reply rep;
    (void)state;
    fs_fio_note_request(&st, &req, t_init(&req, 42, FUSE_INIT_EXT, FS_FIO_DIRECT_IO_ALLOW_MMAP));
    assert_true(st.offered);
    assert_int_equal(st.init_unique, 42);
    t_reply(&rep, 41, 0); /* not the INIT's reply */
    assert_false(fs_fio_patch_reply(&st, rep.iov, 2));
    assert_ptr_equal(rep.iov[1].iov_base, &rep.out);
    t_reply(&rep, 42, 0);
    assert_true(fs_fio_patch_reply(&st, rep.iov, 2));
    assert_true(st.granted);
    const struct fuse_init_out *o = rep.iov[1].iov_base;
    assert_ptr_not_equal(o, &rep.out); /* a copy: libfuse's own argument is not written */
    assert_int_equal(rep.out.flags2, 0x8);
    assert_int_equal(o->flags, 0x1234 | FUSE_INIT_EXT);
    assert_int_equal(o->flags2, 0x8 | FS_FIO_DIRECT_IO_ALLOW_MMAP);
    assert_int_equal(o->max_write, 1 << 20);
    assert_int_equal(o->minor, 38);
    assert_int_equal(rep.iov[1].iov_len, sizeof(struct fuse_init_out));
}

static void test_not_offered_is_left_alone(void **state)
{
    struct fs_fio st = {0};
    struct t_init req;
    struct t_reply rep;
    (void)state;
    /* flags2 without FUSE_INIT_EXT means nothing; nor does INIT_EXT without the bit */
    fs_fio_note_request(&st, &req, t_init(&req, 7, 0, FS_FIO_DIRECT_IO_ALLOW_MMAP));
    assert_false(st.offered);
    fs_fio_note_request(&st, &req, t_init(&req, 7, FUSE_INIT_EXT, 0));
    assert_false(st.offered);
    t_reply(&rep, 7, 0);
    assert_false(fs_fio_patch_reply(&st, rep.iov, 2));
    assert_ptr_equal(rep.iov[1].iov_base, &rep.out);
    assert_false(st.granted);
    /* an old kernel's short INIT (no flags2 at all) */
    memset(&st, 0, sizeof(st));
    fs_fio_note_request(&st, &req, sizeof(req.h) + offsetof(struct fuse_init_in, flags2));
    assert_false(st.offered);
}

static void test_error_and_other_requests(void **state)
{
    struct fs_fio st = {0};
    struct t_init req;
    struct t_reply rep;
    (void)state;
    t_init(&req, 9, FUSE_INIT_EXT, FS_FIO_DIRECT_IO_ALLOW_MMAP);
    req.h.opcode = FUSE_LOOKUP; /* not an INIT: nothing noted */
    fs_fio_note_request(&st, &req, sizeof(req));
    assert_false(st.offered);
    assert_int_equal(st.init_unique, 0);
    fs_fio_note_request(&st, &req, sizeof(req.h) - 1); /* shorter than a header */
    assert_int_equal(st.init_unique, 0);
    fs_fio_note_request(&st, &req, t_init(&req, 9, FUSE_INIT_EXT, FS_FIO_DIRECT_IO_ALLOW_MMAP));
    t_reply(&rep, 9, -EPROTO); /* libfuse refused the INIT */
    assert_false(fs_fio_patch_reply(&st, rep.iov, 2));
    t_reply(&rep, 9, 0);
    rep.iov[1].iov_len = 24; /* a short (old protocol) reply argument */
    assert_false(fs_fio_patch_reply(&st, rep.iov, 2));
    assert_false(fs_fio_patch_reply(&st, rep.iov, 1)); /* a header alone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offered_is_asked_for),
        cmocka_unit_test(test_not_offered_is_left_alone),
        cmocka_unit_test(test_error_and_other_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
