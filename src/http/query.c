/* Percent-decoding and application/x-www-form-urlencoded strings (query
 * strings and form bodies).
 *
 * The WHATWG URL standard's urlencoded parser keeps a '%' that is not
 * followed by two hex digits as a literal '%'. We refuse it (-EINVAL)
 * instead: no browser produces one, so it means a broken or hostile client,
 * and passing it through would let "%2" mean different things to us and to
 * a component behind us. */
#include <string.h>

#include "wharf/http_data.h"

int wh_http_hex_digit(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static ssize_t decode(wh_str in, char *out, size_t cap, bool plus)
{
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == '%') {
            int h = in.len - i > 2 ? wh_http_hex_digit((unsigned char)in.p[i + 1]) : -1;
            int l = h >= 0 ? wh_http_hex_digit((unsigned char)in.p[i + 2]) : -1;
            if (l < 0) return -EINVAL;
            c = (unsigned char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (out) {
            if (o >= cap) return -ENOSPC;
            out[o] = (char)c;
        }
        o++;
    }
    return (ssize_t)o;
}

ssize_t wh_http_pct_decode(wh_str in, char *out, size_t cap)
{
    return decode(in, out, cap, false);
}

ssize_t wh_http_form_decode(wh_str in, char *out, size_t cap)
{
    return decode(in, out, cap, true);
}

void wh_http_form_iter_init(wh_http_form_iter *it, wh_str s)
{
    it->p = s.p;
    it->end = s.p ? s.p + s.len : NULL;
}

bool wh_http_form_next(wh_http_form_iter *it, wh_http_form_pair *out)
{
    while (it->p < it->end) {
        const char *s = it->p;
        const char *amp = memchr(s, '&', (size_t)(it->end - s));
        const char *e = amp ? amp : it->end;
        it->p = amp ? amp + 1 : it->end;
        if (e == s) continue; /* "a=1&&b=2": an empty sequence is no pair */
        const char *eq = memchr(s, '=', (size_t)(e - s));
        out->name = (wh_str){s, (size_t)((eq ? eq : e) - s)};
        out->value = eq ? (wh_str){eq + 1, (size_t)(e - eq - 1)} : (wh_str){e, 0};
        return true;
    }
    return false;
}

bool wh_http_form_name_eq(wh_str raw, const char *name)
{
    size_t k = 0, n = strlen(name);
    for (size_t i = 0; i < raw.len; i++, k++) {
        unsigned char c = (unsigned char)raw.p[i];
        if (c == '%') {
            int h = raw.len - i > 2 ? wh_http_hex_digit((unsigned char)raw.p[i + 1]) : -1;
            int l = h >= 0 ? wh_http_hex_digit((unsigned char)raw.p[i + 2]) : -1;
            if (l < 0) return false;
            c = (unsigned char)(h << 4 | l);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (k >= n || (unsigned char)name[k] != c) return false;
    }
    return k == n;
}

ssize_t wh_http_form_get(wh_str s, const char *name, char *buf, size_t cap)
{
    /* One malformed escape anywhere makes the whole string malformed: the
     * answer must not depend on which pair the caller happens to ask for. */
    if (decode(s, NULL, 0, true) < 0) return -EINVAL;
    wh_http_form_iter it;
    wh_http_form_pair kv;
    wh_http_form_iter_init(&it, s);
    while (wh_http_form_next(&it, &kv)) {
        if (!wh_http_form_name_eq(kv.name, name)) continue;
        if (cap == 0) return -ENOSPC;
        ssize_t n = decode(kv.value, buf, cap - 1, true);
        if (n < 0) return n;
        buf[n] = '\0';
        return n;
    }
    return -ENOENT;
}

ssize_t wh_http_req_query_get(const wh_http_req *r, const char *name, char *buf, size_t cap)
{
    return wh_http_form_get(wh_http_req_query(r), name, buf, cap);
}
