/* Socket helpers, one job each (in the manner of Redis' anet.c). Comments say
 * where the kernel surprises. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net_internal.h"

/* The net layer's documented defaults, in one place (net.h lists them). */
const wh_net_opts wh__net_defaults = {
    .reuseaddr = 1,
    .reuseport = 0,
    .defer_accept_s = 0,
    .keepalive = 0,
    .keepalive_idle_s = 60,
    .keepalive_intvl_s = 10,
    .keepalive_cnt = 6,
    .nodelay = 1,
    .fastopen_qlen = 0,
    .backlog = SOMAXCONN,
    .v6only = 0,
    .accept_batch = 64,
    .read_buf_size = 16384,
    .read_buf_max = 1u << 20,
    .high_watermark = 1u << 20,
    .low_watermark = 256u << 10,
    .proxy_timeout_ms = 5000,
};

void wh_net_opts_init(wh_net_opts *o)
{
    *o = wh__net_defaults;
}

static int set_int(int fd, int level, int name, int v)
{
    if (setsockopt(fd, level, name, &v, sizeof(v)) < 0) return -errno;
    return 0;
}

/* A Unix socket path left behind by a previous run makes bind() fail with
 * EADDRINUSE forever. Remove it, but only when it is a socket (never a
 * regular file someone mistyped) and nobody accepts on it (a connect that
 * succeeds means another server is live: do not steal its path). */
static int unlink_stale_unix(const wh_sockaddr *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)a->u.raw;
    if (un->sun_path[0] == '\0') return 0; /* abstract names vanish with their last socket */
    struct stat st;
    if (lstat(un->sun_path, &st) < 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) return -EADDRINUSE;
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0) return -errno;
    int rc = connect(probe, (const struct sockaddr *)a->u.raw, a->len);
    int err = rc < 0 ? errno : 0;
    close(probe);
    /* EAGAIN on a non-blocking Unix connect means the backlog is full: live. */
    if (rc == 0 || err == EAGAIN) return -EADDRINUSE;
    if (err == ECONNREFUSED && unlink(un->sun_path) < 0 && errno != ENOENT) return -errno;
    return 0;
}

static int tune_listener(int fd, int family, enum wh_addr_kind k, const wh_net_opts *o)
{
    int rc;
    if (family != AF_UNIX) {
        /* SO_REUSEADDR: rebind while old connections sit in TIME_WAIT. */
        if (o->reuseaddr && (rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0) return rc;
        /* SO_REUSEPORT must be set on every socket, the first one included,
         * before bind(2); the kernel then spreads connections by 4-tuple hash
         * (socket(7)). */
        if (o->reuseport && (rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0) return rc;
    }
    if (family == AF_INET6) {
        /* Set explicitly both ways: the default comes from the sysctl
         * net.ipv6.bindv6only, which distributions set differently. It only
         * matters for "[::]": binding a specific IPv6 address (not a
         * v4-mapped one) makes the kernel turn V6ONLY on by itself. */
        if ((rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only ? 1 : 0)) < 0) return rc;
    }
    return 0;
}

static int tune_tcp_listening(int fd, const wh_net_opts *o)
{
    int rc;
    /* TCP_DEFER_ACCEPT: wake accept only when data arrives (seconds, rounded
     * by the kernel to SYN-ACK retransmissions; after it expires the
     * connection is still accepted, just without data). */
    if (o->defer_accept_s > 0 &&
        (rc = set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, o->defer_accept_s)) < 0)
        return rc;
    /* TCP_FASTOPEN takes the queue length of pending TFO requests; it only
     * works if net.ipv4.tcp_fastopen has the server bit (2) set. A kernel
     * refusing it is not fatal: clients fall back to the normal handshake. */
    if (o->fastopen_qlen > 0) (void)set_int(fd, IPPROTO_TCP, TCP_FASTOPEN, o->fastopen_qlen);
    return 0;
}

int wh__bind_fd(const wh_sockaddr *a, enum wh_addr_kind k, const wh_net_opts *o, int *fd_out)
{
    wh_net_opts defaults;
    if (!o) {
        wh_net_opts_init(&defaults);
        o = &defaults;
    }
    int family = a->u.sa.family;
    if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) return -EAFNOSUPPORT;
    if ((k == WH_ADDR_UNIX) != (family == AF_UNIX)) return -EINVAL;
    int type = k == WH_ADDR_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int rc;
    if (family == AF_UNIX && (rc = unlink_stale_unix(a)) < 0) return rc;
    /* Atomic flags: no window where a fork+exec elsewhere inherits the fd,
     * and no extra fcntl syscalls. */
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if ((rc = tune_listener(fd, family, k, o)) < 0) goto fail;
    if (bind(fd, (const struct sockaddr *)a->u.raw, a->len) < 0) {
        rc = -errno;
        goto fail;
    }
    if (type == SOCK_STREAM && family != AF_UNIX && (rc = tune_tcp_listening(fd, o)) < 0) goto fail;
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

int wh__listen_start(int fd, const wh_net_opts *o)
{
    /* The kernel silently caps backlog at net.core.somaxconn. */
    int backlog = o && o->backlog > 0 ? o->backlog : SOMAXCONN;
    return listen(fd, backlog) < 0 ? -errno : 0;
}

int wh__listen_fd(const wh_sockaddr *a, enum wh_addr_kind k, const wh_net_opts *o, int *fd_out)
{
    int fd, rc = wh__bind_fd(a, k, o, &fd);
    if (rc < 0) return rc;
    if (k != WH_ADDR_UDP && (rc = wh__listen_start(fd, o)) < 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int wh__listen_str(const char *addr, const wh_net_opts *o, enum wh_addr_kind *kind, int *fd_out)
{
    wh_sockaddr sa;
    enum wh_addr_kind k;
    int rc = wh_addr_parse(addr, &sa, &k);
    if (rc < 0) return rc;
    if (kind) *kind = k;
    return wh__listen_fd(&sa, k, o, fd_out);
}

int wh__sock_apply_accepted(int fd, int family, const wh_net_opts *o)
{
    int rc;
    if (!o) return 0;
    if (!o->nodelay && !o->keepalive && o->sndbuf <= 0) return 0;
    if (family == 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return -errno;
        family = ss.ss_family;
    }
    if (family != AF_INET && family != AF_INET6)
        return 0; /* Unix sockets have neither Nagle nor keepalive */
    /* TCP_NODELAY: we already batch writes into one writev per callback, so
     * Nagle would only add a delayed-ACK round trip to small replies. */
    if (o->nodelay && (rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0) return rc;
    /* A fixed send buffer turns the kernel's autotuning off for the socket
     * (socket(7)); set on a listener, accepted sockets are created with it
     * (Linux copies the buffer sizes and that lock with the socket). */
    if (o->sndbuf > 0 && (rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf)) < 0) return rc;
    if (o->keepalive) {
        /* accept(2): "On Linux, the new socket returned by accept() does not
         * inherit file status flags" and portable code must not rely on
         * inheritance of socket options either, so each is set explicitly. */
        if ((rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0) return rc;
        if (o->keepalive_idle_s > 0 &&
            (rc = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keepalive_idle_s)) < 0)
            return rc;
        if (o->keepalive_intvl_s > 0 &&
            (rc = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keepalive_intvl_s)) < 0)
            return rc;
        if (o->keepalive_cnt > 0 &&
            (rc = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keepalive_cnt)) < 0)
            return rc;
    }
    return 0;
}

static bool get_is(int fd, int level, int name, int want)
{
    int v = 0;
    socklen_t sl = sizeof(v);
    return getsockopt(fd, level, name, &v, &sl) == 0 && v == want;
}

bool wh__sock_inherited(int fd, const wh_net_opts *o)
{
    if (!o) return true;
    if (o->nodelay && !get_is(fd, IPPROTO_TCP, TCP_NODELAY, 1)) return false;
    /* sndbuf is not probed: the kernel reports it doubled and clamped to
     * net.core.wmem_max, and it is always copied from the listener. */
    if (!o->keepalive) return true;
    return get_is(fd, SOL_SOCKET, SO_KEEPALIVE, 1) &&
           (o->keepalive_idle_s <= 0 ||
            get_is(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keepalive_idle_s)) &&
           (o->keepalive_intvl_s <= 0 ||
            get_is(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keepalive_intvl_s)) &&
           (o->keepalive_cnt <= 0 || get_is(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keepalive_cnt));
}

int wh__sock_local(int fd, wh_sockaddr *out)
{
    socklen_t sl = sizeof(out->u.raw);
    memset(out, 0, sizeof(*out));
    if (getsockname(fd, (struct sockaddr *)out->u.raw, &sl) < 0) return -errno;
    out->len = sl;
    return 0;
}

int wh__sock_peer(int fd, wh_sockaddr *out)
{
    socklen_t sl = sizeof(out->u.raw);
    memset(out, 0, sizeof(*out));
    if (getpeername(fd, (struct sockaddr *)out->u.raw, &sl) < 0) return -errno;
    out->len = sl;
    return 0;
}
