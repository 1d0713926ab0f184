/* Connections on one loop in the test process: echo, close/abort inside
 * callbacks, backpressure, sendfile, half-close, callback replacement,
 * pause/resume, read limits, a vanishing peer, outbound connect. */
#include <signal.h>
#include <stdlib.h>

#include "net/net_priv.h"
#include "test.h"
#include "test_net_util.h"

/* ---- a configurable server ---------------------------------------------- */

typedef struct srv {
    int opens, closes, reads, drains, eofs;
    int last_err;
    size_t bytes;
    wh_conn *conn;
    int mode;
    size_t flood_left; /* MODE_FLOOD: bytes still to produce */
    size_t max_queued;
    int sfd; /* MODE_SENDFILE */
    size_t sf_len;
    bool used_after_close;
} srv;

enum {
    MODE_ECHO,
    MODE_CLOSE_IN_READ,
    MODE_ABORT_IN_READ,
    MODE_FLOOD,
    MODE_SENDFILE,
    MODE_SHUTDOWN,
    MODE_UPGRADE,
    MODE_PAUSE,
    MODE_HOLD, /* consumes nothing */
};

static void produce(wh_conn *c, srv *s)
{
    static char chunk[65536];
    while (s->flood_left && wh_conn_writable(c)) {
        size_t n = s->flood_left < sizeof(chunk) ? s->flood_left : sizeof(chunk);
        if (wh_conn_write(c, chunk, n) < 0) return;
        s->flood_left -= n;
        if (wh_conn_queued(c) > s->max_queued) s->max_queued = wh_conn_queued(c);
    }
}

static void s_open(wh_conn *c, void *ud)
{
    srv *s = ud;
    s->opens++;
    s->conn = c;
    if (s->mode == MODE_FLOOD) produce(c, s);
    if (s->mode == MODE_SENDFILE) {
        wh_conn_write(c, "HDR:", 4);
        wh_conn_sendfile(c, s->sfd, 0, s->sf_len, true);
        wh_conn_close(c);
    }
    if (s->mode == MODE_SHUTDOWN) {
        wh_conn_write(c, "bye", 3);
        wh_conn_shutdown(c);
    }
}

static size_t up_read(wh_conn *c, char *d, size_t n, void *ud)
{
    srv *s = ud;
    s->reads++;
    wh_conn_write(c, "WS:", 3);
    wh_conn_write(c, d, n);
    return n;
}

static size_t s_read(wh_conn *c, char *d, size_t n, void *ud);
static void s_close(wh_conn *c, int err, void *ud);

static const wh_conn_cbs up_cbs = {.on_read = up_read, .on_close = s_close};

static size_t s_read(wh_conn *c, char *d, size_t n, void *ud)
{
    srv *s = ud;
    s->reads++;
    s->bytes += n;
    switch (s->mode) {
    case MODE_CLOSE_IN_READ:
        wh_conn_write(c, d, n);
        wh_conn_close(c);
        /* still valid until we return */
        s->used_after_close = wh_conn_data(c) == (void *)s;
        return n;
    case MODE_ABORT_IN_READ:
        wh_conn_write(c, d, n);
        wh_conn_abort(c);
        s->used_after_close = wh_conn_data(c) == (void *)s;
        return n;
    case MODE_UPGRADE: {
        char *nl = memchr(d, '\n', n);
        if (!nl) return 0;
        wh_conn_write(c, "OK\n", 3);
        wh_conn_set_cbs(c, &up_cbs, ud);
        return (size_t)(nl - d) + 1;
    }
    case MODE_PAUSE:
        wh_conn_pause(c);
        return 0;
    case MODE_HOLD:
        return 0;
    default:
        wh_conn_write(c, d, n);
        return n;
    }
}

static void s_drain(wh_conn *c, void *ud)
{
    srv *s = ud;
    s->drains++;
    if (s->mode == MODE_FLOOD) produce(c, s);
}

static void s_close(wh_conn *c, int err, void *ud)
{
    srv *s = ud;
    (void)c;
    s->closes++;
    s->last_err = err;
    s->conn = NULL;
}

static void s_eof(wh_conn *c, void *ud)
{
    srv *s = ud;
    s->eofs++;
    wh_conn_write(c, "late", 4);
    wh_conn_close(c);
}

static const wh_conn_cbs cbs = {
    .on_open = s_open, .on_read = s_read, .on_drain = s_drain, .on_close = s_close};

static void set_data_cb(wh_conn *c, void *ud)
{
    wh_conn_set_data(c, ud);
    s_open(c, ud);
}
static const wh_conn_cbs cbs_data = {
    .on_open = set_data_cb, .on_read = s_read, .on_drain = s_drain, .on_close = s_close};

typedef struct fixture {
    wh_loop *loop;
    wh_listener *l;
    int lfd;
    srv s;
} fixture;

static int fx_init(fixture *f, const char *addr, const wh_conn_cbs *cb, const wh_net_opts *o)
{
    memset(f, 0, sizeof(*f));
    f->loop = tnu_loop();
    if (!f->loop) return -1;
    f->l = tnu_listen(f->loop, addr, o, cb, &f->s, &f->lfd);
    return f->l ? 0 : -1;
}

static void fx_free(fixture *f)
{
    wh__listener_free(f->l);
    close(f->lfd);
    wh_loop_free(f->loop);
}

static int eof_seen(void *arg)
{
    xfer *x = arg;
    tnu_io_step(&x->io);
    return x->io.eof;
}

static int srv_closed(void *arg)
{
    return ((srv *)arg)->closes > 0;
}

/* ---- tests ----------------------------------------------------------------- */

TEST(conn_struct_is_small)
{
    /* idle memory per conn: the struct from the slab (issue 15: 80 B + 12 B of loop tables) */
    fprintf(stderr, "sizeof(struct wh_conn) = %zu\n", sizeof(struct wh_conn));
    CHECK(sizeof(struct wh_conn) <= WH__CONN_SIZE_MAX);
}

TEST(echo_100k)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    static char out[100000], in[100000];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (char)(i * 13 + 1);
    xfer x = {.io = {.fd = tnu_client(f.lfd),
                     .out = out,
                     .out_len = sizeof(out),
                     .in = in,
                     .in_cap = sizeof(in)},
              .want = sizeof(out)};
    CHECK(x.io.fd >= 0);
    CHECK(tnu_pump(f.loop, xfer_done, &x));
    CHECK_EQ(x.io.in_len, sizeof(out));
    CHECK(memcmp(in, out, sizeof(out)) == 0);
    CHECK_EQ(f.s.opens, 1);
    /* idle again: nothing buffered on the server side (on io_uring the last
     * send's completion may be reaped one iteration after the peer read it) */
    for (int i = 0; i < 10 && !(f.s.conn && wh__conn_idle(f.s.conn)); i++)
        wh_loop_run(f.loop, WH_RUN_NOWAIT);
    CHECK(f.s.conn && wh__conn_idle(f.s.conn));
    CHECK_EQ(wh_net_conn_count(f.loop), 1);
    close(x.io.fd);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    CHECK_EQ(f.s.last_err, 0);
    CHECK_EQ(f.s.closes, 1);
    CHECK_EQ(wh_net_conn_count(f.loop), 0);
    fx_free(&f);
}

TEST(close_inside_read)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs_data, NULL), 0);
    f.s.mode = MODE_CLOSE_IN_READ;
    char in[64];
    xfer x = {
        .io = {
            .fd = tnu_client(f.lfd), .out = "ping", .out_len = 4, .in = in, .in_cap = sizeof(in)}};
    CHECK(tnu_pump(f.loop, eof_seen, &x));
    CHECK_EQ(x.io.in_len, 4); /* the reply queued before close still went out */
    CHECK(memcmp(in, "ping", 4) == 0);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    CHECK(f.s.used_after_close);
    tnu_pump_n(f.loop, 3);
    CHECK_EQ(f.s.closes, 1);
    CHECK_EQ(f.s.last_err, 0);
    close(x.io.fd);
    fx_free(&f);
}

/* Two ways a conn ends with no epoll_ctl at all, because close(2) drops the
 * registration: a reply queued and the conn closed in on_read (the flush
 * empties the queue; a disarm first cost one per "Connection: close"
 * answer), and the peer's EOF answered by a close (dropping the read
 * interest first cost one per connection a client closes). io_uring needs
 * one removal either way: a pending poll holds the file. */
TEST(close_needs_no_ctl)
{
    for (int peer_eof = 0; peer_eof < 2; peer_eof++) {
        wh_loop *loop = tnu_loop();
        srv s = {.mode = peer_eof ? 0 : MODE_CLOSE_IN_READ};
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        wh_net_opts o;
        wh_net_opts_init(&o);
        wh_conn *c;
        CHECK_EQ(wh_conn_adopt(loop, sv[0], &o, &cbs_data, &s, &c), 0);
        tnu_pump_n(loop, 2);
        CHECK_EQ(s.opens, 1);
        wh__loop_stats a, b;
        wh__loop_get_stats(loop, &a);
        if (peer_eof)
            CHECK_EQ(shutdown(sv[1], SHUT_WR), 0);
        else
            CHECK_EQ(write(sv[1], "ping", 4), 4);
        for (int i = 0; i < 100 && !s.closes; i++)
            wh_loop_run(loop, WH_RUN_ONCE);
        wh__loop_get_stats(loop, &b);
        CHECK_EQ(s.closes, 1);
        CHECK_EQ(s.last_err, 0);
        /* io_uring with completion I/O: the conn never had a poll (its recv
         * is cancelled, which is no ctl) */
        bool uring = strcmp(wh_loop_backend(loop), "io_uring") == 0 && !wh__net_completion(loop);
        CHECK_EQ(b.ctl_calls, a.ctl_calls + (uring ? 1 : 0));
        char in[8];
        if (!peer_eof) {
            CHECK_EQ(read(sv[1], in, sizeof in), 4);
            CHECK(memcmp(in, "ping", 4) == 0);
        }
        CHECK_EQ(read(sv[1], in, sizeof in), 0); /* then EOF */
        close(sv[1]);
        wh_loop_free(loop);
    }
}

TEST(abort_inside_read)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs_data, NULL), 0);
    f.s.mode = MODE_ABORT_IN_READ;
    char in[64];
    xfer x = {
        .io = {
            .fd = tnu_client(f.lfd), .out = "ping", .out_len = 4, .in = in, .in_cap = sizeof(in)}};
    CHECK(tnu_pump(f.loop, eof_seen, &x));
    CHECK_EQ(x.io.err, ECONNRESET); /* RST, queued data dropped */
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    tnu_pump_n(f.loop, 3);
    CHECK_EQ(f.s.closes, 1);
    CHECK_EQ(f.s.last_err, -ECONNABORTED);
    CHECK(f.s.used_after_close);
    close(x.io.fd);
    fx_free(&f);
}

static int drained(void *arg)
{
    return ((srv *)arg)->drains > 0;
}

TEST(backpressure)
{
    fixture f;
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.high_watermark = 256 * 1024;
    o.low_watermark = 64 * 1024;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, &o), 0);
    f.s.mode = MODE_FLOOD;
    f.s.flood_left = 64u << 20; /* far more than any socket buffer */
    int fd = tnu_client(f.lfd);
    CHECK(fd >= 0);
    /* the client does not read: the producer must stop at the watermark */
    tnu_pump_n(f.loop, 50);
    CHECK(f.s.conn != NULL);
    CHECK(!wh_conn_writable(f.s.conn));
    size_t q1 = wh_conn_queued(f.s.conn);
    CHECK(q1 <= o.high_watermark + 65536);
    CHECK(f.s.flood_left > 0);
    /* reading is paused while above the watermark: client data is not read */
    CHECK_EQ(send(fd, "abc", 3, 0), 3);
    tnu_pump_n(f.loop, 20);
    CHECK_EQ(f.s.reads, 0);
    CHECK_EQ(wh_conn_queued(f.s.conn), q1); /* queued bytes stopped growing */
    /* now the client reads: on_drain fires, the flood continues, all arrives */
    size_t got = 0;
    static char buf[1 << 16];
    double end = tnu_now() + 20;
    while (got < (64u << 20) + 3 && tnu_now() < end) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0) got += (size_t)r;
        wh_loop_run(f.loop, WH_RUN_NOWAIT);
    }
    if (got != (64u << 20) + 3)
        fprintf(stderr, "got %zu closes %d err %d left %zu drains %d q %zu flags %x io %x\n", got,
                f.s.closes, f.s.last_err, f.s.flood_left, f.s.drains,
                f.s.conn ? wh_conn_queued(f.s.conn) : 0, f.s.conn ? f.s.conn->flags : 0,
                f.s.conn ? f.s.conn->io.flags : 0);
    CHECK_EQ(got, (64u << 20) + 3); /* the flood, then the echoed "abc" */
    CHECK(f.s.drains > 0);
    CHECK(f.s.max_queued <= o.high_watermark + 65536);
    CHECK(tnu_pump(f.loop, drained, &f.s));
    tnu_pump_n(f.loop, 5);
    CHECK(f.s.reads > 0); /* reading resumed below the low watermark */
    close(fd);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    fx_free(&f);
}

TEST(sendfile_segment)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    char path[] = "/tmp/wh_sf_XXXXXX";
    int sfd = mkstemp(path);
    CHECK(sfd >= 0);
    unlink(path);
    static char data[300000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i % 253);
    CHECK_EQ(write(sfd, data, sizeof(data)), (long long)sizeof(data));
    f.s.mode = MODE_SENDFILE;
    f.s.sfd = sfd;
    f.s.sf_len = sizeof(data);
    static char in[sizeof(data) + 10];
    xfer x = {.io = {.fd = tnu_client(f.lfd), .in = in, .in_cap = sizeof(in)}};
    CHECK(tnu_pump(f.loop, eof_seen, &x));
    CHECK_EQ(x.io.in_len, sizeof(data) + 4);
    CHECK(memcmp(in, "HDR:", 4) == 0);
    CHECK(memcmp(in + 4, data, sizeof(data)) == 0);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    CHECK_EQ(f.s.last_err, 0);
    CHECK_EQ(fcntl(sfd, F_GETFD), -1); /* closed by the conn */
    close(x.io.fd);
    fx_free(&f);
}

TEST(peer_half_close)
{
    /* client shuts down its write side: the server still answers, then closes */
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    char in[64];
    xfer x = {.io = {.fd = tnu_client(f.lfd), .in = in, .in_cap = sizeof(in)}};
    CHECK_EQ(send(x.io.fd, "hello", 5, 0), 5);
    shutdown(x.io.fd, SHUT_WR);
    CHECK(tnu_pump(f.loop, eof_seen, &x));
    CHECK_EQ(x.io.in_len, 5);
    CHECK(memcmp(in, "hello", 5) == 0);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    CHECK_EQ(f.s.last_err, 0);
    close(x.io.fd);
    fx_free(&f);
}

TEST(on_eof_keeps_open)
{
    /* with on_eof, the conn stays open after the peer's FIN (late replies) */
    wh_conn_cbs cb = cbs;
    cb.on_eof = s_eof;
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cb, NULL), 0);
    char in[64];
    xfer x = {.io = {.fd = tnu_client(f.lfd), .in = in, .in_cap = sizeof(in)}};
    CHECK_EQ(send(x.io.fd, "hi", 2, 0), 2);
    shutdown(x.io.fd, SHUT_WR);
    CHECK(tnu_pump(f.loop, eof_seen, &x));
    CHECK_EQ(f.s.eofs, 1);
    CHECK_EQ(x.io.in_len, 6);
    CHECK(memcmp(in, "hilate", 6) == 0);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    CHECK_EQ(f.s.last_err, 0);
    close(x.io.fd);
    fx_free(&f);
}

static int got_reads(void *arg)
{
    return ((srv *)arg)->reads > 0;
}

TEST(server_shutdown_half_close)
{
    /* wh_conn_shutdown: "bye" then FIN, and the server keeps reading */
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    f.s.mode = MODE_SHUTDOWN;
    char in[64];
    xfer x = {.io = {.fd = tnu_client(f.lfd), .in = in, .in_cap = sizeof(in)}};
    CHECK(tnu_pump(f.loop, eof_seen, &x));
    CHECK_EQ(x.io.in_len, 3);
    CHECK(memcmp(in, "bye", 3) == 0);
    CHECK_EQ(f.s.closes, 0);
    f.s.mode = MODE_HOLD;
    CHECK_EQ(send(x.io.fd, "more", 4, 0), 4);
    CHECK(tnu_pump(f.loop, got_reads, &f.s));
    CHECK_EQ(f.s.bytes, 4);
    CHECK(f.s.conn != NULL);
    CHECK_EQ(wh_conn_write(f.s.conn, "x", 1), -EPIPE); /* write side is shut */
    close(x.io.fd);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    fx_free(&f);
}

TEST(upgrade_offers_rest)
{
    /* wh_conn_set_cbs inside on_read: the unconsumed rest goes to the new
     * on_read in the same delivery (HTTP -> WebSocket) */
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    f.s.mode = MODE_UPGRADE;
    char in[64];
    const char *msg = "UPGRADE\nframe1";
    xfer x = {.io = {.fd = tnu_client(f.lfd),
                     .out = msg,
                     .out_len = strlen(msg),
                     .in = in,
                     .in_cap = sizeof(in)},
              .want = 3 + 3 + 6};
    CHECK(tnu_pump(f.loop, xfer_done, &x));
    CHECK_EQ(x.io.in_len, 12);
    CHECK(memcmp(in, "OK\nWS:frame1", 12) == 0);
    CHECK_EQ(f.s.reads, 2);
    close(x.io.fd);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    fx_free(&f);
}

TEST(pause_resume_offers_buffered)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    f.s.mode = MODE_PAUSE;
    char in[64];
    xfer x = {.io = {.fd = tnu_client(f.lfd), .in = in, .in_cap = sizeof(in)}, .want = 3};
    CHECK_EQ(send(x.io.fd, "abc", 3, 0), 3);
    CHECK(tnu_pump(f.loop, got_reads, &f.s));
    tnu_io_step(&x.io);
    CHECK_EQ(send(x.io.fd, "def", 3, 0), 3);
    tnu_pump_n(f.loop, 10);
    CHECK_EQ(f.s.reads, 1);          /* paused: no more deliveries */
    CHECK(!wh__conn_idle(f.s.conn)); /* "abc" is buffered */
    f.s.mode = MODE_ECHO;
    wh_conn_resume(f.s.conn);
    CHECK(tnu_pump(f.loop, xfer_done, &x));
    x.want = 6;
    CHECK(tnu_pump(f.loop, xfer_done, &x));
    CHECK_EQ(x.io.in_len, 6);
    CHECK(memcmp(in, "abcdef", 6) == 0);
    close(x.io.fd);
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    fx_free(&f);
}

TEST(read_buf_max)
{
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.read_buf_size = 4096;
    o.read_buf_max = 65536;
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, &o), 0);
    f.s.mode = MODE_HOLD;
    static char out[200000];
    memset(out, 'z', sizeof(out));
    xfer x = {.io = {.fd = tnu_client(f.lfd), .out = out, .out_len = sizeof(out)}};
    double end = tnu_now() + 10;
    while (!f.s.closes && tnu_now() < end) {
        tnu_io_step(&x.io);
        wh_loop_run(f.loop, WH_RUN_ONCE);
    }
    CHECK_EQ(f.s.closes, 1);
    CHECK_EQ(f.s.last_err, -EMSGSIZE);
    CHECK(f.s.bytes >= 65536);
    close(x.io.fd);
    fx_free(&f);
}

TEST(peer_vanishes_mid_write)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    f.s.mode = MODE_FLOOD;
    f.s.flood_left = 256u << 20;
    int fd = tnu_client(f.lfd);
    tnu_pump_n(f.loop, 10);
    char b[1000];
    CHECK(recv(fd, b, sizeof(b), 0) > 0);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd); /* RST with unread data */
    CHECK(tnu_pump(f.loop, srv_closed, &f.s));
    CHECK(f.s.last_err == -ECONNRESET || f.s.last_err == -EPIPE);
    CHECK_EQ(f.s.closes, 1);
    fx_free(&f);
}

/* ---- outbound connect ---------------------------------------------------- */

typedef struct cli {
    int opens, closes, err;
    char got[64];
    size_t n;
} cli;

static void c_open(wh_conn *c, void *ud)
{
    cli *k = ud;
    k->opens++;
    wh_conn_write(c, "hey", 3);
}
static size_t c_read(wh_conn *c, char *d, size_t n, void *ud)
{
    cli *k = ud;
    memcpy(k->got + k->n, d, n);
    k->n += n;
    if (k->n >= 3) wh_conn_close(c);
    return n;
}
static void c_close(wh_conn *c, int err, void *ud)
{
    cli *k = ud;
    (void)c;
    k->closes++;
    k->err = err;
}
static const wh_conn_cbs ccbs = {.on_open = c_open, .on_read = c_read, .on_close = c_close};

static int cli_closed(void *arg)
{
    return ((cli *)arg)->closes > 0;
}

TEST(connect_ok_and_refused)
{
    fixture f;
    CHECK_EQ(fx_init(&f, "127.0.0.1:0", &cbs, NULL), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tnu_port(f.lfd));
    cli k = {0};
    wh_conn *c;
    CHECK_EQ(wh_conn_connect(f.loop, addr, 2000, NULL, &ccbs, &k, &c), 0);
    CHECK(tnu_pump(f.loop, cli_closed, &k));
    CHECK_EQ(k.opens, 1);
    CHECK_EQ(k.err, 0);
    CHECK(memcmp(k.got, "hey", 3) == 0);

    /* a port nobody listens on */
    int tmp;
    CHECK_EQ(wh__listen_str("127.0.0.1:0", NULL, NULL, &tmp), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tnu_port(tmp));
    close(tmp);
    cli r = {0};
    CHECK_EQ(wh_conn_connect(f.loop, addr, 2000, NULL, &ccbs, &r, &c), 0);
    CHECK(tnu_pump(f.loop, cli_closed, &r));
    CHECK_EQ(r.opens, 0);
    CHECK_EQ(r.err, -ECONNREFUSED);
    CHECK_EQ(r.closes, 1);

    CHECK_EQ(wh_conn_connect(f.loop, "localhost:80", 0, NULL, &ccbs, &r, &c), -EINVAL);
    fx_free(&f);
}

TEST(connect_timeout)
{
    /* A listener that never accepts, with a full backlog: further SYNs are
     * dropped, so the handshake never completes and the timeout fires. */
    wh_loop *loop = tnu_loop();
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.backlog = 1;
    int lfd = -1;
    CHECK_EQ(wh__listen_str("127.0.0.1:0", &o, NULL, &lfd), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tnu_port(lfd));
    int fill[8];
    int nfill = 0;
    for (int i = 0; i < 8; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        wh_sockaddr a;
        wh_addr_parse(addr, &a, NULL);
        connect(fill[i], (struct sockaddr *)a.u.raw, a.len);
        nfill++;
    }
    usleep(100000);
    cli k = {0};
    wh_conn *c;
    double t0 = tnu_now();
    CHECK_EQ(wh_conn_connect(loop, addr, 300, NULL, &ccbs, &k, &c), 0);
    CHECK(tnu_pump(loop, cli_closed, &k));
    CHECK_EQ(k.opens, 0);
    CHECK_EQ(k.err, -ETIMEDOUT);
    CHECK(tnu_now() - t0 >= 0.29);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
    wh_loop_free(loop);
}

WH_TEST_MAIN()
