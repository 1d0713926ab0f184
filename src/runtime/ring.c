/* Bounded SPSC ring of pointers.
 *
 * Classic Lamport queue with two monotonically increasing indices: the
 * producer owns `tail`, the consumer owns `head`. Each side keeps a private
 * cached copy of the other side's index, so in the common case a push or pop
 * touches only its own cache line and reads the shared one only when the
 * cached view says "full" / "empty" (the trick from Rigtorp's and DPDK's
 * rings: it halves cross-core cache-line traffic under load).
 *
 * Memory order: the producer stores the slot, then publishes tail with
 * release; the consumer loads tail with acquire before reading the slot (and
 * symmetrically for head, so a slot is not overwritten before it was read).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "wharf/ring.h"

#define WH_CACHELINE 64

struct wh_ring {
    /* Consumer side. */
    _Alignas(WH_CACHELINE) _Atomic size_t head;
    size_t tail_cache; /* consumer's last view of tail */
    /* Producer side. */
    _Alignas(WH_CACHELINE) _Atomic size_t tail;
    size_t head_cache; /* producer's last view of head */
    /* Read-only after creation. */
    _Alignas(WH_CACHELINE) size_t mask;
    void *_Atomic *slots;
};

int wh_ring_new(wh_ring **out, size_t capacity)
{
    if (!out || capacity == 0 || capacity > ((size_t)1 << 40)) return -EINVAL;
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    wh_ring *r = aligned_alloc(WH_CACHELINE, sizeof(*r));
    if (!r) return -ENOMEM;
    r->slots = calloc(cap, sizeof(*r->slots));
    if (!r->slots) {
        free(r);
        return -ENOMEM;
    }
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_cache = 0;
    r->head_cache = 0;
    r->mask = cap - 1;
    *out = r;
    return 0;
}

void wh_ring_free(wh_ring *r)
{
    if (!r) return;
    free((void *)r->slots);
    free(r);
}

bool wh_ring_push(wh_ring *r, void *item)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - r->head_cache > r->mask) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - r->head_cache > r->mask) return false;
    }
    /* Slots are atomics only so that TSan sees a defined hand-over; a
     * relaxed store compiles to a plain mov. */
    atomic_store_explicit(&r->slots[tail & r->mask], item, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

void *wh_ring_peek(wh_ring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head == r->tail_cache) return NULL;
    }
    return atomic_load_explicit(&r->slots[head & r->mask], memory_order_relaxed);
}

void *wh_ring_pop(wh_ring *r)
{
    void *item = wh_ring_peek(r);
    if (item) {
        size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        atomic_store_explicit(&r->head, head + 1, memory_order_release);
    }
    return item;
}

size_t wh_ring_count(const wh_ring *r)
{
    /* Read head first: tail only grows, so tail - head never underflows. */
    size_t head = atomic_load_explicit(&((wh_ring *)r)->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&((wh_ring *)r)->tail, memory_order_acquire);
    return tail - head;
}

size_t wh_ring_capacity(const wh_ring *r)
{
    return r->mask + 1;
}
