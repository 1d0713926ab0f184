/* wharfd: the static-file server (seed 001's ZeroHTTPd, grown up).
 *
 * main builds everything on the main thread, then runs a small loop of its
 * own for signals: SIGHUP reopens the logs, SIGINT/SIGTERM stop gracefully
 * (a second one stops at once). Workers run in the runtime's threads.
 *
 * Exit status: 0 clean stop, 1 runtime/setup failure (root, port, logs),
 * 2 bad command line or config file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/wharfd/wharfd.h"

static const char *const model_names[] = {"reuseport", "exclusive", "oneshot", "dispatch"};

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

/* "127.0.0.1" -> "127.0.0.1:PORT", "::1" -> "[::1]:PORT", "8080" ->
 * "0.0.0.0:8080", "localhost:80" -> "127.0.0.1:80"; others unchanged. */
static void normalize_addr(const char *in, int port, char *out, size_t cap)
{
    if (strncmp(in, "unix:", 5) == 0 || strncmp(in, "tcp://", 6) == 0) {
        snprintf(out, cap, "%s", in);
        return;
    }
    if (strncmp(in, "localhost", 9) == 0 && (in[9] == '\0' || in[9] == ':')) {
        if (in[9] == ':')
            snprintf(out, cap, "127.0.0.1%s", in + 9);
        else
            snprintf(out, cap, "127.0.0.1:%d", port);
        return;
    }
    if (in[0] == '[') {
        if (strstr(in, "]:"))
            snprintf(out, cap, "%s", in);
        else
            snprintf(out, cap, "%s:%d", in, port);
        return;
    }
    if (in[0] == ':') {
        snprintf(out, cap, "0.0.0.0%s", in);
        return;
    }
    if (strspn(in, "0123456789") == strlen(in)) {
        snprintf(out, cap, "0.0.0.0:%s", in);
        return;
    }
    const char *c1 = strchr(in, ':');
    if (!c1)
        snprintf(out, cap, "%s:%d", in, port);
    else if (strchr(c1 + 1, ':'))
        snprintf(out, cap, "[%s]:%d", in, port);
    else
        snprintf(out, cap, "%s", in);
}

static int listen_on(wh_server *s, const char *addr, const char *what, wh_tls_ctx *tls)
{
    int rc = wh_server_listen_tls(s, addr, tls);
    if (rc != 0) {
        const char *hint = rc == -EADDRINUSE ? " (another process is using it)"
                           : rc == -EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                           : rc == -EINVAL ? " (expected HOST:PORT, [V6]:PORT or unix:/PATH)"
                                           : "";
        fprintf(stderr, "wharfd: cannot listen on %s%s: %s%s\n", addr, what, wh_strerror(rc), hint);
    }
    return rc;
}

static void log_listeners(wh_server *s, unsigned n, const char *what, uint32_t tls_mask)
{
    for (unsigned i = 0; i < n; i++) {
        wh_sockaddr a;
        char buf[160];
        if (wh_server_local_addr(s, i, &a) == 0 && wh_addr_format(&a, buf, sizeof buf) > 0)
            wharfd_log(WHARFD_LOG_INFO, "listening on %s%s%s", buf, what,
                       (tls_mask >> i) & 1 ? " (TLS)" : "");
    }
}

/* ---- signals on the main thread ---- */

struct sigstate {
    wharfd_app *app;
    wh_loop *loop;
    int stops;
};

static void on_signal(wh_signal *sig, int signo, void *ud)
{
    (void)sig;
    struct sigstate *ss = ud;
    if (signo == SIGHUP) {
        int rc = wharfd_log_reopen();
        if (rc)
            wharfd_log(WHARFD_LOG_ERROR, "SIGHUP: reopening logs failed: %s", wh_strerror(rc));
        else
            wharfd_log(WHARFD_LOG_INFO, "SIGHUP: logs reopened");
        wharfd_tls_reload(ss->app);
        return;
    }
    ss->stops++;
    wharfd_log(WHARFD_LOG_INFO, "%s: %s", signo == SIGINT ? "SIGINT" : "SIGTERM",
               ss->stops == 1 ? "stopping gracefully" : "stopping now");
    wh_server_stop(ss->app->srv, ss->stops == 1);
    if (ss->app->admin_srv) wh_server_stop(ss->app->admin_srv, false);
    wh_loop_stop(ss->loop);
}

/* ---- run: each step returns 0 or the exit status (1), in this order ---- */

/* The root: checked before anything binds, with a message that names it. */
static int open_root(wharfd_app *app)
{
    wharfd_config *cfg = &app->cfg;
    struct stat st;
    if (stat(cfg->root, &st) != 0) {
        fprintf(stderr, "wharfd: root directory '%s': %s\n", cfg->root, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "wharfd: root '%s' is not a directory\n", cfg->root);
        return 1;
    }
    wh_static_opts so;
    wh_static_opts_init(&so);
    so.index = cfg->index;
    so.listing = cfg->listing;
    so.show_dotfiles = cfg->show_dotfiles;
    so.follow_symlinks = cfg->follow_symlinks;
    so.cache_control = cfg->cache_control;
    int rc = wh_static_root_open(&app->root, cfg->root, &so);
    if (rc != 0) {
        fprintf(stderr, "wharfd: root directory '%s': %s\n", cfg->root, wh_strerror(rc));
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
    sopts.max_conns = cfg->max_conns;
    sopts.handle_signals = false;                           /* main's loop does it (SIGHUP too) */
    bool front = cfg->tls.redirect_port || cfg->tls.hsts_s; /* tls_config.c */
    if ((rc = wh_http_server_new(&app->http, &ho, front ? wharfd_tls_front : wh_router_handle,
                                 front ? (void *)app : (void *)app->router)) != 0) {
        fprintf(stderr, "wharfd: cannot create the server: %s\n", wh_strerror(rc));
        return 1;
    }
    wh_http_server_net_opts(app->http, &sopts.net);
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

/* Binds the main listeners; *nls gets how many. */
static int listen_main(wharfd_app *app, unsigned *nls)
{
    wharfd_config *cfg = &app->cfg;
    wh_server *base = app->srv;
    char addr[512];
    *nls = 0;
    if (cfg->nbinds == 0) {
        /* Dual-stack [::] first (IPv4 and IPv6); an IPv4-only host falls
         * back to 0.0.0.0. */
        snprintf(addr, sizeof addr, "[::]:%d", cfg->port);
        int rc = wh_server_listen(base, addr);
        if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) {
            snprintf(addr, sizeof addr, "0.0.0.0:%d", cfg->port);
            rc = wh_server_listen(base, addr);
        }
        if (rc != 0) {
            listen_on(base, addr, "", NULL); /* reports */
            return 1;
        }
        *nls = 1;
    }
    for (unsigned i = 0; i < cfg->nbinds; i++, (*nls)++) {
        const char *b = cfg->binds[i];
        bool tls = wharfd_tls_scheme(&b); /* https://HOST:PORT */
        normalize_addr(b, cfg->port, addr, sizeof addr);
        if (listen_on(base, addr, "", tls ? app->tls : NULL) != 0) return 1;
        if (tls) app->tls_listeners |= 1u << *nls;
    }
    wh_server_on_thread(base, thread_start, thread_stop, app);
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
    aso.offload_threads = 1;
    if ((rc = wh_http_server_new(&app->admin, &ao, wh_router_handle, app->admin_router)) != 0)
        goto oom;
    wh_http_server_net_opts(app->admin, &aso.net);
    if ((rc = wh_server_new(&app->admin_srv, &aso, wh_http_server_cbs(app->admin), app->admin)) !=
        0)
        goto oom;
    char addr[512];
    normalize_addr(cfg->admin, cfg->port, addr, sizeof addr);
    if (listen_on(app->admin_srv, addr, " (--admin)", NULL) != 0) return 1;
    wh_server_on_thread(app->admin_srv, admin_thread_start, admin_thread_stop, app);
    return 0;
oom:
    fprintf(stderr, "wharfd: %s\n", wh_strerror(rc));
    return 1;
}

/* Starts the worker threads of both servers and says what listens where. */
static int start_servers(wharfd_app *app, unsigned nls)
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
    wharfd_log(WHARFD_LOG_INFO, "wharfd %s: root %s, %u threads, model %s", WH_VERSION,
               app->root.real, wh_server_threads(base), model_names[app->cfg.model & 3]);
    log_listeners(base, nls, "", app->tls_listeners);
    if (app->admin_srv) log_listeners(app->admin_srv, 1, " (admin)", 0);
    if (!app->cfg.admin && !app->cfg.metrics_public)
        wharfd_log(WHARFD_LOG_INFO,
                   "/metrics is not served: give --admin ADDR or --metrics-public");
    return 0;
}

/* The main thread's own loop: signals only, until a stop; then waits for
 * the workers. */
static void serve_signals(wharfd_app *app)
{
    wh_loop *loop = NULL;
    struct sigstate ss = {app, NULL, 0};
    wh_signal *sigs[3] = {NULL, NULL, NULL};
    static const int signos[3] = {SIGINT, SIGTERM, SIGHUP};
    if (wh_loop_new(&loop, NULL) == 0) {
        ss.loop = loop;
        for (int i = 0; i < 3; i++)
            wh_signal_new(loop, signos[i], on_signal, &ss, &sigs[i]);
        wh_loop_run(loop, WH_RUN_DEFAULT);
        for (int i = 0; i < 3; i++)
            if (sigs[i]) wh_signal_free(sigs[i]);
        wh_loop_free(loop);
    } else {
        wharfd_log(WHARFD_LOG_ERROR, "cannot create the signal loop; running without it");
    }
    wh_server_wait(app->srv);
    if (app->admin_srv) wh_server_wait(app->admin_srv);
    wharfd_log(WHARFD_LOG_INFO, "stopped");
}

static int run(wharfd_app *app)
{
    unsigned nls = 0;
    if (open_root(app) || setup_tls(app) || build_main_server(app) || mount_extensions(app) ||
        listen_main(app, &nls) || (app->cfg.admin && build_admin(app)) || start_servers(app, nls))
        return 1;
    serve_signals(app);
    return 0;
}

int main(int argc, char **argv)
{
    static wharfd_app app;
    wharfd_the_app = &app;
    int rc = wharfd_config_load(&app.cfg, argc, argv);
    if (rc != 0) {
        wharfd_config_free(&app.cfg);
        return rc > 0 ? 0 : 2;
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
    if (app.root.mime) wh_static_root_close(&app.root);
    wharfd_log_close();
    wharfd_config_free(&app.cfg);
    return rc;
}
