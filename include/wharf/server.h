/* wharf runtime: the server framework. A wh_server owns N worker threads (one
 * loop each, pinned to CPUs), its listeners, connection distribution, timeouts,
 * an offload pool and graceful shutdown. Users write callbacks (wh_conn_cbs);
 * they never touch sockets, epoll or pthreads.
 */
#ifndef WHARF_SERVER_H
#define WHARF_SERVER_H

#include "wharf/common.h"
#include "wharf/loop.h"
#include "wharf/net.h"

WH_BEGIN_DECLS

typedef struct wh_server wh_server;

/* How accepted connections reach worker threads. */
typedef enum wh_model {
    WH_MODEL_REUSEPORT = 0, /* one SO_REUSEPORT listener per thread (default) */
    WH_MODEL_EXCLUSIVE = 1, /* one listener in every thread's epoll, EPOLLEXCLUSIVE */
    WH_MODEL_ONESHOT = 2,   /* one epoll shared by all threads, EPOLLONESHOT per conn */
    WH_MODEL_DISPATCH = 3,  /* acceptor thread -> SPSC ring per worker (memcached style) */
} wh_model;

typedef struct wh_server_opts {
    wh_net_opts net;            /* socket options (wh_net_opts_init defaults) */
    unsigned threads;           /* worker threads: 0 = online CPUs */
    wh_model model;             /* WH_MODEL_REUSEPORT */
    bool pin_threads;           /* pin thread i to CPU i: true */
    bool dispatch_least_loaded; /* DISPATCH model: least-loaded instead of round-robin: false */
    /* Open connections per server. At the cap a new connection is accepted
     * and closed at once (the client sees EOF) and counted in
     * wh_server_stats.rejected. 0 = derived when the server starts: three
     * quarters of the soft RLIMIT_NOFILE (the rest is kept for listeners,
     * the loops' own descriptors, open files, Redis and logs), no cap when
     * that limit is unlimited. UINT_MAX = no cap (the descriptors bound it:
     * the listeners back off on EMFILE). Default 0. */
    unsigned max_conns;
    uint32_t idle_timeout_ms;     /* close a conn after this long without I/O: 60000; 0 = never */
    uint32_t shutdown_timeout_ms; /* graceful stop deadline: 10000 */
    bool handle_signals; /* wh_server_run handles SIGINT/SIGTERM (graceful; a second = now): true */
    unsigned offload_threads; /* offload pool size: 0 = same as threads */
    unsigned offload_queue;   /* most queued offload jobs before -EAGAIN: 1024 */
    /* The worker loops' backend (wh_loop_opts.backend): "epoll", "io_uring",
     * or NULL (WH_LOOP_BACKEND, else epoll). Default NULL. */
    const char *loop_backend;
    /* Sockets the server binds itself (wh_server_listen, _listen_add) start
     * listening only when a worker thread is ready to accept on them, not at
     * bind time: a second instance started beside a running one on the same
     * SO_REUSEPORT address takes no connection before it can serve it (the
     * kernel keeps sending them to the first). Until wh_server_start a
     * connection to such an address is refused instead of queued. Default
     * false. */
    bool listen_when_ready;
} wh_server_opts;

/* Per-thread counters; read with wh_server_stats (no lock on the hot path). */
typedef struct wh_server_stats {
    uint64_t accepted;
    uint64_t open_conns;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t rejected; /* closed at the max_conns cap */
} wh_server_stats;

/* Fills opts with the documented defaults. */
void wh_server_opts_init(wh_server_opts *opts);
/* Creates a server (opts may be NULL for defaults); callbacks run on worker threads. */
int wh_server_new(wh_server **out, const wh_server_opts *opts, const wh_conn_cbs *cbs, void *ud);
/* Adds a listen address ("0.0.0.0:9000", "[::]:9000", "unix:/run/x.sock",
 * "udp://0.0.0.0:9000"); binds at once so errors (-EADDRINUSE, -EACCES) come back here. */
int wh_server_listen(wh_server *s, const char *addr);
/* Same, with TLS on every connection accepted there (wharf/tls.h); tls NULL
 * = wh_server_listen. tls must outlive the server. */
int wh_server_listen_tls(wh_server *s, const char *addr, struct wh_tls_ctx *tls);
/* Like wh_server_listen, and also while the server runs (its threads start
 * accepting on the new address soon after; the kernel queues connections
 * meanwhile). Returns the listener's index (>= 0, for wh_server_local_addr
 * and wh_server_unlisten) or negative errno; -ESHUTDOWN once a stop began,
 * -EOPNOTSUPP for a UDP address on a running server. Caller's thread (the
 * one that created the server). */
int wh_server_listen_add(wh_server *s, const char *addr);
/* Adds a listening socket the program already holds (inherited across an
 * upgrade, passed by systemd socket activation): a bound, listening stream
 * socket, TCP or Unix. The server owns fd from now on (made non-blocking and
 * close-on-exec). Sockets bound to the same TCP address with SO_REUSEPORT,
 * added one after the other before wh_server_start, form one listener whose
 * sockets are shared out among the workers (none is closed, so nothing
 * queued on any of them is lost); a REUSEPORT server binds more if it has
 * more threads than sockets. Returns the listener's index or negative errno
 * (-EINVAL: not a listening stream socket). Caller's thread. */
int wh_server_listen_fd(wh_server *s, int fd);
/* wh_server_listen_add and wh_server_listen_fd with TLS on the listener
 * (tls NULL = none; it must outlive the server). */
int wh_server_listen_add_tls(wh_server *s, const char *addr, struct wh_tls_ctx *tls);
int wh_server_listen_fd_tls(wh_server *s, int fd, struct wh_tls_ctx *tls);
/* Stops listener i of a running server: each thread accepts what is queued
 * on its sockets, then closes them (a connection that arrives in between
 * may be refused: removing an address is deliberate). Before
 * wh_server_start it just closes them. Its index is used again for a later
 * listener, except in the DISPATCH model. 0, -EINVAL or -EOPNOTSUPP (UDP).
 * Caller's thread. */
int wh_server_unlisten(wh_server *s, unsigned i);
/* The listening stream sockets of the server, to hand over to another
 * process (an upgrade): writes up to cap descriptors to fds and, if which
 * is not NULL, the index of the listener each belongs to; returns how many
 * there are (more than cap: call again with room). They stay the server's:
 * a child gets them by clearing FD_CLOEXEC between fork and exec. Valid
 * until a stop or wh_server_unlisten begins. */
unsigned wh_server_listen_fds(const wh_server *s, int *fds, unsigned *which, unsigned cap);
/* The actual bound address of listener i (after binding port 0). */
int wh_server_local_addr(const wh_server *s, unsigned i, wh_sockaddr *out);
/* Sets hooks called on each worker thread when it starts (before any
 * connection) and as it stops, with ud (their own pointer, not the
 * callbacks'). Call before wh_server_start. */
void wh_server_on_thread(wh_server *s, void (*start)(wh_loop *loop, unsigned idx, void *ud),
                         void (*stop)(wh_loop *loop, unsigned idx, void *ud), void *ud);
/* Starts the threads and returns; the server runs in the background. */
int wh_server_start(wh_server *s);
/* Starts (if needed) and blocks until the server stops; handles signals if
 * opts.handle_signals. 0 after a clean (graceful or forced) stop. */
int wh_server_run(wh_server *s);
/* Any thread: stop accepting; graceful tells the protocol (wh_conn_cbs.on_stop
 * on every worker loop), lets in-flight work finish (conns marked busy with
 * wh_conn_set_busy) and closes idle conns, up to shutdown_timeout_ms;
 * otherwise closes everything now. */
void wh_server_stop(wh_server *s, bool graceful);
/* Any thread: a graceful stop that drops no connection, for restarts and
 * upgrades under load. At once wh_server_stopping() turns true and the
 * protocol is told (on_stop: HTTP answers every request from now on with
 * Connection: close). The listeners keep accepting for accept_ms (a load
 * balancer notices the stop, e.g. from a health check, and sends no more),
 * then each accepts what is left in its queue and closes (the kernel would
 * reset it otherwise). Unlike wh_server_stop, idle connections are not
 * closed: a keep-alive client may be sending its next request that very
 * moment, and it would meet a closed socket; the protocol closes each one
 * after its next response, and those still idle accept_ms +
 * shutdown_timeout_ms after the start are closed then (busy ones aborted).
 * Another SO_REUSEPORT process on the same port: see docs/runtime.md.
 * A later wh_server_stop(s, false) still stops at once. */
void wh_server_drain(wh_server *s, uint32_t accept_ms);
/* Any thread: the connection cap (max_conns) for connections accepted from
 * now on; 0 = derived from RLIMIT_NOFILE as at start. */
void wh_server_set_max_conns(wh_server *s, unsigned max_conns);
/* Waits for the threads after wh_server_start + wh_server_stop. */
int wh_server_wait(wh_server *s);
/* Frees a stopped server (NULL is fine). */
void wh_server_free(wh_server *s);
/* Number of worker threads. */
unsigned wh_server_threads(const wh_server *s);
/* The loop of worker thread idx. */
wh_loop *wh_server_loop(const wh_server *s, unsigned idx);
/* Sums the per-thread counters into *out. */
void wh_server_stats_get(const wh_server *s, wh_server_stats *out);
/* True once a graceful stop has begun (handlers may stop keeping conns alive). */
bool wh_server_stopping(const wh_server *s);

/* Offload pool: run job(arg) on a pool thread, then done(loop, arg) back on
 * the submitting loop. -EAGAIN when the queue is full. Call on loop's thread.
 * A graceful stop waits for every completion of its workers' loops. Mark the
 * conn the job works for busy (wh_conn_set_busy) until done runs. */
int wh_server_offload(wh_server *s, wh_loop *loop, void (*job)(void *arg),
                      void (*done)(wh_loop *loop, void *arg), void *arg);

WH_END_DECLS

#endif
