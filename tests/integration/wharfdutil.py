"""Helpers for the wharfd integration tests: start the real daemon on a free
loopback port, talk to it with curl and raw sockets, stop it by PID."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from tlsutil import shared_pki, tls_mode

BUILD = os.environ.get("WH_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("WH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
WHARFD = os.path.join(BUILD, "wharfd")


class Wharfd:
    """A running wharfd; logs go to files in self.dir."""

    def __init__(self, root, *args, threads=2, access_log=True, env=None, prefix=()):
        self.dir = tempfile.mkdtemp(prefix="wharfd_test_")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        cmd = list(prefix) + [WHARFD, "--root", root, "--threads", str(threads),
                              "--error-log", self.error_log,
                              "--access-log", self.access_log if access_log else "off"]
        if not any(a == "--bind" for a in args):
            # WH_TEST_TLS=1: the same tests over an https:// listener.
            cmd += ["--bind", "https://127.0.0.1:0" if tls_mode() else "127.0.0.1:0"]
        if tls_mode() and not any(a == "--tls-cert" for a in args):
            cert, key = shared_pki().server
            cmd += ["--tls-cert", cert, "--tls-key", key]
        if "--data" not in args:  # the guestbook's database: this instance's own
            cmd += ["--data", os.path.join(self.dir, "data")]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env)
        self.port = None
        self.admin_port = None
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode()
                raise RuntimeError("wharfd exited %d: %s %s" % (self.proc.returncode, err,
                                                                 self.errors()))
            m = re.findall(r"listening on 127\.0\.0\.1:(\d+)( \(admin\))?", self.errors())
            main = [p for p, a in m if not a]
            adm = [p for p, a in m if a]
            if main and ("--admin" not in args or adm):
                self.port = int(main[0])
                self.admin_port = int(adm[0]) if adm else None
                break
            time.sleep(0.05)
        if not self.port:
            self.stop()
            raise RuntimeError("wharfd did not report a listening port: " + self.errors())
        self.base = "%s://127.0.0.1:%d" % ("https" if tls_mode() else "http", self.port)

    def errors(self):
        try:
            with open(self.error_log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM, wait (graceful), return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            if self.proc.returncode != 0:  # sanitizer reports, late errors
                sys.stdout.write(self.proc.stderr.read().decode(errors="replace"))
            self.proc.stderr.close()
            self.proc.stderr = None
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def curl(url, *args, timeout=60):
    """Runs curl; returns (status, headers dict lower-case -> last value, body bytes)."""
    with tempfile.NamedTemporaryFile() as hdr, tempfile.NamedTemporaryFile() as body:
        cmd = ["curl", "-s", "-S", "--max-time", str(timeout), "-D", hdr.name, "-o", body.name,
               *args, url]
        if url.startswith("https:"):
            cmd[1:1] = ["--cacert", shared_pki().ca]
        subprocess.run(cmd, check=True, timeout=timeout + 5)
        raw = open(hdr.name, "rb").read().decode("latin-1")
        data = open(body.name, "rb").read()
    blocks = [b for b in raw.split("\r\n\r\n") if b.strip()]
    last = blocks[-1].split("\r\n") if blocks else [""]
    status = int(last[0].split()[1]) if last[0] else 0
    headers = {}
    for line in last[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers, data


def raw_request(port, data, timeout=5):
    """Sends raw bytes, reads until the server closes or times out."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_mode():
        s = shared_pki().client_context().wrap_socket(s, server_hostname="localhost")
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and b"Connection: close" not in out:
                # keep-alive answer: stop once the declared body arrived
                head, _, rest = out.partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
        return out
    finally:
        s.close()


def raw_status(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else 0


class Checker:
    """Collects failures so one run reports all of them."""

    def __init__(self):
        self.failed = 0

    def check(self, cond, what):
        if cond:
            print("ok   " + what)
        else:
            print("FAIL " + what)
            self.failed += 1

    def eq(self, a, b, what):
        self.check(a == b, "%s (%r == %r)" % (what, a, b))

    def done(self):
        print("%d failure(s)" % self.failed)
        sys.exit(1 if self.failed else 0)
