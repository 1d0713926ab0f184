/* Static files: the HTTP semantics that decide between 200, 206, 304, 412
 * and 416, and which coding to send. Request dates (RFC 9110 5.6.7),
 * validators (8.8), conditionals (13), ranges (14), content codings
 * (12.5.3). Pure functions over request fields and file metadata. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "wharf/http_file.h"

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* A tiny cursor parser for the three date formats. */
struct cur {
    const char *p, *e;
};

static bool num(struct cur *c, int digits_min, int digits_max, int *out)
{
    int v = 0, n = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9' && n < digits_max) {
        v = v * 10 + (*c->p++ - '0');
        n++;
    }
    *out = v;
    return n >= digits_min;
}

static bool lit(struct cur *c, char ch)
{
    if (c->p < c->e && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool month(struct cur *c, int *m)
{
    if (c->e - c->p < 3) return false;
    for (int i = 0; i < 12; i++)
        if (strncasecmp(c->p, months[i], 3) == 0) {
            *m = i;
            c->p += 3;
            return true;
        }
    return false;
}

static bool hms(struct cur *c, struct tm *tm)
{
    return num(c, 2, 2, &tm->tm_hour) && lit(c, ':') && num(c, 2, 2, &tm->tm_min) && lit(c, ':') &&
           num(c, 2, 2, &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec <= 60;
}

int wh_static_date_parse(const char *p, size_t len, time_t *out)
{
    struct cur c = {p, p + len};
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    while (c.p < c.e && *c.p == ' ')
        c.p++;
    const char *w = c.p;
    while (c.p < c.e && ((*c.p | 0x20) >= 'a' && (*c.p | 0x20) <= 'z'))
        c.p++;
    if (c.p - w < 3) return -EINVAL;
    int y;
    if (lit(&c, ',')) {
        if (!lit(&c, ' ') || !num(&c, 1, 2, &tm.tm_mday)) return -EINVAL;
        if (lit(&c, '-')) { /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
            if (!month(&c, &tm.tm_mon) || !lit(&c, '-') || !num(&c, 2, 2, &y)) return -EINVAL;
            /* RFC 9110 5.6.7: a two-digit year more than 50 years in the
             * future is in the past century; keep it simple: 70-99 -> 19xx. */
            y += y < 70 ? 2000 : 1900;
        } else { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            if (!lit(&c, ' ') || !month(&c, &tm.tm_mon) || !lit(&c, ' ') || !num(&c, 4, 4, &y))
                return -EINVAL;
        }
        if (!lit(&c, ' ') || !hms(&c, &tm) || !lit(&c, ' ') || c.e - c.p < 3 ||
            strncmp(c.p, "GMT", 3) != 0)
            return -EINVAL;
        c.p += 3;
    } else { /* asctime: Sun Nov  6 08:49:37 1994 */
        if (!lit(&c, ' ') || !month(&c, &tm.tm_mon) || !lit(&c, ' ')) return -EINVAL;
        lit(&c, ' ');
        if (!num(&c, 1, 2, &tm.tm_mday) || !lit(&c, ' ') || !hms(&c, &tm) || !lit(&c, ' ') ||
            !num(&c, 4, 4, &y))
            return -EINVAL;
    }
    while (c.p < c.e && *c.p == ' ')
        c.p++;
    if (c.p != c.e || tm.tm_mday < 1 || tm.tm_mday > 31) return -EINVAL;
    tm.tm_year = y - 1900;
    *out = timegm(&tm);
    return 0;
}

int wh_static_etag(const struct stat *st, unsigned enc, char *buf, size_t cap)
{
    /* mtime with nanoseconds and size: an edit within the same second that
     * keeps the size still changes the tag on filesystems with ns times. */
    const char *suf = enc == WH_ENC_GZIP ? "-gz" : enc == WH_ENC_BR ? "-br" : "";
    return snprintf(buf, cap, "\"%llx.%lx-%llx%s\"", (unsigned long long)st->st_mtim.tv_sec,
                    (unsigned long)st->st_mtim.tv_nsec, (unsigned long long)st->st_size, suf);
}

static const char *skip_ows(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

bool wh_static_etag_match(wh_str list, const char *etag, bool weak)
{
    if (!list.p) return false;
    const char *p = list.p, *e = list.p + list.len;
    size_t tl = strlen(etag);
    p = skip_ows(p, e);
    if (p < e && *p == '*') return true;
    while (p < e) {
        p = skip_ows(p, e);
        bool is_weak = false;
        if (e - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = true;
            p += 2;
        }
        const char *s = p;
        if (p < e && *p == '"') {
            p++;
            while (p < e && *p != '"')
                p++;
            if (p < e) p++;
        } else {
            while (p < e && *p != ',')
                p++;
        }
        /* Strong comparison (RFC 9110 8.8.3.2): neither may be weak. Our own
         * tags are always strong, so only the request side matters. */
        if ((weak || !is_weak) && (size_t)(p - s) == tl && memcmp(s, etag, tl) == 0) return true;
        while (p < e && *p != ',')
            p++;
        if (p < e) p++;
    }
    return false;
}

int wh_static_conditional(const wh_static_req *req, const char *etag, time_t mtime)
{
    time_t t;
    /* RFC 9110 13.2.2, steps 1-4. */
    if (req->if_match.p) {
        if (!wh_static_etag_match(req->if_match, etag, false)) return 412;
    } else if (req->if_unmodified_since.p &&
               wh_static_date_parse(req->if_unmodified_since.p, req->if_unmodified_since.len, &t) ==
                   0 &&
               mtime > t) {
        return 412;
    }
    if (req->if_none_match.p) {
        /* Weak comparison for If-None-Match (13.1.2). */
        if (wh_static_etag_match(req->if_none_match, etag, true)) return 304;
    } else if (req->if_modified_since.p &&
               wh_static_date_parse(req->if_modified_since.p, req->if_modified_since.len, &t) ==
                   0 &&
               mtime <= t) {
        return 304;
    }
    return 0;
}

bool wh_static_if_range(wh_str if_range, const char *etag, time_t mtime)
{
    if (!if_range.p) return true;
    const char *p = skip_ows(if_range.p, if_range.p + if_range.len);
    size_t n = (size_t)(if_range.p + if_range.len - p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= 2 && (p[0] == '"' || (p[0] == 'W' && p[1] == '/'))) {
        /* 13.1.5: an entity-tag here needs a strong match. */
        size_t tl = strlen(etag);
        return n == tl && memcmp(p, etag, tl) == 0;
    }
    time_t t;
    /* A date validator matches only if it is exactly Last-Modified. */
    return wh_static_date_parse(p, n, &t) == 0 && t == mtime;
}

static bool u64(const char **pp, const char *e, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    if (p >= e || *p < '0' || *p > '9') return false;
    while (p < e && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p++ - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    *pp = p;
    return true;
}

int wh_static_range(wh_str range, uint64_t size, uint64_t *start, uint64_t *len)
{
    if (!range.p) return 200;
    const char *p = skip_ows(range.p, range.p + range.len), *e = range.p + range.len;
    /* 14.1: the range unit is case-insensitive. */
    if (e - p < 6 || strncasecmp(p, "bytes=", 6) != 0) return 200;
    p = skip_ows(p + 6, e);
    for (const char *q = p; q < e; q++)
        if (*q == ',') return 200; /* several ranges: we may ignore Range (14.2) and send 200 */
    uint64_t a = 0, b = 0;
    bool suffix = false, open_end = false;
    if (p < e && *p == '-') {
        p++;
        suffix = true;
        if (!u64(&p, e, &b)) return 200;
    } else {
        if (!u64(&p, e, &a) || p >= e || *p++ != '-') return 200;
        if (p < e && *p >= '0' && *p <= '9') {
            if (!u64(&p, e, &b)) return 200;
        } else {
            open_end = true;
        }
    }
    p = skip_ows(p, e);
    if (p != e) return 200;
    if (suffix) {
        if (b == 0 || size == 0) return 416;
        if (b > size) b = size;
        *start = size - b;
        *len = b;
        return 206;
    }
    if (!open_end && a > b) return 200; /* invalid range-spec: ignore the header (14.1.1) */
    if (a >= size) return 416;
    uint64_t last = open_end || b >= size ? size - 1 : b;
    *start = a;
    *len = last - a + 1;
    return 206;
}

/* q-value (RFC 9110 12.4.2) as thousandths; 1000 when absent, -1 invalid. */
static int qvalue(const char *p, const char *e)
{
    /* p points after the coding; look for ";q=" among the parameters. */
    while (p < e) {
        p = skip_ows(p, e);
        if (p >= e || *p != ';') break;
        p = skip_ows(p + 1, e);
        if (e - p >= 2 && (p[0] | 0x20) == 'q' && p[1] == '=') {
            p += 2;
            int v = 0, scale = 1000;
            if (p < e && (*p == '0' || *p == '1')) {
                v = (*p++ - '0') * 1000;
                if (p < e && *p == '.') {
                    p++;
                    for (int i = 0; i < 3 && p < e && *p >= '0' && *p <= '9'; i++) {
                        scale /= 10;
                        v += (*p++ - '0') * scale;
                    }
                }
                return v > 1000 ? 1000 : v;
            }
            return -1;
        }
        while (p < e && *p != ';')
            p++;
    }
    return 1000;
}

unsigned wh_static_accept_encoding(wh_str ae, bool *prefer_br)
{
    *prefer_br = false;
    if (!ae.p) return 0;
    int qg = -1, qb = -1, qs = -1; /* -1: not mentioned */
    const char *p = ae.p, *e = ae.p + ae.len;
    while (p < e) {
        p = skip_ows(p, e);
        const char *s = p;
        while (p < e && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - s);
        const char *pe = p;
        while (pe < e && *pe != ',')
            pe++;
        int q = qvalue(p, pe);
        if (q >= 0) {
            if ((n == 4 && strncasecmp(s, "gzip", 4) == 0) ||
                (n == 6 && strncasecmp(s, "x-gzip", 6) == 0))
                qg = q;
            else if (n == 2 && strncasecmp(s, "br", 2) == 0)
                qb = q;
            else if (n == 1 && *s == '*')
                qs = q;
        }
        p = pe < e ? pe + 1 : e;
    }
    if (qg < 0) qg = qs > 0 ? qs : 0;
    if (qb < 0) qb = qs > 0 ? qs : 0;
    unsigned bits = (qg > 0 ? WH_ENC_GZIP : 0) | (qb > 0 ? WH_ENC_BR : 0);
    *prefer_br = qb > 0 && qb >= qg;
    return bits;
}
