#!/usr/bin/env python3
"""bench/http_idle.py: what an idle keep-alive connection costs in user space.

Opens N connections (default 10,000) to wharf (examples/hello, 1 worker) and
to nginx (1 worker), sends one GET /plaintext on each, reads the answer and
leaves the connection idle (keep-alive). The server's RSS (VmRSS; for nginx
master + worker) is read after a warm-up of 100 such connections and again
with all N open; the difference divided by the extra connections is the
user-space bytes per idle connection. Kernel socket memory is not in RSS and
not counted (the same for both servers).

Usage: bench/http_idle.py [BUILD_DIR]   N=10000 (env)
       bench/http_idle.py --port PORT --pid PID [--name NAME] [--path PATH]
           measures a server that is already running (bench/compare.sh uses
           this): PID and its children are summed; the answer must end with
           the body of GET PATH (default /plaintext: "Hello, World!"). Prints
           one line "NAME bytes_per_conn B alive A".
"""
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTACH = {}
if len(sys.argv) > 1 and sys.argv[1].startswith("--"):
    args = sys.argv[1:]
    if len(args) % 2:
        sys.exit("usage: http_idle.py --port PORT --pid PID [--name NAME] [--path PATH]")
    ATTACH = dict(zip((a.lstrip("-") for a in args[0::2]), args[1::2]))
    if "port" not in ATTACH or "pid" not in ATTACH:
        sys.exit("http_idle.py: --port and --pid are both needed")
BUILD = sys.argv[1] if len(sys.argv) > 1 and not ATTACH else os.environ.get(
    "WH_BUILD_DIR", os.path.join(ROOT, "build", "release"))
N = int(os.environ.get("N", "10000"))
WARM = 100

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if N + WARM + 100 > hard:
    N = hard - WARM - 200
    print("open files capped at %d: using N=%d" % (hard, N))


def rss_kib(pids):
    total = 0
    for p in pids:
        with open("/proc/%d/status" % p) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]
    except OSError:
        return []


REQ = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % ATTACH.get("path", "/plaintext").encode()
BODY_END = b"Hello, World!"


def open_idle(port, n, keep):
    """Opens n connections, one request each, answers read; appends to keep."""
    sel = selectors.DefaultSelector()
    batch = 500
    done = 0
    while done < n:
        socks = []
        for _ in range(min(batch, n - done)):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(REQ)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
            socks.append(s)
        pending = len(socks)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                d = key.fileobj.recv(4096)
                key.data.extend(d)
                if key.data.endswith(BODY_END) or not d:
                    sel.unregister(key.fileobj)
                    pending -= 1
        if pending:
            raise RuntimeError("%d connections got no answer" % pending)
        keep.extend(socks)
        done += len(socks)


def measure(name, port, pids_fn):
    keep = []
    try:
        open_idle(port, WARM, keep)
        time.sleep(0.5)
        before = rss_kib(pids_fn())
        open_idle(port, N, keep)
        time.sleep(1.0)
        after = rss_kib(pids_fn())
        per = (after - before) * 1024 / N
        # the connections must still be open (idle keep-alive, not closed)
        alive = 0
        for s in keep[-100:]:
            try:
                s.setblocking(False)
                d = s.recv(1)
                alive += 0 if d == b"" else 1
            except BlockingIOError:
                alive += 1
        print("%-6s RSS %7d KiB -> %7d KiB with %d more idle conns: %6.0f bytes/conn"
              " (last 100 still open: %d)" % (name, before, after, N, per, alive), flush=True)
        return per, alive
    finally:
        for s in keep:
            s.close()


def start_wharf():
    exe = os.path.join(BUILD, "hello")
    p = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0", "--threads", "1",
                          "--keepalive-ms", "600000"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, int(line.split(":")[-1])


def start_nginx(tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    os.makedirs(os.path.join(tmp, "logs"), exist_ok=True)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""user root;
worker_processes 1;
worker_rlimit_nofile %d;
daemon off;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections %d; }
http {
    access_log off;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    default_type text/plain;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    server { listen 127.0.0.1:%d; location / { return 200 "Hello, World!"; } }
}
""" % (hard, tmp, tmp, N + 1000, tmp, tmp, tmp, tmp, tmp, port))
    p = subprocess.Popen(["nginx", "-p", tmp, "-c", conf])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, port


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


if ATTACH:
    pid = int(ATTACH["pid"])
    name = ATTACH.get("name", "server")
    per, alive = measure(name, int(ATTACH["port"]), lambda: [pid] + children(pid))
    print("%s bytes_per_conn %.0f alive %d" % (name, per, alive))
    sys.exit(0)

results = {}
tmp = tempfile.mkdtemp()
try:
    p, port = start_wharf()
    try:
        results["wharf"] = measure("wharf", port, lambda: [p.pid])[0]
    finally:
        stop(p)
    if shutil.which("nginx"):
        p, port = start_nginx(tmp)
        try:
            results["nginx"] = measure("nginx", port, lambda: [p.pid] + children(p.pid))[0]
        finally:
            stop(p)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print()
print("| server | user-space bytes per idle keep-alive connection (%d conns) |" % N)
print("|---|---:|")
for k, v in results.items():
    print("| %s | %.0f |" % (k, v))
