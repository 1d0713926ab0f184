/* epoll backend (epoll(7)). */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop/backend.h"
#include "wharf/loop.h"

typedef struct ep_state {
    int epfd;
    unsigned max;
    struct epoll_event ev[];
} ep_state;

static int ep_init(void **state, unsigned max_events)
{
    ep_state *s = malloc(sizeof(*s) + (size_t)max_events * sizeof(struct epoll_event));
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
    int n = epoll_wait(s->epfd, s->ev, (int)max, timeout_ms);
    if (n < 0)
        /* A signal handler ran (no SA_RESTART, or epoll_wait never restarts:
         * signal(7) lists it among the calls that always fail with EINTR). The
         * loop just goes round again with fresh time. */
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = s->ev[i].events;
        uint32_t w = 0;
        if (e & EPOLLIN) w |= WH_IO_READ;
        if (e & EPOLLOUT) w |= WH_IO_WRITE;
        if (e & (EPOLLHUP | EPOLLRDHUP)) w |= WH_IO_HUP;
        if (e & EPOLLERR) w |= WH_IO_ERR;
        out[i].token = s->ev[i].data.u64;
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
    .init = ep_init,
    .free = ep_free,
    .ctl = ep_ctl,
    .poll = ep_poll,
    .fd = ep_fd,
};
