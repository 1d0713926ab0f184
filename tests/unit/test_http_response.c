/* WH_TEST_LABELS: tsan
 * What a handler can and cannot put on the wire, checked on the bytes a real
 * engine sends (bare-loop host, raw loopback sockets): field names must be
 * tokens and values (content types included) free of CR, LF and other
 * controls; framing (Content-Length, Transfer-Encoding) is the engine's;
 * "Connection: close" from a handler closes the connection after the
 * response; Date and Server are replaced, never doubled; a refused call
 * sends nothing and the request can still be answered. Responses are read
 * back with wharf's own response parser. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "http_host.h"
#include "test.h"
#include "wharf/http_parse.h"

static http_host host;
static wh_http_server *srv;
static int tmpfd = -1;

/* Return codes of the calls a handler made, read by the test thread once
 * the response is in. */
#define MAXRC 16
static atomic_int rcs[MAXRC];
static atomic_int nrc;

static void note(int rc)
{
    int i = atomic_fetch_add(&nrc, 1);
    if (i < MAXRC) atomic_store(&rcs[i], rc);
}

static void rc_reset(void)
{
    atomic_store(&nrc, 0);
    for (int i = 0; i < MAXRC; i++)
        atomic_store(&rcs[i], 12345);
}

static bool path_is(wh_http_req *r, const char *p)
{
    wh_str s = wh_http_req_path(r);
    return s.len == strlen(p) && !memcmp(s.p, p, s.len);
}

/* 1 if fd is no longer open. */
static int fcntl_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* ---- handlers ---- */

static void h_inject_ct(wh_http_req *r)
{
    note(wh_http_respond(r, 200, "text/plain\r\nX-Injected: 1", "x", 1));
    note(wh_http_respond(r, 200, "text/plain\nX-Injected: 1", "x", 1));
    note(wh_http_respond(r, 200, "text/plain\rX-Injected: 1", "x", 1));
    note(wh_http_respond(r, 200, "text/\x01plain", "x", 1));
    note(wh_http_respond(r, 200, "text/\x7fplain", "x", 1));
    note(wh_http_respond(r, 500, "text/plain", "fallback", 8));
}

/* Refused, then nothing: the engine answers 500 for the handler. */
static void h_inject_ct_only(wh_http_req *r)
{
    note(wh_http_respond(r, 200, "a\r\n\r\n<script>", "x", 1));
}

static void h_inject_hdr(wh_http_req *r)
{
    note(wh_http_resp_header(r, "X-A", "v\r\nX-Injected: 1"));
    note(wh_http_resp_header(r, "X-A", "v\nX-Injected: 1"));
    note(wh_http_resp_header(r, "X-A", "v\x01"));
    note(wh_http_resp_header(r, "X-Injected: 1\r\nX-B", "v"));
    note(wh_http_resp_header(r, "X A", "v"));
    note(wh_http_resp_header(r, "X:", "v"));
    note(wh_http_resp_header(r, "", "v"));
    note(wh_http_resp_header(r, "X(", "v"));
    note(wh_http_resp_header(r, "X-Tab", "a\tb"));        /* HTAB is allowed */
    note(wh_http_resp_header(r, "X-Obs", "caf\xc3\xa9")); /* obs-text too */
    note(wh_http_resp_header(r, "X-Empty", ""));
    note(wh_http_respond(r, 200, "text/plain", "ok", 2));
}

static void h_framing(wh_http_req *r)
{
    note(wh_http_resp_header(r, "Content-Length", "5"));
    note(wh_http_resp_header(r, "content-length", "0"));
    note(wh_http_resp_header(r, "CONTENT-LENGTH", "11"));
    note(wh_http_resp_header(r, "Transfer-Encoding", "chunked"));
    note(wh_http_resp_header(r, "transfer-encoding", "identity"));
    note(wh_http_resp_header(r, "Content-Lengthx", "1")); /* another field */
    note(wh_http_respond(r, 200, "text/plain", "hello world", 11));
}

static void h_stream_framing(wh_http_req *r)
{
    note(wh_http_resp_header(r, "Transfer-Encoding", "chunked"));
    note(wh_http_resp_header(r, "Content-Length", "3"));
    note(wh_http_resp_begin_stream(r, 200, "text/plain\r\nX-Injected: 1"));
    note(wh_http_resp_begin_stream(r, 200, "text/plain"));
    note(wh_http_resp_stream(r, "abc", 3));
    note(wh_http_resp_end_stream(r));
}

static void h_file(wh_http_req *r)
{
    int fd = dup(tmpfd);
    note(wh_http_respond_file(r, 200, "text/plain\r\nX-Injected: 1", fd, 0, 10, true));
    note(fcntl_closed(fd));
    note(wh_http_respond_file(r, 200, "text/plain", dup(tmpfd), 2, 5, true));
}

static void h_status(wh_http_req *r)
{
    note(wh_http_respond(r, 99, "text/plain", "x", 1));
    note(wh_http_respond(r, 100, "text/plain", "x", 1));
    note(wh_http_respond(r, 101, NULL, NULL, 0));
    note(wh_http_respond(r, 600, "text/plain", "x", 1));
    note(wh_http_respond(r, -200, "text/plain", "x", 1));
    note(wh_http_resp_begin_stream(r, 1000, "text/plain"));
    note(wh_http_respond(r, 200, "text/plain", NULL, 3));
    note(wh_http_respond(r, 299, "text/plain", "ok", 2));
}

static void h_close(wh_http_req *r)
{
    wh_str v = wh_http_req_query(r);
    char val[64];
    snprintf(val, sizeof val, "%.*s", (int)v.len, v.p);
    for (char *p = val; *p; p++)
        if (*p == '_') *p = ' ';
    note(wh_http_resp_header(r, "Connection", val));
    note(wh_http_respond(r, 200, "text/plain", "first", 5));
}

static void h_conn_refused(wh_http_req *r)
{
    note(wh_http_resp_header(r, "Connection", "keep-alive"));
    note(wh_http_resp_header(r, "Connection", "upgrade"));
    note(wh_http_resp_header(r, "connection", "closed"));
    note(wh_http_resp_header(r, "Connection", ""));
    note(wh_http_resp_header(r, "Connection", "x-close, keep-alive"));
    note(wh_http_respond(r, 200, "text/plain", "kept", 4));
}

static void h_date_server(wh_http_req *r)
{
    wh_str q = wh_http_req_query(r);
    bool date = memchr(q.p, 'd', q.len) != NULL, server = memchr(q.p, 's', q.len) != NULL;
    note(wh_http_resp_header(r, "X-Before", "1"));
    if (date) note(wh_http_resp_header(r, "date", "Sun, 06 Nov 1994 08:49:37 GMT"));
    if (server) note(wh_http_resp_header(r, "Server", "custom/1.0"));
    note(wh_http_resp_header(r, "X-After", "2"));
    if (date) note(wh_http_resp_header(r, "Date", "Mon, 07 Nov 1994 08:49:37 GMT"));
    if (server) note(wh_http_resp_header(r, "SERVER", "other"));
    note(wh_http_respond(r, 200, "text/plain", "ds", 2));
}

static void async_fire(wh_timer *t, void *ud)
{
    wh_http_req *r = ud;
    note(wh_http_resp_header(r, "Content-Length", "1"));
    note(wh_http_respond(r, 200, "x\r\nY: z", "late", 4));
    note(wh_http_respond(r, 200, "text/plain", "late", 4));
    wh_timer_free(t);
}

static void h_async(wh_http_req *r)
{
    wh_timer *t;
    note(wh_http_req_defer(r));
    wh_timer_new(wh_http_req_loop(r), async_fire, r, &t);
    wh_timer_start(t, 20, 0);
}

static void handler(wh_http_req *r, void *ud)
{
    (void)ud;
    if (path_is(r, "/inject-ct"))
        h_inject_ct(r);
    else if (path_is(r, "/inject-ct-only"))
        h_inject_ct_only(r);
    else if (path_is(r, "/inject-hdr"))
        h_inject_hdr(r);
    else if (path_is(r, "/framing"))
        h_framing(r);
    else if (path_is(r, "/stream-framing"))
        h_stream_framing(r);
    else if (path_is(r, "/file"))
        h_file(r);
    else if (path_is(r, "/status"))
        h_status(r);
    else if (path_is(r, "/close"))
        h_close(r);
    else if (path_is(r, "/conn-refused"))
        h_conn_refused(r);
    else if (path_is(r, "/ds"))
        h_date_server(r);
    else if (path_is(r, "/async"))
        h_async(r);
    else
        wh_http_respond(r, 200, "text/plain", "plain", 5);
}

/* ---- client side ---- */

static char rbuf[1 << 16];
static size_t rlen;
static int reof;
static wh_http_parsed_response resp;

/* Sends req on a new connection and reads until the peer closes or goes
 * quiet; parses the first response into resp. Its head length, or < 0. */
static int exchange(const char *req, int quiet_ms)
{
    int fd = http_connect(host.port);
    if (fd < 0) return -1;
    http_send(fd, req, strlen(req));
    rlen = http_recv_until(fd, rbuf, sizeof rbuf, NULL, 0, quiet_ms, &reof);
    close(fd);
    return wh_http_parse_response(rbuf, rlen, &resp, NULL);
}

static bool name_eq(wh_str s, const char *lit)
{
    return s.len == strlen(lit) && !strncasecmp(s.p, lit, s.len);
}

static int hcount(const char *name)
{
    int n = 0;
    for (unsigned i = 0; i < resp.nheaders; i++)
        if (name_eq(resp.headers[i].name, name)) n++;
    return n;
}

static bool hval(const char *name, const char *want)
{
    for (unsigned i = 0; i < resp.nheaders; i++)
        if (name_eq(resp.headers[i].name, name))
            return resp.headers[i].value.len == strlen(want) &&
                   !memcmp(resp.headers[i].value.p, want, strlen(want));
    return false;
}

/* The body of the first response, when Content-Length framed. */
static bool body_is(int head, const char *want)
{
    return resp.framing == WH_HTTP_BODY_LENGTH && resp.content_length == strlen(want) &&
           rlen >= (size_t)head + strlen(want) && !memcmp(rbuf + head, want, strlen(want));
}

/* The response holds no field that came from an injected line. */
static bool clean_wire(void)
{
    return !memmem(rbuf, rlen, "X-Injected", 10) && !memmem(rbuf, rlen, "<script>", 8);
}

static int rc_at(int i)
{
    return atomic_load(&rcs[i]);
}

/* ---- tests ---- */

TEST(start)
{
    char path[] = "/tmp/wh_http_respXXXXXX";
    tmpfd = mkstemp(path);
    CHECK(tmpfd >= 0);
    unlink(path);
    CHECK_EQ(write(tmpfd, "0123456789", 10), 10);
    wh_http_opts o;
    wh_http_opts_init(&o);
    o.keepalive_timeout_ms = 2000;
    CHECK_EQ(wh_http_server_new(&srv, &o, handler, NULL), 0);
    CHECK_EQ(http_host_start(&host, srv), 0);
}

TEST(content_type_injection)
{
    rc_reset();
    int h = exchange("GET /inject-ct HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(atomic_load(&nrc), 6);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(rc_at(i), -EINVAL);
    CHECK_EQ(rc_at(5), 0);
    CHECK_EQ(resp.status, 500);
    CHECK(clean_wire());
    CHECK_EQ(hcount("Content-Length"), 1);
    CHECK(body_is(h, "fallback"));
    CHECK_EQ((size_t)h + 8, rlen); /* one response and nothing else */
    CHECK(!reof);                  /* a refused call leaves the connection as it was */

    /* The handler gives up after the refusal: the engine's 500. */
    rc_reset();
    h = exchange("GET /inject-ct-only HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(rc_at(0), -EINVAL);
    CHECK_EQ(resp.status, 500);
    CHECK(clean_wire());
    CHECK_EQ(hcount("Content-Length"), 1);
    CHECK_EQ((size_t)h + resp.content_length, rlen);
}

TEST(header_injection)
{
    rc_reset();
    int h = exchange("GET /inject-hdr HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(atomic_load(&nrc), 12);
    for (int i = 0; i < 8; i++) {
        if (rc_at(i) != -EINVAL) fprintf(stderr, "  call %d: %d\n", i, rc_at(i));
        CHECK_EQ(rc_at(i), -EINVAL);
    }
    for (int i = 8; i < 12; i++)
        CHECK_EQ(rc_at(i), 0);
    CHECK_EQ(resp.status, 200);
    CHECK(clean_wire());
    CHECK_EQ(hcount("X-A"), 0);
    CHECK_EQ(hcount("X-B"), 0);
    CHECK(hval("X-Tab", "a\tb"));
    CHECK(hval("X-Obs", "caf\xc3\xa9"));
    CHECK(hval("X-Empty", ""));
    CHECK(body_is(h, "ok"));
}

TEST(framing_is_the_engines)
{
    rc_reset();
    int h = exchange("GET /framing HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(rc_at(i), -EINVAL);
    CHECK_EQ(rc_at(5), 0);
    CHECK_EQ(rc_at(6), 0);
    CHECK_EQ(hcount("Content-Length"), 1);
    CHECK_EQ(hcount("Transfer-Encoding"), 0);
    CHECK(hval("Content-Length", "11"));
    CHECK(hval("Content-Lengthx", "1"));
    CHECK(body_is(h, "hello world"));
    CHECK_EQ((size_t)h + 11, rlen);

    /* HEAD: the GET's length, once, and no body */
    h = exchange("HEAD /framing HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(hcount("Content-Length"), 1);
    CHECK(hval("Content-Length", "11"));
    CHECK_EQ((size_t)h, rlen);

    /* streamed: exactly one Transfer-Encoding, no Content-Length */
    rc_reset();
    h = exchange("GET /stream-framing HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(rc_at(0), -EINVAL);
    CHECK_EQ(rc_at(1), -EINVAL);
    CHECK_EQ(rc_at(2), -EINVAL);
    CHECK_EQ(rc_at(3), 0);
    CHECK_EQ(rc_at(4), 0);
    CHECK_EQ(rc_at(5), 0);
    CHECK(clean_wire());
    CHECK_EQ(hcount("Transfer-Encoding"), 1);
    CHECK_EQ(hcount("Content-Length"), 0);
    CHECK_EQ(resp.framing, WH_HTTP_BODY_CHUNKED);
    CHECK_EQ(rlen - (size_t)h, strlen("3\r\nabc\r\n0\r\n\r\n"));
    CHECK(!memcmp(rbuf + h, "3\r\nabc\r\n0\r\n\r\n", rlen - (size_t)h));
}

TEST(file_content_type)
{
    rc_reset();
    int h = exchange("GET /file HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(rc_at(0), -EINVAL);
    CHECK_EQ(rc_at(1), 1); /* close_fd: the refused call still closed it */
    CHECK_EQ(rc_at(2), 0);
    CHECK(clean_wire());
    CHECK_EQ(hcount("Content-Length"), 1);
    CHECK(body_is(h, "23456"));
}

TEST(status_range)
{
    rc_reset();
    int h = exchange("GET /status HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    for (int i = 0; i < 7; i++)
        CHECK_EQ(rc_at(i), -EINVAL);
    CHECK_EQ(rc_at(7), 0);
    CHECK_EQ(resp.status, 299);
    CHECK(body_is(h, "ok"));
    CHECK_EQ((size_t)h + 2, rlen);
}

/* A handler's "Connection: close": one field on the wire, the connection
 * closes after the response, a pipelined request behind it is not served. */
static void check_close(const char *req)
{
    rc_reset();
    int h = exchange(req, 1000);
    CHECK(h > 0);
    CHECK_EQ(rc_at(0), 0);
    CHECK_EQ(resp.status, 200);
    CHECK_EQ(hcount("Connection"), 1);
    CHECK(hval("Connection", "close"));
    CHECK(!resp.keep_alive);
    CHECK(body_is(h, "first"));
    CHECK_EQ((size_t)h + 5, rlen); /* the second request got no answer */
    CHECK(!memmem(rbuf + 1, rlen - 1, "HTTP/1.1 ", 9));
    CHECK(reof);
}

TEST(connection_close)
{
    static const char *reqs[] = {
        "GET /close?close HTTP/1.1\r\nHost: a\r\n\r\nGET /plain HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /close?Keep-Alive,_CLOSE HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /plain HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /close?_close_ HTTP/1.1\r\nHost: a\r\n\r\nGET /plain HTTP/1.1\r\nHost: a\r\n\r\n",
        /* the client asked too: still one field */
        "GET /close?close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        /* HTTP/1.0 keep-alive: close wins, no keep-alive field */
        "GET /close?close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        "GET /plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        check_close(reqs[i]);
        if (wh__failed) {
            fprintf(stderr, "  request %zu\n", i);
            return;
        }
    }
}

TEST(connection_other_refused)
{
    rc_reset();
    const char *req = "GET /conn-refused HTTP/1.1\r\nHost: a\r\n\r\n"
                      "GET /plain HTTP/1.1\r\nHost: a\r\n\r\n";
    int fd = http_connect(host.port);
    CHECK(fd >= 0);
    http_send(fd, req, strlen(req));
    rlen = http_recv_until(fd, rbuf, sizeof rbuf, "\r\n\r\nplain", 1, 2000, &reof);
    close(fd);
    int h = wh_http_parse_response(rbuf, rlen, &resp, NULL);
    CHECK(h > 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(rc_at(i), -EINVAL);
    CHECK_EQ(rc_at(5), 0);
    CHECK_EQ(hcount("Connection"), 0);
    CHECK(resp.keep_alive);
    CHECK(body_is(h, "kept"));
    /* the connection stayed open: the pipelined request was served */
    int h2 = wh_http_parse_response(rbuf + h + 4, rlen - (size_t)h - 4, &resp, NULL);
    CHECK(h2 > 0);
    CHECK_EQ(resp.status, 200);
    CHECK(!reof);
}

TEST(date_and_server_replaced)
{
    /* both */
    rc_reset();
    int h = exchange("GET /ds?ds HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(atomic_load(&nrc), 7);
    CHECK_EQ(rc_at(0), 0);
    CHECK_EQ(rc_at(1), 0);
    CHECK_EQ(rc_at(2), 0);
    CHECK_EQ(rc_at(3), 0);
    CHECK_EQ(rc_at(4), -EINVAL); /* a second Date */
    CHECK_EQ(rc_at(5), -EINVAL); /* a second Server, whatever its case */
    CHECK_EQ(rc_at(6), 0);
    CHECK_EQ(hcount("Date"), 1);
    CHECK_EQ(hcount("Server"), 1);
    CHECK(hval("Date", "Sun, 06 Nov 1994 08:49:37 GMT"));
    CHECK(hval("Server", "custom/1.0"));
    CHECK(hval("X-Before", "1"));
    CHECK(hval("X-After", "2"));
    CHECK(body_is(h, "ds"));
    /* only Date: the engine's Server stays */
    h = exchange("GET /ds?d HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(hcount("Date"), 1);
    CHECK_EQ(hcount("Server"), 1);
    CHECK(hval("Date", "Sun, 06 Nov 1994 08:49:37 GMT"));
    CHECK(hval("Server", "wharf"));
    /* only Server: the engine's Date stays */
    h = exchange("GET /ds?s HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(hcount("Date"), 1);
    CHECK_EQ(hcount("Server"), 1);
    CHECK(!hval("Date", "Sun, 06 Nov 1994 08:49:37 GMT"));
    CHECK(hval("Server", "custom/1.0"));
    /* neither */
    h = exchange("GET /ds HTTP/1.1\r\nHost: a\r\n\r\n", 300);
    CHECK(h > 0);
    CHECK_EQ(hcount("Date"), 1);
    CHECK(hval("Server", "wharf"));
}

TEST(async_refused_then_answered)
{
    rc_reset();
    const char *req =
        "GET /async HTTP/1.1\r\nHost: a\r\n\r\nGET /plain HTTP/1.1\r\nHost: a\r\n\r\n";
    int fd = http_connect(host.port);
    CHECK(fd >= 0);
    http_send(fd, req, strlen(req));
    rlen = http_recv_until(fd, rbuf, sizeof rbuf, "\r\n\r\nplain", 1, 2000, &reof);
    close(fd);
    int h = wh_http_parse_response(rbuf, rlen, &resp, NULL);
    CHECK(h > 0);
    CHECK_EQ(rc_at(0), 0);
    CHECK_EQ(rc_at(1), -EINVAL);
    CHECK_EQ(rc_at(2), -EINVAL);
    CHECK_EQ(rc_at(3), 0);
    CHECK(clean_wire());
    CHECK_EQ(hcount("Content-Length"), 1);
    CHECK(body_is(h, "late"));
    CHECK(memmem(rbuf + h, rlen - (size_t)h, "\r\n\r\nplain", 9));
}

TEST(stop)
{
    CHECK_EQ(http_host_stop(&host), 0);
    wh_http_server_free(srv);
    close(tmpfd);
}

WH_TEST_MAIN()
