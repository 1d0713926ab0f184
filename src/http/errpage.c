/* Error page bodies (see errpage.h). */
#include <errno.h>
#include <stdio.h>

#include "http/errpage.h"
#include "http/resphead.h"
#include "wharf/http.h"

int wh__http_error_page(int status, char *buf, size_t cap)
{
    const char *reason = wh_http_reason(status);
    /* Minimal valid HTML: a browser shows the title and heading, a client
     * that only logs bodies gets the status in words. */
    int n = snprintf(buf, cap, "<!DOCTYPE html><title>%d %s</title><h1>%d %s</h1>\n", status,
                     reason, status, reason);
    if (n < 0 || (size_t)n >= cap) return -ENOSPC;
    return n;
}

int wh__http_error_body(const wh_http_opts *o, void *ud, int status, const wh_http_req *r,
                        char *buf, size_t cap, const char **type)
{
    if (o->error_body) {
        const char *t = NULL;
        int n = o->error_body(status, r, buf, cap, &t, ud);
        /* A hook that overran its buffer, or gave no type or one that would
         * break the head (CR/LF), is not trusted. */
        if (n >= 0 && (size_t)n <= cap && t && wh__resp_value_ok(t)) {
            *type = t;
            return n;
        }
    }
    *type = WH__HTTP_ERROR_PAGE_TYPE;
    int n = wh__http_error_page(status, buf, cap);
    return n < 0 ? 0 : n;
}
