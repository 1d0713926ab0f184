/* systemd's readiness protocol, spoken directly: one datagram of
 * "KEY=VALUE\n" lines to the Unix socket named by $NOTIFY_SOCKET (a path,
 * or '@' for the abstract namespace), see sd_notify(3). wharfd needs no
 * more than that (no descriptor passing, no watchdog), so it does not link
 * libsystemd: one dependency less for a dozen lines, and nothing changes
 * outside systemd, where the variable is absent. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "apps/wharfd/ops.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len;

void wharfd_sd_init(void)
{
    const char *p = getenv("NOTIFY_SOCKET");
    if (!p || !*p) return;
    size_t n = strlen(p);
    if ((p[0] != '/' && p[0] != '@') || n >= sizeof notify_addr.sun_path) return;
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, p, n);
    if (p[0] == '@') notify_addr.sun_path[0] = '\0';
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

void wharfd_sd_notify(const char *fmt, ...)
{
    if (!notify_len) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof msg) return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    /* Best effort, like sd_notify: systemd not listening is not our error. */
    (void)sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (const struct sockaddr *)&notify_addr,
                 notify_len);
    close(fd);
}
