/* lab-threaded: a new thread for every client (seed 001, part IV).
 *
 * Like lab-forking, with pthread_create() instead of fork(): cheaper to
 * start, and all threads share one address space. Each thread has its own
 * Redis connection (a redisContext is not thread-safe). Thousands of clients
 * still mean thousands of threads, each with its own stack and scheduling cost.
 */
#include "common/lab.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

static const lab_cfg *cfg;

static void *client_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    lab_redis *redis = lab_redis_new(cfg);
    lab_serve_blocking(fd, cfg, redis);
    lab_redis_free(redis);
    return NULL;
}

int main(int argc, char **argv)
{
    static lab_cfg c;
    lab_cfg_parse(&c, "lab-threaded", 0, true, argc, argv);
    cfg = &c;
    lab_on_stop_signal();
    int lfd = lab_listen(cfg, false);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED); /* nobody joins them */
    pthread_attr_setstacksize(&attr, 256 * 1024); /* 8 MiB by default: too much x 10,000 */
    /* Threads start with the creator's signal mask: block SIGINT/SIGTERM in
     * them so the stop signal interrupts this thread's accept(). */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);

    while (!lab_stop) {
        int fd = lab_accept(lfd, false);
        if (fd < 0) continue;
        pthread_t t;
        pthread_sigmask(SIG_BLOCK, &stop, &old);
        int err = pthread_create(&t, &attr, client_thread, (void *)(intptr_t)fd);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err) close(fd); /* out of threads (EAGAIN): drop this client */
    }
    /* Stop: no new clients; exiting ends the threads still serving. */
    pthread_attr_destroy(&attr);
    close(lfd);
    return 0;
}
