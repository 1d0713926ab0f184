/* libFuzzer target: the Cookie field parser. Checks that names and values
 * are slices of the input with no ';' in them, names without '=' and
 * without blanks at either end, that there are no more pairs than
 * ';'-separated pieces, and that wh_http_cookie_find returns the value of
 * the first pair with each name. The input is also split into two Cookie
 * fields of a request-like iteration: the pairs of the halves, in order,
 * are the pairs of the whole when the split falls on a ';'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http_data.h"

#define MAX_PAIRS 64

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static size_t collect(const char *s, size_t n, wh_str *names, wh_str *values)
{
    wh_http_cookie_iter it;
    wh_str k, v;
    size_t np = 0, pieces = 1;
    for (size_t i = 0; i < n; i++)
        pieces += s[i] == ';';
    wh_http_cookie_iter_init(&it, (wh_str){s, n});
    while (wh_http_cookie_next(&it, &k, &v)) {
        if (!k.p || !v.p) abort();
        if (k.p < s || k.p + k.len > s + n || v.p < s || v.p + v.len > s + n) abort();
        if (memchr(k.p, ';', k.len) || memchr(k.p, '=', k.len) || memchr(v.p, ';', v.len)) abort();
        if (k.len && (blank(k.p[0]) || blank(k.p[k.len - 1]))) abort();
        if (++np > pieces) abort();
        if (np <= MAX_PAIRS) {
            names[np - 1] = k;
            values[np - 1] = v;
        }
    }
    return np < MAX_PAIRS ? np : MAX_PAIRS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    memcpy(s, data, size);
    wh_str names[MAX_PAIRS], values[MAX_PAIRS];
    size_t np = collect(s, size, names, values);
    char name[256];
    for (size_t i = 0; i < np; i++) {
        if (names[i].len >= sizeof name || memchr(names[i].p, 0, names[i].len)) continue;
        memcpy(name, names[i].p, names[i].len);
        name[names[i].len] = '\0';
        size_t first = 0;
        while (names[first].len != names[i].len || memcmp(names[first].p, names[i].p, names[i].len))
            first++;
        wh_str got = wh_http_cookie_find((wh_str){s, size}, name);
        if (got.p != values[first].p || got.len != values[first].len) abort();
    }
    /* Split at the first ';': the halves' pairs are the whole's pairs. */
    const char *semi = memchr(s, ';', size);
    if (semi && np < MAX_PAIRS) {
        size_t a = (size_t)(semi - s);
        wh_str n1[MAX_PAIRS], v1[MAX_PAIRS], n2[MAX_PAIRS], v2[MAX_PAIRS];
        size_t k1 = collect(s, a, n1, v1);
        size_t k2 = collect(semi + 1, size - a - 1, n2, v2);
        if (k1 + k2 != np) abort();
        for (size_t i = 0; i < np; i++) {
            wh_str hn = i < k1 ? n1[i] : n2[i - k1], hv = i < k1 ? v1[i] : v2[i - k1];
            if (hn.len != names[i].len || hn.p != names[i].p || hv.p != values[i].p ||
                hv.len != values[i].len)
                abort();
        }
    }
    free(s);
    return 0;
}
