/* The PROXY protocol header parser and trusted-address lists (src/net/proxy.c):
 * pure functions over caller memory, no allocation, no syscall, so they are
 * unit-tested and fuzzed alone (tests/unit/test_net_proxy.c,
 * tests/fuzz/fuzz_proxy.c). The connection stage that uses them is
 * src/net/proxy_stage.c.
 *
 * Specification: "The PROXY protocol, versions 1 & 2" (haproxy.org,
 * doc/proxy-protocol.txt). Section numbers below refer to it.
 */
#ifndef WH_NET_PROXY_INTERNAL_H
#define WH_NET_PROXY_INTERNAL_H

#include <stdint.h>

#include "wharf/net.h"

/* 2.1: a v1 line is at most 107 bytes, CRLF included. */
#define WH__PROXY_V1_MAX 107u
/* 2.2: the fixed part of a v2 header (signature, version/command, family,
 * length); the longest address block (two Unix paths) is 216 bytes more. */
#define WH__PROXY_V2_FIXED    16u
#define WH__PROXY_V2_ADDR_MAX 216u
/* 2.2: "a 536-byte buffer" holds any v1 line and any v2 header without
 * TLVs; the stage always looks at no less than this. */
#define WH__PROXY_MIN_BUF 536u

/* What a complete header says. */
typedef struct wh__proxy_hdr {
    int version;     /* 1 or 2 */
    bool has_addr;   /* false: v2 LOCAL, v1 UNKNOWN or v2 AF_UNSPEC: keep the socket's peer */
    wh_sockaddr src; /* the client (has_addr only) */
    wh_sockaddr dst; /* the address the client connected to (has_addr only) */
} wh__proxy_hdr;

/* Parses the PROXY header at the start of buf[0..len) (v1 or v2, told by
 * the first byte). max: the longest header the caller can take (a v2 header
 * announcing more is WH_PROXY_MALFORMED). Returns the header's length (> 0:
 * exactly the bytes to consume; what follows belongs to the protocol), 0
 * when buf is a valid beginning that needs more bytes, or
 * -WH_PROXY_MISSING (not a PROXY header: decided from the first byte that
 * differs from both signatures), -WH_PROXY_MALFORMED or
 * -WH_PROXY_UNKNOWN_COMMAND. TLVs (2.2.7) are checked to fit the header and
 * otherwise skipped. *out is set only on success. */
int wh__proxy_parse(const void *buf, size_t len, size_t max, wh__proxy_hdr *out);

/* One entry of a trusted list: an IPv4 or IPv6 prefix. */
typedef struct wh__cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;   /* prefix length: 0-32 or 0-128 */
    uint8_t addr[16];
} wh__cidr;

/* Parses "10.0.0.0/8, ::1, 192.168.1.7/32" (commas, optional blanks; no
 * prefix = one host) into out[0..cap). Returns the count, -EINVAL for a bad
 * entry (host bits set beyond the prefix are fine: they are masked), or
 * -E2BIG when more than cap entries. cap 0 with out NULL only counts. */
int wh__cidr_parse(const char *list, wh__cidr *out, size_t cap);
/* True when a (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * IPv4) falls in one of v[0..n). */
bool wh__cidr_match(const wh__cidr *v, size_t n, const wh_sockaddr *a);

#endif
