/* Polling backend interface: the loop core knows nothing of epoll.
 * A backend is a small ops table (Redis's ae_epoll.c / ae_kqueue.c shape):
 * backend_epoll.c and backend_uring.c implement the same five functions. */
#ifndef WH_LOOP_BACKEND_H
#define WH_LOOP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "loop/loop_internal.h"

/* wh__fired (one ready watcher) is in loop_internal.h: pollers hand it out. */

typedef struct wh__backend {
    const char *name;
    /* True when close(2) of an fd's last descriptor ends its registration
     * (epoll): the loop then skips the removal for a watcher whose fd is
     * about to be closed (wh__io_forget). False when a pending request holds
     * the file open (io_uring's poll): the loop removes it first. */
    bool close_drops;
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
    /* The fd that becomes readable when events are pending (the epoll fd, the
     * io_uring ring fd), or -1. */
    int (*fd)(void *state);
    /* NULL, or hands the kernel what ctl queued without waiting (io_uring:
     * the removals, which release the files their polls hold). The loop
     * calls it when wh_loop_run returns and when a watcher is removed
     * outside wh_loop_run, so a closed fd is closed for good even if the
     * loop does not poll again. */
    void (*flush)(void *state);
    /* NULL, or runs the callbacks of the completion ops (loop_internal.h,
     * wh__cq_*) that the last poll() reaped; the loop calls it after poll()
     * once its clock is fresh, before the fd events. */
    void (*complete)(void *state);
} wh__backend;

extern const wh__backend wh__backend_epoll;
#ifdef WH_HAVE_URING
/* io_uring (liburing), built when liburing-dev is found (WH_URING). */
extern const wh__backend wh__backend_uring;
#endif

#endif
