#!/usr/bin/python3
"""wharfd under systemd's protocols, without systemd itself:
- socket activation with systemd-socket-activate (Debian's systemd
  package): the socket it passes (LISTEN_FDS, LISTEN_FDNAMES=http) is
  served, nothing else is bound, the first connection (the one that started
  wharfd) is answered;
- readiness on a NOTIFY_SOCKET the test binds: READY=1 with MAINPID, and
  STOPPING=1 at SIGTERM;
- --user nobody as root (skipped otherwise): every thread's Uid and Gid are
  nobody's and CapEff/CapPrm are 0 (read from /proc/PID/task/*/status),
  including a privileged port bound before the drop; the pid file holds the
  pid and is removed at exit; a warning when root runs without --user; an
  unknown --user exits 2.
WH_TEST_LABELS: tsan
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from opsutil import Notify, free_port, wait_log
from wharfdutil import WHARFD, Checker

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_systemd_")
os.chmod(tmp, 0o755)
www = os.path.join(tmp, "www")
os.makedirs(www)
with open(os.path.join(www, "index.html"), "w") as f:
    f.write("activated\n")
os.chmod(www, 0o755)
os.chmod(os.path.join(www, "index.html"), 0o644)


def get(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    s.close()
    return buf


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


# --- socket activation + readiness ---
sa = shutil.which("systemd-socket-activate")
c.check(sa is not None, "systemd-socket-activate is installed (scripts/deps.sh: systemd)")
if sa:
    notify = Notify()
    port = free_port()
    log = os.path.join(tmp, "sa.log")
    p = subprocess.Popen([sa, "-l", "127.0.0.1:%d" % port, "--fdname=http",
                          "-E", "NOTIFY_SOCKET=" + notify.path, "--",
                          WHARFD, "--root", www, "--threads", "2", "--access-log", "off",
                          "--error-log", log],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        body = get(port)  # starts wharfd, which answers this very connection
        c.check(body.startswith(b"HTTP/1.1 200") and body.endswith(b"activated\n"),
                "the connection that activated wharfd is served")
        m = notify.wait_for("READY=1")
        c.check(m is not None and ("MAINPID=%d" % p.pid) in m, "READY=1 with MAINPID: %r" % m)
        read = lambda: open(log).read() if os.path.exists(log) else ""
        c.check(re.search(r"listening on 127\.0\.0\.1:%d" % port, read()) is not None,
                "serves the passed socket")
        c.check("8000" not in read(), "binds nothing of its own: %r" % read())
        c.check(get(port).endswith(b"activated\n"), "second request")
        rc = stop(p)
        c.eq(rc, 0, "exit status")
        c.check(notify.wait_for("STOPPING=1", 3) is not None, "STOPPING=1 at SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
        notify.close()

# --- privilege drop ---
if os.geteuid() != 0:
    print("skip: --user needs root")
else:
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run([WHARFD, "--root", www, "--user", "no-such-user-x"], capture_output=True,
                       text=True, timeout=10)
    c.check(r.returncode == 2 and "no user" in r.stderr, "unknown --user: exit 2: %r" % r.stderr)

    log = os.path.join(tmp, "drop.log")
    pidf = os.path.join(tmp, "wharfd.pid")
    # A port below 1024: bound as root, before the drop.
    low = None
    for cand in range(990, 900, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", cand))
            low = cand
            break
        except OSError:
            pass
        finally:
            s.close()
    p = subprocess.Popen([WHARFD, "--root", www, "--threads", "3", "--bind", "127.0.0.1:%d" % low,
                          "--admin", "127.0.0.1:0", "--user", "nobody", "--pid-file", pidf,
                          "--access-log", "off", "--error-log", log],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    read = lambda: open(log).read() if os.path.exists(log) else ""
    try:
        c.check(wait_log(read, r"listening on 127\.0\.0\.1:%d" % low, 15) is not None,
                "privileged port bound before the drop: " + read())
        c.check(get(low).endswith(b"activated\n"), "serves as nobody")
        time.sleep(0.2)
        tasks = os.listdir("/proc/%d/task" % p.pid)
        c.check(len(tasks) >= 5, "threads to check: %d" % len(tasks))
        bad = []
        for t in tasks:
            st = open("/proc/%d/task/%s/status" % (p.pid, t)).read()
            uid = re.search(r"^Uid:\s+(.*)$", st, re.M).group(1).split()
            gid = re.search(r"^Gid:\s+(.*)$", st, re.M).group(1).split()
            eff = int(re.search(r"^CapEff:\s+(\w+)", st, re.M).group(1), 16)
            prm = int(re.search(r"^CapPrm:\s+(\w+)", st, re.M).group(1), 16)
            if set(map(int, uid)) != {nobody.pw_uid} or set(map(int, gid)) != {nobody.pw_gid} \
                    or eff or prm:
                bad.append((t, uid, gid, eff, prm))
        c.check(not bad, "every thread: Uid/Gid nobody, CapEff and CapPrm 0: %r" % bad)
        c.check(open(pidf).read().strip() == str(p.pid), "pid file holds the pid")
        c.check("running as user nobody" in read(), "the drop is logged")
        c.eq(stop(p), 0, "exit status as nobody")
        c.check(not os.path.exists(pidf) or open(pidf).read() == "", "pid file removed (or emptied) at exit")
    finally:
        if p.poll() is None:
            p.kill()

    log2 = os.path.join(tmp, "root.log")
    p = subprocess.Popen([WHARFD, "--root", www, "--threads", "1", "--bind", "127.0.0.1:0",
                          "--access-log", "off", "--error-log", log2],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    read2 = lambda: open(log2).read() if os.path.exists(log2) else ""
    c.check(wait_log(read2, r"running as root without --user", 10) is not None,
            "warning when root runs without --user")
    stop(p)
c.done()
