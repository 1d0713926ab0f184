/* DISPATCH model (seed 004's memcached design, seed 002's ring): one
 * acceptor thread owns the listening sockets; each accepted fd goes to a
 * worker through that worker's single-producer/single-consumer ring
 * (wh_ring), followed by a wake-up of the worker's loop.
 *
 * Wake-ups are coalesced: drain_posted is set by the acceptor when it posts a
 * drain task and cleared by the worker before it empties the ring, so a burst
 * of N accepts costs one wh_loop_post (one eventfd write), not N. The
 * exchange/store pair is seq_cst: either the acceptor sees the flag cleared
 * and posts, or the worker's pop after the clear sees the pushed fd.
 *
 * Choice of worker: round-robin (default), or least-loaded (open conns plus
 * fds waiting in the ring; read racily, a hint). A full ring sends the fd to
 * the next worker; if every ring is full the connection is closed and
 * counted as rejected.
 */
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/runtime_internal.h"

int wh__dispatch_setup(wh_server *s)
{
    for (unsigned i = 0; i < s->nthreads; i++) {
        int rc = wh_ring_new(&s->w[i].ring, WH__RT_RING_SIZE);
        if (rc < 0) return rc;
        atomic_init(&s->w[i].drain_posted, false);
    }
    atomic_store(&s->acc_done, false);
    return 0;
}

void wh__dispatch_drain(wh_loop *loop, void *arg)
{
    (void)loop;
    struct wh__worker *w = arg;
    atomic_store(&w->drain_posted, false);
    void *item;
    while ((item = wh_ring_pop(w->ring)) != NULL) {
        /* Low 32 bits: fd + 1; high bits: the listener's index. */
        uintptr_t v = (uintptr_t)item;
        wh__worker_adopt(w, (int)(uint32_t)(v - 1), &w->srv->ls[v >> 32].net);
    }
}

static uint64_t worker_load(const struct wh__worker *w)
{
    uint64_t o = __atomic_load_n(&w->net.conns_opened, __ATOMIC_RELAXED);
    uint64_t c = __atomic_load_n(&w->net.conns_closed, __ATOMIC_RELAXED);
    return (o > c ? o - c : 0) + wh_ring_count(w->ring);
}

void wh__acc_on_accept(wh_listener *l, int fd, void *ud);
void wh__acc_on_accept(wh_listener *l, int fd, void *ud)
{
    wh_server *s = ud;
    /* The listener's index travels with the fd: its options (TLS) apply. */
    uintptr_t li = 0;
    for (unsigned j = 0; j < s->acc.nwl; j++)
        if (s->acc.wl[j].l == l) li = s->acc.wl[j].ls;
    unsigned n = s->nthreads, first = s->rr++ % n;
    if (s->opts.dispatch_least_loaded) {
        uint64_t best = UINT64_MAX;
        for (unsigned k = 0; k < n; k++) {
            unsigned i = (first + k) % n;
            uint64_t load = worker_load(&s->w[i]);
            if (load < best) {
                best = load;
                first = i;
            }
        }
    }
    for (unsigned k = 0; k < n; k++) {
        struct wh__worker *w = &s->w[(first + k) % n];
        /* fd + 1: the ring holds non-NULL pointers and fd 0 is valid. */
        if (!wh_ring_push(w->ring, (void *)((li << 32) | (uintptr_t)(fd + 1)))) continue;
        if (!atomic_exchange(&w->drain_posted, true)) wh_loop_post(w->loop, wh__dispatch_drain, w);
        return;
    }
    wh__ctr_add(&s->acc.rejected, 1);
    close(fd);
}

static void acceptor_finish(struct wh__worker *acc)
{
    wh_server *s = acc->srv;
    if (acc->finished) return;
    acc->finished = true;
    acc->accepting = false;
    if (acc->accept_timer) wh_timer_stop(acc->accept_timer);
    /* Graceful: hand out what is queued before the sockets close. */
    wh__worker_close_listener(acc, UINT_MAX, !atomic_load(&s->forced) && acc->loop);
    /* Release: every push happened before this store; a worker that reads
     * acc_done == true sees them all in its ring. */
    atomic_store_explicit(&s->acc_done, true, memory_order_release);
    for (unsigned i = 0; i < s->nthreads; i++)
        if (!atomic_exchange(&s->w[i].drain_posted, true))
            wh_loop_post(s->w[i].loop, wh__dispatch_drain, &s->w[i]);
    wh_loop_stop(acc->loop);
}

static void acc_accept_end(wh_timer *t, void *ud)
{
    (void)t;
    acceptor_finish(ud);
}

void wh__acceptor_stop_task(wh_loop *loop, void *arg)
{
    (void)loop;
    struct wh__worker *acc = arg;
    wh_server *s = acc->srv;
    if (acc->finished) return;
    /* wh_server_drain: keep accepting for a while (a second, forced stop
     * comes back here and ends it at once). */
    if (!acc->draining && !atomic_load(&s->forced) && s->drain_mode && s->drain_accept_ms &&
        wh_timer_new(acc->loop, acc_accept_end, acc, &acc->accept_timer) == 0) {
        acc->draining = true;
        acc->accepting = true;
        wh_timer_start(acc->accept_timer, s->drain_accept_ms, 0);
        return;
    }
    acc->draining = true;
    acceptor_finish(acc);
}

void *wh__acceptor_main(void *arg)
{
    struct wh__worker *acc = arg;
    wh_server *s = acc->srv;
    wh_loop_opts lo = {.backend = s->opts.loop_backend};
    int rc = wh_loop_new(&acc->loop, &lo);
    if (rc == 0) {
        wh__loop_set_slot(acc->loop, WH__SLOT_RUNTIME, acc, NULL);
        for (unsigned i = 0; i < s->nls && rc == 0; i++) {
            if (s->ls[i].kind == 0 || s->ls[i].kind == WH_ADDR_UDP || s->ls[i].removed) continue;
            rc = wh__worker_open_listener(acc, i);
        }
    }
    wh__thread_report(s, rc);
    if (rc == 0) wh_loop_run(acc->loop, WH_RUN_DEFAULT);
    if (acc->loop) {
        acceptor_finish(acc); /* idempotent; covers failures */
        if (acc->accept_timer) {
            wh_timer_free(acc->accept_timer);
            acc->accept_timer = NULL;
        }
    } else {
        atomic_store_explicit(&s->acc_done, true, memory_order_release);
    }
    wh__thread_exited(s);
    return NULL;
}
