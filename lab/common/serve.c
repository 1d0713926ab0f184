/* The blocking driver: one connection, start to finish, on the calling
 * process/thread. The five blocking models differ only in WHO calls this. */
#include "lab_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

void lab_serve_blocking(int fd, const lab_cfg *cfg, lab_redis *redis)
{
    /* A blocked recv() holds a whole process or thread: bound how long an
     * idle keep-alive client (or a slow one) may keep it (socket(7) SO_RCVTIMEO). */
    struct timeval tv = {.tv_sec = LAB_IDLE_SECONDS};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char *buf = malloc(LAB_BUF_SIZE);
    size_t len = 0;
    bool continued = false;
    lab_resp r;
    while (buf && !lab_stop) {
        size_t used = lab_respond(buf, len, cfg, redis, &r);
        if (used == 0) {
            if (r.status == 100 && !continued) {
                size_t sent = 0;
                if (lab_resp_write(fd, &r, &sent) != 0) break;
                continued = true;
            }
            ssize_t n = recv(fd, buf + len, LAB_BUF_SIZE - len, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break; /* closed, reset, or idle past the timeout */
            len += (size_t)n;
            continue;
        }
        continued = false;
        size_t sent = 0;
        int err = lab_resp_write(fd, &r, &sent);
        bool close_now = r.close;
        lab_resp_release(&r);
        memmove(buf, buf + used, len - used);
        len -= used;
        if (err || close_now) break;
    }
    free(buf);
    close(fd);
}
