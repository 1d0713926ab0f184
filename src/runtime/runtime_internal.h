/* Internal runtime interfaces: the server and worker structures shared by the
 * files of src/runtime. No other layer includes this: protocols (HTTP,
 * WebSocket) talk to the runtime only through wh_conn (busy state, on_stop).
 *
 * Threading model (see docs in server.c):
 *  - every worker thread runs one wh_loop; its struct wh__worker lives in the
 *    loop's WH__SLOT_RUNTIME slot and is touched only by that thread, except
 *    the counters (single writer, relaxed atomics, read by wh_server_stats_get)
 *    and the dispatch ring (SPSC: the acceptor pushes, the worker pops);
 *  - wh_server_stop may run on any thread: it flips atomics and posts a task
 *    to every loop (wh_loop_post), so the stop reaches each thread through
 *    its own eventfd.
 */
#ifndef WH_RUNTIME_INTERNAL_H
#define WH_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "net/net_internal.h"
#include "wharf/ring.h"
#include "wharf/server.h"

#define WH__RT_MAX_LISTENERS 16 /* at most 64: wh__worker.held is a bit mask */
/* Listening sockets one worker may watch: a REUSEPORT listener handed over
 * with more sockets than this server has threads gives some workers more
 * than one. */
#define WH__RT_MAX_WLISTEN 64
/* Graceful-stop poll: how often a draining worker re-checks its conns for
 * idleness (cheap: a walk over the thread's conns, no syscall unless idle). */
#define WH__RT_DRAIN_SCAN_MS 20u
/* Dispatch model: accepted sockets a worker's ring can hold before the
 * acceptor tries another worker. */
#define WH__RT_RING_SIZE 4096u

/* The server whose worker thread runs loop, or NULL (not a server loop). */
wh_server *wh__server_of_loop(const wh_loop *loop);
/* Worker index of loop, or -1. */
int wh__server_loop_index(const wh_loop *loop);

/* ---------------------------------------------------------------------------
 * CPU helpers (cpu.c).
 * ------------------------------------------------------------------------- */

/* CPUs this process may run on (sched_getaffinity), at least 1. */
unsigned wh__cpu_count(void);
/* The (idx mod count)-th CPU of the calling thread's allowed set, or negative errno. */
int wh__cpu_nth(unsigned idx);
/* Pins the calling thread to CPU cpu. 0 or negative errno. */
int wh__cpu_pin_self(int cpu);

/* ---------------------------------------------------------------------------
 * Offload pool (offload.c).
 * ------------------------------------------------------------------------- */

typedef struct wh__offload wh__offload;

/* Creates a pool; threads start lazily on the first submit. */
int wh__offload_new(wh__offload **out, unsigned threads, unsigned queue);
/* Queues job; done(loop, arg) then runs on loop via wh_loop_post. counter,
 * if not NULL, is incremented now and decremented on loop's thread right
 * before done runs (a plain int: both happen on loop's thread). */
int wh__offload_submit(wh__offload *o, wh_loop *loop, void (*job)(void *),
                       void (*done)(wh_loop *, void *), void *arg, unsigned *counter,
                       void (*after)(wh_loop *loop));
/* Runs every queued job, joins the threads, frees the pool (NULL is fine). */
void wh__offload_free(wh__offload *o);

/* ---------------------------------------------------------------------------
 * Server and workers.
 * ------------------------------------------------------------------------- */

struct wh__rt_listen {
    enum wh_addr_kind kind; /* 0: a free slot (never used, or removed and closed) */
    wh_sockaddr local;      /* actual bound address */
    int fd;                 /* bound in wh_server_listen; for UDP a placeholder closed at start */
    bool shared;            /* TCP: one fd for all threads (EXCLUSIVE/DISPATCH/ONESHOT, Unix) */
    bool removed;           /* wh_server_unlisten: on its way out */
    /* Sockets the server bound itself listen only when a worker starts
     * watching them (add_wl): until a thread can accept, the kernel sends
     * connections elsewhere (another process of the SO_REUSEPORT group)
     * or refuses them, instead of queueing them where nobody serves. */
    bool late_listen;
    /* REUSEPORT TCP: the sockets of the group, fds[0] == fd. Worker t serves
     * fds[t], fds[t + threads], ...: normally one each; more when a program
     * handed over more sockets (wh_server_listen_fd) than it has threads.
     * An entry is -1 once its worker closed it at the end of a drain. */
    int *fds;
    unsigned nfds;
    /* Threads that still hold a watcher on this listener's sockets, plus
     * one: the last holder closes the shared fd at the end of a drain and
     * then drops the extra one; 0 = the slot may be reused. */
    atomic_uint users;
    wh_net_opts net; /* the server's net options, with this listener's TLS context */
};

/* One listening socket watched by one worker. */
struct wh__wlisten {
    wh_listener *l;
    unsigned ls; /* index in wh_server.ls */
    int k;       /* index in ls->fds (per-thread socket), or -1 (shared fd) */
};

/* Per-thread counters: one writer (the owning thread), relaxed atomics so a
 * reader on another thread is well defined (and TSan clean); a relaxed
 * load+store compiles to plain movs, no lock prefix. */
static inline void wh__ctr_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

struct wh__worker {
    wh_server *srv;
    unsigned idx;
    int cpu; /* pinned CPU, or -1 */
    pthread_t tid;
    bool joinable;
    wh_loop *loop;
    wh__net_counters net; /* bumped by the net layer on this thread */
    _Atomic uint64_t accepted;
    _Atomic uint64_t rejected;

    struct wh__wlisten wl[WH__RT_MAX_WLISTEN]; /* TCP and Unix listeners */
    unsigned nwl;
    uint64_t held; /* bit i: this thread holds a share of listener i (wh__listen_release) */
    wh_udp *udps[WH__RT_MAX_LISTENERS];

    /* DISPATCH: fds from the acceptor; drain_posted coalesces wake-ups. */
    wh_ring *ring;
    atomic_bool drain_posted;

    /* ONESHOT: this worker's watcher on the shared epoll fd, its park-retry
     * / sweep timer. */
    wh_io *shared_io;
    wh_timer *os_timer;
    uint64_t os_last_sweep;

    /* Graceful stop (loop thread only). */
    bool draining;
    bool forced;
    bool finished;
    bool keep_idle; /* wh_server_drain: idle conns are not closed before the deadline */
    bool accepting; /* wh_server_drain: listeners still open during accept_ms */
    wh_timer *scan_timer;
    wh_timer *deadline_timer;
    wh_timer *accept_timer;
    unsigned offload_inflight;
};

enum wh__srv_state { WH__SRV_NEW = 0, WH__SRV_STARTED = 1, WH__SRV_JOINED = 2 };

struct wh_server {
    wh_server_opts opts;
    wh_conn_cbs cbs;      /* the user's */
    wh_conn_cbs open_cbs; /* on_open wrapper used for adopt (see worker.c) */
    void *ud;
    unsigned nthreads;
    struct wh__worker *w;
    struct wh__rt_listen ls[WH__RT_MAX_LISTENERS];
    unsigned nls;
    void (*thread_start)(wh_loop *loop, unsigned idx, void *ud);
    void (*thread_stop)(wh_loop *loop, unsigned idx, void *ud);
    void *thread_ud;

    /* Lifecycle: mu/cv guard ready/running/start_err/ctl/all_done. */
    pthread_mutex_t mu;
    /* Held by a worker while it empties and closes its sockets of a
     * REUSEPORT group (wh__worker_close_listener), so no two close at once. */
    pthread_mutex_t close_mu;
    pthread_cond_t cv;
    unsigned ready;
    unsigned running;
    int start_err;
    bool all_done;
    wh_loop *ctl; /* wh_server_run's loop, told when the last thread exits */
    int state;    /* enum wh__srv_state; caller's thread only */
    atomic_bool stopping;
    atomic_bool forced;
    /* wh_server_drain: set before the stop tasks are posted (the post orders
     * them before the workers read them). */
    bool drain_mode;
    uint32_t drain_accept_ms;
    _Atomic unsigned max_conns; /* opts.max_conns, changeable while running */

    /* DISPATCH: the acceptor thread. */
    struct wh__worker acc;
    unsigned rr;
    atomic_bool acc_done; /* acceptor closed its listeners (or no acceptor) */

    /* ONESHOT: the poller shared by all workers and the slot table. */
    wh__poller *shared;
    struct wh__os_table *os_table;

    wh__offload *offload;
};

/* worker.c */
/* Startup handshake: a thread reports its setup result (0 or negative errno). */
void wh__thread_report(wh_server *s, int err);
/* A runtime thread is leaving; the last one wakes wh_server_run. */
void wh__thread_exited(wh_server *s);
void *wh__worker_main(void *arg);
/* Adopts an accepted fd on w's loop (max_conns, counters, timeouts). */
void wh__worker_adopt(struct wh__worker *w, int fd, const wh_net_opts *o);
/* Loop tasks posted by wh_server_stop. */
void wh__worker_stop_task(wh_loop *loop, void *arg);
/* Re-checks a draining worker (conns, offload, ring) and finishes it when done. */
void wh__worker_drain_check(struct wh__worker *w);
/* Open connections of the whole server (racy sum of per-thread counters). */
uint64_t wh__server_open_conns(const wh_server *s);

/* Runtime listener changes (server.c), run on each worker's loop. */
/* Starts watching listener i's sockets on w (UDP: binds w's socket). */
int wh__worker_open_listener(struct wh__worker *w, unsigned i);
/* Accepts what is queued on w's sockets of listener i (all of them when i is
 * UINT_MAX) when drain, stops watching them and closes the ones nobody else
 * watches. */
void wh__worker_close_listener(struct wh__worker *w, unsigned i, bool drain);
/* One holder of ls's sockets is done with them: closes the per-thread
 * socket k (>= 0) now; the last holder closes the shared fd. */
void wh__listen_release(wh_server *s, unsigned i, int k);

/* dispatch.c */
int wh__dispatch_setup(wh_server *s);
void *wh__acceptor_main(void *arg);
void wh__dispatch_drain(wh_loop *loop, void *arg);
void wh__acceptor_stop_task(wh_loop *loop, void *arg);

/* oneshot.c */
int wh__oneshot_setup(wh_server *s);
int wh__oneshot_worker_start(struct wh__worker *w);
void wh__oneshot_worker_stop(struct wh__worker *w);
/* Draining: claim every parked conn onto w's loop (then closed when idle). */
void wh__oneshot_drain(struct wh__worker *w);
void wh__oneshot_free(wh_server *s);
/* Called for each fd accepted in the ONESHOT model. */
void wh__oneshot_adopt(struct wh__worker *w, int fd, const wh_net_opts *o);

#endif
