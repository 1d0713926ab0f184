/* wharf networking layer: connections, datagram sockets, addresses and socket
 * options, so users never touch the BSD sockets API.
 *
 * A wh_conn is one stream connection (TCP or Unix) attached to one loop. Reads
 * land in a per-connection buffer handed to on_read; writes go to a queue of
 * growable scattered buffers and file segments flushed with writev/sendfile.
 * All functions run on the connection's loop thread.
 */
#ifndef WHARF_NET_H
#define WHARF_NET_H

#include <sys/types.h>

#include "wharf/common.h"
#include "wharf/loop.h"

WH_BEGIN_DECLS

typedef struct wh_conn wh_conn;
typedef struct wh_udp wh_udp;

/* A socket address of any family we support (IPv4, IPv6, Unix). */
typedef struct wh_sockaddr {
    union {
        struct {
            unsigned short family;
        } sa;
        unsigned char raw[112]; /* large enough for sockaddr_un / sockaddr_storage */
    } u;
    unsigned len; /* socklen_t of the address in raw */
} wh_sockaddr;

/* Kinds of listen/connect address strings (see wh_addr_parse). */
enum wh_addr_kind { WH_ADDR_TCP = 1, WH_ADDR_UDP = 2, WH_ADDR_UNIX = 3 };

/* Parses "0.0.0.0:9000", "[::]:9000", "[fe80::1%eth0]:80", "unix:/run/x.sock",
 * "unix:@abstract", "udp://0.0.0.0:9000", "tcp://[::1]:80". Sets *kind (may
 * be NULL). 0 or -EINVAL. Numeric only: "localhost:80" is -EINVAL, because
 * name resolution (getaddrinfo) can block the loop for seconds; resolve off
 * the loop and pass the numeric address. */
int wh_addr_parse(const char *str, wh_sockaddr *out, enum wh_addr_kind *kind);
/* Formats an address as "1.2.3.4:80", "[::1]:80" or "unix:/path"; returns length or -ENOSPC. */
int wh_addr_format(const wh_sockaddr *a, char *buf, size_t len);

/* Socket options for listeners and the connections they accept. Each field
 * has the default set by wh_net_opts_init(). */
typedef struct wh_net_opts {
    int reuseaddr;         /* SO_REUSEADDR: 1 (restart without waiting out TIME_WAIT) */
    int reuseport;         /* SO_REUSEPORT: 0 (runtime turns it on for its reuseport model) */
    int defer_accept_s;    /* TCP_DEFER_ACCEPT seconds: 0 = off */
    int keepalive;         /* SO_KEEPALIVE on accepted sockets: 0 = off */
    int keepalive_idle_s;  /* TCP_KEEPIDLE: 60 */
    int keepalive_intvl_s; /* TCP_KEEPINTVL: 10 */
    int keepalive_cnt;     /* TCP_KEEPCNT: 6 */
    int nodelay;           /* TCP_NODELAY on accepted sockets: 1 */
    int fastopen_qlen;     /* TCP_FASTOPEN queue length: 0 = off */
    int backlog;           /* listen(2) backlog: SOMAXCONN */
    int v6only;            /* IPV6_V6ONLY for "[::]": 0 = dual-stack, 1 = IPv6 only */
    unsigned accept_batch; /* accepts per readiness event before yielding: 64 */
    size_t read_buf_size;  /* bytes read per conn buffer: 16384 */
    size_t read_buf_max;   /* most unconsumed bytes kept before the conn is failed with -EMSGSIZE: 1
                              MiB */
    size_t high_watermark; /* queued write bytes that pause reading and set wh_conn_writable()
                              false: 1 MiB */
    size_t low_watermark; /* queued bytes under which reading resumes and on_drain fires: 256 KiB */
    /* PROXY protocol (v1 text and v2 binary, as HAProxy sends it): every
     * accepted connection must begin with a header naming the real client,
     * which then becomes wh_conn_peer(). Off by default: whoever may send the
     * header may claim any address. See wh_proxy_reject for what is refused. */
    int proxy_protocol;        /* 1 = expect the header on accepted conns: 0 */
    uint32_t proxy_timeout_ms; /* the whole header must arrive within this: 5000 */
    /* Comma-separated CIDRs whose headers are believed ("10.0.0.0/8,::1");
     * a peer outside the list is closed before anything is read. NULL = any
     * peer. Unix-socket peers always pass (file permissions decide who
     * connects). Must stay valid while conns are accepted with these opts. */
    const char *proxy_trusted;
    /* Told of each conn the PROXY stage closes (logs, counters), on the
     * conn's loop: peer is the socket's peer, reason a wh_proxy_reject. */
    void (*proxy_on_reject)(wh_loop *loop, const wh_sockaddr *peer, int reason, void *ud);
    void *proxy_ud; /* ud for proxy_on_reject */
    /* TLS for accepted connections (wharf/tls.h): NULL = none. Not owned;
     * it must outlive the listener and its connections. */
    struct wh_tls_ctx *tls;
    /* SO_SNDBUF for accepted TCP sockets, set once on the listener (they
     * inherit it): 0 = the kernel's autotuning (the default). A cap on the
     * kernel memory one connection holds for a client that does not read:
     * Linux sizes a new socket's send buffer from its MSS (about 2 MiB per
     * socket on loopback, tens of KiB over Ethernet), up to tcp_wmem's
     * maximum. The kernel doubles the value for its bookkeeping, and a cap
     * below the path's bandwidth x delay slows large downloads. */
    int sndbuf;
} wh_net_opts;

/* Why the PROXY stage closed a connection (wh_net_opts.proxy_on_reject). */
enum wh_proxy_reject {
    WH_PROXY_UNTRUSTED = 1,   /* the socket's peer is not in proxy_trusted */
    WH_PROXY_MISSING,         /* the first bytes are not a PROXY header, or EOF came first */
    WH_PROXY_MALFORMED,       /* a PROXY signature, then an invalid, truncated or too long header */
    WH_PROXY_UNKNOWN_COMMAND, /* v2 with a command other than LOCAL or PROXY */
    WH_PROXY_TIMEOUT,         /* the header was not complete within proxy_timeout_ms */
};
#define WH_PROXY_REJECT_MAX WH_PROXY_TIMEOUT

/* "untrusted", "missing", "malformed", "unknown_command", "timeout"; "other" else. */
const char *wh_proxy_reject_name(int reason);
/* Checks a list in the proxy_trusted format: 0, or -EINVAL (bad entry). */
int wh_net_proxy_trusted_check(const char *list);

/* Fills opts with the documented defaults. */
void wh_net_opts_init(wh_net_opts *opts);

/* What a user supplies to handle connections and datagrams. Every callback is
 * optional. ud is the pointer given with the callbacks (server or connect). */
typedef struct wh_conn_cbs {
    /* A connection is established (accepted, or an outbound connect finished). */
    void (*on_open)(wh_conn *c, void *ud);
    /* Bytes arrived: data..data+len is everything unconsumed so far. Return how
     * many bytes were consumed; the rest is kept and offered again with more. */
    size_t (*on_read)(wh_conn *c, char *data, size_t len, void *ud);
    /* The write queue fell below the low watermark after exceeding the high one. */
    void (*on_drain)(wh_conn *c, void *ud);
    /* Called once when the connection ends: err is 0 (orderly), or negative
     * errno (-ECONNRESET, -EPIPE, -ETIMEDOUT, -ECONNREFUSED for a failed
     * connect, ...). The connection is freed after this returns. */
    void (*on_close)(wh_conn *c, int err, void *ud);
    /* A datagram arrived on a UDP socket. */
    void (*on_datagram)(wh_udp *u, const char *data, size_t len, const wh_sockaddr *peer, void *ud);
    /* The peer finished sending (EOF) after all its bytes went through on_read.
     * If NULL the connection closes once the write queue drains (on_close(0)).
     * If set, the connection stays open (reading stopped) until the callee
     * closes it: use it when replies are produced later (offload, Redis). */
    void (*on_eof)(wh_conn *c, void *ud);
    /* The host began a graceful stop. Not about one connection: wh_server
     * calls it once on each worker loop, on that loop's thread, before it
     * closes the idle connections; a program that runs its own loop calls it
     * itself. A protocol stops keeping connections alive (HTTP answers the
     * next request with Connection: close, WebSocket closes with 1001). */
    void (*on_stop)(wh_loop *loop, void *ud);
} wh_conn_cbs;

/* Queues a copy of data; flushed when the current callback returns (or at the
 * end of this loop iteration), so many small writes leave in one writev.
 * 0, -ENOMEM, or -EPIPE once the conn is closing, shut down or failed. All
 * writes keep their order; reference and file segments included. */
int wh_conn_write(wh_conn *c, const void *data, size_t len);
/* Queues data without copying; data must stay valid until done(arg) is called
 * (done may be NULL for static data). */
int wh_conn_write_ref(wh_conn *c, const void *data, size_t len, void (*done)(void *arg), void *arg);
/* Queues len bytes of file fd from offset, sent with sendfile. The conn closes
 * fd when done if close_fd is true. */
int wh_conn_sendfile(wh_conn *c, int fd, off_t offset, size_t len, bool close_fd);
/* Writes what is queued now (normally automatic). 0 or negative errno. */
int wh_conn_flush(wh_conn *c);
/* Bytes queued and not yet accepted by the kernel (on io_uring: known when
 * the send's completion is collected, one loop iteration after it left). */
size_t wh_conn_queued(const wh_conn *c);
/* False while the queue is above the high watermark (a producer should pause). */
bool wh_conn_writable(const wh_conn *c);
/* Orderly close: stop reading, flush the queue, then close. on_close(0) follows. */
void wh_conn_close(wh_conn *c);
/* Half-close: after the queue drains, shut down the write side; reading goes on. */
void wh_conn_shutdown(wh_conn *c);
/* Abortive close now (RST); queued data is dropped; on_close(-ECONNABORTED) follows. */
void wh_conn_abort(wh_conn *c);
/* Stops delivering on_read until wh_conn_resume(). */
void wh_conn_pause(wh_conn *c);
/* Resumes on_read delivery (and offers data already buffered). */
void wh_conn_resume(wh_conn *c);
/* Closes the connection with -ETIMEDOUT if no bytes are read or written for
 * ms milliseconds (0 disables). O(1), no syscall; refreshed by I/O. Fires
 * within 200 ms after the deadline; values above ~109 minutes are clamped. */
void wh_conn_set_timeout(wh_conn *c, uint32_t ms);
/* Marks c as in the middle of an exchange (busy true) until called again with
 * false; protocols set it while a request is read or answered. A busy conn is
 * never closed as idle by a host's graceful stop, and is never moved to
 * another thread (wh_server's ONESHOT model): mark a conn busy before handing
 * work on it to another thread and clear it when the work is done. A flag,
 * not a counter. Loop thread only. */
void wh_conn_set_busy(wh_conn *c, bool busy);
/* True while c is marked busy. */
bool wh_conn_busy(const wh_conn *c);
/* Attaches a user pointer. */
void wh_conn_set_data(wh_conn *c, void *data);
/* The pointer from wh_conn_set_data(), or NULL. */
void *wh_conn_data(const wh_conn *c);
/* Replaces the callbacks (e.g. after an HTTP upgrade to WebSocket). */
void wh_conn_set_cbs(wh_conn *c, const wh_conn_cbs *cbs, void *ud);
/* The loop the connection runs on. */
wh_loop *wh_conn_loop(const wh_conn *c);
/* The client's address: the socket's peer, or the client a PROXY header
 * named (wh_net_opts.proxy_protocol). Stays valid until the next call on
 * this loop (a PROXY client's address: while c lives). */
const wh_sockaddr *wh_conn_peer(const wh_conn *c);
/* The socket's own peer (getpeername): with a PROXY header, the balancer
 * that sent it; else the same as wh_conn_peer(). Valid until the next call. */
const wh_sockaddr *wh_conn_sock_peer(const wh_conn *c);
/* The socket fd, for getsockopt in tests and diagnostics; do not read/write/close it. */
int wh_conn_fd(const wh_conn *c);

/* Wraps an already-connected non-blocking stream socket in a connection on
 * loop (used by accept paths and tests); cbs->on_open runs before returning,
 * or, with opts->proxy_protocol, once the PROXY header is read (never for a
 * connection the header stage refuses). */
int wh_conn_adopt(wh_loop *loop, int fd, const wh_net_opts *opts, const wh_conn_cbs *cbs, void *ud,
                  wh_conn **out);
/* Outbound connect to a numeric address string ("127.0.0.1:6379",
 * "[::1]:80", "unix:/x"): non-blocking, on_open on success, on_close with a
 * negative errno (-ECONNREFUSED, -ETIMEDOUT, ...) on failure or after
 * timeout_ms (0 = no timeout). */
int wh_conn_connect(wh_loop *loop, const char *addr, uint32_t timeout_ms, const wh_net_opts *opts,
                    const wh_conn_cbs *cbs, void *ud, wh_conn **out);

/* Connections open on loop. Loop thread only. */
size_t wh_net_conn_count(const wh_loop *loop);
/* Closes (orderly) every connection on loop that is idle: not busy, nothing
 * buffered or queued, no unread bytes in the kernel. A graceful stop calls it
 * after telling the protocol (wh_conn_cbs.on_stop). Loop thread only. */
void wh_net_close_idle(wh_loop *loop);

/* Listening without the framework: one loop, one thread (wh_server adds
 * threads, distribution and shutdown on top of this). */
typedef struct wh_listener wh_listener;
/* Listens on a stream address ("127.0.0.1:0", "[::1]:80", "unix:/x.sock",
 * "unix:@name") and adopts every accepted connection on loop with cbs/ud.
 * Errors: -EINVAL (bad address or a udp:// one), -EADDRINUSE, -EACCES, ... */
int wh_listen(wh_loop *loop, const char *addr, const wh_net_opts *opts, const wh_conn_cbs *cbs,
              void *ud, wh_listener **out);
/* The bound address (e.g. the port picked for port 0). 0 or negative errno. */
int wh_listener_local(const wh_listener *l, wh_sockaddr *out);
/* Stops accepting, closes the socket (unlinks a Unix socket path) and frees.
 * Connections already accepted stay open. */
void wh_listener_close(wh_listener *l);

/* UDP. Datagrams are read in batches (recvmmsg) and queued sends leave in
 * batches (sendmmsg) at the end of the callback. */
/* Binds a UDP socket ("udp://host:port" or "host:port") on loop. */
int wh_udp_bind(wh_loop *loop, const char *addr, const wh_net_opts *opts, const wh_conn_cbs *cbs,
                void *ud, wh_udp **out);
/* Sends one datagram to peer (copied; batched with others from this callback). */
int wh_udp_send(wh_udp *u, const void *data, size_t len, const wh_sockaddr *peer);
/* Closes and frees the socket. */
void wh_udp_close(wh_udp *u);
/* The bound local address (useful after binding port 0). */
const wh_sockaddr *wh_udp_local(const wh_udp *u);

WH_END_DECLS

#endif
