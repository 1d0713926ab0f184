/* HTTP/1.1 request parser and chunked decoder: a table of valid and invalid
 * requests with the status each must get, split-point invariance, limits,
 * dot-segment removal, and the response-head parser. */
#include <stdio.h>
#include <string.h>

#include "http/parser.h"
#include "test.h"

#define H11 " HTTP/1.1\r\nHost: a\r\n"

struct pcase {
    const char *raw;
    int status; /* 0 = parses OK */
};

/* Each raw request is a complete head (or an invalid one). */
static const struct pcase cases[] = {
    /* valid request lines, methods and target forms */
    {"GET /" H11 "\r\n", 0},
    {"HEAD /" H11 "\r\n", 0},
    {"POST /" H11 "Content-Length: 0\r\n\r\n", 0},
    {"PUT /x" H11 "Content-Length: 3\r\n\r\n", 0},
    {"DELETE /x" H11 "\r\n", 0},
    {"OPTIONS /" H11 "\r\n", 0},
    {"OPTIONS *" H11 "\r\n", 0},
    {"TRACE /" H11 "\r\n", 0},
    {"PATCH /p" H11 "\r\n", 0},
    {"CONNECT example.com:443" H11 "\r\n", 0},
    {"CONNECT [::1]:443" H11 "\r\n", 0},
    {"PROPFIND /dav" H11 "\r\n", 0},
    {"M-SEARCH *x" H11 "\r\n", 400},
    {"X-CUSTOM.METHOD~1 /" H11 "\r\n", 0},
    {"get /" H11 "\r\n", 0}, /* extension method (case-sensitive, not GET) */
    {"GET http://example.com/a?b" H11 "\r\n", 0},
    {"GET http://example.com" H11 "\r\n", 0},
    {"GET https://user@example.com:8443/x" H11 "\r\n", 0},
    {"GET /a/b/c?x=1&y=%20" H11 "\r\n", 0},
    {"GET /?" H11 "\r\n", 0},
    {"GET /~user/{x}|y^`" H11 "\r\n", 0},
    {"GET / HTTP/1.0\r\n\r\n", 0},
    {"GET / HTTP/1.0\r\nHost: a\r\n\r\n", 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0},
    {"\r\nGET /" H11 "\r\n", 0},
    {"\r\n\r\nGET /" H11 "\r\n", 0},
    /* valid header fields */
    {"GET / HTTP/1.1\r\nhost: a\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\nHOST: a:8080\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0},
    {"GET /" H11 "X:   spaced   \r\n\r\n", 0},
    {"GET /" H11 "X:\tv\t\r\n\r\n", 0},
    {"GET /" H11 "X: a b\tc\r\n\r\n", 0},
    {"GET /" H11 "X: \x80\xff obs-text\r\n\r\n", 0},
    {"GET /" H11 "X:\r\n\r\n", 0},
    {"GET /" H11 "!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n", 0},
    {"GET /" H11 "Connection: close\r\n\r\n", 0},
    {"GET /" H11 "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", 0},
    {"POST /" H11 "Transfer-Encoding: chunked\r\n\r\n", 0},
    {"POST /" H11 "Transfer-Encoding: Chunked\r\n\r\n", 0},
    {"POST /" H11 "Transfer-Encoding: , chunked\r\n\r\n", 0},
    {"POST /" H11 "Content-Length: 1048576\r\n\r\n", 0},
    {"POST /" H11 "Content-Length: 00012\r\n\r\n", 0},
    {"POST /" H11 "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", 0},
    {"POST /" H11 "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n", 0},
    {"POST / HTTP/1.0\r\nExpect: whatever\r\n\r\n", 0}, /* ignored in 1.0 */
    {"GET /" H11 "Cookie: a=b; c=d\r\nCookie: e=f\r\n\r\n", 0},
    /* bad request lines */
    {" GET /" H11 "\r\n", 400},
    {"GET  /" H11 "\r\n", 400},
    {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"GET\t/" H11 "\r\n", 400},
    {"GET /\tx" H11 "\r\n", 400},
    {"GET /a b" H11 "\r\n", 400},
    {"GET /\x7f" H11 "\r\n", 400},
    {"GET /\x80" H11 "\r\n", 400},
    {"GET /\x01" H11 "\r\n", 400},
    {"GE(T /" H11 "\r\n", 400},
    {"GE\"T /" H11 "\r\n", 400},
    {"GET@ /" H11 "\r\n", 400},
    {"GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/11.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400},
    {"GET /\r\nHost: a\r\n\r\n", 400},
    {"GET\r\n\r\n", 400},
    {"\r\n\r\n\r\n\n", 400},
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
    {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0}, /* a higher 1.x minor is 1.1 (RFC 9110 2.5) */
    {"GET / HTTP/1.9\r\nHost: a\r\n\r\n", 0},
    {"GET / HTTP/1.2\r\n\r\n", 400}, /* ... with 1.1's rules: Host required */
    {"GET / HTTP/2.1\r\nHost: a\r\n\r\n", 505},
    {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"CONNECT example.com:44x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET 1http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    /* dot-segments (RFC 3986 5.2.4): resolved inside the root, refused above it */
    {"GET /img/../index.html" H11 "\r\n", 0},
    {"GET /a/./b/." H11 "\r\n", 0},
    {"GET /a/%2E%2e/b" H11 "\r\n", 0},
    {"GET /.well-known/x" H11 "\r\n", 0},
    {"GET /?/../../x" H11 "\r\n", 0}, /* in the query: not a path */
    {"GET /../etc/passwd" H11 "\r\n", 400},
    {"GET /a/../../x" H11 "\r\n", 400},
    {"GET /.." H11 "\r\n", 400},
    {"GET /%2e%2e/x" H11 "\r\n", 400},
    {"GET /.%2E/x" H11 "\r\n", 400},
    {"GET http://a/../x" H11 "\r\n", 400},
    /* line endings */
    {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    {"GET / HTTP/1.1\n\n", 400},
    {"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\n\rX", 400},
    {"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    /* bad header fields */
    {"GET /" H11 "X : v\r\n\r\n", 400},
    {"GET /" H11 "X\t: v\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
    {"GET /" H11 " X: v\r\n\r\n", 400},
    {"GET /" H11 "X: a\r\n b\r\n\r\n", 400},
    {"GET /" H11 "X: a\r\n\tb\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
    {"GET /" H11 ": v\r\n\r\n", 400},
    {"GET /" H11 "X v\r\n\r\n", 400},
    {"GET /" H11 "X\r\n\r\n", 400},
    {"GET /" H11 "X(y): v\r\n\r\n", 400},
    {"GET /" H11 "X/y: v\r\n\r\n", 400},
    {"GET /" H11 "X@: v\r\n\r\n", 400},
    {"GET /" H11 "\x80: v\r\n\r\n", 400},
    {"GET /" H11 "X: a\x01 b\r\n\r\n", 400},
    {"GET /" H11 "X: \x7f\r\n\r\n", 400},
    {"GET /" H11 "X: \x1b[31m\r\n\r\n", 400},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
    {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
    {"GET http://x/ HTTP/1.1\r\n\r\n", 400},
    /* Content-Length */
    {"POST /" H11 "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 1, 1\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: -1\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: +1\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 1 2\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 0x10\r\n\r\n", 400},
    {"POST /" H11 "Content-Length:\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 99999999999999999999\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 18446744073709551617\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 1048577\r\n\r\n", 413},
    {"POST /" H11 "Content-Length: 9999999999999999999\r\n\r\n", 413},
    /* Transfer-Encoding */
    {"POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: foo\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: foo, chunked\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: chunkedx\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding:\r\n\r\n", 400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    /* Expect */
    {"POST /" H11 "Expect: 200-ok\r\n\r\n", 417},
};

static void feed_all(const char *raw, size_t len, wh_http_parsed *p, int *rc)
{
    *rc = wh_http_parse_request(raw, len, p, NULL);
}

TEST(table)
{
    static wh_http_parsed p;
    size_t n = sizeof cases / sizeof cases[0];
    CHECK(n >= 100);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(cases[i].raw);
        /* cases with an embedded NUL: the literal goes on after it */
        if (strstr(cases[i].raw, "G") == cases[i].raw && cases[i].raw[1] == 0) len = 0;
        int rc;
        feed_all(cases[i].raw, len, &p, &rc);
        int got = rc > 0 ? 0 : rc == WH_HTTP_ERROR ? p.status : -2;
        if (got != cases[i].status) {
            fprintf(stderr, "case %zu: want %d got %d (%s): ", i, cases[i].status, got,
                    rc == WH_HTTP_ERROR ? p.error : "");
            fwrite(cases[i].raw, 1, len, stderr);
            fprintf(stderr, "\n");
        }
        CHECK_EQ(got, cases[i].status);
        if (rc > 0) CHECK_EQ((size_t)rc, len);
    }
}

/* The Host check tests four bytes at a time, then the rest one by one: a
 * byte outside uri-host is refused wherever it sits, and only then. */
TEST(host_every_position)
{
    static wh_http_parsed p;
    static const char bad[] = {'/', '@', '"', '<', '\x80'};
    for (size_t hl = 1; hl <= 13; hl++) {
        for (size_t pos = 0; pos <= hl; pos++) {
            for (size_t b = 0; b < sizeof bad; b++) {
                char host[16], req[128];
                memset(host, 'a', hl);
                host[hl] = '\0';
                if (pos < hl) host[pos] = bad[b];
                int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host);
                int rc = wh_http_parse_request(req, (size_t)n, &p, NULL);
                if (pos == hl) {
                    CHECK_EQ(rc, n); /* all 'a': fine */
                } else {
                    CHECK_EQ(rc, WH_HTTP_ERROR);
                    CHECK_EQ(p.status, 400);
                }
            }
        }
    }
}

/* NUL bytes cannot live in the C-string table above. */
TEST(nul_bytes)
{
    static wh_http_parsed p;
    static const char a[] = "G\0T / HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char b[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    static const char c[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char d[] = "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n";
    const char *v[] = {a, b, c, d};
    size_t l[] = {sizeof a - 1, sizeof b - 1, sizeof c - 1, sizeof d - 1};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(wh_http_parse_request(v[i], l[i], &p, NULL), WH_HTTP_ERROR);
        CHECK_EQ(p.status, 400);
    }
}

static wh_str S(const char *s)
{
    return (wh_str){s, strlen(s)};
}
static int eq(wh_str a, const char *b)
{
    return a.len == strlen(b) && !memcmp(a.p, b, a.len);
}

TEST(fields)
{
    static wh_http_parsed p;
    const char *r = "POST http://ex.com:81/a/b?q=1#f HTTP/1.1\r\nHost: ex.com:81\r\n"
                    "Content-Length: 12\r\nX-Empty:\r\nX-Sp:  a b  \r\n\r\nbody";
    int rc = wh_http_parse_request(r, strlen(r), &p, NULL);
    CHECK_EQ(rc, (int)strlen(r) - 4);
    CHECK(eq(p.method, "POST"));
    CHECK_EQ(p.method_id, WH_HTTP_M_POST);
    CHECK_EQ(p.target_form, WH_HTTP_T_ABSOLUTE);
    CHECK(eq(p.path, "/a/b"));
    CHECK(eq(p.query, "q=1#f"));
    CHECK(eq(p.host, "ex.com:81"));
    CHECK_EQ(p.version, 11);
    CHECK_EQ(p.framing, WH_HTTP_BODY_LENGTH);
    CHECK_EQ(p.content_length, 12);
    CHECK(p.keep_alive);
    CHECK(!p.upgrade);
    CHECK_EQ(p.nheaders, 4);
    CHECK(eq(wh_http_parsed_header(&p, "x-empty"), ""));
    CHECK(wh_http_parsed_header(&p, "x-empty").p != NULL);
    CHECK(eq(wh_http_parsed_header(&p, "X-SP"), "a b"));
    CHECK(wh_http_parsed_header(&p, "nope").p == NULL);
    CHECK(wh_str_ieq(S("Content-LENGTH"), "content-length"));

    r = "GET / HTTP/1.0\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(!p.keep_alive);
    CHECK(!p.has_host);
    CHECK_EQ(p.version, 10);
    r = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(p.keep_alive);
    r = "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(!p.keep_alive);
    r = "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
        "Upgrade: websocket\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(p.upgrade);
    CHECK(p.keep_alive);
    r = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(!p.upgrade);
    r = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(p.expect_continue);
    CHECK_EQ(p.framing, WH_HTTP_BODY_CHUNKED);
    r = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK_EQ(p.target_form, WH_HTTP_T_ASTERISK);
    r = "CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK_EQ(p.target_form, WH_HTTP_T_AUTHORITY);
    CHECK(eq(p.path, "a.b:443"));
    r = "GET http://a.b HTTP/1.1\r\nHost: a.b\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(eq(p.path, "/"));
    CHECK(eq(p.query, ""));
    r = "GET /x?a=1?b HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK(eq(p.path, "/x"));
    CHECK(eq(p.query, "a=1?b"));
    r = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK_EQ(p.framing, WH_HTTP_BODY_NONE);
}

/* Compares two parse results field by field. */
static int same(const wh_http_parsed *a, int ra, const wh_http_parsed *b, int rb)
{
    if (ra != rb) return 0;
    if (ra == WH_HTTP_ERROR) return a->status == b->status;
    if (ra < 0) return 1;
    if (a->nheaders != b->nheaders || a->framing != b->framing ||
        a->content_length != b->content_length || a->keep_alive != b->keep_alive ||
        a->version != b->version || a->method.len != b->method.len ||
        a->target.len != b->target.len || a->upgrade != b->upgrade ||
        a->expect_continue != b->expect_continue)
        return 0;
    for (unsigned i = 0; i < a->nheaders; i++)
        if (a->headers[i].name.len != b->headers[i].name.len ||
            a->headers[i].value.len != b->headers[i].value.len)
            return 0;
    return 1;
}

/* Feeds raw[0..len) as the engine does: growing prefixes, each call told
 * how much it saw before. cuts[] lists the prefix lengths to present. */
static int feed_cuts(const char *raw, size_t len, const size_t *cuts, size_t ncuts,
                     wh_http_parsed *p, const wh_http_limits *lim)
{
    size_t last = 0;
    int rc = WH_HTTP_INCOMPLETE;
    for (size_t k = 0; k < ncuts; k++) {
        rc = wh_http_parse_request_from(raw, cuts[k], last, p, lim);
        if (rc != WH_HTTP_INCOMPLETE) return rc;
        last = cuts[k];
    }
    (void)len;
    return rc;
}

TEST(split_points)
{
    static wh_http_parsed whole, part;
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        const char *raw = cases[i].raw;
        size_t len = strlen(raw);
        /* Split results are identical when the input ends with an LF
         * (errors in an unfinished line may wait for its end). */
        if (len == 0 || raw[len - 1] != '\n') continue;
        int rw = wh_http_parse_request(raw, len, &whole, NULL);
        for (size_t cut = 1; cut < len; cut++) {
            size_t cuts[2] = {cut, len};
            int rp = feed_cuts(raw, len, cuts, 2, &part, NULL);
            if (!same(&whole, rw, &part, rp))
                fprintf(stderr, "case %zu cut %zu: %d/%d vs %d/%d\n", i, cut, rw, whole.status, rp,
                        part.status);
            CHECK(same(&whole, rw, &part, rp));
        }
        /* byte by byte */
        size_t cuts[1024];
        CHECK(len <= 1024);
        for (size_t k = 0; k < len; k++)
            cuts[k] = k + 1;
        int rp = feed_cuts(raw, len, cuts, len, &part, NULL);
        CHECK(same(&whole, rw, &part, rp));
        /* the plain (stateless) call at every prefix never errs differently */
        for (size_t cut = 1; cut < len; cut++) {
            int r = wh_http_parse_request(raw, cut, &part, NULL);
            if (r == WH_HTTP_ERROR)
                CHECK(rw == WH_HTTP_ERROR && part.status == whole.status);
            else if (r > 0)
                CHECK_EQ(r, rw); /* complete before the end: same head */
        }
    }
}

TEST(pipelined)
{
    static wh_http_parsed p;
    const char *r = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                    "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /4 HTTP/1.1\r\nHost: a\r\n\r\nGET /5 HTT";
    size_t len = strlen(r), off = 0;
    const char *want[] = {"/1", "/2", "/3", "/4"};
    for (int k = 0; k < 4; k++) {
        int rc = wh_http_parse_request(r + off, len - off, &p, NULL);
        CHECK(rc > 0);
        CHECK(eq(p.path, want[k]));
        off += (size_t)rc + p.content_length;
    }
    CHECK_EQ(wh_http_parse_request(r + off, len - off, &p, NULL), WH_HTTP_INCOMPLETE);
}

TEST(limits)
{
    static wh_http_parsed p;
    static char buf[70000];
    wh_http_limits lim;
    wh_http_limits_init(&lim);
    lim.max_request_line = 64;
    lim.max_header_bytes = 128;
    lim.max_headers = 4;
    lim.max_body = 100;

    /* request line exactly at the limit, and one over */
    memset(buf, 0, sizeof buf);
    int tl = 64 - (int)strlen("GET  HTTP/1.1");
    int n = sprintf(buf, "GET /%.*s HTTP/1.1\r\nHost: a\r\n\r\n", tl - 1,
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK(wh_http_parse_request(buf, (size_t)n, &p, &lim) == n);
    n = sprintf(buf, "GET /%.*s HTTP/1.1\r\nHost: a\r\n\r\n", tl,
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK_EQ(wh_http_parse_request(buf, (size_t)n, &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 414);
    /* an unfinished long line is refused without waiting for its end */
    memset(buf, 'a', 200);
    memcpy(buf, "GET /", 5);
    CHECK_EQ(wh_http_parse_request(buf, 64, &p, &lim), WH_HTTP_INCOMPLETE);
    CHECK_EQ(wh_http_parse_request(buf, 65, &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 414);
    CHECK_EQ(wh_http_parse_request_from(buf, 64, 10, &p, &lim), WH_HTTP_INCOMPLETE);
    CHECK_EQ(wh_http_parse_request_from(buf, 65, 64, &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 414);
    /* header count */
    const char *r = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, &lim) > 0);
    r = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    CHECK_EQ(wh_http_parse_request(r, strlen(r), &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 431);
    /* header bytes: 128 exactly (incl. final CRLF) passes, 129 fails */
    n = sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    int used = n - 16;         /* header bytes so far */
    int fill = 128 - used - 4; /* value, CRLF, CRLF */
    memset(buf + n, 'v', (size_t)fill);
    memcpy(buf + n + fill, "\r\n\r\n", 4);
    n += fill + 4;
    CHECK_EQ(wh_http_parse_request(buf, (size_t)n, &p, &lim), n);
    memmove(buf + n - 3, buf + n - 4, 4);
    buf[n - 4] = 'v';
    CHECK_EQ(wh_http_parse_request(buf, (size_t)n + 1, &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 431);
    /* byte by byte into a huge header: 431 arrives as soon as the limit is crossed */
    n = sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'v', 1000);
    size_t last = 0;
    int rc = WH_HTTP_INCOMPLETE;
    size_t at = 0;
    for (size_t k = 1; k < (size_t)n + 1000 && rc == WH_HTTP_INCOMPLETE; k++) {
        rc = wh_http_parse_request_from(buf, k, last, &p, &lim);
        last = k;
        at = k;
    }
    CHECK_EQ(rc, WH_HTTP_ERROR);
    CHECK_EQ(p.status, 431);
    CHECK_EQ(at, 16 + 128 + 1);
    /* body limit */
    r = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, &lim) > 0);
    r = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n";
    CHECK_EQ(wh_http_parse_request(r, strlen(r), &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 413);
    /* defaults: 64 headers ok, 65 -> 431 */
    n = sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int k = 0; k < 63; k++)
        n += sprintf(buf + n, "X%d: %d\r\n", k, k);
    n += sprintf(buf + n, "\r\n");
    CHECK_EQ(wh_http_parse_request(buf, (size_t)n, &p, NULL), n);
    CHECK_EQ(p.nheaders, 64);
    n -= 2;
    n += sprintf(buf + n, "Y: 1\r\n\r\n");
    CHECK_EQ(wh_http_parse_request(buf, (size_t)n, &p, NULL), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 431);
    /* many leading empty lines count toward the request line */
    for (int k = 0; k < 40; k++)
        memcpy(buf + 2 * k, "\r\n", 2);
    CHECK_EQ(wh_http_parse_request(buf, 80, &p, &lim), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 414);
}

TEST(version_minor)
{
    static wh_http_parsed p;
    const char *r = "GET / HTTP/1.7\r\nHost: a\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK_EQ(p.version, 11);
    CHECK(p.keep_alive);
    r = "POST / HTTP/1.3\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(wh_http_parse_request(r, strlen(r), &p, NULL) > 0);
    CHECK_EQ(p.framing, WH_HTTP_BODY_CHUNKED);
    r = "GET / HTTP/0.9\r\nHost: a\r\n\r\n";
    CHECK_EQ(wh_http_parse_request(r, strlen(r), &p, NULL), WH_HTTP_ERROR);
    CHECK_EQ(p.status, 505);
}

/* Parses "GET <target> HTTP/1.1"; the status (0 = parsed). */
static int parse_target(const char *target, wh_http_parsed *p)
{
    static char buf[8192];
    int n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target);
    int rc = wh_http_parse_request(buf, (size_t)n, p, NULL);
    if (rc > 0 && !eq(p->target, target)) return -1; /* the target stays as sent */
    return rc > 0 ? 0 : rc == WH_HTTP_ERROR ? p->status : -2;
}

TEST(dot_segments)
{
    static wh_http_parsed p;
    static const struct {
        const char *target;
        int status;
        const char *path;
    } t[] = {
        {"/img/../index.html", 0, "/index.html"},
        {"/a/./b", 0, "/a/b"},
        {"/a/b/..", 0, "/a/"},
        {"/a/b/.", 0, "/a/b/"},
        {"/.", 0, "/"},
        {"/./", 0, "/"},
        {"/a/..", 0, "/"},
        {"/a/../", 0, "/"},
        {"/a/b/../../c", 0, "/c"},
        {"/a//../b", 0, "/a/b"}, /* an empty segment is a segment */
        {"//../b", 0, "/b"},
        {"/a/./../b/./c/.", 0, "/b/c/"},
        {"/a/%2e%2e/b", 0, "/b"},
        {"/a/%2E%2E/b", 0, "/b"},
        {"/a/.%2e/b", 0, "/b"},
        {"/a/%2e/b", 0, "/a/b"},
        {"/a/../b?x=/../y", 0, "/b"},
        {"http://h/a/../b?q", 0, "/b"},
        {"http://h/./", 0, "/"},
        /* not dot-segments: left alone */
        {"/a/.../b", 0, "/a/.../b"},
        {"/a/..b/.c", 0, "/a/..b/.c"},
        {"/a/..%2fb", 0, "/a/..%2fb"},
        {"/a/%2e%2e%2e", 0, "/a/%2e%2e%2e"},
        {"/a/%2", 0, "/a/%2"},
        {"/a/%2f", 0, "/a/%2f"},
        {"/%E2%82%AC/x", 0, "/%E2%82%AC/x"},
        {"/.well-known/acme", 0, "/.well-known/acme"},
        {"/a./b.", 0, "/a./b."},
        /* above the root */
        {"/..", 400, NULL},
        {"/../", 400, NULL},
        {"/../etc/passwd", 400, NULL},
        {"/a/../../x", 400, NULL},
        {"/a/./../..", 400, NULL},
        {"/%2e%2e", 400, NULL},
        {"/%2E./x", 400, NULL},
        {"http://h/../x", 400, NULL},
        {"http://h/a/../../x", 400, NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int st = parse_target(t[i].target, &p);
        if (st != t[i].status || (t[i].path && !eq(p.path, t[i].path)))
            fprintf(stderr, "  %s -> %d %.*s\n", t[i].target, st, (int)p.path.len, p.path.p);
        CHECK_EQ(st, t[i].status);
        if (t[i].path) CHECK(eq(p.path, t[i].path));
    }
    /* Only a rewritten path leaves the request buffer. */
    CHECK_EQ(parse_target("/a/b/c", &p), 0);
    CHECK(p.path.p == p.target.p);
    CHECK_EQ(parse_target("/.well-known/x", &p), 0);
    CHECK(p.path.p == p.target.p);
    CHECK_EQ(parse_target("/a/../b", &p), 0);
    CHECK(p.path.p == p.path_buf);
    /* The rewrite has a bounded home: a dotted path up to WH_HTTP_PATH_BUF
     * bytes is resolved, a longer one gets 414; without dot-segments any
     * length (within the request-line limit) is fine. */
    static char big[3001];
    for (size_t L = WH_HTTP_PATH_BUF; L <= WH_HTTP_PATH_BUF + 1; L++) {
        memset(big, 'a', L);
        big[0] = '/';
        memcpy(big + L - 5, "/../x", 5);
        big[L] = 0;
        CHECK_EQ(parse_target(big, &p), L == WH_HTTP_PATH_BUF ? 0 : 414);
        if (L == WH_HTTP_PATH_BUF) CHECK(eq(p.path, "/x"));
    }
    memset(big, 'a', 3000);
    big[0] = '/';
    memcpy(big + 3000 - 5, "/./.x", 5);
    big[3000] = 0;
    CHECK_EQ(parse_target(big, &p), 414);
    memcpy(big + 3000 - 5, "/.a/x", 5);
    CHECK_EQ(parse_target(big, &p), 0);
    CHECK_EQ(p.path.len, 3000);
}

/* ---- response heads ---- */

TEST(parse_response)
{
    static wh_http_parsed_response p;
    const char *r = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello";
    int rc = wh_http_parse_response(r, strlen(r), &p, NULL);
    CHECK_EQ(rc, (int)strlen(r) - 5);
    CHECK_EQ(p.status, 200);
    CHECK_EQ(p.version, 11);
    CHECK(eq(p.reason, "OK"));
    CHECK_EQ(p.framing, WH_HTTP_BODY_LENGTH);
    CHECK_EQ(p.content_length, 5);
    CHECK(p.keep_alive);
    CHECK_EQ(p.nheaders, 3);
    CHECK(eq(p.headers[2].name, "X-A"));
    CHECK(eq(p.headers[2].value, "b"));
    /* every prefix is incomplete */
    for (size_t k = 0; k < (size_t)rc; k++)
        CHECK_EQ(wh_http_parse_response(r, k, &p, NULL), WH_HTTP_INCOMPLETE);

    static const struct {
        const char *raw;
        int ok;
        int framing, keep_alive, status;
    } t[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, WH_HTTP_BODY_CHUNKED, 1, 200},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1, WH_HTTP_BODY_CLOSE, 0, 200},
        {"HTTP/1.1 200 OK\r\n\r\n", 1, WH_HTTP_BODY_CLOSE, 0, 200},
        {"HTTP/1.1 204 No Content\r\n\r\n", 1, WH_HTTP_BODY_NONE, 1, 204},
        {"HTTP/1.1 304 \r\nContent-Length: 9\r\n\r\n", 1, WH_HTTP_BODY_NONE, 1, 304},
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n", 1, 0, 1, 101},
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 1,
         WH_HTTP_BODY_NONE, 0, 404},
        {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 1, WH_HTTP_BODY_LENGTH, 0, 200},
        {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", 1,
         WH_HTTP_BODY_LENGTH, 1, 200},
        {"HTTP/1.1 599 \xff\tx\r\n\r\n", 1, WH_HTTP_BODY_CLOSE, 0, 599},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 OK\nX: a\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 20 OK\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 2000 OK\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 099 OK\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/2.0 200 OK\r\n\r\n", 0, 0, 0, 0},
        {"http/1.1 200 OK\r\n\r\n", 0, 0, 0, 0},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rc = wh_http_parse_response(t[i].raw, strlen(t[i].raw), &p, NULL);
        if ((rc > 0) != t[i].ok)
            fprintf(stderr, "  response case %zu: rc %d (%s)\n", i, rc, p.error ? p.error : "");
        CHECK_EQ(rc > 0, t[i].ok);
        if (!t[i].ok) {
            CHECK_EQ(rc, WH_HTTP_ERROR);
            CHECK(p.error != NULL);
            continue;
        }
        CHECK_EQ(rc, (int)strlen(t[i].raw));
        CHECK_EQ(p.status, t[i].status);
        CHECK_EQ(p.framing, t[i].framing);
        CHECK_EQ(p.keep_alive, t[i].keep_alive);
    }
    /* what the engine's formatter writes parses back */
    char buf[512];
    wh_http_head_spec h = {.status = 201,
                           .content_type = "text/plain",
                           .content_length = 3,
                           .server = "wharf",
                           .extra = "X: y\r\n",
                           .extra_len = 6};
    int n = wh_http_format_head(buf, sizeof buf, &h);
    CHECK_EQ(wh_http_parse_response(buf, (size_t)n, &p, NULL), n);
    CHECK_EQ(p.status, 201);
    CHECK(eq(p.reason, "Created"));
    CHECK_EQ(p.content_length, 3);
    CHECK_EQ(p.nheaders, 4);
    /* limits: a status line past max_request_line, too many fields */
    wh_http_limits lim;
    wh_http_limits_init(&lim);
    lim.max_request_line = 10;
    CHECK_EQ(wh_http_parse_response(buf, (size_t)n, &p, &lim), WH_HTTP_ERROR);
    lim.max_request_line = 8192;
    lim.max_headers = 3;
    CHECK_EQ(wh_http_parse_response(buf, (size_t)n, &p, &lim), WH_HTTP_ERROR);
}

/* ---- chunked ---- */

struct ccase {
    const char *raw;
    int rc;           /* 0 done, -1 error, -2 incomplete */
    int status;       /* on error */
    const char *body; /* decoded, when done */
    size_t rest;      /* bytes left after the message */
};

static const struct ccase ccases[] = {
    {"0\r\n\r\n", 0, 0, "", 0},
    {"5\r\nhello\r\n0\r\n\r\n", 0, 0, "hello", 0},
    {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 0, "hello world", 0},
    {"A\r\n0123456789\r\n0\r\n\r\n", 0, 0, "0123456789", 0},
    {"a\r\n0123456789\r\n000\r\n\r\n", 0, 0, "0123456789", 0},
    {"0005\r\nhello\r\n0\r\n\r\nGET", 0, 0, "hello", 3},
    {"5;ext=1\r\nhello\r\n0;x\r\n\r\n", 0, 0, "hello", 0},
    {"5 ;ext=\"q v\"\r\nhello\r\n0\r\n\r\n", 0, 0, "hello", 0},
    {"5\t; a ; b = c\r\nhello\r\n0\r\n\r\n", 0, 0, "hello", 0},
    {"5\r\nhello\r\n0\r\nX-Trailer: v\r\nY: \r\n\r\n", 0, 0, "hello", 0},
    {"5\r\nhe", -2, 0, NULL, 0},
    {"5\r\nhello\r\n0\r\n", -2, 0, NULL, 0},
    {"", -2, 0, NULL, 0},
    {"x\r\n", -1, 400, NULL, 0},
    {"\r\n", -1, 400, NULL, 0},
    {"-1\r\n", -1, 400, NULL, 0},
    {"5\nhello\r\n0\r\n\r\n", -1, 400, NULL, 0},
    {"5\r\nhelloX\r\n", -1, 400, NULL, 0},
    {"5\r\nhello\n0\r\n\r\n", -1, 400, NULL, 0},
    {"5\r\nhello\r\r\n", -1, 400, NULL, 0},
    {"5 5\r\nhello\r\n", -1, 400, NULL, 0},
    {"5;\x01\r\nhello\r\n", -1, 400, NULL, 0},
    {"0x5\r\nhello\r\n", -1, 400, NULL, 0},
    {"10000000000000000\r\n", -1, 400, NULL, 0},
    {"fffffffffffffffff\r\n", -1, 400, NULL, 0},
    {"ffffffffffffffff\r\n", -1, 413, NULL, 0},
    {"5\r\nhello\r\n0\r\n X: v\r\n\r\n", -1, 400, NULL, 0},
    {"5\r\nhello\r\n0\r\nX : v\r\n\r\n", -1, 400, NULL, 0},
    {"5\r\nhello\r\n0\r\nX: \x01\r\n\r\n", -1, 400, NULL, 0},
    {"5\r\nhello\r\n0\r\nX: v\n\r\n", -1, 400, NULL, 0},
    {"5\r\nhello\r\n0\r\n\n", -1, 400, NULL, 0},
    {"0\r\n\r\r", -1, 400, NULL, 0},
};

static int run_chunked(const char *raw, size_t len, const size_t *cuts, size_t ncuts, char *buf,
                       wh_http_chunked *d, size_t *in, size_t *out)
{
    /* Deliver raw in growing prefixes into buf, decoding in place. */
    int rc = WH_HTTP_INCOMPLETE;
    *in = *out = 0;
    for (size_t k = 0; k < ncuts; k++) {
        size_t have = cuts[k];
        memcpy(buf, raw, 0); /* bytes already present stay as decoded */
        size_t prev = k ? cuts[k - 1] : 0;
        memcpy(buf + prev, raw + prev, have - prev);
        rc = wh_http_chunked_decode(d, buf, have, in, out);
        if (rc != WH_HTTP_INCOMPLETE) return rc;
    }
    (void)len;
    return rc;
}

TEST(chunked_table)
{
    static char buf[256];
    wh_http_chunked d;
    for (size_t i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
        const struct ccase *c = &ccases[i];
        size_t len = strlen(c->raw);
        /* whole, then every two-piece split, then byte by byte */
        for (size_t cut = 0; cut <= len; cut++) {
            size_t cuts2[2] = {cut, len};
            size_t bytes[256];
            for (size_t k = 0; k < len; k++)
                bytes[k] = k + 1;
            for (int mode = 0; mode < 2; mode++) {
                if (mode == 1 && cut > 0) continue;
                wh_http_chunked_init(&d, 1 << 20);
                size_t in, out;
                int rc = mode == 0 ? run_chunked(c->raw, len, cuts2, 2, buf, &d, &in, &out)
                                   : run_chunked(c->raw, len, bytes, len, buf, &d, &in, &out);
                if (rc != c->rc)
                    fprintf(stderr, "chunked case %zu cut %zu mode %d: rc %d\n", i, cut, mode, rc);
                CHECK_EQ(rc, c->rc);
                if (rc == WH_HTTP_ERROR) CHECK_EQ(d.status, c->status);
                if (rc == 0) {
                    CHECK_EQ(out, strlen(c->body));
                    CHECK(!memcmp(buf, c->body, out));
                    CHECK_EQ(len - in, c->rest);
                    CHECK_EQ(d.total, out);
                }
            }
        }
    }
}

TEST(chunked_limits)
{
    static char buf[100000];
    wh_http_chunked d;
    size_t in = 0, out = 0;
    /* body limit across chunks */
    const char *r = "40\r\n";
    wh_http_chunked_init(&d, 100);
    int n = sprintf(buf, "%s", r);
    memset(buf + n, 'x', 64);
    n += 64;
    n += sprintf(buf + n, "\r\n25\r\n");
    CHECK_EQ(wh_http_chunked_decode(&d, buf, (size_t)n, &in, &out), WH_HTTP_ERROR);
    CHECK_EQ(d.status, 413);
    CHECK_EQ(out, 64);
    /* exactly at the limit */
    wh_http_chunked_init(&d, 100);
    in = out = 0;
    n = sprintf(buf, "40\r\n");
    memset(buf + n, 'x', 64);
    n += 64;
    n += sprintf(buf + n, "\r\n24\r\n");
    memset(buf + n, 'y', 36);
    n += 36;
    n += sprintf(buf + n, "\r\n0\r\n\r\n");
    CHECK_EQ(wh_http_chunked_decode(&d, buf, (size_t)n, &in, &out), 0);
    CHECK_EQ(out, 100);
    /* unbounded extension */
    wh_http_chunked_init(&d, 0);
    in = out = 0;
    n = sprintf(buf, "1;");
    memset(buf + n, 'e', 5000);
    n += 5000;
    CHECK_EQ(wh_http_chunked_decode(&d, buf, (size_t)n, &in, &out), WH_HTTP_ERROR);
    CHECK_EQ(d.status, 400);
    /* unbounded trailers */
    wh_http_chunked_init(&d, 0);
    in = out = 0;
    n = sprintf(buf, "0\r\n");
    for (int k = 0; k < 1000; k++)
        n += sprintf(buf + n, "X-%d: vvvvvvvvvv\r\n", k);
    CHECK_EQ(wh_http_chunked_decode(&d, buf, (size_t)n, &in, &out), WH_HTTP_ERROR);
    CHECK_EQ(d.status, 431);
    /* once failed, stays failed */
    CHECK_EQ(wh_http_chunked_decode(&d, buf, (size_t)n, &in, &out), WH_HTTP_ERROR);
}

TEST(format_head)
{
    char buf[512];
    char date[30];
    wh_http_format_date(784111777, date);
    CHECK(!strcmp(date, "Sun, 06 Nov 1994 08:49:37 GMT"));
    wh_http_head_spec h = {.status = 200,
                           .content_type = "text/plain",
                           .content_length = 13,
                           .date = date,
                           .server = "wharf"};
    int n = wh_http_format_head(buf, sizeof buf, &h);
    CHECK(n > 0);
    buf[n] = 0;
    CHECK(!strcmp(buf, "HTTP/1.1 200 OK\r\nServer: wharf\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                       "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"));
    wh_http_head_spec h2 = {.status = 404,
                            .content_length = -1,
                            .chunked = true,
                            .close = true,
                            .extra = "X: y\r\n",
                            .extra_len = 6};
    n = wh_http_format_head(buf, sizeof buf, &h2);
    buf[n] = 0;
    CHECK(!strcmp(buf, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\nX: y\r\n\r\n"));
    CHECK_EQ(wh_http_format_head(buf, 20, &h), -ENOSPC);
    CHECK(!strcmp(wh_http_reason(431), "Request Header Fields Too Large"));
    CHECK(!strcmp(wh_http_reason(299), "Unknown"));
}

TEST(format_head_content_length_digits)
{
    /* The decimal writer goes two digits at a time: every length of 1 to
     * 20 digits, at and around each power of ten, against snprintf. */
    char buf[512], want[64];
    uint64_t vals[64];
    size_t nv = 0;
    vals[nv++] = 0;
    vals[nv++] = UINT64_MAX;
    vals[nv++] = (uint64_t)INT64_MAX;
    for (uint64_t p = 1; nv + 3 <= sizeof vals / sizeof vals[0]; p *= 10) {
        vals[nv++] = p - 1;
        vals[nv++] = p;
        vals[nv++] = p + 7;
        if (p > UINT64_MAX / 10) break;
    }
    for (size_t i = 0; i < nv; i++) {
        if (vals[i] > (uint64_t)INT64_MAX) continue; /* content_length is an int64_t */
        wh_http_head_spec h = {.status = 200, .content_length = (int64_t)vals[i]};
        int n = wh_http_format_head(buf, sizeof buf, &h);
        CHECK(n > 0);
        buf[n] = 0;
        snprintf(want, sizeof want, "Content-Length: %llu\r\n", (unsigned long long)vals[i]);
        CHECK(strstr(buf, want) != NULL);
    }
}

WH_TEST_MAIN()
