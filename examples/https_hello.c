/* https_hello: an HTTPS server in a few lines: TLS is a transport under
 * the connection, so the HTTP code is the same as without it.
 *
 *   https_hello CERT.pem KEY.pem [ADDR]      (ADDR: 127.0.0.1:8443)
 *
 * Prints "listening ADDR" once bound; SIGINT/SIGTERM stop it gracefully.
 */
#include <stdio.h>

#include "wharf/http.h"
#include "wharf/server.h"
#include "wharf/tls.h"

static void hello(wh_http_req *r, void *ud)
{
    const char *v = wh_conn_tls_version(wh_http_req_conn(r)); /* NULL without TLS */
    char body[96];
    int n = snprintf(body, sizeof body, "Hello over %s\n", v ? v : "plain TCP");
    wh_http_respond(r, 200, "text/plain", body, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: https_hello CERT.pem KEY.pem [ADDR]\n");
        return 2;
    }
    wh_tls_ctx *tls = NULL;
    wh_http_server *hs = NULL;
    wh_server *s = NULL;
    wh_tls_cert cert = {.cert_file = argv[1], .key_file = argv[2]};
    char err[256] = "";
    int rc = wh_tls_ctx_new(&tls, NULL); /* TLS 1.2/1.3, ALPN http/1.1, tickets */
    if (rc == 0) rc = wh_tls_ctx_load(tls, &cert, 1, err, sizeof err);
    if (rc == 0) rc = wh_http_server_new(&hs, NULL, hello, NULL);
    wh_server_opts so;
    wh_server_opts_init(&so);
    so.threads = 2;
    if (rc == 0) wh_http_server_net_opts(hs, &so.net);
    if (rc == 0) rc = wh_server_new(&s, &so, wh_http_server_cbs(hs), hs);
    if (rc == 0) rc = wh_server_listen_tls(s, argc > 3 ? argv[3] : "127.0.0.1:8443", tls);
    if (rc == 0) rc = wh_server_start(s);
    if (rc == 0) {
        wh_sockaddr a;
        char buf[128];
        if (wh_server_local_addr(s, 0, &a) == 0 && wh_addr_format(&a, buf, sizeof buf) > 0)
            printf("listening %s\n", buf);
        fflush(stdout);
        rc = wh_server_run(s);
    }
    if (rc < 0) fprintf(stderr, "https_hello: %s %s\n", wh_strerror(rc), err);
    wh_server_free(s); /* the server first: its connections use tls */
    wh_http_server_free(hs);
    wh_tls_ctx_free(tls);
    return rc < 0 ? 1 : 0;
}
