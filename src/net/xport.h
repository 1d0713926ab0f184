/* Private to src/net: the transport seam under wh_conn.
 *
 * A plain socket has no transport object (WH__XP(c) == NULL) and conn.c
 * calls read/sendmsg/sendfile/shutdown itself, exactly as before: one
 * predictable branch is all a plain connection pays. A connection with a
 * transport (today only TLS, src/net/tls_conn.c) sends its reads, its queue
 * flushes (memory and file segments), its half-close and its end through
 * the ops table below.
 *
 * Kernel TLS would slot in here as a second ops table: after the handshake
 * it would hand the keys to the socket (setsockopt TCP_ULP "tls") and use
 * the plain path's writev and sendfile for the queue (SSL_sendfile), keeping
 * OpenSSL only for reading control records. Not shipped: the kernels we test
 * on have no tls ULP.
 */
#ifndef WH_NET_XPORT_H
#define WH_NET_XPORT_H

#include "net/net_priv.h"

struct wh__xport;

typedef struct wh__xport_ops {
    /* Reads up to len plaintext bytes: > 0 bytes, 0 at the peer's EOF,
     * -EAGAIN when nothing is ready, or a negative errno. */
    ssize_t (*read)(wh_conn *c, char *buf, size_t len);
    /* Writes from the queue like wh__wq_write (memory and file segments). */
    ssize_t (*write)(wh_conn *c, wh__wq *q, bool *again);
    /* Bytes the transport has read from the socket but not handed out yet
     * (epoll cannot see them, so the conn asks here after each read). */
    bool (*pending)(const wh_conn *c);
    /* Runs the handshake on an io event (while wh__xport.hs). */
    void (*handshake)(wh_conn *c);
    /* Before shutdown(SHUT_WR): e.g. send close_notify. */
    void (*shutdown)(wh_conn *c);
    /* wh__conn_finish, before the fd is closed: err as for on_close. */
    void (*finish)(wh_conn *c, int err);
    /* Frees the transport (the conn is being freed, or was never made). */
    void (*free)(struct wh__xport *xp);
} wh__xport_ops;

/* Each transport's per-connection state begins with this. */
typedef struct wh__xport {
    const wh__xport_ops *ops;
    bool hs; /* handshake in progress: on_open has not run, on_close is not owed */
} wh__xport;

/* tls_conn.c: creates the TLS transport for an accepted fd. NULL on -ENOMEM
 * (or when the context has no certificate). */
wh__xport *wh__tls_xport_new(struct wh_tls_ctx *t, int fd);
/* The handshake deadline of t's connections, in ms. */
uint32_t wh__tls_handshake_ms(const struct wh_tls_ctx *t);
/* conn.c: reads what the transport holds (after a handshake, a resume, or a
 * read that left decrypted bytes behind). */
void wh__conn_read_pending(wh_conn *c);
/* conn.c: the handshake is done: on_open, then whatever already arrived. */
void wh__conn_xport_open(wh_conn *c);
/* wqueue.c: when the head of q is a file segment, its fd, the file offset
 * of its next byte and the bytes left (a transport reads it itself). */
bool wh__wq_head_file(const wh__wq *q, int *fd, off_t *pos, size_t *len);
/* The per-loop buffer transports use for coalescing (one 16 KiB record) and
 * file reads (64 KiB per pread: a quarter of the syscalls). */
#define WH__XBUF_SIZE 65536u
#define WH__XREC_SIZE 16384u
char *wh__netloop_xbuf(wh__netloop *nl);

#endif
