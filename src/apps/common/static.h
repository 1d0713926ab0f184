/* Static-file helpers shared by wharfd and the concurrency-model lab.
 *
 * Everything here works without an event loop: plain functions over buffers,
 * file descriptors and struct stat. A blocking server serves a file with:
 *
 *     wh_static_root root;
 *     wh_static_root_open(&root, "public", NULL);          // once
 *     ...
 *     wh_static_req q = {0};
 *     q.method = (wh_str){"GET", 3};
 *     q.path = (wh_str){raw_path, raw_len};                 // before '?', still %-encoded
 *     q.range = (wh_str){range_hdr, range_len};             // .p == NULL when absent
 *     wh_static_plan plan;
 *     wh_static_plan_make(&root, &q, &plan);                // never fails: plan.status says
 *     char head[2048];
 *     int n = wh_static_format_head(&plan, true, head, sizeof head);
 *     write(sock, head, n);
 *     if (plan.fd >= 0 && !plan.head_only)  sendfile(sock, plan.fd, &plan.offset, plan.length);
 *     else if (plan.body_len && !plan.head_only) write(sock, plan.body, plan.body_len);
 *     wh_static_plan_release(&plan);
 *
 * The pieces (path cleaning, confinement, conditionals, ranges, encodings,
 * MIME, listing) are public too, so wharfd can put its per-thread fd cache
 * between "clean the path" and "evaluate the request".
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
 */
#ifndef WH_APPS_STATIC_H
#define WH_APPS_STATIC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "wharf/http.h" /* wh_str */

/* Content encodings we can serve from a precompressed sibling. */
enum {
    WH_ENC_IDENTITY = 0,
    WH_ENC_GZIP = 1u << 0, /* file.gz */
    WH_ENC_BR = 1u << 1,   /* file.br */
};

/* Longest cleaned relative path we handle (longer -> 414). */
#define WH_STATIC_PATH_MAX 1024

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
    int fd;              /* O_PATH|O_DIRECTORY fd of the root */
    char real[PATH_MAX]; /* realpath() of the root (for the fallback check) */
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

/* The answer to a request, ready to be written as a response. */
typedef struct wh_static_plan {
    int status;     /* 200 206 301 304 400 403 404 405 412 414 416 500 */
    bool head_only; /* HEAD: send the head, no body */
    int fd;         /* >= 0: body is [offset, offset+length) of fd */
    bool fd_owned;  /* release closes fd */
    off_t offset;
    uint64_t length; /* body length (Content-Length; also for HEAD) */
    char *body;      /* in-memory body (listing, error page) or NULL; malloc'd */
    size_t body_len;
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
} wh_static_plan;

/* ---- root ---- */

/* Fills opts with the defaults documented in wh_static_opts. */
void wh_static_opts_init(wh_static_opts *opts);
/* Opens root dir (opts NULL = defaults), loads MIME types. 0 or -errno (-ENOENT, -ENOTDIR,
 * -EACCES). */
int wh_static_root_open(wh_static_root *root, const char *dir, const wh_static_opts *opts);
/* Closes the root's fd and frees its MIME table. */
void wh_static_root_close(wh_static_root *root);

/* ---- path ---- */

/* Percent-decodes and checks a URL path into out as a relative path without
 * leading '/' ("" for "/"); *trailing_slash says if the path ended in '/'.
 * Returns 200, or 400 (bad escape, NUL, encoded '/', '.' or '..' segment,
 * not starting with '/'), 404 (dotfile when !show_dotfiles), 414 (too long). */
int wh_static_clean_path(const char *raw, size_t len, bool show_dotfiles, char *out, size_t cap,
                         bool *trailing_slash);
/* Opens rel beneath root under the confinement rules; for a directory,
 * needs trailing_slash (else 301) then tries the index file, then the
 * listing. Returns 200 (f filled, caller closes f->fd), 301, 403, 404 or 500. */
int wh_static_resolve(wh_static_root *root, const char *rel, bool trailing_slash,
                      wh_static_file *f);
/* openat2(RESOLVE_BENEATH)-style open of rel beneath root (fallback check
 * without openat2). fd or -errno (-EXDEV / -ELOOP for an escaping symlink). */
int wh_static_open_beneath(wh_static_root *root, const char *rel, int flags);

/* ---- metadata ---- */

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7)
 * into buf (>= 30 bytes). Returns the length (29). */
int wh_static_date_format(time_t t, char *buf, size_t cap);
/* Parses IMF-fixdate, RFC 850 and asctime dates (RFC 9110 5.6.7). 0 or -EINVAL. */
int wh_static_date_parse(const char *p, size_t len, time_t *out);
/* Strong ETag from size+mtime (+ an encoding suffix): "\"5f3a-1b2\"". Returns length. */
int wh_static_etag(const struct stat *st, unsigned enc, char *buf, size_t cap);

/* ---- conditionals and ranges (RFC 9110 13.2.2, 14) ---- */

/* Evaluates If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since
 * in the RFC 9110 13.2.2 order for a GET/HEAD. 0 = proceed, 304 or 412. */
int wh_static_conditional(const wh_static_req *req, const char *etag, time_t mtime);
/* True if a Range should be honoured given If-Range (absent -> true). */
bool wh_static_if_range(wh_str if_range, const char *etag, time_t mtime);
/* Parses a Range header for a body of size bytes. 200 = ignore (absent,
 * not bytes, malformed, several ranges), 206 = start and len set, 416 = unsatisfiable. */
int wh_static_range(wh_str range, uint64_t size, uint64_t *start, uint64_t *len);
/* True if the list of ETags (If-None-Match / If-Match syntax, or "*")
 * matches etag; weak comparison if weak, else strong (RFC 9110 8.8.3.2). */
bool wh_static_etag_match(wh_str list, const char *etag, bool weak);

/* ---- encodings ---- */

/* Parses Accept-Encoding (RFC 9110 12.5.3) into WH_ENC_* bits of the codings
 * we have with q > 0 ("*" counts; "gzip;q=0" excludes). *prefer_br is set
 * when br's q >= gzip's. */
unsigned wh_static_accept_encoding(wh_str ae, bool *prefer_br);
/* Opens rel+".br"/".gz" when accepted, regular, and not older than st.
 * Returns the fd (and *enc, *est) or -1 when there is none to serve. */
int wh_static_open_encoded(wh_static_root *root, const char *rel, const struct stat *st,
                           unsigned accepted, bool prefer_br, unsigned *enc, struct stat *est);

/* ---- MIME ---- */

/* Builds a table from the built-in list, overlaid under the entries of
 * file (e.g. /etc/mime.types) when it exists; NULL on ENOMEM. */
wh_mime_table *wh_mime_new(const char *file);
/* Frees the table. */
void wh_mime_free(wh_mime_table *t);
/* Content type for a path by its extension (case-insensitive); text types
 * carry "; charset=utf-8". Unknown -> "application/octet-stream". */
const char *wh_mime_lookup(const wh_mime_table *t, const char *path);

/* ---- listing ---- */

/* HTML listing of directory fd (not closed) for url_path (decoded, with
 * trailing '/'); names HTML-escaped and percent-encoded in links, sorted,
 * dotfiles omitted unless show_dotfiles. *out is malloc'd. 0 or -errno. */
int wh_static_listing(int dirfd, const char *url_path, bool show_dotfiles, char **out, size_t *len);
/* Percent-encodes s for a URL path: unreserved characters and '/' stay,
 * the rest becomes %XX. Writes at most cap-1 bytes + NUL; returns bytes needed. */
size_t wh_url_encode(const char *s, char *out, size_t cap);
/* Appends s HTML-escaped (& < > " ') to buf; returns bytes needed (like snprintf). */
size_t wh_html_escape(const char *s, char *buf, size_t cap);

/* ---- all in one (for blocking servers) ---- */

/* Plans the response for req: clean, resolve, encodings, conditionals,
 * ranges, listing. Always fills *plan (status says what happened); errors
 * get a small HTML body. */
void wh_static_plan_make(wh_static_root *root, const wh_static_req *req, wh_static_plan *plan);
/* Given an already resolved file (e.g. from a cache: fd stays owned by the
 * caller unless fd_owned), fills the plan: encodings, conditionals, ranges. */
void wh_static_plan_file(wh_static_root *root, const wh_static_req *req, const wh_static_file *f,
                         bool fd_owned, wh_static_plan *plan);
/* Fills plan as an error page for status (HTML body). */
void wh_static_plan_error(wh_static_plan *plan, int status);
/* Writes "HTTP/1.1 <status> <reason>\r\n" + Date, Server, Content-Type,
 * Content-Length, ETag, ... + Connection + "\r\n" into buf. Length or -ENOSPC. */
int wh_static_format_head(const wh_static_plan *plan, bool keepalive, char *buf, size_t cap);
/* Closes an owned fd and frees the body. */
void wh_static_plan_release(wh_static_plan *plan);

#endif
