/* The "ceiling" for bench/compare.sh (a benchmark program, not a test): the
 * least work an HTTP/1.1 server on epoll could do per request, so the other
 * servers' CPU per request can be read against it.
 *
 *   ceiling --root DIR --port P [--close-port Q] [--host ADDR] [--threads N]
 *
 * Every regular file in DIR (read once at start) becomes a canned response,
 * headers and body in one buffer. A request is not parsed: the bytes up to
 * each blank line ("\r\n\r\n") count as one request, answered by the file
 * whose "GET /NAME " prefix it starts with (a canned 404 otherwise), so
 * pipelined requests get one answer each. All answers to one read go out in
 * one writev.
 *
 * Port P keeps connections open (keep-alive); on port Q every answer says
 * "Connection: close" and the socket is closed once it is written. Accepted
 * sockets are read at once (TCP_DEFER_ACCEPT: the request is usually there)
 * and only registered with epoll when that read would block. With N threads
 * each has its own epoll and its own SO_REUSEPORT listeners.
 *
 * Prints "listening ADDR:P close ADDR:Q" on stdout once it accepts; runs
 * until killed. Plain epoll and sockets on purpose: no code shared with wharf.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FILES  64
#define READ_BUF   65536
#define PART_MAX   8192 /* a request split over reads keeps at most this much */
#define MAX_ANSWER 1024 /* answers queued per connection before it is dropped */

struct resp {
    char prefix[96]; /* "GET /name " */
    size_t prefix_len;
    char *ka, *cl; /* keep-alive and Connection: close answers */
    size_t ka_len, cl_len;
};

/* What a connection still has to send: answers[head..n), the first from off. */
struct pending {
    const struct resp *answers[MAX_ANSWER];
    unsigned head, n;
    size_t off;
};

/* Per-fd state (the table is indexed by fd: no allocation for a connection
 * that needs nothing beyond its fd, which is nearly all of them). */
struct cstate {
    char *part; /* bytes of a request not yet complete, or NULL */
    struct pending *pend;
    uint16_t part_len;
    uint8_t close_mode, registered;
};

struct server {
    struct resp files[MAX_FILES + 1]; /* the last one is the 404 */
    int nfiles;
    struct cstate *tab;
    size_t tab_len;
    struct sockaddr_in addr, close_addr;
    int with_close;
};

struct worker {
    struct server *srv;
    int ep, lfd, lfd_close;
    char buf[READ_BUF];
    const struct resp *batch[MAX_ANSWER];
    pthread_t tid;
};

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static char *make_answer(const char *status, const char *body, size_t body_len, int close_mode,
                         size_t *len)
{
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nServer: ceiling\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, body_len, close_mode ? "Connection: close\r\n" : "");
    char *a = malloc((size_t)h + body_len);
    if (!a) die("malloc");
    memcpy(a, head, (size_t)h);
    if (body_len) memcpy(a + h, body, body_len);
    *len = (size_t)h + body_len;
    return a;
}

static void set_resp(struct resp *r, const char *name, const char *status, const char *body,
                     size_t len)
{
    r->prefix_len = name ? (size_t)snprintf(r->prefix, sizeof r->prefix, "GET /%s ", name) : 0;
    r->ka = make_answer(status, body, len, 0, &r->ka_len);
    r->cl = make_answer(status, body, len, 1, &r->cl_len);
}

static void load_files(struct server *s, const char *root)
{
    DIR *d = opendir(root);
    if (!d) die(root);
    struct dirent *e;
    while ((e = readdir(d)) && s->nfiles < MAX_FILES) {
        if (e->d_name[0] == '.' || strlen(e->d_name) > 80) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die(path);
        char *body = malloc((size_t)st.st_size + 1);
        if (!body) die("malloc");
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, body + got, (size_t)st.st_size - got);
            if (n <= 0) die(path);
            got += (size_t)n;
        }
        close(fd);
        set_resp(&s->files[s->nfiles++], e->d_name, "200 OK", body, got);
        free(body);
    }
    closedir(d);
    set_resp(&s->files[s->nfiles], NULL, "404 Not Found", "not found\n", 10);
}

static const struct resp *match(const struct server *s, const char *req, size_t len)
{
    for (int i = 0; i < s->nfiles; i++) {
        const struct resp *r = &s->files[i];
        if (len >= r->prefix_len && memcmp(req, r->prefix, r->prefix_len) == 0) return r;
    }
    return &s->files[s->nfiles];
}

static int listen_on(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1, defer = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* Inherited by accepted sockets: no setsockopt per connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    if (bind(fd, (const struct sockaddr *)a, sizeof *a) != 0) die("bind");
    if (listen(fd, 4096) != 0) die("listen");
    return fd;
}

static void conn_close(struct worker *w, int fd)
{
    struct cstate *st = &w->srv->tab[fd];
    free(st->part);
    free(st->pend);
    memset(st, 0, sizeof *st);
    close(fd); /* also leaves the epoll set: nobody else holds this file */
}

static void want(struct worker *w, int fd, uint32_t events)
{
    struct cstate *st = &w->srv->tab[fd];
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(w->ep, st->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
        conn_close(w, fd);
        return;
    }
    st->registered = 1;
}

/* Writes answers[0..n) (the first from off); what the socket does not take
 * is kept in the fd's pending queue. Returns 1 when all went out, 0 when some
 * is pending, -1 when the connection was closed. */
static int send_answers(struct worker *w, int fd, const struct resp *const *answers, unsigned n,
                        size_t off)
{
    struct cstate *st = &w->srv->tab[fd];
    struct iovec iov[IOV_MAX < MAX_ANSWER ? IOV_MAX : MAX_ANSWER];
    unsigned i = 0;
    while (i < n) {
        unsigned k = 0;
        size_t o = off;
        for (unsigned j = i; j < n && k < sizeof iov / sizeof iov[0]; j++, k++) {
            const struct resp *r = answers[j];
            iov[k].iov_base = (st->close_mode ? r->cl : r->ka) + o;
            iov[k].iov_len = (st->close_mode ? r->cl_len : r->ka_len) - o;
            o = 0;
        }
        ssize_t wr = writev(fd, iov, (int)k);
        if (wr < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                conn_close(w, fd);
                return -1;
            }
            wr = 0;
        }
        size_t left = (size_t)wr;
        for (unsigned j = 0; j < k; j++) {
            if (left < iov[j].iov_len) {
                off = (j == 0 ? off : 0) + left;
                goto partial;
            }
            left -= iov[j].iov_len;
            i++;
        }
        off = 0;
        continue;
    partial:
        if (!st->pend && !(st->pend = malloc(sizeof *st->pend))) {
            conn_close(w, fd);
            return -1;
        }
        /* answers may already point into this queue: memmove */
        memmove(st->pend->answers, answers + i, (n - i) * sizeof *answers);
        st->pend->head = 0;
        st->pend->n = n - i;
        st->pend->off = off;
        want(w, fd, EPOLLOUT);
        return 0;
    }
    return 1;
}

static void on_writable(struct worker *w, int fd);

/* One read; answers every complete request in it. */
static void on_readable(struct worker *w, int fd)
{
    struct cstate *st = &w->srv->tab[fd];
    if (st->pend) { /* an error or hang-up while output waits: let the write see it */
        on_writable(w, fd);
        return;
    }
    size_t have = st->part_len;
    if (have) memcpy(w->buf, st->part, have);
    ssize_t n = read(fd, w->buf + have, sizeof w->buf - have);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!st->registered) want(w, fd, EPOLLIN);
            return;
        }
        conn_close(w, fd);
        return;
    }
    size_t len = have + (size_t)n, pos = 0;
    unsigned cnt = 0;
    for (;;) {
        const char *end = memmem(w->buf + pos, len - pos, "\r\n\r\n", 4);
        if (!end) break;
        if (cnt == MAX_ANSWER) {
            conn_close(w, fd);
            return;
        }
        w->batch[cnt++] = match(w->srv, w->buf + pos, len - pos);
        pos = (size_t)(end - w->buf) + 4;
        if (st->close_mode) break; /* one request per connection */
    }
    size_t rest = len - pos;
    if (st->close_mode && cnt) rest = 0; /* answered: anything after it is dropped */
    if (rest) {
        if (rest > PART_MAX || (!st->part && !(st->part = malloc(PART_MAX)))) {
            conn_close(w, fd);
            return;
        }
        memcpy(st->part, w->buf + pos, rest);
    }
    st->part_len = (uint16_t)rest;
    if (cnt == 0) {
        if (!st->registered) want(w, fd, EPOLLIN);
        return;
    }
    int r = send_answers(w, fd, w->batch, cnt, 0);
    if (r == 1) {
        if (st->close_mode)
            conn_close(w, fd);
        else if (!st->registered)
            want(w, fd, EPOLLIN);
    }
}

static void on_writable(struct worker *w, int fd)
{
    struct cstate *st = &w->srv->tab[fd];
    struct pending *p = st->pend;
    if (!p) return;
    int r = send_answers(w, fd, p->answers + p->head, p->n - p->head, p->off);
    if (r != 1) return;
    free(st->pend);
    st->pend = NULL;
    if (st->close_mode)
        conn_close(w, fd);
    else
        want(w, fd, EPOLLIN);
}

static void on_accept(struct worker *w, int lfd, int close_mode)
{
    /* A bounded burst so one busy listener cannot starve the connections. */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if ((size_t)fd >= w->srv->tab_len) {
            close(fd);
            continue;
        }
        w->srv->tab[fd].close_mode = (uint8_t)close_mode;
        on_readable(w, fd);
    }
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(w->ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == w->lfd)
                on_accept(w, fd, 0);
            else if (fd == w->lfd_close)
                on_accept(w, fd, 1);
            else if (evs[i].events & EPOLLOUT)
                on_writable(w, fd);
            else
                on_readable(w, fd);
        }
    }
    return NULL;
}

static void worker_init(struct worker *w, struct server *s)
{
    w->srv = s;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) die("epoll_create1");
    w->lfd = listen_on(&s->addr);
    w->lfd_close = s->with_close ? listen_on(&s->close_addr) : -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->lfd};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev) != 0) die("epoll_ctl");
    if (w->lfd_close >= 0) {
        ev.data.fd = w->lfd_close;
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd_close, &ev) != 0) die("epoll_ctl");
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: ceiling --root DIR --port P [--close-port Q] [--host ADDR] "
                    "[--threads N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *root = NULL, *host = "127.0.0.1";
    int port = -1, close_port = -1, threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--root"))
            root = v;
        else if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--close-port"))
            close_port = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else
            usage();
        i++;
    }
    if (!root || port < 0 || threads < 1 || threads > 256) usage();
    signal(SIGPIPE, SIG_IGN);

    static struct server srv;
    load_files(&srv, root);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srv.tab_len = rl.rlim_cur > (1u << 20) ? (1u << 20) : (size_t)rl.rlim_cur;
    /* calloc of a large table maps zero pages: only the slots of fds in use
     * ever become resident. */
    srv.tab = calloc(srv.tab_len, sizeof *srv.tab);
    if (!srv.tab) die("calloc");
    srv.addr.sin_family = AF_INET;
    srv.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &srv.addr.sin_addr) != 1) usage();
    srv.close_addr = srv.addr;
    srv.close_addr.sin_port = htons((uint16_t)(close_port < 0 ? 0 : close_port));
    srv.with_close = close_port >= 0;

    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    if (!ws) die("calloc");
    for (int t = 0; t < threads; t++) {
        worker_init(&ws[t], &srv);
        if (t == 0) { /* port 0: the others join the port the first one got */
            socklen_t l = sizeof srv.addr;
            getsockname(ws[0].lfd, (struct sockaddr *)&srv.addr, &l);
            l = sizeof srv.close_addr;
            if (srv.with_close)
                getsockname(ws[0].lfd_close, (struct sockaddr *)&srv.close_addr, &l);
        }
    }
    printf("listening %s:%d close %s:%d\n", host, ntohs(srv.addr.sin_port), host,
           srv.with_close ? ntohs(srv.close_addr.sin_port) : -1);
    fflush(stdout);
    for (int t = 1; t < threads; t++)
        if (pthread_create(&ws[t].tid, NULL, worker_run, &ws[t]) != 0) die("pthread_create");
    worker_run(&ws[0]);
    return 0;
}
