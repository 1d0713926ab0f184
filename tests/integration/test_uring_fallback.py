#!/usr/bin/python3
"""wharfd --backend io_uring where io_uring is refused: tests/helpers/no_uring.c
installs a seccomp filter that makes io_uring_setup(2) fail with ENOSYS (as a
container's profile would) and execs wharfd. wharfd must log one line,
"io_uring unavailable: <reason>; using epoll", start on epoll and serve.
Then the same flag with io_uring allowed (the config-file key this time):
wharfd runs on io_uring where the kernel grants it, else says why.
WH_TEST_LABELS: uring"""
import os
import shutil
import subprocess
import tempfile

from wharfdutil import BUILD, Checker, Wharfd, curl

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_uring_")
NO_URING = os.path.join(BUILD, "no-uring")
env = dict(os.environ)
env.pop("WH_LOOP_BACKEND", None)  # the flag alone decides here

probe = subprocess.run([NO_URING, "--probe"], capture_output=True, text=True, timeout=10)
usable = probe.stdout.startswith("io_uring is usable")
print(probe.stdout.strip())

www = os.path.join(tmp, "www")
os.makedirs(www)
with open(os.path.join(www, "index.html"), "w") as f:
    f.write("hello over some backend\n")


def log_lines(w, needle):
    return [l for l in w.errors().splitlines() if needle in l]


try:
    # io_uring refused by seccomp: one line, epoll serves.
    with Wharfd(www, "--backend", "io_uring", prefix=(NO_URING,), env=env) as w:
        status, _, body = curl(w.base + "/")
        c.eq(status, 200, "GET / under the filter")
        c.eq(body, b"hello over some backend\n", "body under the filter")
        lines = log_lines(w, "io_uring unavailable")
        c.eq(len(lines), 1, "one fallback line")
        c.check(bool(lines) and "io_uring unavailable: Function not implemented; using epoll"
                in lines[0], "the line names the reason: %r" % lines)
        c.check(len(log_lines(w, "backend epoll")) == 1, "start line says backend epoll")
        c.eq(w.stop(), 0, "clean exit under the filter")

    # The filter applies to io_uring only: epoll asked for, nothing logged.
    with Wharfd(www, "--backend", "epoll", prefix=(NO_URING,), env=env) as w:
        status, _, _ = curl(w.base + "/")
        c.eq(status, 200, "GET / with --backend epoll under the filter")
        c.eq(len(log_lines(w, "io_uring unavailable")), 0, "no fallback line for epoll")

    # No filter, the config-file key: io_uring where the kernel grants it.
    conf = os.path.join(tmp, "wharfd.conf")
    with open(conf, "w") as f:
        f.write("backend = io_uring\n")
    with Wharfd(www, "--config", conf, env=env) as w:
        status, _, body = curl(w.base + "/")
        c.eq(status, 200, "GET / with backend = io_uring")
        if usable:
            c.check(len(log_lines(w, "backend io_uring")) == 1, "start line says backend io_uring")
            c.eq(len(log_lines(w, "io_uring unavailable")), 0, "no fallback line")
        else:
            print("io_uring unusable on this machine: checking the fallback line instead")
            c.eq(len(log_lines(w, "io_uring unavailable")), 1, "fallback line")
        c.eq(w.stop(), 0, "clean exit")

    # A bad value is refused like any other.
    p = subprocess.run([os.path.join(BUILD, "wharfd"), "--backend", "kqueue"],
                       capture_output=True, text=True, timeout=20)
    c.eq(p.returncode, 2, "--backend kqueue exit code")
    c.check("invalid value 'kqueue' for --backend" in p.stderr, "--backend kqueue message")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
