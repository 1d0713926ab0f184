/* The concurrency-model lab: what every lab-<model> program shares.
 *
 * ZeroHTTPd (seed 001) written seven times: only the concurrency model differs
 * between lab/lab-*.c. Everything else - command line, listening socket,
 * request parsing (wharf/http_parse.h), static files (wharf/http_file.h) and
 * the guestbook (src/apps/common/) - lives here, so a reader can diff two models and see
 * nothing but the model.
 *
 * Two ways to drive a connection:
 *  - blocking models (iterative, forking, pre-forked, threaded, pre-threaded)
 *    call lab_serve_blocking(fd, ...) and get the socket back when the client
 *    is done;
 *  - event-driven models (poll, epoll) own a lab_conn per socket and call
 *    lab_conn_on_io() when the socket is ready; it never blocks on the socket
 *    and says which readiness it needs next.
 */
#ifndef LAB_LAB_H
#define LAB_LAB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct lab_cfg {
    const char *prog;     /* "lab-epoll": for messages */
    int port;             /* --port: 8000 */
    char bind_ip[64];     /* --bind IPV4:PORT (like wharfd): 0.0.0.0 */
    const char *root;     /* --root: ./public */
    char redis_host[256]; /* --redis HOST:PORT: 127.0.0.1:6379 */
    int redis_port;
    int workers;                    /* --workers: pool size (pre-forked, pre-threaded) */
    bool keepalive;                 /* the model serves more than one request per connection */
    struct wh_static_root *docroot; /* --root, opened once (wharf/http_file.h) */
} lab_cfg;

/* Parses --port, --bind, --root, --redis, --workers (and --help) and opens the
 * document root; exits on bad usage or a missing root. */
void lab_cfg_parse(lab_cfg *cfg, const char *prog, int default_workers, bool keepalive, int argc,
                   char **argv);

/* Opens the listening socket (SO_REUSEADDR, backlog 4096) on all addresses,
 * optionally non-blocking, and prints "PROG: listening on port N". Exits on error. */
int lab_listen(const lab_cfg *cfg, bool nonblock);

/* Accepts one connection (close-on-exec, TCP_NODELAY, optionally
 * non-blocking). Returns the fd, or -1 with errno set (EINTR, EAGAIN, ...);
 * sleeps 10 ms on EMFILE/ENFILE so a full fd table does not spin the CPU. */
int lab_accept(int lfd, bool nonblock);

/* Set by lab_on_stop_signal: SIGINT/SIGTERM was received. */
extern volatile sig_atomic_t lab_stop;
/* Installs a SIGINT/SIGTERM handler that sets lab_stop WITHOUT SA_RESTART, so a
 * blocked accept()/poll() returns EINTR and the model's loop can end. Ignores SIGPIPE
 * (a peer that vanished mid-response must not kill the server; write gets EPIPE). */
void lab_on_stop_signal(void);

/* --- per process/thread state: the blocking Redis connection ------------------ */

typedef struct lab_redis lab_redis;
/* Creates the (lazily connected) Redis handle: one per process or thread, never shared. */
lab_redis *lab_redis_new(const lab_cfg *cfg);
void lab_redis_free(lab_redis *r);

/* --- blocking models ----------------------------------------------------------- */

/* Serves requests on the blocking socket fd until the client closes, an error,
 * a 'Connection: close', or (cfg->keepalive false) after one response. An idle
 * keep-alive client is dropped after LAB_IDLE_SECONDS. Closes fd. */
void lab_serve_blocking(int fd, const lab_cfg *cfg, lab_redis *redis);

#define LAB_IDLE_SECONDS 5

/* --- event-driven models: one state machine per connection ---------------------- */

typedef struct lab_conn lab_conn;

enum lab_want {
    LAB_WANT_READ = 1,  /* waiting for request bytes */
    LAB_WANT_WRITE = 2, /* response bytes pending: wait for the socket to drain */
    LAB_WANT_CLOSE = 3, /* done: the caller closes (lab_conn_free) */
};

/* Wraps the non-blocking socket fd (owned from now on). */
lab_conn *lab_conn_new(int fd);
/* Closes the socket and frees everything. */
void lab_conn_free(lab_conn *c);
int lab_conn_fd(const lab_conn *c);
/* What the previous lab_conn_on_io returned (LAB_WANT_READ for a new conn). */
enum lab_want lab_conn_waiting(const lab_conn *c);
/* The socket is ready (readable or writable): read what is there, answer every
 * complete request, write until EAGAIN. Returns what to wait for next. */
enum lab_want lab_conn_on_io(lab_conn *c, const lab_cfg *cfg, lab_redis *redis);

#endif
