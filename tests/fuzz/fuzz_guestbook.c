/* libFuzzer target for the guestbook's handling of untrusted text
 * (src/apps/common/guestbook_form.c, guestbook_page.c). The first input
 * byte picks the target, the rest is the input:
 *   even: wh_gb_form_parse (over the public form decoder of
 *         wharf/http_data.h); on success the fields must be valid UTF-8
 *         within the limits, free of the invisible characters it strips;
 *   odd:  the bytes as an entry's name and message (what another program
 *         may have put in Redis) rendered into the entries part: no raw '<'
 *         or '"' may come out of them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apps/common/guestbook_page.h"
#include "wharf/common.h"

static void check_form(const wh_gb_form *f)
{
    if (f->name_len > WH_GB_NAME_MAX || f->message_len > WH_GB_MESSAGE_MAX ||
        !wh_utf8_valid(f->name, f->name_len) || !wh_utf8_valid(f->message, f->message_len))
        abort();
    for (size_t i = 0; i < f->message_len; i++)
        if (wh_gb_invisible_len(f->message + i, f->message_len - i)) abort();
}

static void render_entry(const char *s, size_t n)
{
    size_t half = n / 2;
    wh_gb_entry e = {.id = "1",
                     .id_len = 1,
                     .time_s = (int64_t)n * 1000003,
                     .name = s,
                     .name_len = half,
                     .msg = s + half,
                     .msg_len = n - half};
    wh_gb_buf b;
    wh_gb_buf_init(&b);
    if (wh_gb_html_escape(&b, s, n) < 0) abort();
    if (memchr(b.data ? b.data : "", '<', b.len) || memchr(b.data ? b.data : "", '"', b.len))
        abort(); /* escaping let markup through */
    wh_gb_buf_reset(&b);
    if (wh_gb_render_entries(&b, &e, 1) < 0) abort();
    /* The user text sits between the <bdi> tags: count the tags we wrote. */
    size_t lt = 0;
    for (size_t i = 0; i < b.len; i++)
        lt += b.data[i] == '<';
    size_t want = e.time_s > 0 && e.time_s <= 253402300799 ? 12 : 10;
    if (lt != want) abort();
    wh_gb_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) {
        wh_gb_form f;
        if (wh_gb_form_parse(s, n, &f) == WH_GB_FORM_OK) check_form(&f);
    } else {
        render_entry(s, n);
    }
    return 0;
}
