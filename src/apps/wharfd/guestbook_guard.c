/* The guestbook's POST defences: see guestbook_guard.h. */
#include "apps/wharfd/guestbook_guard.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* The probe window of the rate table: a client is looked for in this many
 * slots from its hash, and a new one replaces the stalest of them. */
#define PROBE 8

struct slot {
    uint64_t t_ms; /* last refill; 0 = free */
    double tokens;
    uint8_t key[17];
};

struct wharfd_gb_guard {
    unsigned char secret[32];
    double per_ms, burst; /* refill per millisecond, bucket size */
    pthread_mutex_t mu;
    struct slot *slots; /* WHARFD_GB_RATE_SLOTS, NULL when unlimited */
};

_Static_assert((WHARFD_GB_RATE_SLOTS & (WHARFD_GB_RATE_SLOTS - 1)) == 0, "a power of two");

int wharfd_gb_guard_new(wharfd_gb_guard **out, unsigned posts_per_min)
{
    wharfd_gb_guard *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    if (RAND_bytes(g->secret, sizeof g->secret) != 1) {
        free(g);
        return -EIO;
    }
    if (posts_per_min) {
        g->slots = calloc(WHARFD_GB_RATE_SLOTS, sizeof *g->slots);
        if (!g->slots) {
            free(g);
            return -ENOMEM;
        }
        g->per_ms = posts_per_min / 60000.0;
        g->burst = posts_per_min;
    }
    pthread_mutex_init(&g->mu, NULL);
    *out = g;
    return 0;
}

void wharfd_gb_guard_free(wharfd_gb_guard *g)
{
    if (!g) return;
    OPENSSL_cleanse(g->secret, sizeof g->secret);
    pthread_mutex_destroy(&g->mu);
    free(g->slots);
    free(g);
}

/* 17 bytes naming the client: family, then the address (IPv4 in 4 bytes,
 * also when it came IPv4-mapped on a dual-stack socket). prefix64 keeps
 * only the network half of an IPv6 address. */
static void client_key(const wh_sockaddr *a, bool prefix64, uint8_t key[17])
{
    memset(key, 0, 17);
    if (!a) return;
    if (a->u.sa.family == AF_INET) {
        const struct sockaddr_in *in = (const void *)a->u.raw;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
    } else if (a->u.sa.family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)a->u.raw;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key[0] = 4;
            memcpy(key + 1, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, in6->sin6_addr.s6_addr, prefix64 ? 8 : 16);
        }
    } else {
        key[0] = 1; /* Unix socket (a local proxy): one client */
    }
}

static void token_for(const wharfd_gb_guard *g, const uint8_t key[17], long long bucket,
                      char out[WHARFD_GB_TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char msg[64], mac[EVP_MAX_MD_SIZE];
    unsigned mlen = 0;
    int n = snprintf((char *)msg, sizeof msg, "wharfd-guestbook-form:%lld:", bucket);
    memcpy(msg + n, key, 17);
    HMAC(EVP_sha256(), g->secret, sizeof g->secret, msg, (size_t)n + 17, mac, &mlen);
    for (int i = 0; i < WHARFD_GB_TOKEN_LEN / 2; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[WHARFD_GB_TOKEN_LEN] = '\0';
}

void wharfd_gb_token(const wharfd_gb_guard *g, const wh_sockaddr *peer, time_t now,
                     char out[WHARFD_GB_TOKEN_LEN + 1])
{
    uint8_t key[17];
    client_key(peer, false, key);
    token_for(g, key, (long long)now / WHARFD_GB_TOKEN_BUCKET_S, out);
}

bool wharfd_gb_token_ok(const wharfd_gb_guard *g, const wh_sockaddr *peer, time_t now, wh_str tok)
{
    if (!tok.p || tok.len != WHARFD_GB_TOKEN_LEN) return false;
    uint8_t key[17];
    client_key(peer, false, key);
    long long b = (long long)now / WHARFD_GB_TOKEN_BUCKET_S;
    char want[WHARFD_GB_TOKEN_LEN + 1];
    bool ok = false;
    for (long long k = b; k >= b - 1; k--) {
        token_for(g, key, k, want);
        ok |= CRYPTO_memcmp(want, tok.p, WHARFD_GB_TOKEN_LEN) == 0;
    }
    return ok;
}

/* ---- same origin --------------------------------------------------------- */

/* Splits "scheme://authority[/?#...]" into the authority without a default
 * port. False if it is not such a URL or carries user information. */
static bool url_authority(wh_str u, wh_str *auth, unsigned *default_port)
{
    const char *p = u.p, *end = u.p + u.len;
    const char *colon = memchr(p, ':', u.len);
    if (!colon || end - colon < 3 || colon[1] != '/' || colon[2] != '/') return false;
    size_t sl = (size_t)(colon - p);
    if (sl == 4 && strncasecmp(p, "http", 4) == 0)
        *default_port = 80;
    else if (sl == 5 && strncasecmp(p, "https", 5) == 0)
        *default_port = 443;
    else
        *default_port = 0;
    const char *a = colon + 3, *e = a;
    while (e < end && *e != '/' && *e != '?' && *e != '#')
        e++;
    if (e == a || memchr(a, '@', (size_t)(e - a))) return false;
    *auth = (wh_str){a, (size_t)(e - a)};
    return true;
}

/* Drops ":port" when it is the default one, so "example.org:80" and
 * "example.org" compare equal for http. */
static wh_str without_default_port(wh_str h, unsigned port)
{
    char suffix[8];
    int n = snprintf(suffix, sizeof suffix, ":%u", port);
    if (port && h.len > (size_t)n && memcmp(h.p + h.len - n, suffix, (size_t)n) == 0)
        h.len -= (size_t)n;
    return h;
}

bool wharfd_gb_same_origin(wh_str origin, wh_str referer, wh_str host)
{
    wh_str src = origin.p ? origin : referer;
    if (!src.p) return true;
    if (origin.p && origin.len == 4 && memcmp(origin.p, "null", 4) == 0) return false;
    wh_str auth;
    unsigned dport;
    if (!host.p || !host.len || !url_authority(src, &auth, &dport)) return false;
    auth = without_default_port(auth, dport);
    host = without_default_port(host, dport);
    return auth.len == host.len && strncasecmp(auth.p, host.p, auth.len) == 0;
}

/* ---- rate ---------------------------------------------------------------- */

static uint32_t hash_key(const uint8_t key[17])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    return h;
}

unsigned wharfd_gb_rate_take(wharfd_gb_guard *g, const wh_sockaddr *peer, uint64_t now_ms)
{
    if (!g->slots) return 0;
    uint8_t key[17];
    client_key(peer, true, key);
    if (now_ms == 0) now_ms = 1; /* 0 marks a free slot */
    uint32_t h = hash_key(key);
    unsigned wait = 0;
    pthread_mutex_lock(&g->mu);
    struct slot *hit = NULL, *victim = NULL;
    for (unsigned i = 0; i < PROBE; i++) {
        struct slot *s = &g->slots[(h + i) & (WHARFD_GB_RATE_SLOTS - 1)];
        if (s->t_ms && memcmp(s->key, key, 17) == 0) {
            hit = s;
            break;
        }
        /* A free slot, else the one seen longest ago: its bucket is the
         * likeliest to be full again, so forgetting it loses the least. */
        if (!victim || (victim->t_ms && s->t_ms < victim->t_ms)) victim = s;
    }
    if (!hit) {
        hit = victim;
        memcpy(hit->key, key, 17);
        hit->tokens = g->burst;
        hit->t_ms = now_ms;
    }
    if (now_ms > hit->t_ms) {
        hit->tokens += (double)(now_ms - hit->t_ms) * g->per_ms;
        if (hit->tokens > g->burst) hit->tokens = g->burst;
        hit->t_ms = now_ms;
    }
    if (hit->tokens >= 1.0) {
        hit->tokens -= 1.0;
    } else {
        double ms = (1.0 - hit->tokens) / g->per_ms;
        wait = (unsigned)((ms + 999.0) / 1000.0);
        if (wait < 1) wait = 1;
    }
    pthread_mutex_unlock(&g->mu);
    return wait;
}
