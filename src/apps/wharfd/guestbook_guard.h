/* What stands between a POST and the guestbook: a same-origin check, a
 * per-form token and a per-client rate limit (see docs/guestbook.md).
 *
 * Why all three: the Origin/Referer check stops a browser that another site
 * makes post, when the browser says where the post comes from; the token
 * stops it when it does not (old browsers, stripped headers), because the
 * other site cannot read our page to learn it; neither stops a script that
 * reads the page first, which is what the rate limit is for.
 *
 * Tokens are stateless: an HMAC-SHA256, under a random key made at startup,
 * of the client's address and the hour. A form is good for one to two
 * hours, from the address that fetched it; a restart (new key) or a second
 * wharfd behind the same balancer (another key) sends the next post to a
 * 403 that asks to reload the page.
 *
 * Application code (OpenSSL's libcrypto, which libwharf already needs), not
 * part of libwharf. Thread-safe: the key is written once before the workers
 * start; the rate table is behind a mutex (posts are rare next to pages).
 */
#ifndef WHARFD_GUESTBOOK_GUARD_H
#define WHARFD_GUESTBOOK_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "wharf/http.h"
#include "wharf/net.h"

/* Hex characters of a token (128 of the HMAC's bits). */
#define WHARFD_GB_TOKEN_LEN 32
/* Seconds a token's time bucket lasts; the current and the previous bucket
 * are accepted. */
#define WHARFD_GB_TOKEN_BUCKET_S 3600
/* Clients remembered by the rate limit; past that, the least recently seen
 * nearby entry is forgotten. */
#define WHARFD_GB_RATE_SLOTS 4096

typedef struct wharfd_gb_guard wharfd_gb_guard;

/* posts_per_min: the rate (and burst) allowed per client; 0 = no limit.
 * 0, -ENOMEM, or -EIO when no random key could be made. */
int wharfd_gb_guard_new(wharfd_gb_guard **out, unsigned posts_per_min);
void wharfd_gb_guard_free(wharfd_gb_guard *g);

/* The token for a form served now to peer, NUL-terminated. */
void wharfd_gb_token(const wharfd_gb_guard *g, const wh_sockaddr *peer, time_t now,
                     char out[WHARFD_GB_TOKEN_LEN + 1]);
/* True if tok is the token of peer for this time bucket or the previous one
 * (constant-time comparison). */
bool wharfd_gb_token_ok(const wharfd_gb_guard *g, const wh_sockaddr *peer, time_t now, wh_str tok);

/* False when a browser says the request comes from another site: Origin
 * (or, when absent, Referer) names a host[:port] other than host (the Host
 * field), Origin is "null", or either is not a URL. True when neither is
 * sent (not a browser, or one that says nothing: the token decides). Ports
 * that are the scheme's default (http 80, https 443) may be left out on
 * either side; names compare case-insensitively. */
bool wharfd_gb_same_origin(wh_str origin, wh_str referer, wh_str host);

/* Takes one post from peer's bucket at now_ms (monotonic). Returns 0 if
 * allowed, else the seconds until one is (>= 1, for Retry-After). IPv6
 * clients share a bucket per /64 (one host usually holds a whole /64);
 * IPv4-mapped addresses count as IPv4; Unix-socket clients share one. */
unsigned wharfd_gb_rate_take(wharfd_gb_guard *g, const wh_sockaddr *peer, uint64_t now_ms);

#endif
