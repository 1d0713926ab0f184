/* wharfd command line and config file. Every flag has the same name as a
 * config-file key ("keepalive-timeout = 5"), so one function applies both.
 * Errors are one line on stderr, prefixed "wharfd: ". */
#include <ctype.h>
#include <stdarg.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apps/wharfd/config.h"
#include "apps/wharfd/log.h"

enum {
    OPT_PORT = 'p',
    OPT_BIND = 'b',
    OPT_ROOT = 'r',
    OPT_CHECK_CONFIG = 't',
    OPT_HELP = 'h',
    OPT_VERSION = 'V',
    OPT_MODEL = 256,
    OPT_REDIS,
    OPT_DATA,
    OPT_KEEPALIVE,
    OPT_HEADER_TIMEOUT,
    OPT_MAX_CONNS,
    OPT_SNDBUF,
    OPT_DEFER_ACCEPT,
    OPT_ACCESS_LOG,
    OPT_ERROR_LOG,
    OPT_LOG_LEVEL,
    OPT_INDEX,
    OPT_LISTING,
    OPT_NO_LISTING,
    OPT_CACHE_CONTROL,
    OPT_FOLLOW_SYMLINKS,
    OPT_DOTFILES,
    OPT_ADMIN,
    OPT_CONFIG,
    OPT_WS_ECHO,
    OPT_METRICS_PUBLIC,
    OPT_GUESTBOOK_RATE,
    OPT_PROXY_PROTOCOL,
    OPT_PROXY_TRUSTED,
    OPT_PROXY_TIMEOUT,
    OPT_DRAIN_DELAY,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_USER,
    OPT_PID_FILE,
    OPT_THREADS, /* -t was its short form; it is --check-config now */
    OPT_BACKEND,
};

static const struct option longopts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"root", required_argument, NULL, OPT_ROOT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"data", required_argument, NULL, OPT_DATA},
    {"keepalive-timeout", required_argument, NULL, OPT_KEEPALIVE},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"sndbuf", required_argument, NULL, OPT_SNDBUF},
    {"defer-accept", required_argument, NULL, OPT_DEFER_ACCEPT},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"index", required_argument, NULL, OPT_INDEX},
    {"listing", no_argument, NULL, OPT_LISTING},
    {"no-listing", no_argument, NULL, OPT_NO_LISTING},
    {"cache-control", required_argument, NULL, OPT_CACHE_CONTROL},
    {"follow-symlinks", no_argument, NULL, OPT_FOLLOW_SYMLINKS},
    {"dotfiles", no_argument, NULL, OPT_DOTFILES},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"ws-echo", no_argument, NULL, OPT_WS_ECHO},
    {"metrics-public", no_argument, NULL, OPT_METRICS_PUBLIC},
    {"guestbook-rate", required_argument, NULL, OPT_GUESTBOOK_RATE},
    {"proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL},
    {"proxy-trusted", required_argument, NULL, OPT_PROXY_TRUSTED},
    {"proxy-timeout", required_argument, NULL, OPT_PROXY_TIMEOUT},
    /* TLS: the same entries as wharfd_tls_longopts (tls_config.c applies them). */
    {"tls-cert", required_argument, NULL, WHARFD_OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, WHARFD_OPT_TLS_KEY},
    {"tls-ocsp", required_argument, NULL, WHARFD_OPT_TLS_OCSP},
    {"tls-ciphers", required_argument, NULL, WHARFD_OPT_TLS_CIPHERS},
    {"tls-ciphersuites", required_argument, NULL, WHARFD_OPT_TLS_SUITES},
    {"tls-groups", required_argument, NULL, WHARFD_OPT_TLS_GROUPS},
    {"tls-min-version", required_argument, NULL, WHARFD_OPT_TLS_MIN_VERSION},
    {"redirect-https", required_argument, NULL, WHARFD_OPT_REDIRECT_HTTPS},
    {"hsts", required_argument, NULL, WHARFD_OPT_HSTS},
    {"access-log-tls", no_argument, NULL, WHARFD_OPT_ACCESS_LOG_TLS},
    {"drain-delay", required_argument, NULL, OPT_DRAIN_DELAY},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"user", required_argument, NULL, OPT_USER},
    {"pid-file", required_argument, NULL, OPT_PID_FILE},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "Usage: wharfd [OPTION]...\n"
    "Serve static files over HTTP/1.1 (default: ./public on port 8000).\n"
    "\n"
    "  -p, --port N               TCP port when no --bind is given (8000; 0 = any)\n"
    "  -b, --bind ADDR            listen address, repeatable: 0.0.0.0:8000, [::1]:8000,\n"
    "                             127.0.0.1 (uses --port), unix:/run/wharfd.sock\n"
    "  -r, --root DIR             document root (./public)\n"
    "      --threads N            worker threads (0 = one per CPU)\n"
    "      --model M              reuseport | exclusive | oneshot | dispatch (reuseport)\n"
    "      --backend B            event loop backend: epoll | io_uring (epoll; io_uring\n"
    "                             falls back to epoll where the kernel refuses it)\n"
    "      --redis HOST:PORT      Redis for the guestbook (none: SQLite in --data)\n"
    "      --data DIR             the guestbook's SQLite database directory (./data);\n"
    "                             :memory: keeps entries in memory (lost at exit)\n"
    "      --keepalive-timeout S  idle keep-alive timeout, seconds or Nms (5)\n"
    "      --header-timeout S     time allowed for a request head (10)\n"
    "      --max-conns N          open connections cap (0 = 3/4 of the open-files\n"
    "                             limit; unlimited = none)\n"
    "      --defer-accept S       TCP_DEFER_ACCEPT: a connection reaches wharfd when\n"
    "                             its first bytes do, or after about S seconds\n"
    "                             (1; 0 = off: a silent connection is accepted\n"
    "                             and its header timeout runs at once)\n"
    "      --sndbuf BYTES         kernel send buffer per connection, a cap on\n"
    "                             what a client that does not read holds in the\n"
    "                             kernel (0 = kernel autotuning, the default)\n"
    "      --access-log FILE      access log: FILE, - (stdout) or off (-)\n"
    "      --error-log FILE       error log: FILE or - (stderr) (-)\n"
    "      --log-level L          error | warn | info | debug (info)\n"
    "      --index NAME           index file for directories (index.html)\n"
    "      --listing              list directories without an index\n"
    "      --no-listing           do not list directories (default)\n"
    "      --cache-control V      Cache-Control header for files (none)\n"
    "      --follow-symlinks      allow symlinks that leave the root\n"
    "      --dotfiles             serve names starting with '.'\n"
    "      --admin ADDR           serve /metrics and /healthz on ADDR\n"
    "      --metrics-public       serve /metrics on the main listeners too (off)\n"
    "      --config FILE          read 'key = value' lines (keys are the long options)\n"
    "      --ws-echo              mount the /ws/echo WebSocket endpoint\n"
    "      --guestbook-rate N     guestbook posts a minute per client address\n"
    "                             (10; 0 = unlimited)\n"
    "      --proxy-protocol       every --bind connection starts with a PROXY v1/v2\n"
    "                             header (from a load balancer) naming the client\n"
    "      --proxy-trusted CIDR   peers allowed to send it, repeatable (10.0.0.0/8,\n"
    "                             ::1); others are closed (default: any peer)\n"
    "      --proxy-timeout S      time allowed for the PROXY header (5)\n"
    "      --drain-delay S        on SIGTERM keep accepting this long, /healthz\n"
    "                             answering 503, before closing the listeners (0)\n"
    "      --shutdown-timeout S   then wait this long for connections to finish (10)\n"
    "      --user USER[:GROUP]    drop to this user after binding (as root)\n"
    "      --pid-file FILE        write the process id there\n"
    "  -t, --check-config         check the command line and config file, then exit\n"
    "  -h, --help                 this text\n"
    "  -V, --version              version\n"
    "\n"
    "Signals: SIGTERM/SIGQUIT/SIGINT drain and stop (a second one stops at once);\n"
    "SIGHUP reloads the config file; SIGUSR1 reopens the logs; SIGUSR2 upgrades\n"
    "(starts the binary again with the listening sockets, then drains this one).\n";

static void defaults(wharfd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = 8000;
    cfg->root = "./public";
    cfg->threads = 0;
    cfg->model = WH_MODEL_REUSEPORT;
    cfg->redis = NULL; /* no --redis: the guestbook uses its embedded store */
    cfg->data_dir = "./data";
    snprintf(cfg->redis_host, sizeof cfg->redis_host, "127.0.0.1");
    cfg->redis_port = 6379;
    cfg->keepalive_timeout_ms = 5000;
    cfg->header_timeout_ms = 10000;
    cfg->access_log = "-";
    cfg->error_log = "-";
    cfg->log_level = WHARFD_LOG_INFO;
    cfg->index = "index.html";
    cfg->guestbook_rate = 10;
    cfg->proxy_timeout_ms = 5000;
    cfg->shutdown_timeout_ms = 10000;
    /* Every protocol wharfd speaks starts with the client's bytes (HTTP, TLS,
     * PROXY): a connection then costs accept, read, write and close with no
     * poller registration (bench/compare.sh connclose), and a silent one
     * stays a small half-open entry in the kernel (Apache's default too). */
    cfg->defer_accept_s = 1;
}

/* Errors: stderr, or the buffer a reload gave (wharfd_config_capture); the
 * place in the config file being read, if any, prefixes them. */
static char *err_buf;
static size_t err_cap;
static const char *where_path;
static int where_line;

void wharfd_config_capture(char *buf, size_t cap)
{
    err_buf = buf;
    err_cap = cap;
    if (buf && cap) buf[0] = '\0';
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n') msg[--n] = '\0';
    if (strncmp(msg, "wharfd: ", 8) == 0) memmove(msg, msg + 8, n - 7);
    char line[1400];
    if (where_path)
        snprintf(line, sizeof line, "%s:%d: %s", where_path, where_line, msg);
    else
        snprintf(line, sizeof line, "%s", msg);
    if (err_buf) {
        if (!err_buf[0]) snprintf(err_buf, err_cap, "%s", line); /* the first one */
        return;
    }
    fprintf(stderr, "wharfd: %s\n", line);
}

static int bad(const char *opt, const char *val, const char *why)
{
    say("wharfd: invalid value '%s' for --%s: %s\n", val, opt, why);
    return -1;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!*s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

/* "5" (seconds), "2.5", "500ms", "3s". */
static int parse_duration_ms(const char *s, uint32_t *out)
{
    char *end;
    if (!*s || !(isdigit((unsigned char)*s) || *s == '.')) return -1;
    double v = strtod(s, &end);
    if (strcmp(end, "ms") == 0)
        ;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        v *= 1000;
    else
        return -1;
    if (v < 0 || v > 86400000.0) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "yes", "true", "on", ""};
    static const char *no[] = {"0", "no", "false", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    return -1;
}

static int set_redis(wharfd_config *cfg, const char *v)
{
    const char *colon = strrchr(v, ':');
    unsigned long port = 6379;
    size_t hl = colon ? (size_t)(colon - v) : strlen(v);
    if (colon && parse_uint(colon + 1, 65535, &port) != 0) return -1;
    if (hl == 0 || hl >= sizeof cfg->redis_host || port == 0) return -1;
    memcpy(cfg->redis_host, v, hl);
    cfg->redis_host[hl] = '\0';
    cfg->redis_port = (int)port;
    cfg->redis = v;
    return 0;
}

/* An apply_* step's answer for an option of another step. */
#define NOT_MINE 1

/* Where to listen: the main and admin addresses, and the PROXY header
 * the listeners expect. */
static int apply_listen(wharfd_config *cfg, int id, const char *name, const char *val,
                        bool from_file, bool *cli_bind_seen)
{
    unsigned long u;
    switch (id) {
    case OPT_PORT:
        if (parse_uint(val, 65535, &u) != 0)
            return bad(name, val, "expected a port number 0-65535");
        cfg->port = (int)u;
        return 0;
    case OPT_BIND:
        if (!from_file && !*cli_bind_seen) {
            *cli_bind_seen = true;
            cfg->nbinds = 0;
        }
        if (!*val) return bad(name, val, "empty address");
        if (cfg->nbinds >= WHARFD_MAX_BINDS)
            return bad(name, val, "too many --bind addresses (16 at most)");
        cfg->binds[cfg->nbinds++] = val;
        return 0;
    case OPT_ADMIN:
        if (!*val) return bad(name, val, "expected an address");
        cfg->admin = val;
        return 0;
    case OPT_PROXY_TRUSTED: {
        /* Repeatable (and each value may itself be a comma list): joined
         * into the library's comma-separated form. */
        size_t have = strlen(cfg->proxy_trusted), vl = strlen(val);
        if (wh_net_proxy_trusted_check(val) != 0)
            return bad(name, val, "expected CIDRs like 10.0.0.0/8, 192.168.1.7 or ::1");
        if (have + vl + 2 > sizeof cfg->proxy_trusted) return bad(name, val, "list too long");
        if (have) cfg->proxy_trusted[have++] = ',';
        memcpy(cfg->proxy_trusted + have, val, vl + 1);
        return 0;
    }
    case OPT_PROXY_TIMEOUT:
        if (parse_duration_ms(val, &cfg->proxy_timeout_ms) != 0 || cfg->proxy_timeout_ms == 0)
            return bad(name, val, "expected a positive duration (5, 500ms)");
        return 0;
    default:
        return NOT_MINE;
    }
}

/* Threads, model, timeouts and the connection cap. */
static int apply_engine(wharfd_config *cfg, int id, const char *name, const char *val)
{
    unsigned long u;
    switch (id) {
    case OPT_THREADS:
        if (parse_uint(val, 1024, &u) != 0) return bad(name, val, "expected 0-1024");
        cfg->threads = (unsigned)u;
        return 0;
    case OPT_MODEL:
        if (strcmp(val, "reuseport") == 0)
            cfg->model = WH_MODEL_REUSEPORT;
        else if (strcmp(val, "exclusive") == 0)
            cfg->model = WH_MODEL_EXCLUSIVE;
        else if (strcmp(val, "oneshot") == 0)
            cfg->model = WH_MODEL_ONESHOT;
        else if (strcmp(val, "dispatch") == 0)
            cfg->model = WH_MODEL_DISPATCH;
        else
            return bad(name, val, "expected reuseport, exclusive, oneshot or dispatch");
        return 0;
    case OPT_BACKEND:
        if (strcmp(val, "epoll") == 0)
            cfg->backend = "epoll";
        else if (strcmp(val, "io_uring") == 0)
            cfg->backend = "io_uring";
        else
            return bad(name, val, "expected epoll or io_uring");
        return 0;
    case OPT_KEEPALIVE:
        if (parse_duration_ms(val, &cfg->keepalive_timeout_ms) != 0)
            return bad(name, val, "expected seconds (5, 2.5) or milliseconds (500ms)");
        return 0;
    case OPT_HEADER_TIMEOUT:
        if (parse_duration_ms(val, &cfg->header_timeout_ms) != 0 || cfg->header_timeout_ms == 0)
            return bad(name, val, "expected a positive duration (10, 500ms)");
        return 0;
    case OPT_MAX_CONNS:
        if (strcmp(val, "unlimited") == 0) {
            cfg->max_conns = UINT_MAX; /* the runtime's "no cap" */
            return 0;
        }
        if (parse_uint(val, 10000000, &u) != 0)
            return bad(name, val, "expected a count, 0 (from the open-files limit) or unlimited");
        cfg->max_conns = (unsigned)u;
        return 0;
    case OPT_DEFER_ACCEPT:
        if (parse_uint(val, 3600, &u) != 0)
            return bad(name, val, "expected seconds, 0 (off) to 3600");
        cfg->defer_accept_s = (int)u;
        return 0;
    case OPT_SNDBUF:
        /* Below 4 KiB the kernel raises it anyway; above 1 GiB is a typo. */
        if (parse_uint(val, 1u << 30, &u) != 0 || (u != 0 && u < 4096))
            return bad(name, val, "expected bytes, 4096 or more, or 0 (kernel autotuning)");
        cfg->sndbuf = (int)u;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* The logs. */
static int apply_logs(wharfd_config *cfg, int id, const char *name, const char *val)
{
    switch (id) {
    case OPT_ACCESS_LOG:
        if (!*val) return bad(name, val, "expected a file, - or off");
        cfg->access_log = val;
        return 0;
    case OPT_ERROR_LOG:
        if (!*val) return bad(name, val, "expected a file or -");
        cfg->error_log = val;
        return 0;
    case OPT_LOG_LEVEL: {
        int l = wharfd_log_level_parse(val);
        if (l < 0) return bad(name, val, "expected error, warn, info or debug");
        cfg->log_level = l;
        return 0;
    }
    default:
        return NOT_MINE;
    }
}

/* What the static files look like from outside. */
static int apply_files(wharfd_config *cfg, int id, const char *name, const char *val)
{
    switch (id) {
    case OPT_ROOT:
        if (!*val) return bad(name, val, "empty path");
        cfg->root = val;
        return 0;
    case OPT_INDEX:
        if (!*val || strchr(val, '/')) return bad(name, val, "expected a file name without '/'");
        cfg->index = val;
        return 0;
    case OPT_CACHE_CONTROL:
        for (const unsigned char *p = (const unsigned char *)val; *p; p++)
            if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                return bad(name, val, "no line breaks or other control characters allowed");
        cfg->cache_control = *val ? val : NULL;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* On/off switches: bare on the command line, yes/no in the file. */
static int apply_flag(wharfd_config *cfg, int id, const char *name, const char *val, bool from_file)
{
    bool b = true;
    switch (id) {
    case OPT_LISTING:
    case OPT_NO_LISTING:
    case OPT_FOLLOW_SYMLINKS:
    case OPT_DOTFILES:
    case OPT_WS_ECHO:
    case OPT_METRICS_PUBLIC:
    case OPT_PROXY_PROTOCOL:
        if (from_file && parse_bool(val, &b) != 0) return bad(name, val, "expected yes or no");
        if (id == OPT_LISTING)
            cfg->listing = b;
        else if (id == OPT_NO_LISTING)
            cfg->listing = !b;
        else if (id == OPT_FOLLOW_SYMLINKS)
            cfg->follow_symlinks = b;
        else if (id == OPT_DOTFILES)
            cfg->show_dotfiles = b;
        else if (id == OPT_METRICS_PUBLIC)
            cfg->metrics_public = b;
        else if (id == OPT_PROXY_PROTOCOL)
            cfg->proxy_protocol = b;
        else
            cfg->ws_echo = b;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* The applications: guestbook storage and rate. */
static int apply_apps(wharfd_config *cfg, int id, const char *name, const char *val)
{
    unsigned long u;
    switch (id) {
    case OPT_REDIS:
        if (set_redis(cfg, val) != 0) return bad(name, val, "expected HOST:PORT");
        return 0;
    case OPT_DATA:
        if (!*val) return bad(name, val, "expected a directory or :memory:");
        cfg->data_dir = val;
        return 0;
    case OPT_GUESTBOOK_RATE:
        if (parse_uint(val, 1000000, &u) != 0)
            return bad(name, val, "expected posts a minute (0 = unlimited)");
        cfg->guestbook_rate = (unsigned)u;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* Stopping, privileges and --check-config (ops.h). */
static int apply_ops(wharfd_config *cfg, int id, const char *name, const char *val)
{
    switch (id) {
    case OPT_DRAIN_DELAY:
        if (parse_duration_ms(val, &cfg->drain_delay_ms) != 0)
            return bad(name, val, "expected seconds (5, 0.5) or milliseconds (500ms)");
        return 0;
    case OPT_SHUTDOWN_TIMEOUT:
        if (parse_duration_ms(val, &cfg->shutdown_timeout_ms) != 0)
            return bad(name, val, "expected seconds (10, 0.5) or milliseconds (500ms)");
        return 0;
    case OPT_USER:
        if (!*val || val[0] == ':') return bad(name, val, "expected USER or USER:GROUP");
        cfg->user = val;
        return 0;
    case OPT_PID_FILE:
        if (!*val) return bad(name, val, "expected a file");
        cfg->pid_file = val;
        return 0;
    case OPT_CHECK_CONFIG:
        cfg->check_config = true;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* Applies one option (from argv or the file); name is the long name.
 * binds_from_cli: the first --bind on the command line replaces the file's.
 * Each option belongs to one apply_* step; a new option goes into its step. */
static int apply(wharfd_config *cfg, int id, const char *name, const char *val, bool from_file,
                 bool *cli_bind_seen)
{
    if (!val) val = "";
    int r;
    if ((r = apply_listen(cfg, id, name, val, from_file, cli_bind_seen)) != NOT_MINE ||
        (r = apply_engine(cfg, id, name, val)) != NOT_MINE ||
        (r = apply_logs(cfg, id, name, val)) != NOT_MINE ||
        (r = apply_files(cfg, id, name, val)) != NOT_MINE ||
        (r = apply_flag(cfg, id, name, val, from_file)) != NOT_MINE ||
        (r = apply_apps(cfg, id, name, val)) != NOT_MINE ||
        (r = apply_ops(cfg, id, name, val)) != NOT_MINE)
        return r;
    if (id >= WHARFD_OPT_TLS_CERT && id <= WHARFD_OPT_ACCESS_LOG_TLS)
        return wharfd_tls_apply(&cfg->tls, id, name, val, from_file);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* "key = value   # why": a '#' that starts the line or follows a blank
 * begins a comment, unless it is inside quotes ("a#b", Cache-Control values
 * and paths keep their '#'). */
static void strip_comment(char *s)
{
    char quote = 0;
    for (char *p = s; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

static int load_file(wharfd_config *cfg, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        say("wharfd: cannot read config file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    where_path = path;
    char line[4096];
    int lineno = 0, rc = 0;
    bool dummy = false;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        where_line = lineno;
        strip_comment(line);
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';') continue;
        char *eq = strchr(s, '=');
        char *key = s, *val = NULL;
        if (eq) {
            *eq = '\0';
            key = trim(s);
            val = trim(eq + 1);
            size_t vl = strlen(val);
            if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') ||
                            (val[0] == '\'' && val[vl - 1] == '\''))) {
                val[vl - 1] = '\0';
                val++;
            }
        }
        const struct option *o = longopts;
        while (o->name && strcmp(o->name, key) != 0)
            o++;
        if (!o->name || o->val == OPT_CONFIG || o->val == OPT_HELP || o->val == OPT_VERSION) {
            say("unknown key '%s'\n", key);
            rc = -1;
            break;
        }
        if (o->has_arg == required_argument && !val) {
            say("'%s' needs '= value'\n", key);
            rc = -1;
            break;
        }
        char *copy = NULL;
        if (val) {
            if (cfg->nowned_ >= sizeof cfg->owned_ / sizeof cfg->owned_[0]) {
                say("too many settings\n");
                rc = -1;
                break;
            }
            copy = strdup(val);
            if (!copy) {
                rc = -1;
                break;
            }
            cfg->owned_[cfg->nowned_++] = copy;
        }
        if (apply(cfg, o->val, o->name, copy, true, &dummy) != 0) rc = -1;
    }
    fclose(f);
    where_path = NULL;
    return rc;
}

int wharfd_config_bad(const char *opt, const char *val, const char *why)
{
    return bad(opt, val, why);
}

int wharfd_config_uint(const char *s, unsigned long max, unsigned long *out)
{
    return parse_uint(s, max, out);
}

int wharfd_config_bool(const char *s, bool *out)
{
    return parse_bool(s, out);
}

void wharfd_config_free(wharfd_config *cfg)
{
    for (unsigned i = 0; i < cfg->nowned_; i++)
        free(cfg->owned_[i]);
    cfg->nowned_ = 0;
}

int wharfd_config_load(wharfd_config *cfg, int argc, char **argv)
{
    defaults(cfg);
    static const char shortopts[] = ":p:b:r:thV";
    /* Pass 1: --help, --version and --config only; flags are applied after
     * the file so the command line wins. */
    opterr = 0;
    optind = 1;
    const char *config_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            fputs(wharfd_tls_usage, stdout);
            return 1;
        }
        if (c == OPT_VERSION) {
            printf("wharfd %s\n", WH_VERSION);
            return 1;
        }
        if (c == OPT_CONFIG) config_file = optarg;
        if (c == OPT_CHECK_CONFIG) cfg->check_config = true; /* before the file: exit 1 on it */
        if (c == OPT_CHECK_CONFIG && optind < argc && argv[optind][0] >= '0' &&
            argv[optind][0] <= '9') {
            /* -t N was --threads N before -t became --check-config. */
            say("-t now means --check-config; give the worker threads as --threads %s\n",
                argv[optind]);
            return -1;
        }
        if (c == '?') {
            if (optopt)
                say("wharfd: unknown option '-%c' (try --help)\n", optopt);
            else
                say("wharfd: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return -1;
        }
        if (c == ':') {
            say("wharfd: option '%s' needs a value (try --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        say("wharfd: unexpected argument '%s' (try --help)\n", argv[optind]);
        return -1;
    }
    if (config_file) {
        cfg->config_file = config_file;
        if (load_file(cfg, config_file) != 0) return -1;
    }
    optind = 1;
    bool cli_bind = false;
    int idx;
    while ((c = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
        if (c == OPT_CONFIG) continue;
        const char *name = NULL;
        for (const struct option *o = longopts; o->name; o++)
            if (o->val == c) {
                name = o->name;
                break;
            }
        if (apply(cfg, c, name ? name : "?", optarg, false, &cli_bind) != 0) return -1;
    }
    return 0;
}
