#!/usr/bin/env bash
# Hostile clients against a release wharfd (issue 20): each attack at full
# size, one at a time, each against a fresh wharfd (--threads 2, access log
# off), while a probe client times GET / on a new connection every 0.5 s:
#
#   slow-bodies     1,000 connections each sending a 1 MiB body (POST / and
#                   POST /guestbook, half each) in 64 KiB pieces, one a
#                   second; a refused one comes back a second later
#   slow-readers    1,000 connections that ask for a full guestbook page
#                   (100 entries of escaped quotes, ~670 KB) READER_PIPELINE
#                   times (4, pipelined) and never read, with a 4 KiB receive
#                   buffer (one page alone fits the kernel's send buffer,
#                   tcp_wmem up to 4 MiB, and would measure the kernel only)
#   silent-chat     1,000 /ws/chat members that never read (4 KiB receive
#                   buffer) while one member sends small messages flat out
#   ws-fragments    1,000 /ws/echo connections each sending a fragmented
#                   message just under 1 MiB (64 KiB a second) that never
#                   ends; a closed one comes back a second later
#   pipelined-posts 1,000 connections each pipelining 10 guestbook posts
#                   (with a valid form token) every second, at the default
#                   --guestbook-rate
#
# Printed per attack: wharfd's RSS before (idle, warmed up), at its peak
# (sampled every 100 ms) and 5 s after the clients left; the peak of the
# kernel's TCP buffer memory (whole machine, /proc/net/sockstat: what a
# server's RSS does not show); the probe's p99 and max during the attack and
# how many probes failed (5 s timeout). The aim of
# the issue: under 100 MiB above the baseline and p99 under 100 ms. Notes say
# what the attackers saw (statuses, close codes, what was stored).
#
# A benchmark, never a test: it prints numbers and fails on none of them.
# The client is Python (asyncio, raw sockets; no packages) in one process on
# the same machine as wharfd; the probe and the RSS sampler in another.
#
#   bench/hostile.sh [BUILD_DIR]     (default build/hostile, Release, built here)
#   env: CONNS=1000 ATTACK_SECONDS=20 SETTLE_SECONDS=5 READER_PIPELINE=4
#        ONLY="slow-readers ..."
#        WHARFD_ARGS="--sndbuf 65536"  more wharfd arguments for every attack
#        LO_MTU=1500  run everything (wharfd, attackers, probe) in a fresh
#                     network namespace whose loopback has this MTU (root).
# Why LO_MTU: on loopback (MTU 65536, MSS 65483) Linux sizes a new socket's
# send buffer from the initial congestion window in segments (10) times the
# MSS, so every accepted connection may queue about 2 MiB in the kernel
# before its peer reads a byte; over Ethernet (MSS 1448) the same rule gives
# about 40 KiB. Slow readers on loopback therefore fill the host's TCP
# memory limit (tcp_mem) with a few thousand connections, which no real
# network lets them do. Run both ways and compare the kernel TCP column.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/hostile}
need_tools cmake python3
if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWH_BENCH=OFF >/dev/null
fi
# Always rebuilt (incrementally): a stale binary would measure old code.
cmake --build "$build" -j"$(nproc)" --target wharfd >/dev/null
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$build/CMakeCache.txt" ||
    echo "note: $build is not a Release build" >&2
# 1,000 clients and the server's own default cap (3/4 of this limit) need
# descriptors; wharfd inherits the limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_tmp
rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
inns=()
if [[ -n ${LO_MTU:-} ]]; then
    need_tools ip
    ns=wh-hostile-$$
    ip netns add "$ns"
    trap 'ip netns del "$ns" 2>/dev/null || true; bench_cleanup' EXIT
    ip -n "$ns" link set lo mtu "$LO_MTU" up
    inns=(ip netns exec "$ns")
fi
WHARFD_ARGS=${WHARFD_ARGS:-} LO_MTU=${LO_MTU:-} CONNS=${CONNS:-1000} ATTACK_SECONDS=${ATTACK_SECONDS:-20} SETTLE_SECONDS=${SETTLE_SECONDS:-5} \
    READER_PIPELINE=${READER_PIPELINE:-4} ONLY=${ONLY:-} REV=$rev "${inns[@]}" python3 - "$build/wharfd" "$tmp" <<'PY'
import asyncio
import http.client
import math
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

WHARFD, TMP = sys.argv[1], sys.argv[2]
CONNS = int(os.environ["CONNS"])
SECS = float(os.environ["ATTACK_SECONDS"])
SETTLE = float(os.environ["SETTLE_SECONDS"])
ONLY = os.environ["ONLY"].split()
PIPELINE = int(os.environ["READER_PIPELINE"])
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
PIECE = 64 * 1024
PROBE_EVERY = 0.5
PROBE_TIMEOUT = 5.0
WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


# ---- wharfd --------------------------------------------------------------

def start_wharfd(name, extra):
    www = os.path.join(TMP, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<!DOCTYPE html>\n<title>probe</title>\n" + "<p>wharf</p>\n" * 150)
    log = os.path.join(TMP, name + ".log")
    p = subprocess.Popen([WHARFD, "--bind", "127.0.0.1:0", "--threads", "2", "--root", www,
                          "--access-log", "off", "--error-log", log] + extra +
                         os.environ.get("WHARFD_ARGS", "").split(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 10
    while time.time() < end:
        try:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log).read())
            if m:
                return p, int(m.group(1)), log
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    p.kill()
    raise SystemExit("wharfd did not start: " + open(log).read())


def stop_wharfd(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tcp_mem_kib():
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    w = line.split()
                    return int(w[w.index("mem") + 1]) * PAGE // 1024
    except (OSError, ValueError):
        pass
    return 0


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def form_token(port):
    st, body = request(port, "GET", "/guestbook?posted=1")
    m = re.search(rb'name="token" value="([^"]*)"', body)
    return m.group(1).decode() if m else ""


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_body(name, msg, token):
    return urllib.parse.urlencode({"name": name, "message": msg, "token": token})


# ---- the attacks (run in a child process, asyncio on raw sockets) --------

async def connect(port, rcvbuf=None):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), 10)
    except BaseException:
        s.close()
        raise
    return s


async def recv_until(s, marker, limit=65536, timeout=10):
    loop = asyncio.get_running_loop()
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf and len(buf) < limit:
        left = end - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError()
        chunk = await asyncio.wait_for(loop.sock_recv(s, 4096), left)
        if not chunk:
            raise ConnectionResetError("closed")
        buf += chunk
    return buf


async def recv_or_wait(s, seconds):
    """Data the server sent within seconds (b"" = it closed), or None."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(s, 65536), seconds)
    except asyncio.TimeoutError:
        return None


def status_of(data):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data or b"")
    return m.group(1).decode() if m else None


def bump(stats, key, n=1):
    stats[key] = stats.get(key, 0) + n


async def ws_handshake(port, path, rcvbuf=None):
    s = await connect(port, rcvbuf)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(s, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                            b"Sec-WebSocket-Key: " + WS_KEY + b"\r\n\r\n")
    head = await recv_until(s, b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        raise ConnectionRefusedError("no upgrade: %r" % head[:40])
    return s


def ws_frame(opcode, payload, fin=True):
    # Masked with the all-zero key: valid (RFC 6455 5.3), and no XOR to do.
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def close_code(data):
    i = data.find(b"\x88")
    if i >= 0 and len(data) >= i + 4 and data[i + 1] & 0x7F >= 2:
        return str(int.from_bytes(data[i + 2:i + 4], "big"))
    return None


async def slow_bodies(port, deadline, stats, ctx):
    loop = asyncio.get_running_loop()
    interval = 1.0

    async def one(i):
        path = b"/" if i % 2 == 0 else b"/guestbook"
        while time.monotonic() < deadline:
            s = None
            try:
                async with ctx["sem"]:
                    s = await connect(port)
                await loop.sock_sendall(s, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                        b"Content-Type: application/x-www-form-urlencoded\r\n"
                                        b"Content-Length: %d\r\n\r\n" % MIB)
                sent, answer = 0, None
                while sent < MIB and time.monotonic() < deadline:
                    n = min(PIECE, MIB - sent)
                    await asyncio.wait_for(loop.sock_sendall(s, b"a" * n),
                                           max(0.1, deadline - time.monotonic()))
                    sent += n
                    answer = await recv_or_wait(s, interval)
                    if answer is not None:
                        break
                if answer is None and time.monotonic() < deadline:
                    answer = await recv_or_wait(s, max(0.1, deadline - time.monotonic()))
                if answer:
                    bump(stats, "HTTP " + (status_of(answer) or "?"))
                elif answer == b"":
                    bump(stats, "closed silently")
                else:
                    bump(stats, "unanswered at the end")
            except (OSError, asyncio.TimeoutError) as e:
                bump(stats, "reset" if isinstance(e, ConnectionError) else "stalled")
            finally:
                if s:
                    s.close()
            await asyncio.sleep(1.0)

    await asyncio.gather(*(one(i) for i in range(CONNS)))


async def slow_readers(port, deadline, stats, ctx):
    loop = asyncio.get_running_loop()

    async def one(i):
        try:
            async with ctx["sem"]:
                s = await connect(port, rcvbuf=4096)
            await loop.sock_sendall(s, b"GET /guestbook HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINE)
            bump(stats, "requests sent")
        except (OSError, asyncio.TimeoutError):
            bump(stats, "connect failed")
            return
        await asyncio.sleep(max(0, deadline - time.monotonic()))
        s.close()

    await asyncio.gather(*(one(i) for i in range(CONNS)))


async def silent_chat(port, deadline, stats, ctx):
    loop = asyncio.get_running_loop()
    members = []

    async def member(i):
        try:
            async with ctx["sem"]:
                members.append(await ws_handshake(port, b"/ws/chat", rcvbuf=4096))
        except (OSError, asyncio.TimeoutError):
            bump(stats, "member failed")

    await asyncio.gather(*(member(i) for i in range(CONNS)))
    bump(stats, "members", len(members))

    async def drain(f):
        try:
            while await loop.sock_recv(f, 65536):
                pass
        except OSError:
            pass

    msg = ws_frame(1, b'{"name":"flood","text":"x"}')
    batch = msg * 64
    # The flooder reads what it is sent; dropped, it comes back (a hostile
    # client would), so the attack lasts its whole time.
    while time.monotonic() < deadline:
        f = reader = None
        try:
            f = await ws_handshake(port, b"/ws/chat")
            reader = asyncio.ensure_future(drain(f))
            while time.monotonic() < deadline:
                await asyncio.wait_for(loop.sock_sendall(f, batch),
                                       max(0.1, deadline - time.monotonic()))
                bump(stats, "messages sent", 64)
        except (OSError, asyncio.TimeoutError):
            bump(stats, "flooder dropped")
            await asyncio.sleep(0.2)
        finally:
            if reader:
                reader.cancel()
            if f:
                f.close()
    await asyncio.sleep(0.5)
    # A member the server dropped ends in a close frame and EOF: read what
    # its small buffer holds (a bounded amount) to see which.
    for s in members:
        seen, tail, eof = 0, b"", False
        while seen < MIB:
            try:
                d = s.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                eof = True
                break
            if not d:
                eof = True
                break
            seen += len(d)
            tail = (tail + d)[-64:]
        if eof:
            bump(stats, "members closed by the server" +
                 (" (1008)" if b"\x88" in tail and b"\x03\xf0" in tail else ""))
        s.close()


async def ws_fragments(port, deadline, stats, ctx):
    loop = asyncio.get_running_loop()
    first = ws_frame(1, b"a" * PIECE, fin=False)
    more = ws_frame(0, b"a" * PIECE, fin=False)

    async def one(i):
        while time.monotonic() < deadline:
            s = None
            try:
                async with ctx["sem"]:
                    s = await ws_handshake(port, b"/ws/echo")
                sent, answer = 0, None
                while sent + PIECE < MIB and time.monotonic() < deadline:
                    await asyncio.wait_for(loop.sock_sendall(s, first if sent == 0 else more),
                                           max(0.1, deadline - time.monotonic()))
                    sent += PIECE
                    answer = await recv_or_wait(s, 1.0)
                    if answer is not None:
                        break
                if answer is None and time.monotonic() < deadline:
                    answer = await recv_or_wait(s, max(0.1, deadline - time.monotonic()))
                if answer:
                    bump(stats, "close " + (close_code(answer) or "?"))
                elif answer == b"":
                    bump(stats, "closed silently")
                else:
                    bump(stats, "still open at the end")
            except (OSError, asyncio.TimeoutError) as e:
                bump(stats, "reset" if isinstance(e, ConnectionError) else "stalled")
            finally:
                if s:
                    s.close()
            await asyncio.sleep(1.0)

    await asyncio.gather(*(one(i) for i in range(CONNS)))


async def pipelined_posts(port, deadline, stats, ctx):
    loop = asyncio.get_running_loop()
    token = ctx["token"]

    def req(i, j):
        body = post_body("spam", "spam %d-%d" % (i, j), token).encode()
        return (b"POST /guestbook HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body

    async def read_responses(s, n):
        buf = b""
        got = 0
        while got < n:
            while b"\r\n\r\n" not in buf:
                d = await asyncio.wait_for(loop.sock_recv(s, 65536), 10)
                if not d:
                    raise ConnectionResetError("closed")
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
            need = int(m.group(1)) if m else 0
            while len(buf) < need:
                d = await asyncio.wait_for(loop.sock_recv(s, 65536), 10)
                if not d:
                    raise ConnectionResetError("closed")
                buf += d
            buf = buf[need:]
            bump(stats, "HTTP " + (status_of(head) or "?"))
            got += 1

    async def one(i):
        s = None
        j = 0
        try:
            async with ctx["sem"]:
                s = await connect(port)
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                await loop.sock_sendall(s, b"".join(req(i, j + k) for k in range(10)))
                j += 10
                await read_responses(s, 10)
                await asyncio.sleep(max(0, 1.0 - (time.monotonic() - t0)))
        except (OSError, asyncio.TimeoutError) as e:
            bump(stats, "reset" if isinstance(e, ConnectionError) else "stalled")
        finally:
            if s:
                s.close()

    await asyncio.gather(*(one(i) for i in range(CONNS)))


def attacker(fn, port, ctx, q):
    stats = {}

    async def main():
        ctx["sem"] = asyncio.Semaphore(100)  # connects in flight: the accept queue is finite
        await fn(port, time.monotonic() + SECS, stats, ctx)

    try:
        asyncio.run(main())
    except Exception as e:  # report, do not hang the run
        stats["client error: %s" % type(e).__name__] = 1
    q.put(stats)


# ---- probe and measurement --------------------------------------------------

def probe_once(port):
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    dt = time.monotonic() - t0
    return (dt if ok else max(dt, PROBE_TIMEOUT)), ok


class Monitor:
    def __init__(self, pid, port):
        self.pid, self.port = pid, port
        self.samples = []  # (t, rss KiB)
        self.probes = []  # (t, seconds, ok)
        self.stop = threading.Event()
        self.th = [threading.Thread(target=self.sample), threading.Thread(target=self.probe)]
        for t in self.th:
            t.start()

    def sample(self):
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), rss_kib(self.pid), tcp_mem_kib()))
            self.stop.wait(0.1)

    def probe(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            t = time.monotonic()
            dt, ok = probe_once(self.port)
            self.probes.append((t, dt, ok))
            nxt += PROBE_EVERY
            self.stop.wait(max(0, nxt - time.monotonic()))

    def finish(self):
        self.stop.set()
        for t in self.th:
            t.join()


def p99(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.99 * len(xs)) - 1)] if xs else float("nan")


def run_attack(name, fn, wharfd_args, prepare=None):
    p, port, log = start_wharfd(name, wharfd_args)
    ctx = {}
    notes = []
    try:
        if prepare:
            prepare(port, ctx, notes)
        for _ in range(50):  # warm the file cache and the allocator
            request(port, "GET", "/")
        time.sleep(1.0)
        before = rss_kib(p.pid)
        mon = Monitor(p.pid, port)
        q = mp.Queue()
        child = mp.Process(target=attacker, args=(fn, port, ctx, q))
        t0 = time.monotonic()
        child.start()
        try:
            stats = q.get(timeout=SECS + 120)
        except Exception:
            stats = {"client did not finish": 1}
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
        t1 = time.monotonic()
        time.sleep(SETTLE)
        after = rss_kib(p.pid)
        mon.finish()
        peak = max([r for t, r, _ in mon.samples if t0 <= t] + [before])
        kpeak = max([k for t, _, k in mon.samples if t0 <= t] + [0])
        during = [(dt, ok) for t, dt, ok in mon.probes if t0 <= t <= t1]
        lat = [dt for dt, _ in during]
        fails = sum(1 for _, ok in during if not ok)
        if name == "pipelined-posts":
            st, body = request(port, "GET", "/guestbook?posted=1")
            shown = len(re.findall(rb'<bdi class="msg">spam ', body))
            notes.append("page shows %d spam of 100" % shown)
        alive = p.poll() is None
        if not alive:
            notes.append("WHARFD DIED (%s)" % p.returncode)
    finally:
        stop_wharfd(p)
    keys = sorted(stats, key=lambda k: -stats[k])
    notes = ["%s: %d" % (k, stats[k]) for k in keys] + notes
    return dict(name=name, before=before, peak=peak, after=after, kpeak=kpeak, p99=p99(lat),
                pmax=max(lat) if lat else float("nan"), probes=len(lat), fails=fails,
                notes="; ".join(notes))


def fill_guestbook(port, ctx, notes):
    token = form_token(port)
    for i in range(100):
        request(port, "POST", "/guestbook", post_body('"' * 64, '"' * 1024, token), FORM)
    st, body = request(port, "GET", "/guestbook?posted=1")
    notes.append("page %d KB" % (len(body) // 1000))


def get_token(port, ctx, notes):
    ctx["token"] = form_token(port)


ATTACKS = [
    ("slow-bodies", slow_bodies, [], None),
    ("slow-readers", slow_readers, ["--guestbook-rate", "0"], fill_guestbook),
    ("silent-chat", silent_chat, [], None),
    ("ws-fragments", ws_fragments, ["--ws-echo"], None),
    ("pipelined-posts", pipelined_posts, [], get_token),
]


def mib(kib):
    return "%.1f" % (kib / 1024.0)


def main():
    mp.set_start_method("fork")
    rows = []
    for name, fn, args, prep in ATTACKS:
        if ONLY and name not in ONLY:
            continue
        print("running %s (%d connections, %g s)..." % (name, CONNS, SECS), file=sys.stderr,
              flush=True)
        rows.append(run_attack(name, fn, args, prep))
    print()
    print("# bench/hostile.sh: wharfd %s (release, --threads 2), %d hostile connections per "
          "attack for %g s, probe GET / every %g s" % (os.environ["REV"], CONNS, SECS, PROBE_EVERY))
    print("# %s, %d CPUs; MiB; after = %g s after the clients left; slow readers pipeline %d "
          "pages each; loopback MTU %s; wharfd %s" % (
              time.strftime("%Y-%m-%d"), os.cpu_count(), SETTLE, PIPELINE,
              os.environ["LO_MTU"] or "65536 (host)", os.environ["WHARFD_ARGS"] or "defaults"))
    hdr = ("attack", "RSS before", "peak", "peak-before", "after", "kernel TCP peak",
           "probe p99 ms", "max ms", "failed")
    print("| " + " | ".join(hdr) + " |")
    print("| --- |" + " ---: |" * (len(hdr) - 1))
    for r in rows:
        print("| %s | %s | %s | %s | %s | %s | %.1f | %.1f | %d/%d |" % (
            r["name"], mib(r["before"]), mib(r["peak"]), mib(r["peak"] - r["before"]),
            mib(r["after"]), mib(r["kpeak"]), r["p99"] * 1000, r["pmax"] * 1000, r["fails"],
            r["probes"]))
    print()
    for r in rows:
        print("- %s: %s" % (r["name"], r["notes"]))


main()
PY
