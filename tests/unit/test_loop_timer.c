/* Timers: order, ties, repeat, restart, stop/free inside callbacks, 1,000,000
 * live timers, and randomized churn against a reference model (fake clock). */
#include <stdlib.h>

#include "loop/loop_internal.h"
#include "test.h"

#define MAXLOG 64
static int fired_log[MAXLOG];
static int nlog;

static void log_cb(wh_timer *t, void *ud)
{
    if (nlog < MAXLOG) fired_log[nlog++] = (int)(intptr_t)ud;
}

TEST(order_and_ties)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh__loop_set_time(loop, 1000);
    nlog = 0;
    /* (timeout, id): expect order by timeout, ties in start order. */
    int spec[][2] = {{30, 1}, {10, 2}, {20, 3}, {10, 4}, {0, 5}, {20, 6}, {10, 7}};
    wh_timer *t[7];
    for (int i = 0; i < 7; i++) {
        CHECK_EQ(wh_timer_new(loop, log_cb, (void *)(intptr_t)spec[i][1], &t[i]), 0);
        CHECK_EQ(wh_timer_start(t[i], (uint64_t)spec[i][0], 0), 0);
        CHECK(wh_timer_active(t[i]));
        CHECK(wh_timer_loop(t[i]) == loop);
    }
    CHECK_EQ(wh__loop_timer_count(loop), 7);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(nlog, 1);
    CHECK_EQ(fired_log[0], 5);
    wh__loop_set_time(loop, 1009);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(nlog, 1);
    wh__loop_set_time(loop, 1100);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    int want[] = {5, 2, 4, 7, 3, 6, 1};
    CHECK_EQ(nlog, 7);
    for (int i = 0; i < 7; i++)
        CHECK_EQ(fired_log[i], want[i]);
    for (int i = 0; i < 7; i++) {
        CHECK(!wh_timer_active(t[i]));
        wh_timer_free(t[i]);
    }
    wh_loop_free(loop);
}

static int rep_count;
static void rep_cb(wh_timer *t, void *ud)
{
    if (++rep_count == 3) wh_timer_stop(t);
}

TEST(repeat_and_restart)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh__loop_set_time(loop, 0);
    wh_timer *t;
    CHECK_EQ(wh_timer_new(loop, rep_cb, NULL, &t), 0);
    rep_count = 0;
    CHECK_EQ(wh_timer_start(t, 5, 10), 0);
    wh__loop_set_time(loop, 5);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(rep_count, 1);
    CHECK(wh_timer_active(t));
    wh__loop_set_time(loop, 14);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(rep_count, 1);
    wh__loop_set_time(loop, 15);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(rep_count, 2);
    /* Far behind: fires once, not in a burst. */
    wh__loop_set_time(loop, 1000);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(rep_count, 3);
    CHECK(!wh_timer_active(t));
    /* Restart an active timer later, then earlier. */
    nlog = 0;
    wh_timer *a, *b;
    CHECK_EQ(wh_timer_new(loop, log_cb, (void *)1, &a), 0);
    CHECK_EQ(wh_timer_new(loop, log_cb, (void *)2, &b), 0);
    CHECK_EQ(wh_timer_start(a, 10, 0), 0);
    CHECK_EQ(wh_timer_start(b, 20, 0), 0);
    CHECK_EQ(wh_timer_start(a, 30, 0), 0); /* a after b now */
    CHECK_EQ(wh__loop_timer_count(loop), 2);
    wh__loop_set_time(loop, 1025);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(nlog, 1);
    CHECK_EQ(fired_log[0], 2);
    CHECK_EQ(wh_timer_start(a, 1, 0), 0); /* earlier */
    wh__loop_set_time(loop, 1026);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(nlog, 2);
    CHECK_EQ(fired_log[1], 1);
    wh_timer_stop(a); /* stop of a stopped timer: no-op */
    wh_timer_free(t);
    wh_timer_free(a);
    wh_timer_free(b);
    wh_loop_free(loop);
}

/* Callback games: a frees itself, stops b, restarts c with 0 (next run, not
 * this one), frees d, and a repeating e restarts itself. */
static wh_timer *ta, *tb, *tc, *td, *te;
static int ca, cb_, cc, cd, ce;
static void a_cb(wh_timer *t, void *ud)
{
    ca++;
    wh_timer_free(t);
    wh_timer_stop(tb);
    wh_timer_start(tc, 0, 0);
    wh_timer_free(td);
}
static void b_cb(wh_timer *t, void *ud)
{
    cb_++;
}
static void c_cb(wh_timer *t, void *ud)
{
    cc++;
    if (cc < 3) wh_timer_start(t, 0, 0); /* would spin forever if run in the same pass */
}
static void d_cb(wh_timer *t, void *ud)
{
    cd++;
}
static void e_cb(wh_timer *t, void *ud)
{
    ce++;
    wh_timer_start(t, 7, 0); /* restart a repeating timer as one-shot */
}

TEST(callbacks_stop_restart_free)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh__loop_set_time(loop, 100);
    CHECK_EQ(wh_timer_new(loop, a_cb, NULL, &ta), 0);
    CHECK_EQ(wh_timer_new(loop, b_cb, NULL, &tb), 0);
    CHECK_EQ(wh_timer_new(loop, c_cb, NULL, &tc), 0);
    CHECK_EQ(wh_timer_new(loop, d_cb, NULL, &td), 0);
    CHECK_EQ(wh_timer_new(loop, e_cb, NULL, &te), 0);
    wh_timer_start(ta, 5, 0);
    wh_timer_start(tb, 5, 0);
    wh_timer_start(td, 5, 0);
    wh_timer_start(te, 5, 5);
    wh__loop_set_time(loop, 105);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(ca, 1);
    CHECK_EQ(cb_, 0);
    CHECK_EQ(cd, 0);
    CHECK_EQ(ce, 1);
    /* c was started from a callback with timeout 0 in the first timer run;
     * it fires in the second timer run of the same iteration, once. */
    CHECK_EQ(cc, 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(cc, 3);
    CHECK(!wh_timer_active(tc));
    CHECK(wh_timer_active(te));
    wh__loop_set_time(loop, 111);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(ce, 1);
    wh__loop_set_time(loop, 112);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(ce, 2);
    CHECK_EQ(wh__loop_timer_count(loop), 1);
    /* tb, tc, te still attached: wh_loop_free frees them. */
    wh_loop_free(loop);
}

static uint64_t big_fired;
static uint64_t big_last_deadline;
static int big_order_ok = 1;
static void big_cb(wh_timer *t, void *ud)
{
    uint64_t d = (uint64_t)(uintptr_t)ud;
    if (d < big_last_deadline) big_order_ok = 0;
    big_last_deadline = d;
    big_fired++;
}

TEST(million_live_timers)
{
    enum { N = 1000000 };
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh__loop_set_time(loop, 0);
    wh_timer **ts = malloc(N * sizeof(*ts));
    CHECK(ts);
    srand(12345);
    for (int i = 0; i < N; i++) {
        uint64_t to = (uint64_t)(rand() % 100000) + 1;
        CHECK_EQ(wh_timer_new(loop, big_cb, (void *)(uintptr_t)to, &ts[i]), 0);
        CHECK_EQ(wh_timer_start(ts[i], to, 0), 0);
    }
    CHECK_EQ(wh__loop_timer_count(loop), N);
    /* Stop every 4th: O(log n) each. */
    for (int i = 0; i < N; i += 4)
        wh_timer_stop(ts[i]);
    CHECK_EQ(wh__loop_timer_count(loop), N - N / 4);
    for (uint64_t now = 0; now <= 100000; now += 997) {
        wh__loop_set_time(loop, now);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    }
    wh__loop_set_time(loop, 100001);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(big_fired, N - N / 4);
    CHECK(big_order_ok);
    CHECK_EQ(wh__loop_timer_count(loop), 0);
    for (int i = 0; i < N; i += 2)
        wh_timer_free(ts[i]);
    free(ts);
    wh_loop_free(loop); /* frees the other half */
}

/* Randomized churn vs a reference model: each model timer has (active,
 * deadline, seq); the expected firing order at each step is by (deadline, seq). */
#define CN 2000
static struct model {
    int active;
    uint64_t deadline, seq;
} model[CN];
static uint64_t mseq;
static int churn_fired[CN];
static int nchurn;
static void churn_cb(wh_timer *t, void *ud)
{
    int i = (int)(intptr_t)ud;
    if (nchurn < CN) churn_fired[nchurn++] = i;
}

static int model_cmp(const void *a, const void *b)
{
    const struct model *x = &model[*(const int *)a], *y = &model[*(const int *)b];
    if (x->deadline != y->deadline) return x->deadline < y->deadline ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

TEST(random_churn_vs_model)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    uint64_t now = 5000;
    wh__loop_set_time(loop, now);
    static wh_timer *ts[CN];
    for (int i = 0; i < CN; i++)
        CHECK_EQ(wh_timer_new(loop, churn_cb, (void *)(intptr_t)i, &ts[i]), 0);
    static int expect[CN];
    for (int step = 0; step < 3000; step++) {
        int ops = (int)(next_rand() % 200);
        for (int k = 0; k < ops; k++) {
            int i = (int)(next_rand() % CN);
            if (next_rand() % 3 == 0) {
                wh_timer_stop(ts[i]);
                model[i].active = 0;
            } else {
                uint64_t to = next_rand() % 50; /* many ties */
                CHECK_EQ(wh_timer_start(ts[i], to, 0), 0);
                model[i] = (struct model){1, now + to, mseq++};
            }
        }
        now += next_rand() % 8;
        int ne = 0;
        for (int i = 0; i < CN; i++)
            if (model[i].active && model[i].deadline <= now) expect[ne++] = i;
        qsort(expect, (size_t)ne, sizeof(int), model_cmp);
        for (int j = 0; j < ne; j++)
            model[expect[j]].active = 0;
        nchurn = 0;
        wh__loop_set_time(loop, now);
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
        CHECK_EQ(nchurn, ne);
        for (int j = 0; j < ne; j++)
            CHECK_EQ(churn_fired[j], expect[j]);
        size_t live = 0;
        for (int i = 0; i < CN; i++) {
            live += (size_t)model[i].active;
            CHECK_EQ(wh_timer_active(ts[i]), model[i].active);
        }
        CHECK_EQ(wh__loop_timer_count(loop), live);
    }
    wh_loop_free(loop);
}

/* Real clock: a 30 ms timer in RUN_DEFAULT, stopped from its callback. */
static void stop_cb(wh_timer *t, void *ud)
{
    wh_loop_stop(wh_timer_loop(t));
}

TEST(real_clock)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh_timer *t;
    CHECK_EQ(wh_timer_new(loop, stop_cb, NULL, &t), 0);
    uint64_t t0 = wh_loop_now(loop);
    CHECK_EQ(wh_timer_start(t, 30, 0), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK(wh_loop_now(loop) >= t0 + 30);
    wh_timer_free(t);
    wh_loop_free(loop);
}

WH_TEST_MAIN()
