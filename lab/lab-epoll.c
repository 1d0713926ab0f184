/* lab-epoll: one thread, many non-blocking connections, epoll(7) (seed 001, part VII).
 *
 * The same state machine as lab-poll, but the kernel keeps the interest list
 * (epoll_ctl once per change, not a whole array per call) and epoll_wait()
 * returns only the ready sockets: the cost of a wake-up is O(ready), not
 * O(connections). That is why it stays flat at 10,000 idle-ish clients, and
 * why wharf's loop (src/loop) is built on it.
 */
#include "common/lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    lab_cfg cfg;
    lab_cfg_parse(&cfg, "lab-epoll", 0, true, argc, argv);
    lab_on_stop_signal();
    int lfd = lab_listen(&cfg, true);
    lab_redis *redis = lab_redis_new(&cfg);

    /* Connections by fd: fds are small integers below RLIMIT_NOFILE. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    size_t maxfd = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (size_t)rl.rlim_cur;
    lab_conn **conns = calloc(maxfd, sizeof *conns);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (!conns || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("epoll");
        return 1;
    }
    sigset_t stop, during; /* see lab-poll.c: the stop signal only lands in epoll_pwait */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &during);

    struct epoll_event ready[256];
    while (!lab_stop) {
        int nr = epoll_pwait(ep, ready, 256, -1, &during);
        for (int i = 0; i < nr; i++) {
            int fd = ready[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = lab_accept(lfd, true)) >= 0) {
                    lab_conn *c = (size_t)cfd < maxfd ? lab_conn_new(cfd) : NULL;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) {
                        c ? lab_conn_free(c) : (void)close(cfd);
                        continue;
                    }
                    conns[cfd] = c;
                }
                continue;
            }
            lab_conn *c = conns[fd];
            enum lab_want before = lab_conn_waiting(c);
            enum lab_want w = lab_conn_on_io(c, &cfg, redis);
            if (w == LAB_WANT_CLOSE) {
                conns[fd] = NULL;
                lab_conn_free(c); /* close() also removes it from the epoll set */
            } else if (w != before) {
                /* Only tell the kernel when the interest changes (one syscall). */
                struct epoll_event cev = {.events = w == LAB_WANT_WRITE ? EPOLLOUT : EPOLLIN,
                                          .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
            }
        }
    }
    for (size_t fd = 0; fd < maxfd; fd++)
        if (conns[fd]) lab_conn_free(conns[fd]);
    free(conns);
    close(ep);
    lab_redis_free(redis);
    close(lfd);
    return 0;
}
