/*
 * The deferred disk writer: a block fetched from S3 goes to the disk tier from the thread
 * that finished the fetch (a curl completion thread, a FUSE worker), which must never
 * block. When the disk's write queue is full at that moment (a region buffer is being
 * written and the next one is full too, which a small memory budget makes common) the
 * block was dropped: a 64 MiB mount lost 44 of 1,024 blocks of a cold 1 GiB scan with two
 * region buffers, although the disk writes several times faster than the network
 * delivers. Instead the block is queued here (a reference, no copy) and one thread writes
 * it once the disk has room, waiting up to HC_DEFER_WAIT_MS. While @hold blocks wait the
 * cooperator starts no new flight (hc_defer_full; on_room starts them again), so readers
 * wait for a disk that stalls for a moment (region writes of 100-500 ms were seen on
 * this VM's disk) instead of their blocks being dropped. The flights already running
 * when that happens (a prefetch's 8 blocks land at once) still queue, up to twice @hold:
 * their buffers were charged when they started, so this costs no memory. Only a block
 * that finds even that full, or waits a whole HC_DEFER_WAIT_MS (the disk really is
 * behind; later blocks then do not wait until one gets in), is dropped and counted.
 *
 * Queued blocks stay charged to the cache's memory (their entries hold their buffers):
 * new fetches wait for memory instead of the process growing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "hybridcache/cache_i.h"
#include "hybridcache/hc_i.h"

#define HC_DEFER_WAIT_MS 2000

struct hc_defer {
    struct hc_disk *disk;
    pthread_t thread;
    pthread_mutex_t lock;   /* protects the fields below */
    pthread_cond_t cond;    /* a block queued, or stop */
    struct hc_entry **ring; /* 2 * hold slots */
    unsigned hold;          /* at this many queued blocks new flights are held back */
    unsigned cap, head, n;
    bool busy; /* the thread holds a block it took off the ring */
    uint64_t deferred;
    bool stop;
    void (*on_room)(void *arg);
    void *on_room_arg;
};

static void *hc_defer_main(void *arg)
{
    struct hc_defer *q = arg;
    bool stalled = false;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->n && !q->stop)
            pthread_cond_wait(&q->cond, &q->lock);
        if (!q->n)
            break; /* stopping, and everything queued is written */
        struct hc_entry *e = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        q->busy = true;
        pthread_mutex_unlock(&q->lock);
        int rc = hc_disk_insert_wait(q->disk, e->hash, e->key, e->klen, e->data, e->len,
                                     stalled ? 0 : HC_DEFER_WAIT_MS);
        if (rc == -EAGAIN)
            hc_disk_note_drop(q->disk);
        /* A disk that gave no room for a whole wait is sick or stalled: the rest goes
         * without waiting (dropped when there is no room) until an insert gets in. */
        stalled = rc == -EAGAIN;
        hc_entry_put(e);
        /* Flights held back while the queue was full start now. Still busy meanwhile: a
         * queue of held flights with nothing running is fine while this is pending. */
        if (q->on_room)
            q->on_room(q->on_room_arg);
        pthread_mutex_lock(&q->lock);
        q->busy = false;
        pthread_cond_broadcast(&q->cond);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int hc_defer_create(struct hc_disk *disk, unsigned hold, void (*on_room)(void *), void *arg,
                    struct hc_defer **out)
{
    struct hc_defer *q;
    int rc;

    *out = NULL;
    if (!(q = calloc(1, sizeof(*q))))
        return -ENOMEM;
    q->hold = hold ? hold : 1;
    /* Room for every flight that can be running when the queue reaches @hold: with the
     * default @hold (the tier's blocks) that is at most @hold plus the overcommitted ones. */
    q->cap = 2 * q->hold + HC_FLIGHT_MIN_RUNNING;
    if (!(q->ring = calloc(q->cap, sizeof(*q->ring)))) {
        free(q);
        return -ENOMEM;
    }
    q->disk = disk;
    q->on_room = on_room;
    q->on_room_arg = arg;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    if ((rc = pthread_create(&q->thread, NULL, hc_defer_main, q)) != 0) {
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        free(q->ring);
        free(q);
        return -rc;
    }
    *out = q;
    return 0;
}

void hc_defer_insert(struct hc_defer *q, struct hc_entry *e)
{
    bool queued = false, empty;
    int rc;

    pthread_mutex_lock(&q->lock);
    empty = !q->n && !q->busy;
    pthread_mutex_unlock(&q->lock);
    /* Straight to the disk when nothing waits before it (the common case: no hand-off). */
    if (empty) {
        rc = hc_disk_insert_wait(q->disk, e->hash, e->key, e->klen, e->data, e->len, 0);
        if (rc != -EAGAIN)
            return;
    }
    pthread_mutex_lock(&q->lock);
    if (q->n < q->cap && !q->stop) {
        hc_entry_ref(e);
        q->ring[(q->head + q->n) % q->cap] = e;
        q->n++;
        q->deferred++;
        queued = true;
        pthread_cond_broadcast(&q->cond);
    }
    pthread_mutex_unlock(&q->lock);
    if (!queued)
        hc_disk_note_drop(q->disk);
}

bool hc_defer_full(struct hc_defer *q)
{
    bool full;

    if (!q)
        return false;
    pthread_mutex_lock(&q->lock);
    full = q->n >= q->hold;
    pthread_mutex_unlock(&q->lock);
    return full;
}

void hc_defer_stats(struct hc_defer *q, uint64_t *deferred, uint64_t *pending)
{
    *deferred = *pending = 0;
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    *deferred = q->deferred;
    *pending = q->n + q->busy;
    pthread_mutex_unlock(&q->lock);
}

void hc_defer_drain(struct hc_defer *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    while (q->n || q->busy)
        pthread_cond_wait(&q->cond, &q->lock);
    pthread_mutex_unlock(&q->lock);
}

void hc_defer_destroy(struct hc_defer *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL); /* it writes what is queued first */
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
}
