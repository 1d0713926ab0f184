/* The HTTP/1.1 engine: a protocol on wh_conn (RFC 9112 §9: connection
 * management; RFC 9110 §10.1.1: Expect). It knows nothing of who accepted
 * the connection: a wh_server, a wh_listener on a bare loop, or a program
 * that hands it an adopted socket. Its whole contact with a host is the
 * connection callbacks (wh_http_server_cbs), the conn's busy state while a
 * request is in progress, and on_stop when the host drains.
 *
 * One on_read call handles every complete request in the buffer: when the
 * handlers answer synchronously their responses are queued and leave in one
 * writev after the callback (pipelining costs one syscall per batch).
 *
 * Memory. The request object and its parse result live in per-thread
 * storage and are reused; a connection gets its own small state only while
 * it is mid-request across reads (partial head, waiting for a body, async
 * handler). An idle keep-alive connection holds nothing here, and the net
 * layer frees its read buffer when empty.
 *
 * Timeouts (all through wh_conn_set_timeout, an inactivity timer refreshed
 * by I/O): keepalive_timeout_ms between requests; header_timeout_ms for a
 * partial head, enforced as a deadline from its first byte (slowloris:
 * trickling bytes does not extend it; 408 + close); the same value as the
 * inactivity limit while a body arrives; write_timeout_ms while an async
 * handler works or a large response drains.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/errpage.h"
#include "http/http_internal.h"

void wh_http_opts_init(wh_http_opts *o)
{
    memset(o, 0, sizeof(*o));
    /* Size limits: the parser's defaults (wh_http_limits_init), one place. */
    wh_http_limits lim;
    wh_http_limits_init(&lim);
    o->max_request_line = lim.max_request_line;
    o->max_header_bytes = lim.max_header_bytes;
    o->max_headers = lim.max_headers;
    /* Not the parser's 1 MiB: the engine may hold a buffered body for every
     * connection at once, so 1,000 slow uploads of 1 MiB held a gigabyte.
     * 32 KiB takes forms and small JSON documents; 1,000 slow senders of
     * the largest body it accepts hold 54 MiB (with 64 KiB, 92 MiB: head +
     * body pass 64 KiB and the read buffer doubles to 128), well under the
     * 100 MiB we allow 1,000 hostile connections. Larger uploads are
     * streamed (on_head + wh_http_req_read_body) or refused from their
     * Content-Length before they are read. */
    o->max_body = 32u << 10;
    o->max_discard = 64u << 10;
    o->header_timeout_ms = 10000;
    o->keepalive_timeout_ms = 5000;
    o->write_timeout_ms = 30000;
    o->server_name = "wharf";
}

/* ---- per-connection state ---- */

static wh__http_conn *hc_get(wh__http_loop *hl, wh_conn *c)
{
    wh__http_conn *hc = wh_conn_data(c);
    if (hc) return hc;
    hc = hl->nfree_hc ? hl->free_hc[--hl->nfree_hc] : malloc(sizeof(*hc));
    if (!hc) return NULL;
    memset(hc, 0, sizeof(*hc));
    wh_conn_set_data(c, hc);
    return hc;
}

static void hc_put(wh__http_loop *hl, wh_conn *c)
{
    wh__http_conn *hc = wh_conn_data(c);
    if (!hc) return;
    wh_conn_set_data(c, NULL);
    if (hl->nfree_hc < sizeof(hl->free_hc) / sizeof(hl->free_hc[0]))
        hl->free_hc[hl->nfree_hc++] = hc;
    else
        free(hc);
}

/* ---- request objects ---- */

static wh_http_req *req_get(wh__http_loop *hl)
{
    if (!hl->spare) {
        hl->spare = malloc(sizeof(wh_http_req));
        if (!hl->spare) return NULL;
        hl->spare->hdrs = hl->spare->hbuf;
        hl->spare->own = NULL;
    }
    return hl->spare;
}

/* Frees what an exchange owned; r itself goes back to the spare slot. */
void wh__http_req_release(wh_http_req *r)
{
    wh__http_loop *hl = wh__http_loop_get(r->loop);
    free(r->own);
    r->own = NULL;
    if (r->hdrs != r->hbuf) free(r->hdrs);
    r->hdrs = r->hbuf;
    if (hl && hl->spare != r) {
        if (!hl->spare)
            hl->spare = r;
        else
            free(r);
    }
}

/* Async: copy the request bytes (head + decoded body) out of the connection
 * buffer and point every slice at the copy. */
static int req_detach(wh_http_req *r, const char *buf)
{
    size_t size = r->p.head_len + r->body.len;
    char *own = malloc(size ? size : 1);
    if (!own) return -ENOMEM;
    memcpy(own, buf, size);
    const char *lo = buf, *hi = buf + size;
#define REBASE(s)                                                                                  \
    do {                                                                                           \
        if ((s).p >= lo && (s).p <= hi) (s).p = own + ((s).p - lo);                                \
    } while (0)
    REBASE(r->p.method);
    REBASE(r->p.target);
    REBASE(r->p.path);
    REBASE(r->p.query);
    REBASE(r->p.host);
    REBASE(r->body);
    for (unsigned i = 0; i < r->p.nheaders; i++) {
        REBASE(r->p.headers[i].name);
        REBASE(r->p.headers[i].value);
    }
    for (unsigned i = 0; i < r->nparams; i++)
        REBASE(r->params[i].value);
#undef REBASE
    r->own = own;
    return 0;
}

/* ---- errors without a request object ---- */

static inline void req_init(wh_http_req *r, wh_http_server *s, wh__http_loop *hl, wh_conn *c,
                            wh_str body);

/* Gives on_complete a request the engine refused or gave up on, so that logs
 * and metrics see every request (r: the loop's spare request object). When
 * the head did not parse, its fields are blanked rather than left from an
 * earlier request: the accessors then return empty slices. */
static void report(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r, bool parsed,
                   int status, uint64_t bytes, uint64_t start_ms)
{
    if (!s->opts.on_complete || !r) return;
    if (!parsed) memset(&r->p, 0, offsetof(wh_http_parsed, headers));
    req_init(r, s, hl, c, (wh_str){NULL, 0});
    r->start_ms = start_ms;
    r->status = status;
    r->bytes = bytes;
    r->state = WH__R_DONE;
    r->close = true;
    s->opts.on_complete(r, s->hooks_ud);
}

/* When the request being read began: its first byte for a head that came in
 * pieces, else now. */
static uint64_t began_ms(wh__http_loop *hl, wh_conn *c)
{
    const wh__http_conn *hc = wh_conn_data(c);
    if (hc && (hc->st == WH__HC_HEAD || hc->st == WH__HC_BODY)) return hc->head_start_ms;
    return wh_loop_now(hl->loop);
}

/* Answers status with a small body and closes (framing errors, limits,
 * timeouts). r holds what the parser made of the head (parsed), or is the
 * spare request object with nothing in it; on_complete gets it either way. */
static void send_fatal(wh_http_server *s, wh__http_loop *hl, wh_conn *c, int status, wh_http_req *r,
                       bool parsed)
{
    char body[WH__HTTP_ERROR_BODY_MAX], head[WH__HTTP_ERROR_BODY_MAX + 512];
    const char *type;
    int bl = wh__http_error_body(&s->opts, s->hooks_ud, status, NULL, body, sizeof body, &type);
    wh_http_head_spec h = {.status = status,
                           .content_type = type,
                           .content_length = bl,
                           .close = true,
                           .date = wh__http_date(hl),
                           .server = s->opts.server_name};
    int n = wh_http_format_head(head, sizeof head, &h);
    bool sent = false;
    if (n > 0 && (size_t)n + (size_t)bl <= sizeof head) {
        memcpy(head + n, body, (size_t)bl);
        sent = wh_conn_write(c, head, (size_t)n + (size_t)bl) == 0;
    }
    report(s, hl, c, r, parsed, status, sent ? (uint64_t)bl : 0, began_ms(hl, c));
    hc_put(hl, c);
    wh_conn_set_busy(c, false);
    wh_conn_close(c);
}

/* ---- dispatch ---- */

static void dispatch(wh_http_server *s, wh_http_req *r)
{
    if (r->p.target_form == WH_HTTP_T_ASTERISK) {
        /* OPTIONS * (RFC 9110 §9.3.7): about the server as a whole. */
        wh_http_resp_header(r, "Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
        wh_http_respond(r, 200, NULL, NULL, 0);
        return;
    }
    s->handler(r, s->ud);
}

static bool hl_stopping(wh_loop *loop)
{
    wh__http_loop *hl = wh__http_loop_get(loop);
    return hl && hl->stopping;
}

/* Fills r for a freshly parsed request. */
static inline void req_init(wh_http_req *r, wh_http_server *s, wh__http_loop *hl, wh_conn *c,
                            wh_str body)
{
    r->srv = s;
    r->conn = c;
    r->hl = hl;
    r->loop = hl->loop; /* the connection's: hl is its loop's state */
    r->start_ms = wh_loop_now(r->loop);
    r->body = body;
    r->status = 0;
    r->state = WH__R_NEW;
    r->deferred = r->upgraded = r->chunked = false;
    r->body_unread = r->body_stream = r->body_paused = r->from_head = false;
    r->drain_cb = NULL;
    r->head_only = r->p.method_id == WH_HTTP_M_HEAD;
    r->close = !r->p.keep_alive || hl->stopping;
    r->bytes = 0;
    r->nparams = 0;
    if (r->hdrs != r->hbuf) free(r->hdrs);
    r->hdrs = r->hbuf;
    r->hlen = 0;
    r->hcap = sizeof r->hbuf;
    if (r->own) { /* async exchanges only */
        free(r->own);
        r->own = NULL;
    }
}

/* Head incomplete: remember progress, enforce the whole-head deadline. */
static bool head_wait(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r, size_t n)
{
    wh__http_conn *hc = hc_get(hl, c);
    if (!hc) {
        wh_conn_abort(c);
        return false;
    }
    uint64_t now = wh_loop_now(hl->loop);
    uint32_t limit = WH__HTTP_TIMEOUT(s, header_timeout_ms);
    if (hc->st != WH__HC_HEAD) {
        hc->st = WH__HC_HEAD;
        hc->head_start_ms = now;
        wh_conn_set_busy(c, true);
    } else if (limit && now - hc->head_start_ms >= limit) {
        send_fatal(s, hl, c, 408, r, false);
        return false;
    }
    hc->last_len = n;
    if (limit) {
        uint64_t left = limit - (now - hc->head_start_ms);
        wh_conn_set_timeout(c, (uint32_t)(left ? left : 1));
    }
    return true;
}

/* Head complete, body not yet: 100 Continue if asked and nothing of the body
 * was sent (RFC 9110 §10.1.1). */
static wh__http_conn *body_wait(wh_http_server *s, wh__http_loop *hl, wh_conn *c,
                                const wh_http_req *r, bool body_started)
{
    wh__http_conn *hc = hc_get(hl, c);
    if (!hc) {
        wh_conn_abort(c);
        return NULL;
    }
    if (hc->st != WH__HC_BODY) {
        if (hc->st != WH__HC_HEAD) {
            wh_conn_set_busy(c, true);
            hc->head_start_ms = wh_loop_now(hl->loop);
        }
        hc->st = WH__HC_BODY;
        wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, header_timeout_ms));
    }
    if (r->p.expect_continue && !hc->sent_continue && !body_started) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        wh_conn_write_ref(c, cont, sizeof cont - 1, NULL, NULL);
        hc->sent_continue = true;
    }
    return hc;
}

/* ---- bodies in pieces (wh_http_req_read_body) ---- */

/* How on_read goes on: stop here keeping the rest (WAIT), parse what follows
 * (GO), drop everything because the connection closes (DONE), or stop after
 * the bytes just consumed (STOP: the exchange went async or upgraded). */
enum { NEXT_WAIT, NEXT_GO, NEXT_DONE, NEXT_STOP };

/* Between requests: no HTTP state, the keep-alive timeout, not busy. */
static void conn_idle(wh_http_server *s, wh__http_loop *hl, wh_conn *c)
{
    hc_put(hl, c);
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, keepalive_timeout_ms));
    wh_conn_set_busy(c, false);
}

/* ---- bodies dropped after the answer (WH__HC_DISCARD) ---- */

bool wh__http_discardable(const wh_http_req *r)
{
    uint64_t cap = r->srv->opts.max_discard;
    if (!cap || !r->conn || !r->body_coming) return false;
    const wh__http_conn *hc = wh_conn_data(r->conn);
    bool going = hc && hc->req == r && hc->st == WH__HC_STREAM;
    if (r->p.framing == WH_HTTP_BODY_CHUNKED)
        /* Its length is unknown: dropping stops at cap decoded bytes. A
         * chunk already announced larger than that will not end in time. */
        return !(going && hc->ck.remaining > cap);
    return (going ? hc->body_left : r->p.content_length) <= cap;
}

/* r was answered, keeping the connection, before its body was all read
 * (wh__http_discardable said yes): the rest is read and dropped as it
 * arrives, then the next request is served (RFC 9112 §9.6). A body reader
 * in progress (STREAM) goes on from where it is; otherwise dropping starts
 * at the first body byte. False when the connection closes instead. */
static bool discard_start(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r)
{
    wh__http_conn *hc = hc_get(hl, c);
    if (!hc) {
        wh_conn_close(c);
        return false;
    }
    bool going = hc->st == WH__HC_STREAM && hc->req == r;
    hc->drop_chunked = r->p.framing == WH_HTTP_BODY_CHUNKED;
    if (hc->drop_chunked) {
        if (going)
            hc->ck.max_body = hc->ck.total + s->opts.max_discard;
        else
            wh_http_chunked_init(&hc->ck, s->opts.max_discard);
    } else if (!going) {
        hc->body_left = r->p.content_length;
    }
    hc->st = WH__HC_DISCARD;
    hc->req = NULL;
    wh_conn_set_busy(c, true);
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, header_timeout_ms));
    if (r->body_paused) wh_conn_resume(c);
    return true;
}

/* Drops body bytes from buf[0..n) (DISCARD); sets *used and returns
 * NEXT_WAIT (more to come), NEXT_GO (the body is past: parse what follows)
 * or NEXT_DONE (closing). */
__attribute__((noinline)) static int discard_feed(wh_http_server *s, wh__http_loop *hl, wh_conn *c,
                                                  wh__http_conn *hc, char *buf, size_t n,
                                                  size_t *used)
{
    bool end;
    if (hc->drop_chunked) {
        size_t in = 0, out = 0;
        int cr = wh_http_chunked_decode(&hc->ck, buf, n, &in, &out);
        *used = in;
        if (cr == WH_HTTP_ERROR) {
            /* Past max_discard, or malformed: the answer is out already,
             * and the rest is not worth reading. */
            hc_put(hl, c);
            wh_conn_set_busy(c, false);
            wh_conn_close(c);
            return NEXT_DONE;
        }
        end = cr == 0;
    } else {
        size_t k = n < hc->body_left ? n : (size_t)hc->body_left;
        hc->body_left -= k;
        *used = k;
        end = hc->body_left == 0;
    }
    if (!end) return NEXT_WAIT;
    conn_idle(s, hl, c);
    return NEXT_GO;
}

/* The exchange hc->req reached its response (inside a body callback or an
 * on_head hook, where exchange_done left r to us): release it and say how
 * on_read goes on. */
static int stream_finish(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r)
{
    int next = NEXT_GO;
    if (r->close) {
        hc_put(hl, c);
        next = NEXT_DONE;
    } else if (r->body_unread) {
        if (!discard_start(s, hl, c, r)) next = NEXT_DONE;
    } else {
        conn_idle(s, hl, c);
    }
    wh__http_req_release(r);
    return next;
}

static void deliver(wh_http_req *r, const char *p, size_t n, int status)
{
    r->in_handler = true;
    r->body_cb(r, p, n, status, r->body_ud);
    r->in_handler = false;
}

/* Feeds the body bytes in buf[0..n) to the streaming exchange of hc; sets
 * *used and returns NEXT_WAIT (paused, or the buffer is used up), NEXT_GO
 * (body and response done: parse what follows) or NEXT_DONE (closing). */
__attribute__((noinline)) static int stream_feed(wh_http_server *s, wh__http_loop *hl, wh_conn *c,
                                                 wh__http_conn *hc, char *buf, size_t n,
                                                 size_t *used)
{
    wh_http_req *r = hc->req;
    size_t pos = 0;
    int status = WH_HTTP_BODY_MORE;
    r->body_coming = true;
    while (!r->body_paused && status == WH_HTTP_BODY_MORE && r->state != WH__R_DONE) {
        size_t start = pos, plen;
        if (r->p.framing == WH_HTTP_BODY_LENGTH) {
            plen = n - pos < hc->body_left ? n - pos : (size_t)hc->body_left;
            if (plen == 0) break;
            pos += plen;
            hc->body_left -= plen;
            if (!hc->body_left) status = WH_HTTP_BODY_END;
        } else {
            /* Decoded in place: the output never overtakes the input. */
            size_t in = pos, out = pos;
            int cr = wh_http_chunked_decode(&hc->ck, buf, n, &in, &out);
            plen = out - start;
            pos = in;
            if (cr == WH_HTTP_ERROR)
                status = -EPROTO;
            else if (cr == 0)
                status = WH_HTTP_BODY_END;
            else if (plen == 0)
                break;
        }
        if (status != WH_HTTP_BODY_MORE) {
            r->body_stream = false;
            /* The whole body is in: a response may keep the connection. */
            if (status == WH_HTTP_BODY_END) r->body_unread = false;
        }
        deliver(r, buf + start, plen, status);
    }
    *used = pos;
    if (r->state == WH__R_DONE) return stream_finish(s, hl, c, r);
    if (status == WH_HTTP_BODY_MORE) return NEXT_WAIT;
    r->from_head = false;
    /* Body over, answer still to come: wait for it as for any async one. */
    hc->st = WH__HC_ASYNC;
    wh_conn_pause(c);
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, write_timeout_ms));
    return NEXT_WAIT;
}

/* Turns r into an exchange that outlives this read (deferred, streaming, or
 * an open streamed response) and parks it on the connection as state st.
 * False on -ENOMEM (the connection is aborted). */
static bool exchange_keep(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r,
                          const char *buf, uint8_t st)
{
    wh__http_conn *hc = hc_get(hl, c);
    if (!hc || req_detach(r, buf) < 0) {
        if (hc) hc_put(hl, c);
        /* r stays the spare; the handler's pointer dies with the conn */
        r->conn = NULL;
        hl->spare = NULL;
        wh_conn_abort(c);
        return false;
    }
    hl->spare = NULL; /* r now belongs to the exchange */
    hc->st = st;
    hc->req = r;
    wh_conn_set_busy(c, true);
    return true;
}

/* Starts delivering the body of r (from on_head, or later from a deferred r). */
static void stream_start(wh_http_server *s, wh_conn *c, wh__http_conn *hc, wh_http_req *r,
                         bool body_started)
{
    hc->st = WH__HC_STREAM;
    r->body_unread = true; /* until the last piece: a response before it closes */
    if (r->p.framing == WH_HTTP_BODY_LENGTH)
        hc->body_left = r->p.content_length;
    else
        wh_http_chunked_init(&hc->ck, 0); /* the callee bounds what it keeps */
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, header_timeout_ms));
    if (r->p.expect_continue && !body_started) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        wh_conn_write_ref(c, cont, sizeof cont - 1, NULL, NULL);
        r->body_coming = true; /* asked for: the client sends it now */
    }
    if (body_started) r->body_coming = true;
}

int wh_http_req_read_body(wh_http_req *r, wh_http_body_cb cb, void *ud)
{
    if (!cb || !r->from_head || r->state != WH__R_NEW || r->upgraded || r->body_stream ||
        r->p.framing == WH_HTTP_BODY_NONE)
        return -EINVAL;
    if (!r->conn) return -EPIPE;
    r->body_stream = true;
    r->body_cb = cb;
    r->body_ud = ud;
    wh__http_conn *hc = wh_conn_data(r->conn);
    if (hc && hc->req == r && hc->st == WH__HC_ASYNC) {
        /* Deferred from on_head, now taken: the body bytes kept in the read
         * buffer are offered again at the end of the iteration. */
        stream_start(r->srv, r->conn, hc, r, false);
        wh_conn_resume(r->conn);
    }
    return 0; /* inside on_head: on_read sets the stream up when it returns */
}

void wh_http_req_pause_body(wh_http_req *r)
{
    if (r->body_paused || !r->conn) return;
    r->body_paused = true;
    wh_conn_pause(r->conn);
    /* The application holds the client back, not the client us: no
     * inactivity limit while paused (header_timeout_ms again on resume). */
    wh_conn_set_timeout(r->conn, 0);
}

void wh_http_req_resume_body(wh_http_req *r)
{
    if (!r->body_paused || !r->conn) return;
    r->body_paused = false;
    wh_conn_set_timeout(r->conn, WH__HTTP_TIMEOUT(r->srv, header_timeout_ms));
    wh_conn_resume(r->conn);
}

bool wh_http_req_has_body(const wh_http_req *r)
{
    return r->p.framing == WH_HTTP_BODY_CHUNKED ||
           (r->p.framing == WH_HTTP_BODY_LENGTH && r->p.content_length > 0);
}

int64_t wh_http_req_content_length(const wh_http_req *r)
{
    return r->p.framing == WH_HTTP_BODY_LENGTH ? (int64_t)r->p.content_length : -1;
}

bool wh_http_resp_writable(const wh_http_req *r)
{
    return r->conn && wh_conn_writable(r->conn);
}

void wh_http_resp_on_drain(wh_http_req *r, void (*cb)(wh_http_req *r, void *ud), void *ud)
{
    r->drain_cb = cb;
    r->drain_ud = ud;
}

/* on_head for a fresh head in buf (head bytes of n). Returns NEXT_GO when
 * on_read goes on after *skip bytes (answered, or streaming the body that
 * follows), NEXT_STOP after *skip bytes (async or upgraded), NEXT_DONE when
 * the connection closes, or -1 when on_head left the request to the
 * buffered path. */
static int head_hook(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r, char *buf,
                     size_t n, size_t head, size_t *skip)
{
    req_init(r, s, hl, c, (wh_str){buf + head, 0});
    bool whole = r->p.framing == WH_HTTP_BODY_NONE ||
                 (r->p.framing == WH_HTTP_BODY_LENGTH && n - head >= r->p.content_length);
    r->body_unread = !whole;
    r->body_coming = n > head;
    r->from_head = true;
    r->in_handler = true;
    s->opts.on_head(r, s->hooks_ud);
    r->in_handler = false;
    if (r->upgraded) {
        *skip = head;
        return NEXT_STOP;
    }
    if (r->state == WH__R_DONE) {
        /* Answered from the head alone. A body still due either closes the
         * connection or is dropped as it comes (the head said which). */
        if (r->close) return NEXT_DONE;
        if (r->body_unread) {
            *skip = head;
            return discard_start(s, hl, c, r) ? NEXT_GO : NEXT_DONE;
        }
        *skip = head + (r->p.framing == WH_HTTP_BODY_LENGTH ? (size_t)r->p.content_length : 0);
        if (wh_conn_data(c)) conn_idle(s, hl, c); /* the head came in pieces */
        return NEXT_GO;
    }
    if (!r->body_stream && !r->deferred && r->state == WH__R_NEW) return -1;
    /* Streaming, deferred or answering in a stream: the request outlives buf. */
    *skip = head;
    if (!r->body_unread && r->p.framing != WH_HTTP_BODY_NONE && !r->body_stream)
        r->body_unread = true; /* its body stays in the buffer until taken */
    if (!exchange_keep(s, hl, c, r, buf, WH__HC_ASYNC)) return NEXT_DONE;
    wh__http_conn *hc = wh_conn_data(c);
    if (r->body_stream) {
        stream_start(s, c, hc, r, n > head);
        return NEXT_GO; /* on_read feeds the body that follows the head */
    }
    wh_conn_pause(c);
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, write_timeout_ms));
    return NEXT_STOP;
}

/* What body_chunked says (two words: returned in registers, so the
 * keep-alive path of on_read keeps its locals there too). */
typedef struct {
    size_t total; /* the request's length; 0: incomplete; SIZE_MAX: the connection is done */
    size_t len;   /* complete: the decoded body's; incomplete: bytes on_read consumes */
} body_step;

/* A chunked body on the buffered path (buf: the request, head bytes of n),
 * decoded in place behind its head as it arrives, across reads. */
__attribute__((noinline)) static body_step body_chunked(wh_http_server *s, wh__http_loop *hl,
                                                        wh_conn *c, wh_http_req *r, char *buf,
                                                        size_t n, size_t head, bool head_ran)
{
    wh__http_conn *hc = wh_conn_data(c);
    wh_http_chunked tmp;
    size_t tin = head, tout = head;
    bool resume = hc && hc->st == WH__HC_BODY;
    wh_http_chunked *d = resume ? &hc->ck : &tmp;
    size_t *in = resume ? &hc->ck_in : &tin, *out = resume ? &hc->ck_out : &tout;
    if (!resume) wh_http_chunked_init(&tmp, s->opts.max_body);
    int cr = wh_http_chunked_decode(d, buf, n, in, out);
    if (cr == WH_HTTP_ERROR) {
        send_fatal(s, hl, c, d->status, r, true);
        return (body_step){SIZE_MAX, 0};
    }
    if (cr == 0) return (body_step){*in, *out - head};
    hc = body_wait(s, hl, c, r, n > head);
    if (!hc) return (body_step){SIZE_MAX, 0};
    hc->head_seen |= head_ran; /* on_head runs once per request */
    if (!resume) {
        hc->ck = tmp;
        hc->ck_in = tin;
        hc->ck_out = tout;
    }
    /* The decoded body grows behind the head, and the framing it came in
     * (sizes, extensions, CRLFs: RFC 9112 §7.1) is left between it and the
     * input still to decode. Squeeze that out, so that the read buffer
     * holds what max_body counts, not the framing: 100-byte chunks carry 6
     * bytes or more each, an extension up to 4 KiB. Moving head and body
     * costs their size, so it waits until the gap is an eighth of it: at
     * most 8 bytes moved per framing byte, and the buffer at most 9/8 of
     * head + body (wh_http_server_net_opts). */
    size_t gap = hc->ck_in - hc->ck_out;
    if (gap && gap >= hc->ck_out / 8) {
        memmove(buf + gap, buf, hc->ck_out);
        hc->ck_in = hc->ck_out;
        return (body_step){0, gap};
    }
    return (body_step){0, 0};
}

/* Between requests with the output above its high watermark: the next
 * pipelined request waits until the peer reads (on_drain resumes), so one
 * slow reader cannot make us queue a response per request it sent. False
 * if the connection failed. */
static bool drain_wait(wh_http_server *s, wh__http_loop *hl, wh_conn *c)
{
    wh__http_conn *hc = hc_get(hl, c);
    if (!hc) {
        wh_conn_abort(c);
        return false;
    }
    hc->st = WH__HC_DRAIN;
    wh_conn_pause(c);
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, write_timeout_ms));
    return true;
}

/* Runs the handler of a whole request (buf: its bytes). NEXT_GO: answered,
 * parse what follows; NEXT_STOP: answered later or upgraded, the bytes
 * after it wait; NEXT_DONE: the connection is closing. */
static inline int run_request(wh_http_server *s, wh__http_loop *hl, wh_conn *c, wh_http_req *r,
                              char *buf, wh_str body)
{
    /* A whole request: the connection is no longer mid-request. */
    if (wh_conn_data(c)) {
        hc_put(hl, c);
        wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, keepalive_timeout_ms));
        wh_conn_set_busy(c, false);
    }
    req_init(r, s, hl, c, body);
    r->in_handler = true;
    dispatch(s, r);
    if (r->state == WH__R_NEW && !r->deferred && !r->upgraded)
        wh_http_respond_error(r, 500); /* neither answered nor deferred: it failed */
    r->in_handler = false;

    if (r->upgraded) return NEXT_STOP; /* the rest goes to the new on_read */
    if (r->state == WH__R_DONE) return r->close ? NEXT_DONE : NEXT_GO;
    /* Async (deferred, or a stream still open): the request must outlive
     * this buffer, and later requests wait for its response. */
    if (!exchange_keep(s, hl, c, r, buf, WH__HC_ASYNC)) return NEXT_DONE;
    wh_conn_pause(c);
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, write_timeout_ms));
    return NEXT_STOP;
}

static size_t on_read(wh_conn *c, char *data, size_t len, void *ud)
{
    wh_http_server *s = ud;
    wh__http_loop *hl = wh__http_loop_get(wh_conn_loop(c));
    if (!hl) {
        wh_conn_abort(c);
        return len;
    }
    size_t consumed = 0;
    while (consumed < len) {
        wh__http_conn *hc = wh_conn_data(c);
        if (hc && (hc->st == WH__HC_ASYNC || hc->st == WH__HC_DRAIN))
            break; /* an exchange or a drain is pending: keep the bytes for later */
        if (!hc && !wh_conn_writable(c)) {
            if (!drain_wait(s, hl, c)) return len;
            break;
        }
        if (hc && hc->st >= WH__HC_STREAM) {
            size_t used;
            int next = hc->st == WH__HC_STREAM
                           ? stream_feed(s, hl, c, hc, data + consumed, len - consumed, &used)
                           : discard_feed(s, hl, c, hc, data + consumed, len - consumed, &used);
            consumed += used;
            if (next == NEXT_GO) continue;
            return next == NEXT_DONE ? len : consumed;
        }
        wh_http_req *r = req_get(hl);
        if (!r) {
            wh_conn_abort(c);
            return len;
        }
        char *buf = data + consumed;
        size_t n = len - consumed;
        size_t last = hc && hc->st == WH__HC_HEAD ? hc->last_len : 0;
        int rc = wh_http_parse_request_from(buf, n, last, &r->p, &s->lim);
        if (rc == WH_HTTP_INCOMPLETE) {
            if (!head_wait(s, hl, c, r, n)) return len;
            break;
        }
        if (rc == WH_HTTP_ERROR) {
            send_fatal(s, hl, c, r->p.status, r, true);
            return len;
        }
        size_t head = (size_t)rc, total;
        bool head_ran = false;
        if (s->opts.on_head && !(hc && hc->head_seen)) {
            size_t skip = 0;
            int next = head_hook(s, hl, c, r, buf, n, head, &skip);
            if (next == NEXT_DONE) return len;
            if (next == NEXT_STOP) return consumed + skip;
            if (next == NEXT_GO) {
                consumed += skip;
                continue;
            }
            /* Left to the buffered path, whose body limit the parser (run
             * without one so on_head could see any size) did not check. */
            if (r->p.framing == WH_HTTP_BODY_LENGTH && s->opts.max_body &&
                r->p.content_length > s->opts.max_body) {
                send_fatal(s, hl, c, 413, r, true);
                return len;
            }
            head_ran = true;
        }
        wh_str body = {buf + head, 0};
        if (r->p.framing == WH_HTTP_BODY_LENGTH) {
            if (n - head < r->p.content_length) {
                wh__http_conn *h2 = body_wait(s, hl, c, r, n > head);
                if (!h2) return len;
                h2->head_seen |= head_ran; /* on_head runs once per request */
                break;
            }
            body.len = (size_t)r->p.content_length;
            total = head + body.len;
        } else if (r->p.framing == WH_HTTP_BODY_CHUNKED) {
            body_step st = body_chunked(s, hl, c, r, buf, n, head, head_ran);
            if (st.total == SIZE_MAX) return len;
            if (st.total == 0) return consumed + st.len;
            total = st.total;
            body.len = st.len;
        } else {
            total = head;
        }

        int next = run_request(s, hl, c, r, buf, body);
        if (next == NEXT_DONE) return len; /* closing: later pipelined requests are dropped */
        consumed += total;
        if (next == NEXT_STOP) break;
    }
    return consumed;
}

/* Called by response.c when an exchange completes. */
void wh__http_exchange_done(wh_http_req *r)
{
    wh_http_server *s = r->srv;
    wh_conn *c = r->conn;
    r->state = WH__R_DONE;
    /* Body bytes still due (body_unread): the response head said whether
     * the connection closes or they are dropped (head_into). */
    if (s->opts.on_complete) s->opts.on_complete(r, s->hooks_ud);
    if (r->close) wh_conn_close(c);
    if (r->in_handler) return; /* on_read goes on with the next pipelined request */
    /* Async completion: the connection reads again. */
    wh__http_loop *hl = wh__http_loop_get(r->loop);
    if (!r->close && r->body_unread) {
        if (hl) discard_start(s, hl, c, r);
        wh_conn_resume(c); /* the body bytes kept meanwhile are dropped first */
    } else {
        if (hl) hc_put(hl, c);
        if (!r->close) {
            wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, keepalive_timeout_ms));
            wh_conn_set_busy(c, false);
            wh_conn_resume(c); /* pipelined bytes are offered at the end of the iteration */
        }
    }
    wh__http_req_release(r);
}

/* Called by wh_http_req_upgrade. */
void wh__http_detach_conn(wh_http_req *r)
{
    wh_conn *c = r->conn;
    wh__http_loop *hl = wh__http_loop_get(r->loop);
    r->upgraded = true;
    if (hl) hc_put(hl, c);
    wh_conn_set_busy(c, false);
    wh_conn_set_timeout(c, 0); /* the new owner sets its own */
    if (!r->in_handler) {
        wh_conn_resume(c);
        wh__http_req_release(r);
    }
}

static void on_drain(wh_conn *c, void *ud)
{
    wh_http_server *s = ud;
    wh__http_conn *hc = wh_conn_data(c);
    if (hc && hc->req && hc->req->drain_cb) hc->req->drain_cb(hc->req, hc->req->drain_ud);
    if (hc && hc->st == WH__HC_DRAIN) {
        /* on_read paused for this: read the pipelined requests again. */
        wh__http_loop *hl = wh__http_loop_get(wh_conn_loop(c));
        if (hl) hc_put(hl, c);
        wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, keepalive_timeout_ms));
        wh_conn_resume(c);
    }
}

static void on_open(wh_conn *c, void *ud)
{
    wh_http_server *s = ud;
    wh_conn_set_timeout(c, WH__HTTP_TIMEOUT(s, keepalive_timeout_ms));
}

static void on_eof(wh_conn *c, void *ud)
{
    /* The peer half-closed. Finish an exchange in progress, then close
     * (RFC 9112 §9.6); anything else closes now. */
    wh__http_conn *hc = wh_conn_data(c);
    if (hc && hc->st == WH__HC_STREAM && hc->req) {
        /* The body stops short: tell its reader, then wait for the answer. */
        wh_http_req *r = hc->req;
        hc->st = WH__HC_ASYNC;
        hc->eof = true;
        r->close = true;
        r->body_stream = false;
        deliver(r, NULL, 0, -ECONNRESET);
        if (r->state == WH__R_DONE) stream_finish(ud, wh__http_loop_get(wh_conn_loop(c)), c, r);
        return;
    }
    if (hc && hc->st == WH__HC_ASYNC && hc->req) {
        hc->eof = true;
        hc->req->close = true;
        return;
    }
    wh__http_loop *hl = wh__http_loop_get(wh_conn_loop(c));
    if (hl) hc_put(hl, c);
    wh_conn_close(c);
}

static void on_close(wh_conn *c, int err, void *ud)
{
    wh__http_conn *hc = wh_conn_data(c);
    if (!hc) return;
    if (err == -ETIMEDOUT && (hc->st == WH__HC_HEAD || hc->st == WH__HC_BODY)) {
        /* A head or body that stopped coming: the request ends here, with
         * no answer (the socket is gone), and logs see it as 408 (RFC 9110
         * §15.5.9), as a head that came too slowly is answered. */
        wh__http_loop *hl = wh__http_loop_get(wh_conn_loop(c));
        if (hl) report(ud, hl, c, req_get(hl), false, 408, 0, hc->head_start_ms);
    }
    if (hc->st == WH__HC_STREAM && hc->req) {
        /* Gone mid-body: the reader learns it; its respond call (now or
         * later) returns -EPIPE and frees r, so r is not touched after. */
        wh_http_req *r = hc->req;
        r->conn = NULL;
        r->body_stream = false;
        hc->req = NULL;
        r->body_cb(r, NULL, 0, -ECONNRESET, r->body_ud);
    } else if (hc->st == WH__HC_ASYNC && hc->req) {
        hc->req->conn = NULL; /* the handler's respond call frees it */
    }
    wh__http_loop *hl = wh__http_loop_get(wh_conn_loop(c));
    if (hl)
        hc_put(hl, c);
    else
        free(hc);
    wh_conn_set_busy(c, false);
}

/* The host drains (wh_server_stop, or wh_http_server_drain): from now on
 * every response on this loop closes its connection, and protocols that took
 * connections over from HTTP (WebSocket) are told. */
static void on_stop(wh_loop *loop, void *ud)
{
    (void)ud;
    wh__http_loop *hl = wh__http_loop_get(loop);
    if (!hl || hl->stopping) return;
    hl->stopping = true;
    for (unsigned i = 0; i < hl->nstop_hooks; i++)
        hl->stop_hooks[i].fn(loop, hl->stop_hooks[i].arg);
}

int wh__http_loop_on_stop(wh_loop *loop, void (*fn)(wh_loop *loop, void *arg), void *arg)
{
    wh__http_loop *hl = wh__http_loop_get(loop);
    if (!hl) return -ENOMEM;
    if (hl->nstop_hooks == sizeof(hl->stop_hooks) / sizeof(hl->stop_hooks[0])) return -ENOSPC;
    hl->stop_hooks[hl->nstop_hooks].fn = fn;
    hl->stop_hooks[hl->nstop_hooks].arg = arg;
    hl->nstop_hooks++;
    return 0;
}

bool wh__http_loop_stopping(wh_loop *loop)
{
    return hl_stopping(loop);
}

int wh_http_server_new(wh_http_server **out, const wh_http_opts *opts, wh_http_handler handler,
                       void *ud)
{
    if (!out || !handler) return -EINVAL;
    wh_http_server *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    if (opts)
        s->opts = *opts;
    else
        wh_http_opts_init(&s->opts);
    s->handler = handler;
    s->ud = ud;
    s->hooks_ud = s->opts.hooks_ud ? s->opts.hooks_ud : ud;
    s->server_len = s->opts.server_name ? strlen(s->opts.server_name) : 0;
    s->lim.max_request_line = s->opts.max_request_line;
    s->lim.max_header_bytes = s->opts.max_header_bytes;
    s->lim.max_headers = s->opts.max_headers;
    /* With on_head the parser takes any body size: on_head may stream it,
     * and on_read applies max_body only to bodies it buffers. */
    s->lim.max_body = s->opts.on_head ? 0 : s->opts.max_body;
    s->cbs = (wh_conn_cbs){
        .on_open = on_open,
        .on_read = on_read,
        .on_close = on_close,
        .on_eof = on_eof,
        .on_drain = on_drain,
        .on_stop = on_stop,
    };
    *out = s;
    return 0;
}

const wh_conn_cbs *wh_http_server_cbs(const wh_http_server *s)
{
    return &s->cbs;
}

void wh_http_server_net_opts(const wh_http_server *s, wh_net_opts *o)
{
    /* What on_read leaves unconsumed: at most a head and a buffered body,
     * plus chunk framing up to an eighth of them (see the squeeze in
     * on_read) and a little slack. Streamed and dropped bodies are not kept. */
    if (!s->opts.max_body) return; /* unbounded bodies: the host's limit stands */
    size_t keep = s->opts.max_request_line + s->opts.max_header_bytes + s->opts.max_body;
    size_t need = keep + keep / 8 + 4096;
    if (o->read_buf_max < need) o->read_buf_max = need;
}

int wh_http_server_listen(wh_http_server *s, wh_loop *loop, const char *addr,
                          const wh_net_opts *opts, wh_listener **out)
{
    if (!s || !loop || !addr || !out) return -EINVAL;
    wh_net_opts o;
    if (opts)
        o = *opts;
    else
        wh_net_opts_init(&o);
    wh_http_server_net_opts(s, &o);
    return wh_listen(loop, addr, &o, &s->cbs, s, out);
}

int wh_http_server_serve(wh_http_server *s, wh_conn *c)
{
    if (!s || !c) return -EINVAL;
    wh_conn_set_data(c, NULL);
    wh_conn_set_cbs(c, &s->cbs, s);
    on_open(c, s);
    return 0;
}

void wh_http_server_drain(wh_http_server *s, wh_loop *loop)
{
    on_stop(loop, s);
    wh_net_close_idle(loop);
}

void wh_http_server_set_timeouts(wh_http_server *s, const wh_http_opts *o)
{
    if (!s || !o) return;
    __atomic_store_n(&s->opts.header_timeout_ms, o->header_timeout_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&s->opts.keepalive_timeout_ms, o->keepalive_timeout_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&s->opts.write_timeout_ms, o->write_timeout_ms, __ATOMIC_RELAXED);
}

void wh_http_server_free(wh_http_server *s)
{
    free(s);
}
