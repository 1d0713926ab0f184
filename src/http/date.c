/* Per-thread HTTP state and the Date header cache: the IMF-fixdate is
 * formatted at most once a second per loop, and the wall clock is read at
 * most once a second too (the loop's cached monotonic time decides when). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_internal.h"

static void hl_free(void *p)
{
    wh__http_loop *hl = p;
    if (hl->spare) {
        free(hl->spare);
    }
    for (unsigned i = 0; i < hl->nfree_hc; i++)
        free(hl->free_hc[i]);
    free(hl);
}

wh__http_loop *wh__http_loop_get(wh_loop *loop)
{
    wh__http_loop *hl = wh__loop_slot(loop, WH__SLOT_HTTP);
    if (hl) return hl;
    hl = calloc(1, sizeof(*hl));
    if (!hl) return NULL;
    hl->loop = loop;
    hl->date_sec = -1;
    wh__loop_set_slot(loop, WH__SLOT_HTTP, hl, hl_free);
    return hl;
}

const char *wh__http_date(wh__http_loop *hl)
{
    uint64_t now = wh_loop_now(hl->loop);
    if (now >= hl->date_next_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (ts.tv_sec != hl->date_sec) {
            hl->date_sec = ts.tv_sec;
            wh_http_format_date(ts.tv_sec, hl->date);
        }
        /* Check again when the wall-clock second is over. */
        hl->date_next_ms = now + (uint64_t)(1000 - ts.tv_nsec / 1000000);
    }
    return hl->date;
}
