/* no-uring: runs a program where io_uring is unusable, as in a container
 * whose seccomp profile refuses it (Docker's default does).
 *
 *   no-uring PROGRAM [ARG]...   installs a seccomp filter that makes
 *                               io_uring_setup(2) fail with ENOSYS, then
 *                               execs PROGRAM (the filter is inherited)
 *   no-uring --probe            says whether io_uring works here (exit 0)
 *
 * The tests use it to force the loop's fallback to epoll
 * (tests/integration/test_uring_fallback.py) and to say, before each .uring
 * test variant, when that variant can only test the fallback. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NU_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NU_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425 /* the same number on every architecture */
#endif

/* 0 when an io_uring instance can be made, else the errno. */
static int probe(void)
{
    /* struct io_uring_params is 120 bytes; zeroed asks for nothing special. */
    unsigned char params[120];
    memset(params, 0, sizeof params);
    long fd = syscall(__NR_io_uring_setup, 4, params);
    if (fd < 0) return errno;
    close((int)fd);
    return 0;
}

static int install_filter(void)
{
#ifdef NU_ARCH
    struct sock_filter prog[] = {
        /* A foreign architecture's syscall numbers mean something else:
         * let those through untouched. */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NU_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fp = {.len = sizeof prog / sizeof prog[0], .filter = prog};
    /* Without privileges a filter needs no_new_privs (seccomp(2)). */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) return -errno;
    return 0;
#else
    return -ENOTSUP;
#endif
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--probe") == 0) {
        int e = probe();
        if (e)
            printf("io_uring is unusable here (io_uring_setup: %s): this run tests the "
                   "fallback to epoll\n",
                   strerror(e));
        else
            printf("io_uring is usable here\n");
        fflush(stdout);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: no-uring PROGRAM [ARG]... | no-uring --probe\n");
        return 2;
    }
    int r = install_filter();
    if (r < 0) {
        fprintf(stderr, "no-uring: seccomp filter: %s\n", strerror(-r));
        return 125;
    }
    if (probe() != ENOSYS) {
        fprintf(stderr, "no-uring: the filter did not take\n");
        return 125;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "no-uring: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
