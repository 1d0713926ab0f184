/* WH_TEST_LABELS: tsan
 * The HTTP engine's streaming hooks, on a bare-loop host: on_head answering
 * before the body (keep-alive kept when the body was already in, closed when
 * it was still due), bodies delivered in pieces (Content-Length and chunked)
 * in bounded memory, backpressure with pause/resume, an early answer in the
 * middle of an upload, a deferred decision, a client leaving mid-body,
 * streamed responses driven by the drain callback, the error-body hook, and
 * max_body for bodies on_head leaves to the buffered path. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "http_host.h"
#include "test.h"

static http_host host;
static wh_http_server *srv;
static atomic_int body_errors;  /* bodies that ended with a negative status */
static atomic_int drains;       /* drain callbacks of streamed responses */
static atomic_ulong max_pieces; /* largest body piece handed to a reader */

/* ---- body readers ---- */

struct upload {
    uint64_t n, sum;
    size_t max_piece;
    bool slow;          /* pause after each piece, resume from a timer */
    uint64_t answer_at; /* respond 413 once this many bytes came (0 = never) */
    wh_timer *t;
};

static void upload_free(wh_http_req *r, struct upload *u)
{
    (void)r;
    if (u->t) wh_timer_free(u->t);
    free(u);
}

static void resume_cb(wh_timer *t, void *ud)
{
    (void)t;
    wh_http_req_resume_body(ud);
}

static void on_piece(wh_http_req *r, const char *data, size_t len, int status, void *ud)
{
    struct upload *u = ud;
    if (status < 0) {
        atomic_fetch_add(&body_errors, 1);
        wh_http_respond_error(r, 400); /* -EPIPE if the client is gone: r is freed */
        upload_free(r, u);
        return;
    }
    for (size_t i = 0; i < len; i++)
        u->sum += (unsigned char)data[i];
    u->n += len;
    if (len > u->max_piece) u->max_piece = len;
    unsigned long prev = atomic_load(&max_pieces);
    while (len > prev && !atomic_compare_exchange_weak(&max_pieces, &prev, len))
        ;
    if (u->answer_at && u->n >= u->answer_at) {
        wh_http_respond(r, 413, "text/plain", "too much\n", 9);
        upload_free(r, u); /* no more pieces come: the connection closes */
        return;
    }
    if (status == WH_HTTP_BODY_END) {
        char msg[96];
        int m = snprintf(msg, sizeof msg, "n=%llu sum=%llu", (unsigned long long)u->n,
                         (unsigned long long)u->sum);
        wh_http_respond(r, 200, "text/plain", msg, (size_t)m);
        upload_free(r, u);
        return;
    }
    if (u->slow) {
        wh_http_req_pause_body(r);
        if (!u->t && wh_timer_new(wh_http_req_loop(r), resume_cb, r, &u->t) < 0) return;
        wh_timer_start(u->t, 2, 0);
    }
}

static struct upload *upload_new(void)
{
    return calloc(1, sizeof(struct upload));
}

/* /later: decide 20 ms after the head, then take the body. */
static void later_fire(wh_timer *t, void *ud)
{
    wh_http_req *r = ud;
    wh_timer_free(t);
    struct upload *u = upload_new();
    if (wh_http_req_read_body(r, on_piece, u) < 0) {
        free(u);
        wh_http_respond_error(r, 500);
    }
}

static bool path_is(wh_http_req *r, const char *p)
{
    wh_str s = wh_http_req_path(r);
    return s.len == strlen(p) && !memcmp(s.p, p, s.len);
}

static void on_head(wh_http_req *r, void *ud)
{
    (void)ud;
    if (path_is(r, "/auth")) {
        wh_http_respond(r, 401, "text/plain", "who?\n", 5);
    } else if (path_is(r, "/upload") || path_is(r, "/slow") || path_is(r, "/early")) {
        struct upload *u = upload_new();
        u->slow = path_is(r, "/slow");
        u->answer_at = path_is(r, "/early") ? 1000 : 0;
        if (wh_http_req_read_body(r, on_piece, u) < 0) {
            free(u);
            wh_http_respond_error(r, 400);
        }
    } else if (path_is(r, "/later")) {
        wh_timer *t;
        if (wh_timer_new(wh_http_req_loop(r), later_fire, r, &t) == 0) {
            wh_http_req_defer(r);
            wh_timer_start(t, 20, 0);
        }
    }
    /* anything else: buffered, the handler answers */
}

/* ---- the handler (buffered path) ---- */

struct out {
    size_t left;
};

static void out_more(wh_http_req *r, void *ud)
{
    struct out *o = ud;
    static char chunk[64 * 1024];
    if (ud == NULL) return;
    if (wh_http_resp_bytes(r) && !wh_http_resp_writable(r)) return;
    while (o->left && wh_http_resp_writable(r)) {
        size_t k = o->left < sizeof chunk ? o->left : sizeof chunk;
        memset(chunk, 'x', k);
        if (wh_http_resp_stream(r, chunk, k) < 0) break;
        o->left -= k;
    }
    if (!o->left) {
        wh_http_resp_on_drain(r, NULL, NULL);
        wh_http_resp_end_stream(r);
        free(o);
    }
}

static void on_drain_cb(wh_http_req *r, void *ud)
{
    atomic_fetch_add(&drains, 1);
    out_more(r, ud);
}

static void handler(wh_http_req *r, void *ud)
{
    (void)ud;
    if (path_is(r, "/stream-out")) {
        struct out *o = malloc(sizeof *o);
        o->left = 8u << 20;
        wh_http_resp_begin_stream(r, 200, "application/octet-stream");
        wh_http_resp_on_drain(r, on_drain_cb, o);
        out_more(r, o);
        return;
    }
    if (path_is(r, "/len")) {
        char msg[32];
        int m = snprintf(msg, sizeof msg, "len=%zu", wh_http_req_body(r).len);
        wh_http_respond(r, 200, "text/plain", msg, (size_t)m);
        return;
    }
    wh_http_respond_error(r, 404);
}

static int error_body(int status, const wh_http_req *r, char *buf, size_t cap, const char **type,
                      void *ud)
{
    (void)ud;
    *type = "application/json";
    return snprintf(buf, cap, "{\"error\":%d,\"parsed\":%s}", status, r ? "true" : "false");
}

/* ---- tests ---- */

static char rbuf[1 << 20];

TEST(start)
{
    wh_http_opts o;
    wh_http_opts_init(&o);
    o.on_head = on_head;
    o.error_body = error_body;
    o.max_body = 4000;
    o.header_timeout_ms = 2000;
    CHECK_EQ(wh_http_server_new(&srv, &o, handler, NULL), 0);
    CHECK_EQ(http_host_start(&host, srv), 0);
}

TEST(head_answers_before_body_closes)
{
    int fd = http_connect(host.port), eof;
    const char req[] = "POST /auth HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 401 ", 13));
    CHECK(strstr(rbuf, "Connection: close\r\n"));
    CHECK(eof); /* the 100000 body bytes still due are never read */
    close(fd);
}

TEST(head_answers_with_body_in_keeps_alive)
{
    int fd = http_connect(host.port), eof;
    const char req[] = "POST /auth HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                       "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "len=3", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 401 ", 13));
    CHECK(!strstr(rbuf, "Connection: close"));
    CHECK(strstr(rbuf, "len=3"));
    close(fd);
}

static void upload(const char *path, size_t n, bool chunked, char *reply, int *eof)
{
    int fd = http_connect(host.port);
    char head[256];
    int hn =
        chunked
            ? snprintf(head, sizeof head,
                       "POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", path)
            : snprintf(head, sizeof head,
                       "POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", path, n);
    http_send(fd, head, (size_t)hn);
    static char block[40000];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (char)(i * 7);
    for (size_t sent = 0; sent < n;) {
        size_t k = n - sent < sizeof block ? n - sent : sizeof block;
        if (chunked) {
            char sz[32];
            int m = snprintf(sz, sizeof sz, "%zx\r\n", k);
            http_send(fd, sz, (size_t)m);
        }
        http_send(fd, block, k);
        if (chunked) http_send(fd, "\r\n", 2);
        sent += k;
    }
    if (chunked) http_send(fd, "0\r\n\r\n", 5);
    http_recv_until(fd, reply, sizeof rbuf, "sum=", 1, 5000, eof);
    http_recv_until(fd, reply + strlen(reply), sizeof rbuf - strlen(reply), NULL, 1, 100, eof);
    close(fd);
}

static unsigned long long expect_sum(size_t n)
{
    unsigned long long s = 0;
    for (size_t i = 0; i < n; i++)
        s += (unsigned char)(char)((i % 40000) * 7);
    return s;
}

TEST(upload_in_pieces_content_length)
{
    int eof;
    size_t n = 20u << 20; /* far above max_body and the read buffer */
    upload("/upload", n, false, rbuf, &eof);
    char want[96];
    snprintf(want, sizeof want, "n=%zu sum=%llu", n, expect_sum(n));
    CHECK(strstr(rbuf, want));
    /* Bounded memory: no piece larger than one read buffer (16 KiB default). */
    CHECK(atomic_load(&max_pieces) <= 16384);
}

TEST(upload_in_pieces_chunked)
{
    int eof;
    size_t n = 3u << 20;
    upload("/upload", n, true, rbuf, &eof);
    char want[96];
    snprintf(want, sizeof want, "n=%zu sum=%llu", n, expect_sum(n));
    CHECK(strstr(rbuf, want));
}

TEST(upload_with_backpressure)
{
    int eof;
    size_t n = 1u << 20;
    upload("/slow", n, false, rbuf, &eof);
    char want[96];
    snprintf(want, sizeof want, "n=%zu sum=%llu", n, expect_sum(n));
    CHECK(strstr(rbuf, want));
}

TEST(deferred_then_read)
{
    int eof;
    size_t n = 200000;
    upload("/later", n, false, rbuf, &eof);
    char want[96];
    snprintf(want, sizeof want, "n=%zu sum=%llu", n, expect_sum(n));
    CHECK(strstr(rbuf, want));
}

TEST(early_answer_closes)
{
    int fd = http_connect(host.port), eof;
    const char head[] = "POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n";
    http_send(fd, head, sizeof head - 1);
    static char junk[5000];
    http_send(fd, junk, sizeof junk);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 413 ", 13));
    CHECK(strstr(rbuf, "Connection: close\r\n"));
    CHECK(eof);
    close(fd);
}

TEST(client_gone_mid_body)
{
    int before = atomic_load(&body_errors);
    int fd = http_connect(host.port);
    const char head[] = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc";
    http_send(fd, head, sizeof head - 1);
    usleep(50000);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&body_errors) == before; i++)
        usleep(10000);
    CHECK_EQ(atomic_load(&body_errors), before + 1);
}

TEST(streamed_response_drains)
{
    int fd = http_connect(host.port), eof;
    /* A small window, yet above one loopback MSS (64 KiB): below it the
     * sender stalls on zero-window probes. */
    int small = 128 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char req[] = "GET /stream-out HTTP/1.1\r\nHost: a\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    size_t total = 0;
    char tmp[65536];
    /* Read slowly at first, so the server's queue passes its high watermark. */
    usleep(100000);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0) break;
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k <= 0) break;
        total += (size_t)k;
        if (total > (8u << 20) && memmem(tmp, (size_t)k, "\r\n0\r\n\r\n", 7)) break;
    }
    fprintf(stderr, "  streamed %zu bytes, %d drains\n", total, atomic_load(&drains));
    CHECK(total > (8u << 20));
    CHECK(atomic_load(&drains) > 0);
    (void)eof;
    close(fd);
}

TEST(error_hook_renders_json)
{
    int fd = http_connect(host.port), eof;
    const char req[] = "GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "}", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 404 ", 13));
    CHECK(strstr(rbuf, "Content-Type: application/json\r\n"));
    CHECK(strstr(rbuf, "{\"error\":404,\"parsed\":true}"));
    close(fd);
    /* A request the parser refuses: no request object, still JSON. */
    fd = http_connect(host.port);
    const char bad[] = "GET /x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n";
    http_send(fd, bad, sizeof bad - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "}", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 400 ", 13));
    CHECK(strstr(rbuf, "{\"error\":400,\"parsed\":false}"));
    close(fd);
}

TEST(buffered_body_over_max_is_413)
{
    int fd = http_connect(host.port), eof;
    const char req[] = "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "}", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 413 ", 13));
    close(fd);
}

TEST(stop)
{
    CHECK_EQ(http_host_stop(&host), 0);
    wh_http_server_free(srv);
}

WH_TEST_MAIN()
