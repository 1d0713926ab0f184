/* Private to src/net: structures shared by conn.c, netloop.c, listener.c,
 * connect.c and udp.c. Other layers use net_internal.h. */
#ifndef WH_NET_PRIV_H
#define WH_NET_PRIV_H

#include "net/net_internal.h"

typedef struct wh__clink {
    struct wh__clink *prev, *next;
} wh__clink;

static inline void wh__clink_init(wh__clink *h)
{
    h->prev = h->next = h;
}
static inline void wh__clink_del(wh__clink *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}
static inline void wh__clink_add_tail(wh__clink *h, wh__clink *l)
{
    l->prev = h->prev;
    l->next = h;
    h->prev->next = l;
    h->prev = l;
}

typedef struct wh__netloop wh__netloop;
typedef struct wh__proxy_cfg wh__proxy_cfg; /* proxy_stage.c */

/* Callbacks + buffer limits, interned per loop so a connection carries one
 * pointer instead of a 48-byte copy (idle memory per connection matters at
 * 100k connections). Profiles live until the loop is freed; there are as
 * many as distinct (callbacks, limits) combinations, i.e. a handful. */
typedef struct wh__prof {
    struct wh__prof *next;
    wh__netloop *nl;
    wh_conn_cbs cbs;
    size_t read_buf_size, read_buf_max, high_wm, low_wm;
    const wh__proxy_cfg *proxy; /* wh_net_opts.proxy_protocol: conns start in the PROXY stage */
    bool proxy_stage;           /* the loop's PROXY stage profile (proxy_stage.c) */
    struct wh_tls_ctx *tls;     /* wh_net_opts.tls: a TLS handshake before on_open */
} wh__prof;

/* Read buffer for bytes on_read left unconsumed (none while idle). */
typedef struct wh__rbuf {
    size_t start, end, cap;
    char data[];
} wh__rbuf;

/* Connection flags. */
enum {
    WH__C_HELD = 1u << 0,        /* a dispatcher frame will look at the conn when it returns */
    WH__C_PENDING = 1u << 1,     /* in nl->pend (end-of-iteration work) */
    WH__C_DEAD = 1u << 2,        /* finished: fd closed; on_close + free outstanding */
    WH__C_PAUSED = 1u << 3,      /* wh_conn_pause */
    WH__C_BP = 1u << 4,          /* above the high watermark: reading paused */
    WH__C_CLOSING = 1u << 5,     /* orderly close: flush, then finish(0) */
    WH__C_SHUT = 1u << 6,        /* shutdown(SHUT_WR) once the queue drains */
    WH__C_SHUT_DONE = 1u << 7,   /* write side shut down */
    WH__C_EOF = 1u << 8,         /* the peer sent FIN */
    WH__C_WOUT = 1u << 9,        /* waiting for EPOLLOUT */
    WH__C_CONNECTING = 1u << 10, /* outbound connect in progress */
    WH__C_OFFER = 1u << 11,      /* buffered input must be offered to on_read */
    WH__C_FLUSH = 1u << 12,      /* queued output must be flushed */
    WH__C_ABORT = 1u << 13,      /* close with RST (SO_LINGER 0) */
    WH__C_EXT = 1u << 14,        /* c->ud points at a wh__conn_ext, which has the user's ud */
    WH__C_BUSY = 1u << 15,       /* wh_conn_set_busy: mid-exchange for the protocol above */
};

/* Completion-mode state of a conn (conn.c "Completion mode"), kept in
 * io.spare (the watcher's byte for its embedder: no extra bytes per conn). */
enum {
    WH__Q_CQ = 1u << 0,      /* reads and memory writes are completion ops, not readiness */
    WH__Q_RECV = 1u << 1,    /* a recv is in the kernel */
    WH__Q_RCANCEL = 1u << 2, /* ... and its cancel was asked for */
    WH__Q_SEND = 1u << 3,    /* a sendmsg is in the kernel (the queue's head is its) */
    WH__Q_DRAINED = 1u << 4, /* the last recv left the socket empty */
    WH__Q_ZOMBIE = 1u << 5,  /* completed (on_close ran); freed at the ops' last completions */
    WH__Q_CHAIN = 1u << 6,   /* a send -> close chain is in the kernel: the fd is
                              * its, and its number may be reused once the close is done */
    WH__Q_MULTI = 1u << 7,   /* the first recv (single-shot) was made: multishot from now on */
};

/* What a few conns need beyond struct wh_conn, which stays small for the
 * many that do not (an idle conn's memory is what 100k conns cost). When
 * WH__C_EXT is set, c->ud points here and the user's ud moves to x->ud
 * (wh__conn_ud); freed with the conn. Today: the client address of a PROXY
 * header (proxy_stage.c; peer.len 0 when there is none) and the TLS
 * transport (xport.h). */
typedef struct wh__conn_ext {
    wh_sockaddr peer; /* the client (after the stage); the socket's peer during it */
    /* During the PROXY stage only (the conn then runs the stage profile, c->ud
     * points here and WH__C_EXT is not yet set): the profile to switch to
     * once the header is read. */
    const wh__prof *prof;
    void *ud;             /* the user's ud (wh__conn_ud) */
    int reason;           /* wh_proxy_reject for the stage's on_close; 0 = none */
    struct wh__xport *xp; /* the conn's transport (TLS, xport.h); NULL = plain socket */
} wh__conn_ext;

/* 80 bytes (WH__CONN_SIZE_MAX): with its 8-byte watcher-table entry and
 * 4-byte fd-map entry an idle plain keep-alive conn costs 92 bytes of user
 * space, inside issue 15's budget of 96. A field added here must come out
 * of something else. */
struct wh_conn {
    wh__iow io; /* class watcher (nl->io_cls): io.fd is the socket */
    union {
        uint32_t act_tick; /* wheel tick of the last I/O (while alive) */
        int32_t err;       /* error for on_close (once DEAD; no timeout then) */
    };
    uint16_t tmo_ticks; /* timeout in ticks, 0 = none (max 65535: ~109 min) */
    uint16_t flags;
    wh__clink link; /* timeout wheel slot, or nl->untimed */
    const wh__prof *prof;
    void *ud; /* the user's; or the wh__conn_ext (WH__C_EXT, PROXY stage) */
    void *data;
    wh__rbuf *rbuf;
    wh__wq *wq;
};
#define WH__CONN_SIZE_MAX 80
_Static_assert(sizeof(struct wh_conn) <= WH__CONN_SIZE_MAX,
               "issue 15: idle memory per conn (struct + 12 B of loop tables) <= 96 B");

/* The conn's extension, or NULL. */
#define WH__EXT(c) (((c)->flags & WH__C_EXT) ? (wh__conn_ext *)(c)->ud : (wh__conn_ext *)NULL)

/* A conn's transport (xport.h), NULL for a plain socket: kept in the
 * conn's extension, so a plain conn pays one flag test and no memory. */
#define WH__XP(c)                                                                                  \
    (((c)->flags & WH__C_EXT) ? ((wh__conn_ext *)(c)->ud)->xp : (struct wh__xport *)NULL)

/* The ud the user gave for c's callbacks (a flag test, no load, for plain conns). */
static inline void *wh__conn_ud(const wh_conn *c)
{
    return (c->flags & WH__C_EXT) ? ((wh__conn_ext *)c->ud)->ud : c->ud;
}

typedef struct wh__lvec {
    void **v;
    uint32_t n, cap;
} wh__lvec;

/* One entry of wh__netloop.peer_cache. */
#define WH__PEER_CACHE 256u
typedef struct wh__peer_ent {
    const wh_conn *c;
    wh_sockaddr addr;
} wh__peer_ent;

struct wh__netloop {
    wh_loop *loop;
    wh__net_counters *ctr; /* never NULL: points at own when unset */
    wh__net_counters own;
    wh__prof *profs;
    wh__lvec pend; /* conns with end-of-iteration work */
    wh__lvec udps; /* UDP sockets with sends to flush */
    bool defer_armed;
    char *scratch; /* shared read buffer: bytes on_read consumes never need a private buffer */
    size_t scratch_cap;
    size_t nconns;
    /* Timeout wheel: conn->link sits in wheel[deadline % SIZE] (or in
     * untimed); refreshing a timeout only stores act_tick. */
    wh__clink wheel[WH__NET_WHEEL_SIZE];
    wh__clink untimed;
    size_t ntimed;
    uint32_t last_tick;
    wh_timer timer;
    bool timer_on;
    /* Listeners waiting out EMFILE: resumed when a conn closes. */
    wh__lvec backoff;
    /* wh__net_set_unbusy_hook: told when a conn stops being busy. */
    void (*on_unbusy)(wh_conn *c, void *ud);
    void *on_unbusy_ud;
    wh_conn *reading; /* conn whose on_read is running (wh_conn_set_cbs) */
    /* wh__prof_like's last answer: a protocol that takes over each new
     * conn (the HTTP server in on_open) asks the same question every time,
     * and the profile search was a tenth of a short connection's
     * instructions. Profiles live as long as the netloop. */
    const wh__prof *like_from, *like_to;
    wh_conn_cbs like_cbs;
    /* The conn whose last read in this dispatch emptied the kernel's receive
     * queue (a short read): closing it needs no lingering read. Cleared when
     * the dispatch returns, so it never outlives what it says. */
    wh_conn *drained;
    /* Set by a listener around its accept callback (listener.c): the fd just
     * accepted and, if reading it at once is worth trying, the listener's
     * score of how often that found a request (wh__conn_adopt_accepted). */
    int accept_fd;
    uint8_t *accept_spec;
    wh_sockaddr peer_tmp; /* wh_conn_peer's result */
    /* Peer addresses looked up (getpeername) for open conns, by fd: an
     * access log asking on every request of a keep-alive conn costs one
     * syscall per conn, not per request, and no conn carries the 112 bytes.
     * Allocated on first use; an entry belongs to conn c until c is freed. */
    struct wh__peer_ent *peer_cache;
    wh__prof proxy_prof; /* PROXY stage profile (proxy_stage.c); .nl NULL until first use */
    /* Connection slab: free list threaded through dead conns, carved from
     * blocks that live as long as the loop (no malloc header per conn). */
    void *conn_free;
    wh__lvec conn_blocks;
    /* Small cache of write queue headers (hot path: no malloc). */
    wh__wq *wq_cache[32];
    unsigned nwq_cache;
    char *xbuf;     /* transports' shared buffer (xport.h), made on first use */
    uint8_t io_cls; /* the loop's watcher class for conns (wh__conn_io_cb) */
    /* Completion I/O (conn.c, listener.c): the kinds of the recv, send and
     * accept ops; 0 when this loop uses readiness only. */
    uint8_t cq_recv, cq_send, cq_accept, cq_close;
    bool tearing; /* netloop_free runs: completions arm nothing new */
    /* A closing chain posts one completion, not two (wh__cq_send_close
     * said 1: the ring skips a successful send's CQE). */
    bool cq_chain1;
};

/* The loop's net state, created on first use; NULL only on -ENOMEM. */
wh__netloop *wh__netloop_get(wh_loop *loop);
/* Memory for one wh_conn from the loop's slab; NULL on -ENOMEM. */
wh_conn *wh__conn_alloc(wh__netloop *nl);
/* Drops c's peer_cache entry (c is freed, or moves to another loop). */
void wh__peer_forget(wh__netloop *nl, const wh_conn *c);
/* Bytes held for conns: the slab's blocks (or one struct per live conn
 * where the slab is off). For the idle-memory test. */
size_t wh__net_conn_bytes(const wh__netloop *nl);
/* Returns a conn's memory to the slab. */
void wh__conn_dealloc(wh__netloop *nl, wh_conn *c);
/* Interns cbs + opts for nl. NULL on -ENOMEM. */
const wh__prof *wh__prof_get(wh__netloop *nl, const wh_conn_cbs *cbs, const wh_net_opts *o);
/* The profile on nl with cbs and the buffer limits of `like` (a connection
 * that changes callbacks or loops keeps its limits); NULL on -ENOMEM. */
const wh__prof *wh__prof_like(wh__netloop *nl, const wh_conn_cbs *cbs, const wh__prof *like);
/* Appends p to v; 0 or -ENOMEM. */
int wh__lvec_push(wh__lvec *v, void *p);
/* Makes sure the end-of-iteration task will run. */
void wh__netloop_arm(wh__netloop *nl);
/* Current wheel tick. */
static inline uint32_t wh__net_tick(const wh__netloop *nl)
{
    return (uint32_t)(wh_loop_now(nl->loop) / WH__NET_TICK_MS);
}
/* Puts c in the wheel (or untimed) according to c->tmo_ticks/act_tick. */
void wh__wheel_place(wh__netloop *nl, wh_conn *c);

/* conn.c */
/* Allocates a conn around fd (not yet watching); NULL on -ENOMEM. */
wh_conn *wh__conn_new(wh__netloop *nl, int fd, const wh__prof *p, void *ud);
/* Ends the connection with err (0 orderly, <0 errno); idempotent. */
void wh__conn_finish(wh_conn *c, int err);
/* Runs the end-of-iteration work for c (nl->pend processing). */
void wh__conn_pending_run(wh_conn *c);
/* Drops the hold taken by a dispatcher frame; completes c if it died. */
void wh__conn_release(wh_conn *c, unsigned prev_held);
/* Recomputes the io interest from the flags. */
void wh__conn_update_io(wh_conn *c);
/* Event callback for connections. */
void wh__conn_io_cb(wh__iow *w, unsigned events, void *nl);
/* Completion callbacks of a conn's recv and send ops (wh__cq_*). */
void wh__conn_cq_recv(void *cookie, int res, unsigned flags, const char *buf);
void wh__conn_cq_send(void *cookie, int res, unsigned flags, const char *buf);
void wh__conn_cq_close(void *cookie, int res, unsigned flags, const char *buf);
/* Starts a fresh conn: watch + on_open (HELD by the caller). */
void wh__conn_start(wh_conn *c);
/* Starts an accepted conn once nothing comes before its protocol any more
 * (after the PROXY stage): its TLS handshake if its profile has one, else
 * wh__conn_start. */
void wh__conn_open(wh_conn *c);

/* proxy_stage.c: the PROXY protocol stage of accepted conns. */
/* Options -> a stage configuration for a profile (compiled trusted list);
 * NULL with *err set (-EINVAL, -ENOMEM) on failure. */
wh__proxy_cfg *wh__proxy_cfg_new(const wh_net_opts *o, int *err);
/* True when cfg (NULL = stage off) is what o asks for. */
bool wh__proxy_cfg_same(const wh__proxy_cfg *cfg, const wh_net_opts *o);
void wh__proxy_cfg_free(wh__proxy_cfg *cfg);
/* Starts the stage on a new conn whose profile has proxy set, instead of
 * wh__conn_start (HELD by the caller). on_open runs once the header is in. */
void wh__proxy_stage_begin(wh_conn *c);
/* A readiness event for a conn in the stage. True when the stage just ended
 * (on_open ran) and protocol bytes may be waiting: read them now. */
bool wh__proxy_stage_io(wh_conn *c, unsigned events);

/* listener.c: a conn closed on nl, retry listeners in back-off. */
void wh__listeners_fd_freed(wh__netloop *nl);
/* listener.c: completion of a listener's multishot accept op. */
void wh__listener_accept_done(void *cookie, int res, unsigned flags, const char *buf);
/* udp.c: flush queued datagrams of u (end of iteration). */
void wh__udp_flush_pending(void *u);

#endif
