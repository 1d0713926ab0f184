"""Graceful shutdown of examples/echo under load, in every model:
 - SIGTERM while 30 clients ping-pong: every reply a client gets is complete
   (a message the server read is echoed in full before its conn closes; a
   conn closed while idle gives EOF/RST with no partial reply), the process
   exits 0 well within the deadline;
 - a connection that never reads keeps the server busy: it exits at the
   shutdown deadline (tolerance stated below), and a second SIGTERM stops
   it at once.
"""
import os
import signal
import socket
import threading
import time

from rtutil import Failures, Server, connect

f = Failures()
MSG = 1000


def pingpong(addr, stop, results, i):
    partial = 0
    done = 0
    try:
        s = connect(addr)
    except OSError:
        results[i] = ("connect", 0)
        return
    with s:
        while not stop.is_set() or done < 3:
            data = os.urandom(MSG)
            got = b""
            try:
                s.sendall(data)
                while len(got) < MSG:
                    chunk = s.recv(MSG - len(got))
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionResetError, BrokenPipeError):
                if 0 < len(got) < MSG:
                    partial += 1
                break
            if len(got) == MSG:
                if got != data:
                    partial += 1
                done += 1
                continue
            if got:
                partial += 1  # a reply cut short: a lost response
            break  # closed by the server between requests: fine
    results[i] = ("ok", partial, done)


for model in ("reuseport", "exclusive", "oneshot", "dispatch"):
    with Server("echo", "127.0.0.1:0", "--threads", "2", "--model", model,
                "--shutdown-timeout", "8000") as srv:
        stop = threading.Event()
        results = {}
        ts = [threading.Thread(target=pingpong, args=(srv.tcp, stop, results, i)) for i in range(30)]
        [t.start() for t in ts]
        time.sleep(0.5)
        t0 = time.time()
        srv.signal(signal.SIGTERM)
        stop.set()
        rc = srv.wait(10)
        dt = time.time() - t0
        [t.join(10) for t in ts]
        f.check(rc == 0, f"{model}: exit code {rc} after SIGTERM under load")
        f.check(dt < 5, f"{model}: graceful exit took {dt:.1f}s (deadline 8 s, all conns idle)")
        bad = [r for r in results.values() if r[0] != "ok" or r[1]]
        f.check(not bad, f"{model}: lost or partial replies: {bad[:3]}")
        f.check(sum(r[2] for r in results.values() if r[0] == "ok") > 30,
                f"{model}: load actually ran")
    print(f"{model}: graceful under load ok", flush=True)


def stuck_client(addr):
    """A client that sends a lot and never reads: the server's queue stays full."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(addr)
    s.setblocking(False)
    junk = b"x" * (1 << 20)
    for _ in range(16):
        try:
            s.send(junk)
        except BlockingIOError:
            break
    return s


# Deadline: one SIGTERM, a never-reading client; exit 0 at about 1.5 s.
with Server("echo", "127.0.0.1:0", "--threads", "2", "--shutdown-timeout", "1500") as srv:
    c = stuck_client(srv.tcp)
    time.sleep(0.2)
    t0 = time.time()
    srv.signal(signal.SIGTERM)
    rc = srv.wait(10)
    dt = time.time() - t0
    c.close()
    f.check(rc == 0, f"deadline: exit code {rc}")
    # State check, not a benchmark: the deadline is 1.5 s; allow 1.0 .. 4.0 s.
    f.check(1.0 <= dt <= 4.0, f"deadline: exited after {dt:.2f}s (deadline 1.5 s)")

# Second signal: deadline 30 s, but the second SIGTERM stops it at once.
with Server("echo", "127.0.0.1:0", "--threads", "2", "--shutdown-timeout", "30000") as srv:
    c = stuck_client(srv.tcp)
    time.sleep(0.2)
    srv.signal(signal.SIGTERM)
    f.check(srv.wait(1.0) is None, "second signal: still draining after the first")
    t0 = time.time()
    srv.signal(signal.SIGTERM)
    rc = srv.wait(10)
    dt = time.time() - t0
    c.close()
    f.check(rc == 0, f"second signal: exit code {rc}")
    f.check(dt < 3, f"second signal: exited after {dt:.2f}s")

f.finish()
