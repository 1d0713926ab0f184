/* Installed-library consumer: a TCP echo server (wh_listen on a bare loop,
 * 127.0.0.1 port 0) and a client (wh_conn_connect) on the same loop, one
 * round trip. Exits 0 once both sides have closed after the echo. */
#include <stdio.h>
#include <string.h>

#include <wharf/loop.h>
#include <wharf/net.h>
#include <wharf/server.h>

static const char message[] = "ping from an installed libwharf\n";

struct state {
    wh_loop *loop;
    char got[sizeof message];
    size_t got_len;
    int closes;
    int client_err, server_err;
    bool echoed, timed_out;
};

static void closed(struct state *st)
{
    if (++st->closes == 2) wh_loop_stop(st->loop);
}

static size_t server_read(wh_conn *c, char *data, size_t len, void *ud)
{
    (void)ud;
    if (wh_conn_write(c, data, len) != 0) wh_conn_abort(c);
    return len;
}

static void server_close(wh_conn *c, int err, void *ud)
{
    (void)c;
    struct state *st = ud;
    st->server_err = err;
    closed(st);
}

static void client_open(wh_conn *c, void *ud)
{
    (void)ud;
    if (wh_conn_write(c, message, sizeof message - 1) != 0) wh_conn_abort(c);
}

static size_t client_read(wh_conn *c, char *data, size_t len, void *ud)
{
    struct state *st = ud;
    size_t room = sizeof st->got - 1 - st->got_len;
    size_t n = len < room ? len : room;
    memcpy(st->got + st->got_len, data, n);
    st->got_len += n;
    if (st->got_len == sizeof message - 1) {
        st->echoed = memcmp(st->got, message, st->got_len) == 0;
        wh_conn_close(c); /* the server sees EOF and closes its side too */
    }
    return len;
}

static void client_close(wh_conn *c, int err, void *ud)
{
    (void)c;
    struct state *st = ud;
    st->client_err = err;
    closed(st);
}

static void on_deadline(wh_timer *t, void *ud)
{
    (void)t;
    struct state *st = ud;
    st->timed_out = true;
    wh_loop_stop(st->loop);
}

int main(void)
{
    /* The runtime's options as installed: defaults, and the restart option
     * a program beside an older instance of itself sets. */
    wh_server_opts so;
    wh_server_opts_init(&so);
    if (so.listen_when_ready || so.model != WH_MODEL_REUSEPORT) {
        fprintf(stderr, "echo: unexpected wh_server_opts defaults\n");
        return 1;
    }
    so.listen_when_ready = true;
    struct state st;
    memset(&st, 0, sizeof st);
    int rc = wh_loop_new(&st.loop, NULL);
    if (rc != 0) {
        fprintf(stderr, "echo: wh_loop_new: %s\n", wh_strerror(rc));
        return 1;
    }
    static const wh_conn_cbs server_cbs = {.on_read = server_read, .on_close = server_close};
    static const wh_conn_cbs client_cbs = {
        .on_open = client_open, .on_read = client_read, .on_close = client_close};

    /* Options through the installed header: a fixed kernel send buffer. */
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.sndbuf = 65536;
    wh_listener *l;
    if ((rc = wh_listen(st.loop, "127.0.0.1:0", &o, &server_cbs, &st, &l)) != 0) {
        fprintf(stderr, "echo: wh_listen: %s\n", wh_strerror(rc));
        return 1;
    }
    wh_sockaddr addr;
    char text[128];
    if ((rc = wh_listener_local(l, &addr)) != 0 ||
        (rc = wh_addr_format(&addr, text, sizeof text)) < 0) {
        fprintf(stderr, "echo: local address: %s\n", wh_strerror(rc));
        return 1;
    }
    wh_conn *client;
    if ((rc = wh_conn_connect(st.loop, text, 5000, NULL, &client_cbs, &st, &client)) != 0) {
        fprintf(stderr, "echo: wh_conn_connect %s: %s\n", text, wh_strerror(rc));
        return 1;
    }
    wh_timer *deadline;
    if ((rc = wh_timer_new(st.loop, on_deadline, &st, &deadline)) != 0 ||
        (rc = wh_timer_start(deadline, 10000, 0)) != 0) {
        fprintf(stderr, "echo: timer: %s\n", wh_strerror(rc));
        return 1;
    }
    rc = wh_loop_run(st.loop, WH_RUN_DEFAULT);
    wh_timer_free(deadline);
    wh_listener_close(l);
    wh_loop_free(st.loop);
    if (rc != 0 || st.timed_out || !st.echoed || st.client_err != 0 || st.server_err != 0) {
        fprintf(stderr, "echo: run=%d timed_out=%d echoed=%d client_err=%d server_err=%d\n", rc,
                st.timed_out, st.echoed, st.client_err, st.server_err);
        return 1;
    }
    printf("echo: %zu bytes echoed through %s\n", st.got_len, text);
    return 0;
}
