/* The one UTF-8 validator (wharf/common.h, RFC 3629 §4), as WebSocket text
 * and form fields need it:
 * valid/invalid tables, each also fed split at every byte. */
#include "test.h"

#include "wharf/common.h"

static const char *valid[] = {
    "",
    "hello, world",
    "\x7f",
    "\xc2\x80",                                     /* U+0080, smallest 2-byte */
    "\xdf\xbf",                                     /* U+07FF */
    "\xe0\xa0\x80",                                 /* U+0800, smallest 3-byte */
    "\xed\x9f\xbf",                                 /* U+D7FF, just below the surrogates */
    "\xee\x80\x80",                                 /* U+E000, just above */
    "\xef\xbf\xbf",                                 /* U+FFFF */
    "\xf0\x90\x80\x80",                             /* U+10000 */
    "\xf4\x8f\xbf\xbf",                             /* U+10FFFF, the largest */
    "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", /* κόσμε (Autobahn 6.2) */
    "long ascii run long ascii run long ascii run \xc3\xa9 and more ascii after it",
};

static const char *invalid[] = {
    "\x80", /* lone continuation */
    "\xbf",
    "\xc0\x80",                 /* overlong NUL */
    "\xc1\xbf",                 /* overlong */
    "\xe0\x80\x80",             /* overlong 3-byte */
    "\xe0\x9f\xbf",             /* overlong U+07FF */
    "\xf0\x80\x80\x80",         /* overlong 4-byte */
    "\xf0\x8f\xbf\xbf",         /* overlong U+FFFF */
    "\xed\xa0\x80",             /* U+D800 high surrogate */
    "\xed\xbf\xbf",             /* U+DFFF low surrogate */
    "\xed\xa0\x80\xed\xb0\x80", /* surrogate pair encoded (CESU-8) */
    "\xf4\x90\x80\x80",         /* U+110000 */
    "\xf5\x80\x80\x80",
    "\xf8\x88\x80\x80\x80", /* 5-byte form */
    "\xfe",
    "\xff",
    "\xc2", /* truncated */
    "\xe2\x82",
    "\xf0\x9f\x98",
    "\xc2\x41", /* continuation missing */
    "\xe2\x28\xa1",
    "abc\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
    "edited",               /* Autobahn 6.3 */
    "0123456789abcdef\x80", /* bad byte after the 8-byte fast path */
};

TEST(valid_table)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const uint8_t *p = (const uint8_t *)valid[i];
        size_t n = strlen(valid[i]);
        CHECK(wh_utf8_valid(p, n));
        /* every split point, as if the message came in two fragments */
        for (size_t cut = 0; cut <= n; cut++) {
            wh_utf8_state st = WH_UTF8_ACCEPT;
            CHECK(wh_utf8_feed(&st, p, cut));
            CHECK(wh_utf8_feed(&st, p + cut, n - cut));
            CHECK(st == WH_UTF8_ACCEPT);
        }
        /* byte by byte */
        wh_utf8_state st = WH_UTF8_ACCEPT;
        for (size_t k = 0; k < n; k++)
            CHECK(wh_utf8_feed(&st, p + k, 1));
        CHECK(st == WH_UTF8_ACCEPT);
    }
}

TEST(invalid_table)
{
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const uint8_t *p = (const uint8_t *)invalid[i];
        size_t n = strlen(invalid[i]);
        CHECK(!wh_utf8_valid(p, n));
        for (size_t cut = 0; cut <= n; cut++) {
            wh_utf8_state st = WH_UTF8_ACCEPT;
            bool ok = wh_utf8_feed(&st, p, cut) && wh_utf8_feed(&st, p + cut, n - cut) &&
                      st == WH_UTF8_ACCEPT;
            CHECK(!ok);
        }
    }
}

TEST(fail_fast)
{
    /* An invalid prefix is reported before the rest arrives. */
    wh_utf8_state st = WH_UTF8_ACCEPT;
    CHECK(!wh_utf8_feed(&st, (const uint8_t *)"ab\xed\xa0", 4));
    /* ... and stays invalid. */
    CHECK(!wh_utf8_feed(&st, (const uint8_t *)"a", 1));
    /* A valid but incomplete prefix is not an error yet. */
    st = WH_UTF8_ACCEPT;
    CHECK(wh_utf8_feed(&st, (const uint8_t *)"ab\xf0\x9f", 4));
    CHECK(st != WH_UTF8_ACCEPT);
    CHECK(wh_utf8_feed(&st, (const uint8_t *)"\x98\x80", 2));
    CHECK(st == WH_UTF8_ACCEPT);
}

TEST(every_code_point)
{
    /* Encode every scalar value; all valid. Surrogates encoded naively: invalid. */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xC0 | cp >> 6);
            b[1] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xE0 | cp >> 12);
            b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xF0 | cp >> 18);
            b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            b[3] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 4;
        }
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        CHECK(wh_utf8_valid(b, n) == !surrogate);
    }
}

TEST(trim)
{
    const uint8_t *s = (const uint8_t *)"ab\xc3\xa9";
    CHECK_EQ(wh_utf8_trim(s, 4, 10), 4);
    CHECK_EQ(wh_utf8_trim(s, 4, 3), 2);
    CHECK_EQ(wh_utf8_trim(s, 4, 2), 2);
    CHECK_EQ(wh_utf8_trim((const uint8_t *)"a\xff", 2, 10), 1);
}

WH_TEST_MAIN()
