/* The event-driven driver: a per-connection state machine that never blocks
 * on its socket. poll and epoll differ only in how they learn that a socket
 * is ready; both call lab_conn_on_io() and wait for what it returns. */
#include "lab_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lab_conn {
    int fd;
    bool busy;          /* resp holds a response (or a 100 Continue) being written */
    bool continued;     /* the 100 Continue for the current request went out */
    enum lab_want want; /* what the last lab_conn_on_io returned */
    size_t sent;        /* head+body bytes of resp written so far */
    size_t in_len;
    char *in; /* LAB_BUF_SIZE bytes: pages are touched only as data arrives */
    lab_resp resp;
};

lab_conn *lab_conn_new(int fd)
{
    lab_conn *c = malloc(sizeof *c);
    char *in = malloc(LAB_BUF_SIZE);
    if (!c || !in) {
        free(c);
        free(in);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->busy = c->continued = false;
    c->sent = c->in_len = 0;
    c->in = in;
    c->want = LAB_WANT_READ;
    c->resp.file_fd = -1;
    c->resp.body = NULL;
    return c;
}

void lab_conn_free(lab_conn *c)
{
    lab_resp_release(&c->resp);
    close(c->fd);
    free(c->in);
    free(c);
}

int lab_conn_fd(const lab_conn *c)
{
    return c->fd;
}

enum lab_want lab_conn_waiting(const lab_conn *c)
{
    return c->want;
}

static enum lab_want step(lab_conn *c, const lab_cfg *cfg, lab_redis *redis);

enum lab_want lab_conn_on_io(lab_conn *c, const lab_cfg *cfg, lab_redis *redis)
{
    return c->want = step(c, cfg, redis);
}

static enum lab_want step(lab_conn *c, const lab_cfg *cfg, lab_redis *redis)
{
    bool did_read = false;
    for (;;) {
        if (c->busy) {
            int st = lab_resp_write(c->fd, &c->resp, &c->sent);
            if (st < 0) return LAB_WANT_CLOSE;
            if (st > 0) return LAB_WANT_WRITE; /* the socket buffer is full: wait for POLLOUT */
            bool interim = c->resp.status == 100;
            bool close_now = c->resp.close && !interim;
            lab_resp_release(&c->resp);
            c->busy = false;
            if (close_now) return LAB_WANT_CLOSE;
        }
        /* Answer the next complete request already buffered (pipelining)... */
        size_t used = lab_respond(c->in, c->in_len, cfg, redis, &c->resp);
        if (used) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            c->busy = true;
            c->continued = false;
            c->sent = 0;
            continue;
        }
        if (c->resp.status == 100 && !c->continued) {
            c->continued = c->busy = true;
            c->sent = 0;
            continue;
        }
        /* ...else read once. Level-triggered readiness calls us again if more
         * is waiting, so there is no need to read until EAGAIN here. */
        if (did_read) return LAB_WANT_READ;
        ssize_t n = read(c->fd, c->in + c->in_len, LAB_BUF_SIZE - c->in_len);
        did_read = true;
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return LAB_WANT_READ;
        return LAB_WANT_CLOSE; /* EOF or error */
    }
}
