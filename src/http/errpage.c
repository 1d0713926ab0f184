/* Error page bodies (see errpage.h). */
#include <errno.h>
#include <stdio.h>

#include "http/errpage.h"
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
