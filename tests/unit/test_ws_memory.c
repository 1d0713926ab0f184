/* WH_TEST_LABELS: tsan
 * WebSocket memory bounds (issue 20): a hub member that does not read is
 * dropped once its queue holds max_queued bytes of real memory (segments and
 * holders, not just frame bytes), a loop's queue of unprocessed broadcasts
 * is capped (-EAGAIN, all or nothing), and a message that does not arrive
 * whole within fragment_timeout_ms closes the connection with 1008.
 *
 * Each client is one end of a socketpair; the other end is adopted on a
 * bare loop and served by HTTP, then upgraded. Everything runs on the test's
 * thread; leaks (a queued broadcast's holder never released) show under
 * LeakSanitizer in the ASan build. */
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include "unit/test_net_util.h"
#include "wharf/http.h"
#include "ws/ws_internal.h"

typedef struct fx {
    wh_loop *loop;
    wh_http_server *hs;
    wh_ws_hub *hub;
    wh_ws_opts wo;
    wh_ws *last; /* the most recently opened */
    int opened, closed, msgs, last_code;
    char last_reason[64], msg[64];
    size_t msg_len;
} fx;

static void on_open(wh_ws *ws, void *ud)
{
    fx *f = ud;
    f->opened++;
    f->last = ws;
    if (f->hub) wh_ws_hub_join(f->hub, ws);
}

static void on_message(wh_ws *ws, const char *data, size_t len, bool text, void *ud)
{
    fx *f = ud;
    f->msgs++;
    f->msg_len = len < sizeof f->msg ? len : sizeof f->msg;
    memcpy(f->msg, data, f->msg_len);
}

static void on_close(wh_ws *ws, int code, const char *reason, size_t len, void *ud)
{
    fx *f = ud;
    f->closed++;
    f->last_code = code;
    snprintf(f->last_reason, sizeof f->last_reason, "%.*s", (int)len, reason);
}

static const wh_ws_cbs cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};

static void handler(wh_http_req *r, void *ud)
{
    fx *f = ud;
    wh_ws_accept(r, &f->wo, &cbs, f, NULL);
}

static int fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    wh_ws_opts_init(&f->wo);
    if (!(f->loop = tnu_loop())) return -1;
    return wh_http_server_new(&f->hs, NULL, handler, f);
}

static void fx_free(fx *f)
{
    wh_loop_free(f->loop); /* aborts what is left: on_close runs */
    wh_ws_hub_free(f->hub);
    wh_http_server_free(f->hs);
}

/* Connects one client; returns its fd (blocking), or -1. sndbuf > 0 sets the
 * server side's send buffer: small, a client that does not read stalls the
 * server's writes after a few KiB instead of the kernel absorbing them. */
static int client(fx *f, int sndbuf)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (sndbuf) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    wh_conn *c;
    if (wh_conn_adopt(f->loop, sv[0], NULL, wh_http_server_cbs(f->hs), f->hs, &c) < 0) return -1;
    static const char req[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    if (write(sv[1], req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) return -1;
    int before = f->opened;
    for (int i = 0; i < 200 && f->opened == before; i++)
        wh_loop_run(f->loop, WH_RUN_ONCE);
    if (f->opened == before) return -1;
    tnu_pump_n(f->loop, 2); /* flush the 101 */
    /* Read exactly the 101 head, byte by byte: frames may follow it. */
    char head[512];
    size_t n = 0;
    while (n < sizeof head - 1 && read(sv[1], head + n, 1) == 1) {
        n++;
        if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4)) break;
    }
    head[n] = 0;
    if (!strstr(head, " 101 ")) return -1;
    return sv[1];
}

/* Sends one masked client frame (§5.3). */
static void send_frame(int fd, unsigned op, bool fin, const char *pl, size_t n)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t buf[256];
    size_t h = wh__ws_frame_header(buf, op, fin, n, key);
    memcpy(buf + h, pl, n);
    wh__ws_mask(buf + h, n, key, 0);
    CHECK(write(fd, buf, h + n) == (ssize_t)(h + n));
}

/* Reads what is there without blocking; counts whole small server frames and
 * notes the close code of a close frame among them. With order set, checks
 * that each producer's messages ("<producer> <seq>") arrive in order. */
typedef struct rd {
    int next[8]; /* per producer: the sequence number expected next */
    bool order, bad;
    uint8_t buf[1 << 16];
    size_t len;
    int frames, close_code;
    bool eof;
} rd;

static void rd_poll(int fd, rd *r)
{
    for (;;) {
        ssize_t k = recv(fd, r->buf + r->len, sizeof r->buf - r->len, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN)) r->eof = true;
        if (k <= 0) break;
        r->len += (size_t)k;
        size_t pos = 0;
        while (r->len - pos >= 2) {
            size_t pl = r->buf[pos + 1] & 0x7F; /* the tests send < 126 bytes */
            if (r->len - pos < 2 + pl) break;
            if ((r->buf[pos] & 0x0F) == WH_WS_OP_CLOSE && pl >= 2)
                r->close_code = (r->buf[pos + 2] << 8) | r->buf[pos + 3];
            if (r->order && pl) {
                char text[128];
                memcpy(text, r->buf + pos + 2, pl);
                text[pl] = 0;
                int who = 0, seq = -1;
                if (sscanf(text, "%d %d", &who, &seq) != 2 || who < 0 || who >= 8 ||
                    seq != r->next[who]++) {
                    if (!r->bad)
                        fprintf(stderr, "     unexpected frame %#x \"%s\" after %d frames\n",
                                r->buf[pos], text, r->frames);
                    r->bad = true;
                }
            }
            r->frames++;
            pos += 2 + pl;
        }
        memmove(r->buf, r->buf + pos, r->len - pos);
        r->len -= pos;
    }
}

TEST(silent_member_dropped_by_real_memory)
{
    fx f;
    CHECK(fx_init(&f) == 0);
    CHECK(wh_ws_hub_new(&f.hub) == 0);
    const size_t cap = 64 << 10;
    wh_ws_hub_set_max_queued(f.hub, cap);
    int silent = client(&f, 4096);
    wh_ws *sws = f.last;
    int reader = client(&f, 0);
    CHECK(silent >= 0 && reader >= 0);
    CHECK_EQ(wh_ws_hub_count(f.hub), 2);

    /* Empty messages: 2 frame bytes each. Counting frame bytes, 64 KiB would
     * be 32768 of them; counting what they hold, a few hundred. */
    rd r = {0};
    int sent = 0, segs_seen = 0;
    while (f.closed == 0 && sent < 20000) {
        for (int i = 0; i < 50; i++, sent++)
            CHECK(wh_ws_hub_broadcast(f.hub, "", 0, true) == 0);
        tnu_pump_n(f.loop, 2);
        if (f.closed == 0) {
            int segs = (int)wh__conn_queued_segs(wh_ws_conn(sws));
            if (segs > segs_seen) segs_seen = segs;
        }
        rd_poll(reader, &r);
    }
    fprintf(stderr, "     dropped after %d empty broadcasts, holding %d segments\n", sent,
            segs_seen);
    CHECK_EQ(f.closed, 1);
    CHECK_EQ(f.last_code, WH_WS_CLOSE_POLICY);
    CHECK(!strcmp(f.last_reason, "too slow"));
    CHECK_EQ(wh_ws_hub_count(f.hub), 1);
    /* Held at the drop: at most the cap, at ~150 B a message; never the
     * 32768 messages a count of frame bytes would allow. */
    CHECK(segs_seen > 0);
    CHECK((size_t)segs_seen * 64 < cap);
    CHECK(sent < 4000);
    /* The peer sees the connection end (abort: no close frame behind a
     * queue it does not read). */
    rd s = {0};
    for (int i = 0; i < 100 && !s.eof; i++) {
        rd_poll(silent, &s);
        tnu_pump_n(f.loop, 1);
    }
    CHECK(s.eof);
    /* The member that reads got every broadcast. */
    for (int i = 0; i < 200 && r.frames < sent; i++) {
        tnu_pump_n(f.loop, 1);
        rd_poll(reader, &r);
    }
    CHECK_EQ(r.frames, sent);
    close(silent);
    close(reader);
    fx_free(&f);
}

TEST(pending_cap_refuses_all_or_nothing)
{
    fx f;
    CHECK(fx_init(&f) == 0);
    CHECK(wh_ws_hub_new(&f.hub) == 0);
    wh_ws_hub_set_max_pending(f.hub, 4096);
    int c = client(&f, 0);
    CHECK(c >= 0);
    /* Without running the loop nothing is drained: the queue fills. */
    int ok = 0, rc;
    char line[100];
    memset(line, 'x', sizeof line);
    while ((rc = wh_ws_hub_broadcast(f.hub, line, sizeof line, true)) == 0)
        ok++;
    CHECK_EQ(rc, -EAGAIN);
    CHECK(ok >= 20 && ok <= 4096 / 100);
    rd r = {0};
    for (int i = 0; i < 100 && r.frames < ok; i++) {
        tnu_pump_n(f.loop, 1);
        rd_poll(c, &r);
    }
    CHECK_EQ(r.frames, ok); /* the refused one never went out */
    /* Drained: broadcasts go through again, and a message bigger than the
     * cap fits an empty queue. */
    static char big[8192];
    CHECK_EQ(wh_ws_hub_broadcast(f.hub, big, sizeof big, false), 0);
    CHECK_EQ(wh_ws_hub_broadcast(f.hub, "", 0, true), -EAGAIN);
    tnu_pump_n(f.loop, 3);
    CHECK_EQ(wh_ws_hub_broadcast(f.hub, "", 0, true), 0);
    tnu_pump_n(f.loop, 3);
    close(c);
    fx_free(&f);
}

TEST(loop_budget_sheds_silent_members)
{
    /* Each silent member stays far under max_queued; together they pass the
     * loop's budget, and only they are dropped: the member that reads keeps
     * getting every broadcast. Afterwards the loop's count is back to 0:
     * every holder was released. */
    fx f;
    CHECK(fx_init(&f) == 0);
    CHECK(wh_ws_hub_new(&f.hub) == 0);
    wh_ws_hub_set_max_loop_queued(f.hub, 48 << 10);
    int silent[4];
    for (int i = 0; i < 4; i++)
        CHECK((silent[i] = client(&f, 4096)) >= 0);
    int reader = client(&f, 0);
    CHECK(reader >= 0);
    rd r = {0};
    int ok = 0, refused = 0;
    for (int round = 0; round < 400 && f.closed < 4; round++) {
        for (int i = 0; i < 50; i++) {
            int rc = wh_ws_hub_broadcast(f.hub, "", 0, true);
            CHECK(rc == 0 || rc == -EAGAIN);
            rc == 0 ? ok++ : refused++;
        }
        tnu_pump_n(f.loop, 2);
        rd_poll(reader, &r);
    }
    fprintf(stderr, "     %d broadcasts, %d refused (-EAGAIN) while the loop was over budget\n", ok,
            refused);
    CHECK_EQ(f.closed, 4);
    CHECK_EQ(f.last_code, WH_WS_CLOSE_POLICY);
    CHECK_EQ(wh_ws_hub_count(f.hub), 1);
    for (int i = 0; i < 200 && r.frames < ok; i++) {
        tnu_pump_n(f.loop, 1);
        rd_poll(reader, &r);
    }
    CHECK_EQ(r.frames, ok);
    CHECK(!r.eof);
    wh__ws_loop *wl = wh__loop_slot(f.loop, WH__SLOT_WS);
    CHECK(wl && wl->hubs);
    /* io_uring: the last sends' completions come one iteration after the
     * reader saw their bytes */
    for (int i = 0; i < 10 && wl->hubs->mem; i++)
        tnu_pump_n(f.loop, 1);
    CHECK_EQ(wl->hubs->mem, 0);
    for (int i = 0; i < 4; i++)
        close(silent[i]);
    close(reader);
    fx_free(&f);
}

TEST(unfinished_message_times_out)
{
    fx f;
    CHECK(fx_init(&f) == 0);
    f.wo.fragment_timeout_ms = 150;
    f.wo.ping_interval_ms = 40; /* pings must not extend the deadline */

    /* Finished in time: delivered, the connection stays. */
    int ok = client(&f, 0);
    CHECK(ok >= 0);
    send_frame(ok, WH_WS_OP_TEXT, false, "ab", 2);
    tnu_pump_n(f.loop, 4);
    send_frame(ok, WH_WS_OP_CONT, true, "cd", 2);
    for (int i = 0; i < 100 && f.msgs == 0; i++)
        tnu_pump_n(f.loop, 1);
    CHECK_EQ(f.msgs, 1);
    CHECK(f.msg_len == 4 && !memcmp(f.msg, "abcd", 4));

    /* Never finished, though a fragment arrives every 30 ms (each byte of
     * input is activity, so only the message deadline catches it). */
    int slow = client(&f, 0);
    CHECK(slow >= 0);
    double t0 = tnu_now();
    send_frame(slow, WH_WS_OP_BINARY, false, "x", 1);
    rd r = {0};
    while (tnu_now() - t0 < 2 && !r.close_code) {
        send_frame(slow, WH_WS_OP_CONT, false, "y", 1);
        double t = tnu_now();
        while (tnu_now() - t < 0.03)
            wh_loop_run(f.loop, WH_RUN_ONCE);
        rd_poll(slow, &r);
    }
    double took = tnu_now() - t0;
    CHECK_EQ(r.close_code, WH_WS_CLOSE_POLICY);
    CHECK(took >= 0.14 && took < 1.0);
    for (int i = 0; i < 100 && f.closed == 0; i++)
        tnu_pump_n(f.loop, 1);
    CHECK_EQ(f.closed, 1);
    CHECK_EQ(f.last_code, WH_WS_CLOSE_POLICY);
    CHECK(!strcmp(f.last_reason, "message timeout"));

    /* The one that finished is still open a deadline later. */
    double t = tnu_now();
    while (tnu_now() - t < 0.3) {
        wh_loop_run(f.loop, WH_RUN_ONCE);
        rd_poll(ok, &r); /* answers no pings: the test is shorter than pong_timeout */
    }
    CHECK_EQ(f.closed, 1);
    close(ok);
    close(slow);
    fx_free(&f);
}

/* The partial messages of all WebSockets on a loop share max_loop_messages:
 * the connection whose fragment would pass it is closed with 1013 (try
 * again later) and its part freed, the others go on; a connection that
 * goes away gives its share back. */
TEST(partial_messages_share_a_loop_budget)
{
    fx f;
    CHECK(fx_init(&f) == 0);
    enum { N = 16 };
    f.wo.max_loop_messages = N * 256; /* a first fragment takes a 256-byte buffer */
    int fd[N + 2];
    char part[200];
    memset(part, 'p', sizeof part);
    for (int i = 0; i < N + 1; i++) {
        fd[i] = client(&f, 0);
        CHECK(fd[i] >= 0);
        send_frame(fd[i], WH_WS_OP_TEXT, false, part, sizeof part);
        tnu_pump_n(f.loop, 3);
    }
    rd r = {0};
    for (int i = 0; i < 100 && !r.close_code; i++) {
        wh_loop_run(f.loop, WH_RUN_ONCE);
        rd_poll(fd[N], &r);
    }
    CHECK_EQ(r.close_code, WH_WS_CLOSE_TRY_AGAIN);
    for (int i = 0; i < 100 && f.closed == 0; i++)
        tnu_pump_n(f.loop, 1);
    CHECK_EQ(f.closed, 1);
    CHECK(!strcmp(f.last_reason, "server busy"));
    /* The first N still hold theirs and finish them. */
    send_frame(fd[0], WH_WS_OP_CONT, true, "!", 1);
    for (int i = 0; i < 100 && f.msgs == 0; i++)
        tnu_pump_n(f.loop, 1);
    CHECK_EQ(f.msgs, 1);
    CHECK_EQ(f.msg_len, sizeof f.msg); /* 201 bytes, truncated to the fixture's copy */
    /* One leaves: its share comes back, a newcomer may hold a fragment. */
    close(fd[1]);
    for (int i = 0; i < 100 && f.closed < 2; i++)
        tnu_pump_n(f.loop, 1);
    CHECK_EQ(f.closed, 2);
    fd[N + 1] = client(&f, 0);
    CHECK(fd[N + 1] >= 0);
    send_frame(fd[N + 1], WH_WS_OP_TEXT, false, part, sizeof part);
    tnu_pump_n(f.loop, 5);
    CHECK_EQ(f.closed, 2);
    for (int i = 0; i < N + 2; i++)
        if (i != 1) close(fd[i]);
    fx_free(&f);
}

/* Producers on other threads, members on two loops on their own threads,
 * and caps small enough that broadcasts are refused (-EAGAIN) and loops
 * pause: every member gets exactly the broadcasts that returned 0, each
 * producer's in order (all or nothing across loops). For ThreadSanitizer. */
#define PRODUCERS    3
#define PER_PRODUCER 3000

typedef struct prod {
    wh_ws_hub *hub;
    int id, ok, refused;
} prod;

static void *produce(void *arg)
{
    prod *p = arg;
    char text[32];
    for (int seq = 0; seq < PER_PRODUCER;) {
        int n = snprintf(text, sizeof text, "%d %d", p->id, seq);
        int rc = wh_ws_hub_broadcast(p->hub, text, (size_t)n, true);
        if (rc == 0) {
            p->ok++;
            seq++;
        } else if (rc == -EAGAIN) {
            p->refused++;
            sched_yield();
        } else {
            break;
        }
    }
    return NULL;
}

static void *run_loop(void *arg)
{
    wh_loop_run(arg, WH_RUN_DEFAULT);
    return NULL;
}

static void stop_task(wh_loop *loop, void *arg)
{
    (void)arg;
    wh_loop_stop(loop);
}

TEST(producers_on_threads)
{
    fx f[2];
    wh_ws_hub *hub;
    CHECK(wh_ws_hub_new(&hub) == 0);
    /* A batch is up to ~80 messages, a loop passes its budget within ~30:
     * loops pause often. The members' socket buffers (4 MiB) take all the
     * test sends, so a pause always frees their part and none of them is
     * ever dropped, however slowly this thread reads (ThreadSanitizer). */
    wh_ws_hub_set_max_pending(hub, 4096);
    wh_ws_hub_set_max_loop_queued(hub, 8 << 10);
    int cl[2][3];
    for (int l = 0; l < 2; l++) {
        CHECK(fx_init(&f[l]) == 0);
        f[l].hub = hub;
        for (int i = 0; i < 3; i++)
            CHECK((cl[l][i] = client(&f[l], 4 << 20)) >= 0);
    }
    pthread_t lt[2], pt[PRODUCERS];
    for (int l = 0; l < 2; l++)
        CHECK(pthread_create(&lt[l], NULL, run_loop, f[l].loop) == 0);
    prod p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (prod){.hub = hub, .id = i};
        CHECK(pthread_create(&pt[i], NULL, produce, &p[i]) == 0);
    }
    static rd r[2][3];
    memset(r, 0, sizeof r);
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 3; i++)
            r[l][i].order = true;
    int total = PRODUCERS * PER_PRODUCER, done = 0;
    double end = tnu_now() + 60;
    while (done < 6 && tnu_now() < end) {
        done = 0;
        for (int l = 0; l < 2; l++)
            for (int i = 0; i < 3; i++) {
                rd_poll(cl[l][i], &r[l][i]);
                done += r[l][i].frames >= total;
            }
        if (done < 6) usleep(1000);
    }
    int refused = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(pt[i], NULL);
        CHECK_EQ(p[i].ok, PER_PRODUCER);
        refused += p[i].refused;
    }
    for (int l = 0; l < 2; l++) {
        CHECK(wh_loop_post(f[l].loop, stop_task, NULL) == 0);
        pthread_join(lt[l], NULL);
    }
    fprintf(stderr, "     %d broadcasts from %d threads, %d refused (-EAGAIN) and retried\n", total,
            PRODUCERS, refused);
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(r[l][i].frames, total);
            CHECK(!r[l][i].bad);
            CHECK(!r[l][i].eof);
        }
    CHECK_EQ(f[0].closed + f[1].closed, 0);
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < 3; i++)
            close(cl[l][i]);
        f[l].hub = NULL;
        fx_free(&f[l]);
    }
    wh_ws_hub_free(hub);
}

WH_TEST_MAIN()
