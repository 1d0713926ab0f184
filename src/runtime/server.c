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
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
    .listen_when_ready = false,
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
    /* Kept as our own literal: the caller's string need not outlive this. */
    if (s->opts.loop_backend) {
        if (strcmp(s->opts.loop_backend, "epoll") == 0) {
            s->opts.loop_backend = "epoll";
        } else if (strcmp(s->opts.loop_backend, "io_uring") == 0) {
            s->opts.loop_backend = "io_uring";
        } else {
            free(s);
            return -ENOTSUP;
        }
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
    pthread_mutex_init(&s->close_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return 0;
}

/* A slot for a new listener: one never used, or one whose removal every
 * holder has finished (users back at 0). Not in DISPATCH: there a
 * connection the acceptor took from a removed listener may still wait in a
 * worker's ring, and the worker reads the listener's options when it adopts
 * it, so a removed slot is never reused. Caller's thread. */
static int free_slot(wh_server *s)
{
    bool reuse = s->opts.model != WH_MODEL_DISPATCH;
    for (unsigned i = 0; i < WH__RT_MAX_LISTENERS; i++) {
        struct wh__rt_listen *ls = &s->ls[i];
        if (ls->kind == 0 ||
            (reuse && ls->removed && atomic_load_explicit(&ls->users, memory_order_acquire) == 0)) {
            if (ls->fds) free(ls->fds);
            memset(ls, 0, sizeof(*ls));
            ls->fd = -1;
            if (i >= s->nls) s->nls = i + 1;
            return (int)i;
        }
    }
    return -ENOSPC;
}

static int fds_push(struct wh__rt_listen *ls, int fd)
{
    int *n = realloc(ls->fds, (ls->nfds + 1) * sizeof(int));
    if (!n) return -ENOMEM;
    ls->fds = n;
    ls->fds[ls->nfds++] = fd;
    if (ls->nfds == 1) ls->fd = fd;
    return 0;
}

/* REUSEPORT: binds more sockets to the group's actual address (port 0
 * resolved) until there is one per worker. At listen time, so that a
 * program can bind privileged ports, drop its privileges and only then
 * start the threads. */
static int fill_group(wh_server *s, struct wh__rt_listen *ls)
{
    wh_net_opts o = s->opts.net;
    o.reuseport = 1;
    while (ls->nfds < s->nthreads) {
        int fd;
        int rc = s->opts.listen_when_ready ? wh__bind_fd(&ls->local, ls->kind, &o, &fd)
                                           : wh__listen_fd(&ls->local, ls->kind, &o, &fd);
        if (rc < 0) return rc;
        if ((rc = fds_push(ls, fd)) < 0) {
            close(fd);
            return rc;
        }
    }
    return 0;
}

static void slot_close(struct wh__rt_listen *ls)
{
    /* ls->fd is fds[0] when there are fds (UDP keeps only a placeholder). */
    for (unsigned k = 0; k < ls->nfds; k++)
        if (ls->fds[k] >= 0) close(ls->fds[k]);
    if (ls->nfds == 0 && ls->fd >= 0) close(ls->fd);
    free(ls->fds);
    memset(ls, 0, sizeof(*ls));
    ls->fd = -1;
}

static int holders(const wh_server *s, const struct wh__rt_listen *ls)
{
    return ls->kind != WH_ADDR_UDP && s->opts.model == WH_MODEL_DISPATCH ? 1 : (int)s->nthreads;
}

struct open_task {
    struct wh__worker *w;
    unsigned i;
    bool open;
};

static void listener_task(wh_loop *loop, void *arg)
{
    (void)loop;
    struct open_task *t = arg;
    struct wh__worker *w = t->w;
    if (!t->open)
        wh__worker_close_listener(w, t->i, true);
    else if (w->draining || w->finished || wh__worker_open_listener(w, t->i) < 0)
        wh__worker_close_listener(w, t->i, false); /* gives its share back */
    free(t);
}

/* Tells every holder of listener i to start (open) or stop watching it. */
static int post_listener(wh_server *s, unsigned i, bool open)
{
    unsigned n =
        s->opts.model == WH_MODEL_DISPATCH && s->ls[i].kind != WH_ADDR_UDP ? 1 : s->nthreads;
    struct open_task *t[n];
    for (unsigned k = 0; k < n; k++) {
        if (!(t[k] = malloc(sizeof(**t)))) {
            while (k--)
                free(t[k]);
            return -ENOMEM;
        }
    }
    for (unsigned k = 0; k < n; k++) {
        struct wh__worker *w = n == 1 && s->opts.model == WH_MODEL_DISPATCH ? &s->acc : &s->w[k];
        *t[k] = (struct open_task){w, i, open};
        if (wh_loop_post(w->loop, listener_task, t[k]) < 0) {
            /* Cannot happen but on ENOMEM; run it here would race: give up
             * this holder's share instead so the slot still frees. */
            free(t[k]);
            wh__listen_release(s, i, -1);
        }
    }
    return 0;
}

/* Common tail of wh_server_listen_add / _fd: a running server tells its
 * threads. */
static int listen_commit(wh_server *s, int i)
{
    struct wh__rt_listen *ls = &s->ls[i];
    /* The holders, plus one that the last holder gives back only after it
     * is done with the slot (see wh__listen_release). */
    atomic_store(&ls->users, (unsigned)holders(s, ls) + 1);
    if (s->state == WH__SRV_NEW) return i;
    if (s->opts.model == WH_MODEL_REUSEPORT && !ls->shared) {
        int rc = fill_group(s, ls);
        if (rc < 0) {
            slot_close(ls);
            return rc;
        }
    }
    int rc = post_listener(s, (unsigned)i, true);
    if (rc < 0) {
        slot_close(ls);
        return rc;
    }
    return i;
}

static int can_add(const wh_server *s)
{
    if (!s) return -EINVAL;
    if (s->state == WH__SRV_JOINED) return -EINVAL;
    if (s->state == WH__SRV_STARTED && atomic_load(&s->stopping)) return -ESHUTDOWN;
    return 0;
}

int wh_server_listen_add(wh_server *s, const char *addr)
{
    return wh_server_listen_add_tls(s, addr, NULL);
}

int wh_server_listen_add_tls(wh_server *s, const char *addr, struct wh_tls_ctx *tls)
{
    int rc = can_add(s);
    if (rc < 0) return rc;
    if (!addr) return -EINVAL;
    wh_sockaddr sa;
    enum wh_addr_kind kind;
    rc = wh_addr_parse(addr, &sa, &kind);
    if (rc < 0) return rc;
    /* A running server's threads bind UDP sockets only at start. */
    if (kind == WH_ADDR_UDP && s->state != WH__SRV_NEW) return -EOPNOTSUPP;
    wh_net_opts o = s->opts.net;
    bool group = kind == WH_ADDR_TCP && s->opts.model == WH_MODEL_REUSEPORT;
    if (group || kind == WH_ADDR_UDP) o.reuseport = 1;
    int fd;
    rc = s->opts.listen_when_ready ? wh__bind_fd(&sa, kind, &o, &fd)
                                   : wh__listen_fd(&sa, kind, &o, &fd);
    if (rc < 0) return rc;
    int i = free_slot(s);
    if (i < 0) {
        close(fd);
        return i;
    }
    struct wh__rt_listen *ls = &s->ls[i];
    ls->kind = kind;
    ls->shared = !group && kind != WH_ADDR_UDP;
    ls->late_listen = kind != WH_ADDR_UDP && s->opts.listen_when_ready;
    ls->net = s->opts.net;
    ls->net.tls = tls;
    if ((rc = wh__sock_local(fd, &ls->local)) < 0 || (rc = fds_push(ls, fd)) < 0) {
        close(fd);
        slot_close(ls);
        return rc;
    }
    if (group && s->state == WH__SRV_NEW && (rc = fill_group(s, ls)) < 0) {
        slot_close(ls);
        return rc;
    }
    if (kind == WH_ADDR_UDP) {
        free(ls->fds); /* the placeholder fd alone, closed at start */
        ls->fds = NULL;
        ls->nfds = 0;
    }
    return listen_commit(s, i);
}

int wh_server_listen(wh_server *s, const char *addr)
{
    return wh_server_listen_tls(s, addr, NULL);
}

int wh_server_listen_tls(wh_server *s, const char *addr, struct wh_tls_ctx *tls)
{
    if (s && s->state != WH__SRV_NEW) return -EINVAL;
    int rc = wh_server_listen_add_tls(s, addr, tls);
    return rc < 0 ? rc : 0;
}

static bool same_addr(const wh_sockaddr *a, const wh_sockaddr *b)
{
    return a->len == b->len && memcmp(a->u.raw, b->u.raw, a->len) == 0;
}

int wh_server_listen_fd(wh_server *s, int fd)
{
    return wh_server_listen_fd_tls(s, fd, NULL);
}

int wh_server_listen_fd_tls(wh_server *s, int fd, struct wh_tls_ctx *tls)
{
    int rc = can_add(s);
    if (rc < 0) return rc;
    int v = 0;
    socklen_t vl = sizeof(v);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0 || v != SOCK_STREAM)
        return -EINVAL;
    vl = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || !v) return -EINVAL;
    wh_sockaddr local;
    if ((rc = wh__sock_local(fd, &local)) < 0) return rc;
    enum wh_addr_kind kind = local.u.sa.family == AF_UNIX ? WH_ADDR_UNIX : WH_ADDR_TCP;
    vl = sizeof(v);
    bool reuseport =
        kind == WH_ADDR_TCP && getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &vl) == 0 && v;
    /* Inherited descriptors may be blocking, and are not close-on-exec. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
    if (reuseport) {
        /* The sockets of one SO_REUSEPORT group (a REUSEPORT server's, handed
         * over whole) stay one listener, spread over the workers. */
        for (unsigned i = 0; i < s->nls && s->state == WH__SRV_NEW; i++) {
            struct wh__rt_listen *ls = &s->ls[i];
            if (ls->kind == WH_ADDR_TCP && !ls->shared && !ls->removed && ls->net.tls == tls &&
                same_addr(&ls->local, &local))
                return (rc = fds_push(ls, fd)) < 0 ? rc : (int)i;
        }
    }
    int i = free_slot(s);
    if (i < 0) return i;
    struct wh__rt_listen *ls = &s->ls[i];
    ls->kind = kind;
    ls->local = local;
    ls->shared = !reuseport;
    ls->net = s->opts.net;
    ls->net.tls = tls;
    if ((rc = fds_push(ls, fd)) < 0) {
        ls->kind = 0;
        return rc;
    }
    rc = listen_commit(s, i);
    if (rc < 0) return rc; /* fd was closed with the slot */
    return rc;
}

int wh_server_unlisten(wh_server *s, unsigned i)
{
    if (!s || i >= s->nls || s->ls[i].kind == 0 || s->ls[i].removed) return -EINVAL;
    struct wh__rt_listen *ls = &s->ls[i];
    if (s->state == WH__SRV_NEW) {
        slot_close(ls);
        return 0;
    }
    if (ls->kind == WH_ADDR_UDP || s->state != WH__SRV_STARTED) return -EOPNOTSUPP;
    ls->removed = true;
    return post_listener(s, i, false);
}

unsigned wh_server_listen_fds(const wh_server *s, int *fds, unsigned *which, unsigned cap)
{
    unsigned n = 0;
    if (!s) return 0;
    for (unsigned i = 0; i < s->nls; i++) {
        const struct wh__rt_listen *ls = &s->ls[i];
        if (ls->kind == 0 || ls->kind == WH_ADDR_UDP || ls->removed) continue;
        for (unsigned k = 0; k < (ls->nfds ? ls->nfds : 1); k++) {
            int fd = ls->nfds ? ls->fds[k] : ls->fd;
            if (fd < 0) continue;
            if (n < cap) {
                fds[n] = fd;
                if (which) which[n] = i;
            }
            n++;
        }
    }
    return n;
}

void wh__listen_release(wh_server *s, unsigned i, int k)
{
    struct wh__rt_listen *ls = &s->ls[i];
    if (k >= 0) {
        /* Each worker closes its own sockets of a group as soon as it has
         * emptied their queues (under close_mu): what lands in one between
         * its last accept and this close, the kernel moves to another
         * socket of the group if net.ipv4.tcp_migrate_req is 1, and resets
         * otherwise. */
        if ((unsigned)k < ls->nfds && ls->fds[k] >= 0) {
            close(ls->fds[k]);
            ls->fds[k] = -1;
            if (k == 0) ls->fd = -1;
        }
        return;
    }
    /* 2 -> 1: the last holder. It closes a shared socket (after its own
     * drain the others had stopped watching, so nothing is left queued),
     * and only then drops the slot's extra count to 0: the caller's thread
     * may reuse the slot from that moment. */
    if (atomic_fetch_sub_explicit(&ls->users, 1, memory_order_acq_rel) != 2) return;
    if (ls->shared && ls->fd >= 0 && (ls->removed || atomic_load(&s->stopping))) {
        close(ls->fd);
        ls->fd = -1;
        if (ls->nfds) ls->fds[0] = -1;
    }
    atomic_fetch_sub_explicit(&ls->users, 1, memory_order_release);
}

int wh_server_local_addr(const wh_server *s, unsigned i, wh_sockaddr *out)
{
    if (!s || !out || i >= s->nls || s->ls[i].kind == 0 || s->ls[i].removed) return -EINVAL;
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

/* REUSEPORT groups handed over with fewer sockets than threads get the
 * rest bound now (wh_server_listen_add binds them at once). */
static int open_per_thread_fds(wh_server *s)
{
    for (unsigned i = 0; i < s->nls; i++) {
        struct wh__rt_listen *ls = &s->ls[i];
        if (ls->kind != WH_ADDR_TCP || ls->shared || ls->removed) continue;
        if (s->opts.model == WH_MODEL_REUSEPORT) {
            int rc = fill_group(s, ls);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

static void close_listen_fds(wh_server *s)
{
    for (unsigned i = 0; i < s->nls; i++)
        if (s->ls[i].kind) slot_close(&s->ls[i]);
    s->nls = 0;
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
    atomic_store(&s->max_conns, s->opts.max_conns);
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
        if (s->ls[i].kind == WH_ADDR_UDP && !s->ls[i].removed && s->ls[i].fd >= 0) {
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

static void post_stop(wh_server *s)
{
    /* Posting to a loop whose thread already left is harmless: loops live
     * until wh_server_free. */
    if (s->acc.loop) wh_loop_post(s->acc.loop, wh__acceptor_stop_task, &s->acc);
    for (unsigned i = 0; i < s->nthreads; i++)
        if (s->w[i].loop) wh_loop_post(s->w[i].loop, wh__worker_stop_task, &s->w[i]);
}

void wh_server_drain(wh_server *s, uint32_t accept_ms)
{
    if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == WH__SRV_NEW) return;
    /* Only the first stop picks the mode; written before stopping turns
     * true, read by the workers after the posted task (ordered by it). */
    pthread_mutex_lock(&s->mu);
    bool first = !atomic_load(&s->stopping);
    if (first) {
        s->drain_mode = true;
        s->drain_accept_ms = accept_ms;
    }
    pthread_mutex_unlock(&s->mu);
    if (!first || atomic_exchange(&s->stopping, true)) return;
    post_stop(s);
}

void wh_server_set_max_conns(wh_server *s, unsigned max_conns)
{
    if (!s) return;
    if (max_conns == 0) max_conns = derived_max_conns();
    s->opts.max_conns = max_conns; /* caller's thread; workers read the atomic */
    atomic_store(&s->max_conns, max_conns);
}

void wh_server_stop(wh_server *s, bool graceful)
{
    if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == WH__SRV_NEW) return;
    bool first = !atomic_exchange(&s->stopping, true);
    bool force = !graceful && !atomic_exchange(&s->forced, true);
    if (!first && !force) return;
    post_stop(s);
}

int wh_server_wait(wh_server *s)
{
    if (!s || s->state == WH__SRV_NEW) return -EINVAL;
    if (s->state == WH__SRV_JOINED) return 0;
    join_all(s);
    /* Read by wh_server_stop/_drain on any thread (a late second signal). */
    __atomic_store_n(&s->state, WH__SRV_JOINED, __ATOMIC_RELEASE);
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
    pthread_mutex_destroy(&s->close_mu);
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
