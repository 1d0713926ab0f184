/* A small open-addressing hash set of pointers, used for the per-thread set
 * of busy (mid-request) connections. Linear probing with tombstones; grows at
 * 50% load. Touched only by the owning loop thread: no lock. */
#include <stdint.h>
#include <stdlib.h>

#include "runtime/runtime_internal.h"

static size_t ptr_hash(const void *p)
{
    /* Fibonacci hashing of the address; the low bits of heap pointers are
     * mostly zero, the multiply spreads the high ones down. */
    uint64_t x = (uint64_t)(uintptr_t)p;
    return (size_t)((x * 0x9E3779B97F4A7C15ull) >> 20);
}

static int ptrset_grow(wh__ptrset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 16;
    if (s->live * 4 < s->cap) /* mostly tombstones: rehash at the same size */
        ncap = s->cap;
    void **ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        void *p = s->slots[i];
        if (!p || p == WH__PTRSET_TOMB) continue;
        size_t j = ptr_hash(p) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = p;
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    s->used = s->live;
    return 0;
}

int wh__ptrset_add(wh__ptrset *s, void *p)
{
    if (wh__ptrset_has(s, p)) return 0;
    if ((s->used + 1) * 2 > s->cap) {
        int rc = ptrset_grow(s);
        if (rc) return rc;
    }
    size_t j = ptr_hash(p) & (s->cap - 1);
    while (s->slots[j] && s->slots[j] != WH__PTRSET_TOMB)
        j = (j + 1) & (s->cap - 1);
    if (!s->slots[j]) s->used++;
    s->slots[j] = p;
    s->live++;
    return 0;
}

static size_t ptrset_find(const wh__ptrset *s, const void *p)
{
    if (!s->cap) return SIZE_MAX;
    size_t j = ptr_hash(p) & (s->cap - 1);
    for (size_t n = 0; n < s->cap && s->slots[j]; n++) {
        if (s->slots[j] == p) return j;
        j = (j + 1) & (s->cap - 1);
    }
    return SIZE_MAX;
}

bool wh__ptrset_has(const wh__ptrset *s, const void *p)
{
    return ptrset_find(s, p) != SIZE_MAX;
}

bool wh__ptrset_del(wh__ptrset *s, void *p)
{
    size_t j = ptrset_find(s, p);
    if (j == SIZE_MAX) return false;
    s->slots[j] = WH__PTRSET_TOMB;
    s->live--;
    return true;
}

void wh__ptrset_free(wh__ptrset *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = s->used = s->live = 0;
}
