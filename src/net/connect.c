/* Outbound connections: non-blocking connect(2) with a timeout.
 *
 * Addresses are numeric (see addr.c): resolving a name here would block the
 * loop. The connect either completes at once (Unix sockets, often loopback)
 * or returns EINPROGRESS; either way completion is reported by the socket
 * becoming writable, and SO_ERROR tells success from failure (connect(2)).
 * The timeout uses the connection timeout wheel, so it fires within one
 * wheel tick (WH__NET_TICK_MS) after timeout_ms.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_priv.h"

int wh_conn_connect(wh_loop *loop, const char *addr, uint32_t timeout_ms, const wh_net_opts *opts,
                    const wh_conn_cbs *cbs, void *ud, wh_conn **out)
{
    wh_sockaddr sa;
    enum wh_addr_kind kind;
    int rc = wh_addr_parse(addr, &sa, &kind);
    if (rc < 0) return rc;
    if (kind == WH_ADDR_UDP) return -EINVAL; /* datagram sockets: wh_udp_bind + wh_udp_send */
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    const wh__prof *p = wh__prof_get(nl, cbs, opts);
    if (!p) return -ENOMEM;
    int family = sa.u.sa.family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (opts)
        (void)wh__sock_apply_accepted(fd, family, opts);
    else if (family != AF_UNIX) {
        wh_net_opts d;
        wh_net_opts_init(&d);
        (void)wh__sock_apply_accepted(fd, family, &d);
    }
    int err = 0;
    if (connect(fd, (const struct sockaddr *)sa.u.raw, sa.len) < 0) {
        err = errno;
        /* EINPROGRESS: TCP handshake under way. EAGAIN on a Unix socket means
         * the listener's backlog is full (unix(7)): a real failure, not a
         * reason to wait, since no writability event would ever come. */
        if (err == EINPROGRESS || err == EINTR)
            err = 0;
        else if (err == EAGAIN)
            err = EAGAIN;
    }
    wh_conn *c = wh__conn_new(nl, fd, p, ud);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    if (out) *out = c;
    c->flags |= WH__C_CONNECTING;
    if (err) {
        /* Report through on_close like any other failure, but later: the
         * caller has not even seen *out yet. */
        wh__conn_finish(c, -err);
        return 0;
    }
    if (timeout_ms) {
        /* The loop's clock is cached per iteration and may be stale when a
         * connect starts outside a callback (after a sleep, say): refresh it,
         * or the deadline would be measured from the past and fire early.
         * A connect is not the hot path; one clock read is cheap here. */
        wh_loop_update_time(loop);
        wh_conn_set_timeout(c, timeout_ms);
    }
    wh__conn_update_io(c); /* writability reports the outcome */
    return 0;
}
