/* Per-thread cache of resolved static files (see fdcache.h). A 4-way
 * set-associative table with LRU inside each set: lookup touches one cache
 * line of hashes, eviction is O(4), memory is fixed at creation. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wharf/http_parse.h"

#include "apps/common/fdcache.h"

#define WAYS 4

struct wh_fdcache {
    wh_static_root *root;
    wh_fdcache_ent *ents; /* nsets * WAYS */
    unsigned nsets;       /* power of two */
    size_t content_max, content_budget, content_used;
    uint32_t revalidate_ms;
    uint64_t tick;
    wh_fdcache_stats stats;
};

int wh_fdcache_new(wh_fdcache **out, wh_static_root *root, unsigned entries, size_t content_max,
                   size_t content_budget, uint32_t revalidate_ms)
{
    wh_fdcache *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    unsigned sets = 1;
    while (sets * WAYS < entries)
        sets *= 2;
    c->ents = calloc((size_t)sets * WAYS, sizeof *c->ents);
    if (!c->ents) {
        free(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < (size_t)sets * WAYS; i++) {
        c->ents[i].id.fd = -1;
        c->ents[i].enc[0].fd = c->ents[i].enc[1].fd = -1;
    }
    c->root = root;
    c->nsets = sets;
    c->content_max = content_max;
    c->content_budget = content_budget;
    c->revalidate_ms = revalidate_ms;
    *out = c;
    return 0;
}

/* A file's content, shared by the cache entry and replies sending it by
 * reference: a reply can outlive the entry (reload, eviction, a new cache on
 * configuration reload), so the count, not the cache, decides the free. */
typedef struct blob {
    unsigned refs;
    char data[];
} blob;

static blob *blob_of(const char *data)
{
    return (blob *)(void *)(data - offsetof(blob, data));
}

void *wh_fdcache_data_ref(const wh_fdcache_rep *rep)
{
    blob *b = blob_of(rep->data);
    __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

void wh_fdcache_data_release(void *handle)
{
    blob *b = handle;
    /* Release ordering: the reader's last use of the bytes happens before
     * the free on whichever thread drops the last reference. */
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) free(b);
}

static void rep_clear(wh_fdcache *c, wh_fdcache_rep *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->fields.len = 0;
    if (r->data) {
        c->content_used -= (size_t)r->st.st_size;
        wh_fdcache_data_release(blob_of(r->data));
        r->data = NULL;
    }
}

static void ent_clear(wh_fdcache *c, wh_fdcache_ent *e)
{
    rep_clear(c, &e->id);
    for (int k = 0; k < 2; k++) {
        rep_clear(c, &e->enc[k]);
        e->enc_state[k] = 0;
    }
    e->keylen = 0;
    e->key[0] = '\0';
}

void wh_fdcache_free(wh_fdcache *c)
{
    if (!c) return;
    for (size_t i = 0; i < (size_t)c->nsets * WAYS; i++)
        ent_clear(c, &c->ents[i]);
    free(c->ents);
    free(c);
}

void wh_fdcache_stats_get(const wh_fdcache *c, wh_fdcache_stats *out)
{
    *out = c->stats;
}

/* FNV-1a of the NUL-terminated s, its length in *len: one pass instead of
 * strlen and then the hash, as every request looks a path up. */
static uint32_t hash(const char *s, bool slash, size_t *len)
{
    uint32_t h = 2166136261u ^ (slash ? 0x9e3779b9u : 0);
    size_t i = 0;
    for (; s[i]; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    *len = i;
    return h | 1; /* 0 marks an empty way */
}

/* Fills r from an open fd: stat is given; small files are read whole. A
 * short read (file shrinking under us) leaves data NULL: served by fd. */
static void rep_load(wh_fdcache *c, wh_fdcache_rep *r, int fd, const struct stat *st, unsigned enc)
{
    r->fd = fd;
    r->st = *st;
    r->data = NULL;
    r->fields.len = 0;
    wh_static_etag(st, enc, r->etag, sizeof r->etag);
    size_t size = (size_t)st->st_size;
    if (size == 0 || size > c->content_max || c->content_used + size > c->content_budget) return;
    blob *b = malloc(sizeof *b + size);
    if (!b) return;
    ssize_t n = pread(fd, b->data, size, 0);
    if (n != (ssize_t)size) {
        free(b);
        return;
    }
    b->refs = 1; /* the cache's */
    r->data = b->data;
    c->content_used += size;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void wh_fdcache_static_rep(const wh_fdcache_ent *e, const wh_fdcache_rep *r, unsigned enc,
                           wh_static_rep *out)
{
    memset(out, 0, sizeof *out);
    out->content_type = e->mime;
    out->encoding = enc;
    out->etag = r->etag;
    out->last_modified = e->last_modified;
    out->mtime = e->mtime;
    out->size = (uint64_t)r->st.st_size;
    out->fields = &r->fields;
}

/* Formats r's full-answer fields (after e's mime and dates are set). One
 * that does not fit leaves len 0: its answers are formatted per request. */
static void rep_fields(wh_fdcache *c, const wh_fdcache_ent *e, wh_fdcache_rep *r, unsigned enc)
{
    wh_static_rep sr;
    wh_fdcache_static_rep(e, r, enc, &sr);
    wh_static_fields_make(c->root, &sr, &r->fields);
}

static void ent_fill(wh_fdcache *c, wh_fdcache_ent *e, const wh_static_file *f)
{
    rep_load(c, &e->id, f->fd, &f->st, WH_ENC_IDENTITY);
    memcpy(e->rel, f->rel, strlen(f->rel) + 1);
    e->mime = wh_mime_lookup(c->root->mime, e->rel);
    e->mtime = f->st.st_mtim.tv_sec;
    wh_http_format_date(e->mtime, e->last_modified);
    rep_fields(c, e, &e->id, WH_ENC_IDENTITY);
}

int wh_fdcache_get(wh_fdcache *c, const char *rel, bool slash, uint64_t now_ms,
                   wh_fdcache_ent **ent, wh_static_file *tmp)
{
    *ent = NULL;
    size_t n;
    uint32_t h = hash(rel, slash, &n);
    if (n >= WH_FDCACHE_KEY_MAX) {
        c->stats.misses++;
        return wh_static_resolve(c->root, rel, slash, tmp);
    }
    wh_fdcache_ent *set = &c->ents[(size_t)(h & (c->nsets - 1)) * WAYS];
    wh_fdcache_ent *e = NULL;
    for (int i = 0; i < WAYS; i++) {
        wh_fdcache_ent *w = &set[i];
        if (w->hash == h && w->keylen == n && w->slash == slash && w->id.fd >= 0 &&
            memcmp(w->key, rel, n) == 0) {
            e = w;
            break;
        }
    }
    if (e) {
        e->used = ++c->tick;
        if (now_ms - e->checked_ms < c->revalidate_ms) {
            c->stats.hits++;
            *ent = e;
            return 200;
        }
        /* Revalidate through the full resolve: the path may now name a new
         * inode (rename deploy), a directory, or something outside. */
        c->stats.revalidations++;
        int st = wh_static_resolve(c->root, rel, slash, tmp);
        if (st != 200 || tmp->is_dir) {
            ent_clear(c, e);
            e->hash = 0;
            return st; /* tmp (if 200) goes to the caller */
        }
        e->checked_ms = now_ms;
        /* Siblings may have appeared or changed: probe them again. */
        for (int k = 0; k < 2; k++) {
            rep_clear(c, &e->enc[k]);
            e->enc_state[k] = 0;
        }
        if (same_file(&e->id.st, &tmp->st) && strcmp(e->rel, tmp->rel) == 0) {
            close(tmp->fd);
            tmp->fd = -1;
            *ent = e;
            return 200;
        }
        c->stats.reloads++;
        rep_clear(c, &e->id);
        ent_fill(c, e, tmp);
        tmp->fd = -1;
        *ent = e;
        return 200;
    }
    c->stats.misses++;
    int st = wh_static_resolve(c->root, rel, slash, tmp);
    if (st != 200 || tmp->is_dir) return st;
    /* Victim: an empty way, else the least recently used. */
    e = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (!set[i].hash) {
            e = &set[i];
            break;
        }
        if (set[i].used < e->used) e = &set[i];
    }
    if (e->hash) {
        c->stats.evictions++;
        ent_clear(c, e);
    }
    memcpy(e->key, rel, n + 1);
    e->keylen = (uint16_t)n;
    e->slash = slash;
    e->hash = h;
    e->used = ++c->tick;
    e->checked_ms = now_ms;
    ent_fill(c, e, tmp);
    tmp->fd = -1;
    *ent = e;
    return 200;
}

const wh_fdcache_rep *wh_fdcache_encoded(wh_fdcache *c, wh_fdcache_ent *e, unsigned accepted,
                                         bool prefer_br, unsigned *enc)
{
    static const unsigned bits[2] = {WH_ENC_GZIP, WH_ENC_BR};
    *enc = WH_ENC_IDENTITY;
    if (!c->root->opts.precompressed || !accepted) return NULL;
    int order[2] = {prefer_br ? 1 : 0, prefer_br ? 0 : 1};
    for (int j = 0; j < 2; j++) {
        int k = order[j];
        if (!(accepted & bits[k])) continue;
        if (e->enc_state[k] == 0) {
            unsigned got;
            struct stat est;
            int fd = wh_static_open_encoded(c->root, e->rel, &e->id.st, bits[k], false, &got, &est);
            if (fd >= 0) {
                rep_load(c, &e->enc[k], fd, &est, bits[k]);
                /* The validator of a coded representation derives from the
                 * original's, so a sibling edit alone does not change it;
                 * that is fine: siblings are regenerated from the original. */
                wh_static_etag(&e->id.st, bits[k], e->enc[k].etag, sizeof e->enc[k].etag);
                rep_fields(c, e, &e->enc[k], bits[k]);
                e->enc_state[k] = 1;
            } else {
                e->enc_state[k] = 2;
            }
        }
        if (e->enc_state[k] == 1) {
            *enc = bits[k];
            return &e->enc[k];
        }
    }
    return NULL;
}
