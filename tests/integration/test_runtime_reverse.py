"""examples/reverse (seed 002 done properly): lines come back reversed, in
order; 1 MiB lines are reversed and written completely to a client that reads
slowly (8 MiB of replies force partial writes); "exit" is recognised when it arrives split
across reads ("ex" + "it"), answers "bye" and stops the server with exit 0;
"exit" as part of a longer line does not.
WH_TEST_LABELS: tsan
"""
import os
import socket
import threading
import time

from rtutil import Failures, Server, connect, recv_exact

f = Failures()


def rev_lines(lines):
    return b"".join(l[::-1] + b"\n" for l in lines)


with Server("reverse", "127.0.0.1:0") as srv:
    # Basic lines, CRLF, a line split over three sends.
    with connect(srv.tcp) as s:
        s.sendall(b"hello\r\nworld\n")
        f.check(recv_exact(s, 12) == b"olleh\ndlrow\n", "two lines, CRLF")
        for part in (b"ab", b"cd", b"e\n"):
            s.sendall(part)
            time.sleep(0.05)
        f.check(recv_exact(s, 6) == b"edcba\n", "line split across reads")
        s.sendall(b"\n")
        f.check(recv_exact(s, 1) == b"\n", "empty line")
        # "exit" inside a longer line, or split into a different word, is data.
        s.sendall(b"ex")
        time.sleep(0.05)
        s.sendall(b"iting\nexit now\n")
        f.check(recv_exact(s, 17) == b"gnitixe\nwon tixe\n", "exit-like lines are data")

    # 1 MiB lines, slow reader with a small receive buffer. Eight of them:
    # 8 MiB of replies exceed the server's socket send buffer (tcp_wmem max
    # is 4 MiB), so the kernel takes them piecemeal (partial writes).
    # No "\n" (line end) and no "\r" (a trailing CR is stripped as CRLF,
    # which would make the reply one byte shorter than this test expects).
    big = os.urandom(1 << 20).replace(b"\n", b"x").replace(b"\r", b"y")
    lines = [big[k:] + big[:k] for k in range(0, 8000, 1000)]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # A small window, but larger than loopback's 64 KiB MSS: with a window
        # below one MSS the sender waits on the zero-window persist timer,
        # whose exponential back-off can stall a slow (ASan) run for > 30 s.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 << 10)
        s.connect(srv.tcp)
        s.settimeout(30)
        threading.Thread(target=s.sendall, args=(b"\n".join(lines) + b"\n",), daemon=True).start()
        time.sleep(0.3)  # let the replies pile up against our tiny window
        want = rev_lines(lines)
        got = bytearray()
        while len(got) < len(want):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if len(got) < 200000:
                time.sleep(0.0005)  # slow at first
        f.check(bytes(got) == want, f"8 x 1 MiB lines reversed completely ({len(got)}/{len(want)} bytes)")

    # Concurrent clients, many pipelined lines each: order and content.
    errors = []

    def client(i):
        lines = [b"%d-%d-" % (i, k) + os.urandom(50).hex().encode() for k in range(200)]
        try:
            with connect(srv.tcp) as s:
                s.sendall(b"\n".join(lines) + b"\n")
                want = rev_lines(lines)
                if recv_exact(s, len(want)) != want:
                    errors.append(i)
        except OSError as e:
            errors.append((i, str(e)))

    ts = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    f.check(not errors, f"20 concurrent clients: {errors[:3]}")

    # A client that vanishes with work in flight does not disturb the server.
    with connect(srv.tcp) as s:
        s.sendall(big + b"\n")
    with connect(srv.tcp) as s:
        s.sendall(b"still here\n")
        f.check(recv_exact(s, 11) == b"ereh llits\n", "serves after a vanished client")

    # "exit" split across two reads: bye, then the server stops by itself.
    with connect(srv.tcp) as s:
        s.sendall(b"abc\nex")
        time.sleep(0.2)
        s.sendall(b"it\n")
        f.check(recv_exact(s, 8) == b"cba\nbye\n", "split exit answered with bye")
    rc = srv.wait(10)
    f.check(rc == 0, f"server exits 0 after exit (rc={rc})")

f.finish()
