/* Signals as loop events: raise/kill to self, SIGCHLD from a child, several
 * watchers of one signal, free inside the callback. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "test.h"

static int got[_NSIG];
static int last_signo;
static void on_sig(wh_signal *s, int signo, void *ud)
{
    got[signo]++;
    last_signo = signo;
    if (ud) wh_loop_stop(ud);
}

TEST(raise_and_kill_self)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh_signal *s1, *s2;
    CHECK_EQ(wh_signal_new(loop, SIGUSR1, on_sig, loop, &s1), 0);
    CHECK_EQ(wh_signal_new(loop, SIGUSR2, on_sig, loop, &s2), 0);
    CHECK_EQ(wh_signal_new(loop, SIGKILL, on_sig, NULL, &s1), -EINVAL);
    CHECK_EQ(wh_signal_new(loop, 0, on_sig, NULL, &s1), -EINVAL);
    CHECK_EQ(wh_signal_new(loop, SIGUSR1, on_sig, loop, &s1), 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    /* One delivery, heard by both SIGUSR1 watchers (the first handle was
     * overwritten with NULL by the failed calls; wh_loop_free frees both). */
    CHECK_EQ(got[SIGUSR1], 2);
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK_EQ(got[SIGUSR2], 1);
    CHECK_EQ(last_signo, SIGUSR2);
    wh_signal_free(s2);
    wh_loop_free(loop); /* frees the two SIGUSR1 watchers */
}

static int child_seen;
static pid_t child_pid;
static void on_chld(wh_signal *s, int signo, void *ud)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        if (p == child_pid && WIFEXITED(st) && WEXITSTATUS(st) == 7) child_seen++;
    if (child_seen) {
        wh_signal_free(s); /* free inside its own callback */
        wh_loop_stop(ud);
    }
}

TEST(sigchld_from_child)
{
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh_signal *s;
    CHECK_EQ(wh_signal_new(loop, SIGCHLD, on_chld, loop, &s), 0);
    child_pid = fork();
    CHECK(child_pid >= 0);
    if (child_pid == 0) _exit(7);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK_EQ(child_seen, 1);
    wh_loop_free(loop);
}

/* Defaults: the set is blocked and SIGPIPE is ignored. */
TEST(block_defaults)
{
    CHECK_EQ(wh_signal_block_defaults(), 0);
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    CHECK(sigismember(&cur, SIGINT));
    CHECK(sigismember(&cur, SIGTERM));
    CHECK(sigismember(&cur, SIGHUP));
    CHECK(sigismember(&cur, SIGCHLD));
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    CHECK(sa.sa_handler == SIG_IGN);
    /* A blocked SIGTERM reaches a watcher created after it was raised. */
    CHECK_EQ(raise(SIGTERM), 0);
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    wh_signal *s;
    CHECK_EQ(wh_signal_new(loop, SIGTERM, on_sig, loop, &s), 0);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_DEFAULT), 0);
    CHECK_EQ(got[SIGTERM], 1);
    wh_signal_free(s);
    wh_loop_free(loop);
}

WH_TEST_MAIN()
