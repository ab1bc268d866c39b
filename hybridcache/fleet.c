/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet.c: the fleet tier's threads: lookups, lease waits, background stores.
 *
 * DESIGN
 * Lookup threads (conf.threads, each with its own backend connection) take batches off
 * a queue. For a batch they multi-get every piece of every block at once, verify each
 * piece (fleet_fmt.c) and the assembled block's CRC. A hit is answered at once. For a
 * miss they `add` the block's lease key (expiring after the lease period, so a holder
 * that dies frees it by itself): taken -> HC_FLEET_FETCH with leased set; held by
 * another mount -> the request joins the wait list after the batch's first answers;
 * a server error -> HC_FLEET_FETCH without a lease (the fleet is sick: go to the origin).
 * The poller thread multi-gets the pieces and lease keys of every waiting request each
 * conf.poll_ms: a copy that arrived is a hit; a lease that vanished without a copy (its
 * holder failed) is taken over; past the deadline (the lease period from when the wait
 * began) the request is HC_FLEET_FETCH without a lease: a stalled holder costs a waiter
 * at most one lease period. The store threads write queued blocks piece by piece (piece
 * 0 last) and then delete the lease key; the queue is bounded (conf.store_queue bytes)
 * and a block that does not fit is dropped and counted, its lease released.
 *
 * Leases held by this mount are listed (struct hc_fleet_held) for the beat thread: every
 * quarter lease period it rewrites the value of each lease whose fetch moved on since
 * the last beat (hc_fleet_progress, or queued for storing while the store threads
 * finish blocks). A waiter that sees its lease's value change waits one period more, up
 * to HC_FLEET_WAIT_PERIODS from the start of its wait: a slow but live GET keeps its
 * waiters (a waiter that gives up on it pulls the block from S3 a second time), a dead or
 * stalled one does not.
 *
 * Lock order: beat_lock, then f->lock. Neither is held across a done callback; f->lock
 * is never held across a server call, beat_lock only by the beat thread's rewrites (so a
 * store thread that unlinks a record under it knows no rewrite of that lease can follow
 * its release: a released lease never comes back).
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/fleet_i.h"

/* ---- verifying what a multi-get found ---- */

/* One request's pieces while a multi-get runs. */
struct hc_fleet_got {
    struct hc_fleet_req *r;
    unsigned pieces, ok;
    bool bad;
    bool lease_seen;
    uint32_t lease_crc; /* of the lease's value */
    uint32_t crc;
    enum hc_fleet_verdict why;
};

struct hc_fleet_mget {
    struct hc_fleet *f;
    struct hc_fleet_got *got;
    unsigned *owner; /* key index -> request index */
    int *piece;      /* key index -> piece, -1: the lease key */
};

static void hc_fleet_found(void *arg, unsigned i, const void *v, size_t len)
{
    struct hc_fleet_mget *m = arg;
    struct hc_fleet_got *g = &m->got[m->owner[i]];
    uint32_t crc = 0;
    enum hc_fleet_verdict vd;

    if (m->piece[i] < 0) {
        g->lease_seen = true;
        g->lease_crc = cmn_crc32c(0, v, len);
        return;
    }
    HC_FLEET_ADD(m->f, bytes_in, len);
    vd = hc_fleet_decode(g->r->hash, g->r->len, m->f->conf.piece_size, (unsigned)m->piece[i],
                         m->f->secret, m->f->conf.secret_len, v, len, g->r->buf, &crc);
    if (vd != HC_FLEET_OK) {
        g->bad = true;
        g->why = vd;
        return;
    }
    if (g->ok > 0 && crc != g->crc) {
        g->bad = true; /* pieces of different blocks: never a mix */
        g->why = HC_FLEET_BAD_CRC;
        return;
    }
    g->crc = crc;
    g->ok++;
}

/*
 * After the multi-get: is @g's block whole and right? Every piece verified its own bytes
 * and place and all carry the same block CRC (hc_fleet_found), so the pieces are of one
 * version of one block: the CRC of the assembled block is not computed again (it would be
 * a second pass over every block served). With @count, counts
 * and logs a bad value (a second look at the same block does not count it again).
 */
static bool hc_fleet_whole_as(struct hc_fleet *f, struct hc_fleet_got *g, bool count)
{
    if (!g->bad && g->ok == g->pieces)
        return true;
    if (count && (g->bad || g->ok == g->pieces)) {
        HC_FLEET_CTR(f, bad_values);
        tlog_rl_msg(&f->rl_bad, TLOG_WARNING,
                    "fleet: a value under a tierfs key did not verify (%s): a miss, not served",
                    g->bad ? hc_fleet_verdict_str(g->why) : "block checksum mismatch");
    }
    return false;
}

static bool hc_fleet_whole(struct hc_fleet *f, struct hc_fleet_got *g)
{
    return hc_fleet_whole_as(f, g, true);
}

/* Count a failed server call (per server when the backend says which). */
void hc_fleet_error(struct hc_fleet *f, struct hc_fleet_conn *c, const char *key, size_t klen,
                    int rc, const char *what)
{
    int s = f->be->ops->server_of ? f->be->ops->server_of(c, key, klen) : -1;

    HC_FLEET_CTR(f, errors);
    if (s >= 0 && s < 16)
        __atomic_add_fetch(&f->st.server_errors[s], 1, __ATOMIC_RELAXED);
    tlog_rl_msg(&f->rl_err, TLOG_WARNING, "fleet: %s on %s failed: %s (reads go on from S3)", what,
                s >= 0 && s < 16 ? f->be->server_names[s] : "a server", strerror(-rc));
}

/*
 * Multi-get the pieces of @n requests (and their lease keys with @leases) into their
 * buffers; @got gets each one's result. @return 0, or -errno from the backend (found
 * values were still recorded).
 */
static int hc_fleet_fetch(struct hc_fleet *f, struct hc_fleet_conn *c, struct hc_fleet_req **reqs,
                          unsigned n, bool leases, struct hc_fleet_got *got)
{
    unsigned nkeys = 0, k = 0;
    int rc = -ENOMEM;

    for (unsigned i = 0; i < n; i++) {
        got[i] = (struct hc_fleet_got){.r = reqs[i],
                                       .pieces = hc_fleet_pieces(reqs[i]->len, f->conf.piece_size)};
        nkeys += got[i].pieces + (leases ? 1 : 0);
    }
    char *keys = malloc((size_t)nkeys * HC_FLEET_KEY_MAX);
    const char **kp = malloc(nkeys * sizeof(*kp));
    size_t *kl = malloc(nkeys * sizeof(*kl));
    struct hc_fleet_mget m = {.f = f, .got = got};
    m.owner = malloc(nkeys * sizeof(*m.owner));
    m.piece = malloc(nkeys * sizeof(*m.piece));
    if (!keys || !kp || !kl || !m.owner || !m.piece)
        goto out;
    for (unsigned i = 0; i < n; i++) {
        for (int p = leases ? -1 : 0; p < (int)got[i].pieces; p++, k++) {
            kp[k] = keys + (size_t)k * HC_FLEET_KEY_MAX;
            kl[k] = hc_fleet_key(reqs[i]->hash, p, keys + (size_t)k * HC_FLEET_KEY_MAX);
            m.owner[k] = i;
            m.piece[k] = p;
        }
    }
    rc = f->be->ops->mget(c, kp, kl, nkeys, hc_fleet_found, &m);
    if (rc < 0)
        hc_fleet_error(f, c, kp[0], kl[0], rc, "a multi-get");
out:
    free(keys);
    free(kp);
    free(kl);
    free(m.owner);
    free(m.piece);
    return rc;
}

/* Try to take @r's lease. @return 0 taken, -EEXIST held by another mount, or -errno. */
static int hc_fleet_lease(struct hc_fleet *f, struct hc_fleet_conn *c, struct hc_fleet_req *r)
{
    char key[HC_FLEET_KEY_MAX];
    size_t kl = hc_fleet_key(r->hash, -1, key);
    /* memcached expiries are whole seconds on a clock that ticks once a second, so a
     * lease lives at least the lease period only with 2 s to spare; the waiters' bound
     * is their own deadline, the expiry only frees the lease of a holder that died */
    uint32_t ttl = (f->conf.lease_ms + 999) / 1000 + 2;
    int rc = f->be->ops->add(c, key, kl, f->lease_val, strlen(f->lease_val), ttl);

    if (rc < 0 && rc != -EEXIST)
        hc_fleet_error(f, c, key, kl, rc, "taking a lease");
    return rc;
}

static void hc_fleet_answer(struct hc_fleet *f, struct hc_fleet_req *r, enum hc_fleet_result res,
                            bool leased)
{
    r->leased = leased;
    r->held = NULL;
    if (leased)
        hc_fleet_hold(f, r);
    r->done(r, res);
}

/*
 * @n requests whose leases were just taken: look once more before fetching. Another mount
 * may have stored the block and let its lease go between our look and our `add` (its
 * pieces and its lease can sit on different servers, so no single look is atomic): then
 * the copy is there now, the lease goes back, and the block is a hit, not a second GET.
 */
static void hc_fleet_recheck(struct hc_fleet *f, struct hc_fleet_conn *c,
                             struct hc_fleet_req **reqs, unsigned n)
{
    struct hc_fleet_got *got = calloc(n, sizeof(*got));
    int rc = got ? hc_fleet_fetch(f, c, reqs, n, false, got) : -ENOMEM;

    for (unsigned i = 0; i < n; i++) {
        if (rc == 0 && hc_fleet_whole_as(f, &got[i], false)) {
            char key[HC_FLEET_KEY_MAX];
            size_t kl = hc_fleet_key(reqs[i]->hash, -1, key);
            f->be->ops->del(c, key, kl); /* failing, it expires by itself */
            HC_FLEET_CTR(f, lease_wait_hits);
            hc_fleet_answer(f, reqs[i], HC_FLEET_HIT, false);
        } else {
            HC_FLEET_CTR(f, lease_taken);
            hc_fleet_answer(f, reqs[i], HC_FLEET_FETCH, true);
        }
    }
    free(got);
}

/* ---- lookup threads ---- */

/* A thread's connection (@timeout_ms: 0 for the mount's). NULL when it cannot be had: the
 * thread then sends every request to the origin. */
struct hc_fleet_conn *hc_fleet_conn_open(struct hc_fleet *f, unsigned timeout_ms)
{
    struct hc_fleet_conn *c = NULL;

    return f->be->ops->open(f->be, timeout_ms, &c) == 0 ? c : NULL;
}

static void hc_fleet_do_batch(struct hc_fleet *f, struct hc_fleet_conn *c, struct hc_fleet_batch *b)
{
    struct hc_fleet_got *got = calloc(b->n, sizeof(*got));
    struct hc_fleet_req *wait = NULL, **wtail = &wait;
    struct hc_fleet_req **leased = calloc(b->n, sizeof(*leased));
    unsigned nleased = 0;
    uint64_t now = cmn_now_ns();
    int rc = got && leased ? hc_fleet_fetch(f, c, b->reqs, b->n, false, got) : -ENOMEM;

    for (unsigned i = 0; i < b->n; i++) {
        struct hc_fleet_req *r = b->reqs[i];

        HC_FLEET_CTR(f, lookups);
        if (got && hc_fleet_whole(f, &got[i])) {
            HC_FLEET_CTR(f, hits);
            hc_fleet_answer(f, r, HC_FLEET_HIT, false);
            continue;
        }
        HC_FLEET_CTR(f, misses);
        int lr = rc == -ENOMEM ? rc : hc_fleet_lease(f, c, r);
        if (lr == 0) {
            leased[nleased++] = r;
        } else if (lr == -EEXIST) {
            HC_FLEET_CTR(f, lease_waits);
            r->waited = true;
            r->deadline_ns = now + (uint64_t)f->conf.lease_ms * 1000000ull;
            r->cap_ns = now + (uint64_t)f->conf.lease_ms * 1000000ull * HC_FLEET_WAIT_PERIODS;
            r->lease_seen = false;
            r->poll_errors = 0;
            r->next = NULL;
            *wtail = r;
            wtail = &r->next;
        } else {
            hc_fleet_answer(f, r, HC_FLEET_FETCH, false);
        }
    }
    if (nleased)
        hc_fleet_recheck(f, c, leased, nleased);
    free(got);
    free(leased);
    if (b->done)
        b->done(b->arg);
    if (wait) {
        pthread_mutex_lock(&f->lock);
        *wtail = f->waiting;
        f->waiting = wait;
        pthread_cond_signal(&f->waitc);
        pthread_mutex_unlock(&f->lock);
    }
    free(b);
}

static void *hc_fleet_looker(void *arg)
{
    struct hc_fleet *f = arg;
    struct hc_fleet_conn *c = hc_fleet_conn_open(f, 0);

    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (!f->bq_head && !f->stop)
            pthread_cond_wait(&f->work, &f->lock);
        struct hc_fleet_batch *b = f->bq_head;
        if (!b)
            break; /* stopping, queue empty */
        f->bq_head = b->next;
        if (!f->bq_head)
            f->bq_tail = NULL;
        pthread_mutex_unlock(&f->lock);
        if (c) {
            hc_fleet_do_batch(f, c, b);
        } else { /* no connection: everything goes to the origin */
            for (unsigned i = 0; i < b->n; i++)
                hc_fleet_answer(f, b->reqs[i], HC_FLEET_FETCH, false);
            if (b->done)
                b->done(b->arg);
            free(b);
        }
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    if (c)
        f->be->ops->close(c);
    return NULL;
}

/* ---- the poller: requests waiting for another mount's copy ---- */

/* Look once more for the requests of @list; those still waiting go to *@keep. */
static void hc_fleet_poll_once(struct hc_fleet *f, struct hc_fleet_conn *c,
                               struct hc_fleet_req *list, struct hc_fleet_req **keep)
{
    unsigned n = 0, i = 0;
    uint64_t now = cmn_now_ns();

    for (struct hc_fleet_req *r = list; r; r = r->next)
        n++;
    struct hc_fleet_req **reqs = malloc(n * sizeof(*reqs));
    struct hc_fleet_got *got = calloc(n, sizeof(*got));
    for (struct hc_fleet_req *r = list; r && reqs; r = r->next)
        reqs[i++] = r;
    int rc = reqs && got ? hc_fleet_fetch(f, c, reqs, n, true, got) : -ENOMEM;
    *keep = NULL;
    for (i = 0; i < n; i++) {
        struct hc_fleet_req *r = reqs ? reqs[i] : list;
        if (!reqs)
            list = list->next;
        if (rc == 0 && got[i].lease_seen) { /* the holder rewrote it: its fetch moves on */
            if (r->lease_seen && got[i].lease_crc != r->lease_crc && r->deadline_ns < r->cap_ns) {
                r->deadline_ns = CMN_MIN(now + (uint64_t)f->conf.lease_ms * 1000000ull, r->cap_ns);
                HC_FLEET_CTR(f, lease_extends);
            }
            r->lease_seen = true;
            r->lease_crc = got[i].lease_crc;
        }
        /* a failed call still read the values of the servers that answered, verified */
        if (reqs && got && hc_fleet_whole(f, &got[i])) {
            HC_FLEET_CTR(f, lease_wait_hits);
            hc_fleet_answer(f, r, HC_FLEET_HIT, false);
        } else if (rc == 0 && !got[i].lease_seen && hc_fleet_lease(f, c, r) == 0) {
            hc_fleet_recheck(f, c, &r, 1); /* stored just now, or its holder let go */
        } else if (now >= r->deadline_ns) {
            HC_FLEET_CTR(f, lease_timeouts);
            hc_fleet_answer(f, r, HC_FLEET_FETCH, false);
        } else if (rc != 0 && ++r->poll_errors >= HC_FLEET_POLL_ERRORS) {
            /* a sick fleet: no more waiting. Not at the first failed look: on a loaded
             * host one late answer fails the whole multi-get, and sending every waiter
             * of it to the origin fetched their blocks twice (docs/fleet.md) */
            hc_fleet_answer(f, r, HC_FLEET_FETCH, false);
        } else {
            if (rc == 0)
                r->poll_errors = 0;
            r->next = *keep;
            *keep = r;
        }
    }
    free(reqs);
    free(got);
}

static void *hc_fleet_poll(void *arg)
{
    struct hc_fleet *f = arg;
    struct hc_fleet_conn *c = hc_fleet_conn_open(f, 0);

    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (!f->waiting && !f->stop_poll)
            pthread_cond_wait(&f->waitc, &f->lock);
        struct hc_fleet_req *list = f->waiting, *keep = NULL;
        if (!list)
            break; /* stop_poll, and nobody waits */
        f->waiting = NULL;
        bool stop = f->stop;
        pthread_mutex_unlock(&f->lock);
        if (stop || !c) { /* nobody will answer them from here on: the origin will */
            for (struct hc_fleet_req *r = list, *next; r; r = next) {
                next = r->next;
                hc_fleet_answer(f, r, HC_FLEET_FETCH, false);
            }
        } else {
            hc_fleet_poll_once(f, c, list, &keep);
        }
        pthread_mutex_lock(&f->lock);
        if (keep) {
            struct hc_fleet_req *t = keep;
            while (t->next)
                t = t->next;
            t->next = f->waiting;
            f->waiting = keep;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)f->conf.poll_ms * 1000000ull;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            if (!f->stop) /* stopping: the next turn answers them */
                pthread_cond_timedwait(&f->waitc, &f->lock, &ts);
        }
    }
    pthread_mutex_unlock(&f->lock);
    if (c)
        f->be->ops->close(c);
    return NULL;
}

/* ---- the API ---- */

int hc_fleet_prepare(struct hc_fleet *f, struct hc_fleet_req *r)
{
    if (!f || !r->id || r->idlen == 0 || r->idlen > HC_FLEET_ID_MAX)
        return -EINVAL;
    hc_fleet_hash(r->id, r->idlen, f->conf.piece_size, r->hash);
    return 0;
}

int hc_fleet_lookup(struct hc_fleet *f, struct hc_fleet_req **reqs, unsigned n,
                    hc_fleet_batch_fn batch_done, void *arg)
{
    struct hc_fleet_batch *b;

    if (!f || n == 0)
        return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        if (!reqs[i]->done ||
            hc_fleet_pieces(reqs[i]->len, f->conf.piece_size) > HC_FLEET_PIECES_MAX)
            return -EINVAL;
    }
    b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++)
        reqs[i]->leased = reqs[i]->waited = false;
    *b = (struct hc_fleet_batch){.reqs = reqs, .n = n, .done = batch_done, .arg = arg};
    pthread_mutex_lock(&f->lock);
    if (f->stop) {
        pthread_mutex_unlock(&f->lock);
        free(b);
        return -ESHUTDOWN;
    }
    if (f->bq_tail)
        f->bq_tail->next = b;
    else
        f->bq_head = b;
    f->bq_tail = b;
    pthread_cond_signal(&f->work);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

void hc_fleet_backend_destroy(struct hc_fleet_backend *b)
{
    if (b)
        b->ops->destroy(b);
}

void hc_fleet_get_stats(struct hc_fleet *f, struct hc_fleet_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!f)
        return;
    uint64_t *dst = (uint64_t *)st;
    const uint64_t *src = (const uint64_t *)&f->st;
    /* the counters up to store_queue_bytes are plain uint64_t: read each atomically */
    for (size_t i = 0; i < offsetof(struct hc_fleet_stats, store_queue_bytes) / sizeof(uint64_t);
         i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    pthread_mutex_lock(&f->lock);
    st->store_queue_bytes = f->sq_bytes;
    pthread_mutex_unlock(&f->lock);
    st->servers = f->be->nservers;
    for (unsigned s = 0; s < 16; s++) {
        st->server_errors[s] = __atomic_load_n(&f->st.server_errors[s], __ATOMIC_RELAXED);
        memcpy(st->server_names[s], f->be->server_names[s], sizeof(st->server_names[s]));
    }
}

static void hc_fleet_stop(struct hc_fleet *f)
{
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_broadcast(&f->work);
    pthread_cond_broadcast(&f->waitc);
    pthread_cond_broadcast(&f->storec);
    pthread_cond_broadcast(&f->beatc);
    pthread_mutex_unlock(&f->lock);
    for (unsigned i = 0; i < f->nlookers; i++)
        pthread_join(f->lookers[i], NULL);
    /* only now: the lookers may have put requests on the wait list until they ended, and
     * the poller answers every one (from the origin, once stopping) before it goes */
    pthread_mutex_lock(&f->lock);
    f->stop_poll = true;
    pthread_cond_broadcast(&f->waitc);
    pthread_mutex_unlock(&f->lock);
    if (f->poller_up)
        pthread_join(f->poller, NULL);
    for (unsigned i = 0; i < f->nstorers; i++)
        pthread_join(f->storers[i], NULL);
    if (f->beater_up)
        pthread_join(f->beater, NULL);
}

void hc_fleet_destroy(struct hc_fleet *f)
{
    if (!f)
        return;
    hc_fleet_stop(f);
    /* stores the store thread did not get to (it drains the queue before it ends) */
    while (f->sq_head) {
        struct hc_fleet_job *j = f->sq_head;
        f->sq_head = j->next;
        hc_fleet_job_free(f, j);
    }
    while (f->held) /* leases never stored nor abandoned: they expire by themselves */
        hc_fleet_unhold(f, f->held);
    f->be->ops->destroy(f->be);
    free(f->lookers);
    free(f->storers);
    if (f->secret)
        OPENSSL_cleanse(f->secret, f->conf.secret_len);
    free(f->secret);
    pthread_cond_destroy(&f->work);
    pthread_cond_destroy(&f->waitc);
    pthread_cond_destroy(&f->storec);
    pthread_cond_destroy(&f->beatc);
    pthread_mutex_destroy(&f->beat_lock);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int hc_fleet_create(const struct hc_fleet_conf *conf, struct hc_fleet_backend *backend,
                    struct hc_fleet **out)
{
    struct hc_fleet *f;
    char host[48] = "?";

    *out = NULL;
    if (!backend)
        return -EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f) {
        backend->ops->destroy(backend);
        return -ENOMEM;
    }
    f->be = backend;
    f->conf = *conf;
    if (!f->conf.piece_size)
        f->conf.piece_size = HC_FLEET_PIECE_DEFAULT;
    if (!f->conf.lease_ms)
        f->conf.lease_ms = 2000;
    if (!f->conf.poll_ms)
        f->conf.poll_ms = 5;
    if (!f->conf.threads)
        f->conf.threads = 4;
    /* Four: a set waits for memcached's answer, and a mount that leads a shared scan
     * stores nearly every block; with two its queue filled on a busy host and the drops
     * (each a block another mount then fetched itself) cost S3 bytes (docs/fleet.md) */
    if (!f->conf.store_threads)
        f->conf.store_threads = 4;
    if (!f->conf.store_queue)
        f->conf.store_queue = 32ull << 20;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->work, NULL);
    pthread_cond_init(&f->waitc, NULL);
    pthread_cond_init(&f->storec, NULL);
    pthread_cond_init(&f->beatc, NULL);
    pthread_mutex_init(&f->beat_lock, NULL);
    f->rl_bad = (struct tlog_ratelimit){.interval_ms = 60000, .burst = 1};
    f->rl_err = (struct tlog_ratelimit){.interval_ms = 60000, .burst = 1};
    gethostname(host, sizeof(host) - 1);
    snprintf(f->lease_val, sizeof(f->lease_val), "%s %d", host, (int)getpid());
    if (f->conf.piece_size < HC_FLEET_PIECE_MIN || f->conf.piece_size > HC_FLEET_PIECE_MAX) {
        TLOG_E("fleet: piece size %u out of range", f->conf.piece_size);
        goto fail;
    }
    if (conf->secret) {
        f->secret = malloc(conf->secret_len ? conf->secret_len : 1);
        if (!f->secret)
            goto fail;
        memcpy(f->secret, conf->secret, conf->secret_len);
    }
    f->conf.secret = NULL; /* f->secret is the copy */
    f->lookers = calloc(f->conf.threads, sizeof(*f->lookers));
    if (!f->lookers)
        goto fail;
    for (; f->nlookers < f->conf.threads; f->nlookers++)
        if (pthread_create(&f->lookers[f->nlookers], NULL, hc_fleet_looker, f) != 0)
            goto fail;
    if (pthread_create(&f->poller, NULL, hc_fleet_poll, f) != 0)
        goto fail;
    f->poller_up = true;
    f->storers = calloc(f->conf.store_threads, sizeof(*f->storers));
    if (!f->storers)
        goto fail;
    for (; f->nstorers < f->conf.store_threads; f->nstorers++)
        if (pthread_create(&f->storers[f->nstorers], NULL, hc_fleet_store_loop, f) != 0)
            goto fail;
    if (pthread_create(&f->beater, NULL, hc_fleet_beat_loop, f) != 0)
        goto fail;
    f->beater_up = true;
    *out = f;
    return 0;
fail:
    hc_fleet_destroy(f);
    return -ENOMEM;
}
