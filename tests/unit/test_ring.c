/* SPSC ring: order, capacity, full/empty, and a two-thread stress run in which
 * every item arrives exactly once and in order (TSan checks the hand-over).
 * WH_TEST_LABELS: tsan
 */
#include <pthread.h>
#include <stdint.h>

#include "test.h"
#include "wharf/ring.h"

TEST(capacity_rounds_up)
{
    wh_ring *r;
    CHECK_EQ(wh_ring_new(&r, 0), -EINVAL);
    CHECK_EQ(wh_ring_new(&r, 5), 0);
    CHECK_EQ(wh_ring_capacity(r), 8);
    wh_ring_free(r);
    CHECK_EQ(wh_ring_new(&r, 1), 0);
    CHECK_EQ(wh_ring_capacity(r), 2);
    wh_ring_free(r);
}

TEST(fifo_full_empty)
{
    wh_ring *r;
    CHECK_EQ(wh_ring_new(&r, 4), 0);
    CHECK(wh_ring_pop(r) == NULL);
    CHECK(wh_ring_peek(r) == NULL);
    for (uintptr_t i = 1; i <= 4; i++)
        CHECK(wh_ring_push(r, (void *)i));
    CHECK(!wh_ring_push(r, (void *)5));
    CHECK_EQ(wh_ring_count(r), 4);
    CHECK_EQ((uintptr_t)wh_ring_peek(r), 1);
    for (uintptr_t i = 1; i <= 4; i++)
        CHECK_EQ((uintptr_t)wh_ring_pop(r), i);
    CHECK(wh_ring_pop(r) == NULL);
    /* Wrap around many times. */
    for (uintptr_t i = 1; i < 1000; i++) {
        CHECK(wh_ring_push(r, (void *)i));
        CHECK(wh_ring_push(r, (void *)(i + 1)));
        CHECK_EQ((uintptr_t)wh_ring_pop(r), i);
        CHECK_EQ((uintptr_t)wh_ring_pop(r), i + 1);
    }
    CHECK_EQ(wh_ring_count(r), 0);
    wh_ring_free(r);
}

#define STRESS_N 2000000u

struct payload {
    uintptr_t seq;
    uintptr_t check; /* written by the producer before the push */
};

static void *producer(void *arg)
{
    wh_ring *r = arg;
    static struct payload items[1024];
    for (uintptr_t i = 1; i <= STRESS_N; i++) {
        /* The ring holds at most 64, so a payload is reused only after the
         * consumer popped it (see the consumer's peek-then-pop). */
        struct payload *p = &items[i % 1024];
        p->seq = i;
        p->check = i * 2654435761u;
        while (!wh_ring_push(r, p))
            sched_yield();
    }
    return NULL;
}

TEST(two_thread_stress)
{
    wh_ring *r;
    CHECK_EQ(wh_ring_new(&r, 64), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, producer, r), 0);
    uintptr_t want = 1;
    int bad = 0;
    while (want <= STRESS_N) {
        /* Read through peek, then pop: the pop's release orders our reads
         * before the producer's reuse of the payload. */
        struct payload *p = wh_ring_peek(r);
        if (!p) {
            sched_yield();
            continue;
        }
        if (p->seq != want || p->check != want * 2654435761u) bad++;
        CHECK(wh_ring_pop(r) == p);
        want++;
    }
    pthread_join(t, NULL);
    CHECK_EQ(bad, 0);
    CHECK(wh_ring_pop(r) == NULL);
    wh_ring_free(r);
}

WH_TEST_MAIN()
