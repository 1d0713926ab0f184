/* The guestbook's HTML: see guestbook_page.h. */
#include "apps/common/guestbook_page.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int wh_gb_html_escape(wh_gb_buf *out, const char *s, size_t n)
{
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < n; i++) {
        const char *ent;
        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        wh_gb_buf_append(out, s + run, i - run);
        wh_gb_buf_puts(out, ent);
        run = i + 1;
    }
    wh_gb_buf_append(out, s + run, n - run);
    return out->oom ? -ENOMEM : 0;
}

/* User text on the page: escaped, invisible characters dropped (entries
 * stored by other programs never went through the form's checks). */
static void escape_text(wh_gb_buf *out, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        size_t skip = wh_gb_invisible_len(s + i, n - i);
        if (skip) {
            wh_gb_buf_append(out, s + run, i - run);
            i += skip;
            run = i;
            continue;
        }
        if (s[i] == '&' || s[i] == '<' || s[i] == '>' || s[i] == '"' || s[i] == '\'') {
            wh_gb_buf_append(out, s + run, i - run);
            wh_gb_html_escape(out, s + i, 1);
            run = i + 1;
        }
        i++;
    }
    wh_gb_buf_append(out, s + run, n - run);
}

/* The site's layout (public/index.html, about.html): its stylesheet, header
 * and navigation, with the guestbook as the current page. The page's own
 * rules live in /style.css too, so every page of the site looks one way. */
static const char page_head[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Guestbook - wharf</title>\n"
    "<link rel=\"stylesheet\" href=\"/style.css\">\n"
    "<link rel=\"icon\" href=\"/img/logo.svg\" type=\"image/svg+xml\">\n"
    "</head>\n<body>\n"
    "<header class=\"site\">\n"
    "  <a class=\"brand\" href=\"/\"><img src=\"/img/logo.svg\" alt=\"wharf logo\" width=\"40\" "
    "height=\"40\"> wharf</a>\n"
    "  <nav>\n"
    "    <a href=\"/\">Home</a>\n"
    "    <a href=\"/about.html\">About</a>\n"
    "    <a href=\"/docs/\">Docs</a>\n"
    "    <a href=\"" WH_GB_PATH "\" aria-current=\"page\">Guestbook</a>\n"
    "    <a href=\"/chat.html\">Chat</a>\n"
    "  </nav>\n"
    "</header>\n<main class=\"guestbook\">\n";

static void render_form(wh_gb_buf *out, const char *token)
{
    wh_gb_buf_puts(out, "<form id=\"gb-form\" method=\"post\" action=\"" WH_GB_PATH "\">\n");
    if (token) {
        wh_gb_buf_puts(out, "<input type=\"hidden\" name=\"" WH_GB_FIELD_TOKEN "\" value=\"");
        wh_gb_html_escape(out, token, strlen(token));
        wh_gb_buf_puts(out, "\">\n");
    }
    wh_gb_buf_printf(out,
                     "<label>Name <input id=\"gb-name\" name=\"" WH_GB_FIELD_NAME
                     "\" maxlength=\"%d\" placeholder=\"" WH_GB_DEFAULT_NAME "\"></label>\n"
                     "<label>Message <textarea id=\"gb-message\" name=\"" WH_GB_FIELD_MESSAGE
                     "\" maxlength=\"%d\" required></textarea></label>\n"
                     "<button id=\"gb-submit\" type=\"submit\">Sign the guestbook</button>\n"
                     "</form>\n",
                     WH_GB_NAME_MAX, WH_GB_MESSAGE_MAX);
}

/* Appends " <time datetime=ISO>YYYY-MM-DD HH:MM UTC</time>" for t. Once per
 * entry per change of the shown entries (the block is cached), so the C
 * library's formatter costs nothing that matters. */
static void render_time(wh_gb_buf *out, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t <= 0 || t > 253402300799 || !gmtime_r(&tt, &tm)) /* 9999-12-31T23:59:59Z */
        return;
    char iso[24], shown[24];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(shown, sizeof shown, "%Y-%m-%d %H:%M UTC", &tm);
    wh_gb_buf_printf(out, " <time datetime=\"%s\">%s</time>", iso, shown);
}

static void render_entry(wh_gb_buf *out, const wh_gb_entry *e)
{
    /* <bdi>: each user string is its own bidi island, so a right-to-left
     * name cannot reorder the date or the next entry around it. */
    wh_gb_buf_puts(out, "<li class=\"entry\"><div class=\"meta\"><bdi class=\"name\">");
    escape_text(out, e->name, e->name_len);
    wh_gb_buf_puts(out, "</bdi>");
    render_time(out, e->time_s);
    wh_gb_buf_puts(out, "</div><bdi class=\"msg\">");
    escape_text(out, e->msg, e->msg_len);
    wh_gb_buf_puts(out, "</bdi></li>\n");
}

int wh_gb_render_top(wh_gb_buf *out, uint64_t visitors, const char *token)
{
    wh_gb_buf_puts(out, page_head);
    wh_gb_buf_puts(out, "<h1 id=\"title\">Guestbook</h1>\n");
    wh_gb_buf_printf(out, "<p>You are visitor number <span id=\"gb-visitors\">%llu</span>.</p>\n",
                     (unsigned long long)visitors);
    render_form(out, token);
    return out->oom ? -ENOMEM : 0;
}

int wh_gb_render_entries(wh_gb_buf *out, const wh_gb_entry *entries, size_t n)
{
    wh_gb_buf_puts(out, "<ol id=\"gb-entries\" reversed>\n");
    for (size_t i = 0; i < n; i++)
        render_entry(out, &entries[i]);
    wh_gb_buf_puts(out, "</ol>\n");
    if (n == 0) wh_gb_buf_puts(out, "<p id=\"gb-empty\">No entries yet. Be the first!</p>\n");
    return out->oom ? -ENOMEM : 0;
}

int wh_gb_render_page(wh_gb_buf *out, const wh_gb_entry *entries, size_t n, uint64_t visitors,
                      const char *token)
{
    wh_gb_render_top(out, visitors, token);
    wh_gb_render_entries(out, entries, n);
    wh_gb_buf_puts(out, WH_GB_PAGE_END);
    return out->oom ? -ENOMEM : 0;
}

int wh_gb_render_error(wh_gb_buf *out, int status, const char *reason)
{
    wh_gb_buf_puts(out, page_head);
    wh_gb_buf_printf(out, "<h1 id=\"title\">Guestbook: error %d</h1>\n<p id=\"gb-error\">", status);
    wh_gb_html_escape(out, reason, strlen(reason));
    wh_gb_buf_puts(out, "</p>\n<p><a href=\"" WH_GB_PATH
                        "\">Back to the guestbook</a></p>\n" WH_GB_PAGE_END);
    return out->oom ? -ENOMEM : 0;
}
