/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet_mc.c: the fleet tier's memcached backend (libmemcached).
 *
 * Keys are spread over the servers by consistent hashing (ketama): a server that joins
 * or leaves moves about 1/N of the keys. Every call is bounded by the timeout (connect,
 * poll, send, receive; non-blocking sockets so the connect timeout holds). A server that
 * fails once is skipped for retry_s seconds (SERVER_FAILURE_LIMIT 1, RETRY_TIMEOUT): its
 * share of the blocks goes to S3 meanwhile, and it is not removed from the ring, so the
 * other servers' keys do not move when it flaps. One memcached_st per thread (libmemcached
 * handles are not thread safe), cloned from a prototype.
 */
#include <ctype.h>
#include <errno.h>
#include <libmemcached/memcached.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hybridcache/fleet_i.h"

struct hc_fleet_mc {
    struct hc_fleet_backend base;
    pthread_mutex_t lock; /* protects proto while it is cloned */
    memcached_st *proto;
};

struct hc_fleet_conn {
    struct hc_fleet_mc *mc;
    memcached_st *m;
    /* Kept across multi-gets: its value buffer grows to a piece once, instead of once
     * per call (each regrowth touches fresh pages) */
    memcached_result_st res;
    bool res_ok;
};

static int hc_fleet_mc_err(memcached_return_t rc)
{
    switch (rc) {
    case MEMCACHED_SUCCESS:
    case MEMCACHED_STORED:
    case MEMCACHED_DELETED:
    case MEMCACHED_END:
        return 0;
    case MEMCACHED_NOTFOUND:
        return -ENOENT;
    case MEMCACHED_NOTSTORED:
    case MEMCACHED_DATA_EXISTS:
        return -EEXIST;
    case MEMCACHED_E2BIG:
        return -E2BIG;
    case MEMCACHED_TIMEOUT:
        return -ETIMEDOUT;
    case MEMCACHED_CONNECTION_FAILURE:
    case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
    case MEMCACHED_SERVER_MARKED_DEAD:
    case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
        return -ECONNREFUSED;
    case MEMCACHED_HOST_LOOKUP_FAILURE:
        return -EHOSTUNREACH;
    case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* Every call of @m bounded by @ms (non-blocking sockets, so the connect bound holds too). */
static void hc_fleet_mc_timeouts(memcached_st *m, unsigned ms)
{
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)ms * 1000);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)ms * 1000);
}

static int hc_fleet_mc_open(struct hc_fleet_backend *b, unsigned timeout_ms,
                            struct hc_fleet_conn **out)
{
    struct hc_fleet_mc *mc = (struct hc_fleet_mc *)b;
    struct hc_fleet_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    pthread_mutex_lock(&mc->lock);
    c->m = memcached_clone(NULL, mc->proto);
    pthread_mutex_unlock(&mc->lock);
    if (!c->m) {
        free(c);
        return -ENOMEM;
    }
    if (timeout_ms)
        hc_fleet_mc_timeouts(c->m, timeout_ms);
    c->res_ok = memcached_result_create(c->m, &c->res) != NULL;
    c->mc = mc;
    *out = c;
    return 0;
}

static void hc_fleet_mc_close(struct hc_fleet_conn *c)
{
    if (c->res_ok)
        memcached_result_free(&c->res);
    memcached_free(c->m);
    free(c);
}

static int hc_fleet_mc_mget(struct hc_fleet_conn *c, const char *const *keys, const size_t *klens,
                            unsigned n, hc_fleet_found_fn found, void *arg)
{
    memcached_return_t rc = memcached_mget(c->m, keys, klens, n), frc;
    memcached_result_st *r;
    unsigned hint = 0;
    int ret = rc == MEMCACHED_SUCCESS       ? 0
              : rc == MEMCACHED_SOME_ERRORS ? -EIO
                                            : hc_fleet_mc_err(rc);

    /* A failed server fails the call but not the keys of the others: their values are
     * read all the same (the call's error is still returned). */
    if (!c->res_ok) {
        c->res_ok = memcached_result_create(c->m, &c->res) != NULL;
        if (!c->res_ok)
            return -ENOMEM;
    }
    while ((r = memcached_fetch_result(c->m, &c->res, &frc)) != NULL) {
        const char *k = memcached_result_key_value(r);
        size_t kl = memcached_result_key_length(r);
        /* results come back server by server, mostly in the order asked */
        for (unsigned t = 0; t < n; t++) {
            unsigned i = (hint + t) % n;
            if (klens[i] == kl && memcmp(keys[i], k, kl) == 0) {
                found(arg, i, memcached_result_value(r), memcached_result_length(r));
                hint = i + 1;
                break;
            }
        }
    }
    if (frc != MEMCACHED_END && frc != MEMCACHED_SUCCESS && frc != MEMCACHED_NOTFOUND && !ret)
        ret = hc_fleet_mc_err(frc);
    return ret == -ENOENT ? 0 : ret;
}

static int hc_fleet_mc_add(struct hc_fleet_conn *c, const char *key, size_t klen, const void *v,
                           size_t len, uint32_t ttl_s)
{
    return hc_fleet_mc_err(memcached_add(c->m, key, klen, v, len, (time_t)ttl_s, 0));
}

static int hc_fleet_mc_set(struct hc_fleet_conn *c, const char *key, size_t klen, const void *v,
                           size_t len, uint32_t ttl_s)
{
    return hc_fleet_mc_err(memcached_set(c->m, key, klen, v, len, (time_t)ttl_s, 0));
}

static int hc_fleet_mc_del(struct hc_fleet_conn *c, const char *key, size_t klen)
{
    return hc_fleet_mc_err(memcached_delete(c->m, key, klen, 0));
}

static int hc_fleet_mc_server_of(struct hc_fleet_conn *c, const char *key, size_t klen)
{
    memcached_return_t rc;
    const memcached_instance_st *in = memcached_server_by_key(c->m, key, klen, &rc);
    char name[64];

    if (!in)
        return -1;
    snprintf(name, sizeof(name), "%s:%u", memcached_server_name(in),
             (unsigned)memcached_server_port(in));
    for (unsigned s = 0; s < c->mc->base.nservers && s < 16; s++)
        if (strcmp(name, c->mc->base.server_names[s]) == 0)
            return (int)s;
    return -1;
}

static void hc_fleet_mc_destroy(struct hc_fleet_backend *b)
{
    struct hc_fleet_mc *mc = (struct hc_fleet_mc *)b;

    if (!mc)
        return;
    memcached_free(mc->proto);
    pthread_mutex_destroy(&mc->lock);
    free(mc);
}

static const struct hc_fleet_backend_ops hc_fleet_mc_ops = {
    .version = HC_FLEET_BACKEND_V1,
    .name = "memcached",
    .open = hc_fleet_mc_open,
    .close = hc_fleet_mc_close,
    .mget = hc_fleet_mc_mget,
    .add = hc_fleet_mc_add,
    .set = hc_fleet_mc_set,
    .del = hc_fleet_mc_del,
    .server_of = hc_fleet_mc_server_of,
    .destroy = hc_fleet_mc_destroy,
};

/* Add one "host[:port]" item (trimmed). @return 0 or -EINVAL (logged). */
static int hc_fleet_mc_add_server(struct hc_fleet_mc *mc, const char *item, size_t len)
{
    char buf[300], *colon, *end;
    unsigned long port = 11211;

    while (len && isspace((unsigned char)*item))
        item++, len--;
    while (len && isspace((unsigned char)item[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(buf)) {
        TLOG_E("fleet: '%.*s': not a memcached server (host[:port])", (int)len, item);
        return -EINVAL;
    }
    memcpy(buf, item, len);
    buf[len] = '\0';
    colon = strrchr(buf, ':');
    if (colon) {
        *colon = '\0';
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || colon[1] == '\0' || port == 0 || port > 65535) {
            TLOG_E("fleet: '%.*s': the port is not a number from 1 to 65535", (int)len, item);
            return -EINVAL;
        }
    }
    if (buf[0] == '\0' || strpbrk(buf, " \t,+")) {
        TLOG_E("fleet: '%.*s': no host name", (int)len, item);
        return -EINVAL;
    }
    if (memcached_server_add(mc->proto, buf, (in_port_t)port) != MEMCACHED_SUCCESS) {
        TLOG_E("fleet: cannot add memcached server %s:%lu", buf, port);
        return -EINVAL;
    }
    if (mc->base.nservers < 16) /* a long name is cut: it only labels the stats */
        snprintf(mc->base.server_names[mc->base.nservers], 64, "%.50s:%lu", buf, port);
    mc->base.nservers++;
    return 0;
}

/* The servers of "@FILE": one per line; blank lines and #comments skipped. */
static int hc_fleet_mc_file(struct hc_fleet_mc *mc, const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[512];
    int rc = 0;

    if (!fp) {
        rc = -errno;
        TLOG_E("fleet: cannot read the server list %s: %s", path, strerror(-rc));
        return rc;
    }
    while (rc == 0 && fgets(line, sizeof(line), fp)) {
        char *p = line + strspn(line, " \t");
        size_t l = strcspn(p, "#\r\n");
        while (l && isspace((unsigned char)p[l - 1]))
            l--;
        if (l)
            rc = hc_fleet_mc_add_server(mc, p, l);
    }
    fclose(fp);
    return rc;
}

int hc_fleet_memcached_create(const char *servers, unsigned timeout_ms, unsigned retry_s,
                              struct hc_fleet_backend **out)
{
    struct hc_fleet_mc *mc;
    int rc = 0;

    *out = NULL;
    if (!servers || !*servers) {
        TLOG_E("fleet: no memcached servers given");
        return -EINVAL;
    }
    mc = calloc(1, sizeof(*mc));
    if (!mc)
        return -ENOMEM;
    mc->base.ops = &hc_fleet_mc_ops;
    pthread_mutex_init(&mc->lock, NULL);
    mc->proto = memcached_create(NULL);
    if (!mc->proto) {
        rc = -ENOMEM;
        goto fail;
    }
    if (servers[0] == '@') {
        rc = hc_fleet_mc_file(mc, servers + 1);
    } else {
        for (const char *p = servers; rc == 0;) {
            size_t l = strcspn(p, "+");
            rc = hc_fleet_mc_add_server(mc, p, l);
            if (!p[l])
                break;
            p += l + 1;
        }
    }
    if (rc == 0 && mc->base.nservers == 0) {
        TLOG_E("fleet: no memcached servers in '%s'", servers);
        rc = -EINVAL;
    }
    if (rc)
        goto fail;
    memcached_behavior_set(mc->proto, MEMCACHED_BEHAVIOR_DISTRIBUTION,
                           MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA);
    memcached_behavior_set(mc->proto, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
    memcached_behavior_set(mc->proto, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    hc_fleet_mc_timeouts(mc->proto, timeout_ms);
    memcached_behavior_set(mc->proto, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 1);
    memcached_behavior_set(mc->proto, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry_s);
    *out = &mc->base;
    return 0;
fail:
    hc_fleet_mc_destroy(&mc->base);
    return rc;
}
