/* SIGHUP: configuration reload without dropping a connection.
 *
 * The command line and the config file are read again into a new
 * configuration. Anything wrong (a bad value: "FILE:LINE: reason"; a root
 * that is not a directory; a log file that cannot be opened; an address
 * that does not parse) is logged and nothing changes. Otherwise it is
 * applied:
 *  - document root, index, listing, dotfiles, symlinks, Cache-Control: a
 *    new site (the root directory opened again: a root that is a symlink
 *    switched to a new release is followed). Each worker moves to it as a
 *    loop task, between two requests; a response under way finishes from
 *    what it already holds, and the old site closes when the last thread
 *    has left it. A keep-alive connection stays open, and its next request
 *    is served from the new root;
 *  - header and keep-alive timeouts (from the next time each is armed),
 *    --max-conns (for connections accepted from now on), --drain-delay;
 *  - error log path and level, access log path; both reopened after what
 *    is buffered, even when unchanged (logrotate's "reload" habit);
 *  - listeners: new addresses are bound first, then the ones gone from the
 *    configuration stop (their queues accepted and served first);
 *  - TLS certificates: apply_tls below, the one place for them.
 * Settings that shape the process (threads, model, Redis, mounts, --user,
 * --pid-file, --shutdown-timeout, the PROXY protocol options, adding
 * --admin) are reported and left
 * for an upgrade (SIGUSR2), which starts a new process on the same sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apps/wharfd/ops.h"
#include "apps/wharfd/tls_config.h"
#include "apps/wharfd/wharfd.h"

struct old_cfg {
    struct old_cfg *next;
    wharfd_config cfg;
};

/* ---- sites ---- */

wharfd_site *wharfd_site_open(const wharfd_config *cfg, char *err, size_t cap)
{
    struct stat st;
    if (stat(cfg->root, &st) != 0) {
        snprintf(err, cap, "root directory '%s': %s", cfg->root, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "root '%s' is not a directory", cfg->root);
        return NULL;
    }
    wharfd_site *site = calloc(1, sizeof *site);
    if (!site) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    wh_static_opts so;
    wh_static_opts_init(&so);
    so.index = cfg->index;
    so.listing = cfg->listing;
    so.show_dotfiles = cfg->show_dotfiles;
    so.follow_symlinks = cfg->follow_symlinks;
    so.cache_control = cfg->cache_control;
    int rc = wh_static_root_open(&site->root, cfg->root, &so);
    if (rc != 0) {
        snprintf(err, cap, "root directory '%s': %s", cfg->root, wh_strerror(rc));
        free(site);
        return NULL;
    }
    site->refs = 1;
    return site;
}

void wharfd_site_ref(wharfd_site *site, unsigned n)
{
    __atomic_fetch_add(&site->refs, n, __ATOMIC_RELAXED);
}

void wharfd_site_unref(wharfd_site *site)
{
    if (!site || __atomic_sub_fetch(&site->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    wh_static_root_close(&site->root);
    free(site);
}

static void site_task(wh_loop *loop, void *arg)
{
    (void)loop;
    wharfd_site *site = arg;
    wharfd_thread *t = wharfd_thread_current();
    if (!t) { /* a thread that is gone or never set up */
        wharfd_site_unref(site);
        return;
    }
    int rc = wharfd_thread_set_site(t, site);
    if (rc != 0)
        wharfd_log(WHARFD_LOG_ERROR, "reload: a worker keeps the old root: %s", wh_strerror(rc));
}

/* Moves every thread of both servers to site (which holds the app's
 * reference already). */
static void switch_site(wharfd_app *app, wharfd_site *site)
{
    unsigned n = wh_server_threads(app->srv);
    wharfd_site_ref(site, n + (app->admin_srv ? 1 : 0));
    for (unsigned i = 0; i < n; i++)
        if (wh_loop_post(wh_server_loop(app->srv, i), site_task, site) < 0) wharfd_site_unref(site);
    if (app->admin_srv && wh_loop_post(wh_server_loop(app->admin_srv, 0), site_task, site) < 0)
        wharfd_site_unref(site);
    wharfd_site *old = app->site;
    __atomic_store_n(&app->site, site, __ATOMIC_RELEASE);
    wharfd_site_unref(old);
}

/* ---- checks before anything changes ---- */

static int check_log_path(const char *path, char *err, size_t cap, const char *what)
{
    if (!path || strcmp(path, "-") == 0 || strcmp(path, "off") == 0) return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, cap, "cannot open %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

int wharfd_config_check_addrs(const wharfd_config *cfg, char *err, size_t cap)
{
    char addr[300];
    wh_sockaddr sa;
    for (unsigned i = 0; i < cfg->nbinds + (cfg->admin ? 1 : 0); i++) {
        const char *a = i < cfg->nbinds ? cfg->binds[i] : cfg->admin;
        const char *b = a;
        if (i < cfg->nbinds) wharfd_tls_scheme(&b); /* https://HOST:PORT */
        wharfd_normalize_addr(b, cfg->port, addr, sizeof addr);
        if (wh_addr_parse(addr, &sa, NULL) != 0) {
            snprintf(err, cap, "invalid address '%s' (expected HOST:PORT, [V6]:PORT or unix:/PATH)",
                     a);
            return -1;
        }
    }
    return 0;
}

static bool str_changed(const char *a, const char *b)
{
    if (!a || !b) return a != b;
    return strcmp(a, b) != 0;
}

/* What a reload cannot change in a running process: logged, kept. */
static void report_fixed(const wharfd_config *o, const wharfd_config *n, bool have_admin)
{
    struct {
        bool changed;
        const char *name;
    } f[] = {
        {o->threads != n->threads, "threads"},
        {o->model != n->model, "model"},
        {str_changed(o->backend, n->backend), "backend"},
        {str_changed(o->redis, n->redis), "redis"},
        {o->ws_echo != n->ws_echo, "ws-echo"},
        {o->metrics_public != n->metrics_public, "metrics-public"},
        {o->guestbook_rate != n->guestbook_rate, "guestbook-rate"},
        {str_changed(o->user, n->user), "user"},
        {str_changed(o->pid_file, n->pid_file), "pid-file"},
        {o->shutdown_timeout_ms != n->shutdown_timeout_ms, "shutdown-timeout"},
        {!have_admin && n->admin, "admin"},
        {o->proxy_protocol != n->proxy_protocol, "proxy-protocol"},
        {strcmp(o->proxy_trusted, n->proxy_trusted) != 0, "proxy-trusted"},
        {o->proxy_timeout_ms != n->proxy_timeout_ms, "proxy-timeout"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].changed)
            wharfd_log(WHARFD_LOG_WARN,
                       "reload: '%s' changed; it takes effect at the next upgrade (SIGUSR2) or "
                       "restart",
                       f[i].name);
}

/* TLS certificates and keys: the one place a reload re-reads them
 * (tls_config.c: the files named at start, swapped in for new handshakes;
 * a bad file keeps the old certificate and is logged). Other --tls-*
 * options take an upgrade. 0 or -1. */
static int apply_tls(wharfd_app *app, const wharfd_config *old, const wharfd_config *cfg)
{
    (void)old;
    (void)cfg;
    return app->tls && wharfd_tls_reload(app) != 0 ? -1 : 0;
}

void wharfd_reload(wharfd_app *app)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    wharfd_sd_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
                     (unsigned long long)ts.tv_sec * 1000000ull +
                         (unsigned long long)ts.tv_nsec / 1000);
    const wharfd_config *old = app->cur ? app->cur : &app->cfg;
    struct old_cfg *box = calloc(1, sizeof *box);
    char err[1024] = "";
    if (!box) {
        wharfd_log(WHARFD_LOG_ERROR, "reload: out of memory; configuration unchanged");
        goto done;
    }
    wharfd_config *nc = &box->cfg;
    wharfd_config_capture(err, sizeof err);
    int rc = wharfd_config_load(nc, app->argc, app->argv);
    wharfd_config_capture(NULL, 0);
    wharfd_site *site = NULL;
    if (rc == 0 && wharfd_config_check_addrs(nc, err, sizeof err) != 0) rc = -1;
    if (rc == 0 && (check_log_path(nc->error_log, err, sizeof err, "error log") != 0 ||
                    check_log_path(nc->access_log, err, sizeof err, "access log") != 0))
        rc = -1;
    if (rc == 0 && !(site = wharfd_site_open(nc, err, sizeof err))) rc = -1;
    if (rc != 0) {
        wharfd_log(WHARFD_LOG_ERROR, "reload: %s; configuration unchanged",
                   err[0] ? err : "invalid configuration");
        wharfd_config_free(nc);
        free(box);
        goto done;
    }
    report_fixed(old, nc, app->admin_srv != NULL);

    switch_site(app, site);
    wh_http_opts ho;
    wh_http_opts_init(&ho);
    ho.header_timeout_ms = nc->header_timeout_ms;
    ho.keepalive_timeout_ms = nc->keepalive_timeout_ms;
    wh_http_server_set_timeouts(app->http, &ho);
    if (nc->max_conns != old->max_conns) wh_server_set_max_conns(app->srv, nc->max_conns);
    if ((rc = wharfd_log_set_error(nc->error_log, nc->log_level)) != 0)
        wharfd_log(WHARFD_LOG_ERROR, "reload: error log '%s': %s", nc->error_log, wh_strerror(rc));
    if (!str_changed(old->access_log, nc->access_log)) {
        /* Same files: reopen them anyway, as a reload always did (logrotate
         * setups that run "systemctl reload" after moving the files). */
        wharfd_logs_reopen(app);
    } else {
        rc = wharfd_alog_reopen_queued(nc->access_log);
        if (rc == -ENOTSUP)
            wharfd_log(WHARFD_LOG_WARN, "reload: turning the access log on takes an upgrade "
                                        "(SIGUSR2) or restart");
        else if (rc != 0)
            wharfd_log(WHARFD_LOG_ERROR, "reload: access log '%s': %s", nc->access_log,
                       wh_strerror(rc));
    }
    int errs = wharfd_listen_apply(app, nc);
    errs += apply_tls(app, old, nc) != 0;
    /* The new configuration is the reference from now on; the old one
     * stays allocated (threads and options may still point at its
     * strings) until exit. */
    app->cur = nc;
    if (old != &app->cfg) {
        struct old_cfg *ob = (struct old_cfg *)((char *)old - offsetof(struct old_cfg, cfg));
        ob->next = app->reloaded;
        app->reloaded = ob;
    }
    box->next = NULL;
    wharfd_log(WHARFD_LOG_INFO, "SIGHUP: configuration reloaded: root %s%s", site->root.real,
               errs ? " (with errors above)" : "");
done:
    wharfd_sd_notify("READY=1\nSTATUS=serving");
}

void wharfd_reload_free(wharfd_app *app)
{
    const wharfd_config *cur = app->cur;
    if (cur && cur != &app->cfg) {
        struct old_cfg *ob = (struct old_cfg *)((char *)cur - offsetof(struct old_cfg, cfg));
        ob->next = app->reloaded;
        app->reloaded = ob;
    }
    for (struct old_cfg *o = app->reloaded; o;) {
        struct old_cfg *next = o->next;
        wharfd_config_free(&o->cfg);
        free(o);
        o = next;
    }
    app->reloaded = NULL;
    app->cur = NULL;
}
