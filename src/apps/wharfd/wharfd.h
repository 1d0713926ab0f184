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

#define WHARFD_MAX_THREADS 1024

/* State of one worker thread (also one for the admin server's thread).
 * Reached through a thread-local pointer set at thread start: the daemon
 * has exactly one app, and the hot path must not search for it. */
typedef struct wharfd_thread {
    wh_loop *loop;
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
    wh_static_root root;
    wh_router *router, *admin_router;
    wh_http_server *http, *admin; /* the HTTP protocol of each listener set */
    wh_server *srv, *admin_srv;   /* the threads that carry them */
    /* threads[i]: worker i of the main server; admin_thread: the admin one */
    wharfd_thread *threads[WHARFD_MAX_THREADS];
    wharfd_thread *admin_thread;
    wharfd_hooks hooks[2];  /* ws, guestbook */
    wh_tls_ctx *tls;        /* the https:// listeners' context (tls_config.c), or NULL */
    uint32_t tls_listeners; /* bit i: main listener i is https:// */
} wharfd_app;

/* The one app (set in main before servers start). */
extern wharfd_app *wharfd_the_app;

/* Per-thread state: create at thread start, free at thread stop. */
wharfd_thread *wharfd_thread_new(wharfd_app *app, wh_loop *loop);
void wharfd_thread_free(wharfd_thread *t);
/* Makes t the current thread's state (thread-local). */
void wharfd_thread_set_current(wharfd_thread *t);

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
