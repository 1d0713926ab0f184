/* PROXY protocol: the header parser and trusted lists (pure functions), and
 * the stage on accepted connections (a loop in the test process: the client
 * address becomes wh_conn_peer, protocol bytes are never taken by the
 * stage, refusals close before on_open and are reported with a reason). */
#include <stdlib.h>

#include "net/net_priv.h"
#include "net/proxy_internal.h"
#include "test.h"
#include "test_net_util.h"

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: cmd (0 LOCAL, 1 PROXY), fam byte, addr block, then tlv_len
 * bytes of TLVs (one NOOP TLV of that size minus 3, when >= 3). */
static size_t v2(uint8_t *out, unsigned ver_cmd, unsigned fam, const uint8_t *addr, size_t alen,
                 size_t tlv_len)
{
    memcpy(out, SIG, 12);
    out[12] = (uint8_t)ver_cmd;
    out[13] = (uint8_t)fam;
    size_t len = alen + tlv_len;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (alen) memcpy(out + 16, addr, alen);
    uint8_t *t = out + 16 + alen;
    if (tlv_len >= 3) {
        t[0] = 0x04; /* PP2_TYPE_NOOP */
        t[1] = (uint8_t)((tlv_len - 3) >> 8);
        t[2] = (uint8_t)(tlv_len - 3);
        memset(t + 3, 0xAB, tlv_len - 3);
    }
    return 16 + len;
}

static const uint8_t ADDR4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB};

static int fmt(const wh_sockaddr *a, char *buf)
{
    return wh_addr_format(a, buf, 128);
}

TEST(v1_tcp4_tcp6_unknown)
{
    wh__proxy_hdr h;
    char b[128];
    const char *s = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    CHECK_EQ(wh__proxy_parse(s, strlen(s), 536, &h), strlen(s) - 5);
    CHECK(h.version == 1 && h.has_addr);
    CHECK(fmt(&h.src, b) > 0 && !strcmp(b, "192.0.2.1:56324"));
    CHECK(fmt(&h.dst, b) > 0 && !strcmp(b, "198.51.100.2:443"));
    s = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    CHECK_EQ(wh__proxy_parse(s, strlen(s), 536, &h), strlen(s));
    CHECK(fmt(&h.src, b) > 0 && !strcmp(b, "[2001:db8::1]:1"));
    s = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    CHECK_EQ(wh__proxy_parse(s, strlen(s), 536, &h), strlen(s));
    CHECK(h.version == 1 && !h.has_addr);
    s = "PROXY UNKNOWN\r\n";
    CHECK_EQ(wh__proxy_parse(s, strlen(s), 536, &h), strlen(s));
}

TEST(v1_incomplete_then_complete)
{
    const char *s = "PROXY TCP4 10.1.2.3 10.0.0.1 1000 80\r\n";
    wh__proxy_hdr h;
    for (size_t i = 0; i < strlen(s); i++)
        CHECK_EQ(wh__proxy_parse(s, i, 536, &h), 0);
    CHECK_EQ(wh__proxy_parse(s, strlen(s), 536, &h), strlen(s));
}

TEST(v1_malformed)
{
    static const char *bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",       /* no CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",    /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", /* port range */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",    /* two spaces */
        "PROXY TCP4 ::1 ::2 1 2\r\n",             /* family mismatch */
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",     /* family mismatch */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",       /* missing field */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",   /* extra field */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",    /* trailing space */
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* protocol */
        "PROXY \r\n",                             /* empty */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",    /* sign */
        "PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",   /* address */
    };
    wh__proxy_hdr h;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = wh__proxy_parse(bad[i], strlen(bad[i]), 536, &h);
        if (r != -WH_PROXY_MALFORMED) fprintf(stderr, "case %zu: %d\n", i, r);
        CHECK_EQ(r, -WH_PROXY_MALFORMED);
    }
    /* 107 bytes and no line end: malformed, not "need more" forever. */
    char longl[200] = "PROXY UNKNOWN ";
    memset(longl + 14, 'x', sizeof(longl) - 15);
    CHECK_EQ(wh__proxy_parse(longl, 106, 536, &h), 0);
    CHECK_EQ(wh__proxy_parse(longl, 107, 536, &h), -WH_PROXY_MALFORMED);
}

TEST(missing_is_decided_early)
{
    wh__proxy_hdr h;
    CHECK_EQ(wh__proxy_parse("GET / HTTP/1.1\r\n", 16, 536, &h), -WH_PROXY_MISSING);
    CHECK_EQ(wh__proxy_parse("G", 1, 536, &h), -WH_PROXY_MISSING);
    CHECK_EQ(wh__proxy_parse("PROP", 4, 536, &h), -WH_PROXY_MISSING); /* PROPFIND */
    CHECK_EQ(wh__proxy_parse("PRO", 3, 536, &h), 0);
    CHECK_EQ(wh__proxy_parse("\x16\x03\x01", 3, 536, &h), -WH_PROXY_MISSING); /* TLS */
    CHECK_EQ(wh__proxy_parse("\r\n\r\n\x00\r\nQ", 8, 536, &h), 0);
    CHECK_EQ(wh__proxy_parse("\r\n\r\n\x00\r\nX", 8, 536, &h), -WH_PROXY_MISSING);
    CHECK_EQ(wh__proxy_parse("", 0, 536, &h), 0);
}

TEST(v2_inet_inet6_unix_tlvs)
{
    uint8_t b[1024];
    char s[128];
    wh__proxy_hdr h;
    size_t n = v2(b, 0x21, 0x11, ADDR4, 12, 0);
    b[n] = 'G'; /* a protocol byte right after must not be counted */
    CHECK_EQ(wh__proxy_parse(b, n + 1, 536, &h), 28);
    CHECK(h.version == 2 && h.has_addr);
    CHECK(fmt(&h.src, s) > 0 && !strcmp(s, "192.0.2.1:56324"));
    CHECK(fmt(&h.dst, s) > 0 && !strcmp(s, "198.51.100.2:443"));
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(wh__proxy_parse(b, i, 536, &h), 0);

    uint8_t a6[36] = {0x20, 0x01, 0x0d, 0xb8};
    a6[15] = 7;
    a6[31] = 1;
    a6[32] = 0x30;
    a6[33] = 0x39; /* 12345 */
    a6[35] = 80;
    n = v2(b, 0x21, 0x21, a6, 36, 40); /* with a TLV */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), n);
    CHECK(fmt(&h.src, s) > 0 && !strcmp(s, "[2001:db8::7]:12345"));

    uint8_t au[216] = {0};
    strcpy((char *)au, "/run/client.sock");
    strcpy((char *)au + 108, "/run/wharfd.sock");
    n = v2(b, 0x21, 0x31, au, 216, 0);
    CHECK_EQ(n, 232);
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), 232);
    CHECK(fmt(&h.src, s) > 0 && !strcmp(s, "unix:/run/client.sock"));

    /* Several TLVs, then exactly at the end. */
    n = v2(b, 0x21, 0x11, ADDR4, 12, 0);
    uint8_t tl[] = {0x01, 0x00, 0x02, 'h', '2', 0x02, 0x00, 0x00, 0x05, 0x00, 0x01, 0x42};
    memcpy(b + n, tl, sizeof tl);
    b[15] = (uint8_t)(12 + sizeof tl);
    CHECK_EQ(wh__proxy_parse(b, n + sizeof tl, 536, &h), n + sizeof tl);
    CHECK(h.has_addr);
}

TEST(v2_local_unspec_and_refusals)
{
    uint8_t b[1024];
    wh__proxy_hdr h;
    size_t n = v2(b, 0x20, 0x00, NULL, 0, 0); /* LOCAL, as HAProxy's health checks */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), 16);
    CHECK(h.version == 2 && !h.has_addr);
    n = v2(b, 0x20, 0x11, ADDR4, 12, 0); /* LOCAL with a block: still the socket's peer */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), 28);
    CHECK(!h.has_addr);
    n = v2(b, 0x21, 0x00, NULL, 0, 0); /* PROXY, UNSPEC */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), 16);
    CHECK(!h.has_addr);

    n = v2(b, 0x22, 0x11, ADDR4, 12, 0);
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_UNKNOWN_COMMAND);
    CHECK_EQ(wh__proxy_parse(b, 16, 536, &h), -WH_PROXY_UNKNOWN_COMMAND); /* known at once */
    n = v2(b, 0x2F, 0x11, ADDR4, 12, 0);
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_UNKNOWN_COMMAND);
    n = v2(b, 0x11, 0x11, ADDR4, 12, 0); /* version 1 in a v2 header */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_MALFORMED);
    n = v2(b, 0x21, 0x13, ADDR4, 12, 0); /* unknown transport */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_MALFORMED);
    n = v2(b, 0x21, 0x10, ADDR4, 12, 0); /* INET with UNSPEC transport */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_MALFORMED);
    n = v2(b, 0x21, 0x21, ADDR4, 12, 0); /* block too short for IPv6 */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_MALFORMED);
    n = v2(b, 0x21, 0x11, ADDR4, 12, 2); /* 2 stray bytes: not a TLV */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_MALFORMED);
    n = v2(b, 0x21, 0x11, ADDR4, 12, 10);
    b[16 + 12 + 2] = 8; /* TLV says 8, 7 are there */
    CHECK_EQ(wh__proxy_parse(b, n, 536, &h), -WH_PROXY_MALFORMED);
    n = v2(b, 0x21, 0x11, ADDR4, 12, 600); /* longer than the caller takes */
    CHECK_EQ(wh__proxy_parse(b, 16, 536, &h), -WH_PROXY_MALFORMED);
    CHECK_EQ(wh__proxy_parse(b, n, 1024, &h), n);
}

TEST(cidr_lists)
{
    wh__cidr v[8];
    CHECK_EQ(wh__cidr_parse("10.0.0.0/8, 192.168.1.7 ,::1,2001:db8::/32", v, 8), 4);
    CHECK_EQ(wh__cidr_parse("10.0.0.0/8,", v, 8), -EINVAL);
    CHECK_EQ(wh__cidr_parse("", v, 8), -EINVAL);
    CHECK_EQ(wh__cidr_parse("10.0.0.0/33", v, 8), -EINVAL);
    CHECK_EQ(wh__cidr_parse("::/129", v, 8), -EINVAL);
    CHECK_EQ(wh__cidr_parse("10.0.0.0/", v, 8), -EINVAL);
    CHECK_EQ(wh__cidr_parse("localhost", v, 8), -EINVAL);
    CHECK_EQ(wh__cidr_parse("1.1.1.1,2.2.2.2", v, 1), -E2BIG);
    CHECK_EQ(wh_net_proxy_trusted_check("127.0.0.0/8,::1"), 0);
    CHECK_EQ(wh_net_proxy_trusted_check("127.0.0.0/8;::1"), -EINVAL);

    int n = wh__cidr_parse("10.0.0.0/8,192.168.1.7,2001:db8::/33,0.0.0.0/0", v, 8);
    CHECK_EQ(n, 4);
    wh_sockaddr a;
    CHECK(wh_addr_parse("10.200.3.4:1", &a, NULL) == 0 && wh__cidr_match(v, 1, &a));
    CHECK(wh_addr_parse("11.0.0.1:1", &a, NULL) == 0 && !wh__cidr_match(v, 3, &a));
    CHECK(wh__cidr_match(v, 4, &a)); /* 0.0.0.0/0 */
    CHECK(wh_addr_parse("192.168.1.7:1", &a, NULL) == 0 && wh__cidr_match(v, 2, &a));
    CHECK(wh_addr_parse("192.168.1.8:1", &a, NULL) == 0 && !wh__cidr_match(v, 3, &a));
    CHECK(wh_addr_parse("[2001:db8:7fff::1]:1", &a, NULL) == 0 && wh__cidr_match(v, 3, &a));
    CHECK(wh_addr_parse("[2001:db8:8000::1]:1", &a, NULL) == 0 && !wh__cidr_match(v, 3, &a));
    /* A dual-stack listener sees IPv4 clients as mapped addresses. */
    CHECK(wh_addr_parse("[::ffff:10.1.1.1]:1", &a, NULL) == 0 && wh__cidr_match(v, 1, &a));
    CHECK(wh_addr_parse("unix:/x", &a, NULL) == 0 && !wh__cidr_match(v, 4, &a));
    CHECK(!strcmp(wh_proxy_reject_name(WH_PROXY_TIMEOUT), "timeout"));
    CHECK(!strcmp(wh_proxy_reject_name(99), "other"));
}

/* ---- the stage on a loop ------------------------------------------------ */

typedef struct psrv {
    int opens, closes, rejects[WH_PROXY_REJECT_MAX + 1];
    char peer[128], sock_peer[128], got[256];
    size_t got_len;
    wh_sockaddr reject_peer;
} psrv;

static void p_open(wh_conn *c, void *ud)
{
    psrv *s = ud;
    s->opens++;
    fmt(wh_conn_peer(c), s->peer);
    fmt(wh_conn_sock_peer(c), s->sock_peer);
}

static size_t p_read(wh_conn *c, char *d, size_t n, void *ud)
{
    psrv *s = ud;
    if (s->got_len + n < sizeof s->got) {
        memcpy(s->got + s->got_len, d, n);
        s->got_len += n;
    }
    wh_conn_write(c, d, n);
    return n;
}

static void p_close(wh_conn *c, int err, void *ud)
{
    psrv *s = ud;
    (void)c;
    (void)err;
    s->closes++;
}

static void p_reject(wh_loop *loop, const wh_sockaddr *peer, int reason, void *ud)
{
    psrv *s = ud;
    (void)loop;
    if (reason > 0 && reason <= WH_PROXY_REJECT_MAX) s->rejects[reason]++;
    s->reject_peer = *peer;
}

static const wh_conn_cbs p_cbs = {.on_open = p_open, .on_read = p_read, .on_close = p_close};

typedef struct fixture {
    wh_loop *loop;
    wh_listener *l;
    int lfd;
    psrv s;
} fixture;

static int fx_start(fixture *f, const char *addr, const char *trusted, uint32_t tmo)
{
    memset(f, 0, sizeof(*f));
    f->loop = tnu_loop();
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.proxy_protocol = 1;
    o.proxy_trusted = trusted;
    o.proxy_timeout_ms = tmo;
    o.proxy_on_reject = p_reject;
    o.proxy_ud = &f->s;
    f->l = tnu_listen(f->loop, addr, &o, &p_cbs, &f->s, &f->lfd);
    return f->l ? 0 : -1;
}

static void fx_stop(fixture *f)
{
    wh_listener_close(f->l);
    close(f->lfd);
    wh_loop_free(f->loop);
}

static int cond_open(void *a)
{
    return ((psrv *)a)->opens > 0;
}
static int cond_reject(void *a)
{
    psrv *s = a;
    int n = 0;
    for (int i = 0; i <= WH_PROXY_REJECT_MAX; i++)
        n += s->rejects[i];
    return n > 0;
}

/* Reads until EOF or 2 s; returns bytes (or -1 on reset). */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    double end = tnu_now() + 2;
    while (tnu_now() < end) {
        ssize_t r = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
        if (r == 0) return (ssize_t)got;
        if (r < 0 && errno != EAGAIN) return errno == ECONNRESET ? -1 : (ssize_t)got;
        if (r > 0) got += (size_t)r;
        usleep(1000);
    }
    return (ssize_t)got;
}

static void pump_ms(wh_loop *loop, int ms)
{
    double end = tnu_now() + ms / 1000.0;
    while (tnu_now() < end)
        wh_loop_run(loop, WH_RUN_ONCE);
}

TEST(stage_v1_then_data_in_one_send)
{
    fixture f;
    CHECK(fx_start(&f, "127.0.0.1:0", "127.0.0.0/8", 0) == 0);
    int fd = tnu_client(f.lfd);
    const char *m = "PROXY TCP4 203.0.113.9 10.0.0.1 40000 80\r\nhello";
    CHECK(send(fd, m, strlen(m), 0) == (ssize_t)strlen(m));
    CHECK(tnu_pump(f.loop, cond_open, &f.s));
    pump_ms(f.loop, 30);
    CHECK(!strcmp(f.s.peer, "203.0.113.9:40000"));
    CHECK(!strncmp(f.s.sock_peer, "127.0.0.1:", 10));
    CHECK_EQ(f.s.got_len, 5); /* the stage took the header and nothing after it */
    CHECK(!memcmp(f.s.got, "hello", 5));
    char buf[64];
    CHECK_EQ(recv(fd, buf, sizeof buf, 0), 5);
    close(fd);
    pump_ms(f.loop, 30);
    CHECK_EQ(f.s.closes, 1);
    fx_stop(&f);
}

TEST(stage_v2_byte_by_byte_ipv6_with_tlvs)
{
    fixture f;
    CHECK(fx_start(&f, "[::1]:0", NULL, 0) == 0);
    int fd = tnu_client(f.lfd);
    CHECK(fd >= 0);
    uint8_t b[512];
    uint8_t a6[36] = {0x20, 0x01, 0x0d, 0xb8};
    a6[15] = 9;
    a6[33] = 99;
    size_t n = v2(b, 0x21, 0x21, a6, 36, 100);
    memcpy(b + n, "ping", 4);
    for (size_t i = 0; i < n; i++) {
        CHECK(send(fd, b + i, 1, 0) == 1);
        pump_ms(f.loop, 1);
        /* The last byte completes the header: the conn may open then. */
        if (i + 1 < n) CHECK_EQ(f.s.opens, 0);
    }
    CHECK(send(fd, b + n, 4, 0) == 4);
    CHECK(tnu_pump(f.loop, cond_open, &f.s));
    pump_ms(f.loop, 20);
    CHECK(!strcmp(f.s.peer, "[2001:db8::9]:99"));
    CHECK_EQ(f.s.got_len, 4);
    close(fd);
    fx_stop(&f);
}

TEST(stage_local_keeps_socket_peer)
{
    fixture f;
    CHECK(fx_start(&f, "127.0.0.1:0", NULL, 0) == 0);
    int fd = tnu_client(f.lfd);
    uint8_t b[64];
    size_t n = v2(b, 0x20, 0x00, NULL, 0, 0);
    CHECK(send(fd, b, n, 0) == (ssize_t)n);
    CHECK(tnu_pump(f.loop, cond_open, &f.s));
    CHECK(!strcmp(f.s.peer, f.s.sock_peer));
    CHECK(!strncmp(f.s.peer, "127.0.0.1:", 10));
    close(fd);
    fx_stop(&f);
}

/* A refusal: no on_open or on_close for the protocol, the reason reported
 * once, and the client sees the connection end. */
static void refused(const char *trusted, const void *msg, size_t len, int reason, int *ok)
{
    fixture f;
    *ok = 0;
    if (fx_start(&f, "127.0.0.1:0", trusted, 0) < 0) return;
    int fd = tnu_client(f.lfd);
    if (len)
        (void)send(fd, msg, len, 0);
    else
        shutdown(fd, SHUT_WR);
    tnu_pump(f.loop, cond_reject, &f.s);
    pump_ms(f.loop, 20);
    char buf[64];
    ssize_t r = read_all(fd, buf, sizeof buf);
    char p[128];
    fmt(&f.s.reject_peer, p);
    *ok = f.s.rejects[reason] == 1 && f.s.opens == 0 && f.s.closes == 0 && r <= 0 &&
          !strncmp(p, "127.0.0.1:", 10);
    if (!*ok)
        fprintf(stderr, "reason %d: rejects %d opens %d closes %d read %zd peer %s\n", reason,
                f.s.rejects[reason], f.s.opens, f.s.closes, r, p);
    close(fd);
    fx_stop(&f);
}

TEST(stage_refusals)
{
    int ok;
    refused("10.0.0.0/8", "PROXY UNKNOWN\r\n", 15, WH_PROXY_UNTRUSTED, &ok);
    CHECK(ok);
    refused(NULL, "GET / HTTP/1.1\r\n\r\n", 18, WH_PROXY_MISSING, &ok);
    CHECK(ok);
    refused(NULL, NULL, 0, WH_PROXY_MISSING, &ok); /* EOF first */
    CHECK(ok);
    refused(NULL, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31, WH_PROXY_MALFORMED, &ok);
    CHECK(ok);
    uint8_t b[64];
    size_t n = v2(b, 0x23, 0x11, ADDR4, 12, 0);
    refused("127.0.0.1", b, n, WH_PROXY_UNKNOWN_COMMAND, &ok);
    CHECK(ok);
}

TEST(stage_truncated_then_eof)
{
    fixture f;
    CHECK(fx_start(&f, "127.0.0.1:0", NULL, 0) == 0);
    int fd = tnu_client(f.lfd);
    CHECK(send(fd, "PROXY TCP4 1.2", 14, 0) == 14);
    pump_ms(f.loop, 20);
    CHECK_EQ(f.s.opens, 0);
    shutdown(fd, SHUT_WR);
    CHECK(tnu_pump(f.loop, cond_reject, &f.s));
    CHECK_EQ(f.s.rejects[WH_PROXY_MALFORMED], 1);
    close(fd);
    fx_stop(&f);
}

TEST(stage_slow_header_times_out)
{
    fixture f;
    CHECK(fx_start(&f, "127.0.0.1:0", NULL, 300) == 0);
    int fd = tnu_client(f.lfd);
    double t0 = tnu_now();
    /* Trickle bytes: they must not extend the deadline. */
    const char *m = "PROXY TCP4 10.0.0.1 10.0.0.2 1000 80";
    for (size_t i = 0; i < strlen(m) && !cond_reject(&f.s); i++) {
        (void)send(fd, m + i, 1, MSG_NOSIGNAL);
        pump_ms(f.loop, 30);
    }
    CHECK(tnu_pump(f.loop, cond_reject, &f.s));
    double took = tnu_now() - t0;
    CHECK_EQ(f.s.rejects[WH_PROXY_TIMEOUT], 1);
    CHECK(took >= 0.29 && took < 1.0);
    CHECK_EQ(f.s.opens + f.s.closes, 0);
    close(fd);
    fx_stop(&f);
}

TEST(listen_rejects_bad_trusted_list)
{
    wh_loop *loop = tnu_loop();
    wh_net_opts o;
    wh_net_opts_init(&o);
    o.proxy_protocol = 1;
    o.proxy_trusted = "10.0.0.0/8,bogus";
    wh_listener *l = NULL;
    CHECK_EQ(wh_listen(loop, "127.0.0.1:0", &o, &p_cbs, NULL, &l), -EINVAL);
    o.proxy_trusted = "10.0.0.0/8";
    CHECK_EQ(wh_listen(loop, "127.0.0.1:0", &o, &p_cbs, NULL, &l), 0);
    wh_listener_close(l);
    wh_loop_free(loop);
}

TEST(conn_size_unchanged)
{
    /* The client address lives out of line (wh__conn_ext): conns that do
     * not use the PROXY protocol pay nothing. */
    CHECK(sizeof(struct wh_conn) <= WH__CONN_SIZE_MAX);
}

WH_TEST_MAIN()
