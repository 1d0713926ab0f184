/* HTTP/1.1 request- and response-head parser and chunked decoder (RFC 9112,
 * RFC 9110). Pure functions: see wharf/http_parse.h for the contract and the
 * bare-LF policy.
 *
 * Limits are checked left to right as bytes are scanned ("need byte j; j is
 * past the limit -> 414/431"), so a prefix that already violates a limit
 * fails the same way however the bytes were split. */
#include "http/parser.h"

#include <string.h>

#include "wharf/http_data.h"

/* Character classes, one table (RFC 9110 §5.6.2, §5.5; RFC 3986). */
enum {
    C_TCHAR = WH__HTTP_C_TCHAR, /* token character */
    C_TARGET = 2,               /* allowed in a request-target: VCHAR (0x21-0x7e) */
    C_VALUE = 4,                /* field-vchar: VCHAR / obs-text */
    C_HOST = 8,                 /* uri-host [":" port]: unreserved / sub-delims / ":" "[" "]" "%" */
    C_DOTPCT = 16,              /* '.' or '%': after a '/', a dot-segment may start here */
    C_SLASH = 32,               /* '/' */
    C_QMARK = 64,               /* '?': the request-target loop notes the first */
};

const unsigned char wh__http_cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    0,  15, 6,  7,  15, 31, 15, 15, 14, 14, 15, 15, 14, 15, 31, 38, /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 6,  14, 6,  70, /* 0x30 */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 6,  14, 7,  15, /* 0x50 */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x80 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x90 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xa0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xb0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xc0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xd0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xe0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xf0 */
};

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

bool wh_str_ieq(wh_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n) return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i])) return false;
    return true;
}

void wh_http_limits_init(wh_http_limits *lim)
{
    lim->max_request_line = 8192;
    lim->max_header_bytes = 16384;
    lim->max_headers = 64;
    lim->max_body = 1u << 20;
}

static int fail(wh_http_parsed *o, int status, const char *why)
{
    o->status = status;
    o->error = why;
    return WH_HTTP_ERROR;
}

wh_str wh_http_parsed_header(const wh_http_parsed *req, const char *name)
{
    for (unsigned i = 0; i < req->nheaders; i++)
        if (wh_str_ieq(req->headers[i].name, name)) return req->headers[i].value;
    return (wh_str){NULL, 0};
}

static uint8_t method_id(const char *m, size_t n)
{
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3)) return WH_HTTP_M_GET;
        if (!memcmp(m, "PUT", 3)) return WH_HTTP_M_PUT;
        break;
    case 4:
        if (!memcmp(m, "HEAD", 4)) return WH_HTTP_M_HEAD;
        if (!memcmp(m, "POST", 4)) return WH_HTTP_M_POST;
        break;
    case 5:
        if (!memcmp(m, "TRACE", 5)) return WH_HTTP_M_TRACE;
        if (!memcmp(m, "PATCH", 5)) return WH_HTTP_M_PATCH;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6)) return WH_HTTP_M_DELETE;
        break;
    case 7:
        if (!memcmp(m, "CONNECT", 7)) return WH_HTTP_M_CONNECT;
        if (!memcmp(m, "OPTIONS", 7)) return WH_HTTP_M_OPTIONS;
        break;
    }
    return WH_HTTP_M_OTHER;
}

/* 1 for a "." segment, 2 for "..", else 0. A dot may be percent-encoded:
 * %2E is an unreserved character, equivalent to "." (RFC 3986 §2.3, §6.2.2.2),
 * and a hop that decodes it before resolving must not see a segment we kept. */
static int dot_segment(const char *s, size_t n)
{
    int dots = 0;
    size_t k = 0;
    while (k < n) {
        if (s[k] == '.')
            k++;
        else if (s[k] == '%' && n - k >= 3 && s[k + 1] == '2' && (s[k + 2] | 0x20) == 'e')
            k += 3;
        else
            return 0;
        if (++dots > 2) return 0;
    }
    return dots;
}

/* End of the segment that starts after the '/' at p[i]. */
static size_t seg_end(const char *p, size_t n, size_t i)
{
    const char *e = memchr(p + i + 1, '/', n - i - 1);
    return e ? (size_t)(e - p) : n;
}

/* remove_dot_segments (RFC 3986 §5.2.4) on o->path, which starts with '/'.
 * §5.2.4 drops a ".." at the root (§5.4.2); we refuse it instead: no client
 * that resolves references sends one, and clamping would quietly serve
 * another resource than the one the sender named. The result goes to
 * o->path_buf; a path without dot-segments stays a slice of the target. */
static int remove_dot_segments(wh_http_parsed *o)
{
    const char *p = o->path.p;
    size_t n = o->path.len, i = 0;
    while (i < n) {
        size_t j = seg_end(p, n, i);
        if (dot_segment(p + i + 1, j - i - 1)) break;
        i = j;
    }
    if (i == n) return 0;
    /* Removal only shrinks the path ("/." -> "/" at worst), so n bytes suffice. */
    if (n > sizeof o->path_buf) return fail(o, 414, "path with dot-segments too long");
    char *out = o->path_buf;
    memcpy(out, p, i);
    size_t w = i;
    while (i < n) {
        size_t j = seg_end(p, n, i);
        int d = dot_segment(p + i + 1, j - i - 1);
        if (d == 0) {
            memcpy(out + w, p + i, j - i);
            w += j - i;
        } else {
            if (d == 2) {
                if (w == 0) return fail(o, 400, "path climbs above the root");
                while (out[w - 1] != '/')
                    w--;
                w--;
            }
            /* A final "." or ".." names a directory: keep its slash. */
            if (j == n) out[w++] = '/';
        }
        i = j;
    }
    o->path = (wh_str){out, w};
    return 0;
}

/* Splits an origin-form or absolute-form target into path and query;
 * checks the authority-form and asterisk-form rules (RFC 9112 §3.2).
 * dots: the target has a '/' followed by '.' or '%' somewhere; q: its first
 * '?' (NULL: none), found by the scan that delimited it. */
static int classify_target(wh_http_parsed *o, bool dots, const char *q)
{
    const char *t = o->target.p;
    size_t n = o->target.len;
    static const char slash[] = "/";

    if (o->method_id == WH_HTTP_M_CONNECT) {
        /* authority-form = uri-host ":" port, and only that (§3.2.3). */
        size_t colon = n;
        for (size_t i = 0; i < n; i++) {
            if (!(wh__http_cls[(unsigned char)t[i]] & C_HOST))
                return fail(o, 400, "invalid authority-form target");
            if (t[i] == ':') colon = i;
        }
        if (colon == 0 || colon + 1 >= n) return fail(o, 400, "CONNECT needs host:port");
        for (size_t i = colon + 1; i < n; i++)
            if (t[i] < '0' || t[i] > '9') return fail(o, 400, "invalid port");
        o->target_form = WH_HTTP_T_AUTHORITY;
        o->path = o->target;
        o->query = (wh_str){t + n, 0};
        return 0;
    }
    if (t[0] == '*' && n == 1) {
        if (o->method_id != WH_HTTP_M_OPTIONS)
            return fail(o, 400, "asterisk-form only with OPTIONS");
        o->target_form = WH_HTTP_T_ASTERISK;
        o->path = o->target;
        o->query = (wh_str){t + n, 0};
        return 0;
    }
    size_t pstart;
    if (t[0] == '/') {
        o->target_form = WH_HTTP_T_ORIGIN;
        pstart = 0;
    } else {
        /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
        size_t i = 0;
        if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
            return fail(o, 400, "invalid request-target");
        while (i < n && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
                         (t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.'))
            i++;
        if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
            return fail(o, 400, "invalid absolute-form target");
        i += 3;
        size_t a0 = i;
        while (i < n && t[i] != '/' && t[i] != '?') {
            if (!(wh__http_cls[(unsigned char)t[i]] & C_HOST) && t[i] != '@')
                return fail(o, 400, "invalid authority");
            i++;
        }
        if (i == a0) return fail(o, 400, "empty authority");
        o->target_form = WH_HTTP_T_ABSOLUTE;
        pstart = i;
    }
    /* No '?' before pstart: a scheme has none, an authority stops at it. */
    size_t pend = q ? (size_t)(q - t) : n;
    o->query = q ? (wh_str){q + 1, n - pend - 1} : (wh_str){t + n, 0};
    if (pend == pstart) {
        o->path = (wh_str){slash, 1};
        return 0;
    }
    o->path = (wh_str){t + pstart, pend - pstart};
    return dots ? remove_dot_segments(o) : 0;
}

/* Walks a comma-separated list (RFC 9110 §5.6.1), calling fn on each
 * non-empty element with surrounding whitespace removed. */
static int each_elem(wh_str v, int (*fn)(wh_str e, void *arg), void *arg)
{
    size_t i = 0;
    while (i <= v.len) {
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t e = i;
        while (s < e && (v.p[s] == ' ' || v.p[s] == '\t'))
            s++;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e > s) {
            int rc = fn((wh_str){v.p + s, e - s}, arg);
            if (rc) return rc;
        }
        i++;
    }
    return 0;
}

struct sem {
    unsigned cl_count, host_count, chunked_count, te_elems;
    bool te_seen, te_last_chunked, te_unknown, te_other, te_bad;
    bool conn_close, conn_keepalive, conn_upgrade, upgrade_field;
    bool expect_continue, expect_other;
};

static int te_elem(wh_str e, void *arg)
{
    struct sem *s = arg;
    s->te_elems++;
    s->te_last_chunked = false;
    if (wh_str_ieq(e, "chunked")) {
        s->chunked_count++;
        s->te_last_chunked = true;
        return 0;
    }
    /* transfer-coding = token *( OWS ";" OWS transfer-parameter ) */
    size_t k = 0;
    while (k < e.len && (wh__http_cls[(unsigned char)e.p[k]] & C_TCHAR))
        k++;
    if (k == 0 || (k < e.len && e.p[k] != ';' && e.p[k] != ' ' && e.p[k] != '\t')) s->te_bad = true;
    if (wh_str_ieq(e, "gzip") || wh_str_ieq(e, "x-gzip") || wh_str_ieq(e, "deflate") ||
        wh_str_ieq(e, "compress") || wh_str_ieq(e, "x-compress"))
        s->te_other = true; /* registered, but we do not decode it */
    else
        s->te_unknown = true;
    return 0;
}

static int conn_elem(wh_str e, void *arg)
{
    struct sem *s = arg;
    if (wh_str_ieq(e, "close"))
        s->conn_close = true;
    else if (wh_str_ieq(e, "keep-alive"))
        s->conn_keepalive = true;
    else if (wh_str_ieq(e, "upgrade"))
        s->conn_upgrade = true;
    return 0;
}

static int expect_elem(wh_str e, void *arg)
{
    struct sem *s = arg;
    if (wh_str_ieq(e, "100-continue"))
        s->expect_continue = true;
    else
        s->expect_other = true;
    return 0;
}

/* A field name (tchar only: field_lines checked it) equals lit, a lowercase
 * literal of letters and '-', ignoring case. Within tchar, | 0x20 changes
 * only letters, and no tchar becomes '-' under it (0x0d is not one), so this
 * is exact without wh_str_ieq's strlen and two-sided lowering: semantics
 * runs it for every field of every request. */
static inline bool name_is(wh_str n, const char *lit, size_t len)
{
    if (n.len != len) return false;
    for (size_t k = 0; k < len; k++)
        if (((unsigned char)n.p[k] | 0x20) != (unsigned char)lit[k]) return false;
    return true;
}

/* Framing and connection semantics of a complete head (RFC 9112 §6, §9). */
static int semantics(wh_http_parsed *o, const wh_http_limits *lim)
{
    struct sem s;
    memset(&s, 0, sizeof s);
    uint64_t cl = 0;

    for (unsigned i = 0; i < o->nheaders; i++) {
        wh_str n = o->headers[i].name, v = o->headers[i].value;
        switch (n.len) {
        case 4:
            if (name_is(n, "host", 4)) {
                s.host_count++;
                o->host = v;
                /* Four bytes per test (their classes ANDed): every request
                 * has a Host. */
                const unsigned char *h = (const unsigned char *)v.p;
                size_t k = 0;
                for (; k + 4 <= v.len; k += 4)
                    if (!(wh__http_cls[h[k]] & wh__http_cls[h[k + 1]] & wh__http_cls[h[k + 2]] &
                          wh__http_cls[h[k + 3]] & C_HOST))
                        return fail(o, 400, "invalid Host");
                for (; k < v.len; k++)
                    if (!(wh__http_cls[h[k]] & C_HOST)) return fail(o, 400, "invalid Host");
            }
            break;
        case 6:
            if (name_is(n, "expect", 6)) each_elem(v, expect_elem, &s);
            break;
        case 7:
            if (name_is(n, "upgrade", 7)) s.upgrade_field = true;
            break;
        case 10:
            if (name_is(n, "connection", 10)) each_elem(v, conn_elem, &s);
            break;
        case 14:
            if (name_is(n, "content-length", 14)) {
                /* A list of equal values is allowed by RFC 9110 §8.6, but
                 * any repetition is where smuggling hides: reject it. */
                if (++s.cl_count > 1) return fail(o, 400, "repeated Content-Length");
                if (v.len == 0 || v.len > 19) return fail(o, 400, "invalid Content-Length");
                cl = 0;
                for (size_t k = 0; k < v.len; k++) {
                    if (v.p[k] < '0' || v.p[k] > '9') return fail(o, 400, "invalid Content-Length");
                    cl = cl * 10 + (uint64_t)(v.p[k] - '0'); /* 19 digits fit */
                }
            }
            break;
        case 17:
            if (name_is(n, "transfer-encoding", 17)) {
                s.te_seen = true;
                each_elem(v, te_elem, &s);
            }
            break;
        }
    }

    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1; never more than one. */
    if (s.host_count > 1) return fail(o, 400, "more than one Host");
    if (o->version == 11 && s.host_count == 0) return fail(o, 400, "missing Host");
    o->has_host = s.host_count == 1;

    if (s.te_seen) {
        /* RFC 9112 §6.1: TE in 1.0 means faulty framing; TE with CL is a
         * smuggling attempt (§6.3 item 3) - we reject instead of guessing. */
        if (o->version == 10) return fail(o, 400, "Transfer-Encoding in HTTP/1.0");
        if (s.cl_count) return fail(o, 400, "Content-Length with Transfer-Encoding");
        if (s.te_elems == 0 || s.te_bad) return fail(o, 400, "invalid Transfer-Encoding");
        if (s.te_unknown) return fail(o, 501, "unknown transfer coding");
        /* §6.3 item 4: final coding must be chunked, applied once. */
        if (!s.te_last_chunked || s.chunked_count != 1)
            return fail(o, 400, "chunked is not the final transfer coding");
        if (s.te_other) return fail(o, 501, "transfer coding not implemented");
        o->framing = WH_HTTP_BODY_CHUNKED;
    } else if (s.cl_count) {
        if (lim->max_body && cl > lim->max_body)
            return fail(o, 413, "Content-Length over the limit");
        o->content_length = cl;
        o->framing = cl ? WH_HTTP_BODY_LENGTH : WH_HTTP_BODY_NONE;
    }

    /* RFC 9110 §10.1.1: ignore Expect in HTTP/1.0; anything but
     * 100-continue gets 417. */
    if (o->version == 11) {
        if (s.expect_other) return fail(o, 417, "unsupported expectation");
        o->expect_continue = s.expect_continue;
    }
    /* RFC 9112 §9.3: persistence. */
    if (o->version == 11)
        o->keep_alive = !s.conn_close;
    else
        o->keep_alive = s.conn_keepalive && !s.conn_close;
    o->upgrade = s.conn_upgrade && s.upgrade_field;
    return 0;
}

/* Byte j is needed: past the limit -> error, past the data -> incomplete.
 * Errors go through ERR(status, why), defined by each parsing function. */
#define NEED(j, limit, st, why)                                                                    \
    do {                                                                                           \
        if ((j) >= len) return WH_HTTP_INCOMPLETE;                                                 \
        if ((j) >= (limit)) return ERR((st), (why));                                               \
    } while (0)
#define NEED_RL(j) NEED(j, rlim, 414, "request line too long")
#define NEED_HB(j) NEED(j, hlim, 431, "header section too large")
#define NEED_ANY(j)                                                                                \
    do {                                                                                           \
        if ((j) >= len) return WH_HTTP_INCOMPLETE;                                                 \
    } while (0)

static size_t sat_add(size_t a, size_t b)
{
    return a + b < a ? SIZE_MAX : a + b;
}

static int set_err(int *st, const char **why, int status, const char *w)
{
    *st = status;
    *why = w;
    return WH_HTTP_ERROR;
}

/* *( field-line CRLF ) CRLF from buf[*ip] (RFC 9112 §5), the same for
 * requests and responses. Returns 0 with *ip past the blank line and *nh
 * fields in hdr[], WH_HTTP_INCOMPLETE, or WH_HTTP_ERROR with *st and *why.
 * Inlined: it is the hot loop of the request parser. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))
ALWAYS_INLINE int field_lines(const char *buf, size_t len, size_t *ip, size_t hlim, unsigned maxh,
                              wh_http_header *hdr, unsigned *nh, int *st, const char **why)
{
#define ERR(status, w) set_err(st, why, status, w)
    const unsigned char *u = (const unsigned char *)buf;
    size_t i = *ip;
    unsigned n = 0;
    /* NEED_HB(i) can only fire from here on: the inner loops compare once
     * per byte and let NEED_HB tell "incomplete" from "too large". */
    size_t hend = len < hlim ? len : hlim;
    for (;;) {
        NEED_HB(i);
        unsigned char c = u[i];
        if (c == '\r') {
            NEED_HB(i + 1);
            if (u[i + 1] != '\n') return ERR(400, "bare CR");
            i += 2;
            break;
        }
        if (c == ' ' || c == '\t') return ERR(400, "obs-fold or whitespace before field line");
        if (n == maxh) return ERR(431, "too many header fields");
        size_t n0 = i;
        for (;;) {
            if (__builtin_expect(i >= hend, 0)) NEED_HB(i);
            if (!(wh__http_cls[u[i]] & C_TCHAR)) break;
            i++;
        }
        if (u[i] != ':')
            return ERR(400, (u[i] == ' ' || u[i] == '\t') ? "whitespace before colon"
                            : u[i] == '\n'                ? "bare LF"
                                                          : "invalid field name");
        if (i == n0) return ERR(400, "empty field name");
        size_t n1 = i++;
        for (;;) {
            if (__builtin_expect(i >= hend, 0)) NEED_HB(i);
            if (u[i] != ' ' && u[i] != '\t') break;
            i++;
        }
        size_t v0 = i, v1 = i;
        for (;;) {
            /* A run of field-vchars in a tight loop (most values have no
             * inner whitespace); it ends at a byte to look at or at hend,
             * where NEED_HB answers as it would have for that byte. */
            size_t r0 = i;
            while (i < hend && (wh__http_cls[u[i]] & C_VALUE))
                i++;
            if (i > r0) v1 = i;
            if (__builtin_expect(i >= hend, 0)) NEED_HB(i);
            c = u[i];
            if (c != ' ' && c != '\t') break;
            i++;
        }
        if (c == '\r') {
            NEED_HB(i + 1);
            if (u[i + 1] != '\n') return ERR(400, "bare CR");
        } else {
            return ERR(400, c == '\n' ? "bare LF" : "control character in field value");
        }
        hdr[n].name = (wh_str){buf + n0, n1 - n0};
        hdr[n].value = (wh_str){buf + v0, v1 - v0};
        n++;
        i += 2;
    }
    *ip = i;
    *nh = n;
    return 0;
#undef ERR
}

static int parse_full(const char *buf, size_t len, wh_http_parsed *o, const wh_http_limits *lim)
{
#define ERR(status, w) fail(o, status, w)
    const unsigned char *u = (const unsigned char *)buf;
    size_t rlim = lim->max_request_line; /* content bytes of the line: index < rlim */
    size_t i = 0;

    /* RFC 9112 §2.2: ignore empty lines before the request line (they
     * count against the request-line limit, so they cannot go on forever). */
    while (i < len && u[i] == '\r') {
        NEED_ANY(i + 1);
        if (u[i + 1] != '\n') return fail(o, 400, "bare CR");
        i += 2;
        if (i > rlim) return fail(o, 414, "request line too long");
    }

    /* method SP; NEED_RL(i) can only fire from rend on (see field_lines) */
    size_t rend = len < rlim ? len : rlim;
    size_t m0 = i;
    for (;;) {
        if (__builtin_expect(i >= rend, 0)) NEED_RL(i);
        if (!(wh__http_cls[u[i]] & C_TCHAR)) break;
        i++;
    }
    if (u[i] != ' ' || i == m0) return fail(o, 400, u[i] == '\n' ? "bare LF" : "invalid method");
    o->method = (wh_str){buf + m0, i - m0};
    o->method_id = method_id(buf + m0, i - m0);
    i++;

    /* request-target SP: exactly one SP on each side (RFC 9112 §3). On the
     * way, note a '/' followed by '.' or '%': only then can the path hold a
     * dot-segment, so paths without one cost no second look. */
    size_t t0 = i;
    unsigned dots = 0;
    const char *qmark = NULL; /* the first '?' of the target */
    for (;;) {
        /* Target bytes other than '/' in a tight loop; then the byte that
         * stopped it: a '/' (note what follows it), the end, or hend. */
        while (i < rend && (wh__http_cls[u[i]] & (C_TARGET | C_SLASH | C_QMARK)) == C_TARGET)
            i++;
        if (__builtin_expect(i >= rend, 0)) NEED_RL(i);
        unsigned k = wh__http_cls[u[i]];
        if (!(k & C_TARGET)) break;
        if (k & C_QMARK) {
            if (!qmark) qmark = buf + i;
        } else if (i + 1 < len) {
            dots |= wh__http_cls[u[i + 1]];
        }
        i++;
    }
    if (u[i] != ' ' || i == t0) return fail(o, 400, "invalid request-target");
    o->target = (wh_str){buf + t0, i - t0};
    i++;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (§2.3). */
    static const char pat[] = "HTTP/";
    if (i + 8 <= len && i + 8 <= rlim && memcmp(u + i, pat, 5) == 0 &&
        (unsigned)(u[i + 5] - '0') < 10 && u[i + 6] == '.' && (unsigned)(u[i + 7] - '0') < 10) {
        /* All eight bytes are here and within the limit, so the loop below
         * would only compare them: the common case in one go. */
        i += 8;
    } else {
        for (int k = 0; k < 8; k++, i++) {
            NEED_RL(i);
            unsigned char c = u[i];
            bool ok = k < 5    ? c == (unsigned char)pat[k]
                      : k == 6 ? c == '.'
                               : (c >= '0' && c <= '9');
            if (!ok) return fail(o, 400, "invalid HTTP-version");
        }
    }
    NEED_ANY(i);
    if (u[i] != '\r') return fail(o, 400, u[i] == '\n' ? "bare LF" : "invalid request line");
    NEED_ANY(i + 1);
    if (u[i + 1] != '\n') return fail(o, 400, "bare CR");
    unsigned char major = u[i - 3], minor = u[i - 1];
    i += 2;
    /* RFC 9110 §2.5: a higher minor version of 1.x is understood as the
     * highest 1.x we speak; another major version is not ours to guess. */
    if (major != '1') return fail(o, 505, "HTTP version not supported");
    o->version = minor == '0' ? 10 : 11;

    size_t hlim = sat_add(i, lim->max_header_bytes);
    unsigned maxh = lim->max_headers < WH_HTTP_MAX_HEADERS ? lim->max_headers : WH_HTTP_MAX_HEADERS;
    int st = 0;
    const char *why = NULL;
    int rc = field_lines(buf, len, &i, hlim, maxh, o->headers, &o->nheaders, &st, &why);
    if (rc == WH_HTTP_ERROR) return fail(o, st, why);
    if (rc) return rc;
    o->head_len = i;
    rc = classify_target(o, dots & C_DOTPCT, qmark);
    if (rc) return rc;
    rc = semantics(o, lim);
    if (rc) return rc;
    return (int)i;
#undef ERR
}

static void reset(wh_http_parsed *o)
{
    /* Only the scalar part: headers[] is filled as parsed. */
    memset(o, 0, offsetof(wh_http_parsed, headers));
}

int wh_http_parse_request_from(const char *buf, size_t len, size_t last_len, wh_http_parsed *out,
                               const wh_http_limits *lim)
{
    wh_http_limits def;
    if (!lim) {
        wh_http_limits_init(&def);
        lim = &def;
    }
    /* The head length must fit the int return value. */
    if (len > (size_t)0x7fffffff) len = 0x7fffffff;
    /* Fast reject: nothing new that could change the answer. A full parse
     * can only decide something new when a line ended (an LF arrived) or
     * the current line may have crossed a limit. */
    if (last_len > 0 && last_len < len && !memchr(buf + last_len, '\n', len - last_len)) {
        size_t i = 0;
        while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
            i += 2;
        const char *lf = memchr(buf + i, '\n', len - i);
        if (!lf) {
            if (len <= lim->max_request_line) return WH_HTTP_INCOMPLETE;
        } else {
            size_t h0 = (size_t)(lf - buf) + 1;
            if (len - h0 <= lim->max_header_bytes) return WH_HTTP_INCOMPLETE;
        }
    }
    reset(out);
    int rc = parse_full(buf, len, out, lim);
    if (rc == WH_HTTP_INCOMPLETE) reset(out);
    return rc;
}

int wh_http_parse_request(const char *buf, size_t len, wh_http_parsed *out,
                          const wh_http_limits *lim)
{
    return wh_http_parse_request_from(buf, len, 0, out, lim);
}

/* ---- responses -------------------------------------------------------- */

static int rfail(wh_http_parsed_response *o, const char *why)
{
    o->error = why;
    return WH_HTTP_ERROR;
}

/* Framing and persistence of a response head (RFC 9112 §6.3, §9.3). */
static int response_semantics(wh_http_parsed_response *o)
{
    struct sem s;
    memset(&s, 0, sizeof s);
    uint64_t cl = 0;
    for (unsigned i = 0; i < o->nheaders; i++) {
        wh_str n = o->headers[i].name, v = o->headers[i].value;
        if (n.len == 10 && wh_str_ieq(n, "connection")) {
            each_elem(v, conn_elem, &s);
        } else if (n.len == 14 && wh_str_ieq(n, "content-length")) {
            /* §6.3 item 5: a list or a repetition is unrecoverable. */
            if (++s.cl_count > 1) return rfail(o, "repeated Content-Length");
            if (v.len == 0 || v.len > 19) return rfail(o, "invalid Content-Length");
            for (size_t k = 0; k < v.len; k++) {
                if (v.p[k] < '0' || v.p[k] > '9') return rfail(o, "invalid Content-Length");
                cl = cl * 10 + (uint64_t)(v.p[k] - '0');
            }
        } else if (n.len == 17 && wh_str_ieq(n, "transfer-encoding")) {
            s.te_seen = true;
            each_elem(v, te_elem, &s);
        }
    }
    if (s.te_seen) {
        /* §6.1: a sender never sends both, nor TE in 1.0, nor chunked twice. */
        if (s.cl_count) return rfail(o, "Content-Length with Transfer-Encoding");
        if (o->version == 10) return rfail(o, "Transfer-Encoding in HTTP/1.0");
        if (s.te_elems == 0 || s.te_bad || s.chunked_count > 1)
            return rfail(o, "invalid Transfer-Encoding");
        /* §6.3 item 4: chunked not last -> the body runs to the close. */
        o->framing = s.te_last_chunked ? WH_HTTP_BODY_CHUNKED : WH_HTTP_BODY_CLOSE;
    } else if (s.cl_count) {
        o->content_length = cl;
        o->framing = cl ? WH_HTTP_BODY_LENGTH : WH_HTTP_BODY_NONE;
    } else {
        o->framing = WH_HTTP_BODY_CLOSE; /* §6.3 item 8 */
    }
    /* §6.3 item 1: whatever the fields say, these have no content. */
    if (o->status < 200 || o->status == 204 || o->status == 304) o->framing = WH_HTTP_BODY_NONE;
    if (o->version == 11)
        o->keep_alive = !s.conn_close;
    else
        o->keep_alive = s.conn_keepalive && !s.conn_close;
    if (o->framing == WH_HTTP_BODY_CLOSE) o->keep_alive = false;
    return 0;
}

int wh_http_parse_response(const char *buf, size_t len, wh_http_parsed_response *o,
                           const wh_http_limits *lim)
{
#define ERR(status, w) rfail(o, w)
    wh_http_limits def;
    if (!lim) {
        wh_http_limits_init(&def);
        lim = &def;
    }
    if (len > (size_t)0x7fffffff) len = 0x7fffffff;
    memset(o, 0, offsetof(wh_http_parsed_response, headers));
    const unsigned char *u = (const unsigned char *)buf;
    size_t rlim = lim->max_request_line, i = 0;

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] (§4) */
    static const char pat[] = "HTTP/1.";
    for (; i < 7; i++) {
        NEED_RL(i);
        if (u[i] != (unsigned char)pat[i]) return rfail(o, "invalid HTTP-version");
    }
    NEED_RL(i);
    if (u[i] < '0' || u[i] > '9') return rfail(o, "invalid HTTP-version");
    o->version = u[i] == '0' ? 10 : 11;
    i++;
    NEED_RL(i);
    if (u[i] != ' ') return rfail(o, "invalid status line");
    i++;
    for (int k = 0; k < 3; k++, i++) {
        NEED_RL(i);
        if (u[i] < '0' || u[i] > '9') return rfail(o, "invalid status code");
        o->status = o->status * 10 + (u[i] - '0');
    }
    if (o->status < 100) return rfail(o, "invalid status code");
    NEED_RL(i);
    if (u[i] != ' ') return rfail(o, "invalid status line");
    size_t r0 = ++i;
    for (;;) {
        NEED_RL(i);
        if (!(wh__http_cls[u[i]] & C_VALUE) && u[i] != ' ' && u[i] != '\t') break;
        i++;
    }
    if (u[i] != '\r') return rfail(o, u[i] == '\n' ? "bare LF" : "control character in reason");
    NEED_ANY(i + 1);
    if (u[i + 1] != '\n') return rfail(o, "bare CR");
    o->reason = (wh_str){buf + r0, i - r0};
    i += 2;

    size_t hlim = sat_add(i, lim->max_header_bytes);
    unsigned maxh = lim->max_headers < WH_HTTP_MAX_HEADERS ? lim->max_headers : WH_HTTP_MAX_HEADERS;
    int st = 0;
    int rc = field_lines(buf, len, &i, hlim, maxh, o->headers, &o->nheaders, &st, &o->error);
    if (rc) return rc;
    o->head_len = i;
    rc = response_semantics(o);
    if (rc) return rc;
    return (int)i;
#undef ERR
}

/* ---- chunked ---------------------------------------------------------- */

enum {
    CK_SIZE0 = 0, /* first hex digit of a chunk-size */
    CK_SIZE,      /* more hex digits, BWS, ';' or CR */
    CK_BWS,       /* whitespace after the size: more BWS or ';' */
    CK_EXT,       /* chunk-ext until CR */
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TR_START, /* start of a trailer line, or CR of the final CRLF */
    CK_TR_NAME,
    CK_TR_VALUE,
    CK_TR_LF,
    CK_END_LF,
    CK_DONE,
};

#define CK_MAX_EXT     4096 /* bytes of chunk extensions per chunk */
#define CK_MAX_TRAILER 8192 /* bytes of trailer section */

void wh_http_chunked_init(wh_http_chunked *d, uint64_t max_body)
{
    memset(d, 0, sizeof *d);
    d->max_body = max_body;
}

/* One state machine over the chunked coding (size, extension, data, CRLF,
 * trailers), kept in one switch so that any state resumes where the last
 * piece ended and the in-place copy stays in one loop; hence its length. */
int wh_http_chunked_decode(wh_http_chunked *d, char *buf, size_t len, size_t *in_pos,
                           size_t *out_pos)
{
    size_t in = *in_pos, out = *out_pos;
    int rc = WH_HTTP_INCOMPLETE;

    if (d->status) return WH_HTTP_ERROR;
    while (in < len) {
        unsigned char c = (unsigned char)buf[in];
        switch (d->state) {
        case CK_SIZE0: {
            int h = wh_http_hex_digit(c);
            if (h < 0) goto bad;
            d->remaining = (uint64_t)h;
            d->state = CK_SIZE;
            in++;
            break;
        }
        case CK_SIZE: {
            int h = wh_http_hex_digit(c);
            if (h >= 0) {
                if (d->remaining > (UINT64_MAX >> 4)) goto bad; /* chunk-size overflow */
                d->remaining = (d->remaining << 4) | (uint64_t)h;
                in++;
                break;
            }
            if (c == ' ' || c == '\t') {
                d->state = CK_BWS;
            } else if (c == ';') {
                d->state = CK_EXT;
                d->aux = 0;
            } else if (c == '\r') {
                d->state = CK_SIZE_LF;
            } else {
                goto bad;
            }
            in++;
            break;
        }
        case CK_BWS:
            if (c == ';') {
                d->state = CK_EXT;
                d->aux = 0;
            } else if (c != ' ' && c != '\t') {
                goto bad;
            }
            in++;
            break;
        case CK_EXT:
            /* chunk-ext (RFC 9112 §7.1.1): we ignore extensions, but they
             * may hold no control characters and are bounded. */
            if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (!(wh__http_cls[c] & C_VALUE) && c != ' ' && c != '\t')
                goto bad;
            else if (++d->aux > CK_MAX_EXT)
                goto bad;
            in++;
            break;
        case CK_SIZE_LF:
            if (c != '\n') goto bad;
            in++;
            if (d->remaining == 0) {
                d->state = CK_TR_START;
                d->aux = 0;
                break;
            }
            if (d->max_body ? d->remaining > d->max_body - d->total
                            : d->remaining > UINT64_MAX - d->total) {
                d->status = d->max_body ? 413 : 400;
                goto fail;
            }
            d->state = CK_DATA;
            break;
        case CK_DATA: {
            size_t avail = len - in;
            size_t n = d->remaining < avail ? (size_t)d->remaining : avail;
            if (out != in) memmove(buf + out, buf + in, n);
            in += n;
            out += n;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0) d->state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
            if (c != '\r') goto bad;
            d->state = CK_DATA_LF;
            in++;
            break;
        case CK_DATA_LF:
            if (c != '\n') goto bad;
            d->state = CK_SIZE0;
            in++;
            break;
        case CK_TR_START:
            if (c == '\r')
                d->state = CK_END_LF;
            else if (wh__http_cls[c] & C_TCHAR)
                d->state = CK_TR_NAME;
            else
                goto bad; /* obs-fold, whitespace, bare LF, junk */
            goto trailer_byte;
        case CK_TR_NAME:
            if (c == ':')
                d->state = CK_TR_VALUE;
            else if (!(wh__http_cls[c] & C_TCHAR))
                goto bad;
            goto trailer_byte;
        case CK_TR_VALUE:
            if (c == '\r')
                d->state = CK_TR_LF;
            else if (!(wh__http_cls[c] & C_VALUE) && c != ' ' && c != '\t')
                goto bad;
            goto trailer_byte;
        case CK_TR_LF:
            if (c != '\n') goto bad;
            d->state = CK_TR_START;
            goto trailer_byte;
        case CK_END_LF:
            if (c != '\n') goto bad;
            in++;
            d->state = CK_DONE;
            rc = 0;
            goto out;
        case CK_DONE:
            rc = 0;
            goto out;
        }
        continue;
    trailer_byte:
        if (++d->aux > CK_MAX_TRAILER) {
            d->status = 431;
            goto fail;
        }
        in++;
    }
    if (d->state == CK_DONE) rc = 0;
out:
    *in_pos = in;
    *out_pos = out;
    return rc;
bad:
    d->status = 400;
fail:
    *in_pos = in;
    *out_pos = out;
    return WH_HTTP_ERROR;
}
