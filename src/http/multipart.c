/* multipart/form-data (RFC 7578) over the multipart body syntax of RFC 2046
 * §5.1.1, parsed incrementally:
 *
 *   body      = [preamble CRLF] "--" boundary pad CRLF part
 *               *( CRLF "--" boundary pad CRLF part )
 *               CRLF "--" boundary "--" [epilogue]
 *   part      = header-lines [CRLF content]
 *
 * The delimiter is CRLF "--" boundary. Its CRLF belongs to the delimiter,
 * not to the content before it. A boundary cannot contain CR, so a match
 * can only start at a CR of the input: on a mismatch the bytes held back
 * so far are plain content, and the search goes on at the byte that did
 * not match. What is held back is a prefix of the delimiter, so it is kept
 * as a count and given back from mp->delim.
 *
 * Two places behave as if a CRLF had just been read (mp->virt): the start
 * of the body, where the first boundary line needs none, and the end of a
 * part's header lines, whose last CRLF may double as the delimiter's when
 * the part has no content. Those virtual bytes are never content.
 *
 * Line ends are CRLF only (RFC 2046 §5.1.1, RFC 7578 §4.1): a bare CR or LF
 * in a delimiter line or in part headers is an error, as in the request
 * head (docs/http.md). A "--boundary" followed by anything but "--", blanks
 * and CRLF is an error, not content: RFC 2046 §5.1.1 says a boundary match
 * at the start of a line is a delimiter whatever follows. */
#include <string.h>

#include "http/fields.h"
#include "http/parser.h"

enum {
    S_PREAMBLE = 0, /* before the first delimiter (ignored) */
    S_DELIM,        /* just after "--" boundary */
    S_CLOSE,        /* after "--" boundary "-" */
    S_PAD,          /* blanks after the boundary */
    S_PAD_LF,       /* CR after the boundary line */
    S_HEADERS,      /* a part's header lines */
    S_DATA,         /* a part's content */
    S_EPILOGUE,     /* after the close delimiter (ignored) */
};

static bool is_bchar(unsigned char c)
{
    /* RFC 2046 §5.1.1 bchars */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static bool boundary_ok(wh_str b)
{
    if (!b.p || b.len < 1 || b.len > WH_HTTP_MULTIPART_BOUNDARY_MAX || b.p[b.len - 1] == ' ')
        return false;
    for (size_t i = 0; i < b.len; i++)
        if (!is_bchar((unsigned char)b.p[i])) return false;
    return true;
}

int wh_http_multipart_boundary(wh_str content_type, char *buf, size_t cap)
{
    ssize_t n = wh_http_header_param(content_type, "boundary", buf, cap);
    if (n < 0) return (int)n;
    if (!boundary_ok((wh_str){buf, (size_t)n})) return -EINVAL;
    return (int)n;
}

int wh_http_multipart_init(wh_http_multipart *mp, wh_str boundary, char *hbuf, size_t hcap)
{
    memset(mp, 0, sizeof(*mp));
    if (!boundary_ok(boundary) || !hbuf || hcap < 64) return -EINVAL;
    mp->max_parts = 128;
    mp->max_name = 256;
    mp->hbuf = hbuf;
    mp->hcap = hcap;
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.p, boundary.len);
    mp->dlen = (uint8_t)(4 + boundary.len);
    mp->state = S_PREAMBLE;
    mp->held = mp->virt = 2;
    return 0;
}

static int fail(wh_http_multipart *mp, int err, const char *why, uint64_t off)
{
    mp->error = err;
    mp->err = why;
    mp->err_off = off;
    return err;
}

/* Content-Disposition: form-data; name="..."[; filename="..."]
 * (RFC 7578 §4.2). Slices point into the header block; quoted values are
 * unquoted in place. */
static int disposition(wh_http_multipart *mp, wh_str v, const char **why)
{
    const char *t = v.p, *end = v.p + v.len;
    while (t < end && (*t == ' ' || *t == '\t'))
        t++;
    const char *p = t;
    while (p < end && wh_http_is_tchar((unsigned char)*p))
        p++;
    *why = "Content-Disposition is not form-data";
    if (!wh_str_ieq((wh_str){t, (size_t)(p - t)}, "form-data")) return -EBADMSG;
    wh_str k, val;
    bool quoted, qname = false, qfile = false;
    int rc;
    while ((rc = wh__http_param_next(&p, end, &k, &val, &quoted)) > 0) {
        /* A repeated name or filename could be read one way here and
         * another way by a filter in front of us: refuse it. */
        if (wh_str_ieq(k, "name")) {
            *why = "repeated name parameter";
            if (mp->part.name.p) return -EBADMSG;
            mp->part.name = val;
            qname = quoted;
        } else if (wh_str_ieq(k, "filename")) {
            *why = "repeated filename parameter";
            if (mp->part.filename.p) return -EBADMSG;
            mp->part.filename = val;
            qfile = quoted;
        }
        /* filename* (RFC 5987) MUST NOT be sent (RFC 7578 §4.2); other
         * parameters have no meaning here. Both are ignored. */
    }
    *why = "malformed Content-Disposition parameters";
    if (rc < 0) return rc == -EINVAL ? -EBADMSG : rc;
    *why = "part without a name";
    if (!mp->part.name.p) return -EBADMSG;
    if (qname) mp->part.name.len = wh__http_unquote(mp->part.name, (char *)mp->part.name.p);
    if (qfile)
        mp->part.filename.len = wh__http_unquote(mp->part.filename, (char *)mp->part.filename.p);
    *why = "part name too long";
    if (mp->part.name.len > mp->max_name) return -ENAMETOOLONG;
    return 0;
}

/* Parses the header block hbuf[0..hlen), which ends in an empty line. */
static int part_headers(wh_http_multipart *mp, const char **why)
{
    unsigned index = mp->nparts - 1;
    memset(&mp->part, 0, sizeof(mp->part));
    mp->part.index = index;
    wh_str disp = {NULL, 0};
    const char *p = mp->hbuf, *end = mp->hbuf + mp->hlen - 2; /* without the empty line */
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p)); /* every CR is a CRLF here */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        *why = "malformed part header line";
        if (!colon || colon == p) return -EBADMSG;
        for (const char *c = p; c < colon; c++)
            if (!wh_http_is_tchar((unsigned char)*c)) return -EBADMSG;
        wh_str name = {p, (size_t)(colon - p)};
        const char *vs = colon + 1, *ve = eol;
        while (vs < ve && (*vs == ' ' || *vs == '\t'))
            vs++;
        while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        wh_str value = {vs, (size_t)(ve - vs)};
        if (wh_str_ieq(name, "content-disposition")) {
            *why = "repeated Content-Disposition";
            if (disp.p) return -EBADMSG;
            disp = value;
        } else if (wh_str_ieq(name, "content-type")) {
            *why = "repeated Content-Type";
            if (mp->part.content_type.p) return -EBADMSG;
            mp->part.content_type = value;
        }
        /* Other fields MUST be ignored (RFC 7578 §4.8). */
        p = eol + 2;
    }
    *why = "part without Content-Disposition";
    if (!disp.p) return -EBADMSG;
    return disposition(mp, disp, why);
}

/* One state machine over the body (preamble, delimiter, header block,
 * content, epilogue) in one switch: its states share the input position and
 * resume anywhere a piece ends, which split functions would have to pass
 * back and forth; hence its length. */
int wh_http_multipart_feed(wh_http_multipart *mp, const char *in, size_t len, size_t *pos,
                           wh_str *data)
{
    if (mp->error) return mp->error;
    const size_t p0 = *pos;
    size_t i = p0;
    int ev = WH_HTTP_MULTIPART_MORE;
    const char *why = NULL;
    int err = 0;
#define FAIL(e, w)                                                                                 \
    do {                                                                                           \
        err = (e);                                                                                 \
        why = (w);                                                                                 \
        goto failed;                                                                               \
    } while (0)
    while (ev == WH_HTTP_MULTIPART_MORE && i < len) {
        switch (mp->state) {
        case S_PREAMBLE:
        case S_DATA: {
            bool content = mp->state == S_DATA;
            size_t start = i;
            if (mp->held) {
                /* A delimiter began in an earlier piece (or virtually). */
                while (mp->held < mp->dlen && i < len && in[i] == mp->delim[mp->held]) {
                    i++;
                    mp->held++;
                }
                if (mp->held == mp->dlen) {
                    mp->held = mp->virt = 0;
                    mp->state = S_DELIM;
                    if (content) ev = WH_HTTP_MULTIPART_PART_END;
                    break;
                }
                if (i == len) break;
                size_t real = (size_t)(mp->held - mp->virt);
                const char *src = mp->delim + mp->virt;
                mp->held = mp->virt = 0;
                if (real > i - p0) {
                    /* held back from an earlier piece: give them back */
                    if (content) {
                        *data = (wh_str){src, real};
                        ev = WH_HTTP_MULTIPART_DATA;
                    }
                    break;
                }
                /* all in this piece: they start the content run, so that a
                 * part fed in one piece comes out as one slice */
                start = i - real;
            }
            for (;;) {
                const char *cr = memchr(in + i, '\r', len - i);
                if (!cr) {
                    i = len;
                    break;
                }
                size_t q = (size_t)(cr - in), k = 0;
                while (k < mp->dlen && q + k < len && in[q + k] == mp->delim[k])
                    k++;
                if (k < mp->dlen && q + k < len) {
                    i = q + 1; /* not a delimiter: content */
                    continue;
                }
                if (content && q > start) {
                    i = q; /* the content first; the delimiter on the next call */
                    break;
                }
                i = q + k;
                if (k == mp->dlen) {
                    mp->state = S_DELIM;
                    if (content) ev = WH_HTTP_MULTIPART_PART_END;
                } else {
                    mp->held = (uint8_t)k; /* runs to the end of this piece */
                }
                start = i;
                break;
            }
            if (content && i > start) {
                *data = (wh_str){in + start, i - start};
                ev = WH_HTTP_MULTIPART_DATA;
            }
            break;
        }
        case S_DELIM:
            if (in[i] == '-') {
                mp->state = S_CLOSE;
            } else if (in[i] == ' ' || in[i] == '\t') {
                mp->state = S_PAD;
            } else if (in[i] == '\r') {
                mp->state = S_PAD_LF;
            } else {
                FAIL(-EBADMSG, "boundary followed by other text");
            }
            i++;
            break;
        case S_CLOSE:
            if (in[i] != '-') FAIL(-EBADMSG, "boundary followed by other text");
            i++;
            mp->state = S_EPILOGUE;
            ev = WH_HTTP_MULTIPART_DONE;
            break;
        case S_PAD:
            if (in[i] == '\r')
                mp->state = S_PAD_LF;
            else if (in[i] != ' ' && in[i] != '\t')
                FAIL(-EBADMSG, "boundary followed by other text");
            i++;
            break;
        case S_PAD_LF:
            if (in[i] != '\n') FAIL(-EBADMSG, "bare CR after a boundary");
            i++;
            if (mp->nparts >= mp->max_parts) FAIL(-E2BIG, "too many parts");
            mp->nparts++;
            mp->hlen = 0;
            mp->state = S_HEADERS;
            break;
        case S_HEADERS: {
            unsigned char c = (unsigned char)in[i];
            size_t h = mp->hlen;
            bool line_start = h == 0 || mp->hbuf[h - 1] == '\n';
            if (h > 0 && mp->hbuf[h - 1] == '\r' && c != '\n')
                FAIL(-EBADMSG, "bare CR in part headers");
            if (c == '\n' && (h == 0 || mp->hbuf[h - 1] != '\r'))
                FAIL(-EBADMSG, "bare LF in part headers");
            if (line_start && (c == ' ' || c == '\t'))
                FAIL(-EBADMSG, "folded part header line"); /* obs-fold, RFC 9112 §5.2 */
            if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
                FAIL(-EBADMSG, "control character in part headers");
            if (h == mp->hcap) FAIL(-EMSGSIZE, "part headers too large");
            mp->hbuf[mp->hlen++] = (char)c;
            i++;
            if (c != '\n' || (mp->hlen != 2 && (mp->hlen < 4 || mp->hbuf[mp->hlen - 4] != '\r' ||
                                                mp->hbuf[mp->hlen - 3] != '\n')))
                break;
            int rc = part_headers(mp, &why);
            if (rc < 0) {
                i--; /* report the end of the header block */
                FAIL(rc, why);
            }
            mp->state = S_DATA;
            mp->held = mp->virt = 2;
            ev = WH_HTTP_MULTIPART_PART;
            break;
        }
        default: /* S_EPILOGUE: ignored (RFC 2046 §5.1.1) */
            i = len;
            break;
        }
    }
#undef FAIL
    mp->off += i - p0;
    *pos = i;
    return ev;
failed:
    *pos = i;
    return fail(mp, err, why, mp->off + (i - p0));
}

int wh_http_multipart_finish(wh_http_multipart *mp)
{
    if (mp->error) return mp->error;
    if (mp->state != S_EPILOGUE) return fail(mp, -EBADMSG, "no close delimiter", mp->off);
    return 0;
}

int wh_http_multipart_next(wh_http_multipart *mp, wh_str body, size_t *pos, wh_str *data)
{
    wh_str acc = {NULL, 0};
    for (;;) {
        wh_str d;
        int ev = wh_http_multipart_feed(mp, body.p, body.len, pos, &d);
        switch (ev) {
        case WH_HTTP_MULTIPART_PART:
            acc = (wh_str){body.p + *pos, 0};
            break;
        case WH_HTTP_MULTIPART_DATA:
            /* One piece of input: a part's content is one contiguous slice
             * of it (held-back bytes only arise across pieces). */
            if (d.p != acc.p + acc.len) return fail(mp, -EINVAL, "content not contiguous", mp->off);
            acc.len += d.len;
            break;
        case WH_HTTP_MULTIPART_PART_END:
            *data = acc;
            return 1;
        case WH_HTTP_MULTIPART_DONE:
            return 0;
        case WH_HTTP_MULTIPART_MORE: {
            int rc = wh_http_multipart_finish(mp);
            return rc < 0 ? rc : 0;
        }
        default:
            return ev;
        }
    }
}

ssize_t wh_http_multipart_get(wh_str body, wh_str boundary, const char *name, char *buf, size_t cap)
{
    char hbuf[WH_HTTP_MULTIPART_HEADER_DEFAULT];
    wh_http_multipart mp;
    int rc = wh_http_multipart_init(&mp, boundary, hbuf, sizeof hbuf);
    if (rc < 0) return rc;
    size_t pos = 0, nl = strlen(name);
    wh_str d, found = {NULL, 0};
    /* The whole body is checked, so that the answer does not depend on
     * which field is asked for. */
    while ((rc = wh_http_multipart_next(&mp, body, &pos, &d)) > 0)
        if (!found.p && mp.part.name.len == nl && !memcmp(mp.part.name.p, name, nl)) found = d;
    if (rc < 0) return rc;
    if (!found.p) return -ENOENT;
    if (found.len >= cap) return -ENOSPC;
    memcpy(buf, found.p, found.len);
    buf[found.len] = '\0';
    return (ssize_t)found.len;
}
