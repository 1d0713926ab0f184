/* Cross-thread posts: 4 threads x 250,000 posts = 1,000,000 tasks, none lost,
 * FIFO per producer, and wake-ups coalesced (fewer eventfd writes than posts).
 * WH_TEST_LABELS: tsan
 */
#include <pthread.h>

#include "loop/loop_internal.h"
#include "test.h"

#define NPROD 4
#define PER   250000

static uint64_t got[NPROD];
static uint64_t total;
static int fifo_ok = 1;

static void task(wh_loop *loop, void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    unsigned p = (unsigned)(v >> 32);
    uint64_t seq = v & 0xffffffffu;
    if (seq != got[p]) fifo_ok = 0;
    got[p] = seq + 1;
    if (++total == (uint64_t)NPROD * PER) wh_loop_stop(loop);
}

static wh_loop *g_loop;
static void *producer(void *arg)
{
    uintptr_t p = (uintptr_t)arg;
    for (uintptr_t i = 0; i < PER; i++)
        while (wh_loop_post(g_loop, task, (void *)((p << 32) | i)) != 0)
            ;
    return NULL;
}

TEST(million_posts_four_threads)
{
    CHECK_EQ(wh_loop_new(&g_loop, NULL), 0);
    pthread_t th[NPROD];
    for (uintptr_t p = 0; p < NPROD; p++)
        CHECK_EQ(pthread_create(&th[p], NULL, producer, (void *)p), 0);
    CHECK_EQ(wh_loop_run(g_loop, WH_RUN_DEFAULT), 0);
    for (int p = 0; p < NPROD; p++)
        pthread_join(th[p], NULL);
    CHECK_EQ(total, (uint64_t)NPROD * PER);
    CHECK(fifo_ok);
    for (int p = 0; p < NPROD; p++)
        CHECK_EQ(got[p], PER);
    wh__loop_stats st;
    wh__loop_get_stats(g_loop, &st);
    fprintf(stderr, "  posts %d, eventfd writes %llu, drains %llu\n", NPROD * PER,
            (unsigned long long)st.wake_writes, (unsigned long long)st.post_drains);
    CHECK(st.wake_writes < (uint64_t)NPROD * PER);
    CHECK(st.post_drains > 0);
    wh_loop_free(g_loop);
}

/* Posts queued before the loop runs, coalesced into one wake-up; a post from
 * the loop thread itself runs too, after the ones before it. */
static int order[8], norder;
static void rec(wh_loop *loop, void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
    if ((intptr_t)arg == 3) wh_loop_post(loop, rec, (void *)4);
}

TEST(coalesce_and_self_post)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    CHECK(wh_loop_on_thread(loop));
    CHECK_EQ(wh_loop_post(loop, NULL, NULL), -EINVAL);
    for (intptr_t i = 1; i <= 3; i++)
        CHECK_EQ(wh_loop_post(loop, rec, (void *)i), 0);
    wh__loop_stats st;
    wh__loop_get_stats(loop, &st);
    CHECK_EQ(st.wake_writes, 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_ONCE), 0);
    CHECK(norder >= 3); /* the self-post may run in the same iteration */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(norder, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(order[i], i + 1);
    wh_loop_free(loop);
}

/* wh_loop_wake from another thread ends a blocking RUN_ONCE. */
static void *waker(void *arg)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    wh_loop_wake(arg);
    return NULL;
}

static void *on_thread_probe(void *arg)
{
    return (void *)(intptr_t)wh_loop_on_thread(arg);
}

TEST(wake_from_thread)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, on_thread_probe, loop), 0);
    void *res;
    pthread_join(th, &res);
    CHECK(res == NULL);
    CHECK_EQ(pthread_create(&th, NULL, waker, loop), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_ONCE), 0); /* blocks until woken */
    pthread_join(th, NULL);
    wh_loop_free(loop);
}

/* A post is never lost: what is queued when the loop is freed runs inside
 * wh_loop_free, and posts from then on are refused with -ESHUTDOWN. */
static int freed_ran, repost_rc = 1;
static void at_free_task(wh_loop *loop, void *arg)
{
    freed_ran++;
    free(arg); /* the memory a task carries is released, not leaked */
    repost_rc = wh_loop_post(loop, at_free_task, NULL);
}

static void *post_from_thread(void *arg)
{
    wh_loop *loop = arg;
    for (int i = 0; i < 3; i++)
        if (wh_loop_post(loop, at_free_task, malloc(64)) < 0) return NULL;
    return NULL;
}

TEST(queued_posts_run_when_freed)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, post_from_thread, loop), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    wh_loop_free(loop); /* never ran: the three tasks run here */
    CHECK_EQ(freed_ran, 3);
    CHECK_EQ(repost_rc, -ESHUTDOWN);
}

WH_TEST_MAIN()
