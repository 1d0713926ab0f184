/* The guestbook's pure parts, shared by wharfd (async, src/apps/wharfd) and
 * the concurrency-model lab (blocking, lab/): form parsing, HTML escaping,
 * page rendering, and the Redis data model (keys, entry encoding, commands).
 *
 * Nothing here does I/O, takes a lock or keeps state outside its arguments,
 * so every function is unit-tested and fuzzable on its own.
 *
 * Data model (the SAME for every server that shares a Redis):
 *   guestbook:entries   LIST, newest first (LPUSH), each item one entry
 *                       encoded by wh_gb_entry_encode() as a JSON object
 *                       {"t":<unix seconds>,"name":"...","msg":"..."}
 *                       (JSON so redis-cli shows it readably, and binary-safe
 *                       because every control byte is \u-escaped).
 *   guestbook:visitors  STRING counter, INCR once per page view (wharfd:
 *                       per GET that is not the redirect after a post).
 * A page view is   INCR guestbook:visitors ; LRANGE guestbook:entries 0 99
 * and a post is    LPUSH guestbook:entries <json> ; LTRIM guestbook:entries 0 999
 * each pair pipelined (one round trip). A post is acknowledged (303) only once
 * the LPUSH reply (an integer) has arrived. wh_gb_cmd_* fill argv arrays for
 * redisCommandArgv / redisAsyncCommandArgv.
 *
 * Typical blocking use (hiredis sync API):
 *     wh_gb_cmd c[2];
 *     wh_gb_cmd_visit(&c[0]); wh_gb_cmd_list(&c[1]);
 *     redisAppendCommandArgv(rc, c[0].argc, c[0].argv, c[0].argvlen); ... (same for c[1])
 *     redisGetReply(rc, &r1) -> INTEGER visitors; redisGetReply(rc, &r2) -> ARRAY
 *     wh_gb_buf page; wh_gb_buf_init(&page);
 *     wh_gb_render_page_encoded(&page, items, lens, n, visitors);   // items[i] =
 * r2->element[i]->str
 */
#ifndef WH_APPS_GUESTBOOK_PAGE_H
#define WH_APPS_GUESTBOOK_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, in bytes after percent-decoding. */
#define WH_GB_NAME_MAX     64          /* longer name -> 413 */
#define WH_GB_MESSAGE_MAX  1024        /* longer message -> 413 */
#define WH_GB_BODY_MAX     8192        /* longer form body -> 413 (before any decoding) */
#define WH_GB_PAGE_ENTRIES 100         /* entries shown on the page (LRANGE 0 99) */
#define WH_GB_KEEP_ENTRIES 1000        /* entries kept (LTRIM 0 999; embedded store bound) */
#define WH_GB_DEFAULT_NAME "Anonymous" /* used when the name field is empty */

/* Redis keys. */
#define WH_GB_KEY_ENTRIES  "guestbook:entries"
#define WH_GB_KEY_VISITORS "guestbook:visitors"

/* Routes, the form's media type and its field names. */
#define WH_GB_PATH          "/guestbook"
#define WH_GB_CONTENT_TYPE  "application/x-www-form-urlencoded"
#define WH_GB_FIELD_NAME    "name"
#define WH_GB_FIELD_MESSAGE "message"
#define WH_GB_FIELD_TOKEN   "token" /* wharfd's per-form token (hidden field) */

/* ---- growable string ---------------------------------------------------- */

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

/* ---- form ---------------------------------------------------------------- */

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
/* True if s[0..n) is valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
bool wh_gb_utf8_valid(const char *s, size_t n);
/* Removes, in place, characters that are invisible or reorder text: C1
 * controls (U+0080..U+009F), bidi embeddings, overrides and isolates
 * (U+202A..U+202E, U+2066..U+2069, U+061C), zero-width and invisible
 * characters (U+200B..U+200F, U+2060..U+2064, U+180E, U+FEFF). s should be
 * valid UTF-8. Returns the new length (NUL-terminated if shorter).
 * wh_gb_form_parse applies it to both fields; the page drops them too. */
size_t wh_gb_strip_invisible(char *s, size_t n);

/* ---- HTML ---------------------------------------------------------------- */

/* Appends s[0..n) HTML-escaped for text and quoted attribute values
 * (& < > " ' become entities). 0 or -ENOMEM. */
int wh_gb_html_escape(wh_gb_buf *out, const char *s, size_t n);

/* One entry as shown; strings need not be NUL-terminated. */
typedef struct wh_gb_entry {
    int64_t time_s; /* unix seconds when posted (0 = unknown) */
    const char *name;
    size_t name_len;
    const char *msg;
    size_t msg_len;
} wh_gb_entry;

/* Appends the full guestbook page: visitor counter, the form, and entries[0..n)
 * in the given order (callers pass newest first). User text is escaped,
 * shown without invisible characters (wh_gb_strip_invisible) and inside
 * <bdi> (class "name" and "msg"). 0 or -ENOMEM. */
int wh_gb_render_page(wh_gb_buf *out, const wh_gb_entry *entries, size_t n, uint64_t visitors);
/* Same, from encoded items (as stored in Redis): items[i] has lens[i] bytes.
 * Items that fail to decode are skipped (shown nowhere). 0 or -ENOMEM. */
int wh_gb_render_page_encoded(wh_gb_buf *out, const char *const *items, const size_t *lens,
                              size_t n, uint64_t visitors);
/* Same, with a hidden form field WH_GB_FIELD_TOKEN holding token (NULL: none). */
int wh_gb_render_page_token(wh_gb_buf *out, const char *const *items, const size_t *lens, size_t n,
                            uint64_t visitors, const char *token);
/* Appends an error page for status with an escaped reason and a link back. 0 or -ENOMEM. */
int wh_gb_render_error(wh_gb_buf *out, int status, const char *reason);

/* ---- entry encoding (the value stored in the list) ---------------------- */

/* Appends the JSON encoding of an entry: {"t":T,"name":"..","msg":".."}.
 * Non-ASCII UTF-8 is kept as is; '"', '\\' and bytes < 0x20 are escaped. */
int wh_gb_entry_encode(wh_gb_buf *out, int64_t time_s, const char *name, size_t name_len,
                       const char *msg, size_t msg_len);
/* Decodes an encoded entry. Decoded strings are written into scratch, which
 * must hold at least len bytes (decoding never lengthens); e's pointers point
 * there. Accepts any JSON object with those members (any order, other members
 * ignored, \uXXXX incl. surrogate pairs). 0, or -EINVAL if malformed, -ENOSPC
 * if scratch_cap < len. */
int wh_gb_entry_decode(const char *s, size_t len, wh_gb_entry *e, char *scratch,
                       size_t scratch_cap);

/* ---- Redis commands ------------------------------------------------------ */

/* One command as an argv array for redis(Async)CommandArgv / redisAppendCommandArgv.
 * argv may point into strings owned by the caller (the entry encoding). */
typedef struct wh_gb_cmd {
    int argc;
    const char *argv[4];
    size_t argvlen[4];
} wh_gb_cmd;

/* INCR guestbook:visitors  (reply: INTEGER, the new count) */
void wh_gb_cmd_visit(wh_gb_cmd *c);
/* GET guestbook:visitors  (reply: STRING, or NIL before the first visit):
 * a page shown without counting a visit (HEAD) */
void wh_gb_cmd_visitors(wh_gb_cmd *c);
/* LRANGE guestbook:entries 0 99  (reply: ARRAY of encoded entries, newest first) */
void wh_gb_cmd_list(wh_gb_cmd *c);
/* LPUSH guestbook:entries <enc>  (reply: INTEGER, the list length; this is the ack) */
void wh_gb_cmd_add(wh_gb_cmd *c, const char *enc, size_t enc_len);
/* LTRIM guestbook:entries 0 999  (reply: STATUS OK; sent right after LPUSH) */
void wh_gb_cmd_trim(wh_gb_cmd *c);

#endif
