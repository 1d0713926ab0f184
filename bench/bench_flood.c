/* bench_flood: seed 004's flood. N connections, each one 1 KB transaction:
 * connect, send SIZE bytes, read SIZE bytes back, close. At most INFLIGHT
 * transactions at a time (under the 20,000-fd cap). The client is plain
 * epoll, so it costs the same whichever server it measures.
 *
 *   bench_flood HOST:PORT [--conns N] [--inflight K] [--size B]
 *
 * Prints one line: "txns=N wall_s=W tps=T us_per_txn=U lat_mean_us=M
 * lat_p50_us=P lat_p99_us=Q errors=E". us_per_txn is wall time / N (what a
 * flood costs per transaction); lat_* is connect-to-last-byte per
 * transaction.
 *
 * Ports: every transaction is a new connection and the client closes first,
 * so its side enters TIME_WAIT. Source addresses rotate over
 * 127.0.0.1-127.0.0.16 (IP_BIND_ADDRESS_NO_PORT defers port choice to
 * connect), giving 16 x 28k ephemeral 4-tuples per server port; on loopback
 * Linux also reuses TIME_WAIT ports (net.ipv4.tcp_tw_reuse=2, the default).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

typedef struct txn {
    int fd;
    size_t sent, got;
    double t0;
} txn;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct sockaddr_in dst;
static size_t size = 1024;
static char *payload;
static int ep;
static unsigned src_rot;

static int start(txn *t)
{
    t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0) return -errno;
    int one = 1;
    setsockopt(t->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (src_rot++ % 16));
    bind(t->fd, (struct sockaddr *)&src, sizeof(src));
    setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    t->sent = t->got = 0;
    t->t0 = now_s();
    if (connect(t->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(t->fd);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = t};
    epoll_ctl(ep, EPOLL_CTL_ADD, t->fd, &ev);
    return 0;
}

int main(int argc, char **argv)
{
    long conns = 10000, inflight = 2000;
    const char *addr = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            conns = atol(argv[++i]);
        else if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
            inflight = atol(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = (size_t)atol(argv[++i]);
        else
            addr = argv[i];
    }
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || conns <= 0 || inflight <= 0 || size == 0) {
        fprintf(stderr, "usage: bench_flood HOST:PORT [--conns N] [--inflight K] [--size B]\n");
        return 2;
    }
    char host[64];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
        fprintf(stderr, "bench_flood: numeric IPv4 only\n");
        return 2;
    }
    if (inflight > conns) inflight = conns;
    payload = malloc(size);
    char *rbuf = malloc(size + 1);
    for (size_t i = 0; i < size; i++)
        payload[i] = (char)('a' + i % 26);
    txn *ts = calloc((size_t)inflight, sizeof(*ts));
    double *lat = calloc((size_t)conns, sizeof(*lat));
    ep = epoll_create1(EPOLL_CLOEXEC);
    long started = 0, done = 0, errors = 0;
    double t_begin = now_s();
    for (long i = 0; i < inflight; i++, started++)
        if (start(&ts[i]) < 0) errors++, done++;
    struct epoll_event evs[512];
    while (done < conns) {
        int n = epoll_wait(ep, evs, 512, 5000);
        if (n == 0) {
            fprintf(stderr, "bench_flood: stalled with %ld of %ld done\n", done, conns);
            break;
        }
        for (int i = 0; i < n; i++) {
            txn *t = evs[i].data.ptr;
            bool finished = false, failed = false;
            if (evs[i].events & EPOLLERR) {
                failed = true;
            } else {
                if ((evs[i].events & EPOLLOUT) && t->sent < size) {
                    ssize_t w = send(t->fd, payload + t->sent, size - t->sent, MSG_NOSIGNAL);
                    if (w > 0)
                        t->sent += (size_t)w;
                    else if (w < 0 && errno != EAGAIN)
                        failed = true;
                    if (t->sent == size) {
                        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
                        epoll_ctl(ep, EPOLL_CTL_MOD, t->fd, &ev);
                    }
                }
                if (!failed && (evs[i].events & (EPOLLIN | EPOLLHUP))) {
                    ssize_t r = recv(t->fd, rbuf, size + 1, 0);
                    if (r > 0)
                        t->got += (size_t)r;
                    else if (r == 0 || errno != EAGAIN)
                        failed = true;
                    if (t->got >= size) finished = true;
                }
            }
            if (!finished && !failed) continue;
            if (failed)
                errors++;
            else
                lat[done - errors] = now_s() - t->t0;
            close(t->fd); /* also removes it from the epoll set */
            done++;
            if (started < conns) {
                started++;
                if (start(t) < 0) errors++, done++;
            }
        }
    }
    double wall = now_s() - t_begin;
    long ok = done - errors;
    qsort(lat, (size_t)ok, sizeof(*lat), cmp_d);
    double sum = 0;
    for (long i = 0; i < ok; i++)
        sum += lat[i];
    printf("txns=%ld wall_s=%.4f tps=%.0f us_per_txn=%.2f lat_mean_us=%.1f lat_p50_us=%.1f "
           "lat_p99_us=%.1f errors=%ld\n",
           ok, wall, ok / wall, wall * 1e6 / (double)(ok ? ok : 1), ok ? sum / ok * 1e6 : 0,
           ok ? lat[ok / 2] * 1e6 : 0, ok ? lat[(long)(ok * 0.99)] * 1e6 : 0, errors);
    return errors || done < conns ? 1 : 0;
}
