/* The guestbook's form: see guestbook_form.h. */
#include "apps/common/guestbook_form.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wharf/http_data.h"

/* ---- invisible characters ------------------------------------------------ */

/* Length of the invisible character encoded at p, or 0. Matching encoded
 * bytes needs no second UTF-8 decoder: text is validated once, on input
 * (wh_utf8_valid), and these sequences cannot start inside another
 * character of valid UTF-8. On invalid bytes (entries other programs put
 * in Redis) it only ever removes whole matching sequences. */
size_t wh_gb_invisible_len(const char *str, size_t left)
{
    const unsigned char *p = (const unsigned char *)str;
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
        size_t k = wh_gb_invisible_len(str + r, n - r);
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
    if (!wh_utf8_valid(buf, *len)) return WH_GB_FORM_BAD_UTF8;
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
