/* wharfd's listening sockets: inherited or bound, and which configured
 * address each listener serves.
 *
 * Inherited sockets follow systemd's convention (sd_listen_fds(3)):
 * $LISTEN_PID is our pid, $LISTEN_FDS = N sockets at fds 3..3+N-1,
 * $LISTEN_FDNAMES = their names separated by ':'. They come from
 *  - systemd socket activation (deploy/wharfd.socket): names are the
 *    socket unit's FileDescriptorName= ("http", "admin"); a configured
 *    address bound to the same address takes the socket, and sockets no
 *    configured address names are served anyway (the socket unit is then
 *    the configuration), "admin" ones on the admin server;
 *  - the old wharfd of an upgrade (upgrade.c, $WHARFD_UPGRADE set): names
 *    are "http=ADDR" / "admin=ADDR" with ADDR the configured address
 *    ("127.0.0.1%3A0": ':' is the separator), so even a port-0 address finds
 *    its socket again; a socket whose address left the configuration is
 *    closed (the old process still serves it until it drains).
 * Every socket of an address is handed to the server (wh_server_listen_fd),
 * so a REUSEPORT group survives whole and no accept queue is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apps/wharfd/ops.h"
#include "apps/wharfd/tls_config.h"
#include "apps/wharfd/wharfd.h"

#define MAX_INHERIT 256

static struct {
    int fd;
    char name[300];
    bool used;
} inh[MAX_INHERIT];
static int ninh;
static bool from_upgrade;
static int ready_fd = -1;

void wharfd_inherit_init(void)
{
    const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    const char *up = getenv("WHARFD_UPGRADE"), *rfd = getenv("WHARFD_READY_FD");
    if (pid && nfds && strtol(pid, NULL, 10) == (long)getpid()) {
        long n = strtol(nfds, NULL, 10);
        if (n < 0) n = 0;
        if (n > MAX_INHERIT) n = MAX_INHERIT; /* the rest stay unused */
        const char *p = names;
        for (int i = 0; i < n; i++) {
            inh[i].fd = 3 + i;
            const char *e = p ? strchr(p, ':') : NULL;
            size_t len = p ? (e ? (size_t)(e - p) : strlen(p)) : 0;
            if (len >= sizeof inh[i].name) len = sizeof inh[i].name - 1;
            if (p) memcpy(inh[i].name, p, len);
            inh[i].name[len] = '\0';
            p = e ? e + 1 : NULL;
            /* Until a server owns them: not for other children. */
            fcntl(inh[i].fd, F_SETFD, FD_CLOEXEC);
        }
        ninh = (int)n;
        from_upgrade = up != NULL;
        if (rfd && from_upgrade) {
            ready_fd = (int)strtol(rfd, NULL, 10);
            fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
        }
    }
    /* Ours alone: a program we start later must not take them for its own. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    unsetenv("WHARFD_UPGRADE");
    unsetenv("WHARFD_READY_FD");
}

bool wharfd_inherit_is_upgrade(void)
{
    return from_upgrade;
}

void wharfd_inherit_ready(void)
{
    if (ready_fd < 0) return;
    static const char msg[] = "READY\n";
    ssize_t w = write(ready_fd, msg, sizeof msg - 1);
    (void)w;
    close(ready_fd);
    ready_fd = -1;
}

/* "127.0.0.1" -> "127.0.0.1:PORT", "::1" -> "[::1]:PORT", "8080" ->
 * "0.0.0.0:8080", "localhost:80" -> "127.0.0.1:80"; others unchanged. */
void wharfd_normalize_addr(const char *in, int port, char *out, size_t cap)
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

/* --bind i without its https:// (*tls says whether it had it), normalized. */
static void bind_addr(const wharfd_config *cfg, unsigned i, char *out, size_t cap, bool *tls)
{
    const char *b = cfg->binds[i];
    bool t = wharfd_tls_scheme(&b);
    if (tls) *tls = t;
    wharfd_normalize_addr(b, cfg->port, out, cap);
}

/* "http=" + addr with '%' and ':' percent-encoded. */
static void fd_name(const char *role, const char *addr, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s=", role);
    for (const char *p = addr; *p && n + 4 < cap; p++) {
        if (*p == ':' || *p == '%')
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p);
        else
            out[n++] = *p;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

static bool same_sockaddr(int fd, const char *addr)
{
    wh_sockaddr want, got;
    if (wh_addr_parse(addr, &want, NULL) != 0) return false;
    socklen_t sl = sizeof got.u.raw;
    if (getsockname(fd, (struct sockaddr *)got.u.raw, &sl) != 0) return false;
    return sl == want.len && memcmp(got.u.raw, want.u.raw, sl) == 0;
}

static void report(const char *addr, const char *what, int rc)
{
    const char *hint = rc == -EADDRINUSE ? " (another process is using it)"
                       : rc == -EACCES   ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                       : rc == -EINVAL   ? " (expected HOST:PORT, [V6]:PORT or unix:/PATH)"
                                         : "";
    wharfd_log(WHARFD_LOG_ERROR, "cannot listen on %s%s: %s%s", addr, what, wh_strerror(rc), hint);
}

static wharfd_bound *bound_add(wharfd_app *app, const char *addr, int idx, bool admin, bool tls)
{
    if (app->nbound >= WHARFD_MAX_BOUND) return NULL;
    wharfd_bound *b = &app->bound[app->nbound++];
    snprintf(b->addr, sizeof b->addr, "%s", addr);
    b->idx = idx;
    b->admin = admin;
    b->tls = tls;
    return b;
}

/* Serves addr on srv: its inherited sockets if there are any, else a new
 * one. Returns the listener index or negative errno. */
static int listen_addr(wh_server *srv, const char *addr, bool admin, wh_tls_ctx *tls)
{
    char name[320];
    fd_name(admin ? "admin" : tls ? "https" : "http", addr, name, sizeof name);
    int idx = -1;
    for (int i = 0; i < ninh; i++) {
        if (inh[i].used) continue;
        bool mine =
            strcmp(inh[i].name, name) == 0 || (!from_upgrade && same_sockaddr(inh[i].fd, addr));
        if (!mine) continue;
        int rc = wh_server_listen_fd_tls(srv, inh[i].fd, tls);
        if (rc < 0) return rc;
        inh[i].used = true;
        idx = rc;
    }
    if (idx >= 0) return idx;
    return wh_server_listen_add_tls(srv, addr, tls);
}

int wharfd_listen_setup(wharfd_app *app)
{
    wharfd_config *cfg = &app->cfg;
    char addr[300];
    int rc;
    /* systemd sockets no configured address claims: the socket unit is the
     * configuration. First, so that the default address is not bound on
     * top of them. */
    bool systemd_main = false;
    if (!from_upgrade) {
        for (int i = 0; i < ninh; i++) {
            bool admin = strcmp(inh[i].name, "admin") == 0;
            bool claimed = false;
            for (unsigned b = 0; b < cfg->nbinds && !claimed; b++) {
                bind_addr(cfg, b, addr, sizeof addr, NULL);
                claimed = same_sockaddr(inh[i].fd, addr);
            }
            if (cfg->admin && !claimed) {
                wharfd_normalize_addr(cfg->admin, cfg->port, addr, sizeof addr);
                claimed = same_sockaddr(inh[i].fd, addr);
            }
            if (claimed) continue;
            wh_server *srv = admin ? app->admin_srv : app->srv;
            if (!srv) {
                fprintf(stderr,
                        "wharfd: systemd passed an 'admin' socket but --admin is not set\n");
                return -1;
            }
            if ((rc = wh_server_listen_fd(srv, inh[i].fd)) < 0) {
                fprintf(stderr, "wharfd: inherited socket %d (%s): %s\n", inh[i].fd, inh[i].name,
                        wh_strerror(rc));
                return -1;
            }
            inh[i].used = true;
            snprintf(addr, sizeof addr, "fd:%s", inh[i].name);
            bound_add(app, addr, rc, admin, false);
            if (!admin) systemd_main = true;
        }
    }
    if (cfg->nbinds == 0 && !systemd_main) {
        /* Dual-stack [::] first (IPv4 and IPv6); an IPv4-only host falls
         * back to 0.0.0.0. */
        snprintf(addr, sizeof addr, "[::]:%d", cfg->port);
        rc = listen_addr(app->srv, addr, false, NULL);
        if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) {
            snprintf(addr, sizeof addr, "0.0.0.0:%d", cfg->port);
            rc = listen_addr(app->srv, addr, false, NULL);
        }
        if (rc < 0) {
            report(addr, "", rc);
            fprintf(stderr, "wharfd: cannot listen on %s: %s\n", addr, wh_strerror(rc));
            return -1;
        }
        bound_add(app, addr, rc, false, false);
    }
    for (unsigned i = 0; i < cfg->nbinds; i++) {
        bool tls;
        bind_addr(cfg, i, addr, sizeof addr, &tls);
        if ((rc = listen_addr(app->srv, addr, false, tls ? app->tls : NULL)) < 0) {
            fprintf(stderr, "wharfd: cannot listen on %s: %s\n", addr, wh_strerror(rc));
            return -1;
        }
        if (!bound_add(app, addr, rc, false, tls)) {
            fprintf(stderr, "wharfd: too many listeners\n");
            return -1;
        }
    }
    if (cfg->admin) {
        wharfd_normalize_addr(cfg->admin, cfg->port, addr, sizeof addr);
        if ((rc = listen_addr(app->admin_srv, addr, true, NULL)) < 0) {
            fprintf(stderr, "wharfd: cannot listen on %s (--admin): %s\n", addr, wh_strerror(rc));
            return -1;
        }
        bound_add(app, addr, rc, true, false);
    }
    /* An upgrade's sockets whose address left the configuration: the old
     * process drains them; we do not serve them. */
    for (int i = 0; i < ninh; i++) {
        if (!inh[i].used) {
            wharfd_log(WHARFD_LOG_INFO, "inherited socket '%s' is not configured: closed",
                       inh[i].name);
            close(inh[i].fd);
            inh[i].used = true;
        }
    }
    return 0;
}

void wharfd_listen_log(wharfd_app *app)
{
    for (unsigned i = 0; i < app->nbound; i++) {
        const wharfd_bound *b = &app->bound[i];
        wh_sockaddr a;
        char buf[160];
        wh_server *srv = b->admin ? app->admin_srv : app->srv;
        if (wh_server_local_addr(srv, (unsigned)b->idx, &a) == 0 &&
            wh_addr_format(&a, buf, sizeof buf) > 0)
            wharfd_log(WHARFD_LOG_INFO, "listening on %s%s%s", buf, b->admin ? " (admin)" : "",
                       b->tls ? " (TLS)" : "");
    }
}

static bool configured(const wharfd_config *cfg, const wharfd_bound *b)
{
    char addr[300];
    if (strncmp(b->addr, "fd:", 3) == 0) return true; /* systemd's: the socket unit decides */
    if (b->admin) {
        if (!cfg->admin) return false;
        wharfd_normalize_addr(cfg->admin, cfg->port, addr, sizeof addr);
        return strcmp(addr, b->addr) == 0;
    }
    if (cfg->nbinds == 0) {
        snprintf(addr, sizeof addr, "[::]:%d", cfg->port);
        if (strcmp(addr, b->addr) == 0) return true;
        snprintf(addr, sizeof addr, "0.0.0.0:%d", cfg->port);
        return strcmp(addr, b->addr) == 0;
    }
    for (unsigned i = 0; i < cfg->nbinds; i++) {
        bool tls;
        bind_addr(cfg, i, addr, sizeof addr, &tls);
        if (strcmp(addr, b->addr) == 0 && tls == b->tls) return true;
    }
    return false;
}

static bool is_bound(const wharfd_app *app, const char *addr, bool admin, bool tls)
{
    for (unsigned i = 0; i < app->nbound; i++)
        if (app->bound[i].admin == admin && app->bound[i].tls == tls &&
            strcmp(app->bound[i].addr, addr) == 0)
            return true;
    return false;
}

static int add_one(wharfd_app *app, const char *addr, bool admin, bool tls)
{
    wh_server *srv = admin ? app->admin_srv : app->srv;
    if (is_bound(app, addr, admin, tls)) return 0;
    if (tls && !app->tls) {
        wharfd_log(WHARFD_LOG_ERROR,
                   "reload: https://%s needs a restart or an upgrade (SIGUSR2): TLS was not set "
                   "up at start",
                   addr);
        return 1;
    }
    if (admin && !srv) {
        wharfd_log(WHARFD_LOG_ERROR,
                   "reload: --admin %s needs a restart or an upgrade (SIGUSR2): no admin server "
                   "was started",
                   addr);
        return 1;
    }
    int rc = wh_server_listen_add_tls(srv, addr, tls ? app->tls : NULL);
    if (rc < 0) {
        report(addr, admin ? " (admin)" : "", rc);
        return 1;
    }
    wh_sockaddr a;
    char buf[160] = "?";
    if (wh_server_local_addr(srv, (unsigned)rc, &a) == 0) wh_addr_format(&a, buf, sizeof buf);
    if (!bound_add(app, addr, rc, admin, tls)) {
        wh_server_unlisten(srv, (unsigned)rc);
        wharfd_log(WHARFD_LOG_ERROR, "reload: too many listeners for %s", addr);
        return 1;
    }
    wharfd_log(WHARFD_LOG_INFO, "listening on %s%s%s", buf, admin ? " (admin)" : "",
               tls ? " (TLS)" : "");
    return 0;
}

int wharfd_listen_apply(wharfd_app *app, const wharfd_config *cfg)
{
    int errs = 0;
    char addr[300];
    /* New ones first: an address that moves is never without a listener. */
    if (cfg->nbinds == 0) {
        snprintf(addr, sizeof addr, "[::]:%d", cfg->port);
        char v4[300];
        snprintf(v4, sizeof v4, "0.0.0.0:%d", cfg->port);
        bool have = is_bound(app, addr, false, false) || is_bound(app, v4, false, false);
        for (unsigned i = 0; i < app->nbound && !have; i++)
            have = strncmp(app->bound[i].addr, "fd:", 3) == 0 && !app->bound[i].admin;
        if (!have) errs += add_one(app, addr, false, false);
    }
    for (unsigned i = 0; i < cfg->nbinds; i++) {
        bool tls;
        bind_addr(cfg, i, addr, sizeof addr, &tls);
        errs += add_one(app, addr, false, tls);
    }
    if (cfg->admin) {
        wharfd_normalize_addr(cfg->admin, cfg->port, addr, sizeof addr);
        errs += add_one(app, addr, true, false);
    }
    for (unsigned i = 0; i < app->nbound;) {
        wharfd_bound *b = &app->bound[i];
        if (configured(cfg, b)) {
            i++;
            continue;
        }
        wh_server *srv = b->admin ? app->admin_srv : app->srv;
        wh_sockaddr a;
        char buf[160] = "?";
        if (wh_server_local_addr(srv, (unsigned)b->idx, &a) == 0)
            wh_addr_format(&a, buf, sizeof buf);
        int rc = wh_server_unlisten(srv, (unsigned)b->idx);
        if (rc < 0) {
            wharfd_log(WHARFD_LOG_ERROR, "reload: cannot stop listening on %s: %s", buf,
                       wh_strerror(rc));
            errs++;
            i++;
            continue;
        }
        wharfd_log(WHARFD_LOG_INFO, "no longer listening on %s%s", buf, b->admin ? " (admin)" : "");
        *b = app->bound[--app->nbound];
    }
    return errs;
}

int wharfd_listen_handover(wharfd_app *app, int *fds, int cap, char *names, size_t names_cap)
{
    int n = 0;
    size_t used = 0;
    names[0] = '\0';
    for (int s = 0; s < 2; s++) {
        wh_server *srv = s ? app->admin_srv : app->srv;
        if (!srv) continue;
        int tmp[512];
        unsigned which[512];
        unsigned k = wh_server_listen_fds(srv, tmp, which, 512);
        if (k > 512 || n + (int)k > cap) return -1;
        for (unsigned j = 0; j < k; j++) {
            const wharfd_bound *b = NULL;
            for (unsigned i = 0; i < app->nbound; i++)
                if (app->bound[i].admin == (s == 1) && app->bound[i].idx == (int)which[j])
                    b = &app->bound[i];
            char name[320];
            if (!b)
                snprintf(name, sizeof name, "unknown");
            else if (strncmp(b->addr, "fd:", 3) == 0) /* systemd's: keep its name */
                snprintf(name, sizeof name, "%s", b->addr + 3);
            else
                fd_name(s ? "admin" : b->tls ? "https" : "http", b->addr, name, sizeof name);
            size_t len = strlen(name);
            if (used + len + 2 > names_cap) return -1;
            if (n) names[used++] = ':';
            memcpy(names + used, name, len + 1);
            used += len;
            fds[n++] = tmp[j];
        }
    }
    return n;
}
