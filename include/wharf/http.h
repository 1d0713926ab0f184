/* wharf HTTP/1.1 server engine (RFC 9110, RFC 9112): a strict incremental
 * parser, keep-alive and pipelining, responses from memory, files or chunked
 * streams, a router, and an upgrade hook.
 *
 * HTTP is a protocol on wh_conn: a wh_http_server is a set of options and a
 * handler, and any host runs its connections. On a loop of your own:
 *
 *     wh_http_server_listen(hs, loop, "127.0.0.1:8080", NULL, &listener);
 *
 * on the multi-threaded wh_server (server.h):
 *
 *     wh_server_opts so; wh_server_opts_init(&so);
 *     wh_http_server_net_opts(hs, &so.net);
 *     wh_server_new(&srv, &so, wh_http_server_cbs(hs), hs);
 *
 * or on a connection you accepted yourself: wh_http_server_serve(hs, c).
 *
 * A wh_http_req is one request/response exchange on one connection. Request
 * data (method, target, headers, body) are slices into the connection's read
 * buffer, valid until the response is finished. A handler either responds
 * before returning or keeps r and responds later (asynchronously) from the
 * same loop thread.
 */
#ifndef WHARF_HTTP_H
#define WHARF_HTTP_H

#include <sys/types.h>

#include "wharf/common.h"
#include "wharf/net.h"

WH_BEGIN_DECLS

typedef struct wh_http_req wh_http_req;
typedef struct wh_http_server wh_http_server;
typedef struct wh_router wh_router;

/* A slice of bytes that is not NUL-terminated. */
typedef struct wh_str {
    const char *p;
    size_t len;
} wh_str;

typedef void (*wh_http_handler)(wh_http_req *r, void *ud);

/* Request bodies in pieces (wh_http_req_read_body). status is
 * WH_HTTP_BODY_MORE while more follows, WH_HTTP_BODY_END with the last piece
 * (len may be 0), or a negative errno when the body ended early (-ECONNRESET:
 * the peer went away; -EPROTO: malformed chunked coding); then no further
 * call comes, and r must still be answered (the respond call returns -EPIPE
 * if the connection is gone). data is valid during the call only. */
typedef void (*wh_http_body_cb)(wh_http_req *r, const char *data, size_t len, int status, void *ud);
enum { WH_HTTP_BODY_MORE = 0, WH_HTTP_BODY_END = 1 };

typedef struct wh_http_opts {
    size_t max_request_line; /* longer -> 414: 8192 */
    size_t max_header_bytes; /* whole header block, longer -> 431: 16384 */
    unsigned max_headers;    /* more -> 431: 64 */
    /* The in-memory body budget: the most body bytes the engine holds for
     * one request. A buffered body (Content-Length, or chunked after
     * decoding) above it gets 413; a declared Content-Length above it is
     * refused from the head, before any of the body is read. Larger bodies
     * are for on_head + wh_http_req_read_body, which hold one read buffer
     * whatever the size. Raise it for an application that must buffer more;
     * each connection may then hold that much. 0 = no limit. 32 KiB. */
    size_t max_body;
    uint32_t header_timeout_ms;    /* whole request head must arrive within: 10000 */
    uint32_t keepalive_timeout_ms; /* idle between requests: 5000 */
    uint32_t write_timeout_ms;     /* no write progress for: 30000 */
    const char *server_name;       /* Server header value, NULL = none: "wharf" */
    /* Called on the loop thread when each exchange finishes (access log,
     * metrics); r's accessors are still valid during the call. Every request
     * the engine sees comes here once, its own refusals included:
     *  - answered by the application: status and body bytes as sent;
     *  - refused by the engine (400, 413, 414, 431, 501, 505 ... for a head
     *    or body it cannot accept, 408 for a head that came too slowly):
     *    the status sent, and the connection closes after it. When the head
     *    did not parse, the fields the parser could not read are empty
     *    slices (.p NULL, len 0), version is 0 and there are no headers;
     *  - given up on: a head or body that stopped arriving and ran out of
     *    header_timeout_ms is reported as 408 with 0 bytes although nothing
     *    could be sent (the connection is gone, wh_http_req_conn is valid
     *    only during the call);
     *  - upgraded (wh_http_req_upgrade): status 101 and 0 bytes, during the
     *    upgrade call, before the new protocol writes its answer.
     * A client that leaves in the middle of a request is not reported.
     * wh_http_req_start_ms is when the head was complete, or for a refusal
     * when its first byte arrived. */
    void (*on_complete)(wh_http_req *r, void *ud);
    /* Called when a request head is complete, before its body is read (NULL
     * = none). It may answer at once (401, 413, 417 for an unwanted Expect:
     * the body is then not given to anyone; see max_discard for whether the
     * connection stays open), take the body in pieces
     * (wh_http_req_read_body), or return having done neither: the body is
     * then buffered up to max_body and the handler runs as usual (response
     * headers set here are dropped). With on_head set, max_body applies to
     * buffered bodies only. */
    void (*on_head)(wh_http_req *r, void *ud);
    /* Renders the body of the engine's own error responses (malformed
     * requests, 404/405 from the router, 500 for a failed handler,
     * wh_http_respond_error): write at most cap bytes to buf, set *type (a
     * string that outlives the call) and return the length; return < 0 to
     * keep the built-in HTML page. r is NULL when the request could not be
     * parsed. NULL = the built-in pages. */
    int (*error_body)(int status, const wh_http_req *r, char *buf, size_t cap, const char **type,
                      void *ud);
    /* The ud given to on_complete, on_head and error_body; NULL = the
     * handler's (with wh_router_handle as the handler that is the router,
     * rarely what the hooks want). */
    void *hooks_ud;
    /* A request answered before its whole body was read (from on_head, or
     * in the middle of wh_http_req_read_body) leaves body bytes on the
     * connection that cannot be told from a next request. When the body is
     * already on its way (some of it arrived, or 100 Continue was sent) and
     * at most max_discard bytes of it are still due, the response keeps the
     * connection and the engine reads and drops the rest as it arrives
     * (holding none of it), then serves the next request; a chunked body is
     * dropped until its end or until max_discard more decoded bytes, then
     * the connection closes. Otherwise the response says Connection: close
     * (RFC 9112 §9.6; RFC 9110 §10.1.1: a client that sent Expect:
     * 100-continue and got no 100 may never send the body). 0 = always
     * close. 64 KiB. */
    size_t max_discard;
} wh_http_opts;

/* Fills opts with the documented defaults. */
void wh_http_opts_init(wh_http_opts *opts);
/* Creates an HTTP server (opts NULL = defaults) whose requests go to
 * handler(r, ud). It runs no thread and owns no socket: hand it connections
 * (below). 0, -EINVAL or -ENOMEM. */
int wh_http_server_new(wh_http_server **out, const wh_http_opts *opts, wh_http_handler handler,
                       void *ud);
/* The connection callbacks that speak HTTP; give them to a host with s as
 * their ud (wh_server_new, wh_listen, wh_conn_adopt). Valid while s lives. */
const wh_conn_cbs *wh_http_server_cbs(const wh_http_server *s);
/* Raises o->read_buf_max, if needed, so that what the engine keeps of one
 * request fits a connection's read buffer: the head limits plus max_body,
 * and an eighth more for chunk framing not yet squeezed out (the engine
 * decodes a chunked body as it arrives and keeps the decoded bytes). With
 * the defaults that is 67 KiB, under the net layer's 1 MiB, so nothing
 * changes. Call it on the net options of every host that carries s
 * (wh_http_server_listen does it for you). */
void wh_http_server_net_opts(const wh_http_server *s, wh_net_opts *o);
/* Listens on addr on loop (no threads) and serves HTTP on every connection;
 * opts NULL = wh_net_opts_init defaults. Close with wh_listener_close.
 * 0 or negative errno (-EADDRINUSE, -EINVAL, ...). */
int wh_http_server_listen(wh_http_server *s, wh_loop *loop, const char *addr,
                          const wh_net_opts *opts, wh_listener **out);
/* Starts serving HTTP on an open connection (accepted or taken over from
 * another protocol): its callbacks and user data become HTTP's. 0 or -EINVAL. */
int wh_http_server_serve(wh_http_server *s, wh_conn *c);
/* Graceful stop on loop for a host of your own (wh_server does this itself
 * through the on_stop callback): from now on every response on loop says
 * Connection: close, WebSockets on loop close with 1001, and idle
 * connections are closed now (wh_net_close_idle). Loop thread only. */
void wh_http_server_drain(wh_http_server *s, wh_loop *loop);
/* Any thread: header_timeout_ms, keepalive_timeout_ms and write_timeout_ms
 * from o apply from the next time each is armed, on every connection
 * (configuration reload); o's other fields are ignored. */
void wh_http_server_set_timeouts(wh_http_server *s, const wh_http_opts *o);
/* Frees s once no connection uses it any more (its hosts stopped). */
void wh_http_server_free(wh_http_server *s);

/* Request accessors. */
wh_str wh_http_req_method(const wh_http_req *r);
/* The request-target as sent. */
wh_str wh_http_req_target(const wh_http_req *r);
/* The path of the target (before '?'), still percent-encoded, with
 * dot-segments removed (RFC 3986 §5.2.4); a path above the root was answered
 * 400 by the engine. */
wh_str wh_http_req_path(const wh_http_req *r);
/* The query (after '?'), empty if none. */
wh_str wh_http_req_query(const wh_http_req *r);
/* 10 for HTTP/1.0, 11 for HTTP/1.1. */
int wh_http_req_version(const wh_http_req *r);
/* First value of a header, case-insensitive name; .p == NULL when absent. */
wh_str wh_http_req_header(const wh_http_req *r, const char *name);
/* Number of header fields. */
unsigned wh_http_req_header_count(const wh_http_req *r);
/* Header field i (0-based). */
void wh_http_req_header_at(const wh_http_req *r, unsigned i, wh_str *name, wh_str *value);
/* The whole request body (de-chunked), empty if none. */
wh_str wh_http_req_body(const wh_http_req *r);
/* True when the request has a body (Content-Length > 0 or chunked). */
bool wh_http_req_has_body(const wh_http_req *r);
/* The Content-Length, or -1 when the body is chunked or absent. */
int64_t wh_http_req_content_length(const wh_http_req *r);
/* Takes the body in pieces instead of buffered: cb(r, piece, len, status, ud)
 * runs as bytes arrive, so an upload of any size costs one read buffer
 * (max_body does not apply: cb bounds what it keeps).
 * Call from on_head (or later while r is deferred from on_head); the handler
 * is then not called: cb and the code it starts answer r. 100 Continue is
 * sent if the client waits for it. 0, or -EINVAL (no body, already reading,
 * already answered). */
int wh_http_req_read_body(wh_http_req *r, wh_http_body_cb cb, void *ud);
/* Stops delivering body pieces (backpressure) until wh_http_req_resume_body;
 * the client is held back by TCP flow control. */
void wh_http_req_pause_body(wh_http_req *r);
/* Delivers body pieces again. */
void wh_http_req_resume_body(wh_http_req *r);
/* A path parameter captured by the router (":name"), percent-decoded (see
 * wharf/http_data.h); .p == NULL when absent. */
wh_str wh_http_req_param(const wh_http_req *r, const char *name);
/* The connection and its loop. */
wh_conn *wh_http_req_conn(const wh_http_req *r);
wh_loop *wh_http_req_loop(const wh_http_req *r);
/* The client's address: wh_conn_peer() of the connection (the address a
 * PROXY header named, with wh_net_opts.proxy_protocol); NULL when the
 * connection is gone. Valid as wh_conn_peer() says. */
const wh_sockaddr *wh_http_req_peer(const wh_http_req *r);
/* The server the request came in on. */
wh_http_server *wh_http_req_server(const wh_http_req *r);
/* Monotonic ms when the request head was complete. */
uint64_t wh_http_req_start_ms(const wh_http_req *r);

/* Response. Fields are copied. Framing (Content-Length, Transfer-Encoding)
 * and Connection are the engine's; Date and Server are the engine's unless
 * the handler sets its own. HEAD responses never carry a body. Every respond
 * call needs a status 200..599 and a content type free of controls, else it
 * returns -EINVAL and nothing is sent: r can still be answered (e.g. 500). */
/* Adds a response field. The name must be a token (RFC 9110 §5.6.2), the
 * value free of CR, LF and other controls but HTAB. Content-Length,
 * Transfer-Encoding and Content-Type (an argument of the respond calls) are
 * refused. Connection: a value listing "close" makes the engine close the
 * connection after this response (one "Connection: close" is sent); any other
 * value is refused. Date and Server replace the engine's; setting the same
 * one twice is refused. 0, -EINVAL or -ENOMEM; only before the response starts. */
int wh_http_resp_header(wh_http_req *r, const char *name, const char *value);
/* Completes the exchange with a body from memory (copied). */
int wh_http_respond(wh_http_req *r, int status, const char *content_type, const void *body,
                    size_t len);
/* One piece of a body sent by reference (wh_http_respond_parts). */
typedef struct wh_http_body_part {
    const void *data;
    size_t len;
} wh_http_body_part;
/* Completes the exchange with a body of parts[0..n) in order, not copied
 * (the head is): for large generated bodies that many connections send at
 * once, e.g. one cached page shared by every reader. The parts' bytes must
 * stay valid and unchanged until release(ud), which is called exactly once
 * whatever the result, on r's loop thread: when the last byte left or the
 * connection was closed with them still queued, or before the call returns
 * when nothing refers to them (HEAD, a bodyless status, an error). The
 * array parts itself is read only during the call. release may be NULL
 * (static data). 0, -EINVAL (bad arguments: r can still be answered) or
 * -EPIPE (the connection is gone, r freed). */
int wh_http_respond_parts(wh_http_req *r, int status, const char *content_type,
                          const wh_http_body_part *parts, size_t n, void (*release)(void *ud),
                          void *ud);
/* Completes with len bytes of fd from offset (sendfile); fd is closed when
 * done if close_fd, whatever the result. */
int wh_http_respond_file(wh_http_req *r, int status, const char *content_type, int fd, off_t offset,
                         size_t len, bool close_fd);
/* Completes with the error body for status: the built-in HTML page, or what
 * wh_http_opts.error_body renders. Keeps the connection (408 closes it). */
int wh_http_respond_error(wh_http_req *r, int status);
/* Starts a chunked (HTTP/1.1) or close-delimited (HTTP/1.0) streamed response. */
int wh_http_resp_begin_stream(wh_http_req *r, int status, const char *content_type);
/* Sends one piece of a streamed response. */
int wh_http_resp_stream(wh_http_req *r, const void *data, size_t len);
/* Finishes a streamed response. */
int wh_http_resp_end_stream(wh_http_req *r);
/* False while the response's connection has more queued than its high
 * watermark: a streaming producer should stop until the drain callback. */
bool wh_http_resp_writable(const wh_http_req *r);
/* Sets cb(r, ud) to run when the queue falls below the low watermark after
 * wh_http_resp_writable() was false (streamed responses; NULL removes it). */
void wh_http_resp_on_drain(wh_http_req *r, void (*cb)(wh_http_req *r, void *ud), void *ud);
/* Status sent (0 before the response started). */
int wh_http_resp_status(const wh_http_req *r);
/* Body bytes sent so far. */
uint64_t wh_http_resp_bytes(const wh_http_req *r);
/* Asks to close the connection after this response. */
void wh_http_resp_close(wh_http_req *r);

/* Asynchronous handlers. A handler must either complete the response before
 * it returns, start a streamed response, or call wh_http_req_defer(r) and
 * respond later from the same loop thread (after a Redis reply, an offloaded
 * job). A handler that returns having done none of these has failed: the
 * engine answers 500 for it. While an exchange is deferred, no further
 * pipelined request on that connection is parsed, and r (its slices
 * included) stays valid until the response completes. If the connection
 * closes meanwhile, the respond call still must be made: it frees r and
 * returns -EPIPE. */
/* Marks r as answered later. 0, or -EINVAL if r already completed. */
int wh_http_req_defer(wh_http_req *r);

/* Upgrade: take the connection away from HTTP (e.g. WebSocket). The caller
 * writes its own response (101, RFC 9110 §15.2.2) with wh_conn_write and
 * installs its callbacks with wh_conn_set_cbs; bytes after the request head
 * are offered to the new on_read. wh_http_opts.on_complete runs first, with
 * status 101. r is invalid afterwards. Returns the connection, whose
 * user data is then NULL (free for the new owner), which is not busy and has
 * no timeout (the new owner sets its own). NULL if r already responded or its
 * connection is gone. */
wh_conn *wh_http_req_upgrade(wh_http_req *r);
/* True if the request asks for Upgrade (Connection: upgrade + Upgrade header). */
bool wh_http_req_wants_upgrade(const wh_http_req *r);

/* Router: method + path, exact ("/a/b"), parameter ("/users/:id") and prefix
 * ("/static/" followed by "*") routes. Unmatched -> 404; path matched with another method ->
 * 405 with Allow. */
int wh_router_new(wh_router **out);
void wh_router_free(wh_router *rt);
/* Adds a route; method NULL matches any. */
int wh_router_add(wh_router *rt, const char *method, const char *pattern, wh_http_handler h,
                  void *ud);
/* Sets the handler for unmatched paths (default: 404). */
void wh_router_set_fallback(wh_router *rt, wh_http_handler h, void *ud);
/* A wh_http_handler: pass it with the router as ud to wh_http_server_new. */
void wh_router_handle(wh_http_req *r, void *router);

/* Reason phrase for a status code ("Not Found"); "Unknown" if none. */
const char *wh_http_reason(int status);

WH_END_DECLS

#endif
