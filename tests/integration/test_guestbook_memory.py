#!/usr/bin/env python3
"""Slow readers of a full guestbook page (issue 20: a generated page copied
into every connection's write queue).

wharfd (embedded store) gets 100 entries of escaped quotes, so a page is
~670 KB. Then 40 connections with a 4 KiB receive buffer each pipeline 16
GETs of the page (~10 MiB each, ~430 MB in all) and read nothing. More than
the kernel's send buffers take (4 MiB a socket at most), so the rest is
wharfd's to hold: one copy per response when pages were copied (~270 MB
here), one shared copy now (the entries are sent by reference and no
further pipelined request is parsed while a connection's output is above
its high watermark). Asserts wharfd's RSS grows by less than 64 MiB, that
readers who then read get every page whole, and that all of it is given
back when they leave."""
# WH_TEST_LABELS: slow
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gbutil  # noqa: E402
from gbutil import Checker, Wharfd, page, post  # noqa: E402
from whtest import rss_kb  # noqa: E402

# Under AddressSanitizer freed memory waits in a quarantine before reuse.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=4"]))
CONNS, PIPELINE = 40, 16
REQ = b"GET /guestbook HTTP/1.1\r\nHost: x\r\n\r\n"


def slow_reader(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(REQ * PIPELINE)
    return s


def read_pages(s, n, timeout=20):
    """Reads n responses; how many were 200 with a whole page."""
    s.settimeout(timeout)
    buf, got = b"", 0
    end = time.time() + timeout
    while n and time.time() < end:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1").lower()
            clen = int(head.split("content-length:")[1].split("\r\n")[0])
            need = head_end + 4 + clen
            if len(buf) >= need:
                if head.startswith("http/1.1 200") and buf[need - 8:need] == b"</html>\n":
                    got += 1
                buf = buf[need:]
                n -= 1
                continue
        data = s.recv(1 << 20)
        if not data:
            break
        buf += data
    return got


def main():
    check = Checker()
    with Wharfd([], threads=2) as w:
        for _ in range(100):
            st, _, _ = post(w.port, '"' * 64, '"' * 1024)
            if st != 303:
                break
        st, _, text = page(w.port)
        page_len = len(text.encode())
        check(st == 200 and page_len > 600_000, "a full page of quotes (%d bytes)" % page_len)
        pid = w.proc.pid
        for _ in range(3):  # warm: the cached entries part, allocator pools
            page(w.port)
        time.sleep(0.3)
        base = rss_kb(pid)
        socks = [slow_reader(w.port) for _ in range(CONNS)]
        peak = base
        for _ in range(20):  # 2 s: the queues fill as far as they will
            time.sleep(0.1)
            peak = max(peak, rss_kb(pid))
        grown = (peak - base) / 1024
        print("RSS %.1f MiB before, %.1f MiB at the peak (+%.1f) with %d readers of %d pages"
              % (base / 1024, peak / 1024, grown, CONNS, PIPELINE))
        check(grown < 64, "RSS grows by less than 64 MiB (+%.1f MiB)" % grown)
        # Readers who read get every page, whole, in order.
        got = sum(read_pages(s, PIPELINE) for s in socks[:2])
        check(got == 2 * PIPELINE, "two readers that read get all %d pages (%d)"
              % (2 * PIPELINE, got))
        for s in socks:
            s.close()
        time.sleep(1.0)
        after = rss_kb(pid)
        check((after - base) / 1024 < 16, "memory given back after they left (+%.1f MiB)"
              % ((after - base) / 1024))
        st, _, _ = gbutil.http(w.port, "GET", "/index.html")
        check(st == 200, "wharfd still serves")
    check(w.clean_exit(), "wharfd exits cleanly (%s)" % w.returncode)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
