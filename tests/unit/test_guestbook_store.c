/* The embedded guestbook store (src/apps/common/guestbook_store.c): order,
 * the bound on kept entries, the visitor counter, synchronous completion,
 * and concurrent use from several threads (run under TSan too). */
// WH_TEST_LABELS: tsan
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "apps/common/guestbook_store.h"

struct vres {
    int calls, err;
    uint64_t visitors;
    size_t n;
    char names[WH_GB_PAGE_ENTRIES][16];
    bool all_decoded;
};

static void on_view(int err, const wh_gb_view *v, void *arg)
{
    struct vres *r = arg;
    r->calls++;
    r->err = err;
    r->visitors = v->visitors;
    r->n = v->n;
    r->all_decoded = true; /* every entry has an ID, newer ones larger */
    for (size_t i = 0; i < v->n; i++) {
        const wh_gb_entry *e = &v->entries[i];
        if (!e->id_len ||
            (i && strtoull(e->id, NULL, 10) >= strtoull(v->entries[i - 1].id, NULL, 10)))
            r->all_decoded = false;
        snprintf(r->names[i], sizeof(r->names[i]), "%.*s", (int)e->name_len, e->name);
    }
}

static void on_add(int err, void *arg)
{
    int *calls = arg;
    (*calls)++;
    if (err) *calls = -1000;
}

TEST(embedded_order_and_counter)
{
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_embedded(&s, 0), 0);
    CHECK(!strcmp(wh_gb_store_kind(s), "embedded"));
    CHECK_EQ(wh_gb_store_thread_start(s, NULL), 0); /* no per-thread state */
    wh_gb_op op;
    struct vres r = {0};
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    CHECK_EQ(r.calls, 1); /* synchronous */
    CHECK_EQ(r.n, 0);
    CHECK_EQ(r.visitors, 1);
    int adds = 0;
    const char *names[3] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(wh_gb_store_add(s, NULL, &op, 100 + i, names[i], strlen(names[i]), "m", 1, on_add,
                                 &adds),
                 0);
    CHECK_EQ(adds, 3);
    CHECK_EQ(wh_gb_store_count(s), 3);
    memset(&r, 0, sizeof(r));
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    CHECK_EQ(r.n, 3);
    CHECK_EQ(r.visitors, 2);
    CHECK(r.all_decoded);
    CHECK(!strcmp(r.names[0], "third"));
    CHECK(!strcmp(r.names[2], "first"));
    wh_gb_store_thread_stop(s, NULL);
    wh_gb_store_free(s);
}

TEST(embedded_bounded)
{
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_embedded(&s, 5), 0);
    wh_gb_op op;
    int adds = 0;
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        CHECK_EQ(wh_gb_store_add(s, NULL, &op, i, name, strlen(name), "x", 1, on_add, &adds), 0);
    }
    CHECK_EQ(wh_gb_store_count(s), 5);
    struct vres r = {0};
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    CHECK_EQ(r.n, 5);
    CHECK(!strcmp(r.names[0], "n11"));
    CHECK(!strcmp(r.names[4], "n7"));
    wh_gb_store_free(s);
}

TEST(embedded_page_shows_at_most_page_entries)
{
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_embedded(&s, 0), 0);
    wh_gb_op op;
    int adds = 0;
    for (int i = 0; i < WH_GB_PAGE_ENTRIES + 20; i++)
        CHECK_EQ(wh_gb_store_add(s, NULL, &op, i, "a", 1, "b", 1, on_add, &adds), 0);
    struct vres r = {0};
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    CHECK_EQ(r.n, WH_GB_PAGE_ENTRIES);
    CHECK_EQ(wh_gb_store_count(s), WH_GB_PAGE_ENTRIES + 20);
    wh_gb_store_free(s);
}

#define THREADS    4
#define PER_THREAD 500

struct targ {
    wh_gb_store *s;
    int idx;
    int bad;
};

static void *worker(void *p)
{
    struct targ *a = p;
    wh_gb_op op;
    int adds = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t%d-%d", a->idx, i);
        if (wh_gb_store_add(a->s, NULL, &op, i, name, strlen(name), "msg", 3, on_add, &adds))
            a->bad++;
        if (i % 10 == 0) {
            struct vres r = {0};
            if (wh_gb_store_view(a->s, NULL, &op, on_view, &r) || r.err || !r.all_decoded) a->bad++;
        }
    }
    if (adds != PER_THREAD) a->bad++;
    return NULL;
}

TEST(embedded_concurrent)
{
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_embedded(&s, 1000), 0);
    pthread_t th[THREADS];
    struct targ a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (struct targ){.s = s, .idx = i};
        CHECK_EQ(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(a[i].bad, 0);
    }
    CHECK_EQ(wh_gb_store_count(s), 1000);
    wh_gb_op op;
    struct vres r = {0};
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    /* THREADS * PER_THREAD / 10 views by the workers, plus this one */
    CHECK_EQ(r.visitors, THREADS * PER_THREAD / 10 + 1);
    wh_gb_store_free(s);
}

WH_TEST_MAIN()
