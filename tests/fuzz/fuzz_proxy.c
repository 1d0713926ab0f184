/* libFuzzer target: the PROXY protocol header parser and trusted lists.
 *
 * Input: byte 0 picks the longest header the caller takes (bit 0: 536 bytes,
 * the stage's minimum, else 65551); the rest is the byte stream. Checked:
 *  - a complete header's length is within the bytes given and the limit, and
 *    the header parses the same with nothing after it (bytes after a header
 *    are the protocol's and must not change it);
 *  - every shorter prefix of a complete header is "need more" (the stage
 *    waits, never refuses a header that is still arriving);
 *  - once a prefix is refused, every longer one is refused too (no verdict
 *    flips back to "need more" or "complete");
 *  - an address the header names formats (wh_addr_format).
 * The stream is also read as a trusted list and matched against the
 * header's client address.
 */
#include <stdlib.h>
#include <string.h>

#include "net/proxy_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t max = (data[0] & 1) ? 536 : 16 + 65535;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    /* A copy of exactly len bytes: ASan catches any read past the end. */
    uint8_t *buf = malloc(len ? len : 1);
    memcpy(buf, in, len);
    wh__proxy_hdr h;
    int r = wh__proxy_parse(buf, len, max, &h);
    if (r > 0) {
        if ((size_t)r > len || (size_t)r > max) abort();
        wh__proxy_hdr h2;
        if (wh__proxy_parse(buf, (size_t)r, max, &h2) != r) abort();
        if (h2.has_addr != h.has_addr || h2.version != h.version) abort();
        if (h.has_addr && memcmp(&h.src, &h2.src, sizeof h.src) != 0) abort();
        if (h.version != 1 && h.version != 2) abort();
        if (h.has_addr) {
            char s[160];
            if (wh_addr_format(&h.src, s, sizeof s) < 0) abort();
            if (wh_addr_format(&h.dst, s, sizeof s) < 0) abort();
        }
    } else if (r < 0) {
        if (r != -WH_PROXY_MISSING && r != -WH_PROXY_MALFORMED && r != -WH_PROXY_UNKNOWN_COMMAND)
            abort();
    }
    /* Prefixes (bounded: the parser is linear, this is quadratic). */
    size_t lim = len < 600 ? len : 600;
    bool refused = false;
    for (size_t k = 0; k <= lim; k++) {
        wh__proxy_hdr hk;
        int rk = wh__proxy_parse(buf, k, max, &hk);
        if (refused && rk >= 0) abort();
        if (rk < 0) refused = true;
        if (r > 0 && k < (size_t)r && rk != 0) abort();
    }
    if (refused && r >= 0) abort();

    /* The same bytes as a trusted list. */
    char *list = malloc(len + 1);
    memcpy(list, in, len);
    list[len] = '\0';
    wh__cidr v[8];
    int n = wh__cidr_parse(list, v, 8);
    int cnt = wh__cidr_parse(list, NULL, 0);
    if (n >= 0 && cnt != n) abort();
    if (n > 0) {
        for (int i = 0; i < n; i++)
            if (!((v[i].family == 4 && v[i].bits <= 32) || (v[i].family == 6 && v[i].bits <= 128)))
                abort();
        if (r > 0 && h.has_addr) (void)wh__cidr_match(v, (size_t)n, &h.src);
    }
    free(list);
    free(buf);
    return 0;
}
