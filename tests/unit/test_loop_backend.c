/* Loop backends: which one runs (wh_loop_opts.backend, WH_LOOP_BACKEND, the
 * fallback to epoll), and the readiness contract of backend.h checked on
 * each backend this machine offers: level-triggered, EDGE, ONESHOT and its
 * re-arm, interest changes and removal, EXCLUSIVE, stale completions of a
 * poll that was changed or removed (io_uring delivers them after the fact),
 * and a watcher's file really closed after wh__io_forget + close. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "test.h"
#include "test_loop_util.h"

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

/* 0 when this kernel makes io_uring instances, else the errno. */
static int uring_probe(void)
{
    unsigned char params[120]; /* struct io_uring_params, zeroed */
    memset(params, 0, sizeof params);
    long fd = syscall(__NR_io_uring_setup, 4, params);
    if (fd < 0) return errno;
    close((int)fd);
    return 0;
}

/* A loop on the named backend; NULL (and a note once) if that backend is
 * not what runs here (io_uring refused, or libwharf built without it). */
static wh_loop *new_loop(const char *backend)
{
    wh_loop *loop;
    wh_loop_opts o = {.backend = backend};
    if (wh_loop_new(&loop, &o) != 0) return NULL;
    if (strcmp(wh_loop_backend(loop), backend) != 0) {
        static bool said;
        if (!said)
            fprintf(stderr, "note: %s is not available here (%s): its cases are skipped\n", backend,
                    wh_strerror(wh_loop_backend_error(loop)));
        said = true;
        wh_loop_free(loop);
        return NULL;
    }
    return loop;
}

static const char *const backends[] = {"epoll", "io_uring"};
#define NB (sizeof backends / sizeof backends[0])

TEST(io_uring_runs_when_asked)
{
    int probe = uring_probe();
    wh_loop *loop;
    wh_loop_opts o = {.backend = "io_uring"};
    CHECK_EQ(wh_loop_new(&loop, &o), 0);
    int why = wh_loop_backend_error(loop);
    if (why == -ENOTSUP) {
        fprintf(stderr, "note: libwharf built without liburing: io_uring falls back to epoll\n");
        CHECK(!strcmp(wh_loop_backend(loop), "epoll"));
    } else if (probe == 0) {
        /* The kernel makes rings: the loop must be on one. */
        CHECK_EQ(why, 0);
        CHECK(!strcmp(wh_loop_backend(loop), "io_uring"));
        CHECK(wh__loop_backend_fd(loop) >= 0);
    } else {
        fprintf(stderr, "note: io_uring refused here (%s): checked the fallback\n",
                strerror(probe));
        CHECK_EQ(why, -probe);
        CHECK(!strcmp(wh_loop_backend(loop), "epoll"));
    }
    wh_loop_free(loop);
    /* Asked for epoll: epoll, no error. Unknown names: refused. */
    o.backend = "epoll";
    CHECK_EQ(wh_loop_new(&loop, &o), 0);
    CHECK(!strcmp(wh_loop_backend(loop), "epoll"));
    CHECK_EQ(wh_loop_backend_error(loop), 0);
    wh_loop_free(loop);
    o.backend = "io-uring";
    CHECK_EQ(wh_loop_new(&loop, &o), -ENOTSUP);
}

TEST(environment_chooses_when_opts_do_not)
{
    const char *saved = getenv("WH_LOOP_BACKEND");
    char *keep = saved ? strdup(saved) : NULL;
    wh_loop *loop;
    setenv("WH_LOOP_BACKEND", "epoll", 1);
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    CHECK(!strcmp(wh_loop_backend(loop), "epoll"));
    wh_loop_free(loop);
    setenv("WH_LOOP_BACKEND", "io_uring", 1);
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    bool uring = !strcmp(wh_loop_backend(loop), "io_uring");
    CHECK(uring || wh_loop_backend_error(loop) < 0); /* else it says why not */
    wh_loop_free(loop);
    /* An unknown name in the environment is not fatal: epoll, and a reason. */
    setenv("WH_LOOP_BACKEND", "kqueue", 1);
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    CHECK(!strcmp(wh_loop_backend(loop), "epoll"));
    CHECK_EQ(wh_loop_backend_error(loop), -ENOTSUP);
    wh_loop_free(loop);
    /* Explicit options win over the environment. */
    wh_loop_opts o = {.backend = "epoll"};
    setenv("WH_LOOP_BACKEND", "io_uring", 1);
    CHECK_EQ(wh_loop_new(&loop, &o), 0);
    CHECK(!strcmp(wh_loop_backend(loop), "epoll"));
    wh_loop_free(loop);
    if (keep)
        setenv("WH_LOOP_BACKEND", keep, 1);
    else
        unsetenv("WH_LOOP_BACKEND");
    free(keep);
}

/* Level-triggered: reported at every iteration while ready; the events
 * follow MOD; nothing after DEL, even for a ready fd. */
TEST(level_mod_del)
{
    for (size_t b = 0; b < NB; b++) {
        wh_loop *loop = new_loop(backends[b]);
        if (!loop) continue;
        int fds[2];
        CHECK_EQ(sp(fds), 0);
        struct rec r = {0};
        wh_io *io;
        CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
        CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 0);
        CHECK_EQ(write(fds[1], "xy", 2), 2);
        for (int i = 1; i <= 3; i++) {
            CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
            CHECK_EQ(r.calls, i);
            CHECK_EQ(r.last, WH_IO_READ);
        }
        /* MOD to READ|WRITE: both, in one callback. */
        CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_WRITE), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 4);
        CHECK_EQ(r.last, WH_IO_READ | WH_IO_WRITE);
        /* MOD to WRITE: the readable fd no longer reports READ. */
        CHECK_EQ(wh_io_set(io, WH_IO_WRITE), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 5);
        CHECK_EQ(r.last, WH_IO_WRITE);
        /* DEL: silence, however ready. */
        CHECK_EQ(wh_io_set(io, 0), 0);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 5);
        /* Drained, level READ again: quiet until new data. */
        char buf[8];
        CHECK_EQ(read(fds[0], buf, sizeof buf), 2);
        CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 5);
        CHECK_EQ(write(fds[1], "z", 1), 1);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 6);
        wh_io_free(io);
        close(fds[0]);
        close(fds[1]);
        wh_loop_free(loop);
    }
}

TEST(edge_and_oneshot)
{
    for (size_t b = 0; b < NB; b++) {
        wh_loop *loop = new_loop(backends[b]);
        if (!loop) continue;
        int fds[2];
        CHECK_EQ(sp(fds), 0);
        struct rec r = {0};
        wh_io *io;
        CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
        /* EDGE: once per arrival, not per iteration; two arrivals between
         * iterations are one event. */
        CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_EDGE), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 0);
        CHECK_EQ(write(fds[1], "a", 1), 1);
        CHECK_EQ(write(fds[1], "b", 1), 1);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 1);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 1);
        CHECK_EQ(write(fds[1], "c", 1), 1);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 2);
        /* ONESHOT: one event, then nothing until re-armed. */
        CHECK_EQ(wh_io_set(io, WH_IO_READ | WH_IO_ONESHOT), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 3);
        CHECK_EQ(write(fds[1], "d", 1), 1);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 3);
        CHECK_EQ(wh_io_rearm(io), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 4);
        /* A fired one-shot changed to another interest is armed again. */
        CHECK_EQ(wh_io_set(io, WH_IO_WRITE | WH_IO_ONESHOT), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 5);
        CHECK_EQ(r.last, WH_IO_WRITE);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 5);
        wh_io_free(io);
        close(fds[0]);
        close(fds[1]);
        wh_loop_free(loop);
    }
}

/* A poll in flight whose interest changes before its completion is reaped:
 * the old poll's completion (READ) must not reach the watcher that now asks
 * for WRITE only, and a removed poll's completion reaches no one. */
TEST(stale_completion_after_change)
{
    for (size_t b = 0; b < NB; b++) {
        wh_loop *loop = new_loop(backends[b]);
        if (!loop) continue;
        int fds[2];
        CHECK_EQ(sp(fds), 0);
        struct rec r = {0};
        wh_io *io;
        CHECK_EQ(wh_io_new(loop, fds[0], rec_cb, &r, &io), 0);
        CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0); /* the READ poll is in the kernel */
        CHECK_EQ(write(fds[1], "x", 1), 1);            /* and completes there */
        CHECK_EQ(wh_io_set(io, WH_IO_WRITE), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 1);
        CHECK_EQ(r.all, WH_IO_WRITE);
        /* Removed with a completion pending. */
        CHECK_EQ(wh_io_set(io, WH_IO_READ), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 2);
        char c;
        CHECK_EQ(read(fds[0], &c, 1), 1);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0); /* re-armed, quiet */
        CHECK_EQ(write(fds[1], "y", 1), 1);
        CHECK_EQ(wh_io_set(io, 0), 0);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 2);
        wh_io_free(io);
        close(fds[0]);
        close(fds[1]);
        wh_loop_free(loop);
    }
}

/* A watcher freed with its poll in flight, its fd closed and the number
 * reused at once by a new socket and a new watcher: the old file's events
 * (its peer writes) reach neither the freed watcher (ASan) nor the new one. */
static int old_calls;
static void old_cb(wh_io *io, unsigned ev, void *ud)
{
    old_calls++;
}

TEST(stale_completion_fd_reused)
{
    for (size_t b = 0; b < NB; b++) {
        wh_loop *loop = new_loop(backends[b]);
        if (!loop) continue;
        int a[2], c[2];
        CHECK_EQ(sp(a), 0);
        wh_io *old;
        old_calls = 0;
        CHECK_EQ(wh_io_new(loop, a[0], old_cb, NULL, &old), 0);
        CHECK_EQ(wh_io_set(old, WH_IO_READ | WH_IO_EDGE), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0); /* multishot poll in flight */
        int num = a[0];
        wh_io_free(old);
        close(a[0]);
        CHECK_EQ(sp(c), 0);
        CHECK_EQ(c[0], num); /* lowest free number */
        struct rec r = {0};
        wh_io *nw;
        CHECK_EQ(wh_io_new(loop, c[0], rec_cb, &r, &nw), 0);
        CHECK_EQ(wh_io_set(nw, WH_IO_READ), 0);
        /* The old file: gone on epoll (EPIPE), still held on io_uring by the
         * poll whose removal is only queued, so this wakes that poll. */
        (void)send(a[1], "old", 3, MSG_NOSIGNAL);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(old_calls, 0);
        CHECK_EQ(r.calls, 0);
        CHECK_EQ(write(c[1], "new", 3), 3);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, 1);
        CHECK_EQ(r.last, WH_IO_READ);
        wh_io_free(nw);
        close(a[1]);
        close(c[0]);
        close(c[1]);
        wh_loop_free(loop);
    }
}

/* wh__io_forget then close(2), as a connection closes: the peer must see
 * the end of the stream after one more iteration at most (an io_uring poll
 * holds its file until removed; epoll's registration goes with the close). */
TEST(forget_then_close_really_closes)
{
    for (size_t b = 0; b < NB; b++) {
        wh_loop *loop = new_loop(backends[b]);
        if (!loop) continue;
        int fds[2];
        CHECK_EQ(sp(fds), 0);
        struct rec r = {0};
        wh_io io;
        wh__io_init(loop, &io, fds[0], rec_cb, &r);
        CHECK_EQ(wh_io_set(&io, WH_IO_READ), 0);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        wh__io_forget(&io);
        close(fds[0]);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        char c;
        CHECK_EQ(read(fds[1], &c, 1), 0); /* EOF, not EAGAIN */
        CHECK_EQ(r.calls, 0);
        close(fds[1]);
        wh_loop_free(loop);
    }
}

/* EXCLUSIVE: of two loops blocked on one eventfd, one write (one wake-up
 * in the kernel) wakes one; without the flag both wake. Blocked, because
 * epoll counts an exclusive wake-up only where a thread waits in
 * epoll_wait. On io_uring this checks that the kernel honours
 * EPOLLEXCLUSIVE in a poll request's mask. (An eventfd, not a listening
 * socket: a TCP connection can wake its listener's waiters more than once.) */
static void stop_cb(wh_timer *t, void *ud)
{
    wh_loop_stop(wh_timer_loop(t));
}

static void *run_once(void *arg)
{
    wh_loop_run(arg, WH_RUN_ONCE);
    return NULL;
}

static int count_wakes(const char *backend, unsigned extra, int *out)
{
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return -1;
    wh_loop *l[2] = {new_loop(backend), new_loop(backend)};
    struct rec r[2] = {{0}, {0}};
    wh_io *io[2] = {NULL, NULL};
    wh_timer *t[2] = {NULL, NULL};
    int rc = -1;
    if (!l[0] || !l[1]) goto out;
    for (int i = 0; i < 2; i++) {
        if (wh_io_new(l[i], efd, rec_cb, &r[i], &io[i]) != 0) goto out;
        if (wh_io_set(io[i], WH_IO_READ | extra) != 0) goto out;
        /* The loser's bound: its one iteration ends here. */
        if (wh_timer_new(l[i], stop_cb, NULL, &t[i]) != 0) goto out;
        if (wh_timer_start(t[i], 400, 0) != 0) goto out;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, run_once, l[i]) != 0) goto out;
    usleep(100000); /* both blocked in their poll */
    int w = eventfd_write(efd, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (w != 0) goto out;
    *out = r[0].calls + r[1].calls;
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        wh_timer_free(t[i]);
        wh_io_free(io[i]);
        wh_loop_free(l[i]);
    }
    close(efd);
    return rc;
}

TEST(exclusive_wakes_one)
{
    for (size_t b = 0; b < NB; b++) {
        wh_loop *probe = new_loop(backends[b]);
        if (!probe) continue;
        wh_loop_free(probe);
        int n = -1;
        CHECK_EQ(count_wakes(backends[b], 0, &n), 0);
        CHECK_EQ(n, 2);
        CHECK_EQ(count_wakes(backends[b], WH_IO_EXCLUSIVE, &n), 0);
        if (n != 1) fprintf(stderr, "%s: %d wake-ups with EXCLUSIVE\n", backends[b], n);
        CHECK_EQ(n, 1);
    }
}

/* Many watchers changed in one iteration: more SQEs than the ring holds
 * (io_uring submits early when it is full); every one still fires. */
TEST(more_changes_than_the_ring_holds)
{
    enum { N = 300 };
    for (size_t b = 0; b < NB; b++) {
        wh_loop *loop;
        wh_loop_opts o = {.backend = backends[b], .max_events = 16};
        CHECK_EQ(wh_loop_new(&loop, &o), 0);
        if (strcmp(wh_loop_backend(loop), backends[b]) != 0) {
            wh_loop_free(loop);
            continue;
        }
        static int fds[N][2];
        static wh_io *io[N];
        struct rec r = {0};
        for (int i = 0; i < N; i++) {
            CHECK_EQ(sp(fds[i]), 0);
            CHECK_EQ(wh_io_new(loop, fds[i][0], rec_cb, &r, &io[i]), 0);
            CHECK_EQ(wh_io_set(io[i], WH_IO_WRITE | WH_IO_ONESHOT), 0);
        }
        /* 16 events per iteration: N / 16 iterations and a bit. */
        for (int i = 0; i < N / 16 + 4; i++)
            CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(r.calls, N);
        for (int i = 0; i < N; i++) {
            wh_io_free(io[i]);
            close(fds[i][0]);
            close(fds[i][1]);
        }
        wh_loop_free(loop);
    }
}

WH_TEST_MAIN()
