/* Run modes, stop, deferred callbacks, slots, user data. */
#include <unistd.h>

#include "loop/loop_internal.h"
#include "test.h"

static int order[16], norder;
static void rec(wh_loop *loop, void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
}
static void defer_again(wh_loop *loop, void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
    wh_loop_defer(loop, rec, (void *)99); /* next iteration, not this one */
}

TEST(defer_runs_at_end_of_iteration)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    norder = 0;
    CHECK_EQ(wh_loop_defer(loop, rec, (void *)1), 0);
    CHECK_EQ(wh_loop_defer(loop, defer_again, (void *)2), 0);
    CHECK_EQ(wh_loop_defer(loop, rec, (void *)3), 0);
    /* RUN_ONCE must not block: deferred work is pending. */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_ONCE), 0);
    CHECK_EQ(norder, 3);
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 2);
    CHECK_EQ(order[2], 3);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_ONCE), 0);
    CHECK_EQ(norder, 4);
    CHECK_EQ(order[3], 99);
    wh_loop_free(loop);
}

static int ticks;
static void tick(wh_timer *t, void *ud)
{
    if (++ticks == 3) wh_loop_stop(wh_timer_loop(t));
}

TEST(run_once_fires_timer_and_default_stops)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh_timer *t;
    CHECK_EQ(wh_timer_new(loop, tick, NULL, &t), 0);
    CHECK_EQ(wh_timer_start(t, 5, 0), 0);
    /* ONCE with only a timer: blocks until it is due, then fires it. */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_ONCE), 0);
    CHECK_EQ(ticks, 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(ticks, 1);
    CHECK_EQ(wh_timer_start(t, 1, 1), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK_EQ(ticks, 3);
    /* The stop flag is consumed: the next run goes on until stopped again. */
    CHECK_EQ(wh_timer_start(t, 1, 1), 0);
    ticks = 0;
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK_EQ(ticks, 3);
    wh_timer_free(t);
    wh_loop_free(loop);
}

TEST(run_once_returns_after_timer_due_before_poll)
{
    /* The clock is cached: a timer started long after the loop last looked
     * is already due at the top of the next iteration. ONCE fires it there
     * and must then return, not block in the poll with nothing left. */
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    usleep(20 * 1000);
    wh_timer *t;
    CHECK_EQ(wh_timer_new(loop, tick, NULL, &t), 0);
    CHECK_EQ(wh_timer_start(t, 5, 0), 0);
    ticks = 0;
    alarm(5); /* a hang fails the test (SIGALRM) */
    CHECK_EQ(wh_loop_run(loop, WH_RUN_ONCE), 0);
    alarm(0);
    CHECK_EQ(ticks, 1);
    wh_timer_free(t);
    wh_loop_free(loop);
}

static int nested_ret = 1;
static void stop_now(wh_loop *loop, void *arg)
{
    nested_ret = wh_loop_run(loop, WH_RUN_NOWAIT); /* not allowed: -EBUSY */
    wh_loop_stop(loop);
}

TEST(stop_from_defer_and_post)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    CHECK_EQ(wh_loop_defer(loop, stop_now, NULL), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK_EQ(nested_ret, -EBUSY);
    CHECK_EQ(wh_loop_post(loop, stop_now, NULL), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    wh__loop_stats st;
    wh__loop_get_stats(loop, &st);
    CHECK(st.iterations >= 2);
    wh_loop_free(loop);
}

TEST(nowait_never_blocks)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh_timer *t;
    CHECK_EQ(wh_timer_new(loop, tick, NULL, &t), 0);
    CHECK_EQ(wh_timer_start(t, 100000, 0), 0);
    uint64_t t0 = wh_loop_now(loop);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    /* Returns at once; the only check is that we got here (a blocking poll
     * would hang until the ctest timeout). */
    CHECK(wh_loop_now(loop) < t0 + 100000);
    wh_loop_free(loop);
}

static int freed_order[WH__SLOT_COUNT], nfreed;
static void slot_free(void *p)
{
    freed_order[nfreed++] = (int)(intptr_t)p;
}

TEST(slots_and_data)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    CHECK(wh_loop_data(loop) == NULL);
    int x;
    wh_loop_set_data(loop, &x);
    CHECK(wh_loop_data(loop) == &x);
    for (unsigned i = 0; i < WH__SLOT_COUNT; i++)
        CHECK(wh__loop_slot(loop, i) == NULL);
    CHECK(wh__loop_slot(loop, 100) == NULL);
    wh__loop_set_slot(loop, WH__SLOT_NET, (void *)10, slot_free);
    wh__loop_set_slot(loop, WH__SLOT_HTTP, (void *)12, slot_free);
    wh__loop_set_slot(loop, WH__SLOT_APP, (void *)14, NULL);
    CHECK(wh__loop_slot(loop, WH__SLOT_NET) == (void *)10);
    CHECK(wh__loop_slot(loop, WH__SLOT_HTTP) == (void *)12);
    CHECK(wh__loop_slot(loop, WH__SLOT_APP) == (void *)14);
    wh_loop_free(loop);
    CHECK_EQ(nfreed, 2);
    CHECK_EQ(freed_order[0], 12); /* higher layers first */
    CHECK_EQ(freed_order[1], 10);
}

WH_TEST_MAIN()
