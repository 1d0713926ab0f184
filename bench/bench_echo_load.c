/* Echo load generator (a benchmark, not a test): N connections each doing
 * request/response ping-pong (send SIZE bytes, wait for all SIZE back, repeat)
 * for D seconds; prints transactions per second.
 *
 *   bench_echo_load HOST:PORT [-c CONNS] [-d SECONDS] [-s SIZE] [-t THREADS]
 *   bench_echo_load --serve-libevent PORT    reference: a 1-thread libevent echo server
 *
 * Output (one line, for scripts): "tps <n> conns <c> size <s> secs <d>".
 * Plain epoll and sockets on purpose: the load side must not share code with
 * the server it measures.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef WH_HAVE_LIBEVENT
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#endif

struct lconn {
    int fd;
    size_t sent, got;
};

struct lthread {
    struct sockaddr_in addr;
    int conns;
    size_t size;
    double secs;
    uint64_t tx;
    int errors;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *load_main(void *arg)
{
    struct lthread *t = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct lconn *cs = calloc((size_t)t->conns, sizeof(*cs));
    char *out = malloc(t->size), *in = malloc(65536);
    memset(out, 'x', t->size);
    for (int i = 0; i < t->conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&t->addr, sizeof(t->addr)) < 0) {
            t->errors++;
            close(fd);
            cs[i].fd = -1;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (write(fd, out, t->size) != (ssize_t)t->size) /* small: fits the buffer */
            t->errors++;
    }
    double end = now_s() + t->secs;
    struct epoll_event evs[256];
    while (now_s() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct lconn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, in, 65536);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                t->errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->got += (size_t)r;
            if (c->got >= t->size) {
                c->got -= t->size;
                t->tx++;
                if (write(c->fd, out, t->size) != (ssize_t)t->size) t->errors++;
            }
        }
    }
    for (int i = 0; i < t->conns; i++)
        if (cs[i].fd >= 0) close(cs[i].fd);
    close(ep);
    free(cs);
    free(out);
    free(in);
    return NULL;
}

#ifdef WH_HAVE_LIBEVENT
static void le_read(struct bufferevent *bev, void *ud)
{
    (void)ud;
    bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}
static void le_event(struct bufferevent *bev, short what, void *ud)
{
    (void)ud;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}
static void le_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *ud)
{
    (void)l;
    (void)sa;
    (void)len;
    struct event_base *base = ud;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, le_read, NULL, le_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}
static int serve_libevent(int port)
{
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l =
        evconnlistener_new_bind(base, le_accept, base, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE,
                                -1, (struct sockaddr *)&sin, sizeof(sin));
    if (!l) {
        perror("libevent listen");
        return 1;
    }
    struct sockaddr_in got;
    socklen_t gl = sizeof(got);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&got, &gl);
    printf("tcp 127.0.0.1:%d\n", ntohs(got.sin_port));
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--serve-libevent")) {
#ifdef WH_HAVE_LIBEVENT
        return serve_libevent(atoi(argv[2]));
#else
        fprintf(stderr, "built without libevent\n");
        return 1;
#endif
    }
    if (argc < 2) {
        fprintf(stderr,
                "usage: bench_echo_load HOST:PORT [-c CONNS] [-d SECS] [-s SIZE] [-t THREADS]\n");
        return 2;
    }
    int conns = 50, threads = 1;
    double secs = 3;
    size_t size = 64;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-c"))
            conns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-d"))
            secs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-s"))
            size = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            threads = atoi(argv[i + 1]);
    }
    if (threads < 1 || threads > 64 || conns < threads || size < 1 || size > 65536) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char host[64];
    snprintf(host, sizeof(host), "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (!colon) return 2;
    *colon = 0;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sin.sin_addr);
    signal(SIGPIPE, SIG_IGN);
    pthread_t tid[64];
    struct lthread lt[64];
    for (int i = 0; i < threads; i++) {
        lt[i] = (struct lthread){.addr = sin,
                                 .conns = conns / threads + (i < conns % threads),
                                 .size = size,
                                 .secs = secs};
        pthread_create(&tid[i], NULL, load_main, &lt[i]);
    }
    uint64_t tx = 0;
    int errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        tx += lt[i].tx;
        errors += lt[i].errors;
    }
    printf("tps %.0f conns %d size %zu secs %.1f errors %d\n", (double)tx / secs, conns, size, secs,
           errors);
    return errors ? 1 : 0;
}
