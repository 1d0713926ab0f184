/* --user USER[:GROUP] and --pid-file.
 *
 * Order at startup (main.c): resolve the account, bind every listening
 * socket (ports below 1024 need root), create the pid file, drop, and only
 * then start the worker threads, so no request is ever served as root.
 * The drop is initgroups (USER's supplementary groups, or none with an
 * explicit GROUP), setgid, setuid. glibc applies set*id to every thread of
 * the process (the log writer already runs); we do not take that on trust:
 * every thread's Uid/Gid lines and CapEff/CapPrm in /proc/self/task/N/status
 * are read back, once after the drop and again after the servers started,
 * and anything left (a root id, a capability) is fatal. setuid from root to
 * another user clears the permitted and effective capability sets
 * (capabilities(7)), and there is no way back (setuid(0) is checked to
 * fail).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps/wharfd/ops.h"
#include "apps/wharfd/wharfd.h"

static struct {
    bool want;
    uid_t uid;
    gid_t gid;
    bool explicit_group;
    char user[256];
    bool pid_written;
} P;

int wharfd_priv_prepare(const char *spec)
{
    if (!spec) return 0;
    char user[256], *group = NULL;
    snprintf(user, sizeof user, "%s", spec);
    char *colon = strchr(user, ':');
    if (colon) {
        *colon = '\0';
        group = colon + 1;
    }
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        fprintf(stderr, "wharfd: --user: no user '%s'\n", user);
        return -1;
    }
    P.uid = pw->pw_uid;
    P.gid = pw->pw_gid;
    snprintf(P.user, sizeof P.user, "%s", user);
    if (group && *group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            fprintf(stderr, "wharfd: --user: no group '%s'\n", group);
            return -1;
        }
        P.gid = gr->gr_gid;
        P.explicit_group = true;
    }
    if (P.uid == 0) {
        fprintf(stderr, "wharfd: --user %s is root: nothing would be dropped\n", user);
        return -1;
    }
    P.want = true;
    return 0;
}

/* Checks every thread; prints the first problem. */
static int verify(uid_t uid, gid_t gid)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        fprintf(stderr, "wharfd: --user: cannot read /proc/self/task: %s\n", strerror(errno));
        return -1;
    }
    struct dirent *e;
    int bad = 0, seen = 0;
    while ((e = readdir(d)) && !bad) {
        if (e->d_name[0] == '.') continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue; /* a thread that just left */
        seen++;
        while (fgets(line, sizeof line, f) && !bad) {
            unsigned long a, b, c, dd;
            unsigned long long cap;
            if (sscanf(line, "Uid: %lu %lu %lu %lu", &a, &b, &c, &dd) == 4)
                bad = a != uid || b != uid || c != uid || dd != uid;
            else if (sscanf(line, "Gid: %lu %lu %lu %lu", &a, &b, &c, &dd) == 4)
                bad = a != gid || b != gid || c != gid || dd != gid;
            else if (sscanf(line, "CapEff: %llx", &cap) == 1 ||
                     sscanf(line, "CapPrm: %llx", &cap) == 1)
                bad = cap != 0;
            if (bad) {
                size_t l = strlen(line);
                if (l && line[l - 1] == '\n') line[l - 1] = '\0';
                fprintf(stderr, "wharfd: --user: thread %s still has '%s'\n", e->d_name, line);
                wharfd_log(WHARFD_LOG_ERROR, "--user: thread %s still has '%s'", e->d_name, line);
            }
        }
        fclose(f);
    }
    closedir(d);
    if (!bad && seen == 0) {
        fprintf(stderr, "wharfd: --user: no thread found in /proc/self/task\n");
        return -1;
    }
    return bad ? -1 : 0;
}

int wharfd_priv_drop(void)
{
    if (!P.want) {
        if (geteuid() == 0)
            wharfd_log(WHARFD_LOG_WARN,
                       "running as root without --user: a flaw in wharfd would give root; give "
                       "--user USER (see SECURITY.md)");
        return 0;
    }
    if (geteuid() != 0) {
        /* An upgrade of a process that already dropped, or a start as that
         * user: nothing to drop, but still check. */
        if (geteuid() != P.uid) {
            fprintf(stderr, "wharfd: --user %s: running as uid %u, cannot switch without root\n",
                    P.user, (unsigned)geteuid());
            return -1;
        }
        return verify(P.uid, getgid());
    }
    int rc = P.explicit_group ? setgroups(0, NULL) : initgroups(P.user, P.gid);
    if (rc != 0 || setgid(P.gid) != 0 || setuid(P.uid) != 0) {
        fprintf(stderr, "wharfd: --user %s: dropping privileges failed: %s\n", P.user,
                strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        fprintf(stderr, "wharfd: --user %s: could become root again; refusing to run\n", P.user);
        return -1;
    }
    if (verify(P.uid, P.gid) != 0) return -1;
    wharfd_log(WHARFD_LOG_INFO, "running as user %s (uid %u, gid %u)", P.user, (unsigned)P.uid,
               (unsigned)P.gid);
    return 0;
}

int wharfd_priv_verify(void)
{
    if (!P.want) return 0;
    return verify(P.uid, getgid());
}

int wharfd_pidfile_write(const char *path)
{
    if (!path) return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        fprintf(stderr, "wharfd: --pid-file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    /* Ours after the drop, so that the process an upgrade starts (running
     * as that user) can write its own pid into it. */
    if (P.want && geteuid() == 0 && fchown(fd, P.uid, P.gid) != 0) {
        fprintf(stderr, "wharfd: --pid-file '%s': chown: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    ssize_t w = write(fd, buf, (size_t)n);
    close(fd);
    if (w != n) {
        fprintf(stderr, "wharfd: --pid-file '%s': write failed\n", path);
        return -1;
    }
    P.pid_written = true;
    return 0;
}

void wharfd_pidfile_remove(const char *path)
{
    if (!path || !P.pid_written) return;
    /* Only if it still names us: after an upgrade it is the new process's. */
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0 && strtol(buf, NULL, 10) == (long)getpid() && unlink(path) != 0) {
        /* No write access to the directory any more (/run as a dropped
         * user): leave it empty rather than naming a dead process. */
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd >= 0) close(fd);
    }
}
