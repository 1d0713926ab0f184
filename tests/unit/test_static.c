/* Static files (wharf/http_file.h): path cleaning and root confinement
 * (traversal table), ranges, conditionals, dates, MIME, Accept-Encoding,
 * precompressed siblings, listing escaping, the planner and the head it
 * formats (read back with the public request parser's sibling pieces). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/errpage.h"
#include "http/file_internal.h"
#include "wharf/http_file.h"
#include "wharf/http_parse.h"
#include "test.h"

#define S(lit) ((wh_str){lit, sizeof(lit) - 1})
#define NONE   ((wh_str){NULL, 0})

static char tmpdir[256];
static char rootdir[300];

static void put_file(const char *rel, const char *content)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(content, f);
        fclose(f);
    }
}

/* tmpdir/
 *   secret.txt            (outside the root)
 *   www/                  (the root)
 *     index.html, a.txt, .hidden, sub/ (index.html), nodex/ (x.txt),
 *     link_out -> ../secret.txt, link_in -> a.txt, abs_out -> /etc/passwd,
 *     dirlink_out -> .. , %2e%2e (a file literally named so), fifo */
static void cleanup(void);
static void setup(void)
{
    if (tmpdir[0]) return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wh_static_XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
    snprintf(rootdir, sizeof rootdir, "%s/www", tmpdir);
    mkdir(rootdir, 0755);
    put_file("secret.txt", "secret\n");
    put_file("www/index.html", "<h1>home</h1>\n");
    put_file("www/a.txt", "0123456789");
    put_file("www/.hidden", "hidden\n");
    char p[600];
    snprintf(p, sizeof p, "%s/sub", rootdir);
    mkdir(p, 0755);
    put_file("www/sub/index.html", "sub\n");
    snprintf(p, sizeof p, "%s/nodex", rootdir);
    mkdir(p, 0755);
    put_file("www/nodex/x.txt", "x");
    put_file("www/nodex/<b>&\"q\".txt", "y");
    snprintf(p, sizeof p, "%s/link_out", rootdir);
    if (symlink("../secret.txt", p) != 0) abort();
    snprintf(p, sizeof p, "%s/link_in", rootdir);
    if (symlink("a.txt", p) != 0) abort();
    snprintf(p, sizeof p, "%s/abs_out", rootdir);
    if (symlink("/etc/passwd", p) != 0) abort();
    snprintf(p, sizeof p, "%s/dirlink_out", rootdir);
    if (symlink("..", p) != 0) abort();
    put_file("www/%2e%2e", "literal\n");
    snprintf(p, sizeof p, "%s/fifo", rootdir);
    mkfifo(p, 0644);
    atexit(cleanup);
}

static void cleanup(void)
{
    char cmd[600];
    if (tmpdir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    }
}

static int clean(const char *raw, char *out, bool *slash)
{
    return wh_static_clean_path(raw, strlen(raw), false, out, WH_STATIC_PATH_MAX, slash);
}

TEST(clean_path_table)
{
    static const struct {
        const char *raw;
        int status;
        const char *rel;
    } t[] = {
        {"/", 200, ""},
        {"/a.txt", 200, "a.txt"},
        {"/sub/", 200, "sub"},
        {"//sub//index.html", 200, "sub/index.html"},
        {"/a%20b", 200, "a b"},
        {"/%41", 200, "A"},
        {"/../secret.txt", 400, NULL},
        {"/sub/../../secret.txt", 400, NULL},
        {"/..", 400, NULL},
        {"/sub/../..", 400, NULL},
        {"/sub/./../../secret.txt", 400, NULL},
        {"/%2e%2e", 400, NULL},
        {"/%2e%2e/secret.txt", 400, NULL},
        {"/%2E%2E/secret.txt", 400, NULL},
        {"/.%2e/secret.txt", 400, NULL},
        {"/sub%2f..%2f..%2fsecret.txt", 400, NULL},
        {"/sub%5c..%5csecret.txt", 400, NULL},
        {"/a.txt%00.html", 400, NULL},
        {"/%zz", 400, NULL},
        {"/%2", 400, NULL},
        {"/a%0d%0aX: y", 400, NULL},
        {"/%252e%252e/secret.txt", 200, "%2e%2e/secret.txt"}, /* double-encoded: decoded once */
        {"/.hidden", 404, NULL},
        {"/sub/.git/config", 404, NULL},
        {"/%2ehidden", 404, NULL},
        {"a.txt", 400, NULL},
        {"", 400, NULL},
        /* dot-segments that stay inside the root are resolved (RFC 3986 5.2.4) */
        {"/./a.txt", 200, "a.txt"},
        {"/sub/..", 200, ""},
        {"/sub/../", 200, ""},
        {"/sub/.", 200, "sub"},
        {"/img/../index.html", 200, "index.html"},
        {"/a/./b", 200, "a/b"},
        {"/a/b/../../c", 200, "c"},
        {"/sub/%2e%2e/a.txt", 200, "a.txt"},
        {"/sub/.%2E/a.txt", 200, "a.txt"},
        {"/sub/%2e/a.txt", 200, "sub/a.txt"},
        {"//sub//..//a.txt", 200, "a.txt"},
        {"/sub/.../x", 404, NULL}, /* "..." is a dotfile name, not a dot-segment */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[WH_STATIC_PATH_MAX];
        bool slash;
        int st = clean(t[i].raw, out, &slash);
        if (st != t[i].status) fprintf(stderr, "  path %s -> %d\n", t[i].raw, st);
        CHECK_EQ(st, t[i].status);
        if (t[i].rel) CHECK(strcmp(out, t[i].rel) == 0);
    }
    char out[WH_STATIC_PATH_MAX];
    bool slash;
    CHECK_EQ(clean("/sub/", out, &slash), 200);
    CHECK(slash);
    CHECK_EQ(clean("/sub", out, &slash), 200);
    CHECK(!slash);
    CHECK_EQ(clean("/sub/x/..", out, &slash), 200); /* a final ".." names a directory */
    CHECK(slash);
    CHECK(strcmp(out, "sub") == 0);
    CHECK_EQ(clean("/sub/.", out, &slash), 200);
    CHECK(slash);
    CHECK_EQ(clean("/sub/../a.txt", out, &slash), 200);
    CHECK(!slash);
    CHECK_EQ(wh_static_clean_path("/.hidden", 8, true, out, sizeof out, &slash), 200);
    char big[3000];
    memset(big, 'a', sizeof big);
    big[0] = '/';
    CHECK_EQ(wh_static_clean_path(big, sizeof big, false, out, sizeof out, &slash), 414);
}

TEST(clean_path_fast_matches_general)
{
    /* A path with no '%' takes the one-scan copy when it is already clean;
     * the same path with one byte percent-encoded always takes the general
     * loop, and decoding makes it the same path: both must agree on status,
     * result and trailing slash, for every cap. */
    static const char alpha[] = "ab./.\\~-_ /x%\x01\x7f";
    unsigned seed = 12345;
    int fast = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char raw[24], enc[80];
        size_t len = 1 + (seed = seed * 1103515245 + 12345) % 12;
        raw[0] = '/';
        for (size_t i = 1; i < len; i++)
            raw[i] = alpha[(seed = seed * 1103515245 + 12345) >> 16 & 15];
        if (memchr(raw, '%', len)) continue;
        size_t at = 0;
        for (size_t i = 1; i < len && !at; i++)
            if (raw[i] != '/' && raw[i] != '\\') at = i; /* an encoded backslash is refused */
        if (!at) continue;
        size_t el = 0;
        memcpy(enc, raw, at);
        el = at + (size_t)snprintf(enc + at, 4, "%%%02X", (unsigned char)raw[at]);
        memcpy(enc + el, raw + at + 1, len - at - 1);
        el += len - at - 1;
        size_t cap = 1 + (seed = seed * 1103515245 + 12345) % 16;
        char o1[32], o2[32];
        bool s1, s2;
        int r1 = wh_static_clean_path(raw, len, false, o1, cap, &s1);
        int r2 = wh_static_clean_path(enc, el, false, o2, cap, &s2);
        CHECK_EQ(r1, r2);
        if (r1 != r2) {
            fprintf(stderr, "raw %.*s enc %.*s cap %zu\n", (int)len, raw, (int)el, enc, cap);
            break;
        }
        if (r1 == 200) {
            CHECK(strcmp(o1, o2) == 0);
            CHECK_EQ(s1, s2);
            fast += !s1;
        }
    }
    CHECK(fast > 100); /* the fast path was taken */
}

static int resolve(wh_static_root *root, const char *raw, wh_static_file *f)
{
    char rel[WH_STATIC_PATH_MAX];
    bool slash;
    int st =
        wh_static_clean_path(raw, strlen(raw), root->opts.show_dotfiles, rel, sizeof rel, &slash);
    if (st != 200) return st;
    st = wh_static_resolve(root, rel, slash, f);
    if (st == 200 && f->fd >= 0) close(f->fd);
    return st;
}

TEST(resolve_confinement)
{
    setup();
    wh_static_root root;
    CHECK_EQ(wh_static_root_open(&root, rootdir, NULL), 0);
    wh_static_file f;
    CHECK_EQ(resolve(&root, "/", &f), 200);
    CHECK(strcmp(f.rel, "index.html") == 0);
    CHECK_EQ(resolve(&root, "/a.txt", &f), 200);
    CHECK_EQ(f.st.st_size, 10);
    CHECK_EQ(resolve(&root, "/sub", &f), 301);
    CHECK_EQ(resolve(&root, "/sub/", &f), 200);
    CHECK(strcmp(f.rel, "sub/index.html") == 0);
    CHECK_EQ(resolve(&root, "/a.txt/", &f), 404);
    CHECK_EQ(resolve(&root, "/nope", &f), 404);
    CHECK_EQ(resolve(&root, "/nodex/", &f), 403); /* no index, no listing */
    CHECK_EQ(resolve(&root, "/link_in", &f), 200);
    CHECK_EQ(resolve(&root, "/link_out", &f), 403);
    CHECK_EQ(resolve(&root, "/abs_out", &f), 403);
    CHECK_EQ(resolve(&root, "/dirlink_out/secret.txt", &f), 403);
    CHECK_EQ(resolve(&root, "/fifo", &f), 403);
    CHECK_EQ(resolve(&root, "/%252e%252e", &f), 200); /* the file literally named %2e%2e */
    CHECK_EQ(resolve(&root, "/%252e%252e/secret.txt", &f), 404);
    CHECK_EQ(resolve(&root, "/%2e%2e", &f), 400);
    CHECK_EQ(resolve(&root, "/sub/../a.txt", &f), 200);
    CHECK(strcmp(f.rel, "a.txt") == 0);
    CHECK_EQ(resolve(&root, "/sub/..", &f), 200); /* the root's index */
    CHECK(strcmp(f.rel, "index.html") == 0);
    CHECK_EQ(resolve(&root, "/sub/../../secret.txt", &f), 400);
    /* lexical: the link is never followed, so it cannot lead out */
    CHECK_EQ(resolve(&root, "/dirlink_out/../a.txt", &f), 200);
    /* The fallback path (no openat2) must refuse the same escapes. */
    root.have_openat2 = 0;
    CHECK_EQ(resolve(&root, "/link_out", &f), 403);
    CHECK_EQ(resolve(&root, "/abs_out", &f), 403);
    CHECK_EQ(resolve(&root, "/dirlink_out/secret.txt", &f), 403);
    CHECK_EQ(resolve(&root, "/link_in", &f), 200);
    wh_static_root_close(&root);

    wh_static_opts o;
    wh_static_opts_init(&o);
    o.follow_symlinks = true;
    o.listing = true;
    CHECK_EQ(wh_static_root_open(&root, rootdir, &o), 0);
    CHECK_EQ(resolve(&root, "/link_out", &f), 200);
    CHECK_EQ(resolve(&root, "/nodex/", &f), 200);
    CHECK(f.is_dir);
    wh_static_root_close(&root);

    CHECK_EQ(wh_static_root_open(&root, "/nonexistent/wharf", NULL), -ENOENT);
}

TEST(ranges)
{
    uint64_t s = 0, l = 0;
    CHECK_EQ(wh_static_range(NONE, 100, &s, &l), 200);
    CHECK_EQ(wh_static_range(S("bytes=0-9"), 100, &s, &l), 206);
    CHECK_EQ(s, 0);
    CHECK_EQ(l, 10);
    CHECK_EQ(wh_static_range(S("bytes=90-"), 100, &s, &l), 206);
    CHECK_EQ(s, 90);
    CHECK_EQ(l, 10);
    CHECK_EQ(wh_static_range(S("bytes=-5"), 100, &s, &l), 206);
    CHECK_EQ(s, 95);
    CHECK_EQ(l, 5);
    CHECK_EQ(wh_static_range(S("bytes=-500"), 100, &s, &l), 206);
    CHECK_EQ(s, 0);
    CHECK_EQ(l, 100);
    CHECK_EQ(wh_static_range(S("bytes=50-5000"), 100, &s, &l), 206);
    CHECK_EQ(l, 50);
    CHECK_EQ(wh_static_range(S("Bytes = 1-1"), 100, &s, &l), 200); /* space before '=' */
    CHECK_EQ(wh_static_range(S("BYTES=1-1"), 100, &s, &l), 206);
    CHECK_EQ(l, 1);
    CHECK_EQ(wh_static_range(S("bytes=100-"), 100, &s, &l), 416);
    CHECK_EQ(wh_static_range(S("bytes=100-200"), 100, &s, &l), 416);
    CHECK_EQ(wh_static_range(S("bytes=-0"), 100, &s, &l), 416);
    CHECK_EQ(wh_static_range(S("bytes=0-0"), 0, &s, &l), 416);
    CHECK_EQ(wh_static_range(S("bytes=5-1"), 100, &s, &l), 200);
    CHECK_EQ(wh_static_range(S("bytes=0-1,5-6"), 100, &s, &l), 200);
    CHECK_EQ(wh_static_range(S("items=0-1"), 100, &s, &l), 200);
    CHECK_EQ(wh_static_range(S("bytes=abc"), 100, &s, &l), 200);
    CHECK_EQ(wh_static_range(S("bytes=99999999999999999999-"), 100, &s, &l), 200);
    CHECK_EQ(wh_static_range(S("bytes=1073741823-"), 1073741824, &s, &l), 206);
    CHECK_EQ(l, 1);
}

TEST(dates)
{
    /* Last-Modified is written by the HTTP layer's one date formatter and
     * read back by ours: the two must agree. */
    char buf[30];
    wh_http_format_date(784111777, buf);
    CHECK(strcmp(buf, "Sun, 06 Nov 1994 08:49:37 GMT") == 0);
    time_t t = 0;
    CHECK_EQ(wh_static_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT").p, 29, &t), 0);
    CHECK_EQ(t, 784111777);
    const char *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
    CHECK_EQ(wh_static_date_parse(rfc850, strlen(rfc850), &t), 0);
    CHECK_EQ(t, 784111777);
    const char *asc = "Sun Nov  6 08:49:37 1994";
    CHECK_EQ(wh_static_date_parse(asc, strlen(asc), &t), 0);
    CHECK_EQ(t, 784111777);
    const char *bad[] = {"",
                         "yesterday",
                         "Sun, 06 Nov 1994 08:49:37",
                         "Sun, 32 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Foo 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 25:00:00 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(wh_static_date_parse(bad[i], strlen(bad[i]), &t), -EINVAL);
}

TEST(conditionals)
{
    const char *etag = "\"abc\"";
    time_t mtime = 784111777;
    wh_static_req q;
    memset(&q, 0, sizeof q);
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 0);
    q.if_none_match = S("\"abc\"");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 304);
    q.if_none_match = S("W/\"abc\"");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 304); /* weak comparison */
    q.if_none_match = S("\"x\", \"abc\"");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 304);
    q.if_none_match = S("*");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 304);
    q.if_none_match = S("\"x\"");
    q.if_modified_since = S("Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 0); /* INM present: IMS ignored */
    q.if_none_match = NONE;
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 304);
    q.if_modified_since = S("Sun, 06 Nov 1994 08:49:36 GMT");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 0);
    q.if_modified_since = S("garbage");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 0);
    memset(&q, 0, sizeof q);
    q.if_match = S("\"zzz\"");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 412);
    q.if_match = S("W/\"abc\"");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 412); /* strong comparison */
    q.if_match = S("\"abc\"");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 0);
    memset(&q, 0, sizeof q);
    q.if_unmodified_since = S("Sun, 06 Nov 1994 08:49:36 GMT");
    CHECK_EQ(wh_static_conditional(&q, etag, mtime), 412);

    CHECK(wh_static_if_range(NONE, etag, mtime));
    CHECK(wh_static_if_range(S("\"abc\""), etag, mtime));
    CHECK(!wh_static_if_range(S("\"abd\""), etag, mtime));
    CHECK(!wh_static_if_range(S("W/\"abc\""), etag, mtime));
    CHECK(wh_static_if_range(S("Sun, 06 Nov 1994 08:49:37 GMT"), etag, mtime));
    CHECK(!wh_static_if_range(S("Sun, 06 Nov 1994 08:49:38 GMT"), etag, mtime));
}

TEST(etag_changes)
{
    struct stat a;
    memset(&a, 0, sizeof a);
    a.st_mtim.tv_sec = 1000;
    a.st_size = 10;
    char e1[48], e2[48], e3[48];
    wh_static_etag(&a, 0, e1, sizeof e1);
    a.st_mtim.tv_nsec = 5;
    wh_static_etag(&a, 0, e2, sizeof e2);
    wh_static_etag(&a, WH_ENC_GZIP, e3, sizeof e3);
    CHECK(e1[0] == '"' && e1[strlen(e1) - 1] == '"');
    CHECK(strcmp(e1, e2) != 0);
    CHECK(strcmp(e2, e3) != 0);
}

TEST(accept_encoding)
{
    bool br;
    CHECK_EQ(wh_static_accept_encoding(NONE, &br), 0);
    CHECK_EQ(wh_static_accept_encoding(S("gzip"), &br), WH_ENC_GZIP);
    CHECK(!br);
    CHECK_EQ(wh_static_accept_encoding(S("gzip, deflate, br"), &br), WH_ENC_GZIP | WH_ENC_BR);
    CHECK(br);
    CHECK_EQ(wh_static_accept_encoding(S("gzip;q=1.0, br;q=0.5"), &br), WH_ENC_GZIP | WH_ENC_BR);
    CHECK(!br);
    CHECK_EQ(wh_static_accept_encoding(S("br;q=0, gzip"), &br), WH_ENC_GZIP);
    CHECK_EQ(wh_static_accept_encoding(S("*"), &br), WH_ENC_GZIP | WH_ENC_BR);
    CHECK_EQ(wh_static_accept_encoding(S("*;q=0"), &br), 0);
    CHECK_EQ(wh_static_accept_encoding(S("identity"), &br), 0);
    CHECK_EQ(wh_static_accept_encoding(S("GZIP ; Q=0.001"), &br), WH_ENC_GZIP);
    CHECK_EQ(wh_static_accept_encoding(S("gzip;q=0.000"), &br), 0);
    CHECK_EQ(wh_static_accept_encoding(S("x-gzip"), &br), WH_ENC_GZIP);
}

TEST(mime)
{
    wh_mime_table *t = wh_mime_new("/etc/mime.types");
    CHECK(t != NULL);
    CHECK(strcmp(wh_mime_lookup(t, "index.html"), "text/html; charset=utf-8") == 0);
    CHECK(strcmp(wh_mime_lookup(t, "a/b/STYLE.CSS"), "text/css; charset=utf-8") == 0);
    CHECK(strcmp(wh_mime_lookup(t, "logo.svg"), "image/svg+xml") == 0);
    CHECK(strcmp(wh_mime_lookup(t, "x.png"), "image/png") == 0);
    CHECK(strcmp(wh_mime_lookup(t, "noext"), "application/octet-stream") == 0);
    CHECK(strcmp(wh_mime_lookup(t, ".bashrc"), "application/octet-stream") == 0);
    CHECK(strcmp(wh_mime_lookup(t, "dir.d/file"), "application/octet-stream") == 0);
    CHECK(strcmp(wh_mime_lookup(t, "x.averyveryverylongextension"), "application/octet-stream") ==
          0);
    if (access("/etc/mime.types", R_OK) == 0) /* a type only the system file knows */
        CHECK(strcmp(wh_mime_lookup(t, "x.odt"), "application/vnd.oasis.opendocument.text") == 0);
    wh_mime_free(t);
    t = wh_mime_new(NULL);
    CHECK(strcmp(wh_mime_lookup(t, "x.js"), "text/javascript; charset=utf-8") == 0);
    wh_mime_free(t);
}

TEST(escape_and_listing)
{
    setup();
    char buf[128];
    CHECK_EQ(wh_html_escape("<a href='x'>&\"", buf, sizeof buf), 37);
    CHECK(strcmp(buf, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;") == 0);
    CHECK_EQ(wh_url_encode("a b/<c>", buf, sizeof buf), 13);
    CHECK(strcmp(buf, "a%20b/%3Cc%3E") == 0);
    char p[600];
    snprintf(p, sizeof p, "%s/nodex", rootdir);
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    char *html;
    size_t len;
    CHECK_EQ(wh_static_listing(fd, "/nodex/<x>/", false, &html, &len), 0);
    close(fd);
    CHECK(strlen(html) == len);
    CHECK(strstr(html, "Index of /nodex/&lt;x&gt;/") != NULL);
    CHECK(strstr(html, "&lt;b&gt;&amp;&quot;q&quot;.txt") != NULL);
    CHECK(strstr(html, "href=\"./%3Cb%3E%26%22q%22.txt\"") != NULL);
    CHECK(strstr(html, "<b>") == NULL);
    CHECK(strstr(html, "x.txt") != NULL);
    free(html);
    /* An empty directory lists fine (no entries to sort). */
    snprintf(p, sizeof p, "%s/empty", rootdir);
    mkdir(p, 0755);
    fd = open(p, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK_EQ(wh_static_listing(fd, "/empty/", false, &html, &len), 0);
    close(fd);
    CHECK(strstr(html, "<ul>\n<li><a href=\"../\">../</a></li>\n</ul>") != NULL);
    free(html);
}

static void plan(wh_static_root *root, wh_static_req *q, wh_static_plan *pl)
{
    wh_static_plan_make(root, q, pl);
}

TEST(plan_and_precompressed)
{
    setup();
    put_file("www/app.js", "console.log(1);\n");
    put_file("www/app.js.gz", "GZ");
    put_file("www/app.js.br", "BR");
    put_file("www/old.css", "body{}");
    put_file("www/old.css.gz", "OLD");
    char p[600];
    snprintf(p, sizeof p, "%s/old.css.gz", rootdir);
    struct timeval tv[2] = {{1000, 0}, {1000, 0}};
    CHECK_EQ(utimes(p, tv), 0); /* older than old.css: must not be served */

    wh_static_root root;
    CHECK_EQ(wh_static_root_open(&root, rootdir, NULL), 0);
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = S("GET");
    wh_static_plan pl;

    q.path = S("/a.txt");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 200);
    CHECK_EQ(pl.length, 10);
    CHECK(pl.fd >= 0);
    CHECK(strcmp(pl.content_type, "text/plain; charset=utf-8") == 0);
    char etag[48];
    memcpy(etag, pl.etag, sizeof etag);
    char head[1024];
    int n = wh_static_format_head(&pl, true, head, sizeof head);
    CHECK(n > 0);
    CHECK(strstr(head, "HTTP/1.1 200 OK\r\n") == head);
    CHECK(strstr(head, "Content-Length: 10\r\n"));
    CHECK(strstr(head, "Accept-Ranges: bytes\r\n"));
    CHECK(strstr(head, "\r\n\r\n") == head + n - 4);
    wh_static_plan_release(&pl);

    q.if_none_match = (wh_str){etag, strlen(etag)};
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 304);
    CHECK_EQ(pl.fd, -1);
    wh_static_plan_release(&pl);
    q.if_none_match = NONE;

    q.range = S("bytes=2-4");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 206);
    CHECK_EQ(pl.offset, 2);
    CHECK_EQ(pl.length, 3);
    CHECK(strcmp(pl.content_range, "bytes 2-4/10") == 0);
    wh_static_plan_release(&pl);
    q.if_range = S("\"stale\"");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 200);
    wh_static_plan_release(&pl);
    q.if_range = NONE;
    q.range = S("bytes=10-");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 416);
    CHECK(strcmp(pl.content_range, "bytes */10") == 0);
    wh_static_plan_release(&pl);
    q.range = NONE;

    q.path = S("/app.js");
    q.accept_encoding = S("gzip, br");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 200);
    CHECK(pl.content_encoding && strcmp(pl.content_encoding, "br") == 0);
    CHECK_EQ(pl.length, 2);
    CHECK(pl.vary);
    CHECK(strcmp(pl.content_type, "text/javascript; charset=utf-8") == 0);
    CHECK(strstr(pl.etag, "-br\""));
    wh_static_plan_release(&pl);
    q.accept_encoding = S("gzip");
    plan(&root, &q, &pl);
    CHECK(pl.content_encoding && strcmp(pl.content_encoding, "gzip") == 0);
    wh_static_plan_release(&pl);
    q.accept_encoding = NONE;
    plan(&root, &q, &pl);
    CHECK(pl.content_encoding == NULL);
    CHECK_EQ(pl.length, 16);
    CHECK(pl.vary);
    wh_static_plan_release(&pl);
    q.path = S("/old.css");
    q.accept_encoding = S("gzip");
    plan(&root, &q, &pl);
    CHECK(pl.content_encoding == NULL);
    CHECK_EQ(pl.length, 6);
    wh_static_plan_release(&pl);
    q.accept_encoding = NONE;

    q.path = S("/sub");
    q.query = S("x=1");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 301);
    CHECK(strcmp(pl.location, "/sub/?x=1") == 0);
    wh_static_plan_release(&pl);
    q.query = NONE;
    q.path = S("//sub");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 301);
    CHECK(strcmp(pl.location, "/sub/") == 0); /* never "//sub/" (other host) */
    wh_static_plan_release(&pl);

    q.path = S("/link_out");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 403);
    CHECK(pl.body_len > 0);
    wh_static_plan_release(&pl);
    q.method = S("POST");
    q.path = S("/a.txt");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 405);
    n = wh_static_format_head(&pl, false, head, sizeof head);
    CHECK(strstr(head, "Allow: GET, HEAD\r\n"));
    CHECK(strstr(head, "Connection: close\r\n"));
    wh_static_plan_release(&pl);
    q.method = S("HEAD");
    plan(&root, &q, &pl);
    CHECK_EQ(pl.status, 200);
    CHECK(pl.head_only);
    CHECK_EQ(pl.length, 10);
    wh_static_plan_release(&pl);
    wh_static_root_close(&root);
}

/* The value of field name in a formatted head ("" if absent, "?" if twice). */
static const char *field(const char *head, const char *name)
{
    static char v[4096];
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strstr(head, key);
    if (!p) return "";
    if (strstr(p + 1, key)) return "?";
    p += strlen(key);
    const char *e = strstr(p, "\r\n");
    snprintf(v, sizeof v, "%.*s", (int)(e - p), p);
    return v;
}

static int count_fields(const wh_static_plan *pl)
{
    wh__field f[WH__PLAN_FIELDS_MAX];
    return (int)wh__static_plan_fields(pl, f);
}

/* Every field the planner adds, and only those, appear in the formatted
 * head, each once; the framing fields come from the one head formatter. */
static bool head_matches_plan(const wh_static_plan *pl, const char *head, int n)
{
    int nfields = count_fields(pl), lines = 0;
    for (const char *p = head; (p = strstr(p, "\r\n")) && p < head + n - 2; p += 2)
        lines++;
    /* status line, Server, Date, Connection (+ Content-Length, Content-Type) */
    int framing = 4 + (pl->status == 304 ? 0 : 1 + (pl->content_type != NULL));
    if (lines != framing + nfields) {
        fprintf(stderr, "  %d lines, %d framing + %d plan fields:\n%s", lines, framing, nfields,
                head);
        return false;
    }
    return strncmp(head + n - 4, "\r\n\r\n", 4) == 0;
}

/* The engine's batch of fields: values checked (nothing appended when one
 * is refused), lines exact, the inline buffer left for the heap as needed. */
TEST(fields_batch)
{
    char inl[16], *p = inl;
    size_t len = 0, cap = sizeof inl;
    wh__resp_lines l = {&p, &len, &cap, inl};
    wh__field bad[] = {{"ETag", 4, "\"x\""}, {"Cache-Control", 13, "max-age=1\r\nX-Evil: 1"}};
    CHECK_EQ(wh__resp_lines_put(&l, bad, 2), -EINVAL);
    CHECK_EQ(len, 0);
    wh__field ok[] = {{"ETag", 4, "\"x\""}, {"Accept-Ranges", 13, "bytes"}, {"Vary", 4, "a\tb"}};
    CHECK_EQ(wh__resp_lines_put(&l, ok, 3), 0);
    const char want[] = "ETag: \"x\"\r\nAccept-Ranges: bytes\r\nVary: a\tb\r\n";
    CHECK_EQ(len, sizeof want - 1);
    CHECK(memcmp(p, want, len) == 0);
    CHECK(p != inl);
    free(p);
    /* a configured Cache-Control is checked when the root opens */
    wh_static_opts o;
    wh_static_opts_init(&o);
    o.cache_control = "max-age=1\r\nX-Evil: 1";
    wh_static_root r;
    CHECK_EQ(wh_static_root_open(&r, ".", &o), -EINVAL);
}

TEST(format_head_fields)
{
    setup();
    wh_static_opts o;
    wh_static_opts_init(&o);
    o.cache_control = "max-age=60";
    wh_static_root root;
    CHECK_EQ(wh_static_root_open(&root, rootdir, &o), 0);
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = S("GET");
    q.path = S("/a.txt");
    wh_static_plan pl;
    char head[4096];

    wh_static_plan_make(&root, &q, &pl);
    int n = wh_static_format_head(&pl, true, head, sizeof head);
    CHECK(n > 0 && (size_t)n == strlen(head));
    CHECK(head_matches_plan(&pl, head, n));
    CHECK(strncmp(head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strcmp(field(head, "Content-Length"), "10") == 0);
    CHECK(strcmp(field(head, "Content-Type"), "text/plain; charset=utf-8") == 0);
    CHECK(strcmp(field(head, "ETag"), pl.etag) == 0);
    CHECK(strcmp(field(head, "Cache-Control"), "max-age=60") == 0);
    CHECK(strcmp(field(head, "Vary"), "Accept-Encoding") == 0);
    CHECK(strcmp(field(head, "Connection"), "keep-alive") == 0);
    CHECK(strcmp(field(head, "Server"), "wharf") == 0);
    time_t lm, date;
    const char *v = field(head, "Last-Modified");
    CHECK_EQ(wh_static_date_parse(v, strlen(v), &lm), 0);
    CHECK_EQ(lm, pl.mtime);
    v = field(head, "Date");
    CHECK_EQ(wh_static_date_parse(v, strlen(v), &date), 0);
    CHECK(date >= lm);
    /* Too small a buffer is refused, never overrun. */
    CHECK_EQ(wh_static_format_head(&pl, true, head, 64), -ENOSPC);
    char etag[48];
    memcpy(etag, pl.etag, sizeof etag);
    wh_static_plan_release(&pl);

    /* 304: validators and cache fields, no representation metadata. */
    q.if_none_match = (wh_str){etag, strlen(etag)};
    wh_static_plan_make(&root, &q, &pl);
    CHECK_EQ(pl.status, 304);
    n = wh_static_format_head(&pl, false, head, sizeof head);
    CHECK(head_matches_plan(&pl, head, n));
    CHECK(strcmp(field(head, "ETag"), etag) == 0);
    CHECK(strcmp(field(head, "Cache-Control"), "max-age=60") == 0);
    CHECK(strcmp(field(head, "Content-Length"), "") == 0);
    CHECK(strcmp(field(head, "Accept-Ranges"), "") == 0);
    CHECK(strcmp(field(head, "Connection"), "close") == 0);
    wh_static_plan_release(&pl);
    q.if_none_match = NONE;

    /* Errors: the library's one error page, no cache fields. */
    q.path = S("/nope");
    wh_static_plan_make(&root, &q, &pl);
    CHECK_EQ(pl.status, 404);
    char page[WH__HTTP_ERROR_PAGE_MAX];
    int pn = wh__http_error_page(404, page, sizeof page);
    CHECK(pn > 0 && pl.body_owned && pl.body_len == (size_t)pn && pl.length == (uint64_t)pn);
    CHECK(memcmp(pl.body, page, (size_t)pn) == 0);
    CHECK(strstr(page, "404 Not Found") != NULL);
    CHECK_EQ(wh__http_error_page(404, page, 20), -ENOSPC);
    n = wh_static_format_head(&pl, true, head, sizeof head);
    CHECK(head_matches_plan(&pl, head, n));
    CHECK(strncmp(head, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK_EQ(atoi(field(head, "Content-Length")), pn);
    CHECK(strcmp(field(head, "Cache-Control"), "") == 0);
    wh_static_plan_release(&pl);

    q.path = S("/a.txt");
    q.range = S("bytes=50-");
    wh_static_plan_make(&root, &q, &pl);
    n = wh_static_format_head(&pl, true, head, sizeof head);
    CHECK(head_matches_plan(&pl, head, n));
    CHECK(strncmp(head, "HTTP/1.1 416 Range Not Satisfiable\r\n", 36) == 0);
    CHECK(strcmp(field(head, "Content-Range"), "bytes */10") == 0);
    CHECK(strcmp(field(head, "Accept-Ranges"), "bytes") == 0);
    wh_static_plan_release(&pl);
    q.range = NONE;

    q.path = S("/sub");
    q.query = S("a=1&b=2");
    wh_static_plan_make(&root, &q, &pl);
    n = wh_static_format_head(&pl, true, head, sizeof head);
    CHECK(head_matches_plan(&pl, head, n));
    CHECK(strcmp(field(head, "Location"), "/sub/?a=1&b=2") == 0);
    wh_static_plan_release(&pl);
    q.query = NONE;

    /* A head longer than the formatter's first try still fits a big buffer. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    wh_static_plan_init(&pl);
    wh_static_plan_redirect(&pl, big, NONE);
    CHECK_EQ(pl.status, 301);
    static char bighead[8192];
    n = wh_static_format_head(&pl, true, bighead, sizeof bighead);
    CHECK(n > 3000);
    CHECK(head_matches_plan(&pl, bighead, n));
    CHECK_EQ(wh_static_format_head(&pl, true, head, sizeof head - 1200), -ENOSPC);
    wh_static_plan_release(&pl);
    wh_static_root_close(&root);
    wh_static_root_close(&root); /* closing twice is harmless */
}

TEST(plan_redirect)
{
    wh_static_plan pl;
    wh_static_plan_init(&pl);
    wh_static_plan_redirect(&pl, "a b/c", S("q=1"));
    CHECK_EQ(pl.status, 301);
    CHECK(strcmp(pl.location, "/a%20b/c/?q=1") == 0);
    CHECK(pl.body_len > 0);
    wh_static_plan_redirect(&pl, "", NONE); /* never "//": another host */
    CHECK(strcmp(pl.location, "/") == 0);
    static char rel[WH_STATIC_PATH_MAX], query[100];
    memset(rel, '<', sizeof rel - 1); /* each byte encodes to three */
    memset(query, 'q', sizeof query);
    wh_static_plan_redirect(&pl, rel, NONE);
    CHECK_EQ(pl.status, 301); /* the longest path fits */
    wh_static_plan_redirect(&pl, rel, (wh_str){query, sizeof query});
    CHECK_EQ(pl.status, 414);
    CHECK(pl.location[0] == '\0');
    wh_static_plan_release(&pl);
    CHECK(pl.body == NULL && pl.fd == -1);
}

TEST(plan_rep)
{
    /* What a cache of open files does: plan from kept validators. */
    wh_static_root root;
    memset(&root, 0, sizeof root);
    wh_static_opts_init(&root.opts);
    root.fd = -1;
    wh_static_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.content_type = "text/css; charset=utf-8";
    rep.encoding = WH_ENC_GZIP;
    rep.etag = "\"abc-gz\"";
    rep.mtime = 784111777;
    rep.size = 100;
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = S("GET");
    wh_static_plan pl;
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 200);
    CHECK_EQ(pl.fd, -1);
    CHECK(pl.body == NULL);
    CHECK_EQ(pl.length, 100);
    CHECK(strcmp(pl.content_encoding, "gzip") == 0);
    CHECK(strcmp(pl.last_modified, "Sun, 06 Nov 1994 08:49:37 GMT") == 0);
    CHECK(pl.vary && pl.accept_ranges);
    q.range = S("bytes=-10");
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 206);
    CHECK_EQ(pl.offset, 90);
    CHECK_EQ(pl.length, 10);
    CHECK(strcmp(pl.content_range, "bytes 90-99/100") == 0);
    q.if_range = S("Sun, 06 Nov 1994 08:49:37 GMT");
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 206);
    q.if_range = S("\"other\"");
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 200);
    q.if_range = NONE;
    q.range = NONE;
    q.if_modified_since = S("Sun, 06 Nov 1994 08:49:37 GMT");
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 304);
    CHECK_EQ(pl.length, 0);
    q.if_modified_since = NONE;
    q.if_match = S("\"zzz\"");
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 412);
    CHECK(pl.etag[0] == '\0' && pl.content_encoding == NULL);
    wh_static_plan_release(&pl);
    q.if_match = NONE;
    q.method = S("DELETE");
    wh_static_plan_rep(&root, &q, &rep, &pl);
    CHECK_EQ(pl.status, 405);
    CHECK_EQ(count_fields(&pl), 1); /* Allow */
    wh_static_plan_release(&pl);
}

WH_TEST_MAIN()
