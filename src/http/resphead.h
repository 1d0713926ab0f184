/* Building a response head from what a handler asked for: the checks on its
 * fields, the store of its extra lines, and the head itself. Pure functions
 * (no connection, no request object) so that response.c and the fuzzer
 * (tests/fuzz/fuzz_http_response.c) run the very same code. */
#ifndef WH_HTTP_RESPHEAD_H
#define WH_HTTP_RESPHEAD_H

#include "wharf/http_parse.h"

/* What a handler's field is to the engine (wh__resp_field_check). */
enum {
    WH__RF_PLAIN = 0,  /* an end-to-end field: sent as given */
    WH__RF_SERVER = 1, /* replaces the engine's Server */
    WH__RF_DATE = 2,   /* replaces the engine's Date */
    WH__RF_CLOSE = 3,  /* Connection with "close": the engine closes after the response */
};

/* Checks a field a handler adds: name a token (RFC 9110 §5.6.2), value free
 * of CTLs but HTAB (§5.5). Content-Length and Transfer-Encoding are the
 * engine's (framing), so is Connection unless it asks to close. Returns a
 * WH__RF_* kind, or -EINVAL; *nl and *vl get the lengths. */
int wh__resp_field_check(const char *name, const char *value, size_t *nl, size_t *vl);

/* True if s may be sent as a field value (a content type). */
bool wh__resp_value_ok(const char *s);
/* The same check, also giving strlen(s) in *len. */
bool wh__resp_value_len(const char *s, size_t *len);

/* True for a status a final response may carry (RFC 9110 §15: 1xx are
 * interim and the engine's own, 600 and above are invalid). Inline: every
 * response asks. */
static inline bool wh__resp_status_ok(int status)
{
    return status >= 200 && status <= 599;
}

/* True for a status whose response never has content (RFC 9110 §6.4.1). */
static inline bool wh__resp_bodyless(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* A handler's extra lines, "Name: value\r\n" each. Its own Server, then its
 * own Date, come first, so the head builder sees them without a search.
 * Storage starts in an inline buffer (inl) and moves to the heap to grow. */
typedef struct wh__resp_lines {
    char **p;
    size_t *len, *cap;
    char *inl;
} wh__resp_lines;

/* Adds a field checked by wh__resp_field_check (kind PLAIN, SERVER or DATE).
 * 0, -EINVAL for a second Server or Date (a repeated one would leave the
 * client to pick), or -ENOMEM. */
int wh__resp_lines_add(const wh__resp_lines *l, int kind, const char *name, size_t nl,
                       const char *value, size_t vl);

/* One field of a batch for wh__resp_lines_put: name is a token the caller
 * vouches for (a literal), nl its length. */
typedef struct wh__field {
    const char *name;
    size_t nl;
    const char *value;
} wh__field;

/* Appends n PLAIN fields, each value checked as wh__resp_value_ok does, with
 * one capacity check for all: the file server adds three to five per
 * response. 0, -EINVAL (a bad value: nothing appended) or -ENOMEM. */
int wh__resp_lines_put(const wh__resp_lines *l, const wh__field *f, size_t n);

/* Appends n bytes of "Name: value\r\n" lines that were checked when they
 * were made (wh_static_fields_make): one copy. 0 or -ENOMEM. */
int wh__resp_lines_raw(const wh__resp_lines *l, const char *text, size_t n);

/* Drops h->server and h->date where h->extra (built by wh__resp_lines_add)
 * carries the handler's own. */
void wh__resp_head_own(wh_http_head_spec *h);

/* Writes the size line of a chunk of len bytes (RFC 9112 §7.1) into out;
 * returns its length. */
int wh__resp_chunk_line(char out[24], size_t len);

#endif
