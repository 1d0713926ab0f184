/* A growable byte string for building guestbook pages and error pages. */
#ifndef WH_APPS_GUESTBOOK_BUF_H
#define WH_APPS_GUESTBOOK_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* A byte string that grows with malloc. It may start on caller storage
 * (wh_gb_buf_init_on): it moves to the heap only when that is too small.
 * After an allocation failure every append is a no-op and oom stays true,
 * so callers check once at the end. data is always NUL-terminated when
 * cap > 0. */
typedef struct wh_gb_buf {
    char *data;
    size_t len;
    size_t cap;
    bool owned; /* data is malloc'ed by us */
    bool oom;   /* an append failed; contents are truncated */
} wh_gb_buf;

/* Starts an empty heap buffer (no allocation until the first append). */
void wh_gb_buf_init(wh_gb_buf *b);
/* Starts an empty buffer on caller storage mem[cap] (grows to the heap if needed). */
void wh_gb_buf_init_on(wh_gb_buf *b, char *mem, size_t cap);
/* Frees heap storage (not caller storage); the buffer is empty afterwards. */
void wh_gb_buf_free(wh_gb_buf *b);
/* Empties the buffer, keeping its storage. */
void wh_gb_buf_reset(wh_gb_buf *b);
/* Appends n bytes. 0 or -ENOMEM (then b->oom is set). */
int wh_gb_buf_append(wh_gb_buf *b, const void *p, size_t n);
/* Appends a NUL-terminated string. 0 or -ENOMEM. */
int wh_gb_buf_puts(wh_gb_buf *b, const char *s);
/* Appends printf-formatted text. 0 or -ENOMEM. */
int wh_gb_buf_printf(wh_gb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
