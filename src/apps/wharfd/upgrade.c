/* SIGUSR2: upgrade in place, with no connection refused or reset.
 *
 *  1. fork; the child puts every listening socket at fds 3.. (the order of
 *     $LISTEN_FDNAMES), the write end of a pipe after them, and execs the
 *     binary this process was started from (its path now: a package
 *     upgrade has replaced the file) with the same arguments;
 *  2. the new process takes the sockets (listen.c), starts its threads,
 *     drops privileges and writes "READY" into the pipe;
 *  3. we read it, tell systemd the new MAINPID, and drain (signals.c): our
 *     copies of the sockets close once their queues are empty, and since
 *     the new process holds the same sockets nothing queued is lost and no
 *     connection is refused in between;
 *  4. if instead the pipe closes without READY (bad binary, bad
 *     configuration: the child exits) or nothing comes within 30 s (child
 *     killed), we log why and keep serving.
 * Between fork and exec the child only calls async-signal-safe functions
 * (the parent has threads): everything it needs is prepared before fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/wharfd/ops.h"
#include "apps/wharfd/wharfd.h"

#define UPGRADE_TIMEOUT_MS 30000
#define MAX_FDS            256

extern char **environ;

static struct {
    char exe[PATH_MAX];
    char **argv;
    pid_t child;
    int pipe_rd;
    wh_io *io;
    wh_timer *timer;
    wharfd_app *app;
    char buf[16];
    size_t got;
    bool done;
} U = {.pipe_rd = -1};

void wharfd_upgrade_init(char **argv)
{
    U.argv = argv;
    ssize_t n = readlink("/proc/self/exe", U.exe, sizeof U.exe - 1);
    if (n > 0) U.exe[n] = '\0';
    /* The path the file had at start; after an upgrade of the package the
     * kernel says "/usr/bin/wharfd (deleted)", and the new file is at the
     * path without the suffix. */
    size_t len = strlen(U.exe);
    static const char deleted[] = " (deleted)";
    if (len > sizeof deleted && strcmp(U.exe + len - (sizeof deleted - 1), deleted) == 0)
        U.exe[len - (sizeof deleted - 1)] = '\0';
    if (n <= 0) snprintf(U.exe, sizeof U.exe, "%s", argv[0]);
}

bool wharfd_upgrade_done(void)
{
    return U.done;
}

static void finish(void)
{
    if (U.io) wh_io_free(U.io);
    if (U.timer) wh_timer_free(U.timer);
    U.io = NULL;
    U.timer = NULL;
    if (U.pipe_rd >= 0) close(U.pipe_rd);
    U.pipe_rd = -1;
}

static void failed(const char *why)
{
    pid_t pid = U.child;
    int st = 0;
    char how[128] = "";
    /* The child either exited (the pipe closed) or is killed now. */
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    if (WIFEXITED(st))
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(st));
    wharfd_log(WHARFD_LOG_ERROR,
               "upgrade failed: new process %d %s (%s; its own messages are above); still serving",
               (int)pid, how, why);
    wharfd_sd_notify("READY=1\nSTATUS=upgrade failed; still serving");
    U.child = 0;
    finish();
}

static void on_pipe(wh_io *io, unsigned events, void *ud)
{
    (void)io;
    (void)events;
    (void)ud;
    ssize_t n = read(U.pipe_rd, U.buf + U.got, sizeof U.buf - 1 - U.got);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n > 0) {
        U.got += (size_t)n;
        U.buf[U.got] = '\0';
        if (!strstr(U.buf, "READY")) return;
        pid_t pid = U.child;
        U.done = true;
        finish();
        wharfd_log(WHARFD_LOG_INFO, "upgrade: new process %d is serving; draining this one",
                   (int)pid);
        wharfd_sd_notify("MAINPID=%d\nREADY=1\nSTATUS=upgraded", (int)pid);
        wharfd_drain_start(U.app, true);
        return;
    }
    failed(n == 0 ? "it stopped before saying it was ready" : strerror(errno));
}

static void on_timeout(wh_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    failed("not ready within 30 s");
}

/* Async-signal-safe decimal. */
static void put_uint(char *p, unsigned v)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    *p = '\0';
}

void wharfd_upgrade_start(wharfd_app *app, wh_loop *loop)
{
    if (U.child || U.done) {
        wharfd_log(WHARFD_LOG_WARN, "SIGUSR2 ignored: an upgrade is already under way");
        return;
    }
    static int fds[MAX_FDS];
    static char names[MAX_FDS * 330];
    int n = wharfd_listen_handover(app, fds, MAX_FDS, names, sizeof names);
    if (n < 0) {
        wharfd_log(WHARFD_LOG_ERROR, "upgrade: too many listening sockets to hand over");
        return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        wharfd_log(WHARFD_LOG_ERROR, "upgrade: pipe: %s", strerror(errno));
        return;
    }
    /* The environment: ours without stale hand-over variables, plus the
     * sockets' (LISTEN_PID is the child's own pid, written after fork). */
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = calloc(ne + 6, sizeof *envp);
    char *e_fds = malloc(32), *e_names = malloc(strlen(names) + 20), *e_pid = malloc(32),
         *e_up = malloc(48), *e_rd = malloc(32);
    if (!envp || !e_fds || !e_names || !e_pid || !e_up || !e_rd) {
        wharfd_log(WHARFD_LOG_ERROR, "upgrade: out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        const char *v = environ[i];
        if (strncmp(v, "LISTEN_", 7) == 0 || strncmp(v, "WHARFD_UPGRADE=", 15) == 0 ||
            strncmp(v, "WHARFD_READY_FD=", 16) == 0)
            continue;
        envp[k++] = environ[i];
    }
    snprintf(e_fds, 32, "LISTEN_FDS=%d", n);
    snprintf(e_names, strlen(names) + 20, "LISTEN_FDNAMES=%s", names);
    snprintf(e_up, 48, "WHARFD_UPGRADE=%d", (int)getpid());
    snprintf(e_rd, 32, "WHARFD_READY_FD=%d", 3 + n);
    snprintf(e_pid, 32, "LISTEN_PID=");
    envp[k++] = e_fds;
    envp[k++] = e_names;
    envp[k++] = e_up;
    envp[k++] = e_rd;
    envp[k++] = e_pid;
    envp[k] = NULL;
    /* Above every target fd (3 .. 3+n), so placing one never clobbers
     * another that is still to be placed. */
    int high = 3 + n + 1;
    for (int i = 0; i < n; i++)
        if (fds[i] >= high) high = fds[i] + 1;
    if (p[1] >= high) high = p[1] + 1;

    pid_t pid = fork();
    if (pid < 0) {
        wharfd_log(WHARFD_LOG_ERROR, "upgrade: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        int tmp[MAX_FDS + 1];
        for (int i = 0; i < n; i++)
            if ((tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, high)) < 0) _exit(126);
        if ((tmp[n] = fcntl(p[1], F_DUPFD_CLOEXEC, high)) < 0) _exit(126);
        /* dup2 leaves FD_CLOEXEC off on the copy: these survive exec. */
        for (int i = 0; i <= n; i++)
            if (dup2(tmp[i], 3 + i) < 0) _exit(126);
        put_uint(e_pid + 11, (unsigned)getpid());
        execve(U.exe, U.argv, envp);
        _exit(127);
    }
    close(p[1]);
    p[1] = -1;
    U.child = pid;
    U.app = app;
    U.pipe_rd = p[0];
    U.got = 0;
    p[0] = -1;
    fcntl(U.pipe_rd, F_SETFL, O_NONBLOCK);
    if (wh_io_new(loop, U.pipe_rd, on_pipe, NULL, &U.io) < 0 || wh_io_set(U.io, WH_IO_READ) < 0 ||
        wh_timer_new(loop, on_timeout, NULL, &U.timer) < 0) {
        failed("cannot watch its readiness pipe");
        goto out;
    }
    wh_timer_start(U.timer, UPGRADE_TIMEOUT_MS, 0);
    wharfd_sd_notify("RELOADING=1\nSTATUS=upgrading");
    wharfd_log(WHARFD_LOG_INFO, "SIGUSR2: upgrade: started %s as process %d with %d sockets", U.exe,
               (int)pid, n);
out:
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    free(envp);
    free(e_fds);
    free(e_names);
    free(e_pid);
    free(e_up);
    free(e_rd);
}

void wharfd_upgrade_cleanup(void)
{
    finish();
}
