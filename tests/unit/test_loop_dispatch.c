/* Stale events: callbacks that free their own or another watcher in the
 * middle of a batch, and an fd number reused within the same batch. Run under
 * ASan to turn any use-after-free into a failure. */
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "test.h"

#define N 8
static int fds[N][2];
static wh_io *ios[N];
static int calls[N];
static int closed_fd[N];
static int newcomer_calls;
static wh_io *newcomer;
static int newcomer_fd[2];

static void newcomer_cb(wh_io *io, unsigned ev, void *ud)
{
    newcomer_calls++;
}

/* The first watcher to fire frees itself and every other watcher, closes
 * their fds, and registers a new watcher on a reused fd number. */
static void killer_cb(wh_io *io, unsigned ev, void *ud)
{
    int me = (int)(intptr_t)ud;
    wh_loop *loop = wh_io_loop(io); /* io is freed below with the others */
    calls[me]++;
    for (int i = 0; i < N; i++) {
        if (!ios[i]) continue;
        wh_io_free(ios[i]);
        ios[i] = NULL;
        closed_fd[i] = fds[i][0];
        close(fds[i][0]);
        fds[i][0] = -1;
    }
    /* Lowest free fd number: one of those just closed. */
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, newcomer_fd), 0);
    CHECK_EQ(wh_io_new(loop, newcomer_fd[0], newcomer_cb, NULL, &newcomer), 0);
    /* Readable interest on a socket with nothing to read: it must stay silent
     * even though the old watcher on this fd number had a pending event. */
    CHECK_EQ(wh_io_set(newcomer, WH_IO_READ), 0);
}

TEST(free_all_in_first_callback)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds[i]), 0);
        CHECK_EQ(wh_io_new(loop, fds[i][0], killer_cb, (void *)(intptr_t)i, &ios[i]), 0);
        CHECK_EQ(wh_io_set(ios[i], WH_IO_READ), 0);
        CHECK_EQ(write(fds[i][1], "x", 1), 1);
    }
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    int total = 0;
    for (int i = 0; i < N; i++)
        total += calls[i];
    CHECK_EQ(total, 1); /* all others were erased from the batch */
    CHECK_EQ(newcomer_calls, 0);
    int reused = 0;
    for (int i = 0; i < N; i++)
        reused |= newcomer_fd[0] == closed_fd[i];
    CHECK(reused);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(newcomer_calls, 0);
    CHECK_EQ(write(newcomer_fd[1], "y", 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(newcomer_calls, 1);
    wh_io_free(newcomer);
    close(newcomer_fd[0]);
    close(newcomer_fd[1]);
    for (int i = 0; i < N; i++)
        close(fds[i][1]);
    wh_loop_free(loop);
}

/* Embedded watchers freed (memory and all) by another watcher's callback. */
struct conn {
    wh_io io;
    int fd[2];
    int calls;
};
static struct conn *conns[N];
static int conn_calls;
static void conn_cb(wh_io *io, unsigned ev, void *ud)
{
    struct conn *c = ud;
    c->calls++;
    conn_calls++;
    /* Free every other conn, memory included, then ourselves. */
    for (int i = 0; i < N; i++) {
        if (conns[i] && conns[i] != c) {
            wh__io_deinit(&conns[i]->io);
            close(conns[i]->fd[0]);
            close(conns[i]->fd[1]);
            free(conns[i]);
            conns[i] = NULL;
        }
    }
    for (int i = 0; i < N; i++)
        if (conns[i] == c) conns[i] = NULL;
    wh__io_deinit(&c->io);
    close(c->fd[0]);
    close(c->fd[1]);
    free(c);
}

TEST(embedded_freed_in_batch)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    for (int i = 0; i < N; i++) {
        struct conn *c = calloc(1, sizeof(*c));
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c->fd), 0);
        wh__io_init(loop, &c->io, c->fd[0], conn_cb, c);
        CHECK_EQ(wh_io_set(&c->io, WH_IO_WRITE), 0);
        conns[i] = c;
    }
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(conn_calls, 1);
    wh_loop_free(loop);
}

/* A watcher that disarms a later one in the same batch: no callback for it;
 * one that drops WRITE interest of a later one: only READ delivered. */
static wh_io *w1, *w2, *w3;
static unsigned ev2, ev3;
static int n2, n3;
static void w1_cb(wh_io *io, unsigned ev, void *ud)
{
    wh_io_set(w2, 0);
    wh_io_set(w3, WH_IO_READ);
}
static void w2_cb(wh_io *io, unsigned ev, void *ud)
{
    n2++;
    ev2 = ev;
}
static void w3_cb(wh_io *io, unsigned ev, void *ud)
{
    n3++;
    ev3 = ev;
}
static void first_cb(wh_io *io, unsigned ev, void *ud)
{
    /* Whoever fires first does w1's job once. */
    if (!n2 && !n3 && io != w2 && io != w3) w1_cb(io, ev, ud);
}

TEST(interest_shrinks_in_batch)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int a[2], b[2], c[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c);
    /* Register w1 first: epoll reports ready items in the order they became
     * ready, so w1's event comes first in the batch. */
    CHECK_EQ(wh_io_new(loop, a[0], first_cb, NULL, &w1), 0);
    CHECK_EQ(wh_io_new(loop, b[0], w2_cb, NULL, &w2), 0);
    CHECK_EQ(wh_io_new(loop, c[0], w3_cb, NULL, &w3), 0);
    CHECK_EQ(wh_io_set(w1, WH_IO_WRITE), 0);
    CHECK_EQ(write(b[1], "x", 1), 1);
    CHECK_EQ(write(c[1], "x", 1), 1);
    CHECK_EQ(wh_io_set(w2, WH_IO_READ | WH_IO_WRITE), 0);
    CHECK_EQ(wh_io_set(w3, WH_IO_READ | WH_IO_WRITE), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(n2, 0);
    CHECK_EQ(n3, 1);
    CHECK_EQ(ev3, WH_IO_READ);
    wh_loop_free(loop);
    int *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        close(all[i][0]);
        close(all[i][1]);
    }
}

/* Against the contract: an fd closed BEFORE its watcher is freed, the number
 * reused by a new watcher. Freeing the old watcher must not remove the new
 * one's registration, and changing the old one's interest must not touch it. */
static int cnt_old, cnt_new;
static void old_cb(wh_io *io, unsigned ev, void *ud)
{
    cnt_old++;
}
static void new_cb(wh_io *io, unsigned ev, void *ud)
{
    cnt_new++;
}

TEST(close_before_free_reused_number)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int a[2], b[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    wh_io *old, *nw;
    CHECK_EQ(wh_io_new(loop, a[0], old_cb, NULL, &old), 0);
    CHECK_EQ(wh_io_set(old, WH_IO_READ), 0);
    int num = a[0];
    close(a[0]); /* the kernel drops old's registration with the file */
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    CHECK_EQ(b[0], num); /* lowest free number */
    CHECK_EQ(wh_io_new(loop, b[0], new_cb, NULL, &nw), 0);
    CHECK_EQ(wh_io_set(nw, WH_IO_READ), 0);
    CHECK_EQ(wh_io_set(old, WH_IO_READ | WH_IO_WRITE), -EBADF);
    wh_io_free(old);
    CHECK_EQ(write(b[1], "x", 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(cnt_new, 1);
    CHECK_EQ(cnt_old, 0);
    wh_io_free(nw);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    wh_loop_free(loop);
}

/* Against the contract, worse: the closed file lives on through a dup, so
 * epoll keeps the old registration (epoll(7), Q6) after the watcher is freed.
 * Its events must be dropped, not dispatched to freed memory (ASan). */
TEST(close_before_free_file_lives_on)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int a[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    int keep = dup(a[0]);
    wh_io *old;
    cnt_old = 0;
    CHECK_EQ(wh_io_new(loop, a[0], old_cb, NULL, &old), 0);
    CHECK_EQ(wh_io_set(old, WH_IO_READ), 0);
    close(a[0]);
    wh_io_free(old); /* DEL by number fails (EBADF): the registration stays */
    CHECK_EQ(write(a[1], "x", 1), 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(cnt_old, 0);
    wh_loop_free(loop);
    close(keep);
    close(a[1]);
}

WH_TEST_MAIN()
