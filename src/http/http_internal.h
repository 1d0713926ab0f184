/* Internal structures of the HTTP engine (src/http only). */
#ifndef WH_HTTP_INTERNAL_H
#define WH_HTTP_INTERNAL_H

#include "http/parser.h"
#include "loop/loop_internal.h"
#include "wharf/http.h"

#define WH__HTTP_MAX_PARAMS 8

struct wh__field;
/* Response fields the engine itself adds (file serving's ETag,
 * Last-Modified, Accept-Ranges...), all at once: each name is one of its
 * constants, a token none of the framing names, so only the values are
 * checked (a configured Cache-Control may hold a control byte).
 * wh_http_resp_header checked every name byte and its kind, and a field at
 * a time cost a fifth of a static response's user-space instructions.
 * 0, -EINVAL (nothing added) or -ENOMEM. */
int wh__http_resp_fields_plain(wh_http_req *r, const struct wh__field *f, size_t n);
/* Appends prepared, already checked field lines (a wh_static_fields block). */
int wh__http_resp_fields_raw(wh_http_req *r, const char *text, size_t n);
/* A full 200 with a Content-Type and field lines (fields[0..flen)) checked
 * when they were prepared (wh_static_fields_make), answered with a head
 * formatted from known lengths: the same bytes wh__http_resp_fields_raw +
 * wh_http_respond(r, 200, ctype, body, len) send. 0 when answered; 1 when
 * the exchange needs the general path (handler lines, a finished or dead
 * exchange, a head too long for the stack), with nothing done. */
int wh__http_respond_prepared(wh_http_req *r, const char *ctype, const char *fields, size_t flen,
                              const void *body, size_t len);

struct wh_http_server {
    wh_conn_cbs cbs; /* what a host runs this server's connections with (ud = the server) */
    wh_http_opts opts;
    size_t server_len; /* strlen(opts.server_name), 0 for none */
    wh_http_limits lim;
    wh_http_handler handler;
    void *ud;
    void *hooks_ud; /* opts.hooks_ud, or ud */
};

/* Exchange state. */
enum {
    WH__R_NEW = 0,       /* handler running, nothing sent */
    WH__R_STREAMING = 1, /* head sent, body streaming */
    WH__R_DONE = 2,      /* response complete */
};

/* Per-connection HTTP state. Allocated only while a connection is in the
 * middle of something (partial head, waiting for a body, async handler);
 * an idle keep-alive connection holds none (wh_conn_data == NULL). */
typedef struct wh__http_conn {
    uint8_t st;         /* WH__HC_* */
    bool sent_continue; /* 100 Continue already written for this request */
    bool eof;           /* the peer half-closed: close after the exchange */
    size_t last_len;    /* bytes of the partial head already scanned */
    uint64_t head_start_ms;
    wh_http_chunked ck; /* chunked body decoder (BODY, STREAM, DISCARD) */
    size_t ck_in, ck_out;
    uint64_t body_left; /* STREAM, DISCARD with Content-Length: body bytes still to come */
    bool head_seen;     /* on_head already ran for the request being read */
    bool drop_chunked;  /* DISCARD: the body being dropped is chunked */
    wh_http_req *req;   /* async or streaming exchange */
} wh__http_conn;

enum {
    WH__HC_HEAD = 1,    /* part of a head received */
    WH__HC_BODY = 2,    /* head complete, body incomplete */
    WH__HC_ASYNC = 3,   /* handler answers later; reading paused */
    WH__HC_STREAM = 4,  /* body delivered in pieces to r->body_cb */
    WH__HC_DISCARD = 5, /* answered, keep-alive: the rest of the body is dropped as it comes */
    WH__HC_DRAIN = 6,   /* between requests, paused until the output drains (on_drain) */
};

struct wh_http_req {
    wh_http_server *srv;
    wh_conn *conn; /* NULL once the connection closed under an async exchange */
    wh_loop *loop;
    struct wh__http_loop *hl; /* loop's HTTP state (Date cache), set with loop */
    uint64_t start_ms;
    wh_str body;
    int status;
    uint8_t state; /* WH__R_* */
    bool deferred;
    bool upgraded;
    bool head_only;   /* HEAD: never a body */
    bool close;       /* close after this response */
    bool chunked;     /* streaming with chunked coding */
    bool in_handler;  /* inside the synchronous handler call */
    bool body_unread; /* body bytes not yet consumed: a response now closes or drops them */
    bool body_stream; /* wh_http_req_read_body: the body goes to body_cb */
    bool from_head;   /* went through on_head, body not yet given to anyone */
    bool body_paused; /* wh_http_req_pause_body */
    bool body_coming; /* a body byte arrived or 100 Continue went out: the body will follow
                         (set from the head on, read only while body_unread) */
    wh_http_body_cb body_cb;
    void *body_ud;
    void (*drain_cb)(wh_http_req *r, void *ud); /* wh_http_resp_on_drain */
    void *drain_ud;
    uint64_t bytes; /* body bytes sent */
    unsigned nparams;
    struct {
        const char *name;
        size_t nlen;
        wh_str value;
    } params[WH__HTTP_MAX_PARAMS];
    char pbuf[256]; /* router: percent-decoded path parameters (router.c) */
    char *own;      /* owned copy of the request bytes (async) */
    char *hdrs;     /* extra response header lines */
    size_t hlen, hcap;
    char hbuf[384];
    wh_http_parsed p;
};

/* The timeouts may be changed while connections run
 * (wh_http_server_set_timeouts, any thread): read them with a relaxed atomic
 * load, which is a plain mov. */
#define WH__HTTP_TIMEOUT(srv, field) __atomic_load_n(&(srv)->opts.field, __ATOMIC_RELAXED)

/* Per-loop HTTP state (slot WH__SLOT_HTTP). */
typedef struct wh__http_loop {
    wh_loop *loop;
    time_t date_sec;
    uint64_t date_next_ms; /* loop time at which the wall clock is checked again */
    char date[30];
    wh_http_req *spare; /* request object for the next exchange */
    wh__http_conn *free_hc[64];
    unsigned nfree_hc;
    bool stopping; /* the host drains: every response closes its connection */
    struct {
        void (*fn)(wh_loop *loop, void *arg);
        void *arg;
    } stop_hooks[4];
    unsigned nstop_hooks;
} wh__http_loop;

/* The loop's HTTP state, created on first use (NULL on -ENOMEM). */
wh__http_loop *wh__http_loop_get(wh_loop *loop);
/* The current Date value (29 chars), reformatted at most once a second. */
const char *wh__http_date(wh__http_loop *hl);
/* Adds fn(loop, arg), called once when the host drains loop (on_stop). For the
 * protocols that take connections over from HTTP (WebSocket). 0, -ENOMEM or
 * -ENOSPC (more than four). */
int wh__http_loop_on_stop(wh_loop *loop, void (*fn)(wh_loop *loop, void *arg), void *arg);
/* True once the host began draining loop. */
bool wh__http_loop_stopping(wh_loop *loop);
/* Whether a response to r, given now with body bytes still due, may keep
 * the connection and drop the rest of the body (wh_http_opts.max_discard). */
bool wh__http_discardable(const wh_http_req *r);
/* Router: records a path parameter on r. */
void wh__http_req_add_param(wh_http_req *r, const char *name, size_t nlen, wh_str value);

#endif
