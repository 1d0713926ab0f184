/* wharfd logging: the error log (levels, one write(2) per line) and the
 * access log (per-thread 64 KiB blocks handed to one writer thread).
 *
 * Why a writer thread: write(2) to a file can block for milliseconds on a
 * busy disk (journal commit, writeback throttling), and a worker loop that
 * blocks stalls every connection it owns. The writer owns the blocking;
 * workers only swap a pointer under a mutex once per block. The queue is
 * bounded (64 blocks = 4 MiB): when the disk cannot keep up we drop lines
 * and count them (wharfd_access_log_dropped_lines_total) rather than grow
 * memory or stall the loop. A line longer than a block is cut by its
 * formatter and counted apart (wharfd_access_log_truncated_lines_total), so
 * "dropped" keeps meaning "lost to a slow disk".
 *
 * Process-wide state lives here because a process has exactly one pair of
 * log files; the library itself never logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "apps/wharfd/log.h"

#define BLK_CAP   WHARFD_ALOG_LINE_MAX
#define MAX_QUEUE 64

struct blk {
    struct blk *next;
    size_t len;
    unsigned lines;
    bool reopen; /* a marker, not lines: the writer reopens the file here */
    char data[BLK_CAP];
};

struct wharfd_alog {
    struct blk *cur;
};

static struct {
    int level;
    int err_fd;
    const char *err_path; /* NULL = stderr */
    int acc_fd;           /* -1 = off */
    const char *acc_path; /* NULL = stdout */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the writer waits for blocks */
    pthread_cond_t done_cv; /* wharfd_alog_reopen_queued waits for its reopen */
    struct blk *head, *tail, *free_list;
    unsigned queued, nfree;
    bool stop, running;
    bool acc_on; /* an access log was configured at start (the writer runs) */
    pthread_t writer;
    uint64_t dropped, truncated;
    char *acc_path_owned; /* acc_path after a reopen to a new path */
    char *err_path_owned;
    int reopen_err; /* the writer's last reopen: 0 or -errno */
    unsigned reopens_asked, reopens_done;
    int stderr_fd; /* the process's stderr, for "-" after a file */
} L = {.stderr_fd = -1,
       .level = WHARFD_LOG_INFO,
       .err_fd = 2,
       .acc_fd = -1,
       .mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int wharfd_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return WHARFD_LOG_WARN;
    return -1;
}

void wharfd_log(int level, const char *fmt, ...)
{
    if (level > __atomic_load_n(&L.level, __ATOMIC_RELAXED)) return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02dZ [%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     level_names[level < 0   ? 0
                                 : level > 3 ? 3
                                             : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line with O_APPEND: lines from threads never interleave. */
    ssize_t w = write(L.err_fd, line, len);
    (void)w;
}

static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* disk full, EIO: nothing better to do than lose it */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Appends b to the writer's queue and wakes it; L.mu held. */
static void enqueue_locked(struct blk *b)
{
    if (L.tail)
        L.tail->next = b;
    else
        L.head = b;
    L.tail = b;
    L.queued++;
    pthread_cond_signal(&L.cv);
}

/* On the writer thread, the only one that writes acc_fd: "" reopens the
 * same path, "-" is stdout, "off" drops lines from now on. */
static void writer_reopen(const char *path)
{
    if (!*path) path = L.acc_path ? L.acc_path : "-";
    int fd = strcmp(path, "off") == 0 ? -1 : strcmp(path, "-") == 0 ? 1 : open_append(path);
    if (fd < 0 && strcmp(path, "off") != 0) {
        L.reopen_err = -errno; /* keep writing to the old file */
        return;
    }
    L.reopen_err = 0;
    int old = L.acc_fd;
    L.acc_fd = fd;
    if (old > 2) close(old);
    char *dup = fd > 2 ? strdup(path) : NULL; /* path may be acc_path_owned itself */
    free(L.acc_path_owned);
    L.acc_path_owned = dup;
    L.acc_path = dup;
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&L.mu);
    for (;;) {
        while (!L.head && !L.stop)
            pthread_cond_wait(&L.cv, &L.mu);
        if (!L.head && L.stop) break;
        struct blk *b = L.head;
        L.head = b->next;
        if (!L.head) L.tail = NULL;
        L.queued--;
        if (b->reopen) {
            /* Everything queued before the marker went to the old file. */
            pthread_mutex_unlock(&L.mu);
            writer_reopen(b->data);
            free(b);
            pthread_mutex_lock(&L.mu);
            L.reopens_done++;
            pthread_cond_broadcast(&L.done_cv);
            continue;
        }
        pthread_mutex_unlock(&L.mu);
        if (L.acc_fd >= 0) write_all(L.acc_fd, b->data, b->len);
        pthread_mutex_lock(&L.mu);
        if (L.nfree < 8) {
            b->next = L.free_list;
            L.free_list = b;
            L.nfree++;
        } else {
            free(b);
        }
    }
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

int wharfd_log_open(const char *error_log, const char *access_log, int level)
{
    L.level = level;
    /* Our own descriptor for the error log, even for stderr, so a reload can
     * move it (dup2 onto it) without touching the process's fd 2. */
    L.stderr_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (L.stderr_fd >= 0 && (!error_log || strcmp(error_log, "-") == 0))
        L.err_fd = fcntl(L.stderr_fd, F_DUPFD_CLOEXEC, 3);
    if (L.err_fd < 0) L.err_fd = 2;
    if (error_log && strcmp(error_log, "-") != 0) {
        int fd = open_append(error_log);
        if (fd < 0) {
            fprintf(stderr, "wharfd: cannot open error log '%s': %s\n", error_log, strerror(errno));
            return -1;
        }
        L.err_fd = fd;
        L.err_path = error_log;
    }
    if (!access_log || strcmp(access_log, "off") == 0) return 0;
    if (strcmp(access_log, "-") == 0) {
        L.acc_fd = 1;
    } else {
        int fd = open_append(access_log);
        if (fd < 0) {
            fprintf(stderr, "wharfd: cannot open access log '%s': %s\n", access_log,
                    strerror(errno));
            return -1;
        }
        L.acc_fd = fd;
        L.acc_path = access_log;
    }
    L.acc_on = true;
    L.stop = false;
    if (pthread_create(&L.writer, NULL, writer_main, NULL) != 0) {
        fprintf(stderr, "wharfd: cannot start the access-log writer thread\n");
        return -1;
    }
    L.running = true;
    return 0;
}

static int reopen_one(const char *path, int fd)
{
    int nfd = open_append(path);
    if (nfd < 0) return -errno;
    /* dup2 swaps the file under the same descriptor number atomically: a
     * concurrent write goes either to the old or to the new file. */
    int rc = dup2(nfd, fd) < 0 ? -errno : 0;
    close(nfd);
    return rc;
}

int wharfd_log_set_error(const char *path, int level)
{
    __atomic_store_n(&L.level, level, __ATOMIC_RELAXED);
    const char *cur = L.err_path ? L.err_path : "-";
    if (!path || strcmp(path, cur) == 0) return 0;
    int nfd = strcmp(path, "-") == 0 ? fcntl(L.stderr_fd, F_DUPFD_CLOEXEC, 3) : open_append(path);
    if (nfd < 0) return -errno;
    if (L.err_fd <= 2) { /* could not get a private fd at start: switch once */
        L.err_fd = nfd;
    } else {
        int rc = dup2(nfd, L.err_fd) < 0 ? -errno : 0;
        close(nfd);
        if (rc) return rc;
    }
    char *dup = strcmp(path, "-") == 0 ? NULL : strdup(path);
    free(L.err_path_owned);
    L.err_path_owned = dup;
    L.err_path = dup;
    return 0;
}

int wharfd_alog_reopen_queued(const char *path)
{
    if (!L.running) return path && strcmp(path, "off") != 0 ? -ENOTSUP : 0;
    struct blk *b = malloc(sizeof *b);
    if (!b) return -ENOMEM;
    b->next = NULL;
    b->len = 0;
    b->lines = 0;
    b->reopen = true;
    snprintf(b->data, sizeof b->data, "%s", path ? path : "");
    pthread_mutex_lock(&L.mu);
    /* Never dropped for a full queue: it is one small block, and a reopen
     * that never happens would keep writing to a rotated file. */
    enqueue_locked(b);
    unsigned want = ++L.reopens_asked;
    /* Wait (bounded) so the caller can log the outcome. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    while (L.reopens_done < want)
        if (pthread_cond_timedwait(&L.done_cv, &L.mu, &dl) != 0) break;
    int rc = L.reopens_done >= want ? L.reopen_err : -ETIMEDOUT;
    pthread_mutex_unlock(&L.mu);
    return rc;
}

int wharfd_log_reopen(void)
{
    int rc = 0;
    if (L.err_path) rc = reopen_one(L.err_path, L.err_fd);
    return rc;
}

void wharfd_log_close(void)
{
    if (L.running) {
        pthread_mutex_lock(&L.mu);
        L.stop = true;
        pthread_cond_signal(&L.cv);
        pthread_mutex_unlock(&L.mu);
        pthread_join(L.writer, NULL);
        L.running = false;
    }
    while (L.free_list) {
        struct blk *b = L.free_list;
        L.free_list = b->next;
        free(b);
    }
    L.nfree = 0;
    if (L.acc_fd > 2) close(L.acc_fd);
    L.acc_fd = -1;
    if (L.err_fd > 2) close(L.err_fd);
    L.err_fd = 2;
    if (L.stderr_fd > 2) close(L.stderr_fd);
    L.stderr_fd = -1;
    free(L.acc_path_owned);
    free(L.err_path_owned);
    L.acc_path_owned = L.err_path_owned = NULL;
}

bool wharfd_alog_enabled(void)
{
    return L.acc_on;
}

uint64_t wharfd_alog_dropped(void)
{
    return __atomic_load_n(&L.dropped, __ATOMIC_RELAXED);
}

void wharfd_alog_count_truncated(void)
{
    __atomic_fetch_add(&L.truncated, 1, __ATOMIC_RELAXED);
}

uint64_t wharfd_alog_truncated(void)
{
    return __atomic_load_n(&L.truncated, __ATOMIC_RELAXED);
}

wharfd_alog *wharfd_alog_new(void)
{
    return calloc(1, sizeof(wharfd_alog));
}

static struct blk *get_block(void)
{
    struct blk *b = NULL;
    pthread_mutex_lock(&L.mu);
    if (L.free_list) {
        b = L.free_list;
        L.free_list = b->next;
        L.nfree--;
    }
    pthread_mutex_unlock(&L.mu);
    if (!b) b = malloc(sizeof *b);
    if (b) {
        b->reopen = false;
        b->next = NULL;
        b->len = 0;
        b->lines = 0;
    }
    return b;
}

void wharfd_alog_flush(wharfd_alog *a)
{
    struct blk *b = a->cur;
    if (!b || !b->len) return;
    a->cur = NULL;
    pthread_mutex_lock(&L.mu);
    if (L.running && L.queued < MAX_QUEUE) {
        enqueue_locked(b);
        b = NULL;
    }
    pthread_mutex_unlock(&L.mu);
    if (b) {
        __atomic_fetch_add(&L.dropped, b->lines, __ATOMIC_RELAXED);
        free(b);
    }
}

char *wharfd_alog_reserve(wharfd_alog *a, size_t n)
{
    if (n > BLK_CAP) { /* callers cap their lines; count it rather than lose it unseen */
        __atomic_fetch_add(&L.dropped, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    if (a->cur && a->cur->len + n > BLK_CAP) wharfd_alog_flush(a);
    if (!a->cur && !(a->cur = get_block())) {
        __atomic_fetch_add(&L.dropped, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    return a->cur->data + a->cur->len;
}

void wharfd_alog_commit(wharfd_alog *a, size_t n)
{
    a->cur->len += n;
    a->cur->lines++;
}

void wharfd_alog_free(wharfd_alog *a)
{
    if (!a) return;
    wharfd_alog_flush(a);
    free(a->cur); /* an empty block (flush hands over only non-empty ones) */
    free(a);
}
