/* wharf event loop: one wh_loop per thread. Everything is an event with a
 * callback: fd readiness, timers, signals, cross-thread posts, deferred work.
 *
 * Threading: every function here must be called on the loop's own thread,
 * except wh_loop_post() and wh_loop_wake(), which any thread may call.
 */
#ifndef WHARF_LOOP_H
#define WHARF_LOOP_H

#include "wharf/common.h"

WH_BEGIN_DECLS

typedef struct wh_loop wh_loop;
typedef struct wh_io wh_io;
typedef struct wh_timer wh_timer;
typedef struct wh_signal wh_signal;

/* Interest flags for wh_io_set(); READ/WRITE/HUP/ERR are also the events
 * passed to a callback. */
enum {
    WH_IO_READ = 1u << 0,
    WH_IO_WRITE = 1u << 1,
    WH_IO_EDGE = 1u << 2,      /* edge-triggered (EPOLLET) */
    WH_IO_ONESHOT = 1u << 3,   /* disarmed after one event until wh_io_rearm() */
    WH_IO_HUP = 1u << 4,       /* delivered only: peer hung up (EPOLLHUP/EPOLLRDHUP) */
    WH_IO_ERR = 1u << 5,       /* delivered only: error pending on the fd */
    WH_IO_EXCLUSIVE = 1u << 6, /* EPOLLEXCLUSIVE: wake one of the loops sharing this fd;
                                  fixed at the first wh_io_set, cannot be combined with ONESHOT */
};

typedef void (*wh_io_cb)(wh_io *io, unsigned events, void *ud);
typedef void (*wh_timer_cb)(wh_timer *t, void *ud);
typedef void (*wh_signal_cb)(wh_signal *s, int signo, void *ud);
typedef void (*wh_task_fn)(wh_loop *loop, void *arg);

typedef struct wh_loop_opts {
    /* "epoll", "io_uring", or NULL: the environment variable WH_LOOP_BACKEND
     * if set, else epoll. io_uring falls back to epoll where the kernel
     * refuses it (see wh_loop_backend_error); other names are -ENOTSUP. */
    const char *backend;
    unsigned max_events; /* events fetched per poll; 0 = default (256) */
} wh_loop_opts;

enum wh_run_mode {
    WH_RUN_DEFAULT = 0, /* run until wh_loop_stop() */
    WH_RUN_ONCE = 1,    /* one iteration, blocking for events if there is nothing to run */
    WH_RUN_NOWAIT = 2,  /* one iteration, never blocking */
};

/* Creates a loop (opts may be NULL); *out is set on success. */
int wh_loop_new(wh_loop **out, const wh_loop_opts *opts);
/* Frees the loop; watchers still attached are freed with it. fds are not closed. */
void wh_loop_free(wh_loop *loop);
/* Runs the loop in the given mode; 0 on a clean stop, negative errno on a backend failure,
 * -EBUSY if called from inside one of the loop's own callbacks. */
int wh_loop_run(wh_loop *loop, enum wh_run_mode mode);
/* Makes wh_loop_run(WH_RUN_DEFAULT) return after the current iteration (loop thread only). */
void wh_loop_stop(wh_loop *loop);
/* Monotonic time in milliseconds, cached once per iteration. */
uint64_t wh_loop_now(const wh_loop *loop);
/* Refreshes the cached time (for long callbacks that need a fresh wh_loop_now()). */
void wh_loop_update_time(wh_loop *loop);
/* Name of the polling backend that runs: "epoll" or "io_uring". */
const char *wh_loop_backend(const wh_loop *loop);
/* Why the backend asked for is not the one running (0 if it is): -ENOSYS,
 * -EPERM, -ENOMEM from io_uring_setup, -ENOTSUP if libwharf has no io_uring
 * or WH_LOOP_BACKEND names an unknown backend. */
int wh_loop_backend_error(const wh_loop *loop);
/* Attaches one user pointer to the loop (per-thread state for higher layers). */
void wh_loop_set_data(wh_loop *loop, void *data);
/* Returns the pointer given to wh_loop_set_data(), or NULL. */
void *wh_loop_data(const wh_loop *loop);
/* True when called on the thread that runs the loop. */
bool wh_loop_on_thread(const wh_loop *loop);

/* Any thread: queue fn(loop, arg) to run on the loop's thread, in order per
 * producer. Many posts before the loop wakes coalesce into one wake-up.
 * 0, -ENOMEM, or -ESHUTDOWN once wh_loop_free has begun. A post is never
 * lost: tasks still queued when the loop is freed (its thread gone, say) run
 * inside wh_loop_free, on the freeing thread, before any watcher or layer
 * state is freed. Posting to a loop whose wh_loop_free has returned is a
 * use after free, as with any freed object. */
int wh_loop_post(wh_loop *loop, wh_task_fn fn, void *arg);
/* Any thread: interrupt a blocked poll without queuing work. */
void wh_loop_wake(wh_loop *loop);
/* Loop thread: run fn(loop, arg) at the end of the current iteration (or
 * inside wh_loop_free if the loop never runs again). 0 or -ENOMEM. */
int wh_loop_defer(wh_loop *loop, wh_task_fn fn, void *arg);

/* fd watchers. A watcher starts with no interest; wh_io_set() arms it. */
/* Creates a watcher for fd (which stays owned by the caller). */
int wh_io_new(wh_loop *loop, int fd, wh_io_cb cb, void *ud, wh_io **out);
/* Sets interest (READ|WRITE, plus EDGE/ONESHOT); 0 disarms. No syscall when unchanged. */
int wh_io_set(wh_io *io, unsigned flags);
/* Current interest flags. */
unsigned wh_io_flags(const wh_io *io);
/* Re-enables a ONESHOT watcher after its event was delivered. */
int wh_io_rearm(wh_io *io);
/* Unregisters and frees the watcher; pending events for it in the current
 * batch are dropped. Safe inside any callback, its own included. Close the fd
 * after this, not before. */
void wh_io_free(wh_io *io);
/* The watched fd. */
int wh_io_fd(const wh_io *io);
/* The loop the watcher belongs to. */
wh_loop *wh_io_loop(const wh_io *io);
/* Replaces the callback and user pointer. */
void wh_io_set_cb(wh_io *io, wh_io_cb cb, void *ud);

/* Timers on the monotonic clock, in milliseconds. */
/* Creates a stopped timer. */
int wh_timer_new(wh_loop *loop, wh_timer_cb cb, void *ud, wh_timer **out);
/* (Re)starts: fires after timeout_ms, then every repeat_ms if repeat_ms > 0. O(log n). */
int wh_timer_start(wh_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
/* Stops the timer if active. O(log n). */
void wh_timer_stop(wh_timer *t);
/* True while the timer is scheduled. */
bool wh_timer_active(const wh_timer *t);
/* Stops and frees; safe inside its own callback. */
void wh_timer_free(wh_timer *t);
/* The loop the timer belongs to. */
wh_loop *wh_timer_loop(const wh_timer *t);

/* Signals as loop events (signalfd). Creating a watcher blocks signo in the
 * calling thread. Block the signals in every other thread too, or the kernel
 * may deliver them there: call wh_signal_block_defaults() before creating
 * threads (wharf's own threads do it). */
/* Watches signo on this loop. */
int wh_signal_new(wh_loop *loop, int signo, wh_signal_cb cb, void *ud, wh_signal **out);
/* Stops watching and frees; the signal stays blocked. */
void wh_signal_free(wh_signal *s);
/* Blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2 in the
 * calling thread and ignores SIGPIPE process-wide (writes report EPIPE). */
int wh_signal_block_defaults(void);

WH_END_DECLS

#endif
