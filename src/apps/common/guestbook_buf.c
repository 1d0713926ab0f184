/* The guestbook's growable string: see guestbook_buf.h. */
#include "apps/common/guestbook_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wh_gb_buf_init(wh_gb_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void wh_gb_buf_init_on(wh_gb_buf *b, char *mem, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->data = mem;
    b->cap = cap;
    if (cap) mem[0] = '\0';
}

void wh_gb_buf_free(wh_gb_buf *b)
{
    if (b->owned) free(b->data);
    memset(b, 0, sizeof(*b));
}

void wh_gb_buf_reset(wh_gb_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->cap) b->data[0] = '\0';
}

/* Makes room for n more bytes plus the NUL. */
static int buf_reserve(wh_gb_buf *b, size_t n)
{
    if (b->oom) return -ENOMEM;
    if (n < b->cap && b->len < b->cap - n) /* len + n + 1 <= cap, overflow-safe */
        return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return -ENOMEM;
    }
    size_t want = b->len + n + 1;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < want)
        cap *= 2;
    char *p;
    if (b->owned) {
        p = realloc(b->data, cap);
    } else {
        p = malloc(cap);
        if (p && b->len) memcpy(p, b->data, b->len);
    }
    if (!p) {
        b->oom = true;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    b->owned = true;
    return 0;
}

int wh_gb_buf_append(wh_gb_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0) return -ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int wh_gb_buf_puts(wh_gb_buf *b, const char *s)
{
    return wh_gb_buf_append(b, s, strlen(s));
}

int wh_gb_buf_printf(wh_gb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof(tmp)) return wh_gb_buf_append(b, tmp, (size_t)n);
    if (buf_reserve(b, (size_t)n) < 0) return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
