"""Helpers for the HTTP engine's integration tests: start examples/hello on a
free port, talk raw HTTP over sockets, and always stop what was started."""
import os
import signal
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("WH_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")


class Hello:
    """examples/hello on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, *args):
        exe = os.path.join(BUILD, "hello")
        self.proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError("hello did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(line.split(":")[-1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_responses(sock, count, timeout=5.0):
    """Reads count HTTP/1.1 responses (Content-Length or chunked framed,
    bodyless for 1xx/204/304). Returns (list of (status, headers, body), eof)."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    eof = False

    def more():
        nonlocal buf, eof
        d = sock.recv(65536)
        if not d:
            eof = True
            return False
        buf += d
        return True

    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            if not more():
                return out, eof
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        buf = rest
        body = b""
        if "content-length" in hdrs and not (status < 200 or status in (204, 304)):
            n = int(hdrs["content-length"])
            while len(buf) < n:
                if not more():
                    return out, eof
            body, buf = buf[:n], buf[n:]
        elif hdrs.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in buf:
                    if not more():
                        return out, eof
                line, buf = buf.split(b"\r\n", 1)
                n = int(line.split(b";")[0], 16)
                while len(buf) < n + 2:
                    if not more():
                        return out, eof
                body += buf[:n]
                buf = buf[n + 2:]
                if n == 0:
                    break
        out.append((status, hdrs, body))
    return out, eof


def wait_eof(sock, timeout=5.0):
    """True if the peer closes within timeout (data before EOF is dropped)."""
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failed += 1

    def exit(self):
        sys.exit(1 if self.failed else 0)
