/* SPDX-License-Identifier: Apache-2.0 */
/* store.c: the S3 client a set of tierfs options describes (daemon and tierfs-cache warm). */
#include <errno.h>

#include "fs/fs_i.h"

int fs_store_create(const struct fs_conf *c, struct objstore **out, bool *creds_failed)
{
    struct objstore_creds *creds = NULL;
    struct objstore *s3 = NULL;
    int rc;

    *creds_failed = false;
    objstore_creds_set_ca_bundle(c->ca_bundle); /* STS over TLS trusts what S3 does */
    if (c->access_key)
        rc = objstore_creds_static(c->access_key, c->secret_key, NULL, &creds);
    else if (!c->no_sign_request)
        rc = objstore_creds_default(c->profile, &creds);
    else
        rc = 0;
    if (rc < 0) {
        *creds_failed = true;
        return rc;
    }
    struct objstore_s3_conf sc = {
        .bucket = c->bucket,
        .endpoint = c->endpoint,
        .region = c->region,
        .path_style = c->path_style,
        .profile = c->profile,
        .anonymous = c->no_sign_request,
        .ca_bundle = c->ca_bundle,
        .insecure = c->insecure,
        .max_connections = c->max_connections,
        .connect_timeout_ms = (unsigned)c->connect_timeout_ms,
        /* A full stall fails after read_timeout (the stall check, exact); the low-speed
         * limit keeps cutting a trickle under 1 KiB/s, over as long (whole seconds). */
        .stall_timeout_ms = (unsigned)c->read_timeout_ms,
        .low_speed_time_s = (unsigned)((c->read_timeout_ms + 999) / 1000),
        .request_timeout_ms = (unsigned)c->request_timeout_ms,
        .creds = creds,
    };
    struct objstore_retry_conf retry = {.max_attempts = c->retries + 1};
    if ((rc = objstore_s3_create(&sc, &s3)) < 0)
        return rc;
    return objstore_retry_create(s3, &retry, out);
}
