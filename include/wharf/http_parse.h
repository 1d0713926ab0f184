/* wharf HTTP/1.1 request parsing and response-head formatting (RFC 9112,
 * RFC 9110) for servers that do their own I/O: pure functions over a buffer,
 * the same ones the event-driven engine (wharf/http.h) uses. No allocation,
 * no global state: results are slices into the caller's buffer, valid as
 * long as the buffer is.
 *
 * Usage (picohttpparser style):
 *     wh_http_limits lim; wh_http_limits_init(&lim);
 *     wh_http_parsed req;
 *     int n = wh_http_parse_request(buf, len, &req, &lim);
 *     n > 0                    head complete, n bytes long; body framing in req
 *     n == WH_HTTP_INCOMPLETE  read more and call again with the longer buffer
 *     n == WH_HTTP_ERROR       answer req.status (400/413/414/417/431/501/505)
 *                              and close the connection
 *
 * The path comes with its dot-segments removed (RFC 3986 §5.2.4; "." and ".."
 * also when written with %2E), so "/a/../b" is "/b"; a path that climbs above
 * the root ("/../x") is answered with 400. The target stays as sent (logs).
 *
 * Line endings: only CRLF. A bare LF (or a bare CR) anywhere in the head is
 * answered with 400. RFC 9112 §2.2 lets a recipient accept a lone LF, but a
 * hop that accepts it and a hop that does not disagree about where a header
 * ends, which is how requests get smuggled; every real client sends CRLF.
 */
#ifndef WHARF_HTTP_PARSE_H
#define WHARF_HTTP_PARSE_H

#include <time.h>

#include "wharf/common.h"
#include "wharf/http.h"

#define WH_HTTP_ERROR      (-1) /* invalid; the status to answer is in out->status */
#define WH_HTTP_INCOMPLETE (-2) /* need more bytes */

/* Size of the fixed header array; wh_http_limits.max_headers is clamped to it. */
#define WH_HTTP_MAX_HEADERS 128

/* Room for a path rewritten by dot-segment removal (wh_http_parsed.path_buf);
 * a longer path that has dot-segments is answered with 414. */
#define WH_HTTP_PATH_BUF 2048

WH_BEGIN_DECLS

typedef struct wh_http_limits {
    size_t max_request_line; /* request line without CRLF; longer -> 414 (8192) */
    size_t max_header_bytes; /* header fields after the request line, incl. the
                                final CRLF; longer -> 431 (16384) */
    unsigned max_headers;    /* field lines; more -> 431 (64, at most WH_HTTP_MAX_HEADERS) */
    uint64_t max_body;       /* Content-Length above it -> 413; 0 = no limit (1 MiB) */
} wh_http_limits;

/* Well-known methods (RFC 9110 §9, PATCH from RFC 5789); anything else that
 * is a valid token is WH_HTTP_M_OTHER (an extension method). */
enum wh_http_method {
    WH_HTTP_M_OTHER = 0,
    WH_HTTP_M_GET,
    WH_HTTP_M_HEAD,
    WH_HTTP_M_POST,
    WH_HTTP_M_PUT,
    WH_HTTP_M_DELETE,
    WH_HTTP_M_CONNECT,
    WH_HTTP_M_OPTIONS,
    WH_HTTP_M_TRACE,
    WH_HTTP_M_PATCH,
};

/* Request-target forms (RFC 9112 §3.2). */
enum wh_http_target_form {
    WH_HTTP_T_ORIGIN = 0,    /* "/path?query" */
    WH_HTTP_T_ABSOLUTE = 1,  /* "http://host/path?query" */
    WH_HTTP_T_AUTHORITY = 2, /* "host:port", CONNECT only */
    WH_HTTP_T_ASTERISK = 3,  /* "*", OPTIONS only */
};

/* How the body is delimited (RFC 9112 §6.3). Requests never read to close. */
enum wh_http_framing {
    WH_HTTP_BODY_NONE = 0,    /* no body */
    WH_HTTP_BODY_LENGTH = 1,  /* content_length bytes follow the head */
    WH_HTTP_BODY_CHUNKED = 2, /* chunked; decode with wh_http_chunked_decode */
    WH_HTTP_BODY_CLOSE = 3,   /* responses only: the body ends when the connection closes */
};

typedef struct wh_http_header {
    wh_str name;  /* as sent (case preserved) */
    wh_str value; /* leading/trailing whitespace removed */
} wh_http_header;

typedef struct wh_http_parsed {
    wh_str method;
    wh_str target;        /* as sent */
    wh_str path;          /* origin/absolute form: path part ("/" if the absolute URI has none),
                             still percent-encoded, dot-segments removed: a slice of the
                             target, or of path_buf when removing them changed it;
                             asterisk: "*"; authority: the authority */
    wh_str query;         /* after '?' (without it); empty if none */
    wh_str host;          /* Host field value (.p NULL if absent) */
    uint8_t method_id;    /* enum wh_http_method */
    uint8_t target_form;  /* enum wh_http_target_form */
    uint8_t version;      /* 10 or 11 (HTTP/1.2 to 1.9 are served as 1.1, RFC 9110 §2.5) */
    uint8_t framing;      /* enum wh_http_framing */
    bool keep_alive;      /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    bool upgrade;         /* "Connection: upgrade" and an Upgrade field */
    bool expect_continue; /* "Expect: 100-continue" on an HTTP/1.1 request */
    bool has_host;
    uint64_t content_length; /* when framing == WH_HTTP_BODY_LENGTH */
    size_t head_len;         /* bytes of the head (the return value on success) */
    unsigned nheaders;
    int status;        /* on WH_HTTP_ERROR: the status to answer; else 0 */
    const char *error; /* on WH_HTTP_ERROR: a short static reason, for logs */
    wh_http_header headers[WH_HTTP_MAX_HEADERS];
    /* Where path lives when dot-segment removal rewrote it. A copy of the
     * struct still points into the original's. */
    char path_buf[WH_HTTP_PATH_BUF];
} wh_http_parsed;

/* Fills lim with the defaults listed in wh_http_limits. */
void wh_http_limits_init(wh_http_limits *lim);

/* Parses a request head in buf[0..len). Returns the head length (> 0),
 * WH_HTTP_INCOMPLETE, or WH_HTTP_ERROR with out->status set. lim may be NULL
 * (defaults). Splitting the same bytes differently never changes the result.
 * buf is never written: a path with dot-segments is rewritten into
 * out->path_buf. */
int wh_http_parse_request(const char *buf, size_t len, wh_http_parsed *out,
                          const wh_http_limits *lim);

/* Same, but bytes buf[0..last_len) were already seen by an INCOMPLETE call,
 * so the search for the end of the head resumes there (keeps a slow,
 * byte-at-a-time sender from costing O(n^2)). */
int wh_http_parse_request_from(const char *buf, size_t len, size_t last_len, wh_http_parsed *out,
                               const wh_http_limits *lim);

/* First value of a header in a parsed request (case-insensitive); .p NULL if absent. */
wh_str wh_http_parsed_header(const wh_http_parsed *req, const char *name);

/* ---- Chunked transfer coding (RFC 9112 §7.1) ---------------------------- */

/* Incremental decoder. Zero it or call wh_http_chunked_init, then feed it. */
typedef struct wh_http_chunked {
    uint64_t remaining; /* bytes left in the current chunk (or size being read) */
    uint64_t total;     /* decoded bytes so far */
    uint64_t max_body;  /* decoded total above it -> 413; 0 = no limit */
    uint32_t aux;       /* bytes in the current extension / trailer section */
    uint8_t state;
    uint8_t flags;
    int status; /* on WH_HTTP_ERROR: 400 or 413 */
} wh_http_chunked;

/* Resets the decoder; max_body 0 = no limit. */
void wh_http_chunked_init(wh_http_chunked *d, uint64_t max_body);

/* Decodes in place. Raw input is buf[*in_pos..len); decoded bytes are written
 * at buf[*out_pos..] (out_pos <= in_pos always, so one buffer serves both, or
 * pass distinct regions of one buffer). Both positions advance. Returns 0
 * when the last chunk and trailers are done (*in_pos is then just past the
 * message), WH_HTTP_INCOMPLETE when it needs more input, or WH_HTTP_ERROR
 * with d->status set. Chunk extensions are skipped, trailers validated and
 * dropped. Any split of the input gives the same output. */
int wh_http_chunked_decode(wh_http_chunked *d, char *buf, size_t len, size_t *in_pos,
                           size_t *out_pos);

/* ---- Response heads --------------------------------------------------- */

/* A parsed response head (what a client, a proxy or a test reads back). */
typedef struct wh_http_parsed_response {
    int status;              /* 100..999 */
    uint8_t version;         /* 10 or 11 */
    uint8_t framing;         /* enum wh_http_framing, from the fields and the status (1xx, 204,
                                304: none); a response to HEAD has no body whatever it says */
    bool keep_alive;         /* as for requests, and never when the body runs to the close */
    wh_str reason;           /* reason phrase, possibly empty */
    uint64_t content_length; /* when framing == WH_HTTP_BODY_LENGTH */
    size_t head_len;         /* bytes of the head (the return value on success) */
    unsigned nheaders;
    const char *error; /* on WH_HTTP_ERROR: a short static reason */
    wh_http_header headers[WH_HTTP_MAX_HEADERS];
} wh_http_parsed_response;

/* Parses a response head in buf[0..len) as strictly as a request head (CRLF
 * only, token names, no controls in values, one Content-Length, none beside
 * Transfer-Encoding). Returns the head length (> 0), WH_HTTP_INCOMPLETE or
 * WH_HTTP_ERROR (out->error says why). lim may be NULL (defaults; its
 * request-line limit bounds the status line, max_body is not used). */
int wh_http_parse_response(const char *buf, size_t len, wh_http_parsed_response *out,
                           const wh_http_limits *lim);

typedef struct wh_http_head_spec {
    int status;
    const char *content_type; /* NULL: no Content-Type */
    int64_t content_length;   /* < 0: no Content-Length */
    bool chunked;             /* Transfer-Encoding: chunked */
    bool close;               /* Connection: close */
    bool keep_alive;          /* Connection: keep-alive (for HTTP/1.0 peers) */
    const char *date;         /* 29-char IMF-fixdate or NULL */
    const char *server;       /* Server value or NULL */
    const char *extra;        /* pre-formatted "Name: value\r\n" lines, or NULL */
    size_t extra_len;
} wh_http_head_spec;

/* Writes "HTTP/1.1 <status> <reason>\r\n", the fields of h and the blank
 * line into buf. Returns the length or -ENOSPC. */
int wh_http_format_head(char *buf, size_t cap, const wh_http_head_spec *h);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110
 * §5.6.7) into out (30 bytes with the NUL). */
void wh_http_format_date(time_t t, char out[30]);

WH_END_DECLS

#endif
