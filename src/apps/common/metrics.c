/* Prometheus text for request metrics (see metrics.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apps/common/metrics.h"

const unsigned wh_metrics_bucket_ms[WH_METRICS_BUCKETS] = {1,   5,   10,   25,   50,   100,
                                                           250, 500, 1000, 2500, 5000, 10000};

static inline void bump(uint64_t *p, uint64_t by)
{
    /* Single writer: load + store, no read-modify-write lock needed; the
     * atomics only make the concurrent reader well-defined. */
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + by, __ATOMIC_RELAXED);
}

void wh_metrics_observe(wh_metrics *m, int status, uint64_t bytes, uint64_t latency_ms)
{
    bump(&m->by_status[status >= 100 && status < 600 ? status : 0], 1);
    bump(&m->bytes, bytes);
    unsigned b = 0;
    while (b < WH_METRICS_BUCKETS && latency_ms > wh_metrics_bucket_ms[b])
        b++;
    bump(&m->lat[b], 1);
    bump(&m->lat_sum_ms, latency_ms);
    bump(&m->count, 1);
}

static inline uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void wh_metrics_sum(wh_metrics *sum, const wh_metrics *src)
{
    for (size_t i = 0; i < 600; i++)
        sum->by_status[i] += ld(&src->by_status[i]);
    sum->bytes += ld(&src->bytes);
    for (size_t i = 0; i <= WH_METRICS_BUCKETS; i++)
        sum->lat[i] += ld(&src->lat[i]);
    sum->lat_sum_ms += ld(&src->lat_sum_ms);
    sum->count += ld(&src->count);
}

struct out {
    char *buf;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void add(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL,
                      o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

size_t wh_metrics_format(const wh_metrics *m, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    add(&o, "# HELP wharfd_http_requests_total HTTP requests answered, by status code.\n"
            "# TYPE wharfd_http_requests_total counter\n");
    for (int s = 0; s < 600; s++)
        if (m->by_status[s])
            add(&o, "wharfd_http_requests_total{code=\"%d\"} %llu\n", s,
                (unsigned long long)m->by_status[s]);
    add(&o,
        "# HELP wharfd_http_response_bytes_total Response body bytes sent.\n"
        "# TYPE wharfd_http_response_bytes_total counter\n"
        "wharfd_http_response_bytes_total %llu\n",
        (unsigned long long)m->bytes);
    add(&o, "# HELP wharfd_http_request_duration_seconds Time from complete request head to "
            "response done.\n"
            "# TYPE wharfd_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < WH_METRICS_BUCKETS; b++) {
        cum += m->lat[b];
        add(&o, "wharfd_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
            wh_metrics_bucket_ms[b] / 1000.0, (unsigned long long)cum);
    }
    cum += m->lat[WH_METRICS_BUCKETS];
    add(&o,
        "wharfd_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
        "wharfd_http_request_duration_seconds_sum %.3f\n"
        "wharfd_http_request_duration_seconds_count %llu\n",
        (unsigned long long)cum, m->lat_sum_ms / 1000.0, (unsigned long long)m->count);
    return o.len;
}
