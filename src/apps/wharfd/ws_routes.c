/* wharfd's WebSocket endpoints:
 *  - /ws/echo (with --ws-echo): every message goes back as received (text as
 *    text, binary as binary); used by the conformance tests and the bench;
 *  - /ws/chat: a chat room across all worker threads; every text message a
 *    browser sends is broadcast to every connected browser (public/chat.html).
 *    A member that stops reading is dropped once its queue holds 8 MiB
 *    (logged with 1008); when the room is too busy to take a message (the
 *    hub's per-thread queue is full), the sender is told, at most once a
 *    second, that its message was not delivered.
 * Routes accept any method so that the WebSocket layer answers a bad
 * handshake itself (400/426) rather than the router (405).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "apps/wharfd/log.h"
#include "apps/wharfd/mounts.h"
#include "wharf/ws.h"

/* Chat messages are small JSON objects from chat.html; anything bigger is
 * not a chat line (1009 closes the sender, not the room). */
#define CHAT_MAX_MESSAGE 4096
/* Most one "not delivered" notice per sender per this many ms: a flooder
 * must not turn every refused message into a reply it does not read. */
#define CHAT_NOTICE_MS 1000

/* In the page's message format, so chat.js shows it like any other line. */
static const char busy_notice[] =
    "{\"name\":\"wharfd\",\"text\":\"The room is busy: your last message was not "
    "delivered. Try again in a moment.\"}";

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
    int rc = wh_ws_hub_broadcast(app->chat, data, len, true);
    if (rc == 0) return;
    if (rc != -EAGAIN)
        wharfd_log(WHARFD_LOG_WARN, "ws chat: broadcast failed: %s", wh_strerror(rc));
    /* The sender's own data slot holds the loop time of its last notice
     * (+1, so that 0 means none): no allocation per member. */
    uint64_t now = wh_loop_now(wh_ws_loop(ws)), last = (uintptr_t)wh_ws_data(ws);
    if (last && now + 1 - last < CHAT_NOTICE_MS) return;
    wh_ws_set_data(ws, (void *)(uintptr_t)(now + 1));
    if (wh_ws_writable(ws)) (void)wh_ws_send_text(ws, busy_notice, sizeof busy_notice - 1);
}

static void chat_close(wh_ws *ws, int code, const char *reason, size_t reason_len, void *ud)
{
    (void)ud;
    /* 1008: dropped by the server (a member that stopped reading, or a
     * message never finished); worth a line, unlike members who leave. */
    if (code != WH_WS_CLOSE_POLICY) return;
    /* No peer address: the socket is gone by now (an aborted member's
     * especially), and keeping one per member costs 112 bytes each. */
    wharfd_log(WHARFD_LOG_INFO, "ws chat: closed a member with 1008 (%.*s)", (int)reason_len,
               reason);
}

static const wh_ws_cbs chat_cbs = {
    .on_open = chat_open, .on_message = chat_message, .on_close = chat_close};

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
