/* Address strings: parse and format round trips, refusals. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "net/net_internal.h"
#include "test.h"

static int roundtrip(const char *in, const char *want, enum wh_addr_kind want_kind)
{
    wh_sockaddr a;
    enum wh_addr_kind k = 0;
    char buf[160];
    if (wh_addr_parse(in, &a, &k) != 0) return 1;
    if (k != want_kind) return 2;
    if (wh_addr_format(&a, buf, sizeof(buf)) < 0) return 3;
    if (strcmp(buf, want) != 0) {
        fprintf(stderr, "format(%s) = %s, want %s\n", in, buf, want);
        return 4;
    }
    return 0;
}

TEST(ipv4)
{
    CHECK_EQ(roundtrip("127.0.0.1:8080", "127.0.0.1:8080", WH_ADDR_TCP), 0);
    CHECK_EQ(roundtrip("0.0.0.0:0", "0.0.0.0:0", WH_ADDR_TCP), 0);
    CHECK_EQ(roundtrip("tcp://10.1.2.3:65535", "10.1.2.3:65535", WH_ADDR_TCP), 0);
    CHECK_EQ(roundtrip("udp://0.0.0.0:9000", "0.0.0.0:9000", WH_ADDR_UDP), 0);
    wh_sockaddr a;
    CHECK_EQ(wh_addr_parse("1.2.3.4:80", &a, NULL), 0);
    const struct sockaddr_in *in = (const struct sockaddr_in *)a.u.raw;
    CHECK_EQ(in->sin_family, AF_INET);
    CHECK_EQ(ntohs(in->sin_port), 80);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in));
}

TEST(ipv6)
{
    CHECK_EQ(roundtrip("[::1]:80", "[::1]:80", WH_ADDR_TCP), 0);
    CHECK_EQ(roundtrip("[::]:9000", "[::]:9000", WH_ADDR_TCP), 0);
    CHECK_EQ(roundtrip("udp://[2001:db8::1]:53", "[2001:db8::1]:53", WH_ADDR_UDP), 0);
    CHECK_EQ(roundtrip("[fe80::1%1]:80", "[fe80::1%1]:80", WH_ADDR_TCP), 0);
    wh_sockaddr a;
    CHECK_EQ(wh_addr_parse("[::ffff:1.2.3.4]:1", &a, NULL), 0);
    CHECK_EQ(a.u.sa.family, AF_INET6);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in6));
}

TEST(unix_paths)
{
    CHECK_EQ(roundtrip("unix:/tmp/x.sock", "unix:/tmp/x.sock", WH_ADDR_UNIX), 0);
    CHECK_EQ(roundtrip("unix:@wharf-test", "unix:@wharf-test", WH_ADDR_UNIX), 0);
    wh_sockaddr a;
    CHECK_EQ(wh_addr_parse("unix:@ab", &a, NULL), 0);
    const struct sockaddr_un *un = (const struct sockaddr_un *)a.u.raw;
    CHECK_EQ(un->sun_path[0], 0);
    CHECK_EQ(a.len, offsetof(struct sockaddr_un, sun_path) + 3);
    char longp[200];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "unix:/", 6);
    longp[sizeof(longp) - 1] = 0;
    CHECK_EQ(wh_addr_parse(longp, &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("unix:", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("unix:@", &a, NULL), -EINVAL);
}

TEST(refusals)
{
    wh_sockaddr a;
    /* numeric only: a name would need a blocking resolver on the loop */
    CHECK_EQ(wh_addr_parse("localhost:80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("example.com:80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("127.0.0.1", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("127.0.0.1:", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("127.0.0.1:65536", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("127.0.0.1:-1", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("127.0.0.1:8x", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("127.1:80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("::1:80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("[::1]80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("[::1:80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("[]:80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse(":80", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("", &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse(NULL, &a, NULL), -EINVAL);
    CHECK_EQ(wh_addr_parse("udp://localhost:53", &a, NULL), -EINVAL);
}

TEST(format_space)
{
    wh_sockaddr a;
    char buf[8];
    CHECK_EQ(wh_addr_parse("127.0.0.1:8080", &a, NULL), 0);
    CHECK_EQ(wh_addr_format(&a, buf, sizeof(buf)), -ENOSPC);
    char big[32];
    CHECK_EQ(wh_addr_format(&a, big, sizeof(big)), 14);
}

WH_TEST_MAIN()
