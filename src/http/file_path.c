/* Static files: URL path cleaning, confinement to the root, and encoding a
 * cleaned path back into a URL. See wharf/http_file.h for the security model. */
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wharf/http_data.h"
#include "wharf/http_file.h"
#include "http/resphead.h"

void wh_static_opts_init(wh_static_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->index = "index.html";
    opts->listing = false;
    opts->show_dotfiles = false;
    opts->follow_symlinks = false;
    opts->precompressed = true;
    opts->cache_control = NULL;
    opts->mime_file = "/etc/mime.types";
}

int wh_static_root_open(wh_static_root *root, const char *dir, const wh_static_opts *opts)
{
    memset(root, 0, sizeof *root);
    root->fd = -1;
    if (opts)
        root->opts = *opts;
    else
        wh_static_opts_init(&root->opts);
    if (!root->opts.index || !*root->opts.index || strchr(root->opts.index, '/')) return -EINVAL;
    /* Checked once here, for both head writers (wh_static_format_head
     * copies plan strings as they are): a CR or LF would start a field of
     * its own in every response. */
    if (root->opts.cache_control && !wh__resp_value_ok(root->opts.cache_control)) return -EINVAL;
    int err;
    root->real = realpath(dir, NULL);
    if (!root->real) return -errno;
    root->real_len = strlen(root->real);
    /* O_PATH: we only ever resolve beneath it; no read permission needed on
     * the directory itself for openat() of its children. */
    root->fd = open(root->real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root->fd < 0) goto fail_errno;
    /* Permission problems show up here rather than on the first request. */
    if (access(root->real, R_OK | X_OK) != 0) goto fail_errno;
    root->mime = wh_mime_new(root->opts.mime_file);
    if (!root->mime) {
        err = -ENOMEM;
        goto fail;
    }
    root->have_openat2 = -1;
    return 0;
fail_errno:
    err = -errno;
fail:
    wh_static_root_close(root);
    return err;
}

void wh_static_root_close(wh_static_root *root)
{
    if (root->fd >= 0) close(root->fd);
    root->fd = -1;
    free(root->real);
    root->real = NULL;
    root->real_len = 0;
    wh_mime_free(root->mime);
    root->mime = NULL;
}

/* What the segment just written to out[seg..o) is: a dot-segment to resolve
 * (RFC 3986 §5.2.4, as the engine's parser does; a path that came from it
 * has none left, but callers may pass paths of their own), a dotfile, or a
 * name. */
enum { SEG_NAME, SEG_DOT, SEG_DOTDOT };

static int check_segment(const char *out, size_t seg, size_t o, bool show_dotfiles, int *kind)
{
    size_t n = o - seg;
    *kind = SEG_NAME;
    if (n == 0 || out[seg] != '.') return 200;
    if (n == 1) {
        *kind = SEG_DOT;
        return 200;
    }
    if (n == 2 && out[seg + 1] == '.') {
        /* Above the root: never resolved to the root itself, so a traversal
         * attempt gets the same answer whichever layer sees it first. */
        if (seg == 0) return 400;
        *kind = SEG_DOTDOT;
        return 200;
    }
    return show_dotfiles ? 200 : 404;
}

/* Resolves the dot-segment out[seg..o) in place; returns the new length,
 * which ends where the next segment starts. */
static size_t resolve_segment(const char *out, size_t seg, int kind)
{
    if (kind == SEG_DOT) return seg;
    /* "..": drop it and the segment before it (out[seg - 1] is its '/'). */
    size_t k = seg - 1;
    while (k > 0 && out[k - 1] != '/')
        k--;
    return k;
}

/* Bytes a clean path holds anywhere: not a control, DEL, '%', '.' or '/'
 * (the last two are fine inside a segment, checked apart). */
static const unsigned char plain_byte[256] = {
    [0x20 ... 0x24] = 1,
    [0x26 ... 0x2d] = 1,
    [0x30 ... 0x7e] = 1,
    [0x80 ... 0xff] = 1,
};

/* Eight path bytes at a time: nonzero when some byte of x is not plain (a
 * control, '%', '.', '/' or DEL). Each term is the classic exact test for
 * "some byte is below n / equal to c" (a borrow only starts at a byte that
 * qualifies itself); which byte it was, the byte loop finds. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t zero_byte(uint64_t y)
{
    return (y - ONES) & ~y & HIGHS;
}
static inline uint64_t unplain8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return ((x - ONES * 0x20) & ~x & HIGHS) | zero_byte(x ^ (ONES * '%')) |
           zero_byte((x ^ (ONES * '.')) & (ONES * 0xfe)) /* '.' or '/' */ |
           zero_byte(x ^ (ONES * 0x7f));
}

/* The common case, a path already clean ("/css/site.css"): no escape, no
 * control byte, no empty segment, no segment starting with '.', no trailing
 * slash. Then the general loop below would copy it unchanged, so one scan
 * (one table load per byte) and one copy do. False: take the general loop. */
static bool clean_already(const char *raw, size_t len, char *out, size_t cap)
{
    if (len < 2 || len > cap || raw[len - 1] == '/') return false;
    size_t i = 1;
    while (i + 8 <= len && !unplain8(raw + i))
        i += 8;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (__builtin_expect(plain_byte[c], 1)) continue;
        /* A control, DEL or '%'; or a '/' or '.' that starts a segment
         * (raw[0] is '/'). */
        if ((c != '/' && c != '.') || raw[i - 1] == '/') return false;
    }
    memcpy(out, raw + 1, len - 1);
    out[len - 1] = '\0';
    return true;
}

int wh_static_clean_path(const char *raw, size_t len, bool show_dotfiles, char *out, size_t cap,
                         bool *trailing_slash)
{
    *trailing_slash = false;
    if (cap == 0) return 414;
    out[0] = '\0';
    if (len == 0 || raw[0] != '/') return 400;
    if (clean_already(raw, len, out, cap)) return 200;
    size_t o = 0, seg = 0;
    bool last_slash = true; /* just saw a separator: merge "//" */
    int kind;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '/') {
            if (last_slash) continue;
            int st = check_segment(out, seg, o, show_dotfiles, &kind);
            if (st != 200) return st;
            last_slash = true;
            if (kind != SEG_NAME) {
                o = seg = resolve_segment(out, seg, kind);
                continue;
            }
            if (o + 1 >= cap) return 414;
            out[o++] = '/';
            seg = o;
            continue;
        }
        if (c == '%') {
            int h = i + 2 < len ? wh_http_hex_digit((unsigned char)raw[i + 1]) : -1;
            int l = h >= 0 ? wh_http_hex_digit((unsigned char)raw[i + 2]) : -1;
            if (l < 0) return 400;
            c = (unsigned char)(h << 4 | l);
            i += 2;
            /* A decoded separator would let "a%2f..%2fb" pass the segment
             * check; NUL would truncate the C string we hand to openat. */
            if (c == '/' || c == '\\' || c == 0) return 400;
        }
        if (c < 0x20 || c == 0x7f) return 400;
        if (o + 1 >= cap) return 414;
        out[o++] = (char)c;
        last_slash = false;
    }
    int st = check_segment(out, seg, o, show_dotfiles, &kind);
    if (st != 200) return st;
    if (kind != SEG_NAME) {
        /* A final "." or ".." names a directory. */
        o = resolve_segment(out, seg, kind);
        last_slash = true;
    }
    if (last_slash) {
        *trailing_slash = true;
        if (o > 0) o--; /* drop the separator we appended */
    }
    out[o] = '\0';
    return 200;
}

static bool within_root(const wh_static_root *root, int fd)
{
    char link[64], real[PATH_MAX];
    if (!root->real) return false;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n < 0) return false;
    real[n] = '\0';
    if ((size_t)n < root->real_len || memcmp(real, root->real, root->real_len) != 0) return false;
    /* "/srv/www" must not accept "/srv/www2/x"; "/" as root accepts all. */
    return (size_t)n == root->real_len || real[root->real_len] == '/' || root->real_len == 1;
}

int wh_static_open_beneath(wh_static_root *root, const char *rel, int flags)
{
    if (!*rel) rel = ".";
    flags |= O_CLOEXEC | O_NOCTTY;
    if (root->opts.follow_symlinks) {
        int fd = openat(root->fd, rel, flags);
        return fd < 0 ? -errno : fd;
    }
    int have = __atomic_load_n(&root->have_openat2, __ATOMIC_RELAXED);
    if (have != 0) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (uint64_t)flags;
        /* RESOLVE_BENEATH (openat2(2), Linux 5.6): every component, symlink
         * targets included, must stay beneath dirfd; absolute symlinks and
         * ".." escapes fail with EXDEV. NO_MAGICLINKS refuses /proc links. */
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        for (int tries = 0; tries < 4; tries++) {
            long fd = syscall(SYS_openat2, root->fd, rel, &how, sizeof how);
            if (fd >= 0) {
                if (have < 0) __atomic_store_n(&root->have_openat2, 1, __ATOMIC_RELAXED);
                return (int)fd;
            }
            /* EAGAIN: a concurrent rename/mount raced the lookup; retry. */
            if (errno == EAGAIN) continue;
            /* ENOSYS: old kernel; EPERM: a seccomp filter refusing the new
             * syscall (container runtimes did, see runc#2151). */
            if (errno == ENOSYS || (errno == EPERM && have < 0)) break;
            return -errno;
        }
        if (errno == EAGAIN) return -EAGAIN;
        __atomic_store_n(&root->have_openat2, 0, __ATOMIC_RELAXED);
    }
    /* Fallback: open, then check where the kernel says the fd really is. A
     * symlink out of the root is detected after the fact, so we never read
     * from it, but we did open it (harmless with O_NONBLOCK). */
    int fd = openat(root->fd, rel, flags);
    if (fd < 0) return -errno;
    if (!within_root(root, fd)) {
        close(fd);
        return -EXDEV;
    }
    return fd;
}

static int errno_status(int err)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
        return 404;
    case -EACCES:
    case -EPERM:
    case -EXDEV:
    case -ELOOP:
        return 403;
    case -ENAMETOOLONG:
        return 414;
    default:
        return 500;
    }
}

#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK) /* NONBLOCK: a FIFO must not hang us */

int wh_static_resolve(wh_static_root *root, const char *rel, bool trailing_slash, wh_static_file *f)
{
    f->fd = -1;
    f->is_dir = false;
    size_t rl = strlen(rel);
    if (rl >= sizeof f->rel) return 414;
    int fd = wh_static_open_beneath(root, rel, OPEN_FLAGS);
    if (fd < 0) return errno_status(fd);
    if (fstat(fd, &f->st) != 0) {
        close(fd);
        return 500;
    }
    memcpy(f->rel, rel, rl + 1);
    if (S_ISREG(f->st.st_mode)) {
        if (trailing_slash) { /* "/file.txt/" names a directory that is not there */
            close(fd);
            return 404;
        }
        f->fd = fd;
        return 200;
    }
    if (!S_ISDIR(f->st.st_mode)) {
        close(fd);
        return 403;
    }
    if (!trailing_slash) {
        close(fd);
        return 301;
    }
    /* Directory: index file, relative to the directory we just opened (no
     * second walk from the root; the index name has no '/'). */
    const char *index = root->opts.index;
    size_t il = strlen(index);
    if (rl + 1 + il + 1 <= sizeof f->rel) {
        int ifd = openat(fd, index, OPEN_FLAGS | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (ifd < 0 && errno == ELOOP) { /* the index is a symlink: confine it */
            snprintf(f->rel, sizeof f->rel, "%s%s%s", rel, rl ? "/" : "", index);
            ifd = wh_static_open_beneath(root, f->rel, OPEN_FLAGS);
        }
        struct stat ist;
        if (ifd >= 0 && fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode)) {
            close(fd);
            f->fd = ifd;
            f->st = ist;
            snprintf(f->rel, sizeof f->rel, "%s%s%s", rel, rl ? "/" : "", index);
            return 200;
        }
        if (ifd >= 0) close(ifd);
        memcpy(f->rel, rel, rl + 1);
    }
    if (!root->opts.listing) {
        close(fd);
        return 403;
    }
    f->fd = fd;
    f->is_dir = true;
    return 200;
}

int wh_static_open_encoded(wh_static_root *root, const char *rel, const struct stat *st,
                           unsigned accepted, bool prefer_br, unsigned *enc, struct stat *est)
{
    static const struct {
        unsigned bit;
        const char *ext;
    } order[2][2] = {{{WH_ENC_GZIP, ".gz"}, {WH_ENC_BR, ".br"}},
                     {{WH_ENC_BR, ".br"}, {WH_ENC_GZIP, ".gz"}}};
    char name[WH_STATIC_PATH_MAX + 4];
    size_t rl = strlen(rel);
    if (rl == 0 || rl + 4 > sizeof name) return -1;
    for (int k = 0; k < 2; k++) {
        unsigned bit = order[prefer_br][k].bit;
        if (!(accepted & bit)) continue;
        memcpy(name, rel, rl);
        memcpy(name + rl, order[prefer_br][k].ext, 4);
        int fd = wh_static_open_beneath(root, name, OPEN_FLAGS);
        if (fd < 0) continue;
        /* Only a sibling at least as new as the original: a stale .gz left
         * behind after an edit must not win (same rule as nginx gzip_static
         * users rely on their build step for; we check it). */
        if (fstat(fd, est) == 0 && S_ISREG(est->st_mode) &&
            (est->st_mtim.tv_sec > st->st_mtim.tv_sec ||
             (est->st_mtim.tv_sec == st->st_mtim.tv_sec &&
              est->st_mtim.tv_nsec >= st->st_mtim.tv_nsec))) {
            *enc = bit;
            return fd;
        }
        close(fd);
    }
    return -1;
}

size_t wh_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        if (keep) {
            if (o + 1 < cap) out[o] = (char)c;
            o++;
        } else {
            if (o + 3 < cap) {
                out[o] = '%';
                out[o + 1] = hex[c >> 4];
                out[o + 2] = hex[c & 15];
            }
            o += 3;
        }
    }
    if (cap) out[o < cap ? o : cap - 1] = '\0';
    return o;
}
