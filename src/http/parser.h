/* wharf HTTP/1.1 parser, library-internal side. The parser, the chunked
 * decoder and the head/date formatters are public (wharf/http_parse.h: the
 * lab's blocking servers use them too); what stays here are helpers the
 * engine shares between its files but does not promise to users. */
#ifndef WH_HTTP_PARSER_H
#define WH_HTTP_PARSER_H

#include "wharf/http_parse.h"

/* The parser's byte classes (parser.c); bit WH__HTTP_C_TCHAR marks a tchar. */
extern const unsigned char wh__http_cls[256];
#define WH__HTTP_C_TCHAR 1

/* True if c may appear in a token (RFC 9110 §5.6.2 tchar). Inline: the
 * response path checks every header name byte by byte. */
static inline bool wh_http_is_tchar(unsigned char c)
{
    return wh__http_cls[c] & WH__HTTP_C_TCHAR;
}

/* Case-insensitive compare of a slice with a NUL-terminated lowercase-or-any string. */
bool wh_str_ieq(wh_str s, const char *lit);

/* Writes v in decimal at p (no NUL); returns the end. The head formatter's,
 * shared with the engine's prepared-head path (response.c). */
char *wh__http_put_u64(char *p, uint64_t v);

#endif
