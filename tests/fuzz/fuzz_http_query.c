/* libFuzzer target: percent-decoding and urlencoded strings (queries, form
 * bodies), and header parameters. Checks more than "no crash":
 *  - the two decoders agree on validity and length; measuring (out NULL),
 *    decoding into a buffer and decoding in place give the same result; one
 *    byte less of room gives -ENOSPC;
 *  - pairs are slices of the input without '&' (names without '=');
 *  - for every pair whose name decodes cleanly, wh_http_form_get by that
 *    name returns the decoded value of the first pair with the same name,
 *    and wh_http_form_name_eq agrees;
 *  - percent-encoding every byte of the input and decoding gives it back;
 *  - a header parameter found is no longer than the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http_data.h"

#define MAX_PAIRS 32

static void check_decoders(const char *s, size_t n)
{
    wh_str in = {s, n};
    ssize_t a = wh_http_pct_decode(in, NULL, 0), b = wh_http_form_decode(in, NULL, 0);
    if (a != b) abort();
    if (a < 0) {
        if (a != -EINVAL) abort();
        return;
    }
    if ((size_t)a > n) abort();
    char *out = malloc(n + 1), *inplace = malloc(n + 1);
    if (wh_http_form_decode(in, out, (size_t)a) != a) abort();
    memcpy(inplace, s, n);
    if (wh_http_form_decode((wh_str){inplace, n}, inplace, n) != a) abort();
    if (memcmp(out, inplace, (size_t)a)) abort();
    if (a > 0 && wh_http_form_decode(in, out, (size_t)a - 1) != -ENOSPC) abort();
    /* the decoders differ only in what a raw '+' becomes */
    if (wh_http_pct_decode(in, inplace, n) != a) abort();
    for (ssize_t i = 0; i < a; i++)
        if (out[i] != inplace[i] && !(out[i] == ' ' && inplace[i] == '+')) abort();
    free(out);
    free(inplace);
}

static void check_roundtrip(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *enc = malloc(3 * n + 1), *dec = malloc(n + 1);
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.') {
            enc[e++] = (char)c;
        } else {
            enc[e++] = '%';
            enc[e++] = hex[c >> 4];
            enc[e++] = hex[c & 15];
        }
    }
    if (wh_http_form_decode((wh_str){enc, e}, dec, n) != (ssize_t)n || memcmp(dec, s, n)) abort();
    free(enc);
    free(dec);
}

static void check_pairs(const char *s, size_t n)
{
    struct {
        wh_http_form_pair kv;
        char *name, *value;
        ssize_t nl, vl;
    } p[MAX_PAIRS];
    size_t np = 0;
    bool valid = wh_http_form_decode((wh_str){s, n}, NULL, 0) >= 0;
    wh_http_form_iter it;
    wh_http_form_iter_init(&it, (wh_str){s, n});
    wh_http_form_pair kv;
    while (wh_http_form_next(&it, &kv)) {
        if (kv.name.p < s || kv.name.p + kv.name.len > s + n) abort();
        if (kv.value.p < s || kv.value.p + kv.value.len > s + n) abort();
        if (kv.name.len + kv.value.len == 0 && kv.value.p == kv.name.p + kv.name.len) abort();
        if (memchr(kv.name.p, '&', kv.name.len) || memchr(kv.name.p, '=', kv.name.len) ||
            memchr(kv.value.p, '&', kv.value.len))
            abort();
        if (np == MAX_PAIRS) continue;
        p[np].kv = kv;
        p[np].name = malloc(kv.name.len + 1);
        p[np].value = malloc(kv.value.len + 1);
        p[np].nl = wh_http_form_decode(kv.name, p[np].name, kv.name.len);
        p[np].vl = wh_http_form_decode(kv.value, p[np].value, kv.value.len);
        if (valid && (p[np].nl < 0 || p[np].vl < 0)) abort();
        np++;
    }
    char *buf = malloc(n + 1);
    for (size_t i = 0; i < np; i++) {
        if (p[i].nl < 0 || memchr(p[i].name, 0, (size_t)p[i].nl)) continue;
        p[i].name[p[i].nl] = '\0';
        if (!wh_http_form_name_eq(p[i].kv.name, p[i].name)) abort();
        ssize_t got = wh_http_form_get((wh_str){s, n}, p[i].name, buf, n + 1);
        if (!valid) {
            if (got != -EINVAL) abort();
            continue;
        }
        size_t first = 0;
        while (p[first].nl != p[i].nl || memcmp(p[first].name, p[i].name, (size_t)p[i].nl))
            first++;
        if (got != p[first].vl || memcmp(buf, p[first].value, (size_t)got) || buf[got] != '\0')
            abort();
    }
    for (size_t i = 0; i < np; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(buf);
}

static void check_params(const char *s, size_t n)
{
    char buf[256];
    static const char *names[] = {"boundary", "charset", "name", "filename"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ssize_t r = wh_http_header_param((wh_str){s, n}, names[i], buf, sizeof buf);
        if (r >= 0 && ((size_t)r > n || buf[r] != '\0')) abort();
        if (r < 0 && r != -ENOENT && r != -EINVAL && r != -ENOSPC) abort();
    }
    (void)wh_http_media_type_is((wh_str){s, n}, "multipart/form-data");
    int b = wh_http_multipart_boundary((wh_str){s, n}, buf, sizeof buf);
    if (b > WH_HTTP_MULTIPART_BOUNDARY_MAX) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    char *s = malloc(size ? size : 1);
    memcpy(s, data, size);
    check_decoders(s, size);
    check_roundtrip(s, size);
    check_pairs(s, size);
    check_params(s, size);
    free(s);
    return 0;
}
