/* wharfd's static-file handler, per-thread state, metrics and access log.
 *
 * Hot path for a cached file (no allocation, no lock, no open/stat):
 * clean the path into a stack buffer, look it up in this thread's fd cache,
 * evaluate the conditionals/range against precomputed validators, add the
 * headers, and answer from the cached content (small files: one writev
 * for head + body) or from a dup of the cached fd (sendfile; the dup lets
 * the engine close its copy whenever the transfer ends, independent of
 * cache evictions).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#define ALOG_FLUSH_MS  1000

wharfd_app *wharfd_the_app;
static __thread wharfd_thread *tls_thread;

void wharfd_thread_set_current(wharfd_thread *t)
{
    tls_thread = t;
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
    if (wh_fdcache_new(&t->cache, &app->root, CACHE_ENTRIES, CONTENT_MAX, CONTENT_BUDGET,
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
}

/* ---- request headers, in one pass ---- */

static bool hname(wh_str n, const char *lit, size_t len)
{
    return n.len == len && strncasecmp(n.p, lit, len) == 0;
}

static void read_headers(wh_http_req *r, wh_static_req *q)
{
    unsigned n = wh_http_req_header_count(r);
    for (unsigned i = 0; i < n; i++) {
        wh_str name, v;
        wh_http_req_header_at(r, i, &name, &v);
        wh_str *dst = NULL;
        switch (name.len) {
        case 5:
            if (hname(name, "Range", 5)) dst = &q->range;
            break;
        case 8:
            if (hname(name, "If-Match", 8))
                dst = &q->if_match;
            else if (hname(name, "If-Range", 8))
                dst = &q->if_range;
            break;
        case 13:
            if (hname(name, "If-None-Match", 13)) dst = &q->if_none_match;
            break;
        case 15:
            if (hname(name, "Accept-Encoding", 15)) dst = &q->accept_encoding;
            break;
        case 17:
            if (hname(name, "If-Modified-Since", 17)) dst = &q->if_modified_since;
            break;
        case 19:
            if (hname(name, "If-Unmodified-Since", 19)) dst = &q->if_unmodified_since;
            break;
        }
        if (dst && !dst->p) *dst = v;
    }
}

static void respond_error(wh_http_req *r, int status)
{
    if (status == 405) wh_http_resp_header(r, "Allow", "GET, HEAD");
    wh_http_respond_error(r, status);
}

static void redirect_slash(wh_http_req *r, const char *rel)
{
    char loc[WH_STATIC_PATH_MAX * 3 + 16];
    size_t n = wh_url_encode(rel, loc + 1, sizeof loc - 8);
    wh_str q = wh_http_req_query(r);
    loc[0] = '/';
    if (n + 8 >= sizeof loc) {
        respond_error(r, 414);
        return;
    }
    n++;
    if (n > 1) loc[n++] = '/';
    loc[n] = '\0';
    /* Keep the query; Location is built from the cleaned path only, so
     * "//host/x" cannot turn into a redirect to another host. */
    char full[sizeof loc + 2048];
    if (q.len)
        snprintf(full, sizeof full, "%s?%.*s", loc, (int)(q.len < 2000 ? q.len : 2000), q.p);
    else
        snprintf(full, sizeof full, "%s", loc);
    if (wh_http_resp_header(r, "Location", full) != 0) {
        respond_error(r, 400);
        return;
    }
    static const char body[] = "<!DOCTYPE html>\n<html><body>Moved to a directory.</body></html>\n";
    wh_http_respond(r, 301, "text/html; charset=utf-8", body, sizeof body - 1);
}

/* A result the cache does not hold (listing, very long path): plan it. */
static void serve_uncached(wharfd_app *app, wh_http_req *r, const wh_static_req *q,
                           wh_static_file *f)
{
    wh_static_plan plan;
    wh_static_plan_file(&app->root, q, f, true, &plan);
    if (plan.status >= 400) {
        wh_static_plan_release(&plan);
        respond_error(r, plan.status);
        return;
    }
    if (plan.content_encoding) wh_http_resp_header(r, "Content-Encoding", plan.content_encoding);
    if (plan.vary) wh_http_resp_header(r, "Vary", "Accept-Encoding");
    if (plan.etag[0]) wh_http_resp_header(r, "ETag", plan.etag);
    if (plan.last_modified[0]) wh_http_resp_header(r, "Last-Modified", plan.last_modified);
    if (plan.accept_ranges) wh_http_resp_header(r, "Accept-Ranges", "bytes");
    if (plan.content_range[0]) wh_http_resp_header(r, "Content-Range", plan.content_range);
    if (plan.cache_control) wh_http_resp_header(r, "Cache-Control", plan.cache_control);
    if (plan.fd >= 0) {
        int fd = plan.fd;
        bool owned = plan.fd_owned;
        plan.fd = -1;
        wh_http_respond_file(r, plan.status, plan.content_type, fd, plan.offset,
                             (size_t)plan.length, owned);
    } else {
        wh_http_respond(r, plan.status, plan.content_type, plan.body, plan.body_len);
    }
    wh_static_plan_release(&plan);
}

void wharfd_static_handler(wh_http_req *r, void *ud)
{
    wharfd_app *app = ud;
    wharfd_thread *t = tls_thread;
    wh_str m = wh_http_req_method(r);
    bool head = m.len == 4 && memcmp(m.p, "HEAD", 4) == 0;
    if (!head && !(m.len == 3 && memcmp(m.p, "GET", 3) == 0)) {
        respond_error(r, 405);
        return;
    }
    wh_str path = wh_http_req_path(r);
    char rel[WH_STATIC_PATH_MAX];
    bool slash;
    int st = wh_static_clean_path(path.p, path.len, app->root.opts.show_dotfiles, rel, sizeof rel,
                                  &slash);
    if (st != 200) {
        respond_error(r, st);
        return;
    }
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = m;
    q.path = path;
    q.query = wh_http_req_query(r);
    read_headers(r, &q);

    wh_fdcache_ent *e;
    wh_static_file tmp;
    if (!t || !t->cache) { /* a thread we did not set up (should not happen) */
        st = wh_static_resolve(&app->root, rel, slash, &tmp);
        e = NULL;
    } else {
        st = wh_fdcache_get(t->cache, rel, slash, wh_loop_now(wh_http_req_loop(r)), &e, &tmp);
    }
    if (st == 301) {
        redirect_slash(r, rel);
        return;
    }
    if (st != 200) {
        if (st >= 500) /* EMFILE, EIO...: worth an operator's attention */
            wharfd_log(WHARFD_LOG_WARN, "open /%s failed (%d)", rel, st);
        respond_error(r, st);
        return;
    }
    if (!e) {
        serve_uncached(app, r, &q, &tmp);
        return;
    }

    const wh_fdcache_rep *rep = &e->id;
    unsigned enc = WH_ENC_IDENTITY;
    bool precompressed = app->root.opts.precompressed;
    if (precompressed && q.accept_encoding.p) {
        bool prefer_br;
        unsigned acc = wh_static_accept_encoding(q.accept_encoding, &prefer_br);
        const wh_fdcache_rep *er = wh_fdcache_encoded(t->cache, e, acc, prefer_br, &enc);
        if (er) rep = er;
    }
    /* RFC 9110 13.2.2 order; validators are the chosen representation's. */
    int c = wh_static_conditional(&q, rep->etag, e->mtime);
    if (c == 412) {
        respond_error(r, 412);
        return;
    }
    wh_http_resp_header(r, "ETag", rep->etag);
    wh_http_resp_header(r, "Last-Modified", e->last_modified);
    if (precompressed) wh_http_resp_header(r, "Vary", "Accept-Encoding");
    if (app->root.opts.cache_control)
        wh_http_resp_header(r, "Cache-Control", app->root.opts.cache_control);
    if (c == 304) {
        wh_http_respond(r, 304, NULL, NULL, 0);
        return;
    }
    wh_http_resp_header(r, "Accept-Ranges", "bytes");
    if (enc) wh_http_resp_header(r, "Content-Encoding", enc == WH_ENC_BR ? "br" : "gzip");
    uint64_t size = (uint64_t)rep->st.st_size, start = 0, len = size;
    int status = 200;
    if (q.range.p && wh_static_if_range(q.if_range, rep->etag, e->mtime)) {
        status = wh_static_range(q.range, size, &start, &len);
        char cr[80];
        if (status == 416) {
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            wh_http_resp_header(r, "Content-Range", cr);
            wh_http_respond_error(r, 416);
            return;
        }
        if (status == 206) {
            snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)start,
                     (unsigned long long)(start + len - 1), (unsigned long long)size);
            wh_http_resp_header(r, "Content-Range", cr);
        } else {
            status = 200;
            start = 0;
            len = size;
        }
    }
    if (rep->data || len == 0) {
        wh_http_respond(r, status, e->mime, rep->data ? rep->data + start : "", (size_t)len);
        return;
    }
    int fd = fcntl(rep->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        respond_error(r, 503);
        return;
    }
    wh_http_respond_file(r, status, e->mime, fd, (off_t)start, (size_t)len, true);
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

void wharfd_on_complete(wh_http_req *r, void *ud)
{
    (void)ud;
    wharfd_thread *t = tls_thread;
    if (!t) return;
    int status = wh_http_resp_status(r);
    uint64_t bytes = wh_http_resp_bytes(r);
    uint64_t now = wh_loop_now(wh_http_req_loop(r));
    uint64_t start = wh_http_req_start_ms(r);
    wh_metrics_observe(&t->metrics, status, bytes, now > start ? now - start : 0);
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
    /* Upper bound: escaping makes a byte at most 4. */
    size_t need =
        160 + strlen(host) + 4 * (f.method.len + f.target.len + f.referer.len + f.user_agent.len);
    if (need > 60000) need = wh_clf_format(&f, NULL, 0);
    char *dst = wharfd_alog_reserve(t->alog, need);
    if (!dst) return;
    wharfd_alog_commit(t->alog, wh_clf_format(&f, dst, need));
}
