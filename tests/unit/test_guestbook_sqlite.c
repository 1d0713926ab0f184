/* The SQLite guestbook store (src/apps/common/guestbook_sqlite.c) through
 * the store interface: order, bytes kept as given, the bound, the counter,
 * entries and counter across a reopen, one connection per thread with
 * several writers, clear errors for unusable databases; prints the time of
 * one add and one view (the reason writes stay on the loop thread). */
// WH_TEST_LABELS: tsan guestbook
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "apps/common/guestbook_store.h"

struct errs {
    int n;
    char last[512];
};

static void on_error(const char *msg, void *ud)
{
    struct errs *e = ud;
    e->n++;
    snprintf(e->last, sizeof e->last, "%s", msg);
    fprintf(stderr, "# store error: %s\n", msg);
}

struct vres {
    int calls;
    uint64_t visitors;
    size_t n;
    char first[64];
    size_t first_len;
    long first_id;
};

static void on_view(int err, const wh_gb_view *v, void *arg)
{
    struct vres *r = arg;
    r->calls++;
    r->visitors = v->visitors;
    r->n = v->n;
    if (v->n) {
        r->first_len = v->entries[0].name_len < 64 ? v->entries[0].name_len : 64;
        memcpy(r->first, v->entries[0].name, r->first_len);
        r->first_id = strtol(v->entries[0].id, NULL, 10);
    }
    for (size_t i = 1; i < v->n; i++) /* newest first: IDs go down */
        if (strtol(v->entries[i].id, NULL, 10) >= strtol(v->entries[i - 1].id, NULL, 10))
            r->calls += 1000;
}

static void on_add(int err, void *arg)
{
    int *calls = arg;
    (*calls)++;
    if (err) *calls = -1000;
}

static char *tmpdir(void)
{
    static char t[64];
    snprintf(t, sizeof t, "/tmp/wh-gbsq-XXXXXX");
    return mkdtemp(t);
}

static void rmdata(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

TEST(sqlite_order_bytes_counter_and_reopen)
{
    char *dir = tmpdir();
    char data[128];
    snprintf(data, sizeof data, "%s/data", dir); /* made by the store */
    struct errs er = {0};
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_sqlite(&s, data, on_error, &er), 0);
    CHECK_EQ(er.n, 0);
    CHECK(!strcmp(wh_gb_store_kind(s), "sqlite"));
    wh_gb_op op;
    struct vres r = {0};
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    CHECK_EQ(r.calls, 1); /* synchronous */
    CHECK_EQ(r.n, 0);
    CHECK_EQ(r.visitors, 1);
    int adds = 0;
    static const char odd[] = "a\0<b>&\xc3\xa9"; /* NUL and markup kept as given */
    CHECK_EQ(wh_gb_store_add(s, NULL, &op, 1, "first", 5, "m", 1, on_add, &adds), 0);
    CHECK_EQ(wh_gb_store_add(s, NULL, &op, 2, odd, sizeof odd - 1, "", 0, on_add, &adds), 0);
    CHECK_EQ(adds, 2);
    wh_gb_store_free(s);

    CHECK_EQ(wh_gb_store_new_sqlite(&s, data, on_error, &er), 0);
    CHECK_EQ(wh_gb_store_count(s), 2);
    memset(&r, 0, sizeof r);
    CHECK_EQ(wh_gb_store_view_ex(s, NULL, &op, false, on_view, &r), 0); /* not counted */
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.n, 2);
    CHECK_EQ(r.visitors, 1); /* kept across the reopen */
    CHECK_EQ(r.first_len, sizeof odd - 1);
    CHECK(!memcmp(r.first, odd, sizeof odd - 1));
    CHECK_EQ(er.n, 0);
    wh_gb_store_free(s);
    rmdata(dir);
}

TEST(sqlite_bounded_and_timed)
{
    char *dir = tmpdir();
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_sqlite(&s, dir, NULL, NULL), 0);
    CHECK_EQ(wh_gb_store_thread_start(s, NULL), 0); /* this thread's own connection */
    enum { N = WH_GB_KEEP_ENTRIES + 50 };
    static double add_us[N];
    wh_gb_op op;
    int adds = 0;
    char msg[600];
    memset(msg, 'm', sizeof msg);
    for (int i = 0; i < N; i++) {
        char name[16];
        int nl = snprintf(name, sizeof name, "n%d", i);
        double t0 = now_us();
        CHECK_EQ(wh_gb_store_add(s, NULL, &op, i, name, (size_t)nl, msg, sizeof msg, on_add, &adds),
                 0);
        add_us[i] = now_us() - t0;
    }
    CHECK_EQ(adds, N);
    CHECK_EQ(wh_gb_store_count(s), WH_GB_KEEP_ENTRIES);
    static double view_us[200];
    struct vres r = {0};
    for (int i = 0; i < 200; i++) {
        double t0 = now_us();
        CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
        view_us[i] = now_us() - t0;
    }
    CHECK_EQ(r.calls, 200);
    CHECK_EQ(r.n, WH_GB_PAGE_ENTRIES);
    CHECK_EQ(r.first_len, 5);
    CHECK(!memcmp(r.first, "n1049", 5));
    qsort(add_us, N, sizeof add_us[0], cmp_d);
    qsort(view_us, 200, sizeof view_us[0], cmp_d);
    printf("# add (600-byte message, WAL, synchronous=NORMAL): median %.1f us, p99 %.1f us, "
           "max %.1f us\n",
           add_us[N / 2], add_us[N * 99 / 100], add_us[N - 1]);
    printf("# counted view of 100 entries: median %.1f us, p99 %.1f us\n", view_us[100],
           view_us[198]);
    wh_gb_store_thread_stop(s, NULL);
    wh_gb_store_free(s);
    rmdata(dir);
}

#define THREADS    4
#define PER_THREAD 250

struct targ {
    wh_gb_store *s;
    int idx, bad, refused, views;
};

/* A write refused after busy_timeout (-EIO, "database is locked": only when
 * the machine is overloaded, e.g. many sanitizer builds at once) is what a
 * client sees as 503 + Retry-After: it retries. What must hold: a refused
 * add stored nothing, an acknowledged one is stored once. */
static int add_retrying(struct targ *a, wh_gb_op *op, const char *name, size_t nl, int *adds)
{
    for (int tries = 0; tries < 50; tries++) {
        int e = wh_gb_store_add(a->s, NULL, op, 1, name, nl, "msg", 3, on_add, adds);
        if (e != -EIO) return e;
        a->refused++;
        usleep(10000);
    }
    return -EIO;
}

static void *worker(void *p)
{
    struct targ *a = p;
    if (wh_gb_store_thread_start(a->s, NULL)) a->bad++;
    wh_gb_op op;
    int adds = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        char name[32];
        int nl = snprintf(name, sizeof name, "t%d-%d", a->idx, i);
        if (add_retrying(a, &op, name, (size_t)nl, &adds)) a->bad++;
        if (i % 10 == 0) {
            struct vres r = {0};
            int e = wh_gb_store_view(a->s, NULL, &op, on_view, &r);
            if (e == 0 && r.calls == 1)
                a->views++;
            else if (e == -EIO && !r.calls)
                a->refused++; /* not counted: the visit's UPDATE rolled back */
            else
                a->bad++;
        }
    }
    if (adds != PER_THREAD) a->bad++;
    wh_gb_store_thread_stop(a->s, NULL);
    return NULL;
}

TEST(sqlite_concurrent_writers)
{
    char *dir = tmpdir();
    wh_gb_store *s;
    struct errs er = {0};
    CHECK_EQ(wh_gb_store_new_sqlite(&s, dir, on_error, &er), 0);
    pthread_t th[THREADS];
    struct targ a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (struct targ){.s = s, .idx = i};
        CHECK_EQ(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    }
    int refused = 0, views = 0;
    for (int i = 0; i < THREADS; i++) /* all of them before any CHECK can return */
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        CHECK_EQ(a[i].bad, 0);
        refused += a[i].refused;
        views += a[i].views;
    }
    printf("# %d writes refused after busy_timeout (retried)\n", refused);
    CHECK_EQ(er.n, refused); /* each refusal was reported, nothing else was */
    CHECK_EQ(wh_gb_store_count(s), THREADS * PER_THREAD);
    wh_gb_op op;
    struct vres r = {0};
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), 0);
    CHECK_EQ(r.visitors, (uint64_t)views + 1);
    wh_gb_store_free(s);
    rmdata(dir);
}

TEST(sqlite_unusable_database_is_an_error_not_a_crash)
{
    char *dir = tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/guestbook.db", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 200; i++)
        fputs("not a database at all\n", f);
    fclose(f);
    struct errs er = {0};
    wh_gb_store *s;
    CHECK_EQ(wh_gb_store_new_sqlite(&s, dir, on_error, &er), 0);
    CHECK_EQ(er.n, 1);
    CHECK(strstr(er.last, path) && strstr(er.last, "not a database"));
    wh_gb_op op;
    struct vres r = {0};
    int adds = 0;
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), -ENOTCONN);
    CHECK_EQ(wh_gb_store_add(s, NULL, &op, 1, "a", 1, "b", 1, on_add, &adds), -ENOTCONN);
    CHECK_EQ(r.calls + adds, 0); /* no callback after a refusal */
    CHECK_EQ(er.n, 1);           /* retried at most once a second: no log flood */
    wh_gb_store_free(s);

    /* The data "directory" is a file: cannot be made or used. */
    er.n = 0;
    CHECK_EQ(wh_gb_store_new_sqlite(&s, path, on_error, &er), 0);
    CHECK(er.n >= 1);
    CHECK_EQ(wh_gb_store_view(s, NULL, &op, on_view, &r), -ENOTCONN);
    wh_gb_store_free(s);
    rmdata(dir);
}

WH_TEST_MAIN()
