/* Extension points of wharfd: routes that other parts of wharf add to the
 * daemon. main.c builds the router, creates the HTTP server and then calls
 * every mount function below ONCE, on the main thread, before the server
 * starts. Static files are the router's fallback, so a mount only needs to
 * add its own routes (wh_router_add).
 *
 * Contract for each mount function:
 *  - add routes to rt (exact, ":param" or "/prefix/ *" patterns (no space));
 *  - if per-thread state is needed (a Redis connection per loop, a chat
 *    room per thread...), fill the hooks: thread_start/thread_stop run on
 *    every worker thread as it starts/stops (after wharfd's own per-thread
 *    state exists), cleanup runs on the main thread after the server has
 *    stopped; ud is passed to all three;
 *  - return 0, or a negative errno: wharfd then prints
 *    "wharfd: mount <name>: <strerror>" and exits 1;
 *  - never print: log through wharfd_log() (log.h).
 * hooks->http (the server, not started) and hooks->cfg are inputs.
 */
#ifndef WHARFD_MOUNTS_H
#define WHARFD_MOUNTS_H

#include "wharf/http.h"

#include "apps/wharfd/config.h"

typedef struct wharfd_hooks {
    /* inputs */
    wh_http_server *http;
    const wharfd_config *cfg;
    /* outputs (all optional; zeroed by main.c before the call) */
    void (*thread_start)(wh_loop *loop, unsigned idx, void *ud);
    void (*thread_stop)(wh_loop *loop, unsigned idx, void *ud);
    void (*cleanup)(void *ud);
    void *ud;
} wharfd_hooks;

/* WebSocket engineer, in src/apps/wharfd/ws_routes.c: /ws/chat always,
 * /ws/echo when cfg->ws_echo. (public/chat.html is yours too.) */
int wharfd_mount_ws(wh_router *rt, const wharfd_config *cfg, wharfd_hooks *hooks);

/* Guestbook engineer, in src/apps/wharfd/guestbook_routes.c: /guestbook
 * (GET page, POST entry) backed by Redis at cfg->redis_host:cfg->redis_port. */
int wharfd_mount_guestbook(wh_router *rt, const wharfd_config *cfg, wharfd_hooks *hooks);

#endif
