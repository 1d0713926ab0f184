/* hello: the smallest useful HTTP server on wharf.
 *
 *   hello [--port N] [--host ADDR] [--threads N]
 *         [--model reuseport|exclusive|oneshot|dispatch] [--no-pin]
 *         [--keepalive-ms MS] [--header-timeout-ms MS]
 *
 *   GET  /plaintext  "Hello, World!" (13 bytes, text/plain; the benchmark route)
 *   GET  /           a short text
 *   POST /echo       the request body back (Content-Length or chunked)
 *
 * Port 0 (the default is 8080) picks a free port; the bound address is
 * printed as "listening ADDR". SIGINT/SIGTERM stop it gracefully.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http.h"
#include "wharf/server.h"

/* ---- the server: a handler is a few lines ------------------------------ */
static void plaintext(wh_http_req *r, void *ud)
{
    wh_http_respond(r, 200, "text/plain", "Hello, World!", 13);
}

static void index_page(wh_http_req *r, void *ud)
{
    static const char msg[] = "wharf says hello. Try /plaintext.\n";
    wh_http_respond(r, 200, "text/plain; charset=utf-8", msg, sizeof msg - 1);
}

static void echo(wh_http_req *r, void *ud)
{
    wh_str b = wh_http_req_body(r);
    wh_http_respond(r, 200, "application/octet-stream", b.p, b.len);
}
/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    wh_http_opts o;
    wh_http_opts_init(&o);
    wh_server_opts so;
    wh_server_opts_init(&so);
    const char *host = "0.0.0.0";
    int port = 8080;
    static const char *models[] = {"reuseport", "exclusive", "oneshot", "dispatch"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-pin"))
            so.pin_threads = false;
        else if (v && !strcmp(a, "--port") && ++i)
            port = atoi(v);
        else if (v && !strcmp(a, "--host") && ++i)
            host = v;
        else if (v && !strcmp(a, "--keepalive-ms") && ++i)
            o.keepalive_timeout_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--header-timeout-ms") && ++i)
            o.header_timeout_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--threads") && ++i)
            so.threads = (unsigned)atoi(v);
        else if (v && !strcmp(a, "--model") && ++i) {
            unsigned m = 0;
            while (m < 4 && strcmp(v, models[m]))
                m++;
            if (m == 4) {
                fprintf(stderr, "hello: unknown model %s\n", v);
                return 2;
            }
            so.model = (wh_model)m;
        } else {
            fprintf(stderr, "usage: hello [--port N] [--host ADDR] [--threads N] "
                            "[--model reuseport|exclusive|oneshot|dispatch] [--no-pin] "
                            "[--keepalive-ms MS] [--header-timeout-ms MS]\n");
            return 2;
        }
    }

    wh_router *rt = NULL;
    wh_http_server *hs = NULL;
    wh_server *s = NULL;
    char addr[128];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    int rc = wh_router_new(&rt);
    if (rc == 0) rc = wh_router_add(rt, "GET", "/plaintext", plaintext, NULL);
    if (rc == 0) rc = wh_router_add(rt, "GET", "/", index_page, NULL);
    if (rc == 0) rc = wh_router_add(rt, "POST", "/echo", echo, NULL);
    /* HTTP is the protocol; wh_server is the threads that carry it. */
    if (rc == 0) rc = wh_http_server_new(&hs, &o, wh_router_handle, rt);
    if (rc == 0) wh_http_server_net_opts(hs, &so.net);
    if (rc == 0) rc = wh_server_new(&s, &so, wh_http_server_cbs(hs), hs);
    if (rc == 0) rc = wh_server_listen(s, addr);
    if (rc == 0) rc = wh_server_start(s);
    if (rc == 0) {
        wh_sockaddr a;
        char buf[128];
        if (wh_server_local_addr(s, 0, &a) == 0 && wh_addr_format(&a, buf, sizeof buf) > 0)
            printf("listening %s\n", buf);
        fflush(stdout);
        rc = wh_server_run(s);
    }
    if (rc < 0) fprintf(stderr, "hello: %s\n", wh_strerror(rc));
    wh_server_free(s);
    wh_http_server_free(hs);
    wh_router_free(rt);
    return rc < 0 ? 1 : 0;
}
