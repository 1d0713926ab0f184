/* WebSocket load generator for bench/ws.sh (one thread, epoll).
 *
 *   bench_ws_client echo HOST:PORT PATH CONNS SECONDS SIZE [--raw]
 *       CONNS connections each keep one SIZE-byte message in flight and send
 *       the next when the echo is back; prints round trips per second. With
 *       --raw: plain TCP (no handshake, no framing) against a byte echo
 *       server, the baseline for the WebSocket overhead.
 *   bench_ws_client broadcast HOST:PORT PATH CONNS ROUNDS SIZE [--server-pid PID]
 *       CONNS members join PATH (a broadcast room); member 0 sends ROUNDS
 *       messages one at a time; for each, the time until all CONNS members
 *       received it. With --server-pid, also the server's CPU time (utime +
 *       stime from /proc) per broadcast.
 *
 * Frames are built and parsed with wharf's own frame writer and reader
 * (client role: frames masked out, unmasked in).
 */
#include <arpa/inet.h>
#include <errno.h>
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

#include "ws/ws_internal.h"

typedef struct cl {
    int fd;
    int state; /* 0 connecting/handshake, 1 open */
    char hs[512];
    size_t hslen;
    wh__ws_reader rd;
    size_t raw_have; /* raw mode: echo bytes received of the current message */
    int last_round;
} cl;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static struct sockaddr_in target;
static const char *path;
static bool raw;
static uint8_t *msg;   /* the masked frame (or raw bytes) to send */
static size_t msglen;  /* its length */
static size_t payload; /* payload size */

static int open_conn(int ep, cl *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS)
        die("connect");
    c->fd = fd;
    c->state = 0;
    c->hslen = 0;
    c->last_round = -1;
    wh__ws_reader_init(&c->rd, true, 1 << 24);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            usleep(50); /* rare with one small message in flight */
            continue;
        }
        if (w <= 0) die("send");
        s += w;
        n -= (size_t)w;
    }
}

static void build_msg(size_t size)
{
    payload = size;
    msg = malloc(size + WH__WS_MAX_HEADER);
    if (raw) {
        memset(msg, 'x', size);
        msglen = size;
        return;
    }
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = wh__ws_frame_header(msg, WH_WS_OP_TEXT, true, size, key);
    memset(msg + h, 'x', size);
    wh__ws_mask(msg + h, size, key, 0);
    msglen = h + size;
}

static void send_handshake(cl *c)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path);
    send_all(c->fd, req, (size_t)n);
}

/* Reads what is there; returns messages completed, -1 on EOF/error. */
static int on_readable(cl *c, bool *opened)
{
    static uint8_t buf[1 << 16];
    int msgs = 0;
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EAGAIN) return msgs;
        if (r <= 0) return -1;
        size_t len = (size_t)r, pos = 0;
        if (c->state == 0 && !raw) {
            size_t take = len < sizeof c->hs - 1 - c->hslen ? len : sizeof c->hs - 1 - c->hslen;
            memcpy(c->hs + c->hslen, buf, take);
            c->hslen += take;
            c->hs[c->hslen] = 0;
            char *end = strstr(c->hs, "\r\n\r\n");
            if (!end) {
                if (c->hslen >= sizeof c->hs - 1) return -1;
                continue;
            }
            if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "handshake refused: %.40s\n", c->hs);
                return -1;
            }
            size_t head = (size_t)(end + 4 - c->hs);
            pos = take - (c->hslen - head); /* bytes of buf after the head */
            c->state = 1;
            *opened = true;
        }
        if (raw) {
            c->raw_have += len;
            while (c->raw_have >= payload) {
                c->raw_have -= payload;
                msgs++;
            }
            continue;
        }
        while (pos < len) {
            wh__ws_event ev;
            size_t used;
            int t = wh__ws_reader_next(&c->rd, buf + pos, len - pos, &used, &ev);
            pos += used;
            if (t == WH__WS_EV_MESSAGE)
                msgs++;
            else if (t == WH__WS_EV_ERROR || t == WH__WS_EV_CLOSE)
                return -1;
            else if (t == WH__WS_EV_NONE)
                break;
        }
    }
}

static double cpu_seconds(int pid)
{
    char p[64], line[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    char *s = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Connects n clients, at most 256 handshakes in flight (the listen backlog). */
static cl *connect_all(int ep, int n)
{
    cl *cs = calloc((size_t)n, sizeof *cs);
    int started = 0, open = 0, inflight = 0;
    struct epoll_event evs[256];
    while (open < n) {
        while (started < n && inflight < 256) {
            open_conn(ep, &cs[started++]);
            inflight++;
        }
        int k = epoll_wait(ep, evs, 256, 5000);
        if (k <= 0) {
            fprintf(stderr, "stalled connecting (%d open)\n", open);
            exit(1);
        }
        for (int i = 0; i < k; i++) {
            cl *c = evs[i].data.ptr;
            if (c->state == 1) continue;
            if (evs[i].events & EPOLLOUT) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                if (raw) {
                    c->state = 1;
                    open++;
                    inflight--;
                    continue;
                }
                send_handshake(c);
            }
            if (evs[i].events & EPOLLIN) {
                bool opened = false;
                if (on_readable(c, &opened) < 0) {
                    fprintf(stderr, "connection %ld failed\n", (long)(c - cs));
                    exit(1);
                }
                if (opened) {
                    open++;
                    inflight--;
                }
            }
        }
    }
    return cs;
}

static int run_echo(int conns, double seconds)
{
    int ep = epoll_create1(0);
    cl *cs = connect_all(ep, conns);
    for (int i = 0; i < conns; i++)
        send_all(cs[i].fd, msg, msglen);
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    uint64_t trips = 0;
    struct epoll_event evs[256];
    while (now_ns() < end) {
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            cl *c = evs[i].data.ptr;
            bool opened;
            int m = on_readable(c, &opened);
            if (m < 0) {
                fprintf(stderr, "echo connection lost\n");
                return 1;
            }
            for (int j = 0; j < m; j++) {
                trips++;
                send_all(c->fd, msg, msglen);
            }
        }
    }
    double el = (double)(now_ns() - t0) / 1e9;
    printf("echo conns=%d size=%zu seconds=%.1f round_trips=%llu rate=%.0f\n", conns, payload, el,
           (unsigned long long)trips, (double)trips / el);
    return 0;
}

static int run_broadcast(int conns, int rounds, int server_pid)
{
    int ep = epoll_create1(0);
    cl *cs = connect_all(ep, conns);
    usleep(300 * 1000); /* let joins settle */
    double *lat = calloc((size_t)rounds, sizeof *lat);
    double cpu0 = server_pid > 0 ? cpu_seconds(server_pid) : -1;
    struct epoll_event evs[1024];
    for (int r = 0; r < rounds; r++) {
        int got = 0;
        int64_t t0 = now_ns();
        send_all(cs[0].fd, msg, msglen);
        while (got < conns) {
            int k = epoll_wait(ep, evs, 1024, 10000);
            if (k <= 0) {
                fprintf(stderr, "round %d: only %d of %d received\n", r, got, conns);
                return 1;
            }
            for (int i = 0; i < k; i++) {
                cl *c = evs[i].data.ptr;
                bool opened;
                int m = on_readable(c, &opened);
                if (m < 0) {
                    fprintf(stderr, "member lost\n");
                    return 1;
                }
                got += m;
            }
        }
        lat[r] = (double)(now_ns() - t0) / 1e6;
    }
    double cpu1 = server_pid > 0 ? cpu_seconds(server_pid) : -1;
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_d);
    printf("broadcast conns=%d size=%zu rounds=%d all_received_ms_median=%.2f min=%.2f max=%.2f",
           conns, payload, rounds, lat[rounds / 2], lat[0], lat[rounds - 1]);
    if (cpu0 >= 0 && cpu1 >= 0)
        printf(" server_cpu_ms_per_broadcast=%.2f", (cpu1 - cpu0) * 1000.0 / rounds);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr,
                "usage: %s echo|broadcast HOST:PORT PATH CONNS SECONDS|ROUNDS SIZE "
                "[--raw] [--server-pid PID]\n",
                argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    char host[64];
    snprintf(host, sizeof host, "%s", argv[2]);
    char *colon = strrchr(host, ':');
    if (!colon) return 2;
    *colon = 0;
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1) return 2;
    path = argv[3];
    int conns = atoi(argv[4]);
    double amount = atof(argv[5]);
    size_t size = (size_t)atol(argv[6]);
    int server_pid = 0;
    for (int i = 7; i < argc; i++) {
        if (!strcmp(argv[i], "--raw"))
            raw = true;
        else if (!strcmp(argv[i], "--server-pid") && i + 1 < argc)
            server_pid = atoi(argv[++i]);
    }
    build_msg(size);
    if (!strcmp(mode, "echo")) return run_echo(conns, amount);
    if (!strcmp(mode, "broadcast")) return run_broadcast(conns, (int)amount, server_pid);
    return 2;
}
