/* The guestbook's two backends behind one interface: see guestbook_store.h. */
#include "apps/common/guestbook_store.h"

#include "apps/common/guestbook_sqlite.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

enum store_kind { STORE_EMBEDDED = 1, STORE_REDIS = 2, STORE_SQLITE = 3 };

/* An immutable entry shared by the ring and by views in progress: e points
 * into id[] and data[] (name, then message). */
struct emb_item {
    atomic_uint ref;
    wh_gb_entry e;
    char id[24];
    char data[];
};

struct wh_gb_store {
    enum store_kind kind;
    /* embedded */
    pthread_mutex_t mu;
    struct emb_item **ring; /* ring[(newest - i) mod keep] is the i-th newest */
    size_t keep, count, newest;
    uint64_t seq; /* the newest entry's ID */
    atomic_uint_fast64_t visitors;
    /* sqlite */
    wh_gb_sqlite *sq;
    /* redis */
    char *host;
    int port;
    wh_redis_opts ropts;
    void (*user_state)(wh_redis *rc, bool up, int err, void *ud);
    void *user_state_ud;
    void (*on_migrate)(int err, long moved, void *ud);
    void *migrate_ud;
};

static void redis_state(wh_redis *rc, bool up, int err, void *ud);

static void item_unref(struct emb_item *it)
{
    /* acq_rel: the last owner must see every write made before others let go. */
    if (atomic_fetch_sub_explicit(&it->ref, 1, memory_order_acq_rel) == 1) free(it);
}

int wh_gb_store_new_embedded(wh_gb_store **out, size_t keep)
{
    wh_gb_store *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->kind = STORE_EMBEDDED;
    s->keep = keep ? keep : WH_GB_KEEP_ENTRIES;
    s->ring = calloc(s->keep, sizeof(*s->ring));
    if (!s->ring) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->visitors, 0);
    *out = s;
    return 0;
}

int wh_gb_store_new_sqlite(wh_gb_store **out, const char *dir, wh_gb_store_error_fn on_error,
                           void *ud)
{
    wh_gb_store *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->kind = STORE_SQLITE;
    int e = wh_gb_sqlite_new(&s->sq, dir, on_error, ud);
    if (e < 0) {
        free(s);
        return e;
    }
    *out = s;
    return 0;
}

int wh_gb_store_new_redis(wh_gb_store **out, const char *host, int port, const wh_redis_opts *opts)
{
    if (!host) return -EINVAL;
    wh_gb_store *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->kind = STORE_REDIS;
    s->host = strdup(host);
    if (!s->host) {
        free(s);
        return -ENOMEM;
    }
    s->port = port;
    if (opts)
        s->ropts = *opts;
    else
        wh_redis_opts_init(&s->ropts);
    /* Ours first (the migration), then the caller's. */
    s->user_state = s->ropts.on_state;
    s->user_state_ud = s->ropts.state_ud;
    s->ropts.on_state = redis_state;
    s->ropts.state_ud = s;
    *out = s;
    return 0;
}

void wh_gb_store_on_migrate(wh_gb_store *s, void (*cb)(int err, long moved, void *ud), void *ud)
{
    s->on_migrate = cb;
    s->migrate_ud = ud;
}

void wh_gb_store_free(wh_gb_store *s)
{
    if (!s) return;
    if (s->kind == STORE_EMBEDDED) {
        for (size_t i = 0; i < s->keep; i++)
            if (s->ring[i]) item_unref(s->ring[i]);
        free(s->ring);
        pthread_mutex_destroy(&s->mu);
    }
    wh_gb_sqlite_free(s->sq);
    free(s->host);
    free(s);
}

const char *wh_gb_store_kind(const wh_gb_store *s)
{
    return s->kind == STORE_REDIS ? "redis" : s->kind == STORE_SQLITE ? "sqlite" : "embedded";
}

int wh_gb_store_thread_start(wh_gb_store *s, wh_loop *loop)
{
    if (s->kind == STORE_SQLITE) return wh_gb_sqlite_thread_start(s->sq);
    if (s->kind != STORE_REDIS) return 0;
    return wh_redis_loop_open(loop, s->host, s->port, &s->ropts);
}

void wh_gb_store_thread_stop(wh_gb_store *s, wh_loop *loop)
{
    if (s->kind == STORE_REDIS) wh_redis_loop_close(loop);
    if (s->kind == STORE_SQLITE) wh_gb_sqlite_thread_stop(s->sq);
}

long wh_gb_store_count(wh_gb_store *s)
{
    if (s->kind == STORE_SQLITE) return wh_gb_sqlite_count(s->sq);
    if (s->kind != STORE_EMBEDDED) return -EINVAL;
    pthread_mutex_lock(&s->mu);
    long n = (long)s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- embedded ------------------------------------------------------------ */

static int emb_view(wh_gb_store *s, bool count, wh_gb_view_cb cb, void *arg)
{
    struct emb_item *taken[WH_GB_PAGE_ENTRIES];
    wh_gb_entry entries[WH_GB_PAGE_ENTRIES];
    uint64_t visitors =
        count ? atomic_fetch_add(&s->visitors, 1) + 1 : (uint64_t)atomic_load(&s->visitors);
    pthread_mutex_lock(&s->mu);
    size_t n = s->count < WH_GB_PAGE_ENTRIES ? s->count : WH_GB_PAGE_ENTRIES;
    for (size_t i = 0; i < n; i++) {
        size_t idx = (s->newest + s->keep - i) % s->keep;
        taken[i] = s->ring[idx];
        atomic_fetch_add_explicit(&taken[i]->ref, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        entries[i] = taken[i]->e;
    wh_gb_view v = {.entries = entries, .n = n, .visitors = visitors};
    cb(0, &v, arg);
    for (size_t i = 0; i < n; i++)
        item_unref(taken[i]);
    return 0;
}

static int emb_add(wh_gb_store *s, int64_t t, const char *name, size_t nl, const char *msg,
                   size_t ml, wh_gb_add_cb cb, void *arg)
{
    struct emb_item *it = malloc(sizeof(*it) + nl + ml);
    if (!it) return -ENOMEM;
    atomic_init(&it->ref, 1);
    memcpy(it->data, name, nl);
    memcpy(it->data + nl, msg, ml);
    it->e = (wh_gb_entry){.id = it->id,
                          .time_s = t,
                          .name = it->data,
                          .name_len = nl,
                          .msg = it->data + nl,
                          .msg_len = ml};
    struct emb_item *evicted = NULL;
    pthread_mutex_lock(&s->mu);
    it->e.id_len = (size_t)snprintf(it->id, sizeof it->id, "%llu", (unsigned long long)++s->seq);
    size_t idx = s->count ? (s->newest + 1) % s->keep : 0;
    if (s->count == s->keep)
        evicted = s->ring[idx]; /* the oldest sits right after the newest */
    else
        s->count++;
    s->ring[idx] = it;
    s->newest = idx;
    pthread_mutex_unlock(&s->mu);
    if (evicted) item_unref(evicted); /* outside the lock: free() may take a while */
    cb(0, arg);
    return 0;
}

/* ---- redis --------------------------------------------------------------- */

static int reply_err(struct redisReply *r, int err, int want_type)
{
    if (err < 0) return err;
    if (!r || r->type != want_type)
        return -EIO; /* REDIS_REPLY_ERROR (LOADING, WRONGTYPE...) or a surprise */
    return 0;
}

/* The counter's reply (INCR or GET) came, with error e: the list's reply
 * comes next and completes the view, unless the XREVRANGE could not be sent
 * (op->err already set, see wh_gb_store_view_ex): then we are last. */
static void counter_done(wh_gb_op *op, int e)
{
    if (op->err) {
        op->view_cb(op->err, NULL, op->arg);
        return;
    }
    op->err = e;
}

static void on_incr(wh_redis *rc, struct redisReply *r, int err, void *arg)
{
    wh_gb_op *op = arg;
    int e = reply_err(r, err, REDIS_REPLY_INTEGER);
    if (e == 0) op->visitors = r->integer < 0 ? 0 : (uint64_t)r->integer;
    counter_done(op, e);
}

/* GET guestbook:visitors: a number as a string, or nil before any visit. */
static void on_visitors(wh_redis *rc, struct redisReply *r, int err, void *arg)
{
    wh_gb_op *op = arg;
    int e = err;
    if (!e && r && r->type == REDIS_REPLY_STRING) {
        char *end;
        unsigned long long v = strtoull(r->str, &end, 10);
        if (*end || end == r->str)
            e = -EIO; /* the key holds something else: the same 503 as INCR's error */
        else
            op->visitors = v;
    } else if (!e && !(r && r->type == REDIS_REPLY_NIL)) {
        e = -EIO;
    }
    counter_done(op, e);
}

static void on_list(wh_redis *rc, struct redisReply *r, int err, void *arg)
{
    wh_gb_op *op = arg;
    int e = op->err ? op->err : reply_err(r, err, REDIS_REPLY_ARRAY);
    if (e) {
        op->view_cb(e, NULL, op->arg);
        return;
    }
    wh_gb_entry entries[WH_GB_PAGE_ENTRIES];
    size_t n = wh_gb_redis_entries(r, entries, WH_GB_PAGE_ENTRIES);
    wh_gb_view v = {.entries = entries, .n = n, .visitors = op->visitors};
    op->view_cb(0, &v, op->arg);
}

static void on_xadd(wh_redis *rc, struct redisReply *r, int err, void *arg)
{
    wh_gb_op *op = arg;
    /* The acknowledgement: Redis answered the XADD with the entry's ID. */
    op->add_cb(reply_err(r, err, REDIS_REPLY_STRING), op->arg);
}

static void on_migrated(wh_redis *rc, struct redisReply *r, int err, void *arg)
{
    wh_gb_store *s = arg;
    int e = reply_err(r, err, REDIS_REPLY_INTEGER);
    if (s->on_migrate) s->on_migrate(e, e ? 0 : (long)r->integer, s->migrate_ud);
}

/* A connection came up: the migration goes first on it, so no view on this
 * connection can be answered from the stream before the old entries are in. */
static void redis_state(wh_redis *rc, bool up, int err, void *ud)
{
    wh_gb_store *s = ud;
    if (s->user_state) s->user_state(rc, up, err, s->user_state_ud);
    if (!up) return;
    wh_gb_cmd c;
    wh_gb_cmd_migrate(&c);
    if (wh_redis_command(rc, c.argc, c.argv, c.argvlen, on_migrated, s) < 0 && s->on_migrate)
        s->on_migrate(-ENOMEM, 0, s->migrate_ud);
}

static wh_redis *loop_redis(wh_loop *loop, unsigned ncmds, int *err)
{
    wh_redis *rc = wh_redis_loop_get(loop);
    if (!rc) {
        *err = -ENOTCONN;
        return NULL;
    }
    /* Both commands of a view or neither: never half an operation. */
    *err = wh_redis_ready(rc, ncmds);
    return *err ? NULL : rc;
}

/* ---- public operations --------------------------------------------------- */

int wh_gb_store_view(wh_gb_store *s, wh_loop *loop, wh_gb_op *op, wh_gb_view_cb cb, void *arg)
{
    return wh_gb_store_view_ex(s, loop, op, true, cb, arg);
}

int wh_gb_store_view_ex(wh_gb_store *s, wh_loop *loop, wh_gb_op *op, bool count, wh_gb_view_cb cb,
                        void *arg)
{
    if (s->kind == STORE_EMBEDDED) return emb_view(s, count, cb, arg);
    if (s->kind == STORE_SQLITE) return wh_gb_sqlite_view(s->sq, count, cb, arg);
    int err;
    wh_redis *rc = loop_redis(loop, 2, &err);
    if (!rc) return err;
    memset(op, 0, sizeof(*op));
    op->store = s;
    op->view_cb = cb;
    op->arg = arg;
    wh_gb_cmd c;
    if (count)
        wh_gb_cmd_visit(&c);
    else
        wh_gb_cmd_visitors(&c);
    int r = wh_redis_command(rc, c.argc, c.argv, c.argvlen, count ? on_incr : on_visitors, op);
    if (r < 0) return r;
    wh_gb_cmd_list(&c);
    r = wh_redis_command(rc, c.argc, c.argv, c.argvlen, on_list, op);
    if (r < 0) {
        /* Only if hiredis ran out of memory (wh_redis_ready said 2 fit).
         * The INCR is already queued and will call back into op, so the
         * operation must complete through it: it reports this error. */
        op->err = r;
    }
    return 0;
}

int wh_gb_store_add(wh_gb_store *s, wh_loop *loop, wh_gb_op *op, int64_t time_s, const char *name,
                    size_t name_len, const char *msg, size_t msg_len, wh_gb_add_cb cb, void *arg)
{
    if (s->kind == STORE_EMBEDDED) return emb_add(s, time_s, name, name_len, msg, msg_len, cb, arg);
    if (s->kind == STORE_SQLITE)
        return wh_gb_sqlite_add(s->sq, time_s, name, name_len, msg, msg_len, cb, arg);
    int err;
    wh_redis *rc = loop_redis(loop, 1, &err);
    if (!rc) return err;
    memset(op, 0, sizeof(*op));
    op->store = s;
    op->add_cb = cb;
    op->arg = arg;
    wh_gb_cmd c;
    wh_gb_cmd_add(&c, time_s, name, name_len, msg, msg_len);
    return wh_redis_command(rc, c.argc, c.argv, c.argvlen, on_xadd, op); /* hiredis copies */
}
