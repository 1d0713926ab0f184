/* WH_TEST_LABELS: tsan
 * What one connection can make the HTTP engine hold, on a bare-loop host:
 * a declared Content-Length above the in-memory body budget is refused from
 * the head, before any body byte is read; a body answered before it was read
 * is dropped as it arrives and the connection kept (the next pipelined
 * request answered), or closed when too much of it is still due; a chunked
 * body is decoded as it arrives, so 1 MiB in 100-byte chunks (or small chunks
 * with long extensions) fits a budget of 1 MiB and only the decoded size
 * gets 413; and every request reaches on_complete, the engine's own
 * refusals (400, 408, 413, 431) and upgrades (101) included. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "http_host.h"
#include "test.h"

/* ---- what on_complete saw ---- */

struct rec {
    int status;
    char method[16];
    char target[64];
    uint64_t bytes;
    bool has_conn;
    bool method_null;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct rec recs[512];
static int nrec;

static void copy_str(char *dst, size_t cap, wh_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n) memcpy(dst, s.p, n);
    dst[n] = 0;
}

static void on_complete(wh_http_req *r, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&mu);
    if (nrec < (int)(sizeof recs / sizeof recs[0])) {
        struct rec *e = &recs[nrec++];
        e->status = wh_http_resp_status(r);
        wh_str m = wh_http_req_method(r);
        e->method_null = m.p == NULL;
        copy_str(e->method, sizeof e->method, m);
        copy_str(e->target, sizeof e->target, wh_http_req_target(r));
        e->bytes = wh_http_resp_bytes(r);
        e->has_conn = wh_http_req_conn(r) != NULL;
        /* Accessors that must be safe whatever the engine made of the head. */
        (void)wh_http_req_path(r);
        (void)wh_http_req_query(r);
        (void)wh_http_req_header(r, "host");
        (void)wh_http_req_header_count(r);
        (void)wh_http_req_version(r);
        (void)wh_http_req_body(r);
        (void)wh_http_req_start_ms(r);
    }
    pthread_mutex_unlock(&mu);
}

/* Waits up to 3 s for a record with status (and target, when given) from
 * index `from` on; copies it to *out. */
static bool wait_rec(int from, int status, const char *target, struct rec *out)
{
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&mu);
        for (int k = from; k < nrec; k++) {
            if (recs[k].status == status && (!target || !strcmp(recs[k].target, target))) {
                *out = recs[k];
                pthread_mutex_unlock(&mu);
                return true;
            }
        }
        pthread_mutex_unlock(&mu);
        usleep(10000);
    }
    return false;
}

static int rec_mark(void)
{
    pthread_mutex_lock(&mu);
    int n = nrec;
    pthread_mutex_unlock(&mu);
    return n;
}

/* ---- the servers ---- */

static bool path_is(wh_http_req *r, const char *p)
{
    wh_str s = wh_http_req_path(r);
    return s.len == strlen(p) && !memcmp(s.p, p, s.len);
}

static size_t up_read(wh_conn *c, char *data, size_t len, void *ud)
{
    (void)c;
    (void)data;
    (void)ud;
    return len;
}

static const wh_conn_cbs up_cbs = {.on_read = up_read};

static void handler(wh_http_req *r, void *ud)
{
    (void)ud;
    if (path_is(r, "/len")) {
        char msg[32];
        int m = snprintf(msg, sizeof msg, "len=%zu", wh_http_req_body(r).len);
        wh_http_respond(r, 200, "text/plain", msg, (size_t)m);
        return;
    }
    if (path_is(r, "/up") && wh_http_req_wants_upgrade(r)) {
        wh_conn *c = wh_http_req_upgrade(r);
        if (!c) return;
        static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                 "Upgrade: test\r\n\r\nhi";
        wh_conn_set_cbs(c, &up_cbs, NULL);
        wh_conn_write(c, sw, sizeof sw - 1);
        wh_conn_close(c);
        return;
    }
    wh_http_respond_error(r, 404);
}

/* /take: the body is taken in pieces and answered at the first one. */
static void take_piece(wh_http_req *r, const char *data, size_t len, int status, void *ud)
{
    (void)data;
    (void)len;
    (void)ud;
    if (status < 0) {
        wh_http_respond_error(r, 400);
        return;
    }
    wh_http_respond(r, 200, "text/plain", "took", 4);
}

/* /defer: decided 20 ms after the head, without the body. */
static void defer_fire(wh_timer *t, void *ud)
{
    wh_timer_free(t);
    wh_http_respond_error(ud, 403);
}

static void on_head(wh_http_req *r, void *ud)
{
    (void)ud;
    wh_timer *t;
    if (path_is(r, "/defer") && wh_timer_new(wh_http_req_loop(r), defer_fire, r, &t) == 0) {
        wh_http_req_defer(r);
        wh_timer_start(t, 20, 0);
    } else if (path_is(r, "/nope")) {
        wh_http_respond_error(r, 405); /* answered from the head: the body is not wanted */
    } else if (path_is(r, "/take")) {
        if (wh_http_req_read_body(r, take_piece, NULL) < 0) wh_http_respond_error(r, 500);
    }
}

static http_host host, big;
static wh_http_server *srv, *bigsrv;
static char rbuf[1 << 20];

TEST(start)
{
    wh_http_opts o;
    wh_http_opts_init(&o);
    CHECK_EQ(o.max_body, 32 << 10); /* the in-memory body budget */
    CHECK_EQ(o.max_discard, 64 << 10);
    o.on_head = on_head;
    o.on_complete = on_complete;
    o.header_timeout_ms = 600;
    CHECK_EQ(wh_http_server_new(&srv, &o, handler, NULL), 0);
    CHECK_EQ(http_host_start(&host, srv), 0);

    /* A budget raised to 1 MiB, bodies buffered (no on_head). */
    wh_http_opts_init(&o);
    o.max_body = 1u << 20;
    o.on_complete = on_complete;
    CHECK_EQ(wh_http_server_new(&bigsrv, &o, handler, NULL), 0);
    CHECK_EQ(http_host_start(&big, bigsrv), 0);

    /* The read buffer is raised only to what one request keeps. */
    wh_net_opts no;
    wh_net_opts_init(&no);
    size_t before = no.read_buf_max;
    wh_http_server_net_opts(srv, &no);
    CHECK_EQ(no.read_buf_max, before); /* 32 KiB + heads: under the net default */
    no.read_buf_max = 16384;
    wh_http_server_net_opts(srv, &no);
    CHECK(no.read_buf_max > (32u << 10) + 24576 && no.read_buf_max < (96u << 10));
}

static bool closed_soon(int fd, int ms)
{
    int eof;
    char tmp[4096];
    for (int i = 0; i < 8; i++) {
        http_recv_until(fd, tmp, sizeof tmp, NULL, 1, ms, &eof);
        if (eof) return true;
    }
    return false;
}

TEST(declared_length_over_budget_413_before_body)
{
    int mark = rec_mark();
    int fd = http_connect(host.port), eof;
    /* Only the head: the answer must come without a single body byte. */
    const char req[] = "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 413 ", 13));
    CHECK(strstr(rbuf, "Connection: close\r\n"));
    CHECK(eof || closed_soon(fd, 500));
    close(fd);
    struct rec e;
    CHECK(wait_rec(mark, 413, "/len", &e));
    CHECK(!strcmp(e.method, "POST"));
    CHECK(e.bytes > 0 && e.has_conn);

    /* The same on the buffered host without on_head (the parser refuses it). */
    mark = rec_mark();
    fd = http_connect(big.port);
    const char req2[] = "PUT /len HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\nabc";
    http_send(fd, req2, sizeof req2 - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 413 ", 13));
    close(fd);
    CHECK(wait_rec(mark, 413, "/len", &e));
    CHECK(!strcmp(e.method, "PUT"));
}

TEST(buffered_404_with_body_keeps_alive)
{
    /* The router's 404/405 come after a buffered body within the budget:
     * the body is read, the next pipelined request answered. */
    int fd = http_connect(host.port), eof;
    static char body[30000];
    memset(body, 'b', sizeof body);
    char head[128];
    int hn =
        snprintf(head, sizeof head,
                 "POST /missing HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    http_send(fd, head, (size_t)hn);
    http_send(fd, body, sizeof body);
    const char next[] = "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    http_send(fd, next, sizeof next - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "len=3", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 404 ", 13));
    CHECK(!strstr(rbuf, "Connection: close"));
    CHECK(strstr(rbuf, "len=3"));
    close(fd);
}

TEST(early_answer_discards_body_keeps_alive)
{
    /* 405 from on_head while the body is on its way: the answer goes out at
     * once, keeps the connection, and the body that follows is dropped. */
    int mark = rec_mark();
    int fd = http_connect(host.port), eof;
    static char body[50000];
    memset(body, 'd', sizeof body);
    char head[128];
    int hn = snprintf(head, sizeof head,
                      "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    char first[1200];
    memcpy(first, head, (size_t)hn);
    memcpy(first + hn, body, 1000);
    http_send(fd, first, (size_t)hn + 1000);
    http_recv_until(fd, rbuf, sizeof rbuf, "</h1>", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 405 ", 13));
    CHECK(!strstr(rbuf, "Connection: close"));
    CHECK(!eof);
    struct rec e;
    CHECK(wait_rec(mark, 405, "/nope", &e));
    /* The rest of the body, slowly, then a next request in the same write. */
    for (size_t off = 1000; off < sizeof body; off += 7000) {
        size_t k = sizeof body - off < 7000 ? sizeof body - off : 7000;
        http_send(fd, body + off, k);
        usleep(2000);
    }
    const char next[] = "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    http_send(fd, next, sizeof next - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "len=5", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 200 ", 13));
    CHECK(strstr(rbuf, "len=5"));
    close(fd);
}

TEST(early_answer_discards_chunked_body)
{
    int fd = http_connect(host.port), eof;
    const char req[] = "POST /nope HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhello\r\n";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "</h1>", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 405 ", 13));
    CHECK(!strstr(rbuf, "Connection: close"));
    const char rest[] = "6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
                        "GET /len HTTP/1.1\r\nHost: a\r\n\r\n";
    http_send(fd, rest, sizeof rest - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "len=0", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 200 ", 13));
    close(fd);

    /* A chunked body that goes on past max_discard: dropped, then closed. */
    fd = http_connect(host.port);
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "</h1>", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 405 ", 13));
    static char chunk[8192 + 16];
    int cn = snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + cn, 'c', 8192);
    memcpy(chunk + cn + 8192, "\r\n", 2);
    for (int i = 0; i < 12; i++) /* 96 KiB */
        http_send(fd, chunk, (size_t)cn + 8194);
    CHECK(closed_soon(fd, 1000));
    close(fd);
}

TEST(early_answer_closes_when_much_is_due)
{
    /* 200 KB still due (over max_discard): Connection: close. */
    int fd = http_connect(host.port), eof;
    const char req[] = "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\nxxxx";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 405 ", 13));
    CHECK(strstr(rbuf, "Connection: close\r\n"));
    CHECK(eof || closed_soon(fd, 500));
    close(fd);

    /* Expect: 100-continue and no body yet: the client may never send it
     * (RFC 9110 §10.1.1), so the body cannot be waited for. */
    fd = http_connect(host.port);
    const char ex[] = "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                      "Expect: 100-continue\r\n\r\n";
    http_send(fd, ex, sizeof ex - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 405 ", 13));
    CHECK(strstr(rbuf, "Connection: close\r\n"));
    close(fd);
}

TEST(stream_answer_mid_body_discards_rest)
{
    /* The reader answers at its first piece; the rest (under max_discard)
     * is dropped and the connection serves the next request. */
    int fd = http_connect(host.port), eof;
    static char body[40000];
    memset(body, 't', sizeof body);
    char head[128];
    int hn = snprintf(head, sizeof head,
                      "POST /take HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    http_send(fd, head, (size_t)hn);
    http_send(fd, body, 100);
    http_recv_until(fd, rbuf, sizeof rbuf, "took", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 200 ", 13));
    CHECK(!strstr(rbuf, "Connection: close"));
    http_send(fd, body + 100, sizeof body - 100);
    const char next[] = "GET /len HTTP/1.1\r\nHost: a\r\n\r\n";
    http_send(fd, next, sizeof next - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "len=0", 1, 2000, &eof);
    CHECK(strstr(rbuf, "len=0"));
    close(fd);
}

TEST(deferred_answer_discards_body)
{
    /* Answered later from on_head's deferral, the body never taken: what
     * came meanwhile and what follows is dropped, the connection kept. */
    int fd = http_connect(host.port), eof;
    static char body[10000];
    memset(body, 'f', sizeof body);
    char head[128];
    int hn = snprintf(head, sizeof head,
                      "PUT /defer HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    /* Head and the first body bytes in one segment: the engine sees the body
     * on its way before it defers (while deferred it reads nothing). */
    static char first[128 + 3000];
    memcpy(first, head, (size_t)hn);
    memcpy(first + hn, body, 3000);
    http_send(fd, first, (size_t)hn + 3000);
    http_recv_until(fd, rbuf, sizeof rbuf, "</h1>", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 403 ", 13));
    CHECK(!strstr(rbuf, "Connection: close"));
    http_send(fd, body + 3000, sizeof body - 3000);
    const char next[] = "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
    http_send(fd, next, sizeof next - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "len=2", 1, 2000, &eof);
    CHECK(strstr(rbuf, "len=2"));
    close(fd);
}

/* Sends n decoded bytes as chunks of `piece` bytes, each with an extension
 * of ext bytes, then reads the answer into rbuf. */
static void chunked_upload(int port, size_t n, size_t piece, size_t ext, int *eof)
{
    int fd = http_connect(port);
    const char head[] = "POST /len HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    http_send(fd, head, sizeof head - 1);
    /* One batch of chunks at a time, so the sends are large. */
    static char batch[1 << 20];
    static char extbuf[4096];
    memset(extbuf, 'e', sizeof extbuf);
    size_t bl = 0;
    for (size_t sent = 0; sent < n;) {
        size_t k = n - sent < piece ? n - sent : piece;
        if (bl + k + ext + 32 > sizeof batch) {
            http_send(fd, batch, bl);
            bl = 0;
        }
        bl += (size_t)snprintf(batch + bl, 32, "%zx", k);
        if (ext) {
            batch[bl++] = ';';
            memcpy(batch + bl, extbuf, ext - 1);
            bl += ext - 1;
        }
        memcpy(batch + bl, "\r\n", 2);
        bl += 2;
        memset(batch + bl, 'z', k);
        bl += k;
        memcpy(batch + bl, "\r\n", 2);
        bl += 2;
        sent += k;
    }
    memcpy(batch + bl, "0\r\n\r\n", 5);
    http_send(fd, batch, bl + 5);
    http_recv_until(fd, rbuf, sizeof rbuf, "\r\n\r\n", 1, 5000, eof);
    http_recv_until(fd, rbuf + strlen(rbuf), sizeof rbuf - strlen(rbuf), NULL, 1, 300, eof);
    close(fd);
}

TEST(chunked_small_chunks_within_budget)
{
    /* 1 MiB in 100-byte chunks is 1.06 MiB on the wire: the framing does not
     * count against a budget of 1 MiB. */
    int eof;
    chunked_upload(big.port, 1u << 20, 100, 0, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 200 ", 13));
    CHECK(strstr(rbuf, "len=1048576"));
    /* Long extensions: 256 KiB in 100-byte chunks with 1000-byte
     * extensions, 2.9 MB on the wire. */
    chunked_upload(big.port, 256u << 10, 100, 1000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 200 ", 13));
    CHECK(strstr(rbuf, "len=262144"));
    /* On the default budget too: 32 KiB in 100-byte chunks. */
    chunked_upload(host.port, 32u << 10, 100, 0, &eof);
    CHECK(strstr(rbuf, "len=32768"));
}

TEST(chunked_decoded_over_budget_413)
{
    int mark = rec_mark();
    int eof;
    chunked_upload(host.port, 100000, 1000, 0, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 413 ", 13));
    CHECK(strstr(rbuf, "Connection: close\r\n"));
    struct rec e;
    CHECK(wait_rec(mark, 413, "/len", &e));
    /* Exactly at the budget is fine; one byte more is not. */
    chunked_upload(big.port, (1u << 20) + 1, 4096, 0, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 413 ", 13));
    chunked_upload(big.port, 1u << 20, 4096, 0, &eof);
    CHECK(strstr(rbuf, "len=1048576"));
}

TEST(refusals_reach_on_complete)
{
    struct rec e;
    int eof;
    /* 400: a malformed field; the request line was read. */
    int mark = rec_mark();
    int fd = http_connect(host.port);
    const char bad[] = "GET /x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n";
    http_send(fd, bad, sizeof bad - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 400 ", 13));
    close(fd);
    CHECK(wait_rec(mark, 400, NULL, &e));
    CHECK(e.bytes > 0 && e.has_conn);

    /* 400 for bytes that are no request at all: empty fields. */
    mark = rec_mark();
    fd = http_connect(host.port);
    const char junk[] = "\x01\x02\x03 junk\r\n\r\n";
    http_send(fd, junk, sizeof junk - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 400 ", 13));
    close(fd);
    CHECK(wait_rec(mark, 400, "", &e));
    CHECK(e.method_null && e.method[0] == 0);

    /* 431: a header block over 16 KiB. */
    mark = rec_mark();
    fd = http_connect(host.port);
    static char big_head[20000];
    int n = snprintf(big_head, sizeof big_head, "GET /h HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big_head + n, 'a', 17000);
    memcpy(big_head + n + 17000, "\r\n\r\n", 4);
    http_send(fd, big_head, (size_t)n + 17004);
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 431 ", 13));
    close(fd);
    CHECK(wait_rec(mark, 431, NULL, &e));

    /* 408: a head trickled past header_timeout_ms (600 ms) is answered 408
     * when its next byte comes, or closed by the timer just before. */
    mark = rec_mark();
    fd = http_connect(host.port);
    const char slow[] = "GET /slow HTTP/1.1\r\nHost: a\r\nX-Trickle: ";
    http_send(fd, slow, sizeof slow - 1);
    for (int i = 0; i < 14; i++) {
        usleep(60000);
        http_send(fd, "t", 1);
    }
    http_recv_until(fd, rbuf, sizeof rbuf, NULL, 1, 1500, &eof);
    CHECK(rbuf[0] == 0 || !strncmp(rbuf, "HTTP/1.1 408 ", 13));
    close(fd);
    CHECK(wait_rec(mark, 408, NULL, &e));

    /* 408 with nothing sent: a partial head that stops; the timer closes it. */
    mark = rec_mark();
    fd = http_connect(host.port);
    http_send(fd, "GET /stuck HT", 13);
    CHECK(closed_soon(fd, 500));
    close(fd);
    CHECK(wait_rec(mark, 408, NULL, &e));
    CHECK_EQ(e.bytes, 0);

    /* 408 for a body that stops coming. */
    mark = rec_mark();
    fd = http_connect(host.port);
    const char part[] = "POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc";
    http_send(fd, part, sizeof part - 1);
    CHECK(closed_soon(fd, 500));
    close(fd);
    CHECK(wait_rec(mark, 408, NULL, &e));
}

TEST(upgrade_reaches_on_complete)
{
    int mark = rec_mark();
    int fd = http_connect(host.port), eof;
    const char req[] =
        "GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    http_recv_until(fd, rbuf, sizeof rbuf, "hi", 1, 2000, &eof);
    CHECK(!strncmp(rbuf, "HTTP/1.1 101 ", 13));
    close(fd);
    struct rec e;
    CHECK(wait_rec(mark, 101, "/up", &e));
    CHECK(!strcmp(e.method, "GET"));
    CHECK_EQ(e.bytes, 0);
    CHECK(e.has_conn);
}

TEST(stop)
{
    CHECK_EQ(http_host_stop(&host), 0);
    CHECK_EQ(http_host_stop(&big), 0);
    wh_http_server_free(srv);
    wh_http_server_free(bigsrv);
}

WH_TEST_MAIN()
