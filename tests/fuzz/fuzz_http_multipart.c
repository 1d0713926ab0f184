/* libFuzzer target: the incremental multipart/form-data parser.
 *
 * Input: byte 0 picks the boundary (and, in its high bits, the header
 * buffer size and part limit), byte 1 seeds the cuts, the rest is the body.
 * The body is parsed in one piece, then cut at pseudo-random points (each
 * piece in its own heap copy, so a slice used after its call is caught by
 * ASan), and byte by byte when short: every run must see the same parts,
 * the same content per part, the same end and the same error at the same
 * offset. A valid body must also come out the same from
 * wh_http_multipart_next (each part's content one slice of the body), and
 * wh_http_multipart_get must find the first part's content. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http_data.h"

typedef struct sb {
    char *p;
    size_t n, cap;
} sb;

static void put(sb *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_str(sb *b, wh_str s)
{
    uint64_t l = s.p ? s.len : UINT64_MAX;
    put(b, &l, sizeof l);
    if (s.p) put(b, s.p, s.len);
}

typedef struct result {
    sb log;
    int rc;
    uint64_t err_off;
    const char *err;
} result;

static const char *const boundaries[] = {
    "XyZ",
    "b",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "a'()+_,-./:=? z",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
};

static char hbuf[2048];

static void run(wh_str boundary, size_t hcap, unsigned max_parts, const char *body, size_t len,
                const size_t *cuts, size_t ncuts, result *res)
{
    wh_http_multipart mp;
    sb data = {0};
    res->log.n = 0;
    res->rc = wh_http_multipart_init(&mp, boundary, hbuf, hcap);
    if (res->rc < 0) abort();
    mp.max_parts = max_parts;
    mp.max_name = 40;
    size_t at = 0;
    bool in_part = false, done = false;
    for (size_t c = 0; c <= ncuts && res->rc == 0; c++) {
        size_t end = c < ncuts ? cuts[c] : len, n = end - at;
        char *piece = malloc(n ? n : 1);
        memcpy(piece, body + at, n);
        size_t pos = 0;
        wh_str d;
        int ev;
        while ((ev = wh_http_multipart_feed(&mp, piece, n, &pos, &d)) != WH_HTTP_MULTIPART_MORE) {
            if (pos > n) abort();
            if (ev < 0) {
                res->rc = ev;
                break;
            }
            switch (ev) {
            case WH_HTTP_MULTIPART_PART:
                if (in_part || done) abort();
                in_part = true;
                data.n = 0;
                put(&res->log, "P", 1);
                put(&res->log, &mp.part.index, sizeof mp.part.index);
                put_str(&res->log, mp.part.name);
                put_str(&res->log, mp.part.filename);
                put_str(&res->log, mp.part.content_type);
                if (mp.part.name.len > mp.max_name) abort();
                break;
            case WH_HTTP_MULTIPART_DATA:
                if (!in_part || d.len == 0) abort();
                put(&data, d.p, d.len);
                break;
            case WH_HTTP_MULTIPART_PART_END:
                if (!in_part) abort();
                in_part = false;
                put(&res->log, "E", 1);
                put_str(&res->log, (wh_str){data.p ? data.p : "", data.n});
                break;
            case WH_HTTP_MULTIPART_DONE:
                if (in_part || done) abort();
                done = true;
                put(&res->log, "D", 1);
                break;
            default:
                abort();
            }
        }
        if (res->rc == 0 && pos != n) abort();
        free(piece);
        at = end;
    }
    if (res->rc == 0) res->rc = wh_http_multipart_finish(&mp);
    if ((res->rc == 0) != done) abort();
    res->err_off = mp.err_off;
    res->err = mp.err;
    if (res->rc < 0 && (!mp.err || mp.err_off > len)) abort();
    free(data.p);
}

static void same(const result *a, const result *b)
{
    if (a->rc != b->rc || a->log.n != b->log.n ||
        (a->log.n && memcmp(a->log.p, b->log.p, a->log.n)))
        abort();
    if (a->rc < 0 && (a->err_off != b->err_off || strcmp(a->err, b->err))) abort();
}

/* wh_http_multipart_next on the whole body must give the one-shot log. */
static void check_next(wh_str boundary, size_t hcap, unsigned max_parts, wh_str body,
                       const result *want)
{
    wh_http_multipart mp;
    if (wh_http_multipart_init(&mp, boundary, hbuf, hcap) < 0) abort();
    mp.max_parts = max_parts;
    mp.max_name = 40;
    sb log = {0};
    size_t pos = 0;
    wh_str d, first = {NULL, 0};
    char name[48];
    int rc;
    while ((rc = wh_http_multipart_next(&mp, body, &pos, &d)) > 0) {
        if (d.p < body.p || d.p + d.len > body.p + body.len) abort();
        if (!first.p && !memchr(mp.part.name.p, 0, mp.part.name.len)) {
            memcpy(name, mp.part.name.p, mp.part.name.len);
            name[mp.part.name.len] = '\0';
            first = d;
        }
        put(&log, "P", 1);
        put(&log, &mp.part.index, sizeof mp.part.index);
        put_str(&log, mp.part.name);
        put_str(&log, mp.part.filename);
        put_str(&log, mp.part.content_type);
        put(&log, "E", 1);
        put_str(&log, d);
    }
    if (rc != want->rc) abort();
    if (rc == 0) {
        put(&log, "D", 1);
        if (log.n != want->log.n || memcmp(log.p, want->log.p, log.n)) abort();
        /* wh_http_multipart_get has looser limits: it finds the same content */
        if (first.p) {
            char *buf = malloc(body.len + 1);
            ssize_t n = wh_http_multipart_get(body, boundary, name, buf, body.len + 1);
            if (n != (ssize_t)first.len || memcmp(buf, first.p, first.len)) abort();
            free(buf);
        }
    }
    free(log.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const char *b = boundaries[(data[0] & 7) % (sizeof boundaries / sizeof boundaries[0])];
    wh_str boundary = {b, strlen(b)};
    size_t hcap = (data[0] & 0x10) ? 96 : sizeof hbuf;
    unsigned max_parts = (data[0] & 0x20) ? 3 : 128;
    uint32_t seed = data[1] * 2654435761u + 1;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;

    result one = {0}, other = {0};
    run(boundary, hcap, max_parts, body, len, NULL, 0, &one);

    size_t cuts[16];
    for (int round = 0; round < 4; round++) {
        size_t nc = 1 + (size_t)(seed % 8);
        for (size_t i = 0; i < nc; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            cuts[i] = len ? seed % (len + 1) : 0;
        }
        for (size_t i = 1; i < nc; i++) /* insertion sort */
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        run(boundary, hcap, max_parts, body, len, cuts, nc, &other);
        same(&one, &other);
    }
    if (len <= 512) {
        size_t *all = malloc((len ? len : 1) * sizeof *all);
        for (size_t i = 0; i < len; i++)
            all[i] = i;
        run(boundary, hcap, max_parts, body, len, all, len, &other);
        same(&one, &other);
        free(all);
    }

    char *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    check_next(boundary, hcap, max_parts, (wh_str){copy, len}, &one);
    free(copy);
    free(one.log.p);
    free(other.log.p);
    return 0;
}
