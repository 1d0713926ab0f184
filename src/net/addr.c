/* Address strings <-> socket addresses.
 *
 * Numeric only, by design: getaddrinfo(3) may block for seconds on DNS, and
 * this runs on an event loop thread where a blocked call stalls every
 * connection of the loop. "localhost:80" is therefore -EINVAL; write
 * "127.0.0.1:80" or "[::1]:80". A caller that needs names resolves them off
 * the loop (offload pool) and passes the numeric result.
 *
 * Accepted forms (kind in brackets):
 *   "1.2.3.4:80"  "[::1]:80"  "[fe80::1%eth0]:80"   [TCP]
 *   "tcp://<host>:<port>"                            [TCP]
 *   "udp://<host>:<port>"                            [UDP]
 *   "unix:/path/x.sock"  "unix:@abstract-name"        [UNIX]
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "net/net_internal.h"

_Static_assert(sizeof(((wh_sockaddr *)0)->u.raw) >= sizeof(struct sockaddr_un) &&
                   sizeof(((wh_sockaddr *)0)->u.raw) >= sizeof(struct sockaddr_in6),
               "wh_sockaddr must hold every family we support");

static int parse_port(const char *s, uint16_t *port)
{
    if (*s == '\0') return -EINVAL;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

static int parse_unix(const char *path, wh_sockaddr *out)
{
    struct sockaddr_un *un = (struct sockaddr_un *)out->u.raw;
    size_t n = strlen(path);
    if (n == 0) return -EINVAL;
    memset(out, 0, sizeof(*out));
    un->sun_family = AF_UNIX;
    if (path[0] == '@') {
        /* Linux abstract namespace (unix(7)): sun_path starts with a NUL and
         * the name's length comes from addrlen, not from a terminator. */
        if (n - 1 > sizeof(un->sun_path) - 1 || n == 1) return -EINVAL;
        memcpy(un->sun_path + 1, path + 1, n - 1);
        out->len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    /* Keep room for the terminating NUL: some kernels and tools expect it. */
    if (n >= sizeof(un->sun_path)) return -EINVAL;
    memcpy(un->sun_path, path, n);
    out->len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

static int parse_inet(const char *s, wh_sockaddr *out)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *port_str;
    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') return -EINVAL;
        size_t hl = (size_t)(end - s - 1);
        if (hl == 0 || hl >= sizeof(host)) return -EINVAL;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port_str = end + 2;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out->u.raw;
        char *pct = strchr(host, '%');
        if (pct) {
            /* Zone index for link-local addresses: numeric or interface name
             * (if_nametoindex reads a local table, it does not block). */
            *pct = '\0';
            const char *zone = pct + 1;
            char *endp;
            unsigned long idx = strtoul(zone, &endp, 10);
            if (*zone == '\0') return -EINVAL;
            if (*endp != '\0') idx = if_nametoindex(zone);
            if (idx == 0) return -EINVAL;
            in6->sin6_scope_id = (uint32_t)idx;
        }
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) return -EINVAL;
        uint16_t port;
        if (parse_port(port_str, &port) < 0) return -EINVAL;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        out->len = sizeof(*in6);
        return 0;
    }
    const char *colon = strrchr(s, ':');
    if (!colon) return -EINVAL;
    size_t hl = (size_t)(colon - s);
    if (hl == 0 || hl >= sizeof(host)) return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    struct sockaddr_in *in = (struct sockaddr_in *)out->u.raw;
    /* inet_pton (not inet_aton): only dotted quads, no "127.1" or hex forms. */
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
        return -EINVAL; /* names such as "localhost" end here: numeric only */
    uint16_t port;
    if (parse_port(colon + 1, &port) < 0) return -EINVAL;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    out->len = sizeof(*in);
    return 0;
}

int wh_addr_parse(const char *str, wh_sockaddr *out, enum wh_addr_kind *kind)
{
    if (!str || !out) return -EINVAL;
    enum wh_addr_kind k = WH_ADDR_TCP;
    int rc;
    if (strncmp(str, "unix:", 5) == 0) {
        k = WH_ADDR_UNIX;
        rc = parse_unix(str + 5, out);
    } else if (strncmp(str, "udp://", 6) == 0) {
        k = WH_ADDR_UDP;
        rc = parse_inet(str + 6, out);
    } else if (strncmp(str, "tcp://", 6) == 0) {
        rc = parse_inet(str + 6, out);
    } else {
        rc = parse_inet(str, out);
    }
    if (rc < 0) return rc;
    if (kind) *kind = k;
    return 0;
}

int wh_addr_format(const wh_sockaddr *a, char *buf, size_t len)
{
    char tmp[sizeof(struct sockaddr_un) + 16];
    int n;
    if (!a || !buf) return -EINVAL;
    switch (a->u.sa.family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a->u.raw;
        char h[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, h, sizeof(h));
        n = snprintf(tmp, sizeof(tmp), "%s:%u", h, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a->u.raw;
        char h[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof(h));
        if (in6->sin6_scope_id)
            n = snprintf(tmp, sizeof(tmp), "[%s%%%u]:%u", h, in6->sin6_scope_id,
                         ntohs(in6->sin6_port));
        else
            n = snprintf(tmp, sizeof(tmp), "[%s]:%u", h, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)a->u.raw;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t pl = a->len > off ? a->len - off : 0;
        if (pl > sizeof(un->sun_path)) pl = sizeof(un->sun_path);
        if (pl > 0 && un->sun_path[0] == '\0') {
            /* abstract: the name is exactly addrlen - offset - 1 bytes */
            n = snprintf(tmp, sizeof(tmp), "unix:@%.*s", (int)(pl - 1), un->sun_path + 1);
        } else {
            /* unnamed sockets (socketpair, unbound clients) have no path */
            n = snprintf(tmp, sizeof(tmp), "unix:%.*s", (int)strnlen(un->sun_path, pl),
                         un->sun_path);
        }
        break;
    }
    default:
        return -EAFNOSUPPORT;
    }
    if (n < 0) return -EINVAL;
    if ((size_t)n >= len) return -ENOSPC;
    memcpy(buf, tmp, (size_t)n + 1);
    return n;
}
