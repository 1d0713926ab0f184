/* The write queue (seed 003's scattered buffers): chunk sizes double, the
 * iovec layout follows the queue, partial writes consume exactly. */
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_segs_out (glibc's is older) */
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/net_internal.h"
#include "test.h"

static int done_calls;
static void on_done(void *arg)
{
    done_calls += (int)(intptr_t)arg;
}

TEST(chunks_double)
{
    wh__wq q;
    wh__wq_init(&q);
    char b[1] = {'x'};
    /* 1-byte writes: the first chunk is MIN bytes, each next twice as large */
    size_t total = 0;
    for (int i = 0; i < 256 + 512 + 1024 + 1; i++) {
        CHECK_EQ(wh__wq_copy(&q, b, 1), 0);
        total++;
    }
    CHECK_EQ(q.queued, total);
    CHECK_EQ(q.nsegs, 4);
    struct iovec iov[8];
    int n = wh__wq_iov(&q, iov, 8);
    CHECK_EQ(n, 4);
    CHECK_EQ(iov[0].iov_len, 256);
    CHECK_EQ(iov[1].iov_len, 512);
    CHECK_EQ(iov[2].iov_len, 1024);
    CHECK_EQ(iov[3].iov_len, 1);
    CHECK_EQ(q.next_chunk, 4096);
    wh__wq_clear(&q);
    CHECK_EQ(q.queued, 0);
}

TEST(chunk_cap)
{
    wh__wq q;
    wh__wq_init(&q);
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    CHECK_EQ(wh__wq_copy(&q, big, sizeof(big)), 0);
    /* one big write: chunks capped at MAX, so 16 chunks of 64 KiB */
    CHECK_EQ(q.nsegs, (1 << 20) / WH__WQ_MAX_CHUNK);
    struct iovec iov[64];
    int n = wh__wq_iov(&q, iov, 64);
    size_t sum = 0;
    for (int i = 0; i < n; i++) {
        CHECK(iov[i].iov_len <= WH__WQ_MAX_CHUNK);
        CHECK(memcmp(iov[i].iov_base, big + sum, iov[i].iov_len) == 0);
        sum += iov[i].iov_len;
    }
    CHECK_EQ(sum, sizeof(big));
    wh__wq_clear(&q);
}

TEST(one_write_fits_one_chunk)
{
    wh__wq q;
    wh__wq_init(&q);
    char buf[1024];
    memset(buf, 'a', sizeof(buf));
    CHECK_EQ(wh__wq_copy(&q, buf, sizeof(buf)), 0);
    CHECK_EQ(q.nsegs, 1); /* a 1 KiB reply is one chunk, not 256+512+256 */
    CHECK_EQ(wh__wq_copy(&q, buf, 10), 0);
    CHECK_EQ(q.nsegs, 2);
    wh__wq_clear(&q);
}

TEST(partial_consume_and_refs)
{
    wh__wq q;
    wh__wq_init(&q);
    done_calls = 0;
    CHECK_EQ(wh__wq_copy(&q, "hello ", 6), 0);
    CHECK_EQ(wh__wq_ref(&q, "big world", 9, on_done, (void *)1), 0);
    CHECK_EQ(wh__wq_copy(&q, "!", 1), 0);
    CHECK_EQ(q.queued, 16);
    struct iovec iov[8];
    CHECK_EQ(wh__wq_iov(&q, iov, 8), 3);
    wh__wq_consume(&q, 4); /* "hell" */
    CHECK_EQ(wh__wq_iov(&q, iov, 8), 3);
    CHECK_EQ(iov[0].iov_len, 2);
    CHECK(memcmp(iov[0].iov_base, "o ", 2) == 0);
    wh__wq_consume(&q, 5); /* "o " + "big" */
    CHECK_EQ(done_calls, 0);
    CHECK_EQ(wh__wq_iov(&q, iov, 8), 2);
    CHECK(memcmp(iov[0].iov_base, " world", 6) == 0);
    wh__wq_consume(&q, 6);
    CHECK_EQ(done_calls, 1); /* the ref segment is released once written */
    CHECK_EQ(q.queued, 1);
    CHECK_EQ(wh__wq_iov(&q, iov, 1), 1);
    CHECK(memcmp(iov[0].iov_base, "!", 1) == 0);
    wh__wq_consume(&q, 1);
    CHECK(q.head == NULL);
    CHECK_EQ(q.next_chunk, WH__WQ_MIN_CHUNK);
    /* clear releases pending refs too */
    CHECK_EQ(wh__wq_ref(&q, "x", 1, on_done, (void *)10), 0);
    wh__wq_clear(&q);
    CHECK_EQ(done_calls, 11);
}

TEST(write_to_socket_partial)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int sz = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    wh__wq q;
    wh__wq_init(&q);
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i % 251);
    CHECK_EQ(wh__wq_copy(&q, big, sizeof(big)), 0);
    size_t got = 0;
    static char rb[1 << 20];
    int rounds = 0;
    while (got < sizeof(big)) {
        bool again = false;
        ssize_t w = wh__wq_write(&q, sv[0], &again);
        CHECK(w >= 0);
        CHECK(again || q.queued == 0);
        ssize_t r;
        while ((r = read(sv[1], rb + got, sizeof(rb) - got)) > 0)
            got += (size_t)r;
        rounds++;
        CHECK(rounds < 100000);
    }
    CHECK(rounds > 1); /* the small socket buffer forced partial writes */
    CHECK(memcmp(rb, big, sizeof(big)) == 0);
    CHECK_EQ(q.queued, 0);
    close(sv[0]);
    close(sv[1]);
}

TEST(file_segment)
{
    char path[] = "/tmp/wh_wq_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    char data[10000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    CHECK_EQ(write(fd, data, sizeof(data)), (long long)sizeof(data));
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    wh__wq q;
    wh__wq_init(&q);
    CHECK_EQ(wh__wq_copy(&q, "HDR", 3), 0);
    CHECK_EQ(wh__wq_file(&q, fd, 100, 5000, true), 0);
    CHECK_EQ(wh__wq_copy(&q, "END", 3), 0);
    struct iovec iov[4];
    CHECK_EQ(wh__wq_iov(&q, iov, 4), 1); /* stops at the file segment */
    bool again;
    ssize_t w = wh__wq_write(&q, sv[0], &again);
    CHECK_EQ(w, 5006);
    CHECK_EQ(q.queued, 0);
    char rb[6000];
    ssize_t r = read(sv[1], rb, sizeof(rb));
    CHECK_EQ(r, 5006);
    CHECK(memcmp(rb, "HDR", 3) == 0);
    CHECK(memcmp(rb + 3, data + 100, 5000) == 0);
    CHECK(memcmp(rb + 5003, "END", 3) == 0);
    CHECK_EQ(fcntl(fd, F_GETFD), -1); /* close_fd: the queue closed it */
    close(sv[0]);
    close(sv[1]);
}

/* A connected TCP pair on loopback with TCP_NODELAY on the sender. */
static void tcp_pair(int sv[2])
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0)
        abort();
    sv[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(sv[1], (struct sockaddr *)&a, sizeof a) < 0) abort();
    sv[0] = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int one = 1;
    if (sv[0] < 0 || setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) abort();
    close(l);
}

static unsigned segs_out(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 ? ti.tcpi_segs_out : 0;
}

/* A response head queued before a file body leaves in the body's first
 * segment, not in a small segment of its own (TCP_NODELAY would send it
 * alone): head + body of exactly one MSS is one segment on the wire. */
TEST(head_before_file_shares_a_segment)
{
    int sv[2];
    tcp_pair(sv);
    int mss = 0;
    socklen_t ml = sizeof mss;
    CHECK_EQ(getsockopt(sv[0], IPPROTO_TCP, TCP_MAXSEG, &mss, &ml), 0);
    CHECK(mss > 200 && mss <= 65536);
    char path[] = "/tmp/wh_wq_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    static char body[65536];
    memset(body, 'b', sizeof body);
    CHECK_EQ(write(fd, body, (size_t)mss - 100), mss - 100);
    wh__wq q;
    wh__wq_init(&q);
    char head[100];
    memset(head, 'h', sizeof head);
    CHECK_EQ(wh__wq_copy(&q, head, sizeof head), 0);
    CHECK_EQ(wh__wq_file(&q, fd, 0, (size_t)mss - 100, true), 0);
    unsigned before = segs_out(sv[0]);
    bool again;
    CHECK_EQ(wh__wq_write(&q, sv[0], &again), mss);
    CHECK_EQ(segs_out(sv[0]) - before, 1);
    size_t got = 0;
    while (got < (size_t)mss) {
        ssize_t r = read(sv[1], body, sizeof body);
        CHECK(r > 0);
        got += (size_t)r;
    }
    CHECK_EQ(got, (size_t)mss);
    close(sv[0]);
    close(sv[1]);
}

/* The last reply of a connection about to close leaves with the FIN in one
 * segment (fin_follows: MSG_MORE holds it until shutdown/close sends both);
 * without the flag TCP_NODELAY sends it at once and the FIN needs a segment
 * of its own. One packet less per "Connection: close" exchange. */
TEST(last_reply_shares_the_fin_segment)
{
    for (int fin = 0; fin < 2; fin++) {
        int sv[2];
        tcp_pair(sv);
        wh__wq q;
        wh__wq_init(&q);
        CHECK_EQ(wh__wq_copy(&q, "HTTP/1.1 200 OK\r\n\r\n", 19), 0);
        q.fin_follows = fin;
        unsigned before = segs_out(sv[0]);
        bool again;
        CHECK_EQ(wh__wq_write(&q, sv[0], &again), 19);
        CHECK(!again);
        CHECK_EQ(segs_out(sv[0]) - before, fin ? 0u : 1u);
        CHECK_EQ(shutdown(sv[0], SHUT_WR), 0);
        CHECK_EQ(segs_out(sv[0]) - before, 1u + !fin);
        char in[64];
        size_t got = 0;
        for (ssize_t r; (r = read(sv[1], in + got, sizeof in - got)) > 0;)
            got += (size_t)r;
        CHECK_EQ(got, 19); /* then EOF */
        close(sv[0]);
        close(sv[1]);
    }
}

TEST(epipe_not_signal)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    close(sv[1]);
    wh__wq q;
    wh__wq_init(&q);
    CHECK_EQ(wh__wq_copy(&q, "x", 1), 0);
    bool again;
    /* MSG_NOSIGNAL: EPIPE comes back as an error, the process lives */
    CHECK_EQ(wh__wq_write(&q, sv[0], &again), -EPIPE);
    wh__wq_clear(&q);
    close(sv[0]);
}

WH_TEST_MAIN()
