/* libFuzzer target: the response builder (src/http/resphead.c), the code
 * wh_http_resp_header, wh_http_respond and the streamed responses run.
 *
 * Input: byte 0 picks the exchange (bit 0: HTTP/1.0 request, 1: HEAD,
 * 2: the request asked to close, 3: streamed response, 4: no Server name
 * configured, 5: status from the whole 16-bit range instead of 200..599),
 * bytes 1-2 the status, then operations until the input ends, each a byte
 * (% 4) and its length-prefixed strings: 0-1 add a field (name, value),
 * 2 set the content type, 3 add a piece of body.
 *
 * Each call's verdict is checked against a model written from the rules
 * (RFC 9110 §5.5, §5.6.2, §7.6.1; RFC 9112 §6), then the bytes that would
 * go on the wire are parsed back with wharf's own response parser: they
 * must give exactly the accepted fields (a refused one nowhere), at most one
 * framing field and the body that was sent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/resphead.h"

#define MAX_FIELDS 100
#define DATE       "Sun, 06 Nov 1994 08:49:37 GMT"

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static int get_byte(rd *r)
{
    if (!r->n) return -1;
    r->n--;
    return *r->p++;
}

/* A length-prefixed string, NUL-terminated into out (an embedded NUL ends
 * it, as it would for a caller's C string). */
static void get_str(rd *r, char *out, size_t cap)
{
    int l = get_byte(r);
    size_t n = l < 0 ? 0 : (size_t)l;
    if (n > r->n) n = r->n;
    if (n > cap - 1) n = cap - 1;
    memcpy(out, r->p, n);
    out[n] = 0;
    r->p += n;
    r->n -= n;
}

/* ---- the model ---- */

static bool m_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool m_value(const char *v)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == 0x7f || (c < 0x20 && c != '\t')) return false;
    }
    return true;
}

static bool m_name(const char *n)
{
    if (!*n) return false;
    for (; *n; n++)
        if (!m_tchar((unsigned char)*n)) return false;
    return true;
}

static bool m_lists_close(const char *v)
{
    char tmp[256];
    strcpy(tmp, v);
    for (char *save = NULL, *e = strtok_r(tmp, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        while (*e == ' ' || *e == '\t')
            e++;
        size_t l = strlen(e);
        while (l && (e[l - 1] == ' ' || e[l - 1] == '\t'))
            l--;
        if (l == 5 && !strncasecmp(e, "close", 5)) return true;
    }
    return false;
}

/* ---- what must come back ---- */

typedef struct want {
    char name[64];
    char value[256];
    bool seen;
} want;

static want wants[MAX_FIELDS + 8];
static size_t nwants;

static void expect(const char *name, const char *value)
{
    want *w = &wants[nwants++];
    strcpy(w->name, name);
    /* a parser drops the whitespace around a value (RFC 9110 §5.5) */
    while (*value == ' ' || *value == '\t')
        value++;
    size_t l = strlen(value);
    while (l && (value[l - 1] == ' ' || value[l - 1] == '\t'))
        l--;
    memcpy(w->value, value, l);
    w->value[l] = 0;
    w->seen = false;
}

static bool str_is(wh_str s, const char *lit)
{
    return s.len == strlen(lit) && !memcmp(s.p, lit, s.len);
}

static char names[MAX_FIELDS][64], values[MAX_FIELDS][256];
static char body[70000], wire[300000], decoded[70000];
static wh_http_parsed_response resp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    rd in = {data + 3, size - 3};
    unsigned mode = data[0];
    bool v10 = mode & 1, head_only = mode & 2, req_close = mode & 4, stream = mode & 8;
    const char *server_name = (mode & 16) ? NULL : "wharf";
    int status =
        (mode & 32) ? (int)(int16_t)(data[1] | data[2] << 8) : 200 + (data[1] | data[2] << 8) % 400;

    char inl[384];
    char *lines = inl;
    size_t llen = 0, lcap = sizeof inl;
    wh__resp_lines l = {&lines, &llen, &lcap, inl};

    bool handler_close = false, have_date = false, have_server = false;
    char ctype[256] = "text/plain", user_date[256] = "", user_server[256] = "";
    bool ct_null = false;
    size_t blen = 0, nplain = 0, nops = 0;
    size_t pieces[64], npieces = 0;

    int op;
    while ((op = get_byte(&in)) >= 0 && nops++ < MAX_FIELDS + 64) {
        switch (op % 4) {
        case 0:
        case 1: {
            if (nplain == MAX_FIELDS) break;
            char *name = names[nplain], *value = values[nplain];
            get_str(&in, name, 64);
            get_str(&in, value, 256);
            /* the model's verdict */
            int want_kind = -EINVAL;
            if (m_name(name) && m_value(value)) {
                if (!strcasecmp(name, "content-length") || !strcasecmp(name, "transfer-encoding"))
                    want_kind = -EINVAL;
                else if (!strcasecmp(name, "connection"))
                    want_kind = m_lists_close(value) ? WH__RF_CLOSE : -EINVAL;
                else if (!strcasecmp(name, "date"))
                    want_kind = WH__RF_DATE;
                else if (!strcasecmp(name, "server"))
                    want_kind = WH__RF_SERVER;
                else
                    want_kind = WH__RF_PLAIN;
            }
            size_t nl = 0, vl = 0;
            int kind = wh__resp_field_check(name, value, &nl, &vl);
            if (kind != want_kind) abort();
            if (kind < 0) break;
            if (nl != strlen(name) || vl != strlen(value)) abort();
            if (kind == WH__RF_CLOSE) {
                handler_close = true;
                break;
            }
            int rc = wh__resp_lines_add(&l, kind, name, nl, value, vl);
            bool dup = (kind == WH__RF_DATE && have_date) || (kind == WH__RF_SERVER && have_server);
            if (rc != (dup ? -EINVAL : 0)) abort();
            if (rc) break;
            if (kind == WH__RF_DATE) {
                have_date = true;
                strcpy(user_date, value);
            } else if (kind == WH__RF_SERVER) {
                have_server = true;
                strcpy(user_server, value);
            } else {
                nplain++;
            }
            break;
        }
        case 2: {
            get_str(&in, ctype, sizeof ctype);
            ct_null = ctype[0] == 0 && in.n && (in.p[0] & 1);
            break;
        }
        case 3: {
            int a = get_byte(&in), b = get_byte(&in);
            size_t n = (size_t)(a < 0 ? 0 : a) | (size_t)(b < 0 ? 0 : b) << 8;
            n %= 4096;
            if (n > in.n) n = in.n;
            if (blen + n > sizeof body || npieces == 64) break;
            memcpy(body + blen, in.p, n);
            in.p += n;
            in.n -= n;
            blen += n;
            pieces[npieces++] = n;
            break;
        }
        }
    }

    /* Arguments: a refused call sends nothing; the engine (or the handler)
     * answers 500 instead, which must always be accepted. */
    const char *ct = ct_null ? NULL : ctype;
    bool args = status >= 200 && status <= 599 && (!ct || m_value(ct));
    if (wh__resp_status_ok(status) != (status >= 200 && status <= 599)) abort();
    if (ct && wh__resp_value_ok(ct) != m_value(ct)) abort();
    if (!args) {
        status = 500;
        ct = "text/html; charset=utf-8";
        stream = false;
    }

    /* The head, as head_into in response.c builds it. */
    bool bodyless = wh__resp_bodyless(status);
    if (bodyless != (status == 204 || status == 304)) abort();
    bool close = req_close || handler_close || (stream && v10);
    bool chunked = stream && !v10 && !bodyless;
    wh_http_head_spec h = {
        .status = status,
        .content_type = (stream || !bodyless) ? ct : NULL,
        .content_length = (stream || bodyless) ? -1 : (int64_t)blen,
        .chunked = chunked,
        .close = close,
        .keep_alive = !close && v10,
        .date = DATE,
        .server = server_name,
        .extra = lines,
        .extra_len = llen,
    };
    wh__resp_head_own(&h);
    if ((h.server == NULL) != (have_server || !server_name) || (h.date == NULL) != have_date)
        abort();
    int n = wh_http_format_head(wire, sizeof wire, &h);
    if (n <= 0) abort();
    size_t wlen = (size_t)n;
    if (!stream) {
        if (!bodyless && !head_only && blen) {
            memcpy(wire + wlen, body, blen);
            wlen += blen;
        }
    } else if (!bodyless && !head_only) {
        size_t off = 0;
        for (size_t k = 0; k < npieces; k++) {
            size_t pl = pieces[k];
            if (chunked && pl) {
                wlen += (size_t)wh__resp_chunk_line(wire + wlen, pl);
                memcpy(wire + wlen, body + off, pl);
                wlen += pl;
                memcpy(wire + wlen, "\r\n", 2);
                wlen += 2;
            } else if (pl) {
                memcpy(wire + wlen, body + off, pl);
                wlen += pl;
            }
            off += pl;
        }
        if (chunked) {
            memcpy(wire + wlen, "0\r\n\r\n", 5);
            wlen += 5;
        }
    }

    /* What must come back. */
    nwants = 0;
    if (have_server)
        expect("Server", user_server);
    else if (server_name)
        expect("Server", server_name);
    expect("Date", have_date ? user_date : DATE);
    if (h.content_type) expect("Content-Type", h.content_type);
    char cl[32];
    if (h.content_length >= 0) {
        snprintf(cl, sizeof cl, "%zu", blen);
        expect("Content-Length", cl);
    }
    if (chunked) expect("Transfer-Encoding", "chunked");
    if (close) expect("Connection", "close");
    if (!close && v10) expect("Connection", "keep-alive");
    for (size_t k = 0; k < nplain; k++) {
        expect(names[k], values[k]); /* only accepted fields were kept */
    }

    wh_http_limits lim;
    wh_http_limits_init(&lim);
    lim.max_headers = WH_HTTP_MAX_HEADERS;
    lim.max_header_bytes = sizeof wire;
    int hl = wh_http_parse_response(wire, wlen, &resp, &lim);
    if (hl <= 0 || (size_t)hl > wlen) abort();
    if (resp.status != status || resp.version != 11 || resp.nheaders != nwants) abort();
    unsigned framing_fields = 0, conn_fields = 0;
    for (unsigned i = 0; i < resp.nheaders; i++) {
        wh_str nm = resp.headers[i].name, vv = resp.headers[i].value;
        if (nm.len == 14 && !strncasecmp(nm.p, "content-length", 14)) framing_fields++;
        if (nm.len == 17 && !strncasecmp(nm.p, "transfer-encoding", 17)) framing_fields++;
        if (nm.len == 10 && !strncasecmp(nm.p, "connection", 10)) conn_fields++;
        size_t j = 0;
        for (; j < nwants; j++)
            if (!wants[j].seen && str_is(nm, wants[j].name) && str_is(vv, wants[j].value)) break;
        if (j == nwants) abort(); /* a field nobody accepted */
        wants[j].seen = true;
    }
    if (framing_fields != (bodyless || (stream && !chunked) ? 0u : 1u) || conn_fields > 1) abort();
    if (resp.keep_alive != (!close && resp.framing != WH_HTTP_BODY_CLOSE)) abort();

    /* The body. */
    const char *rest = wire + hl;
    size_t rlen = wlen - (size_t)hl;
    bool no_body = bodyless || head_only;
    if (!stream) {
        if (resp.framing != (bodyless || !blen ? WH_HTTP_BODY_NONE : WH_HTTP_BODY_LENGTH)) abort();
        if (!bodyless && resp.framing == WH_HTTP_BODY_LENGTH && resp.content_length != blen)
            abort();
        if (rlen != (no_body ? 0 : blen) || memcmp(rest, body, rlen)) abort();
    } else if (chunked) {
        if (resp.framing != WH_HTTP_BODY_CHUNKED) abort();
        if (head_only) {
            if (rlen) abort();
        } else {
            memcpy(decoded, rest, rlen);
            wh_http_chunked d;
            wh_http_chunked_init(&d, 0);
            size_t ip = 0, op2 = 0;
            if (wh_http_chunked_decode(&d, decoded, rlen, &ip, &op2) != 0 || ip != rlen ||
                op2 != blen || memcmp(decoded, body, blen))
                abort();
        }
    } else {
        if (resp.framing != (bodyless ? WH_HTTP_BODY_NONE : WH_HTTP_BODY_CLOSE)) abort();
        if (rlen != (no_body ? 0 : blen) || memcmp(rest, body, rlen)) abort();
    }

    /* Chunk size lines read back as the length they announce. */
    size_t big = (size_t)data[1] << 40 | (size_t)size << 8 | data[2];
    char sz[24];
    int zl = wh__resp_chunk_line(sz, big);
    sz[zl] = 0;
    if (zl < 3 || strtoull(sz, NULL, 16) != big || memcmp(sz + zl - 2, "\r\n", 2)) abort();

    if (lines != inl) free(lines);
    return 0;
}
