"""Networking layer end to end: the single-threaded echo_net example against
real Python clients. Echo of 1 byte to 64 MiB, 200 concurrent clients, IPv6,
Unix sockets (path and abstract), UDP v4/v6, a slow reader (server memory
stays bounded), a client that vanishes mid-write (server unharmed)."""
import os
import selectors
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from whtest import Proc, binary, check, finish, rss_kb, split_addr  # noqa: E402

# Under AddressSanitizer freed memory waits in a quarantine (256 MiB) before
# reuse, which the slow-reader check would read as growth: keep it small, as
# the other memory tests do (no effect otherwise).
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=4"]))

pid = os.getpid()
upath = f"/tmp/wh-net-echo-{pid}.sock"
argv = [binary("echo_net"), "127.0.0.1:0", "[::1]:0", f"unix:{upath}", f"unix:@wh-net-echo-{pid}",
        "udp://127.0.0.1:0", "udp://[::1]:0"]


def pattern(n, seed=0):
    base = bytes((i * 31 + seed) & 0xFF for i in range(65536))
    reps, rest = divmod(n, len(base))
    return base * reps + base[:rest]


def stream_echo(family, addr, data, timeout=60):
    """Sends data on one thread, reads the echo on this one; returns it."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    err = []

    def send():
        try:
            s.sendall(data)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    got = bytearray()
    while len(got) < len(data):
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
    t.join()
    s.close()
    return bytes(got)


def main():
    with Proc(argv, ready=r"^ready") as p:
        addrs = {}
        for line in p.lines:
            parts = line.split()
            if parts[0] == "listen":
                addrs.setdefault(parts[1], []).append(parts[2])
        v4 = split_addr(addrs["tcp"][0])
        v6 = split_addr(addrs["tcp"][1])

        # 1 byte .. 64 MiB over IPv4
        for n in (1, 2, 1000, 65536, 1 << 20, 64 << 20):
            data = pattern(n, n & 0xFF)
            got = stream_echo(socket.AF_INET, v4, data)
            check(got == data, f"echo {n} bytes over IPv4 (got {len(got)})")

        # IPv6 and Unix sockets (path and abstract)
        data = pattern(300000, 7)
        check(stream_echo(socket.AF_INET6, v6, data) == data, "echo over IPv6 ::1")
        check(stream_echo(socket.AF_UNIX, upath, data) == data, "echo over a Unix socket path")
        check(stream_echo(socket.AF_UNIX, f"\0wh-net-echo-{pid}", data) == data,
              "echo over an abstract Unix socket")

        # UDP v4 and v6
        for fam, a in ((socket.AF_INET, split_addr(addrs["udp"][0])),
                       (socket.AF_INET6, split_addr(addrs["udp"][1]))):
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.settimeout(5)
            ok = True
            for i in range(50):
                msg = b"dgram-%d" % i
                u.sendto(msg, a)
                try:
                    r, _ = u.recvfrom(100)
                except socket.timeout:
                    r = b""
                ok = ok and r == msg
            check(ok, f"UDP echo family {fam}")
            u.close()

        # 200 concurrent clients, 10 KiB each, all in flight at once
        sel = selectors.DefaultSelector()
        clients = []
        for i in range(200):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.connect(v4)
            c.setblocking(False)
            st = {"sock": c, "out": pattern(10240, i), "off": 0, "in": bytearray()}
            clients.append(st)
            sel.register(c, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        end = time.time() + 60
        pending = len(clients)
        while pending and time.time() < end:
            for key, ev in sel.select(1):
                st = key.data
                if ev & selectors.EVENT_WRITE and st["off"] < len(st["out"]):
                    st["off"] += st["sock"].send(st["out"][st["off"]:])
                    if st["off"] == len(st["out"]):
                        sel.modify(st["sock"], selectors.EVENT_READ, st)
                if ev & selectors.EVENT_READ:
                    b = st["sock"].recv(65536)
                    st["in"] += b
                    if len(st["in"]) >= len(st["out"]) or not b:
                        sel.unregister(st["sock"])
                        pending -= 1
        check(all(bytes(st["in"]) == st["out"] for st in clients), "200 concurrent clients echoed")
        for st in clients:
            st["sock"].close()

        # slow reader: sends a lot, reads nothing; the server stops reading
        # at its high watermark, so its memory stays bounded
        rss0 = rss_kb(p.pid)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.connect(v4)
        slow.setblocking(False)
        chunk = b"s" * 65536
        sent = 0
        stalled = 0
        t_end = time.time() + 20
        while time.time() < t_end and stalled < 20:
            try:
                sent += slow.send(chunk)
                stalled = 0
            except BlockingIOError:
                stalled += 1
                time.sleep(0.05)
        rss1 = rss_kb(p.pid)
        print(f"slow reader: sent {sent >> 10} KiB before the server stopped reading; "
              f"server RSS {rss0} -> {rss1} KiB")
        check(sent < 256 << 20, "a non-reading client cannot push unbounded data")
        check(rss1 - rss0 < 16 * 1024, f"server RSS bounded with a slow reader (+{rss1 - rss0} KiB)")
        # now read it all back: nothing was lost
        slow.setblocking(True)
        slow.settimeout(30)
        got = 0
        while got < sent:
            b = slow.recv(1 << 20)
            if not b:
                break
            got += len(b)
        check(got == sent, f"slow reader gets every byte back ({got} of {sent})")
        slow.close()

        # a client that vanishes mid-write (RST with data in flight both ways)
        for _ in range(5):
            v = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            v.connect(v4)
            v.settimeout(5)
            try:
                v.sendall(pattern(4 << 20))
            except OSError:
                pass
            v.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            v.close()
        time.sleep(0.2)
        check(p.alive(), "server survives clients vanishing mid-write")
        data = pattern(5000, 3)
        check(stream_echo(socket.AF_INET, v4, data) == data, "server still serves afterwards")

        err = p.stop()
        check(p.proc.returncode == 0, f"clean exit on SIGTERM (rc {p.proc.returncode}) {err}")
    check(not os.path.exists(upath), "Unix socket path removed at exit")
    finish()


if __name__ == "__main__":
    main()
