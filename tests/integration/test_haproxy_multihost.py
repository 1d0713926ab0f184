#!/usr/bin/env python3
"""Three wharfd hosts behind HAProxy (deploy/haproxy.cfg as is), PROXY
protocol v2 from the balancer, health checks on /healthz.

Hosts listen on their own loopback addresses (127.0.0.2, .3, .4; the whole
127.0.0.0/8 is local on Linux without setup), HAProxy connects to them from
127.0.0.9 (the only address they trust for PROXY headers) and the load
client connects to HAProxy from 127.0.0.5, so "whose address did wharfd log"
has one right answer. The client sends steady GETs over keep-alive
connections and never retries. Phases:
  steady   every host answers, spread evenly (round robin);
  kill     one host SIGKILLed mid-load, then restarted: 0 failed requests
           (HAProxy's retry-on/redispatch covers the requests it was
           serving; its retries are reported), and it is back in rotation;
  rolling  (when wharfd has --drain-delay, issue 18) each host in turn gets
           SIGTERM only, drains (503 on /healthz while it keeps serving), is
           restarted: 0 failed requests, 0 retries, 0 redispatches.
Finally every access-log line of every host for the client's requests
carries 127.0.0.5, never the balancer's 127.0.0.9.
Bounded: about 15 s (25 s with the rolling phase). Skipped, with a message,
only when haproxy is not installed (scripts/deps.sh test installs it).
WH_TEST_LABELS: haproxy
"""
import csv
import http.client
import io
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

CLIENT_IP = "127.0.0.5"
LB_IP = "127.0.0.9"
HOST_IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
DRAIN = subprocess.run([WHARFD, "--help"], capture_output=True, text=True).stdout
HAS_DRAIN = "--drain-delay" in DRAIN


def free_port(ips):
    """A port free on every address in ips (the hosts share one number)."""
    for _ in range(50):
        s = socket.socket()
        s.bind((ips[0], 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for ip in ips[1:]:
            t = socket.socket()
            try:
                t.bind((ip, port))
            except OSError:
                ok = False
            t.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


class Host:
    def __init__(self, name, ip, port, tmp):
        self.name, self.ip, self.port = name, ip, port
        self.root = os.path.join(tmp, name + "-root")
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "host.txt"), "w") as f:
            f.write(name)
        self.logs = []  # one access log per run (a restart starts a new file)
        self.err = os.path.join(tmp, name + ".err")
        self.proc = None

    def start(self):
        alog = os.path.join(os.path.dirname(self.root), "%s.access.%d" % (self.name,
                                                                          len(self.logs)))
        self.logs.append(alog)
        cmd = [WHARFD, "--root", self.root, "--threads", "1", "--bind",
               "%s:%d" % (self.ip, self.port), "--proxy-protocol", "--proxy-trusted", LB_IP,
               "--access-log", alog, "--error-log", self.err, "--keepalive-timeout", "30"]
        if HAS_DRAIN:
            cmd += ["--drain-delay", "1"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %d: %s" % (self.name, self.proc.returncode,
                                                         open(self.err).read()))
            try:
                socket.create_connection((self.ip, self.port), timeout=1).close()
                return
            except OSError:
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


class Load:
    """Client threads: GET /host.txt in a loop over keep-alive connections
    from CLIENT_IP, no retry. Counts answers per host and failures."""

    def __init__(self, port, threads=4, pause=0.004):
        self.port, self.pause = port, pause
        self.lock = threading.Lock()
        self.by_host = {}
        self.failed = []
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def snapshot(self):
        with self.lock:
            return dict(self.by_host), len(self.failed)

    def run(self):
        conn = None
        while not self.stop_ev.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5,
                                                  source_address=(CLIENT_IP, 0))
            try:
                conn.request("GET", "/host.txt")
                r = conn.getresponse()
                body = r.read().decode()
                with self.lock:
                    if r.status == 200:
                        self.by_host[body] = self.by_host.get(body, 0) + 1
                    else:
                        self.failed.append("status %d" % r.status)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # no retry: a failure is a failure
                with self.lock:
                    self.failed.append(repr(e))
                conn.close()
                conn = None
            time.sleep(self.pause)
        if conn:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=10)


def haproxy_stats(sock_path):
    """Per-server rows of "show stat": name -> dict (status, wretr, wredis)."""
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
    text = data.decode().lstrip("# ")
    rows = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("pxname") == "wharfd":
            rows[row["svname"]] = row
    return rows


def counters(sock_path):
    b = haproxy_stats(sock_path).get("BACKEND", {})
    return int(b.get("wretr") or 0), int(b.get("wredis") or 0)


def wait_status(sock_path, server, want, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = haproxy_stats(sock_path).get(server, {}).get("status", "")
        if st.startswith(want):
            return True
        time.sleep(0.05)
    return False


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def main():
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                          if os.path.exists("/usr/sbin/haproxy") else None)
    if not haproxy:
        print("SKIP: haproxy is not installed (./scripts/deps.sh test installs it)")
        return
    ck = Checker()
    tmp = tempfile.mkdtemp(prefix="wharfd_haproxy_")
    hport = free_port(HOST_IPS)
    fport = free_port(["127.0.0.1"])
    hosts = [Host("h%d" % (i + 1), ip, hport, tmp) for i, ip in enumerate(HOST_IPS)]
    stats = os.path.join(tmp, "haproxy.sock")
    env = dict(os.environ, WH_FRONT="127.0.0.1:%d" % fport, WH_SOURCE=LB_IP, WH_STATS=stats)
    for i, h in enumerate(hosts):
        env["WH_H%d" % (i + 1)] = "%s:%d" % (h.ip, hport)
    lb = None
    load = None
    try:
        for h in hosts:
            h.start()
        lb = subprocess.Popen([haproxy, "-db", "-f", os.path.join(SOURCE, "deploy/haproxy.cfg")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not os.path.exists(stats) and time.time() < deadline and lb.poll() is None:
            time.sleep(0.05)
        ck.check(lb.poll() is None and os.path.exists(stats), "haproxy runs")
        ck.check(all(wait_status(stats, h.name, "UP") for h in hosts),
                 "all three hosts UP (health checks on /healthz over PROXY v2 LOCAL)")

        load = Load(fport)
        load.start()
        # ---- steady ----
        time.sleep(2.0)
        by, failed = load.snapshot()
        total = sum(by.values())
        print("steady: %d requests %s, %d failed" % (total, by, failed))
        ck.eq(failed, 0, "steady: 0 failed")
        ck.check(total > 100 and all(by.get(h.name, 0) > total / 5 for h in hosts),
                 "steady: spread over the three hosts")

        # ---- kill one host, restart it ----
        r0, d0 = counters(stats)
        before, f0 = load.snapshot()
        hosts[2].stop(signal.SIGKILL)
        ck.check(wait_status(stats, "h3", "DOWN"), "kill: HAProxy marks h3 DOWN")
        time.sleep(0.5)
        hosts[2].start()
        ck.check(wait_status(stats, "h3", "UP"), "kill: h3 back UP after restart")
        time.sleep(1.0)
        after, f1 = load.snapshot()
        r1, d1 = counters(stats)
        got = delta(after, before)
        print("kill+restart: %s, %d failed, HAProxy retries %d, redispatches %d"
              % (got, f1 - f0, r1 - r0, d1 - d0))
        if f1 != f0:
            print("  failures: %s" % load.failed[f0:f1][:5])
        ck.eq(f1 - f0, 0, "kill+restart: 0 failed requests (HAProxy retry-on as configured)")
        ck.check(got.get("h3", 0) > 0, "kill+restart: h3 serves again")

        # ---- rolling restart with wharfd's own drain (issue 18) ----
        if HAS_DRAIN:
            r0, d0 = counters(stats)
            before, f0 = load.snapshot()
            for h in hosts:
                h.stop(signal.SIGTERM)  # drains: /healthz 503 for --drain-delay, then stops
                h.start()
                ck.check(wait_status(stats, h.name, "UP"), "rolling: %s back UP" % h.name)
            time.sleep(0.5)
            after, f1 = load.snapshot()
            r1, d1 = counters(stats)
            print("rolling: %s, %d failed, HAProxy retries %d, redispatches %d"
                  % (delta(after, before), f1 - f0, r1 - r0, d1 - d0))
            ck.eq(f1 - f0, 0, "rolling (SIGTERM only): 0 failed requests")
            ck.eq(r1 - r0, 0, "rolling: 0 retries at HAProxy")
            ck.eq(d1 - d0, 0, "rolling: 0 redispatches at HAProxy")
        else:
            print("rolling restart with SIGTERM only: not run, this wharfd has no --drain-delay "
                  "(issue 18)")
        load.stop()
        load = None
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

    # ---- access logs: the client's address, never the balancer's ----
    lines = []
    for h in hosts:
        for path in h.logs:
            if os.path.exists(path):
                with open(path) as f:
                    lines += [(h.name, x) for x in f.read().splitlines()]
    mine = [(n, x) for n, x in lines if '"GET /host.txt ' in x]
    checks = [(n, x) for n, x in lines if '"GET /healthz ' in x]
    ck.check(len(mine) > 100 and all(x.split(" ")[0] == CLIENT_IP for _, x in mine),
             "access logs: %d requests, all from %s" % (len(mine), CLIENT_IP))
    ck.check(all(any(n == h.name for n, _ in mine) for h in hosts), "access logs: every host")
    ck.check(not any(x.split(" ")[0] == LB_IP for _, x in mine),
             "access logs: never the balancer's %s for client requests" % LB_IP)
    ck.check(len(checks) > 0 and all(x.split(" ")[0] == LB_IP for _, x in checks),
             "access logs: health checks (PROXY LOCAL) as the balancer's own address")
    shutil.rmtree(tmp, ignore_errors=True)
    ck.done()


if __name__ == "__main__":
    main()
