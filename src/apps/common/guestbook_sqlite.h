/* The guestbook's embedded database: SQLite in one file, DIR/guestbook.db.
 * Internal to guestbook_store.c (wh_gb_store_new_sqlite is the public way
 * in); the same behaviour as the Redis store: the newest WH_GB_KEEP_ENTRIES
 * entries kept, WH_GB_PAGE_ENTRIES shown newest first, a visitor counter.
 *
 *   entries   (id INTEGER PRIMARY KEY AUTOINCREMENT, t, name BLOB, msg BLOB)
 *             trimmed to the newest 1000 by a trigger on each insert, so
 *             the insert and its trim are one statement, one transaction
 *   counters  (k TEXT PRIMARY KEY, v INTEGER): k = 'visitors'
 *
 * Connections: one per worker thread (opened by wh_gb_sqlite_thread_start,
 * used only by that thread: no lock on the request path), plus one shared
 * connection under a mutex for any other thread (tests, tools). SQLite's
 * own file locks order the writers of all connections; busy_timeout bounds
 * how long one waits for another's write (see guestbook_sqlite.c).
 *
 * Failures never take the process down: a connection that cannot be opened
 * (directory not writable, file not a database) or a statement that fails
 * (disk full, I/O error, corruption) is reported through on_error with the
 * file name and SQLite's reason, and the operation returns -ENOTCONN or
 * -EIO (the routes answer 503). A connection that could not be opened is
 * retried at most once a second, so fixing the directory needs no restart.
 */
#ifndef WH_APPS_GUESTBOOK_SQLITE_H
#define WH_APPS_GUESTBOOK_SQLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/common/guestbook_store.h"

typedef struct wh_gb_sqlite wh_gb_sqlite;

/* Creates dir if missing (0700, one level) and opens the shared connection,
 * creating the schema. Returns 0 even when the database cannot be used yet
 * (then on_error has said why and operations fail until it can); -ENOMEM or
 * -EINVAL (dir NULL, path too long) otherwise. on_error may be NULL. */
int wh_gb_sqlite_new(wh_gb_sqlite **out, const char *dir, wh_gb_store_error_fn on_error, void *ud);
/* Closes every connection; after every worker thread stopped. */
void wh_gb_sqlite_free(wh_gb_sqlite *sq);
/* Opens this thread's connection. 0, or a negative errno after on_error. */
int wh_gb_sqlite_thread_start(wh_gb_sqlite *sq);
/* Closes this thread's connection. */
void wh_gb_sqlite_thread_stop(wh_gb_sqlite *sq);
/* Counts a visit if count, reads the newest entries, calls cb before
 * returning (0), or returns -ENOTCONN/-EIO/-ENOMEM without calling it. */
int wh_gb_sqlite_view(wh_gb_sqlite *sq, bool count, wh_gb_view_cb cb, void *arg);
/* Stores an entry; cb(0) before returning once it is committed, or returns
 * -ENOTCONN/-EIO without calling cb (nothing stored). */
int wh_gb_sqlite_add(wh_gb_sqlite *sq, int64_t t, const char *name, size_t nl, const char *msg,
                     size_t ml, wh_gb_add_cb cb, void *arg);
/* Entries held now (for tests), or a negative errno. */
long wh_gb_sqlite_count(wh_gb_sqlite *sq);
/* The database file's path. */
const char *wh_gb_sqlite_path(const wh_gb_sqlite *sq);

#endif
