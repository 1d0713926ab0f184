/* The guestbook's form: its fields, limits and checks, shared by wharfd
 * and the concurrency-model lab. Pure functions: no I/O, no state. */
#ifndef WH_APPS_GUESTBOOK_FORM_H
#define WH_APPS_GUESTBOOK_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, in bytes after percent-decoding. */
#define WH_GB_NAME_MAX     64          /* longer name -> 413 */
#define WH_GB_MESSAGE_MAX  1024        /* longer message -> 413 */
#define WH_GB_BODY_MAX     8192        /* longer form body -> 413 (before any decoding) */
#define WH_GB_PAGE_ENTRIES 100         /* entries shown on the page */
#define WH_GB_KEEP_ENTRIES 1000        /* entries kept (older ones are trimmed) */
#define WH_GB_DEFAULT_NAME "Anonymous" /* used when the name field is empty */

/* Routes, the form's media type and its field names. */
#define WH_GB_PATH          "/guestbook"
#define WH_GB_CONTENT_TYPE  "application/x-www-form-urlencoded"
#define WH_GB_FIELD_NAME    "name"
#define WH_GB_FIELD_MESSAGE "message"
#define WH_GB_FIELD_TOKEN   "token" /* wharfd's per-form token (hidden field) */

/* Results of wh_gb_form_parse (0 = ok). */
enum wh_gb_form_result {
    WH_GB_FORM_OK = 0,
    WH_GB_FORM_BODY_TOO_LARGE,   /* body > WH_GB_BODY_MAX (413) */
    WH_GB_FORM_NAME_TOO_LONG,    /* name > WH_GB_NAME_MAX bytes (413) */
    WH_GB_FORM_MESSAGE_TOO_LONG, /* message > WH_GB_MESSAGE_MAX bytes (413) */
    WH_GB_FORM_MESSAGE_EMPTY,    /* missing or only whitespace (400) */
    WH_GB_FORM_BAD_ENCODING,     /* malformed %XX escape (400) */
    WH_GB_FORM_BAD_UTF8,         /* decoded bytes are not valid UTF-8 (400) */
    WH_GB_FORM_CONTROL_CHAR, /* NUL/control bytes (name: any; message: all but TAB/LF/CR) (400) */
    WH_GB_FORM_DUPLICATE_FIELD,  /* name or message given twice (400) */
    WH_GB_FORM_BAD_CONTENT_TYPE, /* for callers: not application/x-www-form-urlencoded (415) */
};

/* A parsed, validated form. Strings are NUL-terminated, valid UTF-8, with
 * leading/trailing whitespace trimmed; name is WH_GB_DEFAULT_NAME if empty. */
typedef struct wh_gb_form {
    char name[WH_GB_NAME_MAX + 1];
    size_t name_len;
    char message[WH_GB_MESSAGE_MAX + 1];
    size_t message_len;
} wh_gb_form;

/* Parses an application/x-www-form-urlencoded body with the decoder of
 * wharf/http_data.h (wh_http_form_next, wh_http_form_decode: '&'-separated,
 * '+' is space, %XX decoded, a malformed escape refused), then validates
 * the two fields; unknown fields are ignored. Returns WH_GB_FORM_OK or a
 * wh_gb_form_result error. */
int wh_gb_form_parse(const char *body, size_t len, wh_gb_form *out);
/* One-sentence reason for a wh_gb_form_result, for the error page; never NULL. */
const char *wh_gb_form_strerror(int result);
/* HTTP status for a wh_gb_form_result: 200 for OK, else 400, 413 or 415. */
int wh_gb_form_status(int result);
/* Removes, in place, characters that are invisible or reorder text: C1
 * controls (U+0080..U+009F), bidi embeddings, overrides and isolates
 * (U+202A..U+202E, U+2066..U+2069, U+061C), zero-width and invisible
 * characters (U+200B..U+200F, U+2060..U+2064, U+180E, U+FEFF). s should be
 * valid UTF-8. Returns the new length (NUL-terminated if shorter).
 * wh_gb_form_parse applies it to both fields; the page drops them too. */
size_t wh_gb_strip_invisible(char *s, size_t n);

/* Length of the invisible or reordering character (as wh_gb_strip_invisible
 * removes) encoded at p[0..left), or 0. */
size_t wh_gb_invisible_len(const char *p, size_t left);

#endif
