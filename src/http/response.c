/* Request accessors and responses (RFC 9110 §6.4.1, §8.6; RFC 9112 §6-7). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/errpage.h"
#include "http/http_internal.h"
#include "http/resphead.h"

void wh__http_exchange_done(wh_http_req *r);
void wh__http_detach_conn(wh_http_req *r);
void wh__http_req_release(wh_http_req *r);

/* ---- accessors ---- */

wh_str wh_http_req_method(const wh_http_req *r)
{
    return r->p.method;
}
wh_str wh_http_req_target(const wh_http_req *r)
{
    return r->p.target;
}
wh_str wh_http_req_path(const wh_http_req *r)
{
    return r->p.path;
}
wh_str wh_http_req_query(const wh_http_req *r)
{
    return r->p.query;
}
int wh_http_req_version(const wh_http_req *r)
{
    return r->p.version;
}
wh_str wh_http_req_header(const wh_http_req *r, const char *name)
{
    return wh_http_parsed_header(&r->p, name);
}
unsigned wh_http_req_header_count(const wh_http_req *r)
{
    return r->p.nheaders;
}
void wh_http_req_header_at(const wh_http_req *r, unsigned i, wh_str *name, wh_str *value)
{
    if (i >= r->p.nheaders) {
        *name = *value = (wh_str){NULL, 0};
        return;
    }
    *name = r->p.headers[i].name;
    *value = r->p.headers[i].value;
}
wh_str wh_http_req_body(const wh_http_req *r)
{
    return r->body;
}
wh_str wh_http_req_param(const wh_http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < r->nparams; i++)
        if (r->params[i].nlen == n && !memcmp(r->params[i].name, name, n))
            return r->params[i].value;
    return (wh_str){NULL, 0};
}
wh_conn *wh_http_req_conn(const wh_http_req *r)
{
    return r->conn;
}
const wh_sockaddr *wh_http_req_peer(const wh_http_req *r)
{
    return r->conn ? wh_conn_peer(r->conn) : NULL;
}
wh_loop *wh_http_req_loop(const wh_http_req *r)
{
    return r->loop;
}
wh_http_server *wh_http_req_server(const wh_http_req *r)
{
    return r->srv;
}
uint64_t wh_http_req_start_ms(const wh_http_req *r)
{
    return r->start_ms;
}
bool wh_http_req_wants_upgrade(const wh_http_req *r)
{
    return r->p.upgrade;
}
int wh_http_resp_status(const wh_http_req *r)
{
    return r->status;
}
uint64_t wh_http_resp_bytes(const wh_http_req *r)
{
    return r->bytes;
}
void wh_http_resp_close(wh_http_req *r)
{
    r->close = true;
}

void wh__http_req_add_param(wh_http_req *r, const char *name, size_t nlen, wh_str value)
{
    if (r->nparams < WH__HTTP_MAX_PARAMS) {
        r->params[r->nparams].name = name;
        r->params[r->nparams].nlen = nlen;
        r->params[r->nparams].value = value;
        r->nparams++;
    }
}

int wh_http_req_defer(wh_http_req *r)
{
    if (r->state == WH__R_DONE || r->upgraded) return -EINVAL;
    r->deferred = true;
    return 0;
}

/* ---- response headers ---- */

int wh_http_resp_header(wh_http_req *r, const char *name, const char *value)
{
    if (r->state != WH__R_NEW) return -EINVAL;
    size_t nl, vl;
    int kind = wh__resp_field_check(name, value, &nl, &vl);
    if (kind < 0) return kind;
    if (kind == WH__RF_CLOSE) {
        /* The head says "Connection: close" once, from r->close. */
        r->close = true;
        return 0;
    }
    wh__resp_lines l = {&r->hdrs, &r->hlen, &r->hcap, r->hbuf};
    return wh__resp_lines_add(&l, kind, name, nl, value, vl);
}

int wh__http_resp_fields_plain(wh_http_req *r, const wh__field *f, size_t n)
{
    if (r->state != WH__R_NEW) return -EINVAL;
    wh__resp_lines l = {&r->hdrs, &r->hlen, &r->hcap, r->hbuf};
    return wh__resp_lines_put(&l, f, n);
}

int wh__http_resp_fields_raw(wh_http_req *r, const char *text, size_t n)
{
    if (r->state != WH__R_NEW) return -EINVAL;
    wh__resp_lines l = {&r->hdrs, &r->hlen, &r->hcap, r->hbuf};
    return wh__resp_lines_raw(&l, text, n);
}

/* ---- writing ---- */

/* Common checks before a response starts: a dead connection frees r. */
static int start_check(wh_http_req *r)
{
    if (r->state != WH__R_NEW || r->upgraded) return -EINVAL;
    if (!r->conn) {
        wh__http_req_release(r);
        return -EPIPE;
    }
    return 0;
}

/* Body bytes still due cannot be told from a next request: either they are
 * dropped as they come (cheap: the body is small and on its way) or we close
 * (RFC 9112 §9.6). Decided once, as the head is formatted. */
static inline void settle_close(wh_http_req *r)
{
    if (r->body_unread && !r->close && !wh__http_discardable(r)) r->close = true;
}

/* Formats the head into buf (or a heap buffer if it does not fit). */
static int head_into(wh_http_req *r, char *buf, size_t cap, char **heap, int status,
                     const char *ctype, int64_t clen, bool chunked)
{
    wh__http_loop *hl = r->hl;
    settle_close(r);
    wh_http_head_spec h = {
        .status = status,
        .content_type = ctype,
        .content_length = clen,
        .chunked = chunked,
        .close = r->close,
        .keep_alive = !r->close && r->p.version == 10,
        .date = hl ? wh__http_date(hl) : NULL,
        .server = r->srv->opts.server_name,
        .extra = r->hdrs,
        .extra_len = r->hlen,
    };
    /* A handler's own Server or Date is the first line (wh__resp_lines_add
     * puts it there): extra lines starting otherwise (a file's prepared
     * fields, most responses' fields) need no look. */
    if (h.extra_len && (r->hdrs[0] == 'S' || r->hdrs[0] == 'D')) wh__resp_head_own(&h);
    *heap = NULL;
    int n = wh_http_format_head(buf, cap, &h);
    if (n == -ENOSPC) {
        size_t big =
            r->hlen + 1024 + (ctype ? strlen(ctype) : 0) + (h.server ? strlen(h.server) : 0);
        *heap = malloc(big);
        if (!*heap) return -ENOMEM;
        n = wh_http_format_head(*heap, big, &h);
    }
    return n;
}

static void fail_conn(wh_http_req *r)
{
    /* Out of memory while queueing: nothing sane to send. */
    r->close = true;
    wh_conn_abort(r->conn);
}

/* Queues the head buf[0..n) and, if send_body, the body: a small body joins
 * the head in buf (one copy, one iovec). */
static inline void send_head_body(wh_http_req *r, char *buf, size_t cap, size_t n, const void *body,
                                  size_t len, bool send_body)
{
    if (send_body && n + len <= cap) {
        memcpy(buf + n, body, len);
        if (wh_conn_write(r->conn, buf, n + len) < 0) fail_conn(r);
    } else if (wh_conn_write(r->conn, buf, n) < 0 ||
               (send_body && wh_conn_write(r->conn, body, len) < 0)) {
        fail_conn(r);
    }
}

/* Arguments a response is refused for before anything is queued, so that
 * r can still be answered (a handler's fallback, or the engine's 500). */
static bool args_ok(int status, const char *content_type)
{
    return wh__resp_status_ok(status) && (!content_type || wh__resp_value_ok(content_type));
}

int wh_http_respond(wh_http_req *r, int status, const char *content_type, const void *body,
                    size_t len)
{
    int rc = start_check(r);
    if (rc) return rc;
    if (!args_ok(status, content_type) || (!body && len)) return -EINVAL;
    bool bodyless = wh__resp_bodyless(status);
    bool send_body = !bodyless && !r->head_only && len > 0;
    char buf[2048], *heap;
    int n = head_into(r, buf, sizeof buf, &heap, status, bodyless ? NULL : content_type,
                      bodyless ? -1 : (int64_t)len, false);
    if (n < 0) {
        fail_conn(r);
    } else if (heap) {
        if (wh_conn_write(r->conn, heap, (size_t)n) < 0 ||
            (send_body && wh_conn_write(r->conn, body, len) < 0))
            fail_conn(r);
        free(heap);
    } else {
        send_head_body(r, buf, sizeof buf, (size_t)n, body, len, send_body);
    }
    r->status = status;
    r->bytes = send_body ? len : 0;
    wh__http_exchange_done(r);
    return 0;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUTLIT(p, s) put(p, s, sizeof(s) - 1)

int wh__http_respond_prepared(wh_http_req *r, const char *ctype, const char *fields, size_t flen,
                              const void *body, size_t len)
{
    /* Anything unusual (handler lines, which may carry their own Server or
     * Date, a dead or finished exchange, a head that would not fit) goes
     * the general way. */
    if (r->state != WH__R_NEW || r->upgraded || !r->conn || r->hlen) return 1;
    size_t sl = r->srv->server_len, ctl = strlen(ctype);
    char buf[2048];
    /* status 17, Server 10, Date 37, Content-Type 16, Content-Length 38,
     * Connection 24, final CRLF 2, with room to spare */
    size_t need = 160 + sl + ctl + flen;
    if (need > sizeof buf) return 1;
    wh__http_loop *hl = r->hl;
    settle_close(r);
    /* wh_http_format_head's order and bytes, with every length known; the
     * literals between two values are one copy each. */
    char *p;
    if (r->srv->opts.server_name) {
        p = PUTLIT(buf, "HTTP/1.1 200 OK\r\nServer: ");
        p = put(p, r->srv->opts.server_name, sl);
        p = PUTLIT(p, "\r\n");
    } else {
        p = PUTLIT(buf, "HTTP/1.1 200 OK\r\n");
    }
    if (hl) {
        p = PUTLIT(p, "Date: ");
        p = put(p, wh__http_date(hl), 29);
        p = PUTLIT(p, "\r\nContent-Type: ");
    } else {
        p = PUTLIT(p, "Content-Type: ");
    }
    p = put(p, ctype, ctl);
    p = PUTLIT(p, "\r\nContent-Length: ");
    p = wh__http_put_u64(p, len);
    if (r->close)
        p = PUTLIT(p, "\r\nConnection: close\r\n");
    else if (r->p.version == 10)
        p = PUTLIT(p, "\r\nConnection: keep-alive\r\n");
    else
        p = PUTLIT(p, "\r\n");
    p = put(p, fields, flen);
    p = PUTLIT(p, "\r\n");
    bool send_body = !r->head_only && len > 0;
    send_head_body(r, buf, sizeof buf, (size_t)(p - buf), body, len, send_body);
    r->status = 200;
    r->bytes = send_body ? len : 0;
    wh__http_exchange_done(r);
    return 0;
}

/* Several parts share one release: the count of segments still queued. */
struct parts_hold {
    unsigned left;
    void (*release)(void *ud);
    void *ud;
};

static void parts_seg_done(void *arg)
{
    struct parts_hold *h = arg;
    if (--h->left) return;
    if (h->release) h->release(h->ud);
    free(h);
}

/* Queues parts[0..n) (their sum is total > 0) by reference. release is
 * owed exactly once: on the last segment's done when it is queued, else
 * here. One part needs no holder, so the common case allocates nothing;
 * segments leave (and are dropped on close) in order, but a failure after
 * some were queued must wait for those, hence the count. */
static void queue_parts(wh_http_req *r, const wh_http_body_part *parts, size_t n,
                        void (*release)(void *), void *ud)
{
    size_t nonempty = 0, last = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len) nonempty++, last = i;
    if (nonempty == 1) {
        if (wh_conn_write_ref(r->conn, parts[last].data, parts[last].len, release, ud) < 0) {
            fail_conn(r);
            if (release) release(ud);
        }
        return;
    }
    struct parts_hold *h = malloc(sizeof(*h));
    if (!h) {
        fail_conn(r);
        if (release) release(ud);
        return;
    }
    *h = (struct parts_hold){.left = 1, .release = release, .ud = ud}; /* 1: ours, below */
    for (size_t i = 0; i < n; i++) {
        if (!parts[i].len) continue;
        h->left++;
        if (wh_conn_write_ref(r->conn, parts[i].data, parts[i].len, parts_seg_done, h) < 0) {
            h->left--;
            fail_conn(r); /* what was queued is dropped with the connection */
            break;
        }
    }
    parts_seg_done(h);
}

int wh_http_respond_parts(wh_http_req *r, int status, const char *content_type,
                          const wh_http_body_part *parts, size_t n, void (*release)(void *ud),
                          void *ud)
{
    int rc = start_check(r);
    size_t total = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if ((!parts[i].data && parts[i].len) || parts[i].len > SIZE_MAX - total) rc = -EINVAL;
        total += parts[i].len;
    }
    if (!rc && (!args_ok(status, content_type) || (!parts && n))) rc = -EINVAL;
    if (rc) {
        if (release) release(ud);
        return rc;
    }
    bool bodyless = wh__resp_bodyless(status);
    bool send_body = !bodyless && !r->head_only && total > 0;
    char buf[2048], *heap;
    int hn = head_into(r, buf, sizeof buf, &heap, status, bodyless ? NULL : content_type,
                       bodyless ? -1 : (int64_t)total, false);
    if (hn < 0 || wh_conn_write(r->conn, heap ? heap : buf, (size_t)hn) < 0) {
        fail_conn(r);
        send_body = false;
    }
    free(heap);
    if (send_body)
        queue_parts(r, parts, n, release, ud);
    else if (release)
        release(ud); /* nothing refers to the parts: HEAD, 204/304, a failed head */
    r->status = status;
    r->bytes = send_body ? total : 0;
    if (send_body && total > 65536 && !r->close)
        wh_conn_set_timeout(r->conn, WH__HTTP_TIMEOUT(r->srv, write_timeout_ms));
    wh__http_exchange_done(r);
    return 0;
}

int wh_http_respond_file(wh_http_req *r, int status, const char *content_type, int fd, off_t offset,
                         size_t len, bool close_fd)
{
    int rc = start_check(r);
    if (!rc && !args_ok(status, content_type)) rc = -EINVAL;
    if (rc) {
        if (close_fd) close(fd);
        return rc;
    }
    /* As wh_http_respond: 204 must not have a Content-Length (RFC 9110 §8.6). */
    bool bodyless = wh__resp_bodyless(status);
    char buf[2048], *heap;
    int n = head_into(r, buf, sizeof buf, &heap, status, bodyless ? NULL : content_type,
                      bodyless ? -1 : (int64_t)len, false);
    bool send_body = !r->head_only && len > 0 && !bodyless;
    if (n < 0 || wh_conn_write(r->conn, heap ? heap : buf, (size_t)n) < 0) {
        fail_conn(r);
        send_body = false;
    }
    free(heap);
    if (send_body) {
        if (wh_conn_sendfile(r->conn, fd, offset, len, close_fd) < 0) {
            if (close_fd) close(fd);
            fail_conn(r);
        }
    } else if (close_fd) {
        close(fd);
    }
    r->status = status;
    r->bytes = send_body ? len : 0;
    /* A large body drains for a while: give it the write timeout. */
    if (send_body && len > 65536 && !r->close)
        wh_conn_set_timeout(r->conn, WH__HTTP_TIMEOUT(r->srv, write_timeout_ms));
    wh__http_exchange_done(r);
    return 0;
}

int wh_http_respond_error(wh_http_req *r, int status)
{
    char body[WH__HTTP_ERROR_BODY_MAX];
    const char *type;
    int bl =
        wh__http_error_body(&r->srv->opts, r->srv->hooks_ud, status, r, body, sizeof body, &type);
    /* r was framed whole (head and body read, or the body still due, which
     * closes anyway): the stream is in no doubt, so an error answer keeps the
     * connection, except 408, which says the server is done waiting (RFC 9110
     * §15.5.9). Framing errors never reach here (server.c answers them). */
    if (status == 408) r->close = true;
    return wh_http_respond(r, status, type, body, (size_t)bl);
}

int wh_http_resp_begin_stream(wh_http_req *r, int status, const char *content_type)
{
    int rc = start_check(r);
    if (rc) return rc;
    if (!args_ok(status, content_type)) return -EINVAL;
    /* HTTP/1.0 has no chunked coding: the body ends when we close. */
    if (r->p.version == 10) r->close = true;
    r->chunked = r->p.version == 11 && !wh__resp_bodyless(status);
    char buf[2048], *heap;
    int n = head_into(r, buf, sizeof buf, &heap, status, content_type, -1, r->chunked);
    if (n < 0 || wh_conn_write(r->conn, heap ? heap : buf, (size_t)n) < 0) fail_conn(r);
    free(heap);
    r->status = status;
    r->state = WH__R_STREAMING;
    return 0;
}

int wh_http_resp_stream(wh_http_req *r, const void *data, size_t len)
{
    if (r->state != WH__R_STREAMING) return -EINVAL;
    if (!r->conn) return -EPIPE;
    if (r->head_only || len == 0 || wh__resp_bodyless(r->status)) return 0;
    int rc;
    if (r->chunked) {
        char sz[24];
        int n = wh__resp_chunk_line(sz, len);
        rc = wh_conn_write(r->conn, sz, (size_t)n);
        if (rc >= 0) rc = wh_conn_write(r->conn, data, len);
        if (rc >= 0) rc = wh_conn_write(r->conn, "\r\n", 2);
    } else {
        rc = wh_conn_write(r->conn, data, len);
    }
    if (rc < 0) return rc;
    r->bytes += len;
    return 0;
}

int wh_http_resp_end_stream(wh_http_req *r)
{
    if (r->state != WH__R_STREAMING) return -EINVAL;
    if (!r->conn) {
        wh__http_req_release(r);
        return -EPIPE;
    }
    if (r->chunked && !r->head_only) wh_conn_write(r->conn, "0\r\n\r\n", 5);
    wh__http_exchange_done(r);
    return 0;
}

wh_conn *wh_http_req_upgrade(wh_http_req *r)
{
    if (r->state != WH__R_NEW || r->upgraded) return NULL;
    wh_conn *c = r->conn;
    if (!c) {
        wh__http_req_release(r);
        return NULL;
    }
    /* The exchange ends here for HTTP: logs and metrics see it as 101
     * (RFC 9110 §15.2.2), the one status an upgrade is answered with. */
    r->status = 101;
    r->bytes = 0;
    if (r->srv->opts.on_complete) r->srv->opts.on_complete(r, r->srv->hooks_ud);
    wh__http_detach_conn(r);
    return c;
}
