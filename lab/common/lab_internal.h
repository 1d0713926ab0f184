/* lab/common internals: one request in, one response out.
 *
 * lab_respond() is the whole "application": it looks at the bytes a model has
 * buffered and, once a complete request is there, builds its response with
 * wharf's public parser and file planner (wharf/http_parse.h,
 * wharf/http_file.h) and the guestbook page (apps/common/guestbook_page.h).
 * It never touches the socket, so the blocking driver (serve.c) and the
 * event-driven one (conn.c) share it unchanged.
 */
#ifndef LAB_INTERNAL_H
#define LAB_INTERNAL_H

#include "lab.h"

#include <stdint.h>
#include <sys/types.h>

/* A connection's read buffer: a request line (8 KiB), headers (16 KiB) and
 * the guestbook form (8 KiB) must fit - the parser's default limits. */
#define LAB_BUF_SIZE 33792
/* Largest request body accepted (the guestbook form, WH_GB_BODY_MAX); larger -> 413. */
#define LAB_MAX_BODY 8192

/* A response: head (status line + headers), then an in-memory body or a file range. */
typedef struct lab_resp {
    int status; /* 100: an interim "100 Continue" head only; nothing was consumed */
    bool close; /* close the connection after this response */
    size_t head_len;
    char *body; /* malloc'd, or NULL */
    size_t body_len;
    int file_fd; /* -1 when none; sent with sendfile(2) */
    off_t file_off;
    size_t file_len;
    char head[4096];
} lab_resp;

/* Looks at buf[0..len): returns the bytes of one complete request consumed
 * (> 0) and fills out; 0 when more bytes are needed (then out->status is 100
 * if the client waits for "100 Continue" before sending its body: send
 * out->head once per request). A malformed or oversized request gets a 4xx
 * response with close set (and consumes everything). */
size_t lab_respond(const char *buf, size_t len, const lab_cfg *cfg, lab_redis *redis,
                   lab_resp *out);
/* Frees what the response holds (body, file descriptor). */
void lab_resp_release(lab_resp *r);

/* Writes the rest of r to fd; *sent counts head+body bytes already written
 * (the file part advances r->file_off/file_len). 0 = all written, 1 = the
 * socket is full (EAGAIN, non-blocking sockets only), -1 = error. */
int lab_resp_write(int fd, lab_resp *r, size_t *sent);

/* Guestbook: GET renders the page; POST stores the form's message then
 * redirects (303). Fills status, content type (in *ctype), body and *extra headers. */
struct wh_http_parsed;
void lab_guestbook(const struct wh_http_parsed *req, const char *body, size_t body_len,
                   lab_redis *redis, lab_resp *out, const char **ctype, const char **extra);

/* A connected Redis context, (re)connecting if needed; NULL when Redis is unreachable. */
struct redisContext *lab_redis_get(lab_redis *r);
/* Drops a failed context so the next request reconnects. */
void lab_redis_drop(lab_redis *r);

#endif
