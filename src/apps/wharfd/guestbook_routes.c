/* wharfd's guestbook: GET/HEAD /guestbook (page), POST /guestbook (entry).
 *
 * Backed by Redis when wharfd runs with --redis HOST:PORT (one pipelined
 * connection per worker thread, apps/common/redis_loop.h), otherwise by
 * SQLite in --data DIR (one connection per worker thread, answers on the
 * loop thread: guestbook_sqlite.c says why), or in memory with
 * --data :memory: (lost at exit). Handlers defer the HTTP
 * exchange (wh_http_req_defer) and answer from the store's callback:
 *  - a page is sent in three parts by reference (wh_http_respond_parts):
 *    the top (counter, form token; rendered per view, ~2 KB), the entries
 *    (rendered once per change and shared by every response on this
 *    thread, guestbook_cache.h) and the constant end;
 *  - a POST is answered 303 only after the store acknowledged it (Redis
 *    answered the XADD, SQLite committed the INSERT), so a 303 means the
 *    entry is stored; any failure before that answers 503;
 *  - while Redis is down the store refuses at once (-ENOTCONN) and we answer
 *    503 with Retry-After: no request waits for a connection that is not
 *    there, so nothing piles up; the connection comes back by itself.
 * Form errors get a page with the reason: 400, 413 (too long) or 415.
 *
 * A POST is checked in this order (guestbook_guard.h): another site (Origin
 * or Referer against Host) 403; not a form 415; no valid form token 403;
 * a bad form 400/413; over the client's rate 429 with Retry-After; then it
 * is stored. The form carries the token, made for the address that fetched
 * the page. A visit is counted for a GET of the page, not for HEAD and not
 * for the page a post redirects to (its Location says ?posted=1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "apps/common/guestbook_cache.h"
#include "apps/common/guestbook_page.h"
#include "apps/common/guestbook_store.h"
#include "apps/wharfd/guestbook_guard.h"
#include "apps/wharfd/log.h"
#include "wharf/http_data.h"
#include "apps/wharfd/mounts.h"

struct gb_app {
    wh_gb_store *store;
    wharfd_gb_guard *guard;
};

/* One exchange waiting for the store. */
struct gb_ctx {
    wh_gb_op op;
    wh_http_req *r;
    char token[WHARFD_GB_TOKEN_LEN + 1]; /* for the page's form */
};

/* Where a post sends the browser: the page, marked so that showing it is
 * not counted as another visit. */
#define GB_POSTED_QUERY "posted"
#define GB_AFTER_POST   WH_GB_PATH "?" GB_POSTED_QUERY "=1"

#define GB_HTML "text/html; charset=utf-8"

static void respond_html(wh_http_req *r, int status, const char *data, size_t len)
{
    /* The page changes on every view (the counter): never cache it. */
    wh_http_resp_header(r, "Cache-Control", "no-store");
    wh_http_respond(r, status, GB_HTML, data, len);
}

static void respond_error_page(wh_http_req *r, int status, const char *reason)
{
    char mem[4096];
    wh_gb_buf b;
    wh_gb_buf_init_on(&b, mem, sizeof(mem));
    if (wh_gb_render_error(&b, status, reason) < 0)
        wh_http_respond_error(r, status);
    else
        respond_html(r, status, b.data, b.len);
    wh_gb_buf_free(&b);
}

/* The store failed or refused: 503 (Redis down, timed out, answered an
 * error such as LOADING), or 500 when we ran out of memory. */
static void respond_store_error(wh_http_req *r, int err)
{
    if (err == -ENOMEM) {
        respond_error_page(r, 500, "The server ran out of memory.");
        return;
    }
    /* RFC 9110 10.2.3: tell clients when to come back. */
    wh_http_resp_header(r, "Retry-After", "1");
    respond_error_page(r, 503,
                       "The guestbook's storage is unavailable right now. Please try again "
                       "in a moment.");
}

/* This thread's rendered entries (worker threads only: set by
 * gb_thread_start). */
static _Thread_local wh_gb_cache *tls_cache;

/* One page response: its own top, a reference to the shared entries. */
struct gb_page {
    wh_gb_block *block;
    wh_gb_buf top;
    char mem[2048]; /* the top is ~1.7 KB: no second allocation */
};

static void page_release(void *ud)
{
    struct gb_page *pg = ud;
    wh_gb_block_release(pg->block);
    wh_gb_buf_free(&pg->top);
    free(pg);
}

static void on_view(int err, const wh_gb_view *v, void *arg)
{
    struct gb_ctx *x = arg;
    wh_http_req *r = x->r;
    if (err) {
        free(x);
        respond_store_error(r, err);
        return;
    }
    struct gb_page *pg = tls_cache ? malloc(sizeof(*pg)) : NULL;
    wh_gb_block *b = pg ? wh_gb_cache_get(tls_cache, v->entries, v->n) : NULL;
    if (!b) {
        free(pg);
        free(x);
        respond_store_error(r, -ENOMEM);
        return;
    }
    pg->block = b;
    wh_gb_buf_init_on(&pg->top, pg->mem, sizeof pg->mem);
    int rc = wh_gb_render_top(&pg->top, v->visitors, x->token);
    free(x);
    if (rc < 0) {
        page_release(pg);
        respond_store_error(r, -ENOMEM);
        return;
    }
    wh_http_body_part parts[3];
    parts[0] = (wh_http_body_part){pg->top.data, pg->top.len};
    parts[1].data = wh_gb_block_data(b, &parts[1].len);
    parts[2] = (wh_http_body_part){WH_GB_PAGE_END, sizeof WH_GB_PAGE_END - 1};
    /* The page changes on every view (the counter): never cache it. */
    wh_http_resp_header(r, "Cache-Control", "no-store");
    wh_http_respond_parts(r, 200, GB_HTML, parts, 3, page_release, pg);
}

static const wh_sockaddr *peer_of(wh_http_req *r)
{
    wh_conn *c = wh_http_req_conn(r);
    return c ? wh_conn_peer(c) : NULL;
}

static bool has_query_field(wh_str query, const char *name)
{
    wh_http_form_iter it;
    wh_http_form_pair kv;
    wh_http_form_iter_init(&it, query);
    while (wh_http_form_next(&it, &kv))
        if (wh_http_form_name_eq(kv.name, name)) return true;
    return false;
}

static void gb_get(wh_http_req *r, void *ud)
{
    struct gb_app *app = ud;
    struct gb_ctx *x = malloc(sizeof(*x));
    if (!x) {
        respond_store_error(r, -ENOMEM);
        return;
    }
    x->r = r;
    wharfd_gb_token(app->guard, peer_of(r), time(NULL), x->token);
    wh_str m = wh_http_req_method(r);
    bool count = m.len == 3 && memcmp(m.p, "GET", 3) == 0 &&
                 !has_query_field(wh_http_req_query(r), GB_POSTED_QUERY);
    /* Defer first: the embedded store answers inside the call, Redis later;
     * the engine accepts a response either way once deferred. */
    wh_http_req_defer(r);
    int e = wh_gb_store_view_ex(app->store, wh_http_req_loop(r), &x->op, count, on_view, x);
    if (e < 0) {
        free(x);
        respond_store_error(r, e);
    }
}

static void on_added(int err, void *arg)
{
    struct gb_ctx *x = arg;
    wh_http_req *r = x->r;
    free(x);
    if (err) {
        respond_store_error(r, err);
        return;
    }
    /* RFC 9110 15.4.4: 303 See Other turns the POST into a GET of the page
     * (Post/Redirect/Get), so a reload does not post twice. */
    static const char body[] =
        "<!DOCTYPE html>\n<p>Thank you! <a href=\"" WH_GB_PATH "\">Back to the guestbook</a></p>\n";
    wh_http_resp_header(r, "Location", GB_AFTER_POST);
    respond_html(r, 303, body, sizeof(body) - 1);
}

/* The token field of a form body, decoded into buf; .p NULL when absent or
 * malformed. Only this field is decoded: a bad escape elsewhere is the form
 * parser's 400, not a 403. */
static wh_str form_token(wh_str body, char *buf, size_t cap)
{
    wh_http_form_iter it;
    wh_http_form_pair kv;
    wh_http_form_iter_init(&it, body);
    while (wh_http_form_next(&it, &kv)) {
        if (!wh_http_form_name_eq(kv.name, WH_GB_FIELD_TOKEN)) continue;
        ssize_t n = wh_http_form_decode(kv.value, buf, cap);
        return n < 0 ? (wh_str){NULL, 0} : (wh_str){buf, (size_t)n};
    }
    return (wh_str){NULL, 0};
}

static void gb_post(wh_http_req *r, void *ud)
{
    struct gb_app *app = ud;
    if (!wharfd_gb_same_origin(wh_http_req_header(r, "Origin"), wh_http_req_header(r, "Referer"),
                               wh_http_req_header(r, "Host"))) {
        respond_error_page(r, 403, "This form was sent from another site.");
        return;
    }
    wh_str ct = wh_http_req_header(r, "Content-Type");
    if (!wh_http_media_type_is(ct, WH_GB_CONTENT_TYPE)) {
        respond_error_page(r, wh_gb_form_status(WH_GB_FORM_BAD_CONTENT_TYPE),
                           wh_gb_form_strerror(WH_GB_FORM_BAD_CONTENT_TYPE));
        return;
    }
    wh_str body = wh_http_req_body(r);
    char tokbuf[WHARFD_GB_TOKEN_LEN + 8];
    if (!wharfd_gb_token_ok(app->guard, peer_of(r), time(NULL),
                            form_token(body, tokbuf, sizeof tokbuf))) {
        respond_error_page(r, 403,
                           "The form has expired or did not come from this guestbook. Reload "
                           "the guestbook and send your message again.");
        return;
    }
    wh_gb_form f;
    int fr = wh_gb_form_parse(body.p, body.len, &f);
    if (fr != WH_GB_FORM_OK) {
        respond_error_page(r, wh_gb_form_status(fr), wh_gb_form_strerror(fr));
        return;
    }
    /* Charged for a post that would be stored: invalid ones store nothing. */
    unsigned wait = wharfd_gb_rate_take(app->guard, peer_of(r), wh_loop_now(wh_http_req_loop(r)));
    if (wait) {
        char secs[16], reason[128];
        snprintf(secs, sizeof secs, "%u", wait);
        snprintf(reason, sizeof reason,
                 "Too many posts from your address. Please wait %u second%s and try again.", wait,
                 wait == 1 ? "" : "s");
        wh_http_resp_header(r, "Retry-After", secs); /* RFC 6585 section 4 */
        respond_error_page(r, 429, reason);
        return;
    }
    struct gb_ctx *x = malloc(sizeof(*x));
    if (!x) {
        respond_store_error(r, -ENOMEM);
        return;
    }
    x->r = r;
    wh_http_req_defer(r);
    int e = wh_gb_store_add(app->store, wh_http_req_loop(r), &x->op, (int64_t)time(NULL), f.name,
                            f.name_len, f.message, f.message_len, on_added, x);
    if (e < 0) {
        free(x);
        respond_store_error(r, e);
    }
}

static void gb_thread_start(wh_loop *loop, unsigned idx, void *ud)
{
    struct gb_app *app = ud;
    tls_cache = malloc(sizeof(*tls_cache)); /* NULL: this thread's pages answer 500 */
    if (tls_cache) wh_gb_cache_init(tls_cache);
    int e = wh_gb_store_thread_start(app->store, loop);
    if (e < 0) /* the thread still serves; its guestbook answers 503 */
        wharfd_log(WHARFD_LOG_ERROR, "guestbook: thread %u: %s", idx, wh_strerror(e));
}

static void gb_thread_stop(wh_loop *loop, unsigned idx, void *ud)
{
    struct gb_app *app = ud;
    wh_gb_store_thread_stop(app->store, loop);
    if (tls_cache) wh_gb_cache_free(tls_cache); /* blocks still being sent live on */
    free(tls_cache);
    tls_cache = NULL;
}

static void gb_cleanup(void *ud)
{
    struct gb_app *app = ud;
    wh_gb_store_free(app->store);
    wharfd_gb_guard_free(app->guard);
    free(app);
}

/* Connection changes, once per worker thread's connection (not per retry). */
static void on_redis_state(wh_redis *rc, bool up, int err, void *ud)
{
    if (up)
        wharfd_log(WHARFD_LOG_INFO, "guestbook: connected to Redis");
    else
        wharfd_log(WHARFD_LOG_WARN,
                   "guestbook: Redis connection lost (%s); answering 503 and reconnecting",
                   wh_strerror(err));
}

static void on_migrate(int err, long moved, void *ud)
{
    (void)ud;
    if (err)
        wharfd_log(WHARFD_LOG_ERROR,
                   "guestbook: moving the entries of the old list " WH_GB_KEY_OLD_LIST
                   " into " WH_GB_KEY_STREAM " failed (%s); they stay in the list and are "
                   "not shown",
                   wh_strerror(err));
    else if (moved)
        wharfd_log(WHARFD_LOG_INFO,
                   "guestbook: moved %ld entries of the old list " WH_GB_KEY_OLD_LIST
                   " into " WH_GB_KEY_STREAM " (the list's items are kept in " WH_GB_KEY_MIGRATED
                   ")",
                   moved);
}

static void on_store_error(const char *msg, void *ud)
{
    (void)ud;
    wharfd_log(WHARFD_LOG_ERROR, "guestbook: %s; answering 503", msg);
}

/* The embedded stores: SQLite in cfg->data_dir, or memory for ":memory:". */
static int new_embedded(struct gb_app *app, const wharfd_config *cfg)
{
    if (strcmp(cfg->data_dir, ":memory:") == 0) {
        int e = wh_gb_store_new_embedded(&app->store, WH_GB_KEEP_ENTRIES);
        if (e == 0)
            wharfd_log(WHARFD_LOG_INFO, "guestbook: embedded store in memory (--data :memory:; "
                                        "entries are lost at exit)");
        return e;
    }
    int e = wh_gb_store_new_sqlite(&app->store, cfg->data_dir, on_store_error, NULL);
    if (e == 0)
        wharfd_log(WHARFD_LOG_INFO, "guestbook: embedded store, SQLite database in %s",
                   cfg->data_dir);
    return e;
}

/* Resolves host once, at startup, on the main thread: hiredis would call
 * getaddrinfo on every (re)connect from the loop thread, which can block.
 * Accepts "[v6]" too. Writes a numeric address into out. */
static int resolve_host(const char *host, char *out, size_t outlen)
{
    char h[256];
    size_t hl = strlen(host);
    if (hl >= sizeof(h)) return -EINVAL;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memcpy(h, host + 1, hl - 2);
        h[hl - 2] = '\0';
    } else {
        memcpy(h, host, hl + 1);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(h, NULL, &hints, &res) != 0) return -EHOSTUNREACH;
    int ret = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const void *a = ai->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            inet_ntop(ai->ai_family, a, out, (socklen_t)outlen)) {
            ret = 0;
            break;
        }
    }
    freeaddrinfo(res);
    return ret;
}

int wharfd_mount_guestbook(wh_router *rt, const wharfd_config *cfg, wharfd_hooks *hooks)
{
    struct gb_app *app = calloc(1, sizeof(*app));
    if (!app) return -ENOMEM;
    int e;
    if (cfg->redis && cfg->redis[0]) {
        char host[INET6_ADDRSTRLEN];
        e = resolve_host(cfg->redis_host, host, sizeof(host));
        wh_redis_opts ro;
        wh_redis_opts_init(&ro);
        ro.on_state = on_redis_state;
        if (e == 0) e = wh_gb_store_new_redis(&app->store, host, cfg->redis_port, &ro);
        if (e == 0) wh_gb_store_on_migrate(app->store, on_migrate, NULL);
        if (e == 0)
            wharfd_log(WHARFD_LOG_INFO, "guestbook: Redis at %s (one connection per thread)",
                       cfg->redis);
    } else {
        e = new_embedded(app, cfg);
    }
    if (e < 0) {
        free(app);
        return e;
    }
    if ((e = wharfd_gb_guard_new(&app->guard, cfg->guestbook_rate)) < 0 ||
        (e = wh_router_add(rt, "GET", WH_GB_PATH, gb_get, app)) < 0 ||
        (e = wh_router_add(rt, "POST", WH_GB_PATH, gb_post, app)) < 0) {
        wh_gb_store_free(app->store);
        wharfd_gb_guard_free(app->guard);
        free(app);
        return e;
    }
    if (cfg->guestbook_rate)
        wharfd_log(WHARFD_LOG_INFO, "guestbook: at most %u posts a minute per client address",
                   cfg->guestbook_rate);
    hooks->thread_start = gb_thread_start;
    hooks->thread_stop = gb_thread_stop;
    hooks->cleanup = gb_cleanup;
    hooks->ud = app;
    return 0;
}
