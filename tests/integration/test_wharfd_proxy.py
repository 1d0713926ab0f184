#!/usr/bin/env python3
"""wharfd --proxy-protocol with a raw Python client: PROXY v1 and v2 headers
(valid, with TLVs, IPv6, LOCAL, UNKNOWN), then the refusals (untrusted
source, missing, malformed, unknown v2 command, a header that trickles in
too slowly). Asserts the address each request is logged under, that refused
connections are closed without an answer, the /metrics counters by reason
and the debug log lines."""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from wharfdutil import WHARFD, Checker, Wharfd  # noqa: E402

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, block=b"", tlvs=b""):
    body = block + tlvs
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body


def v2_inet(src, dst, sport, dport):
    return v2(0x21, 0x11, socket.inet_pton(socket.AF_INET, src) +
              socket.inet_pton(socket.AF_INET, dst) + struct.pack(">HH", sport, dport))


def v2_inet6(src, dst, sport, dport, tlvs=b""):
    return v2(0x21, 0x21, socket.inet_pton(socket.AF_INET6, src) +
              socket.inet_pton(socket.AF_INET6, dst) + struct.pack(">HH", sport, dport), tlvs)


def exchange(port, header, path, source="127.0.0.1", timeout=5.0):
    """Sends header + a GET for path; returns (response bytes, seconds until
    the server closed). b"" means closed without an answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    t0 = time.time()
    out = b""
    try:
        s.sendall(header + ("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                            % path).encode())
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        out = b"<timeout>"
    finally:
        s.close()
    return out, time.time() - t0


def status(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3})", resp)
    return int(m.group(1)) if m else 0


def main():
    ck = Checker()
    root = tempfile.mkdtemp(prefix="wharfd_proxy_root_")
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("hello\n")
    with Wharfd(root, "--proxy-protocol", "--proxy-trusted", "127.0.0.1",
                "--proxy-trusted", "10.0.0.0/8", "--proxy-timeout", "400ms",
                "--log-level", "debug", "--admin", "127.0.0.1:0") as w:
        port = w.port
        # ---- accepted headers: the client address is the header's ----
        tlvs = b"\x01\x00\x02h2" + b"\x04\x00\x05\x00\x00\x00\x00\x00"  # ALPN, NOOP
        cases = [
            ("v1", b"PROXY TCP4 203.0.113.7 192.0.2.1 40001 80\r\n", "203.0.113.7"),
            ("v1-tcp6", b"PROXY TCP6 2001:db8::17 2001:db8::1 40002 80\r\n", "2001:db8::17"),
            ("v2", v2_inet("198.51.100.23", "192.0.2.1", 40003, 80), "198.51.100.23"),
            ("v2-ipv6-tlvs", v2_inet6("2001:db8::42", "2001:db8::1", 40004, 80, tlvs),
             "2001:db8::42"),
            ("v2-local", v2(0x20, 0x00), "127.0.0.1"),
            ("v1-unknown", b"PROXY UNKNOWN\r\n", "127.0.0.1"),
        ]
        for name, hdr, _ in cases:
            resp, _ = exchange(port, hdr, "/hello.txt?case=" + name)
            ck.eq(status(resp), 200, "%s: 200" % name)
            ck.check(resp.endswith(b"hello\n"), "%s: body" % name)

        # ---- refusals: closed without a byte of answer ----
        refusals = [
            ("missing", b"", "127.0.0.1"),
            ("malformed", b"PROXY TCP4 203.0.113.7 192.0.2.1 40001 80\n", "127.0.0.1"),
            ("unknown-cmd", v2(0x23, 0x11, b"\0" * 12), "127.0.0.1"),
            ("untrusted", b"PROXY TCP4 203.0.113.66 192.0.2.1 40009 80\r\n", "127.0.0.2"),
        ]
        for name, hdr, src in refusals:
            resp, _ = exchange(port, hdr, "/hello.txt?case=" + name, source=src)
            ck.eq(resp, b"", "%s: closed without an answer" % name)

        # Slowloris on the header: a byte every 100 ms must not extend the
        # 400 ms deadline for the whole header.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t0 = time.time()
        closed_after = None
        for b in b"PROXY TCP4 203.0.113.99 192.0.2.1 40010 80":
            try:
                s.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.time() - t0
                break
            s.settimeout(0.1)
            try:
                if s.recv(1) == b"":
                    closed_after = time.time() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed_after = time.time() - t0
                break
        s.close()
        ck.check(closed_after is not None and 0.35 <= closed_after < 2.0,
                 "slow header closed at the deadline (%s s)" % closed_after)

        # ---- /metrics on --admin: refusals by reason ----
        # (The client sees the close a moment before the worker has counted
        # it: the count lands at the end of that loop iteration. Poll.)
        want = ['wharfd_proxy_rejected_total{reason="%s"} 1' % r
                for r in ("untrusted", "missing", "malformed", "unknown_command", "timeout")]
        deadline = time.time() + 3
        while True:
            m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % w.admin_port,
                                       timeout=5).read().decode()
            if all(x in m for x in want) or time.time() > deadline:
                break
            time.sleep(0.05)
        for x in want:
            ck.check(x in m, "metrics: " + x)

        # ---- the debug log names reason and socket peer ----
        errs = w.errors()
        ck.check(re.search(r"PROXY header refused \(untrusted\) from 127\.0\.0\.2:\d+", errs),
                 "debug log: untrusted from 127.0.0.2")
        ck.check(re.search(r"PROXY header refused \(missing\) from 127\.0\.0\.1:\d+", errs),
                 "debug log: missing")
        w.stop()  # flushes the access log
        with open(w.access_log) as f:
            lines = f.read().splitlines()
        for name, _, want in cases:
            ln = [x for x in lines if ("case=%s " % name) in x]
            ck.check(len(ln) == 1 and ln[0].split(" ")[0] == want,
                     "access log: %s as %s (%s)" % (name, want, ln))
        ck.check(not any("case=" + n in x for x in lines for n, _, _ in refusals),
                 "access log: no refused request")
        ck.check(not any("203.0.113.99" in x for x in lines), "access log: no slow one")

    # ONESHOT moves idle keep-alive connections between threads: the client
    # address goes with them. 12 connections, 4 requests each.
    with Wharfd(root, "--proxy-protocol", "--model", "oneshot", threads=2) as w:
        socks = []
        for i in range(12):
            s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
            s.sendall(b"PROXY TCP4 10.9.0.%d 192.0.2.1 %d 80\r\n" % (i + 1, 2000 + i))
            socks.append(s)
        for _ in range(4):
            for i, s in enumerate(socks):
                s.sendall(b"GET /hello.txt?c=%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
                data = b""
                while not data.endswith(b"hello\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            time.sleep(0.15)  # idle: parked in the shared poller, maybe picked up elsewhere
        for s in socks:
            s.close()
        w.stop()
        with open(w.access_log) as f:
            got = [(int(re.search(r"c=(\d+) ", x).group(1)), x.split(" ")[0])
                   for x in f if "c=" in x]
        ck.check(len(got) == 48 and all(ip == "10.9.0.%d" % (c + 1) for c, ip in got),
                 "oneshot: every request logged under its connection's client (%d)" % len(got))

    # A bad list is a command-line error, not a late failure.
    r = subprocess.run([WHARFD, "--proxy-protocol", "--proxy-trusted", "10.0.0.0/33"],
                       capture_output=True, timeout=10)
    ck.check(r.returncode == 2 and b"--proxy-trusted" in r.stderr, "bad CIDR: exit 2")
    ck.done()


if __name__ == "__main__":
    main()
