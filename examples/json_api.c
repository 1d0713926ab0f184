/* json_api: a small REST service on libwharf, with JSON from jansson.
 *
 *   json_api [--port N] [--host ADDR] [--threads N] [--token T] [--max-upload BYTES]
 *
 *   GET    /items?limit=N&offset=M&tag=T&q=TEXT  a page of items; every tag= must match,
 *                                                q is a case-insensitive part of the name
 *   POST   /items           create from {"name": "..", "price": 1.5, "tags": [".."]}
 *                           (application/json) -> 201, Location: /items/ID
 *   GET    /items/:id       one item
 *   DELETE /items/:id       204
 *   PUT    /items/:id/image a streamed upload (Authorization: Bearer T) of any size up to
 *                           --max-upload -> {"id": ID, "bytes": N, "checksum": "CRC-32 in hex"}
 *
 * Every error, the engine's own included, is {"error": {"status": N, "message": ".."}}.
 * Items live in memory only. Port 0 (the default is 8080) picks a free port; the bound
 * address is printed as "listening ADDR". SIGINT/SIGTERM stop it gracefully.
 *
 * The library knows nothing of JSON: jansson and zlib (for crc32) are this example's own
 * dependencies.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zlib.h>

#include "wharf/http.h"
#include "wharf/http_data.h"
#include "wharf/server.h"

/* ---- the store ---------------------------------------------------------- */

/* wh_server runs handlers on several worker threads at once, and they all share this one
 * store, so a mutex guards it. It is held only for in-memory work on the store (no I/O, no
 * respond call, nothing that waits), so a worker never blocks on it for long. Only code
 * holding the lock touches the store's json_t objects: responses get deep copies, which
 * their thread owns alone (jansson objects are not safe to share unlocked). */
struct slot {
    json_int_t id;
    json_t *item; /* {"id", "name", "price", "tags", "created", "image"} */
};

struct app {
    pthread_mutex_t lock;
    struct slot *v; /* ascending ids: new items go at the end */
    size_t n, cap;
    json_int_t next_id;
    wh_router *router;
    const char *token;
    long long max_upload;
};

/* The index of id in a->v, or -1. Lock held. */
static ssize_t store_find(const struct app *a, json_int_t id)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->v[mid].id == id) return (ssize_t)mid;
        if (a->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* A copy of item id for the caller, or NULL if there is none. */
static json_t *store_get(struct app *a, json_int_t id)
{
    pthread_mutex_lock(&a->lock);
    ssize_t i = store_find(a, id);
    json_t *copy = i < 0 ? NULL : json_deep_copy(a->v[i].item);
    pthread_mutex_unlock(&a->lock);
    return copy;
}

static bool store_has(struct app *a, json_int_t id)
{
    pthread_mutex_lock(&a->lock);
    bool found = store_find(a, id) >= 0;
    pthread_mutex_unlock(&a->lock);
    return found;
}

/* ---- JSON replies ------------------------------------------------------- */

/* Sends v (and drops our reference to it). */
static void reply_json(wh_http_req *r, int status, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text) {
        wh_http_respond_error(r, 500);
        return;
    }
    wh_http_respond(r, status, "application/json", text, strlen(text));
    free(text);
}

static json_t *error_json(int status, const char *message)
{
    return json_pack("{s:{s:i, s:s}}", "error", "status", status, "message", message);
}

static void reply_error(wh_http_req *r, int status, const char *message)
{
    reply_json(r, status, error_json(status, message));
}

/* Renders the engine's own errors (unknown paths, 405, malformed requests, 500) in the
 * same shape as ours. It runs on any worker thread, and r is NULL when the request could
 * not be parsed at all. */
static int error_body(int status, const wh_http_req *r, char *buf, size_t cap, const char **type,
                      void *ud)
{
    json_t *e = error_json(status, wh_http_reason(status));
    size_t n = e ? json_dumpb(e, buf, cap, JSON_COMPACT) : 0;
    json_decref(e);
    if (n == 0 || n > cap) return -1; /* keep the built-in page */
    *type = "application/json";
    return (int)n;
}

/* ---- request pieces ----------------------------------------------------- */

/* A decimal id of 1 to 18 digits (no sign, no spaces), or -1. */
static json_int_t parse_id(const char *p, size_t len)
{
    if (len == 0 || len > 18) return -1;
    json_int_t id = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        id = id * 10 + (p[i] - '0');
    }
    return id;
}

/* The :id of the route, already percent-decoded by the router. */
static json_int_t param_id(const wh_http_req *r)
{
    wh_str s = wh_http_req_param(r, "id");
    return parse_id(s.p, s.len);
}

/* Reads query parameter name as a number in [min, max] into *out (left alone when absent).
 * 0, or -1 after answering 400. */
static int query_int(wh_http_req *r, const char *name, long long min, long long max, long long *out)
{
    char buf[24], *end;
    ssize_t n = wh_http_req_query_get(r, name, buf, sizeof buf);
    if (n == -ENOENT) return 0;
    long long v = n > 0 ? strtoll(buf, &end, 10) : 0;
    if (n <= 0 || *end || v < min || v > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", name, min, max);
        reply_error(r, 400, msg);
        return -1;
    }
    *out = v;
    return 0;
}

/* True if the tags array of item holds tag. */
static bool has_tag(const json_t *item, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(item, "tags"), i, t)
    {
        if (!strcmp(json_string_value(t), tag)) return true;
    }
    return false;
}

/* ---- the routes --------------------------------------------------------- */

#define MAX_TAGS    8
#define MAX_TAG_LEN 32

static void list_items(wh_http_req *r, void *ud)
{
    struct app *a = ud;
    /* Validating the whole query once makes a malformed escape a 400 wherever it is,
     * not only in the parameters we happen to look at. */
    if (wh_http_form_decode(wh_http_req_query(r), NULL, 0) < 0) {
        reply_error(r, 400, "malformed percent-escape in the query");
        return;
    }
    long long limit = 20, offset = 0;
    if (query_int(r, "limit", 1, 100, &limit) < 0 ||
        query_int(r, "offset", 0, 1LL << 40, &offset) < 0)
        return;
    char q[128] = "";
    if (wh_http_req_query_get(r, "q", q, sizeof q) == -ENOSPC) {
        reply_error(r, 400, "q is too long");
        return;
    }
    /* tag= may repeat, so walk every pair rather than asking for the first one. */
    char tags[MAX_TAGS][MAX_TAG_LEN + 1];
    unsigned ntags = 0;
    wh_http_form_iter it;
    wh_http_form_pair kv;
    wh_http_form_iter_init(&it, wh_http_req_query(r));
    while (wh_http_form_next(&it, &kv)) {
        if (!wh_http_form_name_eq(kv.name, "tag")) continue;
        ssize_t n =
            ntags < MAX_TAGS ? wh_http_form_decode(kv.value, tags[ntags], MAX_TAG_LEN) : -E2BIG;
        if (n < 0) {
            reply_error(r, 400, n == -E2BIG ? "too many tag parameters" : "tag is too long");
            return;
        }
        tags[ntags++][n] = '\0';
    }

    json_t *page = json_array();
    long long total = 0;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n && page; i++) {
        json_t *item = a->v[i].item;
        bool ok = !*q || strcasestr(json_string_value(json_object_get(item, "name")), q);
        for (unsigned t = 0; ok && t < ntags; t++)
            ok = has_tag(item, tags[t]);
        if (!ok) continue;
        if (total >= offset && total < offset + limit)
            json_array_append_new(page, json_deep_copy(item));
        total++;
    }
    pthread_mutex_unlock(&a->lock);
    reply_json(r, 200,
               json_pack("{s:o, s:I, s:I, s:I}", "items", page, "total", (json_int_t)total, "limit",
                         (json_int_t)limit, "offset", (json_int_t)offset));
}

/* Checks the fields of a new item; NULL if they are fine, else why not (for a 422). */
static const char *check_item(const char *name, double price, json_t *tags)
{
    size_t i;
    json_t *t;
    if (!*name || strlen(name) > 200) return "name must have 1 to 200 bytes";
    if (!(price >= 0 && price < 1e12)) return "price must be a number from 0 to 1e12";
    if (tags && !json_is_array(tags)) return "tags must be an array of strings";
    if (json_array_size(tags) > MAX_TAGS) return "at most 8 tags";
    json_array_foreach(tags, i, t)
    {
        if (!json_is_string(t) || json_string_length(t) == 0 ||
            json_string_length(t) > MAX_TAG_LEN ||
            strlen(json_string_value(t)) != json_string_length(t))
            return "every tag must be a string of 1 to 32 bytes";
    }
    return NULL;
}

static void create_item(wh_http_req *r, void *ud)
{
    struct app *a = ud;
    if (!wh_http_media_type_is(wh_http_req_header(r, "Content-Type"), "application/json")) {
        reply_error(r, 415, "Content-Type must be application/json");
        return;
    }
    wh_str body = wh_http_req_body(r);
    json_error_t err;
    json_t *in = json_loadb(body.p, body.len, JSON_REJECT_DUPLICATES, &err);
    if (!in) {
        /* The parser says what is wrong and where: worth passing on to the client. */
        char msg[JSON_ERROR_TEXT_LENGTH + 16];
        snprintf(msg, sizeof msg, "invalid JSON: %s", err.text);
        json_t *e = error_json(400, msg);
        json_object_update_new(json_object_get(e, "error"),
                               json_pack("{s:i, s:i, s:i}", "line", err.line, "column", err.column,
                                         "position", err.position));
        reply_json(r, 400, e);
        return;
    }
    const char *name = NULL;
    double price = 0;
    json_t *tags = NULL;
    /* JSON_STRICT: a field we do not know is an error, not something silently dropped. */
    const char *why = json_unpack_ex(in, &err, JSON_STRICT, "{s:s, s:F, s?o}", "name", &name,
                                     "price", &price, "tags", &tags) < 0
                          ? err.text
                          : check_item(name, price, tags);
    if (why) {
        reply_error(r, 422, why);
        json_decref(in);
        return;
    }

    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    /* Built before taking the lock, which then only has to number and insert it. The item
     * shares nothing with the request's JSON, which this thread frees unlocked. */
    json_t *item =
        json_pack("{s:i, s:s, s:f, s:o, s:s, s:n}", "id", 0, "name", name, "price", price, "tags",
                  tags ? json_deep_copy(tags) : json_array(), "created", created, "image");
    json_decref(in);
    json_t *copy = NULL;
    pthread_mutex_lock(&a->lock);
    json_int_t id = a->next_id;
    if (item && a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        struct slot *v = realloc(a->v, cap * sizeof *v);
        if (v) a->v = v, a->cap = cap;
    }
    if (item && a->n < a->cap) {
        json_integer_set(json_object_get(item, "id"), id);
        a->v[a->n++] = (struct slot){id, item};
        a->next_id++;
        copy = json_deep_copy(item);
    } else {
        json_decref(item);
    }
    pthread_mutex_unlock(&a->lock);
    if (!copy) {
        reply_error(r, 500, "out of memory");
        return;
    }
    char location[48];
    snprintf(location, sizeof location, "/items/%" JSON_INTEGER_FORMAT, id);
    wh_http_resp_header(r, "Location", location);
    reply_json(r, 201, copy);
}

static void get_item(wh_http_req *r, void *ud)
{
    json_int_t id = param_id(r);
    json_t *item = id < 0 ? NULL : store_get(ud, id);
    if (id < 0)
        reply_error(r, 400, "the item id must be a decimal number");
    else if (!item)
        reply_error(r, 404, "no such item");
    else
        reply_json(r, 200, item);
}

static void delete_item(wh_http_req *r, void *ud)
{
    struct app *a = ud;
    json_int_t id = param_id(r);
    if (id < 0) {
        reply_error(r, 400, "the item id must be a decimal number");
        return;
    }
    json_t *gone = NULL;
    pthread_mutex_lock(&a->lock);
    ssize_t i = store_find(a, id);
    if (i >= 0) {
        gone = a->v[i].item;
        memmove(&a->v[i], &a->v[i + 1], (a->n - (size_t)i - 1) * sizeof *a->v);
        a->n--;
    }
    pthread_mutex_unlock(&a->lock);
    if (!gone) {
        reply_error(r, 404, "no such item");
        return;
    }
    json_decref(gone); /* outside the lock: nobody else can reach it any more */
    wh_http_respond(r, 204, NULL, NULL, 0);
}

/* ---- PUT /items/:id/image: taken in on_head, before its body ------------ */

struct upload {
    struct app *app;
    json_int_t id;
    long long bytes;
    uLong crc;
};

/* Runs for every piece of the body as it arrives: the upload costs one read buffer
 * whatever its size. A real service would write the pieces to a file. */
static void upload_piece(wh_http_req *r, const char *data, size_t len, int status, void *ud)
{
    struct upload *u = ud;
    if (status < 0) { /* the client left (the reply then only frees r) or bad chunking */
        reply_error(r, 400, "the upload ended early");
        free(u);
        return;
    }
    if (len) /* crc32() with no data returns a fresh start value, not u->crc */
        u->crc = crc32(u->crc, (const Bytef *)data, (uInt)len);
    u->bytes += (long long)len;
    if (u->bytes > u->app->max_upload) { /* chunked bodies declare no length up front */
        reply_error(r, 413, "the image is too large");
        free(u);
        return;
    }
    if (status != WH_HTTP_BODY_END) return;

    char sum[16];
    snprintf(sum, sizeof sum, "%08lx", (unsigned long)u->crc);
    json_t *image = json_pack("{s:I, s:s}", "bytes", (json_int_t)u->bytes, "checksum", sum);
    pthread_mutex_lock(&u->app->lock);
    ssize_t i = store_find(u->app, u->id);
    if (i >= 0) json_object_set_new(u->app->v[i].item, "image", image); /* the store's now */
    pthread_mutex_unlock(&u->app->lock);
    if (i < 0) {
        json_decref(image);
        reply_error(r, 404, "the item was deleted during the upload");
    } else {
        reply_json(r, 200,
                   json_pack("{s:I, s:I, s:s}", "id", u->id, "bytes", (json_int_t)u->bytes,
                             "checksum", sum));
    }
    free(u);
}

/* The item id of a path "/items/ID/image" (percent-decoded as the router would), -2 if the
 * path has that shape but ID is not a number, -1 if it is another path. */
static json_int_t upload_path_id(wh_str path)
{
    static const char pre[] = "/items/", suf[] = "/image";
    size_t np = sizeof pre - 1, ns = sizeof suf - 1;
    if (path.len <= np + ns || memcmp(path.p, pre, np) || memcmp(path.p + path.len - ns, suf, ns))
        return -1;
    wh_str seg = {path.p + np, path.len - np - ns};
    if (memchr(seg.p, '/', seg.len)) return -1;
    char id[32];
    ssize_t n = wh_http_pct_decode(seg, id, sizeof id);
    json_int_t v = n > 0 ? parse_id(id, (size_t)n) : -1;
    return v < 0 ? -2 : v;
}

/* True if Authorization is "Bearer <token>" (the scheme is case-insensitive). */
static bool authorized(const wh_http_req *r, const char *token)
{
    wh_str h = wh_http_req_header(r, "Authorization");
    if (!h.p || h.len < 7 || strncasecmp(h.p, "Bearer ", 7)) return false;
    size_t i = 7;
    while (i < h.len && h.p[i] == ' ')
        i++;
    size_t len = strlen(token);
    if (h.len - i != len) return false;
    /* Compare every byte, so the time taken does not tell how much of a guess was right. */
    unsigned char diff = 0;
    for (size_t k = 0; k < len; k++)
        diff |= (unsigned char)(h.p[i + k] ^ token[k]);
    return diff == 0;
}

/* Runs for every request once its head is in, before any of its body is read. All but
 * the upload return at once and take the usual buffered path to the router. Answering
 * here refuses the body unread: a client that sent Expect: 100-continue never sends it.
 * If body bytes were due, the connection closes after the answer, unless they were
 * already coming and at most max_discard remain: those are dropped as they arrive. */
static void on_head(wh_http_req *r, void *ud)
{
    struct app *a = ud;
    wh_str m = wh_http_req_method(r);
    json_int_t id = upload_path_id(wh_http_req_path(r));
    if (id == -1 || m.len != 3 || memcmp(m.p, "PUT", 3))
        return; /* other methods on the upload path get the router's 405 */
    if (!authorized(r, a->token)) {
        wh_http_resp_header(r, "WWW-Authenticate", "Bearer realm=\"items\"");
        reply_error(r, 401, "an upload needs Authorization: Bearer <token>");
        return;
    }
    if (id < 0) {
        reply_error(r, 400, "the item id must be a decimal number");
        return;
    }
    if (wh_http_req_content_length(r) > a->max_upload) {
        reply_error(r, 413, "the image is too large");
        return;
    }
    if (!store_has(a, id)) {
        reply_error(r, 404, "no such item");
        return;
    }
    struct upload *u = malloc(sizeof *u);
    if (!u) {
        reply_error(r, 503, "out of memory");
        return;
    }
    *u = (struct upload){a, id, 0, crc32(0, NULL, 0)};
    if (!wh_http_req_has_body(r)) { /* an empty image: no piece would ever come */
        upload_piece(r, "", 0, WH_HTTP_BODY_END, u);
    } else if (wh_http_req_read_body(r, upload_piece, u) < 0) {
        free(u);
        reply_error(r, 500, "cannot take the upload");
    }
}

/* The router's entry for the upload: on_head always answers it, so this runs only if
 * that is broken. It is registered so that GET /items/1/image gets 405 with Allow. */
static void upload_route(wh_http_req *r, void *ud)
{
    reply_error(r, 500, "the upload was not taken in on_head");
}

/* The engine gives its handler's ud to on_head and error_body too. With a handler of our
 * own in front of the router, all three get the app. */
static void handle(wh_http_req *r, void *ud)
{
    struct app *a = ud;
    wh_router_handle(r, a->router);
}

/* ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct app a = {.lock = PTHREAD_MUTEX_INITIALIZER,
                    .next_id = 1,
                    .token = "wharf",
                    .max_upload = 256LL << 20};
    wh_http_opts o;
    wh_http_opts_init(&o);
    o.max_body = 64 << 10; /* buffered bodies (new items); the upload is streamed */
    o.on_head = on_head;
    o.error_body = error_body;
    wh_server_opts so;
    wh_server_opts_init(&so);
    const char *host = "0.0.0.0";
    int port = 8080;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(f, "--port") && ++i)
            port = atoi(v);
        else if (v && !strcmp(f, "--host") && ++i)
            host = v;
        else if (v && !strcmp(f, "--threads") && ++i)
            so.threads = (unsigned)atoi(v);
        else if (v && !strcmp(f, "--token") && ++i)
            a.token = v;
        else if (v && !strcmp(f, "--max-upload") && ++i)
            a.max_upload = atoll(v);
        else {
            fprintf(stderr, "usage: json_api [--port N] [--host ADDR] [--threads N] [--token T] "
                            "[--max-upload BYTES]\n");
            return 2;
        }
    }

    wh_signal_block_defaults(); /* before any thread: wh_server_run takes SIGINT/SIGTERM */
    wh_http_server *hs = NULL;
    wh_server *s = NULL;
    char addr[128];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    int rc = wh_router_new(&a.router);
    if (rc == 0) rc = wh_router_add(a.router, "GET", "/items", list_items, &a);
    if (rc == 0) rc = wh_router_add(a.router, "POST", "/items", create_item, &a);
    if (rc == 0) rc = wh_router_add(a.router, "GET", "/items/:id", get_item, &a);
    if (rc == 0) rc = wh_router_add(a.router, "DELETE", "/items/:id", delete_item, &a);
    if (rc == 0) rc = wh_router_add(a.router, "PUT", "/items/:id/image", upload_route, &a);
    if (rc == 0) rc = wh_http_server_new(&hs, &o, handle, &a);
    if (rc == 0) wh_http_server_net_opts(hs, &so.net);
    if (rc == 0) rc = wh_server_new(&s, &so, wh_http_server_cbs(hs), hs);
    if (rc == 0) rc = wh_server_listen(s, addr);
    if (rc == 0) rc = wh_server_start(s);
    if (rc == 0) {
        wh_sockaddr local;
        char text[128];
        if (wh_server_local_addr(s, 0, &local) == 0 &&
            wh_addr_format(&local, text, sizeof text) > 0)
            printf("listening %s\n", text);
        fflush(stdout);
        rc = wh_server_run(s);
    }
    if (rc < 0) fprintf(stderr, "json_api: %s\n", wh_strerror(rc));
    wh_server_free(s);
    wh_http_server_free(hs);
    wh_router_free(a.router);
    for (size_t i = 0; i < a.n; i++)
        json_decref(a.v[i].item);
    free(a.v);
    return rc < 0 ? 1 : 0;
}
