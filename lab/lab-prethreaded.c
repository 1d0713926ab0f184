/* lab-prethreaded: a fixed pool of threads (seed 001, part V).
 *
 * --workers threads are created up front; each loops on accept() on the
 * shared listening socket and serves one client at a time with its own Redis
 * connection. (ZeroHTTPd puts a mutex around accept(); Linux needs none: one
 * blocked accept() is woken per connection.) Cheap - but like lab-preforked,
 * at most N keep-alive clients are served at once.
 */
#include "common/lab.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static const lab_cfg *cfg;
static int lfd;

static void *worker(void *arg)
{
    (void)arg;
    lab_redis *redis = lab_redis_new(cfg);
    while (!lab_stop) {
        int fd = lab_accept(lfd, false);
        if (fd >= 0) lab_serve_blocking(fd, cfg, redis);
    }
    lab_redis_free(redis);
    return NULL;
}

int main(int argc, char **argv)
{
    static lab_cfg c;
    lab_cfg_parse(&c, "lab-prethreaded", 16, true, argc, argv);
    cfg = &c;
    lab_on_stop_signal();
    lfd = lab_listen(cfg, false);

    /* Every thread blocks SIGINT/SIGTERM; the main thread waits for them with
     * sigwait(), so no worker is interrupted halfway through a response. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    pthread_t *threads = calloc((size_t)cfg->workers, sizeof *threads);
    for (int i = 0; i < cfg->workers; i++)
        pthread_create(&threads[i], NULL, worker, NULL);

    int sig;
    sigwait(&stop, &sig);
    /* Stop: shutdown() wakes the workers blocked in accept() (it fails with
     * EINVAL), and lab_stop ends their loops. Workers in the middle of a
     * connection are not waited for: exit() ends them. */
    lab_stop = 1;
    shutdown(lfd, SHUT_RDWR);
    close(lfd);
    free(threads);
    return 0;
}
