/* The guestbook's data model in Redis: see guestbook_redis.h. */
#include "apps/common/guestbook_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#define ARG(c, lit)                                                                                \
    do {                                                                                           \
        (c)->argv[(c)->argc] = (lit);                                                              \
        (c)->argvlen[(c)->argc++] = sizeof(lit) - 1;                                               \
    } while (0)

static void arg_n(wh_gb_cmd *c, const char *p, size_t n)
{
    c->argv[c->argc] = p;
    c->argvlen[c->argc++] = n;
}

/* The bounds are protocol text; the static asserts keep them in step. */
_Static_assert(WH_GB_PAGE_ENTRIES == 100, "COUNT below");
_Static_assert(WH_GB_KEEP_ENTRIES == 1000, "MAXLEN below");

void wh_gb_cmd_visit(wh_gb_cmd *c)
{
    c->argc = 0;
    ARG(c, "INCR");
    ARG(c, WH_GB_KEY_VISITORS);
}

void wh_gb_cmd_visitors(wh_gb_cmd *c)
{
    c->argc = 0;
    ARG(c, "GET");
    ARG(c, WH_GB_KEY_VISITORS);
}

void wh_gb_cmd_list(wh_gb_cmd *c)
{
    c->argc = 0;
    ARG(c, "XREVRANGE");
    ARG(c, WH_GB_KEY_STREAM);
    ARG(c, "+");
    ARG(c, "-");
    ARG(c, "COUNT");
    ARG(c, "100");
}

void wh_gb_cmd_add(wh_gb_cmd *c, int64_t time_s, const char *name, size_t name_len, const char *msg,
                   size_t msg_len)
{
    c->argc = 0;
    ARG(c, "XADD");
    ARG(c, WH_GB_KEY_STREAM);
    /* Exact, not "~": the page and the embedded store keep exactly 1000. */
    ARG(c, "MAXLEN");
    ARG(c, "1000");
    ARG(c, "*");
    ARG(c, "t");
    int n = snprintf(c->num, sizeof c->num, "%lld", (long long)time_s);
    arg_n(c, c->num, (size_t)n);
    ARG(c, "name");
    arg_n(c, name, name_len);
    ARG(c, "msg");
    arg_n(c, msg, msg_len);
}

/* KEYS: the old list, the stream, where the old items are kept. Oldest
 * first, so the stream's order (its IDs) is the order they were posted in.
 * An item cjson cannot read, or without a message, stays in the kept copy
 * only. pcall: a bad item must not abort the script half-way. */
static const char migrate_lua[] =
    "if redis.call('TYPE', KEYS[1]).ok ~= 'list' then return 0 end\n"
    "local items = redis.call('LRANGE', KEYS[1], 0, -1)\n"
    "local n = 0\n"
    "for i = #items, 1, -1 do\n"
    "  local ok, e = pcall(cjson.decode, items[i])\n"
    "  if ok and type(e) == 'table' and type(e.msg) == 'string' then\n"
    "    local name = type(e.name) == 'string' and e.name or '" WH_GB_DEFAULT_NAME "'\n"
    "    local t = type(e.t) == 'number' and string.format('%d', e.t) or '0'\n"
    "    redis.call('XADD', KEYS[2], 'MAXLEN', '1000', '*', 't', t, 'name', name, 'msg', e.msg)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "for i = 1, #items, 500 do\n"
    "  redis.call('RPUSH', KEYS[3], unpack(items, i, math.min(i + 499, #items)))\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return n\n";

void wh_gb_cmd_migrate(wh_gb_cmd *c)
{
    c->argc = 0;
    ARG(c, "EVAL");
    arg_n(c, migrate_lua, sizeof migrate_lua - 1);
    ARG(c, "3");
    ARG(c, WH_GB_KEY_OLD_LIST);
    ARG(c, WH_GB_KEY_STREAM);
    ARG(c, WH_GB_KEY_MIGRATED);
}

/* The value of field `name` in a flat [field, value, ...] array, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name, size_t nl)
{
    for (size_t k = 0; k + 1 < fields->elements; k += 2) {
        const redisReply *f = fields->element[k], *v = fields->element[k + 1];
        if (f->type == REDIS_REPLY_STRING && f->len == nl && !memcmp(f->str, name, nl) &&
            v->type == REDIS_REPLY_STRING)
            return v;
    }
    return NULL;
}

size_t wh_gb_redis_entries(const redisReply *r, wh_gb_entry *out, size_t max)
{
    size_t n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t i = 0; i < r->elements && n < max; i++) {
        const redisReply *it = r->element[i];
        if (it->type != REDIS_REPLY_ARRAY || it->elements != 2 ||
            it->element[0]->type != REDIS_REPLY_STRING || it->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *fields = it->element[1];
        const redisReply *msg = field(fields, "msg", 3);
        if (!msg) continue;
        const redisReply *name = field(fields, "name", 4), *t = field(fields, "t", 1);
        wh_gb_entry *e = &out[n++];
        e->id = it->element[0]->str;
        e->id_len = it->element[0]->len;
        e->msg = msg->str;
        e->msg_len = msg->len;
        e->name = name ? name->str : WH_GB_DEFAULT_NAME;
        e->name_len = name ? name->len : strlen(WH_GB_DEFAULT_NAME);
        char *end;
        long long ts = t ? strtoll(t->str, &end, 10) : 0;
        e->time_s = t && *end == '\0' && ts > 0 ? ts : 0;
    }
    return n;
}
