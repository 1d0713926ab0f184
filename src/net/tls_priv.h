/* Private to src/net: the TLS context (tls.c) as the TLS transport
 * (tls_conn.c) sees it. Only compiled with WH_HAVE_TLS. */
#ifndef WH_NET_TLS_PRIV_H
#define WH_NET_TLS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/ssl.h>

#include "wharf/tls.h"

#include "net/xport.h"

/* One loaded certificate/key pair: its own SSL_CTX (SNI switches the SSL to
 * it), the names it answers for and an optional OCSP response. */
typedef struct wh__tls_pair {
    struct wh_tls_ctx *owner;
    SSL_CTX *ctx; /* app data: this pair */
    char **names; /* lower case; "*.example.com" for wildcards */
    size_t nnames;
    unsigned char *ocsp; /* DER, or NULL */
    size_t ocsp_len;
} wh__tls_pair;

/* What one wh_tls_ctx_load made. Connections hold a reference from their
 * first byte to their end, so a reload frees the old set only when the
 * last connection that began with it is gone. */
typedef struct wh__tls_set {
    atomic_uint refs;
    size_t n;
    wh__tls_pair *pairs; /* pairs[0]: the default, whose SSL_CTX each SSL starts with */
} wh__tls_set;

struct wh_tls_ctx {
    wh_tls_opts opts;
    char *ciphers, *suites, *groups; /* owned copies of the strings in opts */
    unsigned char *alpn;             /* wire format (length-prefixed) */
    size_t alpn_len;
    pthread_mutex_t mu; /* guards cur (swap and take) and the ticket keys */
    wh__tls_set *cur;
    /* Session ticket keys, newest first: keys[0] encrypts, all decrypt. */
    struct wh__tkey {
        unsigned char name[16], aes[32], hmac[32];
        time_t born;
    } keys[3];
    unsigned nkeys;
    EVP_CIPHER *aes; /* fetched once: OpenSSL 3 pays for implicit fetches */
    void (*on_fail)(const wh_sockaddr *peer, int reason, const char *detail, void *ud);
    void *on_fail_ud;
    _Atomic uint64_t handshakes, resumed;
    _Atomic uint64_t failures[WH_TLS_FAIL_COUNT];
};

/* Takes a reference to t's current certificate set (NULL when none). */
wh__tls_set *wh__tls_set_take(wh_tls_ctx *t);
/* Drops a reference; the last one frees the set. */
void wh__tls_set_drop(wh__tls_set *s);
/* RFC 6125 6.4.3 matching of a certificate name (exact or "*.rest") to a
 * host; both ASCII, compared case-insensitively, host may end with a dot. */
bool wh__tls_name_match(const char *pattern, const char *host);

#endif
