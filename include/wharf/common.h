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

#define WH_VERSION_MAJOR 0
#define WH_VERSION_MINOR 1
#define WH_VERSION_PATCH 0
#define WH_VERSION       "0.1.0"

/* Readable text for a wharf error code (negative errno); never NULL. */
const char *wh_strerror(int err);

#endif
