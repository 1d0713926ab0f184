"""Helpers for the guestbook integration tests (tests/integration/test_guestbook_*.py).

- Redis: a redis-server of our own on a free loopback port, stopped by PID
  (also at interpreter exit and on failure), with a minimal RESP client so
  no python3-redis package is needed.
- Wharfd: wharfd on --port 0; the bound port is read from its log line
  "listening on [::]:PORT". Stopped by PID.
- http(): one request on a fresh connection with http.client; returns
  (status, headers dict with lower-case names, body bytes).
- post(): a form post carrying the page's form token (fetched once per
  wharfd from /guestbook?posted=1, which does not count a visit).
- Wharfd runs with --guestbook-rate 0 (no post rate limit) unless the
  test gives --guestbook-rate itself: most tests post far faster than a
  person would.
- check_functional(): the functional checks shared by the Redis and the
  embedded backends.

Only the standard library; run with /usr/bin/python3.
"""
import atexit
import html
import http.client as httpclient
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

BUILD = os.environ.get("WH_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "../../build")
SOURCE = os.environ.get("WH_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "../..")

_procs = []  # everything we started, killed at exit


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass


atexit.register(_kill_all)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Redis:
    """A redis-server of our own. extra: more arguments (e.g. AOF settings)."""

    def __init__(self, port=None, extra=()):
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed (scripts/deps.sh installs it)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="wh-gb-redis-")
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _procs.append(self.proc)
        if not wait_port(self.port):
            raise RuntimeError("redis-server did not start")
        # An AOF reload answers -LOADING until done; wait until it serves.
        end = time.time() + 10
        while time.time() < end:
            try:
                if self.cmd("PING") == "PONG":
                    return
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server does not answer PING")

    def kill(self):
        """SIGKILL by PID: the crash case (no shutdown save)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def cmd(self, *args):
        """One command over a fresh connection; returns the decoded reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _resp_read(f)

    def entries(self):
        """Every stored entry of the stream guestbook:stream, newest first, as
        {"id", "t" (int), "name", "msg"}."""
        out = []
        for eid, fields in self.cmd("XREVRANGE", "guestbook:stream", "+", "-"):
            e = dict(zip(fields[0::2], fields[1::2]))
            e["id"] = eid
            if "t" in e:
                e["t"] = int(e["t"])
            out.append(e)
        return out


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise RuntimeError("bad RESP reply %r" % line)


class Wharfd:
    def __init__(self, args=(), threads=2, prefix=()):
        """args: wharfd's options; without --data a fresh SQLite data directory
        of its own (removed at stop). prefix: a command wharfd runs under."""
        self.root = tempfile.mkdtemp(prefix="wh-gb-root-")
        self.own_data = None
        if not {"--data", "--redis", "--config"} & set(args):
            self.own_data = tempfile.mkdtemp(prefix="wh-gb-data-")
            args = list(args) + ["--data", self.own_data]
        with open(os.path.join(self.root, "index.html"), "w") as f:
            f.write("<p>index</p>\n")
        self.log = os.path.join(self.root, "..", os.path.basename(self.root) + ".log")
        rate = [] if "--guestbook-rate" in args else ["--guestbook-rate", "0"]
        argv = list(prefix) + [os.path.join(BUILD, "wharfd"), "--port", "0", "--bind", "127.0.0.1",
                "--threads", str(threads), "--root", self.root, "--access-log", "off",
                "--error-log", self.log] + rate + list(args)
        self.errpath = self.log + ".stderr"  # sanitizer reports land here
        self.returncode = None
        self.stderr = ""
        with open(self.errpath, "w") as errf:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf)
        _procs.append(self.proc)
        self.port = None
        end = time.time() + 10
        while time.time() < end and self.port is None:
            if self.proc.poll() is not None:
                break
            try:
                with open(self.log) as f:
                    m = re.search(r"listening on .*:(\d+)", f.read())
                    if m:
                        self.port = int(m.group(1))
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        if self.port is None:
            log = self.log_text()
            self.stop()
            raise RuntimeError("wharfd did not start: " + self.stderr + log)
        _tokens.pop(self.port, None)  # an earlier wharfd's token on this port is void

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM (graceful), SIGKILL after 10 s. Sets returncode and stderr."""
        if self.returncode is not None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        try:
            with open(self.errpath) as f:
                self.stderr = f.read()
        except OSError:
            pass
        if self.stderr.strip():
            print("wharfd stderr:\n" + self.stderr)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.own_data:
            shutil.rmtree(self.own_data, ignore_errors=True)
        for p in (self.log, self.errpath):
            try:
                os.unlink(p)
            except OSError:
                pass

    def clean_exit(self):
        """True if wharfd exited 0 and no sanitizer complained."""
        return self.returncode == 0 and "Sanitizer" not in self.stderr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def http(port, method, path, body=None, headers=None, timeout=10):
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}

_tokens = {}  # port -> the form token wharfd gave this address


def form_token(port, fresh=False):
    """The hidden token of the page's form (None if the page is unavailable).
    Read from /guestbook?posted=1 so that it counts no visit."""
    if fresh or port not in _tokens:
        st, _, body = http(port, "GET", "/guestbook?posted=1")
        m = re.search(rb'name="token" value="([^"]*)"', body) if st == 200 else None
        if not m:
            return None
        _tokens[port] = m.group(1).decode()
    return _tokens[port]


def post(port, name, message, raw=None, headers=None, timeout=10, token=True):
    """POSTs the form. token: True = the page's token, False = none, or a
    string to send as the token."""
    body = raw if raw is not None else urllib.parse.urlencode({"name": name, "message": message})
    tok = form_token(port) if token is True else (token or None)
    if tok is not None:
        body += "&token=" + urllib.parse.quote(tok)
    return http(port, "POST", "/guestbook", body=body, headers=headers or FORM, timeout=timeout)


def page(port):
    st, hd, body = http(port, "GET", "/guestbook")
    return st, hd, body.decode("utf-8")


def visitors(text):
    m = re.search(r'id="gb-visitors">(\d+)<', text)
    return int(m.group(1)) if m else None


def shown_messages(text):
    """Messages on the page, newest first, HTML-unescaped."""
    return [html.unescape(m) for m in re.findall(r'<bdi class="msg">(.*?)</bdi>', text, re.S)]


def shown_names(text):
    """Names on the page, newest first, HTML-unescaped."""
    return [html.unescape(m) for m in re.findall(r'<bdi class="name">(.*?)</bdi>', text, re.S)]


class Checker:
    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("  ok   " if cond else "  FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def done(self):
        if self.failures:
            print("%d check(s) failed:" % len(self.failures))
            for f in self.failures:
                print("  - " + f)
            return 1
        print("all checks passed")
        return 0


def check_functional(check, port, redis=None):
    """The guestbook's behaviour over HTTP; with redis, also what Redis holds."""
    st, hd, text = page(port)
    check(st == 200, "GET /guestbook is 200 (%s)" % st)
    check(hd.get("content-type", "").startswith("text/html"), "page is text/html")
    check(hd.get("cache-control") == "no-store", "page is not cacheable")
    check('<form id="gb-form" method="post" action="/guestbook">' in text, "page has the form")
    v0 = visitors(text)
    check(v0 is not None, "page shows a visitor counter")
    st, _, text = page(port)
    check(visitors(text) == (v0 or 0) + 1, "counter increases by one per view")

    # post -> 303 -> visible, newest first
    st, hd, _ = post(port, "Ada", "first entry")
    check(st == 303, "POST answers 303 (%s)" % st)
    check(hd.get("location") == "/guestbook?posted=1",
          "303 Location is /guestbook?posted=1 (%s)" % hd.get("location"))
    post(port, "Bob", "second entry")
    st, _, text = page(port)
    msgs = shown_messages(text)
    check(msgs[:2] == ["second entry", "first entry"], "entries newest first: %r" % msgs[:2])
    check('<bdi class="name">Ada</bdi>' in text, "name shown (isolated in <bdi>)")

    # escaping
    evil = "<script>alert('x')</script>"
    st, _, _ = post(port, "<b>Mallory</b>", evil)
    check(st == 303, "POST with markup accepted (stored as text)")
    st, _, text = page(port)
    check("<script>alert" not in text, "no raw <script> from user input on the page")
    check("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text, "message HTML-escaped")
    check("&lt;b&gt;Mallory&lt;/b&gt;" in text, "name HTML-escaped")
    check(shown_messages(text)[0] == evil, "escaped message reads back exactly")

    # unicode, newlines
    st, _, _ = post(port, "Zoë", "日本語 ✓\nline two")
    st, _, text = page(port)
    check(shown_messages(text)[0] == "日本語 ✓\nline two", "UTF-8 and newlines round-trip")

    # limits and errors (each with a page that says why)
    st, _, b = post(port, "n" * 64, "m" * 1024)
    check(st == 303, "name of 64 bytes and message of 1024 bytes accepted (%s)" % st)
    st, _, b = post(port, "n" * 65, "x")
    check(st == 413 and b"name is too long" in b, "name of 65 bytes -> 413 with reason (%s)" % st)
    st, _, b = post(port, "x", "m" * 1025)
    check(st == 413 and b"message is too long" in b, "message of 1025 bytes -> 413 (%s)" % st)
    st, _, b = post(port, "é" * 33, "x")  # 66 bytes in 33 characters: the limit is bytes
    check(st == 413, "name of 33 two-byte characters -> 413 (%s)" % st)
    st, _, b = post(port, "x", "", raw="name=x&message=" + "a" * 9000)
    check(st == 413 and b"too large" in b, "form body over 8192 bytes -> 413 (%s)" % st)
    st, _, b = post(port, "x", "   ")
    check(st == 400 and b"message is empty" in b, "empty message -> 400 (%s)" % st)
    st, _, b = post(port, None, None, raw="name=x&message=%FF%FE")
    check(st == 400 and b"UTF-8" in b, "invalid UTF-8 -> 400 (%s)" % st)
    st, _, b = post(port, None, None, raw="name=x&message=100%")
    check(st == 400, "malformed %%-escape -> 400 (%s)" % st)
    st, _, b = post(port, None, None, raw="message=a%00b")
    check(st == 400, "NUL byte -> 400 (%s)" % st)
    st, _, b = post(port, None, None, raw="name=x&message=y",
                    headers={"Content-Type": "text/plain"})
    check(st == 415, "wrong Content-Type -> 415 (%s)" % st)
    st, _, b = post(port, None, None, raw="message=ok",
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    check(st == 303, "Content-Type with charset parameter accepted (%s)" % st)
    st, _, text = page(port)
    check("n" * 65 not in text, "rejected entries are not stored")
    check("<p id=\"gb-error\">" not in text, "page is not an error page")

    # HEAD and other methods
    st, hd, b = http(port, "HEAD", "/guestbook")
    check(st == 200 and b == b"", "HEAD /guestbook is 200 without a body (%s)" % st)
    st, _, b = post(port, "x", "no token", token=False)
    check(st == 403, "POST without the form token -> 403 (%s)" % st)
    st, hd, b = http(port, "DELETE", "/guestbook")
    check(st == 405, "DELETE /guestbook is 405 (%s)" % st)

    # default name
    st, _, _ = post(port, "", "no name given")
    st, _, text = page(port)
    check('<bdi class="name">Anonymous</bdi>' in text, "empty name shown as Anonymous")

    if redis is not None:
        stored = redis.entries()
        check(stored[0]["msg"] == "no name given" and stored[0]["name"] == "Anonymous",
              "newest entry is in Redis in the stream guestbook:stream")
        check(any(e["msg"] == evil for e in stored), "markup stored verbatim (escaped only on output)")
        check(all(isinstance(e.get("t"), int) and e["t"] > 1600000000 for e in stored),
              "entries carry a unix timestamp")
        n = int(redis.cmd("GET", "guestbook:visitors"))
        st, _, text = page(port)
        check(visitors(text) == n + 1, "counter is guestbook:visitors, INCR per view")
        st, _, b = http(port, "GET", "/guestbook?posted=1")
        check(visitors(b.decode()) == n + 1 and int(redis.cmd("GET", "guestbook:visitors")) == n + 1,
              "the page after a post shows the counter without raising it")
