/* Event-loop micro-benchmark: wharf vs libuv vs libevent, same work each.
 *
 *   timer     start+stop of one timer, 1,000,000 pairs, with 10,000 other
 *             timers live in the heap (so each operation walks a real heap).
 *   post      one producer thread queues 1,000,000 tasks to the loop thread;
 *             time until the loop has run the last one.
 *   pingpong  one byte back and forth over a socketpair between two watchers
 *             of the same loop, 200,000 round trips.
 *
 * Fairness of the post row: wharf's wh_loop_post is a lock-free ring (a
 * mutex-protected vector behind it when full), plus an atomic "wake pending"
 * flag so only the first post after a drain writes the eventfd. Neither peer
 * has a task queue of its own, so they get the queue their users typically
 * write (a mutex-protected vector swapped out by the loop: q_push/q_take
 * below; it was wharf's own until the ring) and their own best wake-up:
 *   libuv:    uv_async_send (which already coalesces with its own pending
 *             flag); the async callback takes the queue.
 *   libevent: the same atomic flag + an eventfd watched with EV_ET (no read,
 *             exactly wharf's trick), the callback takes the queue.
 * Ping-pong uses each library's raw fd watcher (uv_poll_t, struct event) with
 * plain read/write, so all three do the same syscalls.
 *
 * Output: one line per measurement, "row lib ns_per_op". bench/loop.sh runs
 * it several times and prints medians. Usage: bench_loop [row...] */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wharf/loop.h"
#ifdef WH_HAVE_LIBUV
#include <uv.h>
#endif
#ifdef WH_HAVE_LIBEVENT
#include <event2/event.h>
#endif

#define TIMER_N  1000000
#define TIMER_BG 10000
#define POST_N   1000000
#define PP_N     200000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void report(const char *row, const char *lib, double ns, long n)
{
    printf("%s %s %.2f\n", row, lib, ns / (double)n);
    fflush(stdout);
}

/* Pin the calling thread to one CPU when at least two are allowed: the loop
 * on the first CPU of the process's original mask, the producer on the
 * second. The mask is read once at start: after the main thread pins itself
 * its own mask has one CPU, and a thread it creates would inherit that. */
static cpu_set_t allowed;
static int nallowed;

static void pin_nth(int nth)
{
    if (nallowed < 2) return;
    for (int c = 0, k = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &allowed)) continue;
        if (k++ == nth) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
            return;
        }
    }
}

/* ---- a mutex-protected task queue for the peers (same as wharf's) ---- */
typedef struct task {
    void (*fn)(void *ctx, void *arg);
    void *arg;
} task;
typedef struct tqueue {
    pthread_mutex_t mu;
    task *v, *run;
    size_t n, cap, run_cap;
} tqueue;

static void q_init(tqueue *q)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
}
static void q_push(tqueue *q, task t)
{
    pthread_mutex_lock(&q->mu);
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->v = realloc(q->v, q->cap * sizeof(task));
    }
    q->v[q->n++] = t;
    pthread_mutex_unlock(&q->mu);
}
/* Swaps the queue out; runs it outside the lock. */
static void q_drain(tqueue *q, void *ctx)
{
    pthread_mutex_lock(&q->mu);
    task *v = q->v;
    size_t n = q->n, cap = q->cap;
    q->v = q->run;
    q->cap = q->run_cap;
    q->n = 0;
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++)
        v[i].fn(ctx, v[i].arg);
    q->run = v;
    q->run_cap = cap;
}
static void q_free(tqueue *q)
{
    free(q->v);
    free(q->run);
    pthread_mutex_destroy(&q->mu);
}

static long post_count;

/* ================================ wharf ================================ */
static void wh_noop_timer(wh_timer *t, void *ud) {}

static void wh_bench_timer(void)
{
    wh_loop *loop;
    wh_loop_new(&loop, NULL);
    wh_timer **bg = malloc(TIMER_BG * sizeof(*bg));
    for (int i = 0; i < TIMER_BG; i++) {
        wh_timer_new(loop, wh_noop_timer, NULL, &bg[i]);
        wh_timer_start(bg[i], 100000 + (uint64_t)(i * 7919) % 100000, 0);
    }
    wh_timer *t;
    wh_timer_new(loop, wh_noop_timer, NULL, &t);
    double t0 = now_ns();
    for (long i = 0; i < TIMER_N; i++) {
        wh_timer_start(t, 1000 + (uint64_t)(i & 1023), 0);
        wh_timer_stop(t);
    }
    report("timer", "wharf", now_ns() - t0, TIMER_N);
    free(bg);
    wh_loop_free(loop);
}

static void wh_post_task(wh_loop *loop, void *arg)
{
    if (++post_count == POST_N) wh_loop_stop(loop);
}
static void *wh_producer(void *arg)
{
    pin_nth(1);
    wh_loop *loop = arg;
    for (long i = 0; i < POST_N; i++)
        wh_loop_post(loop, wh_post_task, NULL);
    return NULL;
}
static void wh_bench_post(void)
{
    pin_nth(0);
    wh_loop *loop;
    wh_loop_new(&loop, NULL);
    post_count = 0;
    pthread_t th;
    double t0 = now_ns();
    pthread_create(&th, NULL, wh_producer, loop);
    wh_loop_run(loop, WH_RUN_DEFAULT);
    double t1 = now_ns();
    pthread_join(th, NULL);
    report("post", "wharf", t1 - t0, POST_N);
    wh_loop_free(loop);
}

static long pp_count;
static int pp_fd[2];
static void wh_pp_a(wh_io *io, unsigned ev, void *ud)
{
    char c;
    if (read(pp_fd[0], &c, 1) != 1) return;
    if (++pp_count == PP_N) {
        wh_loop_stop(wh_io_loop(io));
        return;
    }
    (void)!write(pp_fd[0], &c, 1);
}
static void wh_pp_b(wh_io *io, unsigned ev, void *ud)
{
    char c;
    if (read(pp_fd[1], &c, 1) == 1) (void)!write(pp_fd[1], &c, 1);
}
static void wh_bench_pingpong(void)
{
    pin_nth(0);
    wh_loop *loop;
    wh_loop_new(&loop, NULL);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pp_fd);
    wh_io *a, *b;
    wh_io_new(loop, pp_fd[0], wh_pp_a, NULL, &a);
    wh_io_new(loop, pp_fd[1], wh_pp_b, NULL, &b);
    wh_io_set(a, WH_IO_READ);
    wh_io_set(b, WH_IO_READ);
    pp_count = 0;
    double t0 = now_ns();
    (void)!write(pp_fd[0], "x", 1);
    wh_loop_run(loop, WH_RUN_DEFAULT);
    report("pingpong", "wharf", now_ns() - t0, PP_N);
    wh_io_free(a);
    wh_io_free(b);
    close(pp_fd[0]);
    close(pp_fd[1]);
    wh_loop_free(loop);
}

/* ================================ libuv ================================ */
#ifdef WH_HAVE_LIBUV
static void uv_noop_timer(uv_timer_t *t) {}

static void uv_bench_timer(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t *bg = malloc(TIMER_BG * sizeof(*bg));
    for (int i = 0; i < TIMER_BG; i++) {
        uv_timer_init(&loop, &bg[i]);
        uv_timer_start(&bg[i], uv_noop_timer, 100000 + (uint64_t)(i * 7919) % 100000, 0);
    }
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    double t0 = now_ns();
    for (long i = 0; i < TIMER_N; i++) {
        uv_timer_start(&t, uv_noop_timer, 1000 + (uint64_t)(i & 1023), 0);
        uv_timer_stop(&t);
    }
    report("timer", "libuv", now_ns() - t0, TIMER_N);
    for (int i = 0; i < TIMER_BG; i++)
        uv_close((uv_handle_t *)&bg[i], NULL);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(bg);
}

static tqueue uvq;
static uv_async_t uv_async;
static void uv_post_task(void *ctx, void *arg)
{
    if (++post_count == POST_N)
        uv_close((uv_handle_t *)&uv_async, NULL); /* loop ends: nothing left */
}
static void uvb_async_cb(uv_async_t *a)
{
    q_drain(&uvq, a);
}
static void *uv_producer(void *arg)
{
    pin_nth(1);
    for (long i = 0; i < POST_N; i++) {
        q_push(&uvq, (task){uv_post_task, NULL});
        uv_async_send(&uv_async);
    }
    return NULL;
}
static void uv_bench_post(void)
{
    pin_nth(0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    q_init(&uvq);
    uv_async_init(&loop, &uv_async, uvb_async_cb);
    post_count = 0;
    pthread_t th;
    double t0 = now_ns();
    pthread_create(&th, NULL, uv_producer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    double t1 = now_ns();
    pthread_join(th, NULL);
    report("post", "libuv", t1 - t0, POST_N);
    uv_loop_close(&loop);
    q_free(&uvq);
}

static uv_poll_t uv_pa, uv_pb;
static void uv_pp_a(uv_poll_t *p, int status, int events)
{
    char c;
    if (read(pp_fd[0], &c, 1) != 1) return;
    if (++pp_count == PP_N) {
        uv_stop(p->loop);
        return;
    }
    (void)!write(pp_fd[0], &c, 1);
}
static void uv_pp_b(uv_poll_t *p, int status, int events)
{
    char c;
    if (read(pp_fd[1], &c, 1) == 1) (void)!write(pp_fd[1], &c, 1);
}
static void uv_bench_pingpong(void)
{
    pin_nth(0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pp_fd);
    uv_poll_init(&loop, &uv_pa, pp_fd[0]);
    uv_poll_init(&loop, &uv_pb, pp_fd[1]);
    uv_poll_start(&uv_pa, UV_READABLE, uv_pp_a);
    uv_poll_start(&uv_pb, UV_READABLE, uv_pp_b);
    pp_count = 0;
    double t0 = now_ns();
    (void)!write(pp_fd[0], "x", 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    report("pingpong", "libuv", now_ns() - t0, PP_N);
    uv_close((uv_handle_t *)&uv_pa, NULL);
    uv_close((uv_handle_t *)&uv_pb, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(pp_fd[0]);
    close(pp_fd[1]);
}
#endif

/* =============================== libevent =============================== */
#ifdef WH_HAVE_LIBEVENT
static void ev_noop(evutil_socket_t fd, short what, void *arg) {}

static void ev_bench_timer(void)
{
    struct event_base *base = event_base_new();
    struct event **bg = malloc(TIMER_BG * sizeof(*bg));
    for (int i = 0; i < TIMER_BG; i++) {
        uint64_t ms = 100000 + (uint64_t)(i * 7919) % 100000;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        bg[i] = evtimer_new(base, ev_noop, NULL);
        evtimer_add(bg[i], &tv);
    }
    struct event *t = evtimer_new(base, ev_noop, NULL);
    double t0 = now_ns();
    for (long i = 0; i < TIMER_N; i++) {
        uint64_t ms = 1000 + (uint64_t)(i & 1023);
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(t, &tv);
        evtimer_del(t);
    }
    report("timer", "libevent", now_ns() - t0, TIMER_N);
    event_free(t);
    for (int i = 0; i < TIMER_BG; i++)
        event_free(bg[i]);
    free(bg);
    event_base_free(base);
}

static tqueue evq;
static int ev_efd;
static atomic_int ev_pending;
static struct event_base *ev_post_base;
static void ev_post_task(void *ctx, void *arg)
{
    if (++post_count == POST_N) event_base_loopbreak(ev_post_base);
}
static void ev_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    atomic_store(&ev_pending, 0);
    q_drain(&evq, arg);
}
static void *ev_producer(void *arg)
{
    pin_nth(1);
    for (long i = 0; i < POST_N; i++) {
        q_push(&evq, (task){ev_post_task, NULL});
        if (!atomic_load(&ev_pending) && !atomic_exchange(&ev_pending, 1)) {
            uint64_t one = 1;
            (void)!write(ev_efd, &one, sizeof(one));
        }
    }
    return NULL;
}
static void ev_bench_post(void)
{
    pin_nth(0);
    ev_post_base = event_base_new();
    q_init(&evq);
    ev_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_store(&ev_pending, 0);
    struct event *e =
        event_new(ev_post_base, ev_efd, EV_READ | EV_PERSIST | EV_ET, ev_wake_cb, NULL);
    event_add(e, NULL);
    post_count = 0;
    pthread_t th;
    double t0 = now_ns();
    pthread_create(&th, NULL, ev_producer, NULL);
    event_base_dispatch(ev_post_base);
    double t1 = now_ns();
    pthread_join(th, NULL);
    report("post", "libevent", t1 - t0, POST_N);
    event_free(e);
    close(ev_efd);
    event_base_free(ev_post_base);
    q_free(&evq);
}

static void ev_pp_a(evutil_socket_t fd, short what, void *arg)
{
    char c;
    if (read(pp_fd[0], &c, 1) != 1) return;
    if (++pp_count == PP_N) {
        event_base_loopbreak(arg);
        return;
    }
    (void)!write(pp_fd[0], &c, 1);
}
static void ev_pp_b(evutil_socket_t fd, short what, void *arg)
{
    char c;
    if (read(pp_fd[1], &c, 1) == 1) (void)!write(pp_fd[1], &c, 1);
}
static void ev_bench_pingpong(void)
{
    pin_nth(0);
    struct event_base *base = event_base_new();
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pp_fd);
    struct event *a = event_new(base, pp_fd[0], EV_READ | EV_PERSIST, ev_pp_a, base);
    struct event *b = event_new(base, pp_fd[1], EV_READ | EV_PERSIST, ev_pp_b, base);
    event_add(a, NULL);
    event_add(b, NULL);
    pp_count = 0;
    double t0 = now_ns();
    (void)!write(pp_fd[0], "x", 1);
    event_base_dispatch(base);
    report("pingpong", "libevent", now_ns() - t0, PP_N);
    event_free(a);
    event_free(b);
    event_base_free(base);
    close(pp_fd[0]);
    close(pp_fd[1]);
}
#endif

static int want(int argc, char **argv, const char *row)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], row)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) nallowed = CPU_COUNT(&allowed);
    if (want(argc, argv, "timer")) {
        wh_bench_timer();
#ifdef WH_HAVE_LIBUV
        uv_bench_timer();
#endif
#ifdef WH_HAVE_LIBEVENT
        ev_bench_timer();
#endif
    }
    if (want(argc, argv, "post")) {
        wh_bench_post();
#ifdef WH_HAVE_LIBUV
        uv_bench_post();
#endif
#ifdef WH_HAVE_LIBEVENT
        ev_bench_post();
#endif
    }
    if (want(argc, argv, "pingpong")) {
        wh_bench_pingpong();
#ifdef WH_HAVE_LIBUV
        uv_bench_pingpong();
#endif
#ifdef WH_HAVE_LIBEVENT
        ev_bench_pingpong();
#endif
    }
    return 0;
}
