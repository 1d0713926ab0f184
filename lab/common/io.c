/* Writing a lab_resp to a socket, shared by both drivers. */
#include "lab_internal.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

int lab_resp_write(int fd, lab_resp *r, size_t *sent)
{
    size_t mem = r->head_len + r->body_len;
    while (*sent < mem) {
        /* Head and body in one call: one syscall, one segment when small. */
        struct iovec iov[2];
        int n = 0;
        if (*sent < r->head_len) iov[n++] = (struct iovec){r->head + *sent, r->head_len - *sent};
        size_t boff = *sent > r->head_len ? *sent - r->head_len : 0;
        if (r->body_len > boff) iov[n++] = (struct iovec){r->body + boff, r->body_len - boff};
        /* MSG_MORE when a file follows: the head waits for the first file
         * bytes and leaves in the same segment (tcp(7) MSG_MORE / TCP_CORK). */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        int more = r->file_fd >= 0 && r->file_len ? MSG_MORE : 0;
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | more);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 1 : -1;
        }
        *sent += (size_t)w;
    }
    while (r->file_fd >= 0 && r->file_len > 0) {
        /* sendfile(2): the kernel copies file pages to the socket, no user-space buffer. */
        ssize_t w = sendfile(fd, r->file_fd, &r->file_off, r->file_len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 1 : -1;
        }
        if (w == 0) return -1; /* the file shrank under us: the promised length cannot be met */
        r->file_len -= (size_t)w;
    }
    return 0;
}
