"""A continuous HTTP load with no retries, for the zero-downtime tests.

Two kinds of slots, each a thread:
  - keep-alive: one connection, one request after the other on it; a
    response that says Connection: close ends the connection (that is the
    server's right), and the next request opens a new one;
  - new connection: a connection per request (Connection: close).
A request fails when anything goes wrong between connect and the last byte
of the answer: refused, reset, EOF before a whole response, timeout, or a
status other than the expected one. A failed request is counted and never
retried; the slot goes on with a new connection."""
import socket
import threading
import time


class Load:
    def __init__(self, port, keepalive=8, newconn=4, path="/", host="127.0.0.1", timeout=5.0,
                 expect=200):
        self.port, self.path, self.host, self.timeout = port, path, host, timeout
        self.expect = expect
        self.ok = 0
        self.failed = 0
        self.closes = 0  # responses that said Connection: close on a keep-alive slot
        self.errors = []  # (kind, description) of the first failures
        self.bodies = {}  # body -> count, to see which server answered
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._ka, daemon=True) for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._nc, daemon=True) for _ in range(newconn)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 5)

    def total(self):
        with self.lock:
            return self.ok + self.failed

    def _count(self, ok, kind="", why="", body=None, close=False):
        with self.lock:
            if ok:
                self.ok += 1
                if body is not None:
                    self.bodies[body] = self.bodies.get(body, 0) + 1
                if close:
                    self.closes += 1
            else:
                self.failed += 1
                if len(self.errors) < 20:
                    self.errors.append((kind, why))

    def _connect(self):
        s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _read_response(self, s, buf):
        """Reads one response from s; returns (status, headers, body, rest)."""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise ConnectionError("EOF before the response head (%d bytes)" % len(buf))
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                raise ConnectionError("EOF in the body")
            rest += d
        return status, headers, rest[:n], rest[n:]

    def _ka(self):
        s, buf, used = None, b"", 0
        req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.path).encode()
        while not self.stop_ev.is_set():
            try:
                if s is None:
                    s, buf, used = self._connect(), b"", 0
                used += 1
                s.sendall(req)
                status, headers, body, buf = self._read_response(s, buf)
                close = "close" in headers.get("connection", "").lower()
                if status != self.expect:
                    self._count(False, "keep-alive", "status %d" % status)
                else:
                    self._count(True, body=body, close=close)
                if close:
                    s.close()
                    s = None
            except (OSError, ValueError, IndexError) as e:
                # Which request of its connection failed, and when: a reset
                # on a fresh connection points at the listeners, one on a
                # reused connection at the server's closing of idle ones.
                self._count(False, "keep-alive", "%r on request %d of its connection at %.6f"
                            % (e, used, time.time()))
                if s:
                    s.close()
                s = None
        if s:
            s.close()

    def _nc(self):
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % self.path).encode()
        while not self.stop_ev.is_set():
            s = None
            try:
                s = self._connect()
                s.sendall(req)
                status, headers, body, _ = self._read_response(s, b"")
                if status != self.expect:
                    self._count(False, "new-conn", "status %d" % status)
                else:
                    self._count(True, body=body)
            except (OSError, ValueError, IndexError) as e:
                self._count(False, "new-conn", "%r at %.6f" % (e, time.time()))
            finally:
                if s:
                    s.close()

    def summary(self):
        with self.lock:
            return "%d ok, %d failed, %d closes by the server; bodies %s; first errors %s" % (
                self.ok, self.failed, self.closes, self.bodies, self.errors[:5])
