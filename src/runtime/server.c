/* wh_server: options, listeners, lifecycle (start / run / stop / wait /
 * free), stats and the offload entry point.
 *
 * Models (wh_model) decide how accepted connections reach workers:
 *  - REUSEPORT: wh_server_listen binds the first socket with SO_REUSEPORT;
 *    wh_server_start binds threads-1 more to the same (actual) address, one
 *    per worker, and the kernel load-balances new connections across them by
 *    4-tuple hash (socket(7) SO_REUSEPORT). Unix-domain addresses cannot be
 *    reuseport groups; they fall back to one shared fd (as EXCLUSIVE).
 *    Caveat (kernel): connections still in a closed socket's accept queue are
 *    reset, so at shutdown each thread accepts what is queued before it
 *    closes (the listener is freed by the worker; queued conns of a REUSEPORT
 *    socket may be lost - documented limitation).
 *  - EXCLUSIVE: one fd in every worker's epoll with EPOLLEXCLUSIVE
 *    (epoll_ctl(2): wakes one or more, not all, of the waiters).
 *  - ONESHOT: see oneshot.c (one epoll shared by all threads).
 *  - DISPATCH: see dispatch.c (acceptor thread + SPSC ring per worker).
 * UDP listeners are the same in every model: one SO_REUSEPORT socket per
 * worker bound to the same address (datagrams have no accept step to share).
 */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime_internal.h"

void wh__worker_init_cbs(wh_server *s);

/* The documented defaults (server.h), in one place. */
static const wh_server_opts server_defaults = {
    .threads = 0,
    .model = WH_MODEL_REUSEPORT,
    .pin_threads = true,
    .dispatch_least_loaded = false,
    .max_conns = 0,
    .idle_timeout_ms = 60000,
    .shutdown_timeout_ms = 10000,
    .handle_signals = true,
    .offload_threads = 0,
    .offload_queue = 1024,
};

void wh_server_opts_init(wh_server_opts *o)
{
    *o = server_defaults;
    wh_net_opts_init(&o->net);
}

int wh_server_new(wh_server **out, const wh_server_opts *opts, const wh_conn_cbs *cbs, void *ud)
{
    if (!out) return -EINVAL;
    wh_server *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    if (opts)
        s->opts = *opts;
    else
        wh_server_opts_init(&s->opts);
    if ((unsigned)s->opts.model > WH_MODEL_DISPATCH) {
        free(s);
        return -EINVAL;
    }
    if (cbs) s->cbs = *cbs;
    s->ud = ud;
    wh__worker_init_cbs(s);
    s->nthreads = s->opts.threads ? s->opts.threads : wh__cpu_count();
    if (s->opts.offload_queue == 0) s->opts.offload_queue = server_defaults.offload_queue;
    s->w = calloc(s->nthreads, sizeof(*s->w));
    if (!s->w) {
        free(s);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < s->nthreads; i++) {
        s->w[i].srv = s;
        s->w[i].idx = i;
        s->w[i].cpu = -1;
    }
    s->acc.srv = s;
    s->acc.cpu = -1;
    atomic_init(&s->acc_done, true);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return 0;
}

int wh_server_listen(wh_server *s, const char *addr)
{
    return wh_server_listen_tls(s, addr, NULL);
}

int wh_server_listen_tls(wh_server *s, const char *addr, struct wh_tls_ctx *tls)
{
    if (!s || !addr || s->state != WH__SRV_NEW) return -EINVAL;
    if (s->nls == WH__RT_MAX_LISTENERS) return -ENOSPC;
    struct wh__rt_listen *ls = &s->ls[s->nls];
    wh_sockaddr sa;
    enum wh_addr_kind kind;
    int rc = wh_addr_parse(addr, &sa, &kind);
    if (rc < 0) return rc;
    wh_net_opts o = s->opts.net;
    bool per_thread =
        kind == WH_ADDR_UDP || (kind == WH_ADDR_TCP && s->opts.model == WH_MODEL_REUSEPORT);
    if (per_thread) o.reuseport = 1;
    int fd;
    rc = wh__listen_fd(&sa, kind, &o, &fd);
    if (rc < 0) return rc;
    rc = wh__sock_local(fd, &ls->local);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    ls->kind = kind;
    ls->fd = fd;
    ls->shared = !per_thread;
    ls->fds = NULL;
    ls->net = s->opts.net;
    ls->net.tls = tls;
    s->nls++;
    return 0;
}

int wh_server_local_addr(const wh_server *s, unsigned i, wh_sockaddr *out)
{
    if (!s || !out || i >= s->nls) return -EINVAL;
    *out = s->ls[i].local;
    return 0;
}

void wh_server_on_thread(wh_server *s, void (*start)(wh_loop *loop, unsigned idx, void *ud),
                         void (*stop)(wh_loop *loop, unsigned idx, void *ud), void *ud)
{
    s->thread_start = start;
    s->thread_stop = stop;
    s->thread_ud = ud;
}

/* max_conns 0: three quarters of the soft RLIMIT_NOFILE. Each connection is
 * one descriptor, and the rest is left for what serving them needs besides:
 * listeners, each loop's epoll, eventfd and timers, files being sent (and an
 * application's cache of open files), Redis and log files. Without a cap a
 * flood of connections takes every descriptor, and then a file or a Redis
 * reconnect fails for the clients already in; at the cap the newcomer is
 * turned away instead. No limit: no cap. */
static unsigned derived_max_conns(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return UINT_MAX;
    rlim_t cap = rl.rlim_cur - rl.rlim_cur / 4;
    if (cap == 0) cap = 1;
    return cap >= UINT_MAX ? UINT_MAX : (unsigned)cap;
}

/* REUSEPORT: bind the other threads' sockets to the address the first one
 * actually got (port 0 resolved), so they join its reuseport group. */
static int open_per_thread_fds(wh_server *s)
{
    for (unsigned i = 0; i < s->nls; i++) {
        struct wh__rt_listen *ls = &s->ls[i];
        if (ls->shared || ls->kind == WH_ADDR_UDP) continue;
        ls->fds = malloc(s->nthreads * sizeof(int));
        if (!ls->fds) return -ENOMEM;
        ls->fds[0] = ls->fd;
        for (unsigned t = 1; t < s->nthreads; t++)
            ls->fds[t] = -1;
        wh_net_opts o = s->opts.net;
        o.reuseport = 1;
        for (unsigned t = 1; t < s->nthreads; t++) {
            int rc = wh__listen_fd(&ls->local, ls->kind, &o, &ls->fds[t]);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

static void close_listen_fds(wh_server *s)
{
    for (unsigned i = 0; i < s->nls; i++) {
        struct wh__rt_listen *ls = &s->ls[i];
        if (ls->fds) {
            for (unsigned t = 1; t < s->nthreads; t++)
                if (ls->fds[t] >= 0) close(ls->fds[t]);
            free(ls->fds);
            ls->fds = NULL;
        }
        if (ls->fd >= 0) close(ls->fd);
        ls->fd = -1;
    }
}

static int spawn(wh_server *s, pthread_t *tid, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(tid, NULL, fn, arg);
    if (rc) return -rc;
    pthread_mutex_lock(&s->mu);
    s->running++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void join_all(wh_server *s)
{
    for (unsigned i = 0; i < s->nthreads; i++) {
        if (s->w[i].joinable) {
            pthread_join(s->w[i].tid, NULL);
            s->w[i].joinable = false;
        }
    }
    if (s->acc.joinable) {
        pthread_join(s->acc.tid, NULL);
        s->acc.joinable = false;
    }
}

int wh_server_start(wh_server *s)
{
    if (!s || s->state != WH__SRV_NEW) return -EINVAL;
    if (s->nls == 0) return -EDESTADDRREQ;
    s->state = WH__SRV_STARTED;
    /* Read now, not in wh_server_new: a program may raise its limit between. */
    if (s->opts.max_conns == 0) s->opts.max_conns = derived_max_conns();
    int rc = open_per_thread_fds(s);
    if (rc == 0)
        rc = wh__offload_new(&s->offload,
                             s->opts.offload_threads ? s->opts.offload_threads : s->nthreads,
                             s->opts.offload_queue);
    if (rc == 0 && s->opts.model == WH_MODEL_DISPATCH) rc = wh__dispatch_setup(s);
    if (rc == 0 && s->opts.model == WH_MODEL_ONESHOT) rc = wh__oneshot_setup(s);
    if (rc < 0) {
        s->state = WH__SRV_JOINED;
        return rc;
    }
    /* Threads inherit the creator's signal mask: block the defaults while
     * creating them (so SIGINT/SIGTERM reach only a signalfd), then give the
     * caller its own mask back. */
    sigset_t old;
    pthread_sigmask(SIG_SETMASK, NULL, &old);
    wh_signal_block_defaults();
    unsigned want = 0;
    for (unsigned i = 0; i < s->nthreads && rc == 0; i++) {
        struct wh__worker *w = &s->w[i];
        if (s->opts.pin_threads) {
            int cpu = wh__cpu_nth(i);
            w->cpu = cpu >= 0 ? cpu : -1;
        }
        rc = spawn(s, &w->tid, wh__worker_main, w);
        if (rc == 0) {
            w->joinable = true;
            want++;
        }
    }
    /* Every worker loop exists before the acceptor may hand it an fd: the
     * handshake (mu) orders the workers' setup before the acceptor's start. */
    pthread_mutex_lock(&s->mu);
    while (s->ready < want)
        pthread_cond_wait(&s->cv, &s->mu);
    if (rc == 0) rc = s->start_err;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0 && s->opts.model == WH_MODEL_DISPATCH) {
        rc = spawn(s, &s->acc.tid, wh__acceptor_main, &s->acc);
        if (rc == 0) {
            s->acc.joinable = true;
            want++;
            pthread_mutex_lock(&s->mu);
            while (s->ready < want)
                pthread_cond_wait(&s->cv, &s->mu);
            rc = s->start_err;
            pthread_mutex_unlock(&s->mu);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->acc.joinable) /* no acceptor (other model, or start failed): nothing to wait for */
        atomic_store(&s->acc_done, true);
    /* UDP placeholders kept the port reserved until every worker bound its
     * own socket; now they would only steal datagrams from the group. */
    for (unsigned i = 0; i < s->nls; i++) {
        if (s->ls[i].kind == WH_ADDR_UDP && s->ls[i].fd >= 0) {
            close(s->ls[i].fd);
            s->ls[i].fd = -1;
        }
    }
    if (rc < 0) {
        wh_server_stop(s, false);
        wh_server_wait(s);
        return rc;
    }
    return 0;
}

void wh_server_stop(wh_server *s, bool graceful)
{
    if (!s || s->state == WH__SRV_NEW) return;
    bool first = !atomic_exchange(&s->stopping, true);
    bool force = !graceful && !atomic_exchange(&s->forced, true);
    if (!first && !force) return;
    /* Posting to a loop whose thread already left is harmless: loops live
     * until wh_server_free. */
    if (s->acc.loop) wh_loop_post(s->acc.loop, wh__acceptor_stop_task, &s->acc);
    for (unsigned i = 0; i < s->nthreads; i++)
        if (s->w[i].loop) wh_loop_post(s->w[i].loop, wh__worker_stop_task, &s->w[i]);
}

int wh_server_wait(wh_server *s)
{
    if (!s || s->state == WH__SRV_NEW) return -EINVAL;
    if (s->state == WH__SRV_JOINED) return 0;
    join_all(s);
    s->state = WH__SRV_JOINED;
    /* Jobs still queued run now; their completions were counted by the
     * workers, which waited for them, so none can be pending here. */
    wh__offload_free(s->offload);
    s->offload = NULL;
    close_listen_fds(s);
    return 0;
}

struct run_ctx {
    wh_server *s;
    unsigned signals;
};

static void run_on_signal(wh_signal *sig, int signo, void *ud)
{
    (void)sig;
    (void)signo;
    struct run_ctx *r = ud;
    /* First signal: graceful; a second one: stop now. */
    wh_server_stop(r->s, ++r->signals > 1 ? false : true);
}

int wh_server_run(wh_server *s)
{
    if (!s) return -EINVAL;
    sigset_t old;
    pthread_sigmask(SIG_SETMASK, NULL, &old);
    if (s->opts.handle_signals) {
        /* Blocked before the threads start, not once the signalfd exists: a
         * ^C in between would otherwise take its default action and kill
         * the process instead of stopping it gracefully. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    if (s->state == WH__SRV_NEW) {
        int rc = wh_server_start(s);
        if (rc < 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return rc;
        }
    }
    if (s->state == WH__SRV_JOINED) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 0;
    }
    wh_loop *ctl;
    int rc = wh_loop_new(&ctl, NULL);
    if (rc < 0) {
        /* No loop for signals: still wait for a stop from another thread. */
        pthread_mutex_lock(&s->mu);
        while (!s->all_done)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return wh_server_wait(s);
    }
    struct run_ctx r = {s, 0};
    wh_signal *sigint = NULL, *sigterm = NULL;
    if (s->opts.handle_signals) {
        wh_signal_new(ctl, SIGINT, run_on_signal, &r, &sigint);
        wh_signal_new(ctl, SIGTERM, run_on_signal, &r, &sigterm);
    }
    pthread_mutex_lock(&s->mu);
    bool done = s->all_done;
    if (!done) s->ctl = ctl;
    pthread_mutex_unlock(&s->mu);
    if (!done) wh_loop_run(ctl, WH_RUN_DEFAULT);
    pthread_mutex_lock(&s->mu);
    s->ctl = NULL;
    pthread_mutex_unlock(&s->mu);
    if (sigint) wh_signal_free(sigint);
    if (sigterm) wh_signal_free(sigterm);
    wh_loop_free(ctl);
    if (s->opts.handle_signals) {
        /* Swallow SIGINT/SIGTERM still pending (a late extra ^C) so that
         * restoring the caller's mask does not kill the process after a
         * clean stop. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) > 0)
            ;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return wh_server_wait(s);
}

void wh_server_free(wh_server *s)
{
    if (!s) return;
    if (s->state == WH__SRV_STARTED) {
        wh_server_stop(s, false);
        wh_server_wait(s);
    }
    close_listen_fds(s);
    wh__offload_free(s->offload);
    /* The acceptor's loop first: tasks still queued there run as it is freed
     * (wh_loop_free) and may post to the workers' loops, which must still
     * exist then. */
    if (s->acc.loop) wh_loop_free(s->acc.loop);
    for (unsigned i = 0; i < s->nthreads; i++) {
        struct wh__worker *w = &s->w[i];
        if (w->loop) wh_loop_free(w->loop);
        wh_ring_free(w->ring);
    }
    wh__oneshot_free(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->w);
    free(s);
}

unsigned wh_server_threads(const wh_server *s)
{
    return s ? s->nthreads : 0;
}

wh_loop *wh_server_loop(const wh_server *s, unsigned idx)
{
    return s && idx < s->nthreads ? s->w[idx].loop : NULL;
}

void wh_server_stats_get(const wh_server *s, wh_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s) return;
    for (unsigned i = 0; i < s->nthreads; i++) {
        const struct wh__worker *w = &s->w[i];
        out->accepted += atomic_load_explicit(&w->accepted, memory_order_relaxed);
        out->rejected += atomic_load_explicit(&w->rejected, memory_order_relaxed);
        out->bytes_in += __atomic_load_n(&w->net.bytes_in, __ATOMIC_RELAXED);
        out->bytes_out += __atomic_load_n(&w->net.bytes_out, __ATOMIC_RELAXED);
    }
    out->rejected += atomic_load_explicit(&s->acc.rejected, memory_order_relaxed);
    out->open_conns = wh__server_open_conns(s);
}

bool wh_server_stopping(const wh_server *s)
{
    return s && atomic_load(&s->stopping);
}

/* A draining worker waits for its offload completions; re-check after each. */
static void offload_after(wh_loop *loop)
{
    struct wh__worker *w = wh__loop_slot(loop, WH__SLOT_RUNTIME);
    if (w && w->draining) wh__worker_drain_check(w);
}

int wh_server_offload(wh_server *s, wh_loop *loop, void (*job)(void *arg),
                      void (*done)(wh_loop *loop, void *arg), void *arg)
{
    if (!s || !loop || !job) return -EINVAL;
    if (!s->offload) return -ESHUTDOWN;
    struct wh__worker *w = wh__loop_slot(loop, WH__SLOT_RUNTIME);
    unsigned *counter = w && w->srv == s ? &w->offload_inflight : NULL;
    return wh__offload_submit(s->offload, loop, job, done, arg, counter,
                              counter ? offload_after : NULL);
}
