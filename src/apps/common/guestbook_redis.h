/* The guestbook's data model in Redis, the same for every server that
 * shares one (wharfd's asynchronous store, the lab's blocking clients):
 *
 *   guestbook:stream    STREAM, one entry per post, fields t (unix seconds),
 *                       name and msg, stored as given (Redis strings are
 *                       binary-safe: no encoding of ours), trimmed to the
 *                       newest WH_GB_KEEP_ENTRIES by the XADD itself. The
 *                       entry ID names the entry: entries never change.
 *   guestbook:visitors  STRING counter, INCR once per counted page view.
 *
 * A page view is   INCR guestbook:visitors ; XREVRANGE guestbook:stream + - COUNT 100
 * (pipelined: one round trip) and a post is one XADD, acknowledged by the
 * ID it answers.
 *
 * Older versions kept entries as JSON objects in the list guestbook:entries
 * (newest first). wh_gb_cmd_migrate moves them into the stream once, oldest
 * first, inside Redis (a Lua script: Redis's own cjson decodes them, so no
 * JSON code of ours), and keeps the list's items under
 * guestbook:entries:migrated: nothing anyone wrote is lost by the upgrade.
 * It is atomic and does nothing once the list is gone, so every connection
 * sends it first and none of its views can come before it.
 *
 * wh_gb_cmd_* fill argv arrays for redisCommandArgv, redisAppendCommandArgv
 * or wh_redis_command (hiredis copies the arguments).
 */
#ifndef WH_APPS_GUESTBOOK_REDIS_H
#define WH_APPS_GUESTBOOK_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "apps/common/guestbook_page.h"

#define WH_GB_KEY_STREAM   "guestbook:stream"
#define WH_GB_KEY_VISITORS "guestbook:visitors"
#define WH_GB_KEY_OLD_LIST "guestbook:entries"          /* before the stream */
#define WH_GB_KEY_MIGRATED "guestbook:entries:migrated" /* its items, kept */

struct redisReply;

/* One command as an argv array. argv may point into c->num and into strings
 * of the caller (an entry's name and message). */
typedef struct wh_gb_cmd {
    int argc;
    const char *argv[12];
    size_t argvlen[12];
    char num[24];
} wh_gb_cmd;

/* INCR guestbook:visitors  (reply: INTEGER, the new count) */
void wh_gb_cmd_visit(wh_gb_cmd *c);
/* GET guestbook:visitors  (reply: STRING, or NIL before the first visit) */
void wh_gb_cmd_visitors(wh_gb_cmd *c);
/* XREVRANGE guestbook:stream + - COUNT 100  (reply: ARRAY of [id, [field, value...]],
 * newest first; read it with wh_gb_redis_entries) */
void wh_gb_cmd_list(wh_gb_cmd *c);
/* XADD guestbook:stream MAXLEN 1000 * t T name N msg M  (reply: STRING, the new ID: the ack) */
void wh_gb_cmd_add(wh_gb_cmd *c, int64_t time_s, const char *name, size_t name_len, const char *msg,
                   size_t msg_len);
/* EVAL of the migration script  (reply: INTEGER, entries moved; 0 when
 * there was nothing to move; an ERROR if the script failed, which leaves
 * the old list as it was) */
void wh_gb_cmd_migrate(wh_gb_cmd *c);

/* Reads an XREVRANGE reply into out[0..max): pointers into the reply, valid
 * while it lives. Items without a msg field are skipped; a missing name is
 * WH_GB_DEFAULT_NAME, a missing or bad t is 0. Returns how many were read. */
size_t wh_gb_redis_entries(const struct redisReply *r, wh_gb_entry *out, size_t max);

#endif
