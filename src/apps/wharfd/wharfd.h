/* wharfd internals shared by main.c, handler.c and admin.c. */
#ifndef WHARFD_WHARFD_H
#define WHARFD_WHARFD_H

#include "wharf/http.h"
#include "wharf/http_file.h"

#include "apps/common/fdcache.h"
#include "apps/common/metrics.h"
#include "apps/wharfd/config.h"
#include "apps/wharfd/log.h"
#include "apps/wharfd/mounts.h"
#include "apps/wharfd/ops.h"

#define WHARFD_MAX_THREADS 1024

/* A document root with its options (ops.h: a reload makes a new one). Each
 * thread holds a reference while it serves from it; the last one out
 * closes it. */
struct wharfd_site {
    wh_static_root root;
    unsigned refs; /* atomic */
};

/* State of one worker thread (also one for the admin server's thread).
 * Reached through a thread-local pointer set at thread start: the daemon
 * has exactly one app, and the hot path must not search for it. */
typedef struct wharfd_thread {
    wh_loop *loop;
    wharfd_site *site; /* the root this thread serves now; cache is built on it */
    wh_fdcache *cache;
    wharfd_alog *alog;
    wh_timer *flush_timer;
    wh_metrics metrics;
    wharfd_tls_counts tlsc; /* requests per TLS version and cipher */
    time_t clf_sec;         /* second the cached CLF timestamp is for */
    char clf_time[32];
    /* PROXY stage refusals by wh_proxy_reject (relaxed atomics, like metrics) */
    uint64_t proxy_rejected[WH_PROXY_REJECT_MAX + 1];
} wharfd_thread;

typedef struct wharfd_app {
    wharfd_config cfg;
    wharfd_site *site; /* the current root (reload swaps it; atomic) */
    wh_router *router, *admin_router;
    wh_http_server *http, *admin; /* the HTTP protocol of each listener set */
    wh_server *srv, *admin_srv;   /* the threads that carry them */
    /* threads[i]: worker i of the main server; admin_thread: the admin one */
    wharfd_thread *threads[WHARFD_MAX_THREADS];
    wharfd_thread *admin_thread;
    wharfd_hooks hooks[2];  /* ws, guestbook */
    wh_tls_ctx *tls;        /* the https:// listeners' context (tls_config.c), or NULL */
    uint32_t tls_listeners; /* bit i: main listener i is https:// */
    const char *backend;    /* every server's loop backend, after the io_uring probe */
    /* operations (ops.h) */
    int argc;
    char **argv;
    const wharfd_config *cur; /* the configuration applied last (cfg, or a reload's) */
    void *reloaded;           /* configurations replaced by reloads, freed at exit */
    wharfd_bound bound[WHARFD_MAX_BOUND];
    unsigned nbound;
    bool draining;
} wharfd_app;

/* The one app (set in main before servers start). */
extern wharfd_app *wharfd_the_app;

/* Per-thread state: create at thread start, free at thread stop. */
wharfd_thread *wharfd_thread_new(wharfd_app *app, wh_loop *loop);
void wharfd_thread_free(wharfd_thread *t);
/* Makes t the current thread's state (thread-local). */
void wharfd_thread_set_current(wharfd_thread *t);
/* The calling thread's state, or NULL. */
wharfd_thread *wharfd_thread_current(void);
/* Moves t (the calling thread's) to site, which carries a reference for it:
 * a new file cache on the new root, the old site's reference dropped. 0, or
 * negative errno (t unchanged, site's reference dropped). */
int wharfd_thread_set_site(wharfd_thread *t, wharfd_site *site);
/* Opens a site for cfg's root and options (refs 1). NULL after writing the
 * reason into err. */
wharfd_site *wharfd_site_open(const wharfd_config *cfg, char *err, size_t cap);
/* Takes / drops a reference (any thread); the last drop closes it. */
void wharfd_site_ref(wharfd_site *site, unsigned n);
void wharfd_site_unref(wharfd_site *site);

/* The static-file handler (router fallback). ud = app. */
void wharfd_static_handler(wh_http_req *r, void *ud);
/* wh_http_opts.on_complete: metrics + access log. ud = app. */
void wharfd_on_complete(wh_http_req *r, void *ud);
/* wh_net_opts.proxy_on_reject: debug log + per-thread counter. ud = app. */
void wharfd_proxy_reject(wh_loop *loop, const wh_sockaddr *peer, int reason, void *ud);
/* GET /healthz and GET /metrics. ud = app. */
void wharfd_healthz_handler(wh_http_req *r, void *ud);
void wharfd_metrics_handler(wh_http_req *r, void *ud);

#endif
