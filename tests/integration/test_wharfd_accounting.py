#!/usr/bin/python3
"""Every request accounted for (issue 20, defect 3), wharfd on loopback:

  - an access-log line longer than the 64 KiB cap after escaping is cut,
    ends its cut field in "...[truncated]", keeps its status, and is counted
    in wharfd_access_log_truncated_lines_total (not in the dropped counter);
  - requests the engine refuses itself (400 for a malformed request line,
    431 for a huge header) and WebSocket upgrades (101) are in the access
    log and in /metrics;
  - /metrics and /healthz answer GET and HEAD only (405 with Allow);
  - /metrics is absent (404) on the main listener by default, served there
    with --metrics-public, and on --admin.
"""
import base64
import os
import re
import socket
import time

from wharfdutil import Checker, Wharfd, curl, raw_request, raw_status

c = Checker()
FLUSH_S = 1.6  # the access log is handed to its writer thread every second


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def log_lines(w):
    with open(w.access_log, "rb") as f:
        return f.read().split(b"\n")


def main(root):
    with Wharfd(root, "--metrics-public") as w:
        # ---- a line over the cap: cut, marked, counted ----
        agent = b"\xff" * 15000  # 60,000 bytes once escaped as \xFF
        query = b"q=" + b"a" * 7000
        req = (b"GET /index.html?" + query + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + agent +
               b"\r\nReferer: http://ref.example/" + b"r" * 900 + b"\r\nConnection: close\r\n\r\n")
        c.eq(raw_status(raw_request(w.port, req)), 200, "request with a 60 KB (escaped) agent")
        curl(w.base + "/index.html", "-A", "after-the-long-one")
        time.sleep(FLUSH_S)
        lines = log_lines(w)
        long = [l for l in lines if l.startswith(b"127.0.0.1") and b"/index.html?q=aaa" in l]
        c.check(len(long) == 1, "the long request has a line (%d)" % len(long))
        if long:
            l = long[0]
            c.check(len(l) + 1 <= 64 * 1024, "no longer than 64 KiB with its newline (%d)" % len(l))
            c.check(l.endswith(b'...[truncated]"'), "the agent field ends in the marker")
            c.check(b'" 200 ' in l and query in l and b"http://ref.example/" + b"r" * 900 in l,
                    "status, full target and full referer kept: the long field was cut")
            c.check(l.endswith(b'\\xFF...[truncated]"'), "cut between escapes, never inside one")
        c.check(any(b"after-the-long-one" in l for l in lines), "the next line follows it")
        st, _, body = curl(w.base + "/metrics")
        text = body.decode()
        c.eq(metric(text, "wharfd_access_log_truncated_lines_total"), 1.0,
             "wharfd_access_log_truncated_lines_total counts it")
        c.eq(metric(text, "wharfd_access_log_dropped_lines_total"), 0.0,
             "and the dropped-lines counter does not")

        # ---- requests the engine refuses, and upgrades ----
        r400 = raw_request(w.port, b"GARBAGE\r\n\r\n")
        c.eq(raw_status(r400), 400, "malformed request line -> 400")
        r431 = raw_request(w.port, b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Big: " +
                           b"b" * 20000 + b"\r\n\r\n")
        c.eq(raw_status(r431), 431, "20 KB header -> 431")
        key = base64.b64encode(os.urandom(16))
        s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        s.sendall(b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
                  key + b"\r\nUser-Agent: ws-accounting\r\n\r\n")
        c.check(s.recv(4096).startswith(b"HTTP/1.1 101"), "WebSocket upgrade -> 101")
        s.sendall(b"\x88\x82abcd" + bytes(a ^ b for a, b in zip(b"\x03\xe8", b"ab")))  # close 1000
        time.sleep(0.2)
        s.close()
        time.sleep(FLUSH_S)
        lines = log_lines(w)
        c.check(any(re.match(rb'^127\.0\.0\.1 - - \[[^]]+\] "-" 400 ', l) for l in lines),
                'the 400 is in the access log with "-" for the request it could not parse '
                "(needs the engine to report refused requests)")
        c.check(any(b'" 431 ' in l for l in lines), "the 431 is in the access log "
                "(needs the engine to report refused requests)")
        c.check(any(b'"GET /ws/chat HTTP/1.1" 101 ' in l and b"ws-accounting" in l for l in lines),
                "the upgrade is in the access log with status 101 (needs the engine)")
        text = curl(w.base + "/metrics")[2].decode()
        for code in ("400", "431", "101"):
            v = metric(text, "wharfd_http_requests_total", '{code="%s"}' % code)
            c.check(v is not None and v >= 1, "/metrics counts code %s (%s)" % (code, v))

        # ---- methods ----
        for path in ("/metrics", "/healthz"):
            st, h, _ = curl(w.base + path, "-X", "POST")
            allow = h.get("allow", "")
            c.check(st == 405 and "GET" in allow and "HEAD" in allow,
                    "POST %s -> 405, Allow: %s" % (path, allow))
            st, h, _ = curl(w.base + path, "-X", "DELETE")
            c.eq(st, 405, "DELETE %s -> 405" % path)
            resp = raw_request(w.port, b"HEAD " + path.encode() +
                               b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            c.check(raw_status(resp) == 200 and resp.endswith(b"\r\n\r\n"),
                    "HEAD %s -> 200, no body" % path)
        c.eq(w.stop(), 0, "exit 0")

    # ---- where /metrics is served ----
    with Wharfd(root) as w:
        c.eq(curl(w.base + "/metrics")[0], 404, "no --metrics-public: /metrics is 404 on main")
        c.eq(curl(w.base + "/healthz")[0], 200, "/healthz is on the main listener")
        c.check("/metrics is not served" in w.errors(), "the error log says where /metrics is not")
    with Wharfd(root, "--admin", "127.0.0.1:0") as w:
        adm = "http://127.0.0.1:%d" % w.admin_port
        c.eq(curl(w.base + "/metrics")[0], 404, "--admin: /metrics is 404 on main")
        c.eq(curl(w.base + "/healthz")[0], 200, "--admin: /healthz stays on main")
        st, _, body = curl(adm + "/metrics")
        c.check(st == 200 and b"wharfd_access_log_truncated_lines_total" in body,
                "--admin: /metrics there")
        c.eq(curl(adm + "/metrics", "-X", "POST")[0], 405, "--admin: POST /metrics -> 405")
        c.eq(curl(adm + "/healthz")[0], 200, "--admin: /healthz there too")
    conf = os.path.join(root, "..", "metrics.conf")
    with open(conf, "w") as f:
        f.write("metrics-public = yes\n")
    with Wharfd(root, "--config", conf) as w:
        st, _, body = curl(w.base + "/metrics")
        c.check(st == 200 and b"wharfd_http_requests_total" in body,
                "config file: metrics-public = yes serves /metrics on main")
    os.unlink(conf)


if __name__ == "__main__":
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="wharfd_acct_")
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<p>index</p>\n")
    try:
        main(www)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()
