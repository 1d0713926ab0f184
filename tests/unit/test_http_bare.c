/* WH_TEST_LABELS: tsan
 * The HTTP request tests of test_http_server.c, served from a bare wh_loop
 * and wh_listener (wh_http_server_listen) instead of a wh_server: HTTP is a
 * protocol on wh_conn and needs no runtime. */
#define WH_HTTP_TEST_BARE 1
#include "unit/test_http_server.c"
