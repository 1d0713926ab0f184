/* The HTML body of an error response, in one place for the engine (framing
 * errors, wh_http_respond_error) and the file planner, so a client sees the
 * same page whichever part of the library answered. */
#ifndef WH_HTTP_ERRPAGE_H
#define WH_HTTP_ERRPAGE_H

#include <stddef.h>

/* Room for any page: the longest reason phrase is about 31 bytes. */
#define WH__HTTP_ERROR_PAGE_MAX 160

/* Its content type. */
#define WH__HTTP_ERROR_PAGE_TYPE "text/html; charset=utf-8"

/* Writes the page for status into buf; its length, or -ENOSPC when cap is too small. */
int wh__http_error_page(int status, char *buf, size_t cap);

#endif
