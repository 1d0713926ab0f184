/* Prepared field blocks (wh_static_fields): a representation's full-answer
 * fields, formatted once, must put exactly the bytes on the wire that the
 * field-by-field path puts there. Checked on a real engine (bare-loop host,
 * raw loopback sockets) for a matrix of root options (Cache-Control,
 * precompressed siblings), codings and requests (GET, HEAD, HTTP/1.0,
 * Connection: close, If-None-Match and If-Modified-Since -> 304, Range ->
 * 206 and 416, If-Range, If-Match -> 412): each request is answered once
 * from a rep with the block and once without, and the two byte streams
 * must be equal but for the Date value. A full answer from memory with a
 * block takes the engine's prepared-head path (wh__http_respond_prepared),
 * so the matrix also runs on servers with no Server field and with a long
 * one, with handler lines added before the answer (the general path must
 * take those), and with a body too large to share the head's buffer.
 * A third variant sends the body by reference (wh_static_plan.body_release,
 * as wharfd does for large cached files): the same bytes again, and its
 * release runs exactly once per reference, sent or not (HEAD). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_host.h"
#include "test.h"
#include "wharf/http_file.h"

#define NROOTS 4 /* bit 0: precompressed, bit 1: Cache-Control */

#define NSRV 3 /* Server: "wharf", none, 300 bytes */

static http_host hosts[NSRV];
static wh_http_server *srvs[NSRV];
static char long_name[301];
static int port;
static char dir[] = "/tmp/wh_static_fieldsXXXXXX";
static wh_static_root roots[NROOTS];
static wh_static_fields prepared[NROOTS][2]; /* [root][identity, gzip] */
static atomic_int used_block;
static atomic_int refs_taken, refs_released, refs_foreign;

static const char body[] = "0123456789abcdef";
static char big[4000];  /* more than the head's 2 KiB stack buffer holds */
#define MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

/* Runs on the server's thread: counts, the test thread checks. */
static void count_release(void *ud)
{
    if (ud != (void *)body && ud != (void *)big) atomic_fetch_add(&refs_foreign, 1);
    atomic_fetch_add(&refs_released, 1);
}

static void rep_for(int gz, char etag[48], wh_static_rep *rep)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = 42;
    st.st_size = 16;
    st.st_mtim.tv_sec = MTIME;
    unsigned enc = gz ? WH_ENC_GZIP : WH_ENC_IDENTITY;
    wh_static_etag(&st, enc, etag, 48);
    memset(rep, 0, sizeof *rep);
    rep->content_type = "text/plain; charset=utf-8";
    rep->encoding = enc;
    rep->etag = etag;
    rep->mtime = MTIME;
    rep->size = 16;
}

/* Target "/<root><g|i><0|1|2>": the root, the coding, without the block,
 * with it, or with it and the body by reference; any other target is the
 * closing request's. */
static void handler(wh_http_req *r, void *ud)
{
    (void)ud;
    wh_str p = wh_http_req_path(r);
    if (p.len != 4 || p.p[1] < '0' || p.p[1] >= '0' + NROOTS) {
        wh_http_respond(r, 200, "text/plain", "end", 3);
        return;
    }
    int ri = p.p[1] - '0', gz = p.p[2] == 'g', prep = p.p[3] != '0', byref = p.p[3] == '2';
    /* X-Add: a handler line before the answer; X-Add: s: its own Server;
     * X-Big: a body past the head's buffer. */
    wh_str add = wh_http_req_header(r, "X-Add");
    if (add.len) wh_http_resp_header(r, add.p[0] == 's' ? "Server" : "X-Handler", "mine");
    bool large = wh_http_req_header(r, "X-Big").len > 0;
    char etag[48];
    wh_static_rep rep;
    rep_for(gz, etag, &rep);
    if (large) rep.size = sizeof big;
    if (prep) rep.fields = &prepared[ri][gz];
    wh_static_req q;
    wh_static_req_from_http(&q, r);
    wh_static_plan plan;
    wh_static_plan_rep(&roots[ri], &q, &rep, &plan);
    if (plan.fields) atomic_fetch_add(&used_block, 1);
    if (plan.status == 200 || plan.status == 206) {
        plan.body = (large ? big : (char *)body) + plan.offset;
        plan.body_len = (size_t)plan.length;
        if (byref) {
            plan.body_release = count_release;
            plan.body_ud = large ? big : (char *)body;
            atomic_fetch_add(&refs_taken, 1);
        }
    }
    wh_http_respond_plan(r, &plan);
}

/* Sends req (with "%s" for the target) and a closing request after it;
 * reads to EOF; masks the Date values. */
static size_t exchange(const char *fmt, const char *target, char *buf, size_t cap)
{
    char req[1024];
    int n = snprintf(req, sizeof req, fmt, target);
    n += snprintf(req + n, sizeof req - (size_t)n,
                  "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    int fd = http_connect(port);
    if (fd < 0) return 0;
    http_send(fd, req, (size_t)n);
    int eof;
    size_t len = http_recv_until(fd, buf, cap, NULL, 0, 2000, &eof);
    close(fd);
    for (char *d = buf; (d = memmem(d, len - (size_t)(d - buf), "\r\nDate: ", 8)) != NULL; d += 8)
        if ((size_t)(d - buf) + 8 + 29 <= len) memset(d + 8, 'x', 29);
    return eof ? len : 0;
}

TEST(start)
{
    CHECK(mkdtemp(dir) != NULL);
    memset(big, 'b', sizeof big);
    memset(long_name, 's', sizeof long_name - 1);
    for (int i = 0; i < NROOTS; i++) {
        wh_static_opts o;
        wh_static_opts_init(&o);
        o.precompressed = i & 1;
        o.cache_control = i & 2 ? "public, max-age=60" : NULL;
        CHECK_EQ(wh_static_root_open(&roots[i], dir, &o), 0);
        for (int gz = 0; gz < 2; gz++) {
            char etag[48];
            wh_static_rep rep;
            rep_for(gz, etag, &rep);
            CHECK_EQ(wh_static_fields_make(&roots[i], &rep, &prepared[i][gz]), 0);
            CHECK(prepared[i][gz].len > 0);
        }
    }
    for (int i = 0; i < NSRV; i++) {
        wh_http_opts o;
        wh_http_opts_init(&o);
        o.keepalive_timeout_ms = 2000;
        if (i == 1) o.server_name = NULL;
        if (i == 2) o.server_name = long_name;
        CHECK_EQ(wh_http_server_new(&srvs[i], &o, handler, NULL), 0);
        CHECK_EQ(http_host_start(&hosts[i], srvs[i]), 0);
    }
}

TEST(block_is_what_the_fields_say)
{
    /* The block of the richest root and coding, spelled out. */
    char etag[48];
    wh_static_rep rep;
    rep_for(1, etag, &rep);
    char want[512];
    snprintf(want, sizeof want,
             "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\nETag: %s\r\n"
             "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nAccept-Ranges: bytes\r\n"
             "Cache-Control: public, max-age=60\r\n",
             etag);
    const wh_static_fields *f = &prepared[3][1];
    CHECK_EQ(f->len, strlen(want));
    CHECK(memcmp(f->text, want, f->len) == 0);
    /* Refused: a value with a control byte, and a block past the bound. */
    wh_static_root bad = roots[0];
    bad.opts.cache_control = "a\r\nX-Injected: 1";
    wh_static_fields g;
    CHECK_EQ(wh_static_fields_make(&bad, &rep, &g), -EINVAL);
    CHECK_EQ(g.len, 0);
    char longcc[300];
    memset(longcc, 'a', sizeof longcc - 1);
    longcc[sizeof longcc - 1] = '\0';
    bad.opts.cache_control = longcc;
    CHECK_EQ(wh_static_fields_make(&bad, &rep, &g), -ENOSPC);
    CHECK_EQ(g.len, 0);
    /* A rep whose block is empty plans field by field. */
    rep.fields = &g;
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = (wh_str){"GET", 3};
    wh_static_plan pl;
    wh_static_plan_rep(&roots[0], &q, &rep, &pl);
    CHECK_EQ(pl.status, 200);
    CHECK(pl.fields == NULL);
}

TEST(same_bytes_as_field_by_field)
{
    static const char *reqs[] = {
        "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD %s HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET %s HTTP/1.0\r\n\r\n",
        "GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\n",
        "HEAD %s HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nRange: bytes=2-5\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nRange: bytes=100-\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nRange: bytes=2-5\r\nIf-Range: \"nope\"\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nIf-Match: \"nope\"\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sat, 05 Nov 1994 08:49:37 GMT\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nX-Add: x\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nX-Add: s\r\n\r\n",
        "GET %s HTTP/1.1\r\nHost: a\r\nX-Big: 1\r\n\r\n",
        "HEAD %s HTTP/1.1\r\nHost: a\r\nX-Big: 1\r\n\r\n",
    };
    enum { NREQ = sizeof reqs / sizeof reqs[0] };
    static char a[16384], b[16384];
    int cases = 0, full = 0;
    for (int si = 0; si < NSRV; si++) {
        port = hosts[si].port;
        for (int ri = 0; ri < NROOTS; ri++) {
            for (int gz = 0; gz < 2; gz++) {
                for (size_t k = 0; k < NREQ; k++) {
                    char t0[16], t1[16];
                    snprintf(t0, sizeof t0, "/%d%c0", ri, gz ? 'g' : 'i');
                    snprintf(t1, sizeof t1, "/%d%c1", ri, gz ? 'g' : 'i');
                    int before = atomic_load(&used_block);
                    size_t na = exchange(reqs[k], t0, a, sizeof a);
                    CHECK_EQ(atomic_load(&used_block), before); /* no block, none used */
                    size_t nb = exchange(reqs[k], t1, b, sizeof b);
                    CHECK(na > 0);
                    if (na != nb || memcmp(a, b, na) != 0)
                        fprintf(
                            stderr,
                            "server %d root %d gz %d request %zu differs:\n%s\n--- vs ---\n%s\n",
                            si, ri, gz, k, a, b);
                    CHECK_EQ(na, nb);
                    CHECK(memcmp(a, b, na) == 0);
                    if (atomic_load(&used_block) > before) full++;
                    cases++;
                    /* By reference: the same bytes; every reference is
                     * released by the time the connection has ended (the
                     * release runs on the server's thread: a moment's wait). */
                    char t2[16];
                    snprintf(t2, sizeof t2, "/%d%c2", ri, gz ? 'g' : 'i');
                    size_t nc = exchange(reqs[k], t2, b, sizeof b);
                    CHECK_EQ(na, nc);
                    CHECK(memcmp(a, b, na) == 0);
                    for (int w = 0;
                         w < 200 && atomic_load(&refs_released) != atomic_load(&refs_taken); w++)
                        usleep(5000);
                    CHECK_EQ(atomic_load(&refs_released), atomic_load(&refs_taken));
                }
            }
        }
    }
    CHECK_EQ(cases, NSRV * NROOTS * 2 * NREQ);
    /* The block served GET, HEAD, both 1.0s, close, a failed If-Range, a
     * satisfied If-Modified-Since, both handler-line cases and both large
     * bodies: 11 requests per server, root and coding. */
    CHECK_EQ(full, NSRV * NROOTS * 2 * 11);
    /* References were taken for every 200 and 206: the 11 full answers and
     * the 206 of a plain range. */
    CHECK_EQ(atomic_load(&refs_taken), NSRV * NROOTS * 2 * 12);
    CHECK_EQ(atomic_load(&refs_foreign), 0);
}

TEST(stop)
{
    for (int i = 0; i < NSRV; i++) {
        CHECK_EQ(http_host_stop(&hosts[i]), 0);
        wh_http_server_free(srvs[i]);
    }
    for (int i = 0; i < NROOTS; i++)
        wh_static_root_close(&roots[i]);
    rmdir(dir);
}

WH_TEST_MAIN()
