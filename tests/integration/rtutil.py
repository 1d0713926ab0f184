"""Helpers for the runtime's integration tests (tests/integration/test_runtime_*.py).

Starts wharf example programs on free ports (port 0, the program prints the
bound addresses), talks to them with plain sockets, and always stops what it
started (by PID), also when a test fails.
"""
import os
import signal
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("WH_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "build")


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.path.exists(path):
        sys.exit(f"missing binary {path} (set WH_BUILD_DIR)")
    return path


class Server:
    """A program that prints 'tcp HOST:PORT' / 'udp HOST:PORT' lines at start."""

    def __init__(self, name, *args, want=("tcp",)):
        self.proc = subprocess.Popen([binary(name), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.addrs = {}
        deadline = time.time() + 10
        while not all(k in self.addrs for k in want):
            if time.time() > deadline or self.proc.poll() is not None:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                err = self.proc.stderr.read()
                self.stop()
                raise RuntimeError(f"{name} did not start: {err.strip()}")
            line = self.proc.stdout.readline()
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("tcp", "udp"):
                host, port = parts[1].rsplit(":", 1)
                self.addrs[parts[0]] = (host.strip("[]"), int(port))

    @property
    def tcp(self):
        return self.addrs["tcp"]

    @property
    def udp(self):
        return self.addrs["udp"]

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def connect(addr, timeout=10):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_until_eof(s, limit=1 << 30):
    buf = bytearray()
    while len(buf) < limit:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


class Failures:
    """Collects check failures; exit(1) with a summary at the end."""

    def __init__(self):
        self.bad = []

    def check(self, cond, what):
        if not cond:
            self.bad.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def finish(self):
        if self.bad:
            print(f"{len(self.bad)} failure(s)")
            sys.exit(1)
        print("all ok")
