/* A Redis connection driven by a wharf loop: hiredis's async API (Debian's
 * libhiredis 0.14) with its event hooks mapped onto one wh_io, plus what
 * hiredis 0.14 lacks: a connect timeout, a command timeout, reconnection
 * with exponential backoff, and a circuit that fails commands at once while
 * the connection is down (no queue of waiting requests builds up).
 *
 * Pipelining: commands issued during one loop iteration are written together
 * by one write(2) right after the iteration's I/O callbacks (a zero-delay
 * timer), so N requests parsed from one epoll batch cost one round trip.
 *
 * One wh_redis belongs to one loop and is used only on that loop's thread.
 * wh_redis_loop_open() keeps one per loop (found through a thread-local) for the
 * "one connection per worker thread" setup.
 */
#ifndef WH_APPS_REDIS_LOOP_H
#define WH_APPS_REDIS_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wharf/loop.h"

struct redisReply;
typedef struct wh_redis wh_redis;

typedef struct wh_redis_opts {
    uint32_t connect_timeout_ms; /* give up a connect attempt after: 1000 */
    uint32_t command_timeout_ms; /* oldest reply later than this drops the connection: 2000 */
    uint32_t backoff_min_ms;     /* first reconnect delay: 100 */
    uint32_t backoff_max_ms;     /* delay doubles up to: 2000 */
    unsigned max_inflight;       /* commands awaiting replies before -EAGAIN: 1024 */
    /* Optional (NULL): runs on the loop thread when the connection comes up
     * (up = true, err = 0) or an established one is lost (up = false, err <
     * 0). Not run for each failed reconnect attempt, so it can log. */
    void (*on_state)(wh_redis *rc, bool up, int err, void *ud);
    void *state_ud;
} wh_redis_opts;

/* Counters for tests and benchmarks. */
typedef struct wh_redis_stats {
    uint64_t commands; /* commands accepted */
    uint64_t replies;  /* replies received (REDIS_REPLY_ERROR included) */
    uint64_t failed;   /* callbacks run without a reply (timeout, drop, free) */
    uint64_t rejected; /* wh_redis_command calls refused (-ENOTCONN/-EAGAIN) */
    uint64_t flushes;  /* write batches handed to hiredis (round trips started) */
    uint64_t connects; /* successful connects */
    uint64_t attempts; /* connect attempts */
} wh_redis_stats;

/* Called once per command: err == 0 with the reply (valid only during the
 * call; check reply->type for REDIS_REPLY_ERROR), or err < 0 with reply NULL:
 * -ETIMEDOUT (command or connect timeout), -ECONNRESET (connection lost),
 * -ECANCELED (wh_redis_free). Must not call wh_redis_free. */
typedef void (*wh_redis_cb)(wh_redis *rc, struct redisReply *reply, int err, void *arg);

/* Fills opts with the documented defaults. */
void wh_redis_opts_init(wh_redis_opts *opts);
/* Creates a connection to a numeric host (IPv4/IPv6 literal) or a Unix
 * socket path ("unix:/path"), port ignored for Unix, and starts connecting.
 * opts may be NULL. 0 or -ENOMEM/-EINVAL. */
int wh_redis_new(wh_loop *loop, const char *host, int port, const wh_redis_opts *opts,
                 wh_redis **out);
/* Closes the connection; commands still waiting get -ECANCELED. Not from a wh_redis_cb. */
void wh_redis_free(wh_redis *rc);
/* 0 if n more commands would be accepted now; -ENOTCONN while the connection
 * is down (the circuit is open) or -EAGAIN at max_inflight. */
int wh_redis_ready(const wh_redis *rc, unsigned n);
/* Sends one command (argv as for redisCommandArgv; copied). cb may be NULL.
 * 0: cb will run exactly once, later (never inside this call). Negative errno
 * (-ENOTCONN, -EAGAIN, -ENOMEM): refused at once, cb will not run. */
int wh_redis_command(wh_redis *rc, int argc, const char **argv, const size_t *argvlen,
                     wh_redis_cb cb, void *arg);
/* True while connected (the circuit is closed). */
bool wh_redis_connected(const wh_redis *rc);
/* Commands sent and not yet answered. */
unsigned wh_redis_inflight(const wh_redis *rc);
/* Copies the counters. */
void wh_redis_stats_get(const wh_redis *rc, wh_redis_stats *out);
/* The loop the connection runs on. */
wh_loop *wh_redis_loop(const wh_redis *rc);

/* Per-loop connection, for one connection per worker thread (one loop per
 * thread: kept in a thread-local). Loop thread only. */
/* Creates the loop's connection; free it with wh_redis_loop_close before the
 * thread ends. -EEXIST if this thread has one. */
int wh_redis_loop_open(wh_loop *loop, const char *host, int port, const wh_redis_opts *opts);
/* The loop's connection, or NULL. */
wh_redis *wh_redis_loop_get(const wh_loop *loop);
/* Frees the loop's connection now (pending commands get -ECANCELED). */
void wh_redis_loop_close(wh_loop *loop);

#endif
