/* Static files, part 2: HTTP semantics over a resolved file. Dates
 * (RFC 9110 5.6.7), validators (8.8), conditionals (13), ranges (14),
 * content codings (12.5.3), and the all-in-one plan for blocking servers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "apps/common/static.h"

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int wh_static_date_format(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (cap < 30 || !gmtime_r(&t, &tm)) return -ENOSPC;
    /* Built by hand: strftime's %a/%b follow the locale. */
    return snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
                    months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

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

/* ---- the plan ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 412:
        return "Precondition Failed";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void plan_init(wh_static_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->fd = -1;
}

void wh_static_plan_release(wh_static_plan *plan)
{
    if (plan->fd >= 0 && plan->fd_owned) close(plan->fd);
    plan->fd = -1;
    free(plan->body);
    plan->body = NULL;
    plan->body_len = 0;
}

void wh_static_plan_error(wh_static_plan *plan, int status)
{
    if (plan->fd >= 0 && plan->fd_owned) close(plan->fd);
    plan->fd = -1;
    free(plan->body);
    plan->status = status;
    plan->content_type = "text/html; charset=utf-8";
    plan->content_encoding = NULL;
    plan->etag[0] = plan->last_modified[0] = '\0';
    plan->offset = 0;
    char *b = malloc(256);
    int n = b ? snprintf(b, 256,
                         "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
                         "<body><h1>%d %s</h1></body></html>\n",
                         status, reason(status), status, reason(status))
              : 0;
    plan->body = b;
    plan->body_len = (size_t)n;
    plan->length = (uint64_t)n;
}

static bool method_is(wh_str m, const char *s)
{
    size_t n = strlen(s);
    return m.len == n && memcmp(m.p, s, n) == 0;
}

size_t wh_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        if (keep) {
            if (o + 1 < cap) out[o] = (char)c;
            o++;
        } else {
            if (o + 3 < cap) {
                out[o] = '%';
                out[o + 1] = hex[c >> 4];
                out[o + 2] = hex[c & 15];
            }
            o += 3;
        }
    }
    if (cap) out[o < cap ? o : cap - 1] = '\0';
    return o;
}

void wh_static_plan_file(wh_static_root *root, const wh_static_req *req, const wh_static_file *f,
                         bool fd_owned, wh_static_plan *plan)
{
    plan_init(plan);
    plan->fd = f->fd;
    plan->fd_owned = fd_owned;
    plan->head_only = method_is(req->method, "HEAD");
    if (!plan->head_only && !method_is(req->method, "GET")) {
        wh_static_plan_error(plan, 405);
        return;
    }
    if (f->is_dir) {
        char url[WH_STATIC_PATH_MAX + 2];
        snprintf(url, sizeof url, "/%s%s", f->rel, f->rel[0] ? "/" : "");
        char *html;
        size_t len;
        if (wh_static_listing(f->fd, url, root->opts.show_dotfiles, &html, &len) != 0) {
            wh_static_plan_error(plan, 500);
            return;
        }
        if (plan->fd_owned) close(plan->fd);
        plan->fd = -1;
        plan->status = 200;
        plan->body = html;
        plan->body_len = len;
        plan->length = len;
        plan->content_type = "text/html; charset=utf-8";
        return;
    }
    const struct stat *st = &f->st;
    plan->status = 200;
    plan->content_type = wh_mime_lookup(root->mime, f->rel);
    plan->cache_control = root->opts.cache_control;
    plan->mtime = st->st_mtim.tv_sec;
    plan->accept_ranges = true;
    unsigned enc = WH_ENC_IDENTITY;
    struct stat est;
    if (root->opts.precompressed) {
        /* Vary on every file response, not only when a sibling exists: a
         * cache must not hand our identity body to a gzip-capable client
         * either way, and probing for siblings without need costs opens. */
        plan->vary = true;
        bool prefer_br;
        unsigned acc = wh_static_accept_encoding(req->accept_encoding, &prefer_br);
        if (acc) {
            int efd = wh_static_open_encoded(root, f->rel, st, acc, prefer_br, &enc, &est);
            if (efd >= 0) {
                if (plan->fd_owned) close(plan->fd);
                plan->fd = efd;
                plan->fd_owned = true;
                plan->content_encoding = enc == WH_ENC_BR ? "br" : "gzip";
                st = &est;
            }
        }
    }
    wh_static_etag(&f->st, enc, plan->etag, sizeof plan->etag);
    wh_static_date_format(plan->mtime, plan->last_modified, sizeof plan->last_modified);
    int c = wh_static_conditional(req, plan->etag, plan->mtime);
    if (c == 304) {
        if (plan->fd_owned) close(plan->fd);
        plan->fd = -1;
        plan->status = 304;
        plan->length = 0;
        return;
    }
    if (c == 412) {
        wh_static_plan_error(plan, 412);
        return;
    }
    uint64_t size = (uint64_t)st->st_size, start = 0, len = size;
    int r = 200;
    if (req->range.p && wh_static_if_range(req->if_range, plan->etag, plan->mtime))
        r = wh_static_range(req->range, size, &start, &len);
    if (r == 416) {
        wh_static_plan_error(plan, 416);
        plan->accept_ranges = true;
        snprintf(plan->content_range, sizeof plan->content_range, "bytes */%llu",
                 (unsigned long long)size);
        return;
    }
    if (r == 206) {
        plan->status = 206;
        snprintf(plan->content_range, sizeof plan->content_range, "bytes %llu-%llu/%llu",
                 (unsigned long long)start, (unsigned long long)(start + len - 1),
                 (unsigned long long)size);
    }
    plan->offset = (off_t)start;
    plan->length = len;
}

void wh_static_plan_make(wh_static_root *root, const wh_static_req *req, wh_static_plan *plan)
{
    plan_init(plan);
    plan->head_only = method_is(req->method, "HEAD");
    if (!plan->head_only && !method_is(req->method, "GET")) {
        wh_static_plan_error(plan, 405);
        return;
    }
    char rel[WH_STATIC_PATH_MAX];
    bool slash;
    int st = wh_static_clean_path(req->path.p, req->path.len, root->opts.show_dotfiles, rel,
                                  sizeof rel, &slash);
    if (st != 200) {
        wh_static_plan_error(plan, st);
        return;
    }
    wh_static_file f;
    st = wh_static_resolve(root, rel, slash, &f);
    if (st == 301) {
        /* Built from the cleaned path, never the raw one: "//evil.example/x"
         * must not become a protocol-relative redirect to another host. */
        char enc[sizeof plan->location];
        wh_url_encode(rel, enc, sizeof enc - 8);
        wh_static_plan_error(plan, 301);
        int n = snprintf(plan->location, sizeof plan->location, "/%s/%s%.*s", enc,
                         req->query.len ? "?" : "", (int)req->query.len,
                         req->query.p ? req->query.p : "");
        if (n >= (int)sizeof plan->location) wh_static_plan_error(plan, 414);
        return;
    }
    if (st != 200) {
        wh_static_plan_error(plan, st);
        return;
    }
    bool head = plan->head_only;
    wh_static_plan_file(root, req, &f, true, plan);
    plan->head_only = head;
}

int wh_static_format_head(const wh_static_plan *plan, bool keepalive, char *buf, size_t cap)
{
    char date[32];
    wh_static_date_format(time(NULL), date, sizeof date);
    size_t o = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__);                            \
        if (n_ < 0 || o + (size_t)n_ >= cap) return -ENOSPC;                                       \
        o += (size_t)n_;                                                                           \
    } while (0)
    ADD("HTTP/1.1 %d %s\r\nDate: %s\r\nServer: wharf\r\n", plan->status, reason(plan->status),
        date);
    if (plan->status != 304) {
        ADD("Content-Length: %llu\r\n", (unsigned long long)plan->length);
        if (plan->content_type) ADD("Content-Type: %s\r\n", plan->content_type);
    }
    if (plan->content_encoding) ADD("Content-Encoding: %s\r\n", plan->content_encoding);
    if (plan->vary) ADD("Vary: Accept-Encoding\r\n");
    if (plan->etag[0]) ADD("ETag: %s\r\n", plan->etag);
    if (plan->last_modified[0]) ADD("Last-Modified: %s\r\n", plan->last_modified);
    if (plan->accept_ranges) ADD("Accept-Ranges: bytes\r\n");
    if (plan->content_range[0]) ADD("Content-Range: %s\r\n", plan->content_range);
    if (plan->location[0]) ADD("Location: %s\r\n", plan->location);
    if (plan->cache_control && (plan->status == 200 || plan->status == 206 || plan->status == 304))
        ADD("Cache-Control: %s\r\n", plan->cache_control);
    if (plan->status == 405) ADD("Allow: GET, HEAD\r\n");
    ADD("Connection: %s\r\n\r\n", keepalive ? "keep-alive" : "close");
#undef ADD
    return (int)o;
}
