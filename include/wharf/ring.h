/* wharf ring: a bounded lock-free single-producer/single-consumer queue of
 * pointers (seed 002's ring buffer joining an I/O thread and a worker; the
 * runtime's dispatch model hands accepted sockets to workers through one per
 * worker).
 *
 * Threading: exactly one thread pushes and exactly one thread pops at a time;
 * wh_ring_count() may be called from any thread. A push "publishes" the item:
 * everything the producer wrote before the push is visible to the consumer
 * after the matching pop (release/acquire).
 */
#ifndef WHARF_RING_H
#define WHARF_RING_H

#include "wharf/common.h"

WH_BEGIN_DECLS

typedef struct wh_ring wh_ring;

/* Creates a ring holding at least capacity items (rounded up to a power of
 * two, at least 2). 0, -EINVAL (capacity 0 or too large) or -ENOMEM. */
int wh_ring_new(wh_ring **out, size_t capacity);
/* Frees the ring (NULL is fine); items still queued are not touched. */
void wh_ring_free(wh_ring *r);
/* Producer: queues item (must not be NULL). False when the ring is full. */
bool wh_ring_push(wh_ring *r, void *item);
/* Consumer: takes the oldest item, or NULL when the ring is empty. */
void *wh_ring_pop(wh_ring *r);
/* Consumer: the oldest item without taking it, or NULL when empty. */
void *wh_ring_peek(wh_ring *r);
/* Any thread: items queued at some instant during the call (a hint). */
size_t wh_ring_count(const wh_ring *r);
/* Items the ring can hold. */
size_t wh_ring_capacity(const wh_ring *r);

WH_END_DECLS

#endif
