/* Helpers for the net unit tests: one loop in the test process, a listener on
 * a free loopback port, plain blocking/non-blocking client sockets, and a
 * pump that runs loop iterations until a condition holds (bounded). */
#ifndef WH_TEST_NET_UTIL_H
#define WH_TEST_NET_UTIL_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/net_internal.h"

static inline void tnu_tick(wh_timer *t, void *ud)
{
    (void)t;
    (void)ud;
}

/* A loop with a 5 ms heartbeat so WH_RUN_ONCE never blocks for long. */
static inline wh_loop *tnu_loop(void)
{
    wh_loop *loop;
    wh_timer *t;
    if (wh_loop_new(&loop, NULL) < 0) return NULL;
    wh_timer_new(loop, tnu_tick, NULL, &t);
    wh_timer_start(t, 5, 5);
    return loop;
}

static inline double tnu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs loop iterations until cond(arg) or ~10 s; returns cond's last value. */
static inline int tnu_pump(wh_loop *loop, int (*cond)(void *), void *arg)
{
    double end = tnu_now() + 10;
    while (!cond(arg) && tnu_now() < end)
        wh_loop_run(loop, WH_RUN_ONCE);
    return cond(arg);
}

static inline void tnu_pump_n(wh_loop *loop, int n)
{
    for (int i = 0; i < n; i++)
        wh_loop_run(loop, WH_RUN_ONCE);
}

/* Listening socket on addr (port 0 = free port) and a listener adopting into
 * cbs; *port receives the bound port (0 for Unix). */
static inline wh_listener *tnu_listen(wh_loop *loop, const char *addr, const wh_net_opts *o,
                                      const wh_conn_cbs *cbs, void *ud, int *fd_out)
{
    int fd;
    wh_listener *l;
    if (wh__listen_str(addr, o, NULL, &fd) < 0) return NULL;
    if (wh__listener_new(loop, fd, 0, o, NULL, cbs, ud, &l) < 0) {
        close(fd);
        return NULL;
    }
    if (fd_out) *fd_out = fd;
    return l;
}

static inline int tnu_port(int fd)
{
    wh_sockaddr a;
    if (wh__sock_local(fd, &a) < 0) return -1;
    if (a.u.sa.family == AF_INET) return ntohs(((struct sockaddr_in *)a.u.raw)->sin_port);
    if (a.u.sa.family == AF_INET6) return ntohs(((struct sockaddr_in6 *)a.u.raw)->sin6_port);
    return 0;
}

/* A client connected to the listening fd's address (blocking connect; the
 * kernel completes it from the backlog without the loop). Non-blocking after. */
static inline int tnu_client(int lfd)
{
    wh_sockaddr a;
    if (wh__sock_local(lfd, &a) < 0) return -1;
    int fd = socket(a.u.sa.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)a.u.raw, a.len) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Sends all of buf from a non-blocking client, pumping the loop meanwhile;
 * also drains what the server sends into rbuf (if given). */
typedef struct tnu_io {
    int fd;
    const char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_cap, in_len;
    bool eof;
    int err;
} tnu_io;

static inline void tnu_io_step(tnu_io *t)
{
    if (t->out_off < t->out_len) {
        ssize_t w = send(t->fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);
        if (w > 0)
            t->out_off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            t->err = errno;
    }
    if (t->in && !t->eof) {
        for (;;) {
            char tmp[65536];
            char *dst = t->in_len < t->in_cap ? t->in + t->in_len : tmp;
            size_t room = t->in_len < t->in_cap ? t->in_cap - t->in_len : sizeof(tmp);
            ssize_t r = recv(t->fd, dst, room, 0);
            if (r > 0) {
                if (dst != tmp) t->in_len += (size_t)r;
            } else {
                if (r == 0)
                    t->eof = true;
                else if (errno != EAGAIN)
                    t->err = errno, t->eof = true;
                break;
            }
        }
    }
}

/* A client exchange that ends once want bytes came back (or at EOF): the
 * predicate for tnu_pump. */
typedef struct xfer {
    tnu_io io;
    size_t want;
} xfer;

static inline int xfer_done(void *arg)
{
    xfer *x = arg;
    tnu_io_step(&x->io);
    return x->io.eof || x->io.in_len >= x->want;
}

#endif
