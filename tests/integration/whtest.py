"""Shared helpers for wharf integration tests (standard library only).

    from whtest import binary, free_port, Proc, rss_kb, wait_port, check

    with Proc([binary("echo_net"), "127.0.0.1:0"], ready=r"listen tcp (\\S+)") as p:
        host, port = split_addr(p.match.group(1))
        ...

Everything a test starts is killed when the `with` block ends, at interpreter
exit, and on SIGTERM from CTest's timeout. Timing never decides a verdict:
the waits here are generous upper bounds.
"""
import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("WH_BUILD_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SOURCE = os.environ.get("WH_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

_live = []


def _kill_all(*_):
    for p in list(_live):
        p.stop()


atexit.register(_kill_all)


def _on_term(signum, frame):
    _kill_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def binary(name):
    """Path of a program in the build dir; fails the test if it is missing."""
    path = os.path.join(BUILD, name)
    if not os.path.exists(path):
        sys.exit(f"missing binary {path} (set WH_BUILD_DIR)")
    return path


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that was free a moment ago (prefer letting the server bind port 0)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def split_addr(s):
    """'127.0.0.1:80' / '[::1]:80' -> (host, port); 'unix:/p' -> '/p'."""
    if s.startswith("unix:"):
        p = s[5:]
        return "\0" + p[1:] if p.startswith("@") else p
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def wait_port(host, port, timeout=10.0):
    """Waits until a TCP connect to host:port succeeds."""
    end = time.time() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.time() < end:
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} not accepting after {timeout}s")


def rss_kb(pid):
    """Resident set size of a process in KiB (from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Proc:
    """A started program. ready: a regex matched against stdout lines; start
    waits for it (self.match) and fails with the program's stderr if the
    program exits or the timeout passes first. preexec: e.g. lowering limits."""

    def __init__(self, argv, ready=None, timeout=10.0, env=None, preexec_fn=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, preexec_fn=preexec_fn)
        _live.append(self)
        self.lines = []
        self.match = None
        if ready:
            rx = re.compile(ready)
            end = time.time() + timeout
            while self.match is None:
                if time.time() > end:
                    self.stop()
                    raise TimeoutError(f"{argv[0]}: no line matching {ready!r}")
                line = self.proc.stdout.readline()
                if not line:
                    err = self.stop()
                    raise RuntimeError(f"{argv[0]} exited early: {err}")
                self.lines.append(line.rstrip("\n"))
                self.match = rx.search(line)

    def readline_match(self, pattern, timeout=10.0):
        """Reads stdout until a line matches pattern; returns the match."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        while time.time() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            m = rx.search(line)
            if m:
                return m
        raise TimeoutError(f"no line matching {pattern!r}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stops the program (sig, then SIGKILL); returns its stderr text."""
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            return self.proc.stderr.read() or ""
        except (ValueError, OSError):
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


_failures = []


def check(cond, what):
    """Records a failed check (printed by finish()) without stopping the test."""
    if not cond:
        _failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return cond


def finish():
    """Exit status for the test: 0 if every check passed."""
    if _failures:
        print(f"{len(_failures)} check(s) failed")
        sys.exit(1)
    print("ok")
    sys.exit(0)
