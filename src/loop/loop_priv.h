/* Private to src/loop: the loop structure shared by loop.c, io.c, timer.c,
 * signal.c and post.c. Other layers use loop_internal.h. */
#ifndef WH_LOOP_PRIV_H
#define WH_LOOP_PRIV_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "loop/backend.h"
#include "loop/loop_internal.h"

#define WH__NOIDX UINT32_MAX

/* wh_io.state bits */
enum {
    WH__IO_S_REG = 1u << 0,   /* registered with the backend */
    WH__IO_S_FIRED = 1u << 1, /* ONESHOT event delivered: kernel disarmed it */
    WH__IO_S_DEAD = 1u << 2,  /* deinit'ed / freed */
    WH__IO_S_OWNED = 1u << 3, /* made by wh_io_new: wh_loop_free frees it */
};

/* Watcher table entry (io.c): the occupant's wh__iow pointer (low bit 0),
 * or, for a free slot, gen << 32 | next_free << 1 | 1 (WH__IOENT_FREE). */
typedef uintptr_t wh__ioent;
_Static_assert(sizeof(uintptr_t) == 8, "a free table entry packs a 32-bit generation");
#define WH__IOENT_FREE(gen, next) ((uint64_t)(gen) << 32 | (uint64_t)(next) << 1 | 1u)
#define WH__IOENT_NONE            0x7FFFFFFFu /* end of the free list (31 bits) */

/* A watcher class (wh__io_class_add); index 0 is unused (plain wh_io). */
#define WH__IO_CLASSES 8
typedef struct wh__iocls {
    wh__iow_cb cb;
    void *ud;
} wh__iocls;

typedef struct wh__task {
    wh_task_fn fn;
    void *arg;
} wh__task;

/* One slot of the cross-thread post ring (post.c). */
typedef struct wh__post_cell {
    _Atomic uint64_t seq; /* position + 1 once filled; position + ring size once free again */
    wh_task_fn fn;
    void *arg;
} wh__post_cell;

typedef struct wh__tvec {
    wh__task *v;
    uint32_t n, cap;
} wh__tvec;

typedef struct wh__tent {
    uint64_t deadline;
    uint64_t seq; /* start order: equal deadlines fire in start order */
    wh_timer *t;
} wh__tent;

struct wh_signal {
    wh_loop *loop;
    wh_signal_cb cb;
    void *ud;
    int signo;
    bool dead;
    struct wh_signal *next;
};

struct wh_loop {
    /* Hot: touched every iteration. */
    uint64_t now;
    const wh__backend *be_ops;
    void *be;
    wh__fired *fired;
    unsigned max_events;
    wh__ioent *iot; /* watcher table, indexed by slot */
    uint32_t iot_len, iot_cap, iot_free;
    wh__iocls io_cls[WH__IO_CLASSES];
    uint8_t n_io_cls;
    uint32_t *fdown; /* fd -> slot + 1 of the watcher registered for it, 0 none */
    uint32_t fdown_cap;
    int be_err; /* why the backend asked for is not be_ops (wh_loop_backend_error) */
    bool stop;
    bool running;
    bool freeing; /* wh_loop_free has begun: the backend's free flushes at once */
    bool time_frozen;

    /* Timers: binary min-heap on (deadline, seq). */
    wh__tent *heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* Owned timers, freed by wh_loop_free (index kept in each timer). */
    wh_timer **timers;
    uint32_t ntimers, cap_timers;

    /* Deferred callbacks: run at the end of the iteration; ones deferred
     * while running go to the next iteration. */
    wh__tvec defer, defer_run;

    /* Loop-thread side of cross-thread posts. */
    wh__tvec post_run;  /* the overflow batch being run */
    uint64_t post_head; /* next ring position to take */
    wh__post_cell *post_ring;
    wh_io evio;

    /* Shared with producer threads, one cache line per role so the loop's
     * own writes never invalidate what producers touch on every post
     * (the struct is allocated 64-byte aligned for this). */
    _Alignas(64) _Atomic uint64_t post_tail; /* ring positions claimed (+ WH__POST_CLOSED) */
    atomic_int post_overflowing;             /* post_q is not empty: producers use it too */
    _Alignas(64) pthread_mutex_t post_mu;    /* overflow path: lock + queue */
    wh__tvec post_q;                         /* producers push here when the ring is full */
    bool post_closed;                        /* under post_mu: wh_loop_free began */
    _Alignas(64) atomic_int wake_pending;    /* read on every post, written per sleep */
    int evfd;                                /* read-only after creation */
    atomic_ullong wake_writes;               /* written only when a wake-up is sent */
    _Alignas(64) atomic_ulong thread;        /* pthread_t of the running thread */

    /* Signals (signalfd), created on first use. */
    int sigfd;
    wh_io sigio;
    sigset_t sigmask;
    int sig_dispatching;
    bool sig_dead;
    struct wh_signal *sigs[_NSIG];

    /* Slots and user data. */
    struct {
        void *ptr;
        void (*free_fn)(void *);
    } slots[WH__SLOT_COUNT];
    void *data;

    wh__loop_stats st;
};

/* Grows v to hold one more; 0 or -ENOMEM. */
int wh__tvec_reserve(wh__tvec *v);

/* Implemented in io.c/timer.c/signal.c/post.c for loop.c. */
void wh__io_free_all(wh_loop *loop);
/* Fires the due timers; true if any fired. */
bool wh__timers_run(wh_loop *loop);
int wh__timers_timeout(const wh_loop *loop); /* ms until the nearest, -1 none */
void wh__timers_free_all(wh_loop *loop);
void wh__signals_free_all(wh_loop *loop);
int wh__post_init(wh_loop *loop);
/* wh_loop_free's first step: refuse posts, run the ones still queued. */
void wh__post_close(wh_loop *loop);
void wh__post_free(wh_loop *loop);

/* Reads the monotonic clock into loop->now (unless frozen by a test). */
static inline void wh__loop_update_time_raw(wh_loop *loop)
{
    if (loop->time_frozen) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
