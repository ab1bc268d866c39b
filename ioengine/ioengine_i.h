/* SPDX-License-Identifier: Apache-2.0 */
/* ioengine_i.h: private glue between the ioengine wrappers and the engines (psync, uring). */
#ifndef TIERFS_IOENGINE_I_H
#define TIERFS_IOENGINE_I_H

#include "ioengine/ioengine.h"

/*
 * Largest request the wrappers accept. io_uring reports a completion as an int, and one
 * request of a gigabyte is already far beyond any cache block, so a cap costs nothing.
 */
#define IOENG_MAX_REQ_LEN (1u << 30)

/*
 * Is [off, off + len) with buffer @buf a valid request on @d: non-empty, inside the
 * device, and offset, length and buffer address multiples of dev_align()?
 */
bool dev_range_ok(const struct dev *d, const void *buf, size_t len, uint64_t off);

/* The engines, registered by name in ioengine.c. */
extern const struct ioeng_ops ioeng_psync_ops;
extern const struct ioeng_ops ioeng_uring_ops;

/*
 * Account for @res bytes (or -errno) transferred by one attempt at @req, which covered
 * [req->off + req->priv_done, req->off + req->len).
 * Short transfers are never reported as success: progress that leaves an aligned
 * remainder asks for another attempt; no progress (EOF) or a remainder that is not a
 * multiple of dev_align() fails the request with -EIO.
 * @return true when @req is finished (req->result set), false to resubmit the rest.
 * Called by engine threads; @req belongs to the engine until completion.
 */
bool ioeng_req_progress(struct ioeng *e, struct ioeng_req *req, ssize_t res);

/*
 * Finish @req: count stats, drop it from the in-flight count and call req->done.
 * @req may be freed by the callback, so callers must not touch it afterwards.
 */
void ioeng_complete(struct ioeng *e, struct ioeng_req *req);

#endif
