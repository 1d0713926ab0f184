/* Internal networking interfaces for wharf's own layers (runtime, http, ws,
 * apps). Not for users: they get include/wharf/net.h and server.h.
 *
 * Everything here runs on the loop thread that owns the object, except the
 * pure socket helpers (wh__listen_fd, wh__sock_*), which any thread may call.
 * Errors are negative errno; nothing prints.
 */
#ifndef WH_NET_INTERNAL_H
#define WH_NET_INTERNAL_H

#include "wharf/net.h"
#include "loop/loop_internal.h"

/* ---------------------------------------------------------------------------
 * Socket helpers (src/net/sockopt.c). One job each, like Redis' anet.c.
 * ------------------------------------------------------------------------- */

/* The defaults wh_net_opts_init fills in; a zero field in a caller's options
 * falls back to these. */
extern const wh_net_opts wh__net_defaults;

/* Creates a bound socket for a parsed address: SOCK_STREAM + listen(backlog)
 * for WH_ADDR_TCP / WH_ADDR_UNIX, SOCK_DGRAM for WH_ADDR_UDP. The socket is
 * SOCK_NONBLOCK|SOCK_CLOEXEC and gets from o (NULL = wh_net_opts_init
 * defaults): SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY (IPv6 only),
 * TCP_DEFER_ACCEPT and TCP_FASTOPEN (TCP only). For Unix paths a stale socket
 * file is unlinked first, but only if it is a socket nobody listens on
 * (otherwise -EADDRINUSE); abstract names ("unix:@x") need no cleanup.
 * *fd_out is set on success; on failure nothing is left open.
 * Errors: -EADDRINUSE, -EACCES, -EAFNOSUPPORT, -EINVAL, ... */
int wh__listen_fd(const wh_sockaddr *a, enum wh_addr_kind k, const wh_net_opts *o, int *fd_out);
/* wh__listen_fd without the listen(2): a socket bound (its address taken,
 * errors reported now) that takes no connection until wh__listen_start. */
int wh__bind_fd(const wh_sockaddr *a, enum wh_addr_kind k, const wh_net_opts *o, int *fd_out);
/* listen(2) with o's backlog (SOMAXCONN by default); again on a listening
 * socket only changes the backlog. 0 or negative errno. */
int wh__listen_start(int fd, const wh_net_opts *o);

/* Parses addr (wh_addr_parse) then wh__listen_fd. */
int wh__listen_str(const char *addr, const wh_net_opts *o, enum wh_addr_kind *kind, int *fd_out);

/* Applies the per-connection options of o to an accepted (or connected) TCP
 * socket: TCP_NODELAY, and SO_KEEPALIVE with TCP_KEEPIDLE/INTVL/CNT set
 * explicitly (accept(2): options are not reliably inherited from the
 * listener). family: AF_INET/AF_INET6/AF_UNIX of the socket, or 0 to look it
 * up (one getsockname). Unix sockets are skipped. 0 or negative errno. */
int wh__sock_apply_accepted(int fd, int family, const wh_net_opts *o);

/* True if accepted socket fd already carries o's per-connection options
 * (Linux copies them from the listener; probed once per listener, since
 * portable code may not assume it). Costs one getsockopt per option. */
bool wh__sock_inherited(int fd, const wh_net_opts *o);

/* The local address of a socket (getsockname), e.g. after binding port 0. */
int wh__sock_local(int fd, wh_sockaddr *out);
/* The peer address of a connected socket (getpeername). */
int wh__sock_peer(int fd, wh_sockaddr *out);

/* ---------------------------------------------------------------------------
 * Listeners (src/net/listener.c): a watcher over a listening fd on one loop.
 * ------------------------------------------------------------------------- */

/* wh_listener is declared in wharf/net.h (wh_listen / wh_listener_close are
 * the public face of the same object). */

/* Called for each accepted connection. fd is non-blocking, close-on-exec, and
 * already has wh__sock_apply_accepted(opts) applied. The callee owns fd: adopt
 * it (wh_conn_adopt), hand it to another thread, or close it. */
typedef void (*wh__accept_cb)(wh_listener *l, int fd, void *ud);

/* wh_conn_adopt for an fd a listener on this loop just handed to its
 * wh__accept_cb: when that listener finds requests waiting at accept time,
 * reads at once (before registering with the poller). Same contract as
 * wh_conn_adopt otherwise; for any other fd it is wh_conn_adopt. */
int wh__conn_adopt_accepted(wh_loop *loop, int fd, const wh_net_opts *opts, const wh_conn_cbs *cbs,
                            void *ud, wh_conn **out);

/* Starts accepting on listening socket fd (which stays owned by the caller:
 * wh__listener_free does not close it, so one fd can be shared by listeners
 * on several loops, the EXCLUSIVE model).
 *  - io_flags: extra wh_io flags, e.g. WH_IO_EXCLUSIVE (EPOLLEXCLUSIVE).
 *  - opts: copied; NULL = defaults. accept_batch caps accepts per wake-up
 *    so one busy listener cannot starve the loop (level-triggered: the rest
 *    are taken on the next iteration).
 *  - on_accept: if set, each fd goes there. If NULL, each fd is adopted as a
 *    wh_conn on this loop with cbs/ud (cbs is copied).
 * EMFILE/ENFILE: the listener stops watching the fd and retries on a timer,
 * 10 ms doubling to 1 s, and at once when a wh_conn on this loop closes.
 * It never spins and never stops for good. Other accept errors from the
 * kernel that concern one half-open connection (ECONNABORTED, EPROTO,
 * ENETDOWN ...) are skipped, as accept(2) recommends. */
int wh__listener_new(wh_loop *loop, int fd, unsigned io_flags, const wh_net_opts *opts,
                     wh__accept_cb on_accept, const wh_conn_cbs *cbs, void *ud, wh_listener **out);
/* Stops watching (e.g. graceful shutdown); queued connections stay in the
 * kernel backlog. Idempotent. */
void wh__listener_pause(wh_listener *l);
/* Watches again after wh__listener_pause. */
int wh__listener_resume(wh_listener *l);
/* Stops and frees (safe inside on_accept). Does not close the fd. On an
 * io_uring loop with completion I/O, on_accept may still run once more, in
 * this loop's next iteration, for a connection the kernel accepted before
 * the free (its owner must outlive the listener on this loop, as the
 * runtime's worker does). */
void wh__listener_free(wh_listener *l);
/* Accepts every connection waiting in the socket's queue now, ignoring
 * accept_batch, handing each to the accept callback (or adopting it). Call
 * right before the socket is closed: the kernel resets connections still
 * queued on a listening socket when it closes. Returns how many it took. l
 * may be freed by a callback (do not use it afterwards if so). */
unsigned wh__listener_drain(wh_listener *l);
/* The listening fd. */
int wh__listener_fd(const wh_listener *l);
/* The options the listener accepts with (its TLS context among them). */
const wh_net_opts *wh__listener_opts(const wh_listener *l);
/* The loop the listener runs on. */
wh_loop *wh__listener_loop(const wh_listener *l);
/* Connections accepted so far by this listener. */
uint64_t wh__listener_accepted(const wh_listener *l);
/* EMFILE/ENFILE back-offs so far (diagnostics and tests). */
uint64_t wh__listener_backoffs(const wh_listener *l);

/* ---------------------------------------------------------------------------
 * Per-loop networking state (kept in loop slot WH__SLOT_NET, created on
 * first use, freed with the loop).
 * ------------------------------------------------------------------------- */

/* Counters the net layer bumps for every connection on a loop. The runtime
 * points a loop at its per-thread counters; no locks: one writer (the loop
 * thread) stores with relaxed __atomic_store_n (a plain mov on x86, but
 * race-free for TSan); readers on other threads use relaxed
 * __atomic_load_n and may see slightly stale values. */
typedef struct wh__net_counters {
    uint64_t bytes_in;     /* bytes read from connections */
    uint64_t bytes_out;    /* bytes written (writev + sendfile) */
    uint64_t conns_opened; /* wh_conn created (adopted, accepted or connected) */
    uint64_t conns_closed; /* wh_conn finished (on_close called) */
} wh__net_counters;

/* Makes every connection on loop count into *c (NULL stops counting).
 * c must outlive the loop's connections. 0 or -ENOMEM. */
int wh__net_set_counters(wh_loop *loop, wh__net_counters *c);

/* Calls fn(c, ud) for every live connection on loop (e.g. graceful shutdown:
 * close the idle ones). fn may close c or any other connection. */
void wh__net_foreach_conn(wh_loop *loop, void (*fn)(wh_conn *c, void *ud), void *ud);

/* True when c has nothing buffered in either direction and is not closing:
 * a candidate for closing at graceful shutdown (HTTP adds its own notion of
 * "between requests"). */
bool wh__conn_idle(const wh_conn *c);
/* True when c could be closed now without losing anything: idle (above), not
 * busy, and no unread bytes waiting in the kernel (one FIONREAD). */
bool wh__conn_quiet(const wh_conn *c);
/* True once wh_conn_close/abort/shutdown ran or the peer sent EOF/error. */
bool wh__conn_closing(const wh_conn *c);

/* Keeps every connection on loop on readiness (no completion I/O even on
 * io_uring): the runtime's ONESHOT model moves conns between loops, which
 * an op in flight would pin. Call before the loop has connections. */
void wh__net_readiness_only(wh_loop *loop);
/* True when plain conns on loop do their I/O as completion ops (io_uring,
 * conn.c "Completion mode"), false when they use readiness. */
bool wh__net_completion(wh_loop *loop);

/* Calls fn(c, ud) on loop's thread whenever a connection of loop stops being
 * busy (wh_conn_set_busy(c, false)); the runtime closes such a conn at once
 * while it drains. fn NULL removes the hook. 0 or -ENOMEM. */
int wh__net_set_unbusy_hook(wh_loop *loop, void (*fn)(wh_conn *c, void *ud), void *ud);

/* ---- Moving connections between loops (move.c) -------------------------
 * For the runtime's ONESHOT model. Only the loop thread that owns c calls
 * detach; attach runs on the new owner's thread after a hand-over that
 * orders memory (an atomic release/acquire). */

/* True when c is quiet enough to leave its loop: not busy, nothing buffered,
 * queued or pending, not paused, closing, connecting or held by a frame. */
bool wh__conn_movable(const wh_conn *c);
/* Takes a movable c off its loop (watcher, wheel, count); the socket stays
 * open. Returns the wheel tick at which its timeout expires, 0 for none. */
uint32_t wh__conn_detach(wh_conn *c);
/* Puts a detached c on loop (watcher, wheel, profile, count). */
void wh__conn_attach(wh_conn *c, wh_loop *loop);
/* Runs one readiness event (WH_IO_*) for an attached c and flushes what it
 * queued. False when c died (it is freed, or will be at the end of the
 * iteration); true when it is still open. */
bool wh__conn_dispatch(wh_conn *c, unsigned events);
/* Closes c with -ETIMEDOUT (on_close runs). */
void wh__conn_expire(wh_conn *c);
/* The callbacks c runs with (to tell a protocol switch, e.g. an upgrade). */
const wh_conn_cbs *wh__conn_cbs(const wh_conn *c);
/* The current timeout wheel tick of loop (as wh__conn_detach reports deadlines). */
uint32_t wh__net_tick_now(wh_loop *loop);

/* Timeout wheel accuracy: wh_conn_set_timeout(ms) fires between ms and
 * ms + 2 * WH__NET_TICK_MS after the last read/write (plus loop latency):
 * one tick for rounding the activity time, one for the wheel timer's phase. */
#define WH__NET_TICK_MS    100u
#define WH__NET_WHEEL_SIZE 128u

/* ---------------------------------------------------------------------------
 * Write queue (src/net/wqueue.c): seed 003's growable scattered buffers.
 * Exposed for unit tests and for layers that build a response before they
 * own a connection. Pure memory; no syscalls except wh__wq_write's.
 *
 * Copies go into chunks: the first is WH__WQ_MIN_CHUNK bytes, each next one
 * twice the previous (and at least what the current write still needs, so one
 * 10 KiB write is 1-2 chunks, not 8), capped at WH__WQ_MAX_CHUNK. Chunks are
 * never reallocated and queued bytes are never copied again; the queue is
 * laid out as iovecs for one writev. Reference and file segments sit in
 * order between chunks.
 * ------------------------------------------------------------------------- */

#define WH__WQ_MIN_CHUNK 256u
#define WH__WQ_MAX_CHUNK 65536u

struct iovec;
typedef struct wh__wseg wh__wseg;

typedef struct wh__wq {
    wh__wseg *head;
    wh__wseg *tail;
    size_t queued;       /* bytes not yet written */
    unsigned next_chunk; /* size of the next copy chunk */
    unsigned nsegs;
    /* The socket closes (or shuts its write side) once the queue drains, so
     * the last bytes may wait for that FIN and leave in its segment. */
    bool fin_follows;
    struct wh__wq_tx *tx; /* conn.c: a sendmsg's header and iovecs (completion mode) */
} wh__wq;

/* Empty queue. */
void wh__wq_init(wh__wq *q);
/* Frees every segment (calls ref done() callbacks, closes owned file fds). */
void wh__wq_clear(wh__wq *q);
/* Appends a copy of data. 0 or -ENOMEM (then nothing was queued). */
int wh__wq_copy(wh__wq *q, const void *data, size_t len);
/* Appends a reference; done(arg) runs once the bytes are written or dropped. */
int wh__wq_ref(wh__wq *q, const void *data, size_t len, void (*done)(void *), void *arg);
/* Appends a file range, sent with sendfile. */
int wh__wq_file(wh__wq *q, int fd, off_t off, size_t len, bool close_fd);
/* Fills up to max iovecs from the head, stopping at a file segment.
 * Returns the count (0 when empty or when the head is a file). */
int wh__wq_iov(const wh__wq *q, struct iovec *iov, int max);
/* Marks n bytes from the head written: frees finished segments. */
void wh__wq_consume(wh__wq *q, size_t n);
/* True when the head segment is a file segment. */
bool wh__wq_head_is_file(const wh__wq *q);
/* Writes as much as the kernel takes (writev for memory, sendfile for files).
 * Returns bytes written (>= 0; 0 with *again set when the socket is full) or
 * negative errno (-EPIPE, -ECONNRESET, ...). Memory goes out with
 * sendmsg(MSG_NOSIGNAL) (a writev that cannot raise SIGPIPE); sendfile has no
 * such flag, so the net layer sets SIGPIPE to SIG_IGN when it is still SIG_DFL
 * (once, when a loop first uses the net layer). */
ssize_t wh__wq_write(wh__wq *q, int fd, bool *again);

/* What one queued segment costs beyond the bytes it carries: its header plus
 * the allocator's per-block overhead (a reference segment is one malloc of
 * this size). Lets a layer that queues many small references (WebSocket
 * broadcasts) count the memory they really hold, not just their bytes. */
#define WH__WQ_SEG_COST 64u
/* Segments in c's write queue (chunks, references and files). O(1). */
unsigned wh__conn_queued_segs(const wh_conn *c);

#endif
