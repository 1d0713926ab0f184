#!/usr/bin/env python3
"""Three wharfd hosts behind HAProxy (deploy/haproxy.cfg as is), PROXY
protocol v2 from the balancer, health checks on /healthz.

Network: as root, namespaces the test creates and always deletes: a bridge
namespace and one namespace each for the three hosts, HAProxy and the load
client, joined by veth pairs on 10.77.0.0/24, an address range that exists
only inside them (nothing is routed out). Where namespaces cannot be created
(not root) the same runs on loopback addresses instead (hosts on 127.0.0.2-4,
HAProxy connecting from 127.0.0.9, the client from 127.0.0.5: 127.0.0.0/8 is
all local on Linux). Either way "whose address did wharfd log" has one right
answer: the client's, never the balancer's (the only address the hosts trust
for PROXY headers).

The client sends steady GETs over keep-alive connections and never retries.
Phases:
  steady   every host answers, spread evenly (round robin);
  kill     one host SIGKILLed mid-load, then restarted: 0 failed requests
           (HAProxy's retry-on/redispatch covers the requests it was
           serving; its retries and redispatches are reported), and it is
           back in rotation;
  rolling  (when wharfd has --drain-delay, issue 18) each host in turn gets
           SIGTERM only, drains (503 on /healthz while it keeps serving), is
           restarted: 0 failed requests, 0 retries, 0 redispatches.
Finally every access-log line of every host for the client's requests
carries the client's address, and health checks (PROXY v2 LOCAL) the
balancer's. Bounded: about 15 s (25 s with the rolling phase). Skipped, with
a message, only when haproxy is not installed (scripts/deps.sh test).
WH_TEST_LABELS: haproxy
"""
import csv
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from wharfdutil import SOURCE, WHARFD, Checker  # noqa: E402

HAS_DRAIN = "--drain-delay" in subprocess.run([WHARFD, "--help"], capture_output=True,
                                              text=True).stdout


# ---- the network: namespaces, or loopback addresses -------------------------

class Net:
    """Where each role runs and its address. roles: h1 h2 h3 lb client."""

    def __init__(self):
        self.tag = "wh%d" % os.getpid()
        self.ns = {}
        self.made = []
        # WH_TEST_NO_NETNS=1 forces the loopback variant (to try it as root).
        if (os.geteuid() == 0 and shutil.which("ip") and not os.environ.get("WH_TEST_NO_NETNS")
                and self._netns()):
            self.kind = "network namespaces"
            self.addr = {"h1": "10.77.0.11", "h2": "10.77.0.12", "h3": "10.77.0.13",
                         "lb": "10.77.0.2", "client": "10.77.0.100"}
        else:
            self.cleanup()
            self.kind = "loopback addresses"
            self.addr = {"h1": "127.0.0.2", "h2": "127.0.0.3", "h3": "127.0.0.4",
                         "lb": "127.0.0.9", "client": "127.0.0.5"}
        # HAProxy listens here; it connects to the hosts from addr["lb"].
        self.front = "10.77.0.2" if self.ns else "127.0.0.1"

    def _ip(self, *args):
        return subprocess.run(["ip", *args], capture_output=True, text=True).returncode == 0

    def _netns(self):
        br = self.tag + "-br"
        if not self._ip("netns", "add", br):
            return False
        self.made.append(br)
        ok = (self._ip("-n", br, "link", "add", "br0", "type", "bridge") and
              self._ip("-n", br, "link", "set", "br0", "up") and
              self._ip("-n", br, "link", "set", "lo", "up"))
        addrs = {"h1": 11, "h2": 12, "h3": 13, "lb": 2, "client": 100}
        for role, n in addrs.items():
            if not ok:
                break
            ns = "%s-%s" % (self.tag, role)
            if not self._ip("netns", "add", ns):
                return False
            self.made.append(ns)
            veth = "v%s" % role
            ok = (self._ip("-n", br, "link", "add", veth, "type", "veth", "peer", "name",
                           "eth0", "netns", ns) and
                  self._ip("-n", br, "link", "set", veth, "master", "br0", "up") and
                  self._ip("-n", ns, "addr", "add", "10.77.0.%d/24" % n, "dev", "eth0") and
                  self._ip("-n", ns, "link", "set", "eth0", "up") and
                  self._ip("-n", ns, "link", "set", "lo", "up"))
            self.ns[role] = ns
        if not ok:
            self.ns = {}
        return ok

    def prefix(self, role):
        """argv prefix that runs a program in role's network."""
        return ["ip", "netns", "exec", self.ns[role]] if self.ns else []

    def cleanup(self):
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made = []


# ---- wharfd hosts ------------------------------------------------------------

class Host:
    def __init__(self, net, name, port, tmp):
        self.net, self.name, self.ip, self.port = net, name, net.addr[name], port
        self.root = os.path.join(tmp, name + "-root")
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "host.txt"), "w") as f:
            f.write(name)
        self.tmp = tmp
        self.logs = []  # one access log per run (a restart starts a new file)
        self.proc = None

    def start(self):
        n = len(self.logs)
        alog = os.path.join(self.tmp, "%s.access.%d" % (self.name, n))
        err = os.path.join(self.tmp, "%s.err.%d" % (self.name, n))
        self.logs.append(alog)
        cmd = self.net.prefix(self.name) + [
            WHARFD, "--root", self.root, "--threads", "1", "--bind",
            "%s:%d" % (self.ip, self.port), "--proxy-protocol", "--proxy-trusted",
            self.net.addr["lb"], "--access-log", alog, "--error-log", err,
            "--keepalive-timeout", "30"]
        if HAS_DRAIN:
            cmd += ["--drain-delay", "1"]
        # "ip netns exec" execs the program: the pid is wharfd's own.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %d: %s" % (self.name, self.proc.returncode,
                                                         open(err).read()))
            if os.path.exists(err) and "listening on" in open(err).read():
                return
            time.sleep(0.02)
        raise RuntimeError(self.name + " did not start")

    def stop(self, sig=signal.SIGTERM, wait=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the load client (runs in its own namespace: a child process) -----------

def load_main(front, port, source):
    """Client threads: GET /host.txt in a loop over keep-alive connections,
    no retry. Commands on stdin: "snap" prints counts as JSON; "stop" ends."""
    lock = threading.Lock()
    by_host, failed = {}, []
    stop_ev = threading.Event()

    def run():
        conn = None
        while not stop_ev.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(front, port, timeout=5,
                                                  source_address=(source, 0))
            try:
                conn.request("GET", "/host.txt")
                r = conn.getresponse()
                body = r.read().decode()
                with lock:
                    if r.status == 200:
                        by_host[body] = by_host.get(body, 0) + 1
                    else:
                        failed.append("status %d" % r.status)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # no retry: a failure is a failure
                with lock:
                    failed.append(repr(e))
                conn.close()
                conn = None
            time.sleep(0.004)
        if conn:
            conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for line in sys.stdin:
        if line.strip() == "stop":
            stop_ev.set()
            for t in threads:
                t.join(timeout=10)
        with lock:
            print(json.dumps({"by_host": by_host, "failed": len(failed),
                              "failures": failed[-5:]}), flush=True)
        if stop_ev.is_set():
            return


class Load:
    def __init__(self, net, port):
        self.proc = subprocess.Popen(
            net.prefix("client") + [sys.executable, os.path.abspath(__file__), "--load",
                                    net.front, str(port), net.addr["client"]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def snapshot(self):
        d = self._ask("snap")
        return d["by_host"], d["failed"], d["failures"]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self._ask("stop")
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


# ---- HAProxy's view ----------------------------------------------------------

def haproxy_stats(sock_path):
    """Rows of "show stat" for backend wharfd: server name -> dict."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(3)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    rows = {}
    for row in csv.DictReader(io.StringIO(data.decode().lstrip("# "))):
        if row.get("pxname") == "wharfd":
            rows[row["svname"]] = row
    return rows


def counters(sock_path):
    """Backend retries and redispatches so far."""
    b = haproxy_stats(sock_path).get("BACKEND", {})
    return int(b.get("wretr") or 0), int(b.get("wredis") or 0)


def wait_status(sock_path, server, want, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if haproxy_stats(sock_path).get(server, {}).get("status", "").startswith(want):
            return True
        time.sleep(0.05)
    return False


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                          if os.path.exists("/usr/sbin/haproxy") else None)
    if not haproxy:
        print("SKIP: haproxy is not installed (./scripts/deps.sh test installs it)")
        return
    ck = Checker()
    tmp = tempfile.mkdtemp(prefix="wharfd_haproxy_")
    net = Net()
    print("network: " + net.kind)
    hport = free_port()  # the same number on every host (each has its own address)
    fport = free_port()
    lb_ip, client_ip = net.addr["lb"], net.addr["client"]
    hosts = [Host(net, "h%d" % (i + 1), hport, tmp) for i in range(3)]
    stats = os.path.join(tmp, "haproxy.sock")  # a file: reachable from every namespace
    env = dict(os.environ, WH_FRONT="%s:%d" % (net.front, fport), WH_SOURCE=lb_ip,
               WH_STATS=stats)
    for i, h in enumerate(hosts):
        env["WH_H%d" % (i + 1)] = "%s:%d" % (h.ip, hport)
    lb = None
    load = None
    try:
        for h in hosts:
            h.start()
        lb = subprocess.Popen(net.prefix("lb") + [haproxy, "-db", "-f",
                                                  os.path.join(SOURCE, "deploy/haproxy.cfg")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not os.path.exists(stats) and time.time() < deadline and lb.poll() is None:
            time.sleep(0.05)
        ck.check(lb.poll() is None and os.path.exists(stats), "haproxy runs")
        ck.check(all(wait_status(stats, h.name, "UP") for h in hosts),
                 "all three hosts UP (health checks on /healthz over PROXY v2 LOCAL)")

        load = Load(net, fport)
        # ---- steady ----
        time.sleep(2.0)
        by, failed, why = load.snapshot()
        total = sum(by.values())
        print("steady: %d requests %s, %d failed %s" % (total, by, failed, why))
        ck.eq(failed, 0, "steady: 0 failed")
        ck.check(total > 100 and all(by.get(h.name, 0) > total / 5 for h in hosts),
                 "steady: spread over the three hosts")

        # ---- kill one host, restart it ----
        r0, d0 = counters(stats)
        before, f0, _ = load.snapshot()
        hosts[2].stop(signal.SIGKILL)
        ck.check(wait_status(stats, "h3", "DOWN"), "kill: HAProxy marks h3 DOWN")
        time.sleep(0.5)
        hosts[2].start()
        ck.check(wait_status(stats, "h3", "UP"), "kill: h3 back UP after restart")
        time.sleep(1.0)
        after, f1, why = load.snapshot()
        r1, d1 = counters(stats)
        got = delta(after, before)
        print("kill+restart: %s, %d failed %s, HAProxy retries %d, redispatches %d"
              % (got, f1 - f0, why if f1 != f0 else "", r1 - r0, d1 - d0))
        ck.eq(f1 - f0, 0, "kill+restart: 0 failed requests (HAProxy retry-on as configured)")
        ck.check(got.get("h3", 0) > 0, "kill+restart: h3 serves again")

        # ---- rolling restart with wharfd's own drain (issue 18) ----
        if HAS_DRAIN:
            r0, d0 = counters(stats)
            before, f0, _ = load.snapshot()
            for h in hosts:
                h.stop(signal.SIGTERM)  # drains: /healthz 503 for --drain-delay, then stops
                h.start()
                ck.check(wait_status(stats, h.name, "UP"), "rolling: %s back UP" % h.name)
            time.sleep(0.5)
            after, f1, why = load.snapshot()
            r1, d1 = counters(stats)
            print("rolling: %s, %d failed %s, HAProxy retries %d, redispatches %d"
                  % (delta(after, before), f1 - f0, why if f1 != f0 else "", r1 - r0, d1 - d0))
            ck.eq(f1 - f0, 0, "rolling (SIGTERM only): 0 failed requests")
            ck.eq(r1 - r0, 0, "rolling: 0 retries at HAProxy")
            ck.eq(d1 - d0, 0, "rolling: 0 redispatches at HAProxy")
        else:
            print("rolling restart with SIGTERM only: not run, this wharfd has no --drain-delay "
                  "(issue 18)")
    finally:
        if load:
            load.stop()
        if lb and lb.poll() is None:
            lb.terminate()
            try:
                lb.wait(timeout=5)
            except subprocess.TimeoutExpired:
                lb.kill()
                lb.wait()
        for h in hosts:
            h.stop()
        net.cleanup()

    # ---- access logs: the client's address, never the balancer's ----
    lines = []
    for h in hosts:
        for path in h.logs:
            if os.path.exists(path):
                with open(path) as f:
                    lines += [(h.name, x) for x in f.read().splitlines()]
    mine = [(n, x) for n, x in lines if '"GET /host.txt ' in x]
    checks = [(n, x) for n, x in lines if '"GET /healthz ' in x]
    ck.check(len(mine) > 100 and all(x.split(" ")[0] == client_ip for _, x in mine),
             "access logs: %d requests, all from the client %s" % (len(mine), client_ip))
    ck.check(all(any(n == h.name for n, _ in mine) for h in hosts), "access logs: every host")
    ck.check(not any(x.split(" ")[0] == lb_ip for _, x in mine),
             "access logs: never the balancer's %s for client requests" % lb_ip)
    ck.check(len(checks) > 0 and all(x.split(" ")[0] == lb_ip for _, x in checks),
             "access logs: health checks (PROXY LOCAL) as the balancer's own address")
    shutil.rmtree(tmp, ignore_errors=True)
    ck.done()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--load":
        load_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
