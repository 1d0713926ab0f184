/* Polling backend interface: the loop core knows nothing of epoll.
 * A backend is a small ops table (Redis's ae_epoll.c / ae_kqueue.c shape);
 * io_uring or kqueue backends implement the same five functions. */
#ifndef WH_LOOP_BACKEND_H
#define WH_LOOP_BACKEND_H

#include <stdint.h>

#include "loop/loop_internal.h"

/* wh__fired (one ready watcher) is in loop_internal.h: pollers hand it out. */

typedef struct wh__backend {
    const char *name;
    /* Creates the backend state; 0 or negative errno. */
    int (*init)(void **state, unsigned max_events);
    void (*free)(void *state);
    /* Changes the interest of fd from old_flags to new_flags (WH_IO_* bits):
     * old 0 = not registered (add), new 0 = remove, both equal = re-arm a
     * one-shot. token comes back in wh__fired. 0 or negative errno. */
    int (*ctl)(void *state, int fd, uint64_t token, unsigned old_flags, unsigned new_flags);
    /* Waits up to timeout_ms (-1 forever, 0 not at all); fills out[0..max) and
     * returns the count; 0 when interrupted (EINTR); negative errno on failure.
     * Keeps no buffer of its own: threads may poll one state at once. */
    int (*poll)(void *state, int timeout_ms, wh__fired *out, unsigned max);
    /* The fd that becomes readable when events are pending (epoll fd), or -1. */
    int (*fd)(void *state);
} wh__backend;

extern const wh__backend wh__backend_epoll;

#endif
