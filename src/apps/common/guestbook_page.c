/* The guestbook's pure parts: see guestbook_page.h. */
#include "apps/common/guestbook_page.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http_data.h"

/* ---- growable string ---------------------------------------------------- */

void wh_gb_buf_init(wh_gb_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void wh_gb_buf_init_on(wh_gb_buf *b, char *mem, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->data = mem;
    b->cap = cap;
    if (cap) mem[0] = '\0';
}

void wh_gb_buf_free(wh_gb_buf *b)
{
    if (b->owned) free(b->data);
    memset(b, 0, sizeof(*b));
}

void wh_gb_buf_reset(wh_gb_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->cap) b->data[0] = '\0';
}

/* Makes room for n more bytes plus the NUL. */
static int buf_reserve(wh_gb_buf *b, size_t n)
{
    if (b->oom) return -ENOMEM;
    if (n < b->cap && b->len < b->cap - n) /* len + n + 1 <= cap, overflow-safe */
        return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return -ENOMEM;
    }
    size_t want = b->len + n + 1;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < want)
        cap *= 2;
    char *p;
    if (b->owned) {
        p = realloc(b->data, cap);
    } else {
        p = malloc(cap);
        if (p && b->len) memcpy(p, b->data, b->len);
    }
    if (!p) {
        b->oom = true;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    b->owned = true;
    return 0;
}

int wh_gb_buf_append(wh_gb_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0) return -ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int wh_gb_buf_puts(wh_gb_buf *b, const char *s)
{
    return wh_gb_buf_append(b, s, strlen(s));
}

int wh_gb_buf_printf(wh_gb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof(tmp)) return wh_gb_buf_append(b, tmp, (size_t)n);
    if (buf_reserve(b, (size_t)n) < 0) return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* ---- UTF-8 --------------------------------------------------------------- */

bool wh_gb_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* UTF-16 surrogates, RFC 3629 section 3 */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* > U+10FFFF */
        } else {
            return false; /* 0x80..0xC1 (continuation/overlong), 0xF5..0xFF */
        }
        if (n - i <= need) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}

/* ---- invisible characters ------------------------------------------------ */

/* Length of the invisible character encoded at p, or 0. Matching encoded
 * bytes needs no second UTF-8 decoder: text is validated once, on input
 * (wh_gb_utf8_valid), and these sequences cannot start inside another
 * character of valid UTF-8. On invalid bytes (entries other programs put
 * in Redis) it only ever removes whole matching sequences. */
static size_t invisible_len(const unsigned char *p, size_t left)
{
    if (p[0] < 0xC2) return 0;
    if (left >= 2 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) return 2; /* C1 controls */
    if (left >= 2 && p[0] == 0xD8 && p[1] == 0x9C) return 2; /* U+061C arabic letter mark */
    if (left < 3) return 0;
    unsigned cp = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    if ((p[0] & 0xF0) != 0xE0 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    if ((cp >= 0x200B && cp <= 0x200F) || /* zero width space/joiners, LRM, RLM */
        (cp >= 0x202A && cp <= 0x202E) || /* bidi embeddings and overrides */
        (cp >= 0x2060 && cp <= 0x2064) || /* word joiner, invisible operators */
        (cp >= 0x2066 && cp <= 0x2069) || /* bidi isolates */
        cp == 0x180E || cp == 0xFEFF)     /* mongolian vowel separator, BOM */
        return 3;
    return 0;
}

size_t wh_gb_strip_invisible(char *str, size_t n)
{
    unsigned char *s = (unsigned char *)str;
    size_t r = 0, w = 0;
    while (r < n) {
        size_t k = invisible_len(s + r, n - r);
        if (k) {
            r += k;
            continue;
        }
        s[w++] = s[r++];
    }
    if (w < n) s[w] = '\0';
    return w;
}

/* ---- form ---------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims ASCII whitespace in place; returns the new length. */
static size_t trim(char *s, size_t n)
{
    size_t a = 0;
    while (a < n && is_space(s[a]))
        a++;
    while (n > a && is_space(s[n - 1]))
        n--;
    if (a) memmove(s, s + a, n - a);
    s[n - a] = '\0';
    return n - a;
}

static bool has_bad_control(const char *s, size_t n, bool allow_lines)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x7F) return true;
        if (c < 0x20) {
            if (allow_lines && (c == '\t' || c == '\n' || c == '\r')) continue;
            return true;
        }
    }
    return false;
}

/* Field-specific check after decoding. */
static int check_field(char *buf, size_t *len, bool is_message)
{
    if (!wh_gb_utf8_valid(buf, *len)) return WH_GB_FORM_BAD_UTF8;
    if (has_bad_control(buf, *len, is_message)) return WH_GB_FORM_CONTROL_CHAR;
    /* Stored without them: an override (U+202E) reverses what follows it on
     * the page and invisible characters make look-alike names; nobody needs
     * them in a guestbook. Before trimming, so what they hid counts. */
    *len = wh_gb_strip_invisible(buf, *len);
    *len = trim(buf, *len);
    return WH_GB_FORM_OK;
}

/* Decodes a field's value into dst[0..cap) (NUL-terminated, so dst holds
 * cap + 1 bytes), checks it and trims it. A value longer than cap before
 * trimming is decoded on the heap first: it may be padded with blanks. */
static int field_value(wh_str raw, bool is_message, char *dst, size_t cap, size_t *out_len)
{
    int too_long = is_message ? WH_GB_FORM_MESSAGE_TOO_LONG : WH_GB_FORM_NAME_TOO_LONG;
    ssize_t n = wh_http_form_decode(raw, NULL, 0);
    if (n < 0) return WH_GB_FORM_BAD_ENCODING;
    char *buf = dst;
    if ((size_t)n > cap) {
        buf = malloc((size_t)n + 1);
        if (!buf) return too_long;
    }
    wh_http_form_decode(raw, buf, (size_t)n);
    buf[n] = '\0';
    size_t fl = (size_t)n;
    int r = check_field(buf, &fl, is_message);
    if (r == WH_GB_FORM_OK && fl > cap) r = too_long;
    if (buf != dst) {
        if (r == WH_GB_FORM_OK) memcpy(dst, buf, fl + 1);
        free(buf);
    }
    *out_len = fl;
    return r;
}

int wh_gb_form_parse(const char *body, size_t len, wh_gb_form *out)
{
    memset(out, 0, sizeof(*out));
    if (len > WH_GB_BODY_MAX) return WH_GB_FORM_BODY_TOO_LARGE;
    bool have_name = false, have_msg = false;
    wh_http_form_iter it;
    wh_http_form_pair kv;
    wh_http_form_iter_init(&it, (wh_str){body, len});
    while (wh_http_form_next(&it, &kv)) {
        /* Names are compared decoded, as a browser would have encoded them
         * ("n%61me" is "name"); values of fields we do not use are never
         * decoded, so their escapes do not matter. */
        bool is_name = wh_http_form_name_eq(kv.name, WH_GB_FIELD_NAME);
        bool is_msg = !is_name && wh_http_form_name_eq(kv.name, WH_GB_FIELD_MESSAGE);
        if (!is_name && !is_msg) continue;
        if ((is_name && have_name) || (is_msg && have_msg)) return WH_GB_FORM_DUPLICATE_FIELD;
        int r = is_name ? field_value(kv.value, false, out->name, WH_GB_NAME_MAX, &out->name_len)
                        : field_value(kv.value, true, out->message, WH_GB_MESSAGE_MAX,
                                      &out->message_len);
        if (r != WH_GB_FORM_OK) return r;
        have_name |= is_name;
        have_msg |= is_msg;
    }
    if (out->message_len == 0) return WH_GB_FORM_MESSAGE_EMPTY;
    if (out->name_len == 0) {
        out->name_len = strlen(WH_GB_DEFAULT_NAME);
        memcpy(out->name, WH_GB_DEFAULT_NAME, out->name_len + 1);
    }
    return WH_GB_FORM_OK;
}

const char *wh_gb_form_strerror(int result)
{
    switch (result) {
    case WH_GB_FORM_OK:
        return "OK.";
    case WH_GB_FORM_BODY_TOO_LARGE:
        return "The form is too large (at most 8192 bytes).";
    case WH_GB_FORM_NAME_TOO_LONG:
        return "The name is too long (at most 64 bytes).";
    case WH_GB_FORM_MESSAGE_TOO_LONG:
        return "The message is too long (at most 1024 bytes).";
    case WH_GB_FORM_MESSAGE_EMPTY:
        return "The message is empty.";
    case WH_GB_FORM_BAD_ENCODING:
        return "The form is not properly URL-encoded.";
    case WH_GB_FORM_BAD_UTF8:
        return "The name or message is not valid UTF-8.";
    case WH_GB_FORM_CONTROL_CHAR:
        return "The name or message contains control characters.";
    case WH_GB_FORM_DUPLICATE_FIELD:
        return "The name or message field was sent twice.";
    case WH_GB_FORM_BAD_CONTENT_TYPE:
        return "The form must be sent as application/x-www-form-urlencoded.";
    }
    return "The form is invalid.";
}

int wh_gb_form_status(int result)
{
    switch (result) {
    case WH_GB_FORM_OK:
        return 200;
    case WH_GB_FORM_BODY_TOO_LARGE:
    case WH_GB_FORM_NAME_TOO_LONG:
    case WH_GB_FORM_MESSAGE_TOO_LONG:
        return 413; /* RFC 9110 15.5.14 Content Too Large */
    case WH_GB_FORM_BAD_CONTENT_TYPE:
        return 415; /* RFC 9110 15.5.16 Unsupported Media Type */
    default:
        return 400;
    }
}

/* ---- HTML ---------------------------------------------------------------- */

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
        size_t skip = invisible_len((const unsigned char *)s + i, n - i);
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

static const char page_head[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Guestbook - wharf</title>\n"
    "<style>\n"
    "body{font-family:system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em;"
    "color:#222}\n"
    "form{display:grid;gap:.5em;margin:1em 0 2em}\n"
    "input,textarea{font:inherit;padding:.4em}\n"
    "textarea{min-height:5em}\n"
    ".entry{border-top:1px solid #ccc;padding:.6em 0}\n"
    ".entry .meta{color:#666;font-size:.9em}\n"
    ".entry .name{font-weight:bold;color:#222}\n"
    ".entry .msg{display:block;white-space:pre-wrap;overflow-wrap:anywhere}\n"
    "</style>\n</head>\n<body>\n";

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

/* Days since 1970-01-01 to a proleptic Gregorian date (the classic
 * era/day-of-era method: 400-year eras of 146097 days, years starting in
 * March so the leap day falls last). gmtime_r+strftime cost more than the
 * rest of an entry's rendering. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468; /* shift the epoch to 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* Formats t as "YYYY-MM-DDTHH:MM:SSZ" (20 bytes); false outside years 1970..9999. */
static bool format_utc(int64_t t, char out[20])
{
    if (t < 0 || t > 253402300799) /* 9999-12-31T23:59:59Z */
        return false;
    int64_t y;
    unsigned m, d, secs = (unsigned)(t % 86400);
    civil_from_days(t / 86400, &y, &m, &d);
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, secs / 3600);
    out[13] = ':';
    put2(out + 14, secs / 60 % 60);
    out[16] = ':';
    put2(out + 17, secs % 60);
    out[19] = 'Z';
    return true;
}

static void render_entry(wh_gb_buf *out, const wh_gb_entry *e)
{
    /* <bdi>: each user string is its own bidi island, so a right-to-left
     * name cannot reorder the date or the next entry around it. */
    static const char a[] = "<li class=\"entry\"><div class=\"meta\"><bdi class=\"name\">";
    wh_gb_buf_append(out, a, sizeof(a) - 1);
    escape_text(out, e->name, e->name_len);
    wh_gb_buf_append(out, "</bdi>", 6);
    char when[20];
    if (e->time_s > 0 && format_utc(e->time_s, when)) {
        /* <time datetime="2026-11-23T09:30:00Z">2026-11-23 09:30 UTC</time> */
        char t[96];
        size_t n = 0;
        memcpy(t + n, " <time datetime=\"", 17), n += 17;
        memcpy(t + n, when, 20), n += 20;
        memcpy(t + n, "\">", 2), n += 2;
        memcpy(t + n, when, 10), n += 10;
        t[n++] = ' ';
        memcpy(t + n, when + 11, 5), n += 5;
        memcpy(t + n, " UTC</time>", 11), n += 11;
        wh_gb_buf_append(out, t, n);
    }
    static const char b[] = "</div><bdi class=\"msg\">";
    wh_gb_buf_append(out, b, sizeof(b) - 1);
    escape_text(out, e->msg, e->msg_len);
    wh_gb_buf_append(out, "</bdi></li>\n", 12);
}

static void render_top(wh_gb_buf *out, uint64_t visitors, const char *token)
{
    wh_gb_buf_puts(out, page_head);
    wh_gb_buf_puts(out, "<h1>Guestbook</h1>\n");
    wh_gb_buf_printf(out, "<p>You are visitor number <span id=\"gb-visitors\">%llu</span>.</p>\n",
                     (unsigned long long)visitors);
    render_form(out, token);
}

static void render_bottom(wh_gb_buf *out, size_t shown)
{
    wh_gb_buf_puts(out, "</ol>\n");
    if (shown == 0) wh_gb_buf_puts(out, "<p id=\"gb-empty\">No entries yet. Be the first!</p>\n");
    wh_gb_buf_puts(out, "</body>\n</html>\n");
}

int wh_gb_render_page(wh_gb_buf *out, const wh_gb_entry *entries, size_t n, uint64_t visitors)
{
    render_top(out, visitors, NULL);
    wh_gb_buf_puts(out, "<ol id=\"gb-entries\" reversed style=\"list-style:none;padding:0\">\n");
    for (size_t i = 0; i < n; i++)
        render_entry(out, &entries[i]);
    render_bottom(out, n);
    return out->oom ? -ENOMEM : 0;
}

int wh_gb_render_page_encoded(wh_gb_buf *out, const char *const *items, const size_t *lens,
                              size_t n, uint64_t visitors)
{
    return wh_gb_render_page_token(out, items, lens, n, visitors, NULL);
}

int wh_gb_render_page_token(wh_gb_buf *out, const char *const *items, const size_t *lens, size_t n,
                            uint64_t visitors, const char *token)
{
    render_top(out, visitors, token);
    wh_gb_buf_puts(out, "<ol id=\"gb-entries\" reversed style=\"list-style:none;padding:0\">\n");
    /* Entries are at most ~1.2 KiB encoded; bigger ones were not written by
     * us and are decoded on the heap. */
    char scratch[4096];
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        wh_gb_entry e;
        char *sp = scratch;
        if (lens[i] > sizeof(scratch)) {
            sp = malloc(lens[i]);
            if (!sp) {
                out->oom = true;
                break;
            }
        }
        if (wh_gb_entry_decode(items[i], lens[i], &e, sp, lens[i] ? lens[i] : 1) == 0) {
            render_entry(out, &e);
            shown++;
        }
        if (sp != scratch) free(sp);
    }
    render_bottom(out, shown);
    return out->oom ? -ENOMEM : 0;
}

int wh_gb_render_error(wh_gb_buf *out, int status, const char *reason)
{
    wh_gb_buf_puts(out, page_head);
    wh_gb_buf_printf(out, "<h1>Guestbook: error %d</h1>\n<p id=\"gb-error\">", status);
    wh_gb_html_escape(out, reason, strlen(reason));
    wh_gb_buf_puts(out, "</p>\n<p><a href=\"" WH_GB_PATH "\">Back to the guestbook</a></p>\n"
                        "</body>\n</html>\n");
    return out->oom ? -ENOMEM : 0;
}

/* ---- entry encoding ------------------------------------------------------ */

static void json_string(wh_gb_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    wh_gb_buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        wh_gb_buf_append(out, s + run, i - run);
        char esc[6];
        size_t el = 2;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default: /* RFC 8259 section 7: other controls as \u00XX */
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        wh_gb_buf_append(out, esc, el);
        run = i + 1;
    }
    wh_gb_buf_append(out, s + run, n - run);
    wh_gb_buf_append(out, "\"", 1);
}

int wh_gb_entry_encode(wh_gb_buf *out, int64_t time_s, const char *name, size_t name_len,
                       const char *msg, size_t msg_len)
{
    wh_gb_buf_printf(out, "{\"t\":%lld,\"name\":", (long long)time_s);
    json_string(out, name, name_len);
    wh_gb_buf_puts(out, ",\"msg\":");
    json_string(out, msg, msg_len);
    wh_gb_buf_append(out, "}", 1);
    return out->oom ? -ENOMEM : 0;
}

/* A tiny JSON reader for one flat object; enough for our entries, strict
 * about the grammar (RFC 8259) so garbage is rejected, not half-shown. */
struct jr {
    const char *s;
    size_t n, i;
    char *scratch;
    size_t used, cap;
};

static void jr_ws(struct jr *j)
{
    while (j->i < j->n &&
           (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
}

static int jr_hex4(struct jr *j, unsigned *out)
{
    if (j->n - j->i < 4) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = wh_http_hex_digit((unsigned char)j->s[j->i + (size_t)k]);
        if (h < 0) return -1;
        v = v << 4 | (unsigned)h;
    }
    j->i += 4;
    *out = v;
    return 0;
}

static int jr_put(struct jr *j, const char *p, size_t n)
{
    if (j->cap - j->used < n) return -1;
    memcpy(j->scratch + j->used, p, n);
    j->used += n;
    return 0;
}

/* Parses a string at j->i (which is at '"'); decoded bytes go to scratch. */
static int jr_string(struct jr *j, const char **out, size_t *out_len)
{
    if (j->i >= j->n || j->s[j->i] != '"') return -1;
    j->i++;
    size_t start = j->used;
    while (j->i < j->n) {
        /* Copy a run of plain bytes at once. */
        size_t run = j->i;
        while (run < j->n && (unsigned char)j->s[run] >= 0x20 && j->s[run] != '"' &&
               j->s[run] != '\\')
            run++;
        if (run > j->i) {
            if (jr_put(j, j->s + j->i, run - j->i) < 0) return -1;
            j->i = run;
            continue;
        }
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') {
            *out = j->scratch + start;
            *out_len = j->used - start;
            return 0;
        }
        if (c < 0x20) return -1; /* c is now a backslash: plain bytes went above */
        if (j->i >= j->n) return -1;
        char e = j->s[j->i++], d;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            d = e;
            break;
        case 'b':
            d = '\b';
            break;
        case 'f':
            d = '\f';
            break;
        case 'n':
            d = '\n';
            break;
        case 'r':
            d = '\r';
            break;
        case 't':
            d = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (jr_hex4(j, &cp) < 0) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* RFC 8259 section 7: surrogate pair */
                unsigned lo;
                if (j->n - j->i < 2 || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u') return -1;
                j->i += 2;
                if (jr_hex4(j, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            char u[4];
            size_t ul;
            if (cp < 0x80) {
                u[0] = (char)cp;
                ul = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3F));
                ul = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | cp >> 12);
                u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                ul = 3;
            } else {
                u[0] = (char)(0xF0 | cp >> 18);
                u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                ul = 4;
            }
            if (jr_put(j, u, ul) < 0) return -1;
            continue;
        }
        default:
            return -1;
        }
        if (jr_put(j, &d, 1) < 0) return -1;
    }
    return -1;
}

/* Skips a scalar value we do not use (number, true, false, null, string). */
static int jr_skip_value(struct jr *j)
{
    if (j->i < j->n && j->s[j->i] == '"') {
        const char *p;
        size_t l;
        size_t save = j->used;
        int r = jr_string(j, &p, &l);
        j->used = save;
        return r;
    }
    size_t st = j->i;
    while (j->i < j->n && j->s[j->i] != ',' && j->s[j->i] != '}' && j->s[j->i] != ' ' &&
           j->s[j->i] != '\t' && j->s[j->i] != '\n' && j->s[j->i] != '\r') {
        char c = j->s[j->i];
        if (c == '{' || c == '[' || c == '"')
            return -1; /* nested values are not part of our format */
        j->i++;
    }
    return j->i > st ? 0 : -1;
}

static int jr_int(struct jr *j, int64_t *out)
{
    bool neg = false;
    if (j->i < j->n && j->s[j->i] == '-') {
        neg = true;
        j->i++;
    }
    size_t st = j->i;
    int64_t v = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (j->s[j->i] - '0');
        j->i++;
    }
    if (j->i == st) return -1;
    *out = neg ? -v : v;
    return 0;
}

int wh_gb_entry_decode(const char *s, size_t len, wh_gb_entry *e, char *scratch, size_t scratch_cap)
{
    if (scratch_cap < len) return -ENOSPC;
    memset(e, 0, sizeof(*e));
    struct jr j = {.s = s, .n = len, .scratch = scratch, .cap = scratch_cap};
    bool have_name = false, have_msg = false;
    jr_ws(&j);
    if (j.i >= j.n || s[j.i] != '{') return -EINVAL;
    j.i++;
    jr_ws(&j);
    if (j.i < j.n && s[j.i] == '}') {
        j.i++;
    } else {
        for (;;) {
            const char *key;
            size_t kl;
            size_t mark = j.used;
            jr_ws(&j);
            if (jr_string(&j, &key, &kl) < 0) return -EINVAL;
            /* Keys are copied into scratch too; compare, then drop them. */
            int which = kl == 1 && key[0] == 't'             ? 1
                        : kl == 4 && !memcmp(key, "name", 4) ? 2
                        : kl == 3 && !memcmp(key, "msg", 3)  ? 3
                                                             : 0;
            j.used = mark;
            jr_ws(&j);
            if (j.i >= j.n || s[j.i] != ':') return -EINVAL;
            j.i++;
            jr_ws(&j);
            int r;
            if (which == 1)
                r = jr_int(&j, &e->time_s);
            else if (which == 2)
                r = jr_string(&j, &e->name, &e->name_len), have_name = r == 0;
            else if (which == 3)
                r = jr_string(&j, &e->msg, &e->msg_len), have_msg = r == 0;
            else
                r = jr_skip_value(&j);
            if (r < 0) return -EINVAL;
            jr_ws(&j);
            if (j.i < j.n && s[j.i] == ',') {
                j.i++;
                continue;
            }
            if (j.i < j.n && s[j.i] == '}') {
                j.i++;
                break;
            }
            return -EINVAL;
        }
    }
    jr_ws(&j);
    if (j.i != j.n || !have_msg) return -EINVAL;
    if (!have_name) {
        e->name = WH_GB_DEFAULT_NAME;
        e->name_len = strlen(WH_GB_DEFAULT_NAME);
    }
    return 0;
}

/* ---- Redis commands ------------------------------------------------------ */

#define ARG(c, k, lit)                                                                             \
    do {                                                                                           \
        (c)->argv[k] = (lit);                                                                      \
        (c)->argvlen[k] = sizeof(lit) - 1;                                                         \
    } while (0)

void wh_gb_cmd_visit(wh_gb_cmd *c)
{
    memset(c, 0, sizeof(*c));
    c->argc = 2;
    ARG(c, 0, "INCR");
    ARG(c, 1, WH_GB_KEY_VISITORS);
}

void wh_gb_cmd_visitors(wh_gb_cmd *c)
{
    memset(c, 0, sizeof(*c));
    c->argc = 2;
    ARG(c, 0, "GET");
    ARG(c, 1, WH_GB_KEY_VISITORS);
}

/* The bounds are spelt out because they are protocol text; the static
 * asserts keep them in step with the limits. */
_Static_assert(WH_GB_PAGE_ENTRIES == 100, "LRANGE bound below");
_Static_assert(WH_GB_KEEP_ENTRIES == 1000, "LTRIM bound below");

void wh_gb_cmd_list(wh_gb_cmd *c)
{
    memset(c, 0, sizeof(*c));
    c->argc = 4;
    ARG(c, 0, "LRANGE");
    ARG(c, 1, WH_GB_KEY_ENTRIES);
    ARG(c, 2, "0");
    ARG(c, 3, "99");
}

void wh_gb_cmd_add(wh_gb_cmd *c, const char *enc, size_t enc_len)
{
    memset(c, 0, sizeof(*c));
    c->argc = 3;
    ARG(c, 0, "LPUSH");
    ARG(c, 1, WH_GB_KEY_ENTRIES);
    c->argv[2] = enc;
    c->argvlen[2] = enc_len;
}

void wh_gb_cmd_trim(wh_gb_cmd *c)
{
    memset(c, 0, sizeof(*c));
    c->argc = 4;
    ARG(c, 0, "LTRIM");
    ARG(c, 1, WH_GB_KEY_ENTRIES);
    ARG(c, 2, "0");
    ARG(c, 3, "999");
}
