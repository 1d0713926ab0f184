/* Directory listing page (opt-in). Names come from the filesystem, so they
 * are untrusted: HTML-escaped in text, percent-encoded in links. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wharf/http_file.h"

size_t wh_html_escape(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *s; s++) {
        const char *rep;
        char one[2] = {*s, 0};
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = one;
            break;
        }
        for (; *rep; rep++, o++)
            if (o + 1 < cap) buf[o] = *rep;
    }
    if (cap) buf[o < cap ? o : cap - 1] = '\0';
    return o;
}

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
    if (b->err || b->len + more + 1 <= b->cap) return;
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + more + 1)
        c *= 2;
    char *n = realloc(b->p, c);
    if (!n) {
        b->err = -ENOMEM;
        return;
    }
    b->p = n;
    b->cap = c;
}

static void sb_add(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    sb_reserve(b, n);
    if (b->err) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void sb_html(struct sbuf *b, const char *s)
{
    size_t n = wh_html_escape(s, NULL, 0);
    sb_reserve(b, n);
    if (b->err) return;
    wh_html_escape(s, b->p + b->len, n + 1);
    b->len += n;
}

static void sb_url(struct sbuf *b, const char *s)
{
    size_t n = wh_url_encode(s, NULL, 0);
    sb_reserve(b, n);
    if (b->err) return;
    wh_url_encode(s, b->p + b->len, n + 1);
    b->len += n;
}

struct ent {
    char *name;
    bool dir;
};

static int cmp_ent(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->dir != y->dir) return x->dir ? -1 : 1; /* directories first */
    return strcmp(x->name, y->name);
}

int wh_static_listing(int dirfd, const char *url_path, bool show_dotfiles, char **out, size_t *len)
{
    /* fdopendir takes the fd; work on our own copy, rewound. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = -errno;
        close(fd);
        return err;
    }
    struct ent *v = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.' && (!show_dotfiles || !nm[1] || (nm[1] == '.' && !nm[2]))) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct ent *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                err = -ENOMEM;
                break;
            }
            v = nv;
        }
        bool dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
            struct stat st;
            dir = fstatat(dirfd, nm, &st, 0) == 0 && S_ISDIR(st.st_mode);
        }
        v[n].name = strdup(nm);
        v[n].dir = dir;
        if (!v[n].name) {
            err = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    struct sbuf b = {0};
    if (!err) {
        if (n > 1) /* qsort(NULL, 0) is undefined */
            qsort(v, n, sizeof *v, cmp_ent);
        sb_add(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
        sb_html(&b, url_path);
        sb_add(&b, "</title></head>\n<body><h1>Index of ");
        sb_html(&b, url_path);
        sb_add(&b, "</h1>\n<ul>\n");
        if (strcmp(url_path, "/") != 0) sb_add(&b, "<li><a href=\"../\">../</a></li>\n");
        for (size_t i = 0; i < n; i++) {
            sb_add(&b, "<li><a href=\"");
            /* "./" prefix: a name like "a:b" must not read as a URL scheme. */
            sb_add(&b, "./");
            sb_url(&b, v[i].name);
            sb_add(&b, v[i].dir ? "/\">" : "\">");
            sb_html(&b, v[i].name);
            sb_add(&b, v[i].dir ? "/</a></li>\n" : "</a></li>\n");
        }
        sb_add(&b, "</ul>\n</body></html>\n");
        err = b.err;
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    if (err) {
        free(b.p);
        return err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
