/* The PROXY protocol stage of accepted connections (wh_net_opts.proxy_protocol).
 *
 * A balancer that speaks the PROXY protocol writes one header (v1 or v2,
 * proxy.c parses it) before the client's first byte. The stage runs on the
 * raw socket after accept and before anything else the connection does:
 * before on_open, before any protocol (and before any transport layered on
 * the connection, e.g. TLS, whose ClientHello follows the header on the
 * wire). It must never take a byte that belongs to the protocol, so it
 * peeks (MSG_PEEK) at what arrived and, once the header is complete,
 * consumes exactly its length; everything after stays in the kernel for the
 * normal read path. Peeking leaves the socket readable, so while the stage
 * waits for the rest of a header the conn is watched edge-triggered: it
 * wakes when more bytes arrive, not for the bytes already seen.
 *
 * While in the stage the conn runs the loop's stage profile (its on_close
 * only counts and frees), with c->ud pointing at a wh__conn_ext that keeps
 * the real profile and ud (WH__C_EXT is set only after the stage). When the header is in: the real
 * profile is put back, the client address (if the header names one) stays in the ext for
 * wh_conn_peer, and wh__conn_start runs on_open. Refusals (untrusted peer,
 * missing, malformed, unknown command) close at once; a header that does not
 * complete within proxy_timeout_ms is closed by the conn's timeout (the stage
 * does no I/O that refreshes it, so it is a deadline for the whole header:
 * a slow sender gains nothing by trickling bytes). The protocol above never
 * sees a refused conn: no on_open, no on_close.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/net_priv.h"
#include "net/proxy_internal.h"

struct wh__proxy_cfg {
    uint32_t timeout_ms;
    void (*on_reject)(wh_loop *loop, const wh_sockaddr *peer, int reason, void *ud);
    void *ud;
    char *trusted_str; /* the option's text, to tell profiles apart; NULL = any peer */
    size_t ntrusted;
    wh__cidr trusted[];
};

static uint32_t opt_timeout(const wh_net_opts *o)
{
    return o->proxy_timeout_ms ? o->proxy_timeout_ms : wh__net_defaults.proxy_timeout_ms;
}

wh__proxy_cfg *wh__proxy_cfg_new(const wh_net_opts *o, int *err)
{
    int n = 0;
    if (o->proxy_trusted && (n = wh__cidr_parse(o->proxy_trusted, NULL, 0)) < 0) {
        *err = n;
        return NULL;
    }
    wh__proxy_cfg *cfg = calloc(1, sizeof(*cfg) + (size_t)n * sizeof(wh__cidr));
    if (!cfg || (o->proxy_trusted && !(cfg->trusted_str = strdup(o->proxy_trusted)))) {
        free(cfg);
        *err = -ENOMEM;
        return NULL;
    }
    cfg->timeout_ms = opt_timeout(o);
    cfg->on_reject = o->proxy_on_reject;
    cfg->ud = o->proxy_ud;
    cfg->ntrusted = (size_t)n;
    if (n) (void)wh__cidr_parse(o->proxy_trusted, cfg->trusted, (size_t)n);
    return cfg;
}

bool wh__proxy_cfg_same(const wh__proxy_cfg *cfg, const wh_net_opts *o)
{
    if (!o->proxy_protocol || !cfg) return !o->proxy_protocol && !cfg;
    if (cfg->timeout_ms != opt_timeout(o) || cfg->on_reject != o->proxy_on_reject ||
        cfg->ud != o->proxy_ud)
        return false;
    if (!cfg->trusted_str || !o->proxy_trusted) return !cfg->trusted_str && !o->proxy_trusted;
    return strcmp(cfg->trusted_str, o->proxy_trusted) == 0;
}

void wh__proxy_cfg_free(wh__proxy_cfg *cfg)
{
    if (!cfg) return;
    free(cfg->trusted_str);
    free(cfg);
}

/* The stage profile's on_close: the conn ended inside the stage (refused,
 * timed out, or closed by a graceful stop or loop teardown). */
static void stage_on_close(wh_conn *c, int err, void *ud)
{
    wh__conn_ext *x = ud;
    if (!x) return; /* out of memory at begin */
    int reason = x->reason;
    if (!reason && err == -ETIMEDOUT) reason = WH_PROXY_TIMEOUT;
    const wh__proxy_cfg *cfg = x->prof->proxy;
    if (reason && cfg->on_reject) cfg->on_reject(wh_conn_loop(c), &x->peer, reason, cfg->ud);
    free(x);
}

static const wh__prof *stage_prof(wh__netloop *nl)
{
    wh__prof *p = &nl->proxy_prof;
    if (!p->nl) {
        p->nl = nl;
        p->cbs.on_close = stage_on_close;
        /* Limits are never used (the stage neither reads into buffers nor
         * writes); keep them sane for anything that looks. */
        p->read_buf_size = p->read_buf_max = wh__net_defaults.read_buf_size;
        p->high_wm = wh__net_defaults.high_watermark;
        p->low_wm = wh__net_defaults.low_watermark;
        p->proxy_stage = true;
    }
    return p;
}

static void refuse(wh_conn *c, wh__conn_ext *x, int reason, int err)
{
    x->reason = reason;
    wh__conn_finish(c, err);
}

void wh__proxy_stage_begin(wh_conn *c)
{
    const wh__prof *real = c->prof;
    const wh__proxy_cfg *cfg = real->proxy;
    wh__conn_ext *x = calloc(1, sizeof(*x));
    c->prof = stage_prof(real->nl);
    if (!x) {
        c->ud = NULL;
        wh__conn_finish(c, -ENOMEM);
        return;
    }
    x->prof = real;
    x->ud = c->ud;
    c->ud = x;
    /* The socket's peer: for the trust check, and for the reject hook
     * (the fd is gone by the time on_close reports a timeout). */
    if (cfg->ntrusted || cfg->on_reject) (void)wh__sock_peer(c->io.fd, &x->peer);
    if (cfg->ntrusted && x->peer.u.sa.family != AF_UNIX &&
        !wh__cidr_match(cfg->trusted, cfg->ntrusted, &x->peer)) {
        refuse(c, x, WH_PROXY_UNTRUSTED, -EPERM);
        return;
    }
    wh_conn_set_timeout(c, cfg->timeout_ms);
    /* A balancer writes the header right after connecting: it is often
     * here already. Look before registering: a header read now saves the
     * wake-up and the edge-triggered registration. */
    (void)wh__proxy_stage_io(c, 0);
    if ((c->flags & WH__C_DEAD) || !c->prof->proxy_stage) return;
    int rc = wh__iow_set(c->prof->nl->loop, &c->io, WH_IO_READ | WH_IO_EDGE);
    if (rc < 0) wh__conn_finish(c, rc);
}

bool wh__proxy_stage_io(wh_conn *c, unsigned events)
{
    wh__conn_ext *x = c->ud;
    wh__netloop *nl = c->prof->nl;
    /* Profiles with the stage on make the scratch buffer at least
     * WH__PROXY_MIN_BUF: any header without big TLVs fits; a longer one
     * is refused as malformed by the parser. */
    size_t cap = nl->scratch_cap;
    ssize_t n;
    do
        n = recv(c->io.fd, nl->scratch, cap, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) wh__conn_finish(c, -errno);
        return false;
    }
    if (n == 0) { /* EOF before any byte */
        refuse(c, x, WH_PROXY_MISSING, 0);
        return false;
    }
    wh__proxy_hdr h;
    int r = wh__proxy_parse(nl->scratch, (size_t)n, cap, &h);
    if (r < 0) {
        refuse(c, x, -r, -EPROTO);
        return false;
    }
    if (r == 0) {
        /* A valid beginning. If the peer already half-closed, the rest can
         * never come. Otherwise wait for the edge. */
        if (events & (WH_IO_HUP | WH_IO_ERR)) refuse(c, x, WH_PROXY_MALFORMED, -EPROTO);
        return false;
    }
    /* Consume exactly the header: the peek saw all of it, so this takes
     * those bytes and nothing after them. */
    size_t left = (size_t)r;
    while (left) {
        ssize_t k = recv(c->io.fd, nl->scratch, left, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            wh__conn_finish(c, k < 0 ? -errno : -EPROTO);
            return false;
        }
        left -= (size_t)k;
    }
    __atomic_store_n(&nl->ctr->bytes_in, nl->ctr->bytes_in + (uint64_t)r, __ATOMIC_RELAXED);
    c->prof = x->prof;
    if (h.has_addr) {
        /* The ext stays: c->ud keeps pointing here, x->ud is the user's. */
        x->peer = h.src;
        x->prof = NULL;
        c->flags |= WH__C_EXT;
    } else {
        c->ud = x->ud;
        free(x); /* LOCAL (health checks), UNKNOWN: the socket's peer is the client */
    }
    wh_conn_set_timeout(c, 0); /* on_open (or the TLS handshake) sets its own */
    wh__conn_open(c);          /* level-triggered again, then TLS or on_open */
    return !(c->flags & WH__C_DEAD) && ((size_t)n > (size_t)r || (events & WH_IO_HUP));
}
