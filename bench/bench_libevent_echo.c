/* bench_libevent_echo: the peer for bench/flood.sh. A single-threaded echo
 * server written the idiomatic libevent 2 way: evconnlistener + one
 * bufferevent per connection, echo by moving the input evbuffer into the
 * output (no copy), free on EOF/error. TCP_NODELAY on accepted sockets, as
 * wharf does by default, so both servers make the same syscalls per reply,
 * and the same listen backlog (SOMAXCONN; libevent's default -1 means 128,
 * which overflows at 2,000 connections in flight and costs 1 s SYN retries).
 *
 *   bench_libevent_echo HOST:PORT     (port 0 = any; prints "listen tcp ADDR", "ready")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WH_HAVE_LIBEVENT
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>

static void on_read(struct bufferevent *bev, void *ud)
{
    (void)ud;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *ud)
{
    (void)ud;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                      void *ud)
{
    (void)sa;
    (void)sl;
    (void)ud;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *ud)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(ud);
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
    /* (evutil_parse_sockaddr_port refuses port 0) */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int sl = sizeof(sin);
    char host[64];
    const char *colon = strrchr(addr, ':');
    snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - addr) : 0, addr);
    sin.sin_port = htons(colon ? (uint16_t)atoi(colon + 1) : 0);
    if (!colon || inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "bench_libevent_echo: bad address %s\n", addr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evconnlistener *l = evconnlistener_new_bind(
        base, on_accept, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        SOMAXCONN, (struct sockaddr *)&sin,
        sl); /* -1 would mean 128 in libevent: same backlog as wharf */
    if (!l) {
        perror("bench_libevent_echo: listen");
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t bl = sizeof(bound);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &bl);
    char h[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &bound.sin_addr, h, sizeof(h));
    printf("listen tcp %s:%u\nready\n", h, ntohs(bound.sin_port));
    fflush(stdout);
    struct event *s1 = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *s2 = evsignal_new(base, SIGINT, on_signal, base);
    event_add(s1, NULL);
    event_add(s2, NULL);
    event_base_dispatch(base);
    event_free(s1);
    event_free(s2);
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
#else
int main(void)
{
    fprintf(stderr, "bench_libevent_echo: built without libevent\n");
    return 1;
}
#endif
