/* wharf: decoding request data. Query strings and urlencoded forms, path
 * parameters, header values, cookies and multipart/form-data uploads.
 *
 * Most functions are pure: they read a wh_str and write slices of it or the
 * caller's buffer, allocate nothing and keep no state outside their
 * arguments. The wh_http_req_* wrappers apply them to a request through the
 * accessors of wharf/http.h. Errors are negative errno values:
 *   -EINVAL        malformed input (a '%' without two hex digits after it, ...)
 *   -ENOENT        no such field, parameter or cookie
 *   -ENOSPC        the caller's buffer is too small
 *   -EBADMSG       a multipart body breaks RFC 2046 / RFC 7578
 *   -EMSGSIZE, -E2BIG, -ENAMETOOLONG   a multipart limit was exceeded
 *   -ENOTSUP       a body that is not a form (answer 415)
 * Functions that return a value in (buf, cap) add a NUL after it, so cap
 * must exceed the length; the raw decoders (wh_http_pct_decode,
 * wh_http_form_decode) write no NUL.
 *
 *     char page[16];
 *     ssize_t n = wh_http_req_query_get(r, "page", page, sizeof page);
 *     if (n == -ENOENT) ... absent; else if (n < 0) ... 400; else use page
 *
 * Path parameters (wh_http_req_param, filled by wh_router_handle) arrive
 * percent-decoded: "/items/%32" gives "2" for "/items/:id". A parameter
 * whose escape is malformed or that decodes to '/' or NUL makes its route
 * not match; if no other route matches, the router answers 400. '+' in a
 * path is itself (it means a space only in form encoding). Decoded
 * parameters of one request share a 256-byte buffer; more -> 414. A
 * decoded parameter may still be "." or ".."; never use one as a file name
 * unchecked.
 */
#ifndef WHARF_HTTP_DATA_H
#define WHARF_HTTP_DATA_H

#include <sys/types.h>

#include "wharf/common.h"
#include "wharf/http.h"

WH_BEGIN_DECLS

/* ---- Percent-decoding -------------------------------------------------- */

/* The value of hex digit c (0-9, a-f, A-F), or -1. */
int wh_http_hex_digit(int c);

/* RFC 3986 §2.1 percent-decoding of in into out[0..cap): "%XX" becomes one
 * byte, everything else ('+' included) is copied. out may be in.p (decoding
 * never lengthens); out NULL only validates. Returns the decoded length,
 * -EINVAL if a '%' is not followed by two hex digits, -ENOSPC if out is
 * too small. Writes no NUL. */
ssize_t wh_http_pct_decode(wh_str in, char *out, size_t cap);

/* The same for application/x-www-form-urlencoded names and values (WHATWG
 * URL standard, section "application/x-www-form-urlencoded"): '+' decodes
 * to a space as well. */
ssize_t wh_http_form_decode(wh_str in, char *out, size_t cap);

/* ---- application/x-www-form-urlencoded: query strings, form bodies ---- */

/* One name=value pair of a urlencoded string, still encoded. */
typedef struct wh_http_form_pair {
    wh_str name;  /* before the first '=' (may be empty) */
    wh_str value; /* after it; empty when the pair has no '=' */
} wh_http_form_pair;

/* Walks the pairs of a urlencoded string (start with wh_http_form_iter_init). */
typedef struct wh_http_form_iter {
    const char *p, *end;
} wh_http_form_iter;

/* Starts iterating the pairs of s (a query without its '?', or a form body). */
void wh_http_form_iter_init(wh_http_form_iter *it, wh_str s);
/* Stores the next pair in *out and returns true, or returns false at the
 * end. Pairs are separated by '&' only, empty ones are skipped. Decode the
 * slices with wh_http_form_decode (it reports malformed escapes). */
bool wh_http_form_next(wh_http_form_iter *it, wh_http_form_pair *out);
/* True if the encoded name raw decodes to name; false if it differs or is
 * malformed. Needs no buffer. */
bool wh_http_form_name_eq(wh_str raw, const char *name);
/* Decodes the value of the first pair of s named name into buf
 * (NUL-terminated). Returns its length (0 for "a=" and for "a"), -ENOENT if
 * there is no such pair, -EINVAL if s has a malformed escape anywhere,
 * -ENOSPC if buf cannot hold the value and a NUL. */
ssize_t wh_http_form_get(wh_str s, const char *name, char *buf, size_t cap);
/* wh_http_form_get on the request's query. */
ssize_t wh_http_req_query_get(const wh_http_req *r, const char *name, char *buf, size_t cap);

/* ---- Header fields ------------------------------------------------------ */

/* Stores in *value the next value of field name (case-insensitive) at or
 * after header index *pos, advances *pos past it and returns true; false
 * when there is none. Start with *pos = 0. Repeated fields each count. */
bool wh_http_req_header_next(const wh_http_req *r, const char *name, unsigned *pos, wh_str *value);
/* Every value of field name joined into buf (NUL-terminated) as one value:
 * with ", " (RFC 9110 §5.3), or "; " for Cookie (RFC 9113 §8.2.3). Empty
 * values are left out. Returns the length, -ENOENT if the field is absent,
 * -ENOSPC, or -EINVAL for Set-Cookie, which cannot be joined. */
ssize_t wh_http_req_header_join(const wh_http_req *r, const char *name, char *buf, size_t cap);
/* True if the media type of a Content-Type value (type "/" subtype, before
 * any ';') equals mime, case-insensitive (RFC 9110 §8.3.1). */
bool wh_http_media_type_is(wh_str content_type, const char *mime);
/* Copies parameter name (case-insensitive) of a value of the form
 * `token *( OWS ";" OWS name=value )` (RFC 9110 §5.6.6; Content-Type,
 * Content-Disposition) into buf, unquoted, NUL-terminated. Returns its
 * length, -ENOENT if absent, -EINVAL if the parameters are malformed or
 * name is given twice, -ENOSPC. */
ssize_t wh_http_header_param(wh_str value, const char *name, char *buf, size_t cap);

/* ---- Cookies (RFC 6265) -------------------------------------------------- */

/* Walks cookie-pairs of one Cookie value or of all Cookie fields of a request. */
typedef struct wh_http_cookie_iter {
    const char *p, *end;    /* the rest of the current field value */
    const wh_http_req *req; /* NULL: a single value */
    unsigned field;         /* next header index to look at */
} wh_http_cookie_iter;

/* Starts iterating the cookie-pairs of one Cookie field value. */
void wh_http_cookie_iter_init(wh_http_cookie_iter *it, wh_str cookie);
/* Starts iterating the cookie-pairs of every Cookie field of r, in order. */
void wh_http_req_cookie_iter_init(wh_http_cookie_iter *it, const wh_http_req *r);
/* Stores the next cookie's name and value (slices) and returns true, or
 * returns false at the end. Pairs are split on ';', blanks around names and
 * values are dropped, one pair of DQUOTEs around a value is removed, nothing
 * is percent-decoded. A pair without '=' has an empty name (a browser sends
 * a nameless cookie that way). */
bool wh_http_cookie_next(wh_http_cookie_iter *it, wh_str *name, wh_str *value);
/* The value of the first cookie named name in one Cookie value; .p NULL if absent. */
wh_str wh_http_cookie_find(wh_str cookie, const char *name);
/* The value of the first cookie named name in any Cookie field of r; .p NULL if absent. */
wh_str wh_http_req_cookie(const wh_http_req *r, const char *name);

/* ---- multipart/form-data (RFC 7578; body syntax RFC 2046 §5.1.1) ------- */

#define WH_HTTP_MULTIPART_BOUNDARY_MAX   70   /* RFC 2046 §5.1.1 */
#define WH_HTTP_MULTIPART_HEADER_DEFAULT 2048 /* part header bytes the conveniences allow */

/* Copies the boundary parameter of a multipart Content-Type value into buf
 * (cap > 70 always suffices). Returns its length, -ENOENT if absent,
 * -EINVAL if it is not 1-70 bchars without a trailing space, or repeated,
 * -ENOSPC. */
int wh_http_multipart_boundary(wh_str content_type, char *buf, size_t cap);

/* What wh_http_multipart_feed found. */
enum wh_http_multipart_event {
    WH_HTTP_MULTIPART_MORE = 0,     /* the input is used up: feed the next piece */
    WH_HTTP_MULTIPART_PART = 1,     /* a part begins: see mp->part */
    WH_HTTP_MULTIPART_DATA = 2,     /* *data is the next piece of the part's content */
    WH_HTTP_MULTIPART_PART_END = 3, /* the part's content is complete */
    WH_HTTP_MULTIPART_DONE = 4,     /* the close delimiter: the rest is epilogue */
};

/* One part's header fields. Slices into the parser's header buffer, valid
 * until the next part begins. */
typedef struct wh_http_part {
    wh_str name;         /* Content-Disposition: form-data; name=, unquoted */
    wh_str filename;     /* filename=, unquoted, as sent (may hold a path: never
                            use it as one); .p NULL if none */
    wh_str content_type; /* .p NULL if none (then text/plain, RFC 7578 §4.4) */
    unsigned index;      /* 0 for the first part */
} wh_http_part;

/* An incremental multipart/form-data parser. It holds a part's header block
 * (in the caller's buffer) and a partial delimiter (a count), nothing else,
 * so a body of any size is parsed in bounded memory. */
typedef struct wh_http_multipart {
    /* Limits, set by wh_http_multipart_init; change them before feeding. */
    unsigned max_parts; /* more parts -> -E2BIG: 128 */
    size_t max_name;    /* a longer name= -> -ENAMETOOLONG: 256 */
    wh_http_part part;  /* the current part, after WH_HTTP_MULTIPART_PART */
    /* After an error: the body offset where it was found and a short
     * static reason, for logs. */
    uint64_t err_off;
    const char *err;
    /* Private. */
    uint64_t off; /* body bytes consumed by earlier feeds */
    char *hbuf;
    size_t hcap, hlen;
    int error;
    unsigned nparts;
    uint8_t state, dlen, held, virt;
    char delim[4 + WH_HTTP_MULTIPART_BOUNDARY_MAX];
} wh_http_multipart;

/* Prepares mp for a body with this boundary (from wh_http_multipart_boundary);
 * part header blocks are kept in hbuf[0..hcap), which bounds them (larger ->
 * -EMSGSIZE). 0, or -EINVAL for a bad boundary or hcap < 64. */
int wh_http_multipart_init(wh_http_multipart *mp, wh_str boundary, char *hbuf, size_t hcap);
/* Parses in[*pos..len) up to the next event, advances *pos past what it used
 * and returns the event; for WH_HTTP_MULTIPART_DATA *data is a slice of in
 * or of mp, valid until the next call. MORE means in is used up (*pos ==
 * len). Returns a negative errno for a malformed body or an exceeded limit
 * (mp->err_off, mp->err); it is returned again by later calls. Any split of
 * a body gives the same events and content. */
int wh_http_multipart_feed(wh_http_multipart *mp, const char *in, size_t len, size_t *pos,
                           wh_str *data);
/* Ends the body: 0 if the close delimiter was seen, else -EBADMSG (or the
 * earlier error). */
int wh_http_multipart_finish(wh_http_multipart *mp);
/* For a complete body in memory: stores the next part in mp->part and its
 * whole content in *data (a slice of body) and returns 1; 0 after the last
 * part; a negative errno if the body is malformed. Start with *pos = 0 and
 * feed the same body every call. */
int wh_http_multipart_next(wh_http_multipart *mp, wh_str body, size_t *pos, wh_str *data);
/* Copies the content of the first part named name of a complete body into
 * buf (NUL-terminated). Returns its length, -ENOENT, -ENOSPC, or an error
 * of wh_http_multipart_feed (part headers up to
 * WH_HTTP_MULTIPART_HEADER_DEFAULT bytes). */
ssize_t wh_http_multipart_get(wh_str body, wh_str boundary, const char *name, char *buf,
                              size_t cap);

/* ---- Forms ----------------------------------------------------------------- */

/* Copies form field name of r's body into buf (NUL-terminated): decoded
 * for application/x-www-form-urlencoded (wh_http_form_get), the first
 * part's content for multipart/form-data (wh_http_multipart_get). Returns
 * its length, -ENOENT, -ENOTSUP if the body is neither (415), -EINVAL or
 * -EBADMSG if malformed (400), -ENOSPC. */
ssize_t wh_http_req_form_get(const wh_http_req *r, const char *name, char *buf, size_t cap);

WH_END_DECLS

#endif
