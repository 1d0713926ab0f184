/* Static files, library-internal side: what the planner, the blocking head
 * formatter and the event-driven responder share (src/http/file_*.c). */
#ifndef WH_HTTP_FILE_INTERNAL_H
#define WH_HTTP_FILE_INTERNAL_H

#include "wharf/http_file.h"

/* Receives one response field; nonzero stops the walk and is returned. */
typedef int (*wh__plan_field_fn)(void *ud, const char *name, const char *value);

/* Calls fn for every field plan adds beyond those the head formatter writes
 * itself (status line, Date, Server, Content-Type, Content-Length,
 * Connection), so wh_static_format_head and wh_http_respond_plan send the
 * same set. 0, or the first nonzero fn result. */
int wh__static_plan_fields(const wh_static_plan *plan, wh__plan_field_fn fn, void *ud);

#endif
