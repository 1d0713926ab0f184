/* Worker threads: one wh_loop each, pinned to a CPU, with their own
 * listeners (REUSEPORT / EXCLUSIVE), dispatch ring (DISPATCH) or share of the
 * common epoll (ONESHOT); the graceful-stop state machine of one thread.
 *
 * Graceful stop on one worker (wh__worker_stop_task, then drain checks):
 *  1. free the thread's listeners and UDP sockets: no new connections;
 *     tell the protocol (cbs.on_stop) so it stops keeping conns alive;
 *  2. every WH__RT_DRAIN_SCAN_MS, close each connection that is idle:
 *     (wh_net_close_idle): nothing buffered or queued, not marked busy by
 *     the protocol above (wh_conn_busy), and no request bytes waiting in
 *     the kernel (a request that already arrived is served, not cut off);
 *     connections in the middle of work are left alone;
 *  3. when no connection, no offload job of this loop and no dispatched fd
 *     is left, stop the loop;
 *  4. at shutdown_timeout_ms (or on a forced stop) abort what is left.
 * The idle test runs outside any connection callback (from a timer or a
 * task), so "not inside a callback" holds by construction.
 */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/runtime_internal.h"

uint64_t wh__server_open_conns(const wh_server *s)
{
    /* Summed over all threads before subtracting: in the ONESHOT model a
     * conn may open on one thread and close on another. */
    uint64_t opened = 0, closed = 0;
    for (unsigned i = 0; i < s->nthreads; i++) {
        const wh__net_counters *n = &s->w[i].net;
        closed += __atomic_load_n(&n->conns_closed, __ATOMIC_RELAXED);
        opened += __atomic_load_n(&n->conns_opened, __ATOMIC_RELAXED);
    }
    return opened > closed ? opened - closed : 0;
}

/* Adopt goes through this on_open first: the default idle timeout is set
 * before the user's on_open (which may replace it, e.g. HTTP's header
 * timeout), then the user's callbacks are installed, so after the first
 * callback the runtime is out of the data path entirely. */
static void rt_on_open(wh_conn *c, void *ud)
{
    wh_server *s = ud;
    if (s->opts.idle_timeout_ms) wh_conn_set_timeout(c, s->opts.idle_timeout_ms);
    wh_conn_set_cbs(c, &s->cbs, s->ud);
    if (s->cbs.on_open) s->cbs.on_open(c, s->ud);
}

void wh__worker_init_cbs(wh_server *s);
void wh__worker_init_cbs(wh_server *s)
{
    s->open_cbs = s->cbs;
    s->open_cbs.on_open = rt_on_open;
}

void wh__worker_adopt(struct wh__worker *w, int fd, const wh_net_opts *o)
{
    wh_server *s = w->srv;
    /* max_conns (set by wh_server_start: the option, or one derived from
     * RLIMIT_NOFILE; UINT_MAX = none): the connection is accepted and closed
     * at once (the client sees EOF), so the backlog drains instead of
     * filling with connections nobody will serve. Checked against a racy
     * sum of per-thread counters: threads accepting at the same instant may
     * overshoot by threads-1. */
    unsigned cap = atomic_load_explicit(&s->max_conns, memory_order_relaxed);
    if (cap != UINT_MAX && wh__server_open_conns(s) >= cap) {
        wh__ctr_add(&w->rejected, 1); /* before close: a client may look at stats on EOF */
        close(fd);
        return;
    }
    wh__ctr_add(&w->accepted, 1);
    if (s->opts.model == WH_MODEL_ONESHOT) {
        wh__oneshot_adopt(w, fd, o);
        return;
    }
    wh_conn *c;
    if (wh__conn_adopt_accepted(w->loop, fd, o, &s->open_cbs, s, &c) < 0) close(fd);
}

static void rt_on_accept(wh_listener *l, int fd, void *ud)
{
    wh__worker_adopt(ud, fd, wh__listener_opts(l));
}

static int add_wl(struct wh__worker *w, unsigned i, int k, int fd, unsigned flags, wh__accept_cb cb,
                  void *ud)
{
    if (w->nwl == WH__RT_MAX_WLISTEN) return -ENOSPC;
    struct wh__wlisten *e = &w->wl[w->nwl];
    const struct wh__rt_listen *ls = &w->srv->ls[i];
    int rc;
    if (ls->late_listen && (rc = wh__listen_start(fd, &ls->net)) < 0) return rc;
    rc = wh__listener_new(w->loop, fd, flags, &ls->net, cb, NULL, ud, &e->l);
    if (rc < 0) return rc;
    e->ls = i;
    e->k = k;
    w->nwl++;
    return 0;
}

void wh__acc_on_accept(wh_listener *l, int fd, void *ud);

int wh__worker_open_listener(struct wh__worker *w, unsigned i)
{
    wh_server *s = w->srv;
    struct wh__rt_listen *ls = &s->ls[i];
    bool acc = w == &s->acc;
    if (ls->kind == WH_ADDR_UDP) {
        if (acc) return 0;
        w->held |= 1ull << i;
        /* UDP: one socket per thread in a SO_REUSEPORT group; the kernel
         * spreads datagrams by source address hash. */
        char buf[160] = "udp://";
        int rc = wh_addr_format(&ls->local, buf + 6, sizeof(buf) - 6);
        if (rc < 0) return rc;
        wh_net_opts o = s->opts.net;
        o.reuseport = 1;
        return wh_udp_bind(w->loop, buf, &o, &s->cbs, s->ud, &w->udps[i]);
    }
    if (s->opts.model == WH_MODEL_DISPATCH && !acc) return 0; /* the acceptor's */
    w->held |= 1ull << i;
    if (ls->shared) /* EXCLUSIVE, ONESHOT, DISPATCH, Unix paths */
        return add_wl(w, i, -1, ls->fd, acc ? 0 : WH_IO_EXCLUSIVE,
                      acc ? wh__acc_on_accept : rt_on_accept, acc ? (void *)s : (void *)w);
    /* A group: this worker's share of its sockets (the acceptor takes all). */
    unsigned step = acc ? 1 : s->nthreads;
    for (unsigned k = acc ? 0 : w->idx; k < ls->nfds; k += step) {
        int rc = add_wl(w, i, (int)k, ls->fds[k], 0, acc ? wh__acc_on_accept : rt_on_accept,
                        acc ? (void *)s : (void *)w);
        if (rc < 0) return rc;
    }
    return 0;
}

void wh__worker_close_listener(struct wh__worker *w, unsigned i, bool drain)
{
    wh_server *s = w->srv;
    for (unsigned j = w->nwl; j-- > 0;) {
        struct wh__wlisten *e = &w->wl[j];
        if (i != UINT_MAX && e->ls != i) continue;
        /* Empty the queue first: the kernel resets what is still queued on
         * a listening socket that closes. Stop watching before that, so
         * that the close follows the last accept with nothing in between.
         * A group's sockets close one at a time: what arrives after the
         * last accept is moved by the kernel (net.ipv4.tcp_migrate_req) to
         * another socket of the group, and a move that picks a socket
         * closing at that instant on another thread resets the
         * connection. */
        bool own = e->k >= 0; /* its own socket of a group */
        if (own) pthread_mutex_lock(&s->close_mu);
        if (drain) {
            wh__listener_pause(e->l);
            wh__listener_drain(e->l);
        }
        wh__listener_free(e->l);
        if (own) {
            wh__listen_release(s, e->ls, e->k);
            pthread_mutex_unlock(&s->close_mu);
        }
        w->wl[j] = w->wl[--w->nwl];
    }
    for (unsigned k = 0; k < WH__RT_MAX_LISTENERS; k++) {
        if (i != UINT_MAX && k != i) continue;
        if (w->udps[k]) {
            wh_udp_close(w->udps[k]);
            w->udps[k] = NULL;
        }
        if (w->held & (1ull << k)) {
            w->held &= ~(1ull << k);
            wh__listen_release(s, k, -1);
        }
    }
}

static int worker_open_listeners(struct wh__worker *w)
{
    wh_server *s = w->srv;
    for (unsigned i = 0; i < s->nls; i++) {
        if (s->ls[i].kind == 0 || s->ls[i].removed) continue;
        int rc = wh__worker_open_listener(w, i);
        if (rc < 0) return rc;
    }
    return 0;
}

/* A conn that turns idle while the worker drains closes at once, not at the
 * next scan (the net layer calls this from wh_conn_set_busy(c, false)). */
static void drain_on_unbusy(wh_conn *c, void *ud)
{
    struct wh__worker *w = ud;
    if (!w->forced && !w->keep_idle && wh__conn_quiet(c)) wh_conn_close(c);
}

static void drain_abort(wh_conn *c, void *ud)
{
    (void)ud;
    wh_conn_abort(c);
}

static size_t worker_live_conns(struct wh__worker *w);

static void worker_finish(struct wh__worker *w)
{
    if (w->finished) return;
    w->finished = true;
    if (w->scan_timer) wh_timer_stop(w->scan_timer);
    if (w->deadline_timer) wh_timer_stop(w->deadline_timer);
    if (w->accept_timer) wh_timer_stop(w->accept_timer);
    if (w->srv->opts.model == WH_MODEL_ONESHOT) wh__oneshot_worker_stop(w);
    wh_loop_stop(w->loop);
}

void wh__worker_drain_check(struct wh__worker *w)
{
    if (!w->draining || w->finished) return;
    wh_server *s = w->srv;
    if (w->ring) wh__dispatch_drain(w->loop, w);
    if (s->opts.model == WH_MODEL_ONESHOT) wh__oneshot_drain(w);
    if (w->forced)
        wh__net_foreach_conn(w->loop, drain_abort, w);
    else if (!w->keep_idle)
        wh_net_close_idle(w->loop);
    if (!w->accepting && worker_live_conns(w) == 0 && w->offload_inflight == 0 &&
        atomic_load_explicit(&s->acc_done, memory_order_acquire) &&
        (!w->ring || wh_ring_count(w->ring) == 0))
        worker_finish(w);
}

static size_t worker_live_conns(struct wh__worker *w)
{
    size_t n = wh_net_conn_count(w->loop);
    /* ONESHOT: parked conns belong to no loop; a worker is done only when
     * the whole server has none left. */
    if (w->srv->opts.model == WH_MODEL_ONESHOT) n += wh__server_open_conns(w->srv);
    return n;
}

static void scan_timer_cb(wh_timer *t, void *ud)
{
    (void)t;
    wh__worker_drain_check(ud);
}

/* Listeners off: drained (accept what is queued, then close) unless the stop
 * is forced. */
static void stop_accepting(struct wh__worker *w, bool forced)
{
    w->accepting = false;
    if (w->accept_timer) wh_timer_stop(w->accept_timer);
    wh__worker_close_listener(w, UINT_MAX, !forced);
}

static void accept_end_cb(wh_timer *t, void *ud)
{
    (void)t;
    struct wh__worker *w = ud;
    stop_accepting(w, false);
    wh__worker_drain_check(w);
}

static void deadline_cb(wh_timer *t, void *ud)
{
    (void)t;
    struct wh__worker *w = ud;
    /* Idle connections go politely; what is still busy is aborted. */
    if (w->keep_idle) wh_net_close_idle(w->loop);
    w->forced = true;
    if (w->accepting) stop_accepting(w, true);
    wh__worker_drain_check(w);
}

void wh__worker_stop_task(wh_loop *loop, void *arg)
{
    (void)loop;
    struct wh__worker *w = arg;
    wh_server *s = w->srv;
    bool forced = atomic_load(&s->forced);
    if (!w->draining) {
        w->draining = true;
        w->keep_idle = s->drain_mode && !forced;
        /* The protocol first: connections accepted from now on (the queue
         * emptied below included) already get its stopping behaviour. */
        if (s->cbs.on_stop) s->cbs.on_stop(w->loop, s->ud);
        uint32_t accept_ms = forced || !s->drain_mode ? 0 : s->drain_accept_ms;
        if (accept_ms && wh_timer_new(w->loop, accept_end_cb, w, &w->accept_timer) == 0) {
            w->accepting = true;
            wh_timer_start(w->accept_timer, accept_ms, 0);
        } else {
            stop_accepting(w, forced);
        }
        if (!w->keep_idle) /* -ENOMEM: the scan finds them */
            (void)wh__net_set_unbusy_hook(w->loop, drain_on_unbusy, w);
        if (wh_timer_new(w->loop, scan_timer_cb, w, &w->scan_timer) == 0)
            wh_timer_start(w->scan_timer, WH__RT_DRAIN_SCAN_MS, WH__RT_DRAIN_SCAN_MS);
        uint64_t deadline = (uint64_t)s->opts.shutdown_timeout_ms + (w->accepting ? accept_ms : 0);
        if (deadline > UINT32_MAX) deadline = UINT32_MAX;
        if (!forced && wh_timer_new(w->loop, deadline_cb, w, &w->deadline_timer) == 0)
            wh_timer_start(w->deadline_timer, (uint32_t)deadline, 0);
    }
    if (forced) {
        w->forced = true;
        if (w->accepting) stop_accepting(w, true);
    }
    wh__worker_drain_check(w);
}

void wh__thread_report(wh_server *s, int err)
{
    pthread_mutex_lock(&s->mu);
    if (err && !s->start_err) s->start_err = err;
    s->ready++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void ctl_done_task(wh_loop *loop, void *arg)
{
    (void)arg;
    wh_loop_stop(loop);
}

/* The last thread out tells wh_server_run's loop (under mu, so the loop
 * cannot go away between the check and the post). */
void wh__thread_exited(wh_server *s)
{
    pthread_mutex_lock(&s->mu);
    if (--s->running == 0) {
        s->all_done = true;
        pthread_cond_broadcast(&s->cv);
        if (s->ctl) wh_loop_post(s->ctl, ctl_done_task, NULL);
    }
    pthread_mutex_unlock(&s->mu);
}

void *wh__worker_main(void *arg)
{
    struct wh__worker *w = arg;
    wh_server *s = w->srv;
    if (w->cpu >= 0 && wh__cpu_pin_self(w->cpu) < 0)
        w->cpu = -1; /* not allowed here (cpuset changed): run unpinned */
    wh_loop_opts lo = {.backend = s->opts.loop_backend};
    int rc = wh_loop_new(&w->loop, &lo);
    if (rc < 0) {
        wh__thread_report(s, rc);
        wh__thread_exited(s);
        return NULL;
    }
    wh__loop_set_slot(w->loop, WH__SLOT_RUNTIME, w, NULL);
    rc = wh__net_set_counters(w->loop, &w->net);
    if (rc == 0 && s->thread_start) s->thread_start(w->loop, w->idx, s->thread_ud);
    if (rc == 0) rc = worker_open_listeners(w);
    if (rc == 0 && s->opts.model == WH_MODEL_ONESHOT) rc = wh__oneshot_worker_start(w);
    wh__thread_report(s, rc);
    if (rc == 0) wh_loop_run(w->loop, WH_RUN_DEFAULT);
    /* Normally the drain left nothing; after a backend failure, close what
     * is left so no fd leaks (a few iterations deliver the on_close calls). */
    w->accepting = false;
    wh__worker_close_listener(w, UINT_MAX, false);
    w->forced = true;
    for (int i = 0; i < 100 && (worker_live_conns(w) > 0 || w->offload_inflight); i++) {
        wh__net_foreach_conn(w->loop, drain_abort, w);
        wh_loop_run(w->loop, w->offload_inflight ? WH_RUN_ONCE : WH_RUN_NOWAIT);
    }
    if (s->opts.model == WH_MODEL_ONESHOT) {
        w->finished = true;
        wh__oneshot_worker_stop(w);
    }
    if (s->thread_stop) s->thread_stop(w->loop, w->idx, s->thread_ud);
    if (w->scan_timer) {
        wh_timer_free(w->scan_timer);
        w->scan_timer = NULL;
    }
    if (w->deadline_timer) {
        wh_timer_free(w->deadline_timer);
        w->deadline_timer = NULL;
    }
    if (w->accept_timer) {
        wh_timer_free(w->accept_timer);
        w->accept_timer = NULL;
    }
    wh__thread_exited(s);
    return NULL;
}

wh_server *wh__server_of_loop(const wh_loop *loop)
{
    struct wh__worker *w = wh__loop_slot(loop, WH__SLOT_RUNTIME);
    return w ? w->srv : NULL;
}

int wh__server_loop_index(const wh_loop *loop)
{
    struct wh__worker *w = wh__loop_slot(loop, WH__SLOT_RUNTIME);
    return w && w != &w->srv->acc ? (int)w->idx : -1;
}
