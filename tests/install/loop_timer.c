/* Installed-library consumer: one timer on a bare loop. Checks that the
 * header and the library agree on the version, that the timer fires once,
 * not early, and that the loop then stops cleanly.
 * Built with -DWH_PULL_WS it also references the WebSocket layer, so that a
 * static link has to pull in the SHA-1 code and therefore libcrypto: proof
 * that the static link interface (Requires.private / wharf::wharf_static)
 * names it. It also creates a TLS context, which needs libssl in a build
 * with TLS (WH_TLS), and checks the answer agrees with wh_tls_available().
 * The timer runs on an epoll loop and on an io_uring one (epoll where the
 * kernel or the build has no io_uring, which wh_loop_backend_error says). */
#include <stdio.h>
#include <string.h>

#include <wharf/loop.h>
#ifdef WH_PULL_WS
#include <errno.h>

#include <wharf/tls.h>
#include <wharf/ws.h>
#endif

struct state {
    int fired;
    uint64_t at;
};

static void on_timer(wh_timer *t, void *ud)
{
    struct state *st = ud;
    st->fired++;
    st->at = wh_loop_now(wh_timer_loop(t));
    wh_loop_stop(wh_timer_loop(t));
}

/* One 20 ms timer on a loop asking for backend; 0 when it fired once, on time. */
static int run_timer(const char *backend)
{
    wh_loop *loop;
    wh_loop_opts o = {.backend = backend};
    int rc = wh_loop_new(&loop, &o);
    if (rc != 0) {
        fprintf(stderr, "loop_timer: wh_loop_new(%s): %s\n", backend, wh_strerror(rc));
        return 1;
    }
    const char *got = wh_loop_backend(loop);
    int why = wh_loop_backend_error(loop);
    if (strcmp(got, backend) != 0 && (strcmp(got, "epoll") != 0 || why >= 0)) {
        fprintf(stderr, "loop_timer: asked for %s, got %s (%d)\n", backend, got, why);
        return 1;
    }
    struct state st = {0, 0};
    wh_timer *t;
    if ((rc = wh_timer_new(loop, on_timer, &st, &t)) != 0 || (rc = wh_timer_start(t, 20, 0)) != 0) {
        fprintf(stderr, "loop_timer: timer: %s\n", wh_strerror(rc));
        return 1;
    }
    uint64_t start = wh_loop_now(loop);
    rc = wh_loop_run(loop, WH_RUN_DEFAULT);
    wh_timer_free(t);
    wh_loop_free(loop);
    if (rc != 0 || st.fired != 1 || st.at - start < 20) {
        fprintf(stderr, "loop_timer: run=%d fired=%d after %llu ms\n", rc, st.fired,
                (unsigned long long)(st.at - start));
        return 1;
    }
    printf("loop_timer: wharf %s, %s%s%s, fired once after %llu ms\n", wh_version(), got,
           why ? " instead of " : "", why ? backend : "", (unsigned long long)(st.at - start));
    return 0;
}

int main(void)
{
#ifdef WH_PULL_WS
    /* volatile: the optimizer must keep the reference, the linker the object. */
    __typeof__(&wh_ws_accept) volatile keep = &wh_ws_accept;
    if (!keep) return 1;
    wh_tls_ctx *tls;
    int trc = wh_tls_ctx_new(&tls, NULL);
    if (trc != (wh_tls_available() ? 0 : -ENOTSUP)) {
        fprintf(stderr, "loop_timer: wh_tls_ctx_new: %s\n", wh_strerror(trc));
        return 1;
    }
    wh_tls_ctx_free(tls);
#endif
    if (strcmp(wh_version(), WH_VERSION) != 0) {
        fprintf(stderr, "loop_timer: header says %s, library says %s\n", WH_VERSION, wh_version());
        return 1;
    }
    /* Both backends: io_uring pulls the ring code (and liburing, when the
     * library was built with it) into a static link; where the kernel
     * refuses io_uring the loop runs on epoll and says why. */
    if (run_timer("epoll") != 0 || run_timer("io_uring") != 0) return 1;
    return 0;
}
