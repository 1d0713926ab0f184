/* The WebSocket opening handshake, server side (RFC 6455 §4.2).
 *
 * SHA-1 and base64 come from OpenSSL's libcrypto (already linked into
 * libwharf): it is well kept, constant-time where it matters and tested
 * against the standard vectors, so there is no reason to carry our own hash.
 * We use the EVP interface because the low-level SHA1() is deprecated in
 * OpenSSL 3.
 */
#include <strings.h>
#include <string.h>

#include <openssl/evp.h>

#include "ws/ws_internal.h"

static bool str_ieq(wh_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

unsigned wh__ws_list_split(wh_str list, wh_str *out, unsigned max)
{
    unsigned k = 0;
    size_t i = 0;
    if (!list.p) return 0;
    while (i < list.len && k < max) {
        while (i < list.len && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ','))
            i++;
        size_t b = i;
        while (i < list.len && list.p[i] != ',')
            i++;
        size_t e = i;
        while (e > b && (list.p[e - 1] == ' ' || list.p[e - 1] == '\t'))
            e--;
        if (e > b) out[k++] = (wh_str){list.p + b, e - b};
    }
    return k;
}

bool wh__ws_list_has(wh_str list, const char *token)
{
    wh_str items[32];
    unsigned n = wh__ws_list_split(list, items, 32);
    for (unsigned i = 0; i < n; i++)
        if (str_ieq(items[i], token)) return true;
    return false;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool wh__ws_key_valid(const char *key, size_t len)
{
    /* §4.1 item 7: a randomly selected 16-byte value, base64-encoded: 22
     * symbols + "==" (24 chars). The last symbol carries 2 data bits, so its
     * low 4 bits must be zero in the canonical encoding. */
    if (!key || len != 24 || key[22] != '=' || key[23] != '=') return false;
    for (int i = 0; i < 22; i++)
        if (b64val(key[i]) < 0) return false;
    return (b64val(key[21]) & 0x0F) == 0;
}

int wh__ws_accept_key(const char *key, size_t len, char out[WH__WS_ACCEPT_LEN + 1])
{
    char buf[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    size_t glen = sizeof(WH__WS_GUID) - 1;
    if (!key || len + glen > sizeof buf) return -EINVAL;
    memcpy(buf, key, len);
    memcpy(buf + len, WH__WS_GUID, glen);
    if (EVP_Digest(buf, len + glen, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) return -EIO;
    /* 20 bytes -> 28 base64 chars + NUL */
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != WH__WS_ACCEPT_LEN) return -EIO;
    return 0;
}

int wh__ws_handshake_check(const wh__ws_hs *hs)
{
    /* §4.2.1 items 1-6: a GET of HTTP/1.1 or higher, Upgrade: websocket,
     * Connection: Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version: 13. */
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    if (!hs->method.p || hs->method.len != 3 || memcmp(hs->method.p, "GET", 3) != 0) return 400;
    if (hs->version < 11) return 400;
    if (!hs->upgrade_ws || !hs->connection_up) return 400;
    if (!hs->ws_version.p) return 400;
    /* §4.4: any other version -> 426 with the versions we speak. */
    if (hs->ws_version.len != 2 || memcmp(hs->ws_version.p, "13", 2) != 0) return 426;
    if (!hs->key.p || !wh__ws_key_valid(hs->key.p, hs->key.len)) return 400;
    return 0;
}
