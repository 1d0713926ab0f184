/* Where the guestbook lives: one interface, two backends.
 *
 *  - Redis (wh_gb_store_new_redis): one connection per worker loop
 *    (redis_loop.h), the data model of guestbook_redis.h. A page view is
 *    INCR + XREVRANGE, pipelined; a post one XADD, whose callback reports
 *    success only after Redis answered it. Each connection first moves the
 *    entries of older versions (the JSON list) into the stream.
 *  - SQLite (wh_gb_store_new_sqlite): the embedded database, one file in a
 *    data directory, kept across restarts; one connection per worker
 *    thread, answers inside the call (guestbook_sqlite.h). wharfd's default.
 *  - In memory (wh_gb_store_new_embedded): in this process, shared by all
 *    worker threads, bounded to the newest `keep` entries, lost at exit.
 *    Entries are immutable reference-counted blobs (wh_gb_entry and its
 *    bytes) in a ring under one mutex; a view holds the mutex only to take
 *    references to up to WH_GB_PAGE_ENTRIES blobs, and renders after
 *    unlocking. The visitor counter is an atomic. A mutex is fine here: the
 *    guestbook is not the static-file hot path, and the critical sections
 *    are a few hundred instructions (no I/O, no allocation under the lock
 *    except the ring's one-time setup).
 *
 * Completion: view/add return 0 and then call cb exactly once (the embedded
 * stores call it before returning; Redis later, on the loop thread), or
 * return a negative errno and never call cb: -ENOTCONN while Redis is down
 * (fail fast: answer 503), -EAGAIN when too many commands are in flight.
 * cb's err: 0, or -ETIMEDOUT/-ECONNRESET/-ECANCELED (Redis gone mid-way),
 * -EIO (Redis answered with an error, e.g. LOADING or WRONGTYPE).
 *
 * Entry IDs: Redis stream IDs, or the embedded store's sequence numbers. An
 * entry never changes, so a page part rendered from a list of IDs stays
 * right for as long as the same IDs are shown (guestbook_cache.h).
 */
#ifndef WH_APPS_GUESTBOOK_STORE_H
#define WH_APPS_GUESTBOOK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/common/guestbook_page.h"
#include "apps/common/guestbook_redis.h"
#include "apps/common/redis_loop.h"
#include "wharf/loop.h"

typedef struct wh_gb_store wh_gb_store;

/* What a page shows: entries, newest first. Valid only during the callback. */
typedef struct wh_gb_view {
    const wh_gb_entry *entries;
    size_t n;
    uint64_t visitors; /* after this view's increment */
} wh_gb_view;

typedef void (*wh_gb_view_cb)(int err, const wh_gb_view *v, void *arg);
typedef void (*wh_gb_add_cb)(int err, void *arg);

/* Storage for one operation in flight, owned by the caller (e.g. inside its
 * request context) and kept alive until the callback ran. Fields are private. */
typedef struct wh_gb_op {
    wh_gb_store *store;
    wh_gb_view_cb view_cb;
    wh_gb_add_cb add_cb;
    void *arg;
    uint64_t visitors;
    int err;
} wh_gb_op;

/* A store's report of a database failure, a whole sentence for the log. */
typedef void (*wh_gb_store_error_fn)(const char *msg, void *ud);

/* Creates the SQLite store in dir/guestbook.db (dir made if missing). 0 even
 * when the database is unusable (on_error says why; operations then fail
 * with -ENOTCONN or -EIO until it is usable), -ENOMEM/-EINVAL otherwise. */
int wh_gb_store_new_sqlite(wh_gb_store **out, const char *dir, wh_gb_store_error_fn on_error,
                           void *ud);
/* Creates the in-process store keeping the newest `keep` entries (0 = WH_GB_KEEP_ENTRIES). */
int wh_gb_store_new_embedded(wh_gb_store **out, size_t keep);
/* Creates the Redis store for a numeric host (or "unix:/path") and port;
 * nothing connects until wh_gb_store_thread_start. opts may be NULL. */
int wh_gb_store_new_redis(wh_gb_store **out, const char *host, int port, const wh_redis_opts *opts);
/* Redis: cb(err, moved, ud) after each connection's migration of the old
 * list (moved entries, 0 when there was none; err -EIO when Redis refused
 * the script: the old entries stay in their list, not shown). Loop thread. */
void wh_gb_store_on_migrate(wh_gb_store *s, void (*cb)(int err, long moved, void *ud), void *ud);
/* Frees the store after every worker thread stopped (NULL is fine). */
void wh_gb_store_free(wh_gb_store *s);
/* "embedded" (in memory), "sqlite" or "redis". */
const char *wh_gb_store_kind(const wh_gb_store *s);

/* On each worker thread as it starts: Redis and SQLite open this thread's
 * connection; in memory does nothing. 0 or negative errno. */
int wh_gb_store_thread_start(wh_gb_store *s, wh_loop *loop);
/* On each worker thread as it stops: closes this loop's connection
 * (operations in flight complete with -ECANCELED). */
void wh_gb_store_thread_stop(wh_gb_store *s, wh_loop *loop);

/* Counts a visit and fetches the newest WH_GB_PAGE_ENTRIES entries. */
int wh_gb_store_view(wh_gb_store *s, wh_loop *loop, wh_gb_op *op, wh_gb_view_cb cb, void *arg);
/* The same, counting the visit only if count (a HEAD, or the page shown
 * after a post, reads the counter without raising it; Redis: GET instead of
 * INCR). */
int wh_gb_store_view_ex(wh_gb_store *s, wh_loop *loop, wh_gb_op *op, bool count, wh_gb_view_cb cb,
                        void *arg);
/* Stores an entry (name/msg validated by the caller, e.g. wh_gb_form_parse).
 * cb(0) means it is stored (in Redis: XADD acknowledged). */
int wh_gb_store_add(wh_gb_store *s, wh_loop *loop, wh_gb_op *op, int64_t time_s, const char *name,
                    size_t name_len, const char *msg, size_t msg_len, wh_gb_add_cb cb, void *arg);

/* Embedded stores only: entries held now (for tests); -EINVAL for Redis. */
long wh_gb_store_count(wh_gb_store *s);

#endif
