/* Broadcast hubs: one logical group of WebSockets spread over whatever loops
 * (threads) its members live on. The hub knows no host: a loop joins the
 * hub's loop list the first time one of its WebSockets joins, so a hub spans
 * a wh_server's workers, a single loop of your own, or anything between.
 *
 * No lock on the member side. Each loop keeps the hub's members that live on
 * it (wh__ws_loop.hubs), touched only by that loop's thread, so join/leave
 * are list operations. A broadcast encodes the frame once into a refcounted
 * buffer and appends it to each loop's pending queue. One drain task per
 * loop is in flight at a time (wh_loop_post): the append that finds none
 * posts it, and it takes one batch per loop iteration until the queue is
 * empty, so a flood costs one post per loop iteration, not one per message
 * per loop. There each member gets the frame by reference
 * (wh_conn_write_ref, no copy per connection). A per-loop holder counts that
 * loop's outstanding writes with a plain integer, so the shared atomic
 * refcount is touched once per loop, not once per connection.
 *
 * Memory has three bounds, all in bytes of real memory (allocations and the
 * allocator's overhead, not payload):
 *  - pending (max_pending): what a loop has been sent but not yet processed.
 *    Past it, a broadcast fails with -EAGAIN and reaches no loop, so a loop
 *    that falls behind (or a producer faster than the loops) cannot queue
 *    without bound, and no member ever silently misses one message.
 *  - queued (max_queued): what one member's write queue holds. A member about
 *    to pass it is dropped (1008); its queue is freed at once.
 *  - loop (max_loop_queued): what the queued broadcasts of all members on one
 *    loop hold together. Many silent members each under max_queued would
 *    otherwise add up without bound, and one batch of small messages fanned
 *    out to many members costs a segment per member per message before any
 *    of it reaches a socket (writes are flushed when the task returns). Past
 *    it the loop stops handing out broadcasts for one iteration, so the
 *    writes flush and members that read free their share; if the loop then
 *    still holds more than 3/4 of it, the members holding more than an even
 *    share of that are dropped (1008).
 *    The rest of the batch waits; producers see -EAGAIN once max_pending fills.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_internal.h"
#include "ws/ws_internal.h"

/* A member this far behind is not coming back: a burst of broadcasts may
 * legitimately pass the 1 MiB high watermark, a stalled reader passes this. */
#define DEFAULT_MAX_QUEUED (8u << 20)
/* A loop this far behind is overloaded; telling producers (-EAGAIN) beats
 * hiding the delay in a queue that only grows. About 30 messages of 64 KiB
 * (a loop descheduled for a few milliseconds on a busy machine must not fail
 * a paced sender) or 14,000 chat lines (what a member that joins just after
 * a flood receives at once, before TCP's window has opened, must stay well
 * under max_queued). The messages are shared by every loop's queue, so this
 * is close to the total too. */
#define DEFAULT_MAX_PENDING (2u << 20)
/* Four members at max_queued; or 1,000 members 32 KiB behind each. */
#define DEFAULT_MAX_LOOP_QUEUED (32u << 20)
/* glibc's per-block overhead, rounded up (a chunk header plus alignment). */
#define MALLOC_OVERHEAD 16u

typedef struct bmsg {
    wh_ws_hub *hub;
    atomic_uint refs; /* one per loop queue it sits in, +1 while broadcasting */
    size_t len;
    uint8_t frame[]; /* header + payload */
} bmsg;

typedef struct bhold {
    bmsg *m;
    wh__ws_hub_entry *e; /* the loop's member list, whose mem we count into */
    size_t refs;         /* writes still queued on this loop (+1 while sending) */
    size_t cost;         /* what this holder and its message count in e->mem */
} bhold;

/* One loop of the hub: its queue of broadcasts not yet handed to members.
 * The list of loops only grows (prepend with a CAS), so a broadcast from any
 * thread walks it without a lock, and two nodes keep their relative order
 * forever: locking queues in list order cannot deadlock. */
typedef struct hub_loop {
    wh_loop *loop;
    struct hub_loop *next;
    pthread_mutex_t mu;
    bmsg **q; /* FIFO: appended by producers, taken whole by drain_task */
    size_t qn, qcap;
    size_t qbytes; /* real memory the queued messages stand for */
    /* qbytes, readable without the lock: a producer facing a full queue
     * fails without taking any lock, so producers retrying in a flood do
     * not starve the loop's drain of its mutex. */
    atomic_size_t qbytes_seen;
    bool posted;  /* a drain_task is on its way or working; cleared when it finds q empty */
    bmsg **spare; /* the array drain_task gave back, reused by producers */
    size_t spare_cap;
    /* Loop thread only: the batch drain_task took from q, delivered up to
     * held_i (the rest waits while the loop is past max_loop_queued). */
    bmsg **held;
    size_t held_n, held_i, held_cap;
    bool waited; /* paused one iteration for the writes to flush */
    /* Members on this loop, for producers: a loop whose members all left is
     * skipped, so it costs nothing and its lag never refuses a broadcast. */
    atomic_size_t members;
    bool skip; /* the broadcast holding mu leaves this loop out (no members) */
} hub_loop;

struct wh_ws_hub {
    size_t max_queued;  /* set before members join; read-only afterwards */
    size_t max_pending; /* likewise */
    size_t max_loop_queued;
    atomic_size_t count;
    hub_loop *_Atomic loops;
    atomic_uint nloops;
};

/* What a member pins for one broadcast beyond the frame bytes: its write
 * queue segment, plus the loop's holder and the message header. The last two
 * are shared with the other members on the loop, but a member that alone
 * stops reading keeps them alive alone, so each member is charged in full. */
#define MEMBER_MSG_COST                                                                            \
    (WH__WQ_SEG_COST + sizeof(bhold) + sizeof(bmsg) + WH__WS_MAX_HEADER + 2 * MALLOC_OVERHEAD)

/* Real memory a pending message stands for in one loop's queue. */
static size_t pending_cost(size_t frame_len)
{
    return sizeof(bmsg) + frame_len + MALLOC_OVERHEAD + sizeof(bmsg *);
}

int wh_ws_hub_new(wh_ws_hub **out)
{
    if (!out) return -EINVAL;
    wh_ws_hub *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    atomic_init(&h->loops, NULL);
    atomic_init(&h->nloops, 0);
    h->max_queued = DEFAULT_MAX_QUEUED;
    h->max_pending = DEFAULT_MAX_PENDING;
    h->max_loop_queued = DEFAULT_MAX_LOOP_QUEUED;
    atomic_init(&h->count, 0);
    *out = h;
    return 0;
}

void wh_ws_hub_set_max_queued(wh_ws_hub *hub, size_t bytes)
{
    hub->max_queued = bytes ? bytes : DEFAULT_MAX_QUEUED;
}

void wh_ws_hub_set_max_pending(wh_ws_hub *hub, size_t bytes)
{
    hub->max_pending = bytes ? bytes : DEFAULT_MAX_PENDING;
}

void wh_ws_hub_set_max_loop_queued(wh_ws_hub *hub, size_t bytes)
{
    hub->max_loop_queued = bytes ? bytes : DEFAULT_MAX_LOOP_QUEUED;
}

static void bmsg_unref(bmsg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) free(m);
}

void wh_ws_hub_free(wh_ws_hub *hub)
{
    /* Member lists live in the loops' state and go with the loops; after the
     * host stopped nothing refers to the hub any more. A queue can still hold
     * messages if its loop was freed before it ran the drain (a failed post). */
    if (!hub) return;
    for (hub_loop *l = atomic_load(&hub->loops), *next; l; l = next) {
        next = l->next;
        for (size_t i = 0; i < l->qn; i++)
            bmsg_unref(l->q[i]);
        for (size_t i = l->held_i; i < l->held_n; i++)
            bmsg_unref(l->held[i]);
        free(l->q);
        free(l->held);
        free(l->spare);
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    free(hub);
}

/* First member on this loop: the loop joins the hub's broadcast list. */
static hub_loop *hub_add_loop(wh_ws_hub *hub, wh_loop *loop)
{
    hub_loop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    atomic_init(&l->qbytes_seen, 0);
    atomic_init(&l->members, 0);
    l->loop = loop;
    l->next = atomic_load_explicit(&hub->loops, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&hub->loops, &l->next, l, memory_order_release,
                                                  memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&hub->nloops, 1, memory_order_relaxed);
    return l;
}

size_t wh_ws_hub_count(const wh_ws_hub *hub)
{
    return atomic_load_explicit(&((wh_ws_hub *)hub)->count, memory_order_relaxed);
}

static wh__ws_hub_entry *entry_find(wh__ws_loop *wl, const wh_ws_hub *hub)
{
    for (wh__ws_hub_entry *e = wl->hubs; e; e = e->next)
        if (e->hub == hub) return e;
    return NULL;
}

void wh__ws_hub_unlink(wh_ws *ws)
{
    wh__ws_hub_entry *e = ws->hentry;
    if (!e) return;
    if (ws->h_prev)
        ws->h_prev->h_next = ws->h_next;
    else
        e->head = ws->h_next;
    if (ws->h_next) ws->h_next->h_prev = ws->h_prev;
    e->n--;
    atomic_fetch_sub_explicit(&e->hub->count, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&((hub_loop *)e->hl)->members, 1, memory_order_relaxed);
    ws->hentry = NULL;
    ws->h_prev = ws->h_next = NULL;
}

int wh_ws_hub_join(wh_ws_hub *hub, wh_ws *ws)
{
    if (ws->hentry && ws->hentry->hub == hub) return 0;
    wh__ws_hub_unlink(ws);
    wh__ws_loop *wl = ws->wl;
    wh__ws_hub_entry *e = entry_find(wl, hub);
    if (!e) {
        if (!(e = calloc(1, sizeof *e))) return -ENOMEM;
        if (!(e->hl = hub_add_loop(hub, wl->loop))) {
            free(e);
            return -ENOMEM;
        }
        e->hub = hub;
        e->next = wl->hubs;
        wl->hubs = e;
    }
    ws->hentry = e;
    ws->h_prev = NULL;
    ws->h_next = e->head;
    if (e->head) e->head->h_prev = ws;
    e->head = ws;
    e->n++;
    atomic_fetch_add_explicit(&hub->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&((hub_loop *)e->hl)->members, 1, memory_order_relaxed);
    return 0;
}

void wh_ws_hub_leave(wh_ws *ws)
{
    wh__ws_hub_unlink(ws);
}

static void bhold_put(bhold *h)
{
    if (--h->refs == 0) {
        h->e->mem -= h->cost;
        bmsg_unref(h->m);
        free(h);
    }
}

/* A member's write of the frame finished or was dropped. */
static void bhold_done(void *arg)
{
    bhold *h = arg;
    h->e->mem -= WH__WQ_SEG_COST;
    bhold_put(h);
}

/* Real memory ws's write queue holds, charged as if ws alone kept each
 * message alive: its bytes, and for every segment the segment itself and the
 * holders a broadcast pins (MEMBER_MSG_COST). */
static size_t member_mem(const wh_ws *ws)
{
    return wh_conn_queued(ws->conn) + (size_t)wh__conn_queued_segs(ws->conn) * MEMBER_MSG_COST;
}

/* Writes one message to this loop's members; consumes the queue's reference. */
static void deliver(wh__ws_hub_entry *e, bmsg *m)
{
    bhold *h = e && e->head ? malloc(sizeof *h) : NULL;
    if (!h) {
        bmsg_unref(m);
        return;
    }
    h->m = m;
    h->e = e;
    h->refs = 1; /* held while we iterate */
    h->cost = sizeof *h + sizeof *m + WH__WS_MAX_HEADER + m->len + 2 * MALLOC_OVERHEAD;
    e->mem += h->cost;
    size_t max = m->hub->max_queued, cost = m->len + MEMBER_MSG_COST;
    for (wh_ws *ws = e->head, *next; ws; ws = next) {
        next = ws->h_next; /* ws may leave the list below */
        if (!ws->conn || ws->close_sent) continue;
        if (member_mem(ws) + cost > max) {
            /* A member that cannot keep up would make us buffer without
             * bound. §7.4.1 1008 (policy violation) is the reason, but a
             * close frame queued behind max bytes would never reach a peer
             * that does not read, so drop the connection (§7.1.7 allows
             * failing without the close frame) and free its queue now. */
            wh__ws_drop(ws, WH_WS_CLOSE_POLICY, "too slow");
            continue;
        }
        h->refs++;
        if (wh_conn_write_ref(ws->conn, m->frame, m->len, bhold_done, h) < 0)
            h->refs--; /* done() is not called on failure */
        else
            e->mem += WH__WQ_SEG_COST;
    }
    bhold_put(h);
}

/* The loop went past max_loop_queued and still holds more than mark after
 * its writes had an iteration to flush: drop the members that hold more than
 * an even share of mark. What members are charged adds up to at least what
 * the loop holds, so someone is above the share unless the memory belongs to
 * connections no longer in the list (closing ones, gone within their close
 * timeout). */
static bool shed(wh__ws_hub_entry *e, size_t mark)
{
    size_t share = mark / (e->n ? e->n : 1);
    bool any = false;
    for (wh_ws *ws = e->head, *next; ws; ws = next) {
        next = ws->h_next;
        if (ws->conn && member_mem(ws) > share) {
            wh__ws_drop(ws, WH_WS_CLOSE_POLICY, "too slow");
            any = true;
        }
    }
    return any;
}

/* Takes the producers' queue as the batch to deliver, recycling the array of
 * the batch before it. False when the queue is empty: then no drain task is
 * on its way any more (posted is cleared under the same lock producers check
 * it with, so the next broadcast posts one). */
static bool take_batch(hub_loop *hl)
{
    pthread_mutex_lock(&hl->mu);
    if (!hl->qn) {
        hl->posted = false;
        pthread_mutex_unlock(&hl->mu);
        return false;
    }
    bmsg **old = hl->held;
    size_t old_cap = hl->held_cap;
    hl->held = hl->q;
    hl->held_n = hl->qn;
    hl->held_cap = hl->qcap;
    hl->held_i = 0;
    hl->q = hl->spare;
    hl->qcap = hl->spare_cap;
    hl->spare = NULL;
    hl->spare_cap = 0;
    /* Give the old array back, so a steady stream of broadcasts allocates none. */
    if (hl->q) {
        hl->spare = old;
        hl->spare_cap = old_cap;
    } else {
        hl->q = old;
        hl->qcap = old_cap;
    }
    hl->qn = 0;
    hl->qbytes = 0;
    atomic_store_explicit(&hl->qbytes_seen, 0, memory_order_relaxed);
    pthread_mutex_unlock(&hl->mu);
    return true;
}

/* Runs on a hub loop: hands the messages queued for it to its members, in
 * the order they were broadcast. One task per loop is in flight at a time
 * (posted stays set while it has work), so a pause below really waits for
 * the loop's next iteration: its writes flush in between. */
static void drain_task(wh_loop *loop, void *arg)
{
    hub_loop *hl = arg;
    for (;;) {
        if (hl->held_i == hl->held_n && !take_batch(hl)) return;
        wh__ws_loop *wl = wh__loop_slot(loop, WH__SLOT_WS);
        wh_ws_hub *hub = hl->held[hl->held_i]->hub;
        wh__ws_hub_entry *e = wl ? entry_find(wl, hub) : NULL;
        size_t budget = hub->max_loop_queued, low = budget / 4 * 3;
        /* One run fans out at most budget/8 before the loop's writes flush:
         * a big batch of small messages must not pile up in the queues of
         * members that do read (and take them past max_queued) only because
         * nothing reaches a socket while this task runs. */
        size_t run_end = (e ? e->mem : 0) + budget / 8;
        while (hl->held_i < hl->held_n) {
            if (e && e->mem > run_end && wh_loop_post(loop, drain_task, hl) == 0) return;
            /* Past the budget, first let this iteration's writes flush
             * (members that read free their part), then, if the loop still
             * holds more than the low mark, drop those that did not. A
             * failed post means the loop is being freed: deliver unbounded. */
            if (hl->waited) {
                hl->waited = false;
                if (e && e->head && e->mem > low && shed(e, low) &&
                    wh_loop_post(loop, drain_task, hl) == 0)
                    return; /* the dropped queues are freed after this iteration */
            } else if (e && e->head && e->mem > budget) {
                hl->waited = true;
                if (wh_loop_post(loop, drain_task, hl) == 0) return;
                hl->waited = false;
            }
            deliver(e, hl->held[hl->held_i++]);
        }
        /* Batch done. What producers queued meanwhile is ours too (posted is
         * still set), but after this iteration's I/O: a producer faster than
         * the members must not keep the loop here. */
        if (wh_loop_post(loop, drain_task, hl) == 0) return;
    }
}

/* Room for one more entry in hl's queue (called with hl->mu held). */
static bool queue_reserve(hub_loop *hl)
{
    if (hl->qn < hl->qcap) return true;
    size_t cap = hl->qcap ? hl->qcap * 2 : 64;
    bmsg **q = realloc(hl->q, cap * sizeof *q);
    if (!q) return false;
    hl->q = q;
    hl->qcap = cap;
    return true;
}

/* Drops what hl's queue holds (its drain task could not be posted). */
static void queue_discard(hub_loop *hl)
{
    pthread_mutex_lock(&hl->mu);
    size_t n = hl->qn;
    bmsg **v = hl->q;
    hl->q = NULL;
    hl->qcap = hl->qn = hl->qbytes = 0;
    atomic_store_explicit(&hl->qbytes_seen, 0, memory_order_relaxed);
    hl->posted = false;
    pthread_mutex_unlock(&hl->mu);
    for (size_t i = 0; i < n; i++)
        bmsg_unref(v[i]);
    free(v);
}

int wh_ws_hub_broadcast(wh_ws_hub *hub, const void *data, size_t len, bool text)
{
    hub_loop *loops = atomic_load_explicit(&hub->loops, memory_order_acquire);
    if (!loops) return 0;
    /* A full queue refuses without a lock or an allocation (the check under
     * the lock below decides; this one only spares it). */
    size_t cost = pending_cost(WH__WS_MAX_HEADER + len);
    for (hub_loop *l = loops; l; l = l->next) {
        size_t seen = atomic_load_explicit(&l->qbytes_seen, memory_order_relaxed);
        if (seen && seen + cost > hub->max_pending &&
            atomic_load_explicit(&l->members, memory_order_relaxed))
            return -EAGAIN;
    }
    bmsg *m = malloc(sizeof *m + WH__WS_MAX_HEADER + len);
    if (!m) return -ENOMEM;
    m->hub = hub;
    size_t hn =
        wh__ws_frame_header(m->frame, text ? WH_WS_OP_TEXT : WH_WS_OP_BINARY, true, len, NULL);
    if (len) memcpy(m->frame + hn, data, len);
    m->len = hn + len;

    /* All or nothing: take every queue's lock (in list order), check that
     * each has room, then append to all. A broadcast either reaches every
     * loop or none, so -EAGAIN never means "some members missed it". Loops
     * that join meanwhile are not in our snapshot of the list; they get the
     * next broadcast. An empty queue takes any message, however big, so
     * every size gets through once the loops catch up. */
    unsigned n = 0;
    int err = 0;
    hub_loop *l;
    for (l = loops; l; l = l->next) {
        pthread_mutex_lock(&l->mu);
        /* Decided once, under the lock we hold until the append below. */
        l->skip = !atomic_load_explicit(&l->members, memory_order_relaxed);
        if (l->skip) continue;
        if (l->qn && l->qbytes + cost > hub->max_pending) err = -EAGAIN;
        if (!err && !queue_reserve(l)) err = -ENOMEM;
        if (err) break;
        n++;
    }
    if (err) {
        for (hub_loop *u = loops; u != l; u = u->next)
            pthread_mutex_unlock(&u->mu);
        pthread_mutex_unlock(&l->mu);
        free(m);
        return err;
    }
    atomic_init(&m->refs, n + 1); /* one per queue, one for us */
    for (l = loops; l; l = l->next) {
        if (l->skip) {
            pthread_mutex_unlock(&l->mu);
            continue;
        }
        l->q[l->qn++] = m;
        l->qbytes += cost;
        atomic_store_explicit(&l->qbytes_seen, l->qbytes, memory_order_relaxed);
        bool post = !l->posted;
        l->posted = true;
        pthread_mutex_unlock(&l->mu);
        /* Post a drain only if none is on its way (it takes what we queued).
         * wh_loop_post takes no hub lock, and the queues still locked only
         * make a drain wait a moment, never deadlock. */
        if (post) {
            int rc = wh_loop_post(l->loop, drain_task, l);
            if (rc < 0) {
                err = rc;
                queue_discard(l);
            }
        }
    }
    bmsg_unref(m);
    return err;
}
