/* hiredis driven by a wharf loop: see redis_loop.h.
 *
 * hiredis 0.14's async context calls five hooks (addRead, delRead, addWrite,
 * delWrite, cleanup) and expects redisAsyncHandleRead/Write on readiness.
 * We map them onto one embedded wh_io, with one twist: once connected, an
 * addWrite does not arm EPOLLOUT (which would cost an epoll_ctl and a
 * second trip through epoll_wait for a socket that is almost always
 * writable) but starts a zero-delay timer. The loop runs expired timers
 * right after dispatching the I/O batch (loop.c, step 4), so every command
 * issued by the batch's callbacks leaves in one write(2): pipelining for
 * free. EPOLLOUT is armed only when that write hits EAGAIN.
 *
 * hiredis frees the context by itself when the connection fails (read or
 * write error, EOF, failed connect); every pending callback then runs with
 * a NULL reply, then the cleanup hook, then onDisconnect (only if it had
 * connected). We free it ourselves only outside hiredis callbacks: from our
 * timers (connect/command timeout) and from wh_redis_free.
 *
 * Replies arrive in command order (Redis answers a pipeline in order), so
 * the in-flight commands form a FIFO: a fixed ring of max_inflight records,
 * allocated once. The oldest record's send time drives the command timeout.
 */
#include "apps/common/redis_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

enum rl_state {
    RL_DOWN = 0,       /* waiting for the backoff timer; commands fail fast */
    RL_CONNECTING = 1, /* connect(2) in progress; commands fail fast */
    RL_UP = 2,         /* connected: commands accepted */
    RL_CLOSED = 3,     /* wh_redis_free in progress */
};

struct rl_cmd {
    wh_redis_cb cb;
    void *arg;
    uint64_t sent_ms;
};

struct wh_redis {
    wh_loop *loop;
    wh_redis_opts o;
    char *host; /* numeric address, or a Unix socket path */
    int port;
    bool is_unix;
    redisAsyncContext *ac; /* NULL between connections */
    wh_io *io;             /* while ac has an fd */
    unsigned ioflags;
    bool in_flush; /* inside our own redisAsyncHandleWrite call */
    wh_timer *flush_t, *connect_t, *backoff_t, *tick_t;
    enum rl_state state;
    int fail_err; /* what callbacks without a reply are told */
    uint32_t backoff_ms;
    struct rl_cmd *ring;
    unsigned head, count;
    wh_redis_stats st;
};

void wh_redis_opts_init(wh_redis_opts *o)
{
    o->connect_timeout_ms = 1000;
    o->command_timeout_ms = 2000;
    o->backoff_min_ms = 100;
    o->backoff_max_ms = 2000;
    o->max_inflight = 1024;
    o->on_state = NULL;
    o->state_ud = NULL;
}

/* ---- hiredis event hooks ------------------------------------------------- */

static void io_update(wh_redis *rc)
{
    if (rc->io) wh_io_set(rc->io, rc->ioflags);
}

static void ev_add_read(void *p)
{
    wh_redis *rc = p;
    rc->ioflags |= WH_IO_READ;
    io_update(rc);
}

static void ev_del_read(void *p)
{
    wh_redis *rc = p;
    rc->ioflags &= ~(unsigned)WH_IO_READ;
    io_update(rc);
}

static void ev_add_write(void *p)
{
    wh_redis *rc = p;
    if (rc->state == RL_UP && !rc->in_flush) {
        /* Batch: flush once after this iteration's I/O callbacks. */
        if (!wh_timer_active(rc->flush_t)) wh_timer_start(rc->flush_t, 0, 0);
        return;
    }
    /* Connecting (the first writable event means connect(2) finished), or
     * the socket buffer is full: wait for EPOLLOUT. */
    rc->ioflags |= WH_IO_WRITE;
    io_update(rc);
}

static void ev_del_write(void *p)
{
    wh_redis *rc = p;
    rc->ioflags &= ~(unsigned)WH_IO_WRITE;
    io_update(rc);
}

/* hiredis is freeing the context: forget the fd before hiredis closes it. */
static void ev_cleanup(void *p)
{
    wh_redis *rc = p;
    if (rc->io) {
        wh_io_free(rc->io);
        rc->io = NULL;
    }
    rc->ioflags = 0;
    rc->ac = NULL;
    wh_timer_stop(rc->flush_t);
}

/* ---- connection state ---------------------------------------------------- */

/* The connection (or attempt) is gone or going: open the circuit and
 * schedule the next attempt. Idempotent per connection. The caller (or
 * hiredis) frees the context. */
static void lost(wh_redis *rc, int err)
{
    if (rc->state == RL_DOWN || rc->state == RL_CLOSED) return;
    bool was_up = rc->state == RL_UP;
    rc->state = RL_DOWN;
    rc->fail_err = err;
    wh_timer_stop(rc->tick_t);
    wh_timer_stop(rc->connect_t);
    wh_timer_stop(rc->flush_t);
    wh_timer_start(rc->backoff_t, rc->backoff_ms, 0);
    /* Exponential backoff so a dead Redis is not hammered by every worker. */
    uint32_t next = rc->backoff_ms * 2;
    rc->backoff_ms = next > rc->o.backoff_max_ms ? rc->o.backoff_max_ms : next;
    if (was_up && rc->o.on_state) rc->o.on_state(rc, false, err, rc->o.state_ud);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    wh_redis *rc = ac->data;
    wh_timer_stop(rc->connect_t);
    if (status != REDIS_OK) {
        lost(rc, -ECONNREFUSED); /* hiredis frees ac after we return */
        return;
    }
    rc->state = RL_UP;
    rc->st.connects++;
    rc->backoff_ms = rc->o.backoff_min_ms;
    uint32_t tick = rc->o.command_timeout_ms / 4;
    if (tick < 10) tick = 10;
    wh_timer_start(rc->tick_t, tick, tick);
    if (rc->o.on_state) rc->o.on_state(rc, true, 0, rc->o.state_ud);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    lost(ac->data, -ECONNRESET);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    wh_redis *rc = ac->data;
    struct rl_cmd *c = priv;
    wh_redis_cb cb = c->cb;
    void *arg = c->arg;
    /* FIFO: replies (and NULL replies on failure) come in command order. */
    rc->head = rc->head + 1 == rc->o.max_inflight ? 0 : rc->head + 1;
    rc->count--;
    int err = 0;
    if (!reply) {
        if (rc->state == RL_UP) lost(rc, -ECONNRESET); /* the drop is noticed before onDisconnect */
        err = rc->fail_err ? rc->fail_err : -ECONNRESET;
        rc->st.failed++;
    } else {
        rc->st.replies++;
    }
    if (cb) cb(rc, reply, err, arg);
}

static void on_io(wh_io *io, unsigned events, void *ud)
{
    wh_redis *rc = ud;
    if (!rc->ac) return;
    if (rc->state == RL_CONNECTING) {
        /* hiredis checks SO_ERROR on the first event (connect(2) man page:
         * EINPROGRESS, then writable; SO_ERROR tells the outcome). */
        redisAsyncHandleWrite(rc->ac);
        return;
    }
    if (events & (WH_IO_READ | WH_IO_HUP | WH_IO_ERR)) {
        redisAsyncHandleRead(rc->ac); /* may free ac (EOF, error) */
        if (!rc->ac) return;
    }
    if (events & WH_IO_WRITE) {
        rc->in_flush = true;
        redisAsyncHandleWrite(rc->ac);
        rc->in_flush = false;
    }
}

static void start_connect(wh_redis *rc)
{
    rc->st.attempts++;
    redisAsyncContext *ac =
        rc->is_unix ? redisAsyncConnectUnix(rc->host) : redisAsyncConnect(rc->host, rc->port);
    rc->state = RL_CONNECTING;
    if (!ac) {
        lost(rc, -ENOMEM);
        return;
    }
    if (ac->err) { /* failed synchronously (e.g. no route, bad path) */
        redisAsyncFree(ac);
        lost(rc, -ECONNREFUSED);
        return;
    }
    ac->data = rc;
    ac->ev.data = rc;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    rc->ac = ac;
    rc->ioflags = 0;
    if (wh_io_new(rc->loop, ac->c.fd, on_io, rc, &rc->io) < 0) {
        redisAsyncFree(ac); /* runs ev_cleanup: rc->ac is NULL again */
        lost(rc, -ENOMEM);
        return;
    }
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Setting the connect callback arms the write hook (hiredis waits for
     * the first writable event to learn that connect(2) finished). */
    redisAsyncSetConnectCallback(ac, on_connect);
    wh_timer_start(rc->connect_t, rc->o.connect_timeout_ms, 0);
}

/* ---- timers -------------------------------------------------------------- */

static void on_flush(wh_timer *t, void *ud)
{
    wh_redis *rc = ud;
    if (!rc->ac || rc->state != RL_UP) return;
    rc->st.flushes++;
    rc->in_flush = true;
    redisAsyncHandleWrite(rc->ac); /* may free ac on a write error */
    rc->in_flush = false;
}

static void on_connect_timeout(wh_timer *t, void *ud)
{
    wh_redis *rc = ud;
    if (rc->state != RL_CONNECTING || !rc->ac) return;
    lost(rc, -ETIMEDOUT);
    redisAsyncFree(rc->ac); /* not connected: no onDisconnect */
}

static void on_backoff(wh_timer *t, void *ud)
{
    wh_redis *rc = ud;
    if (rc->state == RL_DOWN && !rc->ac) start_connect(rc);
}

/* Drops a connection whose oldest command is overdue: Redis is hung or the
 * network is black-holing us. Replies must stay in order, so there is no way
 * to give up on one command and keep the connection. */
static void on_tick(wh_timer *t, void *ud)
{
    wh_redis *rc = ud;
    if (rc->state != RL_UP || !rc->count || !rc->ac) return;
    uint64_t now = wh_loop_now(rc->loop);
    if (now - rc->ring[rc->head].sent_ms < rc->o.command_timeout_ms) return;
    lost(rc, -ETIMEDOUT);
    redisAsyncFree(rc->ac); /* pending callbacks run with -ETIMEDOUT */
}

/* ---- public -------------------------------------------------------------- */

int wh_redis_new(wh_loop *loop, const char *host, int port, const wh_redis_opts *opts,
                 wh_redis **out)
{
    if (!loop || !host || !out) return -EINVAL;
    bool is_unix = !strncmp(host, "unix:", 5);
    if (is_unix) {
        host += 5;
        if (!*host) return -EINVAL;
    } else {
        /* Numeric only: hiredis resolves names with getaddrinfo, which may
         * block the loop; resolve before calling us. */
        unsigned char tmp[16];
        if (port <= 0 || port > 65535 ||
            (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1))
            return -EINVAL;
    }
    wh_redis *rc = calloc(1, sizeof(*rc));
    if (!rc) return -ENOMEM;
    if (opts)
        rc->o = *opts;
    else
        wh_redis_opts_init(&rc->o);
    if (!rc->o.max_inflight) rc->o.max_inflight = 1024;
    if (!rc->o.backoff_min_ms) rc->o.backoff_min_ms = 1;
    if (rc->o.backoff_max_ms < rc->o.backoff_min_ms) rc->o.backoff_max_ms = rc->o.backoff_min_ms;
    rc->ring = calloc(rc->o.max_inflight, sizeof(*rc->ring));
    rc->host = strdup(host);
    if (!rc->ring || !rc->host) {
        free(rc->ring);
        free(rc->host);
        free(rc);
        return -ENOMEM;
    }
    rc->loop = loop;
    rc->port = port;
    rc->is_unix = is_unix;
    rc->backoff_ms = rc->o.backoff_min_ms;
    if (wh_timer_new(loop, on_flush, rc, &rc->flush_t) < 0 ||
        wh_timer_new(loop, on_connect_timeout, rc, &rc->connect_t) < 0 ||
        wh_timer_new(loop, on_backoff, rc, &rc->backoff_t) < 0 ||
        wh_timer_new(loop, on_tick, rc, &rc->tick_t) < 0) {
        wh_redis_free(rc);
        return -ENOMEM;
    }
    start_connect(rc);
    *out = rc;
    return 0;
}

void wh_redis_free(wh_redis *rc)
{
    if (!rc) return;
    rc->state = RL_CLOSED;
    rc->fail_err = -ECANCELED;
    /* hiredis first: its cleanup hook still stops our timers. */
    if (rc->ac) redisAsyncFree(rc->ac); /* callbacks get -ECANCELED; cleanup hook runs */
    if (rc->io) wh_io_free(rc->io);
    wh_timer *timers[] = {rc->flush_t, rc->connect_t, rc->backoff_t, rc->tick_t};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        if (timers[i]) wh_timer_free(timers[i]);
    free(rc->ring);
    free(rc->host);
    free(rc);
}

int wh_redis_ready(const wh_redis *rc, unsigned n)
{
    if (rc->state != RL_UP || !rc->ac) return -ENOTCONN;
    if (n > rc->o.max_inflight - rc->count) return -EAGAIN;
    return 0;
}

int wh_redis_command(wh_redis *rc, int argc, const char **argv, const size_t *argvlen,
                     wh_redis_cb cb, void *arg)
{
    int r = wh_redis_ready(rc, 1);
    if (r < 0) {
        rc->st.rejected++;
        return r;
    }
    unsigned idx = rc->head + rc->count;
    if (idx >= rc->o.max_inflight) idx -= rc->o.max_inflight;
    struct rl_cmd *c = &rc->ring[idx];
    c->cb = cb;
    c->arg = arg;
    c->sent_ms = wh_loop_now(rc->loop);
    rc->count++;
    if (redisAsyncCommandArgv(rc->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
        rc->count--; /* nothing queued: hiredis is disconnecting or out of memory */
        rc->st.rejected++;
        return rc->ac->err ? -ENOTCONN : -ENOMEM;
    }
    rc->st.commands++;
    return 0;
}

bool wh_redis_connected(const wh_redis *rc)
{
    return rc->state == RL_UP;
}

unsigned wh_redis_inflight(const wh_redis *rc)
{
    return rc->count;
}

void wh_redis_stats_get(const wh_redis *rc, wh_redis_stats *out)
{
    *out = rc->st;
}

wh_loop *wh_redis_loop(const wh_redis *rc)
{
    return rc->loop;
}

/* ---- per-loop connection -------------------------------------------------
 * One connection per loop, and one loop per thread: so the connection is
 * found through a thread-local pointer, no lookup and no lock per command.
 * The loop is kept beside it so that a call for another loop (a second loop
 * on this thread, which wharfd never makes) fails instead of using the wrong
 * connection. */

static __thread wh_redis *tls_rc;

int wh_redis_loop_open(wh_loop *loop, const char *host, int port, const wh_redis_opts *opts)
{
    if (tls_rc) return -EEXIST;
    wh_redis *rc;
    int r = wh_redis_new(loop, host, port, opts, &rc);
    if (r < 0) return r;
    tls_rc = rc;
    return 0;
}

wh_redis *wh_redis_loop_get(const wh_loop *loop)
{
    return tls_rc && tls_rc->loop == loop ? tls_rc : NULL;
}

void wh_redis_loop_close(wh_loop *loop)
{
    wh_redis *rc = wh_redis_loop_get(loop);
    if (!rc) return;
    tls_rc = NULL;
    wh_redis_free(rc);
}
