/* wharfd's WebSocket endpoints:
 *  - /ws/echo (with --ws-echo): every message goes back as received (text as
 *    text, binary as binary); used by the conformance tests and the bench;
 *  - /ws/chat: a chat room across all worker threads; every text message a
 *    browser sends is broadcast to every connected browser (public/chat.html).
 * Routes accept any method so that the WebSocket layer answers a bad
 * handshake itself (400/426) rather than the router (405).
 */
#include <stdlib.h>

#include "apps/wharfd/log.h"
#include "apps/wharfd/mounts.h"
#include "wharf/ws.h"

/* Chat messages are small JSON objects from chat.html; anything bigger is
 * not a chat line (1009 closes the sender, not the room). */
#define CHAT_MAX_MESSAGE 4096

typedef struct ws_app {
    wh_ws_hub *chat;
    wh_ws_opts echo_opts;
    wh_ws_opts chat_opts;
} ws_app;

static void echo_message(wh_ws *ws, const char *data, size_t len, bool text, void *ud)
{
    (void)ud;
    if (text)
        (void)wh_ws_send_text(ws, data, len);
    else
        (void)wh_ws_send_binary(ws, data, len);
}

static const wh_ws_cbs echo_cbs = {.on_message = echo_message};

static void echo_handler(wh_http_req *r, void *ud)
{
    ws_app *app = ud;
    (void)wh_ws_accept(r, &app->echo_opts, &echo_cbs, app, NULL);
}

static void chat_open(wh_ws *ws, void *ud)
{
    ws_app *app = ud;
    if (wh_ws_hub_join(app->chat, ws) < 0) wh_ws_close(ws, WH_WS_CLOSE_INTERNAL, "out of memory");
}

static void chat_message(wh_ws *ws, const char *data, size_t len, bool text, void *ud)
{
    ws_app *app = ud;
    if (!text) {
        wh_ws_close(ws, WH_WS_CLOSE_UNSUPPORTED, "text only");
        return;
    }
    /* The page renders with textContent, so relaying the bytes as sent is safe. */
    if (wh_ws_hub_broadcast(app->chat, data, len, true) < 0)
        wharfd_log(WHARFD_LOG_WARN, "ws chat: broadcast failed");
}

static const wh_ws_cbs chat_cbs = {.on_open = chat_open, .on_message = chat_message};

static void chat_handler(wh_http_req *r, void *ud)
{
    ws_app *app = ud;
    (void)wh_ws_accept(r, &app->chat_opts, &chat_cbs, app, NULL);
}

static void ws_cleanup(void *ud)
{
    ws_app *app = ud;
    wh_ws_hub_free(app->chat);
    free(app);
}

int wharfd_mount_ws(wh_router *rt, const wharfd_config *cfg, wharfd_hooks *hooks)
{
    ws_app *app = calloc(1, sizeof *app);
    if (!app) return -ENOMEM;
    int rc = wh_ws_hub_new(&app->chat);
    if (rc < 0) {
        free(app);
        return rc;
    }
    wh_ws_opts_init(&app->echo_opts);
    wh_ws_opts_init(&app->chat_opts);
    app->chat_opts.max_message = CHAT_MAX_MESSAGE;
    hooks->cleanup = ws_cleanup;
    hooks->ud = app;
    if ((rc = wh_router_add(rt, NULL, "/ws/chat", chat_handler, app)) < 0) return rc;
    if (cfg->ws_echo && (rc = wh_router_add(rt, NULL, "/ws/echo", echo_handler, app)) < 0)
        return rc;
    return 0;
}
