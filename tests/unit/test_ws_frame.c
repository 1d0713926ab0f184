/* WebSocket framing: the incremental reader at every split point, the
 * writer, the §5 rules (masking, RSV, opcodes, control frames, fragmentation,
 * lengths) and close payloads. */
#include "test.h"

#include "ws/ws_internal.h"

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends one frame (masked like a client's when mask) to out. */
static size_t mk(uint8_t *out, unsigned op, bool fin, const void *pl, size_t n, bool mask)
{
    size_t h = wh__ws_frame_header(out, op, fin, n, mask ? KEY : NULL);
    if (n) memcpy(out + h, pl, n);
    if (mask) wh__ws_mask(out + h, n, KEY, 0);
    return h + n;
}

typedef struct ev_rec {
    int type;
    unsigned op;
    int code;
    size_t len;
    uint64_t hash;
} ev_rec;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Feeds buf in pieces at the given cut points; records events. Returns the count. */
static int run(wh__ws_reader *r, uint8_t *buf, size_t len, const size_t *cuts, int ncuts,
               ev_rec *out, int max)
{
    int k = 0;
    size_t start = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t pos = start;
        for (;;) {
            wh__ws_event ev;
            size_t used = 0;
            int t = wh__ws_reader_next(r, buf + pos, end - pos, &used, &ev);
            if (used > end - pos) return -1;
            pos += used;
            if (t == WH__WS_EV_NONE) {
                if (pos != end) return -1;
                break;
            }
            if (k < max)
                out[k++] =
                    (ev_rec){t, ev.opcode, ev.code, ev.len, ev.data ? fnv(ev.data, ev.len) : 0};
            if (t == WH__WS_EV_ERROR) return k;
            if (pos == end && t != WH__WS_EV_NONE) continue; /* a final call must report NONE */
        }
        start = end;
    }
    return k;
}

static uint8_t big[70000];

/* The reference stream: text, a fragmented text with a ping in the middle,
 * a 16-bit length binary, an empty text, pong, close. */
static size_t ref_stream(uint8_t *s)
{
    size_t n = 0;
    uint8_t bin[300];
    for (int i = 0; i < 300; i++)
        bin[i] = (uint8_t)(i * 7);
    n += mk(s + n, WH_WS_OP_TEXT, true, "Hello", 5, true);
    n += mk(s + n, WH_WS_OP_TEXT, false, "Hel", 3, true);
    n += mk(s + n, WH_WS_OP_PING, true, "p", 1, true);
    n += mk(s + n, WH_WS_OP_CONT, false, "\xce", 1, true); /* UTF-8 split over fragments */
    n += mk(s + n, WH_WS_OP_CONT, true, "\xbalo", 3, true);
    n += mk(s + n, WH_WS_OP_BINARY, true, bin, sizeof bin, true);
    n += mk(s + n, WH_WS_OP_TEXT, true, "", 0, true);
    n += mk(s + n, WH_WS_OP_PONG, true, "", 0, true);
    uint8_t cl[WH__WS_MAX_CONTROL];
    size_t cn = wh__ws_close_payload(cl, 1000, "bye", 3);
    n += mk(s + n, WH_WS_OP_CLOSE, true, cl, cn, true);
    return n;
}

static void ref_events(ev_rec *e)
{
    uint8_t bin[300];
    for (int i = 0; i < 300; i++)
        bin[i] = (uint8_t)(i * 7);
    e[0] = (ev_rec){WH__WS_EV_MESSAGE, WH_WS_OP_TEXT, 0, 5, fnv((const uint8_t *)"Hello", 5)};
    e[1] = (ev_rec){WH__WS_EV_PING, 0, 0, 1, fnv((const uint8_t *)"p", 1)};
    e[2] =
        (ev_rec){WH__WS_EV_MESSAGE, WH_WS_OP_TEXT, 0, 7, fnv((const uint8_t *)"Hel\xce\xbalo", 7)};
    e[3] = (ev_rec){WH__WS_EV_MESSAGE, WH_WS_OP_BINARY, 0, 300, fnv(bin, 300)};
    e[4] = (ev_rec){WH__WS_EV_MESSAGE, WH_WS_OP_TEXT, 0, 0, fnv((const uint8_t *)"", 0)};
    e[5] = (ev_rec){WH__WS_EV_PONG, 0, 0, 0, fnv((const uint8_t *)"", 0)};
    e[6] = (ev_rec){WH__WS_EV_CLOSE, 0, 1000, 3, fnv((const uint8_t *)"bye", 3)};
}

static bool same(const ev_rec *a, const ev_rec *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].type != b[i].type || a[i].op != b[i].op || a[i].code != b[i].code ||
            a[i].len != b[i].len || a[i].hash != b[i].hash)
            return false;
    return true;
}

TEST(whole_stream)
{
    uint8_t s[1024];
    size_t n = ref_stream(s);
    ev_rec got[16], want[7];
    ref_events(want);
    wh__ws_reader r;
    wh__ws_reader_init(&r, false, 1 << 20);
    CHECK_EQ(run(&r, s, n, NULL, 0, got, 16), 7);
    CHECK(same(got, want, 7));
    wh__ws_reader_free(&r);
}

TEST(every_split_point)
{
    uint8_t ref[1024], s[1024];
    size_t n = ref_stream(ref);
    ev_rec got[16], want[7];
    ref_events(want);
    for (size_t cut = 0; cut <= n; cut++) {
        memcpy(s, ref, n);
        wh__ws_reader r;
        wh__ws_reader_init(&r, false, 1 << 20);
        CHECK_EQ(run(&r, s, n, &cut, 1, got, 16), 7);
        CHECK(same(got, want, 7));
        wh__ws_reader_free(&r);
    }
}

TEST(every_pair_of_split_points)
{
    uint8_t ref[1024], s[1024];
    size_t n = ref_stream(ref);
    ev_rec got[16], want[7];
    ref_events(want);
    for (size_t a = 0; a <= n; a += 3) {
        for (size_t b = a; b <= n; b++) {
            size_t cuts[2] = {a, b};
            memcpy(s, ref, n);
            wh__ws_reader r;
            wh__ws_reader_init(&r, false, 1 << 20);
            CHECK_EQ(run(&r, s, n, cuts, 2, got, 16), 7);
            CHECK(same(got, want, 7));
            wh__ws_reader_free(&r);
        }
    }
}

TEST(byte_by_byte)
{
    uint8_t ref[1024], s[1024];
    size_t n = ref_stream(ref);
    memcpy(s, ref, n);
    size_t cuts[1024];
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    ev_rec got[16], want[7];
    ref_events(want);
    wh__ws_reader r;
    wh__ws_reader_init(&r, false, 1 << 20);
    CHECK_EQ(run(&r, s, n, cuts, (int)n, got, 16), 7);
    CHECK(same(got, want, 7));
    wh__ws_reader_free(&r);
}

TEST(length_64bit)
{
    static uint8_t s[sizeof big + 64], ref[sizeof big + 64];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + (i >> 8));
    size_t n = mk(ref, WH_WS_OP_BINARY, true, big, sizeof big, true);
    CHECK_EQ(ref[1], 0x80 | 127);
    CHECK_EQ(n, sizeof big + 14);
    /* Splits inside the header, at the payload start and in the payload. */
    size_t cutset[] = {0, 1, 2, 5, 9, 10, 11, 13, 14, 15, 100, 65536, n - 1, n};
    for (size_t i = 0; i < sizeof cutset / sizeof cutset[0]; i++) {
        memcpy(s, ref, n);
        ev_rec got[4];
        wh__ws_reader r;
        wh__ws_reader_init(&r, false, 1 << 20);
        CHECK_EQ(run(&r, s, n, &cutset[i], 1, got, 4), 1);
        CHECK_EQ(got[0].type, WH__WS_EV_MESSAGE);
        CHECK_EQ(got[0].len, sizeof big);
        CHECK(got[0].hash == fnv(big, sizeof big));
        wh__ws_reader_free(&r);
    }
}

TEST(fragmented_large_message)
{
    /* 1 MiB in 4 KiB fragments fed in 1000-byte reads; max exactly 1 MiB. */
    size_t total = 1 << 20, frag = 4096;
    uint8_t *payload = malloc(total), *s = malloc(total + (total / frag) * 14 + 14);
    for (size_t i = 0; i < total; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    size_t n = 0;
    for (size_t off = 0; off < total; off += frag)
        n += mk(s + n, off ? WH_WS_OP_CONT : WH_WS_OP_TEXT, off + frag >= total, payload + off,
                frag, true);
    wh__ws_reader r;
    wh__ws_reader_init(&r, false, total);
    size_t pos = 0;
    int msgs = 0;
    while (pos < n) {
        size_t chunk = n - pos < 1000 ? n - pos : 1000, used;
        wh__ws_event ev;
        int t = wh__ws_reader_next(&r, s + pos, chunk, &used, &ev);
        CHECK(t == WH__WS_EV_NONE || t == WH__WS_EV_MESSAGE);
        if (t == WH__WS_EV_MESSAGE) {
            CHECK_EQ(ev.len, total);
            CHECK(memcmp(ev.data, payload, total) == 0);
            msgs++;
        }
        pos += used;
    }
    wh__ws_reader_free(&r);
    free(payload);
    free(s);
    CHECK_EQ(msgs, 1);

    /* Total over the maximum -> 1009 at the header of the fragment that crosses it. */
    static uint8_t f[2 * 4096 + 64], zero[4096];
    size_t fn = mk(f, WH_WS_OP_BINARY, false, zero, 4096, true);
    fn += wh__ws_frame_header(f + fn, WH_WS_OP_CONT, true, 4096, KEY);
    wh__ws_reader_init(&r, false, 8191);
    wh__ws_event ev;
    size_t used;
    int t1 = wh__ws_reader_next(&r, f, fn, &used, &ev);
    wh__ws_reader_free(&r);
    CHECK_EQ(t1, WH__WS_EV_ERROR);
    CHECK_EQ(ev.code, 1009);
}

/* Feeds raw bytes and returns the first non-NONE event's code (or type). */
static int first_error(bool client, size_t max, const uint8_t *raw, size_t n)
{
    uint8_t buf[512];
    memcpy(buf, raw, n);
    wh__ws_reader r;
    wh__ws_reader_init(&r, client, max);
    size_t pos = 0;
    int code = 0;
    while (pos <= n) {
        wh__ws_event ev;
        size_t used;
        int t = wh__ws_reader_next(&r, buf + pos, n - pos, &used, &ev);
        pos += used;
        if (t == WH__WS_EV_ERROR) {
            code = ev.code;
            /* sticky */
            size_t u2;
            if (wh__ws_reader_next(&r, buf, 0, &u2, &ev) != WH__WS_EV_ERROR || ev.code != code)
                code = -1;
            break;
        }
        if (t == WH__WS_EV_NONE) break;
    }
    wh__ws_reader_free(&r);
    return code;
}

static int err_frames(const uint8_t *raw, size_t n)
{
    return first_error(false, 1000, raw, n);
}

TEST(protocol_errors)
{
    uint8_t f[256];
    size_t n;
    /* unmasked client frame */
    n = mk(f, WH_WS_OP_TEXT, true, "hi", 2, false);
    CHECK_EQ(err_frames(f, n), 1002);
    /* masked server frame, read by a client */
    n = mk(f, WH_WS_OP_TEXT, true, "hi", 2, true);
    CHECK_EQ(first_error(true, 1000, f, n), 1002);
    n = mk(f, WH_WS_OP_TEXT, true, "hi", 2, false);
    CHECK_EQ(first_error(true, 1000, f, n), 0);
    /* RSV1, RSV2, RSV3 */
    for (int b = 0x10; b <= 0x40; b <<= 1) {
        n = mk(f, WH_WS_OP_TEXT, true, "hi", 2, true);
        f[0] |= (uint8_t)b;
        CHECK_EQ(err_frames(f, n), 1002);
    }
    /* reserved opcodes */
    unsigned bad_ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof bad_ops / sizeof bad_ops[0]; i++) {
        n = mk(f, bad_ops[i], true, "", 0, true);
        CHECK_EQ(err_frames(f, n), 1002);
    }
    /* control frame of 126 bytes, fragmented ping */
    uint8_t pl[200] = {0};
    n = mk(f, WH_WS_OP_PING, true, pl, 126, true);
    CHECK_EQ(err_frames(f, n), 1002);
    n = mk(f, WH_WS_OP_PING, true, pl, 125, true);
    CHECK_EQ(err_frames(f, n), 0);
    n = mk(f, WH_WS_OP_PING, false, "x", 1, true);
    CHECK_EQ(err_frames(f, n), 1002);
    /* continuation without a start; new message inside a fragmented one */
    n = mk(f, WH_WS_OP_CONT, true, "x", 1, true);
    CHECK_EQ(err_frames(f, n), 1002);
    n = mk(f, WH_WS_OP_TEXT, false, "a", 1, true);
    n += mk(f + n, WH_WS_OP_BINARY, true, "b", 1, true);
    CHECK_EQ(err_frames(f, n), 1002);
    /* non-minimal lengths, top bit of a 64-bit length */
    uint8_t nm16[] = {0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4};
    CHECK_EQ(err_frames(nm16, sizeof nm16), 1002);
    uint8_t nm64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 1, 2, 3, 4};
    CHECK_EQ(err_frames(nm64, sizeof nm64), 1002);
    uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK_EQ(err_frames(top, sizeof top), 1002);
    /* too big: single frame and a fragmented total (max 1000) */
    uint8_t big16[] = {0x82, 0xFE, 0x03, 0xE9, 1, 2, 3, 4}; /* 1001 */
    CHECK_EQ(err_frames(big16, sizeof big16), 1009);
    n = mk(f, WH_WS_OP_BINARY, false, pl, 100, true);
    uint8_t h[14];
    size_t hn = wh__ws_frame_header(h, WH_WS_OP_CONT, true, 901, KEY);
    memcpy(f + n, h, hn);
    CHECK_EQ(err_frames(f, n + hn), 1009);
    /* invalid UTF-8: in one frame, across fragments, truncated at the end */
    n = mk(f, WH_WS_OP_TEXT, true, "a\xc0\xafz", 4, true);
    CHECK_EQ(err_frames(f, n), 1007);
    n = mk(f, WH_WS_OP_TEXT, false, "ok\xe2\x82", 4, true);
    n += mk(f + n, WH_WS_OP_CONT, true, "\x41", 1, true);
    CHECK_EQ(err_frames(f, n), 1007);
    n = mk(f, WH_WS_OP_TEXT, false, "ok", 2, true);
    n += mk(f + n, WH_WS_OP_CONT, true, "\xe2\x82", 2, true);
    CHECK_EQ(err_frames(f, n), 1007);
    /* fail fast: the bad byte is reported before the frame completes */
    n = mk(f, WH_WS_OP_TEXT, true, "\xff-rest-of-a-long-frame", 22, true);
    CHECK_EQ(err_frames(f, 8), 1007);
    /* binary is not checked */
    n = mk(f, WH_WS_OP_BINARY, true, "\xff\xfe", 2, true);
    CHECK_EQ(err_frames(f, n), 0);
}

static int close_result(const uint8_t *pl, size_t pn, int *code)
{
    uint8_t f[256];
    size_t n = mk(f, WH_WS_OP_CLOSE, true, pl, pn, true);
    wh__ws_reader r;
    wh__ws_reader_init(&r, false, 1000);
    wh__ws_event ev;
    size_t used;
    int t = wh__ws_reader_next(&r, f, n, &used, &ev);
    *code = ev.code;
    wh__ws_reader_free(&r);
    return t;
}

TEST(close_frames)
{
    int code;
    CHECK_EQ(close_result((const uint8_t *)"", 0, &code), WH__WS_EV_CLOSE);
    CHECK_EQ(code, 1005);
    CHECK_EQ(close_result((const uint8_t *)"\x03", 1, &code), WH__WS_EV_ERROR);
    CHECK_EQ(code, 1002);
    int ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t p[2] = {(uint8_t)(ok[i] >> 8), (uint8_t)ok[i]};
        CHECK_EQ(close_result(p, 2, &code), WH__WS_EV_CLOSE);
        CHECK_EQ(code, ok[i]);
        CHECK(wh__ws_close_code_ok(ok[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        CHECK_EQ(close_result(p, 2, &code), WH__WS_EV_ERROR);
        CHECK_EQ(code, 1002);
        CHECK(!wh__ws_close_code_ok(bad[i]));
    }
    CHECK_EQ(close_result((const uint8_t *)"\x03\xe8\xff", 3, &code), WH__WS_EV_ERROR);
    CHECK_EQ(code, 1007);
    CHECK_EQ(close_result((const uint8_t *)"\x03\xe8ok \xc3\xa9", 7, &code), WH__WS_EV_CLOSE);
    CHECK_EQ(code, 1000);
}

TEST(close_payload_truncates_on_char_boundary)
{
    char reason[200];
    /* 'é' is 2 bytes; 61 of them = 122 bytes, then one more crosses 123. */
    size_t n = 0;
    for (int i = 0; i < 70; i++) {
        reason[n++] = (char)0xc3;
        reason[n++] = (char)0xa9;
    }
    uint8_t out[WH__WS_MAX_CONTROL];
    size_t len = wh__ws_close_payload(out, 1001, reason, n);
    CHECK_EQ(len, 2 + 122);
    CHECK_EQ(out[0], 0x03);
    CHECK_EQ(out[1], 0xE9);
    CHECK(wh_utf8_valid(out + 2, len - 2));
    CHECK_EQ(wh__ws_close_payload(out, 1000, NULL, 0), 2);
}

TEST(writer_headers)
{
    uint8_t h[14];
    CHECK_EQ(wh__ws_frame_header(h, WH_WS_OP_TEXT, true, 0, NULL), 2);
    CHECK_EQ(h[0], 0x81);
    CHECK_EQ(h[1], 0x00);
    CHECK_EQ(wh__ws_frame_header(h, WH_WS_OP_BINARY, true, 125, NULL), 2);
    CHECK_EQ(h[0], 0x82);
    CHECK_EQ(h[1], 125);
    CHECK_EQ(wh__ws_frame_header(h, WH_WS_OP_BINARY, false, 126, NULL), 4);
    CHECK_EQ(h[0], 0x02);
    CHECK_EQ(h[1], 126);
    CHECK_EQ(h[2], 0);
    CHECK_EQ(h[3], 126);
    CHECK_EQ(wh__ws_frame_header(h, WH_WS_OP_BINARY, true, 65535, NULL), 4);
    CHECK_EQ(h[2], 0xFF);
    CHECK_EQ(h[3], 0xFF);
    CHECK_EQ(wh__ws_frame_header(h, WH_WS_OP_BINARY, true, 65536, NULL), 10);
    CHECK_EQ(h[1], 127);
    CHECK_EQ(h[2] | h[3] | h[4] | h[5] | h[6], 0);
    CHECK_EQ(h[7], 1);
    CHECK_EQ(h[8] | h[9], 0);
    CHECK_EQ(wh__ws_frame_header(h, WH_WS_OP_PING, true, 5, KEY), 6);
    CHECK_EQ(h[1], 0x85);
    CHECK(memcmp(h + 2, KEY, 4) == 0);
    /* RFC 6455 §5.7 examples: unmasked "Hello" and a masked one. */
    uint8_t f[32];
    size_t n = mk(f, WH_WS_OP_TEXT, true, "Hello", 5, false);
    const uint8_t ex1[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    CHECK_EQ(n, sizeof ex1);
    CHECK(memcmp(f, ex1, n) == 0);
    const uint8_t key2[4] = {0x37, 0xfa, 0x21, 0x3d};
    const uint8_t ex2[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    n = wh__ws_frame_header(f, WH_WS_OP_TEXT, true, 5, key2);
    memcpy(f + n, "Hello", 5);
    wh__ws_mask(f + n, 5, key2, 0);
    CHECK(memcmp(f, ex2, sizeof ex2) == 0);
}

TEST(server_frames_roundtrip_through_client_reader)
{
    static uint8_t s[sizeof big + 64];
    size_t lens[] = {0, 1, 125, 126, 65535, 65536, sizeof big};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = mk(s, WH_WS_OP_BINARY, true, big, lens[i], false);
        wh__ws_reader r;
        wh__ws_reader_init(&r, true, 1 << 20);
        ev_rec got[2];
        CHECK_EQ(run(&r, s, n, NULL, 0, got, 2), 1);
        CHECK_EQ(got[0].len, lens[i]);
        CHECK(got[0].hash == fnv(big, lens[i]));
        wh__ws_reader_free(&r);
    }
}

TEST(mask_offsets)
{
    /* Masking in pieces at any offset equals masking in one go. */
    uint8_t a[100], b[100];
    for (int i = 0; i < 100; i++)
        a[i] = b[i] = (uint8_t)i;
    wh__ws_mask(a, 100, KEY, 0);
    for (size_t cut = 0; cut <= 100; cut++) {
        uint8_t c[100];
        memcpy(c, b, 100);
        wh__ws_mask(c, cut, KEY, 0);
        wh__ws_mask(c + cut, 100 - cut, KEY, cut);
        CHECK(memcmp(a, c, 100) == 0);
    }
}

WH_TEST_MAIN()
