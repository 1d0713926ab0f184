/* Request metrics for wharfd's /metrics (Prometheus text exposition
 * format 0.0.4). One wh_metrics per worker thread, written only by its
 * thread (relaxed atomic stores: no lock, no locked instruction) and summed
 * by the reader (relaxed atomic loads), so scraping never stops a worker. */
#ifndef WH_APPS_METRICS_H
#define WH_APPS_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Latency buckets, upper bounds in milliseconds (the engine's request
 * start is a millisecond timestamp, so finer buckets would be noise). */
#define WH_METRICS_BUCKETS 12
extern const unsigned wh_metrics_bucket_ms[WH_METRICS_BUCKETS];

typedef struct wh_metrics {
    uint64_t by_status[600];              /* index = status code; 0 = other */
    uint64_t bytes;                       /* response body bytes */
    uint64_t lat[WH_METRICS_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
    uint64_t lat_sum_ms;
    uint64_t count;
} wh_metrics;

/* Owner thread: records one finished exchange. */
void wh_metrics_observe(wh_metrics *m, int status, uint64_t bytes, uint64_t latency_ms);
/* Any thread: adds a snapshot of src into sum (sum is private to the caller). */
void wh_metrics_sum(wh_metrics *sum, const wh_metrics *src);
/* Writes the request families (wharfd_http_requests_total by code,
 * wharfd_http_response_bytes_total, wharfd_http_request_duration_seconds
 * histogram) as Prometheus text. Returns bytes needed (like snprintf). */
size_t wh_metrics_format(const wh_metrics *sum, char *buf, size_t cap);

#endif
