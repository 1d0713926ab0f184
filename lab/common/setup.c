/* Command line, listening socket, signals and the Redis handle: the parts of
 * ZeroHTTPd's main() that every model shares. */
#include "lab_internal.h"

#include "wharf/http_file.h"

#include "apps/common/guestbook_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

volatile sig_atomic_t lab_stop;

static void usage(const char *prog, int code)
{
    fprintf(code ? stderr : stdout,
            "usage: %s [--port N] [--bind IP:PORT] [--root DIR] [--redis HOST:PORT] [--workers N]\n"
            "  --port     TCP port to listen on, all addresses (default 8000)\n"
            "  --bind     listen on one IPv4 address and port instead (e.g. 127.0.0.1:8080)\n"
            "  --root     directory of static files (default ./public)\n"
            "  --redis    Redis server for the guestbook (default 127.0.0.1:6379)\n"
            "  --workers  pool size for the pre-forked/pre-threaded models\n",
            prog);
    exit(code);
}

static int parse_int(const char *prog, const char *s, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "%s: bad number '%s' (expected %d..%d)\n", prog, s, lo, hi);
        exit(2);
    }
    return (int)v;
}

static void parse_redis(lab_cfg *cfg, const char *s)
{
    const char *colon = strrchr(s, ':');
    size_t hl = colon ? (size_t)(colon - s) : strlen(s);
    if (hl == 0 || hl >= sizeof cfg->redis_host) {
        fprintf(stderr, "%s: bad --redis '%s' (expected HOST:PORT)\n", cfg->prog, s);
        exit(2);
    }
    memcpy(cfg->redis_host, s, hl);
    cfg->redis_host[hl] = '\0';
    cfg->redis_port = colon ? parse_int(cfg->prog, colon + 1, 1, 65535) : 6379;
}

void lab_cfg_parse(lab_cfg *cfg, const char *prog, int default_workers, bool keepalive, int argc,
                   char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->prog = prog;
    cfg->port = 8000;
    strcpy(cfg->bind_ip, "0.0.0.0");
    cfg->root = "./public";
    strcpy(cfg->redis_host, "127.0.0.1");
    cfg->redis_port = 6379;
    cfg->workers = default_workers;
    cfg->keepalive = keepalive;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage(prog, 0);
        if (i + 1 >= argc) usage(prog, 2);
        const char *v = argv[++i];
        if (!strcmp(a, "--port"))
            cfg->port = parse_int(prog, v, 0, 65535);
        else if (!strcmp(a, "--bind")) {
            const char *colon = strrchr(v, ':');
            struct in_addr ia;
            size_t hl = colon ? (size_t)(colon - v) : 0;
            if (!colon || hl >= sizeof cfg->bind_ip) {
                fprintf(stderr, "%s: bad --bind '%s' (expected IPV4:PORT)\n", prog, v);
                exit(2);
            }
            memcpy(cfg->bind_ip, v, hl);
            cfg->bind_ip[hl] = '\0';
            if (inet_pton(AF_INET, cfg->bind_ip, &ia) != 1) {
                fprintf(stderr, "%s: bad --bind address '%s'\n", prog, cfg->bind_ip);
                exit(2);
            }
            cfg->port = parse_int(prog, colon + 1, 0, 65535);
        } else if (!strcmp(a, "--root"))
            cfg->root = v;
        else if (!strcmp(a, "--redis"))
            parse_redis(cfg, v);
        else if (!strcmp(a, "--workers"))
            cfg->workers = parse_int(prog, v, 1, 10000);
        else
            usage(prog, 2);
    }
    /* One root for the whole process (forked children inherit it, threads
     * share it read-only): built-in MIME types only, no listings, no
     * precompressed siblings - the lab serves files, nothing clever. */
    wh_static_opts so;
    wh_static_opts_init(&so);
    so.mime_file = NULL;
    so.precompressed = false;
    static wh_static_root root;
    int err = wh_static_root_open(&root, cfg->root, &so);
    if (err < 0) {
        fprintf(stderr, "%s: --root %s: %s\n", prog, cfg->root, strerror(-err));
        exit(1);
    }
    /* Resolve once now, so the root learns whether openat2() works before
     * any thread shares it (it caches that answer in the struct). */
    int fd = wh_static_open_beneath(&root, ".", O_RDONLY | O_DIRECTORY);
    if (fd >= 0) close(fd);
    cfg->docroot = &root;
}

int lab_listen(const lab_cfg *cfg, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    /* Restarting right after a run must not fail with EADDRINUSE because of
     * connections still in TIME_WAIT (socket(7), SO_REUSEADDR). */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)cfg->port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
    inet_pton(AF_INET, cfg->bind_ip, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "%s: bind port %d: %s\n", cfg->prog, cfg->port, strerror(errno));
        exit(1);
    }
    /* The accept queue is where clients wait while every worker is busy; the
     * kernel caps it at net.core.somaxconn. */
    if (listen(fd, 4096) < 0) {
        perror("listen");
        exit(1);
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("%s: listening on port %d\n", cfg->prog, ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

int lab_accept(int lfd, bool nonblock)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
    if (fd < 0) {
        /* Out of descriptors: the listener stays readable, so back off a
         * little instead of spinning on it (accept(2) EMFILE). */
        if (errno == EMFILE || errno == ENFILE) usleep(10000);
        return -1;
    }
    /* Responses go out as head + body writes; never let Nagle hold the
     * last small piece until the client's delayed ACK (tcp(7) TCP_NODELAY). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void on_stop(int sig)
{
    (void)sig;
    lab_stop = 1;
}

void lab_on_stop_signal(void)
{
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocked accept()/poll() return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

struct lab_redis {
    const lab_cfg *cfg;
    redisContext *ctx;
};

lab_redis *lab_redis_new(const lab_cfg *cfg)
{
    lab_redis *r = calloc(1, sizeof *r);
    if (!r) {
        perror("calloc");
        exit(1);
    }
    r->cfg = cfg;
    return r;
}

void lab_redis_free(lab_redis *r)
{
    if (!r) return;
    if (r->ctx) redisFree(r->ctx);
    free(r);
}

redisContext *lab_redis_get(lab_redis *r)
{
    if (r->ctx && !r->ctx->err) return r->ctx;
    lab_redis_drop(r);
    /* Connect only when the guestbook is used: a static-file benchmark never
     * talks to Redis, and a missing Redis costs one refused connect per request. */
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    redisContext *c = redisConnectWithTimeout(r->cfg->redis_host, r->cfg->redis_port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    struct timeval cmd = {.tv_sec = 2, .tv_usec = 0};
    redisSetTimeout(c, cmd);
    /* Entries of older versions into the stream first (guestbook_redis.h);
     * a failure leaves them in their list, and the page without them. */
    wh_gb_cmd mig;
    wh_gb_cmd_migrate(&mig);
    redisReply *rep = redisCommandArgv(c, mig.argc, mig.argv, mig.argvlen);
    if (rep) freeReplyObject(rep);
    r->ctx = c;
    return c;
}

void lab_redis_drop(lab_redis *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}
