/* Shared by the loop's watcher tests: a callback that records the events it
 * got, and a non-blocking Unix socket pair. */
#ifndef WH_TEST_LOOP_UTIL_H
#define WH_TEST_LOOP_UTIL_H

#include <sys/socket.h>

#include "wharf/loop.h"

struct rec {
    int calls;
    unsigned last; /* events of the last call */
    unsigned all;  /* every event seen */
};

static inline void rec_cb(wh_io *io, unsigned ev, void *ud)
{
    (void)io;
    struct rec *r = ud;
    r->calls++;
    r->last = ev;
    r->all |= ev;
}

/* A connected non-blocking, close-on-exec Unix stream pair: 0 or -1. */
static inline int sp(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
}

#endif
