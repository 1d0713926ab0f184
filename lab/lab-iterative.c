/* lab-iterative: one client after the other, in one process (seed 001, part I).
 *
 * accept, serve, close, repeat. While one client is being served the others
 * wait in the kernel's accept queue: no concurrency at all. For that reason
 * this model closes the connection after every response ("Connection:
 * close"): a keep-alive client would hold the only server hostage, and every
 * other client would wait until it left.
 */
#include "common/lab.h"

#include <unistd.h>

int main(int argc, char **argv)
{
    lab_cfg cfg;
    lab_cfg_parse(&cfg, "lab-iterative", 0, false, argc, argv);
    lab_on_stop_signal();
    int lfd = lab_listen(&cfg, false);
    lab_redis *redis = lab_redis_new(&cfg); /* one Redis connection, reused */

    while (!lab_stop) {
        int fd = lab_accept(lfd, false);
        if (fd < 0) continue; /* EINTR (a stop signal) or a client that already gave up */
        lab_serve_blocking(fd, &cfg, redis);
    }
    lab_redis_free(redis);
    close(lfd);
    return 0;
}
