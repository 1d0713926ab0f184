/* Access-log lines in the Combined Log Format (Apache/nginx "combined"):
 *   host - - [10/Oct/2026:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 "referer" "agent"
 * Pure formatting; buffering and writing are the daemon's business. */
#ifndef WH_APPS_ACCESSLOG_H
#define WH_APPS_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "wharf/http.h" /* wh_str */

/* What a cut field ends with (inside its quotes). */
#define WH_CLF_TRUNCATED "...[truncated]"
/* The smallest max wh_clf_format_max accepts. */
#define WH_CLF_MIN_MAX 1024

typedef struct wh_clf {
    const char *host; /* client address text ("127.0.0.1", "::1", "unix") */
    const char *time; /* "[10/Oct/2026:13:55:36 +0000]" from wh_clf_time */
    /* An empty method (a request the engine refused before it had one)
     * prints the request as "-", as nginx does; an empty target prints "-". */
    wh_str method, target;
    int version; /* 10 or 11; anything else prints "-" */
    int status;
    uint64_t bytes;             /* body bytes; 0 prints "-" */
    wh_str referer, user_agent; /* .p == NULL prints "-" */
} wh_clf;

/* Formats t (UTC) as "[dd/Mon/yyyy:hh:mm:ss +0000]" into buf (>= 29 bytes). Length. */
int wh_clf_time(time_t t, char *buf, size_t cap);
/* Writes one line ending in '\n'; request text is escaped ('"', '\\',
 * control and non-ASCII bytes as \xHH) so a client cannot forge lines.
 * Returns bytes needed; writes nothing partial beyond cap. */
size_t wh_clf_format(const wh_clf *f, char *buf, size_t cap);
/* The same line, never longer than max bytes (max >= WH_CLF_MIN_MAX): when
 * it would be, the longest of method, target, referer and user agent are cut
 * (never inside an escape) and end in WH_CLF_TRUNCATED, so the line keeps
 * its fields, status and byte count. buf holds max bytes. Returns the length
 * written; *truncated tells whether a field was cut. */
size_t wh_clf_format_max(const wh_clf *f, char *buf, size_t max, bool *truncated);

#endif
