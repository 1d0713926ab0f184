/* Static files, library-internal side: what the planner, the blocking head
 * formatter and the event-driven responder share (src/http/file_*.c). */
#ifndef WH_HTTP_FILE_INTERNAL_H
#define WH_HTTP_FILE_INTERNAL_H

#include "wharf/http_file.h"

#include "http/resphead.h"

/* Most fields a plan adds (wh__static_plan_fields). */
#define WH__PLAN_FIELDS_MAX 9

/* Fills f with every field plan adds beyond those the head formatter writes
 * itself (status line, Date, Server, Content-Type, Content-Length,
 * Connection), so wh_static_format_head and wh_http_respond_plan send the
 * same set; returns how many. */
size_t wh__static_plan_fields(const wh_static_plan *plan, wh__field f[WH__PLAN_FIELDS_MAX]);

#endif
