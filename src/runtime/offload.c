/* Offload pool: blocking or CPU-heavy jobs run on pool threads; each job's
 * completion runs back on the loop that submitted it (wh_loop_post), so the
 * done callback may touch that loop's connections without locks.
 *
 * Bounded: at most `queue` jobs exist at once (queued, running, or done but
 * not yet delivered); a submit beyond that gets -EAGAIN and the caller
 * decides (reply 503, retry later). Job records come from a fixed array, so
 * submitting never allocates.
 *
 * The queue takes a mutex per submit/take. That is deliberate: a job worth
 * offloading costs far more than an uncontended lock, and the request path
 * of ordinary connections never comes here. Pool threads start lazily on
 * the first submit, so servers that never offload pay nothing.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/runtime_internal.h"

struct wh__ojob {
    struct wh__ojob *next;
    wh__offload *pool;
    wh_loop *loop;
    void (*job)(void *);
    void (*done)(wh_loop *, void *);
    void (*after)(wh_loop *);
    void *arg;
    unsigned *counter;
};

struct wh__offload {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wh__ojob *jobs; /* the fixed array */
    struct wh__ojob *free_list;
    struct wh__ojob *qhead, *qtail; /* FIFO of queued jobs */
    unsigned nthreads, started;
    pthread_t *threads;
    bool stop;
};

int wh__offload_new(wh__offload **out, unsigned threads, unsigned queue)
{
    if (threads == 0 || queue == 0) return -EINVAL;
    wh__offload *o = calloc(1, sizeof(*o));
    if (!o) return -ENOMEM;
    o->jobs = calloc(queue, sizeof(*o->jobs));
    o->threads = calloc(threads, sizeof(*o->threads));
    if (!o->jobs || !o->threads) {
        free(o->jobs);
        free(o->threads);
        free(o);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < queue; i++) {
        o->jobs[i].next = o->free_list;
        o->free_list = &o->jobs[i];
    }
    o->nthreads = threads;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    *out = o;
    return 0;
}

/* Runs on the submitting loop's thread: release the record, then done(). */
static void offload_deliver(wh_loop *loop, void *arg)
{
    struct wh__ojob *j = arg;
    wh__offload *o = j->pool;
    void (*done)(wh_loop *, void *) = j->done;
    void (*after)(wh_loop *) = j->after;
    void *uarg = j->arg;
    unsigned *counter = j->counter;
    pthread_mutex_lock(&o->mu);
    j->next = o->free_list;
    o->free_list = j;
    pthread_mutex_unlock(&o->mu);
    if (counter) (*counter)--;
    if (done) done(loop, uarg);
    if (after) after(loop);
}

static void *offload_main(void *arg)
{
    wh__offload *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->qhead && !o->stop)
            pthread_cond_wait(&o->cv, &o->mu);
        struct wh__ojob *j = o->qhead;
        if (!j) break; /* stop requested and nothing left */
        o->qhead = j->next;
        if (!o->qhead) o->qtail = NULL;
        pthread_mutex_unlock(&o->mu);
        j->job(j->arg);
        /* wh_loop_post fails only with -ENOMEM; the completion must not be
         * lost (the submitter waits for it), so retry after a short sleep. */
        while (wh_loop_post(j->loop, offload_deliver, j) != 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

int wh__offload_submit(wh__offload *o, wh_loop *loop, void (*job)(void *),
                       void (*done)(wh_loop *, void *), void *arg, unsigned *counter,
                       void (*after)(wh_loop *loop))
{
    if (!o || !loop || !job) return -EINVAL;
    pthread_mutex_lock(&o->mu);
    if (o->stop) {
        pthread_mutex_unlock(&o->mu);
        return -ESHUTDOWN;
    }
    struct wh__ojob *j = o->free_list;
    if (!j) {
        pthread_mutex_unlock(&o->mu);
        return -EAGAIN;
    }
    if (o->started < o->nthreads) {
        /* Lazy start: one more thread per submit until the pool is full, so
         * a burst of jobs gets parallelism and a trickle gets one thread.
         * Pool threads block every signal: they must never receive SIGINT
         * or SIGTERM meant for the server's signalfd. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int rc = pthread_create(&o->threads[o->started], NULL, offload_main, o);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0)
            o->started++;
        else if (o->started == 0) {
            pthread_mutex_unlock(&o->mu);
            return -rc;
        }
    }
    o->free_list = j->next;
    j->next = NULL;
    j->pool = o;
    j->loop = loop;
    j->job = job;
    j->done = done;
    j->after = after;
    j->arg = arg;
    j->counter = counter;
    if (o->qtail)
        o->qtail->next = j;
    else
        o->qhead = j;
    o->qtail = j;
    if (counter) (*counter)++;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

void wh__offload_free(wh__offload *o)
{
    if (!o) return;
    pthread_mutex_lock(&o->mu);
    o->stop = true;
    pthread_cond_broadcast(&o->cv);
    unsigned n = o->started;
    pthread_mutex_unlock(&o->mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(o->threads[i], NULL);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o->jobs);
    free(o->threads);
    free(o);
}
