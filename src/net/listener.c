/* Listeners: accept4 in a loop on a listening fd.
 *
 * Running out of descriptors. When accept4 fails with EMFILE/ENFILE the
 * pending connection stays in the backlog and the listening fd stays
 * readable, so a level-triggered loop would spin at 100% CPU. We stop
 * watching the fd and retry from a timer, 10 ms doubling up to 1 s, and at
 * once when a connection on this loop closes (it freed a descriptor). The
 * next successful accept resets the delay.
 *
 * On an io_uring loop with completion I/O (conn.c) a listener that is not
 * shared between loops (no EXCLUSIVE) accepts with one multishot accept op
 * instead: each connection is one completion, no accept4 and no poll
 * re-arm per connection. "Watching" is then having the op in the kernel;
 * -EMFILE and the like end it and start the same back-off, which re-arms
 * it. A freed listener's memory waits for the op's last completion.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net_priv.h"

#define BACKOFF_MIN_MS 10u
#define BACKOFF_MAX_MS 1000u

struct wh_listener {
    wh__netloop *nl;
    wh_io *io; /* NULL while paused or backing off */
    wh_timer *timer;
    int fd;
    int family;
    unsigned io_flags;
    wh_net_opts opts;
    wh__accept_cb on_accept;
    const wh__prof *prof; /* adopt mode */
    void *ud;
    unsigned delay_ms;
    bool paused;  /* wh__listener_pause */
    bool backing; /* waiting out EMFILE */
    bool in_cb;   /* inside on_accept/adopt: free must wait */
    bool want_free;
    bool own_fd;    /* wh_listen: close (and unlink) on free */
    bool tcp;       /* AF_INET/AF_INET6: per-connection TCP options apply */
    bool probed;    /* the first accepted socket was checked for inheritance */
    bool inherits;  /* accepted sockets carry the options set on the listener */
    uint8_t spec;   /* 0..3: how often a just-accepted socket had its request */
    uint8_t full;   /* readiness events in a row whose burst was used up whole */
    unsigned burst; /* accepts to try on the next readiness event */
    uint64_t accepted, backoffs;
    /* Completion mode (see the top): */
    bool cq;        /* accepts with a multishot accept op */
    bool cq_armed;  /* the op is in the kernel */
    bool cq_cancel; /* ... and its cancel was asked for */
    bool dead;      /* destroyed: freed at the op's last completion */
};

static void accept_cb(wh_io *io, unsigned events, void *ud);

static int watch(wh_listener *l)
{
    if (l->cq) {
        /* A cancelled op that is still in the kernel re-arms itself at its
         * last completion (accept_done), when watching is wanted. */
        if (l->cq_armed) return 0;
        if (wh__cq_accept(l->nl->loop, l->fd, l, l->nl->cq_accept) == 0) {
            l->cq_armed = true;
            return 0;
        }
        l->cq = false; /* no room for the op: readiness, as before */
    }
    if (l->io) return 0;
    /* A fresh watcher each time rather than wh_io_set(0)/(READ): an
     * EPOLLEXCLUSIVE registration cannot be modified, only deleted and added,
     * and pausing is rare. */
    int rc = wh_io_new(l->nl->loop, l->fd, accept_cb, l, &l->io);
    if (rc < 0) return rc;
    rc = wh_io_set(l->io, WH_IO_READ | (l->io_flags & WH_IO_EXCLUSIVE));
    if (rc < 0) {
        wh_io_free(l->io);
        l->io = NULL;
    }
    return rc;
}

static void unwatch(wh_listener *l)
{
    /* At once: a pause or a free is followed by a drain and a close, or by
     * a hand-over of the socket (an upgrade): the op must take no more. */
    if (l->cq_armed && !l->cq_cancel && wh__cq_cancel_now(l->nl->loop, l, l->nl->cq_accept) == 0)
        l->cq_cancel = true;
    if (l->io) {
        wh_io_free(l->io);
        l->io = NULL;
        /* A close(2) that follows must be the file's last: a socket that
         * lingers listening still takes connections nobody accepts. */
        wh__loop_flush(l->nl->loop);
    }
}

static void backoff_remove(wh_listener *l)
{
    wh__lvec *v = &l->nl->backoff;
    for (uint32_t i = 0; i < v->n; i++) {
        if (v->v[i] == l) {
            v->v[i] = v->v[--v->n];
            break;
        }
    }
}

static void backoff_end(wh_listener *l)
{
    if (!l->backing) return;
    l->backing = false;
    wh_timer_stop(l->timer);
    backoff_remove(l);
    if (!l->paused) (void)watch(l);
}

static void retry_cb(wh_timer *t, void *ud)
{
    wh_listener *l = ud;
    (void)t;
    /* Watch again; if the descriptors are still exhausted the next accept
     * fails at once and we come back here with a longer delay. */
    backoff_end(l);
}

static void backoff_start(wh_listener *l)
{
    l->backoffs++;
    unwatch(l);
    if (!l->backing) {
        l->backing = true;
        if (wh__lvec_push(&l->nl->backoff, l) < 0) {
            /* cannot be woken by closes: the timer alone will do */
        }
    }
    wh_timer_start(l->timer, l->delay_ms, 0);
    l->delay_ms = l->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->delay_ms * 2;
}

void wh__listeners_fd_freed(wh__netloop *nl)
{
    /* Copy: backoff_end edits the vector. */
    while (nl->backoff.n) {
        wh_listener *l = nl->backoff.v[nl->backoff.n - 1];
        backoff_end(l);
    }
}

static void listener_destroy(wh_listener *l)
{
    if (l->backing) backoff_remove(l);
    unwatch(l);
    wh_timer_free(l->timer);
    if (l->own_fd) {
        wh_sockaddr a;
        if (l->family == AF_UNIX && wh__sock_local(l->fd, &a) == 0) {
            const struct sockaddr_un *un = (const struct sockaddr_un *)a.u.raw;
            if (a.len > offsetof(struct sockaddr_un, sun_path) + 1 && un->sun_path[0] == '/')
                unlink(un->sun_path);
        }
        close(l->fd); /* a pending accept op holds the file until its cancel */
    }
    if (l->cq_armed) {
        l->dead = true; /* accept_done frees it */
        return;
    }
    free(l);
}

/* Socket options for accepted conns: set once on the listener, which Linux
 * copies to every accepted socket; the first accepted socket is checked, and
 * if it did not inherit them they are set per accept as before. */
static void apply_accepted(wh_listener *l, int fd)
{
    if (!l->tcp || l->inherits) return;
    if (!l->probed) {
        l->probed = true;
        if ((l->inherits = wh__sock_inherited(fd, &l->opts))) return;
    }
    (void)wh__sock_apply_accepted(fd, l->family, &l->opts);
}

/* One accepted fd: options, then the callback or a conn. */
static void take(wh_listener *l, int fd)
{
    l->accepted++;
    l->delay_ms = BACKOFF_MIN_MS;
    apply_accepted(l, fd);
    if (l->on_accept) {
        l->on_accept(l, fd, l->ud);
    } else {
        wh_conn *c;
        if (wh__conn_adopt_accepted(l->nl->loop, fd, &l->opts, &l->prof->cbs, l->ud, &c) < 0)
            close(fd);
    }
}

void wh__listener_accept_done(void *cookie, int res, unsigned flags, const char *buf)
{
    wh_listener *l = cookie;
    (void)buf;
    bool last = !(flags & WH__CQ_MORE);
    if (last) l->cq_armed = l->cq_cancel = false;
    if (l->nl->tearing || l->dead) {
        /* Destroyed, or the loop is being freed. A connection accepted just
         * before the cancel is still served (closing it would reset it): by
         * the callback, whose owner outlives the listener on this loop (the
         * runtime's worker), or as a conn of ours. */
        wh_conn *c;
        if (res >= 0 && !l->nl->tearing && l->on_accept)
            l->on_accept(l, res, l->ud);
        else if (res >= 0 &&
                 (l->nl->tearing || wh__conn_adopt_accepted(l->nl->loop, res, &l->opts,
                                                            &l->prof->cbs, l->ud, &c) < 0))
            close(res);
        if (last && l->dead) free(l);
        return;
    }
    l->in_cb = true;
    if (res >= 0) {
        take(l, res);
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        backoff_start(l); /* the op ended (or is cancelled): re-armed after the delay */
    } else if (res == -EINVAL && last) {
        l->cq = false; /* a kernel without multishot accept (before 5.19): readiness */
    }
    /* Other errors concern one connection (as accept_cb), or are our cancel. */
    l->in_cb = false;
    if (l->want_free) {
        listener_destroy(l);
        return;
    }
    if (last && !l->paused && !l->backing) (void)watch(l); /* the kernel ended it: again */
}

static void accept_cb(wh_io *io, unsigned events, void *ud)
{
    wh_listener *l = ud;
    (void)io;
    (void)events;
    unsigned batch = l->opts.accept_batch ? l->opts.accept_batch : 64;
    /* Adaptive burst: accepting until EAGAIN costs a failed accept4 per
     * wake-up, which is one syscall in five when each connection arrives
     * alone. The readiness is level-triggered, so connections left in the
     * queue wake us again at the next poll, which the loop makes anyway;
     * the burst falls back to what was there when EAGAIN ends it, and
     * doubles only after four wake-ups in a row used it up whole: doubling
     * after one made every other wake-up of a steady one-or-two arrival
     * pattern end in EAGAIN. */
    unsigned burst = l->burst ? l->burst : 1, got = 0;
    if (burst > batch) burst = batch;
    bool empty = false;
    l->in_cb = true;
    for (unsigned i = 0; i < burst && l->io && !l->want_free; i++) {
        /* accept4 sets O_NONBLOCK and FD_CLOEXEC atomically: no fcntl calls
         * and no window where an exec elsewhere inherits the socket. */
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                empty = true;
                break;
            }
            if (e == EINTR) continue;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                backoff_start(l);
                break;
            }
            /* accept(2): Linux passes already-pending network errors on the
             * new socket (ECONNABORTED, EPROTO, ENETDOWN, EHOSTUNREACH ...)
             * as accept errors; they concern that one connection only. */
            continue;
        }
        got++;
        /* Reading at accept time pays while it finds requests (spec >= 2);
         * every 32nd accept tries anyway, so the score can recover. */
        wh__netloop *nl = l->nl;
        bool spec = l->tcp && (l->spec >= 2 || l->opts.defer_accept_s > 0 || !(l->accepted & 31));
        nl->accept_fd = fd;
        nl->accept_spec = spec ? &l->spec : NULL;
        take(l, fd);
        nl->accept_fd = -1;
        nl->accept_spec = NULL;
    }
    if (empty) {
        l->burst = got ? got : 1;
        l->full = 0;
    } else if (got == burst && burst < batch && ++l->full >= 4) {
        l->burst = burst * 2;
        l->full = 0;
    }
    l->in_cb = false;
    if (l->want_free) listener_destroy(l);
}

int wh__listener_new(wh_loop *loop, int fd, unsigned io_flags, const wh_net_opts *opts,
                     wh__accept_cb on_accept, const wh_conn_cbs *cbs, void *ud, wh_listener **out)
{
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    /* A bad PROXY trusted list fails here, not at the first accept. */
    if (opts && opts->proxy_protocol && wh_net_proxy_trusted_check(opts->proxy_trusted) < 0)
        return -EINVAL;
    wh_listener *l = calloc(1, sizeof(*l));
    if (!l) return -ENOMEM;
    l->nl = nl;
    l->fd = fd;
    l->io_flags = io_flags;
    if (opts)
        l->opts = *opts;
    else
        wh_net_opts_init(&l->opts);
    l->on_accept = on_accept;
    l->ud = ud;
    l->delay_ms = BACKOFF_MIN_MS;
    wh_sockaddr local;
    if (wh__sock_local(fd, &local) == 0) l->family = local.u.sa.family;
    l->tcp = l->family == AF_INET || l->family == AF_INET6;
    l->spec = 3;
    /* Shared (EXCLUSIVE) listening fds stay on readiness: one loop's op
     * would take every connection. */
    l->cq = nl->cq_accept && !(io_flags & WH_IO_EXCLUSIVE);
    /* Set on the listener so accepted sockets inherit them (apply_accepted). */
    if (l->tcp) (void)wh__sock_apply_accepted(fd, l->family, &l->opts);
    if (!on_accept && !(l->prof = wh__prof_get(nl, cbs, &l->opts))) {
        free(l);
        return -ENOMEM;
    }
    int rc = wh_timer_new(loop, retry_cb, l, &l->timer);
    if (rc < 0) {
        free(l);
        return rc;
    }
    if ((rc = watch(l)) < 0) {
        wh_timer_free(l->timer);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void wh__listener_pause(wh_listener *l)
{
    l->paused = true;
    unwatch(l);
}

int wh__listener_resume(wh_listener *l)
{
    l->paused = false;
    if (l->backing) return 0; /* the back-off timer resumes it */
    return watch(l);
}

unsigned wh__listener_drain(wh_listener *l)
{
    /* Not the batch-limited accept_cb: the point is to leave nothing in the
     * queue, because the caller closes the socket next and the kernel resets
     * whatever is still queued on a listening socket that closes. */
    unsigned n = 0;
    if (l->in_cb || l->want_free) return 0;
    l->in_cb = true;
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            break; /* EAGAIN: empty; EMFILE and the like: nothing more we can take */
        }
        n++;
        take(l, fd);
        if (l->want_free) break;
    }
    l->in_cb = false;
    if (l->want_free) listener_destroy(l);
    return n;
}

void wh__listener_free(wh_listener *l)
{
    if (!l) return;
    if (l->in_cb) {
        l->want_free = true;
        unwatch(l);
        return;
    }
    listener_destroy(l);
}

int wh__listener_fd(const wh_listener *l)
{
    return l->fd;
}

const wh_net_opts *wh__listener_opts(const wh_listener *l)
{
    return &l->opts;
}

wh_loop *wh__listener_loop(const wh_listener *l)
{
    return l->nl->loop;
}

uint64_t wh__listener_accepted(const wh_listener *l)
{
    return l->accepted;
}

uint64_t wh__listener_backoffs(const wh_listener *l)
{
    return l->backoffs;
}

int wh_listen(wh_loop *loop, const char *addr, const wh_net_opts *opts, const wh_conn_cbs *cbs,
              void *ud, wh_listener **out)
{
    enum wh_addr_kind kind;
    wh_sockaddr sa;
    int fd, rc = wh_addr_parse(addr, &sa, &kind);
    if (rc < 0) return rc;
    if (kind == WH_ADDR_UDP) return -EINVAL; /* datagrams: wh_udp_bind */
    if ((rc = wh__listen_fd(&sa, kind, opts, &fd)) < 0) return rc;
    if ((rc = wh__listener_new(loop, fd, 0, opts, NULL, cbs, ud, out)) < 0) {
        close(fd);
        return rc;
    }
    (*out)->own_fd = true;
    return 0;
}

int wh_listener_local(const wh_listener *l, wh_sockaddr *out)
{
    return wh__sock_local(l->fd, out);
}

void wh_listener_close(wh_listener *l)
{
    if (!l) return;
    wh__listener_free(l);
}
