/* WebSocket framing (RFC 6455 §5): an incremental reader that enforces the
 * base framing rules and joins fragments, a header writer, and close
 * payloads (§5.5.1, §7.4).
 *
 * The reader is a pure state machine over whatever bytes arrive: a header
 * split anywhere is gathered in a 14-byte buffer; payload is unmasked in place
 * and streamed into the message buffer, so a 1 MiB message never needs the
 * whole frame in the connection's read buffer. A whole unfragmented frame
 * already in the input is handed out where it lies (no copy): the common case
 * for small chat/echo messages.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/ws_internal.h"

enum { RS_HEADER = 0, RS_PAYLOAD = 1, RS_FAILED = 2 };

/* Buffers larger than this are released between messages, so one big
 * message does not pin memory on an otherwise chatty-but-small connection. */
#define KEEP_BUF (64 * 1024)

void wh__ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t off)
{
    /* The key repeats every 4 bytes, so an 8-byte rotated copy XORs a word
     * at a time and stays aligned with the key after each step. */
    uint8_t k8[8];
    for (int j = 0; j < 8; j++)
        k8[j] = key[(off + (size_t)j) & 3];
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[(off + i) & 3];
}

size_t wh__ws_frame_header(uint8_t out[WH__WS_MAX_HEADER], unsigned opcode, bool fin, uint64_t len,
                           const uint8_t *mask)
{
    uint8_t mbit = mask ? 0x80 : 0;
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    /* §5.2: the minimal number of bytes MUST be used to encode the length. */
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
    } else if (len <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

bool wh__ws_close_code_ok(int code)
{
    /* §7.4.1: 1004 is reserved, 1005/1006 are for reporting only and 1015
     * (TLS) likewise; 1012-1014 were registered with IANA later (§11.7).
     * §7.4.2: 0-999 unused, 1016-2999 reserved for future revisions,
     * 3000-4999 for libraries and applications. */
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1014) return true;
    return code >= 3000 && code <= 4999;
}

size_t wh__ws_close_payload(uint8_t out[WH__WS_MAX_CONTROL], int code, const char *reason,
                            size_t reason_len)
{
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = 0;
    if (reason && reason_len)
        n = wh_utf8_trim((const uint8_t *)reason, reason_len, WH__WS_MAX_CONTROL - 2);
    if (n) memcpy(out + 2, reason, n);
    return 2 + n;
}

int wh__ws_close_parse(const uint8_t *p, size_t n, int *code, const uint8_t **reason,
                       size_t *reason_len)
{
    /* §5.5.1: an empty body is allowed (reported as 1005, §7.1.5); otherwise
     * the first two bytes are the code and the rest UTF-8 text. */
    if (n == 0) {
        *code = WH_WS_CLOSE_NO_STATUS;
        *reason = p;
        *reason_len = 0;
        return 0;
    }
    if (n == 1) return WH_WS_CLOSE_PROTOCOL;
    int c = (p[0] << 8) | p[1];
    if (!wh__ws_close_code_ok(c)) return WH_WS_CLOSE_PROTOCOL;
    if (!wh_utf8_valid(p + 2, n - 2)) return WH_WS_CLOSE_INVALID_DATA;
    *code = c;
    *reason = p + 2;
    *reason_len = n - 2;
    return 0;
}

void wh__ws_reader_init(wh__ws_reader *r, bool client, size_t max_message)
{
    memset(r, 0, sizeof *r);
    r->client = client;
    r->max_message = max_message;
}

void wh__ws_reader_free(wh__ws_reader *r)
{
    if (r->pool) *r->pool -= r->msg_cap;
    free(r->msg);
    r->msg = NULL;
    r->msg_len = r->msg_cap = 0;
}

static int fail(wh__ws_reader *r, wh__ws_event *ev, int code, const char *reason)
{
    r->state = RS_FAILED;
    r->err_code = code;
    r->err_reason = reason;
    ev->type = WH__WS_EV_ERROR;
    ev->code = code;
    ev->reason = reason;
    return WH__WS_EV_ERROR;
}

/* Header length announced by the first two bytes. */
static size_t hdr_need(const uint8_t *h)
{
    size_t n = 2;
    unsigned l7 = h[1] & 0x7F;
    if (l7 == 126)
        n += 2;
    else if (l7 == 127)
        n += 8;
    if (h[1] & 0x80) n += 4;
    return n;
}

static bool is_control(unsigned op)
{
    return op & 0x8;
}

/* Decodes a complete header and applies the §5 rules; 0 or an error event. */
static int hdr_decode(wh__ws_reader *r, const uint8_t *h, wh__ws_event *ev)
{
    bool fin = h[0] & 0x80;
    unsigned rsv = h[0] & 0x70, op = h[0] & 0x0F;
    bool masked = h[1] & 0x80;
    unsigned l7 = h[1] & 0x7F;
    size_t p = 2;
    uint64_t len = l7;

    /* §5.2: RSV1-3 MUST be 0 unless an extension defining them was negotiated. */
    if (rsv & ~r->rsv_ok) return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "reserved bits set");
    if (l7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        p = 4;
        if (len < 126) return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "non-minimal length");
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | h[2 + i];
        p = 10;
        if (len >> 63) /* §5.2: the most significant bit MUST be 0 */
            return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "length has the top bit set");
        if (len <= 0xFFFF) return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "non-minimal length");
    }
    /* §5.1: a server MUST close on an unmasked client frame; a client MUST
     * close on a masked server frame. */
    if (masked == r->client)
        return fail(r, ev, WH_WS_CLOSE_PROTOCOL,
                    r->client ? "masked server frame" : "unmasked client frame");
    if (masked) memcpy(r->f_key, h + p, 4);

    switch (op) {
    case WH_WS_OP_CONT:
        if (!r->in_msg) return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "continuation without a message");
        break;
    case WH_WS_OP_TEXT:
    case WH_WS_OP_BINARY:
        /* §5.4: fragments of one message may not interleave with another. */
        if (r->in_msg)
            return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        break;
    case WH_WS_OP_CLOSE:
    case WH_WS_OP_PING:
    case WH_WS_OP_PONG:
        /* §5.5: control frames are at most 125 bytes and never fragmented. */
        if (!fin) return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (len > WH__WS_MAX_CONTROL)
            return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "control frame too long");
        break;
    default: /* §5.2: 0x3-0x7 and 0xB-0xF are reserved */
        return fail(r, ev, WH_WS_CLOSE_PROTOCOL, "reserved opcode");
    }
    if (!is_control(op)) {
        uint64_t have = op == WH_WS_OP_CONT ? r->msg_len : 0;
        if (len > r->max_message || have + len > r->max_message)
            return fail(r, ev, WH_WS_CLOSE_TOO_BIG, "message too big");
        if (op != WH_WS_OP_CONT) {
            r->in_msg = true;
            r->msg_op = (uint8_t)op;
            r->utf8 = WH_UTF8_ACCEPT;
            r->msg_len = 0;
        }
    } else {
        r->ctrl_len = 0;
    }
    r->f_op = (uint8_t)op;
    r->f_fin = fin;
    r->f_masked = masked;
    r->f_left = len;
    r->f_off = 0;
    return 0;
}

/* 0, -ENOMEM, or -EBUSY when the loop's partial messages would pass the
 * pool's cap: one client cannot make 1,000 connections each hold a message
 * just under max_message. */
static int msg_append(wh__ws_reader *r, const uint8_t *p, size_t n)
{
    size_t need = r->msg_len + n;
    if (need > r->msg_cap) {
        size_t cap = r->msg_cap ? r->msg_cap * 2 : 256;
        if (cap < need) cap = need;
        if (cap > r->max_message && need <= r->max_message) cap = r->max_message;
        if (r->pool && *r->pool + (cap - r->msg_cap) > r->pool_max) return -EBUSY;
        uint8_t *m = realloc(r->msg, cap);
        if (!m) return -ENOMEM;
        if (r->pool) *r->pool += cap - r->msg_cap;
        r->msg = m;
        r->msg_cap = cap;
    }
    memcpy(r->msg + r->msg_len, p, n);
    r->msg_len = need;
    return 0;
}

/* One state machine over a frame (header, extended length, mask, payload)
 * and message reassembly, kept in one function so that each state resumes
 * where the last read ended; hence its length. */
int wh__ws_reader_next(wh__ws_reader *r, uint8_t *data, size_t len, size_t *consumed,
                       wh__ws_event *ev)
{
    size_t pos = 0;
    ev->type = WH__WS_EV_NONE;
    ev->opcode = 0;
    ev->data = NULL;
    ev->len = 0;
    ev->code = 0;
    ev->reason = NULL;
    if (r->state == RS_FAILED) {
        *consumed = len;
        return fail(r, ev, r->err_code, r->err_reason);
    }
    /* The last event's message buffer is no longer referenced. */
    /* Kept for the next message unless big, or the loop's shared budget is
     * half used: idle buffers must not refuse the messages in progress. */
    if (!r->in_msg && (r->msg_cap > KEEP_BUF || (r->pool && *r->pool > r->pool_max / 2)))
        wh__ws_reader_free(r);

    for (;;) {
        if (r->state == RS_HEADER) {
            size_t avail = len - pos;
            if (r->hdr_have == 0 && avail >= 2 && avail >= hdr_need(data + pos)) {
                size_t need = hdr_need(data + pos);
                if (hdr_decode(r, data + pos, ev)) {
                    *consumed = len;
                    return WH__WS_EV_ERROR;
                }
                pos += need;
                /* Zero-copy: a whole single-frame message is in the input. */
                if (r->f_fin && !is_control(r->f_op) && r->f_op != WH_WS_OP_CONT &&
                    len - pos >= r->f_left) {
                    uint8_t *pl = data + pos;
                    size_t n = (size_t)r->f_left;
                    if (r->f_masked) wh__ws_mask(pl, n, r->f_key, 0);
                    if (r->f_op == WH_WS_OP_TEXT && !wh_utf8_valid(pl, n)) {
                        *consumed = len;
                        return fail(r, ev, WH_WS_CLOSE_INVALID_DATA, "invalid UTF-8");
                    }
                    pos += n;
                    r->in_msg = false;
                    r->f_left = 0;
                    ev->type = WH__WS_EV_MESSAGE;
                    ev->opcode = r->f_op;
                    ev->data = pl;
                    ev->len = n;
                    *consumed = pos;
                    return ev->type;
                }
            } else {
                /* Gather a split header byte by byte (rare: only at read boundaries). */
                while (pos < len) {
                    r->hdr[r->hdr_have++] = data[pos++];
                    if (r->hdr_have >= 2 && r->hdr_have == hdr_need(r->hdr)) break;
                }
                if (r->hdr_have < 2 || r->hdr_have < hdr_need(r->hdr)) {
                    *consumed = pos;
                    return WH__WS_EV_NONE;
                }
                r->hdr_have = 0;
                if (hdr_decode(r, r->hdr, ev)) {
                    *consumed = len;
                    return WH__WS_EV_ERROR;
                }
            }
            r->state = RS_PAYLOAD;
        }

        /* RS_PAYLOAD: stream what is here. */
        size_t n = len - pos;
        if (n > r->f_left) n = (size_t)r->f_left;
        uint8_t *pl = data + pos;
        if (n) {
            if (r->f_masked) wh__ws_mask(pl, n, r->f_key, (size_t)(r->f_off & 3));
            if (is_control(r->f_op)) {
                memcpy(r->ctrl + r->ctrl_len, pl, n);
                r->ctrl_len += n;
            } else {
                /* §8.1 fail fast: check text as it arrives, not at the end. */
                if (r->msg_op == WH_WS_OP_TEXT && !wh_utf8_feed(&r->utf8, pl, n)) {
                    *consumed = len;
                    return fail(r, ev, WH_WS_CLOSE_INVALID_DATA, "invalid UTF-8");
                }
                int rc = msg_append(r, pl, n);
                if (rc < 0) {
                    *consumed = len;
                    if (rc == -EBUSY) return fail(r, ev, WH_WS_CLOSE_TRY_AGAIN, "server busy");
                    return fail(r, ev, WH_WS_CLOSE_INTERNAL, "out of memory");
                }
            }
            pos += n;
            r->f_left -= n;
            r->f_off += n;
        }
        if (r->f_left) {
            *consumed = pos;
            return WH__WS_EV_NONE;
        }
        r->state = RS_HEADER;
        *consumed = pos;
        switch (r->f_op) {
        case WH_WS_OP_PING:
        case WH_WS_OP_PONG:
            ev->type = r->f_op == WH_WS_OP_PING ? WH__WS_EV_PING : WH__WS_EV_PONG;
            ev->data = r->ctrl;
            ev->len = r->ctrl_len;
            return ev->type;
        case WH_WS_OP_CLOSE: {
            const uint8_t *reason;
            size_t rlen;
            int code;
            int bad = wh__ws_close_parse(r->ctrl, r->ctrl_len, &code, &reason, &rlen);
            if (bad) {
                *consumed = len;
                return fail(r, ev, bad, "invalid close frame");
            }
            ev->type = WH__WS_EV_CLOSE;
            ev->code = code;
            ev->data = reason;
            ev->len = rlen;
            return ev->type;
        }
        default:
            if (!r->f_fin) continue; /* more fragments follow */
            if (r->msg_op == WH_WS_OP_TEXT && r->utf8 != WH_UTF8_ACCEPT) {
                *consumed = len;
                return fail(r, ev, WH_WS_CLOSE_INVALID_DATA, "truncated UTF-8");
            }
            r->in_msg = false;
            ev->type = WH__WS_EV_MESSAGE;
            ev->opcode = r->msg_op;
            ev->data = r->msg ? r->msg : (const uint8_t *)"";
            ev->len = r->msg_len;
            return ev->type;
        }
    }
}
