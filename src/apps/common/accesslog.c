/* Combined Log Format lines (see accesslog.h). */
#include <stdio.h>
#include <string.h>

#include "apps/common/accesslog.h"

int wh_clf_time(time_t t, char *buf, size_t cap)
{
    static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -EINVAL;
    return snprintf(buf, cap, "[%02d/%s/%04d:%02d:%02d:%02d +0000]", tm.tm_mday, mon[tm.tm_mon],
                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

struct w {
    char *buf;
    size_t cap, len;
};

static void put(struct w *w, const char *s, size_t n)
{
    if (w->len + n <= w->cap) memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void puts_(struct w *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_esc(struct w *w, wh_str s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s.p) {
        put(w, "-", 1);
        return;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            put(w, e, 4);
        } else {
            put(w, (const char *)&c, 1);
        }
    }
}

size_t wh_clf_format(const wh_clf *f, char *buf, size_t cap)
{
    struct w w = {buf, cap, 0};
    char num[48];
    puts_(&w, f->host ? f->host : "-");
    puts_(&w, " - - ");
    puts_(&w, f->time);
    puts_(&w, " \"");
    put_esc(&w, f->method);
    put(&w, " ", 1);
    put_esc(&w, f->target);
    puts_(&w, f->version == 10 ? " HTTP/1.0\" " : " HTTP/1.1\" ");
    int n = f->bytes
                ? snprintf(num, sizeof num, "%d %llu \"", f->status, (unsigned long long)f->bytes)
                : snprintf(num, sizeof num, "%d - \"", f->status);
    put(&w, num, (size_t)n);
    put_esc(&w, f->referer);
    puts_(&w, "\" \"");
    put_esc(&w, f->user_agent);
    puts_(&w, "\"\n");
    return w.len;
}
