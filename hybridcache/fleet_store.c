/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet_store.c: the fleet tier's writing side: the leases this mount holds and the beat
 * thread that keeps those whose fetch moves on alive for their waiters, the store queue
 * and its threads (pieces written, then the lease released). The design is in fleet.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/fleet_i.h"

/* ---- the leases held ---- */

/* A lease of @r's was taken: list it for the beat thread (without memory, it just gets
 * no beats: its waiters wait one period, as for a stalled holder). */
void hc_fleet_hold(struct hc_fleet *f, struct hc_fleet_req *r)
{
    struct hc_fleet_held *h = calloc(1, sizeof(*h));

    r->held = h;
    if (!h)
        return;
    memcpy(h->hash, r->hash, 32);
    pthread_mutex_lock(&f->beat_lock);
    h->next = f->held;
    if (h->next)
        h->next->pprev = &h->next;
    h->pprev = &f->held;
    f->held = h;
    pthread_mutex_unlock(&f->beat_lock);
}

/* The lease of @h is being released: no rewrite of it may follow (beat_lock). */
void hc_fleet_unhold(struct hc_fleet *f, struct hc_fleet_held *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&f->beat_lock);
    *h->pprev = h->next;
    if (h->next)
        h->next->pprev = h->pprev;
    pthread_mutex_unlock(&f->beat_lock);
    free(h);
}

/* ---- the store threads ---- */

/* Give back @j's lent bytes, drop its lease record (if still there), free it. */
void hc_fleet_job_free(struct hc_fleet *f, struct hc_fleet_job *j)
{
    if (j->release)
        j->release(j->rarg);
    hc_fleet_unhold(f, j->held);
    free(j);
}

static void hc_fleet_write(struct hc_fleet *f, struct hc_fleet_conn *c, struct hc_fleet_job *j,
                           uint8_t *vbuf, size_t vcap)
{
    char key[HC_FLEET_KEY_MAX];
    size_t kl;
    int rc = 0;

    if (j->len > 0) {
        unsigned pieces = hc_fleet_pieces(j->len, f->conf.piece_size);
        uint32_t crc = cmn_crc32c(0, j->bytes, j->len);
        /* piece 0 last: a reader that sees piece 0 most likely finds the others */
        for (unsigned k = pieces; k-- > 0 && rc == 0;) {
            ssize_t vl = hc_fleet_encode(j->hash, j->bytes, j->len, crc, f->conf.piece_size, k,
                                         f->secret, f->conf.secret_len, vbuf, vcap);
            kl = hc_fleet_key(j->hash, (int)k, key);
            rc = vl < 0 ? (int)vl : f->be->ops->set(c, key, kl, vbuf, (size_t)vl, f->conf.ttl_s);
            if (rc == 0)
                HC_FLEET_ADD(f, bytes_out, (uint64_t)vl);
            else
                hc_fleet_error(f, c, key, kl, rc, "a store");
        }
        if (rc == 0)
            HC_FLEET_CTR(f, stores);
        else
            HC_FLEET_CTR(f, store_errors);
    }
    hc_fleet_unhold(f, j->held);
    j->held = NULL;
    if (j->leased) {
        kl = hc_fleet_key(j->hash, -1, key);
        rc = f->be->ops->del(c, key, kl);
        if (rc < 0 && rc != -ENOENT)
            hc_fleet_error(f, c, key, kl, rc, "releasing a lease");
    }
}

void *hc_fleet_store_loop(void *arg)
{
    struct hc_fleet *f = arg;
    struct hc_fleet_conn *c = NULL;
    size_t vcap = HC_FLEET_HDR + HC_FLEET_MAC + f->conf.piece_size;
    uint8_t *vbuf = malloc(vcap);

    /* Stores are in the background: nobody waits for them, so they get a longer bound
     * than lookups (a 512 KiB value to a busy server); the queue bounds what waits. */
    c = hc_fleet_conn_open(f, HC_FLEET_STORE_TIMEOUT_MS);
    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (!f->sq_head && !f->stop)
            pthread_cond_wait(&f->storec, &f->lock);
        struct hc_fleet_job *j = f->sq_head;
        if (!j)
            break;
        f->sq_head = j->next;
        if (!f->sq_head)
            f->sq_tail = NULL;
        size_t j_len = j->len;
        pthread_mutex_unlock(&f->lock);
        if (c && vbuf)
            hc_fleet_write(f, c, j, vbuf, vcap);
        hc_fleet_job_free(f, j);
        __atomic_add_fetch(&f->stores_done, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&f->lock);
        f->sq_bytes -= j_len;
    }
    pthread_mutex_unlock(&f->lock);
    if (c)
        f->be->ops->close(c);
    free(vbuf);
    return NULL;
}

/* ---- the API of the writing side ---- */

/* Queue @j (len 0: a release only). @return false when it does not fit (not queued). */
static bool hc_fleet_queue(struct hc_fleet *f, struct hc_fleet_job *j)
{
    bool ok;

    pthread_mutex_lock(&f->lock);
    ok = !f->stop && f->sq_bytes + j->len <= f->conf.store_queue;
    if (ok) {
        j->next = NULL;
        if (j->held) { /* waiting to be stored is progress while the stores move */
            __atomic_store_n(&j->held->queued, true, __ATOMIC_RELAXED);
            __atomic_add_fetch(&j->held->progress, 1, __ATOMIC_RELAXED);
        }
        if (f->sq_tail)
            f->sq_tail->next = j;
        else
            f->sq_head = j;
        f->sq_tail = j;
        f->sq_bytes += j->len;
        pthread_cond_signal(&f->storec);
    }
    pthread_mutex_unlock(&f->lock);
    return ok;
}

void hc_fleet_progress(struct hc_fleet *f, struct hc_fleet_req *r)
{
    (void)f;
    if (r->leased && r->held)
        __atomic_add_fetch(&r->held->progress, 1, __ATOMIC_RELAXED);
}

void hc_fleet_store(struct hc_fleet *f, struct hc_fleet_req *r, const void *data, size_t len,
                    void (*release)(void *), void *rarg)
{
    struct hc_fleet_job *j = NULL;

    if (len != r->len || len > f->conf.store_queue) {
        if (len == r->len)
            HC_FLEET_CTR(f, store_drops);
        goto drop;
    }
    j = malloc(sizeof(*j) + (release ? 0 : len));
    if (!j) {
        HC_FLEET_CTR(f, store_drops);
        goto drop;
    }
    *j = (struct hc_fleet_job){
        .leased = r->leased, .held = r->held, .len = len, .release = release, .rarg = rarg};
    memcpy(j->hash, r->hash, 32);
    if (release) {
        j->bytes = data;
    } else {
        memcpy(j->data, data, len);
        j->bytes = j->data;
    }
    if (!hc_fleet_queue(f, j)) {
        j->held = NULL;          /* still @r's: the abandon releases it with the lease */
        hc_fleet_job_free(f, j); /* gives the lent bytes back */
        HC_FLEET_CTR(f, store_drops);
        hc_fleet_abandon(f, r);
        return;
    }
    r->leased = false; /* the job's now: a store thread releases the lease */
    r->held = NULL;
    return;
drop:
    if (release)
        release(rarg);
    hc_fleet_abandon(f, r);
}

void hc_fleet_abandon(struct hc_fleet *f, struct hc_fleet_req *r)
{
    struct hc_fleet_job *j;
    struct hc_fleet_held *h = r->held;

    r->held = NULL;
    if (!r->leased) {
        hc_fleet_unhold(f, h);
        return;
    }
    r->leased = false;
    j = calloc(1, sizeof(*j));
    if (!j) {
        hc_fleet_unhold(f, h);
        return; /* the lease expires by itself */
    }
    memcpy(j->hash, r->hash, 32);
    j->leased = true;
    j->held = h;
    if (!hc_fleet_queue(f, j))
        hc_fleet_job_free(f, j);
}

/* ---- the beat thread: leases whose fetch moves on stay alive for their waiters ---- */

/* Rewrite the lease of every listed record whose fetch moved on since the last round. */
static void hc_fleet_beat_once(struct hc_fleet *f, struct hc_fleet_conn *c)
{
    uint64_t stores = __atomic_load_n(&f->stores_done, __ATOMIC_RELAXED);
    uint32_t ttl = (f->conf.lease_ms + 999) / 1000 + 2; /* as hc_fleet_lease */
    char key[HC_FLEET_KEY_MAX], val[96];

    /* Held across the rewrites: a store thread releasing one of these leases waits, so
     * the release is the last word on it. */
    pthread_mutex_lock(&f->beat_lock);
    for (struct hc_fleet_held *h = f->held; h; h = h->next) {
        uint64_t p = __atomic_load_n(&h->progress, __ATOMIC_RELAXED);
        bool moved = p != h->beaten ||
                     (__atomic_load_n(&h->queued, __ATOMIC_RELAXED) && stores != h->stores_seen);
        h->stores_seen = stores;
        if (!moved)
            continue;
        h->beaten = p;
        h->beats++;
        size_t kl = hc_fleet_key(h->hash, -1, key);
        int vl = snprintf(val, sizeof(val), "%s #%llu", f->lease_val, (unsigned long long)h->beats);
        int rc = f->be->ops->set(c, key, kl, val, (size_t)vl, ttl);
        if (rc < 0) {
            hc_fleet_error(f, c, key, kl, rc, "renewing a lease");
            break; /* a sick fleet: the waiters time out as they would */
        }
    }
    pthread_mutex_unlock(&f->beat_lock);
}

void *hc_fleet_beat_loop(void *arg)
{
    struct hc_fleet *f = arg;
    struct hc_fleet_conn *c = hc_fleet_conn_open(f, 0);
    uint64_t period_ns = (uint64_t)CMN_MAX(f->conf.lease_ms / 4, 5u) * 1000000ull;

    pthread_mutex_lock(&f->lock);
    while (!f->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + period_ns;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&f->beatc, &f->lock, &ts);
        if (f->stop || !c)
            continue;
        pthread_mutex_unlock(&f->lock);
        hc_fleet_beat_once(f, c);
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    if (c)
        f->be->ops->close(c);
    return NULL;
}
