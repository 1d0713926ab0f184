/* reverse: seed 002's two-thread server, done properly. An I/O thread (a
 * wharf loop) reads lines; a worker thread reverses them; two lock-free SPSC
 * rings (wh_ring) join the threads, one each way.
 *
 * Protocol (line-based, so message boundaries do not depend on how TCP
 * splits the bytes - the fix for seed 002's "exit split across two reads"):
 *  - every line (terminated by "\n"; a "\r" before it is dropped) comes back
 *    reversed, followed by "\n", in the order the lines were sent;
 *  - the line "exit" is answered with "bye\n", then the whole server stops
 *    gracefully (as in seed 002, where "exit" stops the server);
 *  - lines may be up to 16 MiB long.
 * Replies go to the connection's write queue, which writes them completely
 * even when the kernel takes them piecemeal (a partial write waits for
 * EPOLLOUT and continues; seed 002's worker ignored partial writes).
 *
 *   reverse [PORT | HOST:PORT]      (default 0.0.0.0:9090; prints "tcp ADDR")
 */
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/ring.h"
#include "wharf/server.h"

/* One connection's state, on the I/O thread only. Freed when the conn is
 * closed and none of its jobs is in flight. */
struct client {
    wh_conn *c; /* NULL once closed */
    unsigned in_flight;
};

/* A line travelling I/O thread -> worker (as read) and back (reversed). */
struct job {
    struct job *next; /* overflow list (I/O thread) */
    struct client *cl;
    bool exit;
    size_t len;
    char data[];
};

struct app {
    wh_server *srv;
    wh_loop *io_loop;
    wh_ring *to_worker, *to_io;
    sem_t work;                            /* counts jobs in to_worker; the worker sleeps on it */
    atomic_bool posted;                    /* a drain of to_io is already posted to the I/O loop */
    struct job *overflow, **overflow_tail; /* waiting for room in to_worker */
};

static void client_put(struct client *cl)
{
    if (!cl->c && cl->in_flight == 0) free(cl);
}

static void io_results(wh_loop *loop, void *arg);

/* ---- worker thread ------------------------------------------------------ */

static void *worker_main(void *arg)
{
    struct app *a = arg;
    for (;;) {
        while (sem_wait(&a->work) != 0)
            ;
        struct job *j = wh_ring_pop(a->to_worker);
        if (!j) /* posted without a job: quit */
            break;
        for (size_t i = 0, k = j->len; i < k / 2; i++) {
            char t = j->data[i];
            j->data[i] = j->data[k - 1 - i];
            j->data[k - 1 - i] = t;
        }
        while (!wh_ring_push(a->to_io, j)) /* the I/O thread drains it promptly */
            sched_yield();
        /* One wake-up per burst: the flag is cleared by the I/O thread
         * before it drains, so either it sees this job or we post again. */
        if (!atomic_exchange(&a->posted, true)) wh_loop_post(a->io_loop, io_results, a);
    }
    return NULL;
}

/* ---- I/O thread --------------------------------------------------------- */

static void flush_overflow(struct app *a)
{
    while (a->overflow && wh_ring_push(a->to_worker, a->overflow)) {
        a->overflow = a->overflow->next;
        sem_post(&a->work);
    }
    if (!a->overflow) a->overflow_tail = &a->overflow;
}

static void submit(struct app *a, struct job *j)
{
    if (j->cl->in_flight++ == 0)
        wh_conn_set_busy(j->cl->c, true); /* a graceful stop waits for the reply */
    j->next = NULL;
    *a->overflow_tail = j; /* FIFO: behind anything already waiting */
    a->overflow_tail = &j->next;
    flush_overflow(a);
}

static void io_results(wh_loop *loop, void *arg)
{
    struct app *a = arg;
    atomic_store(&a->posted, false);
    struct job *j;
    while ((j = wh_ring_pop(a->to_io)) != NULL) {
        struct client *cl = j->cl;
        cl->in_flight--;
        if (cl->c) {
            if (j->exit) {
                wh_conn_write(cl->c, "bye\n", 4);
                wh_conn_close(cl->c); /* after "bye" is flushed */
                wh_server_stop(a->srv, true);
            } else {
                wh_conn_write(cl->c, j->data, j->len);
                wh_conn_write(cl->c, "\n", 1);
            }
            if (cl->in_flight == 0) wh_conn_set_busy(cl->c, false);
        }
        free(j);
        client_put(cl);
    }
    flush_overflow(a);
}

static void on_open(wh_conn *c, void *ud)
{
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        wh_conn_abort(c);
        return;
    }
    cl->c = c;
    wh_conn_set_data(c, cl);
}

static size_t on_read(wh_conn *c, char *data, size_t len, void *ud)
{
    struct app *a = ud;
    struct client *cl = wh_conn_data(c);
    size_t used = 0;
    char *nl;
    /* Whole lines only: a partial line stays in the connection's buffer and
     * is offered again with the next bytes, wherever TCP split it. */
    while (cl && (nl = memchr(data + used, '\n', len - used)) != NULL) {
        size_t n = (size_t)(nl - (data + used));
        size_t end = n && data[used + n - 1] == '\r' ? n - 1 : n;
        struct job *j = malloc(sizeof(*j) + end);
        if (!j) {
            wh_conn_abort(c);
            return len;
        }
        j->cl = cl;
        j->len = end;
        memcpy(j->data, data + used, end);
        j->exit = end == 4 && !memcmp(j->data, "exit", 4);
        submit(a, j);
        used += n + 1;
    }
    return used;
}

static void on_close(wh_conn *c, int err, void *ud)
{
    struct client *cl = wh_conn_data(c);
    if (cl) {
        cl->c = NULL;
        client_put(cl);
    }
}

static void on_thread(wh_loop *loop, unsigned idx, void *ud)
{
    ((struct app *)ud)->io_loop = loop;
}

int main(int argc, char **argv)
{
    char addr[128];
    const char *arg = argc > 1 ? argv[1] : "0.0.0.0:9090";
    snprintf(addr, sizeof(addr), strchr(arg, ':') ? "%s" : "0.0.0.0:%s", arg);

    static struct app a;
    a.overflow_tail = &a.overflow;
    sem_init(&a.work, 0, 0);
    if (wh_ring_new(&a.to_worker, 1024) < 0 || wh_ring_new(&a.to_io, 1024) < 0) return 1;

    wh_server_opts o;
    wh_server_opts_init(&o);
    o.threads = 1; /* the I/O thread */
    o.net.read_buf_max = 16u << 20;
    wh_conn_cbs cbs = {.on_open = on_open, .on_read = on_read, .on_close = on_close};
    int rc = wh_server_new(&a.srv, &o, &cbs, &a);
    if (rc == 0) rc = wh_server_listen(a.srv, addr);
    if (rc < 0) {
        fprintf(stderr, "reverse: %s: %s\n", addr, wh_strerror(rc));
        return 1;
    }
    wh_server_on_thread(a.srv, on_thread, NULL, &a);
    wh_sockaddr la;
    char buf[128];
    if (wh_server_local_addr(a.srv, 0, &la) == 0 && wh_addr_format(&la, buf, sizeof(buf)) > 0)
        printf("tcp %s\n", buf);
    fflush(stdout);

    /* The worker must not take SIGINT/SIGTERM (wh_server_run's signalfd does). */
    wh_signal_block_defaults();
    pthread_t worker;
    pthread_create(&worker, NULL, worker_main, &a);
    rc = wh_server_run(a.srv);
    sem_post(&a.work); /* an empty ring + a post = quit */
    pthread_join(worker, NULL);
    /* Jobs of connections that closed while they were in flight. */
    struct job *j;
    while ((j = a.overflow) != NULL) {
        a.overflow = j->next;
        j->cl->in_flight--;
        client_put(j->cl);
        free(j);
    }
    while ((j = wh_ring_pop(a.to_worker)) || (j = wh_ring_pop(a.to_io))) {
        j->cl->in_flight--;
        client_put(j->cl);
        free(j);
    }
    wh_server_free(a.srv);
    wh_ring_free(a.to_worker);
    wh_ring_free(a.to_io);
    sem_destroy(&a.work);
    if (rc < 0) fprintf(stderr, "reverse: %s\n", wh_strerror(rc));
    return rc < 0 ? 1 : 0;
}
