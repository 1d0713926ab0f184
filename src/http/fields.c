/* Header values of a request: every value of a repeated field, the combined
 * value (RFC 9110 §5.3), media types and parameters (RFC 9110 §5.6.6,
 * §8.3.1). */
#include <string.h>

#include "http/fields.h"
#include "http/parser.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool wh_http_req_header_next(const wh_http_req *r, const char *name, unsigned *pos, wh_str *value)
{
    unsigned n = wh_http_req_header_count(r);
    for (unsigned i = *pos; i < n; i++) {
        wh_str k, v;
        wh_http_req_header_at(r, i, &k, &v);
        if (wh_str_ieq(k, name)) {
            *pos = i + 1;
            *value = v;
            return true;
        }
    }
    *pos = n;
    return false;
}

ssize_t wh_http_req_header_join(const wh_http_req *r, const char *name, char *buf, size_t cap)
{
    /* Set-Cookie values contain commas of their own (Expires dates), so
     * joining them loses the boundaries (RFC 9110 §5.3). */
    if (wh_str_ieq((wh_str){name, strlen(name)}, "set-cookie")) return -EINVAL;
    /* HTTP/2 may split the one Cookie field into several; they are put
     * back together with "; " (RFC 9113 §8.2.3), not ", ". */
    bool cookie = wh_str_ieq((wh_str){name, strlen(name)}, "cookie");
    const char *sep = cookie ? "; " : ", ";
    if (cap == 0) return -ENOSPC;
    size_t len = 0;
    unsigned pos = 0;
    bool found = false;
    wh_str v;
    while (wh_http_req_header_next(r, name, &pos, &v)) {
        found = true;
        /* An empty value adds only an empty list element, which recipients
         * ignore (RFC 9110 §5.6.1). */
        if (v.len == 0) continue;
        size_t need = v.len + (len ? 2 : 0);
        if (need >= cap - len) return -ENOSPC;
        if (len) {
            memcpy(buf + len, sep, 2);
            len += 2;
        }
        memcpy(buf + len, v.p, v.len);
        len += v.len;
    }
    if (!found) return -ENOENT;
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Skips the leading token (or type/subtype) of a value with parameters and
 * the blanks after it; NULL if there is none. */
static const char *skip_head_token(wh_str v)
{
    const char *p = v.p, *end = v.p + v.len;
    while (p < end && is_ows(*p))
        p++;
    const char *s = p;
    while (p < end && (wh_http_is_tchar((unsigned char)*p) || *p == '/'))
        p++;
    if (p == s) return NULL;
    while (p < end && is_ows(*p))
        p++;
    return p;
}

bool wh_http_media_type_is(wh_str ct, const char *mime)
{
    if (!ct.p) return false;
    const char *p = ct.p, *end = ct.p + ct.len;
    while (p < end && is_ows(*p))
        p++;
    size_t n = strlen(mime);
    if ((size_t)(end - p) < n || !wh_str_ieq((wh_str){p, n}, mime)) return false;
    p += n;
    while (p < end && is_ows(*p))
        p++;
    return p == end || *p == ';';
}

int wh__http_param_next(const char **pp, const char *end, wh_str *name, wh_str *value, bool *quoted)
{
    const char *p = *pp;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        if (p == end) {
            *pp = p;
            return 0;
        }
        if (*p != ';') return -EINVAL;
        p++;
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ';') break; /* else an empty parameter: "a;;b=1" */
    }
    const char *s = p;
    while (p < end && wh_http_is_tchar((unsigned char)*p))
        p++;
    if (p == s) return -EINVAL;
    *name = (wh_str){s, (size_t)(p - s)};
    /* RFC 9110 allows no blanks around '='; RFC 6266 (Content-Disposition)
     * does, by the implied LWS of RFC 2616. Accepting them is harmless. */
    while (p < end && is_ows(*p))
        p++;
    if (p == end || *p != '=') return -EINVAL;
    p++;
    while (p < end && is_ows(*p))
        p++;
    if (p < end && *p == '"') {
        s = ++p;
        for (;;) {
            if (p == end) return -EINVAL;
            unsigned char c = (unsigned char)*p;
            if (c == '"') break;
            if ((c < 0x20 && c != '\t') || c == 0x7f) return -EINVAL;
            if (c == '\\' && end - p > 1 && (p[1] == '"' || p[1] == '\\')) p++;
            p++;
        }
        *value = (wh_str){s, (size_t)(p - s)};
        *quoted = true;
        p++;
    } else {
        s = p;
        while (p < end && wh_http_is_tchar((unsigned char)*p))
            p++;
        if (p == s) return -EINVAL;
        *value = (wh_str){s, (size_t)(p - s)};
        *quoted = false;
    }
    *pp = p;
    return 1;
}

size_t wh__http_unquote(wh_str v, char *out)
{
    /* A backslash escapes only '"' and '\' (as Go's mime package does):
     * browsers do not escape backslashes in file names (the HTML standard's
     * multipart/form-data encoding percent-encodes only '"', CR and LF), so
     * "C:\new" must keep its "\n" as two characters. */
    size_t o = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (c == '\\' && i + 1 < v.len && (v.p[i + 1] == '"' || v.p[i + 1] == '\\')) c = v.p[++i];
        if (out) out[o] = c;
        o++;
    }
    return o;
}

ssize_t wh_http_header_param(wh_str value, const char *name, char *buf, size_t cap)
{
    if (!value.p) return -ENOENT;
    const char *p = skip_head_token(value), *end = value.p + value.len;
    if (!p) return -EINVAL;
    wh_str k, v, found = {NULL, 0};
    bool quoted, fq = false;
    int rc;
    while ((rc = wh__http_param_next(&p, end, &k, &v, &quoted)) > 0) {
        if (!wh_str_ieq(k, name)) continue;
        /* Two values for one parameter: two readers may pick different
         * ones, so neither is trusted. */
        if (found.p) return -EINVAL;
        found = v;
        fq = quoted;
    }
    if (rc < 0) return rc;
    if (!found.p) return -ENOENT;
    size_t n = fq ? wh__http_unquote(found, NULL) : found.len;
    if (n >= cap) return -ENOSPC;
    if (fq)
        wh__http_unquote(found, buf);
    else
        memcpy(buf, found.p, n);
    buf[n] = '\0';
    return (ssize_t)n;
}
