/* More than 10,000 fds: 6,000 socketpairs = 12,000 fds (the hard cap here is
 * 20,000), all readable at once; every callback fires exactly once. */
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_internal.h"
#include "test.h"

#define PAIRS 6000

static int (*pairs)[2];
static unsigned char *hits;
static int total;

static void cb(wh_io *io, unsigned ev, void *ud)
{
    int i = (int)(intptr_t)ud;
    char buf[8];
    /* Drain so level-triggered interest goes quiet. */
    while (read(wh_io_fd(io), buf, sizeof buf) > 0)
        ;
    hits[i]++;
    total++;
}

TEST(twelve_thousand_fds)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * PAIRS + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 2 * PAIRS + 64) {
        fprintf(stderr, "  skipped: RLIMIT_NOFILE %llu < %d\n", (unsigned long long)rl.rlim_cur,
                2 * PAIRS + 64);
        return;
    }
    pairs = calloc(PAIRS, sizeof(*pairs));
    hits = calloc(PAIRS, 1);
    wh_io **ios = calloc(PAIRS, sizeof(*ios));
    CHECK(pairs && hits && ios);
    wh_loop *loop;
    CHECK_EQ(wh_loop_new(&loop, NULL), 0);
    for (int i = 0; i < PAIRS; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pairs[i]), 0);
        CHECK_EQ(wh_io_new(loop, pairs[i][0], cb, (void *)(intptr_t)i, &ios[i]), 0);
        CHECK_EQ(wh_io_set(ios[i], WH_IO_READ), 0);
    }
    CHECK(pairs[PAIRS - 1][1] > 10000);
    for (int i = 0; i < PAIRS; i++)
        CHECK_EQ(write(pairs[i][1], "x", 1), 1);
    /* 256 events per poll: 24 iterations; a few spare. */
    for (int it = 0; it < 100 && total < PAIRS; it++)
        CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(total, PAIRS);
    for (int i = 0; i < PAIRS; i++)
        CHECK_EQ(hits[i], 1);
    CHECK_EQ(wh_loop_run(loop, WH_RUN_NOWAIT), 0);
    CHECK_EQ(total, PAIRS);
    for (int i = 0; i < PAIRS; i++) {
        wh_io_free(ios[i]);
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    wh_loop_free(loop);
    free(ios);
    free(pairs);
    free(hits);
}

WH_TEST_MAIN()
