/* Cross-thread posts and wake-ups.
 *
 * Queue: a bounded lock-free ring (Vyukov's bounded queue, one consumer),
 * with a mutex-protected vector behind it for when the ring is full. A post
 * is one CAS on the ring's tail and two stores into its cell: no lock, no
 * allocation. Each cell's seq says whose turn it is: position + 1 once a
 * producer filled it, position + POST_RING once the loop took it (free for
 * the next lap). A producer that finds its cell still full from the last lap
 * goes to the overflow vector.
 *
 * Order. Each producer's posts run in the order it made them. The loop takes
 * the ring first, then the overflow vector, so a producer must not put a
 * post in the ring while an earlier one of its own waits in the overflow:
 * post_overflowing is set (under post_mu) whenever the vector is not empty,
 * and producers that see it use the vector too. The loop clears it under
 * post_mu when it takes the vector. Tasks posted while a drain runs (a task
 * that posts itself again) run in the next iteration: the drain stops at
 * the tail it saw when it started.
 *
 * Shutdown. wh_loop_free sets WH__POST_CLOSED in the tail word with one
 * atomic OR: a producer's CAS either happened before (its cell is drained
 * below, after it is filled) or fails and sees the bit (-ESHUTDOWN). So a
 * post that returned 0 always runs, as with the old lock-only queue.
 *
 * Wake-up coalescing: wake_pending is 1 from the first post after a drain
 * until the loop starts the next drain. Only the producer that flips it 0->1
 * writes the eventfd; the others see 1 and skip the syscall. The loop clears
 * the flag BEFORE reading the queue (seq_cst on both sides):
 *
 *   loop:     flag = 0; read the ring and vector; run
 *   producer: fill the cell (release) or push under the lock; then
 *             if flag == 0 and xchg(flag, 1) == 0: write
 *
 * Either the loop's read comes after the producer's fill (the loop takes the
 * task now), or the producer's flag load comes after the loop's store, so it
 * reads 0 (or a later 1 from a producer that wrote) and a wake-up is on its
 * way: no task is left behind. A cell claimed but not yet filled when the
 * loop reaches it ends the drain there; its producer's wake-up brings the
 * loop back.
 *
 * The eventfd is watched edge-triggered and never read: every write(2) to an
 * eventfd wakes its waiters, and with EPOLLET each wake-up queues a new event,
 * so draining the counter with read(2) would be a wasted syscall per wake-up.
 * The 64-bit counter cannot overflow in practice (eventfd(2): max 2^64-2). */
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop/loop_priv.h"

/* Ring slots per loop (a power of two): 12 KiB. Bursts beyond it go to the
 * overflow vector, so it bounds nothing but the lock-free fast path. */
#define POST_RING       512u
#define WH__POST_CLOSED (1ull << 63)

/* Takes the ring's filled cells from post_head up to end (a tail snapshot),
 * stopping at a cell whose producer has not filled it yet; runs each. */
static void ring_run(wh_loop *loop, uint64_t end)
{
    wh__post_cell *ring = loop->post_ring;
    while (loop->post_head < end) {
        uint64_t pos = loop->post_head;
        wh__post_cell *c = &ring[pos & (POST_RING - 1)];
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1) return;
        wh_task_fn fn = c->fn;
        void *arg = c->arg;
        atomic_store_explicit(&c->seq, pos + POST_RING, memory_order_release);
        loop->post_head = pos + 1;
        fn(loop, arg);
    }
}

/* Runs the ring up to end, waiting for cells claimed but not yet filled (a
 * producer between its CAS and its store: a few instructions, unless it was
 * preempted there). */
static void ring_run_all(wh_loop *loop, uint64_t end)
{
    while (loop->post_head < end) {
        ring_run(loop, end);
        if (loop->post_head < end) sched_yield();
    }
}

/* Takes the overflow vector (if any) and runs it, after the ring up to the
 * tail read under the lock: whatever a producer put in the ring before its
 * vector push (which the lock orders before our read) sits below that tail.
 * A producer's post made after its vector push goes to the ring only once it
 * sees the flag clear, i.e. after the tail was read (release/acquire on the
 * flag), so it lands above it and runs after the vector. */
static void overflow_run(wh_loop *loop)
{
    if (!atomic_load_explicit(&loop->post_overflowing, memory_order_acquire)) return;
    pthread_mutex_lock(&loop->post_mu);
    wh__tvec run = loop->post_q;
    loop->post_q = loop->post_run;
    uint64_t end = atomic_load_explicit(&loop->post_tail, memory_order_seq_cst) & ~WH__POST_CLOSED;
    atomic_store_explicit(&loop->post_overflowing, 0, memory_order_release);
    pthread_mutex_unlock(&loop->post_mu);
    ring_run_all(loop, end);
    for (uint32_t i = 0; i < run.n; i++)
        run.v[i].fn(loop, run.v[i].arg);
    run.n = 0;
    loop->post_run = run;
}

/* The eventfd fired: clear the flag, THEN take the queue (see above). */
static void post_io_cb(wh_io *io, unsigned events, void *ud)
{
    wh_loop *loop = ud;
    (void)io;
    (void)events;
    atomic_store_explicit(&loop->wake_pending, 0, memory_order_seq_cst);
    uint64_t end = atomic_load_explicit(&loop->post_tail, memory_order_seq_cst) & ~WH__POST_CLOSED;
    loop->st.post_drains++;
    ring_run(loop, end);
    overflow_run(loop);
}

int wh__post_init(wh_loop *loop)
{
    loop->post_ring = malloc(POST_RING * sizeof(*loop->post_ring));
    if (!loop->post_ring) return -ENOMEM;
    for (uint32_t i = 0; i < POST_RING; i++)
        atomic_init(&loop->post_ring[i].seq, i);
    loop->post_head = 0;
    atomic_init(&loop->post_tail, 0);
    atomic_init(&loop->post_overflowing, 0);
    int r = pthread_mutex_init(&loop->post_mu, NULL);
    if (r) {
        free(loop->post_ring);
        return -r;
    }
    loop->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->evfd < 0) {
        r = -errno;
        goto fail;
    }
    wh__io_init(loop, &loop->evio, loop->evfd, post_io_cb, loop);
    r = wh_io_set(&loop->evio, WH_IO_READ | WH_IO_EDGE);
    if (r < 0) {
        close(loop->evfd);
        goto fail;
    }
    return 0;
fail:
    pthread_mutex_destroy(&loop->post_mu);
    free(loop->post_ring);
    return r;
}

void wh__post_close(wh_loop *loop)
{
    /* Refuse new posts first, so the run below is the last: a task that
     * posts again (or a producer racing the free) gets -ESHUTDOWN instead
     * of a callback that silently never runs. */
    uint64_t end =
        atomic_fetch_or_explicit(&loop->post_tail, WH__POST_CLOSED, memory_order_seq_cst) &
        ~WH__POST_CLOSED;
    pthread_mutex_lock(&loop->post_mu);
    loop->post_closed = true;
    pthread_mutex_unlock(&loop->post_mu);
    /* Cells claimed before the OR are being filled right now: wait for them. */
    ring_run_all(loop, end);
    overflow_run(loop);
}

void wh__post_free(wh_loop *loop)
{
    wh__io_deinit(&loop->evio);
    close(loop->evfd);
    pthread_mutex_destroy(&loop->post_mu);
    free(loop->post_q.v);
    free(loop->post_run.v);
    free(loop->post_ring);
}

static void wake(wh_loop *loop)
{
    /* Plain load first: while the flag is set, producers only read the
     * shared line instead of bouncing it with a locked exchange. */
    if (atomic_load_explicit(&loop->wake_pending, memory_order_seq_cst)) return;
    if (atomic_exchange_explicit(&loop->wake_pending, 1, memory_order_seq_cst)) return;
    atomic_fetch_add_explicit(&loop->wake_writes, 1, memory_order_relaxed);
    uint64_t one = 1;
    /* EAGAIN only if the counter is at its maximum, i.e. never. */
    ssize_t w = write(loop->evfd, &one, sizeof(one));
    (void)w;
}

/* The slow path: the ring is full, or earlier posts wait in the vector. */
static int overflow_push(wh_loop *loop, wh_task_fn fn, void *arg)
{
    pthread_mutex_lock(&loop->post_mu);
    if (loop->post_closed) {
        pthread_mutex_unlock(&loop->post_mu);
        return -ESHUTDOWN;
    }
    if (wh__tvec_reserve(&loop->post_q) < 0) {
        pthread_mutex_unlock(&loop->post_mu);
        return -ENOMEM;
    }
    loop->post_q.v[loop->post_q.n++] = (wh__task){fn, arg};
    atomic_store_explicit(&loop->post_overflowing, 1, memory_order_release);
    pthread_mutex_unlock(&loop->post_mu);
    return 0;
}

int wh_loop_post(wh_loop *loop, wh_task_fn fn, void *arg)
{
    if (!loop || !fn) return -EINVAL;
    uint64_t pos = atomic_load_explicit(&loop->post_tail, memory_order_relaxed);
    for (;;) {
        if (pos & WH__POST_CLOSED) return -ESHUTDOWN;
        if (atomic_load_explicit(&loop->post_overflowing, memory_order_acquire)) break;
        wh__post_cell *c = &loop->post_ring[pos & (POST_RING - 1)];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff < 0) break; /* full: the loop has not taken last lap's task yet */
        if (diff > 0) {      /* another producer took pos: catch up */
            pos = atomic_load_explicit(&loop->post_tail, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&loop->post_tail, &pos, pos + 1,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            c->fn = fn;
            c->arg = arg;
            atomic_store_explicit(&c->seq, pos + 1, memory_order_seq_cst);
            wake(loop);
            return 0;
        }
    }
    int rc = overflow_push(loop, fn, arg);
    if (rc == 0) wake(loop);
    return rc;
}
/* Same flag: a wake-up already on its way makes this one redundant. */
void wh_loop_wake(wh_loop *loop)
{
    wake(loop);
}
