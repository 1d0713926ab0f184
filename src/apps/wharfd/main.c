/* wharfd: the static-file server (seed 001's ZeroHTTPd, grown up).
 *
 * main builds everything on the main thread, then runs a small loop of its
 * own for signals (signals.c: drain, reload, log reopen, upgrade). Workers
 * run in the runtime's threads.
 *
 * Exit status: 0 clean stop, 1 runtime/setup failure (root, port, logs,
 * privileges), 2 bad command line or config file (1 with --check-config).
 */
#include <signal.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/wharfd/wharfd.h"

static const char *const model_names[] = {"reuseport", "exclusive", "oneshot", "dispatch"};

/* glibc gives the free top of an arena back to the kernel (madvise) once it
 * passes 128 KiB, and the next allocation there faults the pages in again.
 * Replies copied into write queues make that a cycle on io_uring: a copy
 * lives until its send completes, so a burst of replies is freed together
 * one iteration later (64 connections x 64 KiB: 4 MiB), trimmed, and
 * faulted in by the next burst: 11.5 page faults per 64 KiB reply, 3,400
 * responses/s at 300 us CPU each in bench/compare.sh where other rounds read
 * 20,000 at 22 us (issue 16). Cached files from 16 KiB on now go by
 * reference (handler.c), but generated bodies (listings, error pages,
 * guestbook pages) are still copied, so a worker keeps up to 64 MiB of free
 * heap instead. Setting the trim threshold ends glibc's adaptive
 * thresholds, so the mmap threshold is set too: blocks up to 1 MiB (request
 * buffers, queue chunks) come from the heap and are reused, not mapped and
 * unmapped each time. */
static void keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

static void thread_start(wh_loop *loop, unsigned idx, void *ud)
{
    wharfd_app *app = ud;
    wharfd_thread *t = wharfd_thread_new(app, loop);
    if (!t) wharfd_log(WHARFD_LOG_ERROR, "worker %u: out of memory for per-thread state", idx);
    wharfd_thread_set_current(t);
    if (idx < WHARFD_MAX_THREADS) __atomic_store_n(&app->threads[idx], t, __ATOMIC_RELEASE);
    for (int k = 0; k < 2; k++)
        if (app->hooks[k].thread_start) app->hooks[k].thread_start(loop, idx, app->hooks[k].ud);
}

static void thread_stop(wh_loop *loop, unsigned idx, void *ud)
{
    wharfd_app *app = ud;
    for (int k = 1; k >= 0; k--)
        if (app->hooks[k].thread_stop) app->hooks[k].thread_stop(loop, idx, app->hooks[k].ud);
    if (idx < WHARFD_MAX_THREADS && app->threads[idx])
        wharfd_thread_free(app->threads[idx]); /* struct itself freed by main */
    wharfd_thread_set_current(NULL);
}

static void admin_thread_start(wh_loop *loop, unsigned idx, void *ud)
{
    (void)idx;
    wharfd_app *app = ud;
    wharfd_thread *t = wharfd_thread_new(app, loop);
    wharfd_thread_set_current(t);
    __atomic_store_n(&app->admin_thread, t, __ATOMIC_RELEASE);
}

static void admin_thread_stop(wh_loop *loop, unsigned idx, void *ud)
{
    (void)loop;
    (void)idx;
    wharfd_app *app = ud;
    if (app->admin_thread) wharfd_thread_free(app->admin_thread);
    wharfd_thread_set_current(NULL);
}

/* ---- run: each step returns 0 or the exit status (1), in this order ---- */

/* The root (a site: reload.c): checked before anything binds, with a
 * message that names it. */
static int open_root(wharfd_app *app)
{
    char err[512];
    if (!(app->site = wharfd_site_open(&app->cfg, err, sizeof err))) {
        fprintf(stderr, "wharfd: %s\n", err);
        return 1;
    }
    return 0;
}

/* TLS: certificates are loaded before anything starts, so a bad one is a
 * one-line error naming its file (tls_config.c). */
static int setup_tls(wharfd_app *app)
{
    bool https = false;
    for (unsigned i = 0; i < app->cfg.nbinds; i++) {
        const char *b = app->cfg.binds[i];
        https |= wharfd_tls_scheme(&b);
    }
    return wharfd_tls_setup(app, https) != 0;
}

/* The worker loops' backend. io_uring may be refused by this kernel (too
 * old, kernel.io_uring_disabled, a container's seccomp filter): a loop then
 * runs on epoll by itself; one probe here says so once in the log instead of
 * leaving every worker to find out on its own. */
static const char *pick_backend(const char *want)
{
    if (!want || strcmp(want, "io_uring") != 0) return want;
    wh_loop *probe;
    wh_loop_opts lo = {.backend = want};
    int rc = wh_loop_new(&probe, &lo);
    if (rc < 0) return want; /* out of memory or fds: the workers will say */
    int why = wh_loop_backend_error(probe);
    bool got = strcmp(wh_loop_backend(probe), want) == 0;
    wh_loop_free(probe);
    if (got) return want;
    wharfd_log(WHARFD_LOG_WARN, "io_uring unavailable: %s; using epoll",
               why == -ENOTSUP ? "libwharf built without liburing" : wh_strerror(why));
    return "epoll";
}

/* The main listener's router, HTTP engine and server (not listening yet). */
static int build_main_server(wharfd_app *app)
{
    wharfd_config *cfg = &app->cfg;
    int rc;
    if ((rc = wh_router_new(&app->router)) != 0) goto oom;
    wh_router_set_fallback(app->router, wharfd_static_handler, app);
    /* GET routes answer HEAD too; the router gives the rest 405 + Allow. */
    if ((rc = wh_router_add(app->router, "GET", "/healthz", wharfd_healthz_handler, app)) != 0)
        goto oom;
    if (cfg->metrics_public &&
        (rc = wh_router_add(app->router, "GET", "/metrics", wharfd_metrics_handler, app)) != 0)
        goto oom;

    wh_http_opts ho;
    wh_http_opts_init(&ho);
    ho.header_timeout_ms = cfg->header_timeout_ms;
    ho.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
    ho.on_complete = wharfd_on_complete;
    wh_server_opts sopts;
    wh_server_opts_init(&sopts);
    sopts.threads = cfg->threads;
    sopts.model = cfg->model;
    sopts.loop_backend = app->backend = pick_backend(cfg->backend);
    sopts.max_conns = cfg->max_conns;
    sopts.shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    sopts.handle_signals = false; /* main's loop does it (signals.c) */
    /* A second instance beside a running one (a restart) takes no
     * connection before its threads can serve it. */
    sopts.listen_when_ready = true;
    bool front = cfg->tls.redirect_port || cfg->tls.hsts_s; /* tls_config.c */
    if ((rc = wh_http_server_new(&app->http, &ho, front ? wharfd_tls_front : wh_router_handle,
                                 front ? (void *)app : (void *)app->router)) != 0) {
        fprintf(stderr, "wharfd: cannot create the server: %s\n", wh_strerror(rc));
        return 1;
    }
    wh_http_server_net_opts(app->http, &sopts.net);
    sopts.net.sndbuf = cfg->sndbuf;
    sopts.net.defer_accept_s = cfg->defer_accept_s;
    if (cfg->proxy_protocol) { /* the --bind listeners; --admin is not behind the balancer */
        sopts.net.proxy_protocol = 1;
        sopts.net.proxy_trusted = cfg->proxy_trusted[0] ? cfg->proxy_trusted : NULL;
        sopts.net.proxy_timeout_ms = cfg->proxy_timeout_ms;
        sopts.net.proxy_on_reject = wharfd_proxy_reject;
        sopts.net.proxy_ud = app;
    }
    if ((rc = wh_server_new(&app->srv, &sopts, wh_http_server_cbs(app->http), app->http)) != 0) {
        fprintf(stderr, "wharfd: cannot create the server: %s\n", wh_strerror(rc));
        return 1;
    }
    wh_server_on_thread(app->srv, thread_start, thread_stop, app);
    return 0;
oom:
    fprintf(stderr, "wharfd: %s\n", wh_strerror(rc));
    return 1;
}

/* Extension points (mounts.h): WebSocket routes and the guestbook. */
static int mount_extensions(wharfd_app *app)
{
    static const char *const mount_names[2] = {"ws", "guestbook"};
    for (int k = 0; k < 2; k++) {
        app->hooks[k].http = app->http;
        app->hooks[k].cfg = &app->cfg;
    }
    for (int k = 0; k < 2; k++) {
        int rc = k == 0 ? wharfd_mount_ws(app->router, &app->cfg, &app->hooks[0])
                        : wharfd_mount_guestbook(app->router, &app->cfg, &app->hooks[1]);
        if (rc != 0) {
            fprintf(stderr, "wharfd: mount %s: %s\n", mount_names[k], wh_strerror(rc));
            return 1;
        }
    }
    return 0;
}

/* The --admin listener: /healthz and /metrics on one thread of its own. */
static int build_admin(wharfd_app *app)
{
    wharfd_config *cfg = &app->cfg;
    int rc;
    if ((rc = wh_router_new(&app->admin_router)) != 0) goto oom;
    if ((rc = wh_router_add(app->admin_router, "GET", "/healthz", wharfd_healthz_handler, app)) !=
            0 ||
        (rc = wh_router_add(app->admin_router, "GET", "/metrics", wharfd_metrics_handler, app)) !=
            0)
        goto oom;
    wh_http_opts ao;
    wh_http_opts_init(&ao);
    ao.on_complete = wharfd_on_complete;
    wh_server_opts aso;
    wh_server_opts_init(&aso);
    aso.threads = 1;
    aso.pin_threads = false;
    aso.handle_signals = false;
    aso.listen_when_ready = true;
    aso.offload_threads = 1;
    aso.shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    aso.loop_backend = app->backend;
    if ((rc = wh_http_server_new(&app->admin, &ao, wh_router_handle, app->admin_router)) != 0)
        goto oom;
    wh_http_server_net_opts(app->admin, &aso.net);
    if ((rc = wh_server_new(&app->admin_srv, &aso, wh_http_server_cbs(app->admin), app->admin)) !=
        0)
        goto oom;
    wh_server_on_thread(app->admin_srv, admin_thread_start, admin_thread_stop, app);
    return 0;
oom:
    fprintf(stderr, "wharfd: %s\n", wh_strerror(rc));
    return 1;
}

/* Sockets (inherited or bound: ports below 1024 need root), the pid file,
 * then the drop, and only then the threads that serve (start_servers). */
static int bind_and_drop(wharfd_app *app)
{
    if (wharfd_listen_setup(app) != 0) return 1;
    if (wharfd_pidfile_write(app->cfg.pid_file) != 0) return 1;
    if (wharfd_priv_drop() != 0) return 1;
    return 0;
}

/* Starts the worker threads of both servers and says what listens where. */
static int start_servers(wharfd_app *app)
{
    wh_server *base = app->srv;
    int rc;
    if ((rc = wh_server_start(base)) != 0) {
        fprintf(stderr, "wharfd: cannot start: %s\n", wh_strerror(rc));
        return 1;
    }
    if (app->admin_srv && (rc = wh_server_start(app->admin_srv)) != 0) {
        fprintf(stderr, "wharfd: cannot start the admin listener: %s\n", wh_strerror(rc));
        wh_server_stop(base, false);
        wh_server_wait(base);
        return 1;
    }
    if (wharfd_priv_verify() != 0) { /* a thread that kept root: fatal */
        wh_server_stop(base, false);
        if (app->admin_srv) wh_server_stop(app->admin_srv, false);
        wh_server_wait(base);
        if (app->admin_srv) wh_server_wait(app->admin_srv);
        return 1;
    }
    /* The backend the workers' loops got (WH_LOOP_BACKEND may have chosen). */
    wharfd_thread *t0 = __atomic_load_n(&app->threads[0], __ATOMIC_ACQUIRE);
    wharfd_log(WHARFD_LOG_INFO, "wharfd %s: root %s, %u threads, model %s, backend %s, pid %d",
               WH_VERSION, app->site->root.real, wh_server_threads(base),
               model_names[app->cfg.model & 3], t0 ? wh_loop_backend(t0->loop) : "?",
               (int)getpid());
    wharfd_listen_log(app);
    if (!app->cfg.admin && !app->cfg.metrics_public)
        wharfd_log(WHARFD_LOG_INFO,
                   "/metrics is not served: give --admin ADDR or --metrics-public");
    return 0;
}

/* Ready: the old process of an upgrade hears it on its pipe (and tells
 * systemd the new MAINPID); otherwise we tell systemd ourselves. Then the
 * main thread's own loop (signals.c) until the servers stopped. */
static int serve_signals(wharfd_app *app)
{
    if (wharfd_inherit_is_upgrade())
        wharfd_inherit_ready();
    else
        wharfd_sd_notify("READY=1\nMAINPID=%d\nSTATUS=serving", (int)getpid());
    int rc = wharfd_signals_run(app);
    if (!wharfd_upgrade_done()) wharfd_pidfile_remove(app->cfg.pid_file);
    wharfd_log(WHARFD_LOG_INFO, "stopped");
    return rc;
}

/* -t / --check-config: what a start would refuse, without starting. 0 or
 * -1 after printing. */
static int check_config(const wharfd_config *cfg)
{
    char err[512];
    wharfd_site *site = wharfd_site_open(cfg, err, sizeof err);
    if (!site) {
        fprintf(stderr, "wharfd: %s\n", err);
        return -1;
    }
    wharfd_site_unref(site);
    if (wharfd_config_check_addrs(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "wharfd: %s\n", err);
        return -1;
    }
    if (wharfd_priv_prepare(cfg->user) != 0) return -1;
    printf("wharfd: configuration %s%s is valid\n", cfg->config_file ? "file " : "",
           cfg->config_file ? cfg->config_file : "(command line)");
    return 0;
}

static int run(wharfd_app *app)
{
    if (open_root(app) || setup_tls(app) || build_main_server(app) || mount_extensions(app) ||
        (app->cfg.admin && build_admin(app)) || bind_and_drop(app) || start_servers(app))
        return 1;
    return serve_signals(app);
}

int main(int argc, char **argv)
{
    static wharfd_app app;
    wharfd_the_app = &app;
    app.argc = argc;
    app.argv = argv;
    int rc = wharfd_config_load(&app.cfg, argc, argv);
    if (rc != 0 || app.cfg.check_config) {
        if (rc == 0)
            rc = check_config(&app.cfg);
        else if (app.cfg.check_config)
            rc = -1; /* -t: 1 for any error */
        wharfd_config_free(&app.cfg);
        return rc > 0 ? 0 : rc == 0 ? 0 : app.cfg.check_config ? 1 : 2;
    }
    keep_freed_memory();
    /* Before any thread: the environment is read and trimmed here. */
    wharfd_sd_init();
    wharfd_inherit_init();
    wharfd_upgrade_init(argv);
    if (wharfd_priv_prepare(app.cfg.user) != 0) {
        wharfd_config_free(&app.cfg);
        return 2;
    }
    /* Before any thread exists, so every thread inherits the mask and the
     * signals reach only the main loop's signalfd. */
    wh_signal_block_defaults();
    if (wharfd_log_open(app.cfg.error_log, app.cfg.access_log, app.cfg.log_level) != 0) {
        wharfd_config_free(&app.cfg);
        return 1;
    }
    rc = run(&app);
    for (int k = 0; k < 2; k++)
        if (app.hooks[k].cleanup) app.hooks[k].cleanup(app.hooks[k].ud);
    wh_server_free(app.admin_srv);
    wh_server_free(app.srv);
    wh_http_server_free(app.admin);
    wh_http_server_free(app.http);
    wharfd_tls_free(&app);
    if (app.admin_router) wh_router_free(app.admin_router);
    if (app.router) wh_router_free(app.router);
    for (unsigned i = 0; i < WHARFD_MAX_THREADS; i++)
        free(app.threads[i]);
    free(app.admin_thread);
    if (app.site) wharfd_site_unref(app.site);
    wharfd_log_close();
    wharfd_reload_free(&app);
    wharfd_config_free(&app.cfg);
    return rc;
}
