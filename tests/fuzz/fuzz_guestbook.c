/* libFuzzer target for the guestbook's parsers (src/apps/common/guestbook_page.c).
 * The first input byte picks the target, the rest is the input:
 *   even: wh_gb_form_parse; on success the fields must be valid UTF-8 within
 *         the limits, and encode -> decode must give them back exactly;
 *   odd:  wh_gb_entry_decode (what another program may have put in Redis),
 *         then rendering the decoded entry must produce no raw '<' from it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apps/common/guestbook_page.h"

static void roundtrip(const wh_gb_form *f)
{
    if (f->name_len > WH_GB_NAME_MAX || f->message_len > WH_GB_MESSAGE_MAX ||
        !wh_gb_utf8_valid(f->name, f->name_len) || !wh_gb_utf8_valid(f->message, f->message_len))
        abort();
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    if (wh_gb_entry_encode(&b, 123, f->name, f->name_len, f->message, f->message_len) < 0) abort();
    char *scratch = malloc(b.len ? b.len : 1);
    wh_gb_entry e;
    if (wh_gb_entry_decode(b.data, b.len, &e, scratch, b.len ? b.len : 1) != 0 || e.time_s != 123 ||
        e.name_len != f->name_len || e.msg_len != f->message_len ||
        memcmp(e.name, f->name, e.name_len) || memcmp(e.msg, f->message, e.msg_len))
        abort();
    free(scratch);
    wh_gb_buf_free(&b);
}

static void render_decoded(const char *s, size_t n)
{
    char *scratch = malloc(n ? n : 1);
    wh_gb_entry e;
    if (wh_gb_entry_decode(s, n, &e, scratch, n ? n : 1) == 0) {
        wh_gb_buf b;
        wh_gb_buf_init(&b);
        if (wh_gb_html_escape(&b, e.msg, e.msg_len) < 0 ||
            wh_gb_html_escape(&b, e.name, e.name_len) < 0)
            abort();
        if (memchr(b.data ? b.data : "", '<', b.len) || memchr(b.data ? b.data : "", '"', b.len))
            abort(); /* escaping let markup through */
        const char *items[1] = {s};
        size_t lens[1] = {n};
        wh_gb_buf_reset(&b);
        wh_gb_render_page_encoded(&b, items, lens, 1, 1);
        wh_gb_buf_free(&b);
    }
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) {
        wh_gb_form f;
        if (wh_gb_form_parse(s, n, &f) == WH_GB_FORM_OK) roundtrip(&f);
    } else {
        render_decoded(s, n);
    }
    return 0;
}
