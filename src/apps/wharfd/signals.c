/* The main thread's loop: signals only (every thread blocks them, so they
 * reach this loop's signalfd and nothing else).
 *
 *   SIGTERM, SIGQUIT, SIGINT  drain and stop; a second one stops at once
 *   SIGHUP                    reload the configuration (reload.c)
 *   SIGUSR1                   reopen the logs, after writing what is buffered
 *   SIGUSR2                   upgrade (upgrade.c)
 *
 * The drain (wh_server_drain): /healthz answers 503 at once, the listeners
 * keep accepting for --drain-delay, every response says Connection: close,
 * no keep-alive connection is closed between two requests, and the accept
 * queues are emptied before the sockets close. A waiter thread joins the
 * servers and stops this loop when they are done, so a second signal is
 * still heard meanwhile.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "apps/wharfd/ops.h"
#include "apps/wharfd/wharfd.h"

static struct {
    wharfd_app *app;
    wh_loop *loop;
    int stops;
    bool waiter_started;
    pthread_t waiter;
    atomic_uint flush_left; /* SIGUSR1: threads that have not flushed yet */
    bool reopening;
    bool reopen_again; /* asked while one was under way: once more after it */
} S;

static void stop_loop_task(wh_loop *loop, void *arg)
{
    (void)arg;
    wh_loop_stop(loop);
}

static void *waiter_main(void *arg)
{
    wharfd_app *app = arg;
    wh_server_wait(app->srv);
    if (app->admin_srv) wh_server_wait(app->admin_srv);
    wh_loop_post(S.loop, stop_loop_task, NULL);
    return NULL;
}

void wharfd_drain_start(wharfd_app *app, bool after_upgrade)
{
    if (app->draining) return;
    app->draining = true;
    const wharfd_config *cfg = app->cur ? app->cur : &app->cfg;
    /* After an upgrade the sockets live on in the new process: nothing to
     * keep accepting for, and systemd follows the new MAINPID (a STOPPING=1
     * from us would now read as the service's). */
    uint32_t delay = after_upgrade ? 0 : cfg->drain_delay_ms;
    if (!after_upgrade) wharfd_sd_notify("STOPPING=1\nSTATUS=draining");
    wharfd_log(WHARFD_LOG_INFO,
               "draining: accepting for %u ms more, then up to %u ms for open "
               "connections",
               (unsigned)delay, (unsigned)cfg->shutdown_timeout_ms);
    wh_server_drain(app->srv, delay);
    if (app->admin_srv) wh_server_drain(app->admin_srv, delay);
    if (pthread_create(&S.waiter, NULL, waiter_main, app) == 0)
        S.waiter_started = true;
    else
        wh_loop_stop(S.loop); /* run() then waits for the servers itself */
}

/* ---- SIGUSR1: every thread hands its access-log block to the writer, then
 * the writer reopens behind them (lines buffered before a rotation land in
 * the old file, where they belong). ---- */

static void reopen_task(wh_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    S.reopening = false;
    int rc = wharfd_log_reopen();
    int rc2 = wharfd_alog_reopen_queued(NULL);
    if (rc2 == -ENOTSUP) rc2 = 0; /* no access log */
    if (rc || rc2)
        wharfd_log(WHARFD_LOG_ERROR, "reopening logs failed: %s", wh_strerror(rc ? rc : rc2));
    else
        wharfd_log(WHARFD_LOG_INFO, "logs reopened");
    if (S.reopen_again) {
        S.reopen_again = false;
        wharfd_logs_reopen(S.app);
    }
}

static void flush_task(wh_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    wharfd_thread *t = wharfd_thread_current();
    if (t && t->alog) wharfd_alog_flush(t->alog);
    if (atomic_fetch_sub(&S.flush_left, 1) == 1) wh_loop_post(S.loop, reopen_task, NULL);
}

void wharfd_logs_reopen(wharfd_app *app)
{
    if (S.reopening) { /* one at a time: redo it after the one under way */
        S.reopen_again = true;
        return;
    }
    unsigned n = wh_server_threads(app->srv), na = app->admin_srv ? 1 : 0;
    S.reopening = true;
    atomic_store(&S.flush_left, n + na + 1);
    for (unsigned i = 0; i < n; i++)
        if (wh_loop_post(wh_server_loop(app->srv, i), flush_task, NULL) < 0)
            atomic_fetch_sub(&S.flush_left, 1);
    if (na && wh_loop_post(wh_server_loop(app->admin_srv, 0), flush_task, NULL) < 0)
        atomic_fetch_sub(&S.flush_left, 1);
    flush_task(S.loop, NULL); /* the +1: ours, so the count cannot reach 0 early */
}

static void on_signal(wh_signal *sig, int signo, void *ud)
{
    (void)sig;
    wharfd_app *app = ud;
    switch (signo) {
    case SIGHUP:
        if (app->draining) {
            wharfd_log(WHARFD_LOG_WARN, "SIGHUP ignored: draining");
            return;
        }
        wharfd_reload(app);
        return;
    case SIGUSR1:
        wharfd_logs_reopen(app);
        return;
    case SIGUSR2:
        if (app->draining) {
            wharfd_log(WHARFD_LOG_WARN, "SIGUSR2 ignored: draining");
            return;
        }
        wharfd_upgrade_start(app, S.loop);
        return;
    default:
        break;
    }
    const char *name = signo == SIGINT ? "SIGINT" : signo == SIGQUIT ? "SIGQUIT" : "SIGTERM";
    if (++S.stops == 1) {
        wharfd_log(WHARFD_LOG_INFO, "%s: stopping gracefully", name);
        wharfd_drain_start(app, false);
        return;
    }
    wharfd_log(WHARFD_LOG_INFO, "%s: stopping now", name);
    wh_server_stop(app->srv, false);
    if (app->admin_srv) wh_server_stop(app->admin_srv, false);
}

int wharfd_signals_run(wharfd_app *app)
{
    static const int signos[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
    enum { NSIG_ = sizeof signos / sizeof signos[0] };
    wh_signal *sigs[NSIG_] = {0};
    S.app = app;
    if (wh_loop_new(&S.loop, NULL) != 0) {
        wharfd_log(WHARFD_LOG_ERROR, "cannot create the signal loop; running without it");
        wh_server_wait(app->srv);
        if (app->admin_srv) wh_server_wait(app->admin_srv);
        return 0;
    }
    for (int i = 0; i < NSIG_; i++)
        wh_signal_new(S.loop, signos[i], on_signal, app, &sigs[i]);
    wh_loop_run(S.loop, WH_RUN_DEFAULT);
    if (S.waiter_started) pthread_join(S.waiter, NULL);
    wh_server_wait(app->srv); /* no-op when the waiter did it */
    if (app->admin_srv) wh_server_wait(app->admin_srv);
    for (int i = 0; i < NSIG_; i++)
        if (sigs[i]) wh_signal_free(sigs[i]);
    wharfd_upgrade_cleanup();
    /* The post from the waiter may still be queued: run it before freeing. */
    wh_loop_run(S.loop, WH_RUN_NOWAIT);
    wh_loop_free(S.loop);
    S.loop = NULL;
    return 0;
}
