/* wharf TLS: a transport under wh_conn (OpenSSL), so every protocol on a
 * connection (HTTP, static files, WebSocket, your own) runs over TLS
 * unchanged.
 *
 * A wh_tls_ctx holds a server's certificates and settings. Attach it to a
 * listener through wh_net_opts.tls (wh_listen, wh_conn_adopt) or
 * wh_server_listen_tls; each accepted connection then does a TLS handshake,
 * driven by the loop, before its on_open runs. If the handshake fails or
 * times out the connection is closed and neither on_open nor on_close runs
 * for it (the context counts the failure and calls its on_fail hook).
 *
 * Built without OpenSSL (cmake -DWH_TLS=OFF) the functions exist and
 * wh_tls_ctx_new returns -ENOTSUP; wh_tls_available() tells which.
 */
#ifndef WHARF_TLS_H
#define WHARF_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "wharf/common.h"
#include "wharf/net.h"

WH_BEGIN_DECLS

/* Protocol versions for wh_tls_opts.min_version. TLS 1.0 and 1.1 are never
 * offered. */
enum wh_tls_version { WH_TLS_1_2 = 0x0303, WH_TLS_1_3 = 0x0304 };

/* Settings fixed when the context is created. wh_tls_opts_init fills the
 * defaults; NULL strings mean "the default". */
typedef struct wh_tls_opts {
    int min_version;               /* WH_TLS_1_2 (the highest is always TLS 1.3) */
    const char *ciphers;           /* TLS 1.2 cipher list (OpenSSL syntax): ECDHE with AES-GCM or
                                      ChaCha20-Poly1305 only */
    const char *ciphersuites;      /* TLS 1.3 suites: OpenSSL's default (AES-GCM, ChaCha20) */
    const char *groups;            /* key exchange groups: "X25519:P-256:P-384" */
    const char *alpn;              /* protocols offered by ALPN, comma-separated, preferred first:
                                      "http/1.1" (a client offering none of them gets no ALPN) */
    uint32_t handshake_timeout_ms; /* close a connection whose handshake is not done: 10000 */
    uint32_t ticket_rotate_s;      /* session tickets: a new encryption key every this many seconds
                                      (the two before still decrypt): 3600; 0 = no tickets */
    unsigned num_tickets;          /* TLS 1.3 tickets sent after a full handshake: 2 (OpenSSL's) */
} wh_tls_opts;

/* Fills opts with the defaults above. */
void wh_tls_opts_init(wh_tls_opts *opts);

/* One certificate with its private key; ocsp_file (may be NULL) is a DER
 * OCSP response stapled for clients that ask (status_request). */
typedef struct wh_tls_cert {
    const char *cert_file; /* PEM: the certificate, then its chain */
    const char *key_file;  /* PEM private key (RSA, ECDSA, Ed25519) */
    const char *ocsp_file;
} wh_tls_cert;

typedef struct wh_tls_ctx wh_tls_ctx;

/* Creates a server context (opts NULL = defaults). It has no certificate
 * until wh_tls_ctx_load. 0, -ENOMEM, -EINVAL (a cipher, group or ALPN list
 * OpenSSL rejects), or -ENOTSUP (built without TLS). */
int wh_tls_ctx_new(wh_tls_ctx **out, const wh_tls_opts *opts);
/* Frees the context once no listener and no connection uses it any more. */
void wh_tls_ctx_free(wh_tls_ctx *t);
/* Loads n certificate/key pairs, replacing the current ones at once for new
 * handshakes (connections already open keep theirs). certs[0] is the
 * default; SNI picks another whose subjectAltName DNS names (or, without
 * any, its common name) match the requested host, exactly or by a
 * leftmost-label wildcard (RFC 6125 6.4.3: "*.example.com" matches
 * "a.example.com", not "example.com" nor "a.b.example.com"). All or
 * nothing: on any error the current set stays and err (may be NULL) gets one
 * line naming the file and the reason. Any thread. 0, -ENOENT, -EACCES,
 * -EINVAL (not PEM, key does not match the certificate), -ENOMEM. */
int wh_tls_ctx_load(wh_tls_ctx *t, const wh_tls_cert *certs, size_t n, char *err, size_t errlen);

/* Why a handshake failed (counted per context). */
enum wh_tls_fail {
    WH_TLS_FAIL_VERSION = 0, /* client offered no version we accept (TLS 1.0/1.1, SSLv3) */
    WH_TLS_FAIL_CIPHER,      /* no cipher or group in common */
    WH_TLS_FAIL_HTTP,        /* plain HTTP sent to a TLS port (answered 400 in clear text) */
    WH_TLS_FAIL_PROTOCOL,    /* not TLS, or malformed records/messages */
    WH_TLS_FAIL_ALERT,       /* the client sent a fatal alert (e.g. it rejected our certificate) */
    WH_TLS_FAIL_EOF,         /* the client closed or reset mid-handshake */
    WH_TLS_FAIL_TIMEOUT,     /* handshake not done within handshake_timeout_ms */
    WH_TLS_FAIL_OTHER,
    WH_TLS_FAIL_COUNT
};

/* Short name of a failure reason ("version", "cipher", "http", ...). */
const char *wh_tls_fail_name(int reason);

/* Counters of a context since it was created; any thread (relaxed reads). */
typedef struct wh_tls_stats {
    uint64_t handshakes; /* completed handshakes, resumed ones included */
    uint64_t resumed;    /* of those, resumed from a session ticket */
    uint64_t failures[WH_TLS_FAIL_COUNT];
} wh_tls_stats;

/* Fills *out with t's counters. */
void wh_tls_ctx_stats(const wh_tls_ctx *t, wh_tls_stats *out);

/* Calls fn on the connection's loop thread for every failed handshake, with
 * the peer's address, the reason and OpenSSL's words for it (for a debug
 * log line). Set before the context is used. */
void wh_tls_ctx_on_fail(wh_tls_ctx *t,
                        void (*fn)(const wh_sockaddr *peer, int reason, const char *detail,
                                   void *ud),
                        void *ud);

/* True when libwharf was built with TLS (OpenSSL). */
bool wh_tls_available(void);

/* Per connection (loop thread). For a connection without TLS each returns
 * NULL. The strings are static or live as long as the connection. */
/* The negotiated protocol version: "TLSv1.3", "TLSv1.2". */
const char *wh_conn_tls_version(const wh_conn *c);
/* The negotiated cipher, OpenSSL's name: "TLS_AES_128_GCM_SHA256". */
const char *wh_conn_tls_cipher(const wh_conn *c);
/* The protocol chosen by ALPN ("http/1.1"), or "" when none was. */
const char *wh_conn_tls_alpn(const wh_conn *c);
/* The host name the client asked for by SNI, or "" when none. */
const char *wh_conn_tls_sni(const wh_conn *c);
/* True when the session was resumed from a ticket. */
bool wh_conn_tls_resumed(const wh_conn *c);

WH_END_DECLS

#endif
