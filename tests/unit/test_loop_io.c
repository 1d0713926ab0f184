/* fd watchers: level/edge/oneshot, interest changes, no syscall when unchanged. */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "test.h"
#include "test_loop_util.h"

TEST(read_level_triggered)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    /* epoll unless WH_LOOP_BACKEND asks for io_uring (the .uring variant)
     * and the kernel grants it. */
    const char *env = getenv("WH_LOOP_BACKEND");
    bool uring = env && !strcmp(env, "io_uring") && !wh_loop_backend_error(loop);
    CHECK(!strcmp(wh_loop_backend(loop), uring ? "io_uring" : "epoll"));
    int fds[2];
    sp(fds);
    struct rec r = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    CHECK_EQ(wh_io_fd(io), fds[0]);
    CHECK(wh_io_loop(io) == loop);
    CHECK_EQ(wh_io_flags(io), 0);
    CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
    CHECK_EQ(wh_io_flags(io), WH_IO_READ);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.last, WH_IO_READ);
    /* Level-triggered: still readable, fires again. */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 2);
    char c;
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 2);
    wh_io_free(io);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

TEST(write_and_disarm)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int fds[2];
    sp(fds);
    struct rec r = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    CHECK_EQ(wh_io_set(io, WH_IO_WRITE), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.last, WH_IO_WRITE);
    CHECK_EQ(wh_io_set(io, 0), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    /* Re-arm for both: one callback with both bits. */
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_WRITE), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 2);
    CHECK_EQ(r.last, WH_IO_READ | WH_IO_WRITE);
    wh_io_free(io);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

TEST(edge_triggered)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int fds[2];
    sp(fds);
    struct rec r = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_EDGE), 0);
    CHECK_EQ(write(fds[1], "ab", 2), 2);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    /* Not drained, but no new edge: silent. */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(write(fds[1], "c", 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 2);
    wh_io_free(io);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

TEST(oneshot_rearm)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int fds[2];
    sp(fds);
    struct rec r = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    CHECK_EQ(wh_io_rearm(io), -EINVAL); /* not a one-shot */
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_ONESHOT), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    /* Still readable (level) but disarmed until rearm. */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    wh__loop_stats a, b;
    wh__loop_get_stats(loop, &a);
    CHECK_EQ(wh_io_rearm(io), 0);
    wh__loop_get_stats(loop, &b);
    CHECK_EQ(b.ctl_calls, a.ctl_calls + 1);
    /* Rearm of an armed one-shot: nothing to do. */
    CHECK_EQ(wh_io_rearm(io), 0);
    wh__loop_get_stats(loop, &a);
    CHECK_EQ(a.ctl_calls, b.ctl_calls);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 2);
    /* wh_io_set with the same flags re-arms a fired one-shot too. */
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_ONESHOT), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 3);
    wh_io_free(io);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

TEST(unchanged_interest_no_syscall)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int fds[2];
    sp(fds);
    struct rec r = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    wh__loop_stats a, b;
    wh__loop_get_stats(loop, &a);
    CHECK_EQ(wh_io_set(io, 0), 0); /* never armed: nothing */
    CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
    wh__loop_get_stats(loop, &b);
    CHECK_EQ(b.ctl_calls, a.ctl_calls + 1); /* ADD */
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
    wh__loop_get_stats(loop, &a);
    CHECK_EQ(a.ctl_calls, b.ctl_calls);
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_WRITE), 0); /* MOD */
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_WRITE), 0);
    wh__loop_get_stats(loop, &b);
    CHECK_EQ(b.ctl_calls, a.ctl_calls + 1);
    CHECK_EQ(wh_io_set(io, 0), 0); /* DEL */
    CHECK_EQ(wh_io_set(io, 0), 0);
    wh__loop_get_stats(loop, &a);
    CHECK_EQ(a.ctl_calls, b.ctl_calls + 1);
    CHECK_EQ(wh_io_set(io, WH_IO_WRITE), 0); /* ADD again after DEL */
    wh__loop_get_stats(loop, &b);
    CHECK_EQ(b.ctl_calls, a.ctl_calls + 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    wh_io_free(io);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

TEST(hup_and_set_cb)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int fds[2];
    sp(fds);
    struct rec r = {0}, r2 = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
    wh_io_set_cb(io, rec_cb, &r2);
    close(fds[1]);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 0);
    CHECK_EQ(r2.calls, 1);
    CHECK(r2.last & WH_IO_HUP);
    CHECK(r2.last & WH_IO_READ);
    wh_io_free(io);
    close(fds[0]);
    wh_loop_free(loop);
}

TEST(exclusive)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    int fds[2];
    sp(fds);
    struct rec r = {0};
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_EXCLUSIVE | WH_IO_ONESHOT), -EINVAL);
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_EXCLUSIVE), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 1);
    /* Changing interest of an exclusive watcher (DEL+ADD underneath). */
    CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_WRITE | WH_IO_EXCLUSIVE), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(r.calls, 2);
    CHECK_EQ(r.last, WH_IO_READ | WH_IO_WRITE);
    wh_io_free(io);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

struct emb {
    int x;
    wh_io io;
    int calls;
};

static void emb_cb(wh_io *io, unsigned ev, void *ud)
{
    struct emb *e = ud;
    e->calls++;
}

TEST(embedded_watcher)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    CHECK(sizeof(wh_io) <= 40);
    CHECK(wh__loop_backend_fd(loop) >= 0);
    int fds[2];
    sp(fds);
    struct emb *e = calloc(1, sizeof(*e));
    wh__io_init(loop, &e->io, fds[0], emb_cb, e);
    CHECK_EQ(wh_io_set(&e->io, WH_IO_WRITE), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(e->calls, 1);
    wh__io_deinit(&e->io);
    wh__io_deinit(&e->io); /* idempotent */
    free(e);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    close(fds[0]);
    close(fds[1]);
    wh_loop_free(loop);
}

TEST(bad_args)
{
    wh_loop *loop;
    wh_loop_opts o = {.backend = "kqueue"};
    CHECK_EQ(wh_loop_new(&loop, &o), -ENOTSUP);
    o.backend = "epoll";
    o.max_events = 8;
    CHECK_EQ(wh_loop_new(&loop, &o), 0);
    wh_io *io;
    CHECK_EQ(wh_io_new(loop, -1, rec_cb, NULL, &io), -EINVAL);
    /* Unwatchable fd (a regular file): epoll_ctl says EPERM. */
    FILE *f = tmpfile();
    CHECK_EQ(wh_io_new(loop, fileno(f), rec_cb, NULL, &io), 0);
    CHECK_EQ(wh_io_set(io, WH_IO_READ), -EPERM);
    CHECK_EQ(wh_io_flags(io), 0);
    fclose(f);
    /* Left attached on purpose: wh_loop_free frees it. */
    wh_loop_free(loop);
}

WH_TEST_MAIN()
