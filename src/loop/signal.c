/* Signals as loop events: one signalfd per loop (signalfd(2)), created on
 * first use; its mask grows as signals get watchers and shrinks when the last
 * watcher of a signal goes. A signal reaches a signalfd only while it is
 * blocked in the thread that would otherwise take it, so wh_signal_new blocks
 * it in the calling thread; other threads must block it too
 * (wh_signal_block_defaults before creating them), or the kernel may deliver
 * a process-directed signal to one of them (signal(7)). */
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "loop/loop_priv.h"

static void sig_sweep(wh_loop *loop);

static void sig_read(wh_io *io, unsigned events, void *ud)
{
    wh_loop *loop = ud;
    struct signalfd_siginfo si[16];
    loop->sig_dispatching++;
    for (;;) {
        ssize_t n = read(loop->sigfd, si, sizeof(si));
        if (n <= 0) break; /* EAGAIN: all read (the fd is non-blocking) */
        size_t cnt = (size_t)n / sizeof(si[0]);
        for (size_t i = 0; i < cnt; i++) {
            int signo = (int)si[i].ssi_signo;
            if (signo <= 0 || signo >= _NSIG) continue;
            /* Watchers freed by a callback are only marked dead until the
             * sweep below, so this walk never follows a freed pointer. */
            for (struct wh_signal *s = loop->sigs[signo]; s; s = s->next)
                if (!s->dead) s->cb(s, signo, s->ud);
        }
        if ((size_t)n < sizeof(si)) break;
    }
    loop->sig_dispatching--;
    if (!loop->sig_dispatching && loop->sig_dead) sig_sweep(loop);
}

static int sig_update_fd(wh_loop *loop)
{
    int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (loop->sigfd < 0) {
        loop->sigfd = fd;
        wh__io_init(loop, &loop->sigio, fd, sig_read, loop);
        int r = wh_io_set(&loop->sigio, WH_IO_READ);
        if (r < 0) {
            close(fd);
            loop->sigfd = -1;
            return r;
        }
    }
    return 0;
}

int wh_signal_new(wh_loop *loop, int signo, wh_signal_cb cb, void *ud, wh_signal **out)
{
    if (!loop || !cb || !out || signo <= 0 || signo >= _NSIG || signo == SIGKILL ||
        signo == SIGSTOP)
        return -EINVAL;
    *out = NULL;
    wh_signal *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    int r = pthread_sigmask(SIG_BLOCK, &one, NULL);
    if (r) {
        free(s);
        return -r;
    }
    if (!sigismember(&loop->sigmask, signo)) {
        sigaddset(&loop->sigmask, signo);
        r = sig_update_fd(loop);
        if (r < 0) {
            sigdelset(&loop->sigmask, signo);
            free(s);
            return r;
        }
    }
    s->loop = loop;
    s->cb = cb;
    s->ud = ud;
    s->signo = signo;
    s->next = loop->sigs[signo];
    loop->sigs[signo] = s;
    *out = s;
    return 0;
}

/* Unlinks dead watchers; drops signals left without watchers from the mask
 * so they stay pending (blocked) instead of being read and lost. */
static void sig_sweep(wh_loop *loop)
{
    loop->sig_dead = false;
    bool changed = false;
    for (int signo = 1; signo < _NSIG; signo++) {
        struct wh_signal **pp = &loop->sigs[signo];
        bool had = *pp != NULL;
        while (*pp) {
            struct wh_signal *s = *pp;
            if (s->dead) {
                *pp = s->next;
                free(s);
            } else {
                pp = &s->next;
            }
        }
        if (had && !loop->sigs[signo] && sigismember(&loop->sigmask, signo)) {
            sigdelset(&loop->sigmask, signo);
            changed = true;
        }
    }
    if (changed && loop->sigfd >= 0) (void)sig_update_fd(loop);
}

void wh_signal_free(wh_signal *s)
{
    if (!s) return;
    wh_loop *loop = s->loop;
    s->dead = true;
    loop->sig_dead = true;
    if (!loop->sig_dispatching) sig_sweep(loop);
}

void wh__signals_free_all(wh_loop *loop)
{
    for (int signo = 1; signo < _NSIG; signo++) {
        struct wh_signal *s = loop->sigs[signo];
        while (s) {
            struct wh_signal *n = s->next;
            free(s);
            s = n;
        }
        loop->sigs[signo] = NULL;
    }
    if (loop->sigfd >= 0) {
        wh__io_deinit(&loop->sigio);
        close(loop->sigfd);
        loop->sigfd = -1;
    }
}

int wh_signal_block_defaults(void)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&set, sigs[i]);
    int r = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (r) return -r;
    /* A write to a socket whose peer is gone would kill the process with
     * SIGPIPE (send(2)); ignored, the write fails with EPIPE instead. */
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) < 0) return -errno;
    return 0;
}
