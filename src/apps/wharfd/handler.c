/* wharfd's static-file handler, per-thread state, metrics and access log.
 *
 * Hot path for a cached file (no allocation, no lock, no open/stat):
 * clean the path into a stack buffer, look it up in this thread's fd cache,
 * let the library's planner evaluate the conditionals/range against the
 * cached validators (wh_static_plan_rep; a full answer takes the fields
 * the cache formatted once per file version), and answer through
 * wh_http_respond_plan - the same fields as every other wharf file server -
 * from the cached content (small files: one writev for head + body) or from
 * the cached fd (the responder sends from a dup, so the transfer does not
 * depend on cache evictions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apps/common/accesslog.h"
#include "apps/wharfd/wharfd.h"

/* Cache sizing per thread: 1024 files; content of files up to 64 KiB kept
 * in memory within 16 MiB; revalidation at most once a second. */
#define CACHE_ENTRIES  1024
#define CONTENT_MAX    (64 * 1024)
#define CONTENT_BUDGET (16u * 1024 * 1024)
#define REVALIDATE_MS  1000
/* Cached bodies from this size on are sent by reference, smaller ones
 * copied: below it the copy costs less than a second queue segment and its
 * release, and the reply stays one contiguous write. */
#define BY_REF_MIN    (16 * 1024)
#define ALOG_FLUSH_MS 1000

wharfd_app *wharfd_the_app;
static __thread wharfd_thread *tls_thread;

void wharfd_thread_set_current(wharfd_thread *t)
{
    tls_thread = t;
}

wharfd_thread *wharfd_thread_current(void)
{
    return tls_thread;
}

int wharfd_thread_set_site(wharfd_thread *t, wharfd_site *site)
{
    wh_fdcache *nc;
    int rc =
        wh_fdcache_new(&nc, &site->root, CACHE_ENTRIES, CONTENT_MAX, CONTENT_BUDGET, REVALIDATE_MS);
    if (rc != 0) {
        wharfd_site_unref(site);
        return rc;
    }
    /* Between two requests of this thread (we run as a loop task): nothing
     * of this thread is inside the old cache now, and responses under way
     * hold their own copy or reference of what they send (a dup'd fd,
     * copied bytes, a counted reference on cached content). */
    wh_fdcache_free(t->cache);
    t->cache = nc;
    wharfd_site *old = t->site;
    t->site = site;
    if (old) wharfd_site_unref(old);
    return 0;
}

static void flush_cb(wh_timer *timer, void *ud)
{
    (void)timer;
    wharfd_thread *t = ud;
    wharfd_alog_flush(t->alog);
}

wharfd_thread *wharfd_thread_new(wharfd_app *app, wh_loop *loop)
{
    wharfd_thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->loop = loop;
    t->site = __atomic_load_n(&app->site, __ATOMIC_ACQUIRE);
    wharfd_site_ref(t->site, 1);
    if (wh_fdcache_new(&t->cache, &t->site->root, CACHE_ENTRIES, CONTENT_MAX, CONTENT_BUDGET,
                       REVALIDATE_MS) != 0)
        goto fail;
    if (wharfd_alog_enabled()) {
        if (!(t->alog = wharfd_alog_new())) goto fail;
        if (wh_timer_new(loop, flush_cb, t, &t->flush_timer) != 0) goto fail;
        wh_timer_start(t->flush_timer, ALOG_FLUSH_MS, ALOG_FLUSH_MS);
    }
    return t;
fail:
    wharfd_thread_free(t);
    return NULL;
}

/* Frees what only the owning thread may touch; the struct (metrics) stays
 * readable for /metrics until main frees it. */
void wharfd_thread_free(wharfd_thread *t)
{
    if (!t) return;
    if (t->flush_timer) wh_timer_free(t->flush_timer);
    t->flush_timer = NULL;
    wharfd_alog_free(t->alog);
    t->alog = NULL;
    wh_fdcache_free(t->cache);
    t->cache = NULL;
    if (t->site) wharfd_site_unref(t->site);
    t->site = NULL;
}

/* ---- the static-file handler ---- */

/* plan is uninitialised here: the planner initialises it on the hot path,
 * so the handler does not do it twice per request. */
static void respond_status(wh_http_req *r, wh_static_plan *plan, int status)
{
    wh_static_plan_init(plan);
    wh_static_plan_error(plan, status);
    wh_http_respond_plan(r, plan);
}

void wharfd_static_handler(wh_http_req *r, void *ud)
{
    wharfd_app *app = ud;
    wharfd_thread *t = tls_thread;
    /* This thread's site; a thread we did not set up (should not happen)
     * serves the current one without a cache. */
    wh_static_root *root =
        t && t->site ? &t->site->root : &__atomic_load_n(&app->site, __ATOMIC_ACQUIRE)->root;
    wh_static_plan plan; /* initialised by whichever call answers */
    wh_str m = wh_http_req_method(r);
    bool head = m.len == 4 && memcmp(m.p, "HEAD", 4) == 0;
    if (!head && !(m.len == 3 && memcmp(m.p, "GET", 3) == 0)) {
        respond_status(r, &plan, 405);
        return;
    }
    wh_str path = wh_http_req_path(r);
    char rel[WH_STATIC_PATH_MAX];
    bool slash;
    int st =
        wh_static_clean_path(path.p, path.len, root->opts.show_dotfiles, rel, sizeof rel, &slash);
    if (st != 200) {
        respond_status(r, &plan, st);
        return;
    }

    wh_fdcache_ent *e;
    wh_static_file tmp;
    if (!t || !t->cache) { /* a thread we did not set up (should not happen) */
        st = wh_static_resolve(root, rel, slash, &tmp);
        e = NULL;
    } else {
        st = wh_fdcache_get(t->cache, rel, slash, wh_loop_now(wh_http_req_loop(r)), &e, &tmp);
    }
    if (st == 301) {
        wh_static_plan_init(&plan);
        wh_static_plan_redirect(&plan, rel, wh_http_req_query(r));
        wh_http_respond_plan(r, &plan);
        return;
    }
    if (st != 200) {
        if (st >= 500) /* EMFILE, EIO...: worth an operator's attention */
            wharfd_log(WHARFD_LOG_WARN, "open /%s failed (%d)", rel, st);
        respond_status(r, &plan, st);
        return;
    }
    wh_static_req q;
    wh_static_req_from_http(&q, r);
    if (!e) { /* not cached (listing, very long path): the planner opens what it needs */
        wh_static_plan_file(root, &q, &tmp, true, &plan);
        wh_http_respond_plan(r, &plan);
        return;
    }

    /* Cached: the representation and its validators are at hand, so the
     * planner only evaluates the request against them (no open, no stat). */
    const wh_fdcache_rep *rep = &e->id;
    unsigned enc = WH_ENC_IDENTITY;
    if (root->opts.precompressed && q.accept_encoding.p) {
        bool prefer_br;
        unsigned acc = wh_static_accept_encoding(q.accept_encoding, &prefer_br);
        const wh_fdcache_rep *er = wh_fdcache_encoded(t->cache, e, acc, prefer_br, &enc);
        if (er) rep = er;
    }
    wh_static_rep sr;
    wh_fdcache_static_rep(e, rep, enc, &sr);
    wh_static_plan_rep(root, &q, &sr, &plan);
    if (plan.status == 200 || plan.status == 206) {
        if (rep->data || plan.length == 0) {
            /* From the cache's memory: a small body is copied (head and body
             * leave in one write); a larger one goes by reference, holding
             * the content until sent, so a burst of replies copies and
             * allocates nothing per reply (on io_uring a copy lives until
             * its send completes: 64 x 64 KiB of them made malloc trim and
             * fault, issue 16). */
            plan.body = rep->data ? (char *)rep->data + plan.offset : NULL;
            plan.body_len = (size_t)plan.length;
            if (plan.body && plan.body_len >= BY_REF_MIN) {
                plan.body_ud = wh_fdcache_data_ref(rep);
                plan.body_release = wh_fdcache_data_release;
            }
        } else {
            plan.fd = rep->fd; /* borrowed: wh_http_respond_plan sends from a dup */
        }
    }
    wh_http_respond_plan(r, &plan);
}

/* ---- completion: metrics and access log ---- */

/* "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1", "unix:/x" -> "unix". */
static void peer_host(wh_http_req *r, char *out, size_t cap)
{
    wh_conn *c = wh_http_req_conn(r);
    char a[128];
    if (!c || wh_addr_format(wh_conn_peer(c), a, sizeof a) < 0) {
        snprintf(out, cap, "-");
        return;
    }
    if (strncmp(a, "unix:", 5) == 0) {
        snprintf(out, cap, "unix");
        return;
    }
    char *s = a, *colon = strrchr(a, ':');
    if (a[0] == '[') {
        s = a + 1;
        colon = strchr(s, ']');
    }
    if (colon) *colon = '\0';
    snprintf(out, cap, "%s", s);
}

void wharfd_proxy_reject(wh_loop *loop, const wh_sockaddr *peer, int reason, void *ud)
{
    (void)loop;
    (void)ud;
    wharfd_thread *t = tls_thread;
    if (t && reason > 0 && reason <= WH_PROXY_REJECT_MAX)
        __atomic_store_n(&t->proxy_rejected[reason], t->proxy_rejected[reason] + 1,
                         __ATOMIC_RELAXED);
    char a[128];
    if (wh_addr_format(peer, a, sizeof a) < 0) snprintf(a, sizeof a, "-");
    wharfd_log(WHARFD_LOG_DEBUG, "PROXY header refused (%s) from %s", wh_proxy_reject_name(reason),
               a);
}

/* Also runs for requests the engine refused itself (400, 408, 413, 414,
 * 431, 505: method and target may be empty, headers absent, the start time
 * unset) and for upgrades (101), so every request shows in the log and in
 * /metrics: nothing here may assume a parsed request. */
void wharfd_on_complete(wh_http_req *r, void *ud)
{
    (void)ud;
    wharfd_thread *t = tls_thread;
    if (!t) return;
    int status = wh_http_resp_status(r);
    uint64_t bytes = wh_http_resp_bytes(r);
    uint64_t now = wh_loop_now(wh_http_req_loop(r));
    uint64_t start = wh_http_req_start_ms(r);
    wh_metrics_observe(&t->metrics, status, bytes, start && now > start ? now - start : 0);
    wharfd_tls_count(&t->tlsc, r);
    if (!t->alog) return;
    time_t sec = time(NULL);
    if (sec != t->clf_sec) {
        t->clf_sec = sec;
        wh_clf_time(sec, t->clf_time, sizeof t->clf_time);
    }
    char host[128];
    peer_host(r, host, sizeof host);
    wh_clf f;
    memset(&f, 0, sizeof f);
    f.host = host;
    f.time = t->clf_time;
    f.method = wh_http_req_method(r);
    f.target = wh_http_req_target(r);
    f.version = wh_http_req_version(r);
    f.status = status;
    f.bytes = bytes;
    f.referer = wh_http_req_header(r, "Referer");
    f.user_agent = wh_http_req_header(r, "User-Agent");
    /* Upper bound: escaping makes a byte at most 4. Past the block size the
     * exact formatter cuts the longest fields instead of losing the line. */
    size_t need =
        320 + strlen(host) + 4 * (f.method.len + f.target.len + f.referer.len + f.user_agent.len);
    if (need > WHARFD_ALOG_LINE_MAX) need = WHARFD_ALOG_LINE_MAX;
    char *dst = wharfd_alog_reserve(t->alog, need);
    if (!dst) return;
    bool cut;
    size_t len = wh_clf_format_max(&f, dst, need, &cut);
    wharfd_alog_commit(t->alog, wharfd_tls_log_field(wharfd_the_app, r, dst, len, need));
    if (cut) wharfd_alog_count_truncated();
}
