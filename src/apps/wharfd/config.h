/* wharfd configuration: one struct filled from defaults, then the optional
 * config file (--config FILE, "key = value" lines named like the long
 * flags), then the command line (flags win). Mount functions (mounts.h)
 * read it; nobody writes it after startup. */
#ifndef WHARFD_CONFIG_H
#define WHARFD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wharf/server.h"

#include "apps/wharfd/tls_config.h"

#define WHARFD_MAX_BINDS 16

typedef struct wharfd_config {
    int port;                            /* --port: 8000 (used when no --bind) */
    const char *binds[WHARFD_MAX_BINDS]; /* --bind ADDR (repeatable): "0.0.0.0:8000",
                                           "[::]:8000", "unix:/run/wharfd.sock" */
    unsigned nbinds;
    const char *root;              /* --root: "./public" */
    unsigned threads;              /* --threads: 0 = one per CPU */
    wh_model model;                /* --model: reuseport */
    const char *backend;           /* --backend epoll|io_uring: NULL = the library's
                                      choice (WH_LOOP_BACKEND, else epoll) */
    const char *redis;             /* --redis HOST:PORT: NULL = not given (guestbook
                                      then uses its embedded store) */
    char redis_host[256];          /* split from redis: "127.0.0.1" */
    int redis_port;                /* split from redis: 6379 */
    const char *data_dir;          /* --data DIR: "./data" (SQLite guestbook); ":memory:" */
    uint32_t keepalive_timeout_ms; /* --keepalive-timeout SECONDS: 5 s */
    uint32_t header_timeout_ms;    /* --header-timeout SECONDS: 10 s */
    unsigned max_conns;            /* --max-conns: 0 = from RLIMIT_NOFILE; UINT_MAX = none */
    int sndbuf;                    /* --sndbuf BYTES: 0 = kernel autotuning */
    int defer_accept_s;            /* --defer-accept SECONDS: 0 = off */
    const char *access_log;        /* --access-log FILE|-|off: "-" (stdout) */
    const char *error_log;         /* --error-log FILE|-: "-" (stderr) */
    int log_level;                 /* --log-level error|warn|info|debug: info */
    const char *index;             /* --index: "index.html" */
    bool listing;                  /* --listing / --no-listing: off */
    const char *cache_control;     /* --cache-control VALUE: none */
    bool follow_symlinks;          /* --follow-symlinks: off */
    bool show_dotfiles;            /* --dotfiles: off */
    const char *admin;             /* --admin ADDR: /metrics and /healthz there; NULL = none */
    bool metrics_public;           /* --metrics-public: /metrics on the main listeners too */
    unsigned guestbook_rate;       /* --guestbook-rate: posts a minute per client: 10; 0 = no cap */
    const char *config_file;       /* --config FILE */
    bool ws_echo;                  /* --ws-echo: mount /ws/echo */
    bool proxy_protocol;       /* --proxy-protocol: PROXY v1/v2 header on every --bind listener */
    char proxy_trusted[1024];  /* --proxy-trusted CIDR (repeatable), comma-joined; "" = any peer */
    uint32_t proxy_timeout_ms; /* --proxy-timeout SECONDS: 5 s for the whole header */
    wharfd_tls_config tls;     /* --tls-*, --redirect-https, --hsts (tls_config.h) */
    uint32_t drain_delay_ms;   /* --drain-delay SECONDS: keep accepting after SIGTERM: 0 */
    uint32_t shutdown_timeout_ms; /* --shutdown-timeout SECONDS: then the drain's deadline: 10 s */
    const char *user;             /* --user USER[:GROUP]: drop privileges to it; NULL = stay */
    const char *pid_file;         /* --pid-file FILE: NULL = none */
    bool check_config;            /* -t, --check-config: validate, print, exit 0 or 1 */
    /* private: strings read from the config file */
    char *owned_[64];
    unsigned nowned_;
} wharfd_config;

/* Fills cfg from defaults, the --config file and argv. Returns 0 to run,
 * 1 when --help/--version was printed (exit 0), -1 after printing a
 * one-line error to stderr (exit 2). */
int wharfd_config_load(wharfd_config *cfg, int argc, char **argv);
/* Errors of the next loads go to buf (the first one, "FILE:LINE: reason"
 * for the config file) instead of stderr; NULL restores stderr. A reload
 * logs them. */
void wharfd_config_capture(char *buf, size_t cap);
/* Frees strings the config file allocated. */
void wharfd_config_free(wharfd_config *cfg);
/* For option parsers outside config.c (tls_config.c): the one-line
 * "invalid value" error (returns -1), an unsigned number up to max (0 or
 * -1), yes/no/on/off/1/0/true/false (0 or -1). */
int wharfd_config_bad(const char *opt, const char *val, const char *why);
int wharfd_config_uint(const char *s, unsigned long max, unsigned long *out);
int wharfd_config_bool(const char *s, bool *out);

#endif
