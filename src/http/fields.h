/* Header-value helpers shared by the request-data decoders (fields.c,
 * multipart.c); library-internal. */
#ifndef WH_HTTP_FIELDS_H
#define WH_HTTP_FIELDS_H

#include "wharf/http_data.h"

/* Parses the next parameter of `*( OWS ";" OWS [ name "=" value ] )`
 * (RFC 9110 §5.6.6) from *p, which ends at end. Returns 1 with the name and
 * the raw value (for a quoted-string: between the DQUOTEs, *quoted set), 0
 * at the end, -EINVAL if malformed. */
int wh__http_param_next(const char **p, const char *end, wh_str *name, wh_str *value, bool *quoted);
/* Copies the inside of a quoted-string to out (which may be v.p; NULL only
 * measures) with its escapes undone; returns the length, at most v.len. */
size_t wh__http_unquote(wh_str v, char *out);

#endif
