/* SPDX-License-Identifier: Apache-2.0 */
/*
 * list.h: an intrusive doubly-linked list with a head and a tail, for the lists the
 * modules keep of their objects (the eviction queues, the unread prefetches of a memory
 * shard, the idle inodes, the open handles): the object embeds a struct cmn_link, the
 * owner a struct cmn_list. `prev` points toward the head, `next` toward the tail; an
 * unlinked link has both NULL. Nothing here locks or allocates: the owner's lock
 * protects the list and every link on it.
 */
#ifndef TIERFS_COMMON_LIST_H
#define TIERFS_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct cmn_link {
    struct cmn_link *prev, *next;
};

struct cmn_list {
    struct cmn_link *head, *tail; /* both NULL when empty */
};

/* The object that embeds @link as @member (NULL for NULL). Through void *: clang's
 * -Wcast-align rejects a char * cast to a more aligned type. */
#define CMN_LIST_ENTRY(lk, type, member)                                                           \
    ((lk) ? (type *)(void *)((char *)(lk)-offsetof(type, member)) : (type *)NULL)

static inline bool cmn_list_empty(const struct cmn_list *l)
{
    return l->head == NULL;
}

static inline void cmn_list_push_head(struct cmn_list *l, struct cmn_link *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

static inline void cmn_list_push_tail(struct cmn_list *l, struct cmn_link *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

/* Link @n on the tail side of @pos, which is on @l. */
static inline void cmn_list_insert_after(struct cmn_list *l, struct cmn_link *pos,
                                         struct cmn_link *n)
{
    n->prev = pos;
    n->next = pos->next;
    if (pos->next)
        pos->next->prev = n;
    else
        l->tail = n;
    pos->next = n;
}

/* Take @n, which is on @l, off it. */
static inline void cmn_list_unlink(struct cmn_list *l, struct cmn_link *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

#endif
