/* lab-poll: one thread, many non-blocking connections, poll(2) (seed 001, part VI).
 *
 * One array of struct pollfd - the listening socket first, then one entry per
 * client - is handed to the kernel on every call; the kernel checks every
 * entry and we scan every entry for revents. Each connection is a small state
 * machine (lab_conn) that never blocks. Cost per wake-up: O(all connections),
 * even when only one is ready - that is what epoll fixes.
 */
#include "common/lab.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    lab_cfg cfg;
    lab_cfg_parse(&cfg, "lab-poll", 0, true, argc, argv);
    lab_on_stop_signal();
    int lfd = lab_listen(&cfg, true);
    lab_redis *redis = lab_redis_new(&cfg); /* one thread, one Redis connection */

    /* pfds[i] and conns[i] go together; index 0 is the listener. */
    size_t n = 1, cap = 64;
    struct pollfd *pfds = malloc(cap * sizeof *pfds);
    lab_conn **conns = malloc(cap * sizeof *conns);
    pfds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    conns[0] = NULL;

    /* SIGINT/SIGTERM stay blocked except inside ppoll(), which unblocks them
     * atomically: a stop signal can never slip in between the lab_stop check
     * and the wait (ppoll(2)). */
    sigset_t stop, during;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &during);

    while (!lab_stop) {
        if (ppoll(pfds, n, NULL, &during) < 0) continue; /* EINTR */
        for (size_t i = 1; i < n;) {
            if (!pfds[i].revents) {
                i++;
                continue;
            }
            enum lab_want w = lab_conn_on_io(conns[i], &cfg, redis);
            if (w == LAB_WANT_CLOSE) {
                /* Close, and move the last entry into the hole (then look at
                 * index i again: the moved entry may be ready too). */
                lab_conn_free(conns[i]);
                n--;
                pfds[i] = pfds[n];
                conns[i] = conns[n];
                continue;
            }
            pfds[i].events = w == LAB_WANT_WRITE ? POLLOUT : POLLIN;
            i++;
        }
        if (pfds[0].revents & POLLIN) {
            /* Accept every waiting client (the listener is non-blocking). */
            int fd;
            while ((fd = lab_accept(lfd, true)) >= 0) {
                if (n == cap) {
                    cap *= 2;
                    pfds = realloc(pfds, cap * sizeof *pfds);
                    conns = realloc(conns, cap * sizeof *conns);
                    if (!pfds || !conns) {
                        perror("realloc");
                        exit(1);
                    }
                }
                lab_conn *c = lab_conn_new(fd);
                if (!c) continue;
                pfds[n] = (struct pollfd){.fd = fd, .events = POLLIN};
                conns[n++] = c;
            }
        }
    }
    for (size_t i = 1; i < n; i++)
        lab_conn_free(conns[i]);
    free(pfds);
    free(conns);
    lab_redis_free(redis);
    close(lfd);
    return 0;
}
