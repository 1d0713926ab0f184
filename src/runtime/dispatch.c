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

static void acc_on_accept(wh_listener *l, int fd, void *ud)
{
    wh_server *s = ud;
    uintptr_t li = 0;
    while (li < WH__RT_MAX_LISTENERS - 1 && s->acc.listeners[li] != l)
        li++;
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

void wh__acceptor_stop_task(wh_loop *loop, void *arg)
{
    struct wh__worker *acc = arg;
    wh_server *s = acc->srv;
    for (unsigned i = 0; i < WH__RT_MAX_LISTENERS; i++) {
        if (acc->listeners[i]) {
            wh__listener_free(acc->listeners[i]);
            acc->listeners[i] = NULL;
        }
    }
    /* Release: every push happened before this store; a worker that reads
     * acc_done == true sees them all in its ring. */
    atomic_store_explicit(&s->acc_done, true, memory_order_release);
    for (unsigned i = 0; i < s->nthreads; i++)
        if (!atomic_exchange(&s->w[i].drain_posted, true))
            wh_loop_post(s->w[i].loop, wh__dispatch_drain, &s->w[i]);
    wh_loop_stop(loop);
}

void *wh__acceptor_main(void *arg)
{
    struct wh__worker *acc = arg;
    wh_server *s = acc->srv;
    int rc = wh_loop_new(&acc->loop, NULL);
    if (rc == 0) {
        wh__loop_set_slot(acc->loop, WH__SLOT_RUNTIME, acc, NULL);
        for (unsigned i = 0; i < s->nls && rc == 0; i++) {
            if (s->ls[i].kind == WH_ADDR_UDP) continue;
            rc = wh__listener_new(acc->loop, s->ls[i].fd, 0, &s->ls[i].net, acc_on_accept, NULL, s,
                                  &acc->listeners[i]);
        }
    }
    wh__thread_report(s, rc);
    if (rc == 0) wh_loop_run(acc->loop, WH_RUN_DEFAULT);
    if (acc->loop)
        wh__acceptor_stop_task(acc->loop, acc); /* idempotent; covers failures */
    else
        atomic_store_explicit(&s->acc_done, true, memory_order_release);
    wh__thread_exited(s);
    return NULL;
}
