/* Response-head and date formatting (pure; used by the engine and the lab). */
#include <string.h>

#include "http/parser.h"

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* "00" "01" ... "99": two digits per division. */
static const char digits2[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

char *wh__http_put_u64(char *p, uint64_t v)
{
    /* Count the digits, then write them from the last one back, two per
     * step: a Content-Length is formatted for every response. */
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    char *e = p + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        e -= 2;
        memcpy(e, digits2 + 2 * r, 2);
    }
    if (v >= 10)
        memcpy(e - 2, digits2 + 2 * v, 2);
    else
        e[-1] = (char)('0' + v);
    return p + n;
}

#define PUTLIT(p, s) put(p, s, sizeof(s) - 1)

int wh_http_format_head(char *buf, size_t cap, const wh_http_head_spec *h)
{
    const char *reason = wh_http_reason(h->status);
    size_t rl = strlen(reason);
    size_t need = 64 + rl; /* status line, framing, connection */
    size_t ctl = h->content_type ? strlen(h->content_type) : 0;
    size_t sl = h->server ? strlen(h->server) : 0;
    need += ctl + 16 + sl + 12 + (h->date ? 29 + 10 : 0) + h->extra_len + 40;
    if (need > cap || h->status < 100 || h->status > 999) return -ENOSPC;
    char *p = buf;
    p = PUTLIT(p, "HTTP/1.1 ");
    *p++ = (char)('0' + h->status / 100);
    *p++ = (char)('0' + h->status / 10 % 10);
    *p++ = (char)('0' + h->status % 10);
    *p++ = ' ';
    p = put(p, reason, rl);
    p = PUTLIT(p, "\r\n");
    if (h->server) {
        p = PUTLIT(p, "Server: ");
        p = put(p, h->server, sl);
        p = PUTLIT(p, "\r\n");
    }
    if (h->date) {
        p = PUTLIT(p, "Date: ");
        p = put(p, h->date, 29);
        p = PUTLIT(p, "\r\n");
    }
    if (h->content_type) {
        p = PUTLIT(p, "Content-Type: ");
        p = put(p, h->content_type, ctl);
        p = PUTLIT(p, "\r\n");
    }
    if (h->chunked) {
        p = PUTLIT(p, "Transfer-Encoding: chunked\r\n");
    } else if (h->content_length >= 0) {
        p = PUTLIT(p, "Content-Length: ");
        p = wh__http_put_u64(p, (uint64_t)h->content_length);
        p = PUTLIT(p, "\r\n");
    }
    if (h->close)
        p = PUTLIT(p, "Connection: close\r\n");
    else if (h->keep_alive)
        p = PUTLIT(p, "Connection: keep-alive\r\n");
    if (h->extra_len) p = put(p, h->extra, h->extra_len);
    p = PUTLIT(p, "\r\n");
    return (int)(p - buf);
}

void wh_http_format_date(time_t t, char out[30])
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = out;
    memcpy(p, days + 3 * tm.tm_wday, 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_mday / 10);
    *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = ' ';
    memcpy(p, mons + 3 * tm.tm_mon, 3);
    p += 3;
    *p++ = ' ';
    int y = tm.tm_year + 1900;
    *p++ = (char)('0' + y / 1000 % 10);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_hour / 10);
    *p++ = (char)('0' + tm.tm_hour % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_min / 10);
    *p++ = (char)('0' + tm.tm_min % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_sec / 10);
    *p++ = (char)('0' + tm.tm_sec % 10);
    memcpy(p, " GMT", 5);
}
