/* Static files: the planner. A request and a file (or a representation a
 * cache keeps) become one answer - status, fields, body source - that a
 * blocking server writes after wh_static_format_head and the engine sends
 * with wh_http_respond_plan (file_respond.c). Both take the fields from
 * wh__static_plan_fields, so every server built on this answers alike. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "http/errpage.h"
#include "http/file_internal.h"
#include "wharf/http_parse.h"

#define HTML_TYPE "text/html; charset=utf-8"

void wh_static_plan_init(wh_static_plan *plan)
{
    /* Not memset of the whole plan: its string buffers are 3.3 KB, zeroed
     * once or twice per request that was 6% of the pipelined profile. An
     * empty string is its first byte. */
    memset(plan, 0, offsetof(wh_static_plan, etag));
    plan->etag[0] = plan->last_modified[0] = plan->content_range[0] = plan->location[0] = '\0';
    plan->accept_ranges = false;
    plan->mtime = 0;
    plan->fields = NULL;
    plan->fd = -1;
}

void wh_static_plan_release(wh_static_plan *plan)
{
    if (plan->fd >= 0 && plan->fd_owned) close(plan->fd);
    plan->fd = -1;
    plan->fd_owned = false;
    if (plan->body_owned) free(plan->body);
    if (plan->body_release) plan->body_release(plan->body_ud);
    plan->body_release = NULL;
    plan->body = NULL;
    plan->body_len = 0;
    plan->body_owned = false;
}

void wh_static_plan_error(wh_static_plan *plan, int status)
{
    wh_static_plan_release(plan);
    plan->status = status;
    plan->content_type = HTML_TYPE;
    plan->content_encoding = NULL;
    plan->etag[0] = plan->last_modified[0] = '\0';
    plan->content_range[0] = plan->location[0] = '\0';
    plan->accept_ranges = false;
    plan->fields = NULL;
    plan->offset = 0;
    plan->length = 0;
    char *b = malloc(WH__HTTP_ERROR_PAGE_MAX);
    int n = b ? wh__http_error_page(status, b, WH__HTTP_ERROR_PAGE_MAX) : -ENOMEM;
    if (n < 0) { /* out of memory: the status alone still answers */
        free(b);
        return;
    }
    plan->body = b;
    plan->body_len = (size_t)n;
    plan->body_owned = true;
    plan->length = (uint64_t)n;
}

void wh_static_plan_redirect(wh_static_plan *plan, const char *rel, wh_str query)
{
    char enc[sizeof plan->location];
    size_t n = wh_url_encode(rel, enc, sizeof enc);
    wh_static_plan_error(plan, 301);
    if (n >= sizeof enc) {
        wh_static_plan_error(plan, 414);
        return;
    }
    /* Built from the cleaned path, never the raw one: "//evil.example/x"
     * must not become a protocol-relative redirect to another host (and
     * the root itself, rel "", is "/", not "//"). */
    int m = snprintf(plan->location, sizeof plan->location, "/%s%s%s%.*s", enc, n ? "/" : "",
                     query.len ? "?" : "", (int)query.len, query.p ? query.p : "");
    if (m < 0 || (size_t)m >= sizeof plan->location) wh_static_plan_error(plan, 414);
}

static bool method_is(wh_str m, const char *s)
{
    size_t n = strlen(s);
    return m.len == n && memcmp(m.p, s, n) == 0;
}

/* GET and HEAD are what a file has; anything else becomes the 405 page. */
static bool plan_method(const wh_static_req *req, wh_static_plan *plan)
{
    plan->head_only = method_is(req->method, "HEAD");
    if (plan->head_only || method_is(req->method, "GET")) return true;
    wh_static_plan_error(plan, 405);
    return false;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : cap;
    if (n >= cap) { /* a validator cut short would never match: send none */
        dst[0] = '\0';
        return;
    }
    memcpy(dst, src, n + 1); /* with its NUL */
}

/* The part shared by files and cached representations: validators,
 * conditionals, If-Range and Range. The body source (if any) is already in
 * plan; a 304 or an error drops it. */
static void evaluate(const wh_static_root *root, const wh_static_req *req, const wh_static_rep *rep,
                     wh_static_plan *plan)
{
    plan->status = 200;
    plan->content_type = rep->content_type ? rep->content_type : "application/octet-stream";
    plan->content_encoding = rep->encoding == WH_ENC_BR     ? "br"
                             : rep->encoding == WH_ENC_GZIP ? "gzip"
                                                            : NULL;
    plan->cache_control = root->opts.cache_control;
    /* Vary on every file response, not only when a sibling exists: a
     * cache must not hand our identity body to a gzip-capable client
     * either way, and probing for siblings without need costs opens. */
    plan->vary = root->opts.precompressed;
    plan->accept_ranges = true;
    plan->mtime = rep->mtime;
    copy_field(plan->etag, sizeof plan->etag, rep->etag);
    if (rep->last_modified)
        copy_field(plan->last_modified, sizeof plan->last_modified, rep->last_modified);
    else
        wh_http_format_date(rep->mtime, plan->last_modified);

    /* Most requests carry no precondition: no call to find that out. */
    int c = req->if_match.p || req->if_none_match.p || req->if_modified_since.p ||
                    req->if_unmodified_since.p
                ? wh_static_conditional(req, plan->etag, plan->mtime)
                : 0;
    if (c == 304) {
        wh_static_plan_release(plan);
        plan->status = 304;
        plan->length = 0;
        return;
    }
    if (c == 412) {
        wh_static_plan_error(plan, 412);
        return;
    }
    uint64_t size = rep->size, start = 0, len = size;
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
    /* A full answer has exactly the fields wh_static_fields_make prepared
     * (it plans this very case): they go out as one block. */
    if (r == 200 && rep->fields && rep->fields->len) plan->fields = rep->fields;
}

int wh_static_fields_make(const wh_static_root *root, const wh_static_rep *rep, wh_static_fields *f)
{
    f->len = 0;
    /* The block is what the field-by-field path sends for a plain GET: the
     * same planner and the same field list, so the two cannot drift. */
    wh_static_rep r = *rep;
    r.fields = NULL;
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = (wh_str){"GET", 3};
    wh_static_plan plan;
    wh_static_plan_init(&plan);
    evaluate(root, &q, &r, &plan);
    /* The Content-Type a full answer of rep carries is checked here too:
     * a block vouches for it, so the engine's prepared path sends it as is. */
    size_t ctl;
    if (!wh__resp_value_len(plan.content_type, &ctl)) return -EINVAL;
    wh__field fl[WH__PLAN_FIELDS_MAX];
    size_t n = wh__static_plan_fields(&plan, fl), len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t vl;
        /* Checked here once, as wh__resp_lines_put checks every response. */
        if (!wh__resp_value_len(fl[i].value, &vl)) return -EINVAL;
        size_t need = fl[i].nl + vl + 4;
        if (need > sizeof f->text - len) return -ENOSPC;
        memcpy(f->text + len, fl[i].name, fl[i].nl);
        memcpy(f->text + len + fl[i].nl, ": ", 2);
        memcpy(f->text + len + fl[i].nl + 2, fl[i].value, vl);
        memcpy(f->text + len + fl[i].nl + 2 + vl, "\r\n", 2);
        len += need;
    }
    f->len = (uint16_t)len;
    return 0;
}

void wh_static_plan_rep(wh_static_root *root, const wh_static_req *req, const wh_static_rep *rep,
                        wh_static_plan *plan)
{
    wh_static_plan_init(plan);
    if (plan_method(req, plan)) evaluate(root, req, rep, plan);
}

static void plan_listing(wh_static_root *root, const wh_static_file *f, wh_static_plan *plan)
{
    char url[WH_STATIC_PATH_MAX + 2];
    snprintf(url, sizeof url, "/%s%s", f->rel, f->rel[0] ? "/" : "");
    char *html;
    size_t len;
    if (wh_static_listing(f->fd, url, root->opts.show_dotfiles, &html, &len) != 0) {
        wh_static_plan_error(plan, 500);
        return;
    }
    wh_static_plan_release(plan); /* the directory fd */
    plan->status = 200;
    plan->body = html;
    plan->body_len = len;
    plan->body_owned = true;
    plan->length = len;
    plan->content_type = HTML_TYPE;
}

void wh_static_plan_file(wh_static_root *root, const wh_static_req *req, const wh_static_file *f,
                         bool fd_owned, wh_static_plan *plan)
{
    wh_static_plan_init(plan);
    plan->fd = f->fd;
    plan->fd_owned = fd_owned;
    if (!plan_method(req, plan)) return;
    if (f->is_dir) {
        plan_listing(root, f, plan);
        return;
    }
    const struct stat *st = &f->st;
    unsigned enc = WH_ENC_IDENTITY;
    struct stat est;
    bool prefer_br;
    unsigned acc =
        root->opts.precompressed ? wh_static_accept_encoding(req->accept_encoding, &prefer_br) : 0;
    if (acc) {
        int efd = wh_static_open_encoded(root, f->rel, st, acc, prefer_br, &enc, &est);
        if (efd >= 0) {
            if (plan->fd_owned) close(plan->fd);
            plan->fd = efd;
            plan->fd_owned = true;
            st = &est;
        }
    }
    /* Validators are the original's (with a coding suffix in the tag): a
     * sibling regenerated from an unchanged original is the same content. */
    char etag[48];
    wh_static_etag(&f->st, enc, etag, sizeof etag);
    wh_static_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.content_type = wh_mime_lookup(root->mime, f->rel);
    rep.encoding = enc;
    rep.etag = etag;
    rep.mtime = f->st.st_mtim.tv_sec;
    rep.size = (uint64_t)st->st_size;
    evaluate(root, req, &rep, plan);
}

void wh_static_plan_make(wh_static_root *root, const wh_static_req *req, wh_static_plan *plan)
{
    wh_static_plan_init(plan);
    if (!plan_method(req, plan)) return;
    char rel[WH_STATIC_PATH_MAX];
    bool slash;
    int st = wh_static_clean_path(req->path.p, req->path.len, root->opts.show_dotfiles, rel,
                                  sizeof rel, &slash);
    wh_static_file f;
    if (st == 200) st = wh_static_resolve(root, rel, slash, &f);
    if (st == 301)
        wh_static_plan_redirect(plan, rel, req->query);
    else if (st != 200)
        wh_static_plan_error(plan, st);
    else
        wh_static_plan_file(root, req, &f, true, plan);
}

size_t wh__static_plan_fields(const wh_static_plan *plan, wh__field f[WH__PLAN_FIELDS_MAX])
{
    /* A 304 repeats what a cache needs to update its stored response
     * (RFC 9110 15.4.5: validators, Vary, Cache-Control), not the
     * representation's metadata. */
    bool not_modified = plan->status == 304;
    bool fresh = plan->status == 200 || plan->status == 206 || not_modified;
    size_t n = 0;
#define FIELD(on, nm, v)                                                                           \
    do {                                                                                           \
        if (on) f[n++] = (wh__field){nm, sizeof(nm) - 1, v};                                       \
    } while (0)
    FIELD(plan->content_encoding && !not_modified, "Content-Encoding", plan->content_encoding);
    FIELD(plan->vary, "Vary", "Accept-Encoding");
    FIELD(plan->etag[0] != '\0', "ETag", plan->etag);
    FIELD(plan->last_modified[0] != '\0', "Last-Modified", plan->last_modified);
    FIELD(plan->accept_ranges && !not_modified, "Accept-Ranges", "bytes");
    FIELD(plan->content_range[0] != '\0', "Content-Range", plan->content_range);
    FIELD(plan->location[0] != '\0', "Location", plan->location);
    FIELD(plan->cache_control && fresh, "Cache-Control", plan->cache_control);
    FIELD(plan->status == 405, "Allow", "GET, HEAD");
#undef FIELD
    return n;
}

int wh_static_format_head(const wh_static_plan *plan, bool keepalive, char *buf, size_t cap)
{
    /* The plan's fields are formatted first, as the extra lines of the one
     * head formatter; they cannot be longer than the head they go into, so
     * a buffer of cap bytes always holds them. */
    char small[2048], *heap = NULL;
    wh__field f[WH__PLAN_FIELDS_MAX];
    size_t nf = wh__static_plan_fields(plan, f), vl[WH__PLAN_FIELDS_MAX], need = 0;
    for (size_t i = 0; i < nf; i++)
        need += f[i].nl + (vl[i] = strlen(f[i].value)) + 4;
    if (need > cap) return -ENOSPC;
    char *x = small;
    if (need > sizeof small && !(x = heap = malloc(need))) return -ENOMEM;
    size_t xlen = 0;
    for (size_t i = 0; i < nf; i++) {
        memcpy(x + xlen, f[i].name, f[i].nl);
        memcpy(x + xlen + f[i].nl, ": ", 2);
        memcpy(x + xlen + f[i].nl + 2, f[i].value, vl[i]);
        memcpy(x + xlen + f[i].nl + 2 + vl[i], "\r\n", 2);
        xlen += f[i].nl + vl[i] + 4;
    }
    char date[30];
    wh_http_format_date(time(NULL), date);
    bool bodyless = plan->status == 304;
    wh_http_head_spec h;
    memset(&h, 0, sizeof h);
    h.status = plan->status;
    h.content_type = bodyless ? NULL : plan->content_type;
    h.content_length = bodyless ? -1 : (int64_t)plan->length;
    h.close = !keepalive;
    h.keep_alive = keepalive;
    h.date = date;
    h.server = "wharf";
    h.extra = x;
    h.extra_len = xlen;
    int n = wh_http_format_head(buf, cap, &h);
    free(heap);
    if (n >= 0 && (size_t)n < cap) buf[n] = '\0'; /* printable while debugging */
    return n;
}
