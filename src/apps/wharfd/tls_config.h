/* wharfd's TLS: the settings from the command line and config file, the
 * context the https:// listeners share, certificate reload, the redirect to
 * https and HSTS, and the TLS fields of the access log and /metrics. */
#ifndef WHARFD_TLS_CONFIG_H
#define WHARFD_TLS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "wharf/http.h"
#include "wharf/tls.h"

#define WHARFD_MAX_CERTS 16

typedef struct wharfd_tls_config {
    const char *certs[WHARFD_MAX_CERTS]; /* --tls-cert FILE (repeatable, paired with keys) */
    const char *keys[WHARFD_MAX_CERTS];  /* --tls-key FILE */
    const char *ocsp[WHARFD_MAX_CERTS];  /* --tls-ocsp FILE: for the last --tls-cert */
    unsigned ncerts, nkeys;
    const char *ciphers;      /* --tls-ciphers (TLS 1.2) */
    const char *ciphersuites; /* --tls-ciphersuites (TLS 1.3) */
    const char *groups;       /* --tls-groups */
    int min_version;          /* --tls-min-version 1.2|1.3 */
    unsigned redirect_port;   /* --redirect-https PORT: 0 = off */
    uint32_t hsts_s;          /* --hsts SECONDS: 0 = off */
    bool log_tls;             /* --access-log-tls: append version and cipher */
    bool cli_seen;            /* a --tls-cert on the command line replaces the file's */
} wharfd_tls_config;

/* Option ids handled here (config.c lists them in its getopt table and
 * forwards them). */
enum {
    WHARFD_OPT_TLS_CERT = 400,
    WHARFD_OPT_TLS_KEY,
    WHARFD_OPT_TLS_OCSP,
    WHARFD_OPT_TLS_CIPHERS,
    WHARFD_OPT_TLS_SUITES,
    WHARFD_OPT_TLS_GROUPS,
    WHARFD_OPT_TLS_MIN_VERSION,
    WHARFD_OPT_REDIRECT_HTTPS,
    WHARFD_OPT_HSTS,
    WHARFD_OPT_ACCESS_LOG_TLS,
};

/* Help text lines for them. */
extern const char wharfd_tls_usage[];

/* Applies one TLS option; prints "wharfd: invalid value ..." and returns -1
 * when it is bad. */
int wharfd_tls_apply(wharfd_tls_config *tc, int id, const char *name, const char *val,
                     bool from_file);

/* "https://ADDR" -> true and *addr moves past the scheme; "http://ADDR"
 * -> false, past the scheme; anything else unchanged, false. */
bool wharfd_tls_scheme(const char **addr);

struct wharfd_app;
/* Creates app's TLS context when certificates are given (or an https://
 * bind needs them) and loads them. Prints one line naming the file and
 * returns -1 on error. */
int wharfd_tls_setup(struct wharfd_app *app, bool https_bound);
/* Loads the configured certificate files again; on error the current ones
 * stay and the reason is logged. 0 or negative errno. For SIGHUP and the
 * configuration reload. */
int wharfd_tls_reload(struct wharfd_app *app);
/* Frees the context (after the servers). */
void wharfd_tls_free(struct wharfd_app *app);

/* The HTTP handler in front of the router when --redirect-https or --hsts
 * is given: 308 to https for plain requests, Strict-Transport-Security on
 * TLS responses, then the router. ud = app. */
void wharfd_tls_front(wh_http_req *r, void *ud);

/* Requests per (version, cipher), per thread: one writer, relaxed reads. */
#define WHARFD_TLS_SLOTS 8
typedef struct wharfd_tls_counts {
    struct {
        const char *version, *cipher; /* OpenSSL's static strings */
        uint64_t n;
    } slot[WHARFD_TLS_SLOTS];
} wharfd_tls_counts;

/* Counts r's TLS version and cipher into c (no-op for plain requests). */
void wharfd_tls_count(wharfd_tls_counts *c, wh_http_req *r);
/* Appends " TLSv1.3/CIPHER" (or " -") before the newline that ends
 * line[0..len) when --access-log-tls; returns the new length (<= cap). */
size_t wharfd_tls_log_field(const struct wharfd_app *app, wh_http_req *r, char *line, size_t len,
                            size_t cap);
/* Appends the TLS metrics (per-request versions and ciphers summed over
 * the threads, handshakes and failures by reason) to buf. */
size_t wharfd_tls_metrics(const struct wharfd_app *app, char *buf, size_t len, size_t cap);

#endif
