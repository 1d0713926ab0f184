/* wh_server: every model echoes byte-exact under concurrent clients; thread
 * hooks; offload completion on the submitting loop; max_conns; idle timeout;
 * graceful stop with busy connections; forced stop; stats.
 * WH_TEST_LABELS: tsan
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime_internal.h"
#include "test.h"
#include "wharf/server.h"

/* ---- client helpers ------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int server_port(wh_server *s, unsigned i)
{
    wh_sockaddr a;
    if (wh_server_local_addr(s, i, &a) < 0) return -1;
    struct sockaddr_in *sin = (struct sockaddr_in *)a.u.raw;
    return ntohs(sin->sin_port);
}

static int cli_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0}; /* a hung server fails the test, not the run */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static bool write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads exactly len bytes; returns bytes read (< len on EOF/error/timeout). */
static size_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

/* True when the peer closes (EOF or reset) within ms. */
static bool wait_eof(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return false;
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* ---- echo server --------------------------------------------------------- */

static size_t echo_read(wh_conn *c, char *data, size_t len, void *ud)
{
    wh_conn_write(c, data, len);
    return len;
}

static wh_server *start_server(wh_model model, unsigned threads, const wh_conn_cbs *cbs, void *ud,
                               void (*tweak)(wh_server_opts *))
{
    wh_server_opts o;
    wh_server_opts_init(&o);
    o.model = model;
    o.threads = threads;
    o.handle_signals = false;
    if (tweak) tweak(&o);
    wh_server *s = NULL;
    if (wh_server_new(&s, &o, cbs, ud) < 0) return NULL;
    if (wh_server_listen(s, "127.0.0.1:0") < 0 || wh_server_start(s) < 0) {
        wh_server_free(s);
        return NULL;
    }
    return s;
}

struct echo_client {
    int port;
    int conns;
    int rounds;
    size_t size;
    int failures;
};

static void *echo_client_main(void *arg)
{
    struct echo_client *ec = arg;
    int fds[16];
    char *out = malloc(ec->size), *in = malloc(ec->size);
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < ec->conns; i++)
        fds[i] = cli_connect(ec->port);
    for (int r = 0; r < ec->rounds; r++) {
        for (int i = 0; i < ec->conns; i++) {
            if (fds[i] < 0) {
                ec->failures++;
                continue;
            }
            for (size_t k = 0; k < ec->size; k++)
                out[k] = (char)rand_r(&seed);
            if (!write_all(fds[i], out, ec->size) || read_full(fds[i], in, ec->size) != ec->size ||
                memcmp(in, out, ec->size) != 0)
                ec->failures++;
        }
    }
    for (int i = 0; i < ec->conns; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(out);
    free(in);
    return NULL;
}

static int run_echo_load(int port, int nthreads, int conns, int rounds, size_t size)
{
    pthread_t t[8];
    struct echo_client ec[8];
    for (int i = 0; i < nthreads; i++) {
        ec[i] = (struct echo_client){port, conns, rounds, size, 0};
        pthread_create(&t[i], NULL, echo_client_main, &ec[i]);
    }
    int fail = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        fail += ec[i].failures;
    }
    return fail;
}

static void model_echo(wh_model m)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(m, 2, &cbs, NULL, NULL);
    CHECK(s);
    int port = server_port(s, 0);
    CHECK(port > 0);
    /* 4 client threads x 8 conns; sizes that need several reads and writes. */
    CHECK_EQ(run_echo_load(port, 4, 8, 20, 3000), 0);
    CHECK_EQ(run_echo_load(port, 2, 4, 2, 300000), 0);
    wh_server_stats st;
    /* Counters are bumped after the syscall returns, so the client may see
     * its echo a moment before the counter moves: poll briefly. */
    uint64_t want = 4 * 8 * 20 * 3000 + 2 * 4 * 2 * 300000;
    for (int i = 0; i < 500; i++) {
        wh_server_stats_get(s, &st);
        if (st.bytes_out == want && st.bytes_in == want) break;
        usleep(2000);
    }
    CHECK_EQ(st.accepted, 4 * 8 + 2 * 4);
    CHECK_EQ(st.bytes_in, 4 * 8 * 20 * 3000 + 2 * 4 * 2 * 300000);
    CHECK_EQ(st.bytes_out, st.bytes_in);
    wh_server_stop(s, true);
    CHECK_EQ(wh_server_wait(s), 0);
    wh_server_free(s);
}

TEST(echo_reuseport)
{
    model_echo(WH_MODEL_REUSEPORT);
}
TEST(echo_exclusive)
{
    model_echo(WH_MODEL_EXCLUSIVE);
}
TEST(echo_dispatch)
{
    model_echo(WH_MODEL_DISPATCH);
}
TEST(echo_oneshot)
{
    model_echo(WH_MODEL_ONESHOT);
}

/* ---- ONESHOT: a connection never runs on two threads at once ------------- */

struct owner_rec {
    atomic_ulong owner;    /* thread inside a callback of this conn, or 0 */
    atomic_ulong last;     /* thread of the previous callback */
    atomic_int migrations; /* callbacks on a thread other than the previous one */
};

static atomic_int os_violations, os_migrations, os_reads;

static void os_open(wh_conn *c, void *ud)
{
    struct owner_rec *r = calloc(1, sizeof(*r));
    wh_conn_set_data(c, r);
}

static size_t os_read(wh_conn *c, char *data, size_t len, void *ud)
{
    struct owner_rec *r = wh_conn_data(c);
    unsigned long me = (unsigned long)pthread_self(), none = 0;
    if (!atomic_compare_exchange_strong(&r->owner, &none, me)) atomic_fetch_add(&os_violations, 1);
    if (atomic_exchange(&r->last, me) != me) atomic_fetch_add(&os_migrations, 1);
    atomic_fetch_add(&os_reads, 1);
    /* Widen the window in which a second thread could wrongly get this conn:
     * the client has already sent its next bytes by now (pipelined). */
    for (volatile int i = 0; i < 2000; i++)
        ;
    sched_yield();
    wh_conn_write(c, data, len);
    unsigned long mine = me;
    if (!atomic_compare_exchange_strong(&r->owner, &mine, 0)) atomic_fetch_add(&os_violations, 1);
    return len;
}

static void os_close(wh_conn *c, int err, void *ud)
{
    free(wh_conn_data(c));
}

/* Each client keeps 2 messages in flight so the conn is readable again while
 * a worker is still inside on_read. */
struct pipe_client {
    int port, rounds, failures;
};

static void *pipe_client_main(void *arg)
{
    struct pipe_client *pc = arg;
    int fd = cli_connect(pc->port);
    if (fd < 0) {
        pc->failures++;
        return NULL;
    }
    char out[64], in[128];
    size_t expect = 0, got = 0;
    for (int r = 0; r < pc->rounds; r++) {
        int n = snprintf(out, sizeof(out), "m%05d-%p;", r, (void *)pc);
        if (!write_all(fd, out, (size_t)n)) {
            pc->failures++;
            break;
        }
        expect += (size_t)n;
        /* Read back everything but the newest message (one in flight). */
        while (got + 32 < expect) {
            ssize_t k = recv(fd, in, sizeof(in), 0);
            if (k <= 0) {
                pc->failures++;
                goto out;
            }
            got += (size_t)k;
        }
    }
    while (got < expect) {
        ssize_t k = recv(fd, in, sizeof(in), 0);
        if (k <= 0) {
            pc->failures++;
            break;
        }
        got += (size_t)k;
    }
out:
    close(fd);
    return NULL;
}

TEST(oneshot_never_two_threads)
{
    wh_conn_cbs cbs = {.on_open = os_open, .on_read = os_read, .on_close = os_close};
    wh_server *s = start_server(WH_MODEL_ONESHOT, 4, &cbs, NULL, NULL);
    CHECK(s);
    int port = server_port(s, 0);
    enum { NCLI = 12 };
    pthread_t t[NCLI];
    struct pipe_client pc[NCLI];
    for (int i = 0; i < NCLI; i++) {
        pc[i] = (struct pipe_client){port, 400, 0};
        pthread_create(&t[i], NULL, pipe_client_main, &pc[i]);
    }
    int fail = 0;
    for (int i = 0; i < NCLI; i++) {
        pthread_join(t[i], NULL);
        fail += pc[i].failures;
    }
    wh_server_free(s);
    fprintf(stderr, "  oneshot: %d reads, %d thread changes, %d violations\n",
            atomic_load(&os_reads), atomic_load(&os_migrations), atomic_load(&os_violations));
    CHECK_EQ(fail, 0);
    CHECK_EQ(atomic_load(&os_violations), 0);
    /* The model really shares conns between threads (not sticky). */
    CHECK(atomic_load(&os_migrations) > NCLI);
}

static void least_loaded(wh_server_opts *o)
{
    o->dispatch_least_loaded = true;
}

TEST(echo_dispatch_least_loaded)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(WH_MODEL_DISPATCH, 2, &cbs, NULL, least_loaded);
    CHECK(s);
    CHECK_EQ(run_echo_load(server_port(s, 0), 4, 8, 10, 1000), 0);
    wh_server_free(s); /* free stops and waits */
}

/* ---- thread hooks -------------------------------------------------------- */

static atomic_int hook_start, hook_stop;
static void on_start(wh_loop *l, unsigned idx, void *ud)
{
    if (wh_loop_on_thread(l) && wh__server_loop_index(l) == (int)idx)
        atomic_fetch_add(&hook_start, 1);
}
static void on_stop(wh_loop *l, unsigned idx, void *ud)
{
    atomic_fetch_add(&hook_stop, 1);
}

TEST(thread_hooks)
{
    wh_server_opts o;
    wh_server_opts_init(&o);
    o.threads = 3;
    o.handle_signals = false;
    wh_server *s;
    CHECK_EQ(wh_server_new(&s, &o, NULL, NULL), 0);
    CHECK_EQ(wh_server_listen(s, "127.0.0.1:0"), 0);
    wh_server_on_thread(s, on_start, on_stop, NULL);
    CHECK_EQ(wh_server_start(s), 0);
    CHECK_EQ(wh_server_threads(s), 3);
    CHECK_EQ(atomic_load(&hook_start), 3);
    CHECK(wh_server_loop(s, 2) != NULL);
    CHECK(wh_server_loop(s, 3) == NULL);
    wh_server_stop(s, true);
    CHECK_EQ(wh_server_wait(s), 0);
    CHECK_EQ(atomic_load(&hook_stop), 3);
    wh_server_free(s);
}

TEST(listen_errors)
{
    wh_server *s;
    CHECK_EQ(wh_server_new(&s, NULL, NULL, NULL), 0);
    CHECK_EQ(wh_server_listen(s, "not an address"), -EINVAL);
    CHECK_EQ(wh_server_start(s), -EDESTADDRREQ);
    wh_server_free(s);
    /* A port in use by a non-reuseport socket. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    listen(fd, 1);
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
    CHECK_EQ(wh_server_new(&s, NULL, NULL, NULL), 0);
    CHECK_EQ(wh_server_listen(s, addr), -EADDRINUSE);
    wh_server_free(s);
    close(fd);
}

/* ---- offload ------------------------------------------------------------- */

struct off_req {
    wh_conn *c;
    wh_loop *loop;
    pthread_t job_thread;
    char byte;
};

static wh_server *off_srv;
static atomic_int off_bad;

static void off_job(void *arg)
{
    struct off_req *r = arg;
    r->job_thread = pthread_self();
    if (wh_loop_on_thread(r->loop)) /* the job must not run on the loop */
        atomic_fetch_add(&off_bad, 1);
    r->byte = (char)(r->byte + 1);
}

static void off_done(wh_loop *loop, void *arg)
{
    struct off_req *r = arg;
    if (loop != r->loop || !wh_loop_on_thread(loop) || pthread_equal(r->job_thread, pthread_self()))
        atomic_fetch_add(&off_bad, 1);
    wh_conn_write(r->c, &r->byte, 1);
    wh_conn_set_busy(r->c, false);
    free(r);
}

static size_t off_read(wh_conn *c, char *data, size_t len, void *ud)
{
    for (size_t i = 0; i < len; i++) {
        struct off_req *r = malloc(sizeof(*r));
        r->c = c;
        r->loop = wh_conn_loop(c);
        r->byte = data[i];
        wh_conn_set_busy(c, true);
        if (wh_server_offload(off_srv, r->loop, off_job, off_done, r) < 0) {
            atomic_fetch_add(&off_bad, 1);
            free(r);
        }
    }
    return len;
}

static void offload_model(wh_model m)
{
    wh_conn_cbs cbs = {.on_read = off_read};
    off_srv = start_server(m, 2, &cbs, NULL, NULL);
    CHECK(off_srv);
    int port = server_port(off_srv, 0);
    int fds[6];
    for (int i = 0; i < 6; i++)
        CHECK((fds[i] = cli_connect(port)) >= 0);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 6; i++)
            CHECK(write_all(fds[i], "a", 1));
        for (int i = 0; i < 6; i++) {
            char b = 0;
            CHECK_EQ(read_full(fds[i], &b, 1), 1);
            CHECK_EQ(b, 'b');
        }
    }
    for (int i = 0; i < 6; i++)
        close(fds[i]);
    CHECK_EQ(atomic_load(&off_bad), 0);
    wh_server_stop(off_srv, true);
    wh_server_wait(off_srv);
    wh_server_free(off_srv);
}

TEST(offload_delivers_on_submitting_loop)
{
    offload_model(WH_MODEL_REUSEPORT);
}
/* ONESHOT: a busy conn stays on its thread until the completion. */
TEST(offload_delivers_on_submitting_loop_oneshot)
{
    offload_model(WH_MODEL_ONESHOT);
}

/* ---- max_conns ----------------------------------------------------------- */

static void cap2(wh_server_opts *o)
{
    o->max_conns = 2;
}

TEST(max_conns_rejects_at_cap)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(WH_MODEL_REUSEPORT, 1, &cbs, NULL, cap2);
    CHECK(s);
    int port = server_port(s, 0);
    int a = cli_connect(port), b = cli_connect(port);
    char buf[4];
    CHECK(write_all(a, "ping", 4) && read_full(a, buf, 4) == 4);
    CHECK(write_all(b, "ping", 4) && read_full(b, buf, 4) == 4);
    /* The third is accepted by the kernel, then closed at once by wharf. */
    int c = cli_connect(port);
    CHECK(c >= 0);
    CHECK(wait_eof(c, 5000));
    close(c);
    wh_server_stats st;
    wh_server_stats_get(s, &st);
    CHECK_EQ(st.rejected, 1);
    CHECK_EQ(st.open_conns, 2);
    /* After one closes there is room again. */
    close(a);
    for (int i = 0; i < 200; i++) {
        wh_server_stats_get(s, &st);
        if (st.open_conns == 1) break;
        usleep(10000);
    }
    int d = cli_connect(port);
    CHECK(write_all(d, "pong", 4) && read_full(d, buf, 4) == 4);
    close(b);
    close(d);
    wh_server_free(s);
}

/* ---- idle timeout -------------------------------------------------------- */

static void idle500(wh_server_opts *o)
{
    o->idle_timeout_ms = 500;
}

static void idle_timeout_model(wh_model m)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(m, 2, &cbs, NULL, idle500);
    CHECK(s);
    int port = server_port(s, 0);
    int fd = cli_connect(port);
    char buf[2];
    /* Activity refreshes the timeout: 4 x 300 ms of pings stays open. */
    for (int i = 0; i < 4; i++) {
        usleep(300000);
        CHECK(write_all(fd, "hi", 2) && read_full(fd, buf, 2) == 2);
    }
    uint64_t t0 = now_ms();
    CHECK(wait_eof(fd, 5000));
    uint64_t dt = now_ms() - t0;
    /* State check with a generous tolerance (500 ms configured, wheel tick
     * 100 ms): closed, and neither far too early nor far too late. */
    CHECK(dt >= 200 && dt <= 1100);
    close(fd);
    wh_server_free(s);
}

TEST(idle_timeout_closes)
{
    idle_timeout_model(WH_MODEL_REUSEPORT);
}
TEST(idle_timeout_closes_oneshot)
{
    idle_timeout_model(WH_MODEL_ONESHOT);
}
TEST(idle_timeout_closes_dispatch)
{
    idle_timeout_model(WH_MODEL_DISPATCH);
}

/* ---- graceful stop ------------------------------------------------------- */

/* Line protocol: each line is "busy" for 300 ms (offloaded), then answered
 * with "ok <line>\n". */
static wh_server *gs_srv;

struct gs_req {
    wh_conn *c;
    char line[64];
};

static void gs_job(void *arg)
{
    usleep(300000);
}

static void gs_done(wh_loop *loop, void *arg)
{
    struct gs_req *r = arg;
    wh_conn_write(r->c, "ok ", 3);
    wh_conn_write(r->c, r->line, strlen(r->line));
    wh_conn_set_busy(r->c, false);
    free(r);
}

static size_t gs_read(wh_conn *c, char *data, size_t len, void *ud)
{
    char *nl = memchr(data, '\n', len);
    if (!nl) return 0;
    size_t n = (size_t)(nl - data) + 1;
    struct gs_req *r = calloc(1, sizeof(*r));
    r->c = c;
    memcpy(r->line, data, n < 63 ? n : 63);
    wh_conn_set_busy(c, true);
    wh_server_offload(gs_srv, wh_conn_loop(c), gs_job, gs_done, r);
    return n;
}

static void gs_opts(wh_server_opts *o)
{
    o->shutdown_timeout_ms = 5000;
}

static void graceful_model(wh_model m)
{
    wh_conn_cbs cbs = {.on_read = gs_read};
    gs_srv = start_server(m, 2, &cbs, NULL, gs_opts);
    CHECK(gs_srv);
    int port = server_port(gs_srv, 0);
    int busy[8], idle[8];
    for (int i = 0; i < 8; i++) {
        busy[i] = cli_connect(port);
        idle[i] = cli_connect(port);
    }
    for (int i = 0; i < 8; i++) {
        char line[16];
        int n = snprintf(line, sizeof(line), "req%d\n", i);
        CHECK(write_all(busy[i], line, (size_t)n));
    }
    usleep(100000); /* the requests are read and in flight */
    uint64_t t0 = now_ms();
    wh_server_stop(gs_srv, true);
    CHECK(wh_server_stopping(gs_srv));
    for (int i = 0; i < 8; i++) {
        /* Idle connections are closed without waiting for the busy ones. */
        CHECK(wait_eof(idle[i], 2000));
        close(idle[i]);
    }
    for (int i = 0; i < 8; i++) {
        char want[16], got[16] = {0};
        int n = snprintf(want, sizeof(want), "ok req%d\n", i);
        CHECK_EQ(read_full(busy[i], got, (size_t)n), (size_t)n);
        CHECK(memcmp(got, want, (size_t)n) == 0);
        CHECK(wait_eof(busy[i], 2000)); /* then closed */
        close(busy[i]);
    }
    CHECK_EQ(wh_server_wait(gs_srv), 0);
    CHECK(now_ms() - t0 < 4000); /* well before the 5 s deadline */
    wh_server_free(gs_srv);
}

TEST(graceful_stop_exclusive)
{
    graceful_model(WH_MODEL_EXCLUSIVE);
}
TEST(graceful_stop_oneshot)
{
    graceful_model(WH_MODEL_ONESHOT);
}
TEST(graceful_stop_dispatch)
{
    graceful_model(WH_MODEL_DISPATCH);
}
TEST(graceful_stop_reuseport)
{
    graceful_model(WH_MODEL_REUSEPORT);
}

/* A client that never reads keeps its conn non-idle: the deadline closes it. */
static void deadline_opts(wh_server_opts *o)
{
    o->shutdown_timeout_ms = 600;
}

/* Sends until the peer has stopped taking bytes for 200 ms (at most 3 s). */
static void fill_until_stuck(int fd, const char *buf, size_t len)
{
    uint64_t start = now_ms(), last = start;
    while (now_ms() - last < 200 && now_ms() - start < 3000) {
        if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
            last = now_ms();
        else
            usleep(5000);
    }
}

TEST(graceful_stop_deadline_then_forced)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(WH_MODEL_REUSEPORT, 1, &cbs, NULL, deadline_opts);
    CHECK(s);
    int fd = cli_connect(server_port(s, 0));
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    static char junk[1 << 20];
    /* Fill both directions: the server's queue holds what we do not read.
     * Keep pushing for a while: kernel buffers alone can absorb several MiB
     * (autotuned), and only past them does the echo queue in the server. */
    fill_until_stuck(fd, junk, sizeof junk);
    uint64_t t0 = now_ms();
    wh_server_stop(s, true);
    CHECK_EQ(wh_server_wait(s), 0);
    uint64_t dt = now_ms() - t0;
    if (!(dt >= 400 && dt < 3000))
        fprintf(stderr, "  deadline stop took %llu ms\n", (unsigned long long)dt);
    CHECK(dt >= 400 && dt < 3000);
    close(fd);
    wh_server_free(s);

    /* Forced stop: no wait for the deadline. */
    s = start_server(WH_MODEL_DISPATCH, 2, &cbs, NULL, gs_opts);
    CHECK(s);
    fd = cli_connect(server_port(s, 0));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    fill_until_stuck(fd, junk, sizeof junk);
    t0 = now_ms();
    wh_server_stop(s, true);
    usleep(200000);
    wh_server_stop(s, false); /* the "second signal" */
    CHECK_EQ(wh_server_wait(s), 0);
    CHECK(now_ms() - t0 < 2500);
    close(fd);
    wh_server_free(s);
}

/* wh_server_run handles SIGTERM: graceful stop and a 0 return. */
struct sig_arg {
    int port;
};
static void *sig_thread(void *arg)
{
    struct sig_arg *a = arg;
    int fd = cli_connect(a->port);
    char buf[4];
    if (fd >= 0 && write_all(fd, "ping", 4)) read_full(fd, buf, 4);
    kill(getpid(), SIGTERM);
    if (fd >= 0) {
        wait_eof(fd, 3000);
        close(fd);
    }
    return NULL;
}

TEST(run_handles_sigterm)
{
    wh_signal_block_defaults(); /* this thread and the helper thread too */
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server_opts o;
    wh_server_opts_init(&o);
    o.threads = 2;
    wh_server *s;
    CHECK_EQ(wh_server_new(&s, &o, &cbs, NULL), 0);
    CHECK_EQ(wh_server_listen(s, "127.0.0.1:0"), 0);
    struct sig_arg a = {server_port(s, 0)};
    pthread_t t;
    pthread_create(&t, NULL, sig_thread, &a);
    CHECK_EQ(wh_server_run(s), 0);
    pthread_join(t, NULL);
    wh_server_free(s);
}

WH_TEST_MAIN()

/* ---- wh_server_drain: keeps accepting, never closes idle conns early ---- */

static bool echo_once(int fd, const char *msg)
{
    size_t n = strlen(msg);
    char got[64] = {0};
    return write_all(fd, msg, n) && read_full(fd, got, n) == n && memcmp(got, msg, n) == 0;
}

/* n fresh connections to port, each echoing msg once: all must work. */
static bool echo_fresh(int port, const char *msg, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = cli_connect(port);
        bool ok = fd >= 0 && echo_once(fd, msg);
        if (fd >= 0) close(fd);
        if (!ok) return false;
    }
    return true;
}

static void drain_opts(wh_server_opts *o)
{
    o->shutdown_timeout_ms = 700;
}

static void drain_model(wh_model m)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(m, 2, &cbs, NULL, drain_opts);
    CHECK(s);
    int port = server_port(s, 0);
    int idle = cli_connect(port);
    CHECK(idle >= 0);
    CHECK(echo_once(idle, "before"));
    uint64_t t0 = now_ms();
    wh_server_drain(s, 400);
    CHECK(wh_server_stopping(s));
    /* The idle conn is not closed by the drain: its next request is served. */
    CHECK(!wait_eof(idle, 150));
    CHECK(echo_once(idle, "during"));
    /* Listeners still accept during accept_ms. */
    int late = cli_connect(port);
    CHECK(late >= 0);
    CHECK(echo_once(late, "late"));
    close(late);
    while (now_ms() - t0 < 600)
        usleep(10000);
    /* Then they are closed: refused. */
    int after = cli_connect(port);
    CHECK(after < 0);
    if (after >= 0) close(after);
    CHECK(echo_once(idle, "still"));
    /* The deadline (accept_ms + shutdown_timeout_ms) closes what stayed idle. */
    CHECK(wait_eof(idle, 3000));
    uint64_t dt = now_ms() - t0;
    CHECK(dt >= 1000 && dt < 3500);
    close(idle);
    CHECK_EQ(wh_server_wait(s), 0);
    wh_server_free(s);
}

TEST(drain_reuseport)
{
    drain_model(WH_MODEL_REUSEPORT);
}
TEST(drain_exclusive)
{
    drain_model(WH_MODEL_EXCLUSIVE);
}
TEST(drain_dispatch)
{
    drain_model(WH_MODEL_DISPATCH);
}

/* A forced stop during the accept phase ends it at once. */
TEST(drain_then_forced)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(WH_MODEL_REUSEPORT, 2, &cbs, NULL, drain_opts);
    CHECK(s);
    int fd = cli_connect(server_port(s, 0));
    CHECK(echo_once(fd, "x"));
    uint64_t t0 = now_ms();
    wh_server_drain(s, 5000);
    wh_server_stop(s, false);
    CHECK_EQ(wh_server_wait(s), 0);
    CHECK(now_ms() - t0 < 2000);
    CHECK(wait_eof(fd, 1000));
    close(fd);
    wh_server_free(s);
}

/* ---- listeners added and removed while running ---- */

static void listen_running_model(wh_model m)
{
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s = start_server(m, 2, &cbs, NULL, NULL);
    CHECK(s);
    int p0 = server_port(s, 0);
    int idx = wh_server_listen_add(s, "127.0.0.1:0");
    CHECK(idx > 0);
    int p1 = server_port(s, (unsigned)idx);
    CHECK(p1 > 0 && p1 != p0);
    CHECK_EQ(wh_server_listen_add(s, "udp://127.0.0.1:0"), -EOPNOTSUPP);
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) { /* the threads pick it up soon */
        fd = cli_connect(p1);
        if (fd < 0) usleep(10000);
    }
    CHECK(fd >= 0);
    CHECK(echo_once(fd, "new"));
    int fds[64];
    unsigned which[64];
    unsigned n = wh_server_listen_fds(s, fds, which, 64);
    unsigned want = m == WH_MODEL_REUSEPORT ? 4 : 2; /* two listeners, a socket per thread */
    CHECK_EQ(n, want);
    CHECK_EQ(wh_server_unlisten(s, (unsigned)idx), 0);
    CHECK_EQ(wh_server_unlisten(s, (unsigned)idx), -EINVAL);
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
        int f = cli_connect(p1);
        if (f < 0)
            refused = 1;
        else {
            close(f);
            usleep(10000);
        }
    }
    CHECK(refused);
    CHECK(echo_once(fd, "kept")); /* its connection stays */
    close(fd);
    int f0 = cli_connect(p0);
    CHECK(echo_once(f0, "old"));
    close(f0);
    /* The slot is reused once every thread let go of it (never in DISPATCH,
     * where a worker's ring may still hold a connection from it). */
    int idx2 = -1;
    if (m == WH_MODEL_DISPATCH) {
        idx2 = wh_server_listen_add(s, "127.0.0.1:0");
        CHECK(idx2 > idx);
    } else {
        for (int i = 0; i < 100 && idx2 != idx; i++) {
            if (idx2 >= 0) wh_server_unlisten(s, (unsigned)idx2);
            idx2 = wh_server_listen_add(s, "127.0.0.1:0");
            if (idx2 != idx) usleep(10000);
        }
        CHECK_EQ(idx2, idx);
    }
    wh_server_stop(s, true);
    CHECK_EQ(wh_server_wait(s), 0);
    CHECK_EQ(wh_server_listen_add(s, "127.0.0.1:0"), -EINVAL);
    wh_server_free(s);
}

TEST(listen_running_reuseport)
{
    listen_running_model(WH_MODEL_REUSEPORT);
}
TEST(listen_running_exclusive)
{
    listen_running_model(WH_MODEL_EXCLUSIVE);
}
TEST(listen_running_dispatch)
{
    listen_running_model(WH_MODEL_DISPATCH);
}

/* ---- sockets handed in (upgrade, socket activation) ---- */

static int reuseport_socket(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* blocking, no CLOEXEC: as inherited */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 64) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A listening SO_REUSEPORT socket on a fresh loopback port (the running
 * instance of a group): its fd, and the port in *port. */
static int reuseport_first(int *port)
{
    int fd = reuseport_socket(0);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) return -1;
    *port = ntohs(sin.sin_port);
    return fd;
}

TEST(listen_fd_group)
{
    int port;
    int a = reuseport_first(&port);
    CHECK(a >= 0);
    int b = reuseport_socket(port), c = reuseport_socket(port);
    CHECK(b >= 0 && c >= 0);
    /* A connection queued before the server exists is served, not lost. */
    int early = cli_connect(port);
    CHECK(early >= 0);
    wh_server_opts o;
    wh_server_opts_init(&o);
    o.threads = 2;
    o.handle_signals = false;
    wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s;
    CHECK_EQ(wh_server_new(&s, &o, &cbs, NULL), 0);
    int dgram = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(wh_server_listen_fd(s, dgram), -EINVAL);
    close(dgram);
    CHECK_EQ(wh_server_listen_fd(s, a), 0);
    CHECK_EQ(wh_server_listen_fd(s, b), 0); /* same group: same listener */
    CHECK_EQ(wh_server_listen_fd(s, c), 0);
    CHECK(fcntl(a, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(a, F_GETFL) & O_NONBLOCK);
    CHECK_EQ(wh_server_start(s), 0);
    int fds[8];
    CHECK_EQ(wh_server_listen_fds(s, fds, NULL, 8), 3u); /* three sockets, none closed */
    CHECK(echo_once(early, "early"));
    close(early);
    CHECK(echo_fresh(port, "x", 20));
    wh_server_stop(s, true);
    CHECK_EQ(wh_server_wait(s), 0);
    wh_server_free(s);
}

/* How many connections are queued on a listening socket (accepts them all). */
static int take_all(int lfd)
{
    int n = 0, fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        close(fd);
        n++;
    }
    return n;
}

static wh_server *ready_server(int port, bool when_ready)
{
    wh_server_opts o;
    wh_server_opts_init(&o);
    o.threads = 2;
    o.handle_signals = false;
    o.listen_when_ready = when_ready;
    static const wh_conn_cbs cbs = {.on_read = echo_read};
    wh_server *s;
    if (wh_server_new(&s, &o, &cbs, NULL) != 0) return NULL;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if (wh_server_listen(s, addr) != 0) {
        wh_server_free(s);
        return NULL;
    }
    return s;
}

/* A second instance bound beside a running one (the restart of wharfd): with
 * listen_when_ready its sockets take nothing until its threads run, so the
 * connections made meanwhile all reach the running one; without it the
 * kernel spreads them over the not-yet-served sockets too. */
TEST(listen_when_ready_group)
{
    for (int when_ready = 1; when_ready >= 0; when_ready--) {
        int port;
        int a = reuseport_first(&port);
        CHECK(a >= 0);
        fcntl(a, F_SETFL, O_NONBLOCK);
        wh_server *s = ready_server(port, when_ready);
        CHECK(s);
        int fds[40];
        for (int i = 0; i < 40; i++)
            CHECK((fds[i] = cli_connect(port)) >= 0);
        int at_a = take_all(a);
        if (when_ready)
            CHECK_EQ(at_a, 40);
        else
            CHECK(at_a < 40); /* 2 of the group's 3 sockets are the server's */
        CHECK_EQ(wh_server_start(s), 0);
        close(a); /* the first instance goes: the server alone serves now */
        CHECK(echo_fresh(port, "ready", 10));
        for (int i = 0; i < 40; i++)
            close(fds[i]);
        wh_server_stop(s, true);
        CHECK_EQ(wh_server_wait(s), 0);
        wh_server_free(s);
    }
}

/* Alone on its address, a listen_when_ready server refuses connections until
 * it starts (nothing would serve them), then serves them. */
TEST(listen_when_ready_refuses_before_start)
{
    wh_server *s = ready_server(0, true);
    CHECK(s);
    int port = server_port(s, 0);
    CHECK(port > 0);
    CHECK_EQ(cli_connect(port), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK_EQ(wh_server_start(s), 0);
    CHECK(echo_fresh(port, "now", 1));
    wh_server_stop(s, true);
    CHECK_EQ(wh_server_wait(s), 0);
    wh_server_free(s);
}
