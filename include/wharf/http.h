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

typedef struct wh_http_opts {
    size_t max_request_line;       /* longer -> 414: 8192 */
    size_t max_header_bytes;       /* whole header block, longer -> 431: 16384 */
    unsigned max_headers;          /* more -> 431: 64 */
    size_t max_body;               /* larger -> 413: 1 MiB */
    uint32_t header_timeout_ms;    /* whole request head must arrive within: 10000 */
    uint32_t keepalive_timeout_ms; /* idle between requests: 5000 */
    uint32_t write_timeout_ms;     /* no write progress for: 30000 */
    const char *server_name;       /* Server header value, NULL = none: "wharf" */
    /* Called on the loop thread when each exchange finishes (access log,
     * metrics); r's accessors are still valid during the call. */
    void (*on_complete)(wh_http_req *r, void *ud);
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
/* Raises o->read_buf_max so that a whole request (head + max_body) fits a
 * connection's read buffer; call it on the net options of every host that
 * carries s (wh_http_server_listen does it for you). */
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
/* Frees s once no connection uses it any more (its hosts stopped). */
void wh_http_server_free(wh_http_server *s);

/* Request accessors. */
wh_str wh_http_req_method(const wh_http_req *r);
/* The request-target as sent. */
wh_str wh_http_req_target(const wh_http_req *r);
/* The path of the target (before '?'), still percent-encoded. */
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
/* A path parameter captured by the router (":name"), .p == NULL when absent. */
wh_str wh_http_req_param(const wh_http_req *r, const char *name);
/* The connection and its loop. */
wh_conn *wh_http_req_conn(const wh_http_req *r);
wh_loop *wh_http_req_loop(const wh_http_req *r);
/* The server the request came in on. */
wh_http_server *wh_http_req_server(const wh_http_req *r);
/* Monotonic ms when the request head was complete. */
uint64_t wh_http_req_start_ms(const wh_http_req *r);

/* Response. Headers are copied. Content-Length, Date, Server and Connection
 * are set by the engine. HEAD responses never carry a body. */
/* Adds a response header. 0 or -ENOMEM / -EINVAL (CR/LF in name or value). */
int wh_http_resp_header(wh_http_req *r, const char *name, const char *value);
/* Completes the exchange with a body from memory (copied). */
int wh_http_respond(wh_http_req *r, int status, const char *content_type, const void *body,
                    size_t len);
/* Completes with len bytes of fd from offset (sendfile); fd is closed when done if close_fd. */
int wh_http_respond_file(wh_http_req *r, int status, const char *content_type, int fd, off_t offset,
                         size_t len, bool close_fd);
/* Completes with a small HTML error body for status (and Connection: close for 4xx framing errors).
 */
int wh_http_respond_error(wh_http_req *r, int status);
/* Starts a chunked (HTTP/1.1) or close-delimited (HTTP/1.0) streamed response. */
int wh_http_resp_begin_stream(wh_http_req *r, int status, const char *content_type);
/* Sends one piece of a streamed response. */
int wh_http_resp_stream(wh_http_req *r, const void *data, size_t len);
/* Finishes a streamed response. */
int wh_http_resp_end_stream(wh_http_req *r);
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
 * writes its own response (e.g. 101) with wh_conn_write and installs its
 * callbacks with wh_conn_set_cbs; bytes after the request head are offered to
 * the new on_read. r is invalid afterwards. Returns the connection, whose
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
