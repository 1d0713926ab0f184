/* echo_net: a single-threaded TCP/Unix/UDP echo server on one event loop
 * and the networking layer alone (no wh_server, no threads). It is the
 * networking layer's integration-test and benchmark subject;
 * examples/echo.c is the framework version.
 *
 *   echo_net [--idle-timeout MS] ADDR...
 *
 * ADDR: "127.0.0.1:0", "[::1]:0", "unix:/tmp/e.sock", "unix:@name",
 * "udp://127.0.0.1:0". For each it prints "listen tcp|unix|udp ADDR" with the
 * bound address, then "ready". SIGINT/SIGTERM stop it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/net.h"

static uint32_t idle_ms;

static void on_open(wh_conn *c, void *ud)
{
    if (idle_ms) wh_conn_set_timeout(c, idle_ms);
}

static size_t on_read(wh_conn *c, char *data, size_t len, void *ud)
{
    wh_conn_write(c, data, len);
    return len;
}

static void on_datagram(wh_udp *u, const char *data, size_t len, const wh_sockaddr *peer, void *ud)
{
    wh_udp_send(u, data, len, peer);
}

static void on_signal(wh_signal *s, int signo, void *ud)
{
    wh_loop_stop(ud);
}

int main(int argc, char **argv)
{
    wh_loop *loop;
    if (wh_loop_new(&loop, NULL) < 0) return 1;
    wh_conn_cbs cbs = {.on_open = on_open, .on_read = on_read, .on_datagram = on_datagram};
    wh_listener *ls[16];
    wh_udp *us[16];
    int nl = 0, nu = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--idle-timeout") && i + 1 < argc) {
            idle_ms = (uint32_t)atoi(argv[++i]);
            continue;
        }
        wh_sockaddr sa;
        char buf[160];
        int rc = -ENOSPC;
        const char *kind = "tcp";
        if (!strncmp(a, "udp://", 6)) {
            if (nu < 16 && (rc = wh_udp_bind(loop, a, NULL, &cbs, NULL, &us[nu])) == 0)
                sa = *wh_udp_local(us[nu++]);
            kind = "udp";
        } else {
            if (nl < 16 && (rc = wh_listen(loop, a, NULL, &cbs, NULL, &ls[nl])) == 0)
                rc = wh_listener_local(ls[nl++], &sa);
            if (!strncmp(a, "unix:", 5)) kind = "unix";
        }
        if (rc < 0) {
            fprintf(stderr, "echo_net: %s: %s\n", a, wh_strerror(rc));
            return 1;
        }
        wh_addr_format(&sa, buf, sizeof(buf));
        printf("listen %s %s\n", kind, buf);
    }
    if (nl + nu == 0) {
        fprintf(stderr, "usage: echo_net [--idle-timeout MS] ADDR...\n");
        return 2;
    }
    wh_signal_block_defaults();
    wh_signal *s1, *s2;
    wh_signal_new(loop, SIGINT, on_signal, loop, &s1);
    wh_signal_new(loop, SIGTERM, on_signal, loop, &s2);
    printf("ready\n");
    fflush(stdout);
    int rc = wh_loop_run(loop, WH_RUN_DEFAULT);
    for (int i = 0; i < nl; i++)
        wh_listener_close(ls[i]);
    for (int i = 0; i < nu; i++)
        wh_udp_close(us[i]);
    wh_loop_free(loop);
    return rc < 0 ? 1 : 0;
}
