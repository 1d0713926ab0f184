/* MIME types by file extension: a built-in table for the types a website
 * needs (with charset=utf-8 on text, which /etc/mime.types lacks), under
 * which the system's mime.types adds the long tail. One open-addressing
 * hash table, built once, read-only afterwards (shared by threads). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http_file.h"

#define EXT_MAX 16

struct mime_slot {
    char ext[EXT_MAX]; /* lowercase, "" = empty slot */
    const char *type;  /* into the built-in table or the string arena */
};

struct wh_mime_table {
    struct mime_slot *slots;
    size_t mask; /* slots - 1 (power of two) */
    size_t used;
    char **strings; /* types from the file, owned */
    size_t nstrings, capstrings;
};

static const char *const builtin[][2] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"bmp", "image/bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"wmv", "video/x-ms-wmv"},
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct mime_slot *find(const wh_mime_table *t, const char *ext)
{
    for (size_t i = hash(ext) & t->mask;; i = (i + 1) & t->mask) {
        struct mime_slot *s = &t->slots[i];
        if (!s->ext[0] || strcmp(s->ext, ext) == 0) return s;
    }
}

static int grow(wh_mime_table *t)
{
    size_t n = (t->mask + 1) * 2;
    struct mime_slot *old = t->slots, *ns = calloc(n, sizeof *ns);
    if (!ns) return -ENOMEM;
    size_t on = t->mask + 1;
    t->slots = ns;
    t->mask = n - 1;
    for (size_t i = 0; i < on; i++)
        if (old[i].ext[0]) *find(t, old[i].ext) = old[i];
    free(old);
    return 0;
}

static int put(wh_mime_table *t, const char *ext_in, size_t n, const char *type)
{
    char ext[EXT_MAX];
    if (n == 0 || n >= EXT_MAX) return 0; /* such extensions are never looked up */
    for (size_t i = 0; i < n; i++)
        ext[i] = (char)tolower((unsigned char)ext_in[i]);
    ext[n] = '\0';
    if ((t->used + 1) * 2 > t->mask + 1 && grow(t) != 0) return -ENOMEM;
    struct mime_slot *s = find(t, ext);
    if (!s->ext[0]) {
        memcpy(s->ext, ext, n + 1);
        t->used++;
    }
    s->type = type;
    return 0;
}

static const char *intern(wh_mime_table *t, const char *s, size_t n)
{
    if (t->nstrings == t->capstrings) {
        size_t c = t->capstrings ? t->capstrings * 2 : 256;
        char **ns = realloc(t->strings, c * sizeof *ns);
        if (!ns) return NULL;
        t->strings = ns;
        t->capstrings = c;
    }
    char *d = strndup(s, n);
    if (d) t->strings[t->nstrings++] = d;
    return d;
}

/* mime.types(5): "type/subtype ext ext ...", '#' comments. */
static int load_file(wh_mime_table *t, const char *file)
{
    FILE *f = fopen(file, "re");
    if (!f) return 0; /* optional */
    char line[1024];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || !*p) continue;
        char *ts = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t tl = (size_t)(p - ts);
        if (!memchr(ts, '/', tl)) continue;
        const char *type = NULL;
        for (;;) {
            while (*p && isspace((unsigned char)*p))
                p++;
            if (!*p || *p == '#') break;
            char *es = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            if (!type && !(type = intern(t, ts, tl))) {
                rc = -ENOMEM;
                break;
            }
            rc = put(t, es, (size_t)(p - es), type);
            if (rc) break;
        }
    }
    fclose(f);
    return rc;
}

wh_mime_table *wh_mime_new(const char *file)
{
    wh_mime_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->mask = 255;
    t->slots = calloc(t->mask + 1, sizeof *t->slots);
    if (!t->slots) goto fail;
    if (file && load_file(t, file) != 0) goto fail;
    /* Built-ins last so they win: they carry the charset. */
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (put(t, builtin[i][0], strlen(builtin[i][0]), builtin[i][1]) != 0) goto fail;
    return t;
fail:
    wh_mime_free(t);
    return NULL;
}

void wh_mime_free(wh_mime_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nstrings; i++)
        free(t->strings[i]);
    free(t->strings);
    free(t->slots);
    free(t);
}

const char *wh_mime_lookup(const wh_mime_table *t, const char *path)
{
    static const char dflt[] = "application/octet-stream";
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!t || !dot || dot == base) return dflt;
    char ext[EXT_MAX];
    size_t n = 0;
    for (const char *p = dot + 1; *p; p++) {
        if (n + 1 >= EXT_MAX) return dflt;
        ext[n++] = (char)tolower((unsigned char)*p);
    }
    if (!n) return dflt;
    ext[n] = '\0';
    const struct mime_slot *s = find(t, ext);
    return s->ext[0] ? s->type : dflt;
}
