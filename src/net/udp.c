/* UDP sockets: datagrams in with recvmmsg, out with sendmmsg.
 *
 * A readiness event reads up to UDP_BATCH datagrams with one recvmmsg(2) and
 * calls on_datagram for each; replies queued meanwhile leave with one
 * sendmmsg(2) when the batch is done. Sends made outside a callback are
 * flushed at the end of the loop iteration. If the socket buffer is full
 * (EAGAIN) the rest waits for EPOLLOUT; the queue is bounded (UDP_QMAX
 * datagrams / UDP_QBYTES bytes), beyond that wh_udp_send says -ENOBUFS, the
 * same answer the kernel gives when it drops.
 *
 * Datagrams larger than the receive slot (opts.read_buf_size, 16 KiB by
 * default) arrive truncated (MSG_TRUNC) and are dropped, not delivered cut.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_priv.h"

#define UDP_BATCH  16
#define UDP_QMAX   4096
#define UDP_QBYTES (4u << 20)

typedef struct udp_out {
    size_t off, len;
    wh_sockaddr peer;
} udp_out;

struct wh_udp {
    wh__netloop *nl;
    wh_io *io;
    int fd;
    wh_conn_cbs cbs;
    void *ud;
    wh_sockaddr local;
    size_t slot;  /* receive slot size */
    char *rbuf;   /* UDP_BATCH * slot, allocated on first event */
    udp_out *out; /* queued datagrams */
    size_t nout, cap_out, out_head;
    char *arena; /* their bytes */
    size_t arena_len, arena_cap;
    bool in_cb, pending, want_free, wout;
};

static void udp_destroy(wh_udp *u)
{
    if (u->io) wh_io_free(u->io);
    close(u->fd);
    free(u->rbuf);
    free(u->out);
    free(u->arena);
    free(u);
}

static void set_wout(wh_udp *u, bool on)
{
    if (u->wout == on) return;
    u->wout = on;
    wh_io_set(u->io, WH_IO_READ | (on ? WH_IO_WRITE : 0));
}

static void udp_flush(wh_udp *u)
{
    while (u->out_head < u->nout) {
        struct mmsghdr mh[64];
        struct iovec iov[64];
        unsigned n = 0;
        for (size_t i = u->out_head; i < u->nout && n < 64; i++, n++) {
            udp_out *o = &u->out[i];
            iov[n].iov_base = u->arena + o->off;
            iov[n].iov_len = o->len;
            memset(&mh[n], 0, sizeof(mh[n]));
            mh[n].msg_hdr.msg_iov = &iov[n];
            mh[n].msg_hdr.msg_iovlen = 1;
            mh[n].msg_hdr.msg_name = o->peer.u.raw;
            mh[n].msg_hdr.msg_namelen = o->peer.len;
        }
        int s = sendmmsg(u->fd, mh, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (s < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_wout(u, true);
                return;
            }
            /* A per-datagram error (EMSGSIZE, EHOSTUNREACH, a previous ICMP
             * error reported as ECONNREFUSED): drop that one and go on. */
            s = 1;
        }
        u->out_head += (size_t)s;
        for (int i = 0; i < s; i++)
            __atomic_store_n(&u->nl->ctr->bytes_out, u->nl->ctr->bytes_out + iov[i].iov_len,
                             __ATOMIC_RELAXED);
    }
    u->nout = u->out_head = 0;
    u->arena_len = 0;
    set_wout(u, false);
}

void wh__udp_flush_pending(void *p)
{
    wh_udp *u = p;
    u->pending = false;
    if (u->want_free) {
        udp_destroy(u);
        return;
    }
    udp_flush(u);
}

static void udp_cb(wh_io *io, unsigned events, void *ud)
{
    wh_udp *u = ud;
    (void)io;
    if (events & WH_IO_WRITE) udp_flush(u);
    if (!(events & (WH_IO_READ | WH_IO_ERR))) return;
    if (!u->rbuf && !(u->rbuf = malloc(UDP_BATCH * u->slot))) return;
    struct mmsghdr mh[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    wh_sockaddr peers[UDP_BATCH];
    for (int i = 0; i < UDP_BATCH; i++) {
        iov[i].iov_base = u->rbuf + (size_t)i * u->slot;
        iov[i].iov_len = u->slot;
        memset(&mh[i], 0, sizeof(mh[i]));
        mh[i].msg_hdr.msg_iov = &iov[i];
        mh[i].msg_hdr.msg_iovlen = 1;
        mh[i].msg_hdr.msg_name = peers[i].u.raw;
        mh[i].msg_hdr.msg_namelen = sizeof(peers[i].u.raw);
    }
    int n = recvmmsg(u->fd, mh, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return; /* EAGAIN, or an ICMP error queued on the socket (now cleared) */
    u->in_cb = true;
    for (int i = 0; i < n && !u->want_free; i++) {
        if (mh[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
        peers[i].len = mh[i].msg_hdr.msg_namelen;
        __atomic_store_n(&u->nl->ctr->bytes_in, u->nl->ctr->bytes_in + mh[i].msg_len,
                         __ATOMIC_RELAXED);
        if (u->cbs.on_datagram)
            u->cbs.on_datagram(u, iov[i].iov_base, mh[i].msg_len, &peers[i], u->ud);
    }
    u->in_cb = false;
    if (u->want_free) {
        if (!u->pending) udp_destroy(u);
        return;
    }
    if (u->nout && !u->wout) udp_flush(u);
}

int wh_udp_bind(wh_loop *loop, const char *addr, const wh_net_opts *opts, const wh_conn_cbs *cbs,
                void *ud, wh_udp **out)
{
    wh_sockaddr sa;
    enum wh_addr_kind kind;
    int rc = wh_addr_parse(addr, &sa, &kind);
    if (rc < 0) return rc;
    if (kind == WH_ADDR_UNIX) return -EINVAL;
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    int fd;
    if ((rc = wh__listen_fd(&sa, WH_ADDR_UDP, opts, &fd)) < 0) return rc;
    wh_udp *u = calloc(1, sizeof(*u));
    if (!u) {
        close(fd);
        return -ENOMEM;
    }
    u->nl = nl;
    u->fd = fd;
    if (cbs) u->cbs = *cbs;
    u->ud = ud;
    u->slot = opts && opts->read_buf_size ? opts->read_buf_size : wh__net_defaults.read_buf_size;
    wh__sock_local(fd, &u->local);
    if ((rc = wh_io_new(loop, fd, udp_cb, u, &u->io)) < 0 ||
        (rc = wh_io_set(u->io, WH_IO_READ)) < 0) {
        udp_destroy(u);
        return rc;
    }
    *out = u;
    return 0;
}

int wh_udp_send(wh_udp *u, const void *data, size_t len, const wh_sockaddr *peer)
{
    if (u->want_free) return -EBADF;
    if (len > 65507) return -EMSGSIZE; /* the largest UDP payload over IPv4 */
    if (u->nout >= UDP_QMAX || u->arena_len + len > UDP_QBYTES) return -ENOBUFS;
    if (u->nout == u->cap_out) {
        size_t cap = u->cap_out ? u->cap_out * 2 : 16;
        udp_out *no = realloc(u->out, cap * sizeof(*no));
        if (!no) return -ENOMEM;
        u->out = no;
        u->cap_out = cap;
    }
    if (u->arena_len + len > u->arena_cap) {
        size_t cap = u->arena_cap ? u->arena_cap : 4096;
        while (cap < u->arena_len + len)
            cap *= 2;
        char *na = realloc(u->arena, cap);
        if (!na) return -ENOMEM;
        u->arena = na;
        u->arena_cap = cap;
    }
    memcpy(u->arena + u->arena_len, data, len);
    udp_out *o = &u->out[u->nout++];
    o->off = u->arena_len;
    o->len = len;
    o->peer = *peer;
    u->arena_len += len;
    if (!u->in_cb && !u->wout && !u->pending) {
        if (wh__lvec_push(&u->nl->udps, u) == 0) {
            u->pending = true;
            wh__netloop_arm(u->nl);
        }
    }
    return 0;
}

void wh_udp_close(wh_udp *u)
{
    if (!u) return;
    if (u->in_cb || u->pending) {
        u->want_free = true;
        if (u->io) {
            wh_io_free(u->io);
            u->io = NULL;
        }
        return;
    }
    udp_destroy(u);
}

const wh_sockaddr *wh_udp_local(const wh_udp *u)
{
    return &u->local;
}
