/* Response fields and heads: see resphead.h. */
#include "http/resphead.h"

#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

/* name (already known to be a token) equals lit (lowercase) ignoring case:
 * within tchar, only letters change under | 0x20. */
static bool name_is(const char *name, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((name[i] | 0x20) != lit[i]) return false;
    return true;
}

/* The Connection value lists "close" (RFC 9110 §7.6.1: a comma-separated
 * list of case-insensitive tokens). */
static bool lists_close(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == 5 && name_is(v + s, "close", 5)) return true;
    }
    return false;
}

static inline bool byte_ok(unsigned char c)
{
    /* CR or LF would end the field and start another (header injection);
     * other controls are refused by recipients (RFC 9110 §5.5). */
    return (c >= 0x20 || c == '\t') && c != 0x7f;
}

/* Every response checks its content type, so this runs per request: eight
 * bytes at a time (SWAR), looking at single bytes only in a word that holds
 * a control (HTAB is one, and allowed). Bytes >= 0x80 (obs-text) pass. */
static inline bool word_ok(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t w;
    memcpy(&w, p, 8);
    /* A byte below 0x20, or one equal to 0x7f (zero after the xor). */
    uint64_t del = w ^ (0x7f * ones);
    if (!((((w - 0x20 * ones) & ~w) | ((del - ones) & ~del)) & highs)) return true;
    for (int k = 0; k < 8; k++)
        if (!byte_ok((unsigned char)p[k])) return false;
    return true;
}

/* The bytes of v[0..n) may be sent in a field value. */
static inline bool span_ok(const char *v, size_t n)
{
    if (n < 8) {
        char pad[8] = "aaaaaaaa"; /* harmless filler for the bytes past the end */
        memcpy(pad, v, n);
        return word_ok(pad);
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (!word_ok(v + i)) return false;
    /* The last, partial word: the final eight bytes, overlapping the ones
     * already checked. */
    return i == n || word_ok(v + n - 8);
}

static bool value_ok(const char *v, size_t *len)
{
    *len = strlen(v);
    return span_ok(v, *len);
}

bool wh__resp_value_ok(const char *s)
{
    size_t n;
    return s && value_ok(s, &n);
}

bool wh__resp_value_len(const char *s, size_t *len)
{
    return s && value_ok(s, len);
}

int wh__resp_field_check(const char *name, const char *value, size_t *nl, size_t *vl)
{
    if (!name || !value) return -EINVAL;
    size_t n = 0;
    for (; name[n]; n++)
        if (!wh_http_is_tchar((unsigned char)name[n])) return -EINVAL;
    if (n == 0 || !value_ok(value, vl)) return -EINVAL;
    *nl = n;
    /* Only six names matter to the engine; their lengths tell them apart
     * from nearly every other field without a compare. */
    switch (n) {
    case 4:
        if (name_is(name, "date", 4)) return WH__RF_DATE;
        break;
    case 6:
        if (name_is(name, "server", 6)) return WH__RF_SERVER;
        break;
    case 10:
        /* Hop-by-hop (RFC 9110 §7.6.1): what this connection does is the
         * engine's to say. A handler may ask it to close; anything else
         * (keep-alive, upgrade) it cannot promise, so it is refused. */
        if (name_is(name, "connection", 10))
            return lists_close(value, *vl) ? WH__RF_CLOSE : -EINVAL;
        break;
    case 12:
        /* The content type is an argument of every respond call: a second
         * one here would give two Content-Type fields. */
        if (name_is(name, "content-type", 12)) return -EINVAL;
        break;
    case 14:
        /* Framing (RFC 9112 §6.3): a second Content-Length, or one beside
         * Transfer-Encoding, makes a proxy and a client split the stream
         * differently (response smuggling). The engine frames every body. */
        if (name_is(name, "content-length", 14)) return -EINVAL;
        break;
    case 17:
        if (name_is(name, "transfer-encoding", 17)) return -EINVAL;
        break;
    }
    return WH__RF_PLAIN;
}

static size_t line_len(const char *p, size_t len)
{
    const char *e = memchr(p, '\n', len);
    return e ? (size_t)(e - p) + 1 : len;
}

static bool starts(const char *p, size_t len, const char *lit, size_t n)
{
    return len >= n && memcmp(p, lit, n) == 0;
}

/* Makes room for want bytes in all (the inline buffer moves to the heap). */
static int lines_grow(const wh__resp_lines *l, size_t want)
{
    size_t cap = *l->cap ? *l->cap * 2 : 256;
    while (cap < want)
        cap *= 2;
    char *p = malloc(cap);
    if (!p) return -ENOMEM;
    memcpy(p, *l->p, *l->len);
    if (*l->p != l->inl) free(*l->p);
    *l->p = p;
    *l->cap = cap;
    return 0;
}

int wh__resp_lines_put(const wh__resp_lines *l, const wh__field *f, size_t n)
{
    size_t vl[16], need = 0;
    if (n > sizeof vl / sizeof vl[0]) return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        vl[i] = strlen(f[i].value);
        if (!span_ok(f[i].value, vl[i])) return -EINVAL;
        need += f[i].nl + vl[i] + 4;
    }
    size_t len = *l->len;
    if (len + need > *l->cap && lines_grow(l, len + need) < 0) return -ENOMEM;
    char *p = *l->p + len;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, f[i].name, f[i].nl);
        p += f[i].nl;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, f[i].value, vl[i]);
        p += vl[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *l->len = len + need;
    return 0;
}

int wh__resp_lines_raw(const wh__resp_lines *l, const char *text, size_t n)
{
    size_t len = *l->len;
    if (len + n > *l->cap && lines_grow(l, len + n) < 0) return -ENOMEM;
    memcpy(*l->p + len, text, n);
    *l->len = len + n;
    return 0;
}

int wh__resp_lines_add(const wh__resp_lines *l, int kind, const char *name, size_t nl,
                       const char *value, size_t vl)
{
    size_t len = *l->len, at = len;
    if (kind != WH__RF_PLAIN) {
        const char *p = *l->p;
        bool server = starts(p, len, "Server: ", 8);
        size_t off = server ? line_len(p, len) : 0;
        if (kind == WH__RF_SERVER) {
            if (server) return -EINVAL;
            at = 0;
            name = "Server";
        } else {
            if (starts(p + off, len - off, "Date: ", 6)) return -EINVAL;
            at = off;
            name = "Date";
        }
    }
    size_t need = nl + vl + 4;
    if (len + need > *l->cap && lines_grow(l, len + need) < 0) return -ENOMEM;
    char *p = *l->p + at;
    memmove(p + need, p, len - at);
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p = '\n';
    *l->len = len + need;
    return 0;
}

void wh__resp_head_own(wh_http_head_spec *h)
{
    const char *p = h->extra;
    size_t len = h->extra_len, off = 0;
    if (!len) return;
    if (starts(p, len, "Server: ", 8)) {
        h->server = NULL;
        off = line_len(p, len);
    }
    if (starts(p + off, len - off, "Date: ", 6)) h->date = NULL;
}

int wh__resp_chunk_line(char out[24], size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = hex[len & 15];
        len >>= 4;
    } while (len);
    int o = 0;
    while (n)
        out[o++] = tmp[--n];
    out[o++] = '\r';
    out[o++] = '\n';
    return o;
}
