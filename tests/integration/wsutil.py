"""Helpers for the WebSocket integration tests: start a server binary and
read its bound address, and a raw-socket WebSocket client that can send any
frame, malformed ones included (RFC 6455 §5).

With WH_TEST_TLS=1 (tlsutil.tls_mode()) the clients here speak TLS, trusting
the test CA (tlsutil.shared_pki()), and tls_server_args() gives the
--tls-cert/--tls-key options that make examples/ws_echo listen with TLS."""
import base64
import hashlib
import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

from tlsutil import shared_pki, tls_mode

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BUILD = os.environ.get("WH_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))


class Server:
    """Runs a server and waits for the line announcing its address: by
    default "listening HOST:PORT" on stdout (examples/ws_echo); wharfd logs
    "... listening on HOST:PORT" on stderr (stream="stderr"). Kills it on exit."""

    def __init__(self, argv, pattern=r"^listening \S*:(\d+)$", stream="stdout", env=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        self.other = self.proc.stderr if stream == "stdout" else self.proc.stdout
        self.port = None
        deadline = time.time() + 10
        buf = b""
        fd = pipe.fileno()
        while time.time() < deadline and self.port is None:
            # os.read, not readline: a buffered reader may hold lines that
            # select() no longer reports.
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    m = re.search(pattern, line.strip())
                    if m:
                        self.port = int(m.group(1))
                        break
            elif self.proc.poll() is not None:
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("server did not start: %r" % buf)
        # Keep draining the pipes so a chatty server never blocks on them;
        # stderr is kept to spot sanitizer reports.
        self.err = bytearray(buf if stream == "stderr" else b"")
        self.threads = [threading.Thread(target=self._drain, args=(p, p is self.proc.stderr),
                                         daemon=True) for p in (self.proc.stdout, self.proc.stderr)]
        for t in self.threads:
            t.start()

    def _drain(self, p, keep):
        try:
            while True:
                chunk = os.read(p.fileno(), 65536)
                if not chunk:
                    break
                if keep:
                    self.err += chunk
        except (OSError, ValueError):
            pass

    def sanitizer_report(self):
        """The sanitizer report the server printed, or None."""
        text = bytes(self.err).decode(errors="replace")
        for mark in ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "runtime error:",
                     "ERROR: LeakSanitizer"):
            if mark in text:
                return text[text.index(mark) - 200 if text.index(mark) > 200 else 0:][:4000]
        return None

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(signal.SIGTERM)
        for t in getattr(self, "threads", []):
            t.join(timeout=5)
        report = self.sanitizer_report()
        if report and exc[0] is None:
            raise AssertionError("server sanitizer report:\n" + report)


def tls_server_args():
    """Options for examples/ws_echo: its listener uses the shared test
    certificate in TLS mode, none otherwise."""
    if not tls_mode():
        return []
    cert, key = shared_pki().server
    return ["--tls-cert", cert, "--tls-key", key]


def client_ssl():
    """An ssl context trusting the test CA in TLS mode, else None. The
    certificate names localhost (and 127.0.0.1), so clients pass
    server_hostname="localhost"."""
    return shared_pki().client_context() if tls_mode() else None


def ws_uri(port, path="/echo"):
    return "%s://127.0.0.1:%d%s" % ("wss" if tls_mode() else "ws", port, path)


def open_socket(port, timeout=5):
    """A connected socket to 127.0.0.1:port; in TLS mode the handshake is
    done and the socket encrypts (raw frames then travel inside TLS)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_mode():
        try:
            s = client_ssl().wrap_socket(s, server_hostname="localhost")
        except BaseException:
            s.close()
            raise
    return s


# What a read may raise when the peer closes or resets a TLS connection
# without close_notify, besides the plain-socket errors.
EOF_ERRORS = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def http_exchange(port, request, timeout=5):
    """Sends raw bytes, returns (status, {lower-name: value}, body-so-far)."""
    s = open_socket(port, timeout)
    try:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            n, v = l.split(":", 1)
            headers[n.strip().lower()] = v.strip()
    return status, headers, body


def upgrade_request(path="/echo", key="dGhlIHNhbXBsZSBub25jZQ==", version="13", method="GET",
                    http="HTTP/1.1", extra=""):
    lines = ["%s %s %s" % (method, path, http), "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: " + version)
    req = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return req.encode()


def frame(op, payload=b"", fin=True, mask=True, rsv=0, key=b"\x12\x34\x56\x78"):
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, mbit | n])
    elif n < 65536:
        h = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        h += key
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return h + payload


class RawWS:
    """A WebSocket client on a plain (or, in TLS mode, a TLS) socket:
    handshake, then any frames."""

    def __init__(self, port, path="/echo", timeout=5, extra=""):
        self.sock = open_socket(port, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(upgrade_request(path, key=key, extra=extra))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed during handshake")
            data += chunk
        head, _, self.buf = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for l in lines[1:]:
            n, v = l.split(":", 1)
            self.headers[n.strip().lower()] = v.strip()
        if self.status == 101:
            assert self.headers["sec-websocket-accept"] == accept_for(key), self.headers

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, op, payload=b"", **kw):
        self.sock.sendall(frame(op, payload, **kw))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv_frame(self):
        """(fin, opcode, payload), or None at EOF. Server frames are unmasked."""
        try:
            if not self._need(2):
                return None
            b0, b1 = self.buf[0], self.buf[1]
            assert not (b1 & 0x80), "server frame is masked"
            n, p = b1 & 0x7F, 2
            if n == 126:
                if not self._need(4):
                    return None
                n, p = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if not self._need(10):
                    return None
                n, p = struct.unpack(">Q", self.buf[2:10])[0], 10
            if not self._need(p + n):
                return None
            payload = self.buf[p:p + n]
            self.buf = self.buf[p + n:]
            return bool(b0 & 0x80), b0 & 0x0F, payload
        except EOF_ERRORS + (socket.timeout,):
            return None

    def recv_close(self):
        """Reads until a close frame; returns (code or None, reason) or None at EOF."""
        while True:
            f = self.recv_frame()
            if f is None:
                return None
            if f[1] == 8:
                pl = f[2]
                if len(pl) >= 2:
                    return struct.unpack(">H", pl[:2])[0], pl[2:]
                return None, b""

    def at_eof(self, timeout=5):
        """True if the server closes the TCP connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except EOF_ERRORS:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
