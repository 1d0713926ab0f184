/* The guestbook page's entries part, rendered once per change of the
 * entries shown and shared by every response that sends it.
 *
 * A full page of escaped quotes is ~670 KB, all of it in the entries part;
 * the rest (visitor counter, form token) is ~2 KB. Copied into every
 * connection's write queue, 1,000 slow readers held ~600 MiB. Sent by
 * reference (wh_http_respond_parts) from one refcounted block, they hold
 * one copy, plus one per change that readers of an older page still hold.
 *
 * The block is keyed by the IDs of the entries it shows, in order: entries
 * never change, so the same IDs mean the same HTML, and a post made by any
 * server sharing the store shows up as a new ID on the next view. No
 * invalidation message is needed.
 *
 * One cache per loop thread; blocks are not shared across threads, so the
 * counts are plain integers (wh_gb_block_release runs on the thread of the
 * response, which is the cache's).
 */
#ifndef WH_APPS_GUESTBOOK_CACHE_H
#define WH_APPS_GUESTBOOK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "apps/common/guestbook_page.h"

typedef struct wh_gb_block wh_gb_block;

typedef struct wh_gb_cache {
    wh_gb_block *cur; /* the newest rendering, or NULL */
    uint64_t renders; /* how many times the entries were rendered (for tests) */
} wh_gb_cache;

/* Starts an empty cache. */
void wh_gb_cache_init(wh_gb_cache *c);
/* Drops the cache's reference (blocks still being sent live on). */
void wh_gb_cache_free(wh_gb_cache *c);
/* The block for entries[0..n), with a reference for the caller (release it
 * with wh_gb_block_release): the cached one if it shows the same IDs, else
 * a new rendering that replaces it. NULL when out of memory. */
wh_gb_block *wh_gb_cache_get(wh_gb_cache *c, const wh_gb_entry *entries, size_t n);
/* The block's HTML. */
const char *wh_gb_block_data(const wh_gb_block *b, size_t *len);
/* Drops one reference; the last frees the block. A void * for
 * wh_http_respond_parts' release. */
void wh_gb_block_release(void *block);

#endif
