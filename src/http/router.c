/* Request router: method + path with exact ("/a/b"), parameter
 * ("/users/:id") and prefix ("/static/" + "*") routes.
 *
 * Precedence: an exact route beats a parameter route, which beats a prefix
 * route; among prefixes the longest wins; otherwise the first added wins.
 * A path that matches only routes of other methods gets 405 with Allow
 * (RFC 9110 §15.5.6), or 204 + Allow for OPTIONS; HEAD falls back to a GET
 * route (§9.3.2: same header fields, the engine drops the body).
 *
 * Path parameters reach the handler percent-decoded. A parameter route
 * whose value has a malformed escape, or decodes to '/' or NUL, does not
 * match; when no other route matches either, the answer is 400 (414 when
 * the decoded values overflow the request's buffer), not 404 or 405. */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "wharf/http_data.h"

enum { RT_EXACT = 3, RT_PARAM = 2, RT_PREFIX = 1 };

typedef struct route {
    char *method; /* NULL = any */
    char *pattern;
    size_t plen; /* EXACT/PARAM: strlen; PREFIX: bytes before the '*' */
    int kind;
    wh_http_handler h;
    void *ud;
} route;

struct wh_router {
    route *v;
    size_t n, cap;
    /* The second path bytes a route can match ("/metrics": 'm'); any when
     * a route takes every one ("/:id", "/" + "*"). A path of two bytes or
     * more whose second byte no route has skips the scan (fallback or 404):
     * a server whose routes sit beside a file tree (wharfd's /metrics next
     * to the static files) answers most requests from the fallback. */
    uint64_t second[4];
    bool second_any;
    wh_http_handler fallback;
    void *fallback_ud;
};

int wh_router_new(wh_router **out)
{
    wh_router *rt = calloc(1, sizeof(*rt));
    if (!rt) return -ENOMEM;
    *out = rt;
    return 0;
}

void wh_router_free(wh_router *rt)
{
    if (!rt) return;
    for (size_t i = 0; i < rt->n; i++) {
        free(rt->v[i].method);
        free(rt->v[i].pattern);
    }
    free(rt->v);
    free(rt);
}

int wh_router_add(wh_router *rt, const char *method, const char *pattern, wh_http_handler h,
                  void *ud)
{
    if (!rt || !pattern || pattern[0] != '/' || !h) return -EINVAL;
    if (method)
        for (const char *m = method; *m; m++)
            if (!wh_http_is_tchar((unsigned char)*m)) return -EINVAL;
    size_t len = strlen(pattern);
    route r = {0};
    if (len >= 2 && pattern[len - 1] == '*' && pattern[len - 2] == '/') {
        r.kind = RT_PREFIX;
        r.plen = len - 1;
    } else if (strstr(pattern, "/:")) {
        r.kind = RT_PARAM;
        r.plen = len;
    } else {
        r.kind = RT_EXACT;
        r.plen = len;
    }
    if (rt->n == rt->cap) {
        size_t cap = rt->cap ? rt->cap * 2 : 8;
        route *v = realloc(rt->v, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        rt->v = v;
        rt->cap = cap;
    }
    r.pattern = strdup(pattern);
    r.method = method ? strdup(method) : NULL;
    if (!r.pattern || (method && !r.method)) {
        free(r.pattern);
        free(r.method);
        return -ENOMEM;
    }
    r.h = h;
    r.ud = ud;
    rt->v[rt->n++] = r;
    /* Exact "/" matches only the one-byte path, which the filter lets by. */
    if ((r.kind == RT_PARAM && pattern[1] == ':') || (r.kind == RT_PREFIX && r.plen == 1))
        rt->second_any = true;
    else if (len >= 2)
        rt->second[(unsigned char)pattern[1] >> 6] |= 1ull << ((unsigned char)pattern[1] & 63);
    return 0;
}

void wh_router_set_fallback(wh_router *rt, wh_http_handler h, void *ud)
{
    rt->fallback = h;
    rt->fallback_ud = ud;
}

/* Results of matching a path against a route. */
enum {
    M_NO = 0,
    M_YES = 1,
    M_BAD = -1,  /* the shape matches, a parameter cannot be decoded: 400 */
    M_LONG = -2, /* the shape matches, decoded parameters overflow r->pbuf: 414 */
};

/* Segment-wise match of a ":param" pattern. Captured values are
 * percent-decoded (RFC 3986 §2.1) into r->pbuf when they hold a '%', else
 * kept as slices of the path: the router runs on every request and must
 * not allocate. A value that decodes to '/' or NUL is refused: a handler
 * that joins it into a path or passes it to C strings would be fooled.
 * The values are recorded on r only if record is set. */
static int match_params(const route *ro, wh_str path, wh_http_req *r, bool record)
{
    const char *p = ro->pattern, *pe = ro->pattern + ro->plen;
    const char *s = path.p, *se = path.p + path.len;
    /* A router inside a handler (nested routers) appends to what the outer
     * one decoded. */
    size_t used = 0;
    for (unsigned i = 0; i < r->nparams; i++) {
        const char *v = r->params[i].value.p;
        if (v >= r->pbuf && v <= r->pbuf + sizeof r->pbuf &&
            (size_t)(v - r->pbuf) + r->params[i].value.len > used)
            used = (size_t)(v - r->pbuf) + r->params[i].value.len;
    }
    int bad = 0;
    while (p < pe && s < se) {
        if (*p != '/' || *s != '/') return M_NO;
        p++;
        s++;
        const char *pseg = p, *sseg = s;
        while (p < pe && *p != '/')
            p++;
        while (s < se && *s != '/')
            s++;
        if (pseg < p && *pseg == ':') {
            wh_str v = {sseg, (size_t)(s - sseg)};
            if (v.len == 0) return M_NO; /* a parameter is never empty */
            if (!bad && memchr(v.p, '%', v.len)) {
                ssize_t n = wh_http_pct_decode(v, r->pbuf + used, sizeof r->pbuf - used);
                if (n == -ENOSPC) {
                    bad = M_LONG;
                } else if (n < 0 || memchr(r->pbuf + used, '/', (size_t)n) ||
                           memchr(r->pbuf + used, '\0', (size_t)n)) {
                    bad = M_BAD;
                } else {
                    v = (wh_str){r->pbuf + used, (size_t)n};
                    used += (size_t)n;
                }
            }
            if (record && !bad) wh__http_req_add_param(r, pseg + 1, (size_t)(p - pseg - 1), v);
        } else if ((size_t)(p - pseg) != (size_t)(s - sseg) ||
                   memcmp(pseg, sseg, (size_t)(p - pseg)) != 0) {
            return M_NO;
        }
    }
    if (p != pe || s != se) return M_NO;
    return bad ? bad : M_YES;
}

/* path starts with pat[0..n). The last byte is tested first: every
 * request is matched against every route, and most routes differ from the
 * path there ("/static/" against "/index.html"), so most of them cost no
 * memcmp call. */
static inline bool starts_with(wh_str path, const char *pat, size_t n)
{
    return path.len >= n && (n == 0 || path.p[n - 1] == pat[n - 1]) && !memcmp(path.p, pat, n);
}

static int match(const route *ro, wh_str path, wh_http_req *r)
{
    switch (ro->kind) {
    case RT_EXACT:
        return path.len == ro->plen && starts_with(path, ro->pattern, ro->plen);
    case RT_PREFIX:
        if (starts_with(path, ro->pattern, ro->plen)) return M_YES;
        /* "/static/" + "*" also takes "/static" itself */
        return ro->plen > 1 && path.len == ro->plen - 1 &&
               !memcmp(path.p, ro->pattern, ro->plen - 1);
    default:
        return match_params(ro, path, r, false);
    }
}

static void allow_add(char *buf, size_t cap, size_t *len, const char *m)
{
    /* de-duplicate */
    size_t ml = strlen(m);
    const char *p = buf;
    while (p < buf + *len) {
        const char *e = memchr(p, ',', (size_t)(buf + *len - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(buf + *len - p);
        if (n == ml && !memcmp(p, m, ml)) return;
        p += n + (e ? 2 : 0);
    }
    size_t need = ml + (*len ? 2 : 0);
    if (*len + need + 1 > cap) return;
    if (*len) {
        memcpy(buf + *len, ", ", 2);
        *len += 2;
    }
    memcpy(buf + *len, m, ml);
    *len += ml;
    buf[*len] = 0;
}

/* No route took the request. */
static void no_route(wh_router *rt, wh_http_req *r)
{
    if (rt->fallback) {
        rt->fallback(r, rt->fallback_ud);
        return;
    }
    wh_http_respond_error(r, 404);
}

/* Matches every route against the path; the best one answers. */
static void scan(wh_router *rt, wh_http_req *r, wh_str path)
{
    wh_str m = r->p.method;
    bool is_head = m.len == 4 && !memcmp(m.p, "HEAD", 4);
    const route *best = NULL;
    int best_rank = 0, best_exactm = 0;
    bool path_seen = false;
    int bad = 0; /* 400 or 414: a route whose parameter could not be decoded */
    char allow[256];
    size_t alen = 0;
    allow[0] = 0;

    for (size_t i = 0; i < rt->n; i++) {
        const route *ro = &rt->v[i];
        int mr = match(ro, path, r);
        if (mr < 0 && !bad) bad = mr == M_LONG ? 414 : 400;
        if (mr <= 0) continue;
        path_seen = true;
        int exactm = 0;
        if (!ro->method)
            exactm = 1;
        else if (strlen(ro->method) == m.len && !memcmp(ro->method, m.p, m.len))
            exactm = 2; /* a HEAD route beats GET-for-HEAD */
        else if (is_head && !strcmp(ro->method, "GET"))
            exactm = 1;
        if (ro->method) {
            allow_add(allow, sizeof allow, &alen, ro->method);
            if (!strcmp(ro->method, "GET")) allow_add(allow, sizeof allow, &alen, "HEAD");
        }
        if (!exactm) continue;
        int rank = ro->kind * 1000000 + (ro->kind == RT_PREFIX ? (int)ro->plen : 0);
        if (!best || rank > best_rank || (rank == best_rank && exactm > best_exactm)) {
            best = ro;
            best_rank = rank;
            best_exactm = exactm;
        }
    }
    if (best) {
        if (best->kind == RT_PARAM && match_params(best, path, r, true) != M_YES) {
            wh_http_respond_error(r, 500); /* the same match just succeeded */
            return;
        }
        best->h(r, best->ud);
        return;
    }
    if (bad) {
        /* A parameter route had the path's shape but its value was
         * malformed: the request is bad, not aimed at a missing resource. */
        wh_http_respond_error(r, bad);
        return;
    }
    if (path_seen) {
        allow_add(allow, sizeof allow, &alen, "OPTIONS");
        wh_http_resp_header(r, "Allow", allow);
        if (m.len == 7 && !memcmp(m.p, "OPTIONS", 7))
            wh_http_respond(r, 204, NULL, NULL, 0);
        else
            wh_http_respond_error(r, 405);
        return;
    }
    no_route(rt, r);
}

void wh_router_handle(wh_http_req *r, void *router)
{
    wh_router *rt = router;
    wh_str path = r->p.path;
    /* Every pattern starts with '/' and matches only paths that do (a
     * prefix's bare "/static" too): no route can take this path. */
    if (!rt->second_any && path.len >= 2 && path.p[0] == '/') {
        unsigned char c = (unsigned char)path.p[1];
        if (!(rt->second[c >> 6] & (1ull << (c & 63)))) {
            no_route(rt, r);
            return;
        }
    }
    scan(rt, r, path);
}
