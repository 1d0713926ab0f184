/* The guestbook's HTML, shared by wharfd (src/apps/wharfd) and the
 * concurrency-model lab (lab/): escaping and the page in three parts, so
 * that the part that depends only on the entries can be rendered once and
 * shared by every view until they change:
 *
 *     top      wh_gb_render_top      per view: visitor counter, form token
 *     entries  wh_gb_render_entries  per change of the shown entries
 *     end      WH_GB_PAGE_END        constant
 *
 * Nothing here does I/O, takes a lock or keeps state outside its arguments.
 */
#ifndef WH_APPS_GUESTBOOK_PAGE_H
#define WH_APPS_GUESTBOOK_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "apps/common/guestbook_buf.h"
#include "apps/common/guestbook_form.h"

/* One entry as stored; strings need not be NUL-terminated. */
typedef struct wh_gb_entry {
    const char *id; /* the store's name for it (a Redis stream ID, a sequence
                       number): entries are immutable, so equal ids mean
                       equal entries */
    size_t id_len;
    int64_t time_s; /* unix seconds when posted (0 = unknown) */
    const char *name;
    size_t name_len;
    const char *msg;
    size_t msg_len;
} wh_gb_entry;

/* The last part of every page: the site's footer (as on public/index.html). */
#define WH_GB_PAGE_END                                                                             \
    "</main>\n<footer>wharf 0.1 &middot; <a href=\"/about.html\">about</a> &middot; "              \
    "<a href=\"/metrics\">metrics</a></footer>\n</body>\n</html>\n"

/* Appends s[0..n) HTML-escaped for text and quoted attribute values
 * (& < > " ' become entities). 0 or -ENOMEM. */
int wh_gb_html_escape(wh_gb_buf *out, const char *s, size_t n);
/* Appends the page up to the entries: head, title, the visitor counter and
 * the form, with a hidden field WH_GB_FIELD_TOKEN holding token (NULL:
 * none). 0 or -ENOMEM. */
int wh_gb_render_top(wh_gb_buf *out, uint64_t visitors, const char *token);
/* Appends the entries list, entries[0..n) in the given order (callers pass
 * newest first), or the "no entries yet" line. User text is escaped, shown
 * without invisible characters (wh_gb_strip_invisible) and inside <bdi>
 * (class "name" and "msg"). 0 or -ENOMEM. */
int wh_gb_render_entries(wh_gb_buf *out, const wh_gb_entry *entries, size_t n);
/* Appends a whole page: top, entries, end. 0 or -ENOMEM. */
int wh_gb_render_page(wh_gb_buf *out, const wh_gb_entry *entries, size_t n, uint64_t visitors,
                      const char *token);
/* Appends an error page for status with an escaped reason and a link back. 0 or -ENOMEM. */
int wh_gb_render_error(wh_gb_buf *out, int status, const char *reason);

#endif
