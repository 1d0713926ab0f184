/* wharf WebSocket (RFC 6455) on top of the HTTP engine.
 *
 * An HTTP handler calls wh_ws_accept(r, ...) on an upgrade request; wharf
 * validates the handshake (answering 400/403/426 itself when it is bad),
 * sends 101, and from then on delivers whole messages to on_message. Text
 * messages are valid UTF-8 (checked incrementally, 1007 otherwise), control
 * frames are answered (ping -> pong, close -> close), and the connection is
 * failed with 1002/1009 on protocol errors or oversized messages.
 *
 * Threading: a wh_ws lives on one loop thread; every function taking a wh_ws
 * must be called there. wh_ws_hub_broadcast() may be called from any thread.
 */
#ifndef WHARF_WS_H
#define WHARF_WS_H

#include "wharf/common.h"
#include "wharf/http.h"

WH_BEGIN_DECLS

typedef struct wh_ws wh_ws;
typedef struct wh_ws_hub wh_ws_hub;

/* Frame opcodes (RFC 6455 §5.2). */
enum wh_ws_opcode {
    WH_WS_OP_CONT = 0x0,
    WH_WS_OP_TEXT = 0x1,
    WH_WS_OP_BINARY = 0x2,
    WH_WS_OP_CLOSE = 0x8,
    WH_WS_OP_PING = 0x9,
    WH_WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 §7.4.1; 1012-1014 from the IANA registry). */
enum wh_ws_close_code {
    WH_WS_CLOSE_NORMAL = 1000,
    WH_WS_CLOSE_GOING_AWAY = 1001,
    WH_WS_CLOSE_PROTOCOL = 1002,
    WH_WS_CLOSE_UNSUPPORTED = 1003,
    WH_WS_CLOSE_NO_STATUS = 1005, /* reported only: close frame without a code */
    WH_WS_CLOSE_ABNORMAL = 1006,  /* reported only: connection lost without a close frame */
    WH_WS_CLOSE_INVALID_DATA = 1007,
    WH_WS_CLOSE_POLICY = 1008,
    WH_WS_CLOSE_TOO_BIG = 1009,
    WH_WS_CLOSE_MANDATORY_EXT = 1010,
    WH_WS_CLOSE_INTERNAL = 1011,
    WH_WS_CLOSE_TRY_AGAIN = 1013, /* IANA registry: server overloaded, try again later */
};

typedef struct wh_ws_cbs {
    /* The handshake is done (101 queued); the connection is open. */
    void (*on_open)(wh_ws *ws, void *ud);
    /* One whole message (fragments joined). data is valid during the call only. */
    void (*on_message)(wh_ws *ws, const char *data, size_t len, bool text, void *ud);
    /* Called once when the connection ends: code is the peer's close code,
     * the code we closed or failed with, 1005 (close without code) or 1006
     * (connection lost). ws is freed after this returns. */
    void (*on_close)(wh_ws *ws, int code, const char *reason, size_t reason_len, void *ud);
    /* The send queue drained below the low watermark after wh_ws_writable() was false. */
    void (*on_drain)(wh_ws *ws, void *ud);
} wh_ws_cbs;

typedef struct wh_ws_opts {
    size_t max_message;        /* larger message -> close 1009: 1 MiB (0 = the default) */
    uint32_t ping_interval_ms; /* ping after this long without input: 30000; 0 = never */
    uint32_t pong_timeout_ms;  /* no input this long after a ping -> drop (1006): 10000 */
    uint32_t close_timeout_ms; /* wait for the peer's close reply this long: 5000 */
    /* A message (all its fragments, or one frame still arriving) must be
     * complete this long after its first byte, or the connection is closed
     * with 1008 and the partial message freed: 30000. Without it a peer that
     * trickles in bytes keeps up to max_message buffered indefinitely (every
     * byte counts as activity for the pings). 0 = the default. */
    uint32_t fragment_timeout_ms;
    /* What the partial messages (fragments not yet joined, or one big frame
     * still arriving) of all WebSockets on one loop may hold together: 32 MiB.
     * The connection whose message would pass it is closed with 1013 (try
     * again later) and its part freed; the others go on. Without it 1,000
     * connections each holding a message just under max_message take 1 GiB.
     * Each WebSocket checks against its own value. 0 = the default. */
    size_t max_loop_messages;
    /* Subprotocol choice (Sec-WebSocket-Protocol, RFC 6455 §4.2.2): return the
     * index of one of the n offered tokens, or -1 for none. NULL = none. */
    int (*select_protocol)(const wh_str *offered, unsigned n, void *ud);
    /* Origin check (RFC 6455 §10.2): false -> 403. origin.p is NULL when the
     * request has no Origin header. NULL = allow every origin. */
    bool (*check_origin)(wh_str origin, wh_http_req *r, void *ud);
} wh_ws_opts;

/* Fills opts with the documented defaults. */
void wh_ws_opts_init(wh_ws_opts *opts);

/* From an HTTP handler: validates the upgrade request and answers it. On
 * success sends 101, takes over the connection, runs on_open and sets *out
 * (out may be NULL); r is invalid afterwards. On a bad request responds
 * 400/403/426 itself and returns -EPROTO (or -ENOMEM). opts may be NULL. */
int wh_ws_accept(wh_http_req *r, const wh_ws_opts *opts, const wh_ws_cbs *cbs, void *ud,
                 wh_ws **out);

/* Sends one text message (data must be UTF-8; not checked). 0, -EPIPE after close, -ENOMEM. */
int wh_ws_send_text(wh_ws *ws, const char *data, size_t len);
/* Sends one binary message. 0, -EPIPE after close, -ENOMEM. */
int wh_ws_send_binary(wh_ws *ws, const void *data, size_t len);
/* Sends a ping with up to 125 bytes of payload. 0, -EINVAL, -EPIPE. */
int wh_ws_ping(wh_ws *ws, const void *data, size_t len);
/* Starts the close handshake with code (1000-1003, 1007-1014, 3000-4999) and
 * a reason (truncated to 123 bytes); on_close follows. 0, -EINVAL, -EPIPE. */
int wh_ws_close(wh_ws *ws, int code, const char *reason);
/* False while the send queue is above the high watermark (pause producing until on_drain). */
bool wh_ws_writable(const wh_ws *ws);
/* Bytes queued and not yet sent. */
size_t wh_ws_queued(const wh_ws *ws);
/* The negotiated subprotocol, or NULL. */
const char *wh_ws_protocol(const wh_ws *ws);
/* Attaches a user pointer. */
void wh_ws_set_data(wh_ws *ws, void *data);
/* The pointer from wh_ws_set_data(), or NULL. */
void *wh_ws_data(const wh_ws *ws);
/* The underlying connection (for its peer address or fd; do not write to it). */
wh_conn *wh_ws_conn(const wh_ws *ws);
/* The loop (thread) the connection runs on. */
wh_loop *wh_ws_loop(const wh_ws *ws);

/* Hubs: a set of connections, on any number of loops (threads), that can be
 * broadcast to. Each loop keeps its own member list, so join/leave/send never
 * take a lock; a broadcast encodes the frame once and appends it to a queue
 * per loop that has had a member, and one posted task (wh_loop_post) per
 * loop drains that queue, writing each frame to the loop's members by
 * reference. The hub needs no host: it learns a loop when a WebSocket on
 * that loop first joins.
 *
 * Memory is bounded three ways, counted as real memory (allocations and
 * their overhead, about 150 bytes per queued broadcast beyond its frame),
 * not payload bytes:
 *  - per member (wh_ws_hub_set_max_queued, 8 MiB): a member that does not
 *    read is dropped before it holds more;
 *  - per loop, all members together (wh_ws_hub_set_max_loop_queued, 32 MiB);
 *  - per loop, broadcasts not yet processed (wh_ws_hub_set_max_pending,
 *    2 MiB): past it wh_ws_hub_broadcast() fails with -EAGAIN.
 * Bytes the kernel has taken (each socket's send buffer, up to net.ipv4.
 * tcp_wmem's maximum) are outside these bounds. */
/* Creates an empty hub. 0, -EINVAL or -ENOMEM. */
int wh_ws_hub_new(wh_ws_hub **out);
/* Frees the hub (NULL is fine); call once its loops no longer run (stopped
 * or freed), so that no broadcast or member is in flight. */
void wh_ws_hub_free(wh_ws_hub *hub);
/* Adds ws to the hub (a ws is in at most one hub; joining moves it). It
 * leaves automatically when it closes. 0 or -ENOMEM. */
int wh_ws_hub_join(wh_ws_hub *hub, wh_ws *ws);
/* Removes ws from its hub (no-op if none). */
void wh_ws_hub_leave(wh_ws *ws);
/* Sets the most memory a member's send queue may hold (default 8 MiB, 0 =
 * the default): its bytes plus about 150 bytes per queued message. A member
 * that a broadcast would take past it is closed with 1008 at once: on_close
 * reports 1008 "too slow", the peer sees the TCP connection reset (a close
 * frame queued behind what it does not read would never reach it, §7.1.7),
 * and everything queued for it is freed. Call before any member joins. */
void wh_ws_hub_set_max_queued(wh_ws_hub *hub, size_t bytes);
/* Sets the most memory one loop's queue of broadcasts not yet processed may
 * hold (default 2 MiB, 0 = the default). Normally that queue is drained
 * within one loop iteration; it fills when producers outrun a loop. A
 * message always fits an empty queue, whatever its size; a loop none of
 * whose WebSockets is a member is left out. Call before any member joins. */
void wh_ws_hub_set_max_pending(wh_ws_hub *hub, size_t bytes);
/* Sets the most memory the broadcasts queued to all members on one loop may
 * hold together (default 32 MiB, 0 = the default): many slow members, each
 * under max_queued, add up too. Past it the loop stops handing out
 * broadcasts for an iteration so that its writes flush; if the loop then
 * still holds more than 3/4 of it, each member holding more than an even
 * share of that (3/4 of this / members on the loop) is closed as by
 * max_queued (1008). Broadcasts meanwhile wait, then fail with -EAGAIN once
 * max_pending fills. Call before any member joins. */
void wh_ws_hub_set_max_loop_queued(wh_ws_hub *hub, size_t bytes);
/* Any thread, while the hub's loops exist: sends one message to every member
 * on every loop (see wh_ws_hub_set_max_queued for members that cannot keep
 * up). All or nothing: 0 when every loop took it, -EAGAIN when a loop's
 * queue is full (see wh_ws_hub_set_max_pending; no member gets it: slow
 * down, drop the message or tell its sender), -ENOMEM. */
int wh_ws_hub_broadcast(wh_ws_hub *hub, const void *data, size_t len, bool text);
/* Members on all loops (approximate while joins/leaves are in flight). */
size_t wh_ws_hub_count(const wh_ws_hub *hub);

WH_END_DECLS

#endif
