/* lab-preforked: a fixed pool of worker processes (seed 001, part III).
 *
 * The parent forks --workers children up front; each blocks in accept() on
 * the shared listening socket and serves one client at a time. Linux wakes
 * exactly one blocked accept() per connection (the accept wait queue is
 * exclusive), so no lock is needed around it. No fork per connection - but
 * at most N clients are served at once: with keep-alive, client N+1 waits
 * in the accept queue until one of the first N leaves (or idles 5 s).
 */
#include "common/lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(int lfd, const lab_cfg *cfg, pid_t parent, const sigset_t *parent_mask)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* A worker just dies on SIGINT/SIGTERM (default action): a handler could
     * not interrupt an accept() it is about to enter, and the parent waits. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_SETMASK, parent_mask, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the parent */
    if (getppid() != parent) _exit(0);
    lab_redis *redis = lab_redis_new(cfg); /* one Redis connection per worker */
    while (!lab_stop) {
        int fd = lab_accept(lfd, false);
        if (fd >= 0) lab_serve_blocking(fd, cfg, redis);
    }
    lab_redis_free(redis);
    exit(0);
}

int main(int argc, char **argv)
{
    lab_cfg cfg;
    lab_cfg_parse(&cfg, "lab-preforked", 8, true, argc, argv);
    lab_on_stop_signal();
    int lfd = lab_listen(&cfg, false);
    pid_t parent = getpid();
    /* The parent waits for signals with sigwait(): SIGINT/SIGTERM (stop) and
     * SIGCHLD (a worker died). Blocking them first means none can arrive
     * between a check and the wait and be missed. */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGCHLD);
    sigprocmask(SIG_BLOCK, &sigs, &old);
    pid_t *pids = calloc((size_t)cfg.workers, sizeof *pids);
    for (int i = 0; i < cfg.workers; i++)
        pids[i] = spawn(lfd, &cfg, parent, &old);

    for (;;) {
        int sig;
        sigwait(&sigs, &sig);
        if (sig != SIGCHLD) break;
        /* A worker died (crash, OOM kill): reap it and start a replacement. */
        pid_t dead;
        while ((dead = waitpid(-1, NULL, WNOHANG)) > 0)
            for (int i = 0; i < cfg.workers; i++)
                if (pids[i] == dead) {
                    fprintf(stderr, "lab-preforked: worker %d exited, restarting it\n", (int)dead);
                    pids[i] = spawn(lfd, &cfg, parent, &old);
                }
    }
    /* Stop: tell every worker, then wait for all of them (no zombies left). */
    for (int i = 0; i < cfg.workers; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    while (wait(NULL) > 0)
        ;
    free(pids);
    close(lfd);
    return 0;
}
