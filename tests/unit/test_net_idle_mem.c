/* Issue 15: an idle keep-alive connection costs at most 96 bytes of the
 * library's memory (the conn from the slab, its watcher-table entry, its
 * fd-map entry), with 2,000 held, and a fresh connection is still answered.
 * The clients live in a child process, so the server's fd numbers (and its
 * fd map) are what a real server's would be. */
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "net/net_priv.h"
#include "test.h"
#include "test_net_util.h"

#define N_IDLE 2000
#define BUDGET 96 /* bytes per idle conn (issue 15) */

typedef struct srv {
    int opens, reads, closes;
} srv;

static void s_open(wh_conn *c, void *ud)
{
    (void)c;
    ((srv *)ud)->opens++;
}

static size_t s_read(wh_conn *c, char *d, size_t n, void *ud)
{
    ((srv *)ud)->reads++;
    wh_conn_write(c, d, n); /* one exchange, then the conn stays idle */
    return n;
}

static void s_close(wh_conn *c, int err, void *ud)
{
    (void)c;
    (void)err;
    ((srv *)ud)->closes++;
}

static const wh_conn_cbs cbs = {.on_open = s_open, .on_read = s_read, .on_close = s_close};

/* The child: N_IDLE connections, one "ping" each, then held until killed. */
static void hold_clients(int lfd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    wh_sockaddr a;
    if (wh__sock_local(lfd, &a) < 0) _exit(2);
    close(lfd);
    for (int i = 0; i < N_IDLE; i++) {
        int fd = socket(a.u.sa.family, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)a.u.raw, a.len) < 0) _exit(3);
        if (send(fd, "ping", 4, MSG_NOSIGNAL) != 4) _exit(4);
    }
    for (;;)
        pause();
}

typedef struct waitfor {
    srv *s;
    int n;
} waitfor;

static int all_idle(void *arg)
{
    waitfor *w = arg;
    return w->s->opens >= w->n && w->s->reads >= w->n;
}

static int all_closed(void *arg)
{
    waitfor *w = arg;
    return w->s->closes >= w->n;
}

static bool sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
    return false;
}

TEST(idle_conns_within_budget)
{
    srv s = {0};
    wh_loop *loop = tnu_loop();
    CHECK(loop != NULL);
    int lfd;
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.backlog = 4096;
    wh_listener *l = tnu_listen(loop, "127.0.0.1:0", &o, &cbs, &s, &lfd);
    CHECK(l != NULL);
    wh__netloop *nl = wh__netloop_get(loop);
    CHECK(nl != NULL);

    /* A first exchange makes the per-loop things (scratch buffer, write
     * queue cache) before the baseline, so the delta is per conn only. */
    static char in[64];
    xfer x = {.io = {.fd = tnu_client(lfd), .out = "warm", .out_len = 4, .in = in, .in_cap = 64},
              .want = 4};
    CHECK(x.io.fd >= 0);
    CHECK(tnu_pump(loop, xfer_done, &x));
    close(x.io.fd);
    waitfor w1 = {&s, 1};
    CHECK(tnu_pump(loop, all_closed, &w1));
    s = (srv){0};

    size_t base_heap = mallinfo2().uordblks;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) hold_clients(lfd);

    waitfor w = {&s, N_IDLE};
    double end = tnu_now() + 60;
    while (!all_idle(&w) && tnu_now() < end)
        wh_loop_run(loop, WH_RUN_ONCE);
    CHECK_EQ(s.opens, N_IDLE);
    CHECK_EQ(s.reads, N_IDLE);
    tnu_pump_n(loop, 5); /* echoes flushed: every conn idle */
    CHECK_EQ(wh_net_conn_count(loop), N_IDLE);

    size_t lib = wh__net_conn_bytes(nl) + wh__loop_io_bytes(loop);
    fprintf(stderr,
            "backend %s: struct wh_conn %zu B; slab + watcher table + fd map: %.1f B/conn\n",
            wh_loop_backend(loop), sizeof(struct wh_conn), (double)lib / N_IDLE);
    /* The accounting includes capacity the growth left unused. */
    CHECK((double)lib / N_IDLE <= BUDGET);
    if (!sanitized()) {
        /* Everything the process allocated for them: the same figure plus
         * whatever per-conn cost the accounting above might miss. The
         * io_uring backend keeps a 16-byte record per fd (what epoll keeps
         * in the kernel): allowed on top. */
        size_t heap = mallinfo2().uordblks;
        double per = (double)(heap - base_heap) / N_IDLE;
        bool uring = strcmp(wh_loop_backend(loop), "io_uring") == 0;
        fprintf(stderr, "heap delta: %.1f B/conn\n", per);
        CHECK(per <= BUDGET + (uring ? 16 : 0));
    }

    /* With them all held, a fresh connection is still answered. */
    memset(in, 0, sizeof(in));
    xfer y = {.io = {.fd = tnu_client(lfd), .out = "fresh", .out_len = 5, .in = in, .in_cap = 64},
              .want = 5};
    CHECK(y.io.fd >= 0);
    CHECK(tnu_pump(loop, xfer_done, &y));
    CHECK_EQ(y.io.in_len, 5);
    CHECK(memcmp(in, "fresh", 5) == 0);
    close(y.io.fd);

    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st)); /* not an early _exit: every client connected */
    waitfor wc = {&s, N_IDLE + 1};
    end = tnu_now() + 30;
    while (!all_closed(&wc) && tnu_now() < end)
        wh_loop_run(loop, WH_RUN_ONCE);
    CHECK_EQ(s.closes, N_IDLE + 1);
    CHECK_EQ(wh_net_conn_count(loop), 0);
    wh__listener_free(l);
    close(lfd);
    wh_loop_free(loop);
}

WH_TEST_MAIN()
