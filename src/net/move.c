/* Moving a connection between loops (the runtime's ONESHOT model parks idle
 * connections in a poller shared by all threads; whichever thread wins the
 * next event takes the connection onto its own loop). A connection belongs
 * to one loop at a time: its watcher, timeout wheel slot, profile and the
 * loop's connection count. Detach takes it off all of them and leaves only
 * the socket and the buffers-free connection object; attach puts it on
 * another loop. Only quiet connections move (wh__conn_movable): nothing is
 * buffered, queued, pending or held by a frame, so no per-loop state refers
 * to them while they are detached. */
#include "net/xport.h"

bool wh__conn_movable(const wh_conn *c)
{
    const unsigned active = WH__C_HELD | WH__C_PENDING | WH__C_DEAD | WH__C_PAUSED | WH__C_BP |
                            WH__C_CLOSING | WH__C_SHUT | WH__C_EOF | WH__C_WOUT | WH__C_CONNECTING |
                            WH__C_OFFER | WH__C_FLUSH | WH__C_ABORT | WH__C_BUSY;
    return !(c->flags & active) && !(c->io.spare & WH__Q_CQ) /* an op names this loop */ &&
           !c->rbuf && !(c->wq && c->wq->queued) &&
           !(WH__XP(c) && (WH__XP(c)->hs || WH__XP(c)->ops->pending(c)));
}

uint32_t wh__conn_detach(wh_conn *c)
{
    wh__netloop *nl = c->prof->nl;
    uint32_t deadline = 0;
    if (c->tmo_ticks) {
        deadline = c->act_tick + c->tmo_ticks;
        if (deadline == 0) deadline = 1; /* 0 means "none" */
        nl->ntimed--;
    }
    wh__clink_del(&c->link);
    nl->nconns--;
    wh__peer_forget(nl, c);
    wh__iow_deinit(nl->loop, &c->io);
    return deadline;
}

void wh__conn_attach(wh_conn *c, wh_loop *loop)
{
    wh__netloop *nl = wh__netloop_get(loop);
    const wh__prof *p = c->prof;
    if (nl && p->nl != nl) {
        const wh__prof *np = wh__prof_like(nl, &p->cbs, p);
        if (np) c->prof = np;
    }
    /* On -ENOMEM above the conn keeps its old profile, whose loop counts it,
     * and its watcher goes back to that loop too (a conn's watcher is a
     * class watcher of its profile's loop): it then runs on the old loop's
     * thread (before issue 15 it ran on the new one, with the old one's
     * counts and wheel): a race either way, only when a profile for the new
     * loop could not be allocated. */
    nl = c->prof->nl;
    wh__iow_init(&c->io, c->io.fd, nl->io_cls);
    nl->nconns++;
    wh__clink_init(&c->link);
    wh__clink_add_tail(&nl->untimed, &c->link);
    if (c->tmo_ticks) {
        nl->ntimed++;
        wh__wheel_place(nl, c);
    }
    wh__conn_update_io(c);
}

bool wh__conn_dispatch(wh_conn *c, unsigned events)
{
    c->flags |= WH__C_HELD; /* our frame: nothing frees c until we release */
    wh__conn_io_cb(&c->io, events, c->prof->nl);
    if (!(c->flags & WH__C_DEAD) && (c->flags & WH__C_FLUSH)) (void)wh_conn_flush(c);
    if (c->flags & WH__C_DEAD) {
        wh__conn_release(c, 0); /* on_close and free (or at the end of the iteration) */
        return false;
    }
    c->flags &= (uint16_t)~WH__C_HELD;
    return true;
}

void wh__conn_expire(wh_conn *c)
{
    c->flags |= WH__C_HELD;
    wh__conn_finish(c, -ETIMEDOUT);
    wh__conn_release(c, 0);
}

const wh_conn_cbs *wh__conn_cbs(const wh_conn *c)
{
    return &c->prof->cbs;
}

uint32_t wh__net_tick_now(wh_loop *loop)
{
    return (uint32_t)(wh_loop_now(loop) / WH__NET_TICK_MS);
}
