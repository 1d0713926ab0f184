/* Minimal unit-test harness: TEST(name) { ... } then WH_TEST_MAIN().
 * Each test runs in the same process, in order; the first failed CHECK aborts
 * that test with file:line and the expression, and the program exits 1. */
#ifndef WH_TEST_H
#define WH_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*wh_test_fn)(void);
struct wh_test_case {
    const char *name;
    wh_test_fn fn;
};
#define WH_MAX_TESTS 256
static struct wh_test_case wh__tests[WH_MAX_TESTS];
static int wh__ntests;
static int wh__failed;

#define TEST(tname)                                                                                \
    static void test_##tname(void);                                                                \
    __attribute__((constructor)) static void wh__reg_##tname(void)                                 \
    {                                                                                              \
        wh__tests[wh__ntests].name = #tname;                                                       \
        wh__tests[wh__ntests++].fn = test_##tname;                                                 \
    }                                                                                              \
    static void test_##tname(void)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);               \
            wh__failed = 1;                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long wh__a = (long long)(a), wh__b = (long long)(b);                                  \
        if (wh__a != wh__b) {                                                                      \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, wh__a, wh__b);                                               \
            wh__failed = 1;                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Runs every test, or only those named on the command line. */
#define WH_TEST_MAIN()                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        int bad = 0;                                                                               \
        for (int i = 0; i < wh__ntests; i++) {                                                     \
            if (argc > 1) {                                                                        \
                int want = 0;                                                                      \
                for (int j = 1; j < argc; j++)                                                     \
                    want |= !strcmp(argv[j], wh__tests[i].name);                                   \
                if (!want) continue;                                                               \
            }                                                                                      \
            wh__failed = 0;                                                                        \
            wh__tests[i].fn();                                                                     \
            fprintf(stderr, "%s %s\n", wh__failed ? "FAIL" : "ok  ", wh__tests[i].name);           \
            bad |= wh__failed;                                                                     \
        }                                                                                          \
        return bad;                                                                                \
    }

#endif
