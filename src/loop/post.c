/* Cross-thread posts and wake-ups.
 *
 * Queue: producers append {fn, arg} to a vector under a mutex; the loop swaps
 * the whole vector out under the same mutex and runs it outside the lock.
 * Each critical section is a few stores, no allocation except amortised
 * growth; per-producer FIFO follows from the mutex order. (A Vyukov-style
 * lock-free list would need a node allocation per post, which costs more
 * than this lock.) The lock+queue, the wake flag and the loop's own fields
 * sit on separate cache lines (loop_priv.h): that alone took the post
 * benchmark from ~1.5x libuv's time to below it.
 *
 * Wake-up coalescing: wake_pending is 1 from the first post after a drain
 * until the loop starts the next drain. Only the producer that flips it 0->1
 * writes the eventfd; the others see 1 and skip the syscall. The loop clears
 * the flag BEFORE taking the queue:
 *
 *   loop:     flag = 0 (seq_cst); lock; take queue; unlock; run
 *   producer: lock; push; unlock; if flag == 0 and xchg(flag, 1) == 0: write
 *
 * Either the loop's lock comes after the producer's unlock (the loop takes
 * the task now), or the producer's lock comes after the loop's unlock, which
 * happens after the flag store, so the producer reads 0 (or a later 1 from a
 * producer that wrote) and a wake-up is on its way: no task is left behind.
 *
 * Tried and measured worse (bench/loop.sh, post row): clearing the flag only
 * before a blocking poll, and spinning briefly before sleeping. Both make the
 * loop take smaller batches, and the extra trips through the mutex cost more
 * than the eventfd writes they save.
 *
 * The eventfd is watched edge-triggered and never read: every write(2) to an
 * eventfd wakes its waiters, and with EPOLLET each wake-up queues a new event,
 * so draining the counter with read(2) would be a wasted syscall per wake-up.
 * The 64-bit counter cannot overflow in practice (eventfd(2): max 2^64-2). */
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop/loop_priv.h"

/* The eventfd fired: clear the flag, THEN take the queue (see above). */
static void post_io_cb(wh_io *io, unsigned events, void *ud)
{
    wh_loop *loop = ud;
    atomic_store_explicit(&loop->wake_pending, 0, memory_order_seq_cst);
    pthread_mutex_lock(&loop->post_mu);
    wh__tvec run = loop->post_q;
    loop->post_q = loop->post_run;
    pthread_mutex_unlock(&loop->post_mu);
    loop->st.post_drains++;
    for (uint32_t i = 0; i < run.n; i++)
        run.v[i].fn(loop, run.v[i].arg);
    run.n = 0;
    loop->post_run = run;
}

int wh__post_init(wh_loop *loop)
{
    int r = pthread_mutex_init(&loop->post_mu, NULL);
    if (r) return -r;
    loop->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->evfd < 0) {
        r = -errno;
        pthread_mutex_destroy(&loop->post_mu);
        return r;
    }
    wh__io_init(loop, &loop->evio, loop->evfd, post_io_cb, loop);
    r = wh_io_set(&loop->evio, WH_IO_READ | WH_IO_EDGE);
    if (r < 0) {
        close(loop->evfd);
        pthread_mutex_destroy(&loop->post_mu);
        return r;
    }
    return 0;
}

void wh__post_close(wh_loop *loop)
{
    /* Refuse new posts first, so the run below is the last: a task that
     * posts again (or a producer racing the free) gets -ESHUTDOWN instead
     * of a callback that silently never runs. */
    pthread_mutex_lock(&loop->post_mu);
    loop->post_closed = true;
    wh__tvec run = loop->post_q;
    loop->post_q = (wh__tvec){0};
    pthread_mutex_unlock(&loop->post_mu);
    for (uint32_t i = 0; i < run.n; i++)
        run.v[i].fn(loop, run.v[i].arg);
    free(run.v);
}

void wh__post_free(wh_loop *loop)
{
    wh__io_deinit(&loop->evio);
    close(loop->evfd);
    pthread_mutex_destroy(&loop->post_mu);
    free(loop->post_q.v);
    free(loop->post_run.v);
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

int wh_loop_post(wh_loop *loop, wh_task_fn fn, void *arg)
{
    if (!loop || !fn) return -EINVAL;
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
    pthread_mutex_unlock(&loop->post_mu);
    wake(loop);
    return 0;
}

/* Same flag: a wake-up already on its way makes this one redundant. */
void wh_loop_wake(wh_loop *loop)
{
    wake(loop);
}
