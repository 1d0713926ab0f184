/* The Cookie request field (RFC 6265 §4.2.1 syntax, §5.4 how user agents
 * send it).
 *
 * The grammar is cookie-pair *( ";" SP cookie-pair ), but we accept any
 * blanks around ';' and '=' and any bytes in a value except ';': cookies are
 * set by scripts and old servers that do not follow §4.1.1, and a server
 * that rejects the whole field over one odd cookie locks its users out.
 * Values are not percent-decoded: RFC 6265 leaves any encoding to the
 * application that set the cookie. */
#include <string.h>

#include "wharf/http_data.h"

static wh_str trim(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (wh_str){s, (size_t)(e - s)};
}

void wh_http_cookie_iter_init(wh_http_cookie_iter *it, wh_str cookie)
{
    it->p = cookie.p;
    it->end = cookie.p ? cookie.p + cookie.len : NULL;
    it->req = NULL;
    it->field = 0;
}

void wh_http_req_cookie_iter_init(wh_http_cookie_iter *it, const wh_http_req *r)
{
    it->p = it->end = NULL;
    it->req = r;
    it->field = 0;
}

bool wh_http_cookie_next(wh_http_cookie_iter *it, wh_str *name, wh_str *value)
{
    for (;;) {
        while (it->p < it->end) {
            const char *s = it->p;
            const char *semi = memchr(s, ';', (size_t)(it->end - s));
            const char *e = semi ? semi : it->end;
            it->p = semi ? semi + 1 : it->end;
            wh_str pair = trim(s, e);
            if (pair.len == 0) continue;
            const char *eq = memchr(pair.p, '=', pair.len);
            if (eq) {
                *name = trim(pair.p, eq);
                *value = trim(eq + 1, pair.p + pair.len);
            } else {
                *name = (wh_str){pair.p, 0};
                *value = pair;
            }
            /* cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ):
             * the quotes wrap the value, they are not part of it. */
            if (value->len >= 2 && value->p[0] == '"' && value->p[value->len - 1] == '"') {
                value->p++;
                value->len -= 2;
            }
            return true;
        }
        if (!it->req) return false;
        wh_str v;
        if (!wh_http_req_header_next(it->req, "cookie", &it->field, &v)) return false;
        it->p = v.p;
        it->end = v.p + v.len;
    }
}

wh_str wh_http_cookie_find(wh_str cookie, const char *name)
{
    wh_http_cookie_iter it;
    wh_str k, v;
    wh_http_cookie_iter_init(&it, cookie);
    while (wh_http_cookie_next(&it, &k, &v))
        if (k.len == strlen(name) && !memcmp(k.p, name, k.len)) return v;
    return (wh_str){NULL, 0};
}

wh_str wh_http_req_cookie(const wh_http_req *r, const char *name)
{
    wh_http_cookie_iter it;
    wh_str k, v;
    wh_http_req_cookie_iter_init(&it, r);
    while (wh_http_cookie_next(&it, &k, &v))
        if (k.len == strlen(name) && !memcmp(k.p, name, k.len)) return v;
    return (wh_str){NULL, 0};
}
