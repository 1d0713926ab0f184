/* libFuzzer target: the WebSocket frame reader and the UTF-8 validator.
 *
 * Input: byte 0 picks the role (bit 0: client) and the message limit
 * (bit 1: 64 bytes, else 64 KiB); byte 1 picks the read size; the rest is the
 * byte stream. The stream is read twice, whole and in pieces, and both runs
 * must produce the same events (a split point must never change the result);
 * every event must respect the limits the reader promises.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/ws_internal.h"

typedef struct rec {
    int type, code;
    size_t len;
    uint64_t hash;
} rec;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static size_t run(const uint8_t *in, size_t size, bool client, size_t max, size_t chunk, rec *out,
                  size_t maxrec)
{
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, in, size);
    wh__ws_reader r;
    wh__ws_reader_init(&r, client, max);
    size_t k = 0, pos = 0;
    while (k < maxrec) {
        size_t end = chunk ? (pos + chunk < size ? pos + chunk : size) : size;
        wh__ws_event ev;
        size_t used;
        int t = wh__ws_reader_next(&r, buf + pos, end - pos, &used, &ev);
        if (used > end - pos) abort();
        pos += used;
        if (t == WH__WS_EV_NONE) {
            if (pos != end) abort();
            if (pos == size) break;
            continue;
        }
        switch (t) {
        case WH__WS_EV_MESSAGE:
            if (ev.len > max) abort();
            if (ev.opcode == WH_WS_OP_TEXT && !wh_utf8_valid(ev.data, ev.len)) abort();
            if (ev.opcode != WH_WS_OP_TEXT && ev.opcode != WH_WS_OP_BINARY) abort();
            break;
        case WH__WS_EV_PING:
        case WH__WS_EV_PONG:
            if (ev.len > WH__WS_MAX_CONTROL) abort();
            break;
        case WH__WS_EV_CLOSE:
            if (ev.code != WH_WS_CLOSE_NO_STATUS && !wh__ws_close_code_ok(ev.code)) abort();
            if (!wh_utf8_valid(ev.data, ev.len)) abort();
            break;
        case WH__WS_EV_ERROR:
            break;
        default:
            abort();
        }
        out[k++] = (rec){t, ev.code, ev.len, ev.data ? fnv(ev.data, ev.len) : 0};
        if (t == WH__WS_EV_ERROR) break;
    }
    wh__ws_reader_free(&r);
    free(buf);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    bool client = data[0] & 1;
    size_t max = (data[0] & 2) ? 64 : 65536;
    size_t chunk = (size_t)data[1] % 23 + 1;
    data += 2;
    size -= 2;

    /* UTF-8: a split must not change the verdict. */
    bool whole = wh_utf8_valid(data, size);
    size_t cut = size ? chunk % (size + 1) : 0;
    wh_utf8_state st = WH_UTF8_ACCEPT;
    bool split = wh_utf8_feed(&st, data, cut) && wh_utf8_feed(&st, data + cut, size - cut) &&
                 st == WH_UTF8_ACCEPT;
    if (whole != split) abort();
    if (wh_utf8_trim(data, size, 123) > 123) abort();

    static rec a[256], b[256];
    size_t na = run(data, size, client, max, 0, a, 256);
    size_t nb = run(data, size, client, max, chunk, b, 256);
    /* Whole input stops at the first error; so must the split run. */
    if (na != nb) abort();
    for (size_t i = 0; i < na; i++)
        if (a[i].type != b[i].type || a[i].code != b[i].code || a[i].len != b[i].len ||
            a[i].hash != b[i].hash)
            abort();
    return 0;
}
