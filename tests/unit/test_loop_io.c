/* fd watchers: level/edge/oneshot, interest changes, no syscall when unchanged. */
#include <stdlib.h>
#include <string.h>
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

/* ---- class watchers sharing slots with wh_io (issue 15) -------------------
 * A table entry is just the occupant's pointer; the generation sits in the
 * watcher while it holds the slot and in the free entry after. The corner:
 * in one batch, the first callback frees the watcher whose event is still
 * pending, and a watcher of the other kind takes the same slot at once. The
 * stale event must be dropped (not given to the newcomer, not read from the
 * freed memory: ASan), and the newcomer's own events come next iteration. */

typedef struct cw {
    wh__iow w; /* first: the class callback finds the cw from it */
    int calls;
} cw;

typedef struct swap {
    wh_loop *loop;
    int cls;
    int fds[3][2];
    cw *c;                /* the class watcher (malloc'd: freed memory is poisoned under ASan) */
    wh_io *io;            /* the plain watcher */
    cw *c2;               /* replacement class watcher */
    wh_io *io2;           /* replacement plain watcher */
    int io2_calls;        /* calls of the replacement plain watcher */
    uint64_t swap_iter;   /* iteration in which the swap happened */
    uint64_t late_iter;   /* iteration of the replacement's first call */
    uint32_t victim_slot; /* the freed watcher's slot */
    uint32_t new_slot;    /* the replacement's slot */
    char victim;          /* 'c' or 'i': which kind was freed */
    int stale;            /* calls to a freed watcher (must stay 0) */
} swap;

static uint64_t iters(wh_loop *loop)
{
    wh__loop_stats st;
    wh__loop_get_stats(loop, &st);
    return st.iterations;
}

static void io2_cb(wh_io *io, unsigned ev, void *ud);

static void do_swap(swap *x, char victim)
{
    if (x->victim) return;
    x->victim = victim;
    x->swap_iter = iters(x->loop);
    if (victim == 'i') { /* free the plain watcher, a class watcher takes its slot */
        x->victim_slot = x->io->w.slot;
        wh_io_free(x->io);
        x->io = NULL;
        x->c2 = calloc(1, sizeof(*x->c2));
        wh__iow_init(&x->c2->w, x->fds[2][0], (unsigned)x->cls);
        CHECK_EQ(wh__iow_set(x->loop, &x->c2->w, WH_IO_WRITE), 0);
        x->new_slot = x->c2->w.slot;
    } else { /* free the class watcher, a plain one takes its slot */
        x->victim_slot = x->c->w.slot;
        wh__iow_deinit(x->loop, &x->c->w);
        free(x->c);
        x->c = NULL;
        CHECK_EQ(wh_io_new(x->loop, x->fds[2][0], io2_cb, x, &x->io2), 0);
        CHECK_EQ(wh_io_set(x->io2, WH_IO_WRITE), 0);
        x->new_slot = x->io2->w.slot;
    }
}

static void cls_cb(wh__iow *w, unsigned ev, void *ud)
{
    swap *x = ud;
    (void)ev;
    cw *c = (cw *)w;
    if (c != x->c && c != x->c2) x->stale++; /* a freed class watcher */
    c->calls++;
    if (c == x->c2) {
        if (!x->late_iter) x->late_iter = iters(x->loop);
        return;
    }
    do_swap(x, 'i');
}

static void plain_cb(wh_io *io, unsigned ev, void *ud)
{
    swap *x = ud;
    (void)ev;
    if (io != x->io) x->stale++;
    do_swap(x, 'c');
}

static void io2_cb(wh_io *io, unsigned ev, void *ud)
{
    swap *x = ud;
    (void)io;
    (void)ev;
    x->io2_calls++;
    if (!x->late_iter) x->late_iter = iters(x->loop);
}

/* class_first: the class watcher registers first, so it is reported first. */
static void run_swap(bool class_first, char *victim)
{
    *victim = 0;
    swap x;
    memset(&x, 0, sizeof(x));
    CHECK_EQ(wh_loop_new(&x.loop, NULL), 0);
    x.cls = wh__io_class_add(x.loop, cls_cb, &x);
    CHECK(x.cls > 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sp(x.fds[i]), 0);
    x.c = calloc(1, sizeof(*x.c));
    wh__iow_init(&x.c->w, x.fds[0][0], (unsigned)x.cls);
    CHECK_EQ(wh_io_new(x.loop, x.fds[1][0], plain_cb, &x, &x.io), 0);
    if (class_first) CHECK_EQ(wh__iow_set(x.loop, &x.c->w, WH_IO_WRITE), 0);
    CHECK_EQ(wh_io_set(x.io, WH_IO_WRITE), 0); /* socket pairs start writable */
    if (!class_first) CHECK_EQ(wh__iow_set(x.loop, &x.c->w, WH_IO_WRITE), 0);
    for (int i = 0; i < 4 && !x.late_iter; i++)
        wh_loop_run(x.loop, WH_RUN_NOWAIT);
    CHECK(x.victim != 0);
    *victim = x.victim;
    CHECK_EQ(x.new_slot, x.victim_slot); /* the freed slot really was reused */
    CHECK_EQ(x.stale, 0);
    CHECK(x.late_iter > x.swap_iter); /* the stale event did not reach the newcomer */
    if (x.c) {
        wh__iow_deinit(x.loop, &x.c->w);
        free(x.c);
    }
    if (x.c2) {
        wh__iow_deinit(x.loop, &x.c2->w);
        free(x.c2);
    }
    wh_loop_free(x.loop); /* frees x.io / x.io2 */
    for (int i = 0; i < 3; i++) {
        close(x.fds[i][0]);
        close(x.fds[i][1]);
    }
}

TEST(slot_reused_by_other_kind_in_one_batch)
{
    /* Both orders, so each kind is the victim once: epoll and io_uring
     * report already-ready fds in registration order. */
    char a, b;
    run_swap(true, &a);
    run_swap(false, &b);
    fprintf(stderr, "victims: %c %c\n", a, b);
    CHECK(a == 'i' && b == 'c');
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
