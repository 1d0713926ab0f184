/* Timers: a binary min-heap of (deadline, seq, timer) with the heap index kept
 * in each timer, so start, stop and restart are O(log n) without searching.
 * seq is a per-loop counter taken at each start: equal deadlines fire in start
 * order, and timers (re)started by a timer callback with deadline <= now wait
 * for the next run instead of looping forever.
 *
 * No timerfd: the poll timeout is the time to the heap's minimum, which costs
 * nothing; a timerfd would add a syscall per change of the earliest timer. */
#include <limits.h>
#include <stdlib.h>

#include "loop/loop_priv.h"

static inline bool tent_less(const wh__tent *a, const wh__tent *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void sift_up(wh__tent *h, uint32_t i)
{
    wh__tent e = h[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!tent_less(&e, &h[p])) break;
        h[i] = h[p];
        h[i].t->heap = i;
        i = p;
    }
    h[i] = e;
    e.t->heap = i;
}

static void sift_down(wh__tent *h, uint32_t len, uint32_t i)
{
    wh__tent e = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= len) break;
        if (c + 1 < len && tent_less(&h[c + 1], &h[c])) c++;
        if (!tent_less(&h[c], &e)) break;
        h[i] = h[c];
        h[i].t->heap = i;
        i = c;
    }
    h[i] = e;
    e.t->heap = i;
}

static void heap_remove(wh_loop *loop, wh_timer *t)
{
    uint32_t i = t->heap;
    uint32_t last = --loop->heap_len;
    t->heap = WH__NOIDX;
    if (i == last) return;
    wh__tent *h = loop->heap;
    h[i] = h[last];
    h[i].t->heap = i;
    if (i > 0 && tent_less(&h[i], &h[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, loop->heap_len, i);
}

void wh__timer_init(wh_loop *loop, wh_timer *t, wh_timer_cb cb, void *ud)
{
    t->loop = loop;
    t->cb = cb;
    t->ud = ud;
    t->repeat = 0;
    t->heap = WH__NOIDX;
    t->reg = WH__NOIDX;
}

void wh__timer_deinit(wh_timer *t)
{
    wh_timer_stop(t);
}

int wh_timer_new(wh_loop *loop, wh_timer_cb cb, void *ud, wh_timer **out)
{
    if (!loop || !cb || !out) return -EINVAL;
    *out = NULL;
    if (loop->ntimers == loop->cap_timers) {
        uint32_t cap = loop->cap_timers ? loop->cap_timers * 2 : 64;
        wh_timer **v = realloc(loop->timers, (size_t)cap * sizeof(*v));
        if (!v) return -ENOMEM;
        loop->timers = v;
        loop->cap_timers = cap;
    }
    wh_timer *t = malloc(sizeof(*t));
    if (!t) return -ENOMEM;
    wh__timer_init(loop, t, cb, ud);
    t->reg = loop->ntimers;
    loop->timers[loop->ntimers++] = t;
    *out = t;
    return 0;
}

static void timer_schedule(wh_loop *loop, wh_timer *t, uint64_t timeout_ms)
{
    uint64_t deadline = loop->now + timeout_ms;
    if (deadline < loop->now) deadline = UINT64_MAX; /* overflow: "never" */
    wh__tent e = {deadline, loop->timer_seq++, t};
    if (t->heap != WH__NOIDX) {
        /* Restart in place: one sift instead of remove + insert. seq only
         * grows, so the key moves up only if the deadline got earlier. */
        uint32_t i = t->heap;
        bool up = deadline < loop->heap[i].deadline;
        loop->heap[i] = e;
        if (up)
            sift_up(loop->heap, i);
        else
            sift_down(loop->heap, loop->heap_len, i);
        return;
    }
    uint32_t i = loop->heap_len++;
    loop->heap[i] = e;
    sift_up(loop->heap, i);
}

int wh_timer_start(wh_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    wh_loop *loop = t->loop;
    if (t->heap == WH__NOIDX && loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        wh__tent *h = realloc(loop->heap, (size_t)cap * sizeof(*h));
        if (!h) return -ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->repeat = repeat_ms;
    timer_schedule(loop, t, timeout_ms);
    return 0;
}

void wh_timer_stop(wh_timer *t)
{
    if (t->heap != WH__NOIDX) heap_remove(t->loop, t);
}

bool wh_timer_active(const wh_timer *t)
{
    return t->heap != WH__NOIDX;
}

void wh_timer_free(wh_timer *t)
{
    if (!t) return;
    wh_loop *loop = t->loop;
    wh_timer_stop(t);
    uint32_t i = t->reg;
    if (i != WH__NOIDX && i < loop->ntimers && loop->timers[i] == t) {
        wh_timer *last = loop->timers[--loop->ntimers];
        loop->timers[i] = last;
        last->reg = i;
    }
    free(t);
}

wh_loop *wh_timer_loop(const wh_timer *t)
{
    return t->loop;
}

bool wh__timers_run(wh_loop *loop)
{
    bool fired = false;
    /* Timers started from here on (seq >= limit) wait for the next run. */
    uint64_t limit = loop->timer_seq;
    while (loop->heap_len) {
        wh__tent *top = &loop->heap[0];
        if (top->deadline > loop->now || top->seq >= limit) break;
        wh_timer *t = top->t;
        if (t->repeat)
            /* Re-armed before the callback (which may stop or free it), from
             * now rather than from the old deadline: a loop that fell behind
             * fires once instead of in a burst. */
            timer_schedule(loop, t, t->repeat);
        else
            heap_remove(loop, t);
        /* t may be freed inside cb: nothing below touches it. */
        t->cb(t, t->ud);
        fired = true;
    }
    return fired;
}

int wh__timers_timeout(const wh_loop *loop)
{
    if (!loop->heap_len) return -1;
    uint64_t d = loop->heap[0].deadline;
    if (d <= loop->now) return 0;
    uint64_t diff = d - loop->now;
    return diff > INT_MAX ? INT_MAX : (int)diff;
}

void wh__timers_free_all(wh_loop *loop)
{
    for (uint32_t i = 0; i < loop->ntimers; i++)
        free(loop->timers[i]);
    free(loop->timers);
    free(loop->heap);
    loop->timers = NULL;
    loop->heap = NULL;
    loop->ntimers = loop->cap_timers = loop->heap_len = loop->heap_cap = 0;
}

size_t wh__loop_timer_count(const wh_loop *loop)
{
    return loop->heap_len;
}
