/* Completion I/O of plain conns on an io_uring loop (conn.c "Completion
 * mode", loop_internal.h wh__cq_*): reads from the loop's provided-buffer
 * ring, the write queue as sendmsg ops, and teardown with ops in flight.
 * Every case asks for io_uring explicitly; where this machine cannot make
 * rings the cases say so and check nothing (the fallback is
 * test_loop_backend's). WH_TEST_LABELS: uring */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_priv.h"
#include "test.h"
#include "test_net_util.h"

/* A loop on io_uring with completion I/O, or NULL (noted once). */
static wh_loop *cq_loop(unsigned nbufs, unsigned buf_size)
{
    wh_loop *loop;
    wh_loop_opts o = {.backend = "io_uring"};
    if (wh_loop_new(&loop, &o) != 0) return NULL;
    if (!wh__cq_able(loop)) {
        static bool said;
        if (!said)
            fprintf(stderr, "note: io_uring is not available here (%s): cases skipped\n",
                    wh_strerror(wh_loop_backend_error(loop)));
        said = true;
        wh_loop_free(loop);
        return NULL;
    }
    if (!wh__net_completion(loop)) {
        static bool said;
        if (!said)
            fprintf(stderr, "note: conns stay on readiness in this build or environment "
                            "(WH_NET_READINESS, or TSan without WH_NET_COMPLETION=1): cases "
                            "skipped\n");
        said = true;
        wh_loop_free(loop);
        return NULL;
    }
    if (nbufs && wh__cq_set_bufs(loop, nbufs, buf_size) != 0) {
        wh_loop_free(loop);
        return NULL;
    }
    wh_timer *t; /* a 5 ms heartbeat: WH_RUN_ONCE never blocks for long */
    wh_timer_new(loop, tnu_tick, NULL, &t);
    wh_timer_start(t, 5, 5);
    return loop;
}

typedef struct rec {
    char in[1 << 16];
    size_t in_len;
    size_t calls, max_call;
    size_t line_mode; /* consume only whole lines ending in '\n' */
    int opens, closes, drains, eofs, last_err;
    bool pause_on_open;
    wh_conn *conn;
} rec;

static void r_open(wh_conn *c, void *ud)
{
    rec *r = ud;
    r->opens++;
    r->conn = c;
    if (r->pause_on_open) wh_conn_pause(c);
}

static size_t r_read(wh_conn *c, char *data, size_t len, void *ud)
{
    (void)c;
    rec *r = ud;
    r->calls++;
    if (len > r->max_call) r->max_call = len;
    size_t take = len;
    if (r->line_mode) {
        take = 0;
        for (size_t i = len; i > 0; i--)
            if (data[i - 1] == '\n') {
                take = i;
                break;
            }
    }
    if (r->in_len + take <= sizeof r->in) {
        memcpy(r->in + r->in_len, data, take);
        r->in_len += take;
    }
    return take;
}

static void r_drain(wh_conn *c, void *ud)
{
    (void)c;
    ((rec *)ud)->drains++;
}

static void r_eof(wh_conn *c, void *ud)
{
    ((rec *)ud)->eofs++;
    wh_conn_close(c);
}

static void r_close(wh_conn *c, int err, void *ud)
{
    (void)c;
    rec *r = ud;
    r->closes++;
    r->last_err = err;
    r->conn = NULL;
}

static const wh_conn_cbs rcbs = {.on_open = r_open,
                                 .on_read = r_read,
                                 .on_drain = r_drain,
                                 .on_eof = r_eof,
                                 .on_close = r_close};

/* A conn on loop over one end of a socket pair, recording into r; returns
 * the other end, or -1. */
static int adopt_pair(wh_loop *loop, rec *r, const wh_net_opts *o, wh_conn **c)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    if (wh_conn_adopt(loop, sv[0], o, &rcbs, r, c) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    return sv[1];
}

static int pump_until(wh_loop *loop, const size_t *v, size_t want)
{
    double end = tnu_now() + 10;
    while (*v < want && tnu_now() < end)
        wh_loop_run(loop, WH_RUN_ONCE);
    return *v >= want;
}

static int pump_until_int(wh_loop *loop, const int *v, int want)
{
    double end = tnu_now() + 10;
    while (*v < want && tnu_now() < end)
        wh_loop_run(loop, WH_RUN_ONCE);
    return *v >= want;
}

static void pattern(char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (i * 7 + seed) % 26);
}

/* One write larger than a buffer: several completions, each at most one
 * buffer, the bytes in order. */
TEST(recv_spans_several_buffers)
{
    wh_loop *loop = cq_loop(8, 64);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    int peer = adopt_pair(loop, &r, NULL, NULL);
    CHECK(peer >= 0);
    char out[300];
    pattern(out, sizeof out, 1);
    CHECK_EQ(write(peer, out, sizeof out), (ssize_t)sizeof out);
    CHECK(pump_until(loop, &r.in_len, sizeof out));
    CHECK_EQ(r.in_len, sizeof out);
    CHECK(memcmp(r.in, out, sizeof out) == 0);
    CHECK(r.calls >= 300 / 64);
    CHECK(r.max_call <= 64); /* straight from the buffers: nothing was kept */
    CHECK(r.conn && r.conn->rbuf == NULL);
    close(peer);
    CHECK(pump_until_int(loop, &r.closes, 1));
    CHECK_EQ(r.last_err, 0);
    wh_loop_free(loop);
}

/* on_read leaves a partial line: the rest is copied out and the buffer goes
 * back, so two buffers carry any number of messages. */
TEST(on_read_leaving_bytes_returns_the_buffer)
{
    wh_loop *loop = cq_loop(2, 32);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    r.line_mode = 1;
    int peer = adopt_pair(loop, &r, NULL, NULL);
    CHECK(peer >= 0);
    static char expect[8192];
    size_t elen = 0;
    for (int i = 0; i < 200; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "message number %d, a bit long\n", i);
        /* in two pieces, the first without its newline */
        CHECK_EQ(write(peer, msg, 10), 10);
        wh_loop_run(loop, WH_RUN_NOWAIT);
        wh_loop_run(loop, WH_RUN_NOWAIT);
        CHECK_EQ(write(peer, msg + 10, (size_t)n - 10), n - 10);
        memcpy(expect + elen, msg, (size_t)n);
        elen += (size_t)n;
    }
    CHECK(pump_until(loop, &r.in_len, elen));
    CHECK_EQ(r.in_len, elen);
    CHECK(memcmp(r.in, expect, elen) == 0);
    uint64_t ops, nobufs;
    wh__cq_counts(loop, &ops, &nobufs);
    fprintf(stderr, "     %zu on_read calls, %llu ops, %llu ENOBUFS\n", r.calls,
            (unsigned long long)ops, (unsigned long long)nobufs);
    close(peer);
    CHECK(pump_until_int(loop, &r.closes, 1));
    wh_loop_free(loop);
}

/* Two 16-byte buffers for eight busy conns: the ring runs dry, the recvs end
 * with ENOBUFS and are re-armed, and no byte is lost or reordered. */
TEST(buffer_ring_running_dry_loses_nothing)
{
    wh_loop *loop = cq_loop(2, 16);
    if (!loop) return;
    enum { N = 8, LEN = 2000 };
    static rec r[N];
    memset(r, 0, sizeof r);
    int peer[N];
    static char out[N][LEN];
    for (int i = 0; i < N; i++) {
        peer[i] = adopt_pair(loop, &r[i], NULL, NULL);
        CHECK(peer[i] >= 0);
        pattern(out[i], LEN, (unsigned)i);
    }
    wh_loop_run(loop, WH_RUN_NOWAIT); /* the recvs are in the kernel */
    for (int i = 0; i < N; i++)
        CHECK_EQ(write(peer[i], out[i], LEN), LEN);
    double end = tnu_now() + 10;
    for (;;) {
        int done = 0;
        for (int i = 0; i < N; i++)
            done += r[i].in_len == LEN;
        if (done == N || tnu_now() > end) break;
        wh_loop_run(loop, WH_RUN_ONCE);
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ(r[i].in_len, (size_t)LEN);
        CHECK(memcmp(r[i].in, out[i], LEN) == 0);
    }
    uint64_t ops, nobufs;
    wh__cq_counts(loop, &ops, &nobufs);
    fprintf(stderr, "     %llu ops, %llu recvs ended by ENOBUFS\n", (unsigned long long)ops,
            (unsigned long long)nobufs);
    CHECK(nobufs > 0);
    for (int i = 0; i < N; i++)
        close(peer[i]);
    wh_loop_free(loop);
    for (int i = 0; i < N; i++)
        CHECK_EQ(r[i].closes, 1);
}

/* 4 MiB through a small send buffer: sendmsg completes short, the rest is
 * resubmitted, back-pressure pauses and on_drain fires, all bytes arrive in
 * order. */
TEST(short_send_resubmits_and_drains)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.high_watermark = 1 << 20;
    o.low_watermark = 64 << 10;
    wh_conn *c;
    int peer = adopt_pair(loop, &r, &o, &c);
    CHECK(peer >= 0);
    int small = 16384; /* before the first send, which goes with the next enter */
    setsockopt(wh_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    enum { TOTAL = 4 << 20 };
    static char out[TOTAL], in[TOTAL];
    pattern(out, TOTAL, 3);
    CHECK_EQ(wh_conn_write(c, out, TOTAL), 0);
    CHECK(!wh_conn_writable(c)); /* above the high watermark */
    size_t got = 0;
    double end = tnu_now() + 20;
    while (got < TOTAL && tnu_now() < end) {
        wh_loop_run(loop, WH_RUN_NOWAIT);
        ssize_t n = read(peer, in + got, TOTAL - got);
        if (n > 0) got += (size_t)n;
        if (n <= 0) wh_loop_run(loop, WH_RUN_ONCE);
    }
    CHECK_EQ(got, (size_t)TOTAL);
    CHECK(memcmp(in, out, TOTAL) == 0);
    for (int i = 0; i < 10 && wh_conn_queued(c); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh_conn_queued(c), 0);
    CHECK_EQ(r.drains, 1);
    CHECK(wh_conn_writable(c));
    uint64_t ops, nobufs;
    wh__cq_counts(loop, &ops, &nobufs);
    fprintf(stderr, "     %llu ops for 4 MiB\n", (unsigned long long)ops);
    CHECK(ops > 2); /* the recv, and more than one sendmsg */
    close(peer);
    CHECK(pump_until_int(loop, &r.closes, 1));
    wh_loop_free(loop);
}

static int ref_done;
static void on_ref_done(void *arg)
{
    (void)arg;
    ref_done++;
}

/* A conn aborted with its recv in flight and a sendmsg blocked in the
 * kernel: on_close once, the reference segment's done() once, and the conn
 * freed only after both ops' last completions (ASan checks the rest). */
TEST(close_with_recv_and_send_in_flight)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    wh_conn *c;
    int peer = adopt_pair(loop, &r, NULL, &c);
    CHECK(peer >= 0);
    static char big[1 << 20];
    ref_done = 0;
    CHECK_EQ(wh_conn_write_ref(c, big, sizeof big, on_ref_done, NULL), 0);
    tnu_pump_n(loop, 3); /* the peer reads nothing: the sendmsg waits in the kernel */
    CHECK(c->io.spare & WH__Q_SEND);
    CHECK(c->io.spare & WH__Q_RECV);
    CHECK_EQ(ref_done, 0);
    wh_conn_abort(c);
    /* on_close waits for the send's completion: the kernel may read big */
    CHECK_EQ(r.closes, 0);
    CHECK(pump_until_int(loop, &r.closes, 1));
    CHECK_EQ(r.last_err, -ECONNABORTED);
    CHECK_EQ(ref_done, 1);
    for (int i = 0; i < 10 && wh__cq_inflight(loop); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh__cq_inflight(loop), 0);
    CHECK_EQ(wh_net_conn_count(loop), 0);
    char b[16];
    ssize_t n;
    while ((n = read(peer, b, sizeof b)) > 0)
        ;
    CHECK(n == 0 || errno == ECONNRESET); /* the socket is really closed */
    close(peer);
    tnu_pump_n(loop, 2);
    CHECK_EQ(r.closes, 1);
    CHECK_EQ(ref_done, 1);
    wh_loop_free(loop);
}

/* Orderly close with only the recv in flight: on_close at once (the usual
 * time), the memory after the recv's cancellation. */
TEST(close_with_recv_in_flight)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    wh_conn *c;
    int peer = adopt_pair(loop, &r, NULL, &c);
    CHECK(peer >= 0);
    tnu_pump_n(loop, 2);
    CHECK(c->io.spare & WH__Q_RECV);
    CHECK_EQ(wh__cq_inflight(loop), 1);
    wh_conn_close(c);
    wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(r.closes, 1);
    CHECK_EQ(r.last_err, 0);
    for (int i = 0; i < 10 && wh__cq_inflight(loop); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh__cq_inflight(loop), 0);
    char b[4];
    CHECK_EQ(read(peer, b, sizeof b), 0); /* FIN once the cancel let the file go */
    close(peer);
    wh_loop_free(loop);
}

/* wh_loop_free with recvs and a blocked send in flight: every on_close runs,
 * the done() too, nothing leaks or is used after free (ASan). */
static void make_busy(wh_loop *loop, rec *r, int n, int *peers, wh_conn **cs)
{
    for (int i = 0; i < n; i++) {
        peers[i] = adopt_pair(loop, &r[i], NULL, &cs[i]);
        CHECK(peers[i] >= 0);
    }
    static char big[1 << 20];
    CHECK_EQ(wh_conn_write_ref(cs[0], big, sizeof big, on_ref_done, NULL), 0);
}

TEST(loop_free_with_ops_in_flight)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r[4];
    memset(r, 0, sizeof r);
    int peers[4];
    wh_conn *cs[4];
    ref_done = 0;
    make_busy(loop, r, 4, peers, cs);
    tnu_pump_n(loop, 3);
    CHECK(wh__cq_inflight(loop) >= 5); /* 4 recvs + the send */
    /* one more op queued but not yet submitted */
    CHECK_EQ(wh_conn_write(cs[1], "x", 1), 0);
    wh_loop_free(loop);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(r[i].closes, 1);
        close(peers[i]);
    }
    CHECK_EQ(ref_done, 1);
}

/* The same, freed by another thread than the one that ran it (as
 * wh_server_free does with its workers' loops). */
typedef struct thr_arg {
    wh_loop *loop;
    rec *r;
    int *peers;
} thr_arg;

static void *run_then_leave(void *p)
{
    thr_arg *a = p;
    wh_conn *cs[4];
    make_busy(a->loop, a->r, 4, a->peers, cs);
    tnu_pump_n(a->loop, 3);
    if (wh_conn_write(cs[2], "y", 1) != 0) /* queued, not submitted */
        a->peers[0] = -1;
    return NULL;
}

TEST(loop_free_on_another_thread_with_ops_in_flight)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r[4];
    memset(r, 0, sizeof r);
    int peers[4];
    ref_done = 0;
    thr_arg a = {loop, r, peers};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, run_then_leave, &a), 0);
    pthread_join(t, NULL);
    CHECK(peers[0] >= 0);
    CHECK(wh__cq_inflight(loop) >= 5);
    wh_loop_free(loop);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(r[i].closes, 1);
        close(peers[i]);
    }
    CHECK_EQ(ref_done, 1);
}

/* The peer resets the connection while a large send is in flight: the conn
 * ends with an error, once, and nothing leaks. TCP for a real RST. */
TEST(peer_reset_mid_send)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(lfd, 4), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(cl, (struct sockaddr *)&sa, sizeof sa), 0);
    int sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(sfd >= 0);
    wh_conn *c;
    CHECK_EQ(wh_conn_adopt(loop, sfd, NULL, &rcbs, &r, &c), 0);
    static char big[8 << 20];
    CHECK_EQ(wh_conn_write_ref(c, big, sizeof big, NULL, NULL), 0);
    tnu_pump_n(loop, 3);
    char b[4096];
    CHECK(read(cl, b, sizeof b) > 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(cl, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(cl); /* RST */
    CHECK(pump_until_int(loop, &r.closes, 1));
    CHECK_EQ(r.closes, 1);
    CHECK(r.last_err == -ECONNRESET || r.last_err == -EPIPE);
    fprintf(stderr, "     on_close(%s)\n", wh_strerror(r.last_err));
    for (int i = 0; i < 10 && wh__cq_inflight(loop); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh__cq_inflight(loop), 0);
    close(lfd);
    wh_loop_free(loop);
}

/* Bytes and EOF that come while the conn is paused wait (in rbuf, or in
 * the socket) and are delivered after wh_conn_resume, in order. */
TEST(pause_keeps_bytes_and_eof)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    wh_conn *c;
    int peer = adopt_pair(loop, &r, NULL, &c);
    CHECK(peer >= 0);
    CHECK_EQ(write(peer, "hello ", 6), 6);
    CHECK(pump_until(loop, &r.in_len, 6));
    wh_conn_pause(c);
    CHECK_EQ(write(peer, "world", 5), 5);
    shutdown(peer, SHUT_WR);
    tnu_pump_n(loop, 5);
    CHECK_EQ(r.in_len, 6);
    CHECK_EQ(r.eofs, 0);
    wh_conn_resume(c);
    CHECK(pump_until_int(loop, &r.eofs, 1));
    CHECK_EQ(r.in_len, 11);
    CHECK(memcmp(r.in, "hello world", 11) == 0);
    CHECK(pump_until_int(loop, &r.closes, 1));
    close(peer);
    wh_loop_free(loop);
}

/* A pipe is no socket: the first recv fails with ENOTSOCK and the conn goes
 * back to readiness; its bytes still arrive. */
TEST(pipe_falls_back_to_readiness)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    wh_conn *c;
    CHECK_EQ(wh_conn_adopt(loop, p[0], NULL, &rcbs, &r, &c), 0);
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK(pump_until(loop, &r.in_len, 3));
    CHECK(memcmp(r.in, "abc", 3) == 0);
    CHECK(!(c->io.spare & WH__Q_CQ));
    close(p[1]);
    CHECK(pump_until_int(loop, &r.closes, 1));
    wh_loop_free(loop);
}

/* A listener accepts with one multishot accept op: twenty connections, no
 * poll request and no accept4 per connection; freed with the op in flight,
 * its memory waits for the cancel (ASan). */
static size_t echo_read(wh_conn *c, char *data, size_t len, void *ud)
{
    (void)ud;
    wh_conn_write(c, data, len);
    return len;
}

TEST(listener_uses_one_accept_op)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    wh_conn_cbs cb = {.on_read = echo_read};
    int lfd = -1;
    wh_listener *l = tnu_listen(loop, "127.0.0.1:0", NULL, &cb, NULL, &lfd);
    CHECK(l != NULL);
    tnu_pump_n(loop, 2);
    wh__loop_stats st0, st1;
    wh__loop_get_stats(loop, &st0);
    uint64_t ops0, ops1, nb;
    wh__cq_counts(loop, &ops0, &nb);
    enum { N = 20 };
    int cl[N];
    for (int i = 0; i < N; i++) {
        cl[i] = tnu_client(lfd);
        CHECK(cl[i] >= 0);
        CHECK_EQ(send(cl[i], "ping", 4, 0), 4);
    }
    int got = 0;
    double end = tnu_now() + 10;
    bool seen[N] = {false};
    while (got < N && tnu_now() < end) {
        wh_loop_run(loop, WH_RUN_ONCE);
        for (int i = 0; i < N; i++) {
            char b[8];
            if (!seen[i] && recv(cl[i], b, sizeof b, MSG_DONTWAIT) == 4) {
                seen[i] = true;
                got++;
            }
        }
    }
    CHECK_EQ(got, N);
    CHECK_EQ(wh__listener_accepted(l), N);
    wh__loop_get_stats(loop, &st1);
    wh__cq_counts(loop, &ops1, &nb);
    CHECK_EQ(st1.ctl_calls, st0.ctl_calls); /* no poll for the listener or the conns */
    /* a single-shot recv for the first bytes, then a multishot one, and a
     * sendmsg each; the accept op stays */
    CHECK_EQ(ops1 - ops0, 3 * N);
    wh__listener_free(l); /* op in flight: freed at its last completion */
    for (int i = 0; i < N; i++)
        close(cl[i]);
    for (int i = 0; i < 20 && wh_net_conn_count(loop); i++)
        wh_loop_run(loop, WH_RUN_ONCE);
    CHECK_EQ(wh_net_conn_count(loop), 0);
    close(lfd);
    wh_loop_free(loop);
}

/* ---- Closing replies as one linked chain (sendmsg -> close) ------------- */

/* A server that answers each conn's first bytes with cl_reply_len bytes and closes
 * (an HTTP "Connection: close" exchange). */
static char cl_reply[8 << 20];
static size_t cl_reply_len;
static size_t closer_read(wh_conn *c, char *data, size_t len, void *ud)
{
    (void)data;
    rec *r = ud;
    r->calls++;
    {
        if (wh_conn_write_ref(c, cl_reply, cl_reply_len, NULL, NULL) != 0) r->opens = -100;
        wh_conn_close(c);
    }
    return len;
}
static const wh_conn_cbs closer_cbs = {
    .on_open = r_open, .on_read = closer_read, .on_close = r_close};

/* A connected TCP pair: *cl the blocking client, the returned fd the
 * server's end (non-blocking), or -1. */
static int tcp_pair(int *cl)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    *cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(*cl, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
    int sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    close(lfd);
    return sfd;
}

/* A closer conn (closer_cbs, recording into r) over a TCP pair: *cl the
 * client, *sfd the server's fd. NULL on failure. */
static wh_conn *closer_conn(wh_loop *loop, rec *r, int *cl, int *sfd)
{
    wh_conn *c;
    *sfd = tcp_pair(cl);
    if (*sfd < 0 || wh_conn_adopt(loop, *sfd, NULL, &closer_cbs, r, &c) != 0) return NULL;
    return c;
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Reads from a non-blocking client until EOF or an error, pumping the loop:
 * bytes read, with *err 0 at EOF, else the errno. */
static size_t read_to_eof(wh_loop *loop, int fd, char *out, size_t cap, int *err)
{
    size_t got = 0;
    char b[65536];
    *err = ETIMEDOUT;
    double end = tnu_now() + 10;
    while (tnu_now() < end) {
        ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (n > 0) {
            if (got + (size_t)n <= cap) memcpy(out + got, b, (size_t)n);
            got += (size_t)n;
            continue;
        }
        if (n == 0) {
            *err = 0;
            break;
        }
        if (errno != EAGAIN) {
            *err = errno;
            break;
        }
        wh_loop_run(loop, WH_RUN_ONCE);
    }
    return got;
}

/* The counts behind issue 16's connection-per-request scenario: per
 * connection one single-shot recv and one chain (sendmsg, close): 3 SQEs,
 * and 3 CQEs with the accept's (the chain's send posts none when it takes
 * the whole reply: IOSQE_CQE_SKIP_SUCCESS; 4 on a kernel without it). The
 * client gets the whole reply and then a FIN, no reset. */
TEST(closing_reply_is_one_chain)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    cl_reply_len = 100;
    pattern(cl_reply, cl_reply_len, 3);
    int lfd = -1;
    wh_listener *l = tnu_listen(loop, "127.0.0.1:0", NULL, &closer_cbs, &r, &lfd);
    CHECK(l != NULL);
    tnu_pump_n(loop, 2);
    uint64_t ops0, ops1, nb, sq0, sq1, cq0, cq1;
    wh__cq_counts(loop, &ops0, &nb);
    wh__cq_ring_counts(loop, &sq0, &cq0);
    enum { N = 20 };
    int cl[N];
    for (int i = 0; i < N; i++) {
        cl[i] = tnu_client(lfd);
        CHECK(cl[i] >= 0);
        CHECK_EQ(send(cl[i], "GET", 3, 0), 3);
    }
    for (int i = 0; i < N; i++) {
        static char got[256];
        int err;
        size_t n = read_to_eof(loop, cl[i], got, sizeof got, &err);
        CHECK_EQ(err, 0); /* a FIN, not a reset */
        CHECK_EQ(n, cl_reply_len);
        CHECK(memcmp(got, cl_reply, cl_reply_len) == 0);
        close(cl[i]);
    }
    for (int i = 0; i < 50 && (wh_net_conn_count(loop) || wh__cq_inflight(loop) > 1); i++)
        wh_loop_run(loop, WH_RUN_ONCE);
    CHECK_EQ(wh_net_conn_count(loop), 0);
    CHECK_EQ(wh__cq_inflight(loop), 1); /* the listener's accept op */
    CHECK_EQ(r.closes, N);
    CHECK_EQ(r.last_err, 0);
    wh__cq_counts(loop, &ops1, &nb);
    wh__cq_ring_counts(loop, &sq1, &cq1);
    fprintf(stderr, "     per connection: %.2f ops, %.2f SQEs, %.2f CQEs\n",
            (ops1 - ops0) / (double)N, (sq1 - sq0) / (double)N, (cq1 - cq0) / (double)N);
    CHECK_EQ(ops1 - ops0, 2 * N);
    CHECK_EQ(sq1 - sq0, 3 * N);
    bool one = wh__netloop_get(loop)->cq_chain1;
    fprintf(stderr, "     chain completions: %s\n", one ? "one (CQE_SKIP_SUCCESS)" : "two");
    CHECK_EQ(cq1 - cq0, (one ? 3 : 4) * N);
    wh__listener_free(l);
    close(lfd);
    wh_loop_free(loop);
}

/* A closing reply far larger than the socket buffer: the chain's sendmsg
 * (MSG_WAITALL) goes on by itself until all of it is taken, and the FIN and
 * the close come after the last byte, not before. */
TEST(closing_chain_outlasts_a_short_send)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    cl_reply_len = 4 << 20;
    pattern(cl_reply, cl_reply_len, 5);
    int cl, sfd;
    CHECK(closer_conn(loop, &r, &cl, &sfd) != NULL);
    int sb = 16384;
    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    setsockopt(cl, SOL_SOCKET, SO_RCVBUF, &sb, sizeof sb);
    uint64_t ops0, ops1, nb;
    wh__cq_counts(loop, &ops0, &nb);
    CHECK_EQ(send(cl, "GET", 3, 0), 3);
    tnu_pump_n(loop, 5); /* the send blocks on a full socket meanwhile */
    CHECK_EQ(r.closes, 0);
    fcntl(cl, F_SETFL, O_NONBLOCK);
    static char got[4 << 20];
    int err;
    size_t n = read_to_eof(loop, cl, got, sizeof got, &err);
    CHECK_EQ(err, 0);
    CHECK_EQ(n, cl_reply_len);
    CHECK(memcmp(got, cl_reply, cl_reply_len) == 0);
    CHECK(pump_until_int(loop, &r.closes, 1));
    CHECK_EQ(r.last_err, 0);
    wh__cq_counts(loop, &ops1, &nb);
    CHECK_EQ(ops1 - ops0, 1); /* the chain: no resubmitted sends (the recv came before) */
    for (int i = 0; i < 10 && wh__cq_inflight(loop); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh__cq_inflight(loop), 0);
    CHECK(fcntl(sfd, F_GETFD) < 0 && errno == EBADF); /* the chain closed it */
    close(cl);
    wh_loop_free(loop);
}

/* The peer resets while the chain's send is blocked: the send fails, the
 * close is cancelled with it, and the conn closes the fd
 * itself; on_close once with the error, nothing in flight, no fd left. */
TEST(peer_resets_mid_chain)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    cl_reply_len = 8 << 20;
    int fds0 = open_fds();
    int cl, sfd;
    wh_conn *c = closer_conn(loop, &r, &cl, &sfd);
    CHECK(c != NULL);
    CHECK_EQ(send(cl, "GET", 3, 0), 3);
    tnu_pump_n(loop, 5);
    char b[4096];
    CHECK(read(cl, b, sizeof b) > 0);
    CHECK_EQ(r.closes, 0);
    CHECK(c->io.spare & WH__Q_CHAIN);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(cl, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(cl); /* RST */
    CHECK(pump_until_int(loop, &r.closes, 1));
    CHECK_EQ(r.closes, 1);
    CHECK(r.last_err == -ECONNRESET || r.last_err == -EPIPE);
    fprintf(stderr, "     on_close(%s)\n", wh_strerror(r.last_err));
    for (int i = 0; i < 10 && wh__cq_inflight(loop); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh__cq_inflight(loop), 0);
    CHECK(fcntl(sfd, F_GETFD) < 0 && errno == EBADF);
    CHECK_EQ(open_fds(), fds0);
    wh_loop_free(loop);
}

/* Input the server has not read when it closes (more than one buffer came):
 * no chain, the shutdown-then-drain path of b79b251 instead, so the peer
 * gets the reply and a FIN rather than a reset. The recv's and the send's
 * CQEs only (the plain close posts none), where a chain's close adds one. */
TEST(unread_input_keeps_the_shutdown_path)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    cl_reply_len = 1000;
    pattern(cl_reply, cl_reply_len, 9);
    int cl, sfd;
    CHECK(closer_conn(loop, &r, &cl, &sfd) != NULL);
    tnu_pump_n(loop, 2);
    uint64_t sq, cq0, cq1;
    wh__cq_ring_counts(loop, &sq, &cq0);
    static char req[6000];
    memset(req, 'x', sizeof req);
    CHECK_EQ(send(cl, req, sizeof req, 0), (ssize_t)sizeof req); /* > one 4 KiB buffer */
    fcntl(cl, F_SETFL, O_NONBLOCK);
    static char got[2000];
    int err;
    size_t n = read_to_eof(loop, cl, got, sizeof got, &err);
    CHECK_EQ(err, 0);
    CHECK_EQ(n, cl_reply_len);
    CHECK(pump_until_int(loop, &r.closes, 1));
    for (int i = 0; i < 10 && wh__cq_inflight(loop); i++)
        wh_loop_run(loop, WH_RUN_NOWAIT);
    CHECK_EQ(wh__cq_inflight(loop), 0);
    wh__cq_ring_counts(loop, &sq, &cq1);
    CHECK_EQ(cq1 - cq0, 2);
    close(cl);
    wh_loop_free(loop);
}

/* The loop is freed while a chain's send is blocked: on_close once, the fd
 * closed, nothing leaked (ASan). */
TEST(loop_free_with_chain_in_flight)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r;
    memset(&r, 0, sizeof r);
    cl_reply_len = 8 << 20;
    int cl, sfd;
    wh_conn *c = closer_conn(loop, &r, &cl, &sfd);
    CHECK(c != NULL);
    CHECK_EQ(send(cl, "GET", 3, 0), 3);
    tnu_pump_n(loop, 5);
    CHECK(c->io.spare & WH__Q_CHAIN);
    wh_loop_free(loop);
    CHECK_EQ(r.closes, 1);
    CHECK(fcntl(sfd, F_GETFD) < 0 && errno == EBADF);
    close(cl);
}

/* Freed by another thread than the one that ran it, with one chain in the
 * kernel (its send blocked) and one made in the last run (that run's final
 * flush submits it, so the SQ is empty by the free: the unsubmitted case
 * is chain_completions_at_the_seam's): on_close once each, both fds
 * closed, nothing leaked (ASan). */
typedef struct chain_arg {
    wh_loop *loop;
    rec *r;
    int cl[2], sfd[2];
    bool ok;
} chain_arg;

static void *chains_then_leave(void *p)
{
    chain_arg *a = p;
    wh_conn *c;
    a->ok = true;
    for (int i = 0; i < 2; i++)
        if (!closer_conn(a->loop, &a->r[i], &a->cl[i], &a->sfd[i])) a->ok = false;
    if (!a->ok) return NULL;
    (void)!send(a->cl[0], "GET", 3, 0);
    tnu_pump_n(a->loop, 5);
    if (!(c = a->r[0].conn) || !(c->io.spare & WH__Q_CHAIN)) a->ok = false;
    (void)!send(a->cl[1], "GET", 3, 0);
    double end = tnu_now() + 10;
    while (!a->r[1].calls && tnu_now() < end)
        wh_loop_run(a->loop, WH_RUN_ONCE); /* ends with the chain queued */
    if (!(c = a->r[1].conn) || !(c->io.spare & WH__Q_CHAIN)) a->ok = false;
    return NULL;
}

TEST(loop_free_on_another_thread_with_chains)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    static rec r[2];
    memset(r, 0, sizeof r);
    cl_reply_len = 8 << 20;
    chain_arg a = {.loop = loop, .r = r};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, chains_then_leave, &a), 0);
    pthread_join(t, NULL);
    CHECK(a.ok);
    wh_loop_free(loop);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(r[i].closes, 1);
        CHECK(fcntl(a.sfd[i], F_GETFD) < 0 && errno == EBADF);
        close(a.cl[i]);
    }
}

/* The chain at the seam, what each completion says: where the ring skips
 * CQEs (wh__cq_send_close returned 1) one completion, the close's after a
 * whole send, and, taken out of the SQ unsubmitted by a teardown on
 * another thread, the send's -ECANCELED alone with the fd left open (the
 * kernel's way: a failed skipping send cancels the rest of its chain
 * without CQEs); otherwise two, with the fd closed. A second report, or
 * none, leaves the in-flight count wrong. */
static int sc_send_n, sc_send_res, sc_close_n, sc_close_res;
static void sc_send(void *cookie, int res, unsigned flags, const char *buf)
{
    (void)cookie, (void)flags, (void)buf;
    sc_send_n++;
    sc_send_res = res;
}
static void sc_close(void *cookie, int res, unsigned flags, const char *buf)
{
    (void)cookie, (void)flags, (void)buf;
    sc_close_n++;
    sc_close_res = res;
}
static void *quiesce_elsewhere(void *loop)
{
    wh__cq_quiesce(loop);
    return NULL;
}

TEST(chain_completions_at_the_seam)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    int ks = wh__cq_kind(loop, sc_send), kc = wh__cq_kind(loop, sc_close);
    CHECK(ks > 0 && kc > 0);
    static uint64_t cookie; /* 8-aligned: the kind sits in the low bits */
    static char msg[] = "bye";
    struct iovec iov = {msg, 3};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    for (int unqueued = 0; unqueued < 2; unqueued++) {
        sc_send_n = sc_close_n = 0;
        int cl, sfd = tcp_pair(&cl);
        CHECK(sfd >= 0);
        int one = wh__cq_send_close(loop, sfd, &mh, 0, &cookie, (unsigned)ks, (unsigned)kc);
        CHECK(one == 0 || one == 1);
        CHECK_EQ(wh__cq_inflight(loop), one ? 1u : 2u);
        if (!unqueued) {
            for (int i = 0; i < 50 && wh__cq_inflight(loop); i++)
                wh_loop_run(loop, WH_RUN_NOWAIT);
            CHECK_EQ(sc_send_n, one ? 0 : 1);
            CHECK_EQ(sc_close_n, 1);
            CHECK_EQ(sc_close_res, 0);
            char b[8];
            CHECK_EQ(read(cl, b, sizeof b), 3);
            CHECK_EQ(read(cl, b, sizeof b), 0); /* the close's FIN */
            CHECK(fcntl(sfd, F_GETFD) < 0 && errno == EBADF);
        } else {
            pthread_t t;
            CHECK_EQ(pthread_create(&t, NULL, quiesce_elsewhere, loop), 0);
            pthread_join(t, NULL);
            CHECK_EQ(sc_send_n, 1);
            CHECK_EQ(sc_send_res, -ECANCELED);
            CHECK_EQ(sc_close_n, one ? 0 : 1);
            if (one) {
                CHECK(fcntl(sfd, F_GETFD) >= 0); /* still open: the owner's to close */
                close(sfd);
            } else {
                CHECK(fcntl(sfd, F_GETFD) < 0 && errno == EBADF);
            }
        }
        CHECK_EQ(wh__cq_inflight(loop), 0u);
        close(cl);
    }
    wh_loop_free(loop);
}

/* ---- A file reply above the high watermark that the kernel takes at once -- */

/* Per request ("G"): a small head and a FILE_LEN file segment, as wharfd
 * answers a static file above its cache size. */
enum { FILE_LEN = 256 << 10 };
static int file_fd = -1;
static size_t file_read(wh_conn *c, char *data, size_t len, void *ud)
{
    rec *r = ud;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != 'G') continue;
        r->calls++;
        if (wh_conn_write(c, "HEAD\n", 5) != 0 ||
            wh_conn_sendfile(c, file_fd, 0, FILE_LEN, false) != 0)
            r->opens = -100;
    }
    return len;
}
static const wh_conn_cbs file_cbs = {
    .on_open = r_open, .on_read = file_read, .on_drain = r_drain, .on_close = r_close};

/* Issue 16, static 1 MiB: the reply is above the high watermark when it is
 * queued, and the flush at the end of on_read's frame sends all of it
 * (sendfile; the socket buffer has room). Back-pressure reaches the
 * watcher only after that flush, so reading stays armed: the multishot
 * recv lives on and a reply costs no SQE at all. Before, each reply
 * cancelled the recv and armed a new one (2 SQEs, 2 CQEs and a poll arm;
 * EPOLL_CTL_DEL + ADD on epoll). Back-pressure itself still holds:
 * on_read saw the flag, and on_drain ran once per reply. */
TEST(file_reply_taken_at_once_keeps_the_recv)
{
    wh_loop *loop = cq_loop(0, 0);
    if (!loop) return;
    char path[] = "/tmp/wh_cq_fileXXXXXX";
    file_fd = mkstemp(path);
    CHECK(file_fd >= 0);
    unlink(path);
    static char body[FILE_LEN], got[FILE_LEN + 5];
    pattern(body, FILE_LEN, 9);
    CHECK_EQ(write(file_fd, body, FILE_LEN), (ssize_t)FILE_LEN);
    static rec r;
    memset(&r, 0, sizeof r);
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.high_watermark = 64 << 10;
    o.low_watermark = 16 << 10;
    int cl, sfd = tcp_pair(&cl);
    CHECK(sfd >= 0);
    int big = 4 << 20; /* room for a whole reply, as on loopback with autotuning */
    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(cl, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    wh_conn *c;
    CHECK_EQ(wh_conn_adopt(loop, sfd, &o, &file_cbs, &r, &c), 0);
    enum { N = 20 };
    uint64_t sq0 = 0, cq0 = 0, sq1, cq1;
    for (int i = 0; i < N + 2; i++) {
        if (i == 2) wh__cq_ring_counts(loop, &sq0, &cq0); /* the recv is multishot by now */
        CHECK_EQ(send(cl, "G", 1, 0), 1);
        size_t n = 0;
        double end = tnu_now() + 10;
        while (n < sizeof got && tnu_now() < end) {
            ssize_t k = recv(cl, got + n, sizeof got - n, MSG_DONTWAIT);
            if (k > 0)
                n += (size_t)k;
            else
                wh_loop_run(loop, WH_RUN_ONCE);
        }
        CHECK_EQ(n, sizeof got);
        CHECK(memcmp(got, "HEAD\n", 5) == 0 && memcmp(got + 5, body, FILE_LEN) == 0);
    }
    wh__cq_ring_counts(loop, &sq1, &cq1);
    fprintf(stderr, "     per reply: %.2f SQEs, %.2f CQEs, %.2f drains\n", (sq1 - sq0) / (double)N,
            (cq1 - cq0) / (double)N, r.drains / (double)(N + 2));
    CHECK_EQ(r.calls, (size_t)(N + 2));
    CHECK_EQ(r.opens, 1);
    CHECK_EQ(r.drains, N + 2);
    CHECK(sq1 - sq0 < N / 4);      /* was 2 per reply: a cancel and a new recv */
    CHECK(cq1 - cq0 <= N + N / 4); /* the request's completion; was 2 per reply */
    close(cl);
    CHECK(pump_until_int(loop, &r.closes, 1));
    close(file_fd);
    wh_loop_free(loop);
}

WH_TEST_MAIN()
