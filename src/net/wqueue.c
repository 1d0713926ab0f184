/* The write queue: seed 003's growable scattered buffers ("dmsg").
 *
 * Copied bytes go into chunks whose sizes grow geometrically (256 B, 512 B,
 * ... 64 KiB), so a big reply costs a handful of allocations, nothing is ever
 * realloc'd or moved, and at most about half the allocated space is unused.
 * Reference segments (caller-owned bytes) and file segments (sendfile) are
 * queued in order between chunks. Memory segments leave in one
 * sendmsg(MSG_NOSIGNAL) per flush: a writev that cannot raise SIGPIPE.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/net_priv.h"

enum { SEG_CHUNK = 0, SEG_REF = 1, SEG_FILE = 2 };

struct wh__wseg {
    wh__wseg *next;
    size_t len;   /* bytes in the segment (chunk: bytes filled so far) */
    size_t off;   /* bytes already written */
    uint32_t cap; /* chunk: capacity of data[] */
    uint8_t type;
    bool close_fd;
    union {
        struct {
            const char *ptr;
            void (*done)(void *);
            void *arg;
        } ref;
        struct {
            int fd;
            off_t pos; /* file offset of byte `off` */
        } file;
    } u;
    char data[]; /* chunk bytes */
};

/* Iovecs per sendmsg: enough for a pipelined burst; IOV_MAX is 1024. */
#define WQ_IOV 64

void wh__wq_init(wh__wq *q)
{
    memset(q, 0, sizeof(*q));
    q->next_chunk = WH__WQ_MIN_CHUNK;
}

static void seg_free(wh__wseg *s)
{
    if (s->type == SEG_REF && s->u.ref.done)
        s->u.ref.done(s->u.ref.arg);
    else if (s->type == SEG_FILE && s->close_fd)
        close(s->u.file.fd);
    free(s);
}

void wh__wq_clear(wh__wq *q)
{
    wh__wseg *s = q->head;
    /* Detach first: a done() callback may queue into (or clear) q again. */
    q->head = q->tail = NULL;
    q->queued = 0;
    q->nsegs = 0;
    q->next_chunk = WH__WQ_MIN_CHUNK;
    while (s) {
        wh__wseg *n = s->next;
        seg_free(s);
        s = n;
    }
}

static void push(wh__wq *q, wh__wseg *s)
{
    s->next = NULL;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    q->nsegs++;
}

static unsigned pow2_at_least(size_t n)
{
    unsigned p = WH__WQ_MIN_CHUNK;
    while (p < n && p < WH__WQ_MAX_CHUNK)
        p <<= 1;
    return p;
}

int wh__wq_copy(wh__wq *q, const void *data, size_t len)
{
    const char *p = data;
    if (len == 0) return 0;
    wh__wseg *t = q->tail;
    size_t room = (t && t->type == SEG_CHUNK) ? t->cap - t->len : 0;
    size_t rest = len > room ? len - room : 0;

    /* Allocate every new chunk before copying anything, so -ENOMEM leaves
     * the queue exactly as it was. */
    wh__wseg *first = NULL, *last = NULL;
    unsigned next = q->next_chunk;
    for (size_t need = rest; need > 0;) {
        unsigned cap = next;
        unsigned want = pow2_at_least(need);
        if (want > cap) cap = want;
        wh__wseg *s = malloc(sizeof(*s) + cap);
        if (!s) {
            while (first) {
                wh__wseg *n = first->next;
                free(first);
                first = n;
            }
            return -ENOMEM;
        }
        s->next = NULL;
        s->len = 0;
        s->off = 0;
        s->cap = cap;
        s->type = SEG_CHUNK;
        s->close_fd = false;
        if (last)
            last->next = s;
        else
            first = s;
        last = s;
        need -= need < cap ? need : cap;
        next = cap * 2 > WH__WQ_MAX_CHUNK ? WH__WQ_MAX_CHUNK : cap * 2;
    }
    q->next_chunk = next;

    if (room > 0) {
        size_t n = len < room ? len : room;
        memcpy(t->data + t->len, p, n);
        t->len += n;
        p += n;
    }
    for (wh__wseg *s = first; s;) {
        wh__wseg *n = s->next;
        size_t k = rest < s->cap ? rest : s->cap;
        memcpy(s->data, p, k);
        s->len = k;
        p += k;
        rest -= k;
        push(q, s);
        s = n;
    }
    q->queued += len;
    return 0;
}

/* Allocates a by-reference or file segment of len bytes with the common fields set. */
static wh__wseg *seg_new(int type, size_t len, bool close_fd)
{
    wh__wseg *s = malloc(sizeof(*s));
    if (!s) return NULL;
    s->len = len;
    s->off = 0;
    s->cap = 0;
    s->type = type;
    s->close_fd = close_fd;
    return s;
}

/* Appends a filled segment to the queue. */
static void seg_push(wh__wq *q, wh__wseg *s)
{
    push(q, s);
    q->queued += s->len;
}

int wh__wq_ref(wh__wq *q, const void *data, size_t len, void (*done)(void *), void *arg)
{
    if (len == 0) {
        if (done) done(arg);
        return 0;
    }
    wh__wseg *s = seg_new(SEG_REF, len, false);
    if (!s) return -ENOMEM;
    s->u.ref.ptr = data;
    s->u.ref.done = done;
    s->u.ref.arg = arg;
    seg_push(q, s);
    return 0;
}

int wh__wq_file(wh__wq *q, int fd, off_t off, size_t len, bool close_fd)
{
    if (len == 0) {
        if (close_fd) close(fd);
        return 0;
    }
    wh__wseg *s = seg_new(SEG_FILE, len, close_fd);
    if (!s) return -ENOMEM;
    s->u.file.fd = fd;
    s->u.file.pos = off;
    seg_push(q, s);
    return 0;
}

int wh__wq_iov(const wh__wq *q, struct iovec *iov, int max)
{
    int n = 0;
    for (const wh__wseg *s = q->head; s && n < max; s = s->next) {
        if (s->type == SEG_FILE) break;
        size_t left = s->len - s->off;
        if (left == 0) continue; /* a chunk being filled can be empty only transiently */
        const char *base = s->type == SEG_CHUNK ? s->data : s->u.ref.ptr;
        iov[n].iov_base = (void *)(base + s->off);
        iov[n].iov_len = left;
        n++;
    }
    return n;
}

void wh__wq_consume(wh__wq *q, size_t n)
{
    if (n > q->queued) n = q->queued;
    q->queued -= n;
    while (q->head) {
        wh__wseg *s = q->head;
        size_t left = s->len - s->off;
        if (n < left) {
            s->off += n;
            if (s->type == SEG_FILE) s->u.file.pos += (off_t)n;
            break;
        }
        n -= left;
        q->head = s->next;
        if (!q->head) q->tail = NULL;
        q->nsegs--;
        seg_free(s);
    }
    if (!q->head) q->next_chunk = WH__WQ_MIN_CHUNK; /* idle again: the next reply starts small */
}

bool wh__wq_head_is_file(const wh__wq *q)
{
    return q->head && q->head->type == SEG_FILE;
}

static ssize_t write_iov(int fd, struct iovec *iov, int n, bool more)
{
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)n;
    ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0));
    if (w < 0 && errno == ENOTSOCK) /* pipes in tests: plain writev */
        w = writev(fd, iov, n);
    return w;
}

ssize_t wh__wq_write(wh__wq *q, int fd, bool *again)
{
    size_t total = 0;
    *again = false;
    while (q->head) {
        wh__wseg *s = q->head;
        ssize_t w;
        size_t want;
        if (s->type == SEG_FILE) {
            want = s->len - s->off;
            /* sendfile moves at most 0x7ffff000 bytes per call (sendfile(2)). */
            if (want > 0x40000000u) want = 0x40000000u;
            off_t pos = s->u.file.pos;
            w = sendfile(fd, s->u.file.fd, &pos, want);
            if (w == 0) {
                /* The file is shorter than promised (truncated under us):
                 * the peer would wait forever for the rest. */
                return total ? (ssize_t)total : -EIO;
            }
        } else {
            struct iovec iov[WQ_IOV];
            int n = wh__wq_iov(q, iov, WQ_IOV);
            want = 0;
            for (int i = 0; i < n; i++)
                want += iov[i].iov_len;
            if (n == 0) { /* only empty segments at the head */
                wh__wq_consume(q, 0);
                continue;
            }
            /* MSG_MORE when more is queued behind this batch (a file, as a
             * response head before its body is): the head then leaves in the
             * body's first full segment instead of a small one of its own.
             * With TCP_NODELAY a lone 261-byte head cost a 1 MiB download
             * about a third of its throughput on loopback (the reader wakes
             * per segment: 1,100 responses/s against nginx's 1,700 with
             * tcp_nopush, and 1,690 with this). A pending head is still sent
             * by the next write or when the peer's ACK arrives. */
            w = write_iov(fd, iov, n, want < q->queued || q->fin_follows);
        }
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                *again = true;
                return (ssize_t)total;
            }
            return -errno;
        }
        wh__wq_consume(q, (size_t)w);
        total += (size_t)w;
        if ((size_t)w < want) {
            /* A short write on a non-blocking socket means its buffer is full:
             * trying again now would only return EAGAIN (one wasted syscall). */
            *again = true;
            return (ssize_t)total;
        }
    }
    return (ssize_t)total;
}

bool wh__wq_head_file(const wh__wq *q, int *fd, off_t *pos, size_t *len)
{
    const wh__wseg *s = q->head;
    if (!s || s->type != SEG_FILE) return false;
    *fd = s->u.file.fd;
    *pos = s->u.file.pos;
    *len = s->len - s->off;
    return true;
}

/* A reference segment is one malloc of sizeof(wh__wseg); glibc adds an
 * 8-byte chunk header and rounds to 16 (malloc(3) usable size). */
_Static_assert(sizeof(wh__wseg) + 8 <= WH__WQ_SEG_COST, "WH__WQ_SEG_COST undercounts a segment");

unsigned wh__conn_queued_segs(const wh_conn *c)
{
    return c->wq ? c->wq->nsegs : 0;
}
