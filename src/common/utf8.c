/* Incremental UTF-8 validation (wharf/common.h): WebSocket text (RFC 6455
 * §8.1: a text message that is not valid UTF-8 fails the connection with
 * 1007) and applications' form fields use this one.
 *
 * The accepted syntax is RFC 3629 §4 (UTF8-octets): it excludes overlong
 * forms (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points
 * above U+10FFFF (F4 90.., F5..FF). The state packs the number of continuation
 * bytes still expected and the allowed range of the next one, so a sequence
 * split across fragments (or TCP reads) is checked exactly like a whole one.
 */
#include <string.h>

#include "wharf/common.h"

/* state = need << 16 | lo << 8 | hi; need = continuation bytes still due. */
#define ST(need, lo, hi) (((uint32_t)(need) << 16) | ((uint32_t)(lo) << 8) | (uint32_t)(hi))

static inline bool lead(uint8_t b, uint32_t *st)
{
    if (b < 0x80) {
        *st = 0;
        return true;
    }
    if (b < 0xC2) /* stray continuation, or C0/C1 (always overlong) */
        return false;
    if (b < 0xE0)
        *st = ST(1, 0x80, 0xBF);
    else if (b == 0xE0)
        *st = ST(2, 0xA0, 0xBF); /* E0 80..9F would be overlong */
    else if (b == 0xED)
        *st = ST(2, 0x80, 0x9F); /* ED A0..BF encodes surrogates D800..DFFF */
    else if (b < 0xF0)
        *st = ST(2, 0x80, 0xBF);
    else if (b == 0xF0)
        *st = ST(3, 0x90, 0xBF); /* F0 80..8F would be overlong */
    else if (b < 0xF4)
        *st = ST(3, 0x80, 0xBF);
    else if (b == 0xF4)
        *st = ST(3, 0x80, 0x8F); /* F4 90.. is above U+10FFFF */
    else
        return false; /* F5..FF never appear */
    return true;
}

bool wh_utf8_feed(wh_utf8_state *state, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t st = *state;
    size_t i = 0;
    while (i < n) {
        if (st == 0) {
            /* Fast path: skip ASCII eight bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i >= n) break;
            if (!lead(p[i++], &st)) goto bad;
            continue;
        }
        uint8_t b = p[i++];
        uint32_t need = st >> 16, lo = (st >> 8) & 0xFF, hi = st & 0xFF;
        if (b < lo || b > hi) goto bad;
        need--;
        st = need ? ST(need, 0x80, 0xBF) : 0;
    }
    *state = st;
    return true;
bad:
    *state = ST(3, 1, 0); /* an impossible range: stays invalid if fed again */
    return false;
}

bool wh_utf8_valid(const void *p, size_t n)
{
    wh_utf8_state st = WH_UTF8_ACCEPT;
    return wh_utf8_feed(&st, p, n) && st == WH_UTF8_ACCEPT;
}

size_t wh_utf8_trim(const void *data, size_t n, size_t max)
{
    const uint8_t *p = data;
    wh_utf8_state st = WH_UTF8_ACCEPT;
    size_t good = 0;
    if (n > max) n = max;
    for (size_t i = 0; i < n; i++) {
        if (!wh_utf8_feed(&st, p + i, 1)) break;
        if (st == WH_UTF8_ACCEPT) good = i + 1;
    }
    return good;
}
