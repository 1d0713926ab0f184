#!/usr/bin/python3
"""wharfd configuration reload (SIGHUP), log reopen (SIGUSR1) and
--check-config.

- A reload that changes the root while a keep-alive connection stays open:
  the connection is not closed, its next request is served from the new
  root, under continuous load with 0 failed requests; RELOADING=1 then
  READY=1 on the NOTIFY_SOCKET.
- A reload adds a listener and removes another; a listener removed is
  refused afterwards, the new one serves.
- An invalid file changes nothing and logs FILE:LINE: reason.
- A new keep-alive timeout applies after the reload.
- '#' comments at the end of a line; -t exits 0 for a good file, 1 with the
  reason for a bad one.
- SIGUSR1: lines buffered before the rotation land in the old file, lines
  after it in the new one.
WH_TEST_LABELS: tsan
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

from loadclient import Load
from opsutil import Notify, free_port, wait_log
from wharfdutil import WHARFD, Checker

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_reload_")
roots = {}
for name in ("one", "two"):
    roots[name] = os.path.join(tmp, name)
    os.makedirs(roots[name])
    with open(os.path.join(roots[name], "index.html"), "w") as f:
        f.write(name + "\n")
conf = os.path.join(tmp, "wharfd.conf")
p1, p2 = free_port(), free_port()


def write_conf(root, port, extra=""):
    with open(conf, "w") as f:
        f.write("# wharfd test configuration\n")
        f.write("root = %s   # the document root\n" % root)
        f.write("bind = 127.0.0.1:%d # a listener\n" % port)
        f.write("cache-control = \"no-cache # not a comment\"\n")
        f.write(extra)


def get(port, s=None):
    own = s is None
    if own:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([l for l in head.decode().lower().split("\r\n") if l.startswith("content-length")][0]
            .split(":")[1])
    while len(body) < n:
        body += s.recv(4096)
    if own:
        s.close()
    return head.decode().lower(), body


# --- --check-config ---
write_conf(roots["one"], p1)
r = subprocess.run([WHARFD, "--config", conf, "-t"], capture_output=True, text=True, timeout=10)
c.check(r.returncode == 0 and "valid" in r.stdout, "-t: a good file: %r" % (r.stdout + r.stderr))
bad = os.path.join(tmp, "bad.conf")
with open(bad, "w") as f:
    f.write("root = %s\n# fine so far\nheader-timeout = never   # oops\n" % roots["one"])
r = subprocess.run([WHARFD, "--config", bad, "--check-config"], capture_output=True, text=True,
                   timeout=10)
c.eq(r.returncode, 1, "-t: a bad file exits 1")
c.check("%s:3:" % bad in r.stderr and "header-timeout" in r.stderr, "-t names FILE:LINE: %r" % r.stderr)

notify = Notify()
# Wharfd() always passes --root; give the daemon only --config here.
err_log = os.path.join(tmp, "error.log")
acc_log = os.path.join(tmp, "access.log")
write_conf(roots["one"], p1, "error-log = %s\naccess-log = %s\nthreads = 2\n" % (err_log, acc_log))
proc = subprocess.Popen([WHARFD, "--config", conf], env=notify.env(), stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
read = lambda: open(err_log).read() if os.path.exists(err_log) else ""
try:
    c.check(wait_log(read, r"listening on 127\.0\.0\.1:%d" % p1, 15) is not None, "started")
    head, body = get(p1)
    c.eq(body, b"one\n", "served from the first root")
    c.check("cache-control: no-cache # not a comment" in head, "'#' inside quotes is kept")

    # --- reload: new root, keep-alive connection open, load running ---
    ka = socket.create_connection(("127.0.0.1", p1), timeout=5)
    _, body = get(p1, ka)
    c.eq(body, b"one\n", "keep-alive connection, first request")
    notify.poll()
    notify.messages.clear()
    with Load(p1) as load:
        time.sleep(0.5)
        write_conf(roots["two"], p1,
                   "error-log = %s\naccess-log = %s\nthreads = 2\n" % (err_log, acc_log))
        mark = len(read())
        proc.send_signal(signal.SIGHUP)
        c.check(wait_log(read, r"configuration reloaded", 10, mark) is not None, "reload logged")
        time.sleep(0.5)
    print(load.summary())
    c.eq(load.failed, 0, "failed requests across the reload")
    c.check(load.bodies.get(b"two\n", 0) > 0, "load sees the new root after the reload")
    head, body = get(p1, ka)
    c.eq(body, b"two\n", "the same keep-alive connection is served from the new root")
    c.check("connection: close" not in head, "and it stays open")
    _, body = get(p1, ka)
    c.eq(body, b"two\n", "... and serves again")
    ka.close()
    msgs = "\n".join(notify.poll())
    c.check("RELOADING=1" in msgs and "READY=1" in msgs, "RELOADING=1 then READY=1: %r" % msgs)

    # --- invalid reload: nothing changes ---
    with open(conf, "a") as f:
        f.write("keepalive-timeout = soon\n")
    mark = len(read())
    proc.send_signal(signal.SIGHUP)
    m = wait_log(read, r"reload: ([^\n]*)configuration unchanged", 10, mark)
    c.check(m is not None and ("%s:8:" % conf) in m.group(0) and "keepalive-timeout" in m.group(0),
            "invalid reload logs FILE:LINE: reason: %r" % (m.group(0) if m else read()[mark:]))
    _, body = get(p1)
    c.eq(body, b"two\n", "invalid reload: the root is unchanged")

    # --- listeners: add p2, remove p1 ---
    write_conf(roots["two"], p2, "error-log = %s\naccess-log = %s\nthreads = 2\n"
               "keepalive-timeout = 500ms\n" % (err_log, acc_log))
    mark = len(read())
    proc.send_signal(signal.SIGHUP)
    c.check(wait_log(read, r"configuration reloaded", 10, mark) is not None, "reload with new listeners")
    c.check(wait_log(read, r"no longer listening on 127\.0\.0\.1:%d" % p1, 5, mark) is not None,
            "old listener removed")
    time.sleep(0.3)
    _, body = get(p2)
    c.eq(body, b"two\n", "the added listener serves")
    ka = socket.create_connection(("127.0.0.1", p2), timeout=5)
    get(p2, ka)
    t0 = time.time()
    ka.settimeout(3)
    try:
        closed = ka.recv(1) == b""
    except OSError:
        closed = True
    c.check(closed and time.time() - t0 < 1.5, "the reloaded keep-alive timeout (500 ms) applies")
    ka.close()
    try:
        socket.create_connection(("127.0.0.1", p1), timeout=2).close()
        c.check(False, "the removed listener refuses connections")
    except OSError:
        c.check(True, "the removed listener refuses connections")

    # --- SIGUSR1: buffered lines go to the old file ---
    for _ in range(5):
        get(p2)
    os.rename(acc_log, acc_log + ".1")
    mark = len(read())
    proc.send_signal(signal.SIGUSR1)
    c.check(wait_log(read, r"logs reopened", 10, mark) is not None, "SIGUSR1 logged")
    for _ in range(3):
        get(p2)
    time.sleep(1.5)  # the per-thread flush timer (1 s)
    old_lines = open(acc_log + ".1").read().count("GET / ")
    new_lines = open(acc_log).read().count("GET / ") if os.path.exists(acc_log) else 0
    c.check(old_lines >= 5, "lines buffered before SIGUSR1 are in the old file (%d)" % old_lines)
    c.eq(new_lines, 3, "lines after SIGUSR1 are in the new file")
finally:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    notify.close()
c.eq(rc, 0, "exit status")
c.done()
