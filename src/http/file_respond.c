/* Static files on the event-driven engine. Written against the public
 * response API only (wh_http_req_*, wh_http_resp_header, wh_http_respond,
 * wh_http_respond_file), like any handler a library user would write, so
 * it keeps working whatever the engine does inside. */
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/file_internal.h"
#include "http/http_internal.h"

static bool name_is(wh_str n, const char *lit, size_t len)
{
    return n.len == len && strncasecmp(n.p, lit, len) == 0;
}

void wh_static_req_from_http(wh_static_req *q, const wh_http_req *r)
{
    /* A compound literal: inline stores, no memset call, per request. */
    *q = (wh_static_req){
        .method = r->p.method,
        .path = r->p.path,
        .query = r->p.query,
    };
    /* One pass over the fields instead of seven lookups by name; dispatch
     * on the length first, as most fields of a browser request are none of
     * these. The parsed request is read in place: this runs per request. */
    unsigned n = r->p.nheaders;
    for (unsigned i = 0; i < n; i++) {
        wh_str name = r->p.headers[i].name, v = r->p.headers[i].value;
        wh_str *dst = NULL;
        switch (name.len) {
        case 5:
            if (name_is(name, "Range", 5)) dst = &q->range;
            break;
        case 8:
            if (name_is(name, "If-Match", 8))
                dst = &q->if_match;
            else if (name_is(name, "If-Range", 8))
                dst = &q->if_range;
            break;
        case 13:
            if (name_is(name, "If-None-Match", 13)) dst = &q->if_none_match;
            break;
        case 15:
            if (name_is(name, "Accept-Encoding", 15)) dst = &q->accept_encoding;
            break;
        case 17:
            if (name_is(name, "If-Modified-Since", 17)) dst = &q->if_modified_since;
            break;
        case 19:
            if (name_is(name, "If-Unmodified-Since", 19)) dst = &q->if_unmodified_since;
            break;
        }
        /* The first value wins, as with wh_http_req_header. */
        if (dst && !dst->p) *dst = v;
    }
}

int wh_http_respond_plan(wh_http_req *r, wh_static_plan *plan)
{
    bool head = r->head_only;
    if (plan->fd >= 0 && !plan->fd_owned && !head) {
        /* The engine sends from the fd after we return and closes it when
         * the transfer ends; a borrowed fd (a cache's) may be closed before
         * that, so the transfer gets a descriptor of its own. */
        int fd = fcntl(plan->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            wh_static_plan_error(plan, 503);
        } else {
            plan->fd = fd;
            plan->fd_owned = true;
        }
    }
    int rc;
    if (plan->fields && plan->status == 200 && plan->fd < 0 && !plan->body_release &&
        (plan->body || !plan->body_len)) {
        /* A full answer from memory with its prepared block (its
         * Content-Type was checked with it): the engine formats the head
         * from known lengths, or says 1 and nothing changed. */
        rc = wh__http_respond_prepared(r, plan->content_type, plan->fields->text, plan->fields->len,
                                       plan->body, plan->body_len);
        if (rc == 0) {
            wh_static_plan_release(plan);
            return 0;
        }
    }
    if (plan->fields && plan->status == 200) {
        /* Prepared with the cached representation: one copy, no checks. */
        rc = wh__http_resp_fields_raw(r, plan->fields->text, plan->fields->len);
    } else {
        wh__field f[WH__PLAN_FIELDS_MAX];
        rc = wh__http_resp_fields_plain(r, f, wh__static_plan_fields(plan, f));
    }
    if (rc != 0) {
        /* Out of memory, or a field the engine refuses (a Cache-Control
         * with a control character): the fields added so far cannot be
         * taken back, so the connection goes after this answer. */
        wh_static_plan_release(plan);
        wh_http_resp_close(r);
        return wh_http_respond_error(r, 500);
    }
    if (plan->fd >= 0) {
        int fd = plan->fd;
        bool owned = plan->fd_owned;
        /* wh_http_respond_file owns (or, if not owned, never closes) fd now. */
        plan->fd = -1;
        plan->fd_owned = false;
        rc = wh_http_respond_file(r, plan->status, plan->content_type, fd, plan->offset,
                                  (size_t)plan->length, owned);
    } else if (plan->body_release && plan->body) {
        /* Borrowed bytes go by reference; the part's release is the plan's,
         * called exactly once by the engine (at once when nothing is sent). */
        wh_http_body_part part = {plan->body, plan->body_len};
        void (*release)(void *) = plan->body_release;
        plan->body_release = NULL;
        rc = wh_http_respond_parts(r, plan->status, plan->content_type, &part, 1, release,
                                   plan->body_ud);
    } else {
        rc = wh_http_respond(r, plan->status, plan->content_type, plan->body, plan->body_len);
    }
    wh_static_plan_release(plan);
    return rc;
}

int wh_http_serve_file(wh_http_req *r, wh_static_root *root)
{
    wh_static_req q;
    wh_static_req_from_http(&q, r);
    wh_static_plan plan;
    wh_static_plan_make(root, &q, &plan);
    return wh_http_respond_plan(r, &plan);
}
