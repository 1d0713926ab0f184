#!/usr/bin/python3
"""wharfd stops without failing a request.

1. SIGTERM drain (--drain-delay 1.5): /healthz answers 503 at once; a
   keep-alive connection idle at the signal is not closed, and its next
   request is answered, with Connection: close; a request whose head was
   half sent before the signal is answered with Connection: close; a new
   connection during the delay is accepted and served; STOPPING=1 on the
   NOTIFY_SOCKET; exit status 0. A second SIGTERM stops at once.
2. A second instance on the same port (SO_REUSEPORT), then SIGTERM to the
   first, under continuous load with no retries: 0 failed requests. As
   root the test runs this in a network namespace of its own with
   net.ipv4.tcp_migrate_req=1 (the kernel moves connections still queued
   on a closing listener to another one of its group); elsewhere it runs on
   the host's loopback, relying on wharfd's own drain of the queues (the
   kernel's half-open handshakes on the closing socket are then a window:
   at most one failure is tolerated there).
WH_TEST_LABELS: tsan
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from loadclient import Load
from opsutil import Notify, free_port, wait_log
from wharfdutil import WHARFD, Checker, Wharfd

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_drain_")
www = os.path.join(tmp, "www")
os.makedirs(www, exist_ok=True)
with open(os.path.join(www, "index.html"), "w") as f:
    f.write("hello\n")


def request(s, req):
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    head = head.decode("latin-1")
    n = 0
    for line in head.lower().split("\r\n"):
        if line.startswith("content-length:"):
            n = int(line.split(":")[1])
    while len(rest) < n:
        d = s.recv(4096)
        if not d:
            break
        rest += d
    return int(head.split()[1]), head.lower()


def drain_part():
    notify = Notify()
    w = Wharfd(www, "--drain-delay", "1.5", "--shutdown-timeout", "5", env=notify.env())
    try:
        port = w.port
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        st, head = request(idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.check(st == 200 and "connection: close" not in head, "keep-alive before the signal")
        half = socket.create_connection(("127.0.0.1", port), timeout=5)
        half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        t0 = time.time()
        w.signal(signal.SIGTERM)
        time.sleep(0.2)
        hz = socket.create_connection(("127.0.0.1", port), timeout=5)
        st, head = request(hz, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(st, 503, "/healthz during the drain")
        c.check(head is not None and "connection: close" in head, "/healthz says Connection: close")
        hz.close()
        st, head = request(idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(st, 200, "the idle keep-alive connection's next request is answered")
        c.check(head is not None and "connection: close" in head, "... with Connection: close")
        half.sendall(b"\r\n")
        st, head = request(half, b"")
        c.eq(st, 200, "a request in flight at the signal is answered")
        c.check(head is not None and "connection: close" in head, "... with Connection: close")
        time.sleep(0.5)
        late = socket.create_connection(("127.0.0.1", port), timeout=5)
        st, head = request(late, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.eq(st, 200, "a new connection during --drain-delay is served")
        late.close()
        try:
            rc = w.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
        c.eq(rc, 0, "exit status after the drain")
        c.check(time.time() - t0 >= 1.4, "listeners stayed open for --drain-delay")
        c.check(notify.wait_for("STOPPING=1", 2) is not None, "STOPPING=1 sent")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            c.check(False, "port closed after exit")
        except OSError:
            c.check(True, "port closed after exit")
    finally:
        notify.close()
        w.cleanup()


def second_signal_part():
    w = Wharfd(www, "--drain-delay", "5")
    try:
        held = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        request(held, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.time()
        w.signal(signal.SIGTERM)
        time.sleep(0.3)
        w.signal(signal.SIGTERM)
        try:
            rc = w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        c.eq(rc, 0, "a second SIGTERM during the drain stops at once, exit 0")
        c.check(time.time() - t0 < 3, "... without waiting out --drain-delay")
        held.close()
    finally:
        w.cleanup()


def start(port, log):
    p = subprocess.Popen([WHARFD, "--root", www, "--threads", "2", "--bind", "127.0.0.1:%d" % port,
                          "--access-log", "off", "--error-log", log],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    read = lambda: open(log).read() if os.path.exists(log) else ""
    if not wait_log(read, r"listening on", 15):
        p.kill()
        raise RuntimeError("wharfd did not start: " + read())
    return p


def tcp_counters():
    """TcpExt counters of this network namespace (/proc/net/netstat)."""
    out = {}
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().split("\n")
    except OSError:
        return out
    for i in range(0, len(lines) - 1, 2):
        names, vals = lines[i].split(), lines[i + 1].split()
        if names and names[0] == "TcpExt:":
            out.update(zip(names[1:], (int(v) for v in vals[1:])))
    return out


# What tells a reset's origin apart: the kernel failing to move a queued
# connection (MigrateReqFailure), a listener's queue overflowing, or a close
# with unread input (AbortOnData/AbortOnClose).
WATCH = ("TCPMigrateReqSuccess", "TCPMigrateReqFailure", "ListenOverflows", "ListenDrops",
         "TCPAbortOnData", "TCPAbortOnClose", "TCPAbortOnTimeout")


def reuseport_part():
    migrate = "unknown"
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as f:
            migrate = f.read().strip()
    except OSError:
        pass
    print("net.ipv4.tcp_migrate_req = %s" % migrate)
    port = free_port()
    before = tcp_counters()
    a = start(port, os.path.join(tmp, "a.log"))
    b = None
    try:
        with Load(port) as load:
            time.sleep(1.0)
            b = start(port, os.path.join(tmp, "b.log"))  # joins the SO_REUSEPORT group
            print("second instance started at %.6f" % time.time())
            time.sleep(1.0)
            a.send_signal(signal.SIGTERM)
            print("SIGTERM to the first at %.6f" % time.time())
            try:
                rc = a.wait(timeout=20)
            except subprocess.TimeoutExpired:
                rc = None
            print("first exited at %.6f" % time.time())
            time.sleep(1.0)
        print(load.summary())
        after = tcp_counters()
        print("TcpExt deltas: " + ", ".join("%s %d" % (k, after.get(k, 0) - before.get(k, 0))
                                            for k in WATCH))
        c.eq(rc, 0, "first instance exits 0")
        if migrate == "1":
            c.eq(load.failed, 0, "failed requests: second instance + SIGTERM to the first")
        else:
            # Without request migration the kernel resets what it holds for a
            # closing listener that wharfd cannot accept (a handshake half
            # done): a window of a few microseconds, seen once in 5 closes
            # under this load. Only a run as root (own namespace) can set it.
            c.check(load.failed <= 1, "failed requests without tcp_migrate_req: %d (at most "
                    "the kernel's window, README)" % load.failed)
        c.check(load.ok > 200, "requests served (%d)" % load.ok)
        if load.failed:
            for name in ("a.log", "b.log"):
                with open(os.path.join(tmp, name)) as f:
                    print("--- %s\n%s" % (name, f.read()[-3000:]))
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=20)


if len(sys.argv) > 1 and sys.argv[1] == "--netns":
    # Inside our own network namespace (see below).
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/tcp_migrate_req", "w") as f:
        f.write("1\n")
    reuseport_part()
    c.done()

drain_part()
second_signal_part()
if os.geteuid() == 0 and not os.environ.get("WH_OPS_NO_NETNS") and \
        os.path.exists("/proc/sys/net/ipv4/tcp_migrate_req") and \
        subprocess.run(["unshare", "--net", "true"]).returncode == 0:
    r = subprocess.run(["unshare", "--net", sys.executable, os.path.abspath(__file__), "--netns"],
                       timeout=120)
    c.eq(r.returncode, 0, "reuseport hand-over in a network namespace with tcp_migrate_req=1")
else:
    reuseport_part()
c.done()
