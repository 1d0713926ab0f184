/* TLS server contexts: certificates, SNI, versions and ciphers, ALPN,
 * session tickets with rotating keys, OCSP stapling, reload.
 *
 * One SSL_CTX per certificate: every SSL starts on the default pair's
 * SSL_CTX and the servername callback moves it to the pair SNI names
 * (SSL_set_SSL_CTX). Per-SSL certificates (SSL_use_certificate in the
 * callback) would copy the certificate structure into every connection;
 * switching contexts costs nothing per connection. The session ticket key
 * callback lives on the default SSL_CTX (OpenSSL keeps the initial context
 * as the session context), and its keys live in wh_tls_ctx, so tickets
 * survive a certificate reload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wharf/tls.h"

static const char *const fail_names[WH_TLS_FAIL_COUNT] = {
    "version", "cipher", "http", "protocol", "alert", "eof", "timeout", "other"};

const char *wh_tls_fail_name(int reason)
{
    return reason >= 0 && reason < WH_TLS_FAIL_COUNT ? fail_names[reason] : "unknown";
}

void wh_tls_opts_init(wh_tls_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->min_version = WH_TLS_1_2;
    o->handshake_timeout_ms = 10000;
    o->ticket_rotate_s = 3600;
    o->num_tickets = 2;
}

#ifndef WH_HAVE_TLS

bool wh_tls_available(void)
{
    return false;
}
int wh_tls_ctx_new(wh_tls_ctx **out, const wh_tls_opts *opts)
{
    (void)opts;
    *out = NULL;
    return -ENOTSUP;
}
void wh_tls_ctx_free(wh_tls_ctx *t)
{
    (void)t;
}
int wh_tls_ctx_load(wh_tls_ctx *t, const wh_tls_cert *certs, size_t n, char *err, size_t errlen)
{
    (void)t, (void)certs, (void)n;
    if (err && errlen) snprintf(err, errlen, "built without TLS");
    return -ENOTSUP;
}
void wh_tls_ctx_stats(const wh_tls_ctx *t, wh_tls_stats *out)
{
    (void)t;
    memset(out, 0, sizeof(*out));
}
void wh_tls_ctx_on_fail(wh_tls_ctx *t,
                        void (*fn)(const wh_sockaddr *peer, int reason, const char *detail,
                                   void *ud),
                        void *ud)
{
    (void)t, (void)fn, (void)ud;
}

#else /* WH_HAVE_TLS */

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "net/tls_priv.h"

/* ECDHE key exchange and AEAD ciphers only (TLS 1.2); TLS 1.3 suites are
 * all AEAD already. */
#define DEFAULT_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_GROUPS "X25519:P-256:P-384"
#define DEFAULT_ALPN   "http/1.1"

bool wh_tls_available(void)
{
    return true;
}

/* ---- names (RFC 6125) ---------------------------------------------------- */

static bool label_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return false;
    return true;
}

bool wh__tls_name_match(const char *pattern, const char *host)
{
    size_t pl = strlen(pattern), hl = strlen(host);
    if (hl && host[hl - 1] == '.') hl--; /* "example.com." is the same name */
    if (pl && pattern[pl - 1] == '.') pl--;
    if (!pl || !hl) return false;
    if (pattern[0] != '*') return pl == hl && label_eq(pattern, host, pl);
    /* 6.4.3: the wildcard is the whole leftmost label and stands for
     * exactly one label; it never matches across dots, and we refuse
     * wildcards over a single remaining label ("*.com"). */
    if (pl < 3 || pattern[1] != '.') return false;
    const char *rest = pattern + 1; /* ".example.com" */
    size_t rl = pl - 1;
    if (!memchr(rest + 1, '.', rl - 1)) return false;
    const char *dot = memchr(host, '.', hl);
    if (!dot || dot == host) return false; /* the first label must not be empty */
    size_t tail = hl - (size_t)(dot - host);
    return tail == rl && label_eq(dot, rest, rl);
}

static int add_name(wh__tls_pair *p, const char *s, size_t len)
{
    if (!len || memchr(s, '\0', len)) return 0; /* embedded NUL: never a real name */
    char **v = realloc(p->names, (p->nnames + 1) * sizeof(*v));
    if (!v) return -ENOMEM;
    p->names = v;
    char *d = malloc(len + 1);
    if (!d) return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[len] = '\0';
    p->names[p->nnames++] = d;
    return 0;
}

/* The DNS names of the certificate: subjectAltName, or the last common name
 * when there is no DNS entry (RFC 6125 6.4.4). */
static int collect_names(wh__tls_pair *p, X509 *x)
{
    int rc = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS) continue;
        rc = add_name(p, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                      (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(gens);
    if (rc == 0 && p->nnames == 0) {
        X509_NAME *subj = X509_get_subject_name(x);
        int idx = -1, last = -1;
        while ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0)
            last = idx;
        if (last >= 0) {
            ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last));
            rc = add_name(p, (const char *)ASN1_STRING_get0_data(cn),
                          (size_t)ASN1_STRING_length(cn));
        }
    }
    return rc;
}

/* ---- callbacks ----------------------------------------------------------- */

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    wh__tls_set *set = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!host || set->n < 2) return SSL_TLSEXT_ERR_OK; /* the default certificate */
    /* An exact name wins over a wildcard, whatever the order of the pairs. */
    for (int wild = 0; wild < 2; wild++) {
        for (size_t i = 0; i < set->n; i++) {
            const wh__tls_pair *p = &set->pairs[i];
            for (size_t k = 0; k < p->nnames; k++) {
                if ((p->names[k][0] == '*') != wild || !wh__tls_name_match(p->names[k], host))
                    continue;
                if (i != 0) SSL_set_SSL_CTX(ssl, p->ctx);
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_OK; /* unknown name: the default certificate, as nginx does */
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    wh_tls_ctx *t = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, t->alpn, (unsigned)t->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int status_cb(SSL *ssl, void *arg)
{
    (void)arg;
    /* The pair SNI chose, not the one the callback was registered on. */
    const wh__tls_pair *p = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!p || !p->ocsp) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_memdup(p->ocsp, p->ocsp_len); /* OpenSSL frees it */
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)p->ocsp_len);
    return SSL_TLSEXT_ERR_OK;
}

static void new_key(struct wh__tkey *k, time_t now)
{
    RAND_bytes(k->name, sizeof(k->name));
    RAND_bytes(k->aes, sizeof(k->aes));
    RAND_bytes(k->hmac, sizeof(k->hmac));
    k->born = now;
}

/* RFC 5077 ticket protection, keys rotating every ticket_rotate_s: keys[0]
 * encrypts new tickets; the two before it still decrypt (and ask OpenSSL to
 * renew the ticket with the current key). */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const wh__tls_pair *p = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    wh_tls_ctx *t = p->owner;
    struct wh__tkey k;
    int ret = 1;
    pthread_mutex_lock(&t->mu);
    if (enc) {
        time_t now = time(NULL);
        if (now - t->keys[0].born >= (time_t)t->opts.ticket_rotate_s) {
            memmove(&t->keys[1], &t->keys[0], 2 * sizeof(t->keys[0]));
            new_key(&t->keys[0], now);
            if (t->nkeys < 3) t->nkeys++;
        }
        k = t->keys[0];
    } else {
        unsigned i = 0;
        while (i < t->nkeys && memcmp(name, t->keys[i].name, 16) != 0)
            i++;
        if (i == t->nkeys) {
            pthread_mutex_unlock(&t->mu);
            return 0; /* unknown or expired key: a full handshake */
        }
        k = t->keys[i];
        ret = i == 0 ? 1 : 2;
    }
    pthread_mutex_unlock(&t->mu);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        if (RAND_bytes(iv, 16) <= 0) return -1;
        memcpy(name, k.name, 16);
        if (!EVP_EncryptInit_ex(cctx, t->aes, NULL, k.aes, iv)) return -1;
    } else if (!EVP_DecryptInit_ex(cctx, t->aes, NULL, k.aes, iv)) {
        return -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return EVP_MAC_CTX_set_params(hctx, params) ? ret : -1;
}

/* ---- loading ------------------------------------------------------------- */

static void set_free(wh__tls_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        wh__tls_pair *p = &s->pairs[i];
        SSL_CTX_free(p->ctx); /* live SSLs keep their own reference */
        for (size_t k = 0; k < p->nnames; k++)
            free(p->names[k]);
        free(p->names);
        free(p->ocsp);
    }
    free(s->pairs);
    free(s);
}

wh__tls_set *wh__tls_set_take(wh_tls_ctx *t)
{
    pthread_mutex_lock(&t->mu);
    wh__tls_set *s = t->cur;
    if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    return s;
}

void wh__tls_set_drop(wh__tls_set *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) set_free(s);
}

/* OpenSSL's reason for the last error, for a one-line message. */
static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

/* Checks that path is a readable regular file, with a message naming it. */
static int check_file(const char *what, const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "no %s file given", what);
        return -EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -EINVAL;
    close(fd);
    if (rc) snprintf(err, errlen, "%s %s: not a regular file", what, path);
    return rc;
}

static int read_all(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    if (!f) return -errno;
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap >= (1u << 20)) { /* no OCSP response is this large */
            free(b);
            b = NULL;
            break;
        }
        unsigned char *nb = realloc(b, cap *= 2);
        if (!nb) free(b);
        b = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad || n == 0) {
        free(b);
        return b ? -EINVAL : -ENOMEM;
    }
    *out = b;
    *len = n;
    return 0;
}

static int ctx_setup(wh_tls_ctx *t, SSL_CTX *ctx)
{
    int maxv = TLS1_3_VERSION;
    int minv = t->opts.min_version == WH_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, minv) || !SSL_CTX_set_max_proto_version(ctx, maxv))
        return -EINVAL;
    if (!SSL_CTX_set_cipher_list(ctx, t->ciphers) ||
        (t->suites && !SSL_CTX_set_ciphersuites(ctx, t->suites)) ||
        !SSL_CTX_set1_groups_list(ctx, t->groups))
        return -EINVAL;
    /* No renegotiation (a client-driven CPU sink, RFC 5746 or not); the
     * server's cipher order; a peer that closes without close_notify is
     * an ordinary EOF (HTTP framing tells truncation, RFC 9110 8.6). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    /* RELEASE_BUFFERS: an idle connection gives back its ~34 KiB of record
     * buffers. PARTIAL_WRITE + MOVING_BUFFER: SSL_write behaves like write(2)
     * on our queue, which may retry from another address. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read-ahead: one read(2) takes what the socket has instead of a header
     * and a body per record; the conn asks SSL_has_pending afterwards. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    /* Tickets only: no server-side session cache to grow or lock. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char sid_ctx[] = "wharf";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (t->opts.ticket_rotate_s) {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        SSL_CTX_set_num_tickets(ctx, t->opts.num_tickets);
        SSL_CTX_set_timeout(ctx, (long)t->opts.ticket_rotate_s * 2);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    return 0;
}

static int load_pair(wh_tls_ctx *t, wh__tls_pair *p, const wh_tls_cert *c, char *err, size_t errlen)
{
    int rc;
    if ((rc = check_file("certificate", c->cert_file, err, errlen)) < 0 ||
        (rc = check_file("key", c->key_file, err, errlen)) < 0)
        return rc;
    if (c->ocsp_file && (rc = check_file("OCSP response", c->ocsp_file, err, errlen)) < 0)
        return rc;
    ERR_clear_error();
    p->ctx = SSL_CTX_new(TLS_server_method());
    if (!p->ctx) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->owner = t;
    SSL_CTX_set_app_data(p->ctx, p);
    if ((rc = ctx_setup(t, p->ctx)) < 0) {
        snprintf(err, errlen, "TLS settings: %s", ossl_reason());
        return rc;
    }
    if (SSL_CTX_use_certificate_chain_file(p->ctx, c->cert_file) != 1) {
        snprintf(err, errlen, "certificate %s: %s", c->cert_file, ossl_reason());
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(p->ctx, c->key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errlen, "key %s does not match certificate %s", c->key_file,
                     c->cert_file);
        else
            snprintf(err, errlen, "key %s: %s", c->key_file, ossl_reason());
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(p->ctx) != 1) {
        snprintf(err, errlen, "key %s does not match certificate %s", c->key_file, c->cert_file);
        return -EINVAL;
    }
    if ((rc = collect_names(p, SSL_CTX_get0_certificate(p->ctx))) < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    if (c->ocsp_file && (rc = read_all(c->ocsp_file, &p->ocsp, &p->ocsp_len)) < 0) {
        snprintf(err, errlen, "OCSP response %s: %s", c->ocsp_file,
                 rc == -EINVAL ? "empty or unreadable" : strerror(-rc));
        return rc;
    }
    return 0;
}

int wh_tls_ctx_load(wh_tls_ctx *t, const wh_tls_cert *certs, size_t n, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!t || !certs || n == 0) {
        snprintf(err, errlen, "no certificate given");
        return -EINVAL;
    }
    wh__tls_set *s = calloc(1, sizeof(*s));
    if (s) s->pairs = calloc(n, sizeof(*s->pairs));
    if (!s || !s->pairs) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&s->refs, 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        s->n = i + 1;
        rc = load_pair(t, &s->pairs[i], &certs[i], err, errlen);
    }
    if (rc == 0) SSL_CTX_set_tlsext_servername_callback(s->pairs[0].ctx, servername_cb);
    if (rc == 0) SSL_CTX_set_tlsext_servername_arg(s->pairs[0].ctx, s);
    ERR_clear_error();
    if (rc < 0) {
        set_free(s);
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    wh__tls_set *old = t->cur;
    t->cur = s;
    pthread_mutex_unlock(&t->mu);
    wh__tls_set_drop(old);
    return 0;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1" (RFC 7301 3.1). */
static int alpn_wire(const char *list, unsigned char **out, size_t *len)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    if (!w) return -ENOMEM;
    size_t o = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || l > 255) {
            free(w);
            return -EINVAL;
        }
        w[o++] = (unsigned char)l;
        memcpy(w + o, p, l);
        o += l;
        p += l + (e ? 1 : 0);
        if (e && !*p) {
            free(w);
            return -EINVAL;
        }
    }
    if (o == 0) {
        free(w);
        return -EINVAL;
    }
    *out = w;
    *len = o;
    return 0;
}

int wh_tls_ctx_new(wh_tls_ctx **out, const wh_tls_opts *opts)
{
    *out = NULL;
    wh_tls_ctx *t = calloc(1, sizeof(*t));
    if (!t) return -ENOMEM;
    if (opts)
        t->opts = *opts;
    else
        wh_tls_opts_init(&t->opts);
    if (t->opts.min_version != WH_TLS_1_2 && t->opts.min_version != WH_TLS_1_3) {
        free(t);
        return -EINVAL;
    }
    pthread_mutex_init(&t->mu, NULL);
    int rc = -ENOMEM;
    t->ciphers = strdup(t->opts.ciphers ? t->opts.ciphers : DEFAULT_CIPHERS);
    t->groups = strdup(t->opts.groups ? t->opts.groups : DEFAULT_GROUPS);
    t->suites = t->opts.ciphersuites ? strdup(t->opts.ciphersuites) : NULL;
    t->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (!t->ciphers || !t->groups || (t->opts.ciphersuites && !t->suites) || !t->aes) goto fail;
    t->opts.ciphers = t->opts.ciphersuites = t->opts.groups = t->opts.alpn = NULL;
    if ((rc = alpn_wire(opts && opts->alpn ? opts->alpn : DEFAULT_ALPN, &t->alpn, &t->alpn_len)) <
        0)
        goto fail;
    new_key(&t->keys[0], time(NULL));
    t->nkeys = 1;
    /* Try the settings once now, so a bad cipher or group list is an error
     * here rather than at the first load. */
    SSL_CTX *probe = SSL_CTX_new(TLS_server_method());
    if (!probe) goto fail;
    SSL_CTX_set_app_data(probe, NULL);
    rc = ctx_setup(t, probe);
    SSL_CTX_free(probe);
    ERR_clear_error();
    if (rc < 0) goto fail;
    *out = t;
    return 0;
fail:
    wh_tls_ctx_free(t);
    return rc;
}

void wh_tls_ctx_free(wh_tls_ctx *t)
{
    if (!t) return;
    wh__tls_set_drop(t->cur);
    EVP_CIPHER_free(t->aes);
    free(t->ciphers);
    free(t->groups);
    free(t->suites);
    free(t->alpn);
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void wh_tls_ctx_stats(const wh_tls_ctx *t, wh_tls_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!t) return;
    out->handshakes = atomic_load_explicit(&t->handshakes, memory_order_relaxed);
    out->resumed = atomic_load_explicit(&t->resumed, memory_order_relaxed);
    for (int i = 0; i < WH_TLS_FAIL_COUNT; i++)
        out->failures[i] = atomic_load_explicit(&t->failures[i], memory_order_relaxed);
}

void wh_tls_ctx_on_fail(wh_tls_ctx *t,
                        void (*fn)(const wh_sockaddr *peer, int reason, const char *detail,
                                   void *ud),
                        void *ud)
{
    t->on_fail = fn;
    t->on_fail_ud = ud;
}

#endif /* WH_HAVE_TLS */
