/* wharfd logs. The error log has levels and goes to stderr or a file; the
 * access log (Combined Log Format) is buffered per worker thread. SIGUSR1
 * reopens both files (logrotate's "create" mode); SIGHUP may move them. */
#ifndef WHARFD_LOG_H
#define WHARFD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { WHARFD_LOG_ERROR = 0, WHARFD_LOG_WARN = 1, WHARFD_LOG_INFO = 2, WHARFD_LOG_DEBUG = 3 };

/* Writes one line "2026-11-23T09:30:00Z [level] message" to the error log
 * when level <= the configured level. Any thread; one write(2) per line. */
void wharfd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "error"/"warn"/"info"/"debug"; -1 when unknown. */
int wharfd_log_level_parse(const char *s);

/* Opens the error log (path or "-" = stderr) and the access log (path,
 * "-" = stdout, "off" or NULL = none) and starts the access-log writer
 * thread. Prints a one-line error and returns -1 on failure. */
int wharfd_log_open(const char *error_log, const char *access_log, int level);
/* SIGUSR1: reopens the error log file in place (dup2 onto the same fd
 * number, so writers never see a closed fd); the access log is reopened by
 * wharfd_alog_reopen_queued, after what is buffered. 0 or -errno. */
int wharfd_log_reopen(void);
/* Reload: the error log moves to path ("-" = stderr) and the level
 * changes. 0 or -errno (then nothing moved). */
int wharfd_log_set_error(const char *path, int level);
/* Reopens the access log after every block queued so far was written to
 * the current file (SIGUSR1 after the threads flushed their buffers, or a
 * reload that moves it): path NULL = the same path, "-" = stdout, "off" =
 * drop lines. Waits up to 2 s for the writer; 0 or -errno (-ENOTSUP: no
 * access log was configured at start, so there is no writer). */
int wharfd_alog_reopen_queued(const char *path);
/* Flushes what was handed to the writer, stops it, closes the files. */
void wharfd_log_close(void);
/* True if an access log is configured. */
bool wharfd_alog_enabled(void);
/* Lines lost because the writer fell behind (bounded queue) or a block
 * could not be allocated: a slow disk, never a long line. */
uint64_t wharfd_alog_dropped(void);
/* Longest access-log line: one block. Longer lines are cut (see
 * wh_clf_format_max) and counted, never dropped. */
#define WHARFD_ALOG_LINE_MAX (64 * 1024)
/* Counts one line that was cut to WHARFD_ALOG_LINE_MAX. Any thread. */
void wharfd_alog_count_truncated(void);
/* Lines cut so far. */
uint64_t wharfd_alog_truncated(void);

/* Per-thread access-log buffer. Lines are formatted straight into a 64 KiB
 * block; a full block (or the 1 s flush timer) is handed to the writer
 * thread, which does the write(2): the loop never blocks on the disk. No
 * lock per line; one mutex handoff per block. */
typedef struct wharfd_alog wharfd_alog;
/* Creates a buffer for one thread. NULL on ENOMEM. */
wharfd_alog *wharfd_alog_new(void);
/* Space for up to n bytes (n <= WHARFD_ALOG_LINE_MAX), or NULL: the line is
 * dropped and counted (writer behind, no memory); n too large is a bug. */
char *wharfd_alog_reserve(wharfd_alog *a, size_t n);
/* Commits n bytes written at the pointer from wharfd_alog_reserve. */
void wharfd_alog_commit(wharfd_alog *a, size_t n);
/* Hands the current block to the writer (no-op when empty). */
void wharfd_alog_flush(wharfd_alog *a);
/* Flushes and frees. */
void wharfd_alog_free(wharfd_alog *a);

#endif
