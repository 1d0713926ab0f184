/* The application: parse one request, route it, build its response - with
 * wharf's shared parser, static-file planner and guestbook helpers. */
#include "lab_internal.h"

#include "wharf/http_file.h"
#include "wharf/http_parse.h"

#include "apps/common/guestbook_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lab_resp_release(lab_resp *r)
{
    free(r->body);
    r->body = NULL;
    if (r->file_fd >= 0) close(r->file_fd);
    r->file_fd = -1;
}

/* A response from memory: the head from the shared formatter, then body. */
static void respond_mem(lab_resp *out, int version, int status, const char *ctype, char *body,
                        size_t len, const char *extra, bool head_only)
{
    wh_http_head_spec h = {
        .status = status,
        .content_type = ctype,
        .content_length = (int64_t)len,
        .close = out->close,
        /* An HTTP/1.0 client only keeps the connection if told (RFC 9112 section 9.3). */
        .keep_alive = !out->close && version == 10,
        .server = "wharf",
        .extra = extra,
        .extra_len = extra ? strlen(extra) : 0,
    };
    int n = wh_http_format_head(out->head, sizeof out->head, &h);
    out->status = status;
    out->head_len = n > 0 ? (size_t)n : 0;
    if (head_only) {
        free(body);
        body = NULL;
        len = 0;
    }
    out->body = body;
    out->body_len = len;
}

/* A small HTML page for an error status (the guestbook's error template). */
static void respond_error(lab_resp *out, int version, int status, const char *why,
                          const char *extra, bool head_only)
{
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    wh_gb_render_error(&b, status, why ? why : wh_http_reason(status));
    if (b.oom) {
        wh_gb_buf_free(&b);
        respond_mem(out, version, status, NULL, NULL, 0, extra, head_only);
        return;
    }
    /* Take the heap storage over; lab_resp_release frees it. */
    char *body = b.owned ? b.data : NULL;
    respond_mem(out, version, status, "text/html; charset=utf-8", body, body ? b.len : 0, extra,
                head_only);
}

static void respond_static(lab_resp *out, const wh_http_parsed *req, const lab_cfg *cfg)
{
    wh_static_req q;
    memset(&q, 0, sizeof q);
    q.method = req->method;
    q.path = req->path;
    q.query = req->query;
    q.if_match = wh_http_parsed_header(req, "If-Match");
    q.if_none_match = wh_http_parsed_header(req, "If-None-Match");
    q.if_modified_since = wh_http_parsed_header(req, "If-Modified-Since");
    q.if_unmodified_since = wh_http_parsed_header(req, "If-Unmodified-Since");
    q.if_range = wh_http_parsed_header(req, "If-Range");
    q.range = wh_http_parsed_header(req, "Range");
    wh_static_plan plan;
    wh_static_plan_make(cfg->docroot, &q, &plan);
    int n = wh_static_format_head(&plan, !out->close, out->head, sizeof out->head);
    out->status = plan.status;
    out->head_len = n > 0 ? (size_t)n : 0;
    if (!plan.head_only) {
        /* Take the body (file range or memory) over from the plan. */
        if (plan.fd >= 0 && plan.length) {
            out->file_fd = plan.fd_owned ? plan.fd : dup(plan.fd);
            out->file_off = plan.offset;
            out->file_len = (size_t)plan.length;
            plan.fd_owned = false;
        } else if (plan.body && plan.body_owned) {
            out->body = plan.body;
            out->body_len = plan.body_len;
            plan.body = NULL;
            plan.body_owned = false;
        }
    }
    wh_static_plan_release(&plan);
}

size_t lab_respond(const char *buf, size_t len, const lab_cfg *cfg, lab_redis *redis, lab_resp *out)
{
    memset(out, 0, offsetof(lab_resp, head));
    out->file_fd = -1;
    wh_http_limits lim;
    wh_http_limits_init(&lim);
    lim.max_body = LAB_MAX_BODY;
    wh_http_parsed req;
    int n = wh_http_parse_request(buf, len, &req, &lim);
    if (n == WH_HTTP_INCOMPLETE) {
        if (len < LAB_BUF_SIZE) return 0;
        /* Cannot happen with the parser's default limits; be safe anyway. */
        n = WH_HTTP_ERROR;
        req.status = 431;
    }
    if (n == WH_HTTP_ERROR) {
        /* After a framing error the rest of the stream cannot be trusted:
         * answer and close (RFC 9112 section 9.6 lets a server close). */
        out->close = true;
        respond_error(out, 11, req.status ? req.status : 400, req.error, NULL, false);
        return len;
    }
    int version = req.version;
    bool head_only = req.method_id == WH_HTTP_M_HEAD;
    if (req.framing == WH_HTTP_BODY_CHUNKED) {
        /* The lab's tiny app has no use for a chunked request body; 411 asks
         * for a Content-Length (RFC 9110 section 15.5.12). */
        out->close = true;
        respond_error(out, version, 411, NULL, NULL, head_only);
        return len;
    }
    size_t body_len = req.framing == WH_HTTP_BODY_LENGTH ? (size_t)req.content_length : 0;
    if (len - (size_t)n < body_len) {
        /* RFC 9110 section 10.1.1: a client that sent "Expect: 100-continue"
         * waits for the interim response before it sends the body. */
        if (req.expect_continue) {
            out->status = 100;
            out->head_len =
                (size_t)snprintf(out->head, sizeof out->head, "HTTP/1.1 100 Continue\r\n\r\n");
        }
        return 0;
    }
    size_t used = (size_t)n + body_len;
    out->close = !req.keep_alive || !cfg->keepalive;

    bool static_method = req.method_id == WH_HTTP_M_GET || head_only;
    /* Paths are case-sensitive (RFC 3986 section 6.2.2.1). */
    bool gb = req.path.len == strlen(WH_GB_PATH) && !memcmp(req.path.p, WH_GB_PATH, req.path.len);
    if (gb) {
        if (static_method || req.method_id == WH_HTTP_M_POST) {
            const char *ctype = NULL, *extra = NULL;
            lab_guestbook(&req, buf + n, body_len, redis, out, &ctype, &extra);
            char *body = out->body;
            out->body = NULL;
            respond_mem(out, version, out->status, ctype, body, out->body_len, extra, head_only);
        } else {
            respond_error(out, version, 405, NULL, "Allow: GET, HEAD, POST\r\n", head_only);
        }
    } else if (static_method) {
        respond_static(out, &req, cfg);
    } else {
        bool known = req.method_id != WH_HTTP_M_OTHER;
        respond_error(out, version, known ? 405 : 501, NULL, known ? "Allow: GET, HEAD\r\n" : NULL,
                      head_only);
    }
    if (out->head_len == 0) {
        /* The head did not fit (an absurd Location): fail loudly, not silently. */
        lab_resp_release(out);
        out->close = true;
        respond_error(out, version, 500, NULL, NULL, head_only);
    }
    return used;
}
