/* epoll backend (epoll(7)). */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop/backend.h"
#include "wharf/loop.h"

typedef struct ep_state {
    int epfd;
    unsigned max;
} ep_state;

/* ep_poll has the kernel write its events straight into the caller's array
 * and widens them in place, so the backend keeps no event buffer of its own
 * and several threads may poll one instance at once (the runtime's shared
 * ONESHOT poller). That needs the kernel's record to be no larger than ours. */
_Static_assert(sizeof(struct epoll_event) <= sizeof(wh__fired), "epoll_event fits in wh__fired");

static int ep_init(void **state, unsigned max_events)
{
    ep_state *s = malloc(sizeof(*s));
    if (!s) return -ENOMEM;
    /* CLOEXEC: a fork+exec'd child (CGI, workers) must not inherit the poller. */
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int e = -errno;
        free(s);
        return e;
    }
    s->max = max_events;
    *state = s;
    return 0;
}

static void ep_free(void *state)
{
    ep_state *s = state;
    close(s->epfd);
    free(s);
}

static uint32_t ep_mask(unsigned f)
{
    uint32_t m = 0;
    if (f & WH_IO_READ) m |= EPOLLIN;
    if (f & WH_IO_WRITE) m |= EPOLLOUT;
    if (f & WH_IO_EDGE) m |= EPOLLET;
    if (f & WH_IO_ONESHOT) m |= EPOLLONESHOT;
    if (f & WH_IO_EXCLUSIVE)
        /* epoll_ctl(2): EPOLLEXCLUSIVE allows only EPOLLIN/OUT/WAKEUP/ET beside
         * it (EINVAL otherwise), so no EPOLLRDHUP; EPOLLHUP still arrives. */
        m |= EPOLLEXCLUSIVE;
    else if (f & WH_IO_READ)
        /* Half-close shows up as HUP without a read() returning 0 first. */
        m |= EPOLLRDHUP;
    return m;
}

static int ep_do(ep_state *s, int op, int fd, uint64_t token, unsigned flags)
{
    struct epoll_event ev = {.events = ep_mask(flags), .data.u64 = token};
    if (epoll_ctl(s->epfd, op, fd, &ev) < 0) return -errno;
    return 0;
}

static int ep_ctl(void *state, int fd, uint64_t token, unsigned old_flags, unsigned new_flags)
{
    ep_state *s = state;
    if (!old_flags) return ep_do(s, EPOLL_CTL_ADD, fd, token, new_flags);
    if (!new_flags) {
        int r = ep_do(s, EPOLL_CTL_DEL, fd, token, 0);
        /* The fd was already closed (the kernel dropped the registration with
         * the last reference to the file) or never reached the kernel: the
         * watcher is gone either way. */
        if (r == -EBADF || r == -ENOENT) r = 0;
        return r;
    }
    if ((old_flags | new_flags) & WH_IO_EXCLUSIVE) {
        /* epoll_ctl(2): EPOLL_CTL_MOD on an EPOLLEXCLUSIVE entry (or to add
         * the flag) fails with EINVAL; the only way to change it is DEL+ADD. */
        int r = ep_do(s, EPOLL_CTL_DEL, fd, token, 0);
        if (r < 0 && r != -ENOENT) return r;
        return ep_do(s, EPOLL_CTL_ADD, fd, token, new_flags);
    }
    return ep_do(s, EPOLL_CTL_MOD, fd, token, new_flags);
}

static int ep_poll(void *state, int timeout_ms, wh__fired *out, unsigned max)
{
    ep_state *s = state;
    if (max > s->max) max = s->max;
    unsigned char *raw = (unsigned char *)out;
    int n = epoll_wait(s->epfd, (struct epoll_event *)raw, (int)max, timeout_ms);
    if (n < 0)
        /* A signal handler ran (no SA_RESTART, or epoll_wait never restarts:
         * signal(7) lists it among the calls that always fail with EINTR). The
         * loop just goes round again with fresh time. */
        return errno == EINTR ? 0 : -errno;
    /* Widen in place, last record first: record i is read from offset
     * i * sizeof(epoll_event) before out[i] (at i * sizeof(wh__fired), never
     * lower) is written, and out[i] only overlaps records after i, which are
     * already done. memcpy because the two views alias. */
    for (int i = n - 1; i >= 0; i--) {
        struct epoll_event ev;
        memcpy(&ev, raw + (size_t)i * sizeof ev, sizeof ev);
        uint32_t w = 0;
        if (ev.events & EPOLLIN) w |= WH_IO_READ;
        if (ev.events & EPOLLOUT) w |= WH_IO_WRITE;
        if (ev.events & (EPOLLHUP | EPOLLRDHUP)) w |= WH_IO_HUP;
        if (ev.events & EPOLLERR) w |= WH_IO_ERR;
        out[i].token = ev.data.u64;
        out[i].events = w;
    }
    return n;
}

static int ep_fd(void *state)
{
    return ((ep_state *)state)->epfd;
}

const wh__backend wh__backend_epoll = {
    .name = "epoll",
    .close_drops = true,
    .init = ep_init,
    .free = ep_free,
    .ctl = ep_ctl,
    .poll = ep_poll,
    .fd = ep_fd,
};
