/* ws_echo: a WebSocket echo server on wharf's HTTP engine, plus a broadcast
 * room (used by the conformance tests and bench/ws.sh).
 *
 *   ws_echo [PORT | HOST:PORT] [--threads N] [--max-message BYTES]
 *           [--ping-interval MS] [--pong-timeout MS] [--protocol NAME]
 *           [--origin ORIGIN] [--room-max-queued BYTES] [--room-max-pending BYTES]
 *           [--fragment-timeout MS] [--tls-cert FILE --tls-key FILE]
 *
 *   GET /echo  (WebSocket): every message comes back as received
 *   GET /room  (WebSocket): every message is broadcast to every /room member
 *                           on every thread (the sender included)
 *   GET /flood (WebSocket): a text message "N" asks for N binary messages of
 *                           64 KiB (4-byte big-endian sequence number first),
 *                           sent only while wh_ws_writable() and resumed from
 *                           on_drain; then a text "done drains=K"
 *
 * Default 127.0.0.1:9001; port 0 picks a free one. The bound address is
 * printed as "listening ADDR". SIGINT/SIGTERM stop it (1001 to every peer).
 * --protocol picks NAME when a client offers it (Sec-WebSocket-Protocol);
 * --origin refuses (403) any other Origin. --room-max-queued sets how far
 * behind a /room member may fall before it is closed (1008), in bytes of
 * memory its queue holds; --room-max-pending how much a thread's queue of
 * broadcasts not yet processed may hold before a broadcast is refused (the
 * sender then gets a text "busy"). --fragment-timeout is the time a message
 * may take to arrive whole (1008 after it). With --tls-cert and --tls-key
 * (PEM files) the listener speaks TLS and clients connect to wss://: TLS is a
 * transport under the connection, so nothing else here changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/server.h"
#include "wharf/tls.h"
#include "wharf/ws.h"

static wh_ws_hub *room;
static const char *want_protocol, *want_origin;

static int pick_protocol(const wh_str *offered, unsigned n, void *ud)
{
    for (unsigned i = 0; want_protocol && i < n; i++)
        if (offered[i].len == strlen(want_protocol) &&
            !memcmp(offered[i].p, want_protocol, offered[i].len))
            return (int)i;
    return -1;
}

static bool origin_ok(wh_str origin, wh_http_req *r, void *ud)
{
    return origin.p && origin.len == strlen(want_origin) &&
           !memcmp(origin.p, want_origin, origin.len);
}

/* ---- the server ---------------------------------------------------------- */
static void echo_message(wh_ws *ws, const char *data, size_t len, bool text, void *ud)
{
    if (text)
        wh_ws_send_text(ws, data, len);
    else
        wh_ws_send_binary(ws, data, len);
}

static void room_open(wh_ws *ws, void *ud)
{
    wh_ws_hub_join(room, ws);
}

static void room_message(wh_ws *ws, const char *data, size_t len, bool text, void *ud)
{
    /* -EAGAIN: the room's threads are behind; nobody got it, so say so. */
    if (wh_ws_hub_broadcast(room, data, len, text) == -EAGAIN && wh_ws_writable(ws))
        wh_ws_send_text(ws, "busy", 4);
}

/* /flood: a producer that respects backpressure. */
typedef struct flood {
    unsigned left, seq, drains;
} flood;

static void flood_pump(wh_ws *ws)
{
    static char chunk[65536];
    flood *f = wh_ws_data(ws);
    while (f->left && wh_ws_writable(ws)) {
        chunk[0] = (char)(f->seq >> 24), chunk[1] = (char)(f->seq >> 16);
        chunk[2] = (char)(f->seq >> 8), chunk[3] = (char)f->seq;
        if (wh_ws_send_binary(ws, chunk, sizeof chunk) < 0) return;
        f->seq++;
        if (--f->left == 0) {
            char done[64];
            int n = snprintf(done, sizeof done, "done drains=%u", f->drains);
            wh_ws_send_text(ws, done, (size_t)n);
        }
    }
}

static void flood_open(wh_ws *ws, void *ud)
{
    wh_ws_set_data(ws, calloc(1, sizeof(flood)));
}

static void flood_message(wh_ws *ws, const char *data, size_t len, bool text, void *ud)
{
    flood *f = wh_ws_data(ws);
    char num[16];
    if (!f || !text || len >= sizeof num) return;
    memcpy(num, data, len); /* data is not NUL-terminated */
    num[len] = 0;
    f->left += (unsigned)strtoul(num, NULL, 10);
    flood_pump(ws);
}

static void flood_drain(wh_ws *ws, void *ud)
{
    flood *f = wh_ws_data(ws);
    f->drains++;
    flood_pump(ws);
}

static void flood_close(wh_ws *ws, int code, const char *reason, size_t len, void *ud)
{
    free(wh_ws_data(ws));
}

static const wh_ws_cbs echo_cbs = {.on_message = echo_message};
static const wh_ws_cbs room_cbs = {.on_open = room_open, .on_message = room_message};
static const wh_ws_cbs flood_cbs = {.on_open = flood_open,
                                    .on_message = flood_message,
                                    .on_drain = flood_drain,
                                    .on_close = flood_close};

static void handler(wh_http_req *r, void *ud)
{
    const wh_ws_opts *o = ud;
    wh_str path = wh_http_req_path(r);
    if (path.len == 5 && !memcmp(path.p, "/echo", 5))
        wh_ws_accept(r, o, &echo_cbs, NULL, NULL);
    else if (path.len == 5 && !memcmp(path.p, "/room", 5))
        wh_ws_accept(r, o, &room_cbs, NULL, NULL);
    else if (path.len == 6 && !memcmp(path.p, "/flood", 6))
        wh_ws_accept(r, o, &flood_cbs, NULL, NULL);
    else
        wh_http_respond(r, 404, "text/plain", "try /echo, /room or /flood\n", 27);
}
/* -------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    wh_http_opts ho;
    wh_ws_opts wo;
    wh_http_opts_init(&ho);
    wh_server_opts so;
    wh_server_opts_init(&so);
    wh_ws_opts_init(&wo);
    so.threads = 2;
    const char *addr = "127.0.0.1:9001";
    char abuf[64];
    size_t room_max = 0, room_pending = 0;
    wh_tls_cert cert = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(a, "--threads") && ++i)
            so.threads = (unsigned)atoi(v);
        else if (v && !strcmp(a, "--max-message") && ++i)
            wo.max_message = (size_t)strtoull(v, NULL, 10);
        else if (v && !strcmp(a, "--ping-interval") && ++i)
            wo.ping_interval_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--pong-timeout") && ++i)
            wo.pong_timeout_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--protocol") && ++i)
            want_protocol = v;
        else if (v && !strcmp(a, "--origin") && ++i)
            want_origin = v;
        else if (v && !strcmp(a, "--room-max-queued") && ++i)
            room_max = (size_t)strtoull(v, NULL, 10);
        else if (v && !strcmp(a, "--room-max-pending") && ++i)
            room_pending = (size_t)strtoull(v, NULL, 10);
        else if (v && !strcmp(a, "--fragment-timeout") && ++i)
            wo.fragment_timeout_ms = (uint32_t)atoi(v);
        else if (v && !strcmp(a, "--tls-cert") && ++i)
            cert.cert_file = v;
        else if (v && !strcmp(a, "--tls-key") && ++i)
            cert.key_file = v;
        else if (a[0] != '-' && strchr(a, ':'))
            addr = a;
        else if (a[0] != '-') {
            snprintf(abuf, sizeof abuf, "127.0.0.1:%s", a);
            addr = abuf;
        } else {
            fprintf(stderr, "usage: ws_echo [PORT|HOST:PORT] [--threads N] [--max-message BYTES]"
                            " [--ping-interval MS] [--pong-timeout MS] [--protocol NAME]"
                            " [--origin ORIGIN] [--room-max-queued BYTES]"
                            " [--room-max-pending BYTES] [--fragment-timeout MS]"
                            " [--tls-cert FILE --tls-key FILE]\n");
            return 2;
        }
    }
    if (!cert.cert_file != !cert.key_file) {
        fprintf(stderr, "ws_echo: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (want_protocol) wo.select_protocol = pick_protocol;
    if (want_origin) wo.check_origin = origin_ok;
    /* After the upgrade the server's idle timeout no longer applies: wh_ws
     * keeps the connection alive with pings (--ping-interval). */
    wh_tls_ctx *tls = NULL;
    wh_http_server *hs = NULL;
    wh_server *s = NULL;
    char err[256] = "";
    int rc = 0;
    if (cert.cert_file) rc = wh_tls_ctx_new(&tls, NULL); /* defaults: TLS 1.2/1.3 */
    if (rc == 0 && tls) rc = wh_tls_ctx_load(tls, &cert, 1, err, sizeof err);
    if (rc == 0) rc = wh_http_server_new(&hs, &ho, handler, &wo);
    if (rc == 0) wh_http_server_net_opts(hs, &so.net);
    if (rc == 0) rc = wh_server_new(&s, &so, wh_http_server_cbs(hs), hs);
    if (rc == 0) rc = wh_ws_hub_new(&room);
    if (rc == 0 && room_max) wh_ws_hub_set_max_queued(room, room_max);
    if (rc == 0 && room_pending) wh_ws_hub_set_max_pending(room, room_pending);
    if (rc == 0) rc = tls ? wh_server_listen_tls(s, addr, tls) : wh_server_listen(s, addr);
    if (rc == 0) rc = wh_server_start(s);
    wh_sockaddr a;
    char buf[128];
    if (rc == 0 && wh_server_local_addr(s, 0, &a) == 0 && wh_addr_format(&a, buf, sizeof buf) > 0)
        printf("listening %s\n", buf);
    fflush(stdout);
    if (rc == 0) rc = wh_server_run(s);
    if (rc < 0) fprintf(stderr, "ws_echo: %s %s\n", wh_strerror(rc), err);
    wh_server_free(s); /* the server first: its connections use tls */
    wh_ws_hub_free(room);
    wh_http_server_free(hs);
    wh_tls_ctx_free(tls);
    return rc < 0;
}
