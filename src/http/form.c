/* Form fields of a request body, whichever of the two form encodings of
 * HTML it uses: application/x-www-form-urlencoded or multipart/form-data
 * (RFC 7578). */
#include "wharf/http_data.h"

ssize_t wh_http_req_form_get(const wh_http_req *r, const char *name, char *buf, size_t cap)
{
    unsigned pos = 0;
    wh_str ct, again;
    if (!wh_http_req_header_next(r, "content-type", &pos, &ct)) return -ENOTSUP;
    /* Content-Type is a singleton field (RFC 9110 §8.3): with two, the body
     * could be read two ways. */
    if (wh_http_req_header_next(r, "content-type", &pos, &again)) return -EINVAL;
    wh_str body = wh_http_req_body(r);
    if (wh_http_media_type_is(ct, "application/x-www-form-urlencoded"))
        return wh_http_form_get(body, name, buf, cap);
    if (!wh_http_media_type_is(ct, "multipart/form-data")) return -ENOTSUP;
    char b[WH_HTTP_MULTIPART_BOUNDARY_MAX + 1];
    int n = wh_http_multipart_boundary(ct, b, sizeof b);
    if (n < 0) return n == -ENOSPC ? -EINVAL : n == -ENOENT ? -EBADMSG : n;
    return wh_http_multipart_get(body, (wh_str){b, (size_t)n}, name, buf, cap);
}
