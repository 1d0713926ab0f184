"""Helpers for the zero-downtime tests: processes that are not our children
(the new wharfd of an upgrade), a NOTIFY_SOCKET listener, log waits."""
import os
import re
import signal
import socket
import tempfile
import time


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_gone(pid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def stop_pid(pid, timeout=15):
    """SIGTERM, then SIGKILL; for processes that are not our children."""
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_gone(pid, timeout):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 5)


def wait_log(read, pattern, timeout=15, after=0):
    """Waits until read()[after:] matches pattern; returns the match or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, read()[after:])
        if m:
            return m
        time.sleep(0.05)
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Notify:
    """A NOTIFY_SOCKET, as systemd binds it: a Unix datagram socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wharfd_notify_")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []

    def env(self, base=None):
        e = dict(base or os.environ)
        e["NOTIFY_SOCKET"] = self.path
        return e

    def poll(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def wait_for(self, needle, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in self.poll():
                if needle in m:
                    return m
            time.sleep(0.05)
        return None

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass
