/* libFuzzer target: arbitrary bytes into a TLS server connection (the TLS
 * transport under wh_conn: handshake, records, errors, close).
 *
 * Input: byte 0 picks the mode. Bit 0 clear: the rest goes raw to a fresh
 * server conn, as a client would send it (ClientHellos, garbage, plain
 * HTTP). Bit 0 set: an in-process OpenSSL client first completes a real
 * handshake (bit 1: TLS 1.2, else 1.3), then the rest goes raw after it:
 * forged or broken records on an established session. Bits 2-3 pick the
 * write size. OpenSSL parses the records; what is checked is wharf's side:
 * the conn always ends (no hang), on_open/on_close come in pairs, nothing
 * leaks (LeakSanitizer) and nothing crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "wharf/tls.h"

#include "net/net_internal.h"
#include "tls_testcert.h"

static wh_loop *loop;
static wh_tls_ctx *tls;
static SSL_CTX *client;
static int opens, closes;

static void on_open(wh_conn *c, void *ud)
{
    (void)c, (void)ud;
    opens++;
}
static size_t on_read(wh_conn *c, char *data, size_t len, void *ud)
{
    (void)ud;
    wh_conn_write(c, data, len); /* echo: the write path runs too */
    return len;
}
static void on_close(wh_conn *c, int err, void *ud)
{
    (void)c, (void)err, (void)ud;
    closes++;
}
static const wh_conn_cbs cbs = {.on_open = on_open, .on_read = on_read, .on_close = on_close};

static void setup(void)
{
    wh_loop_new(&loop, NULL);
    char dir[] = "/tmp/wh_fuzz_tls_XXXXXX";
    if (!mkdtemp(dir)) abort();
    char crt[64], key[64];
    snprintf(crt, sizeof crt, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    if (wh_test_self_signed(crt, key, "fuzz", NULL) != 0) abort();
    wh_tls_opts o;
    wh_tls_opts_init(&o);
    o.handshake_timeout_ms = 100000; /* the input ends with EOF, never a timeout */
    if (wh_tls_ctx_new(&tls, &o) != 0) abort();
    wh_tls_cert c = {crt, key, NULL};
    if (wh_tls_ctx_load(tls, &c, 1, NULL, 0) != 0) abort();
    unlink(crt);
    unlink(key);
    rmdir(dir);
    client = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client, SSL_VERIFY_NONE, NULL);
}

static void pump(int n)
{
    for (int i = 0; i < n; i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop) setup();
    if (size < 1) return 0;
    unsigned mode = data[0];
    data++, size--;
    size_t step = (size_t[]){1, 7, 300, 1u << 20}[(mode >> 2) & 3];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) abort();
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.tls = tls;
    wh_conn *c;
    int o0 = opens, c0 = closes;
    if (wh_conn_adopt(loop, sv[0], &o, &cbs, NULL, &c) != 0) abort();
    SSL *cl = NULL;
    if (mode & 1) {
        cl = SSL_new(client);
        SSL_set_fd(cl, sv[1]);
        if (mode & 2) SSL_set_max_proto_version(cl, TLS1_2_VERSION);
        SSL_set_connect_state(cl);
        int r = 0;
        for (int i = 0; i < 200 && (r = SSL_do_handshake(cl)) != 1; i++)
            pump(1);
        if (r != 1) abort(); /* a good client must always get in */
        pump(2);
        if (opens != o0 + 1) abort();
    }
    for (size_t off = 0; off < size;) {
        size_t n = size - off < step ? size - off : step;
        ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
        if (w <= 0) break; /* the server closed (or the buffer is full: it stopped reading) */
        off += (size_t)w;
        pump(1);
    }
    shutdown(sv[1], SHUT_WR);
    char sink[4096];
    for (int i = 0; i < 1000 && wh_net_conn_count(loop) > 0; i++) {
        pump(1);
        while (read(sv[1], sink, sizeof sink) > 0)
            ;
    }
    if (wh_net_conn_count(loop) != 0) abort(); /* EOF must always end the conn */
    if (closes - c0 != opens - o0) abort();    /* on_close exactly when on_open ran */
    SSL_free(cl);
    close(sv[1]);
    ERR_clear_error();
    return 0;
}
