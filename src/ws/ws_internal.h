/* Internal WebSocket pieces: the pure parts (UTF-8 validator, frame reader and
 * writer, close payloads, handshake checks) have no I/O and no loop, so they
 * are unit-tested and fuzzed on their own. ws.c and hub.c glue them to wh_conn.
 */
#ifndef WH_WS_INTERNAL_H
#define WH_WS_INTERNAL_H

#include "http/http_internal.h"
#include "loop/loop_internal.h"
#include "wharf/ws.h"

/* ---- frames (RFC 6455 §5) ---- */

#define WH__WS_MAX_HEADER  14  /* 2 + 8 (64-bit length) + 4 (mask) */
#define WH__WS_MAX_CONTROL 125 /* §5.5: control payloads are at most 125 bytes */

/* XORs p..p+n with the masking key, starting at key offset off (§5.3). */
void wh__ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t off);

/* Writes a frame header into out; returns its length (2..14). mask NULL ->
 * unmasked (server frames, §5.1); otherwise the key is written and the caller
 * masks the payload with wh__ws_mask. */
size_t wh__ws_frame_header(uint8_t out[WH__WS_MAX_HEADER], unsigned opcode, bool fin, uint64_t len,
                           const uint8_t *mask);

/* True for a close code an endpoint may put on the wire (§7.4.1, §7.4.2,
 * IANA registry): 1000-1003, 1007-1014, 3000-4999. */
bool wh__ws_close_code_ok(int code);
/* Builds a close payload (2-byte code + reason trimmed to 123 bytes on a
 * character boundary) in out; returns its length. */
size_t wh__ws_close_payload(uint8_t out[WH__WS_MAX_CONTROL], int code, const char *reason,
                            size_t reason_len);
/* Validates a received close payload (§5.5.1): 0 and the code (1005 when the
 * payload is empty) + reason, or the close code to fail with (1002: length 1
 * or a code not allowed on the wire; 1007: reason not UTF-8). */
int wh__ws_close_parse(const uint8_t *p, size_t n, int *code, const uint8_t **reason,
                       size_t *reason_len);

/* Incremental frame reader: feeds any split of the byte stream, joins
 * fragments into messages, enforces every §5 rule, and hands out one event
 * at a time. */
enum wh__ws_ev {
    WH__WS_EV_NONE = 0, /* all input absorbed; need more */
    WH__WS_EV_MESSAGE,  /* a whole text/binary message: opcode, data, len */
    WH__WS_EV_PING,     /* data, len: the ping payload */
    WH__WS_EV_PONG,     /* data, len: the pong payload */
    WH__WS_EV_CLOSE,    /* code (1005 if none), data/len: the reason */
    WH__WS_EV_ERROR,    /* fail the connection with code (1002/1007/1009/1011), reason */
};

typedef struct wh__ws_event {
    int type;            /* enum wh__ws_ev */
    unsigned opcode;     /* MESSAGE: WH_WS_OP_TEXT or WH_WS_OP_BINARY */
    const uint8_t *data; /* payload; valid until the next call (may point into the input) */
    size_t len;
    int code;           /* CLOSE / ERROR */
    const char *reason; /* ERROR: static text */
} wh__ws_event;

typedef struct wh__ws_reader {
    /* configuration */
    size_t max_message; /* bytes in one message; larger -> 1009 */
    bool client;        /* reading server frames: they must be unmasked */
    unsigned rsv_ok;    /* RSV bits an extension allows (0x70 mask), normally 0 */
    /* frame in progress */
    int state; /* internal */
    uint8_t hdr[WH__WS_MAX_HEADER];
    uint8_t hdr_have;
    uint8_t f_op;
    bool f_fin;
    bool f_masked;
    uint8_t f_key[4];
    uint64_t f_left; /* payload bytes still to come */
    uint64_t f_off;  /* payload bytes seen (mask offset) */
    /* message in progress (data frames) */
    bool in_msg;
    uint8_t msg_op;
    wh_utf8_state utf8;
    uint8_t *msg;
    size_t msg_len, msg_cap;
    /* Shared count of what the partial messages of every reader on this
     * loop hold (msg_cap each), and its cap; NULL = not counted. */
    size_t *pool;
    size_t pool_max;
    /* control frame in progress */
    uint8_t ctrl[WH__WS_MAX_CONTROL];
    size_t ctrl_len;
    /* the last error (sticky) */
    int err_code;
    const char *err_reason;
} wh__ws_reader;

/* Prepares a reader (client = reading frames sent by a server). */
void wh__ws_reader_init(wh__ws_reader *r, bool client, size_t max_message);
/* Frees the message buffer. */
void wh__ws_reader_free(wh__ws_reader *r);
/* Consumes bytes from data (unmasking in place) until one event is complete
 * or the input ends. Sets *consumed and *ev; returns ev->type. After ERROR,
 * every later call returns the same ERROR. */
int wh__ws_reader_next(wh__ws_reader *r, uint8_t *data, size_t len, size_t *consumed,
                       wh__ws_event *ev);

/* ---- handshake (RFC 6455 §4.2) ---- */

#define WH__WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WH__WS_ACCEPT_LEN 28

/* What the handshake check needs from a request. */
typedef struct wh__ws_hs {
    wh_str method;
    int version;        /* 10 / 11 */
    bool upgrade_ws;    /* Upgrade header lists the "websocket" token */
    bool connection_up; /* Connection header lists the "upgrade" token */
    wh_str ws_version;  /* Sec-WebSocket-Version */
    wh_str key;         /* Sec-WebSocket-Key */
} wh__ws_hs;

/* 0 if the request is a valid opening handshake, else the HTTP status to
 * answer: 400 (§4.2.1 says "such as 400") or 426 for a version other than 13
 * (§4.4: with Sec-WebSocket-Version: 13). */
int wh__ws_handshake_check(const wh__ws_hs *hs);
/* True if key is base64 of exactly 16 bytes (§4.1 item 7). */
bool wh__ws_key_valid(const char *key, size_t len);
/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)) (§4.2.2 item 5.4);
 * out gets 28 chars + NUL. 0 or -EINVAL / -EIO. */
int wh__ws_accept_key(const char *key, size_t len, char out[WH__WS_ACCEPT_LEN + 1]);
/* True if the comma-separated list contains token (case-insensitive, §4.2.1
 * items 3 and 4 use token lists). */
bool wh__ws_list_has(wh_str list, const char *token);
/* Splits a comma-separated token list into at most max trimmed slices; returns the count. */
unsigned wh__ws_list_split(wh_str list, wh_str *out, unsigned max);

/* ---- connections and hubs (ws.c, hub.c) ---- */

struct wh__ws_hub_entry;

/* A hub's members on one loop. */
typedef struct wh__ws_hub_entry {
    wh_ws_hub *hub;
    wh_ws *head;
    size_t n;
    size_t mem; /* real memory of the broadcasts queued to members here */
    void *hl;   /* the hub's state for this loop (hub.c) */
    struct wh__ws_hub_entry *next;
} wh__ws_hub_entry;

/* Per-loop WebSocket state (loop slot WH__SLOT_WS), touched only by its thread. */
typedef struct wh__ws_loop {
    wh_loop *loop;
    wh_ws *all; /* every open ws on this loop */
    size_t nall;
    wh__ws_hub_entry *hubs; /* member lists, one per hub used on this loop */
    bool dying;             /* the loop is being freed: the last ws_closed frees this */
    size_t msg_mem;         /* held by the partial messages of its readers (reader.pool) */
} wh__ws_loop;

struct wh_ws {
    wh_conn *conn;
    wh_loop *loop;
    wh__ws_loop *wl;
    wh_ws_cbs cbs;
    void *ud;
    void *data;
    wh_ws_opts opts;
    wh__ws_reader rd;
    wh_timer *timer;       /* idle ping / pong timeout / close timeout / fragment timeout */
    uint64_t timer_due_ms; /* when the timer fires (UINT64_MAX: stopped; 0: being handled) */
    uint64_t last_rx_ms;
    uint64_t ping_sent_ms;
    uint64_t msg_start_ms; /* when the message in progress (rd.in_msg) began */
    uint64_t close_due_ms; /* when we stop waiting for the peer's close */
    bool ping_out;
    bool close_sent;
    bool close_received;
    bool code_set;
    int code; /* reported to on_close */
    uint8_t reason_len;
    char reason[WH__WS_MAX_CONTROL];
    char *protocol;
    /* all-list on this loop */
    wh_ws *all_prev, *all_next;
    /* hub membership */
    wh__ws_hub_entry *hentry;
    wh_ws *h_prev, *h_next;
};

/* Gets (creating on first use) the per-loop state; NULL on -ENOMEM. */
wh__ws_loop *wh__ws_loop_get(wh_loop *loop);
/* Takes ws out of its hub (hub.c); no-op if none. */
void wh__ws_hub_unlink(wh_ws *ws);
/* Ends ws at once without a close frame (it would sit behind a queue the peer
 * does not read): on_close reports code and reason, the queue and the
 * broadcasts it references are freed, ws leaves its hub now. */
void wh__ws_drop(wh_ws *ws, int code, const char *reason);

#endif
