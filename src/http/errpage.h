/* The HTML body of an error response, in one place for the engine (framing
 * errors, wh_http_respond_error) and the file planner, so a client sees the
 * same page whichever part of the library answered. */
#ifndef WH_HTTP_ERRPAGE_H
#define WH_HTTP_ERRPAGE_H

#include <stddef.h>

#include "wharf/http.h"

/* Room for any page: the longest reason phrase is about 31 bytes. */
#define WH__HTTP_ERROR_PAGE_MAX 160

/* Its content type. */
#define WH__HTTP_ERROR_PAGE_TYPE "text/html; charset=utf-8"

/* Writes the page for status into buf; its length, or -ENOSPC when cap is too small. */
int wh__http_error_page(int status, char *buf, size_t cap);

/* Room for an application's error body (wh_http_opts.error_body). */
#define WH__HTTP_ERROR_BODY_MAX 2048

/* The body and content type of an engine error response for status: the
 * application's error_body hook when it gives one, else the built-in page.
 * r is NULL for requests that could not be parsed. Returns the length. */
int wh__http_error_body(const wh_http_opts *o, void *ud, int status, const wh_http_req *r,
                        char *buf, size_t cap, const char **type);

#endif
