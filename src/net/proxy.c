/* PROXY protocol headers (v1 and v2) and trusted-address lists: pure
 * functions, see proxy_internal.h. Section numbers refer to HAProxy's
 * doc/proxy-protocol.txt.
 *
 * The parser decides as early as the bytes allow: a first byte that starts
 * neither signature is "missing" at once (an HTTP request sent straight to
 * a PROXY listener is refused without waiting for the timeout), and a v2
 * header's length is known after 16 bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "net/proxy_internal.h"

/* 2.2: the v2 signature, chosen to be invalid as the start of any text
 * protocol. */
static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};

const char *wh_proxy_reject_name(int reason)
{
    switch (reason) {
    case WH_PROXY_UNTRUSTED:
        return "untrusted";
    case WH_PROXY_MISSING:
        return "missing";
    case WH_PROXY_MALFORMED:
        return "malformed";
    case WH_PROXY_UNKNOWN_COMMAND:
        return "unknown_command";
    case WH_PROXY_TIMEOUT:
        return "timeout";
    default:
        return "other";
    }
}

/* ---- v1 (2.1) ------------------------------------------------------------ */

/* A decimal port, 0-65535, no leading zero ("Leading zeroes are not
 * permitted"), no sign. */
static bool v1_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (s[0] == '0' && n > 1)) return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return false;
    *out = (uint16_t)v;
    return true;
}

/* A numeric address of family af into raw (4 or 16 bytes). */
static bool v1_addr(int af, const char *s, size_t n, void *raw)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof tmp) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(af, tmp, raw) == 1;
}

static void set_in(wh_sockaddr *a, const void *addr4, uint16_t port_host)
{
    struct sockaddr_in *in = (struct sockaddr_in *)a->u.raw;
    memset(a, 0, sizeof(*a));
    in->sin_family = AF_INET;
    memcpy(&in->sin_addr, addr4, 4);
    in->sin_port = htons(port_host);
    a->len = sizeof(*in);
}

static void set_in6(wh_sockaddr *a, const void *addr16, uint16_t port_host)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)a->u.raw;
    memset(a, 0, sizeof(*a));
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, addr16, 16);
    in6->sin6_port = htons(port_host);
    a->len = sizeof(*in6);
}

/* "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
 * "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n", "PROXY UNKNOWN...\r\n". */
static int parse_v1(const char *b, size_t len, wh__proxy_hdr *out)
{
    size_t lim = len < WH__PROXY_V1_MAX ? len : WH__PROXY_V1_MAX;
    const char *nl = memchr(b, '\n', lim);
    if (!nl) return len >= WH__PROXY_V1_MAX ? -WH_PROXY_MALFORMED : 0;
    size_t total = (size_t)(nl - b) + 1;
    if (total < sizeof(v1_sig) + 2 || nl[-1] != '\r') return -WH_PROXY_MALFORMED;
    /* The fields, between "PROXY " and "\r\n", separated by single spaces. */
    const char *p = b + sizeof(v1_sig), *end = nl - 1;
    const char *f[6];
    size_t fl[6], nf = 0;
    while (p <= end && nf < 6) {
        const char *sp = p;
        while (sp < end && *sp != ' ')
            sp++;
        f[nf] = p;
        fl[nf++] = (size_t)(sp - p);
        if (sp == end) break;
        p = sp + 1;
    }
    if (nf == 0) return -WH_PROXY_MALFORMED;
    /* 2.1: "UNKNOWN": the rest of the line is to be ignored, and the
     * receiver uses the real connection's addresses. */
    if (fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0) {
        memset(out, 0, sizeof(*out));
        out->version = 1;
        return (int)total;
    }
    int af;
    if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
        af = AF_INET;
    else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
        af = AF_INET6;
    else
        return -WH_PROXY_MALFORMED;
    if (nf != 5 || f[4] + fl[4] != end) return -WH_PROXY_MALFORMED;
    uint8_t sa[16], da[16];
    uint16_t sp, dp;
    if (!v1_addr(af, f[1], fl[1], sa) || !v1_addr(af, f[2], fl[2], da) ||
        !v1_port(f[3], fl[3], &sp) || !v1_port(f[4], fl[4], &dp))
        return -WH_PROXY_MALFORMED;
    memset(out, 0, sizeof(*out));
    out->version = 1;
    out->has_addr = true;
    if (af == AF_INET) {
        set_in(&out->src, sa, sp);
        set_in(&out->dst, da, dp);
    } else {
        set_in6(&out->src, sa, sp);
        set_in6(&out->dst, da, dp);
    }
    return (int)total;
}

/* ---- v2 (2.2) ------------------------------------------------------------ */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* A Unix path of the v2 block (108 bytes, NUL-padded; a leading NUL is a
 * Linux abstract name, whose length is where the padding starts). */
static void set_un(wh_sockaddr *a, const uint8_t *path108)
{
    struct sockaddr_un *un = (struct sockaddr_un *)a->u.raw;
    memset(a, 0, sizeof(*a));
    un->sun_family = AF_UNIX;
    size_t n = path108[0] ? strnlen((const char *)path108, 107)
                          : 1 + strnlen((const char *)path108 + 1, 107);
    memcpy(un->sun_path, path108, n);
    a->len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n);
}

static int parse_v2(const uint8_t *b, size_t len, size_t max, wh__proxy_hdr *out)
{
    if (len < WH__PROXY_V2_FIXED) return 0;
    unsigned ver = b[12] >> 4, cmd = b[12] & 0x0F, fam = b[13];
    size_t total = WH__PROXY_V2_FIXED + be16(b + 14);
    /* 2.2: "version ... must always be \x2"; anything else is not a header
     * this receiver understands. */
    if (ver != 2) return -WH_PROXY_MALFORMED;
    if (cmd > 1) return -WH_PROXY_UNKNOWN_COMMAND;
    if (total > max) return -WH_PROXY_MALFORMED; /* longer than we accept */
    if (len < total) return 0;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    /* 2.2 LOCAL: "the receiver must accept this connection as valid and
     * must use the real connection endpoints and discard the protocol
     * block including the family" (health checks). */
    if (cmd == 0) return (int)total;
    size_t alen;
    switch (fam) {
    case 0x00: /* UNSPEC: "the receiver ... must use the real endpoints" */
        return (int)total;
    case 0x11: /* TCP over IPv4 */
    case 0x12: /* UDP over IPv4 */
        alen = 12;
        break;
    case 0x21:
    case 0x22:
        alen = 36;
        break;
    case 0x31: /* Unix stream */
    case 0x32: /* Unix datagram */
        alen = 216;
        break;
    default:
        /* "Other values are unspecified and must not be emitted ... and
         * must be rejected as invalid by receivers." */
        return -WH_PROXY_MALFORMED;
    }
    if (total < WH__PROXY_V2_FIXED + alen) return -WH_PROXY_MALFORMED;
    const uint8_t *a = b + WH__PROXY_V2_FIXED;
    if (alen == 12) {
        set_in(&out->src, a, be16(a + 8));
        set_in(&out->dst, a + 4, be16(a + 10));
    } else if (alen == 36) {
        set_in6(&out->src, a, be16(a + 32));
        set_in6(&out->dst, a + 16, be16(a + 34));
    } else {
        set_un(&out->src, a);
        set_un(&out->dst, a + 108);
    }
    /* 2.2.7: TLVs fill the rest. Each must fit; their contents are not
     * ours to act on, so they are skipped (as HAProxy's receiver does, a
     * TLV that runs past the header makes it invalid). */
    size_t off = WH__PROXY_V2_FIXED + alen;
    while (off < total) {
        if (total - off < 3 || total - off - 3 < be16(b + off + 1)) {
            memset(out, 0, sizeof(*out));
            return -WH_PROXY_MALFORMED;
        }
        off += 3 + (size_t)be16(b + off + 1);
    }
    out->has_addr = true;
    return (int)total;
}

int wh__proxy_parse(const void *buf, size_t len, size_t max, wh__proxy_hdr *out)
{
    const uint8_t *b = buf;
    if (len == 0) return 0;
    /* Which signature: compare what we have of each, so a wrong first
     * byte is refused at once and a right prefix waits for more. */
    const void *sig = b[0] == 'P' ? (const void *)v1_sig : (const void *)v2_sig;
    size_t siglen = b[0] == 'P' ? sizeof(v1_sig) : sizeof(v2_sig);
    size_t n = len < siglen ? len : siglen;
    if (memcmp(b, sig, n) != 0) return -WH_PROXY_MISSING;
    if (len < siglen) return 0;
    if (max > 16 + 65535) max = 16 + 65535; /* a v2 length is 16 bits */
    if (b[0] == 'P') return parse_v1((const char *)b, len, out);
    return parse_v2(b, len, max, out);
}

/* ---- trusted lists ------------------------------------------------------- */

static int parse_one(const char *s, size_t n, wh__cidr *c)
{
    char tmp[INET6_ADDRSTRLEN + 4];
    if (n == 0 || n >= sizeof tmp) return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *slash = strchr(tmp, '/');
    unsigned bits = 0;
    if (slash) {
        *slash = '\0';
        const char *d = slash + 1;
        if (!*d || strlen(d) > 3) return -EINVAL;
        for (; *d; d++) {
            if (*d < '0' || *d > '9') return -EINVAL;
            bits = bits * 10 + (unsigned)(*d - '0');
        }
    }
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, tmp, c->addr) == 1) {
        c->family = 4;
        if (!slash) bits = 32;
        if (bits > 32) return -EINVAL;
    } else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
        c->family = 6;
        if (!slash) bits = 128;
        if (bits > 128) return -EINVAL;
    } else {
        return -EINVAL;
    }
    c->bits = (uint8_t)bits;
    return 0;
}

int wh__cidr_parse(const char *list, wh__cidr *out, size_t cap)
{
    size_t count = 0;
    if (!list) return 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        wh__cidr c;
        if (te == p) return -EINVAL; /* an empty entry ("", "a,,b", "a,") */
        if (parse_one(p, (size_t)(te - p), &c) < 0) return -EINVAL;
        if (out) {
            if (count >= cap) return -E2BIG;
            out[count] = c;
        }
        count++;
        if (!*e) break;
        p = e + 1;
    }
    return count > 0x7fffffff ? -E2BIG : (int)count;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool wh__cidr_match(const wh__cidr *v, size_t n, const wh_sockaddr *a)
{
    const uint8_t *ip;
    int fam;
    if (a->u.sa.family == AF_INET) {
        ip = (const uint8_t *)&((const struct sockaddr_in *)a->u.raw)->sin_addr;
        fam = 4;
    } else if (a->u.sa.family == AF_INET6) {
        ip = (const uint8_t *)&((const struct sockaddr_in6 *)a->u.raw)->sin6_addr;
        fam = 6;
        /* A dual-stack listener ("[::]") sees IPv4 clients as ::ffff:a.b.c.d;
         * an operator writes "10.0.0.0/8" for them. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        if (memcmp(ip, mapped, 12) == 0) {
            ip += 12;
            fam = 4;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].family == fam && prefix_eq(ip, v[i].addr, v[i].bits)) return true;
    return false;
}

int wh_net_proxy_trusted_check(const char *list)
{
    int n = wh__cidr_parse(list, NULL, 0);
    return n < 0 ? n : 0;
}
