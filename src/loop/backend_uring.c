/* io_uring backend (liburing): readiness through IORING_OP_POLL_ADD.
 *
 * The loop core asks for epoll's contract (backend.h): interest per fd,
 * level-triggered by default, EDGE, ONESHOT, EXCLUSIVE. io_uring has no
 * interest set, only poll requests, so the backend keeps one record per fd
 * (the interest, the token, the poll request in the kernel) and maps:
 *
 *   level-triggered  a single-shot poll, re-armed at the next poll() while
 *                    the interest remains: if the fd is still ready the new
 *                    poll completes at once inside the same io_uring_enter,
 *                    which is what epoll would report again;
 *   EDGE             a multishot poll (edge-triggered in the kernel: one
 *                    completion per wake-up), re-armed only if the kernel
 *                    ends it;
 *   ONESHOT          a single-shot poll, re-armed by ctl(old == new);
 *   EXCLUSIVE        EPOLLEXCLUSIVE in the poll mask (io_uring/poll.c keeps
 *                    it and queues the request as an exclusive waiter), on
 *                    single-shot polls; a kernel that refuses it (EINVAL)
 *                    gets the poll again without it.
 *
 * Each poll request carries user_data = seq << 32 | fd, seq a per-fd counter
 * bumped for every new request. Only the request the record calls "armed"
 * is current: a completion with any other user_data (a poll that was
 * removed, replaced by an interest change, or belonged to a closed fd whose
 * number came back) is stale and dropped, so no watcher sees events it did
 * not ask for. The remove requests themselves use user_data 0.
 *
 * ctl never enters the kernel: it edits the record and puts the fd on a
 * dirty list (removes become SQEs at once, they name the old request). poll()
 * turns the dirty list into POLL_ADD SQEs and makes one
 * io_uring_submit_and_wait_timeout that submits them and waits for the
 * loop's timeout. Only a full submission queue makes ctl or the flush submit
 * early. Several interest changes within one iteration therefore cost one
 * SQE, and a level-triggered watcher freed in its own callback costs none.
 *
 * A pending poll holds a reference to its file: unlike epoll, closing the fd
 * does not end it (backend.h close_drops is false), so the loop removes the
 * poll before the fd is closed and the file goes away when that remove is
 * submitted, at the next poll(). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_priv.h"
#include "wharf/loop.h"

#ifdef WH_HAVE_URING
#include <liburing.h>

#define UR_SQ_MIN 64u
#define UR_SQ_MAX 4096u

/* ur_fd.st: the interest the armed poll was made for (WH_IO_* bits, all
 * below 0x80) and the record's state. */
enum {
    UR_AFLAGS = 0xff,
    UR_ARMED = 1u << 8,   /* a poll with user_data seq << 32 | fd is in the kernel */
    UR_DIRTY = 1u << 9,   /* on the dirty list */
    UR_FIRED = 1u << 10,  /* ONESHOT delivered: no poll until re-armed */
    UR_BROKEN = 1u << 11, /* the poll failed: none until the next ctl */
    UR_OUT = 1u << 12,    /* reported in the poll() now reaping */
};

/* One per fd number: 16 bytes, the user-space price of a watched fd on this
 * backend (epoll keeps its equivalent in the kernel). */
typedef struct ur_fd {
    uint64_t token; /* the loop's token for the watcher */
    uint32_t seq;   /* seq of the armed poll (or of the last one) */
    uint16_t flags; /* interest (WH_IO_*); 0 = not registered */
    uint16_t st;    /* UR_* */
} ur_fd;

typedef struct ur_state {
    struct io_uring ring;
    ur_fd *fds; /* indexed by fd number */
    uint32_t cap;
    /* fds whose poll must be (re)made. Bounded: when it fills, the SQEs are
     * prepared at once (ctl still makes no syscall unless the SQ is full). */
    int *dirty;
    uint32_t ndirty, dirty_cap;
    int *outfd;   /* the fds reported by the poll() now reaping (UR_OUT) */
    unsigned max; /* max_events: outfd's size */
    bool no_excl; /* the kernel refused EPOLLEXCLUSIVE in a poll mask */

    /* Completion I/O (the wh__cq_* seam in loop_internal.h). */
    wh__cq_cb kinds[8];   /* completion callback per kind (1..7) */
    struct ur_done *done; /* op completions taken by poll(), run by complete() */
    unsigned ndone, done_cap;
    uint64_t inflight; /* ops submitted or queued whose last completion is still owed */
    /* Provided-buffer ring (group UR_BGID), made on the first recv. */
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs, buf_size;
    bool running_done;        /* complete() is running: a nested complete() waits */
    bool skip_ok;             /* IORING_FEAT_CQE_SKIP: ud-0 ops post no CQE on success */
    uint64_t n_ops, n_nobufs; /* wh__cq_counts */
    uint64_t n_sqes, n_cqes;  /* wh__cq_ring_counts */
} ur_state;

/* One op completion, copied out of the CQ so the ring head can advance
 * before the callbacks run (they may submit). */
typedef struct ur_done {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
} ur_done;

#define UR_BGID      0
#define UR_NBUFS     512u  /* 2 MiB per loop: a burst of 512 reads in flight */
#define UR_BUF_SIZE  4096u /* a request head fits; bigger bodies come in pieces */
#define UR_KIND_MASK 7u

static int ur_init(void **state, unsigned max_events)
{
    ur_state *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    unsigned sq = UR_SQ_MIN;
    while (sq < max_events && sq < UR_SQ_MAX)
        sq *= 2;
    /* A poll() re-arms at most max_events level-triggered fds; ctl fills the
     * rest, and a full list only means SQEs prepared a little earlier. */
    s->dirty_cap = max_events + 64;
    s->dirty = malloc(s->dirty_cap * sizeof(*s->dirty));
    s->outfd = malloc(max_events * sizeof(*s->outfd));
    s->max = max_events;
    /* Up to a CQ's worth of op completions per poll (the rest wait). */
    s->done_cap = sq * 2;
    s->done = malloc(s->done_cap * sizeof(*s->done));
    s->nbufs = UR_NBUFS;
    s->buf_size = UR_BUF_SIZE;
    if (!s->dirty || !s->outfd || !s->done) {
        free(s->dirty);
        free(s->outfd);
        free(s->done);
        free(s);
        return -ENOMEM;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* CQ twice the SQ: a burst of multishot completions then overflows
     * later (the kernel keeps overflowed CQEs anyway, IORING_FEAT_NODROP).
     * COOP_TASKRUN: completions are posted when this thread enters the
     * kernel (it does, once per iteration) instead of interrupting it. */
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = sq * 2;
#ifdef IORING_SETUP_SUBMIT_ALL
    p.flags |= IORING_SETUP_SUBMIT_ALL;
#endif
#if defined(IORING_SETUP_COOP_TASKRUN) && defined(IORING_SETUP_TASKRUN_FLAG)
    p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
#endif
    int r = io_uring_queue_init_params(sq, &s->ring, &p);
    if (r == -EINVAL) { /* an older kernel: no SUBMIT_ALL / COOP_TASKRUN */
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = sq * 2;
        r = io_uring_queue_init_params(sq, &s->ring, &p);
    }
    if (r < 0) {
        free(s->dirty);
        free(s->outfd);
        free(s->done);
        free(s);
        return r;
    }
    s->skip_ok = p.features & IORING_FEAT_CQE_SKIP;
    *state = s;
    return 0;
}

static void ur_free(void *state)
{
    ur_state *s = state;
    /* No submission here: this may run on a thread that never used the
     * ring (wh_server_free frees its workers' loops), and a thread that
     * entered a ring is signalled (TWA_SIGNAL task work) when the ring is
     * torn down, which fails its next blocking call with a timeout with
     * EINTR. The loop flushes on its own thread first (wh_loop_free);
     * closing the ring cancels whatever is left, asynchronously. */
    if (s->br) (void)io_uring_unregister_buf_ring(&s->ring, UR_BGID);
    io_uring_queue_exit(&s->ring);
    if (s->br) {
        munmap(s->br, (size_t)s->nbufs * sizeof(struct io_uring_buf));
        /* A recv still owed a completion (the owner never quiesced, or
         * the wait timed out) may yet be cancelled by the kernel's exit
         * work, after this returns: its buffers are left to it. */
        if (!s->inflight) free(s->bufs);
    }
    free(s->fds);
    free(s->dirty);
    free(s->outfd);
    free(s->done);
    free(s);
}

static int reserve_fd(ur_state *s, int fd)
{
    if ((uint32_t)fd < s->cap) return 0;
    uint32_t cap = s->cap ? s->cap : 64;
    while (cap <= (uint32_t)fd)
        cap *= 2;
    ur_fd *t = realloc(s->fds, (size_t)cap * sizeof(*t));
    if (!t) return -ENOMEM;
    memset(t + s->cap, 0, (size_t)(cap - s->cap) * sizeof(*t));
    s->fds = t;
    s->cap = cap;
    return 0;
}

/* A free SQE; submits what is queued when the ring is full. */
static struct io_uring_sqe *get_sqe(ur_state *s, int *err)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) {
        int r = io_uring_submit(&s->ring);
        if (r < 0) {
            *err = r;
            return NULL;
        }
        sqe = io_uring_get_sqe(&s->ring);
        if (!sqe) {
            *err = -EBUSY;
            return NULL;
        }
    }
    s->n_sqes++;
    return sqe;
}

/* For an op whose completion nobody reads (user_data 0: removes, cancels,
 * plain closes): no CQE at all when it succeeds, one CQE fewer to reap. */
static void skip_success(const ur_state *s, struct io_uring_sqe *sqe)
{
    if (s->skip_ok) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* Bit 63 marks a poll's user_data: the completion ops (wh__cq_*) use a
 * pointer ORed with a kind in 1..7, which never has it (user-space
 * addresses), and the removes and cancels use 0. */
#define UR_POLL_BIT (1ull << 63)

static uint64_t user_data(const ur_fd *e, int fd)
{
    return UR_POLL_BIT | (uint64_t)(e->seq & 0x7fffffffu) << 32 | (uint32_t)fd;
}

/* Queues the removal of e's armed poll (its completion turns stale). */
static int disarm(ur_state *s, int fd, ur_fd *e)
{
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    io_uring_prep_poll_remove(sqe, user_data(e, fd));
    io_uring_sqe_set_data64(sqe, 0); /* its own completion is ignored */
    skip_success(s, sqe);
    e->st &= (uint16_t)~UR_ARMED;
    return 0;
}

static unsigned poll_mask(const ur_state *s, unsigned f)
{
    unsigned m = 0;
    if (f & WH_IO_READ) m |= POLLIN;
    if (f & WH_IO_WRITE) m |= POLLOUT;
    if ((f & WH_IO_EXCLUSIVE) && !s->no_excl)
        m |= EPOLLEXCLUSIVE;
    else if (f & WH_IO_READ)
        m |= POLLRDHUP; /* as the epoll backend: half-close shows up as HUP */
    return m;
}

static int arm(ur_state *s, int fd, ur_fd *e)
{
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    unsigned f = e->flags;
    unsigned m = poll_mask(s, f);
    /* Multishot only for plain edge-triggered interest: ONESHOT wants one
     * completion, and an exclusive waiter stays single-shot (one request
     * per wake-up keeps the kernel's exclusive accounting simple). */
    if ((f & WH_IO_EDGE) && !(f & (WH_IO_ONESHOT | WH_IO_EXCLUSIVE)))
        io_uring_prep_poll_multishot(sqe, fd, m);
    else
        io_uring_prep_poll_add(sqe, fd, m);
    if (++e->seq == 0) e->seq = 1; /* user_data 0 is the removes' */
    io_uring_sqe_set_data64(sqe, user_data(e, fd));
    e->st = (uint16_t)((e->st & ~UR_AFLAGS) | UR_ARMED | (f & UR_AFLAGS));
    return 0;
}

/* Brings fd's poll in line with its interest (SQEs only). */
static int sync_fd(ur_state *s, int fd, ur_fd *e)
{
    bool want = e->flags && !(e->st & (UR_FIRED | UR_BROKEN));
    if ((e->st & UR_ARMED) && (!want || (e->st & UR_AFLAGS) != e->flags)) {
        int r = disarm(s, fd, e);
        if (r < 0) return r;
    }
    if (want && !(e->st & UR_ARMED)) return arm(s, fd, e);
    return 0;
}

static int flush(ur_state *s)
{
    uint32_t i = 0;
    int err = 0;
    for (; i < s->ndirty; i++) {
        int fd = s->dirty[i];
        ur_fd *e = &s->fds[fd];
        if ((err = sync_fd(s, fd, e)) < 0) break;
        e->st &= (uint16_t)~UR_DIRTY;
    }
    /* On failure keep what is left for the next poll(). */
    memmove(s->dirty, s->dirty + i, (s->ndirty - i) * sizeof(*s->dirty));
    s->ndirty -= i;
    return err;
}

static int mark_dirty(ur_state *s, int fd)
{
    ur_fd *e = &s->fds[fd];
    if (e->st & UR_DIRTY) return 0;
    if (s->ndirty == s->dirty_cap) {
        /* Full: prepare this one's SQEs now instead of at poll(). */
        return sync_fd(s, fd, e);
    }
    e->st |= UR_DIRTY;
    s->dirty[s->ndirty++] = fd;
    return 0;
}

static int ur_ctl(void *state, int fd, uint64_t token, unsigned old_flags, unsigned new_flags)
{
    ur_state *s = state;
    if (fd < 0) return -EBADF;
    if (!old_flags) {
        int r = reserve_fd(s, fd);
        if (r < 0) return r;
    } else if ((uint32_t)fd >= s->cap || !s->fds[fd].flags) {
        /* Not registered: removing it is done (as epoll's DEL of a closed
         * fd), re-arming or changing it is the caller's mistake. */
        return new_flags ? -ENOENT : 0;
    }
    ur_fd *e = &s->fds[fd];
    if (!old_flags || !new_flags) {
        /* Add or remove: a poll still in the kernel belongs to the previous
         * registration (on add: a watcher whose fd was closed before it was
         * freed, against the contract, and whose number came back). */
        if (e->st & UR_ARMED) {
            int r = disarm(s, fd, e);
            if (r < 0) return r;
        }
        e->token = token;
        e->flags = (uint16_t)new_flags;
        e->st &= (uint16_t) ~(UR_FIRED | UR_BROKEN);
        return new_flags ? mark_dirty(s, fd) : 0;
    }
    if (old_flags == new_flags && (e->st & UR_ARMED)) return 0; /* re-arm of an armed poll */
    /* Re-arm or interest change: the flush compares the armed poll's flags
     * with the interest and replaces it if they differ. */
    e->flags = (uint16_t)new_flags;
    e->st &= (uint16_t) ~(UR_FIRED | UR_BROKEN);
    return mark_dirty(s, fd);
}

static uint32_t wh_events(int res)
{
    uint32_t w = 0;
    if (res & POLLIN) w |= WH_IO_READ;
    if (res & POLLOUT) w |= WH_IO_WRITE;
    if (res & (POLLHUP | POLLRDHUP)) w |= WH_IO_HUP;
    if (res & POLLERR) w |= WH_IO_ERR;
    return w;
}

/* One completion of fd's current poll; returns the events to report. */
static uint32_t complete(ur_state *s, int fd, ur_fd *e, const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) e->st &= (uint16_t)~UR_ARMED;
    uint32_t ev = 0;
    if (cqe->res == -ECANCELED) {
        /* Ended by the kernel, not by us (ours are stale by now): poll again. */
    } else if (cqe->res == -EINVAL && (e->st & WH_IO_EXCLUSIVE) && !s->no_excl) {
        s->no_excl = true; /* this kernel takes no EPOLLEXCLUSIVE: plain polls */
    } else if (cqe->res < 0) {
        /* The poll itself failed (a bad fd, say): tell the watcher once and
         * stop polling until its interest is set again. */
        ev = WH_IO_ERR;
        e->st |= UR_BROKEN;
    } else {
        ev =
            wh_events(cqe->res) & ((e->flags & (WH_IO_READ | WH_IO_WRITE)) | WH_IO_HUP | WH_IO_ERR);
    }
    if (!more && e->flags && !(e->st & UR_BROKEN)) {
        if ((e->flags & WH_IO_ONESHOT) && ev)
            e->st |= UR_FIRED; /* delivered: the loop re-arms with ctl(f, f) */
        else
            (void)mark_dirty(s, fd); /* level-triggered (or ended): poll again */
    }
    return ev;
}

static int ur_poll(void *state, int timeout_ms, wh__fired *out, unsigned max)
{
    ur_state *s = state;
    if (max > s->max) max = s->max;
    int r = flush(s);
    if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR) return r;
    struct __kernel_timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
        tsp = &ts;
    }
    struct io_uring_cqe *cqe;
    /* The one io_uring_enter of the iteration: submits the queued SQEs,
     * runs the pending completions and waits for one (or the timeout). */
    r = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, tsp, NULL);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN) return r;
    unsigned n = 0, seen = 0, head;
    io_uring_for_each_cqe(&s->ring, head, cqe)
    {
        if (n == max) break;
        seen++;
        s->n_cqes++;
        uint64_t ud = cqe->user_data;
        if (!(ud & UR_POLL_BIT)) {
            if (ud == 0) continue; /* a remove's or a cancel's own completion */
            if (s->ndone == s->done_cap) {
                seen--; /* left in the CQ for the next poll() */
                s->n_cqes--;
                break;
            }
            s->done[s->ndone++] = (ur_done){ud, cqe->res, cqe->flags};
            continue;
        }
        int fd = (int)(uint32_t)ud;
        if ((uint32_t)fd >= s->cap) continue;
        ur_fd *e = &s->fds[fd];
        if (!(e->st & UR_ARMED) || user_data(e, fd) != ud) continue; /* stale */
        uint32_t ev = complete(s, fd, e, cqe);
        if (!ev) continue;
        if (e->st & UR_OUT) {
            /* A multishot poll completed twice in one batch: one entry per
             * fd, as epoll_wait gives (rare: a short search). */
            for (unsigned i = 0; i < n; i++)
                if (out[i].token == e->token) out[i].events |= ev;
            continue;
        }
        e->st |= UR_OUT;
        s->outfd[n] = fd;
        out[n].token = e->token;
        out[n].events = ev;
        n++;
    }
    io_uring_cq_advance(&s->ring, seen);
    for (unsigned i = 0; i < n; i++)
        s->fds[s->outfd[i]].st &= (uint16_t)~UR_OUT;
    return (int)n;
}

static int ur_fd_of(void *state)
{
    /* Readable when completions are waiting; SQEs queued by ctl are only
     * submitted by poll(). */
    return ((ur_state *)state)->ring.ring_fd;
}

static void ur_flush(void *state)
{
    ur_state *s = state;
    if (io_uring_sq_ready(&s->ring)) (void)io_uring_submit(&s->ring);
}

/* ---- Completion I/O -----------------------------------------------------
 * The ops of the wh__cq_* seam (loop_internal.h). An op's user_data is its
 * cookie ORed with its kind; the completions poll() finds are copied to
 * s->done and run by complete() once the loop has refreshed its clock, so
 * one io_uring_enter per iteration submits the iteration's ops and reaps
 * what completed. s->inflight counts ops whose last completion (one without
 * IORING_CQE_F_MORE) has not been run yet: the owner may free a cookie only
 * after that completion, and teardown waits for the count to reach 0. */

static unsigned cq_flags(uint32_t f)
{
    unsigned w = 0;
    if (f & IORING_CQE_F_MORE) w |= WH__CQ_MORE;
#ifdef IORING_CQE_F_SOCK_NONEMPTY
    if (f & IORING_CQE_F_SOCK_NONEMPTY) w |= WH__CQ_NONEMPTY;
#endif
    return w;
}

static void buf_put(ur_state *s, unsigned bid)
{
    io_uring_buf_ring_add(s->br, s->bufs + (size_t)bid * s->buf_size, s->buf_size,
                          (unsigned short)bid, io_uring_buf_ring_mask(s->nbufs), 0);
    io_uring_buf_ring_advance(s->br, 1);
}

/* The provided-buffer ring: liburing 2.3 (Debian 12) has no
 * io_uring_setup_buf_ring, so the ring memory is mapped here. */
static int bufs_setup(ur_state *s)
{
    if (s->br) return 0;
    size_t rsz = (size_t)s->nbufs * sizeof(struct io_uring_buf);
    void *m = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (m == MAP_FAILED) return -ENOMEM;
    char *bufs = malloc((size_t)s->nbufs * s->buf_size);
    if (!bufs) {
        munmap(m, rsz);
        return -ENOMEM;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)m;
    reg.ring_entries = s->nbufs;
    reg.bgid = UR_BGID;
    int r = io_uring_register_buf_ring(&s->ring, &reg, 0);
    if (r < 0) {
        free(bufs);
        munmap(m, rsz);
        return r;
    }
    s->br = m;
    s->bufs = bufs;
    io_uring_buf_ring_init(s->br);
    for (unsigned i = 0; i < s->nbufs; i++)
        io_uring_buf_ring_add(s->br, bufs + (size_t)i * s->buf_size, s->buf_size, (unsigned short)i,
                              io_uring_buf_ring_mask(s->nbufs), (int)i);
    io_uring_buf_ring_advance(s->br, (int)s->nbufs);
    return 0;
}

static void run_one(ur_state *s, uint64_t ud, int res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE)) s->inflight--;
    if (res == -ENOBUFS) s->n_nobufs++;
    const char *buf = NULL;
    unsigned bid = 0;
    if (flags & IORING_CQE_F_BUFFER) {
        bid = flags >> IORING_CQE_BUFFER_SHIFT;
        buf = s->bufs + (size_t)bid * s->buf_size;
    }
    wh__cq_cb cb = s->kinds[ud & UR_KIND_MASK];
    if (cb) cb((void *)(uintptr_t)(ud & ~(uint64_t)UR_KIND_MASK), res, cq_flags(flags), buf);
    /* The callee copied what it keeps: the buffer goes back at once. */
    if (buf) buf_put(s, bid);
}

static void ur_complete(void *state)
{
    ur_state *s = state;
    if (!s->ndone || s->running_done) return;
    s->running_done = true;
    for (unsigned i = 0; i < s->ndone; i++)
        run_one(s, s->done[i].ud, s->done[i].res, s->done[i].flags);
    s->ndone = 0;
    s->running_done = false;
}

static ur_state *cq_state(const wh_loop *loop)
{
    return loop->be_ops == &wh__backend_uring ? loop->be : NULL;
}

bool wh__cq_able(const wh_loop *loop)
{
    return cq_state(loop) != NULL;
}

int wh__cq_kind(wh_loop *loop, wh__cq_cb cb)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    for (unsigned k = 1; k <= UR_KIND_MASK; k++) {
        if (s->kinds[k] == cb) return (int)k;
        if (!s->kinds[k]) {
            s->kinds[k] = cb;
            return (int)k;
        }
    }
    return -ENOSPC;
}

int wh__cq_set_bufs(wh_loop *loop, unsigned count, unsigned size)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    if (s->br) return -EBUSY;
    if (!count || (count & (count - 1)) || count > 32768 || size < 16) return -EINVAL;
    s->nbufs = count;
    s->buf_size = size;
    return 0;
}

static uint64_t op_ud(const void *cookie, unsigned kind)
{
    return (uint64_t)(uintptr_t)cookie | kind;
}

static int recv_op(wh_loop *loop, int fd, void *cookie, unsigned kind, bool multishot)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    int err = bufs_setup(s);
    if (err < 0) return err;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    if (multishot)
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    else
        io_uring_prep_recv(sqe, fd, NULL, s->buf_size, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UR_BGID;
    io_uring_sqe_set_data64(sqe, op_ud(cookie, kind));
    s->inflight++;
    s->n_ops++;
    return 0;
}

int wh__cq_recv(wh_loop *loop, int fd, void *cookie, unsigned kind)
{
    return recv_op(loop, fd, cookie, kind, true);
}

int wh__cq_recv_once(wh_loop *loop, int fd, void *cookie, unsigned kind)
{
    return recv_op(loop, fd, cookie, kind, false);
}

int wh__cq_sendmsg(wh_loop *loop, int fd, const struct msghdr *mh, int flags, void *cookie,
                   unsigned kind)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    io_uring_prep_sendmsg(sqe, fd, mh, (unsigned)flags | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, op_ud(cookie, kind));
    s->inflight++;
    s->n_ops++;
    return 0;
}

int wh__cq_send_close(wh_loop *loop, int fd, const struct msghdr *mh, int flags, void *cookie,
                      unsigned send_kind, unsigned close_kind)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    /* Both SQEs go into one submission: a chain cut by a submission in
     * the middle (get_sqe on a full SQ) would let the close run before the
     * send is done. */
    if (io_uring_sq_space_left(&s->ring) < 2) {
        int r = io_uring_submit(&s->ring);
        if (r < 0) return r;
        if (io_uring_sq_space_left(&s->ring) < 2) return -EBUSY;
    }
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    /* MSG_WAITALL: the kernel retries a short send until all of it is
     * taken, and only an error ends it short; such a send fails and the
     * rest of the chain completes with -ECANCELED. */
    io_uring_prep_sendmsg(sqe, fd, mh, (unsigned)flags | MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, op_ud(cookie, send_kind));
    sqe->flags |= IOSQE_IO_LINK;
    /* A send that takes everything posts nothing (one CQE less per closed
     * connection): the close's completion says it. One that fails or ends
     * short does post, and the kernel then skips the CQEs of the rest of
     * the chain (a failed request with CQE_SKIP_SUCCESS sets
     * REQ_F_SKIP_LINK_CQES): the close is cancelled without a word, so the
     * chain owes exactly one completion either way. */
    skip_success(s, sqe);
    /* No IORING_OP_SHUTDOWN between them: the kernel runs that op only in
     * an io-wq worker thread (REQ_F_FORCE_ASYNC), a thread hand-off per
     * connection that doubled the process CPU per request of
     * bench/compare.sh connclose (44 us against 26 on epoll). */
    sqe = get_sqe(s, &err);
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, op_ud(cookie, close_kind));
    s->inflight += s->skip_ok ? 1 : 2;
    s->n_ops++;
    return s->skip_ok ? 1 : 0;
}

int wh__cq_accept(wh_loop *loop, int fd, void *cookie, unsigned kind)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_ud(cookie, kind));
    s->inflight++;
    s->n_ops++;
    return 0;
}

int wh__cq_close(wh_loop *loop, int fd)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, 0); /* nothing to report: close(2)'s errors mean nothing here */
    skip_success(s, sqe);
    return 0;
}

int wh__cq_cancel(wh_loop *loop, void *cookie, unsigned kind)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    int err = 0;
    struct io_uring_sqe *sqe = get_sqe(s, &err);
    if (!sqe) return err;
    io_uring_prep_cancel64(sqe, op_ud(cookie, kind), 0);
    io_uring_sqe_set_data64(sqe, 0); /* its own completion is ignored */
    skip_success(s, sqe);
    return 0;
}

int wh__cq_cancel_now(wh_loop *loop, void *cookie, unsigned kind)
{
    ur_state *s = cq_state(loop);
    if (!s) return -ENOTSUP;
    /* An op in the kernel stops before this returns (a register call: no
     * submission, no wait for the loop); one still in the SQ is caught by
     * the cancel queued behind it. Its last completion comes as usual. */
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.addr = op_ud(cookie, kind);
    reg.fd = -1;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    (void)io_uring_register_sync_cancel(&s->ring, &reg);
    return wh__cq_cancel(loop, cookie, kind);
}

uint64_t wh__cq_inflight(const wh_loop *loop)
{
    ur_state *s = cq_state(loop);
    return s ? s->inflight : 0;
}

void wh__cq_counts(const wh_loop *loop, uint64_t *ops, uint64_t *nobufs)
{
    ur_state *s = cq_state(loop);
    *ops = s ? s->n_ops : 0;
    *nobufs = s ? s->n_nobufs : 0;
}

void wh__cq_ring_counts(const wh_loop *loop, uint64_t *sqes, uint64_t *cqes)
{
    ur_state *s = cq_state(loop);
    *sqes = s ? s->n_sqes : 0;
    *cqes = s ? s->n_cqes : 0;
}

/* Takes the SQEs not handed to the kernel yet back out of the SQ: their ops
 * complete here with -ECANCELED (a thread other than the loop's must not
 * submit, see ur_free). */
static void unqueue(ur_state *s)
{
    struct io_uring_sq *sq = &s->ring.sq;
    unsigned shift = (s->ring.flags & IORING_SETUP_SQE128) ? 1 : 0;
    bool link_skipped = false; /* the chain's send failed as a skipping send */
    for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
        const struct io_uring_sqe *sqe = &sq->sqes[(i & sq->ring_mask) << shift];
        uint64_t ud = sqe->user_data;
        bool skipped = link_skipped;
        link_skipped = false;
        if (ud && !(ud & UR_POLL_BIT) &&
            (sqe->opcode == IORING_OP_RECV || sqe->opcode == IORING_OP_SENDMSG ||
             sqe->opcode == IORING_OP_ACCEPT)) {
            run_one(s, ud, -ECANCELED, 0);
            link_skipped = (sqe->flags & (IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS)) ==
                           (IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS);
        } else if (sqe->opcode == IORING_OP_CLOSE && skipped) {
            /* As the kernel does: the send before it failed with
             * CQE_SKIP_SUCCESS, so this close is neither run nor
             * reported; the fd stays its owner's (wh__cq_send_close). */
        } else if (sqe->opcode == IORING_OP_CLOSE) {
            /* A close not submitted yet: done here. One ending a send
             * chain without CQE skipping reports it as done (the send
             * before it reported -ECANCELED: its owner's bytes did not go
             * out). */
            close(sqe->fd);
            if (ud) run_one(s, ud, 0, 0);
        }
    }
    sq->sqe_tail = sq->sqe_head;
}

void wh__cq_quiesce(wh_loop *loop)
{
    ur_state *s = cq_state(loop);
    if (!s) return;
    ur_complete(s); /* completions already reaped */
    if (!s->inflight) return;
    if (wh_loop_on_thread(loop))
        (void)io_uring_submit(&s->ring);
    else
        unqueue(s);
    if (!s->inflight) return;
    /* Cancel every request the kernel holds and wait for their last
     * completions (their callbacks free what the ops used). The register
     * call neither submits nor makes this thread a user of the ring. */
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
    reg.fd = -1;
    reg.timeout.tv_sec = 1;
    (void)io_uring_register_sync_cancel(&s->ring, &reg);
    for (int i = 0; i < 100 && s->inflight; i++) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        int r = io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts);
        if (r < 0 && r != -ETIME && r != -EINTR) break;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&s->ring, head, cqe)
        {
            seen++;
            s->n_cqes++;
            uint64_t ud = cqe->user_data;
            if (ud && !(ud & UR_POLL_BIT)) run_one(s, ud, cqe->res, cqe->flags);
        }
        io_uring_cq_advance(&s->ring, seen);
    }
}

const wh__backend wh__backend_uring = {
    .name = "io_uring",
    .close_drops = false,
    .init = ur_init,
    .free = ur_free,
    .ctl = ur_ctl,
    .poll = ur_poll,
    .fd = ur_fd_of,
    .flush = ur_flush,
    .complete = ur_complete,
};

#else /* no liburing: the seam says no */

bool wh__cq_able(const wh_loop *loop)
{
    (void)loop;
    return false;
}
int wh__cq_kind(wh_loop *loop, wh__cq_cb cb)
{
    (void)loop;
    (void)cb;
    return -ENOTSUP;
}
int wh__cq_set_bufs(wh_loop *loop, unsigned count, unsigned size)
{
    (void)loop;
    (void)count;
    (void)size;
    return -ENOTSUP;
}
int wh__cq_recv(wh_loop *loop, int fd, void *cookie, unsigned kind)
{
    (void)loop;
    (void)fd;
    (void)cookie;
    (void)kind;
    return -ENOTSUP;
}
int wh__cq_sendmsg(wh_loop *loop, int fd, const struct msghdr *mh, int flags, void *cookie,
                   unsigned kind)
{
    (void)loop;
    (void)fd;
    (void)mh;
    (void)flags;
    (void)cookie;
    (void)kind;
    return -ENOTSUP;
}
int wh__cq_recv_once(wh_loop *loop, int fd, void *cookie, unsigned kind)
{
    (void)loop;
    (void)fd;
    (void)cookie;
    (void)kind;
    return -ENOTSUP;
}
int wh__cq_send_close(wh_loop *loop, int fd, const struct msghdr *mh, int flags, void *cookie,
                      unsigned send_kind, unsigned close_kind)
{
    (void)loop;
    (void)fd;
    (void)mh;
    (void)flags;
    (void)cookie;
    (void)send_kind;
    (void)close_kind;
    return -ENOTSUP;
}
int wh__cq_accept(wh_loop *loop, int fd, void *cookie, unsigned kind)
{
    (void)loop;
    (void)fd;
    (void)cookie;
    (void)kind;
    return -ENOTSUP;
}
int wh__cq_close(wh_loop *loop, int fd)
{
    (void)loop;
    (void)fd;
    return -ENOTSUP;
}
int wh__cq_cancel(wh_loop *loop, void *cookie, unsigned kind)
{
    (void)loop;
    (void)cookie;
    (void)kind;
    return -ENOTSUP;
}
int wh__cq_cancel_now(wh_loop *loop, void *cookie, unsigned kind)
{
    (void)loop;
    (void)cookie;
    (void)kind;
    return -ENOTSUP;
}
uint64_t wh__cq_inflight(const wh_loop *loop)
{
    (void)loop;
    return 0;
}
void wh__cq_counts(const wh_loop *loop, uint64_t *ops, uint64_t *nobufs)
{
    (void)loop;
    *ops = *nobufs = 0;
}
void wh__cq_ring_counts(const wh_loop *loop, uint64_t *sqes, uint64_t *cqes)
{
    (void)loop;
    *sqes = *cqes = 0;
}
void wh__cq_quiesce(wh_loop *loop)
{
    (void)loop;
}

#endif
