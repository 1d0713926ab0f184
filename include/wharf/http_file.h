/* wharf static files: serving a directory tree over HTTP (RFC 9110
 * conditionals, ranges, validators, content codings) with the path
 * confined to a document root.
 *
 * Event-driven (with the engine of wharf/http.h), one call per request:
 *
 *     static wh_static_root root;                          // once, shared by threads
 *     wh_static_root_open(&root, "public", NULL);
 *     void handler(wh_http_req *r, void *ud) { wh_http_serve_file(r, ud); }
 *
 * Blocking servers (own sockets, wharf/http_parse.h for the request):
 *
 *     wh_static_req q = {0};
 *     q.method = req.method;  q.path = req.path;  q.query = req.query;
 *     q.range = wh_http_parsed_header(&req, "Range");       // .p == NULL when absent
 *     wh_static_plan plan;
 *     wh_static_plan_make(&root, &q, &plan);                // never fails: plan.status says
 *     char head[4096];
 *     int n = wh_static_format_head(&plan, true, head, sizeof head);
 *     write(sock, head, n);
 *     if (!plan.head_only && plan.fd >= 0)  sendfile(sock, plan.fd, &plan.offset, plan.length);
 *     else if (!plan.head_only)             write(sock, plan.body, plan.body_len);
 *     wh_static_plan_release(&plan);
 *
 * The pieces (path cleaning, confinement, conditionals, ranges, encodings,
 * MIME, listing, a plan for an already chosen representation) are public
 * too, so a server can put a cache of open files between "clean the path"
 * and "evaluate the request" and still answer through the same planner.
 *
 * Security model (what "nothing outside the root" means here):
 *  - the URL path is percent-decoded exactly once; %00 (NUL), an encoded '/'
 *    (%2F) or '\' (%5C), a malformed escape and control bytes give 400;
 *  - any "." or ".." segment, raw or encoded (%2e%2e), gives 400 (we never
 *    resolve them lexically: a client that sends them is not a browser);
 *  - a segment starting with '.' (dotfile) gives 404 unless show_dotfiles;
 *  - files are opened relative to the root's directory fd with openat2()
 *    RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS, so a symlink (or a rename race)
 *    can never step out of the root; without openat2 (kernel < 5.6, seccomp)
 *    we fall back to openat() + a readlink(/proc/self/fd/N) prefix check.
 *    follow_symlinks = true allows symlinks that leave the root.
 *  - only regular files and directories are served (no FIFOs, devices).
 *
 * Threads: a root is read-only once opened and may be shared; plans, files
 * and requests belong to the caller.
 */
#ifndef WHARF_HTTP_FILE_H
#define WHARF_HTTP_FILE_H

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "wharf/common.h"
#include "wharf/http.h"

/* Content encodings we can serve from a precompressed sibling. */
enum {
    WH_ENC_IDENTITY = 0,
    WH_ENC_GZIP = 1u << 0, /* file.gz */
    WH_ENC_BR = 1u << 1,   /* file.br */
};

/* Longest cleaned relative path we handle (longer -> 414). */
#define WH_STATIC_PATH_MAX 1024

WH_BEGIN_DECLS

typedef struct wh_mime_table wh_mime_table;

typedef struct wh_static_opts {
    const char *index;         /* index file for directories: "index.html" */
    bool listing;              /* directory listing when there is no index: false */
    bool show_dotfiles;        /* serve names starting with '.': false */
    bool follow_symlinks;      /* allow symlinks that leave the root: false */
    bool precompressed;        /* look for .br/.gz siblings: true */
    const char *cache_control; /* Cache-Control value for files, NULL = none */
    const char *mime_file;     /* extra types file: "/etc/mime.types" (NULL = built-in only) */
} wh_static_opts;

/* A document root: an open directory fd plus its canonical path. */
typedef struct wh_static_root {
    int fd; /* O_PATH|O_DIRECTORY fd of the root */
    /* realpath() of the root (for the fallback check), malloc'd: a fixed
     * PATH_MAX array would make the layout depend on feature macros. */
    char *real;
    size_t real_len;
    wh_static_opts opts; /* copied; strings must outlive the root */
    wh_mime_table *mime; /* owned */
    int have_openat2;    /* 1 yes, 0 no (ENOSYS/EPERM seen), -1 not yet known */
} wh_static_root;

/* What a request asks for; every header is .p == NULL when absent. */
typedef struct wh_static_req {
    wh_str method; /* GET and HEAD are served; others -> 405 */
    wh_str path;   /* percent-encoded path, before '?' */
    wh_str query;  /* after '?', kept on redirects; may be empty */
    wh_str if_match, if_none_match, if_modified_since, if_unmodified_since, if_range;
    wh_str range;
    wh_str accept_encoding;
} wh_static_req;

/* A resolved file: fd, stat and the relative path that was opened. */
typedef struct wh_static_file {
    int fd; /* O_RDONLY fd (file or, for listings, directory) */
    struct stat st;
    bool is_dir;                  /* a directory without index, listing allowed */
    char rel[WH_STATIC_PATH_MAX]; /* relative path opened ("" = root), index appended */
} wh_static_file;

/* Most bytes of a prepared field block (wh_static_fields). */
#define WH_STATIC_FIELDS_MAX 256

/* The fields a root adds to a representation's full answer (a 200 to GET or
 * HEAD: ETag, Last-Modified, Accept-Ranges, Vary, Content-Encoding,
 * Cache-Control), formatted and checked once by wh_static_fields_make, so
 * that a cache keeps them with the representation and a hit sends them as
 * one copy. Any other answer (304, 206, 412, ...) is formatted field by
 * field as before. Stale as soon as the representation or the root's
 * options change: make it again then. */
typedef struct wh_static_fields {
    uint16_t len; /* bytes of text; 0: none prepared (plans ignore it) */
    char text[WH_STATIC_FIELDS_MAX];
} wh_static_fields;

/* One representation of a file (the file itself or a precompressed
 * sibling) with the validators a request is compared against: what a cache
 * of open files keeps so it can plan without open/stat. */
typedef struct wh_static_rep {
    const char *content_type;  /* NULL: application/octet-stream */
    unsigned encoding;         /* WH_ENC_* of these bytes */
    const char *etag;          /* quoted strong tag (wh_static_etag) */
    const char *last_modified; /* IMF-fixdate of mtime; NULL: formatted from mtime */
    time_t mtime;
    uint64_t size;
    const wh_static_fields *fields; /* NULL, or made by wh_static_fields_make from this very rep
                                       and root, unchanged since */
} wh_static_rep;

/* The answer to a request, ready to be written as a response. */
typedef struct wh_static_plan {
    int status;     /* 200 206 301 304 400 403 404 405 412 414 416 500 503 */
    bool head_only; /* HEAD: send the head, no body */
    int fd;         /* >= 0: body is [offset, offset+length) of fd */
    bool fd_owned;  /* release closes fd */
    off_t offset;
    uint64_t length; /* body length (Content-Length; also for HEAD) */
    char *body;      /* in-memory body, the bytes to send (listing, error page) or NULL */
    size_t body_len;
    bool body_owned; /* release frees body (malloc'd) */
    /* Non-NULL: body is borrowed and sent by reference, not copied (large
     * cached content); body_release(body_ud) runs exactly once, when the
     * bytes were sent or are no longer needed (wh_http_respond_plan,
     * wh_static_plan_release). */
    void (*body_release)(void *body_ud);
    void *body_ud;
    const char *content_type;                  /* never NULL when there is a body */
    const char *content_encoding;              /* "gzip" / "br" / NULL */
    bool vary;                                 /* add "Vary: Accept-Encoding" */
    const char *cache_control;                 /* NULL = none */
    char etag[48];                             /* "" = none; quoted */
    char last_modified[32];                    /* "" = none */
    char content_range[80];                    /* "" = none; "bytes 0-9/100" or "bytes * /100" */
    char location[WH_STATIC_PATH_MAX * 3 + 8]; /* 301 target, "" = none */
    bool accept_ranges;                        /* add "Accept-Ranges: bytes" */
    time_t mtime;
    /* The rep's prepared fields when they are exactly this plan's (a 200),
     * else NULL; wh_http_respond_plan then copies them as one block. */
    const wh_static_fields *fields;
} wh_static_plan;

/* ---- root ---- */

/* Fills opts with the defaults documented in wh_static_opts. */
void wh_static_opts_init(wh_static_opts *opts);
/* Opens dir as a root (opts NULL = defaults): 0 or -errno (-ENOENT, -ENOTDIR, -EACCES; -EINVAL for
 * a bad index name or a cache_control with a control character). */
int wh_static_root_open(wh_static_root *root, const char *dir, const wh_static_opts *opts);
/* Closes the root's fd and frees what it owns; a closed root may be closed again. */
void wh_static_root_close(wh_static_root *root);

/* ---- path ---- */

/* Percent-decodes and checks a URL path into out as a relative path without
 * leading '/' ("" for "/"); *trailing_slash says if the path ended in '/'
 * (or in a "." or ".." segment). "." and ".." segments, raw or %2E-encoded,
 * are resolved (RFC 3986 5.2.4). Returns 200, or 400 (a ".." above the root,
 * bad escape, NUL, encoded '/' or '\', not starting with '/'), 404 (dotfile
 * when !show_dotfiles), 414 (too long). */
int wh_static_clean_path(const char *raw, size_t len, bool show_dotfiles, char *out, size_t cap,
                         bool *trailing_slash);
/* Opens cleaned rel confined to root: 200 (caller closes f->fd), 301, 403, 404, 414 or 500. */
int wh_static_resolve(wh_static_root *root, const char *rel, bool trailing_slash,
                      wh_static_file *f);
/* Opens rel beneath the root without ever leaving it: fd, or -errno (-EXDEV / -ELOOP on escape). */
int wh_static_open_beneath(wh_static_root *root, const char *rel, int flags);
/* Percent-encodes s for a URL path ('/', unreserved stay): bytes needed, like snprintf. */
size_t wh_url_encode(const char *s, char *out, size_t cap);

/* ---- validators, conditionals and ranges (RFC 9110 8.8, 13, 14) ---- */

/* Parses IMF-fixdate, RFC 850 and asctime dates (RFC 9110 5.6.7) into *out; 0 or -EINVAL. */
int wh_static_date_parse(const char *p, size_t len, time_t *out);
/* Writes a strong ETag from size and mtime (+ an encoding suffix) into buf; returns its length. */
int wh_static_etag(const struct stat *st, unsigned enc, char *buf, size_t cap);
/* True if list (If-Match / If-None-Match syntax, or "*") matches etag, weakly if weak. */
bool wh_static_etag_match(wh_str list, const char *etag, bool weak);
/* Evaluates the preconditions of a GET/HEAD in RFC 9110 13.2.2 order: 0 = proceed, 304 or 412. */
int wh_static_conditional(const wh_static_req *req, const char *etag, time_t mtime);
/* True if a Range may be honoured given If-Range (an absent If-Range is true). */
bool wh_static_if_range(wh_str if_range, const char *etag, time_t mtime);
/* Parses one byte range for size bytes: 206 (start, len set), 416, or 200 (ignore the header). */
int wh_static_range(wh_str range, uint64_t size, uint64_t *start, uint64_t *len);

/* ---- encodings ---- */

/* WH_ENC_* bits that Accept-Encoding accepts with q > 0; *prefer_br when br's q >= gzip's. */
unsigned wh_static_accept_encoding(wh_str ae, bool *prefer_br);
/* Opens rel+".br"/".gz" when accepted, regular and not older than st: fd (*enc, *est set) or -1. */
int wh_static_open_encoded(wh_static_root *root, const char *rel, const struct stat *st,
                           unsigned accepted, bool prefer_br, unsigned *enc, struct stat *est);

/* ---- MIME ---- */

/* Built-in types over those of mime.types file (NULL or missing: none); NULL on ENOMEM. */
wh_mime_table *wh_mime_new(const char *file);
/* Frees the table (NULL is fine). */
void wh_mime_free(wh_mime_table *t);
/* Content type for path's extension (text with charset); unknown: application/octet-stream. */
const char *wh_mime_lookup(const wh_mime_table *t, const char *path);

/* ---- listing ---- */

/* HTML listing of dirfd (not closed) for the decoded url_path; *out is malloc'd. 0 or -errno. */
int wh_static_listing(int dirfd, const char *url_path, bool show_dotfiles, char **out, size_t *len);
/* Writes s HTML-escaped (& < > " ') into buf; returns bytes needed, like snprintf. */
size_t wh_html_escape(const char *s, char *buf, size_t cap);

/* ---- the planner ---- */

/* Empties plan (no fd, no body, status 0) before it is filled piece by piece. */
void wh_static_plan_init(wh_static_plan *plan);
/* Plans the whole answer to req (clean, resolve, then as plan_file); never fails: see status. */
void wh_static_plan_make(wh_static_root *root, const wh_static_req *req, wh_static_plan *plan);
/* Plans req for resolved f (f's fd is the plan's if fd_owned): listing, or sibling + plan_rep. */
void wh_static_plan_file(wh_static_root *root, const wh_static_req *req, const wh_static_file *f,
                         bool fd_owned, wh_static_plan *plan);
/* Formats into f the fields root adds to a full answer of rep (rep->fields is ignored): 0, or
 * -ENOSPC (longer than WH_STATIC_FIELDS_MAX) or -EINVAL (a value or rep's content type with a
 * control character), both leaving f->len 0, so plans format field by field. */
int wh_static_fields_make(const wh_static_root *root, const wh_static_rep *rep,
                          wh_static_fields *f);
/* Plans req for a chosen representation: all but the body, which the caller adds on 200/206. */
void wh_static_plan_rep(wh_static_root *root, const wh_static_req *req, const wh_static_rep *rep,
                        wh_static_plan *plan);
/* Turns an initialised plan into an error page for status (releasing its fd and body). */
void wh_static_plan_error(wh_static_plan *plan, int status);
/* Turns an initialised plan into a 301 to directory rel + "/" (+ "?query"), or 414 if too long. */
void wh_static_plan_redirect(wh_static_plan *plan, const char *rel, wh_str query);
/* Writes plan's response head (Date, Server, Connection too) into buf: length, -ENOSPC, -ENOMEM. */
int wh_static_format_head(const wh_static_plan *plan, bool keepalive, char *buf, size_t cap);
/* Closes an owned fd and frees an owned body; the plan holds neither afterwards. */
void wh_static_plan_release(wh_static_plan *plan);

/* ---- with the event-driven engine (wharf/http.h) ---- */

/* Fills q from r: method, path, query and the conditional, Range and Accept-Encoding headers. */
void wh_static_req_from_http(wh_static_req *q, const wh_http_req *r);
/* Completes r with plan's status, headers and body; takes over (and releases) its fd and body. */
int wh_http_respond_plan(wh_http_req *r, wh_static_plan *plan);
/* Answers r from root: builds the request, plans it, responds; the result of wh_http_respond*. */
int wh_http_serve_file(wh_http_req *r, wh_static_root *root);

WH_END_DECLS

#endif
