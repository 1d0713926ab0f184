/* The shared entries part of the guestbook page: see guestbook_cache.h. */
#include "apps/common/guestbook_cache.h"

#include <stdlib.h>
#include <string.h>

struct wh_gb_block {
    unsigned refs;
    size_t n;  /* entries shown */
    char *key; /* their IDs, each followed by '\n' (IDs hold no '\n') */
    size_t key_len;
    wh_gb_buf html;
};

void wh_gb_cache_init(wh_gb_cache *c)
{
    memset(c, 0, sizeof(*c));
}

void wh_gb_cache_free(wh_gb_cache *c)
{
    if (c->cur) wh_gb_block_release(c->cur);
    c->cur = NULL;
}

const char *wh_gb_block_data(const wh_gb_block *b, size_t *len)
{
    *len = b->html.len;
    return b->html.data;
}

void wh_gb_block_release(void *block)
{
    wh_gb_block *b = block;
    if (--b->refs) return;
    wh_gb_buf_free(&b->html);
    free(b->key);
    free(b);
}

static bool same_ids(const wh_gb_block *b, const wh_gb_entry *e, size_t n)
{
    if (b->n != n) return false;
    const char *k = b->key, *end = b->key + b->key_len;
    for (size_t i = 0; i < n; i++) {
        if ((size_t)(end - k) < e[i].id_len + 1 || memcmp(k, e[i].id, e[i].id_len) ||
            k[e[i].id_len] != '\n')
            return false;
        k += e[i].id_len + 1;
    }
    return k == end;
}

static wh_gb_block *render(const wh_gb_entry *e, size_t n)
{
    wh_gb_block *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    for (size_t i = 0; i < n; i++)
        b->key_len += e[i].id_len + 1;
    b->key = malloc(b->key_len + 1);
    wh_gb_buf_init(&b->html);
    if (!b->key || wh_gb_render_entries(&b->html, e, n) < 0) {
        wh_gb_buf_free(&b->html);
        free(b->key);
        free(b);
        return NULL;
    }
    char *k = b->key;
    for (size_t i = 0; i < n; i++) {
        memcpy(k, e[i].id, e[i].id_len);
        k += e[i].id_len;
        *k++ = '\n';
    }
    b->n = n;
    b->refs = 1; /* the cache's */
    return b;
}

wh_gb_block *wh_gb_cache_get(wh_gb_cache *c, const wh_gb_entry *entries, size_t n)
{
    if (!c->cur || !same_ids(c->cur, entries, n)) {
        wh_gb_block *b = render(entries, n);
        if (!b) return NULL;
        c->renders++;
        if (c->cur) wh_gb_block_release(c->cur); /* senders of the old page keep theirs */
        c->cur = b;
    }
    c->cur->refs++;
    return c->cur;
}
