/* Test helpers for HTTP engine tests: an HTTP server on a bare wh_loop run
 * by a thread of the test (no wh_server), and a blocking loopback client.
 * Header-only (static inline functions, so a test may use only some). */
#ifndef WH_TEST_HTTP_HOST_H
#define WH_TEST_HTTP_HOST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wharf/http.h"

typedef struct http_host {
    wh_loop *loop;
    wh_listener *listener;
    wh_http_server *srv;
    wh_timer *check;
    pthread_t thread;
    int port;
} http_host;

static inline void *http_host_run(void *arg)
{
    http_host *h = arg;
    wh_loop_run(h->loop, WH_RUN_DEFAULT);
    return NULL;
}

/* Starts serving srv on 127.0.0.1:0 from a new thread. 0 or negative errno. */
static inline int http_host_start(http_host *h, wh_http_server *srv)
{
    memset(h, 0, sizeof *h);
    h->srv = srv;
    int rc = wh_loop_new(&h->loop, NULL);
    if (rc == 0) rc = wh_http_server_listen(srv, h->loop, "127.0.0.1:0", NULL, &h->listener);
    wh_sockaddr a;
    char as[64];
    if (rc == 0) rc = wh_listener_local(h->listener, &a);
    if (rc == 0 && wh_addr_format(&a, as, sizeof as) > 0) h->port = atoi(strrchr(as, ':') + 1);
    if (rc == 0) rc = -pthread_create(&h->thread, NULL, http_host_run, h);
    return rc;
}

static inline void http_host_check(wh_timer *t, void *ud)
{
    http_host *h = ud;
    if (wh_net_conn_count(h->loop) == 0) {
        wh_timer_stop(t);
        wh_loop_stop(h->loop);
    }
}

/* A graceful stop the way a program with its own loop does it. */
static inline void http_host_stop_task(wh_loop *loop, void *arg)
{
    http_host *h = arg;
    wh_listener_close(h->listener);
    wh_http_server_drain(h->srv, loop);
    if (wh_timer_new(loop, http_host_check, h, &h->check) == 0) wh_timer_start(h->check, 0, 10);
}

/* Drains, joins the thread and frees the loop; the connection count left. */
static inline size_t http_host_stop(http_host *h)
{
    wh_loop_post(h->loop, http_host_stop_task, h);
    pthread_join(h->thread, NULL);
    size_t left = wh_net_conn_count(h->loop);
    wh_loop_free(h->loop);
    return left;
}

/* A blocking loopback client connected to port, or -1. */
static inline int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of s (stops quietly if the peer is gone). */
static inline void http_send(int fd, const void *s, size_t n)
{
    const char *p = s;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* Reads into buf (NUL-terminated) until `until` was seen `count` times, EOF
 * (*eof = 1) or ms of silence. Returns the bytes read. */
static inline size_t http_recv_until(int fd, char *buf, size_t cap, const char *until, int count,
                                     int ms, int *eof)
{
    size_t len = 0;
    *eof = 0;
    for (;;) {
        buf[len] = 0;
        if (until) {
            int seen = 0;
            for (const char *p = buf;
                 (p = memmem(p, len - (size_t)(p - buf), until, strlen(until))) != NULL; p++)
                seen++;
            if (seen >= count) return len;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, ms) <= 0) return len;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) {
            *eof = 1;
            buf[len] = 0;
            return len;
        }
        len += (size_t)n;
        if (len + 1 >= cap) return len;
    }
}

#endif
