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

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
}

/* Bytes the field takes in the line. */
static size_t esc_len(wh_str s)
{
    if (!s.p || !s.len) return 1; /* "-" */
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += needs_escape((unsigned char)s.p[i]) ? 4 : 1;
    return n;
}

/* Writes s escaped, in at most budget bytes; a field that does not fit is
 * cut before the escape that would cross the limit and ends in the marker,
 * so a reader never sees half an escape. */
static void put_esc(struct w *w, wh_str s, size_t budget)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s.p || !s.len) {
        put(w, "-", 1);
        return;
    }
    size_t mark = sizeof WH_CLF_TRUNCATED - 1;
    size_t room = budget > mark ? budget - mark : 0, used = 0;
    bool cut = budget < esc_len(s);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        size_t unit = needs_escape(c) ? 4 : 1;
        if (cut && used + unit > room) break;
        if (unit == 4) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            put(w, e, 4);
        } else {
            put(w, (const char *)&c, 1);
        }
        used += unit;
    }
    if (cut) put(w, WH_CLF_TRUNCATED, mark);
}

enum { F_METHOD, F_TARGET, F_REFERER, F_AGENT, F_N };

static size_t format(const wh_clf *f, char *buf, size_t cap, const size_t budget[F_N])
{
    struct w w = {buf, cap, 0};
    char num[48];
    puts_(&w, f->host ? f->host : "-");
    puts_(&w, " - - ");
    puts_(&w, f->time);
    puts_(&w, " \"");
    if (f->method.len) {
        put_esc(&w, f->method, budget[F_METHOD]);
        put(&w, " ", 1);
        put_esc(&w, f->target, budget[F_TARGET]);
        /* 0: refused before the version was read (505 among others). */
        puts_(&w, f->version == 10 ? " HTTP/1.0\" " : f->version == 11 ? " HTTP/1.1\" " : " -\" ");
    } else {
        puts_(&w, "-\" ");
    }
    int n = f->bytes
                ? snprintf(num, sizeof num, "%d %llu \"", f->status, (unsigned long long)f->bytes)
                : snprintf(num, sizeof num, "%d - \"", f->status);
    put(&w, num, (size_t)n);
    put_esc(&w, f->referer, budget[F_REFERER]);
    puts_(&w, "\" \"");
    put_esc(&w, f->user_agent, budget[F_AGENT]);
    puts_(&w, "\"\n");
    return w.len;
}

size_t wh_clf_format(const wh_clf *f, char *buf, size_t cap)
{
    static const size_t all[F_N] = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    return format(f, buf, cap, all);
}

size_t wh_clf_format_max(const wh_clf *f, char *buf, size_t max, bool *truncated)
{
    *truncated = false;
    size_t full = wh_clf_format(f, NULL, 0);
    if (full <= max) return wh_clf_format(f, buf, max);
    wh_str fs[F_N] = {f->method, f->target, f->referer, f->user_agent};
    size_t len[F_N], sum = 0;
    for (int i = 0; i < F_N; i++) {
        len[i] = f->method.len || i >= F_REFERER ? esc_len(fs[i]) : 0;
        sum += len[i];
    }
    size_t fixed = full - sum;
    size_t avail = max > fixed ? max - fixed : 0;
    /* Water-filling: the short fields keep all they have; what is left is
     * shared equally by the long ones, so one huge header cannot push the
     * others out of the line. */
    size_t budget[F_N];
    bool done[F_N] = {false};
    for (int left = F_N; left > 0; left--) {
        int k = -1;
        for (int i = 0; i < F_N; i++)
            if (!done[i] && (k < 0 || len[i] < len[k])) k = i;
        size_t fair = avail / (size_t)left;
        budget[k] = len[k] <= fair ? len[k] : fair;
        avail -= budget[k];
        done[k] = true;
    }
    size_t n = format(f, buf, max, budget);
    *truncated = true;
    return n <= max ? n : max; /* only when max is below WH_CLF_MIN_MAX */
}
