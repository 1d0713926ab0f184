#!/usr/bin/env python3
"""One functional suite, run against every concurrency-model lab binary
(lab-iterative ... lab-epoll) and wharfd: the eighth column.

Each server is started on a free loopback port with its own document root
and a real redis-server (started here, stopped by PID). Checked per server:
static files byte for byte (text and binary, GET and HEAD, index.html for
directories), 404, 400, keep-alive and pipelining exactly as the model
promises (lab-iterative closes after every response; every other model keeps
the connection), the guestbook (POST then GET, data visible in Redis in
the shared keys; 503 with Redis down while static files still work), 20
parallel clients, no zombie children, and a clean exit on SIGTERM.

WH_TEST_LABELS: slow
"""
import concurrent.futures
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

BUILD = os.environ.get("WH_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "../../build")

# name -> (keeps the connection open between requests, extra arguments)
MODELS = {
    "lab-iterative": (False, []),
    "lab-forking": (True, []),
    "lab-preforked": (True, ["--workers", "4"]),
    "lab-threaded": (True, []),
    "lab-prethreaded": (True, ["--workers", "8"]),
    "lab-poll": (True, []),
    "lab-epoll": (True, []),
    "wharfd": (True, ["--threads", "2", "--access-log", "off"]),
}

failures = []


def check(cond, what):
    if not cond:
        failures.append(f"{CURRENT}: {what}")
        print(f"  FAIL {what}", flush=True)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- a tiny HTTP/1.1 client on raw sockets (exact control over framing) ---

class Conn:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self, head_only=False):
        """Reads one response: (status, {lowercase name: value}, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = 0 if head_only or status in (100, 204, 304) else int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def closed_by_peer(self, wait=3.0):
        """True if the server closes the connection (EOF) within wait seconds."""
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def request(port, path, method="GET", body=None, headers=None):
    c = Conn(port)
    try:
        h = {"Host": "127.0.0.1", "Connection": "close"}
        h.update(headers or {})
        if body is not None:
            h["Content-Length"] = str(len(body))
        req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        c.send(req.encode() + b"\r\n" + (body or b""))
        return c.response(head_only=(method == "HEAD"))
    finally:
        c.close()


def get_req(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


# --- servers ---

def start(binary, port, root, redis_port, extra, logdir):
    cmd = [os.path.join(BUILD, binary), "--bind", f"127.0.0.1:{port}", "--root", root,
           "--redis", f"127.0.0.1:{redis_port}"] + extra
    # stderr to a file (never an unread pipe: a chatty server would block on it);
    # sanitizer reports from forked children land there too and are checked in stop().
    log = open(os.path.join(logdir, f"{binary}-{port}.log"), "w+")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    p.log = log
    deadline = time.time() + 10
    while time.time() < deadline:
        if p.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{binary} exited at start: {log.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError(f"{binary} did not listen on {port}")


def children(pid):
    """(pid, state) of the direct children of pid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(d), fields[0]))
    return out


def stop(p, name):
    if p.poll() is not None:
        check(False, f"server died early (rc {p.returncode})")
        return
    kids = [k for k, _ in children(p.pid)]
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=10)
        check(rc == 0, f"exit status after SIGTERM is {rc}")
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(False, "did not exit within 10 s of SIGTERM")
    # Worker processes must go too (forking: the kernel's PDEATHSIG; pre-forked: the parent).
    deadline = time.time() + 5
    alive = kids
    while alive and time.time() < deadline:
        alive = [k for k in alive if os.path.exists(f"/proc/{k}") and _state(k) != "Z"]
        time.sleep(0.05)
    check(not alive, f"children still alive after stop: {alive}")
    for k in kids:  # never leave anything behind, even on failure
        try:
            os.kill(k, signal.SIGKILL)
        except OSError:
            pass
    p.log.seek(0)
    err = p.log.read()
    p.log.close()
    bad = [m for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")
           if m in err]
    check(not bad, f"sanitizer report in stderr:\n{err[-3000:]}")


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rfind(")") + 2:].split()[0]
    except OSError:
        return "gone"


# --- the suite ---

def make_root(tmp):
    root = os.path.join(tmp, "public")
    os.makedirs(os.path.join(root, "docs"))
    files = {
        "index.html": b"<!DOCTYPE html>\n<title>lab</title><h1>ZeroHTTPd lab</h1>\n",
        "docs/index.html": b"<h1>docs index</h1>\n",
        "hello.txt": b"hello, world\n" * 100,
        "blob.bin": random.Random(1).randbytes(300_000),  # > socket buffers: partial writes
        "style.css": b"body { color: #333; }\n",
    }
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    return root, files


def suite(name, keepalive, port, files, redis_port, redis_cli):
    # Static files, byte for byte.
    for rel, data in files.items():
        st, h, body = request(port, "/" + rel)
        check(st == 200 and body == data, f"GET /{rel}: status {st}, {len(body)} of {len(data)} bytes")
    st, h, body = request(port, "/")
    check(st == 200 and body == files["index.html"], f"GET / -> index.html (status {st})")
    st, h, body = request(port, "/docs/")
    check(st == 200 and body == files["docs/index.html"], f"GET /docs/ -> docs/index.html ({st})")
    check(h.get("content-type", "").startswith("text/html"), "index.html is text/html")
    st, h, _ = request(port, "/style.css")
    check(h.get("content-type", "").startswith("text/css"), f"css type {h.get('content-type')}")
    st, h, body = request(port, "/blob.bin", method="HEAD")
    check(st == 200 and h.get("content-length") == str(len(files["blob.bin"])) and body == b"",
          f"HEAD /blob.bin: {st} {h.get('content-length')}")
    st, _, _ = request(port, "/no/such/file.html")
    check(st == 404, f"missing file -> 404 (got {st})")
    st, _, _ = request(port, "/../etc/passwd")
    check(st in (400, 403, 404), f"/../etc/passwd refused (got {st})")

    # A malformed request -> 400 and the connection closes.
    c = Conn(port)
    c.send(b"THIS IS NOT HTTP\r\n\r\n")
    st, _, _ = c.response()
    check(st == 400, f"garbage -> 400 (got {st})")
    check(c.closed_by_peer(), "connection closed after 400")
    c.close()

    # Keep-alive: exactly what the model promises.
    c = Conn(port)
    c.send(get_req("/hello.txt"))
    st, h, body = c.response()
    check(st == 200 and body == files["hello.txt"], "first request on a connection")
    if keepalive:
        check(h.get("connection", "keep-alive").lower() != "close", "keep-alive response")
        c.send(get_req("/style.css"))
        st, h, body = c.response()
        check(st == 200 and body == files["style.css"], "second request on the same connection")
        # Pipelining: three requests in one write, three responses in order.
        c.send(get_req("/hello.txt") + get_req("/blob.bin") + get_req("/style.css", close=True))
        got = [c.response() for _ in range(3)]
        check([g[2] for g in got] == [files["hello.txt"], files["blob.bin"], files["style.css"]],
              "three pipelined requests answered in order")
        check(got[2][1].get("connection", "").lower() == "close", "Connection: close honoured")
        check(c.closed_by_peer(), "closed after the Connection: close request")
    else:
        check(h.get("connection", "").lower() == "close", "iterative: says Connection: close")
        check(c.closed_by_peer(), "iterative: closes after each response")
    c.close()

    # HTTP/1.0 without keep-alive: closed after the response.
    c = Conn(port)
    c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    st, _, body = c.response()
    check(st == 200 and body == files["hello.txt"] and c.closed_by_peer(), "HTTP/1.0 request")
    c.close()

    # Guestbook against the real Redis, same keys as every other server.
    # wharfd's form carries a token (docs/guestbook.md) that posts must send
    # back, and its 303 leads to /guestbook?posted=1; the lab has neither.
    _, _, page0 = request(port, "/guestbook")
    tok = re.search(rb'name="token" value="([^"]*)"', page0)
    extra = {"token": tok.group(1).decode()} if tok else {}
    msg = f"hello from {name} <{random.randrange(10**9)}>"
    form = urllib.parse.urlencode({"name": name, "message": msg, **extra}).encode()
    st, h, _ = request(port, "/guestbook", "POST", form,
                       {"Content-Type": "application/x-www-form-urlencoded"})
    check(st == 303 and h.get("location") in ("/guestbook", "/guestbook?posted=1"),
          f"POST /guestbook -> 303 (got {st})")
    st, h, body = request(port, "/guestbook")
    esc = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    check(st == 200 and esc.encode() in body, f"GET /guestbook shows the entry (status {st})")
    stored = subprocess.run(redis_cli + ["XREVRANGE", "guestbook:stream", "+", "-", "COUNT", "1"],
                            capture_output=True, text=True, timeout=10).stdout
    check(msg in stored, f"entry stored in the stream guestbook:stream (got {stored[:80]!r})")
    st, _, _ = request(port, "/guestbook", "POST",
                       b"message=" + (b"&token=" + tok.group(1) if tok else b""),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    check(st == 400, f"empty message -> 400 (got {st})")

    # 20 parallel clients, fresh connections, several requests each.
    def client(i):
        ok = True
        for j in range(5):
            rel = ["hello.txt", "blob.bin", "index.html"][(i + j) % 3]
            st, _, body = request(port, "/" + rel)
            ok = ok and st == 200 and body == files[rel]
        return ok

    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        results = list(ex.map(client, range(20)))
    check(all(results), f"20 parallel clients: {results.count(False)} failed")


def main():
    global CURRENT
    CURRENT = "setup"
    redis = shutil.which("redis-server")
    if not redis:
        print("SKIP: redis-server not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="wh-lab-")
    procs = []
    try:
        root, files = make_root(tmp)
        rport = free_port()
        rdir = os.path.join(tmp, "redis")
        os.mkdir(rdir)
        rp = subprocess.Popen([redis, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", rdir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(rp)
        redis_cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(rport)]
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", rport), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

        ran = 0
        for name, (keepalive, extra) in MODELS.items():
            CURRENT = name
            path = os.path.join(BUILD, name)
            if not os.path.exists(path):
                if name == "wharfd":
                    print(f"SKIP {name}: not built in {BUILD}", flush=True)
                    continue
                check(False, f"binary missing: {path}")
                continue
            print(f"== {name}", flush=True)
            t0 = time.time()
            port = free_port()
            try:
                p = start(name, port, root, rport, extra, tmp)
            except RuntimeError as e:
                if name == "wharfd" and "not built yet" in str(e):  # the placeholder main()
                    print(f"SKIP {name}: placeholder binary ({e})", flush=True)
                else:
                    check(False, str(e))
                continue
            procs.append(p)
            try:
                suite(name, keepalive, port, files, rport, redis_cli)
                zombies = [k for k, s in children(p.pid) if s == "Z"]
                time.sleep(0.2)  # SIGCHLD handling is asynchronous: give it a moment
                zombies = [k for k, s in children(p.pid) if s == "Z" and k in zombies]
                check(not zombies, f"zombie children: {zombies}")
            except Exception as e:  # a crash or a hang in one model must not hide the others
                check(False, f"exception: {e!r}")
            stop(p, name)
            procs.remove(p)
            ran += 1
            print(f"   {name}: {time.time() - t0:.1f} s", flush=True)

        # Redis down: the guestbook says 503, static files still work.
        CURRENT = "redis-down"
        dead = free_port()
        port = free_port()
        p = start("lab-epoll", port, root, dead, [], tmp)
        procs.append(p)
        st, _, _ = request(port, "/guestbook")
        check(st == 503, f"guestbook without Redis -> 503 (got {st})")
        st, _, body = request(port, "/hello.txt")
        check(st == 200 and body == files["hello.txt"], "static files still work without Redis")
        stop(p, "lab-epoll")
        procs.remove(p)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"\n{len(failures)} FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nOK: {ran} servers passed the suite")
    return 0


CURRENT = ""
if __name__ == "__main__":
    sys.exit(main())
