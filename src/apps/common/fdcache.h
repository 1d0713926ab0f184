/* A bounded cache of resolved static files: open fd, struct stat, the
 * formatted validators and MIME type, and (for small files) the content
 * itself. One cache per thread: no locks; never shared.
 *
 * Freshness: an entry is re-resolved (open beneath the root + fstat) at most
 * once per revalidate_ms (default 1000) when it is used; if the device,
 * inode, size or mtime changed, the entry is reloaded. So a hot file costs
 * no open/stat per request, an edited or atomically replaced (rename) file
 * is noticed within a second, and the confinement rules are re-applied on
 * every revalidation. (inotify would be exact but costs a watch per
 * directory and a queue to drain; a one-second staleness bound is what
 * nginx's open_file_cache_valid gives by default too, at 60 s.)
 *
 * Lifetime: entry fds may be closed at any later wh_fdcache_get on the same
 * cache. A response that streams from the fd asynchronously must dup() it.
 * The in-memory content may be copied, or borrowed beyond that with
 * wh_fdcache_data_ref: the bytes then live until the last reference goes,
 * even if the entry is reloaded or the cache freed meanwhile.
 */
#ifndef WH_APPS_FDCACHE_H
#define WH_APPS_FDCACHE_H

#include "wharf/http_file.h"

#define WH_FDCACHE_KEY_MAX 256

typedef struct wh_fdcache wh_fdcache;

/* One representation: the file itself or a precompressed sibling. */
typedef struct wh_fdcache_rep {
    int fd; /* owned by the cache */
    struct stat st;
    char etag[48];
    const char *data; /* whole content when small enough, else NULL */
    /* The fields of its full (200) answer, formatted once per file version:
     * made when the rep is loaded, so a reload (new inode, size or mtime)
     * makes them again. Fixed size: WH_STATIC_FIELDS_MAX bytes per rep. */
    wh_static_fields fields;
} wh_fdcache_rep;

typedef struct wh_fdcache_ent {
    char key[WH_FDCACHE_KEY_MAX];
    uint16_t keylen;
    bool slash;
    uint32_t hash;
    uint64_t used;                /* LRU tick */
    uint64_t checked_ms;          /* last (re)validation */
    wh_fdcache_rep id;            /* identity */
    char rel[WH_STATIC_PATH_MAX]; /* what was opened (index appended) */
    const char *mime;
    char last_modified[32];
    time_t mtime;
    /* precompressed siblings, probed lazily: 0 unknown, 1 present, 2 absent */
    uint8_t enc_state[2]; /* [0] gzip, [1] br */
    wh_fdcache_rep enc[2];
} wh_fdcache_ent;

typedef struct wh_fdcache_stats {
    uint64_t hits, misses, revalidations, reloads, evictions;
} wh_fdcache_stats;

/* Creates a cache of `entries` files (rounded up to a multiple of 4) for
 * root; files up to content_max bytes are kept in memory while the total
 * stays under content_budget. 0 or -ENOMEM. */
int wh_fdcache_new(wh_fdcache **out, wh_static_root *root, unsigned entries, size_t content_max,
                   size_t content_budget, uint32_t revalidate_ms);
/* Closes every fd and frees the cache. */
void wh_fdcache_free(wh_fdcache *c);
/* Resolves the cleaned path rel (+ trailing slash flag) through the cache.
 * Returns the HTTP status of wh_static_resolve. On 200 either *ent is set
 * (valid until the next call on c) or, for results that are not cached
 * (listings, long paths), *ent is NULL and *tmp holds a file whose fd the
 * caller owns. */
int wh_fdcache_get(wh_fdcache *c, const char *rel, bool slash, uint64_t now_ms,
                   wh_fdcache_ent **ent, wh_static_file *tmp);
/* The precompressed representation of ent to serve for the accepted
 * codings (WH_ENC_* bits), or NULL for identity; *enc gets the coding. */
const wh_fdcache_rep *wh_fdcache_encoded(wh_fdcache *c, wh_fdcache_ent *ent, unsigned accepted,
                                         bool prefer_br, unsigned *enc);
/* The planner's view of rep (ent's identity or one of its siblings, whose
 * coding is enc), prepared fields included. */
void wh_fdcache_static_rep(const wh_fdcache_ent *ent, const wh_fdcache_rep *rep, unsigned enc,
                           wh_static_rep *out);
/* Takes a reference on rep's in-memory content (rep->data != NULL): returns
 * the handle to give wh_fdcache_data_release once the bytes are no longer
 * read. The content never changes; it is freed with its last reference. */
void *wh_fdcache_data_ref(const wh_fdcache_rep *rep);
/* Drops a reference taken by wh_fdcache_data_ref (any thread). */
void wh_fdcache_data_release(void *handle);
/* Counters since creation. */
void wh_fdcache_stats_get(const wh_fdcache *c, wh_fdcache_stats *out);

#endif
