"""HTTP engine, black box: examples/hello on loopback against curl, Python's
http.client and raw sockets (keep-alive, pipelining, 100-continue, HEAD,
chunked request bodies, bad requests -> status + close, timeouts)."""
import http.client
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httputil import Checks, Hello, connect, read_responses, wait_eof  # noqa: E402

t = Checks()


def curl(*args):
    r = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True)
    return r.returncode, r.stdout


with Hello("--threads", "2", "--keepalive-ms", "700", "--header-timeout-ms", "700") as h:
    base = "http://127.0.0.1:%d" % h.port

    # curl
    rc, out = curl(base + "/plaintext")
    t.check(rc == 0 and out == b"Hello, World!", "curl GET /plaintext")
    rc, out = curl("-i", base + "/plaintext")
    t.check(b"Content-Type: text/plain" in out and b"Content-Length: 13" in out
            and b"Date: " in out, "curl -i headers")
    rc, out = curl("-I", base + "/plaintext")
    t.check(rc == 0 and out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n")
            and b"Content-Length: 13" in out, "curl -I (HEAD): length, no body")
    rc, out = curl("--http1.0", base + "/plaintext")
    t.check(rc == 0 and out == b"Hello, World!", "curl --http1.0")
    rc, out = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "chunky body",
                   base + "/echo")
    t.check(rc == 0 and out == b"chunky body", "curl chunked request body")
    big = b"x" * 30000
    r = subprocess.run(["curl", "-s", "--max-time", "10", "-H", "Expect: 100-continue",
                        "--data-binary", "@-", base + "/echo"], input=big, capture_output=True)
    t.check(r.returncode == 0 and r.stdout == big, "curl 30 kB body (Expect: 100-continue)")
    r = subprocess.run(["curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                        "--data-binary", "@-", base + "/echo"], input=b"x" * 200000,
                       capture_output=True)
    t.check(r.stdout == b"413", "curl 200 kB body: 413 (over the 32 KiB body budget)")
    rc, out = curl("-o", "/dev/null", "-w", "%{http_code}", base + "/missing")
    t.check(out == b"404", "curl 404")
    rc, out = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", base + "/plaintext")
    t.check(out == b"405", "curl 405")
    rc, out = curl(base + "/plaintext", base + "/", base + "/plaintext")
    t.check(out == b"Hello, World!wharf says hello. Try /plaintext.\nHello, World!",
            "curl: three URLs on one connection")

    # http.client: keep-alive reuses one socket
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=5)
    socks = set()
    ok = True
    for i in range(20):
        c.request("GET", "/plaintext")
        resp = c.getresponse()
        ok = ok and resp.status == 200 and resp.read() == b"Hello, World!"
        socks.add(id(c.sock))
    t.check(ok and len(socks) == 1, "http.client: 20 requests on one keep-alive connection")
    c.request("POST", "/echo", body=b"abc", headers={"Content-Type": "x"})
    resp = c.getresponse()
    t.check(resp.status == 200 and resp.read() == b"abc", "http.client POST")
    c.request("POST", "/echo", body=iter([b"ab", b"cd", b"ef"]),
              headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    resp = c.getresponse()
    t.check(resp.status == 200 and resp.read() == b"abcdef", "http.client chunked upload")
    c.request("HEAD", "/")
    resp = c.getresponse()
    t.check(resp.status == 200 and resp.read() == b"" and
            int(resp.getheader("Content-Length")) > 0, "http.client HEAD")
    c.close()

    # raw: pipelining, answers in order
    s = connect(h.port)
    reqs = []
    for i in range(32):
        path = "/plaintext" if i % 2 == 0 else "/"
        reqs.append(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path).encode())
    reqs.append(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nlast")
    s.sendall(b"".join(reqs))
    res, eof = read_responses(s, 33)
    t.check(len(res) == 33 and all(r[0] == 200 for r in res), "32+1 pipelined requests answered")
    t.check(all(res[i][2] == (b"Hello, World!" if i % 2 == 0 else
                              b"wharf says hello. Try /plaintext.\n") for i in range(32))
            and res[32][2] == b"last", "pipelined answers in order")
    s.close()

    # raw: 100-continue
    s = connect(h.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    res, eof = read_responses(s, 1)
    t.check(len(res) == 1 and res[0][0] == 100, "100 Continue before the body")
    s.sendall(b"12345")
    res, eof = read_responses(s, 1)
    t.check(len(res) == 1 and res[0][0] == 200 and res[0][2] == b"12345", "then the final answer")
    s.close()

    # raw: bad requests get their status and a close
    bad = [
        (b"GET / HTTP/1.1\r\n\r\n", 400, "missing Host"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Hosts"),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "space before colon"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "obs-fold"),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
         b"\r\n\r\n0\r\n\r\n", 400, "CL + TE"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
         400, "conflicting CL"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"fffffffffffffffffff\r\n", 400, "chunk size overflow"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n", 501, "unknown TE"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP/2.0"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413, "body too big"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, "long target"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 17000 + b"\r\n\r\n", 431, "huge header"),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, 400, "TLS hello"),
    ]
    for raw, want, what in bad:
        s = connect(h.port)
        s.sendall(raw)
        res, eof = read_responses(s, 1)
        ok = len(res) == 1 and res[0][0] == want and \
            res[0][1].get("connection") == "close" and (eof or wait_eof(s, 3))
        t.check(ok, "bad request (%s) -> %d + close" % (what, want))
        s.close()

    # keep-alive timeout: an idle connection is closed by the server
    s = connect(h.port)
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
    res, eof = read_responses(s, 1)
    t0 = time.monotonic()
    closed = wait_eof(s, 10)
    t.check(len(res) == 1 and closed, "idle keep-alive connection closed (%.1fs)"
            % (time.monotonic() - t0))
    s.close()

    # header timeout: trickling bytes does not keep a partial head alive
    s = connect(h.port)
    closed = False
    t0 = time.monotonic()
    for ch in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 200:
        try:
            s.sendall(bytes([ch]))
        except OSError:
            closed = True
            break
        s.settimeout(0.1)
        try:
            d = s.recv(4096)
            closed = True
            break
        except (socket.timeout, TimeoutError):
            pass
        if time.monotonic() - t0 > 15:
            break
    t.check(closed, "slowloris: partial head closed by the header deadline (%.1fs)"
            % (time.monotonic() - t0))
    s.close()

    # garbage and mutated requests, closed at random moments: the server
    # must survive every one and keep answering
    import random
    rnd = random.Random(1234)
    seeds = [b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
             b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\n",
             b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"]
    for i in range(300):
        m = bytearray(rnd.choice(seeds) * rnd.randint(1, 3))
        for _ in range(rnd.randint(0, 6)):
            op = rnd.randint(0, 2)
            pos = rnd.randrange(len(m))
            if op == 0:
                m[pos] = rnd.randrange(256)
            elif op == 1:
                del m[pos]
            else:
                m[pos:pos] = bytes([rnd.randrange(256)]) * rnd.randint(1, 40)
        try:
            s = connect(h.port, timeout=2)
            s.sendall(bytes(m))
            if rnd.random() < 0.5:
                s.settimeout(0.05)
                try:
                    s.recv(65536)
                except OSError:
                    pass
            s.close()
        except OSError:
            pass
    rc, out = curl(base + "/plaintext")
    t.check(out == b"Hello, World!" and h.proc.poll() is None, "300 mutated requests survived")

    # the server is still fine
    rc, out = curl(base + "/plaintext")
    t.check(out == b"Hello, World!", "still serving")
    rc = h.stop()
    t.check(rc == 0, "graceful stop, exit 0")

t.exit()
