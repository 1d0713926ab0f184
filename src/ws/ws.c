/* WebSocket connections (RFC 6455): the upgrade from an HTTP handler, the
 * read path (frame reader -> events), sends, the close handshake (§7), idle
 * pings, and graceful shutdown with 1001.
 *
 * A wh_ws wraps one wh_conn after wh_http_req_upgrade and lives until the
 * conn's on_close, where on_close(ws, code, reason) is reported exactly once.
 * The net layer defers on_close to the end of the iteration, so closing or
 * aborting from inside any callback never frees ws under our feet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ws/ws_internal.h"

/* The documented defaults (ws.h), in one place. */
static const wh_ws_opts ws_defaults = {
    .max_message = 1 << 20,
    .ping_interval_ms = 30000,
    .pong_timeout_ms = 10000,
    .close_timeout_ms = 5000,
    .fragment_timeout_ms = 30000,
    .max_loop_messages = 32u << 20,
};

void wh_ws_opts_init(wh_ws_opts *o)
{
    *o = ws_defaults;
}

/* ---- per-loop state ---- */

static void ws_loop_release(wh__ws_loop *wl)
{
    while (wl->hubs) {
        wh__ws_hub_entry *e = wl->hubs;
        wl->hubs = e->next;
        free(e);
    }
    /* Timers are freed with the loop (wh_loop_free frees attached watchers). */
    free(wl);
}

static void ws_loop_free(void *p)
{
    wh__ws_loop *wl = p;
    /* wh_loop_free frees the higher slots first, so WebSockets still open
     * get their on_close later, when the net slot aborts their connections;
     * ws_closed needs this state (lists, hub entries) until the last one. */
    if (wl->nall) {
        wl->dying = true;
        return;
    }
    ws_loop_release(wl);
}

static void ws_loop_stop(wh_loop *loop, void *arg);

wh__ws_loop *wh__ws_loop_get(wh_loop *loop)
{
    wh__ws_loop *wl = wh__loop_slot(loop, WH__SLOT_WS);
    if (wl) return wl;
    wl = calloc(1, sizeof *wl);
    if (!wl) return NULL;
    wl->loop = loop;
    /* The host's graceful stop reaches us through HTTP, the protocol these
     * connections were upgraded from. */
    if (wh__http_loop_on_stop(loop, ws_loop_stop, wl) < 0) {
        free(wl);
        return NULL;
    }
    wh__loop_set_slot(loop, WH__SLOT_WS, wl, ws_loop_free);
    return wl;
}

/* ---- the one timer: close, fragment, ping and pong deadlines ---- */

/* Points the timer at the earliest deadline that applies now. Input does not
 * re-arm it (a timer operation per read would cost more than the rare early
 * wake-up): ws_timer_cb finds the ping deadline moved and arms again. */
static void ws_arm(wh_ws *ws)
{
    if (!ws->timer) return;
    uint64_t due = UINT64_MAX;
    if (ws->close_sent) {
        due = ws->close_due_ms;
    } else {
        if (ws->opts.ping_interval_ms)
            due = ws->ping_out ? ws->ping_sent_ms + ws->opts.pong_timeout_ms
                               : ws->last_rx_ms + ws->opts.ping_interval_ms;
        if (ws->rd.in_msg && ws->msg_start_ms + ws->opts.fragment_timeout_ms < due)
            due = ws->msg_start_ms + ws->opts.fragment_timeout_ms;
    }
    if (due == ws->timer_due_ms) return;
    ws->timer_due_ms = due;
    if (due == UINT64_MAX) {
        wh_timer_stop(ws->timer);
        return;
    }
    uint64_t now = wh_loop_now(ws->loop);
    wh_timer_start(ws->timer, due > now ? due - now : 0, 0);
}

/* ---- sending ---- */

static bool can_send(const wh_ws *ws)
{
    return ws->conn && !ws->close_sent;
}

static int send_frame(wh_ws *ws, unsigned op, const void *data, size_t len)
{
    uint8_t h[WH__WS_MAX_HEADER];
    size_t hn = wh__ws_frame_header(h, op, true, len, NULL);
    int rc = wh_conn_write(ws->conn, h, hn);
    if (rc == 0 && len) rc = wh_conn_write(ws->conn, data, len);
    return rc;
}

int wh_ws_send_text(wh_ws *ws, const char *data, size_t len)
{
    return can_send(ws) ? send_frame(ws, WH_WS_OP_TEXT, data, len) : -EPIPE;
}

int wh_ws_send_binary(wh_ws *ws, const void *data, size_t len)
{
    return can_send(ws) ? send_frame(ws, WH_WS_OP_BINARY, data, len) : -EPIPE;
}

int wh_ws_ping(wh_ws *ws, const void *data, size_t len)
{
    if (len > WH__WS_MAX_CONTROL) return -EINVAL;
    return can_send(ws) ? send_frame(ws, WH_WS_OP_PING, data, len) : -EPIPE;
}

static void set_code(wh_ws *ws, int code, const void *reason, size_t len)
{
    if (ws->code_set) return;
    ws->code_set = true;
    ws->code = code;
    if (len > sizeof ws->reason - 2) len = sizeof ws->reason - 2;
    if (len) memcpy(ws->reason, reason, len);
    ws->reason[len] = 0;
    ws->reason_len = (uint8_t)len;
}

/* Queues our close frame (once) and arms the close timeout. code 0 = empty body. */
static void send_close(wh_ws *ws, int code, const char *reason, size_t len)
{
    if (ws->close_sent || !ws->conn) return;
    uint8_t pl[WH__WS_MAX_CONTROL];
    size_t n = code ? wh__ws_close_payload(pl, code, reason, len) : 0;
    (void)send_frame(ws, WH_WS_OP_CLOSE, pl, n);
    ws->close_sent = true;
    ws->close_due_ms = wh_loop_now(ws->loop) + ws->opts.close_timeout_ms;
    ws_arm(ws);
}

int wh_ws_close(wh_ws *ws, int code, const char *reason)
{
    if (!wh__ws_close_code_ok(code)) return -EINVAL;
    if (!can_send(ws)) return -EPIPE;
    size_t len = reason ? strlen(reason) : 0;
    set_code(ws, code, reason, len);
    send_close(ws, code, reason, len);
    /* §7.1.1: the server closes TCP first, once the peer's close arrives
     * (ws_read) or the close timeout fires. */
    return 0;
}

/* §7.1.7 "Fail the WebSocket Connection": send a close with the reason code,
 * then close without waiting for the reply. */
static void fail_conn(wh_ws *ws, int code, const char *reason)
{
    set_code(ws, code, reason, reason ? strlen(reason) : 0);
    send_close(ws, code, reason, reason ? strlen(reason) : 0);
    ws->close_received = true; /* read nothing more */
    /* A partial message (up to max_message) is of no use any more: give its
     * buffer back now rather than after the close handshake. */
    wh__ws_reader_free(&ws->rd);
    wh_conn_close(ws->conn);
}

void wh__ws_drop(wh_ws *ws, int code, const char *reason)
{
    if (!ws->conn) return;
    set_code(ws, code, reason, reason ? strlen(reason) : 0);
    ws->close_sent = true; /* nothing more is queued */
    ws->close_received = true;
    wh__ws_hub_unlink(ws);
    wh__ws_reader_free(&ws->rd);
    /* The queue (and the broadcasts it references) is freed when the net
     * layer completes the abort, at the end of this loop iteration. */
    wh_conn_abort(ws->conn);
}

bool wh_ws_writable(const wh_ws *ws)
{
    return can_send(ws) && wh_conn_writable(ws->conn);
}

size_t wh_ws_queued(const wh_ws *ws)
{
    return ws->conn ? wh_conn_queued(ws->conn) : 0;
}

const char *wh_ws_protocol(const wh_ws *ws)
{
    return ws->protocol;
}

void wh_ws_set_data(wh_ws *ws, void *data)
{
    ws->data = data;
}

void *wh_ws_data(const wh_ws *ws)
{
    return ws->data;
}

wh_conn *wh_ws_conn(const wh_ws *ws)
{
    return ws->conn;
}

wh_loop *wh_ws_loop(const wh_ws *ws)
{
    return ws->loop;
}

/* ---- timers ---- */

static void ws_timer_cb(wh_timer *t, void *ud)
{
    (void)t;
    wh_ws *ws = ud;
    uint64_t now = wh_loop_now(ws->loop);
    ws->timer_due_ms = 0;
    if (ws->close_sent) {
        /* The peer never answered our close (§7.1.1 allows closing TCP). */
        if (now >= ws->close_due_ms) {
            wh_conn_abort(ws->conn);
            return;
        }
    } else if (ws->rd.in_msg && now - ws->msg_start_ms >= ws->opts.fragment_timeout_ms) {
        /* A message begun and never finished holds its buffer (up to
         * max_message) for as long as the peer trickles in bytes: every byte
         * defers the keepalive ping, so only a deadline on the whole message
         * frees it. Fragmentation is legal (§5.4) and the frames may be
         * well-formed, so this is a policy, not a protocol error (§7.4.1). */
        fail_conn(ws, WH_WS_CLOSE_POLICY, "message timeout");
        return;
    } else if (ws->opts.ping_interval_ms) {
        if (ws->ping_out) {
            if (now - ws->ping_sent_ms >= ws->opts.pong_timeout_ms) {
                /* Unresponsive peer: no close handshake is possible, so
                 * report 1006 (§7.1.5: closed without a close frame). */
                set_code(ws, WH_WS_CLOSE_ABNORMAL, "pong timeout", 12);
                wh_conn_abort(ws->conn);
                return;
            }
        } else if (now - ws->last_rx_ms >= ws->opts.ping_interval_ms) {
            /* §5.5.2: a ping as a keepalive; any input counts as the answer. */
            (void)send_frame(ws, WH_WS_OP_PING, "wharf", 5);
            ws->ping_out = true;
            ws->ping_sent_ms = now;
        }
    }
    ws_arm(ws);
}

static void ws_loop_stop(wh_loop *loop, void *arg)
{
    (void)loop;
    wh__ws_loop *wl = arg;
    /* Graceful stop: tell every peer we are going away (§7.4.1: 1001) and let
     * the close handshakes finish within the host's shutdown deadline. */
    for (wh_ws *ws = wl->all; ws; ws = ws->all_next)
        if (can_send(ws)) wh_ws_close(ws, WH_WS_CLOSE_GOING_AWAY, "server shutting down");
}

/* ---- the connection callbacks after the upgrade ---- */

static size_t ws_read(wh_conn *c, char *data, size_t len, void *ud)
{
    wh_ws *ws = ud;
    uint8_t *p = (uint8_t *)data;
    size_t pos = 0;
    if (ws->close_received) return len; /* failed, or the peer closed (§5.5.1) */
    ws->last_rx_ms = wh_loop_now(ws->loop);
    ws->ping_out = false;
    bool was_in_msg = ws->rd.in_msg, finished = false;
    while (pos < len || ws->rd.state != 0) {
        wh__ws_event ev;
        size_t used = 0;
        int t = wh__ws_reader_next(&ws->rd, p + pos, len - pos, &used, &ev);
        pos += used;
        if (t == WH__WS_EV_NONE) break;
        if (ws->close_received) return len; /* nothing after a close frame matters (§5.5.1) */
        switch (t) {
        case WH__WS_EV_MESSAGE:
            finished = true;
            /* After our close we only wait for the peer's (§7.1.2). */
            if (!ws->close_sent && ws->cbs.on_message)
                ws->cbs.on_message(ws, (const char *)ev.data, ev.len, ev.opcode == WH_WS_OP_TEXT,
                                   ws->ud);
            break;
        case WH__WS_EV_PING:
            /* §5.5.3: a pong carries the ping's payload. */
            if (!ws->close_sent) (void)send_frame(ws, WH_WS_OP_PONG, ev.data, ev.len);
            break;
        case WH__WS_EV_PONG:
            break;
        case WH__WS_EV_CLOSE:
            ws->close_received = true;
            set_code(ws, ev.code, ev.data, ev.len);
            /* §5.5.1: answer with a close echoing the code (none if none). */
            send_close(ws, ev.code == WH_WS_CLOSE_NO_STATUS ? 0 : ev.code, NULL, 0);
            wh_conn_close(ws->conn);
            return len;
        case WH__WS_EV_ERROR:
            ws->close_received = true; /* stop reading */
            fail_conn(ws, ev.code, ev.reason);
            return len;
        }
        if (!ws->conn || pos >= len) break;
    }
    if (ws->rd.in_msg && (finished || !was_in_msg) && !ws->close_sent) {
        /* A new message began in this read: its deadline starts now. */
        ws->msg_start_ms = ws->last_rx_ms;
        if (!ws->timer_due_ms || ws->msg_start_ms + ws->opts.fragment_timeout_ms < ws->timer_due_ms)
            ws_arm(ws);
    }
    return len;
}

static void ws_drain(wh_conn *c, void *ud)
{
    wh_ws *ws = ud;
    if (ws->cbs.on_drain && can_send(ws)) ws->cbs.on_drain(ws, ws->ud);
}

static void ws_closed(wh_conn *c, int err, void *ud)
{
    wh_ws *ws = ud;
    wh__ws_loop *wl = ws->wl;
    if (!ws->code_set) set_code(ws, WH_WS_CLOSE_ABNORMAL, NULL, 0); /* §7.1.5 */
    wh__ws_hub_unlink(ws);
    if (ws->all_prev)
        ws->all_prev->all_next = ws->all_next;
    else
        wl->all = ws->all_next;
    if (ws->all_next) ws->all_next->all_prev = ws->all_prev;
    wl->nall--;
    if (ws->timer) wh_timer_free(ws->timer);
    ws->timer = NULL;
    wh_conn_set_busy(c, false);
    ws->close_sent = true; /* sends from on_close fail with -EPIPE */
    if (ws->cbs.on_close) ws->cbs.on_close(ws, ws->code, ws->reason, ws->reason_len, ws->ud);
    ws->conn = NULL;
    wh__ws_reader_free(&ws->rd);
    free(ws->protocol);
    free(ws);
    if (wl->dying && !wl->nall) ws_loop_release(wl);
}

static const wh_conn_cbs ws_conn_cbs = {
    .on_read = ws_read,
    .on_drain = ws_drain,
    .on_close = ws_closed,
};

/* ---- the handshake ---- */

static bool name_is(wh_str n, const char *lit)
{
    size_t l = strlen(lit);
    return n.len == l && strncasecmp(n.p, lit, l) == 0;
}

static int refuse(wh_http_req *r, int status)
{
    if (status == 426) {
        /* §4.4: list the versions we speak; RFC 9110 §15.5.22: a 426 names
         * the protocol to upgrade to. */
        (void)wh_http_resp_header(r, "Sec-WebSocket-Version", "13");
        (void)wh_http_resp_header(r, "Upgrade", "websocket");
    }
    wh_http_resp_close(r);
    const char *body = status == 426   ? "WebSocket version 13 required\n"
                       : status == 403 ? "origin not allowed\n"
                                       : "bad WebSocket handshake\n";
    (void)wh_http_respond(r, status, "text/plain", body, strlen(body));
    return -EPROTO;
}

#define MAX_PROTOCOLS 16

/* What the handshake request says (RFC 6455 §4.2.1). */
struct ws_offer {
    wh__ws_hs hs;
    wh_str origin;
    wh_str offered[MAX_PROTOCOLS];
    unsigned noffered, nkeys;
};

/* Reads the request's fields into *f; the status to refuse with, or 0. */
static int read_offer(wh_http_req *r, struct ws_offer *f)
{
    memset(f, 0, sizeof *f);
    f->hs.method = wh_http_req_method(r);
    f->hs.version = wh_http_req_version(r);
    unsigned nh = wh_http_req_header_count(r);
    for (unsigned i = 0; i < nh; i++) {
        wh_str n, v;
        wh_http_req_header_at(r, i, &n, &v);
        if (name_is(n, "upgrade"))
            f->hs.upgrade_ws |= wh__ws_list_has(v, "websocket");
        else if (name_is(n, "connection"))
            f->hs.connection_up |= wh__ws_list_has(v, "upgrade");
        else if (name_is(n, "sec-websocket-version") && !f->hs.ws_version.p)
            f->hs.ws_version = v;
        else if (name_is(n, "sec-websocket-key"))
            f->hs.key = v, f->nkeys++;
        else if (name_is(n, "sec-websocket-protocol"))
            f->noffered +=
                wh__ws_list_split(v, f->offered + f->noffered, MAX_PROTOCOLS - f->noffered);
        else if (name_is(n, "origin"))
            f->origin = v;
    }
    int status = wh__ws_handshake_check(&f->hs);
    if (!status && f->nkeys != 1) /* §11.3.1: the key appears exactly once */
        status = 400;
    return status;
}

/* A connection-less wh_ws with its timer and chosen subprotocol, or NULL. */
static wh_ws *ws_new(wh_loop *loop, const wh_ws_opts *o, const struct ws_offer *f, void *ud)
{
    wh_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    /* §4.2.2 item 5.4: pick at most one of the offered subprotocols. */
    if (o->select_protocol && f->noffered) {
        int k = o->select_protocol(f->offered, f->noffered, ud);
        if (k >= 0 && (unsigned)k < f->noffered)
            ws->protocol = strndup(f->offered[k].p, f->offered[k].len);
    }
    if (wh_timer_new(loop, ws_timer_cb, ws, &ws->timer) < 0) {
        free(ws->protocol);
        free(ws);
        return NULL;
    }
    return ws;
}

/* Frees a wh_ws that never got its connection. */
static void ws_discard(wh_ws *ws)
{
    wh_timer_free(ws->timer);
    free(ws->protocol);
    free(ws);
}

/* The 101 response into resp[cap]; its length, or -1 if it does not fit
 * (a very long protocol token). */
static int format_101(const wh_ws *ws, const char *accept, char *resp, size_t cap)
{
    const char *p = ws->protocol;
    int n = snprintf(resp, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "%s%s%s"
                     "\r\n",
                     accept, p ? "Sec-WebSocket-Protocol: " : "", p ? p : "", p ? "\r\n" : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Takes over the upgraded connection c: links ws into its loop, sends the
 * 101, and starts the keepalive and the callbacks. */
static void ws_start(wh_ws *ws, wh_conn *c, wh__ws_loop *wl, const wh_ws_opts *o,
                     const wh_ws_cbs *cbs, void *ud, const char *resp, size_t len)
{
    wh_loop *loop = wh_conn_loop(c);
    ws->conn = c;
    ws->loop = loop;
    ws->wl = wl;
    ws->cbs = *cbs;
    ws->ud = ud;
    ws->opts = *o;
    wh__ws_reader_init(&ws->rd, false, o->max_message);
    ws->rd.pool = &wl->msg_mem;
    ws->rd.pool_max = o->max_loop_messages;
    ws->last_rx_ms = wh_loop_now(loop);
    ws->all_next = wl->all;
    if (wl->all) wl->all->all_prev = ws;
    wl->all = ws;
    wl->nall++;
    (void)wh_conn_write(c, resp, len);
    /* Our own keepalive replaces HTTP's timeouts; a graceful stop must not
     * cut us off without a close frame, so the host sees us as busy and
     * ws_loop_stop sends 1001 instead. */
    wh_conn_set_timeout(c, 0);
    wh_conn_set_busy(c, true);
    ws_arm(ws);
}

int wh_ws_accept(wh_http_req *r, const wh_ws_opts *opts, const wh_ws_cbs *cbs, void *ud,
                 wh_ws **out)
{
    wh_ws_opts o;
    if (opts)
        o = *opts;
    else
        wh_ws_opts_init(&o);
    if (!o.max_message) o.max_message = ws_defaults.max_message;
    if (!o.close_timeout_ms) o.close_timeout_ms = ws_defaults.close_timeout_ms;
    if (!o.fragment_timeout_ms) o.fragment_timeout_ms = ws_defaults.fragment_timeout_ms;
    if (!o.max_loop_messages) o.max_loop_messages = ws_defaults.max_loop_messages;

    struct ws_offer f;
    int status = read_offer(r, &f);
    if (status) return refuse(r, status);
    if (o.check_origin && !o.check_origin(f.origin, r, ud)) return refuse(r, 403);
    char accept[WH__WS_ACCEPT_LEN + 1];
    if (wh__ws_accept_key(f.hs.key.p, f.hs.key.len, accept) < 0) {
        (void)wh_http_respond_error(r, 500);
        return -EIO;
    }
    wh_loop *loop = wh_http_req_loop(r);
    wh__ws_loop *wl = wh__ws_loop_get(loop);
    wh_ws *ws = wl ? ws_new(loop, &o, &f, ud) : NULL;
    if (!ws) {
        (void)wh_http_respond_error(r, 503);
        return -ENOMEM;
    }
    char resp[256 + 64];
    int n = format_101(ws, accept, resp, sizeof resp);
    if (n < 0) {
        ws_discard(ws);
        return refuse(r, 400);
    }
    wh_conn *c = wh_http_req_upgrade(r); /* r is gone from here on */
    if (!c) {
        ws_discard(ws);
        return -EIO;
    }
    ws_start(ws, c, wl, &o, cbs, ud, resp, (size_t)n);
    if (out) *out = ws;
    if (cbs->on_open) cbs->on_open(ws, ud);
    /* Installed last: bytes that came with the request head go to ws_read. */
    wh_conn_set_cbs(c, &ws_conn_cbs, ws);
    /* Upgraded while the host already drains: open, then go away at once. */
    if (wh__http_loop_stopping(loop) && can_send(ws))
        wh_ws_close(ws, WH_WS_CLOSE_GOING_AWAY, "server shutting down");
    return 0;
}
