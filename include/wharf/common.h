/* wharf: shared definitions for every layer.
 *
 * Conventions (all public headers):
 *  - Functions are named wh_<noun>_<verb>; handles are opaque.
 *  - Functions that can fail return 0 (or a count) on success and a negative
 *    errno value (-EINVAL, -EADDRINUSE, ...) on failure. wh_strerror() turns
 *    that into text. Library code never prints.
 *  - No hidden globals: state lives in a loop, a server or a thread.
 */
#ifndef WHARF_COMMON_H
#define WHARF_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every public header wraps its declarations in these. C++ callers get C
 * linkage. libwharf is compiled with -fvisibility=hidden so that only what a
 * public header declares is exported from the shared library; the pragma
 * (honoured by GCC and clang) gives these declarations default visibility
 * without a marker on each of them. */
#ifdef __cplusplus
#define WH_BEGIN_DECLS                                                                             \
    extern "C" {                                                                                   \
    _Pragma("GCC visibility push(default)")
#define WH_END_DECLS                                                                               \
    _Pragma("GCC visibility pop")                                                                  \
    }
#else
#define WH_BEGIN_DECLS _Pragma("GCC visibility push(default)")
#define WH_END_DECLS   _Pragma("GCC visibility pop")
#endif

#define WH_VERSION_MAJOR 0
#define WH_VERSION_MINOR 1
#define WH_VERSION_PATCH 0
#define WH_VERSION       "0.1.0"

WH_BEGIN_DECLS

/* The runtime library's version ("0.1.0"); compare with WH_VERSION to
 * detect a header/library mismatch. */
const char *wh_version(void);
/* Readable text for a wharf error code (negative errno); never NULL. */
const char *wh_strerror(int err);

/* UTF-8 validation, RFC 3629 §4 syntax: no overlong forms, no surrogates,
 * nothing above U+10FFFF. One validator for every layer (WebSocket text,
 * application forms). */
/* Incremental state: WH_UTF8_ACCEPT at a character boundary. */
typedef uint32_t wh_utf8_state;
#define WH_UTF8_ACCEPT 0u
/* Feeds n bytes of p; false as soon as they cannot be valid UTF-8 (fail fast,
 * even mid-sequence). *st carries a sequence split across calls over. */
bool wh_utf8_feed(wh_utf8_state *st, const void *p, size_t n);
/* True when all n bytes of p are valid UTF-8 ending on a character boundary. */
bool wh_utf8_valid(const void *p, size_t n);
/* Length of the longest prefix of p[0..n) (at most max bytes) that is valid
 * UTF-8 ending on a character boundary (to truncate text without cutting a
 * character). */
size_t wh_utf8_trim(const void *p, size_t n, size_t max);

WH_END_DECLS

#endif
