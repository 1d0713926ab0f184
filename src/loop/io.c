/* fd watchers.
 *
 * Stale events: the backend returns a batch of (token, events), and a
 * callback may free any watcher, its own included, while later entries of
 * the same batch are still to be dispatched. So the kernel never holds a
 * watcher pointer: a watcher registers a token = (generation << 32 | slot),
 * where slot indexes the loop's watcher table. Freeing a watcher bumps its
 * slot's generation, so every event still pending for it, in this batch or
 * from a registration the kernel kept (see below), no longer matches and is
 * dropped before anything is dereferenced.
 *
 * Where the generation lives (8 bytes per table entry, not 16): while a
 * watcher holds a slot, in the watcher (wh__iow.gen, read by dispatch next
 * to the interest it reads anyway); while the slot is free, in the free
 * table entry itself (gen << 32 | next_free << 1 | 1; an occupied entry is
 * an aligned pointer, low bit 0). An event is dispatched only if its slot
 * is occupied and the occupant's gen equals the token's. A slot's
 * generation goes up by one at every release and is handed to the next
 * occupant, exactly as when it sat beside the pointer, so a (gen, slot)
 * pair repeats only after 2^32 reuses of that one slot: never within a
 * batch (at most max_events entries), and for a registration the kernel
 * kept after a contract breach only after 4 billion watchers took that
 * same slot. Freeing is O(1), needs no
 * graveyard, and the memory may be released at once: that is what lets a
 * connection struct embed its wh_io and free itself inside its callback. A
 * new watcher on a reused fd number (or in a reused slot) gets a new token,
 * so the old watcher's pending events never reach it.
 *
 * fd ownership: the loop also remembers which slot registered each fd number.
 * If a user closes an fd before freeing its watcher (against the contract)
 * and the number is reused for a new watcher, the old watcher's DEL/MOD
 * would hit the new registration (epoll_ctl works by fd number); the table
 * turns that into a no-op (DEL) or -EBADF (MOD). If the closed file lives
 * on elsewhere (dup, fork), epoll(7) keeps the old registration: its events
 * are then dropped by the generation check instead of touching freed memory.
 *
 * Disarming (flags 0) uses EPOLL_CTL_DEL, not MOD to an empty mask:
 * epoll_ctl(2) always reports EPOLLHUP/EPOLLERR, even for events == 0, so a
 * disarmed level-triggered watcher on a hung-up socket would wake the loop
 * forever. Re-arming later costs one ADD instead of one MOD: the same. */
#include <stddef.h>
#include <stdlib.h>

#include "loop/loop_priv.h"

/* A free table entry is told from a watcher's address by its low bit. */
_Static_assert(_Alignof(wh__iow) >= 2, "watcher addresses are even");
/* The interest is kept in 8 bits (wh__iow.flags). */
_Static_assert((WH_IO_READ | WH_IO_WRITE | WH_IO_EDGE | WH_IO_ONESHOT | WH_IO_EXCLUSIVE) <= 0xff,
               "WH_IO_* interest fits wh__iow.flags");
/* Class watchers exist to keep one watcher per connection small. */
_Static_assert(sizeof(wh__iow) == 16, "wh__iow is 16 bytes");

#define WH__IO_USER_FLAGS (WH_IO_READ | WH_IO_WRITE | WH_IO_EDGE | WH_IO_ONESHOT | WH_IO_EXCLUSIVE)

static int slot_acquire(wh_loop *loop, wh__iow *w)
{
    uint32_t i = loop->iot_free, gen = 0;
    if (i != WH__IOENT_NONE) {
        uint64_t e = loop->iot[i];
        loop->iot_free = (uint32_t)(e >> 1) & WH__IOENT_NONE;
        gen = (uint32_t)(e >> 32);
    } else {
        if (loop->iot_len == loop->iot_cap) {
            uint32_t cap = loop->iot_cap ? loop->iot_cap * 2 : 64;
            if (cap > WH__IOENT_NONE) cap = WH__IOENT_NONE; /* 31-bit free links */
            if (cap == loop->iot_len) return -ENOMEM;
            wh__ioent *t = realloc(loop->iot, (size_t)cap * sizeof(*t));
            if (!t) return -ENOMEM;
            loop->iot = t;
            loop->iot_cap = cap;
        }
        i = loop->iot_len++;
    }
    loop->iot[i] = (uintptr_t)w;
    w->slot = i;
    w->gen = gen;
    return 0;
}

static void slot_release(wh_loop *loop, wh__iow *w)
{
    uint32_t i = w->slot;
    if (i == WH__NOIDX) return;
    /* The next occupant gets gen + 1: pending events carry the old one and
     * are dropped. The generation lives in the table while the slot is free,
     * so it survives the watcher's memory. */
    loop->iot[i] = WH__IOENT_FREE(w->gen + 1, loop->iot_free);
    loop->iot_free = i;
    w->slot = WH__NOIDX;
}

static int fdown_reserve(wh_loop *loop, int fd)
{
    if ((uint32_t)fd < loop->fdown_cap) return 0;
    /* Grows by a quarter, in whole pages past the first: the map is zeroed
     * (so every page is touched), and its unused tail is memory each fd
     * costs (issue 15's budget per idle conn). Still geometric, so the
     * copies stay O(1) per fd. */
    uint32_t cap = loop->fdown_cap ? loop->fdown_cap : 64;
    while (cap <= (uint32_t)fd) {
        uint32_t next = cap + cap / 4;
        cap = next < 1024 ? cap * 2 : (next + 1023) & ~1023u;
    }
    uint32_t *t = realloc(loop->fdown, (size_t)cap * sizeof(*t));
    if (!t) return -ENOMEM;
    for (uint32_t i = loop->fdown_cap; i < cap; i++)
        t[i] = 0;
    loop->fdown = t;
    loop->fdown_cap = cap;
    return 0;
}

/* True if this watcher's registration is the one the loop has for its fd. */
static bool owns_fd(const wh_loop *loop, const wh__iow *io)
{
    return (uint32_t)io->fd < loop->fdown_cap && loop->fdown[io->fd] == io->slot + 1;
}

static int io_ctl(wh_loop *loop, wh__iow *io, unsigned old_flags, unsigned new_flags)
{
    if (old_flags && !owns_fd(loop, io)) {
        /* Our fd was closed and its number registered by another watcher:
         * the kernel already dropped our registration with the file. */
        return new_flags ? -EBADF : 0;
    }
    if (!old_flags) {
        int r = fdown_reserve(loop, io->fd);
        if (r < 0) return r;
    }
    uint64_t token = (uint64_t)io->gen << 32 | io->slot;
    loop->st.ctl_calls++;
    int r = loop->be_ops->ctl(loop->be, io->fd, token, old_flags, new_flags);
    if (r == 0 && !old_flags)
        loop->fdown[io->fd] = io->slot + 1;
    else if (!new_flags || (r < 0 && old_flags && ((old_flags | new_flags) & WH_IO_EXCLUSIVE)))
        loop->fdown[io->fd] = 0; /* removed (or DEL+ADD failed half way) */
    return r;
}

void wh__iow_init(wh__iow *w, int fd, unsigned cls)
{
    w->fd = fd;
    w->slot = WH__NOIDX;
    w->gen = 0;
    w->flags = 0;
    w->state = 0;
    w->cls = (uint8_t)cls;
    w->spare = 0;
}

void wh__io_init(wh_loop *loop, wh_io *io, int fd, wh_io_cb cb, void *ud)
{
    io->loop = loop;
    io->cb = cb;
    io->ud = ud;
    wh__iow_init(&io->w, fd, 0);
}

int wh__io_class_add(wh_loop *loop, wh__iow_cb cb, void *ud)
{
    if (loop->n_io_cls == 0) loop->n_io_cls = 1; /* class 0 is plain wh_io */
    if (loop->n_io_cls >= WH__IO_CLASSES) return -ENOSPC;
    loop->io_cls[loop->n_io_cls] = (wh__iocls){cb, ud};
    return loop->n_io_cls++;
}

/* Removes io's registration; outside wh_loop_run also hands the removal to
 * the kernel at once (backend.h flush), since nothing may poll again soon.
 * Only on the loop's thread: see ur_free for why no other thread enters an
 * io_uring ring. */
static void io_unregister(wh_loop *loop, wh__iow *io)
{
    (void)io_ctl(loop, io, io->flags, 0);
    if (!loop->running && !loop->freeing && loop->be_ops->flush && wh_loop_on_thread(loop))
        loop->be_ops->flush(loop->be);
}

void wh__iow_deinit(wh_loop *loop, wh__iow *io)
{
    if (io->state & WH__IO_S_DEAD) return;
    if (io->state & WH__IO_S_REG) io_unregister(loop, io);
    slot_release(loop, io);
    io->state = WH__IO_S_DEAD;
    io->flags = 0;
}

void wh__io_deinit(wh_io *io)
{
    wh__iow_deinit(io->loop, &io->w);
}

void wh__iow_forget(wh_loop *loop, wh__iow *io)
{
    if (io->state & WH__IO_S_DEAD) return;
    /* close(2) of the last descriptor of the file drops an epoll
     * registration: saving the EPOLL_CTL_DEL matters on a
     * connection-per-request load. An io_uring poll holds the file open
     * instead, so that backend gets its removal (queued, no syscall). */
    if ((io->state & WH__IO_S_REG) && owns_fd(loop, io)) {
        if (loop->be_ops->close_drops)
            loop->fdown[io->fd] = 0;
        else
            io_unregister(loop, io);
    }
    slot_release(loop, io);
    io->state = WH__IO_S_DEAD;
    io->flags = 0;
}

void wh__loop_flush(wh_loop *loop)
{
    if (loop->be_ops->flush && wh_loop_on_thread(loop)) loop->be_ops->flush(loop->be);
}

void wh__io_forget(wh_io *io)
{
    wh__iow_forget(io->loop, &io->w);
}

int wh_io_new(wh_loop *loop, int fd, wh_io_cb cb, void *ud, wh_io **out)
{
    if (!loop || fd < 0 || !cb || !out) return -EINVAL;
    *out = NULL;
    wh_io *io = malloc(sizeof(*io));
    if (!io) return -ENOMEM;
    wh__io_init(loop, io, fd, cb, ud);
    /* Owned watchers take their slot now: wh_loop_free finds them there. */
    if (slot_acquire(loop, &io->w) < 0) {
        free(io);
        return -ENOMEM;
    }
    io->w.state = WH__IO_S_OWNED;
    *out = io;
    return 0;
}

int wh__iow_set(wh_loop *loop, wh__iow *io, unsigned flags)
{
    flags &= WH__IO_USER_FLAGS;
    if (!(flags & (WH_IO_READ | WH_IO_WRITE)))
        flags = 0; /* EDGE/ONESHOT alone ask for nothing: disarm */
    if ((flags & WH_IO_ONESHOT) && (flags & WH_IO_EXCLUSIVE))
        return -EINVAL; /* epoll_ctl(2): EPOLLEXCLUSIVE with EPOLLONESHOT is EINVAL */
    if (io->state & WH__IO_S_DEAD) return -EINVAL;
    /* Unchanged interest: no syscall. A fired one-shot is not "unchanged":
     * the kernel disarmed it, so setting it again re-arms it. */
    if (flags == io->flags && !(io->state & WH__IO_S_FIRED)) return 0;
    unsigned old = (io->state & WH__IO_S_REG) ? io->flags : 0;
    if (!old && !flags) {
        io->flags = 0;
        return 0;
    }
    if (io->slot == WH__NOIDX) { /* embedded, first arming */
        int r = slot_acquire(loop, io);
        if (r < 0) return r;
    }
    int r = io_ctl(loop, io, old, flags);
    if (r < 0) {
        if (old && flags && ((old | flags) & WH_IO_EXCLUSIVE)) {
            /* DEL+ADD failed half way: the fd is no longer registered. */
            io->state &= (uint8_t) ~(WH__IO_S_REG | WH__IO_S_FIRED);
            io->flags = 0;
        }
        return r;
    }
    io->flags = (uint8_t)flags;
    io->state &= (uint8_t)~WH__IO_S_FIRED;
    if (flags)
        io->state |= WH__IO_S_REG;
    else
        io->state &= (uint8_t)~WH__IO_S_REG;
    return 0;
}

int wh_io_set(wh_io *io, unsigned flags)
{
    return wh__iow_set(io->loop, &io->w, flags);
}

unsigned wh_io_flags(const wh_io *io)
{
    return io->w.flags;
}

int wh_io_rearm(wh_io *io)
{
    wh__iow *w = &io->w;
    if (!(w->flags & WH_IO_ONESHOT)) return -EINVAL;
    if (!(w->state & WH__IO_S_FIRED)) return 0; /* still armed in the kernel */
    int r = io_ctl(io->loop, w, w->flags, w->flags);
    if (r < 0) return r;
    w->state &= (uint8_t)~WH__IO_S_FIRED;
    return 0;
}

void wh_io_free(wh_io *io)
{
    if (!io) return;
    wh__io_deinit(io);
    free(io);
}

int wh_io_fd(const wh_io *io)
{
    return io->w.fd;
}

wh_loop *wh_io_loop(const wh_io *io)
{
    return io->loop;
}

void wh_io_set_cb(wh_io *io, wh_io_cb cb, void *ud)
{
    io->cb = cb;
    io->ud = ud;
}

void wh__io_free_all(wh_loop *loop)
{
    /* The backend fd is closed right after: no need to DEL each fd. Embedded
     * watchers belong to their embedders and are only forgotten. */
    for (uint32_t i = 0; i < loop->iot_len; i++) {
        if (loop->iot[i] & 1) continue; /* free slot */
        wh__iow *w = (wh__iow *)loop->iot[i];
        if (w->cls == 0 && (w->state & WH__IO_S_OWNED))
            free((wh_io *)((char *)w - offsetof(wh_io, w)));
    }
    free(loop->iot);
    free(loop->fdown);
    loop->iot = NULL;
    loop->fdown = NULL;
    loop->iot_len = loop->iot_cap = loop->fdown_cap = 0;
}

size_t wh__loop_io_bytes(const wh_loop *loop)
{
    return (size_t)loop->iot_cap * sizeof(*loop->iot) +
           (size_t)loop->fdown_cap * sizeof(*loop->fdown);
}
