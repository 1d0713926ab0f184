/* ONESHOT model (seed 003): one epoll instance shared by every worker; each
 * idle connection sits in it with EPOLLONESHOT, so a readiness event goes to
 * exactly one thread and the fd stays disarmed until that thread re-arms it
 * (EPOLL_CTL_MOD) after processing. A connection is never processed by two
 * threads at once.
 *
 * How it fits wharf's per-thread loops and connections
 * ----------------------------------------------------
 * The shared epoll fd is itself pollable: every worker watches it from its
 * own loop (level-triggered, so all workers wake; EPOLLEXCLUSIVE is not
 * allowed on an epoll fd, epoll_ctl(2)). A worker that wakes takes a small
 * batch with epoll_wait(shared, 0 timeout); workers that find nothing go
 * back to sleep.
 *
 * A wh_conn belongs to one loop at a time (its watcher, timeout wheel slot,
 * counters and profile are per loop). A oneshot connection therefore moves:
 *  - "parked": between events it belongs to no loop; its fd is armed in the
 *    shared epoll; its timeout deadline is kept in the slot table;
 *  - "owned": a worker that won the event (CAS PARKED -> OWNED on the slot
 *    of that fd + generation) attaches the conn to its own loop (watcher,
 *    wheel, profile), runs the normal net I/O path (user callbacks run here,
 *    wh_conn_loop() is this worker's loop) and then parks it again.
 * A conn is parked only when it is quiet: no output queued, not paused, not
 * closing, not marked busy (wh_conn_set_busy), callbacks not replaced
 * (an upgraded conn, e.g. WebSocket, stays on its thread for good). Otherwise it stays owned by
 * the worker as an ordinary conn until a periodic retry finds it quiet; this
 * is what makes asynchronous work (offload) on a conn safe in this model:
 * mark it busy and it stays on its thread until you say it is done.
 *
 * Slot table: indexed by fd (sized by RLIMIT_NOFILE, at most 262144), one
 * atomic state word per slot = generation << 8 | state. epoll_data carries fd
 * and generation, so an event for a closed fd whose number was reused never
 * touches the new connection. States: FREE, OWNED, PARKING (the owner is
 * re-arming: an event that arrives in that instant waits for PARKED), PARKED.
 * Slots are never freed while the server exists, so a stale event never
 * reads freed memory.
 *
 * Timeouts: an owned conn uses the owner's wheel (wh_conn_set_timeout works
 * as usual); a parked conn's deadline is stored in its slot, and worker 0
 * sweeps the table every WH__OS_SWEEP_MS, claims expired parked conns (the
 * same CAS, so it cannot race an event) and closes them with -ETIMEDOUT.
 * Accuracy: the timeout plus up to one sweep period (and one wheel tick).
 *
 * Close: only the owner closes a conn (net closes the fd, which removes it
 * from the shared epoll); the slot keeps OWNED with a stale pointer that no
 * one dereferences (events need PARKED; the sweeper needs PARKED) until the
 * fd number is reused and the slot gets a new generation.
 *
 * Accepting: each worker watches the (one) listening socket with
 * EPOLLEXCLUSIVE, as in the EXCLUSIVE model; new conns are parked at once.
 *
 * Cost: besides the shared epoll's MOD per event, attaching a conn to a
 * worker's loop registers it in that loop's epoll (ADD) and parking removes
 * it (DEL): three epoll_ctl calls per event, the price of moving conns
 * between threads. bench/runtime_models.sh measures it.
 *
 * Moving a conn between loops goes through the net layer (wh__conn_detach /
 * wh__conn_attach); the shared poller is an instance of the loop's backend
 * (wh__poller), so nothing here knows epoll.
 */
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/runtime_internal.h"

#define WH__OS_SWEEP_MS  100u
#define WH__OS_RETRY_MS  20u
#define WH__OS_BATCH     32
#define WH__OS_MAX_SLOTS 262144u

enum { OS_FREE = 0, OS_OWNED = 1, OS_PARKING = 2, OS_PARKED = 3 };
#define OS_MK(gen, st) (((uint64_t)(gen) << 8) | (st))
#define OS_GEN(w)      ((uint32_t)((w) >> 8))
#define OS_ST(w)       ((unsigned)((w)&0xff))

struct wh__os_slot {
    _Atomic uint64_t state;
    _Atomic uint32_t deadline; /* wheel tick when a parked conn expires; 0 = none */
    /* Relaxed atomics: written by the owner only, but when an fd number is
     * reused the new owner (another thread) writes them right after the old
     * owner's close - ordered by the kernel, invisible to TSan. The conn
     * pointer itself is published by the PARKED release store. */
    _Atomic unsigned owner; /* worker index while OWNED */
    wh_conn *_Atomic conn;
};

struct wh__os_table {
    struct wh__os_slot *slots;
    unsigned cap;
    _Atomic unsigned high; /* 1 + highest fd ever used */
};

static struct wh__os_table *table_of(wh_server *s)
{
    return s->os_table;
}

int wh__oneshot_setup(wh_server *s)
{
    struct rlimit rl;
    unsigned cap = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        cap = (unsigned)(rl.rlim_cur < WH__OS_MAX_SLOTS ? rl.rlim_cur : WH__OS_MAX_SLOTS);
    struct wh__os_table *t = calloc(1, sizeof(*t));
    if (!t) return -ENOMEM;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return -ENOMEM;
    }
    t->cap = cap;
    int rc = wh__poller_new(&s->shared, WH__OS_BATCH);
    if (rc < 0) {
        free(t->slots);
        free(t);
        return rc;
    }
    s->os_table = t;
    return 0;
}

void wh__oneshot_free(wh_server *s)
{
    struct wh__os_table *t = table_of(s);
    wh__poller_free(s->shared);
    s->shared = NULL;
    if (!t) return;
    free(t->slots);
    free(t);
    s->os_table = NULL;
}

/* ---- park / attach ------------------------------------------------------ */

/* Is c quiet enough to leave this thread? */
static bool conn_parkable(struct wh__worker *w, wh_conn *c)
{
    if (!wh__conn_movable(c)) return false;
    /* Callbacks replaced (an HTTP -> WebSocket upgrade): such conns are
     * usually referenced by per-thread state (a broadcast hub), so they stay
     * on their thread for good. */
    const wh_conn_cbs *cc = wh__conn_cbs(c), *sc = &w->srv->cbs;
    return cc->on_read == sc->on_read && cc->on_close == sc->on_close;
}

/* Detaches c from its loop and arms it in the shared poller. Owner only. */
static bool os_park(struct wh__worker *w, wh_conn *c)
{
    wh_server *s = w->srv;
    struct wh__os_table *t = table_of(s);
    if (w->draining || !conn_parkable(w, c)) return false;
    int fd = wh_conn_fd(c);
    if (fd < 0 || (unsigned)fd >= t->cap) return false;
    struct wh__os_slot *sl = &t->slots[fd];
    uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);
    if (OS_ST(st) != OS_OWNED || atomic_load_explicit(&sl->conn, memory_order_relaxed) != c ||
        atomic_load_explicit(&sl->owner, memory_order_relaxed) != w->idx)
        return false; /* not one of ours (e.g. an outbound conn on this loop) */
    uint32_t gen = OS_GEN(st);
    atomic_store_explicit(&sl->deadline, wh__conn_detach(c), memory_order_relaxed);
    atomic_store_explicit(&sl->state, OS_MK(gen, OS_PARKING), memory_order_release);
    if (wh__poller_arm_oneshot(s->shared, fd, (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32)) < 0) {
        /* Cannot arm it (ENOMEM): keep it here as an ordinary conn. */
        atomic_store_explicit(&sl->state, OS_MK(gen, OS_OWNED), memory_order_relaxed);
        wh__conn_attach(c, w->loop);
        return false;
    }
    atomic_store_explicit(&sl->state, OS_MK(gen, OS_PARKED), memory_order_release);
    return true;
}

/* Attaches a conn whose slot we just claimed to w's loop. */
static wh_conn *os_attach(struct wh__worker *w, struct wh__os_slot *sl)
{
    wh_conn *c = atomic_load_explicit(&sl->conn, memory_order_relaxed);
    atomic_store_explicit(&sl->owner, w->idx, memory_order_relaxed);
    wh__conn_attach(c, w->loop);
    return c;
}

/* Tries to take the slot (fd, gen) from PARKED to OWNED. */
static bool os_claim(struct wh__os_slot *sl, uint32_t gen)
{
    for (unsigned spins = 0;; spins++) {
        uint64_t st = atomic_load_explicit(&sl->state, memory_order_acquire);
        if (OS_GEN(st) != gen) return false;
        if (OS_ST(st) == OS_PARKING) { /* the owner is between MOD and PARKED */
            if (spins > 64) sched_yield();
            continue;
        }
        if (OS_ST(st) != OS_PARKED) return false;
        if (atomic_compare_exchange_weak_explicit(&sl->state, &st, OS_MK(gen, OS_OWNED),
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

/* Runs one event for a claimed conn, then parks it if it is quiet. */
static void os_process(struct wh__worker *w, struct wh__os_slot *sl, unsigned events)
{
    wh_conn *c = os_attach(w, sl);
    if (wh__conn_dispatch(c, events))
        (void)os_park(w, c); /* after this, c may belong to another thread */
}

static void shared_cb(wh_io *io, unsigned events, void *ud)
{
    (void)io;
    (void)events;
    struct wh__worker *w = ud;
    wh_server *s = w->srv;
    struct wh__os_table *t = table_of(s);
    wh__fired ev[WH__OS_BATCH];
    int n = wh__poller_poll(s->shared, ev, WH__OS_BATCH);
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)ev[i].token;
        uint32_t gen = (uint32_t)(ev[i].token >> 32);
        if ((unsigned)fd >= t->cap) continue;
        struct wh__os_slot *sl = &t->slots[fd];
        if (!os_claim(sl, gen)) continue; /* stale (closed / reused fd) or claimed by the sweeper */
        os_process(w, sl, ev[i].events);
    }
}

void wh__oneshot_adopt(struct wh__worker *w, int fd, const wh_net_opts *o)
{
    wh_server *s = w->srv;
    struct wh__os_table *t = table_of(s);
    if ((unsigned)fd >= t->cap) {
        wh__ctr_add(&w->rejected, 1); /* before close: a client may look at stats on EOF */
        close(fd);
        return;
    }
    struct wh__os_slot *sl = &t->slots[fd];
    uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);
    uint32_t gen = OS_GEN(st) + 1;
    if (gen == 0 || gen > 0xFFFFFFu)
        gen = 1; /* 24-bit generations in the state word; wrap-around is harmless here
                    (a stale event would also need the same fd reused 16M times) */
    atomic_store_explicit(&sl->owner, w->idx, memory_order_relaxed);
    atomic_store_explicit(&sl->conn, NULL, memory_order_relaxed);
    atomic_store_explicit(&sl->state, OS_MK(gen, OS_OWNED), memory_order_relaxed);
    unsigned prev = atomic_load_explicit(&t->high, memory_order_relaxed);
    while ((unsigned)fd + 1 > prev &&
           !atomic_compare_exchange_weak(&t->high, &prev, (unsigned)fd + 1))
        ;
    wh_conn *c;
    if (wh_conn_adopt(w->loop, fd, o, &s->open_cbs, s, &c) < 0) {
        close(fd);
        return;
    }
    atomic_store_explicit(&sl->conn, c, memory_order_relaxed);
    (void)os_park(w, c);
}

/* Claims every parked conn whose deadline passed (sweep) or every parked conn
 * (drain: they become ordinary conns of this worker). */
static void os_scan(struct wh__worker *w, bool drain)
{
    wh_server *s = w->srv;
    struct wh__os_table *t = table_of(s);
    uint32_t now = wh__net_tick_now(w->loop);
    unsigned high = atomic_load_explicit(&t->high, memory_order_relaxed);
    for (unsigned fd = 0; fd < high; fd++) {
        struct wh__os_slot *sl = &t->slots[fd];
        uint64_t st = atomic_load_explicit(&sl->state, memory_order_acquire);
        if (OS_ST(st) != OS_PARKED) continue;
        if (!drain) {
            uint32_t dl = atomic_load_explicit(&sl->deadline, memory_order_relaxed);
            if (!dl || (int32_t)(now - dl) < 0) continue;
        }
        if (!os_claim(sl, OS_GEN(st))) continue;
        wh_conn *c = os_attach(w, sl);
        if (!drain) wh__conn_expire(c);
    }
}

static void retry_park(wh_conn *c, void *ud)
{
    (void)os_park(ud, c);
}

static void os_timer_cb(wh_timer *tm, void *ud)
{
    (void)tm;
    struct wh__worker *w = ud;
    if (w->draining) {
        os_scan(w, true);
        return;
    }
    wh__net_foreach_conn(w->loop, retry_park, w);
    uint64_t now = wh_loop_now(w->loop);
    if (w->idx == 0 && now - w->os_last_sweep >= WH__OS_SWEEP_MS) {
        w->os_last_sweep = now;
        os_scan(w, false);
    }
}

int wh__oneshot_worker_start(struct wh__worker *w)
{
    wh_server *s = w->srv;
    /* Conns here move between loops: they stay on readiness (no op in
     * flight may pin one to this loop's ring). */
    wh__net_readiness_only(w->loop);
    int rc = wh_io_new(w->loop, wh__poller_fd(s->shared), shared_cb, w, &w->shared_io);
    if (rc == 0) rc = wh_io_set(w->shared_io, WH_IO_READ);
    if (rc == 0) rc = wh_timer_new(w->loop, os_timer_cb, w, &w->os_timer);
    if (rc == 0) rc = wh_timer_start(w->os_timer, WH__OS_RETRY_MS, WH__OS_RETRY_MS);
    return rc;
}

void wh__oneshot_worker_stop(struct wh__worker *w)
{
    /* Keep processing shared events while draining (parked conns may still
     * carry requests); stop only when the worker is finished. */
    if (!w->finished) return;
    if (w->shared_io) {
        wh_io_free(w->shared_io);
        w->shared_io = NULL;
    }
    if (w->os_timer) {
        wh_timer_free(w->os_timer);
        w->os_timer = NULL;
    }
}

void wh__oneshot_drain(struct wh__worker *w)
{
    os_scan(w, true);
}
