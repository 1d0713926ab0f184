/* Broadcast hubs: one logical group of WebSockets spread over whatever loops
 * (threads) its members live on. The hub knows no host: a loop joins the
 * hub's loop list the first time one of its WebSockets joins, so a hub spans
 * a wh_server's workers, a single loop of your own, or anything between.
 *
 * No lock anywhere on the send path. Each loop keeps the hub's members that
 * live on it (wh__ws_loop.hubs), touched only by that loop's thread, so
 * join/leave are list operations. A broadcast encodes the frame once into a
 * refcounted buffer and posts it to every loop of the hub (wh_loop_post); there
 * each member gets it by reference (wh_conn_write_ref, no copy per
 * connection). A per-loop holder counts that loop's outstanding writes with
 * a plain integer, so the shared atomic refcount is touched once per loop,
 * not once per connection.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws_internal.h"

/* A member this far behind is not coming back: a burst of broadcasts may
 * legitimately pass the 1 MiB high watermark, a stalled reader passes this. */
#define DEFAULT_MAX_QUEUED (8u << 20)

/* The loops a hub spans: a list that only grows (prepend with a CAS), so
 * a broadcast from any thread walks it without a lock. */
typedef struct hub_loop {
    wh_loop *loop;
    struct hub_loop *next;
} hub_loop;

struct wh_ws_hub {
    size_t max_queued; /* set before members join; read-only afterwards */
    atomic_size_t count;
    hub_loop *_Atomic loops;
    atomic_uint nloops;
};

typedef struct bmsg {
    wh_ws_hub *hub;
    atomic_uint refs; /* one per loop the message was posted to */
    size_t len;
    uint8_t frame[]; /* header + payload */
} bmsg;

typedef struct bhold {
    bmsg *m;
    size_t refs; /* writes still queued on this loop (+1 while sending) */
} bhold;

int wh_ws_hub_new(wh_ws_hub **out)
{
    if (!out) return -EINVAL;
    wh_ws_hub *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    atomic_init(&h->loops, NULL);
    atomic_init(&h->nloops, 0);
    h->max_queued = DEFAULT_MAX_QUEUED;
    atomic_init(&h->count, 0);
    *out = h;
    return 0;
}

void wh_ws_hub_set_max_queued(wh_ws_hub *hub, size_t bytes)
{
    hub->max_queued = bytes;
}

void wh_ws_hub_free(wh_ws_hub *hub)
{
    /* Member lists live in the loops' state and go with the loops; after the
     * host stopped nothing refers to the hub any more. */
    if (!hub) return;
    for (hub_loop *l = atomic_load(&hub->loops), *next; l; l = next) {
        next = l->next;
        free(l);
    }
    free(hub);
}

/* First member on this loop: the loop joins the hub's broadcast list. */
static int hub_add_loop(wh_ws_hub *hub, wh_loop *loop)
{
    hub_loop *l = malloc(sizeof *l);
    if (!l) return -ENOMEM;
    l->loop = loop;
    l->next = atomic_load_explicit(&hub->loops, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&hub->loops, &l->next, l, memory_order_release,
                                                  memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&hub->nloops, 1, memory_order_relaxed);
    return 0;
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
        if (hub_add_loop(hub, wl->loop) < 0) {
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
    return 0;
}

void wh_ws_hub_leave(wh_ws *ws)
{
    wh__ws_hub_unlink(ws);
}

static void bmsg_unref(bmsg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) free(m);
}

static void bhold_unref(void *arg)
{
    bhold *h = arg;
    if (--h->refs == 0) {
        bmsg_unref(h->m);
        free(h);
    }
}

/* Runs on each worker loop: write the frame to this loop's members. */
static void broadcast_task(wh_loop *loop, void *arg)
{
    bmsg *m = arg;
    wh__ws_loop *wl = wh__loop_slot(loop, WH__SLOT_WS);
    wh__ws_hub_entry *e = wl ? entry_find(wl, m->hub) : NULL;
    if (!e || !e->head) {
        bmsg_unref(m);
        return;
    }
    bhold *h = malloc(sizeof *h);
    if (!h) {
        bmsg_unref(m);
        return;
    }
    h->m = m;
    h->refs = 1; /* held while we iterate */
    for (wh_ws *ws = e->head, *next; ws; ws = next) {
        next = ws->h_next;
        if (!ws->conn || ws->close_sent) continue;
        if (wh_conn_queued(ws->conn) > m->hub->max_queued) {
            /* A member that cannot keep up would make us buffer without
             * bound; close it instead (§7.4.1 1008: policy violation). */
            wh_ws_close(ws, WH_WS_CLOSE_POLICY, "too slow");
            continue;
        }
        h->refs++;
        if (wh_conn_write_ref(ws->conn, m->frame, m->len, bhold_unref, h) < 0)
            h->refs--; /* done() is not called on failure */
    }
    bhold_unref(h);
}

int wh_ws_hub_broadcast(wh_ws_hub *hub, const void *data, size_t len, bool text)
{
    hub_loop *loops = atomic_load_explicit(&hub->loops, memory_order_acquire);
    if (!loops) return 0;
    bmsg *m = malloc(sizeof *m + WH__WS_MAX_HEADER + len);
    if (!m) return -ENOMEM;
    m->hub = hub;
    size_t hn =
        wh__ws_frame_header(m->frame, text ? WH_WS_OP_TEXT : WH_WS_OP_BINARY, true, len, NULL);
    if (len) memcpy(m->frame + hn, data, len);
    m->len = hn + len;
    /* One reference per post, plus one for us while posting, so an early
     * task cannot free m mid-walk. Loops that join meanwhile are not in our
     * snapshot of the list; they get the next broadcast. */
    unsigned n = 0;
    for (hub_loop *l = loops; l; l = l->next)
        n++;
    atomic_init(&m->refs, n + 1);
    int err = 0;
    for (hub_loop *l = loops; l; l = l->next) {
        int rc = wh_loop_post(l->loop, broadcast_task, m);
        if (rc < 0) {
            err = rc;
            bmsg_unref(m);
        }
    }
    bmsg_unref(m);
    return err;
}
