/* Loop core: creation, one iteration, run modes, slots. Knows nothing of
 * epoll (backend.h) and little of the watchers (io.c, timer.c, ...).
 *
 * One iteration (wh_loop_run):
 *   1. refresh the cached time, run expired timers;
 *   2. poll, timeout = nearest timer (0 if deferred work, posts or a stop
 *      are pending, or in NOWAIT mode; -1 if no timer);
 *   3. refresh the time, dispatch the batch of fd events;
 *   4. run timers that expired while polling (so RUN_ONCE with only a timer
 *      pending fires it, as libuv does);
 *   5. run deferred callbacks.
 * Posted tasks run from the eventfd watcher's callback (post.c). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop_priv.h"

#define WH__DEFAULT_MAX_EVENTS 256

int wh__tvec_reserve(wh__tvec *v)
{
    if (v->n < v->cap) return 0;
    uint32_t cap = v->cap ? v->cap * 2 : 64;
    wh__task *nv = realloc(v->v, (size_t)cap * sizeof(*nv));
    if (!nv) return -ENOMEM;
    v->v = nv;
    v->cap = cap;
    return 0;
}

/* The backend for a wh_loop_opts.backend value: NULL reads WH_LOOP_BACKEND
 * (so a test suite runs on either backend without code changes), where an
 * unknown name is not an error, only a reason in *be_err. */
static int pick_backend(const char *name, const wh__backend **ops, int *be_err)
{
    bool from_env = false;
    if (!name) {
        name = getenv("WH_LOOP_BACKEND");
        from_env = true;
        if (!name || !*name) return 0;
    }
    if (strcmp(name, "epoll") == 0) return 0;
    if (strcmp(name, "io_uring") == 0) {
#ifdef WH_HAVE_URING
        *ops = &wh__backend_uring;
#else
        *be_err = -ENOTSUP; /* libwharf built without liburing */
#endif
        return 0;
    }
    if (!from_env) return -ENOTSUP;
    *be_err = -ENOTSUP;
    return 0;
}

int wh_loop_new(wh_loop **out, const wh_loop_opts *opts)
{
    if (!out) return -EINVAL;
    *out = NULL;
    const wh__backend *ops = &wh__backend_epoll;
    int be_err = 0;
    int r = pick_backend(opts ? opts->backend : NULL, &ops, &be_err);
    if (r < 0) return r;
    unsigned max = opts && opts->max_events ? opts->max_events : WH__DEFAULT_MAX_EVENTS;
    if (max > 65536) max = 65536;

    wh_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) return -ENOMEM;
    loop->evfd = -1;
    loop->iot_free = WH__IOENT_NONE;
    loop->sigfd = -1;
    loop->be_ops = ops;
    loop->max_events = max;
    loop->fired = calloc(max, sizeof(*loop->fired));
    if (!loop->fired) {
        free(loop);
        return -ENOMEM;
    }
    r = ops->init(&loop->be, max);
    if (r < 0 && ops != &wh__backend_epoll) {
        /* io_uring asked for and unusable here (ENOSYS: an old kernel or a
         * seccomp filter; EPERM: kernel.io_uring_disabled; ENOMEM: the
         * memlock limit of kernels before 5.12): epoll serves instead and
         * wh_loop_backend_error says why. */
        be_err = r;
        ops = &wh__backend_epoll;
        loop->be_ops = ops;
        r = ops->init(&loop->be, max);
    }
    loop->be_err = be_err;
    if (r < 0) {
        free(loop->fired);
        free(loop);
        return r;
    }
    atomic_init(&loop->wake_pending, 0);
    atomic_init(&loop->wake_writes, 0);
    atomic_init(&loop->thread, (unsigned long)pthread_self());
    sigemptyset(&loop->sigmask);
    r = wh__post_init(loop);
    if (r < 0) {
        ops->free(loop->be);
        free(loop->fired);
        free(loop);
        return r;
    }
    wh__loop_update_time_raw(loop);
    *out = loop;
    return 0;
}

static inline void run_defers(wh_loop *loop);

void wh_loop_free(wh_loop *loop)
{
    if (!loop) return;
    loop->freeing = true;
    /* Work handed to the loop is never dropped: queued posts and deferred
     * callbacks run now, on this thread, while every layer's state is still
     * in place (they often carry memory only they know how to free). */
    wh__post_close(loop);
    for (int i = 0; i < 8 && loop->defer.n; i++) /* bounded: a defer may defer again */
        run_defers(loop);
    /* Higher layers first: their free_fns may still use lower slots and
     * free their own watchers. */
    for (int i = WH__SLOT_COUNT - 1; i >= 0; i--) {
        if (loop->slots[i].free_fn) {
            void (*fn)(void *) = loop->slots[i].free_fn;
            loop->slots[i].free_fn = NULL;
            fn(loop->slots[i].ptr);
        }
        loop->slots[i].ptr = NULL;
    }
    wh__signals_free_all(loop);
    wh__timers_free_all(loop);
    wh__post_free(loop);
    wh__io_free_all(loop); /* last: the internal watchers above use the table */
    /* Removals queued above reach the kernel now, so the files they hold
     * close before this returns (backend.h flush; the loop's thread only). */
    if (loop->be_ops->flush && wh_loop_on_thread(loop)) loop->be_ops->flush(loop->be);
    loop->be_ops->free(loop->be);
    free(loop->defer.v);
    free(loop->defer_run.v);
    free(loop->fired);
    free(loop);
}

static void dispatch(wh_loop *loop, unsigned n)
{
    const wh__fired *f = loop->fired;
    for (unsigned i = 0; i < n; i++) {
        uint64_t tok = f[i].token;
        /* Slots are never removed from the table, so the index is always in
         * range; a generation mismatch means the watcher was freed (or
         * re-registered) after the kernel queued this event: drop it. */
        wh__ioent e = loop->iot[(uint32_t)tok];
        if (e & 1) continue; /* the slot is free */
        wh__iow *w = (wh__iow *)e;
        if (w->gen != (uint32_t)(tok >> 32)) continue;
        unsigned want = w->flags;
        if (!(want & (WH_IO_READ | WH_IO_WRITE))) continue; /* disarmed earlier in this batch */
        if (want & WH_IO_ONESHOT) w->state |= WH__IO_S_FIRED;
        /* Interest may have shrunk earlier in this batch: report only what
         * the watcher still asks for, plus HUP/ERR which always matter. */
        unsigned ev = f[i].events & (want | WH_IO_HUP | WH_IO_ERR);
        if (!ev) continue;
        /* The watcher may be freed inside cb: nothing below touches it. */
        if (w->cls) {
            const wh__iocls *k = &loop->io_cls[w->cls];
            k->cb(w, ev, k->ud);
        } else {
            wh_io *io = (wh_io *)((char *)w - offsetof(wh_io, w));
            io->cb(io, ev, io->ud);
        }
    }
}

static inline void run_defers(wh_loop *loop)
{
    if (!loop->defer.n) return;
    wh__tvec run = loop->defer;
    loop->defer = loop->defer_run;
    loop->defer.n = 0;
    for (uint32_t i = 0; i < run.n; i++)
        run.v[i].fn(loop, run.v[i].arg);
    run.n = 0;
    loop->defer_run = run;
}

/* ran: a timer already fired in this iteration. ONCE then has done its one
 * thing and must not block (a timer due before the poll, for instance one
 * started from a stale cached clock, would otherwise leave it waiting for an
 * event that may never come). */
static int poll_timeout(wh_loop *loop, enum wh_run_mode mode, bool ran)
{
    if (mode == WH_RUN_NOWAIT || loop->stop || loop->defer.n) return 0;
    if (ran && mode == WH_RUN_ONCE) return 0;
    return wh__timers_timeout(loop);
}

int wh_loop_run(wh_loop *loop, enum wh_run_mode mode)
{
    int ret = 0;
    if (loop->running) return -EBUSY; /* called from one of its own callbacks */
    loop->running = true;
    atomic_store_explicit(&loop->thread, (unsigned long)pthread_self(), memory_order_relaxed);
    for (;;) {
        loop->st.iterations++;
        wh__loop_update_time_raw(loop);
        bool ran = wh__timers_run(loop);
        int timeout = poll_timeout(loop, mode, ran);
        loop->st.polls++;
        int n = loop->be_ops->poll(loop->be, timeout, loop->fired, loop->max_events);
        if (n < 0) {
            ret = n;
            break;
        }
        wh__loop_update_time_raw(loop);
        if (loop->be_ops->complete) loop->be_ops->complete(loop->be);
        if (n > 0) dispatch(loop, (unsigned)n);
        wh__timers_run(loop);
        run_defers(loop);
        if (mode != WH_RUN_DEFAULT || loop->stop) break;
    }
    loop->stop = false;
    loop->running = false;
    /* Whoever ran us may not run us again soon: what the last callbacks
     * removed must not stay queued (an io_uring poll keeps its file open). */
    if (loop->be_ops->flush) loop->be_ops->flush(loop->be);
    return ret;
}

void wh_loop_stop(wh_loop *loop)
{
    loop->stop = true;
}

uint64_t wh_loop_now(const wh_loop *loop)
{
    return loop->now;
}

void wh_loop_update_time(wh_loop *loop)
{
    wh__loop_update_time_raw(loop);
}

const char *wh_loop_backend(const wh_loop *loop)
{
    return loop->be_ops->name;
}

int wh_loop_backend_error(const wh_loop *loop)
{
    return loop->be_err;
}

void wh_loop_set_data(wh_loop *loop, void *data)
{
    loop->data = data;
}

void *wh_loop_data(const wh_loop *loop)
{
    return loop->data;
}

bool wh_loop_on_thread(const wh_loop *loop)
{
    unsigned long t = atomic_load_explicit(&((wh_loop *)loop)->thread, memory_order_relaxed);
    return pthread_equal((pthread_t)t, pthread_self());
}

int wh_loop_defer(wh_loop *loop, wh_task_fn fn, void *arg)
{
    if (wh__tvec_reserve(&loop->defer) < 0) return -ENOMEM;
    loop->defer.v[loop->defer.n++] = (wh__task){fn, arg};
    return 0;
}

void *wh__loop_slot(const wh_loop *loop, unsigned slot)
{
    return slot < WH__SLOT_COUNT ? loop->slots[slot].ptr : NULL;
}

void wh__loop_set_slot(wh_loop *loop, unsigned slot, void *ptr, void (*free_fn)(void *ptr))
{
    if (slot >= WH__SLOT_COUNT) return;
    loop->slots[slot].ptr = ptr;
    loop->slots[slot].free_fn = free_fn;
}

int wh__loop_backend_fd(wh_loop *loop)
{
    return loop->be_ops->fd(loop->be);
}

void wh__loop_get_stats(const wh_loop *loop, wh__loop_stats *out)
{
    *out = loop->st;
    out->wake_writes = atomic_load_explicit(&((wh_loop *)loop)->wake_writes, memory_order_relaxed);
}

void wh__loop_set_time(wh_loop *loop, uint64_t now_ms)
{
    loop->time_frozen = true;
    loop->now = now_ms;
}
