/* wharfd's TLS settings and their uses (see tls_config.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/wharfd/wharfd.h"

const char wharfd_tls_usage[] =
    "TLS (a --bind address written https://HOST:PORT is a TLS listener):\n"
    "      --tls-cert FILE        PEM certificate (+ chain); repeatable, each followed\n"
    "                             by its --tls-key; the first is the default, SNI\n"
    "                             picks the others by their names\n"
    "      --tls-key FILE         PEM private key of the --tls-cert before it\n"
    "      --tls-ocsp FILE        DER OCSP response stapled for the last --tls-cert\n"
    "      --tls-ciphers LIST     TLS 1.2 ciphers (ECDHE + AEAD only by default)\n"
    "      --tls-ciphersuites L   TLS 1.3 suites (OpenSSL's default)\n"
    "      --tls-groups LIST      key exchange groups (X25519:P-256:P-384)\n"
    "      --tls-min-version V    1.2 or 1.3 (1.2)\n"
    "      --redirect-https PORT  plain listeners answer 308 to https://HOST:PORT\n"
    "      --hsts SECONDS         Strict-Transport-Security on TLS responses\n"
    "      --access-log-tls       add the TLS version/cipher to access-log lines\n"
    "SIGHUP also reloads the certificates (a bad one keeps the current ones).\n";

int wharfd_tls_apply(wharfd_tls_config *tc, int id, const char *name, const char *val,
                     bool from_file)
{
    unsigned long u;
    if (!val) val = "";
    if (!from_file && !tc->cli_seen &&
        (id == WHARFD_OPT_TLS_CERT || id == WHARFD_OPT_TLS_KEY || id == WHARFD_OPT_TLS_OCSP)) {
        /* The command line's certificates replace the file's, like --bind. */
        tc->cli_seen = true;
        tc->ncerts = tc->nkeys = 0;
        memset(tc->ocsp, 0, sizeof(tc->ocsp));
    }
    switch (id) {
    case WHARFD_OPT_TLS_CERT:
        if (!*val) return wharfd_config_bad(name, val, "expected a file");
        if (tc->ncerts >= WHARFD_MAX_CERTS)
            return wharfd_config_bad(name, val, "16 certificates at most");
        tc->certs[tc->ncerts++] = val;
        return 0;
    case WHARFD_OPT_TLS_KEY:
        if (!*val) return wharfd_config_bad(name, val, "expected a file");
        if (tc->nkeys >= tc->ncerts)
            return wharfd_config_bad(name, val, "give its --tls-cert first");
        tc->keys[tc->nkeys++] = val;
        return 0;
    case WHARFD_OPT_TLS_OCSP:
        if (!*val) return wharfd_config_bad(name, val, "expected a file");
        if (tc->ncerts == 0) return wharfd_config_bad(name, val, "give its --tls-cert first");
        tc->ocsp[tc->ncerts - 1] = val;
        return 0;
    case WHARFD_OPT_TLS_CIPHERS:
        tc->ciphers = *val ? val : NULL;
        return 0;
    case WHARFD_OPT_TLS_SUITES:
        tc->ciphersuites = *val ? val : NULL;
        return 0;
    case WHARFD_OPT_TLS_GROUPS:
        tc->groups = *val ? val : NULL;
        return 0;
    case WHARFD_OPT_TLS_MIN_VERSION:
        if (strcmp(val, "1.2") == 0)
            tc->min_version = WH_TLS_1_2;
        else if (strcmp(val, "1.3") == 0)
            tc->min_version = WH_TLS_1_3;
        else
            return wharfd_config_bad(name, val, "expected 1.2 or 1.3");
        return 0;
    case WHARFD_OPT_REDIRECT_HTTPS:
        if (wharfd_config_uint(val, 65535, &u) != 0 || u == 0)
            return wharfd_config_bad(name, val, "expected a port 1-65535");
        tc->redirect_port = (unsigned)u;
        return 0;
    case WHARFD_OPT_HSTS:
        if (wharfd_config_uint(val, 100000000, &u) != 0)
            return wharfd_config_bad(name, val, "expected seconds");
        tc->hsts_s = (uint32_t)u;
        return 0;
    case WHARFD_OPT_ACCESS_LOG_TLS:
        tc->log_tls = true;
        if (from_file && wharfd_config_bool(val, &tc->log_tls) != 0)
            return wharfd_config_bad(name, val, "expected yes or no");
        return 0;
    default:
        return -1;
    }
}

bool wharfd_tls_scheme(const char **addr)
{
    if (strncmp(*addr, "https://", 8) == 0) {
        *addr += 8;
        return true;
    }
    if (strncmp(*addr, "http://", 7) == 0) *addr += 7;
    return false;
}

static void on_fail(const wh_sockaddr *peer, int reason, const char *detail, void *ud)
{
    (void)ud;
    char a[160] = "?";
    if (peer->len) wh_addr_format(peer, a, sizeof a);
    wharfd_log(WHARFD_LOG_DEBUG, "TLS handshake from %s failed (%s): %s", a,
               wh_tls_fail_name(reason), detail);
}

static size_t cert_list(const wharfd_tls_config *tc, wh_tls_cert *out)
{
    for (unsigned i = 0; i < tc->ncerts; i++) {
        out[i].cert_file = tc->certs[i];
        out[i].key_file = tc->keys[i];
        out[i].ocsp_file = tc->ocsp[i];
    }
    return tc->ncerts;
}

int wharfd_tls_setup(wharfd_app *app, bool https_bound)
{
    const wharfd_tls_config *tc = &app->cfg.tls;
    if (tc->ncerts == 0 && !https_bound) return 0;
    if (!wh_tls_available()) {
        fprintf(stderr, "wharfd: TLS: this wharfd was built without OpenSSL (WH_TLS=OFF)\n");
        return -1;
    }
    if (tc->ncerts == 0) {
        fprintf(stderr, "wharfd: TLS: an https:// listener needs --tls-cert FILE --tls-key FILE\n");
        return -1;
    }
    if (tc->nkeys != tc->ncerts) {
        fprintf(stderr, "wharfd: TLS: certificate %s has no --tls-key\n", tc->certs[tc->nkeys]);
        return -1;
    }
    wh_tls_opts o;
    wh_tls_opts_init(&o);
    o.ciphers = tc->ciphers;
    o.ciphersuites = tc->ciphersuites;
    o.groups = tc->groups;
    if (tc->min_version) o.min_version = tc->min_version;
    /* A handshake is part of getting a request in: the same allowance. */
    o.handshake_timeout_ms = app->cfg.header_timeout_ms;
    int rc = wh_tls_ctx_new(&app->tls, &o);
    if (rc != 0) {
        fprintf(stderr, "wharfd: TLS: %s (check --tls-ciphers, --tls-ciphersuites, --tls-groups)\n",
                wh_strerror(rc));
        return -1;
    }
    wh_tls_ctx_on_fail(app->tls, on_fail, app);
    wh_tls_cert certs[WHARFD_MAX_CERTS];
    char err[512];
    if (wh_tls_ctx_load(app->tls, certs, cert_list(tc, certs), err, sizeof err) != 0) {
        fprintf(stderr, "wharfd: TLS: %s\n", err);
        return -1;
    }
    return 0;
}

int wharfd_tls_reload(wharfd_app *app)
{
    if (!app->tls) return 0;
    wh_tls_cert certs[WHARFD_MAX_CERTS];
    char err[512];
    int rc = wh_tls_ctx_load(app->tls, certs, cert_list(&app->cfg.tls, certs), err, sizeof err);
    if (rc != 0)
        wharfd_log(WHARFD_LOG_ERROR, "TLS reload failed, keeping the current certificates: %s",
                   err);
    else
        wharfd_log(WHARFD_LOG_INFO, "TLS certificates reloaded (%u)", app->cfg.tls.ncerts);
    return rc;
}

void wharfd_tls_free(wharfd_app *app)
{
    wh_tls_ctx_free(app->tls);
    app->tls = NULL;
}

/* Host of the request without its port, if it is a plain DNS name, IPv4 or
 * [IPv6] literal: what may go into a Location header. */
static bool redirect_host(wh_http_req *r, char *out, size_t cap)
{
    wh_str h = wh_http_req_header(r, "Host");
    size_t n = h.len;
    if (n == 0 || n >= cap) return false;
    if (h.p[0] == '[') {
        const char *e = memchr(h.p, ']', n);
        if (!e) return false;
        n = (size_t)(e - h.p) + 1;
        for (size_t i = 1; i + 1 < n; i++)
            if (!isxdigit((unsigned char)h.p[i]) && h.p[i] != ':' && h.p[i] != '.') return false;
    } else {
        const char *colon = memchr(h.p, ':', n);
        if (colon) n = (size_t)(colon - h.p);
        if (n == 0) return false;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)h.p[i]) && h.p[i] != '-' && h.p[i] != '.') return false;
    }
    memcpy(out, h.p, n);
    out[n] = '\0';
    return true;
}

void wharfd_tls_front(wh_http_req *r, void *ud)
{
    wharfd_app *app = ud;
    const wharfd_tls_config *tc = &app->cfg.tls;
    bool tls = wh_conn_tls_version(wh_http_req_conn(r)) != NULL;
    if (!tls && tc->redirect_port) {
        char host[256], loc[8448];
        if (!redirect_host(r, host, sizeof host)) {
            wh_http_respond_error(r, 400);
            return;
        }
        wh_str t = wh_http_req_target(r);
        if (t.len == 0 || t.p[0] != '/' || t.len > 8192) {
            t.p = "/";
            t.len = 1;
        }
        char port[16] = "";
        if (tc->redirect_port != 443) snprintf(port, sizeof port, ":%u", tc->redirect_port);
        snprintf(loc, sizeof loc, "https://%s%s%.*s", host, port, (int)t.len, t.p);
        /* 308, not 301: the method and body stay as they were (RFC 9110 15.4.9). */
        wh_http_resp_header(r, "Location", loc);
        wh_http_respond(r, 308, "text/plain; charset=utf-8", "use https\n", 10);
        return;
    }
    if (tls && tc->hsts_s) {
        char v[48];
        snprintf(v, sizeof v, "max-age=%u", (unsigned)tc->hsts_s);
        wh_http_resp_header(r, "Strict-Transport-Security", v);
    }
    wh_router_handle(r, app->router);
}

void wharfd_tls_count(wharfd_tls_counts *c, wh_http_req *r)
{
    const wh_conn *conn = wh_http_req_conn(r);
    const char *v = wh_conn_tls_version(conn);
    if (!v) return;
    const char *ci = wh_conn_tls_cipher(conn);
    for (unsigned i = 0; i < WHARFD_TLS_SLOTS; i++) {
        if (c->slot[i].version == v && c->slot[i].cipher == ci) {
            __atomic_store_n(&c->slot[i].n, c->slot[i].n + 1, __ATOMIC_RELAXED);
            return;
        }
        if (!c->slot[i].version) {
            c->slot[i].cipher = ci;
            __atomic_store_n(&c->slot[i].version, v, __ATOMIC_RELEASE);
            __atomic_store_n(&c->slot[i].n, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    /* More than 8 combinations on one thread: the rest are not counted. */
}

size_t wharfd_tls_log_field(const wharfd_app *app, wh_http_req *r, char *line, size_t len,
                            size_t cap)
{
    if (!app->cfg.tls.log_tls || len == 0 || line[len - 1] != '\n') return len;
    const wh_conn *conn = wh_http_req_conn(r);
    const char *v = wh_conn_tls_version(conn);
    char f[160];
    int n = v ? snprintf(f, sizeof f, " %s/%s\n", v, wh_conn_tls_cipher(conn))
              : snprintf(f, sizeof f, " -\n");
    if (n < 0 || (size_t)n >= sizeof f || len - 1 + (size_t)n > cap) return len;
    memcpy(line + len - 1, f, (size_t)n);
    return len - 1 + (size_t)n;
}

static size_t add(char *buf, size_t len, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t add(char *buf, size_t len, size_t cap, const char *fmt, ...)
{
    if (len >= cap) return len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    return n < 0 ? len : len + (size_t)n;
}

size_t wharfd_tls_metrics(const wharfd_app *app, char *buf, size_t len, size_t cap)
{
    if (!app->tls) return len;
    /* Sum the per-thread slots by (version, cipher). */
    wharfd_tls_counts sum;
    memset(&sum, 0, sizeof sum);
    unsigned nt = app->srv ? wh_server_threads(app->srv) : 0;
    for (unsigned i = 0; i < nt && i < WHARFD_MAX_THREADS; i++) {
        const wharfd_thread *t = __atomic_load_n(&app->threads[i], __ATOMIC_ACQUIRE);
        if (!t) continue;
        for (unsigned k = 0; k < WHARFD_TLS_SLOTS; k++) {
            const char *v = __atomic_load_n(&t->tlsc.slot[k].version, __ATOMIC_ACQUIRE);
            if (!v) break;
            const char *c = t->tlsc.slot[k].cipher;
            uint64_t n = __atomic_load_n(&t->tlsc.slot[k].n, __ATOMIC_RELAXED);
            for (unsigned j = 0; j < WHARFD_TLS_SLOTS; j++) {
                if (!sum.slot[j].version) {
                    sum.slot[j].version = v;
                    sum.slot[j].cipher = c;
                }
                if (sum.slot[j].version == v && sum.slot[j].cipher == c) {
                    sum.slot[j].n += n;
                    break;
                }
            }
        }
    }
    len = add(buf, len, cap,
              "# HELP wharfd_tls_requests_total Requests over TLS by protocol version and "
              "cipher.\n# TYPE wharfd_tls_requests_total counter\n");
    for (unsigned j = 0; j < WHARFD_TLS_SLOTS && sum.slot[j].version; j++)
        len = add(buf, len, cap, "wharfd_tls_requests_total{version=\"%s\",cipher=\"%s\"} %llu\n",
                  sum.slot[j].version, sum.slot[j].cipher ? sum.slot[j].cipher : "",
                  (unsigned long long)sum.slot[j].n);
    wh_tls_stats st;
    wh_tls_ctx_stats(app->tls, &st);
    len = add(buf, len, cap,
              "# HELP wharfd_tls_handshakes_total Completed TLS handshakes.\n"
              "# TYPE wharfd_tls_handshakes_total counter\n"
              "wharfd_tls_handshakes_total{resumed=\"no\"} %llu\n"
              "wharfd_tls_handshakes_total{resumed=\"yes\"} %llu\n"
              "# HELP wharfd_tls_handshake_failures_total Failed TLS handshakes by reason.\n"
              "# TYPE wharfd_tls_handshake_failures_total counter\n",
              (unsigned long long)(st.handshakes - st.resumed), (unsigned long long)st.resumed);
    for (int i = 0; i < WH_TLS_FAIL_COUNT; i++)
        len = add(buf, len, cap, "wharfd_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
                  wh_tls_fail_name(i), (unsigned long long)st.failures[i]);
    return len;
}
