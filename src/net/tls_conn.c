/* The TLS transport under wh_conn (see xport.h): OpenSSL on the socket.
 *
 * The SSL reads and writes the socket itself (SSL_set_fd: OpenSSL's socket
 * BIO calls read(2)/write(2) on our fd). A memory BIO pair would add a copy
 * of every byte and two buffers per connection, and a custom BIO would
 * only re-implement the socket BIO; we gain nothing from either since the
 * loop only needs to know "want read" or "want write", which SSL_get_error
 * says. Read-ahead is on (one read(2) per burst), so bytes may wait inside
 * the SSL where epoll cannot see them: the conn asks `pending` after each
 * read and on resume.
 *
 * Handshake: driven by the conn's io events (SSL_do_handshake until done;
 * WANT_WRITE waits for EPOLLOUT), bounded by the context's handshake
 * timeout on the conn's timeout wheel. Every failure ends in a close, is
 * counted by reason and reported to the context's on_fail hook.
 *
 * Writing: small queued segments are coalesced into one record through a
 * per-loop buffer; a large segment goes to SSL_write directly. File
 * segments are pread into the same buffer, 64 KiB at a time, and written as
 * records (no SSL_sendfile: that needs kernel TLS). A write that returned WANT_WRITE is
 * retried with the same bytes and length, as SSL_write requires.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wharf/tls.h"

#include "net/xport.h"

#ifndef WH_HAVE_TLS

wh__xport *wh__tls_xport_new(struct wh_tls_ctx *t, int fd)
{
    (void)t, (void)fd;
    return NULL;
}
uint32_t wh__tls_handshake_ms(const struct wh_tls_ctx *t)
{
    (void)t;
    return 0;
}
const char *wh_conn_tls_version(const wh_conn *c)
{
    (void)c;
    return NULL;
}
const char *wh_conn_tls_cipher(const wh_conn *c)
{
    (void)c;
    return NULL;
}
const char *wh_conn_tls_alpn(const wh_conn *c)
{
    (void)c;
    return NULL;
}
const char *wh_conn_tls_sni(const wh_conn *c)
{
    (void)c;
    return NULL;
}
bool wh_conn_tls_resumed(const wh_conn *c)
{
    (void)c;
    return false;
}

#else

#include <openssl/err.h>

#include "net/tls_priv.h"

typedef struct tls_x {
    wh__xport base;
    SSL *ssl;
    wh__tls_set *set;
    wh_tls_ctx *ctx;
    uint32_t wpend; /* length of the SSL_write that must be retried, 0 = none */
    bool reported;  /* a handshake failure was counted already */
    /* The peer is gone or done (its EOF or close_notify, a socket error):
     * no close_notify at the end. Sending one would be a write that fails
     * with EPIPE (a client that closes right after the handshake, as
     * `openssl s_time -new` does, has reset the socket already), and
     * OpenSSL asks for no SSL_shutdown after a fatal error. */
    bool quiet;
} tls_x;

static const wh__xport_ops tls_ops;

#define TX(c)      ((tls_x *)WH__XP(c))

/* Coalesce segments into one record while they are smaller than this. */
#define DIRECT_MIN 4096u

char *wh__netloop_xbuf(wh__netloop *nl)
{
    if (!nl->xbuf) nl->xbuf = malloc(WH__XBUF_SIZE);
    return nl->xbuf;
}

uint32_t wh__tls_handshake_ms(const wh_tls_ctx *t)
{
    return t->opts.handshake_timeout_ms;
}

static void x_free(wh__xport *xp)
{
    tls_x *x = (tls_x *)xp;
    SSL_free(x->ssl);
    wh__tls_set_drop(x->set);
    free(x);
}

wh__xport *wh__tls_xport_new(wh_tls_ctx *t, int fd)
{
    tls_x *x = calloc(1, sizeof(*x));
    if (!x) return NULL;
    x->base.ops = &tls_ops;
    x->base.hs = true;
    x->ctx = t;
    x->set = wh__tls_set_take(t);
    if (!x->set || !(x->ssl = SSL_new(x->set->pairs[0].ctx)) || !SSL_set_fd(x->ssl, fd)) {
        x_free(&x->base);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(x->ssl);
    return &x->base;
}

static int map_ssl_reason(int reason)
{
    switch (reason) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return WH_TLS_FAIL_HTTP;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_WRONG_SSL_VERSION:
        return WH_TLS_FAIL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return WH_TLS_FAIL_CIPHER;
    default:
        /* Alerts from the peer: SSL_R_SSLV3_ALERT_* / SSL_R_TLSV1_ALERT_*
         * are 1000 + the alert number (ssl.h: SSL_AD_REASON_OFFSET). */
        if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
            return WH_TLS_FAIL_ALERT;
        return WH_TLS_FAIL_PROTOCOL;
    }
}

static void report(wh_conn *c, int reason, const char *detail)
{
    tls_x *x = TX(c);
    x->reported = true;
    atomic_fetch_add_explicit(&x->ctx->failures[reason], 1, memory_order_relaxed);
    if (x->ctx->on_fail) {
        wh_sockaddr peer;
        if (wh__sock_peer(c->io.fd, &peer) < 0) memset(&peer, 0, sizeof(peer));
        x->ctx->on_fail(&peer, reason, detail, x->ctx->on_fail_ud);
    }
}

/* What nginx answers to plain HTTP on a TLS port: a 400 in clear text the
 * user can read, rather than bytes that look like a broken server. */
static void answer_plain_http(int fd)
{
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 44\r\n"
                              "Connection: close\r\n\r\n"
                              "This port speaks HTTPS; use an https:// URL\n";
    (void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void x_handshake(wh_conn *c)
{
    tls_x *x = TX(c);
    ERR_clear_error();
    int r = SSL_do_handshake(x->ssl);
    if (r == 1) {
        atomic_fetch_add_explicit(&x->ctx->handshakes, 1, memory_order_relaxed);
        if (SSL_session_reused(x->ssl))
            atomic_fetch_add_explicit(&x->ctx->resumed, 1, memory_order_relaxed);
        wh__conn_xport_open(c);
        return;
    }
    int e = SSL_get_error(x->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        bool wout = e == SSL_ERROR_WANT_WRITE;
        if (wout != !!(c->flags & WH__C_WOUT)) {
            c->flags ^= WH__C_WOUT;
            wh__conn_update_io(c);
        }
        return;
    }
    int reason = WH_TLS_FAIL_OTHER, err = -EPROTO;
    const char *detail = "handshake failed";
    unsigned long ec = ERR_peek_last_error();
    if (e == SSL_ERROR_SSL && ec) {
        reason = map_ssl_reason(ERR_GET_REASON(ec));
        const char *rs = ERR_reason_error_string(ec);
        if (rs) detail = rs;
    } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
               (e == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == EPIPE))) {
        reason = WH_TLS_FAIL_EOF;
        detail = "closed during the handshake";
        err = errno ? -errno : -ECONNRESET;
    } else if (e == SSL_ERROR_SYSCALL) {
        err = -errno;
        detail = "socket error during the handshake";
    }
    if (reason == WH_TLS_FAIL_HTTP) answer_plain_http(c->io.fd);
    report(c, reason, detail);
    ERR_clear_error();
    wh__conn_finish(c, err);
}

static ssize_t x_read(wh_conn *c, char *buf, size_t len)
{
    tls_x *x = TX(c);
    ERR_clear_error();
    int r = SSL_read(x->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r > 0) return r;
    switch (SSL_get_error(x->ssl, r)) {
    case SSL_ERROR_ZERO_RETURN:
        x->quiet = true;
        return 0; /* close_notify (or EOF: SSL_OP_IGNORE_UNEXPECTED_EOF) */
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* only a renegotiation would write here, and it is off */
        return -EAGAIN;
    case SSL_ERROR_SYSCALL:
        x->quiet = true;
        return errno ? -errno : -ECONNRESET;
    default:
        x->quiet = true;
        ERR_clear_error();
        return -EPROTO; /* a bad record, a renegotiation attempt, a fatal alert */
    }
}

static bool x_pending(const wh_conn *c)
{
    tls_x *x = TX(c);
    return !x->base.hs && SSL_has_pending(x->ssl);
}

/* Bytes of the next SSL_write: *p at its start, or NULL after an error
 * (returned negative). Small head segments are copied together into buf. */
static ssize_t next_chunk(wh__wq *q, uint32_t wpend, char *buf, const char **p)
{
    int fd;
    off_t pos;
    size_t flen;
    if (wh__wq_head_file(q, &fd, &pos, &flen)) {
        size_t want = wpend ? wpend : (flen < WH__XBUF_SIZE ? flen : WH__XBUF_SIZE);
        ssize_t n;
        do
            n = pread(fd, buf, want, pos);
        while (n < 0 && errno == EINTR);
        if (n < 0) return -errno;
        if (n == 0 || (wpend && (size_t)n < wpend)) return -EIO; /* truncated under us */
        *p = buf;
        return n;
    }
    struct iovec iov[64];
    int k = wh__wq_iov(q, iov, 64);
    if (k == 0) return 0;
    size_t first = iov[0].iov_len;
    if (first >= DIRECT_MIN || k == 1 || (wpend && wpend <= first)) {
        /* One segment: write it in place (a retry presents the same bytes). */
        size_t n = wpend ? wpend : first;
        *p = iov[0].iov_base;
        return (ssize_t)(n > INT32_MAX ? INT32_MAX : n);
    }
    size_t cap = wpend ? wpend : WH__XREC_SIZE, n = 0;
    for (int i = 0; i < k && n < cap; i++) {
        size_t l = iov[i].iov_len;
        if (l > cap - n) l = cap - n;
        memcpy(buf + n, iov[i].iov_base, l);
        n += l;
        if (!wpend && iov[i].iov_len >= DIRECT_MIN) break; /* next record: in place */
    }
    *p = buf;
    return (ssize_t)n;
}

static ssize_t x_write(wh_conn *c, wh__wq *q, bool *again)
{
    tls_x *x = TX(c);
    char *buf = wh__netloop_xbuf(c->prof->nl);
    if (!buf) return -ENOMEM;
    size_t total = 0;
    *again = false;
    while (q->queued) {
        const char *p = NULL;
        ssize_t n = next_chunk(q, x->wpend, buf, &p);
        if (n < 0) return total ? (ssize_t)total : n;
        if (n == 0) {
            wh__wq_consume(q, 0); /* only empty segments at the head */
            if (!q->head) break;
            continue;
        }
        /* SSL_write returns after each record (partial writes): go on
         * through the same chunk rather than reading it again. */
        for (size_t off = 0; off < (size_t)n;) {
            ERR_clear_error();
            int r = SSL_write(x->ssl, p + off, (int)((size_t)n - off));
            if (r > 0) {
                x->wpend = 0;
                wh__wq_consume(q, (size_t)r);
                total += (size_t)r;
                off += (size_t)r;
                continue;
            }
            int e = SSL_get_error(x->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                x->wpend = (uint32_t)((size_t)n - off); /* the retry starts at the queue's head */
                *again = true;
                return (ssize_t)total;
            }
            ERR_clear_error();
            x->quiet = true;
            if (e == SSL_ERROR_SYSCALL && errno) return -errno;
            return e == SSL_ERROR_SYSCALL ? -EPIPE : -EPROTO;
        }
    }
    return (ssize_t)total;
}

static void x_shutdown(wh_conn *c)
{
    tls_x *x = TX(c);
    if (x->base.hs) return;
    ERR_clear_error();
    (void)SSL_shutdown(x->ssl); /* close_notify, then the conn's FIN */
    ERR_clear_error();
}

static void x_finish(wh_conn *c, int err)
{
    tls_x *x = TX(c);
    if (x->base.hs) {
        /* Failures found by the handshake were reported there (-EPROTO or
         * the peer's EOF); the wheel and aborts come here. */
        if (err == -ETIMEDOUT)
            report(c, WH_TLS_FAIL_TIMEOUT, "handshake timed out");
        else if (err != -EPROTO && err != -ECONNRESET && err != -EPIPE && err != -ECONNABORTED &&
                 err != 0)
            report(c, WH_TLS_FAIL_OTHER, "closed during the handshake");
        return;
    }
    /* An orderly close says so (close_notify) before the FIN; one attempt,
     * non-blocking: a peer that does not read it loses nothing. */
    if (err == 0 && !x->quiet && !(c->flags & WH__C_ABORT) && !(c->flags & WH__C_SHUT_DONE) &&
        !x->wpend) {
        ERR_clear_error();
        (void)SSL_shutdown(x->ssl);
        ERR_clear_error();
    }
}

static const wh__xport_ops tls_ops = {
    .read = x_read,
    .write = x_write,
    .pending = x_pending,
    .handshake = x_handshake,
    .shutdown = x_shutdown,
    .finish = x_finish,
    .free = x_free,
};

static SSL *conn_ssl(const wh_conn *c)
{
    return WH__XP(c) && WH__XP(c)->ops == &tls_ops && !WH__XP(c)->hs ? ((tls_x *)WH__XP(c))->ssl
                                                                     : NULL;
}

const char *wh_conn_tls_version(const wh_conn *c)
{
    SSL *s = conn_ssl(c);
    return s ? SSL_get_version(s) : NULL;
}

const char *wh_conn_tls_cipher(const wh_conn *c)
{
    SSL *s = conn_ssl(c);
    return s ? SSL_get_cipher_name(s) : NULL;
}

const char *wh_conn_tls_alpn(const wh_conn *c)
{
    SSL *s = conn_ssl(c);
    if (!s) return NULL;
    const unsigned char *p;
    unsigned n;
    SSL_get0_alpn_selected(s, &p, &n);
    /* Protocol names we offered are ours (t->alpn), so point into them. */
    if (!n) return "";
    static const char h11[] = "http/1.1", h2[] = "h2";
    if (n == 8 && memcmp(p, h11, 8) == 0) return h11;
    if (n == 2 && memcmp(p, h2, 2) == 0) return h2;
    return "?";
}

const char *wh_conn_tls_sni(const wh_conn *c)
{
    SSL *s = conn_ssl(c);
    if (!s) return NULL;
    const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    return n ? n : "";
}

bool wh_conn_tls_resumed(const wh_conn *c)
{
    SSL *s = conn_ssl(c);
    return s && SSL_session_reused(s);
}

#endif
