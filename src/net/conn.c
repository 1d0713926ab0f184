/* Stream connections (TCP and Unix) on a loop.
 *
 * Lifetime. A "dispatcher frame" (the io callback, the end-of-iteration task,
 * the timeout wheel, adopt/connect) holds the conn (WH__C_HELD) while it calls
 * user callbacks. wh__conn_finish() closes the fd at once but leaves on_close
 * and free() to whoever releases the conn last: the holding frame when it
 * returns, or the end-of-iteration task when nobody holds it. So user code may
 * close/abort any conn from any callback and keep using the pointer until that
 * callback returns; on_close runs exactly once.
 *
 * Reading. Level-triggered. Bytes are read into a per-loop scratch buffer and
 * handed to on_read; only what on_read leaves unconsumed is copied into a
 * private buffer, which is freed again once consumed. An idle conn therefore
 * owns no buffer at all.
 *
 * Writing. wh_conn_write only queues. The frame that holds the conn flushes
 * once when it is done (all replies to a pipelined burst leave in one
 * sendmsg); writes made outside a frame are flushed by the end-of-iteration
 * task. We write first and ask for EPOLLOUT only after the kernel said EAGAIN
 * (seed 002's lesson: asking first costs a wake-up per reply).
 *
 * Completion mode (WH__Q_CQ: plain sockets on an io_uring loop, see
 * docs/architecture.md). The per-request read/sendmsg syscalls were what an
 * io_uring loop still paid (issue 16), so such a conn makes them completion
 * ops (loop_internal.h, wh__cq_*), submitted and reaped by the loop's one
 * io_uring_enter per iteration:
 *  - one recv while reading is wanted, into the loop's provided buffers: an
 *    idle conn holds no buffer. The first is single-shot (a fresh
 *    connection's request usually comes whole, and a connection closed
 *    after one answer then has no recv to cancel), the later ones
 *    multishot. Each completion's bytes go to
 *    on_read straight from the buffer, and what on_read leaves is copied to
 *    rbuf; the buffer returns to the ring when the callback ends. Pausing,
 *    back-pressure or closing cancels the recv; bytes that were already on
 *    their way are kept in rbuf (pause, back-pressure) or dropped (close, as
 *    epoll's path would never have read them). -ENOBUFS (the ring ran dry)
 *    re-arms it: the bytes wait in the socket.
 *  - the queue's memory segments leave as one sendmsg (iovecs in
 *    wq->tx) prepared when the frame flushes; its completion consumes what
 *    the kernel took and prepares the next one (a short send). A file
 *    segment at the head goes out with sendfile(2) as before, waiting for
 *    writability with the watcher if the socket is full.
 *  - the closing reply of a conn whose receive queue is empty (the last
 *    recv drained it, or EOF) and that has no recv armed leaves as one
 *    chain: sendmsg(MSG_WAITALL, not corked) -> close, linked ops in the
 *    same io_uring_enter, no shutdown(2) and no close one iteration later
 *    (WH__Q_CHAIN: the fd is the chain's until its close completes; a send
 *    that fails breaks the chain and the close's -ECANCELED hands the fd
 *    back to be closed here). With unread input the reply takes the path
 *    below: close(2) with unread bytes resets the connection and drops
 *    what was not sent yet.
 *  - finishing closes the fd at once (an op in flight holds the file, not
 *    the number) and cancels the ops; the conn's memory is freed only after
 *    the last completion of each (WH__Q_ZOMBIE: on_close already ran), and
 *    a conn with a send in flight completes when that send's completion
 *    comes back (the kernel may still read its queue).
 * Not a socket (a pipe): the first op fails with -ENOTSOCK and the conn
 * goes back to readiness.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/xport.h"

#define NL(c) ((c)->prof->nl)

/* Reads per readiness event: a fast sender fills the buffer again while we
 * work; reading a few times saves epoll round trips without starving others. */
#define READS_PER_EVENT 4

/* A completion-mode sendmsg carries up to TX_IOV_MAX iovecs (IOV_MAX): it is
 * one op per loop iteration, so it must take a whole burst of small
 * segments (a WebSocket broadcast queues one per message), where the
 * readiness path simply calls sendmsg again. The array grows with the queue. */
#define TX_IOV_MIN 16u
#define TX_IOV_MAX 1024u
struct wh__wq_tx {
    struct msghdr mh;
    unsigned cap;
    struct iovec iov[];
};

static size_t queued(const wh_conn *c)
{
    return c->wq ? c->wq->queued : 0;
}

static void touch(wh_conn *c)
{
    if (c->tmo_ticks) c->act_tick = wh__net_tick(NL(c));
}

/* Queues c for the end-of-iteration task even while a frame holds it. */
static void schedule_always(wh_conn *c)
{
    if (c->flags & WH__C_PENDING) return;
    wh__netloop *nl = NL(c);
    if (wh__lvec_push(&nl->pend, c) < 0) return;
    c->flags |= WH__C_PENDING;
    wh__netloop_arm(nl);
}

/* Queues c for the end-of-iteration task unless a frame holds it (the frame
 * flushes and completes it when it returns). */
static void schedule(wh_conn *c)
{
    if (c->flags & (WH__C_HELD | WH__C_PENDING)) return;
    wh__netloop *nl = NL(c);
    if (wh__lvec_push(&nl->pend, c) < 0)
        return; /* -ENOMEM: the next event on this conn will do the work */
    c->flags |= WH__C_PENDING;
    wh__netloop_arm(nl);
}

wh_conn *wh__conn_new(wh__netloop *nl, int fd, const wh__prof *p, void *ud)
{
    wh_conn *c = wh__conn_alloc(nl);
    if (!c) return NULL;
    memset(c, 0, sizeof(*c));
    wh__iow_init(&c->io, fd, nl->io_cls);
    c->prof = p;
    c->ud = ud;
    wh__clink_init(&c->link);
    wh__clink_add_tail(&nl->untimed, &c->link);
    if (nl->cq_recv && !p->tls && !p->proxy) c->io.spare = WH__Q_CQ;
    nl->nconns++;
    __atomic_store_n(&nl->ctr->conns_opened, nl->ctr->conns_opened + 1, __ATOMIC_RELAXED);
    return c;
}

/* Completion mode: a multishot recv while reading is wanted, none else. A
 * recv being cancelled re-syncs at its last completion. */
static void cq_recv_sync(wh_conn *c, bool want)
{
    wh__netloop *nl = NL(c);
    if (want) {
        if (c->io.spare & WH__Q_RECV) return;
        int r = (c->io.spare & WH__Q_MULTI) ? wh__cq_recv(nl->loop, c->io.fd, c, nl->cq_recv)
                                            : wh__cq_recv_once(nl->loop, c->io.fd, c, nl->cq_recv);
        if (r < 0) {
            /* No buffer ring here (a kernel before 5.19), or no room: this
             * conn reads on readiness instead. */
            c->io.spare &= (uint8_t)~WH__Q_CQ;
            wh__conn_update_io(c);
            return;
        }
        c->io.spare |= WH__Q_RECV | WH__Q_MULTI;
    } else if ((c->io.spare & (WH__Q_RECV | WH__Q_RCANCEL)) == WH__Q_RECV) {
        if (wh__cq_cancel(nl->loop, c, nl->cq_recv) == 0) c->io.spare |= WH__Q_RCANCEL;
    }
}

void wh__conn_update_io(wh_conn *c)
{
    unsigned f = c->flags, want = 0;
    if (f & WH__C_DEAD) return;
    if (c->io.spare & WH__Q_CQ) {
        /* The watcher only waits for a connect or for room for a file. */
        int rc = wh__iow_set(NL(c)->loop, &c->io,
                             (f & (WH__C_CONNECTING | WH__C_WOUT)) ? WH_IO_WRITE : 0);
        if (rc < 0) {
            wh__conn_finish(c, rc);
            return;
        }
        cq_recv_sync(
            c, !(f & (WH__C_CONNECTING | WH__C_PAUSED | WH__C_BP | WH__C_CLOSING | WH__C_EOF)));
        return;
    }
    if (f & WH__C_CONNECTING) {
        want = WH_IO_WRITE;
    } else {
        if (!(f & (WH__C_PAUSED | WH__C_BP | WH__C_CLOSING | WH__C_EOF))) want |= WH_IO_READ;
        if (f & WH__C_WOUT) want |= WH_IO_WRITE;
    }
    int rc = wh__iow_set(NL(c)->loop, &c->io, want);
    if (rc < 0) wh__conn_finish(c, rc);
}

static void wq_put(wh__netloop *nl, wh__wq *q)
{
    if (nl->nwq_cache < sizeof(nl->wq_cache) / sizeof(nl->wq_cache[0])) {
        nl->wq_cache[nl->nwq_cache++] = q;
    } else {
        free(q->tx);
        free(q);
    }
}

static wh__wq *wq_get(wh__netloop *nl)
{
    wh__wq *q;
    struct wh__wq_tx *tx = NULL; /* a cached queue keeps its sendmsg header */
    if (nl->nwq_cache) {
        q = nl->wq_cache[--nl->nwq_cache];
        tx = q->tx;
    } else if (!(q = malloc(sizeof(*q)))) {
        return NULL;
    }
    wh__wq_init(q);
    q->tx = tx;
    return q;
}

void wh__conn_finish(wh_conn *c, int err)
{
    if (c->flags & WH__C_DEAD) return;
    wh__netloop *nl = NL(c);
    c->flags |= WH__C_DEAD;
    if (c->tmo_ticks) {
        nl->ntimed--;
        c->tmo_ticks = 0;
    }
    c->err = err; /* shares storage with act_tick, unused from now on */
    wh__clink_del(&c->link);
    int fd = c->io.fd;
    if (WH__XP(c)) WH__XP(c)->ops->finish(c, err);
    wh__iow_forget(nl->loop, &c->io); /* close(2) below drops the registration */
    if (c->io.spare & WH__Q_CHAIN) {
        /* A closing chain owns the fd, and its close may have run already
         * (the number is then someone else's): no call on it here. The
         * send is cancelled below; a broken chain's close completion
         * closes the fd (wh__conn_cq_close). */
    } else if (c->flags & WH__C_ABORT) {
        /* SO_LINGER with a zero timeout: close(2) sends RST and drops unsent
         * data instead of a FIN after it (socket(7)). */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else if (err == 0 && !(c->flags & WH__C_EOF) && !(c->io.spare & WH__Q_DRAINED) &&
               nl->drained != c) {
        /* Orderly close while the peer may still be sending (e.g. pipelined
         * requests after a "Connection: close" reply): close(2) with unread
         * bytes in the receive queue sends RST instead of FIN, and an RST
         * can make the peer discard our last reply before reading it
         * (RFC 7230 6.6, "lingering close"). Send FIN first and discard what
         * already arrived. Bytes that arrive later still cause an RST; a
         * full lingering close would need a timer per conn. Skipped when our
         * last read in this dispatch found the queue empty (nl->drained):
         * the peer sent nothing more, as nginx assumes too. */
        char sink[512];
        if (!(c->flags & WH__C_SHUT_DONE)) shutdown(fd, SHUT_WR);
        for (int i = 0; i < 8 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
    }
    /* Completion mode: the close rides on the next io_uring_enter. */
    if (c->io.spare & WH__Q_CHAIN) {
        /* closed by the chain, or by its close completion */
    } else if (!(c->io.spare & WH__Q_CQ) || wh__cq_close(nl->loop, fd) < 0) {
        close(fd);
    }
    /* Ops in flight hold the file (not the number): cancelling them lets it
     * go; their last completions free the conn (complete()). */
    if ((c->io.spare & (WH__Q_RECV | WH__Q_RCANCEL)) == WH__Q_RECV &&
        wh__cq_cancel(nl->loop, c, nl->cq_recv) == 0)
        c->io.spare |= WH__Q_RCANCEL;
    if (c->io.spare & WH__Q_SEND) (void)wh__cq_cancel(nl->loop, c, nl->cq_send);
    /* Buffers are released in complete(): a user callback further up the
     * stack may still be looking at the read buffer. */
    schedule(c);
}

static void complete(wh_conn *c)
{
    wh__netloop *nl = NL(c);
    /* The kernel may still read the queue: the send's completion completes c. */
    if (c->io.spare & WH__Q_SEND) return;
    c->flags |= WH__C_HELD; /* calls from on_close must not re-schedule c */
    if (c->wq) {
        wh__wq_clear(c->wq); /* runs done() of reference segments */
        wq_put(nl, c->wq);
        c->wq = NULL;
    }
    /* A connection whose TLS handshake failed never had on_open. */
    if (c->prof->cbs.on_close && !(WH__XP(c) && WH__XP(c)->hs))
        c->prof->cbs.on_close(c, c->err, wh__conn_ud(c));
    if (c->wq) { /* on_close queued bytes: they cannot go anywhere */
        wh__wq_clear(c->wq);
        wq_put(nl, c->wq);
    }
    free(c->rbuf);
    if (WH__XP(c)) WH__XP(c)->ops->free(WH__XP(c));
    if (c->flags & WH__C_EXT) free(c->ud);
    nl->nconns--;
    __atomic_store_n(&nl->ctr->conns_closed, nl->ctr->conns_closed + 1, __ATOMIC_RELAXED);
    if (c->io.spare & (WH__Q_RECV | WH__Q_CHAIN))
        c->io.spare |= WH__Q_ZOMBIE; /* the ops' last completions free it */
    else
        wh__conn_dealloc(nl, c);
    if (nl->backoff.n) wh__listeners_fd_freed(nl);
}

static void do_flush(wh_conn *c, bool writable, bool now);

/* Completion mode: prepares one sendmsg of the queue's memory head. 0 when
 * submitted, 1 when the head is a file (or only empty chunks before one):
 * the caller writes that itself; negative errno. */
/* Bytes the completion-mode sendmsg in flight was given. */
static size_t tx_bytes(const wh__wq *q)
{
    size_t n = 0;
    for (size_t i = 0; i < q->tx->mh.msg_iovlen; i++)
        n += q->tx->iov[i].iov_len;
    return n;
}

static int cq_send(wh_conn *c)
{
    wh__wq *q = c->wq;
    if (wh__wq_head_is_file(q)) return 1;
    unsigned need = q->nsegs < TX_IOV_MAX ? q->nsegs : TX_IOV_MAX;
    if (!q->tx || q->tx->cap < need) {
        unsigned cap = q->tx ? q->tx->cap : TX_IOV_MIN;
        while (cap < need)
            cap *= 2;
        struct wh__wq_tx *t = realloc(q->tx, sizeof(*t) + cap * sizeof(t->iov[0]));
        if (!t) return -ENOMEM;
        t->cap = cap;
        q->tx = t;
    }
    struct wh__wq_tx *tx = q->tx;
    int n = wh__wq_iov(q, tx->iov, (int)tx->cap);
    if (n == 0) return 1;
    size_t want = 0;
    for (int i = 0; i < n; i++)
        want += tx->iov[i].iov_len;
    /* A file (or more than one op's iovecs) follows: the caller writes it
     * all now, as on epoll. A head sent as an op first left the file for
     * the next iteration, and static 64 KiB fell from 20,000 to 7,000
     * responses/s (bench/compare.sh, wharfd-uring). */
    if (want < q->queued) return 1;
    memset(&tx->mh, 0, sizeof(tx->mh));
    tx->mh.msg_iov = tx->iov;
    tx->mh.msg_iovlen = (size_t)n;
    /* MSG_MORE as wh__wq_write: a file follows this batch, or the FIN
     * (fin_follows: the close that follows sends both). */
    wh__netloop *nl = NL(c);
    int more = want < q->queued || q->fin_follows ? MSG_MORE : 0;
    /* The closing reply, all of it in this op, with nothing unread in the
     * socket (the last recv drained it, or the peer's FIN came) and no recv
     * armed: sendmsg and close go in as one linked chain. Unread input
     * would make the close reset the connection and drop the reply, so
     * that keeps the path below (shutdown in the send's completion, then
     * finish, which drains what came). So does an armed (multishot) recv:
     * a peer still sending (an upload answered early) is read and dropped
     * by it until the close, where a chain would close at once. There is
     * no shutdown op before the close (the kernel runs that op in a worker
     * thread, see wh__cq_send_close), so the reply is not corked: it has
     * left when the close runs, and bytes that came in the meantime, which
     * make the close a reset, cannot drop it. The FIN is then a segment of
     * its own. */
    if (q->fin_follows && (c->io.spare & WH__Q_DRAINED || c->flags & WH__C_EOF) &&
        !(c->io.spare & WH__Q_RECV) && !(c->flags & WH__C_ABORT)) {
        int r = wh__cq_send_close(nl->loop, c->io.fd, &tx->mh, 0, c, nl->cq_send, nl->cq_close);
        if (r >= 0) {
            nl->cq_chain1 = r == 1; /* the same for every chain of this loop */
            c->io.spare |= WH__Q_SEND | WH__Q_CHAIN;
            return 0;
        }
    }
    int r = wh__cq_sendmsg(nl->loop, c->io.fd, &tx->mh, more, c, nl->cq_send);
    if (r < 0) return r;
    c->io.spare |= WH__Q_SEND;
    return 0;
}

/* Completion mode: bytes kept while reading was off are offered once it is
 * on again (no readiness event will come for bytes already taken). */
static void cq_offer_kept(wh_conn *c)
{
    if ((c->io.spare & WH__Q_CQ) && c->rbuf &&
        !(c->flags & (WH__C_DEAD | WH__C_PAUSED | WH__C_BP))) {
        c->flags |= WH__C_OFFER;
        schedule_always(c);
    }
}

void wh__conn_release(wh_conn *c, unsigned prev_held)
{
    if (prev_held) return;
    if (!(c->flags & WH__C_DEAD) && (c->flags & WH__C_FLUSH)) do_flush(c, false, false);
    c->flags &= (uint16_t)~WH__C_HELD;
    if ((c->flags & (WH__C_DEAD | WH__C_PENDING)) == WH__C_DEAD) complete(c);
}

/* Orderly end once the queue is empty. */
static void after_drain(wh_conn *c)
{
    if (c->flags & WH__C_CLOSING) {
        wh__conn_finish(c, 0);
    } else if ((c->flags & (WH__C_SHUT | WH__C_SHUT_DONE)) == WH__C_SHUT) {
        c->flags |= WH__C_SHUT_DONE;
        if (WH__XP(c)) WH__XP(c)->ops->shutdown(c);
        if (shutdown(c->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) wh__conn_finish(c, -errno);
    }
}

static void flush_queue(wh_conn *c, bool writable, bool now);

/* now: write with a syscall even in completion mode (wh_conn_flush says
 * "writes now"). Back-pressure set by the writes since the last flush
 * reaches the watcher here, after the write (queued_more): a reply above
 * the high watermark that the kernel takes at once (a 1 MiB file,
 * sendfile) then leaves reading armed. Stopping and restarting it cost
 * each such reply EPOLL_CTL_DEL + ADD on epoll, and on io_uring a cancel,
 * a new recv, its poll arm and one more CQE (issue 16, static 1 MiB). */
static void do_flush(wh_conn *c, bool writable, bool now)
{
    flush_queue(c, writable, now);
    if ((c->flags & (WH__C_BP | WH__C_DEAD)) == WH__C_BP) wh__conn_update_io(c);
}

static void flush_queue(wh_conn *c, bool writable, bool now)
{
    wh__netloop *nl = NL(c);
    c->flags &= (uint16_t)~WH__C_FLUSH;
    for (int guard = 0; guard < 16; guard++) {
        if (c->flags & WH__C_DEAD) return;
        bool again = false;
        if (c->wq && c->wq->queued) {
            if (c->io.spare & WH__Q_SEND) return; /* its completion goes on from here */
            if ((c->flags & WH__C_WOUT) && !writable)
                return; /* EPOLLOUT will tell us when there is room */
            /* The last reply of an orderly close waits (MSG_MORE) for the
             * FIN that shutdown(2) sends right after it: one segment instead
             * of two. shutdown, not close: close(2) with unread bytes (a peer
             * still sending, even one that arrived since our last read)
             * resets the connection and drops what was not sent yet. */
            bool fin = !WH__XP(c) && (c->flags & (WH__C_CLOSING | WH__C_ABORT | WH__C_SHUT_DONE)) ==
                                         WH__C_CLOSING;
            c->wq->fin_follows = fin;
            if ((c->io.spare & WH__Q_CQ) && !now) {
                int r = cq_send(c); /* its completion shuts down after a fin */
                if (r < 0) wh__conn_finish(c, r);
                if (r <= 0) return; /* submitted (or failed) */
            }
            ssize_t w = WH__XP(c) ? WH__XP(c)->ops->write(c, c->wq, &again)
                                  : wh__wq_write(c->wq, c->io.fd, &again);
            if (w < 0) {
                wh__conn_finish(c, (int)w);
                return;
            }
            if (fin && !again && shutdown(c->io.fd, SHUT_WR) == 0) c->flags |= WH__C_SHUT_DONE;
            if (w > 0) {
                __atomic_store_n(&nl->ctr->bytes_out, nl->ctr->bytes_out + (uint64_t)w,
                                 __ATOMIC_RELAXED);
                touch(c);
            }
        }
        if (!again && c->wq) {
            wq_put(nl, c->wq);
            c->wq = NULL;
        }
        if (again != !!(c->flags & WH__C_WOUT)) {
            c->flags ^= WH__C_WOUT;
            wh__conn_update_io(c);
        }
        if ((c->flags & WH__C_BP) && queued(c) <= c->prof->low_wm) {
            c->flags &= (uint16_t)~WH__C_BP;
            wh__conn_update_io(c);
            if (WH__XP(c)) wh__conn_read_pending(c);
            cq_offer_kept(c);
            if (c->prof->cbs.on_drain) {
                c->prof->cbs.on_drain(c, wh__conn_ud(c));
                c->flags &= (uint16_t)~WH__C_FLUSH;
                if (queued(c) && !again) continue; /* flush what on_drain wrote */
            }
        }
        break;
    }
    if (!(c->flags & WH__C_DEAD) && !queued(c)) after_drain(c);
}

/* Hands data to on_read (and to a new on_read installed meanwhile by
 * wh_conn_set_cbs, e.g. an HTTP -> WebSocket upgrade). Returns bytes used. */
static size_t deliver(wh_conn *c, char *data, size_t len)
{
    size_t total = 0;
    wh__netloop *nl = NL(c);
    wh_conn *outer = nl->reading;
    nl->reading = c;
    while (len > 0) {
        const wh__prof *p = c->prof;
        size_t used = p->cbs.on_read ? p->cbs.on_read(c, data, len, wh__conn_ud(c)) : len;
        if (used > len) used = len;
        data += used;
        len -= used;
        total += used;
        if (c->flags & (WH__C_DEAD | WH__C_PAUSED) || c->prof == p) break;
    }
    nl->reading = outer;
    return total;
}

static int keep_rest(wh_conn *c, const char *data, size_t len)
{
    size_t cap = c->prof->read_buf_size;
    if (cap < len) cap = len;
    wh__rbuf *rb = malloc(sizeof(*rb) + cap);
    if (!rb) return -ENOMEM;
    rb->start = 0;
    rb->end = len;
    rb->cap = cap;
    memcpy(rb->data, data, len);
    c->rbuf = rb;
    return 0;
}

static void offer_buffered(wh_conn *c)
{
    wh__rbuf *rb = c->rbuf;
    if (!rb || (c->flags & (WH__C_DEAD | WH__C_PAUSED))) return;
    rb->start += deliver(c, rb->data + rb->start, rb->end - rb->start);
    if (c->rbuf == rb && rb->start == rb->end) {
        free(rb);
        c->rbuf = NULL;
    }
}

/* The read interest is dropped only if the conn outlives the EOF: most
 * protocols close right here, and close(2) drops the registration, so an
 * update first would be an epoll_ctl for nothing. */
static void peer_eof(wh_conn *c)
{
    c->flags |= WH__C_EOF;
    if (c->prof->cbs.on_eof) {
        c->prof->cbs.on_eof(c, wh__conn_ud(c));
    } else {
        c->flags |= WH__C_CLOSING;
        if (!queued(c))
            wh__conn_finish(c, 0);
        else
            c->flags |= WH__C_FLUSH;
    }
    if (!(c->flags & WH__C_DEAD)) wh__conn_update_io(c);
}

/* Reads what the socket has, up to READS_PER_EVENT buffers. False if the
 * first read found nothing (EAGAIN). */
static bool do_read(wh_conn *c)
{
    wh__netloop *nl = NL(c);
    for (int round = 0; round < READS_PER_EVENT; round++) {
        if (c->flags & (WH__C_DEAD | WH__C_PAUSED | WH__C_BP | WH__C_CLOSING | WH__C_EOF))
            return true;
        wh__rbuf *rb = c->rbuf;
        char *buf;
        size_t space;
        if (rb) {
            if (rb->end == rb->cap) {
                if (rb->start > 0) {
                    memmove(rb->data, rb->data + rb->start, rb->end - rb->start);
                    rb->end -= rb->start;
                    rb->start = 0;
                } else if (rb->cap < c->prof->read_buf_max) {
                    size_t cap = rb->cap * 2;
                    if (cap > c->prof->read_buf_max) cap = c->prof->read_buf_max;
                    wh__rbuf *nrb = realloc(rb, sizeof(*rb) + cap);
                    if (!nrb) {
                        wh__conn_finish(c, -ENOMEM);
                        return true;
                    }
                    rb = c->rbuf = nrb;
                    rb->cap = cap;
                } else {
                    /* on_read keeps refusing bytes and the limit is reached:
                     * the peer sent a message larger than we accept. */
                    wh__conn_finish(c, -EMSGSIZE);
                    return true;
                }
            }
            buf = rb->data + rb->end;
            space = rb->cap - rb->end;
        } else {
            buf = nl->scratch;
            space = c->prof->read_buf_size;
        }
        ssize_t n;
        if (WH__XP(c)) {
            n = WH__XP(c)->ops->read(c, buf, space);
            if (n < 0) {
                errno = (int)-n;
                n = -1;
            }
        } else {
            n = read(c->io.fd, buf, space);
        }
        if (n < 0) {
            if (errno == EINTR) {
                round--;
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                wh__conn_finish(c, -errno);
                return true;
            }
            nl->drained = c;
            return round > 0;
        }
        if (n == 0) {
            peer_eof(c);
            return true;
        }
        /* before on_read, which may close c; a transport's short read says
         * nothing about the socket */
        if ((size_t)n < space && !WH__XP(c)) nl->drained = c;
        __atomic_store_n(&nl->ctr->bytes_in, nl->ctr->bytes_in + (uint64_t)n, __ATOMIC_RELAXED);
        touch(c);
        if (rb) {
            rb->end += (size_t)n;
            offer_buffered(c);
        } else {
            size_t used = deliver(c, buf, (size_t)n);
            if (used < (size_t)n && !(c->flags & WH__C_DEAD) &&
                keep_rest(c, buf + used, (size_t)n - used) < 0) {
                wh__conn_finish(c, -ENOMEM);
                return true;
            }
        }
        if ((size_t)n < space && !(WH__XP(c) && WH__XP(c)->ops->pending(c)))
            return true; /* the socket is drained */
    }
    /* Out of rounds: a transport may hold bytes epoll will never report. */
    if (WH__XP(c)) wh__conn_read_pending(c);
    return true;
}

/* ---- Completion mode: the ops' callbacks ---------------------------------- */

/* Appends bytes to c's read buffer (made or grown as needed). */
static int rbuf_append(wh_conn *c, const char *data, size_t len)
{
    wh__rbuf *rb = c->rbuf;
    if (!rb) return keep_rest(c, data, len);
    if (rb->cap - rb->end < len && rb->start > 0) {
        memmove(rb->data, rb->data + rb->start, rb->end - rb->start);
        rb->end -= rb->start;
        rb->start = 0;
    }
    if (rb->cap - rb->end < len) {
        size_t cap = rb->cap * 2;
        while (cap < rb->end + len)
            cap *= 2;
        wh__rbuf *nrb = realloc(rb, sizeof(*rb) + cap);
        if (!nrb) return -ENOMEM;
        rb = c->rbuf = nrb;
        rb->cap = cap;
    }
    memcpy(rb->data + rb->end, data, len);
    rb->end += len;
    return 0;
}

/* n bytes a recv brought in buf (the loop's buffer, back in the ring when
 * this returns). */
static void cq_take(wh_conn *c, const char *buf, size_t n)
{
    if (c->flags & (WH__C_CLOSING | WH__C_EOF)) return; /* epoll's path would not read them */
    if (!c->rbuf && !(c->flags & (WH__C_PAUSED | WH__C_BP))) {
        size_t used = deliver(c, (char *)buf, n);
        if (used < n && !(c->flags & WH__C_DEAD) && keep_rest(c, buf + used, n - used) < 0)
            wh__conn_finish(c, -ENOMEM);
        return;
    }
    /* Bytes already on their way when reading stopped are kept, not lost. */
    if (rbuf_append(c, buf, n) < 0) {
        wh__conn_finish(c, -ENOMEM);
        return;
    }
    if (c->flags & (WH__C_PAUSED | WH__C_BP)) return;
    offer_buffered(c);
    wh__rbuf *rb = c->rbuf;
    if (rb && !(c->flags & WH__C_DEAD) && rb->end - rb->start >= c->prof->read_buf_max)
        wh__conn_finish(c, -EMSGSIZE); /* on_read keeps refusing a message above the limit */
}

void wh__conn_cq_recv(void *cookie, int res, unsigned flags, const char *buf)
{
    wh_conn *c = cookie;
    wh__netloop *nl = NL(c);
    bool last = !(flags & WH__CQ_MORE);
    if (last) c->io.spare &= (uint8_t) ~(WH__Q_RECV | WH__Q_RCANCEL);
    if (c->io.spare & WH__Q_ZOMBIE) {
        if (last && !(c->io.spare & WH__Q_CHAIN)) wh__conn_dealloc(nl, c);
        return;
    }
    if (c->flags & WH__C_DEAD) return; /* complete() is still to run and sees RECV gone */
    unsigned held = c->flags & WH__C_HELD;
    c->flags |= WH__C_HELD;
    if ((c->flags & WH__C_OFFER) && res >= 0 && !(c->flags & (WH__C_PAUSED | WH__C_BP))) {
        /* Kept bytes still to offer (a resume): before what came after them. */
        c->flags &= (uint16_t)~WH__C_OFFER;
        offer_buffered(c);
    }
    if (c->flags & WH__C_DEAD) {
        /* on_read closed it */
    } else if (res > 0) {
        if (flags & WH__CQ_NONEMPTY) {
            c->io.spare &= (uint8_t)~WH__Q_DRAINED;
        } else {
            c->io.spare |= WH__Q_DRAINED;
            nl->drained = c;
        }
        __atomic_store_n(&nl->ctr->bytes_in, nl->ctr->bytes_in + (uint64_t)res, __ATOMIC_RELAXED);
        touch(c);
        cq_take(c, buf, (size_t)res);
    } else if (res == 0) {
        /* EOF. While reading is off it waits: the recv made when reading
         * resumes finds it again. */
        if (!(c->flags & (WH__C_PAUSED | WH__C_BP | WH__C_CLOSING | WH__C_EOF))) {
            c->io.spare |= WH__Q_DRAINED;
            peer_eof(c);
        }
    } else if (res == -ENOTSOCK || res == -EINVAL) {
        c->io.spare &= (uint8_t)~WH__Q_CQ; /* not a socket: readiness, as before */
    } else if (res != -ECANCELED && res != -ENOBUFS) {
        wh__conn_finish(c, res);
    }
    /* The multishot ended (cancelled, ring dry, EOF while paused, ...): a
     * new one if reading is still wanted. */
    if (last && !(c->flags & WH__C_DEAD)) wh__conn_update_io(c);
    wh__conn_release(c, held);
    nl->drained = NULL;
}

void wh__conn_cq_send(void *cookie, int res, unsigned flags, const char *buf)
{
    wh_conn *c = cookie;
    wh__netloop *nl = NL(c);
    (void)flags;
    (void)buf;
    /* A one-completion chain's send reports only a failure or a short
     * send, and then its close neither ran nor reports: this completion
     * stands for both (the close's part below, as if it came with
     * -ECANCELED: the fd is still open). */
    bool broken1 = (c->io.spare & WH__Q_CHAIN) && nl->cq_chain1 &&
                   (res < 0 || (c->wq && (size_t)res < tx_bytes(c->wq)));
    c->io.spare &= (uint8_t)~WH__Q_SEND;
    unsigned held = c->flags & WH__C_HELD;
    c->flags |= WH__C_HELD;
    if (c->flags & WH__C_DEAD) {
        /* finished meanwhile: release() completes it now */
    } else if (res == -ENOTSOCK) {
        c->io.spare &= (uint8_t)~WH__Q_CQ; /* a pipe: readiness, as before */
        wh__conn_update_io(c);
        do_flush(c, false, false);
    } else if (res < 0) {
        wh__conn_finish(c, res == -ECANCELED ? -EPIPE : res);
    } else if ((c->io.spare & WH__Q_CHAIN) && (size_t)res < tx_bytes(c->wq)) {
        /* MSG_WAITALL ended short: an error broke the chain (its close
         * completes with -ECANCELED and hands the fd back). */
        wh__conn_finish(c, -EPIPE);
    } else if (c->io.spare & WH__Q_CHAIN) {
        /* The whole closing reply went out (it was all of the queue); the
         * chain's close runs after it (and sends the FIN), and the close's
         * completion finishes the conn: on_close comes after the FIN, as
         * on the other paths. */
        wh__wq_consume(c->wq, (size_t)res);
        __atomic_store_n(&nl->ctr->bytes_out, nl->ctr->bytes_out + (uint64_t)res, __ATOMIC_RELAXED);
        wq_put(nl, c->wq);
        c->wq = NULL;
        c->flags |= WH__C_SHUT_DONE;
    } else {
        bool fin = c->wq->fin_follows;
        wh__wq_consume(c->wq, (size_t)res);
        __atomic_store_n(&nl->ctr->bytes_out, nl->ctr->bytes_out + (uint64_t)res, __ATOMIC_RELAXED);
        touch(c);
        if (!c->wq->queued) {
            wq_put(nl, c->wq);
            c->wq = NULL;
            /* The closing reply went out corked: its FIN goes with it now,
             * as on the readiness path (do_flush). */
            if (fin && !(c->flags & WH__C_SHUT_DONE) && shutdown(c->io.fd, SHUT_WR) == 0)
                c->flags |= WH__C_SHUT_DONE;
        }
        if ((c->flags & WH__C_BP) && queued(c) <= c->prof->low_wm) {
            c->flags &= (uint16_t)~WH__C_BP;
            wh__conn_update_io(c);
            cq_offer_kept(c);
            if (c->prof->cbs.on_drain && !(c->flags & WH__C_DEAD))
                c->prof->cbs.on_drain(c, wh__conn_ud(c));
        }
        do_flush(c, false,
                 false); /* the rest of a short send, or what came meanwhile; then close/shutdown */
    }
    wh__conn_release(c, held); /* CHAIN still set: c's memory stays */
    if (broken1) wh__conn_cq_close(c, -ECANCELED, 0, NULL);
}

void wh__conn_cq_close(void *cookie, int res, unsigned flags, const char *buf)
{
    wh_conn *c = cookie;
    wh__netloop *nl = NL(c);
    (void)flags;
    (void)buf;
    /* A one-completion chain whose close reports: the send before it took
     * the whole reply and posted nothing (a failed one would have posted
     * instead of the close). Its part first, as if its completion had come
     * (the queue lives while SEND is set). */
    if ((c->io.spare & (WH__Q_SEND | WH__Q_CHAIN)) == (WH__Q_SEND | WH__Q_CHAIN) && nl->cq_chain1)
        wh__conn_cq_send(c, (int)tx_bytes(c->wq), 0, NULL);
    if (!(c->flags & WH__C_DEAD)) {
        /* The chain ran (the send's completion took the reply off the
         * queue; the close sent the FIN) or broke: the conn is done. */
        unsigned held = c->flags & WH__C_HELD;
        c->flags |= WH__C_HELD;
        wh__conn_finish(c, res == -ECANCELED ? -EPIPE : 0); /* CHAIN still set: no fd call */
        c->io.spare &= (uint8_t)~WH__Q_CHAIN;
        if (res == -ECANCELED) close(c->io.fd);
        wh__conn_release(c, held);
        return;
    }
    c->io.spare &= (uint8_t)~WH__Q_CHAIN;
    /* The chain broke (its send failed or was cancelled): the fd is still
     * open and still ours. */
    if (res == -ECANCELED) close(c->io.fd);
    if ((c->io.spare & (WH__Q_ZOMBIE | WH__Q_RECV)) == WH__Q_ZOMBIE) wh__conn_dealloc(nl, c);
}

void wh__conn_read_pending(wh_conn *c)
{
    if (!(c->flags & (WH__C_DEAD | WH__C_PAUSED | WH__C_BP | WH__C_CLOSING | WH__C_EOF)) &&
        WH__XP(c)->ops->pending(c))
        schedule_always(c); /* wh__conn_pending_run reads them */
}

void wh__conn_xport_open(wh_conn *c)
{
    WH__XP(c)->hs = false;
    if (c->flags & WH__C_WOUT)
        c->flags ^= WH__C_WOUT; /* the queue is empty: on_open writes first */
    wh_conn_set_timeout(c, 0);  /* the handshake deadline ends here */
    wh__conn_start(c);
    /* Request bytes that came with the last handshake flight may already sit
     * decrypted-to-be in the transport, where epoll cannot see them. */
    if (!(c->flags & WH__C_DEAD) && WH__XP(c)->ops->pending(c)) do_read(c);
}

static void connect_done(wh_conn *c, unsigned events)
{
    int err = 0;
    socklen_t sl = sizeof(err);
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0) err = errno;
    if (err == 0 && (events & (WH_IO_ERR | WH_IO_HUP))) err = ECONNREFUSED;
    if (err) {
        wh__conn_finish(c, -err);
        return;
    }
    c->flags &= (uint16_t)~WH__C_CONNECTING;
    /* The connect timeout ends here; on_open may set an idle timeout. */
    wh_conn_set_timeout(c, 0);
    wh__conn_update_io(c);
    if (c->prof->cbs.on_open && !(c->flags & WH__C_DEAD)) c->prof->cbs.on_open(c, wh__conn_ud(c));
}

void wh__conn_io_cb(wh__iow *w, unsigned events, void *nlp)
{
    /* The watcher is the conn's first member. */
    wh_conn *c = (wh_conn *)((char *)w - offsetof(wh_conn, io));
    (void)nlp; /* the class's netloop; c->prof->nl says the same */
    unsigned held = c->flags & WH__C_HELD;
    bool reading = (c->io.flags & WH_IO_READ) != 0;
    c->flags |= WH__C_HELD;
    if (c->flags & WH__C_CONNECTING) {
        connect_done(c, events);
    } else if (c->prof->proxy_stage && !wh__proxy_stage_io(c, events)) {
        /* still reading the PROXY header, or refused */
    } else if (WH__XP(c) && WH__XP(c)->hs) {
        WH__XP(c)->ops->handshake(c);
    } else {
        if ((events & WH_IO_WRITE) && (c->flags & WH__C_WOUT)) do_flush(c, true, false);
        if (reading && (events & (WH_IO_READ | WH_IO_HUP | WH_IO_ERR)))
            do_read(c); /* read() reports EOF or the error itself */
        else if ((events & (WH_IO_HUP | WH_IO_ERR)) && !(c->flags & WH__C_DEAD)) {
            /* Not reading (paused, or waiting to flush), so the interest had
             * no EPOLLRDHUP: this is a full hang-up or an error. Nothing can
             * be delivered any more, and a write-only interest on a dead
             * socket would wake us forever. */
            int err = 0;
            socklen_t sl = sizeof(err);
            getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &sl);
            wh__conn_finish(c, err ? -err : -ECONNRESET);
        }
    }
    wh__netloop *nl = NL(c); /* release may free c */
    wh__conn_release(c, held);
    nl->drained = NULL;
}

void wh__conn_start(wh_conn *c)
{
    wh__conn_update_io(c);
    if (c->prof->cbs.on_open && !(c->flags & WH__C_DEAD)) c->prof->cbs.on_open(c, wh__conn_ud(c));
}

void wh__conn_pending_run(wh_conn *c)
{
    c->flags &= (uint16_t)~WH__C_PENDING;
    unsigned held = c->flags & WH__C_HELD;
    c->flags |= WH__C_HELD;
    if (!(c->flags & WH__C_DEAD) && (c->flags & WH__C_OFFER)) {
        c->flags &= (uint16_t)~WH__C_OFFER;
        offer_buffered(c);
    }
    if (WH__XP(c) && !(c->flags & WH__C_DEAD) && !WH__XP(c)->hs && WH__XP(c)->ops->pending(c))
        do_read(c);
    wh__conn_release(c, held);
}

/* Puts transport xp on c and starts its handshake: on_open waits for it
 * (wh__conn_xport_open); until then the handshake deadline is the conn's
 * timeout. The transport lives in the conn's extension (WH__C_EXT). */
static void xp_begin(wh_conn *c, wh__xport *xp)
{
    wh__conn_ext *x = WH__EXT(c);
    if (!x) {
        if (!(x = calloc(1, sizeof(*x)))) {
            xp->ops->free(xp);
            wh__conn_finish(c, -ENOMEM);
            return;
        }
        x->ud = c->ud;
        c->ud = x;
        c->flags |= WH__C_EXT;
    }
    x->xp = xp;
    wh_conn_set_timeout(c, wh__tls_handshake_ms(c->prof->tls));
    wh__conn_update_io(c);
}

void wh__conn_open(wh_conn *c)
{
    if (!c->prof->tls) {
        wh__conn_start(c);
        return;
    }
    wh__xport *xp = wh__tls_xport_new(c->prof->tls, c->io.fd);
    if (!xp) {
        wh__conn_finish(c, -ENOMEM);
        return;
    }
    xp_begin(c, xp);
}

/* ---- public API ---------------------------------------------------------- */

int wh_conn_adopt(wh_loop *loop, int fd, const wh_net_opts *opts, const wh_conn_cbs *cbs, void *ud,
                  wh_conn **out)
{
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    const wh__prof *p = wh__prof_get(nl, cbs, opts);
    if (!p) return -ENOMEM;
    wh__xport *xp = NULL; /* with a PROXY stage, made when the stage ends */
    if (p->tls && !p->proxy && !(xp = wh__tls_xport_new(p->tls, fd))) return -ENOMEM;
    wh_conn *c = wh__conn_new(nl, fd, p, ud);
    if (!c) {
        if (xp) xp->ops->free(xp);
        return -ENOMEM;
    }
    if (out) *out = c;
    c->flags |= WH__C_HELD;
    if (p->proxy)
        wh__proxy_stage_begin(c); /* then wh__conn_open: the handshake or on_open */
    else if (xp)
        xp_begin(c, xp);
    else
        wh__conn_start(c);
    /* Do not complete here even if on_open closed c: the caller holds *out
     * until this returns, so on_close and free wait for the end-of-iteration
     * task. */
    if (!(c->flags & WH__C_DEAD) && (c->flags & WH__C_FLUSH)) do_flush(c, false, false);
    c->flags &= (uint16_t)~WH__C_HELD;
    if (c->flags & WH__C_DEAD) schedule(c);
    return 0;
}

int wh__conn_adopt_accepted(wh_loop *loop, int fd, const wh_net_opts *opts, const wh_conn_cbs *cbs,
                            void *ud, wh_conn **out)
{
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    uint8_t *spec = nl->accept_fd == fd ? nl->accept_spec : NULL;
    /* With the PROXY protocol the first bytes are the header, for the stage
     * (which looks at once too) and never for on_read; with TLS the
     * handshake comes first (wh_conn_adopt starts it). */
    if (!spec || (opts && (opts->proxy_protocol || opts->tls)))
        return wh_conn_adopt(loop, fd, opts, cbs, ud, out);
    const wh__prof *p = wh__prof_get(nl, cbs, opts);
    if (!p) return -ENOMEM;
    wh_conn *c = wh__conn_new(nl, fd, p, ud);
    if (!c) return -ENOMEM;
    if (out) *out = c;
    /* The request usually arrived with the handshake's last ACK (always with
     * TCP_DEFER_ACCEPT): read it now instead of registering and waiting for
     * the poll to say so. A conn answered and closed right here never
     * touches epoll at all. Registration happens after, with whatever
     * interest is left (none for a closed conn). */
    c->flags |= WH__C_HELD;
    if (c->prof->cbs.on_open) c->prof->cbs.on_open(c, wh__conn_ud(c));
    if (!(c->flags & WH__C_DEAD) && !(c->io.spare & WH__Q_CQ)) {
        /* (Completion mode needs no such read: the recv submitted at the
         * end of the iteration completes at once when bytes are there.) */
        bool got = do_read(c);
        if (got && *spec < 3) (*spec)++;
        if (!got && *spec > 0) (*spec)--;
    }
    if (!(c->flags & WH__C_DEAD) && (c->flags & WH__C_FLUSH)) do_flush(c, false, false);
    wh__conn_update_io(c);
    nl->drained = NULL;
    c->flags &= (uint16_t)~WH__C_HELD;
    if (c->flags & WH__C_DEAD) schedule(c);
    return 0;
}

static int queue_check(wh_conn *c)
{
    if (c->flags & (WH__C_DEAD | WH__C_CLOSING | WH__C_SHUT)) return -EPIPE;
    if (!c->wq && !(c->wq = wq_get(NL(c)))) return -ENOMEM;
    return 0;
}

static void queued_more(wh_conn *c)
{
    bool bp = c->wq->queued > c->prof->high_wm && !(c->flags & WH__C_BP);
    if (bp) c->flags |= WH__C_BP;   /* on_read sees it at once; the watcher below */
    if (!(c->flags & WH__C_WOUT)) { /* with WOUT, EPOLLOUT drives the flush */
        c->flags |= WH__C_FLUSH;
        schedule(c);
    }
    /* A flush that is sure to come (the holding frame's, or the
     * end-of-iteration task's) stops reading if the queue is still above
     * the low watermark after it (do_flush); otherwise stop it now. */
    if (bp && ((c->flags & WH__C_WOUT) || !(c->flags & (WH__C_HELD | WH__C_PENDING))))
        wh__conn_update_io(c);
}

int wh_conn_write(wh_conn *c, const void *data, size_t len)
{
    int rc = queue_check(c);
    if (rc < 0) return rc;
    if ((rc = wh__wq_copy(c->wq, data, len)) < 0) return rc;
    queued_more(c);
    return 0;
}

int wh_conn_write_ref(wh_conn *c, const void *data, size_t len, void (*done)(void *arg), void *arg)
{
    int rc = queue_check(c);
    if (rc < 0) return rc;
    if ((rc = wh__wq_ref(c->wq, data, len, done, arg)) < 0) return rc;
    queued_more(c);
    return 0;
}

int wh_conn_sendfile(wh_conn *c, int fd, off_t offset, size_t len, bool close_fd)
{
    int rc = queue_check(c);
    if (rc < 0) return rc;
    if ((rc = wh__wq_file(c->wq, fd, offset, len, close_fd)) < 0) return rc;
    queued_more(c);
    return 0;
}

int wh_conn_flush(wh_conn *c)
{
    if (c->flags & WH__C_DEAD) return c->err ? c->err : -EPIPE;
    do_flush(c, false, true); /* now: no op to wait for */
    if (c->flags & WH__C_DEAD) {
        schedule(c);
        return c->err ? c->err : -EPIPE;
    }
    return 0;
}

size_t wh_conn_queued(const wh_conn *c)
{
    return queued(c);
}

bool wh_conn_writable(const wh_conn *c)
{
    return !(c->flags & (WH__C_BP | WH__C_DEAD | WH__C_CLOSING | WH__C_SHUT));
}

void wh_conn_close(wh_conn *c)
{
    if (c->flags & (WH__C_DEAD | WH__C_CLOSING)) return;
    c->flags |= WH__C_CLOSING;
    if (c->flags & WH__C_CONNECTING) {
        wh__conn_finish(c, -ECANCELED);
    } else if (!queued(c)) {
        wh__conn_finish(c, 0); /* no interest change first: close(2) drops it */
    } else {
        /* Stop reading while the queue flushes. Not yet if no write is
         * blocked: the flush at the end of this dispatch runs before the
         * next poll and usually empties the queue and closes the socket,
         * and close(2) drops the registration; disarming first cost an
         * EPOLL_CTL_DEL per "Connection: close" answer. If the flush comes
         * back short, its switch to waiting for EPOLLOUT sets the interest
         * to write only (CLOSING). */
        if (c->flags & WH__C_WOUT) wh__conn_update_io(c);
        c->flags |= WH__C_FLUSH;
        schedule(c);
    }
}

void wh_conn_shutdown(wh_conn *c)
{
    if (c->flags & (WH__C_DEAD | WH__C_SHUT)) return;
    c->flags |= WH__C_SHUT;
    if (c->flags & WH__C_CONNECTING) return; /* after connecting, the first flush shuts down */
    if (!queued(c)) {
        after_drain(c);
        if (c->flags & WH__C_DEAD) schedule(c);
    } else {
        c->flags |= WH__C_FLUSH;
        schedule(c);
    }
}

void wh_conn_abort(wh_conn *c)
{
    if (c->flags & WH__C_DEAD) return;
    c->flags |= WH__C_ABORT;
    wh__conn_finish(c, -ECONNABORTED);
}

void wh_conn_pause(wh_conn *c)
{
    if (c->flags & (WH__C_DEAD | WH__C_PAUSED)) return;
    c->flags |= WH__C_PAUSED;
    wh__conn_update_io(c);
}

void wh_conn_resume(wh_conn *c)
{
    if ((c->flags & WH__C_DEAD) || !(c->flags & WH__C_PAUSED)) return;
    c->flags &= (uint16_t)~WH__C_PAUSED;
    wh__conn_update_io(c);
    if (c->rbuf) {
        c->flags |= WH__C_OFFER;
        schedule_always(c);
    }
    if (WH__XP(c)) wh__conn_read_pending(c);
}

void wh_conn_set_timeout(wh_conn *c, uint32_t ms)
{
    if (c->flags & WH__C_DEAD) return;
    wh__netloop *nl = NL(c);
    /* +1: act_tick is the tick the last I/O fell in (rounded down), so one
     * more tick guarantees at least ms of silence before expiry. */
    uint32_t ticks = ms ? (ms + WH__NET_TICK_MS - 1) / WH__NET_TICK_MS + 1 : 0;
    if (ticks > UINT16_MAX) ticks = UINT16_MAX; /* ~109 minutes: 2 bytes per conn */
    if (!c->tmo_ticks && ticks)
        nl->ntimed++;
    else if (c->tmo_ticks && !ticks)
        nl->ntimed--;
    c->tmo_ticks = (uint16_t)ticks;
    c->act_tick = wh__net_tick(nl);
    wh__wheel_place(nl, c);
}

void wh_conn_set_data(wh_conn *c, void *data)
{
    c->data = data;
}

void *wh_conn_data(const wh_conn *c)
{
    return c->data;
}

void wh_conn_set_cbs(wh_conn *c, const wh_conn_cbs *cbs, void *ud)
{
    /* Keep the buffer limits of the current profile. */
    const wh__prof *p = wh__prof_like(NL(c), cbs, c->prof);
    if (!p) return; /* -ENOMEM: keep the old callbacks rather than none */
    c->prof = p;
    if (c->flags & WH__C_EXT)
        ((wh__conn_ext *)c->ud)->ud = ud;
    else
        c->ud = ud;
    /* Inside on_read, deliver() sees the change and offers the rest itself;
     * otherwise buffered bytes go to the new on_read at the end of the
     * iteration. */
    if (c->rbuf && NL(c)->reading != c) {
        c->flags |= WH__C_OFFER;
        schedule_always(c);
    }
}

wh_loop *wh_conn_loop(const wh_conn *c)
{
    return NL(c)->loop;
}

const wh_sockaddr *wh_conn_peer(const wh_conn *c)
{
    const wh__conn_ext *x = WH__EXT(c);
    if (x && x->peer.len) return &x->peer; /* from a PROXY header */
    return wh_conn_sock_peer(c);
}

const wh_sockaddr *wh_conn_sock_peer(const wh_conn *c)
{
    /* Not stored per conn (112 bytes each at 100k idle conns): looked up on
     * demand into a per-loop cache by fd (netloop.c frees the entry with the
     * conn), or per-loop storage valid until the next call on this loop. */
    wh__netloop *nl = NL(c);
    wh_sockaddr *peer = &nl->peer_tmp;
    if (c->flags & WH__C_DEAD) {
        memset(peer, 0, sizeof(*peer));
        return peer;
    }
    if (!nl->peer_cache) nl->peer_cache = calloc(WH__PEER_CACHE, sizeof(*nl->peer_cache));
    wh__peer_ent *pe = nl->peer_cache ? &nl->peer_cache[(unsigned)c->io.fd % WH__PEER_CACHE] : NULL;
    if (pe && pe->c == c) return &pe->addr;
    if (wh__sock_peer(c->io.fd, peer) < 0) {
        memset(peer, 0, sizeof(*peer));
        return peer;
    }
    if (!pe) return peer;
    pe->c = c;
    pe->addr = *peer;
    return &pe->addr;
}

int wh_conn_fd(const wh_conn *c)
{
    return (c->flags & WH__C_DEAD) ? -1 : c->io.fd;
}

bool wh__conn_idle(const wh_conn *c)
{
    return !(c->flags & (WH__C_DEAD | WH__C_CLOSING)) && !c->rbuf && !queued(c);
}

bool wh__conn_quiet(const wh_conn *c)
{
    if (wh__conn_closing(c) || !wh__conn_idle(c) || (c->flags & WH__C_BUSY)) return false;
    if (WH__XP(c) && WH__XP(c)->ops->pending(c)) return false;
    /* Request bytes already in the kernel: the peer sent something we have
     * not read yet, so the conn is about to be busy; closing it now would
     * drop a request it was entitled to have answered. */
    int n = 0;
    return !(ioctl(c->io.fd, FIONREAD, &n) == 0 && n > 0);
}

static void close_if_quiet(wh_conn *c, void *ud)
{
    (void)ud;
    if (wh__conn_quiet(c)) wh_conn_close(c);
}

void wh_net_close_idle(wh_loop *loop)
{
    wh__net_foreach_conn(loop, close_if_quiet, NULL);
}

bool wh__conn_closing(const wh_conn *c)
{
    return (c->flags & (WH__C_DEAD | WH__C_CLOSING | WH__C_SHUT | WH__C_EOF)) != 0;
}

void wh_conn_set_busy(wh_conn *c, bool busy)
{
    if (busy) {
        c->flags |= WH__C_BUSY;
        return;
    }
    if (!(c->flags & WH__C_BUSY)) return;
    c->flags &= (uint16_t)~WH__C_BUSY;
    wh__netloop *nl = NL(c);
    if (nl->on_unbusy && !(c->flags & WH__C_DEAD)) nl->on_unbusy(c, nl->on_unbusy_ud);
}

bool wh_conn_busy(const wh_conn *c)
{
    return (c->flags & WH__C_BUSY) != 0;
}
