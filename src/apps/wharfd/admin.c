/* /healthz and /metrics (Prometheus text format 0.0.4). main.c routes them
 * for GET (and so HEAD) only: the router answers 405 with Allow for the
 * rest. /healthz is on the main listener (load balancers probe it there)
 * and on --admin; /metrics tells about traffic and internals, so it is on
 * --admin, and on the main listener only with --metrics-public. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/wharfd/wharfd.h"

void wharfd_healthz_handler(wh_http_req *r, void *ud)
{
    wharfd_app *app = ud;
    bool stopping = app->srv && wh_server_stopping(app->srv);
    wh_http_resp_header(r, "Cache-Control", "no-store");
    /* 503 while draining, so a load balancer stops sending new work. */
    if (stopping)
        wh_http_respond(r, 503, "text/plain; charset=utf-8", "stopping\n", 9);
    else
        wh_http_respond(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

void wharfd_metrics_handler(wh_http_req *r, void *ud)
{
    wharfd_app *app = ud;
    wh_metrics *sum = calloc(1, sizeof *sum);
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    if (!sum || !buf) {
        free(sum);
        free(buf);
        wh_http_respond_error(r, 503);
        return;
    }
    unsigned n = app->srv ? wh_server_threads(app->srv) : 0;
    for (unsigned i = 0; i < n && i < WHARFD_MAX_THREADS; i++) {
        wharfd_thread *t = __atomic_load_n(&app->threads[i], __ATOMIC_ACQUIRE);
        if (t) wh_metrics_sum(sum, &t->metrics);
    }
    wharfd_thread *at = __atomic_load_n(&app->admin_thread, __ATOMIC_ACQUIRE);
    if (at) wh_metrics_sum(sum, &at->metrics);
    size_t len = wh_metrics_format(sum, buf, cap);
    wh_server_stats st;
    memset(&st, 0, sizeof st);
    if (app->srv) wh_server_stats_get(app->srv, &st);
    if (len < cap)
        len += (size_t)snprintf(
            buf + len, cap - len,
            "# HELP wharfd_open_connections Client connections open now.\n"
            "# TYPE wharfd_open_connections gauge\n"
            "wharfd_open_connections %llu\n"
            "# HELP wharfd_connections_accepted_total Connections accepted.\n"
            "# TYPE wharfd_connections_accepted_total counter\n"
            "wharfd_connections_accepted_total %llu\n"
            "# HELP wharfd_connections_rejected_total Connections closed at the --max-conns cap.\n"
            "# TYPE wharfd_connections_rejected_total counter\n"
            "wharfd_connections_rejected_total %llu\n"
            "# HELP wharfd_network_bytes_total Bytes on client sockets.\n"
            "# TYPE wharfd_network_bytes_total counter\n"
            "wharfd_network_bytes_total{direction=\"in\"} %llu\n"
            "wharfd_network_bytes_total{direction=\"out\"} %llu\n"
            "# HELP wharfd_access_log_dropped_lines_total Access-log lines lost to a slow disk.\n"
            "# TYPE wharfd_access_log_dropped_lines_total counter\n"
            "wharfd_access_log_dropped_lines_total %llu\n"
            "# HELP wharfd_access_log_truncated_lines_total Access-log lines cut to 64 KiB "
            "(marked ...[truncated]).\n"
            "# TYPE wharfd_access_log_truncated_lines_total counter\n"
            "wharfd_access_log_truncated_lines_total %llu\n"
            "# HELP wharfd_threads Worker threads.\n"
            "# TYPE wharfd_threads gauge\n"
            "wharfd_threads %u\n"
            "# HELP wharfd_build_info Build version.\n"
            "# TYPE wharfd_build_info gauge\n"
            "wharfd_build_info{version=\"%s\"} 1\n",
            (unsigned long long)st.open_conns, (unsigned long long)st.accepted,
            (unsigned long long)st.rejected, (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out, (unsigned long long)wharfd_alog_dropped(),
            (unsigned long long)wharfd_alog_truncated(), n, WH_VERSION);
    if (app->cfg.proxy_protocol && len < cap) {
        uint64_t rej[WH_PROXY_REJECT_MAX + 1] = {0};
        for (unsigned i = 0; i < n && i < WHARFD_MAX_THREADS; i++) {
            wharfd_thread *t = __atomic_load_n(&app->threads[i], __ATOMIC_ACQUIRE);
            for (int k = 1; t && k <= WH_PROXY_REJECT_MAX; k++)
                rej[k] += __atomic_load_n(&t->proxy_rejected[k], __ATOMIC_RELAXED);
        }
        len += (size_t)snprintf(buf + len, cap - len,
                                "# HELP wharfd_proxy_rejected_total Connections closed by the "
                                "PROXY protocol stage, by reason.\n"
                                "# TYPE wharfd_proxy_rejected_total counter\n");
        for (int k = 1; k <= WH_PROXY_REJECT_MAX && len < cap; k++)
            len += (size_t)snprintf(buf + len, cap - len,
                                    "wharfd_proxy_rejected_total{reason=\"%s\"} %llu\n",
                                    wh_proxy_reject_name(k), (unsigned long long)rej[k]);
    }
    len = wharfd_tls_metrics(app, buf, len, cap);
    if (len >= cap) len = cap - 1;
    wh_http_resp_header(r, "Cache-Control", "no-store");
    wh_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
    free(buf);
    free(sum);
}
