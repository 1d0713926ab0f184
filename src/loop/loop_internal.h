/* Internal loop interfaces for wharf's own layers (not for users). */
#ifndef WH_LOOP_INTERNAL_H
#define WH_LOOP_INTERNAL_H

#include "wharf/loop.h"

/* Per-loop slots so each layer keeps its own per-thread state on a loop
 * without a global and without fighting over wh_loop_set_data (the user's). */
enum wh__loop_slot {
    WH__SLOT_NET = 0,     /* net: timeout wheel, deferred-flush list */
    WH__SLOT_RUNTIME = 1, /* runtime: worker thread state */
    WH__SLOT_HTTP = 2,    /* http: date cache, per-thread pools */
    WH__SLOT_WS = 3,      /* websocket: broadcast registry */
    WH__SLOT_APP = 4,     /* apps (wharfd, guestbook, redis adapter) */
    WH__SLOT_APP2 = 5,
    WH__SLOT_COUNT = 8,
};

/* Returns the layer's pointer in slot, or NULL. */
void *wh__loop_slot(const wh_loop *loop, unsigned slot);
/* Sets slot; free_fn (may be NULL) runs on wh_loop_free, before watchers are freed. */
void wh__loop_set_slot(wh_loop *loop, unsigned slot, void *ptr, void (*free_fn)(void *ptr));

#endif
