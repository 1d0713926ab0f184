/* wharfd operations: what keeps it serving while people stop, reload,
 * upgrade and supervise it (issue 18). main.c calls these; each lives in
 * its own file:
 *  - listen.c:   listening sockets: inherited (upgrade, systemd socket
 *                activation) or bound, and the record of which listener
 *                serves which configured address (reload adds/removes);
 *  - signals.c:  the main thread's signal loop (drain, reload, reopen,
 *                upgrade) and the drain itself;
 *  - upgrade.c:  SIGUSR2: start the binary again with the sockets, wait for
 *                it to say it is ready, then drain;
 *  - reload.c:   SIGHUP: re-read the configuration and apply it;
 *  - privdrop.c: --user (setgid/initgroups/setuid, verified on every thread)
 *                and --pid-file;
 *  - sdnotify.c: systemd's notification protocol (READY=1, RELOADING=1,
 *                STOPPING=1, MAINPID=).
 */
#ifndef WHARFD_OPS_H
#define WHARFD_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wharf/server.h"

struct wharfd_app;
struct wharfd_config;

/* ---- sdnotify.c ---- */

/* Sends state ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET if systemd
 * (or a test) set it; a no-op otherwise. Any thread. */
void wharfd_sd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads $NOTIFY_SOCKET once, at startup, before any thread exists. */
void wharfd_sd_init(void);

/* ---- listen.c ---- */

/* Takes the listening sockets handed to this process, from $LISTEN_FDS /
 * $LISTEN_FDNAMES / $LISTEN_PID (systemd socket activation, or the old
 * wharfd of an upgrade, which also sets $WHARFD_UPGRADE and
 * $WHARFD_READY_FD), and removes those variables from the environment.
 * Before any thread exists. */
void wharfd_inherit_init(void);
/* True when this process was started by a SIGUSR2 upgrade. */
bool wharfd_inherit_is_upgrade(void);
/* Which listener of which server serves a configured address. */
typedef struct wharfd_bound {
    char addr[300]; /* normalized, as configured ("127.0.0.1:0"); "fd:NAME" for a socket
                       systemd passed that no configured address names */
    int idx;        /* listener index in its wh_server */
    bool admin;     /* on the admin server */
    bool tls;       /* an https:// --bind: TLS on every connection */
} wharfd_bound;
#define WHARFD_MAX_BOUND 40
/* Normalizes a --bind/--admin value ("8080" -> "0.0.0.0:8080"). */
void wharfd_normalize_addr(const char *in, int port, char *out, size_t cap);
/* Sets up every listener of app's servers (main, and admin if configured)
 * from the inherited sockets and the configuration. Prints to stderr and
 * returns -1 on failure. */
int wharfd_listen_setup(struct wharfd_app *app);
/* Logs "listening on ..." for each listener. */
void wharfd_listen_log(struct wharfd_app *app);
/* Reload: listens on the configured addresses not served yet and stops
 * those no longer configured. Returns the number of errors (logged). */
int wharfd_listen_apply(struct wharfd_app *app, const struct wharfd_config *cfg);
/* Upgrade: the listening sockets and their names ("http=ADDR",
 * "admin=ADDR", ':' in ADDR written %3A) for LISTEN_FDS/LISTEN_FDNAMES.
 * names is one buffer, written "a:b:c". Returns the count, -1 if too many. */
int wharfd_listen_handover(struct wharfd_app *app, int *fds, int cap, char *names,
                           size_t names_cap);
/* The upgrade's readiness pipe (-1 if none): told once the new process
 * serves. */
void wharfd_inherit_ready(void);

/* ---- signals.c ---- */

/* Runs the main thread's signal loop until the servers stopped; returns the
 * exit status. */
int wharfd_signals_run(struct wharfd_app *app);
/* Reopens both logs once every thread handed its buffered access-log lines
 * to the writer (they land in the old file); asynchronous, logged. */
void wharfd_logs_reopen(struct wharfd_app *app);
/* Starts the drain of both servers (SIGTERM, or after an upgrade). */
void wharfd_drain_start(struct wharfd_app *app, bool after_upgrade);

/* ---- upgrade.c ---- */

/* Records what an upgrade needs (the binary's path), at startup. */
void wharfd_upgrade_init(char **argv);
/* SIGUSR2: starts the new process; its readiness (or failure) arrives on
 * loop. */
void wharfd_upgrade_start(struct wharfd_app *app, wh_loop *loop);
/* True once an upgrade handed over (this process must not touch the pid
 * file any more). */
bool wharfd_upgrade_done(void);
/* Frees the watchers of an upgrade still under way (before the loop goes). */
void wharfd_upgrade_cleanup(void);

/* ---- reload.c ---- */

/* The document root and what goes with it, shared by the worker threads;
 * a reload makes a new one and each thread moves over between requests. */
typedef struct wharfd_site wharfd_site;
/* SIGHUP: re-reads the command line and config file; applies it, or logs
 * FILE:LINE: reason and changes nothing. */
void wharfd_reload(struct wharfd_app *app);
/* Checks that every --bind and --admin address parses (-t and a reload).
 * 0, or -1 with the reason in err. */
int wharfd_config_check_addrs(const struct wharfd_config *cfg, char *err, size_t cap);
/* Frees the configurations replaced by reloads (at exit). */
void wharfd_reload_free(struct wharfd_app *app);

/* ---- privdrop.c ---- */

/* Resolves --user now (before binding, so a bad name fails early). 0 or -1
 * after printing. */
int wharfd_priv_prepare(const char *spec);
/* Drops to the --user account (all threads), then checks every thread of
 * the process: fatal (-1 after printing) if any kept root's ids or a
 * capability. Without --user, warns when running as root. */
int wharfd_priv_drop(void);
/* Re-checks every thread (after the servers started their threads). */
int wharfd_priv_verify(void);
/* Writes the pid file (created before the drop, owned by the --user). */
int wharfd_pidfile_write(const char *path);
/* Removes it at a normal exit (not after an upgrade: it is the new one's). */
void wharfd_pidfile_remove(const char *path);

#endif
