/* The guestbook in SQLite: see guestbook_sqlite.h.
 *
 * Writes run on the loop thread that took the request, not on the offload
 * pool. In WAL mode with synchronous=NORMAL a commit appends the new pages
 * to the -wal file and returns without fsync (the WAL is synced at
 * checkpoints), so a post costs tens of microseconds (test_guestbook_sqlite
 * prints it: median 45-65 us for a 600-byte entry, the whole HTTP post
 * 0.45 ms), not much more than handing the job to a pool thread and its
 * completion back to the loop would cost by itself, and the 303 needs no
 * second hop. A committed entry survives a crash of wharfd (the WAL is in
 * the OS's page cache); only a power loss can take the last commits since a
 * checkpoint, which is SQLite's documented trade of synchronous=NORMAL.
 *
 * What does fsync is the checkpoint (copying the WAL into the database
 * file), which SQLite would run inside whichever commit makes the WAL pass
 * 1000 pages: a stall of milliseconds on that loop (5050 adds, 3 runs on a
 * busy 2-CPU machine: worst add 34-180 ms with SQLite's own checkpoints,
 * 12-24 ms with ours; median 52-87 us either way). So the loop
 * connections replace the automatic checkpoint by a wal_hook that only
 * wakes a checkpointer thread of this store, which checkpoints (PASSIVE:
 * it never blocks the writers) on its own connection.
 *
 * The one wait that can be long is another connection's write lock:
 * busy_timeout bounds it at GB_BUSY_MS, after which the post gets a 503
 * rather than the loop waiting on. With each write a single short
 * statement the lock is held for microseconds, so this is for the
 * pathological case (e.g. someone holding the file with the sqlite3 shell).
 */
#include "apps/common/guestbook_sqlite.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#define GB_DB_FILE      "guestbook.db"
#define GB_BUSY_MS      250  /* longest wait for another connection's write lock */
#define GB_OPEN_BUSY_MS 5000 /* the same while opening (thread start) */
#define GB_RETRY_S      1    /* a failed open is retried at most this often */
#define GB_CKPT_PAGES   1000 /* WAL pages that wake the checkpointer (SQLite's default) */

/* The bounds are SQL text; the static asserts keep them in step. */
_Static_assert(WH_GB_PAGE_ENTRIES == 100, "LIMIT below");
_Static_assert(WH_GB_KEEP_ENTRIES == 1000, "OFFSET 999 below");

/* One write transaction, taken up front (IMMEDIATE): connections of several
 * threads opening at once queue on the write lock (busy handler) instead of
 * failing to upgrade a read transaction. */
static const char SCHEMA[] =
    "PRAGMA synchronous=NORMAL;"
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " t INTEGER NOT NULL, name BLOB NOT NULL, msg BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS counters(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO counters(k, v) VALUES('visitors', 0);"
    /* Keeps the newest 1000: the insert and its trim commit together. */
    "CREATE TRIGGER IF NOT EXISTS entries_keep AFTER INSERT ON entries BEGIN"
    " DELETE FROM entries WHERE id < (SELECT id FROM entries ORDER BY id DESC"
    " LIMIT 1 OFFSET 999); END;"
    "COMMIT;";

enum { ST_ADD, ST_VISIT, ST_VISITORS, ST_LIST, ST_COUNT, ST_N };
static const char *const SQL[ST_N] = {
    [ST_ADD] = "INSERT INTO entries(t, name, msg) VALUES(?1, ?2, ?3)",
    [ST_VISIT] = "UPDATE counters SET v = v + 1 WHERE k = 'visitors' RETURNING v",
    [ST_VISITORS] = "SELECT v FROM counters WHERE k = 'visitors'",
    [ST_LIST] = "SELECT id, t, name, msg FROM entries ORDER BY id DESC LIMIT 100",
    [ST_COUNT] = "SELECT count(*) FROM entries",
};

struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    wh_gb_buf rows;   /* a view's copied rows, reused */
    time_t failed_at; /* last failed open (0: none) */
    bool open;
};

struct wh_gb_sqlite {
    char path[4096];
    wh_gb_store_error_fn on_error;
    void *ud;
    pthread_mutex_t mu; /* the shared connection */
    struct sq_conn shared;
    /* The checkpointer: woken by a commit that left GB_CKPT_PAGES in the WAL. */
    pthread_t ckpt;
    bool ckpt_running, ckpt_wanted, stopping;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
};

/* This thread's connection and the store it belongs to. */
static _Thread_local struct {
    wh_gb_sqlite *owner;
    struct sq_conn c;
} tls;

static void report(wh_gb_sqlite *sq, const char *what, sqlite3 *db, int rc)
{
    if (!sq->on_error) return;
    char msg[sizeof sq->path + 512];
    int base = rc & 0xff;
    bool perm = base == SQLITE_CANTOPEN || base == SQLITE_READONLY || base == SQLITE_PERM;
    snprintf(msg, sizeof msg, "SQLite database %s: %s failed: %s (code %d)%s", sq->path, what,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc,
             perm ? "; is its directory writable by wharfd?" : "");
    sq->on_error(msg, sq->ud);
}

static void conn_close(struct sq_conn *c)
{
    for (int i = 0; i < ST_N; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    if (c->db) sqlite3_close_v2(c->db);
    c->db = NULL;
    c->open = false;
    wh_gb_buf_free(&c->rows);
}

/* journal_mode=WAL answers the mode in force: anything else means the
 * directory does not let SQLite make its -wal file. */
static int set_wal(sqlite3 *db)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        rc = m && strcmp((const char *)m, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(st);
    return rc;
}

/* After each commit on a loop connection: wakes the checkpointer once the
 * WAL is long enough. Never checkpoints here (see the top of the file). */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    wh_gb_sqlite *sq = ud;
    (void)db, (void)name;
    if (pages < GB_CKPT_PAGES) return SQLITE_OK;
    pthread_mutex_lock(&sq->ckpt_mu);
    sq->ckpt_wanted = true;
    pthread_cond_signal(&sq->ckpt_cv);
    pthread_mutex_unlock(&sq->ckpt_mu);
    return SQLITE_OK;
}

static int conn_open(wh_gb_sqlite *sq, struct sq_conn *c)
{
    const char *what = "open";
    int rc = sqlite3_open_v2(
        sq->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        /* Opening is not on a request's path: it may wait for the others. */
        sqlite3_busy_timeout(c->db, GB_OPEN_BUSY_MS);
        sqlite3_extended_result_codes(c->db, 1);
        what = "setting WAL mode";
        rc = set_wal(c->db);
    }
    if (rc == SQLITE_OK) {
        what = "creating the schema";
        rc = sqlite3_exec(c->db, SCHEMA, NULL, NULL, NULL);
        if (rc != SQLITE_OK) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    for (int i = 0; i < ST_N && rc == SQLITE_OK; i++) {
        what = "preparing a statement";
        rc = sqlite3_prepare_v3(c->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
    }
    if (rc != SQLITE_OK) {
        report(sq, what, c->db, rc);
        conn_close(c);
        c->failed_at = time(NULL);
        return rc == SQLITE_NOMEM ? -ENOMEM : -ENOTCONN;
    }
    sqlite3_busy_timeout(c->db, GB_BUSY_MS);
    if (sq->ckpt_running) sqlite3_wal_hook(c->db, wal_hook, sq); /* else: automatic */
    wh_gb_buf_init(&c->rows);
    c->open = true;
    c->failed_at = 0;
    return 0;
}

/* The connection for this thread (its own, or the shared one, locked), opened
 * if it is not and the last try is over GB_RETRY_S ago. NULL: -ENOTCONN. */
static struct sq_conn *conn_get(wh_gb_sqlite *sq)
{
    struct sq_conn *c = &sq->shared;
    if (tls.owner == sq)
        c = &tls.c;
    else
        pthread_mutex_lock(&sq->mu);
    if (!c->open && (!c->failed_at || time(NULL) - c->failed_at >= GB_RETRY_S)) conn_open(sq, c);
    if (c->open) return c;
    if (c == &sq->shared) pthread_mutex_unlock(&sq->mu);
    return NULL;
}

static void conn_put(wh_gb_sqlite *sq, struct sq_conn *c)
{
    if (c == &sq->shared) pthread_mutex_unlock(&sq->mu);
}

/* SQLITE_NOMEM is ours to report as 500; the rest is the database: 503. */
static int failed(wh_gb_sqlite *sq, struct sq_conn *c, sqlite3_stmt *st, const char *what, int rc)
{
    report(sq, what, c->db, rc);
    sqlite3_reset(st);
    return (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

static void *checkpointer(void *arg)
{
    wh_gb_sqlite *sq = arg;
    sqlite3 *db = NULL;
    pthread_mutex_lock(&sq->ckpt_mu);
    for (;;) {
        while (!sq->ckpt_wanted && !sq->stopping)
            pthread_cond_wait(&sq->ckpt_cv, &sq->ckpt_mu);
        if (sq->stopping) break;
        sq->ckpt_wanted = false;
        pthread_mutex_unlock(&sq->ckpt_mu);
        if (!db && sqlite3_open_v2(sq->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                   NULL) != SQLITE_OK) {
            sqlite3_close_v2(db);
            db = NULL; /* the next wake-up tries again */
        }
        if (db) {
            sqlite3_busy_timeout(db, GB_BUSY_MS);
            int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY) report(sq, "a checkpoint", db, rc);
        }
        pthread_mutex_lock(&sq->ckpt_mu);
    }
    pthread_mutex_unlock(&sq->ckpt_mu);
    sqlite3_close_v2(db);
    return NULL;
}

int wh_gb_sqlite_new(wh_gb_sqlite **out, const char *dir, wh_gb_store_error_fn on_error, void *ud)
{
    if (!dir) return -EINVAL;
    wh_gb_sqlite *sq = calloc(1, sizeof(*sq));
    if (!sq) return -ENOMEM;
    int n = snprintf(sq->path, sizeof sq->path, "%s/" GB_DB_FILE, dir);
    if (n < 0 || (size_t)n >= sizeof sq->path) {
        free(sq);
        return -EINVAL;
    }
    sq->on_error = on_error;
    sq->ud = ud;
    pthread_mutex_init(&sq->mu, NULL);
    pthread_mutex_init(&sq->ckpt_mu, NULL);
    pthread_cond_init(&sq->ckpt_cv, NULL);
    /* Without the thread, SQLite's automatic checkpoint stays on. */
    sq->ckpt_running = pthread_create(&sq->ckpt, NULL, checkpointer, sq) == 0;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST && on_error) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot create the data directory %s: %s", dir, strerror(errno));
        on_error(msg, ud);
    }
    conn_open(sq, &sq->shared); /* reports its own failure; retried on use */
    *out = sq;
    return 0;
}

void wh_gb_sqlite_free(wh_gb_sqlite *sq)
{
    if (!sq) return;
    if (sq->ckpt_running) {
        pthread_mutex_lock(&sq->ckpt_mu);
        sq->stopping = true;
        pthread_cond_signal(&sq->ckpt_cv);
        pthread_mutex_unlock(&sq->ckpt_mu);
        pthread_join(sq->ckpt, NULL);
    }
    conn_close(&sq->shared);
    pthread_cond_destroy(&sq->ckpt_cv);
    pthread_mutex_destroy(&sq->ckpt_mu);
    pthread_mutex_destroy(&sq->mu);
    free(sq);
}

int wh_gb_sqlite_thread_start(wh_gb_sqlite *sq)
{
    if (tls.owner) return -EEXIST; /* one store per thread, as for Redis */
    memset(&tls.c, 0, sizeof tls.c);
    tls.owner = sq;
    return conn_open(sq, &tls.c);
}

void wh_gb_sqlite_thread_stop(wh_gb_sqlite *sq)
{
    if (tls.owner != sq) return;
    conn_close(&tls.c);
    tls.owner = NULL;
}

const char *wh_gb_sqlite_path(const wh_gb_sqlite *sq)
{
    return sq->path;
}

/* Reads one integer row (the counter). */
static int read_counter(wh_gb_sqlite *sq, struct sq_conn *c, int which, uint64_t *v)
{
    sqlite3_stmt *st = c->st[which];
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return failed(sq, c, st, "reading the visitor counter", rc);
    sqlite3_int64 n = sqlite3_column_int64(st, 0);
    *v = n < 0 ? 0 : (uint64_t)n;
    rc = sqlite3_step(st); /* runs an UPDATE ... RETURNING to its end: the write commits */
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : failed(sq, c, st, "counting a visit", rc);
}

/* Where one row's bytes sit in c->rows (offsets: the buffer may move). */
struct row {
    size_t id, id_len, name, name_len, msg, msg_len;
    int64_t t;
};

static int copy_col(wh_gb_buf *b, sqlite3_stmt *st, int col, size_t *off, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    *off = b->len;
    return *len ? wh_gb_buf_append(b, p, *len) : 0;
}

static int read_rows(wh_gb_sqlite *sq, struct sq_conn *c, struct row *rows, size_t *n)
{
    sqlite3_stmt *st = c->st[ST_LIST];
    wh_gb_buf_reset(&c->rows);
    int rc;
    *n = 0;
    while (*n < WH_GB_PAGE_ENTRIES && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct row *w = &rows[(*n)++];
        w->t = sqlite3_column_int64(st, 1);
        copy_col(&c->rows, st, 0, &w->id, &w->id_len); /* the integer id as text */
        copy_col(&c->rows, st, 2, &w->name, &w->name_len);
        copy_col(&c->rows, st, 3, &w->msg, &w->msg_len);
    }
    if (*n < WH_GB_PAGE_ENTRIES && rc != SQLITE_DONE)
        return failed(sq, c, st, "reading the entries", rc);
    sqlite3_reset(st);
    return c->rows.oom ? -ENOMEM : 0;
}

int wh_gb_sqlite_view(wh_gb_sqlite *sq, bool count, wh_gb_view_cb cb, void *arg)
{
    struct sq_conn *c = conn_get(sq);
    if (!c) return -ENOTCONN;
    wh_gb_view v = {0};
    struct row rows[WH_GB_PAGE_ENTRIES];
    wh_gb_entry entries[WH_GB_PAGE_ENTRIES];
    size_t n = 0;
    int e = read_counter(sq, c, count ? ST_VISIT : ST_VISITORS, &v.visitors);
    if (e == 0) e = read_rows(sq, c, rows, &n);
    if (e < 0) {
        conn_put(sq, c);
        return e;
    }
    const char *base = c->rows.data;
    for (size_t i = 0; i < n; i++)
        entries[i] = (wh_gb_entry){.id = base + rows[i].id,
                                   .id_len = rows[i].id_len,
                                   .time_s = rows[i].t,
                                   .name = base + rows[i].name,
                                   .name_len = rows[i].name_len,
                                   .msg = base + rows[i].msg,
                                   .msg_len = rows[i].msg_len};
    v.entries = entries;
    v.n = n;
    cb(0, &v, arg); /* with the shared connection still locked: its rows are c's */
    conn_put(sq, c);
    return 0;
}

int wh_gb_sqlite_add(wh_gb_sqlite *sq, int64_t t, const char *name, size_t nl, const char *msg,
                     size_t ml, wh_gb_add_cb cb, void *arg)
{
    struct sq_conn *c = conn_get(sq);
    if (!c) return -ENOTCONN;
    sqlite3_stmt *st = c->st[ST_ADD];
    /* SQLITE_STATIC: the caller's strings outlive the step; reset unbinds use. */
    sqlite3_bind_int64(st, 1, t);
    /* "" rather than NULL: an empty blob, not an SQL NULL. */
    sqlite3_bind_blob(st, 2, nl ? name : "", (int)nl, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, ml ? msg : "", (int)ml, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int e = rc == SQLITE_DONE ? 0 : failed(sq, c, st, "storing an entry", rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    conn_put(sq, c);
    if (e == 0) cb(0, arg); /* committed (autocommit): the acknowledgement */
    return e;
}

long wh_gb_sqlite_count(wh_gb_sqlite *sq)
{
    struct sq_conn *c = conn_get(sq);
    if (!c) return -ENOTCONN;
    sqlite3_stmt *st = c->st[ST_COUNT];
    int rc = sqlite3_step(st);
    long n = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : -EIO;
    sqlite3_reset(st);
    conn_put(sq, c);
    return n;
}
