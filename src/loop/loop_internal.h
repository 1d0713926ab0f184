/* Internal loop interfaces for wharf's own layers (not for users). */
#ifndef WH_LOOP_INTERNAL_H
#define WH_LOOP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "wharf/loop.h"

/* Per-loop slots so each layer keeps its own per-thread state on a loop
 * without a global and without fighting over wh_loop_set_data (the user's). */
enum wh__loop_slot {
    WH__SLOT_NET = 0,     /* net: timeout wheel, deferred-flush list */
    WH__SLOT_RUNTIME = 1, /* runtime: worker thread state */
    WH__SLOT_HTTP = 2,    /* http: date cache, per-thread pools */
    WH__SLOT_WS = 3,      /* websocket: broadcast registry */
    WH__SLOT_APP = 4,     /* apps (wharfd, guestbook, redis adapter) */
    WH__SLOT_APP2 = 5,
    WH__SLOT_COUNT = 8,
};

/* Returns the layer's pointer in slot, or NULL. */
void *wh__loop_slot(const wh_loop *loop, unsigned slot);
/* Sets slot; free_fn (may be NULL) runs on wh_loop_free, before watchers are freed.
 * Slots are freed from the highest index down (apps before http before net). */
void wh__loop_set_slot(wh_loop *loop, unsigned slot, void *ptr, void (*free_fn)(void *ptr));

/* The backend's own fd (the epoll fd), e.g. to nest the loop in another poller. */
int wh__loop_backend_fd(wh_loop *loop);

/* ---- Embeddable watchers ------------------------------------------------
 * A layer that keeps many watchers (one per connection) may embed a struct
 * wh_io in its own struct instead of a separate allocation:
 *
 *   wh__io_init(loop, &conn->io, fd, cb, ud);   // then wh_io_set() etc.
 *   ...
 *   wh__io_deinit(&conn->io);                   // then free(conn), close(fd)
 *
 * Rule: after wh__io_deinit() returns, the memory is the embedder's again and
 * may be freed at once, even inside a callback in the middle of a batch:
 * deinit removes the fd from the kernel and retires the watcher's token, so
 * events still pending for it are dropped without touching the memory. Never call wh_io_free() on
 * an embedded watcher, and never wh__io_deinit() one made by wh_io_new(). wh_loop_free() does NOT
 * deinit embedded watchers: deinit them first (e.g. from a slot's free_fn). All public wh_io_*
 * functions except wh_io_free work on embedded watchers. Fields are private to src/loop; they are
 * here only so sizeof works. */
typedef struct wh__iow wh__iow;
/* A class watcher's callback: every watcher of a class shares it and its
 * ud (wh__io_class_add); the owner is found from w with offsetof. */
typedef void (*wh__iow_cb)(wh__iow *w, unsigned events, void *class_ud);

/* The watcher proper: what the loop's table points at and what dispatch
 * reads. 16 bytes, so a layer with one watcher per connection can embed it
 * alone and leave loop/cb/ud out (class watchers, below): an idle
 * connection's memory is what 100k connections cost. */
struct wh__iow {
    int fd;
    uint32_t slot; /* index in the loop's watcher table; UINT32_MAX while it has none */
    uint32_t gen;  /* the slot's generation while this watcher holds it (io.c) */
    uint8_t flags; /* interest as last set by the user (WH_IO_*) */
    uint8_t state; /* WH__IO_S_* (loop_priv.h) */
    uint8_t cls;   /* 0: inside a struct wh_io; else the loop's class (wh__io_class_add) */
    uint8_t spare; /* the embedder's own bits (net: a conn's completion-op state); 0 after init */
};

struct wh_io {
    wh_loop *loop;
    wh_io_cb cb;
    void *ud;
    wh__iow w;
};

/* Initialises an embedded watcher (no interest yet, like wh_io_new). */
void wh__io_init(wh_loop *loop, wh_io *io, int fd, wh_io_cb cb, void *ud);
/* Disarms an embedded watcher and drops its pending events; the memory may be
 * freed right after. Safe inside any callback. Idempotent. */
void wh__io_deinit(wh_io *io);
/* Like wh__io_deinit, for a caller about to close(2) the watcher's fd, which
 * is the file's only descriptor (no dup, no other process): the kernel drops
 * the registration itself, so no epoll_ctl is made. Pending events are
 * dropped as with wh__io_deinit. */
void wh__io_forget(wh_io *io);
/* Hands the watcher removals queued so far to the kernel now, inside a
 * callback too (io_uring: a removed poll holds its file open until then, so
 * a close(2) right after this is the file's last); no-op on epoll. Only on
 * the loop's thread. */
void wh__loop_flush(wh_loop *loop);

/* ---- Class watchers --------------------------------------------------------
 * For a layer with many watchers that share a callback (net: one per
 * connection): the layer registers the callback once per loop and embeds a
 * bare wh__iow per watcher, 24 bytes smaller than a wh_io. Same rules as
 * embedded wh_io (the memory may be freed right after deinit/forget, even
 * inside a callback). Only on the loop's thread. */
/* Registers cb/ud as a watcher class of loop: its id (1..7), or -ENOSPC. */
int wh__io_class_add(wh_loop *loop, wh__iow_cb cb, void *ud);
/* Initialises a class watcher for fd (no interest yet); cls from wh__io_class_add. */
void wh__iow_init(wh__iow *w, int fd, unsigned cls);
/* wh_io_set for a class watcher of loop. */
int wh__iow_set(wh_loop *loop, wh__iow *w, unsigned flags);
/* wh__io_deinit for a class watcher of loop. */
void wh__iow_deinit(wh_loop *loop, wh__iow *w);
/* wh__io_forget for a class watcher of loop. */
void wh__iow_forget(wh_loop *loop, wh__iow *w);

/* Embeddable timers, same rules as embedded wh_io: wh__timer_init then
 * wh_timer_start/stop; wh__timer_deinit (stops it) before freeing the memory;
 * never wh_timer_free() on one. Safe inside its own callback. */
struct wh_timer {
    wh_loop *loop;
    wh_timer_cb cb;
    void *ud;
    uint64_t repeat;
    uint32_t heap; /* index in the loop's timer heap; UINT32_MAX when stopped */
    uint32_t reg;  /* registry index; UINT32_MAX if embedded */
};
/* Initialises an embedded, stopped timer. */
void wh__timer_init(wh_loop *loop, wh_timer *t, wh_timer_cb cb, void *ud);
/* Stops an embedded timer; the memory may be freed right after. */
void wh__timer_deinit(wh_timer *t);

/* ---- Standalone pollers (poller.c) --------------------------------------
 * An instance of the loop's backend that no loop drives: its fd is watched
 * from one or more loops and polled without blocking when it is readable
 * (the runtime's ONESHOT model shares one between threads). */
typedef struct wh__poller wh__poller;
/* One ready watcher as the core sees it: token is the value registered with
 * ctl (opaque to the backend), events are WH_IO_READ|WRITE|HUP|ERR. */
typedef struct wh__fired {
    uint64_t token;
    uint32_t events;
} wh__fired;
/* Creates a poller returning up to max_events per poll. 0 or negative errno. */
int wh__poller_new(wh__poller **out, unsigned max_events);
/* Frees the poller (NULL is fine). */
void wh__poller_free(wh__poller *p);
/* Arms fd for one read/hang-up event carrying token (adds it the first time). */
int wh__poller_arm_oneshot(wh__poller *p, int fd, uint64_t token);
/* Takes ready events without blocking; count or negative errno. */
int wh__poller_poll(wh__poller *p, wh__fired *out, unsigned max);
/* The fd that turns readable when events are ready (watch it with wh_io). */
int wh__poller_fd(const wh__poller *p);

/* ---- Completion I/O (io_uring loops only) --------------------------------
 * Operations the kernel carries out and then reports, instead of readiness
 * the caller acts on with its own syscall. Only the io_uring backend has
 * them (wh__cq_able); a layer asks first and otherwise stays on wh_io. The
 * ops queued during an iteration are submitted by the same io_uring_enter
 * that waits for the next events, and their completions are reaped by it:
 * callbacks run right after that wait, before the fd events.
 *
 * An op is named by (cookie, kind): cookie an 8-byte aligned pointer of the
 * caller's, kind the number wh__cq_kind gave its callback. The callback
 * gets the cookie, the result (bytes, or negative errno; -ECANCELED after
 * wh__cq_cancel) and WH__CQ_* flags. Without WH__CQ_MORE it is the op's last
 * completion: until then the cookie's memory must stay valid, also after a
 * cancel (the cancelled op still completes once). Loop thread only. */
#define WH__CQ_MORE     1u /* more completions of this (multishot) op follow */
#define WH__CQ_NONEMPTY 2u /* recv: the socket still holds bytes after this one */
struct msghdr;
/* buf: for a recv, the provided buffer holding res bytes; it goes back to
 * the loop's buffer ring when the callback returns (copy what you keep). */
typedef void (*wh__cq_cb)(void *cookie, int res, unsigned flags, const char *buf);
/* True when the loop can run completion ops (it runs on io_uring). */
bool wh__cq_able(const wh_loop *loop);
/* The kind (1..7) for cb on loop, registering it the first time; -ENOTSUP
 * without completion I/O, -ENOSPC when seven are taken. */
int wh__cq_kind(wh_loop *loop, wh__cq_cb cb);
/* Multishot recv on fd into the loop's provided buffers (one completion
 * per buffer filled; 0 at EOF; -ENOBUFS, its last, when the ring ran dry).
 * 0 or negative errno. */
int wh__cq_recv(wh_loop *loop, int fd, void *cookie, unsigned kind);
/* A single-shot recv into one provided buffer: its one completion is its
 * last (a fresh connection's first request usually comes whole, and a recv
 * that ends by itself needs no cancel when the connection closes next). */
int wh__cq_recv_once(wh_loop *loop, int fd, void *cookie, unsigned kind);
/* sendmsg(fd, mh, flags | MSG_NOSIGNAL); mh and what it points to must stay
 * valid until the completion. 0 or negative errno. */
int wh__cq_sendmsg(wh_loop *loop, int fd, const struct msghdr *mh, int flags, void *cookie,
                   unsigned kind);
/* A closing reply: sendmsg(fd, mh, flags | MSG_WAITALL | MSG_NOSIGNAL)
 * linked to close(fd), both in the next io_uring_enter (no syscall of its
 * own). Only for a socket whose receive queue is empty: the close does not
 * wait. Returns 0: the send completes as (cookie, send_kind), then the
 * close as (cookie, close_kind), where -ECANCELED means the chain broke
 * (the send failed or was cancelled) and fd is still open, the caller's to
 * close, and any other result means fd is closed. Returns 1 (a ring with
 * IORING_FEAT_CQE_SKIP): one completion only, either the close's (the send
 * took all of mh: its own completion is skipped) or the send's, which then
 * failed or came short, and the close was neither run nor reported: fd is
 * still open, the caller's to close. Negative errno: nothing queued. */
int wh__cq_send_close(wh_loop *loop, int fd, const struct msghdr *mh, int flags, void *cookie,
                      unsigned send_kind, unsigned close_kind);
/* Multishot accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC): one completion per
 * connection (res the new fd); it ends (no WH__CQ_MORE) on an error such as
 * -EMFILE. 0 or negative errno. */
int wh__cq_accept(wh_loop *loop, int fd, void *cookie, unsigned kind);
/* close(fd) by the next io_uring_enter (no syscall of its own). The number
 * stays taken until then. 0, or negative errno: then close(2) it yourself. */
int wh__cq_close(wh_loop *loop, int fd);
/* Asks the kernel to cancel op (cookie, kind); its last completion follows. */
int wh__cq_cancel(wh_loop *loop, void *cookie, unsigned kind);
/* wh__cq_cancel that has taken effect when it returns (the op does nothing
 * more, e.g. accepts no more connections); its last completion follows. */
int wh__cq_cancel_now(wh_loop *loop, void *cookie, unsigned kind);
/* Teardown: cancels every op in flight and runs their last completions
 * before it returns (on any thread; the loop is not running). */
void wh__cq_quiesce(wh_loop *loop);
/* Ops whose last completion has not run yet (tests, teardown checks). */
uint64_t wh__cq_inflight(const wh_loop *loop);
/* Recv/send ops submitted so far, and recvs ended by a dry buffer ring. */
void wh__cq_counts(const wh_loop *loop, uint64_t *ops, uint64_t *nobufs);
/* Every SQE prepared (polls, removes and cancels too) and every CQE reaped
 * so far: the per-connection price of completion I/O (tests, bench). */
void wh__cq_ring_counts(const wh_loop *loop, uint64_t *sqes, uint64_t *cqes);
/* Sizes the loop's provided-buffer ring (count a power of two) before its
 * first recv; -EBUSY after. Defaults: 512 buffers of 4 KiB. For tests. */
int wh__cq_set_bufs(wh_loop *loop, unsigned count, unsigned size);

/* ---- Test hooks -----------------------------------------------------------
 * Counters and a fake clock so tests check behaviour without strace or sleeps. */
typedef struct wh__loop_stats {
    uint64_t ctl_calls;   /* backend add/mod/del calls (epoll_ctl) */
    uint64_t polls;       /* backend poll calls (epoll_wait) */
    uint64_t wake_writes; /* eventfd writes by wh_loop_post/wh_loop_wake */
    uint64_t post_drains; /* times the loop drained the post queue */
    uint64_t iterations;
} wh__loop_stats;
/* Snapshot of the counters (loop thread; wake_writes may lag other threads). */
void wh__loop_get_stats(const wh_loop *loop, wh__loop_stats *out);
/* Freezes the loop clock at now_ms: wh_loop_now() returns it and
 * wh_loop_update_time() no longer reads the system clock. For timer tests. */
void wh__loop_set_time(wh_loop *loop, uint64_t now_ms);
/* Number of scheduled timers. */
size_t wh__loop_timer_count(const wh_loop *loop);
/* Bytes the loop core holds for fd watchers: the watcher table and the fd
 * map, by capacity (the backend's own records not included). */
size_t wh__loop_io_bytes(const wh_loop *loop);

#endif
