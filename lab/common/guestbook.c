/* The guestbook with BLOCKING Redis access (hiredis synchronous API).
 *
 * The data model comes from src/apps/common/guestbook_redis.h and the page
 * from guestbook_page.h, so the lab and wharfd (which talks to Redis asynchronously) share one
 * guestbook. Each model gives every process/thread its own lab_redis: a
 * redisContext is not thread-safe, and a forked child must not reuse its
 * parent's socket.
 */
#include "lab_internal.h"

#include "wharf/http_data.h"
#include "wharf/http_parse.h"

#include "apps/common/guestbook_page.h"
#include "apps/common/guestbook_redis.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTML "text/html; charset=utf-8"

/* Hands the buffer's heap storage to out (NULL when empty or out of memory). */
static void take(lab_resp *out, wh_gb_buf *b)
{
    if (b->oom || !b->owned) {
        wh_gb_buf_free(b);
        out->body = NULL;
        out->body_len = 0;
        return;
    }
    out->body = b->data;
    out->body_len = b->len;
}

static void error_page(lab_resp *out, int status, const char *why, const char **ctype)
{
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    wh_gb_render_error(&b, status, why);
    out->status = status;
    *ctype = HTML;
    take(out, &b);
}

/* Sends the commands in one write and reads every reply (one round trip).
 * Returns 0, or -1 after dropping the connection (Redis is gone or confused). */
static int pipeline(lab_redis *r, wh_gb_cmd *cmds, int n, redisReply **replies)
{
    redisContext *c = lab_redis_get(r);
    if (!c) return -1;
    for (int i = 0; i < n; i++)
        redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen);
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(c, &rep) != REDIS_OK || !rep) {
            for (int j = 0; j < i; j++)
                freeReplyObject(replies[j]);
            lab_redis_drop(r);
            return -1;
        }
        replies[i] = rep;
    }
    return 0;
}

static void show(lab_redis *redis, lab_resp *out, const char **ctype)
{
    wh_gb_cmd cmds[2];
    wh_gb_cmd_visit(&cmds[0]);
    wh_gb_cmd_list(&cmds[1]);
    redisReply *rep[2];
    if (pipeline(redis, cmds, 2, rep) < 0) {
        error_page(out, 503, "The guestbook's database is not reachable.", ctype);
        return;
    }
    if (rep[0]->type != REDIS_REPLY_INTEGER || rep[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep[0]);
        freeReplyObject(rep[1]);
        error_page(out, 500, "Unexpected reply from the database.", ctype);
        return;
    }
    wh_gb_entry entries[WH_GB_PAGE_ENTRIES];
    size_t k = wh_gb_redis_entries(rep[1], entries, WH_GB_PAGE_ENTRIES);
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    wh_gb_render_page(&b, entries, k, (uint64_t)rep[0]->integer, NULL);
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    if (b.oom) {
        wh_gb_buf_free(&b);
        error_page(out, 500, "Out of memory.", ctype);
        return;
    }
    out->status = 200;
    *ctype = HTML;
    take(out, &b);
}

static void post(const wh_http_parsed *req, const char *body, size_t body_len, lab_redis *redis,
                 lab_resp *out, const char **ctype, const char **extra)
{
    wh_str ct = wh_http_parsed_header(req, "Content-Type");
    if (!wh_http_media_type_is(ct, WH_GB_CONTENT_TYPE)) {
        error_page(out, 415, wh_gb_form_strerror(WH_GB_FORM_BAD_CONTENT_TYPE), ctype);
        return;
    }
    wh_gb_form form;
    int rc = wh_gb_form_parse(body, body_len, &form);
    if (rc != WH_GB_FORM_OK) {
        error_page(out, wh_gb_form_status(rc), wh_gb_form_strerror(rc), ctype);
        return;
    }
    wh_gb_cmd cmd;
    wh_gb_cmd_add(&cmd, (int64_t)time(NULL), form.name, form.name_len, form.message,
                  form.message_len);
    redisReply *rep;
    if (pipeline(redis, &cmd, 1, &rep) < 0) {
        error_page(out, 503, "The guestbook's database is not reachable.", ctype);
        return;
    }
    /* The entry is stored once XADD answered with its ID. */
    bool ok = rep->type == REDIS_REPLY_STRING;
    freeReplyObject(rep);
    if (!ok) {
        error_page(out, 500, "The database refused the entry.", ctype);
        return;
    }
    /* Post/Redirect/Get: a reload shows the page instead of posting again
     * (RFC 9110 section 15.4.4, 303 See Other). */
    out->status = 303;
    *extra = "Location: " WH_GB_PATH "\r\n";
}

void lab_guestbook(const wh_http_parsed *req, const char *body, size_t body_len, lab_redis *redis,
                   lab_resp *out, const char **ctype, const char **extra)
{
    if (req->method_id == WH_HTTP_M_POST)
        post(req, body, body_len, redis, out, ctype, extra);
    else
        show(redis, out, ctype);
}
