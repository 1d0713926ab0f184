/* echo: a complete TCP + UDP echo server on wharf. The server proper is the
 * 29 lines from on_read to main_server() (TCP and UDP, and the bound ports
 * printed for tests); main() only reads the command line. docs/guide.md has
 * a TCP-only threaded one in 23 lines.
 *
 *   echo [PORT | HOST:PORT] [--threads N] [--model reuseport|exclusive|oneshot|dispatch]
 *        [--no-pin] [--idle-timeout MS] [--max-conns N] [--shutdown-timeout MS]
 *
 * Default: TCP 0.0.0.0:9000 and UDP 0.0.0.0:9000. Port 0 picks free ports;
 * the bound addresses are printed as "tcp ADDR" and "udp ADDR" lines.
 * SIGINT/SIGTERM stop it gracefully; a second signal stops it at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/server.h"

/* ---- the server --------------------------------------------------------- */
static size_t on_read(wh_conn *c, char *data, size_t len, void *ud)
{
    wh_conn_write(c, data, len);
    return len;
}

static void on_datagram(wh_udp *u, const char *data, size_t len, const wh_sockaddr *peer, void *ud)
{
    wh_udp_send(u, data, len, peer);
}

static int main_server(const wh_server_opts *opts, const char *tcp, const char *udp)
{
    wh_conn_cbs cbs = {.on_read = on_read, .on_datagram = on_datagram};
    wh_server *s = NULL;
    int rc = wh_server_new(&s, opts, &cbs, NULL);
    if (rc == 0 && (rc = wh_server_listen(s, tcp)) == 0 && (rc = wh_server_listen(s, udp)) == 0)
        rc = wh_server_start(s);
    for (unsigned i = 0; rc == 0 && i < 2; i++) { /* tell tests the actual ports */
        wh_sockaddr a;
        char buf[128];
        if (wh_server_local_addr(s, i, &a) == 0 && wh_addr_format(&a, buf, sizeof(buf)) > 0)
            printf("%s %s\n", i ? "udp" : "tcp", buf);
    }
    fflush(stdout);
    if (rc == 0) rc = wh_server_run(s);
    wh_server_free(s);
    return rc;
}
/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    wh_server_opts o;
    wh_server_opts_init(&o);
    const char *addr = "0.0.0.0:9000";
    static const char *models[] = {"reuseport", "exclusive", "oneshot", "dispatch"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-pin"))
            o.pin_threads = false;
        else if (v && !strcmp(a, "--threads") && ++i)
            o.threads = (unsigned)atoi(v);
        else if (v && !strcmp(a, "--idle-timeout") && ++i)
            o.idle_timeout_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--shutdown-timeout") && ++i)
            o.shutdown_timeout_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--max-conns") && ++i)
            o.max_conns = (unsigned)atoi(v);
        else if (v && !strcmp(a, "--model") && ++i) {
            unsigned m = 0;
            while (m < 4 && strcmp(v, models[m]))
                m++;
            if (m == 4) {
                fprintf(stderr, "echo: unknown model %s\n", v);
                return 2;
            }
            o.model = (wh_model)m;
        } else if (a[0] != '-')
            addr = a;
        else {
            fprintf(stderr,
                    "usage: echo [PORT|HOST:PORT] [--threads N] [--model M] [--no-pin]\n"
                    "            [--idle-timeout MS] [--max-conns N] [--shutdown-timeout MS]\n");
            return 2;
        }
    }
    char tcp[128], udp[140];
    if (!strchr(addr, ':')) /* a bare port */
        snprintf(tcp, sizeof(tcp), "0.0.0.0:%s", addr);
    else
        snprintf(tcp, sizeof(tcp), "%s", addr);
    snprintf(udp, sizeof(udp), "udp://%s", tcp);
    int rc = main_server(&o, tcp, udp);
    if (rc < 0) fprintf(stderr, "echo: %s\n", wh_strerror(rc));
    return rc < 0 ? 1 : 0;
}
