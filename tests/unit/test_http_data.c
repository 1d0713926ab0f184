/* Request data (include/wharf/http_data.h): percent-decoding, urlencoded
 * queries and forms, header values, cookies, multipart/form-data, and the
 * router's decoded path parameters. The pure functions are called directly;
 * the wh_http_req wrappers and the router run on a real engine (a bare
 * wh_loop + listener on a thread of the test's own, as test_http_bare.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_host.h"
#include "test.h"
#include "wharf/http.h"
#include "wharf/http_data.h"

#define S(lit) ((wh_str){lit, sizeof(lit) - 1})

static bool str_is(wh_str s, const char *lit)
{
    return s.p && s.len == strlen(lit) && !memcmp(s.p, lit, s.len);
}

/* ---- percent-decoding ---------------------------------------------------- */

TEST(hex_digit)
{
    CHECK_EQ(wh_http_hex_digit('0'), 0);
    CHECK_EQ(wh_http_hex_digit('9'), 9);
    CHECK_EQ(wh_http_hex_digit('a'), 10);
    CHECK_EQ(wh_http_hex_digit('F'), 15);
    CHECK_EQ(wh_http_hex_digit('g'), -1);
    CHECK_EQ(wh_http_hex_digit('G'), -1);
    CHECK_EQ(wh_http_hex_digit('/'), -1);
    CHECK_EQ(wh_http_hex_digit(':'), -1);
    CHECK_EQ(wh_http_hex_digit(0), -1);
    CHECK_EQ(wh_http_hex_digit(0xC1), -1);
}

TEST(pct_decode)
{
    char out[64];
    CHECK_EQ(wh_http_pct_decode(S("a%20b+c%2fd%2F"), out, sizeof out), 8);
    CHECK(!memcmp(out, "a b+c/d/", 8)); /* '+' is itself outside forms */
    CHECK_EQ(wh_http_pct_decode(S("%00%ff"), out, sizeof out), 2);
    CHECK(out[0] == 0 && (unsigned char)out[1] == 0xff);
    CHECK_EQ(wh_http_pct_decode(S(""), out, 0), 0);
    CHECK_EQ(wh_http_pct_decode((wh_str){NULL, 0}, out, sizeof out), 0);
    /* malformed: reported, never passed on */
    const char *bad[] = {"%", "%4", "a%", "%G1", "%1G", "%%41", "x%4", "%-1", "% 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(wh_http_pct_decode((wh_str){bad[i], strlen(bad[i])}, out, sizeof out), -EINVAL);
    /* a malformed escape after a full buffer is still -EINVAL when measuring */
    CHECK_EQ(wh_http_pct_decode(S("abc%4"), NULL, 0), -EINVAL);
    /* exact fit, one short */
    CHECK_EQ(wh_http_pct_decode(S("ab%43"), out, 3), 3);
    CHECK_EQ(wh_http_pct_decode(S("ab%43"), out, 2), -ENOSPC);
    CHECK_EQ(wh_http_pct_decode(S("x"), out, 0), -ENOSPC);
    /* NULL measures */
    CHECK_EQ(wh_http_pct_decode(S("%41%42c"), NULL, 0), 3);
    /* in place */
    char ip[] = "x%41%42y";
    CHECK_EQ(wh_http_pct_decode((wh_str){ip, 8}, ip, 8), 4);
    CHECK(!memcmp(ip, "xABy", 4));
}

TEST(form_decode)
{
    char out[64];
    ssize_t n = wh_http_form_decode(S("x%20y+z++%2B"), out, sizeof out);
    CHECK_EQ(n, 8);
    CHECK(!memcmp(out, "x y z  +", 8));
    CHECK_EQ(wh_http_form_decode(S("%E6%97%A5"), out, sizeof out), 3);
    CHECK(!memcmp(out, "\xE6\x97\xA5", 3));
    CHECK_EQ(wh_http_form_decode(S("+%zz"), out, sizeof out), -EINVAL);
    CHECK_EQ(wh_http_form_decode(S("+++"), out, 2), -ENOSPC);
    CHECK_EQ(wh_http_form_decode(S("a+%41"), NULL, 0), 3);
}

/* ---- urlencoded pairs ------------------------------------------------------ */

TEST(form_iter)
{
    wh_http_form_iter it;
    wh_http_form_pair kv;
    wh_http_form_iter_init(&it, S("a=1&b=&c&d=x%20y+z&&=v&e=1=2&"));
    const char *want[][2] = {{"a", "1"},       {"b", ""}, {"c", ""},
                             {"d", "x%20y+z"}, {"", "v"}, {"e", "1=2"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK(wh_http_form_next(&it, &kv));
        CHECK(kv.name.len == strlen(want[i][0]) && !memcmp(kv.name.p, want[i][0], kv.name.len));
        CHECK(kv.value.len == strlen(want[i][1]) && !memcmp(kv.value.p, want[i][1], kv.value.len));
    }
    CHECK(!wh_http_form_next(&it, &kv));
    CHECK(!wh_http_form_next(&it, &kv));
    /* ';' is no separator (WHATWG), empty and NULL strings have no pairs */
    wh_http_form_iter_init(&it, S("a=1;b=2"));
    CHECK(wh_http_form_next(&it, &kv));
    CHECK(str_is(kv.value, "1;b=2"));
    wh_http_form_iter_init(&it, S("&&&"));
    CHECK(!wh_http_form_next(&it, &kv));
    wh_http_form_iter_init(&it, (wh_str){NULL, 0});
    CHECK(!wh_http_form_next(&it, &kv));
}

TEST(form_name_eq)
{
    CHECK(wh_http_form_name_eq(S("name"), "name"));
    CHECK(wh_http_form_name_eq(S("n%61me"), "name"));
    CHECK(wh_http_form_name_eq(S("a+b"), "a b"));
    CHECK(wh_http_form_name_eq(S("a%2Bb"), "a+b"));
    CHECK(wh_http_form_name_eq(S(""), ""));
    CHECK(!wh_http_form_name_eq(S("nam"), "name"));
    CHECK(!wh_http_form_name_eq(S("names"), "name"));
    CHECK(!wh_http_form_name_eq(S("%6"), "%6")); /* malformed never equals */
    CHECK(!wh_http_form_name_eq(S("na%zz"), "na%zz"));
    CHECK(!wh_http_form_name_eq(S("a%00"), "a")); /* a decoded NUL is a byte */
}

TEST(form_get)
{
    char buf[32];
    wh_str q = S("a=1&b=&c&d=x%20y+z&a=2&%61%62=AB&=empty");
    CHECK_EQ(wh_http_form_get(q, "a", buf, sizeof buf), 1);
    CHECK(!strcmp(buf, "1")); /* the first of repeated keys */
    CHECK_EQ(wh_http_form_get(q, "b", buf, sizeof buf), 0);
    CHECK_EQ(buf[0], '\0');
    CHECK_EQ(wh_http_form_get(q, "c", buf, sizeof buf), 0);
    CHECK_EQ(wh_http_form_get(q, "d", buf, sizeof buf), 5);
    CHECK(!strcmp(buf, "x y z"));
    CHECK_EQ(wh_http_form_get(q, "ab", buf, sizeof buf), 2);
    CHECK(!strcmp(buf, "AB"));
    CHECK_EQ(wh_http_form_get(q, "", buf, sizeof buf), 5);
    CHECK(!strcmp(buf, "empty"));
    CHECK_EQ(wh_http_form_get(q, "zz", buf, sizeof buf), -ENOENT);
    /* the NUL needs room too */
    CHECK_EQ(wh_http_form_get(q, "d", buf, 5), -ENOSPC);
    CHECK_EQ(wh_http_form_get(q, "d", buf, 6), 5);
    CHECK_EQ(wh_http_form_get(q, "b", buf, 0), -ENOSPC);
    /* a malformed escape anywhere, even in another pair */
    CHECK_EQ(wh_http_form_get(S("a=1&b=%G1"), "a", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_form_get(S("a=1&%4=x"), "zz", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_form_get(S("a=%"), "a", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_form_get((wh_str){NULL, 0}, "a", buf, sizeof buf), -ENOENT);
}

/* ---- header values (pure) ---------------------------------------------- */

TEST(media_type)
{
    CHECK(wh_http_media_type_is(S("multipart/form-data; boundary=x"), "multipart/form-data"));
    CHECK(wh_http_media_type_is(S("  Multipart/Form-Data ;boundary=x"), "multipart/form-data"));
    CHECK(wh_http_media_type_is(S("text/plain"), "text/plain"));
    CHECK(wh_http_media_type_is(S("text/plain \t"), "text/plain"));
    CHECK(!wh_http_media_type_is(S("text/plainx"), "text/plain"));
    CHECK(!wh_http_media_type_is(S("text/plain x"), "text/plain"));
    CHECK(!wh_http_media_type_is(S("text/"), "text/plain"));
    CHECK(!wh_http_media_type_is(S(""), "text/plain"));
    CHECK(!wh_http_media_type_is((wh_str){NULL, 0}, "text/plain"));
}

TEST(header_param)
{
    char buf[32];
    wh_str v = S("multipart/form-data; charset=utf-8 ;BOUNDARY=\"a \\\"q\\\\ b\"; x=1");
    CHECK_EQ(wh_http_header_param(v, "boundary", buf, sizeof buf), 7);
    CHECK(!strcmp(buf, "a \"q\\ b"));
    CHECK_EQ(wh_http_header_param(v, "charset", buf, sizeof buf), 5);
    CHECK(!strcmp(buf, "utf-8"));
    CHECK_EQ(wh_http_header_param(v, "x", buf, sizeof buf), 1);
    CHECK_EQ(wh_http_header_param(v, "y", buf, sizeof buf), -ENOENT);
    CHECK_EQ(wh_http_header_param(v, "boundary", buf, 7), -ENOSPC); /* 7 bytes + NUL */
    CHECK_EQ(wh_http_header_param(v, "boundary", buf, 8), 7);
    /* a backslash before anything but '"' or '\' is kept (file names) */
    CHECK_EQ(wh_http_header_param(S("form-data; filename=\"C:\\new\\x.txt\""), "filename", buf,
                                  sizeof buf),
             12);
    CHECK(!strcmp(buf, "C:\\new\\x.txt"));
    CHECK_EQ(wh_http_header_param(S("a/b; q=\"\""), "q", buf, sizeof buf), 0);
    CHECK_EQ(wh_http_header_param(S("a/b;; q=1;"), "q", buf, sizeof buf), 1);
    CHECK_EQ(wh_http_header_param(S("a/b; q = 1"), "q", buf, sizeof buf), 1); /* RFC 6266 LWS */
    /* malformed or ambiguous */
    CHECK_EQ(wh_http_header_param(S("a/b; q=1; Q=2"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b; q=\"open"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b; q"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b; =1"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b; q=a b"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b q=1"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("; q=1"), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b; q=\"\x01\""), "q", buf, sizeof buf), -EINVAL);
    CHECK_EQ(wh_http_header_param(S("a/b"), "q", buf, sizeof buf), -ENOENT);
    CHECK_EQ(wh_http_header_param((wh_str){NULL, 0}, "q", buf, sizeof buf), -ENOENT);
}

/* ---- cookies (pure) ------------------------------------------------------- */

TEST(cookie_iter)
{
    wh_http_cookie_iter it;
    wh_str k, v;
    wh_http_cookie_iter_init(&it, S("a=1; b=\"x y\";c=;  d = 4 ;;e;f=a=b; g=\"\"; h=\"; =i"));
    const char *want[][2] = {{"a", "1"},   {"b", "x y"}, {"c", ""},   {"d", "4"}, {"", "e"},
                             {"f", "a=b"}, {"g", ""},    {"h", "\""}, {"", "i"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK(wh_http_cookie_next(&it, &k, &v));
        CHECK(k.len == strlen(want[i][0]) && !memcmp(k.p, want[i][0], k.len));
        CHECK(v.len == strlen(want[i][1]) && !memcmp(v.p, want[i][1], v.len));
    }
    CHECK(!wh_http_cookie_next(&it, &k, &v));
    wh_http_cookie_iter_init(&it, (wh_str){NULL, 0});
    CHECK(!wh_http_cookie_next(&it, &k, &v));
    wh_http_cookie_iter_init(&it, S(" ; ;"));
    CHECK(!wh_http_cookie_next(&it, &k, &v));
}

TEST(cookie_find)
{
    wh_str c = S("sid=abc%20; theme=dark; sid=second; Sid=case");
    CHECK(str_is(wh_http_cookie_find(c, "sid"), "abc%20")); /* no decoding, first wins */
    CHECK(str_is(wh_http_cookie_find(c, "Sid"), "case"));   /* names are case-sensitive */
    CHECK(str_is(wh_http_cookie_find(c, "theme"), "dark"));
    CHECK(wh_http_cookie_find(c, "none").p == NULL);
    CHECK(wh_http_cookie_find(S("e="), "e").p != NULL);
    CHECK_EQ(wh_http_cookie_find(S("e="), "e").len, 0);
}

/* ---- multipart ------------------------------------------------------------- */

TEST(multipart_boundary)
{
    char b[80];
    CHECK_EQ(
        wh_http_multipart_boundary(S("multipart/form-data; boundary=----WebKitX12"), b, sizeof b),
        13);
    CHECK(!strcmp(b, "----WebKitX12"));
    CHECK_EQ(
        wh_http_multipart_boundary(S("multipart/form-data; boundary=\"a b:c?(d)\""), b, sizeof b),
        9);
    CHECK(!strcmp(b, "a b:c?(d)"));
    char ct[128];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%070d", 7);
    CHECK_EQ(wh_http_multipart_boundary((wh_str){ct, strlen(ct)}, b, sizeof b), 70);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 7);
    CHECK_EQ(wh_http_multipart_boundary((wh_str){ct, strlen(ct)}, b, sizeof b), -EINVAL);
    CHECK_EQ(wh_http_multipart_boundary(S("multipart/form-data; boundary=\"\""), b, sizeof b),
             -EINVAL);
    CHECK_EQ(wh_http_multipart_boundary(S("multipart/form-data; boundary=\"ab \""), b, sizeof b),
             -EINVAL); /* may not end in a space */
    CHECK_EQ(wh_http_multipart_boundary(S("multipart/form-data; boundary=\"a;b\""), b, sizeof b),
             -EINVAL); /* ';' is no bchar */
    CHECK_EQ(
        wh_http_multipart_boundary(S("multipart/form-data; boundary=a; boundary=b"), b, sizeof b),
        -EINVAL);
    CHECK_EQ(wh_http_multipart_boundary(S("multipart/form-data"), b, sizeof b), -ENOENT);
    CHECK_EQ(wh_http_multipart_boundary(S("multipart/form-data; boundary=abc"), b, 3), -ENOSPC);
}

/* Runs the parser over body cut at cuts[0..ncuts) (each piece in its own
 * heap copy, so a slice kept past its call shows up under ASan) and writes
 * what it saw as text: <name|filename|type> per part, content, '$' at a
 * part's end, '!' at the close delimiter. Returns finish()'s result or the
 * first error. */
static char tr[1 << 16];
static size_t trlen;
static wh_http_multipart tmp_mp;

static void tr_put(const char *p, size_t n)
{
    if (trlen + n < sizeof tr) {
        memcpy(tr + trlen, p, n);
        trlen += n;
        tr[trlen] = 0;
    }
}

static void tr_str(wh_str s)
{
    if (s.p)
        tr_put(s.p, s.len);
    else
        tr_put("-", 1);
}

static int run_mp(const char *boundary, const char *body, size_t len, const size_t *cuts,
                  size_t ncuts, size_t hcap, unsigned max_parts, size_t max_name)
{
    static char hbuf[4096];
    wh_http_multipart *mp = &tmp_mp;
    trlen = 0;
    tr[0] = 0;
    int rc = wh_http_multipart_init(mp, (wh_str){boundary, strlen(boundary)}, hbuf, hcap);
    if (rc < 0) return rc;
    if (max_parts) mp->max_parts = max_parts;
    if (max_name) mp->max_name = max_name;
    size_t at = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t n = end - at;
        char *piece = malloc(n ? n : 1);
        memcpy(piece, body + at, n);
        size_t pos = 0;
        wh_str d;
        int ev;
        while ((ev = wh_http_multipart_feed(mp, piece, n, &pos, &d)) != WH_HTTP_MULTIPART_MORE) {
            if (ev < 0) {
                free(piece);
                return ev;
            }
            if (ev == WH_HTTP_MULTIPART_PART) {
                tr_put("<", 1);
                tr_str(mp->part.name);
                tr_put("|", 1);
                tr_str(mp->part.filename);
                tr_put("|", 1);
                tr_str(mp->part.content_type);
                tr_put(">", 1);
            } else if (ev == WH_HTTP_MULTIPART_DATA) {
                if (d.len == 0) tr_put("[empty DATA]", 12);
                tr_put(d.p, d.len);
            } else if (ev == WH_HTTP_MULTIPART_PART_END) {
                tr_put("$", 1);
            } else if (ev == WH_HTTP_MULTIPART_DONE) {
                tr_put("!", 1);
            }
        }
        if (pos != n) tr_put("[pos]", 5);
        free(piece);
        at = end;
    }
    return wh_http_multipart_finish(mp);
}

static int mp1(const char *body, char *out, size_t cap)
{
    int rc = run_mp("XyZ", body, strlen(body), NULL, 0, 1024, 0, 0);
    size_t n = trlen < cap - 1 ? trlen : cap - 1;
    memcpy(out, tr, n);
    out[n] = '\0';
    return rc;
}

#define MP_BODY                                                                                    \
    "preamble, ignored\r\n"                                                                        \
    "--XyZ\r\n"                                                                                    \
    "Content-Disposition: form-data; name=\"title\"\r\n"                                           \
    "\r\n"                                                                                         \
    "Hello\r\n--XyY\r\n-\r\r\n--Xy\r\n"                                                            \
    "--XyZ  \t\r\n"                                                                                \
    "content-disposition: Form-Data; filename=\"a\\\"b.txt\"; NAME=file\r\n"                       \
    "Content-Type: text/plain\r\n"                                                                 \
    "X-Other: ignored\r\n"                                                                         \
    "\r\n"                                                                                         \
    "\r\nline1\r\nline2\r\n\r\n"                                                                   \
    "--XyZ\r\n"                                                                                    \
    "Content-Disposition: form-data; name=empty\r\n"                                               \
    "\r\n"                                                                                         \
    "\r\n"                                                                                         \
    "--XyZ--\r\nepilogue, ignored\r\n--XyZ\r\n"

#define MP_WANT                                                                                    \
    "<title|-|->Hello\r\n--XyY\r\n-\r\r\n--Xy$"                                                    \
    "<file|a\"b.txt|text/plain>\r\nline1\r\nline2\r\n$"                                            \
    "<empty|-|->$!"

TEST(multipart_basic)
{
    char out[1024];
    CHECK_EQ(mp1(MP_BODY, out, sizeof out), 0);
    if (strcmp(out, MP_WANT)) fprintf(stderr, "got  %s\n", out);
    CHECK(!strcmp(out, MP_WANT));
}

TEST(multipart_every_split)
{
    /* The same events and content for every cut in two, every cut in
     * three, and byte by byte: the boundary split at every position. */
    const char *body = MP_BODY;
    size_t len = strlen(body);
    for (size_t a = 0; a <= len; a++) {
        CHECK_EQ(run_mp("XyZ", body, len, &a, 1, 1024, 0, 0), 0);
        CHECK(!strcmp(tr, MP_WANT));
    }
    for (size_t a = 0; a <= len; a += 3)
        for (size_t b = a; b <= len; b += 2) {
            size_t cuts[2] = {a, b};
            CHECK_EQ(run_mp("XyZ", body, len, cuts, 2, 1024, 0, 0), 0);
            CHECK(!strcmp(tr, MP_WANT));
        }
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    int rc = run_mp("XyZ", body, len, cuts, len - 1, 1024, 0, 0);
    free(cuts);
    CHECK_EQ(rc, 0);
    CHECK(!strcmp(tr, MP_WANT));
}

TEST(multipart_shapes)
{
    char out[512];
    /* the first boundary at the very start, no preamble, no epilogue, no CRLF after "--" */
    CHECK_EQ(
        mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nA\r\n--XyZ--", out, sizeof out),
        0);
    CHECK(!strcmp(out, "<a|-|->A$!"));
    /* a part whose header lines end right at the delimiter (no content) */
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n--XyZ--", out, sizeof out),
             0);
    CHECK(!strcmp(out, "<a|-|->$!"));
    /* content that starts like a delimiter */
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n--Xy\r\n--XyZ--", out,
                 sizeof out),
             0);
    CHECK(!strcmp(out, "<a|-|->--Xy$!"));
    /* no parts at all */
    CHECK_EQ(mp1("--XyZ--", out, sizeof out), 0);
    CHECK(!strcmp(out, "!"));
    /* empty quoted name */
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--XyZ--", out,
                 sizeof out),
             0);
    CHECK(!strcmp(out, "<|-|->v$!"));
    /* binary content with NUL, CR and LF */
    const char bin[] =
        "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n\0\r\r\n\n\r\n--XyZ--";
    CHECK_EQ(run_mp("XyZ", bin, sizeof bin - 1, NULL, 0, 1024, 0, 0), 0);
    CHECK_EQ(trlen, 14);
    CHECK(!memcmp(tr, "<b|-|->\0\r\r\n\n$!", 14));
}

TEST(multipart_errors)
{
    char out[512];
    wh_http_multipart *mp = &tmp_mp;
    /* no close delimiter: truncated in content, after a boundary line, in headers */
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nA\r\n--XyZ\r\n", out,
                 sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "no close delimiter"));
    CHECK_EQ(mp->err_off, 59);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nAB", out, sizeof out),
             -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disp", out, sizeof out), -EBADMSG);
    CHECK_EQ(mp1("", out, sizeof out), -EBADMSG);
    CHECK_EQ(mp1("no boundary at all", out, sizeof out), -EBADMSG);
    /* LF-only line ends: no delimiter is ever seen (RFC 2046: CRLF) */
    CHECK_EQ(mp1("--XyZ\nContent-Disposition: form-data; name=a\n\nA\n--XyZ--\n", out, sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "boundary followed by other text"));
    CHECK_EQ(mp->err_off, 5);
    /* a boundary line with other text after it */
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nA\r\n--XyZx--", out,
                 sizeof out),
             -EBADMSG);
    CHECK_EQ(mp->err_off, 57);
    CHECK_EQ(mp1("--XyZ-x", out, sizeof out), -EBADMSG);
    CHECK_EQ(mp1("--XyZ \rx", out, sizeof out), -EBADMSG);
    CHECK(!strcmp(mp->err, "bare CR after a boundary"));
    CHECK_EQ(mp1("--XyZ x\r\n", out, sizeof out), -EBADMSG);
    /* part header syntax */
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\n\r\n", out, sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "bare LF in part headers"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\rx", out, sizeof out), -EBADMSG);
    CHECK(!strcmp(mp->err, "bare CR in part headers"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\n", out, sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "folded part header line"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\nBad Name: x\r\n\r\n", out,
                 sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "malformed part header line"));
    CHECK_EQ(mp1("--XyZ\r\nno colon\r\n\r\n", out, sizeof out), -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\n: empty name\r\n\r\n", out, sizeof out), -EBADMSG);
    CHECK_EQ(
        mp1("--XyZ\r\nContent-Disposition: form-data; name=\"a\x01\"\r\n\r\n", out, sizeof out),
        -EBADMSG);
    CHECK(!strcmp(mp->err, "control character in part headers"));
    /* RFC 7578 §4.2: Content-Disposition: form-data with a name */
    CHECK_EQ(mp1("--XyZ\r\n\r\nA\r\n--XyZ--", out, sizeof out), -EBADMSG);
    CHECK(!strcmp(mp->err, "part without Content-Disposition"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Type: text/plain\r\n\r\nA\r\n--XyZ--", out, sizeof out),
             -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\n", out, sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "Content-Disposition is not form-data"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data/x; name=a\r\n\r\n", out, sizeof out),
             -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-dat; name=a\r\n\r\n", out, sizeof out),
             -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data\r\n\r\n", out, sizeof out), -EBADMSG);
    CHECK(!strcmp(mp->err, "part without a name"));
    CHECK_EQ(
        mp1("--XyZ\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n", out, sizeof out),
        -EBADMSG);
    CHECK(!strcmp(mp->err, "repeated name parameter"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a; filename=x; FILENAME=y\r\n\r\n",
                 out, sizeof out),
             -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
                 "Content-Disposition: form-data; name=b\r\n\r\n",
                 out, sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "repeated Content-Disposition"));
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
                 "Content-Type: a/b\r\ncontent-type: c/d\r\n\r\n",
                 out, sizeof out),
             -EBADMSG);
    CHECK_EQ(mp1("--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\n", out, sizeof out),
             -EBADMSG);
    CHECK(!strcmp(mp->err, "malformed Content-Disposition parameters"));
    /* errors stick */
    size_t pos = 0;
    wh_str d;
    CHECK_EQ(wh_http_multipart_feed(mp, "--XyZ--", 7, &pos, &d), -EBADMSG);
    CHECK_EQ(pos, 0);
    CHECK_EQ(wh_http_multipart_finish(mp), -EBADMSG);
}

TEST(multipart_limits)
{
    char body[8192];
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += (size_t)sprintf(
            body + n, "--XyZ\r\nContent-Disposition: form-data; name=p%d\r\n\r\n%d\r\n", i, i);
    n += (size_t)sprintf(body + n, "--XyZ--");
    CHECK_EQ(run_mp("XyZ", body, n, NULL, 0, 1024, 5, 0), 0);
    CHECK_EQ(run_mp("XyZ", body, n, NULL, 0, 1024, 4, 0), -E2BIG);
    CHECK(!strcmp(tmp_mp.err, "too many parts"));
    /* header bytes: the block is 44 bytes with its empty line */
    const char *h = "--XyZ\r\nContent-Disposition: form-data; name=abc\r\n\r\nv\r\n--XyZ--";
    CHECK_EQ(run_mp("XyZ", h, strlen(h), NULL, 0, 64, 0, 0), 0);
    char big[256];
    snprintf(big, sizeof big,
             "--XyZ\r\nContent-Disposition: form-data; name=%030d\r\n\r\nv\r\n--XyZ--", 1);
    CHECK_EQ(run_mp("XyZ", big, strlen(big), NULL, 0, 71, 0, 0), 0);
    CHECK_EQ(run_mp("XyZ", big, strlen(big), NULL, 0, 70, 0, 0), -EMSGSIZE);
    CHECK(!strcmp(tmp_mp.err, "part headers too large"));
    CHECK_EQ(tmp_mp.err_off, 7 + 70);
    /* name length */
    CHECK_EQ(run_mp("XyZ", big, strlen(big), NULL, 0, 1024, 0, 30), 0);
    CHECK_EQ(run_mp("XyZ", big, strlen(big), NULL, 0, 1024, 0, 29), -ENAMETOOLONG);
    /* init refuses bad boundaries and a tiny header buffer */
    wh_http_multipart mp;
    char hb[64];
    CHECK_EQ(wh_http_multipart_init(&mp, S("ok"), hb, 64), 0);
    CHECK_EQ(wh_http_multipart_init(&mp, S("ok"), hb, 63), -EINVAL);
    CHECK_EQ(wh_http_multipart_init(&mp, S(""), hb, 64), -EINVAL);
    CHECK_EQ(wh_http_multipart_init(&mp, S("a\r"), hb, 64), -EINVAL);
    CHECK_EQ(wh_http_multipart_init(&mp, S("a "), hb, 64), -EINVAL);
    CHECK_EQ(wh_http_multipart_init(&mp, S("ok"), NULL, 64), -EINVAL);
    char b71[72];
    memset(b71, 'b', 71);
    CHECK_EQ(wh_http_multipart_init(&mp, (wh_str){b71, 71}, hb, 64), -EINVAL);
    CHECK_EQ(wh_http_multipart_init(&mp, (wh_str){b71, 70}, hb, 64), 0);
}

TEST(multipart_after_done)
{
    /* after DONE the epilogue is consumed and MORE comes back */
    wh_http_multipart mp;
    char hb[128];
    CHECK_EQ(wh_http_multipart_init(&mp, S("b"), hb, sizeof hb), 0);
    size_t pos = 0;
    wh_str d;
    const char *in = "--b--\r\nrest";
    CHECK_EQ(wh_http_multipart_feed(&mp, in, strlen(in), &pos, &d), WH_HTTP_MULTIPART_DONE);
    CHECK_EQ(pos, 5);
    CHECK_EQ(wh_http_multipart_feed(&mp, in, strlen(in), &pos, &d), WH_HTTP_MULTIPART_MORE);
    CHECK_EQ(pos, strlen(in));
    pos = 0;
    CHECK_EQ(wh_http_multipart_feed(&mp, "--b\r\n", 5, &pos, &d), WH_HTTP_MULTIPART_MORE);
    CHECK_EQ(wh_http_multipart_finish(&mp), 0);
}

/* A large upload streamed in pieces of random size: the parser keeps no
 * more than its header buffer and a count, and the content comes out
 * intact. The content is full of near-delimiters ("\r\n--Xy") but never
 * the delimiter itself (no 'Z'). */
static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

TEST(multipart_large_stream)
{
    enum { BLOCK = 1 << 20, TOTAL = 32 << 20 };
    static const char head[] =
        "--XyZ\r\nContent-Disposition: form-data; name=\"big\"; "
        "filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    static const char tail[] = "\r\n--XyZ--\r\n";
    static const char alpha[] = "\r\n-Xya\r\n--";
    char *block = malloc(BLOCK);
    uint32_t x = 12345;
    for (size_t i = 0; i < BLOCK; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        block[i] = alpha[x % (sizeof alpha - 1)];
    }
    uint64_t want = 1469598103934665603u;
    for (size_t i = 0; i < TOTAL / BLOCK; i++)
        want = fnv(want, block, BLOCK);
    const size_t hl = sizeof head - 1, tl = sizeof tail - 1, len = hl + (size_t)TOTAL + tl;

    wh_http_multipart mp;
    char hb[256];
    CHECK_EQ(wh_http_multipart_init(&mp, S("XyZ"), hb, sizeof hb), 0);
    uint64_t got = 1469598103934665603u, content = 0;
    int parts = 0, ends = 0, done = 0;
    char *piece = malloc(100000);
    for (size_t off = 0; off < len;) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t n = 1 + x % 100000;
        if (n > len - off) n = len - off;
        for (size_t k = 0; k < n; k++) {
            size_t o = off + k;
            piece[k] = o < hl                   ? head[o]
                       : o < hl + (size_t)TOTAL ? block[(o - hl) % BLOCK]
                                                : tail[o - hl - (size_t)TOTAL];
        }
        size_t pos = 0;
        wh_str d;
        int ev;
        while ((ev = wh_http_multipart_feed(&mp, piece, n, &pos, &d)) != WH_HTTP_MULTIPART_MORE) {
            CHECK(ev > 0);
            if (ev == WH_HTTP_MULTIPART_PART) parts++;
            if (ev == WH_HTTP_MULTIPART_PART_END) ends++;
            if (ev == WH_HTTP_MULTIPART_DONE) done++;
            if (ev == WH_HTTP_MULTIPART_DATA) {
                got = fnv(got, d.p, d.len);
                content += d.len;
            }
        }
        off += n;
    }
    free(piece);
    free(block);
    CHECK_EQ(wh_http_multipart_finish(&mp), 0);
    CHECK(parts == 1 && ends == 1 && done == 1);
    CHECK(str_is(mp.part.filename, "big.bin"));
    CHECK_EQ(content, TOTAL);
    CHECK(got == want);
}

TEST(multipart_next_and_get)
{
    wh_str body = S(MP_BODY);
    wh_http_multipart mp;
    char hb[512];
    CHECK_EQ(wh_http_multipart_init(&mp, S("XyZ"), hb, sizeof hb), 0);
    size_t pos = 0;
    wh_str d;
    CHECK_EQ(wh_http_multipart_next(&mp, body, &pos, &d), 1);
    CHECK(str_is(mp.part.name, "title"));
    CHECK_EQ(mp.part.index, 0);
    CHECK(str_is(d, "Hello\r\n--XyY\r\n-\r\r\n--Xy"));
    CHECK(d.p > body.p && d.p < body.p + body.len); /* a slice of the body */
    CHECK_EQ(wh_http_multipart_next(&mp, body, &pos, &d), 1);
    CHECK(str_is(mp.part.name, "file"));
    CHECK(str_is(mp.part.filename, "a\"b.txt"));
    CHECK(str_is(mp.part.content_type, "text/plain"));
    CHECK_EQ(mp.part.index, 1);
    CHECK(str_is(d, "\r\nline1\r\nline2\r\n"));
    CHECK_EQ(wh_http_multipart_next(&mp, body, &pos, &d), 1);
    CHECK(str_is(mp.part.name, "empty"));
    CHECK_EQ(d.len, 0);
    CHECK_EQ(wh_http_multipart_next(&mp, body, &pos, &d), 0);
    CHECK_EQ(wh_http_multipart_next(&mp, body, &pos, &d), 0);
    /* a part's content that starts like a delimiter is still one slice */
    wh_str b2 = S("--b\r\nContent-Disposition: form-data; name=x\r\n\r\n--c\r\n--b--");
    CHECK_EQ(wh_http_multipart_init(&mp, S("b"), hb, sizeof hb), 0);
    pos = 0;
    CHECK_EQ(wh_http_multipart_next(&mp, b2, &pos, &d), 1);
    CHECK(str_is(d, "--c"));
    /* truncated */
    CHECK_EQ(wh_http_multipart_init(&mp, S("XyZ"), hb, sizeof hb), 0);
    pos = 0;
    CHECK_EQ(wh_http_multipart_next(
                 &mp, S("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nA"), &pos, &d),
             -EBADMSG);

    char buf[64];
    CHECK_EQ(wh_http_multipart_get(body, S("XyZ"), "file", buf, sizeof buf), 16);
    CHECK(!strcmp(buf, "\r\nline1\r\nline2\r\n"));
    CHECK_EQ(wh_http_multipart_get(body, S("XyZ"), "empty", buf, sizeof buf), 0);
    CHECK_EQ(wh_http_multipart_get(body, S("XyZ"), "title", buf, 5), -ENOSPC);
    CHECK_EQ(wh_http_multipart_get(body, S("XyZ"), "none", buf, sizeof buf), -ENOENT);
    CHECK_EQ(wh_http_multipart_get(body, S("Xy"), "title", buf, sizeof buf), -EBADMSG);
    CHECK_EQ(wh_http_multipart_get(body, S(""), "title", buf, sizeof buf), -EINVAL);
    /* the whole body is checked, whatever is asked for */
    CHECK_EQ(wh_http_multipart_get(S("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                                     "--b\r\nbad\r\n\r\n2\r\n--b--"),
                                   S("b"), "a", buf, sizeof buf),
             -EBADMSG);
}

/* ---- on a real engine ----------------------------------------------------- */

static wh_http_server *srv;
static wh_router *rt;
static http_host host;

static void reply(wh_http_req *r, const char *s)
{
    wh_http_respond(r, 200, "text/plain", s, strlen(s));
}

static void h_item(wh_http_req *r, void *ud)
{
    wh_str id = wh_http_req_param(r, "id"), path = wh_http_req_path(r);
    char msg[600];
    bool in_path = id.p >= path.p && id.p < path.p + path.len;
    snprintf(msg, sizeof msg, "[%.*s] %s", (int)id.len, id.p, in_path ? "slice" : "decoded");
    reply(r, msg);
}

static void h_two(wh_http_req *r, void *ud)
{
    wh_str x = wh_http_req_param(r, "x"), y = wh_http_req_param(r, "y");
    char msg[600];
    snprintf(msg, sizeof msg, "%.*s|%.*s", (int)x.len, x.p, (int)y.len, y.p);
    reply(r, msg);
}

static void h_text(wh_http_req *r, void *ud)
{
    reply(r, ud);
}

static void async_fire(wh_timer *t, void *ud)
{
    h_item(ud, NULL); /* the decoded value outlives the handler call */
    wh_timer_free(t);
}

static void h_async(wh_http_req *r, void *ud)
{
    wh_timer *t;
    wh_http_req_defer(r);
    wh_timer_new(wh_http_req_loop(r), async_fire, r, &t);
    wh_timer_start(t, 100, 0);
}

static void h_query(wh_http_req *r, void *ud)
{
    static const char *names[] = {"a", "b", "c", "d", "e", "zz"};
    char msg[512], v[16];
    size_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ssize_t k = wh_http_req_query_get(r, names[i], v, sizeof v);
        if (k >= 0)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s=%s|", names[i], v);
        else
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s:%zd|", names[i], k);
    }
    reply(r, msg);
}

static void h_headers(wh_http_req *r, void *ud)
{
    char msg[1024], buf[64];
    size_t n = 0;
    unsigned pos = 0;
    wh_str v;
    while (wh_http_req_header_next(r, "x-a", &pos, &v))
        n += (size_t)snprintf(msg + n, sizeof msg - n, "<%.*s>", (int)v.len, v.p);
    static const char *names[] = {"X-A", "cookie", "Set-Cookie", "X-None", "X-Empty"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ssize_t k = wh_http_req_header_join(r, names[i], buf, sizeof buf);
        n += (size_t)snprintf(msg + n, sizeof msg - n, "\n%s=%zd:%s", names[i], k,
                              k >= 0 ? buf : "");
    }
    n += (size_t)snprintf(msg + n, sizeof msg - n, "\nsmall=%zd",
                          wh_http_req_header_join(r, "X-A", buf, 8));
    reply(r, msg);
}

static void h_cookies(wh_http_req *r, void *ud)
{
    char msg[512];
    size_t n = 0;
    wh_http_cookie_iter it;
    wh_str k, v;
    wh_http_req_cookie_iter_init(&it, r);
    while (wh_http_cookie_next(&it, &k, &v))
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%.*s=%.*s;", (int)k.len, k.p, (int)v.len,
                              v.p);
    wh_str sid = wh_http_req_cookie(r, "sid"), none = wh_http_req_cookie(r, "none");
    snprintf(msg + n, sizeof msg - n, " sid=%.*s none=%s", (int)sid.len, sid.p ? sid.p : "",
             none.p ? "found" : "null");
    reply(r, msg);
}

static void h_form(wh_http_req *r, void *ud)
{
    static const char *names[] = {"name", "msg", "file", "zz"};
    char msg[512], v[64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ssize_t k = wh_http_req_form_get(r, names[i], v, sizeof v);
        if (k >= 0)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s=%s|", names[i], v);
        else
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s:%zd|", names[i], k);
    }
    reply(r, msg);
}

static char rbuf[1 << 16];

/* Reads the response of a "Connection: close" request to EOF; returns its
 * status and points *body at its body (in rbuf). */
static int recv_resp(int fd, const char **body)
{
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 3000) <= 0) break;
        ssize_t n = recv(fd, rbuf + len, sizeof rbuf - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    rbuf[len] = 0;
    close(fd);
    const char *e = strstr(rbuf, "\r\n\r\n");
    *body = e ? e + 4 : "";
    return len > 12 ? atoi(rbuf + 9) : -1;
}

static int ask(const char *req, const char **body)
{
    int fd = http_connect(host.port);
    if (fd < 0) return -1;
    http_send(fd, req, strlen(req));
    return recv_resp(fd, body);
}

static int get(const char *target, const char **body)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", target);
    return ask(req, body);
}

TEST(engine_start)
{
    CHECK_EQ(wh_router_new(&rt), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/items/:id", h_item, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "DELETE", "/items/:id", h_item, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/a/:x/b/:y", h_two, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/users/:id", h_text, "param"), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/users/*", h_text, "prefix"), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/async/:id", h_async, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/q", h_query, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/h", h_headers, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "GET", "/c", h_cookies, NULL), 0);
    CHECK_EQ(wh_router_add(rt, "POST", "/f", h_form, NULL), 0);
    /* A parameter in the first segment takes any second path byte: the
     * router's second-byte filter must not skip the scan then. */
    CHECK_EQ(wh_router_add(rt, "PUT", "/:name", h_text, "root-param"), 0);
    wh_http_opts o;
    wh_http_opts_init(&o);
    CHECK_EQ(wh_http_server_new(&srv, &o, wh_router_handle, rt), 0);
    CHECK_EQ(http_host_start(&host, srv), 0);
}

TEST(router_decodes_params)
{
    const char *b;
    CHECK_EQ(get("/items/%32", &b), 200);
    CHECK(!strcmp(b, "[2] decoded"));
    CHECK_EQ(get("/items/plain", &b), 200);
    CHECK(!strcmp(b, "[plain] slice")); /* no '%': the path's own bytes */
    CHECK_EQ(get("/items/a+b%20c%2b?q=1", &b), 200);
    CHECK(!strcmp(b, "[a+b c+] decoded")); /* '+' is no space in a path */
    CHECK_EQ(get("/items/%e6%97%a5", &b), 200);
    CHECK(!strcmp(b, "[\xe6\x97\xa5] decoded"));
    CHECK_EQ(get("/a/%41%42/b/%43", &b), 200);
    CHECK(!strcmp(b, "AB|C"));
    CHECK_EQ(get("/a/x/b/%79", &b), 200);
    CHECK(!strcmp(b, "x|y"));
    CHECK_EQ(ask("DELETE /items/%7e HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &b), 200);
    CHECK(!strcmp(b, "[~] decoded"));
    /* 255 decoded bytes fit the request's buffer; 257 do not */
    char t[1024];
    strcpy(t, "/items/");
    for (int i = 0; i < 255; i++)
        strcat(t, "%41");
    CHECK_EQ(get(t, &b), 200);
    CHECK_EQ(strlen(b), 2 + 255 + 8);
    strcpy(t, "/a/");
    for (int i = 0; i < 200; i++)
        strcat(t, "%41");
    strcat(t, "/b/");
    for (int i = 0; i < 57; i++)
        strcat(t, "%42");
    CHECK_EQ(get(t, &b), 414);
    /* 256 raw bytes without escapes are slices: no limit */
    strcpy(t, "/items/");
    for (int i = 0; i < 600; i++)
        strcat(t, "x");
    CHECK_EQ(get(t, &b), 200);
}

TEST(router_refuses_bad_params)
{
    const char *b;
    const char *bad[] = {"/items/%zz", "/items/%4",  "/items/ab%",   "/items/%2F",
                         "/items/%2f", "/items/%00", "/items/a%2Fb", "/a/ok/b/%G1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(get(bad[i], &b), 400);
    }
    /* the method does not matter: the value is bad for every route */
    CHECK_EQ(ask("DELETE /items/%2F HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &b), 400);
    /* a route that does not match: another one that does gets the request */
    CHECK_EQ(get("/users/7", &b), 200);
    CHECK(!strcmp(b, "param"));
    CHECK_EQ(get("/users/%2F", &b), 200);
    CHECK(!strcmp(b, "prefix"));
    /* the shape does not match at all: 404 as before */
    CHECK_EQ(get("/a/%zz/c/d", &b), 404);
    CHECK_EQ(get("/items/", &b), 404);
}

TEST(router_second_byte_filter)
{
    const char *b;
    /* "/:name" (PUT) takes any one-segment path, whatever its second byte */
    CHECK_EQ(
        ask("PUT /zzz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", &b),
        200);
    CHECK(!strcmp(b, "root-param"));
    CHECK_EQ(get("/zzz", &b), 405); /* the path is a route's: GET is not allowed */
    CHECK_EQ(get("/zzz/y", &b), 404);
    CHECK_EQ(get("/q", &b), 200);
}

TEST(router_async_param)
{
    /* A deferred request keeps its decoded value while other requests are
     * routed meanwhile. */
    int fd = http_connect(host.port);
    CHECK(fd >= 0);
    static const char req[] = "GET /async/%41%41 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    http_send(fd, req, sizeof req - 1);
    const char *b;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(get("/items/%42", &b), 200);
        CHECK(!strcmp(b, "[B] decoded"));
    }
    CHECK_EQ(recv_resp(fd, &b), 200);
    CHECK(!strcmp(b, "[AA] decoded"));
}

TEST(req_query_get)
{
    const char *b;
    CHECK_EQ(get("/q?a=1&b=&c&d=x%20y+z&a=2&e=%41%42", &b), 200);
    char want[256];
    snprintf(want, sizeof want, "a=1|b=|c=|d=x y z|e=AB|zz:%d|", -ENOENT);
    CHECK(!strcmp(b, want));
    CHECK_EQ(get("/q?a=1&b=%G1", &b), 200);
    snprintf(want, sizeof want, "a:%d|b:%d|c:%d|d:%d|e:%d|zz:%d|", -EINVAL, -EINVAL, -EINVAL,
             -EINVAL, -EINVAL, -EINVAL);
    CHECK(!strcmp(b, want));
    CHECK_EQ(get("/q?d=0123456789abcdef", &b), 200); /* 16 bytes + NUL > 16 */
    CHECK(strstr(b, "d:-28|"));
    CHECK_EQ(get("/q", &b), 200);
    CHECK(strstr(b, "a:-2|"));
}

TEST(req_headers)
{
    const char *b;
    CHECK_EQ(ask("GET /h HTTP/1.1\r\nHost: a\r\nX-A: one\r\nCookie: a=1\r\nx-a: two, three\r\n"
                 "X-Empty:\r\nSet-Cookie: s=1\r\nX-A:\r\ncookie: b=2\r\nX-A: four\r\n"
                 "Connection: close\r\n\r\n",
                 &b),
             200);
    char want[512];
    snprintf(want, sizeof want,
             "<one><two, three><><four>\n"
             "X-A=21:one, two, three, four\n"
             "cookie=8:a=1; b=2\n"
             "Set-Cookie=%d:\n"
             "X-None=%d:\n"
             "X-Empty=0:\n"
             "small=%d",
             -EINVAL, -ENOENT, -ENOSPC);
    if (strcmp(b, want)) fprintf(stderr, "got %s\n", b);
    CHECK(!strcmp(b, want));
}

TEST(req_cookies)
{
    const char *b;
    CHECK_EQ(ask("GET /c HTTP/1.1\r\nHost: a\r\nCookie: sid=\"abc\"; theme = dark\r\n"
                 "X-B: 1\r\ncookie: lang=en;;sid=later\r\nConnection: close\r\n\r\n",
                 &b),
             200);
    CHECK(!strcmp(b, "sid=abc;theme=dark;lang=en;sid=later; sid=abc none=null"));
    CHECK_EQ(get("/c", &b), 200);
    CHECK(!strcmp(b, " sid= none=null"));
}

static int post(const char *ctype, const char *body, const char **out)
{
    char req[4096];
    snprintf(req, sizeof req,
             "POST /f HTTP/1.1\r\nHost: a\r\n%s%s%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", strlen(body),
             body);
    return ask(req, out);
}

TEST(req_form_get)
{
    const char *b;
    char want[256];
    CHECK_EQ(post("application/x-www-form-urlencoded; charset=UTF-8",
                  "name=Ada+L&msg=hi%21&name=second", &b),
             200);
    snprintf(want, sizeof want, "name=Ada L|msg=hi!|file:%d|zz:%d|", -ENOENT, -ENOENT);
    CHECK(!strcmp(b, want));
    CHECK_EQ(post("application/x-www-form-urlencoded", "name=%ZZ", &b), 200);
    snprintf(want, sizeof want, "name:%d|msg:%d|file:%d|zz:%d|", -EINVAL, -EINVAL, -EINVAL,
             -EINVAL);
    CHECK(!strcmp(b, want));
    CHECK_EQ(post("multipart/form-data; boundary=\"--b x\"",
                  "----b x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda+L\r\n"
                  "----b x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n"
                  "Content-Type: text/plain\r\n\r\nfile body\r\n----b x--\r\n",
                  &b),
             200);
    snprintf(want, sizeof want, "name=Ada+L|msg:%d|file=file body|zz:%d|", -ENOENT, -ENOENT);
    CHECK(!strcmp(b, want));
    CHECK_EQ(post("multipart/form-data; boundary=b", "--b\r\nbroken\r\n\r\n--b--", &b), 200);
    snprintf(want, sizeof want, "name:%d|msg:%d|file:%d|zz:%d|", -EBADMSG, -EBADMSG, -EBADMSG,
             -EBADMSG);
    CHECK(!strcmp(b, want));
    CHECK_EQ(post("multipart/form-data", "--b--", &b), 200); /* no boundary */
    CHECK(!strcmp(b, want));
    CHECK_EQ(post("text/plain", "name=x", &b), 200);
    snprintf(want, sizeof want, "name:%d|msg:%d|file:%d|zz:%d|", -ENOTSUP, -ENOTSUP, -ENOTSUP,
             -ENOTSUP);
    CHECK(!strcmp(b, want));
    CHECK_EQ(post(NULL, "name=x", &b), 200);
    CHECK(!strcmp(b, want));
    CHECK_EQ(post("application/x-www-form-urlencoded\r\nContent-Type: text/plain", "name=x", &b),
             200);
    snprintf(want, sizeof want, "name:%d|msg:%d|file:%d|zz:%d|", -EINVAL, -EINVAL, -EINVAL,
             -EINVAL);
    CHECK(!strcmp(b, want));
}

TEST(engine_stop)
{
    CHECK_EQ(http_host_stop(&host), 0);
    wh_http_server_free(srv);
    wh_router_free(rt);
}

WH_TEST_MAIN()
