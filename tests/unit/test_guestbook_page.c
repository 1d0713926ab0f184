/* Unit tests for the guestbook's pure parts (src/apps/common): form parsing
 * and checks (guestbook_form.c), HTML escaping and the page in parts
 * (guestbook_page.c), the Redis commands (guestbook_redis.c) and the shared
 * entries part (guestbook_cache.c). */
#include "test.h"
#include "wharf/http_data.h"

#include <errno.h>

#include "apps/common/guestbook_cache.h"
#include "apps/common/guestbook_page.h"
#include "apps/common/guestbook_redis.h"

static int parse(const char *body, wh_gb_form *f)
{
    return wh_gb_form_parse(body, strlen(body), f);
}

TEST(form_basic)
{
    wh_gb_form f;
    CHECK_EQ(parse("name=Ada&message=Hello+world%21", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, "Ada"));
    CHECK_EQ(f.name_len, 3);
    CHECK(!strcmp(f.message, "Hello world!"));
    CHECK_EQ(f.message_len, 12);
}

TEST(form_order_unknown_fields_and_empty_pairs)
{
    wh_gb_form f;
    CHECK_EQ(parse("&x=1&&message=hi&submit=Sign&name=Bob&", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, "Bob"));
    CHECK(!strcmp(f.message, "hi"));
}

TEST(form_default_name_and_trim)
{
    wh_gb_form f;
    CHECK_EQ(parse("name=+++&message=++hello%0A++", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, WH_GB_DEFAULT_NAME));
    CHECK(!strcmp(f.message, "hello"));
    CHECK_EQ(parse("message=x", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, WH_GB_DEFAULT_NAME));
}

TEST(form_percent_decoding)
{
    wh_gb_form f;
    /* "%3Cscript%3E" decodes to markup; it is escaped at render time, not here. */
    CHECK_EQ(parse("name=%3Cb%3E&message=a%2Bb%3Dc%26d%25", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, "<b>"));
    CHECK(!strcmp(f.message, "a+b=c&d%"));
    /* UTF-8 "é" and "日本" */
    CHECK_EQ(parse("name=%C3%A9&message=%E6%97%A5%E6%9C%AC", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, "\xC3\xA9"));
    CHECK(!strcmp(f.message, "\xE6\x97\xA5\xE6\x9C\xAC"));
    /* lower-case hex */
    CHECK_EQ(parse("message=%c3%a9", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.message, "\xC3\xA9"));
}

TEST(form_names_decoded)
{
    wh_gb_form f;
    /* names are decoded like values (wh_http_form_name_eq) */
    CHECK_EQ(parse("n%61me=Ada&m%65ssage=hi", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, "Ada"));
    CHECK(!strcmp(f.message, "hi"));
    CHECK_EQ(parse("message=a&mess%61ge=b", &f), WH_GB_FORM_DUPLICATE_FIELD);
    /* fields we do not use are never decoded: their escapes do not matter */
    CHECK_EQ(parse("x=%zz&y%=1&message=hi", &f), WH_GB_FORM_OK);
    /* a malformed name is no known field */
    CHECK_EQ(parse("name%=x&message=hi", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, WH_GB_DEFAULT_NAME));
}

TEST(form_errors)
{
    wh_gb_form f;
    CHECK_EQ(parse("name=a", &f), WH_GB_FORM_MESSAGE_EMPTY);
    CHECK_EQ(parse("name=a&message=+%20%09", &f), WH_GB_FORM_MESSAGE_EMPTY);
    CHECK_EQ(parse("message=%", &f), WH_GB_FORM_BAD_ENCODING);
    CHECK_EQ(parse("message=%4", &f), WH_GB_FORM_BAD_ENCODING);
    CHECK_EQ(parse("message=%zz", &f), WH_GB_FORM_BAD_ENCODING);
    CHECK_EQ(parse("message=%C3", &f), WH_GB_FORM_BAD_UTF8);          /* truncated */
    CHECK_EQ(parse("message=%C0%AF", &f), WH_GB_FORM_BAD_UTF8);       /* overlong '/' */
    CHECK_EQ(parse("message=%ED%A0%80", &f), WH_GB_FORM_BAD_UTF8);    /* surrogate */
    CHECK_EQ(parse("message=%F4%90%80%80", &f), WH_GB_FORM_BAD_UTF8); /* > U+10FFFF */
    CHECK_EQ(parse("message=%FF", &f), WH_GB_FORM_BAD_UTF8);
    CHECK_EQ(parse("message=a%00b", &f), WH_GB_FORM_CONTROL_CHAR);
    CHECK_EQ(parse("message=a%1Bb", &f), WH_GB_FORM_CONTROL_CHAR);
    CHECK_EQ(parse("name=a%0Ab&message=x", &f), WH_GB_FORM_CONTROL_CHAR);
    CHECK_EQ(parse("message=line1%0D%0Aline2%09tab", &f), WH_GB_FORM_OK);
    CHECK_EQ(parse("message=a&message=b", &f), WH_GB_FORM_DUPLICATE_FIELD);
    CHECK_EQ(parse("name=a&name=b&message=c", &f), WH_GB_FORM_DUPLICATE_FIELD);
}

TEST(form_limits)
{
    wh_gb_form f;
    char body[WH_GB_BODY_MAX + 64];
    /* name: exactly 64 bytes ok, 65 too long */
    strcpy(body, "message=m&name=");
    size_t o = strlen(body);
    memset(body + o, 'n', 64);
    body[o + 64] = '\0';
    CHECK_EQ(parse(body, &f), WH_GB_FORM_OK);
    CHECK_EQ(f.name_len, 64);
    body[o + 64] = 'n';
    body[o + 65] = '\0';
    CHECK_EQ(parse(body, &f), WH_GB_FORM_NAME_TOO_LONG);
    CHECK_EQ(wh_gb_form_status(WH_GB_FORM_NAME_TOO_LONG), 413);
    /* 64 multi-byte chars = 128 bytes: too long (the limit is bytes) */
    strcpy(body, "message=m&name=");
    o = strlen(body);
    for (int i = 0; i < 64; i++, o += 6)
        memcpy(body + o, "%C3%A9", 6);
    body[o] = '\0';
    CHECK_EQ(parse(body, &f), WH_GB_FORM_NAME_TOO_LONG);
    /* message: 1024 ok, 1025 too long */
    strcpy(body, "message=");
    o = strlen(body);
    memset(body + o, 'm', 1024);
    body[o + 1024] = '\0';
    CHECK_EQ(parse(body, &f), WH_GB_FORM_OK);
    CHECK_EQ(f.message_len, 1024);
    body[o + 1024] = 'm';
    body[o + 1025] = '\0';
    CHECK_EQ(parse(body, &f), WH_GB_FORM_MESSAGE_TOO_LONG);
    /* padded with spaces beyond the limit, but short once trimmed: ok */
    strcpy(body, "message=");
    o = strlen(body);
    memset(body + o, '+', 2000);
    memcpy(body + o + 1000, "hi", 2);
    body[o + 2000] = '\0';
    CHECK_EQ(parse(body, &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.message, "hi"));
    /* whole body too large */
    memset(body, 'x', WH_GB_BODY_MAX + 1);
    CHECK_EQ(wh_gb_form_parse(body, WH_GB_BODY_MAX + 1, &f), WH_GB_FORM_BODY_TOO_LARGE);
    CHECK_EQ(wh_gb_form_status(WH_GB_FORM_BODY_TOO_LARGE), 413);
    CHECK_EQ(wh_gb_form_status(WH_GB_FORM_BAD_UTF8), 400);
    CHECK_EQ(wh_gb_form_status(WH_GB_FORM_OK), 200);
    CHECK(strstr(wh_gb_form_strerror(WH_GB_FORM_NAME_TOO_LONG), "64"));
}

TEST(content_type)
{
    const char *ok[] = {"application/x-www-form-urlencoded", "Application/X-WWW-Form-Urlencoded",
                        "application/x-www-form-urlencoded; charset=UTF-8",
                        "application/x-www-form-urlencoded ;charset=utf-8",
                        " application/x-www-form-urlencoded"};
    const char *bad[] = {"", "text/plain", "multipart/form-data; boundary=x",
                         "application/x-www-form-urlencodedx", "application/json"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        CHECK(wh_http_media_type_is((wh_str){ok[i], strlen(ok[i])}, WH_GB_CONTENT_TYPE));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!wh_http_media_type_is((wh_str){bad[i], strlen(bad[i])}, WH_GB_CONTENT_TYPE));
}

TEST(utf8)
{
    CHECK(wh_utf8_valid("", 0));
    CHECK(wh_utf8_valid("plain", 5));
    CHECK(wh_utf8_valid("\xF0\x9F\x98\x80", 4)); /* U+1F600 */
    CHECK(wh_utf8_valid("\xF4\x8F\xBF\xBF", 4)); /* U+10FFFF */
    CHECK(wh_utf8_valid("\xEF\xBF\xBF", 3));
    CHECK(!wh_utf8_valid("\xE0\x80\x80", 3)); /* overlong */
    CHECK(!wh_utf8_valid("\xF0\x80\x80\x80", 4));
    CHECK(!wh_utf8_valid("\x80", 1));
    CHECK(!wh_utf8_valid("\xC2", 1));
    CHECK(!wh_utf8_valid("\xE2\x82", 2));
    CHECK(!wh_utf8_valid("\xC2\x41", 2));
}

TEST(html_escape)
{
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    const char *in = "<script>alert(\"x\" & 'y')</script>";
    CHECK_EQ(wh_gb_html_escape(&b, in, strlen(in)), 0);
    CHECK(!strcmp(b.data, "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"));
    wh_gb_buf_reset(&b);
    CHECK_EQ(wh_gb_html_escape(&b, "plain \xC3\xA9", 8), 0);
    CHECK(!strcmp(b.data, "plain \xC3\xA9"));
    wh_gb_buf_free(&b);
}

TEST(strip_invisible)
{
    /* U+202E, U+200B, U+2066..U+2069, U+FEFF, U+0085, U+061C, U+2060 go;
     * letters, accents, Hebrew and emoji stay. */
    char s[] = "a\xE2\x80\xAE"
               "b\xE2\x80\x8B"
               "c\xE2\x81\xA6\xE2\x81\xA9"
               "d\xEF\xBB\xBF"
               "e\xC2\x85"
               "f\xD8\x9C"
               "g\xE2\x81\xA0"
               "\xC3\xA9\xD7\xA9\xF0\x9F\x98\x80";
    size_t n = wh_gb_strip_invisible(s, strlen(s));
    CHECK_EQ(n, strlen("abcdefg\xC3\xA9\xD7\xA9\xF0\x9F\x98\x80"));
    CHECK(!strcmp(s, "abcdefg\xC3\xA9\xD7\xA9\xF0\x9F\x98\x80"));
    char edge[] = "\xE2\x80"; /* cut short: not a whole sequence, kept */
    CHECK_EQ(wh_gb_strip_invisible(edge, 2), 2);
    /* Through the form: stripped before trimming and the empty check. */
    wh_gb_form f;
    CHECK_EQ(parse("name=%E2%80%AEx&message=%E2%80%8Bhi%C2%9F", &f), WH_GB_FORM_OK);
    CHECK(!strcmp(f.name, "x") && !strcmp(f.message, "hi"));
    CHECK_EQ(parse("message=%E2%80%8B%EF%BB%BF+%E2%81%A7", &f), WH_GB_FORM_MESSAGE_EMPTY);
}

TEST(render_isolates_user_text)
{
    wh_gb_entry e = {.time_s = 0,
                     .name = "R\xE2\x80\xAEL",
                     .name_len = 5,
                     .msg = "m\xE2\x81\xA7<b>",
                     .msg_len = 7};
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    CHECK_EQ(wh_gb_render_page(&b, &e, 1, 1, NULL), 0);
    CHECK(strstr(b.data, "<bdi class=\"name\">RL</bdi>"));
    CHECK(strstr(b.data, "<bdi class=\"msg\">m&lt;b&gt;</bdi>"));
    CHECK(!strstr(b.data, "name=\"token\""));
    wh_gb_buf_reset(&b);
    CHECK_EQ(wh_gb_render_page(&b, &e, 1, 1, "abc\"def"), 0);
    CHECK(strstr(b.data, "<input type=\"hidden\" name=\"token\" value=\"abc&quot;def\">"));
    wh_gb_buf_free(&b);
}

TEST(buf_on_caller_storage_grows)
{
    char mem[8];
    wh_gb_buf b;
    wh_gb_buf_init_on(&b, mem, sizeof(mem));
    CHECK_EQ(wh_gb_buf_puts(&b, "abc"), 0);
    CHECK(b.data == mem);
    CHECK_EQ(wh_gb_buf_printf(&b, "%s-%d", "defghijkl", 42), 0);
    CHECK(b.data != mem);
    CHECK(!strcmp(b.data, "abcdefghijkl-42"));
    /* a long printf takes the second vsnprintf path */
    char big[600];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_EQ(wh_gb_buf_printf(&b, "[%s]", big), 0);
    CHECK_EQ(b.len, 15 + 2 + 599);
    CHECK_EQ(b.data[b.len], '\0');
    wh_gb_buf_free(&b);
}

TEST(render_page_escapes_and_orders)
{
    wh_gb_entry e[2] = {
        {.time_s = 1700000000,
         .name = "Eve",
         .name_len = 3,
         .msg = "<script>x</script>",
         .msg_len = 18},
        {.time_s = 0, .name = "A&B", .name_len = 3, .msg = "first", .msg_len = 5},
    };
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    CHECK_EQ(wh_gb_render_page(&b, e, 2, 42, NULL), 0);
    CHECK(strstr(b.data, "<!DOCTYPE html>") == b.data);
    CHECK(strstr(b.data, "<span id=\"gb-visitors\">42</span>"));
    CHECK(strstr(b.data, "<form id=\"gb-form\" method=\"post\" action=\"/guestbook\">"));
    CHECK(!strstr(b.data, "<script>"));
    CHECK(strstr(b.data, "&lt;script&gt;x&lt;/script&gt;"));
    CHECK(strstr(b.data, "A&amp;B"));
    CHECK(strstr(b.data, "2023-11-14 22:13 UTC"));
    CHECK(strstr(b.data, "&lt;script&gt;") < strstr(b.data, "first")); /* order kept */
    CHECK(!strstr(b.data, "gb-empty"));
    wh_gb_buf_reset(&b);
    CHECK_EQ(wh_gb_render_page(&b, NULL, 0, 1, NULL), 0);
    CHECK(strstr(b.data, "gb-empty"));
    wh_gb_buf_free(&b);
}

TEST(render_dates)
{
    /* UTC dates: leap days, century rules and the ends of the range. */
    struct {
        int64_t t;
        const char *want;
    } cases[] = {
        {1, "1970-01-01T00:00:01Z\">1970-01-01 00:00 UTC"},
        {951782400, "2000-02-29T00:00:00Z\">2000-02-29 00:00 UTC"},
        {4107542399, "2100-02-28T23:59:59Z\">2100-02-28 23:59 UTC"},
        {4107542400, "2100-03-01T00:00:00Z\">2100-03-01 00:00 UTC"},
        {1709164800, "2024-02-29T00:00:00Z\">2024-02-29 00:00 UTC"},
        {1735689599, "2024-12-31T23:59:59Z\">2024-12-31 23:59 UTC"},
        {253402300799, "9999-12-31T23:59:59Z\">9999-12-31 23:59 UTC"},
    };
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wh_gb_entry e = {
            .time_s = cases[i].t, .name = "n", .name_len = 1, .msg = "m", .msg_len = 1};
        wh_gb_buf_reset(&b);
        CHECK_EQ(wh_gb_render_page(&b, &e, 1, 1, NULL), 0);
        if (!strstr(b.data, cases[i].want))
            fprintf(stderr, "date case %zu: want %s\n", i, cases[i].want);
        CHECK(strstr(b.data, cases[i].want));
    }
    /* out of range: no <time> at all */
    wh_gb_entry e = {.time_s = 253402300800, .name = "n", .name_len = 1, .msg = "m", .msg_len = 1};
    wh_gb_buf_reset(&b);
    CHECK_EQ(wh_gb_render_page(&b, &e, 1, 1, NULL), 0);
    CHECK(!strstr(b.data, "<time"));
    wh_gb_buf_free(&b);
}

TEST(render_error)
{
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    CHECK_EQ(wh_gb_render_error(&b, 413, "too <long>"), 0);
    CHECK(strstr(b.data, "error 413"));
    CHECK(strstr(b.data, "too &lt;long&gt;"));
    CHECK(strstr(b.data, "href=\"/guestbook\""));
    wh_gb_buf_free(&b);
}

TEST(page_in_parts_is_the_page)
{
    /* top + entries + end, as wharfd sends them by reference, is the page. */
    wh_gb_entry e[2] = {
        {.id = "2",
         .id_len = 1,
         .time_s = 1700000000,
         .name = "a",
         .name_len = 1,
         .msg = "x\"y",
         .msg_len = 3},
        {.id = "1", .id_len = 1, .name = "b", .name_len = 1, .msg = "z", .msg_len = 1}};
    wh_gb_buf whole, parts;
    wh_gb_buf_init(&whole);
    wh_gb_buf_init(&parts);
    CHECK_EQ(wh_gb_render_page(&whole, e, 2, 9, "tok"), 0);
    CHECK_EQ(wh_gb_render_top(&parts, 9, "tok"), 0);
    CHECK(!strstr(parts.data, "gb-entries")); /* the top has no entries */
    CHECK_EQ(wh_gb_render_entries(&parts, e, 2), 0);
    CHECK_EQ(wh_gb_buf_puts(&parts, WH_GB_PAGE_END), 0);
    CHECK_EQ(parts.len, whole.len);
    CHECK(!memcmp(parts.data, whole.data, whole.len));
    wh_gb_buf_free(&whole);
    wh_gb_buf_free(&parts);
}

TEST(redis_commands)
{
    wh_gb_cmd c;
    wh_gb_cmd_visit(&c);
    CHECK_EQ(c.argc, 2);
    CHECK(!strcmp(c.argv[0], "INCR") && !strcmp(c.argv[1], "guestbook:visitors"));
    wh_gb_cmd_list(&c);
    CHECK_EQ(c.argc, 6);
    CHECK(!strcmp(c.argv[0], "XREVRANGE") && !strcmp(c.argv[1], "guestbook:stream"));
    CHECK(!strcmp(c.argv[4], "COUNT") && !strcmp(c.argv[5], "100"));
    wh_gb_cmd_add(&c, 1700000000, "n\0x", 3, "msg", 3);
    CHECK_EQ(c.argc, 11);
    CHECK(!strcmp(c.argv[0], "XADD") && !strcmp(c.argv[3], "1000") && !strcmp(c.argv[4], "*"));
    CHECK(!strcmp(c.argv[5], "t") && c.argvlen[6] == 10 && !memcmp(c.argv[6], "1700000000", 10));
    CHECK(!strcmp(c.argv[7], "name") && c.argvlen[8] == 3 && !memcmp(c.argv[8], "n\0x", 3));
    CHECK(!strcmp(c.argv[9], "msg") && c.argvlen[10] == 3);
    wh_gb_cmd_migrate(&c);
    CHECK(!strcmp(c.argv[0], "EVAL") && !strcmp(c.argv[2], "3"));
    CHECK(!strcmp(c.argv[3], "guestbook:entries") && !strcmp(c.argv[4], "guestbook:stream"));
    CHECK(!strcmp(c.argv[5], "guestbook:entries:migrated"));
}

/* The shared entries part: rendered once per list of IDs, kept alive by
 * every response that still sends it. */
TEST(cache_renders_once_per_change)
{
    wh_gb_entry e[2] = {
        {.id = "5-0", .id_len = 3, .name = "a", .name_len = 1, .msg = "one", .msg_len = 3},
        {.id = "4-0", .id_len = 3, .name = "b", .name_len = 1, .msg = "two", .msg_len = 3}};
    wh_gb_cache c;
    wh_gb_cache_init(&c);
    wh_gb_block *b1 = wh_gb_cache_get(&c, e, 2);
    wh_gb_block *b2 = wh_gb_cache_get(&c, e, 2);
    CHECK(b1 && b1 == b2);
    CHECK_EQ(c.renders, 1);
    size_t len;
    const char *html = wh_gb_block_data(b1, &len);
    wh_gb_buf want;
    wh_gb_buf_init(&want);
    wh_gb_render_entries(&want, e, 2);
    CHECK(len == want.len && !memcmp(html, want.data, len));
    /* A new entry on top: a new rendering; the old block lives on for its
     * two senders. */
    wh_gb_entry e3[3] = {
        {.id = "6-0", .id_len = 3, .name = "c", .name_len = 1, .msg = "three", .msg_len = 5},
        e[0],
        e[1]};
    wh_gb_block *b3 = wh_gb_cache_get(&c, e3, 3);
    CHECK(b3 && b3 != b1);
    CHECK_EQ(c.renders, 2);
    CHECK(!memcmp(wh_gb_block_data(b1, &len), want.data, want.len)); /* still intact */
    wh_gb_block_release(b1);
    wh_gb_block_release(b2); /* the old block is freed here (ASan: no leak, no reuse) */
    /* Fewer entries (one deleted), or the same count with another ID: new. */
    wh_gb_block *b5 = wh_gb_cache_get(&c, e3, 2);
    CHECK(b5 != NULL && b5 != b3);
    CHECK_EQ(c.renders, 3);
    wh_gb_block_release(b5);
    wh_gb_entry other[2] = {e3[0], e[1]};
    wh_gb_block *b4 = wh_gb_cache_get(&c, other, 2);
    CHECK_EQ(c.renders, 4);
    wh_gb_block_release(b3);
    wh_gb_cache_free(&c);
    /* The cache let go; a sender still holds b4. */
    CHECK(strstr(wh_gb_block_data(b4, &len), "three") != NULL);
    wh_gb_block_release(b4);
    wh_gb_buf_free(&want);
}

WH_TEST_MAIN()
