/* A standalone poller: one more instance of the loop's backend, not tied to a
 * loop. The runtime's ONESHOT model keeps every parked connection in one of
 * these, shared by all worker threads; each worker watches its fd from its
 * own loop. Going through the backend ops (not epoll directly) keeps the
 * model working on whatever backend the loops use. */
#include <stdlib.h>

#include "loop/backend.h"
#include "loop/loop_internal.h"

struct wh__poller {
    const wh__backend *ops;
    void *be;
};

int wh__poller_new(wh__poller **out, unsigned max_events)
{
    wh__poller *p = calloc(1, sizeof(*p));
    if (!p) return -ENOMEM;
    p->ops = &wh__backend_epoll;
    int rc = p->ops->init(&p->be, max_events ? max_events : 64);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void wh__poller_free(wh__poller *p)
{
    if (!p) return;
    p->ops->free(p->be);
    free(p);
}

int wh__poller_arm_oneshot(wh__poller *p, int fd, uint64_t token)
{
    const unsigned f = WH_IO_READ | WH_IO_ONESHOT;
    /* Re-arm first: after its first park a connection stays registered
     * (disarmed) while a worker owns it, so MOD is the common case. */
    int rc = p->ops->ctl(p->be, fd, token, f, f);
    if (rc == -ENOENT) rc = p->ops->ctl(p->be, fd, token, 0, f);
    return rc;
}

int wh__poller_poll(wh__poller *p, wh__fired *out, unsigned max)
{
    return p->ops->poll(p->be, 0, out, max);
}

int wh__poller_fd(const wh__poller *p)
{
    return p->ops->fd(p->be);
}
