/* The opening handshake checks (RFC 6455 §4.2): accept key, key format,
 * token lists, and the status for each kind of bad request. */
#include "test.h"

#include "ws/ws_internal.h"

static wh_str S(const char *s)
{
    return (wh_str){s, s ? strlen(s) : 0};
}

TEST(accept_key_rfc_example)
{
    /* RFC 6455 §1.3 (the value the RFC prints; openssl sha1 | base64 agrees) */
    char out[WH__WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    CHECK_EQ(wh__ws_accept_key(key, strlen(key), out), 0);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

TEST(accept_key_other)
{
    /* RFC 6455 §4.1's example key; value computed independently with
     * `printf '%s' 'x3JJHMbDL1EzLkh9GBhXDw==258EAFA5-E914-47DA-95CA-C5AB0DC85B11' |
     * openssl sha1 -binary | base64` */
    char out[WH__WS_ACCEPT_LEN + 1];
    const char *key = "x3JJHMbDL1EzLkh9GBhXDw==";
    CHECK_EQ(wh__ws_accept_key(key, strlen(key), out), 0);
    CHECK(strcmp(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
}

TEST(key_format)
{
    CHECK(wh__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
    CHECK(wh__ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA==", 24));
    CHECK(!wh__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));
    CHECK(!wh__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ===", 25));
    CHECK(!wh__ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA", 24)); /* 18 bytes, no padding */
    CHECK(!wh__ws_key_valid("dGhlIHNhbXBsZSBub25jZR==", 24)); /* non-canonical last symbol */
    CHECK(!wh__ws_key_valid("dGhlIHNhbXBsZSBub2!jZQ==", 24)); /* bad alphabet */
    CHECK(!wh__ws_key_valid("", 0));
    CHECK(!wh__ws_key_valid(NULL, 0));
    CHECK(!wh__ws_key_valid("aGVsbG8=", 8)); /* 5 bytes */
}

TEST(token_lists)
{
    CHECK(wh__ws_list_has(S("Upgrade"), "upgrade"));
    CHECK(wh__ws_list_has(S("keep-alive, Upgrade"), "upgrade"));
    CHECK(wh__ws_list_has(S("keep-alive,upgrade "), "upgrade"));
    CHECK(!wh__ws_list_has(S("keep-alive"), "upgrade"));
    CHECK(!wh__ws_list_has(S("upgrades"), "upgrade"));
    CHECK(!wh__ws_list_has((wh_str){NULL, 0}, "upgrade"));
    wh_str items[4];
    CHECK_EQ(wh__ws_list_split(S(" chat , superchat,,v2 "), items, 4), 3);
    CHECK(items[0].len == 4 && memcmp(items[0].p, "chat", 4) == 0);
    CHECK(items[1].len == 9 && memcmp(items[1].p, "superchat", 9) == 0);
    CHECK(items[2].len == 2 && memcmp(items[2].p, "v2", 2) == 0);
}

static wh__ws_hs good(void)
{
    wh__ws_hs hs = {S("GET"), 11, true, true, S("13"), S("dGhlIHNhbXBsZSBub25jZQ==")};
    return hs;
}

TEST(handshake_status)
{
    wh__ws_hs hs = good();
    CHECK_EQ(wh__ws_handshake_check(&hs), 0);
    hs = good();
    hs.method = S("POST");
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.method = S("get");
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.version = 10;
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.upgrade_ws = false;
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.connection_up = false;
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.key = (wh_str){NULL, 0};
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.key = S("short");
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
    hs = good();
    hs.ws_version = S("8");
    CHECK_EQ(wh__ws_handshake_check(&hs), 426);
    hs = good();
    hs.ws_version = S("14");
    CHECK_EQ(wh__ws_handshake_check(&hs), 426);
    hs = good();
    hs.ws_version = (wh_str){NULL, 0};
    CHECK_EQ(wh__ws_handshake_check(&hs), 400);
}

WH_TEST_MAIN()
