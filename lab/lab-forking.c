/* lab-forking: a new process for every client (seed 001, part II).
 *
 * The parent only accepts; each connection gets a fork()ed child that serves
 * it (keep-alive included) and exits. Simple and isolated - a crash takes one
 * client down - but fork() per connection is expensive, and at thousands of
 * simultaneous clients thousands of processes fight over the CPUs and memory.
 */
#include "common/lab.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* SIGCHLD: collect every child that has exited, or it stays a zombie
 * (wait(2)); several exits may be merged into one signal, hence the loop. */
static void reap(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

int main(int argc, char **argv)
{
    lab_cfg cfg;
    lab_cfg_parse(&cfg, "lab-forking", 0, true, argc, argv);
    lab_on_stop_signal();
    struct sigaction sa = {.sa_handler = reap, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    int lfd = lab_listen(&cfg, false);
    pid_t parent = getpid();

    while (!lab_stop) {
        int fd = lab_accept(lfd, false);
        if (fd < 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            /* The child: dies with the parent (prctl(2) PR_SET_PDEATHSIG), has
             * its own Redis connection, serves this one client and exits. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) _exit(0);
            close(lfd);
            lab_redis *redis = lab_redis_new(&cfg);
            lab_serve_blocking(fd, &cfg, redis);
            lab_redis_free(redis);
            exit(0);
        }
        close(fd); /* the child has its own copy of the socket */
    }
    /* Stop: the children get SIGTERM from the kernel as we exit. */
    close(lfd);
    return 0;
}
