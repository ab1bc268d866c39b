/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hugebuf.c: the aligned buffer allocator (ioeng_buf_alloc), block buffers on huge pages.
 *
 * DESIGN
 * Block buffers are large (64 KiB to a few MiB), and a cold scan makes hundreds of them
 * before the tiers start recycling. Each used to be its own posix_memalign mapping in
 * 4 KiB pages, and on a virtual machine the first touch of every such page costs a trip
 * to the hypervisor, where a 2 MiB page costs one trip for 512 of them (the measurements:
 * docs/performance.md, "Fresh memory"). A 2 MiB page also saves the TLB on any machine.
 *
 * So buffers whose size is a power of two from 64 KiB to 2 MiB share 2 MiB slots (one
 * class per size, a slot holds 2 MiB / size of them), and sizes that are multiples of
 * 2 MiB take runs of slots. The slots are carved from one PROT_NONE reservation of
 * address space made at the first call (twice the RAM, so a free tells a slot buffer from
 * a malloc one by its address alone; at most half of an address-space limit; it holds no
 * memory, but it is in the daemon's virtual size); a slot is committed with MAP_FIXED and
 * MADV_HUGEPAGE when first used and handed back (PROT_NONE again, its memory freed) when
 * its last buffer goes. A buffer freed from a slot that still holds others gives its
 * memory back with MADV_DONTNEED (the huge page splits): the process never holds more
 * than the buffers in use plus at most one slot per class. Every other size, or a full
 * or refused reservation, or TIERFS_HUGE_BUFFERS=0 in the environment, goes to
 * posix_memalign as before.
 *
 * INVARIANTS (all under hb_lock)
 * - slot state: FREE (reserved, no memory), SMALL (a class's slot: used = its buffers in
 *   use, never 0), RUN (the first slot of a large buffer of run slots), TAIL (the others).
 * - a SMALL slot is on its class's partial list iff it has a free buffer.
 */
#include "ioengine/ioengine_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/util.h"

#define HB_SLOT (2ul << 20)
#define HB_SLOT_SHIFT 21
#define HB_MIN_SHIFT 16 /* 64 KiB: at most 32 buffers in a slot, one bit each */
#define HB_CLASSES (HB_SLOT_SHIFT - HB_MIN_SHIFT + 1)
#define HB_MAX_RESERVE (4ull << 40)

enum hb_state { HB_FREE = 0, HB_SMALL, HB_RUN, HB_TAIL };

struct hb_slot {
    uint8_t state;
    uint8_t cls;        /* SMALL: size class (size = 64 KiB << cls) */
    uint32_t run;       /* RUN: slots in the buffer */
    uint32_t used;      /* SMALL: bit i set = buffer i in use */
    int32_t prev, next; /* SMALL: the class's partial list, -1 = none */
};

static pthread_once_t hb_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t hb_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *hb_base;               /* the reservation; NULL: none (posix_memalign only) */
static size_t hb_nslots;               /* its slots */
static struct hb_slot *hb_slots;       /* protected by hb_lock */
static int32_t hb_partial[HB_CLASSES]; /* protected by hb_lock */
static size_t hb_hint;                 /* where the next free-slot search starts; hb_lock */

/* Under AddressSanitizer every buffer is its own malloc block, so an overrun past a block
 * buffer still hits a redzone (slot neighbours would take it silently). */
#if defined(__SANITIZE_ADDRESS__)
#define HB_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HB_OFF 1
#endif
#endif

static void hb_init(void)
{
#ifdef HB_OFF
    return;
#endif
    /* TIERFS_HUGE_BUFFERS=0: every buffer from posix_memalign (tests under valgrind, whose
     * memcheck sees an overrun of a malloc block but not of a slot; or a host where huge
     * pages hurt) */
    const char *env = getenv("TIERFS_HUGE_BUFFERS");
    if (env && strcmp(env, "0") == 0)
        return;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t want = pages > 0 && psz > 0 ? 2ull * (uint64_t)pages * (uint64_t)psz : 0;
    void *p;

    for (int c = 0; c < HB_CLASSES; c++)
        hb_partial[c] = -1;
    want = CMN_MIN(CMN_MAX(want, 4ull << 30), HB_MAX_RESERVE);
    /* The reservation counts against an address-space limit (ulimit -v): take at most
     * half of one, so the rest of the process still has room */
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
        want = CMN_MIN(want, (uint64_t)as.rlim_cur / 2);
    want &= ~(uint64_t)(HB_SLOT - 1);
    if (want < 8 * HB_SLOT)
        return; /* posix_memalign for every buffer, as before */
    /* one slot more, to align the start */
    p = mmap(NULL, want + HB_SLOT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return; /* posix_memalign for every buffer, as before */
    hb_slots = calloc(want / HB_SLOT, sizeof(*hb_slots));
    if (!hb_slots) {
        munmap(p, want + HB_SLOT);
        return;
    }
    uintptr_t a = ((uintptr_t)p + HB_SLOT - 1) & ~(uintptr_t)(HB_SLOT - 1);
    size_t head = a - (uintptr_t)p;
    if (head)
        munmap(p, head);
    munmap((uint8_t *)a + want, HB_SLOT - head);
    hb_base = (uint8_t *)a;
    hb_nslots = want / HB_SLOT;
}

/* The class of @size, or -1 when it is no power of two from 64 KiB to 2 MiB. */
static int hb_class(size_t size)
{
    if (size < (1ul << HB_MIN_SHIFT) || size > HB_SLOT || (size & (size - 1)))
        return -1;
    return __builtin_ctzl(size) - HB_MIN_SHIFT;
}

static uint8_t *hb_addr(size_t slot)
{
    return hb_base + slot * HB_SLOT;
}

/* Give @n slots from @slot memory. @return 0 or -errno (they stay reserved). */
static int hb_commit(size_t slot, size_t n)
{
    void *p = mmap(hb_addr(slot), n * HB_SLOT, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    (void)madvise(p, n * HB_SLOT, MADV_HUGEPAGE); /* best effort: THP may be off */
    return 0;
}

/* Free @n slots' memory and put them back in the reservation. */
static void hb_decommit(size_t slot, size_t n)
{
    /* MAP_FIXED over them: one call frees the pages and restores PROT_NONE; should it
     * fail, the memory is only freed, and the slots are reused all the same */
    if (mmap(hb_addr(slot), n * HB_SLOT, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
        (void)madvise(hb_addr(slot), n * HB_SLOT, MADV_DONTNEED);
}

/* A run of @n FREE slots, marked @state (RUN: the first, TAIL the rest). @return its
 * first slot, or -1 when none (the reservation is full or fragmented). */
static long hb_take(size_t n)
{
    for (size_t k = 0, i = hb_hint; k < hb_nslots; k++, i = (i + 1) % hb_nslots) {
        if (i + n > hb_nslots)
            continue;
        size_t j = 0;
        while (j < n && hb_slots[i + j].state == HB_FREE)
            j++;
        if (j < n)
            continue;
        if (hb_commit(i, n) != 0)
            return -1;
        hb_hint = (i + n) % hb_nslots;
        return (long)i;
    }
    return -1;
}

static void hb_unlink(int cls, size_t s)
{
    struct hb_slot *x = &hb_slots[s];

    if (x->prev >= 0)
        hb_slots[x->prev].next = x->next;
    else
        hb_partial[cls] = x->next;
    if (x->next >= 0)
        hb_slots[x->next].prev = x->prev;
    x->prev = x->next = -1;
}

static void hb_push(int cls, size_t s)
{
    struct hb_slot *x = &hb_slots[s];

    x->prev = -1;
    x->next = hb_partial[cls];
    if (x->next >= 0)
        hb_slots[x->next].prev = (int32_t)s;
    hb_partial[cls] = (int32_t)s;
}

/* A buffer of class @cls from a slot. @return it, or NULL (caller falls back). */
static void *hb_alloc_small(int cls)
{
    size_t size = 1ul << (cls + HB_MIN_SHIFT);
    uint32_t nbuf = (uint32_t)(HB_SLOT / size);
    uint32_t all = nbuf == 32 ? UINT32_MAX : (1u << nbuf) - 1;
    long s = hb_partial[cls];

    if (s < 0) {
        if ((s = hb_take(1)) < 0)
            return NULL;
        hb_slots[s] =
            (struct hb_slot){.state = HB_SMALL, .cls = (uint8_t)cls, .prev = -1, .next = -1};
        if (nbuf > 1)
            hb_push(cls, (size_t)s);
    }
    struct hb_slot *x = &hb_slots[s];
    unsigned i = (unsigned)__builtin_ctz(~x->used);
    x->used |= 1u << i;
    if (x->used == all && nbuf > 1)
        hb_unlink(cls, (size_t)s);
    return hb_addr((size_t)s) + (size_t)i * size;
}

void *ioeng_buf_alloc(size_t size)
{
    void *p = NULL;
    size_t want = CMN_ALIGN_UP(size ? size : 1, IOENG_BUF_ALIGN);
    int cls = hb_class(want);

    pthread_once(&hb_once, hb_init);
    if (hb_base && (cls >= 0 || want % HB_SLOT == 0)) {
        pthread_mutex_lock(&hb_lock);
        if (cls >= 0) {
            p = hb_alloc_small(cls);
        } else {
            long s = hb_take(want / HB_SLOT);
            if (s >= 0) {
                hb_slots[s] = (struct hb_slot){.state = HB_RUN, .run = (uint32_t)(want / HB_SLOT)};
                for (size_t j = 1; j < want / HB_SLOT; j++)
                    hb_slots[(size_t)s + j].state = HB_TAIL;
                p = hb_addr((size_t)s);
            }
        }
        pthread_mutex_unlock(&hb_lock);
        if (p)
            return p;
    }
    /* Round up so a buffer always covers whole blocks, even for odd sizes. */
    if (posix_memalign(&p, IOENG_BUF_ALIGN, want) != 0)
        return NULL;
    return p;
}

bool ioeng_buf_huge(const void *buf)
{
    return hb_base && (const uint8_t *)buf >= hb_base &&
           (const uint8_t *)buf < hb_base + hb_nslots * HB_SLOT;
}

void ioeng_buf_free(void *buf)
{
    if (!buf)
        return;
    if (!ioeng_buf_huge(buf)) {
        free(buf);
        return;
    }
    size_t off = (size_t)((uint8_t *)buf - hb_base), s = off >> HB_SLOT_SHIFT;
    pthread_mutex_lock(&hb_lock);
    struct hb_slot *x = &hb_slots[s];
    if (x->state == HB_RUN) {
        size_t n = x->run;
        for (size_t j = 0; j < n; j++)
            hb_slots[s + j] = (struct hb_slot){.state = HB_FREE};
        hb_decommit(s, n);
    } else if (x->state == HB_SMALL) {
        int cls = x->cls;
        size_t size = 1ul << (cls + HB_MIN_SHIFT);
        uint32_t nbuf = (uint32_t)(HB_SLOT / size);
        uint32_t all = nbuf == 32 ? UINT32_MAX : (1u << nbuf) - 1;
        unsigned i = (unsigned)((off & (HB_SLOT - 1)) / size);
        bool was_full = x->used == all;
        x->used &= ~(1u << i);
        if (x->used == 0) {
            if (nbuf > 1)
                hb_unlink(cls, s);
            *x = (struct hb_slot){.state = HB_FREE};
            hb_decommit(s, 1);
        } else {
            if (was_full)
                hb_push(cls, s);
            /* its neighbours stay: only its own memory goes back */
            (void)madvise(buf, size, MADV_DONTNEED);
        }
    }
    pthread_mutex_unlock(&hb_lock);
}
