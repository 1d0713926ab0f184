/* Per-loop networking state (loop slot WH__SLOT_NET): interned callback
 * profiles, the end-of-iteration work list, the shared read buffer and the
 * connection timeout wheel.
 *
 * Timeout wheel: WH__NET_WHEEL_SIZE slots of WH__NET_TICK_MS each, driven by
 * one repeating loop timer that runs only while some connection has a
 * timeout. A conn sits in slot (deadline % SIZE). I/O only stores the current
 * tick in c->act_tick (no list operation, no syscall); when the wheel reaches
 * a conn's slot it either expires it or moves it to the slot of its real
 * deadline. Deadlines beyond one turn of the wheel simply wait one more turn.
 * Accuracy: a timeout of ms fires between ms and ms + two ticks after the
 * last I/O (plus loop latency); cost per tick is the conns in one slot.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_priv.h"
#include "net/proxy_internal.h"

int wh__lvec_push(wh__lvec *v, void *p)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 16;
        void **nv = realloc(v->v, cap * sizeof(*nv));
        if (!nv) return -ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = p;
    return 0;
}

/* Conns come from per-loop blocks: an idle conn costs sizeof(struct
 * wh_conn) exactly, without malloc's header and rounding, and accept/close
 * do not touch the allocator. Blocks are kept until the loop is freed (a
 * pool sized by the peak number of conns). Under AddressSanitizer plain
 * malloc/free is used, so a use-after-free of a conn is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define WH__CONN_SLAB 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WH__CONN_SLAB 0
#endif
#endif
#ifndef WH__CONN_SLAB
#define WH__CONN_SLAB 1
#endif
#define CONNS_PER_BLOCK 64

wh_conn *wh__conn_alloc(wh__netloop *nl)
{
#if WH__CONN_SLAB
    if (!nl->conn_free) {
        char *blk = malloc(CONNS_PER_BLOCK * sizeof(wh_conn));
        if (!blk || wh__lvec_push(&nl->conn_blocks, blk) < 0) {
            free(blk);
            return NULL;
        }
        for (int i = CONNS_PER_BLOCK - 1; i >= 0; i--) {
            void **slot = (void **)(blk + (size_t)i * sizeof(wh_conn));
            *slot = nl->conn_free;
            nl->conn_free = slot;
        }
    }
    void **c = nl->conn_free;
    nl->conn_free = *c;
    return (wh_conn *)c;
#else
    (void)nl;
    return malloc(sizeof(wh_conn));
#endif
}

void wh__peer_forget(wh__netloop *nl, const wh_conn *c)
{
    /* The fd may already serve a newer conn, whose entry this is not. */
    wh__peer_ent *pe = nl->peer_cache ? &nl->peer_cache[(unsigned)c->io.fd % WH__PEER_CACHE] : NULL;
    if (pe && pe->c == c) pe->c = NULL;
}

void wh__conn_dealloc(wh__netloop *nl, wh_conn *c)
{
    wh__peer_forget(nl, c);
#if WH__CONN_SLAB
    void **slot = (void **)c;
    *slot = nl->conn_free;
    nl->conn_free = slot;
#else
    (void)nl;
    free(c);
#endif
}

size_t wh__net_conn_bytes(const wh__netloop *nl)
{
#if WH__CONN_SLAB
    return (size_t)nl->conn_blocks.n * CONNS_PER_BLOCK * sizeof(wh_conn);
#else
    return nl->nconns * sizeof(wh_conn);
#endif
}

static void conn_abort_cb(wh_conn *c, void *ud)
{
    (void)ud;
    wh_conn_abort(c);
}

static void run_pending(wh_loop *loop, void *arg);

static void netloop_free(void *ptr)
{
    wh__netloop *nl = ptr;
    /* Loop teardown: every conn still open is aborted; its on_close runs
     * here, while the loop is still intact. */
    wh__net_foreach_conn(nl->loop, conn_abort_cb, NULL);
    /* Run the completions the aborts queued (and any earlier ones). */
    for (int rounds = 0; nl->pend.n && rounds < 8; rounds++)
        run_pending(nl->loop, nl);
    /* Ops still in the kernel (io_uring): cancelled and waited for, so the
     * conns they name are freed below, not after. */
    nl->tearing = true;
    wh__cq_quiesce(nl->loop);
    for (int rounds = 0; nl->pend.n && rounds < 8; rounds++)
        run_pending(nl->loop, nl);
    if (nl->timer_on) wh_timer_stop(&nl->timer);
    wh__timer_deinit(&nl->timer);
    for (wh__prof *p = nl->profs; p;) {
        wh__prof *n = p->next;
        wh__proxy_cfg_free((wh__proxy_cfg *)p->proxy);
        free(p);
        p = n;
    }
    for (unsigned i = 0; i < nl->nwq_cache; i++) {
        free(nl->wq_cache[i]->tx);
        free(nl->wq_cache[i]);
    }
    for (uint32_t i = 0; i < nl->conn_blocks.n; i++)
        free(nl->conn_blocks.v[i]);
    free(nl->conn_blocks.v);
    free(nl->pend.v);
    free(nl->udps.v);
    free(nl->backoff.v);
    free(nl->scratch);
    free(nl->peer_cache);
    free(nl->xbuf);
    free(nl);
}

static void wheel_tick(wh_timer *t, void *ud);

/* Completion I/O where the loop has it, unless WH_NET_READINESS is set.
 * Under ThreadSanitizer it is off unless WH_NET_COMPLETION=1: TSan orders
 * threads that talk through sockets by intercepting the socket calls
 * (send on one side, recv on the other), and a completion has no call to
 * intercept, so every hand-over through a socket would be reported as a
 * race (the kernel orders them; TSan cannot see it). */
static bool completion_wanted(void)
{
    if (getenv("WH_NET_READINESS")) return false;
#if defined(__SANITIZE_THREAD__)
    const char *on = getenv("WH_NET_COMPLETION");
    return on && *on == '1';
#else
    return true;
#endif
}

wh__netloop *wh__netloop_get(wh_loop *loop)
{
    wh__netloop *nl = wh__loop_slot(loop, WH__SLOT_NET);
    if (nl) return nl;
    nl = calloc(1, sizeof(*nl));
    if (!nl) return NULL;
    nl->loop = loop;
    nl->ctr = &nl->own;
    nl->accept_fd = -1;
    wh__clink_init(&nl->untimed);
    for (unsigned i = 0; i < WH__NET_WHEEL_SIZE; i++)
        wh__clink_init(&nl->wheel[i]);
    wh__timer_init(loop, &nl->timer, wheel_tick, nl);
    /* Conns embed a bare class watcher (no loop/cb/ud per conn): the loop
     * dispatches them through this one registration. */
    int cls = wh__io_class_add(loop, wh__conn_io_cb, nl);
    if (cls < 0) {
        free(nl);
        return NULL;
    }
    nl->io_cls = (uint8_t)cls;
    /* sendfile(2) has no MSG_NOSIGNAL: a peer that vanished would kill the
     * process with SIGPIPE. Ignore it unless the application installed its
     * own disposition (then it has decided already). */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    /* Completion I/O when the loop has it (io_uring): conn.c. */
    int kr = wh__cq_kind(loop, wh__conn_cq_recv), ks = wh__cq_kind(loop, wh__conn_cq_send);
    int ka = wh__cq_kind(loop, wh__listener_accept_done);
    int kc = wh__cq_kind(loop, wh__conn_cq_close);
    if (kr > 0 && ks > 0 && ka > 0 && kc > 0 && completion_wanted()) {
        nl->cq_recv = (uint8_t)kr;
        nl->cq_send = (uint8_t)ks;
        nl->cq_accept = (uint8_t)ka;
        nl->cq_close = (uint8_t)kc;
    }
    wh__loop_set_slot(loop, WH__SLOT_NET, nl, netloop_free);
    return nl;
}

bool wh__net_completion(wh_loop *loop)
{
    wh__netloop *nl = wh__netloop_get(loop);
    return nl && nl->cq_recv;
}

void wh__net_readiness_only(wh_loop *loop)
{
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return;
    nl->cq_recv = nl->cq_send = nl->cq_accept = nl->cq_close = 0;
}

const wh__prof *wh__prof_like(wh__netloop *nl, const wh_conn_cbs *cbs, const wh__prof *like)
{
    if (nl->like_from == like && !memcmp(&nl->like_cbs, cbs, sizeof(*cbs))) return nl->like_to;
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.read_buf_size = like->read_buf_size;
    o.read_buf_max = like->read_buf_max;
    o.high_watermark = like->high_wm;
    o.low_watermark = like->low_wm;
    const wh__prof *p = wh__prof_get(nl, cbs, &o);
    if (p) {
        nl->like_from = like;
        nl->like_to = p;
        nl->like_cbs = *cbs;
    }
    return p;
}

const wh__prof *wh__prof_get(wh__netloop *nl, const wh_conn_cbs *cbs, const wh_net_opts *o)
{
    wh__prof key;
    wh_net_opts d;
    if (!o) {
        wh_net_opts_init(&d);
        o = &d;
    }
    memset(&key, 0, sizeof(key));
    if (cbs) key.cbs = *cbs;
    const wh_net_opts *def = &wh__net_defaults;
    key.read_buf_size = o->read_buf_size ? o->read_buf_size : def->read_buf_size;
    key.read_buf_max = o->read_buf_max ? o->read_buf_max : def->read_buf_max;
    if (key.read_buf_max < key.read_buf_size) key.read_buf_max = key.read_buf_size;
    key.high_wm = o->high_watermark ? o->high_watermark : def->high_watermark;
    key.low_wm = o->low_watermark <= key.high_wm ? o->low_watermark : key.high_wm;
    key.tls = o->tls;
    for (wh__prof *p = nl->profs; p; p = p->next) {
        if (!memcmp(&p->cbs, &key.cbs, sizeof(key.cbs)) && p->read_buf_size == key.read_buf_size &&
            p->read_buf_max == key.read_buf_max && p->high_wm == key.high_wm &&
            p->low_wm == key.low_wm && wh__proxy_cfg_same(p->proxy, o) && p->tls == o->tls)
            return p;
    }
    size_t scratch = key.read_buf_size;
    if (o->proxy_protocol && scratch < WH__PROXY_MIN_BUF)
        scratch = WH__PROXY_MIN_BUF; /* the PROXY stage peeks a whole header into it */
    if (scratch > nl->scratch_cap) {
        char *s = realloc(nl->scratch, scratch);
        if (!s) return NULL;
        nl->scratch = s;
        nl->scratch_cap = scratch;
    }
    if (o->proxy_protocol) {
        int err;
        if (!(key.proxy = wh__proxy_cfg_new(o, &err))) return NULL;
    }
    wh__prof *p = malloc(sizeof(*p));
    if (!p) {
        wh__proxy_cfg_free((wh__proxy_cfg *)key.proxy);
        return NULL;
    }
    *p = key;
    p->nl = nl;
    p->next = nl->profs;
    nl->profs = p;
    return p;
}

/* End of the loop iteration: flushes writes made outside callbacks, offers
 * buffered input, completes closed conns, flushes UDP sends. */
static void run_pending(wh_loop *loop, void *arg)
{
    wh__netloop *nl = arg;
    (void)loop;
    nl->defer_armed = false;
    /* Swap out the list: work queued while we run goes to the next round. */
    wh__lvec work = nl->pend;
    memset(&nl->pend, 0, sizeof(nl->pend));
    for (uint32_t i = 0; i < work.n; i++)
        wh__conn_pending_run(work.v[i]);
    if (!nl->pend.v) {
        work.n = 0;
        nl->pend = work; /* keep the allocation */
    } else {
        free(work.v);
    }
    wh__lvec uw = nl->udps;
    memset(&nl->udps, 0, sizeof(nl->udps));
    for (uint32_t i = 0; i < uw.n; i++)
        wh__udp_flush_pending(uw.v[i]);
    if (!nl->udps.v) {
        uw.n = 0;
        nl->udps = uw;
    } else {
        free(uw.v);
    }
}

void wh__netloop_arm(wh__netloop *nl)
{
    if (nl->defer_armed) return;
    if (wh_loop_defer(nl->loop, run_pending, nl) == 0) nl->defer_armed = true;
}

int wh__net_set_counters(wh_loop *loop, wh__net_counters *c)
{
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    nl->ctr = c ? c : &nl->own;
    return 0;
}

size_t wh_net_conn_count(const wh_loop *loop)
{
    const wh__netloop *nl = wh__loop_slot(loop, WH__SLOT_NET);
    return nl ? nl->nconns : 0;
}

/* Moves every entry of head onto tmp and empties head, so callbacks may
 * unlink or re-add entries anywhere while the caller walks tmp. */
static void clink_take(wh__clink *head, wh__clink *tmp)
{
    tmp->next = head->next;
    tmp->prev = head->prev;
    tmp->next->prev = tmp;
    tmp->prev->next = tmp;
    wh__clink_init(head);
}

static void foreach_list(wh__clink *head, void (*fn)(wh_conn *c, void *ud), void *ud)
{
    /* fn may close any conn (which unlinks it). Move the list aside and pop
     * one at a time, putting each back first, so removal anywhere is safe. */
    wh__clink tmp;
    if (head->next == head) return;
    clink_take(head, &tmp);
    while (tmp.next != &tmp) {
        wh__clink *l = tmp.next;
        wh__clink_del(l);
        wh__clink_add_tail(head, l);
        wh_conn *c = (wh_conn *)((char *)l - offsetof(wh_conn, link));
        fn(c, ud);
    }
}

void wh__net_foreach_conn(wh_loop *loop, void (*fn)(wh_conn *c, void *ud), void *ud)
{
    wh__netloop *nl = wh__loop_slot(loop, WH__SLOT_NET);
    if (!nl) return;
    foreach_list(&nl->untimed, fn, ud);
    for (unsigned i = 0; i < WH__NET_WHEEL_SIZE; i++)
        foreach_list(&nl->wheel[i], fn, ud);
}

void wh__wheel_place(wh__netloop *nl, wh_conn *c)
{
    wh__clink_del(&c->link);
    if (!c->tmo_ticks) {
        wh__clink_add_tail(&nl->untimed, &c->link);
        return;
    }
    uint32_t deadline = c->act_tick + c->tmo_ticks;
    wh__clink_add_tail(&nl->wheel[deadline % WH__NET_WHEEL_SIZE], &c->link);
    if (!nl->timer_on) {
        nl->last_tick = wh__net_tick(nl);
        wh_timer_start(&nl->timer, WH__NET_TICK_MS, WH__NET_TICK_MS);
        nl->timer_on = true;
    }
}

static void wheel_slot(wh__netloop *nl, unsigned slot, uint32_t now)
{
    wh__clink *head = &nl->wheel[slot];
    wh__clink tmp;
    if (head->next == head) return;
    clink_take(head, &tmp);
    while (tmp.next != &tmp) {
        wh__clink *l = tmp.next;
        wh_conn *c = (wh_conn *)((char *)l - offsetof(wh_conn, link));
        uint32_t deadline = c->act_tick + c->tmo_ticks;
        if ((int32_t)(now - deadline) >= 0) {
            /* Expired: put it back in a real list first, finish unlinks it. */
            wh__clink_del(l);
            wh__clink_add_tail(&nl->untimed, l);
            unsigned held = c->flags & WH__C_HELD;
            c->flags |= WH__C_HELD;
            wh__conn_finish(c, -ETIMEDOUT);
            wh__conn_release(c, held);
        } else {
            wh__clink_del(l);
            wh__clink_add_tail(&nl->wheel[deadline % WH__NET_WHEEL_SIZE], l);
        }
    }
}

static void wheel_tick(wh_timer *t, void *ud)
{
    wh__netloop *nl = ud;
    (void)t;
    uint32_t now = wh__net_tick(nl);
    uint32_t n = now - nl->last_tick;
    if (n > WH__NET_WHEEL_SIZE) n = WH__NET_WHEEL_SIZE;
    for (uint32_t i = 1; i <= n; i++)
        wheel_slot(nl, (nl->last_tick + i) % WH__NET_WHEEL_SIZE, now);
    nl->last_tick = now;
    if (nl->ntimed == 0 && nl->timer_on) {
        wh_timer_stop(&nl->timer);
        nl->timer_on = false;
    }
}

int wh__net_set_unbusy_hook(wh_loop *loop, void (*fn)(wh_conn *c, void *ud), void *ud)
{
    wh__netloop *nl = wh__netloop_get(loop);
    if (!nl) return -ENOMEM;
    nl->on_unbusy = fn;
    nl->on_unbusy_ud = ud;
    return 0;
}
