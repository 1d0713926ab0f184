/* libFuzzer target: the HTTP request parser and the chunked decoder.
 * Checks more than "no crash": a head parsed whole and in two pieces must
 * agree, slices must lie inside the input, and the chunked decoder must give
 * the same bytes however its input is split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

static wh_http_parsed whole, part;

static void check_slice(const char *buf, size_t len, wh_str s)
{
    if (s.p == NULL || s.len == 0) return;
    /* the only slice that may point elsewhere: the path "/" of an
     * absolute-form target without a path */
    if (s.len == 1 && s.p[0] == '/') return;
    if (!(s.p >= buf && s.p + s.len <= buf + len)) abort();
}

static void fuzz_head(const char *buf, size_t len, size_t cut)
{
    wh_http_limits lim;
    wh_http_limits_init(&lim);
    /* small limits so the fuzzer reaches them */
    lim.max_request_line = 200;
    lim.max_header_bytes = 400;
    lim.max_headers = 8;
    lim.max_body = 1000;
    int rw = wh_http_parse_request(buf, len, &whole, &lim);
    if (rw > 0) {
        if ((size_t)rw > len || whole.head_len != (size_t)rw) abort();
        check_slice(buf, len, whole.method);
        check_slice(buf, len, whole.target);
        if (whole.path.p >= whole.path_buf &&
            whole.path.p + whole.path.len <= whole.path_buf + sizeof whole.path_buf) {
            /* rewritten by dot-segment removal: never one left, never above the root */
            if (whole.path.len == 0 || whole.path.p[0] != '/') abort();
            for (size_t k = 0; k + 1 < whole.path.len; k++)
                if (whole.path.p[k] == '/' && whole.path.p[k + 1] == '.' &&
                    (k + 2 == whole.path.len || whole.path.p[k + 2] == '/' ||
                     (whole.path.p[k + 2] == '.' &&
                      (k + 3 == whole.path.len || whole.path.p[k + 3] == '/'))))
                    abort();
        } else {
            check_slice(buf, len, whole.path);
        }
        check_slice(buf, len, whole.query);
        for (unsigned i = 0; i < whole.nheaders; i++) {
            check_slice(buf, len, whole.headers[i].name);
            check_slice(buf, len, whole.headers[i].value);
        }
        if (whole.version != 10 && whole.version != 11) abort();
    } else if (rw == WH_HTTP_ERROR) {
        int st = whole.status;
        if (st != 400 && st != 413 && st != 414 && st != 417 && st != 431 && st != 501 && st != 505)
            abort();
    } else if (rw != WH_HTTP_INCOMPLETE) {
        abort();
    }
    /* Two pieces, as the engine feeds them. When the input ends with LF the
     * final answers must match exactly. */
    if (cut >= len) return;
    int rp = wh_http_parse_request_from(buf, cut, 0, &part, &lim);
    if (rp == WH_HTTP_INCOMPLETE)
        rp = wh_http_parse_request_from(buf, len, cut, &part, &lim);
    else if (rp > 0 && rw != rp)
        abort(); /* a head complete in a prefix is the same head */
    else if (rp == WH_HTTP_ERROR && (rw != WH_HTTP_ERROR || part.status != whole.status))
        abort(); /* an error in a prefix is the error of the whole */
    if (len && buf[len - 1] == '\n' && rp != rw) abort();
    if (rp == WH_HTTP_ERROR && rw == WH_HTTP_ERROR && part.status != whole.status) abort();
}

static void fuzz_chunked(const char *data, size_t len, size_t cut)
{
    char *a = malloc(len + 1), *b = malloc(len + 1);
    if (!a || !b) abort();
    memcpy(a, data, len);
    memcpy(b, data, len);
    wh_http_chunked da, db;
    wh_http_chunked_init(&da, 5000);
    wh_http_chunked_init(&db, 5000);
    size_t ia = 0, oa = 0, ib = 0, ob = 0;
    int ra = wh_http_chunked_decode(&da, a, len, &ia, &oa);
    int rb = wh_http_chunked_decode(&db, b, cut < len ? cut : len, &ib, &ob);
    if (rb == WH_HTTP_INCOMPLETE) rb = wh_http_chunked_decode(&db, b, len, &ib, &ob);
    if (ra != rb || oa > ia || ia > len || ob > ib) abort();
    if (ra == 0 && (ia != ib || oa != ob || memcmp(a, b, oa) != 0 || da.total != oa)) abort();
    if (ra == WH_HTTP_ERROR && da.status != db.status) abort();
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    /* byte 0: mode and split point; the rest is the input */
    unsigned mode = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    size_t cut = len ? (mode >> 1) % (len + 1) : 0;
    /* copy so ASan sees reads past the end */
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, buf, len);
    if (mode & 1)
        fuzz_chunked(copy, len, cut);
    else
        fuzz_head(copy, len, cut);
    free(copy);
    return 0;
}
