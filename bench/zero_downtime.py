#!/usr/bin/python3
"""Failed requests while wharfd is replaced under load (issue 18's
measurement): 8 keep-alive and 4 connection-per-request clients
(tests/integration/loadclient.py, no retries) run for the whole scenario,
RUNS times each:

  upgrade    SIGUSR2: the new process takes the sockets, the old one drains
  reuseport  a second wharfd on the same port (SO_REUSEPORT), then SIGTERM
             to the first (net.ipv4.tcp_migrate_req as the host has it)
  reload     SIGHUP with a new root

Usage: bench/zero_downtime.py [BUILD_DIR] (RUNS=5 SECONDS=4 in the
environment). Prints one table row per scenario."""
import os
import signal
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
from loadclient import Load  # noqa: E402
from opsutil import free_port, stop_pid, wait_gone, wait_log  # noqa: E402

build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build", "rel")
WHARFD = os.path.join(build, "wharfd")
RUNS = int(os.environ.get("RUNS", "5"))
SECONDS = float(os.environ.get("SECONDS", "4"))
tmp = tempfile.mkdtemp(prefix="wharfd_zd_")
for name in ("a", "b"):
    os.makedirs(os.path.join(tmp, name), exist_ok=True)
    with open(os.path.join(tmp, name, "index.html"), "w") as f:
        f.write(name * 100 + "\n")


def start(port, log, root="a", conf=None):
    args = [WHARFD, "--threads", "2", "--bind", "127.0.0.1:%d" % port, "--access-log", "off",
            "--error-log", log]
    args += ["--config", conf] if conf else ["--root", os.path.join(tmp, root)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_log(lambda: open(log).read() if os.path.exists(log) else "", "listening on", 15):
        raise SystemExit("wharfd did not start")
    return p


def scenario(name, run):
    total = failed = 0
    for i in range(RUNS):
        port = free_port()
        log = os.path.join(tmp, "%s%d.log" % (name, i))
        load = Load(port)  # started by run once the first wharfd listens
        try:
            run(port, log, load)
        finally:
            load.stop()
        total += load.ok + load.failed
        failed += load.failed
    print("| %-9s | %4d | %9d | %6d |" % (name, RUNS, total, failed), flush=True)


def upgrade(port, log, load):
    p = start(port, log)
    load.__enter__()
    time.sleep(SECONDS / 2)
    p.send_signal(signal.SIGUSR2)
    m = wait_log(lambda: open(log).read(), r"new process (\d+) is serving", 20)
    p.wait(timeout=30)
    time.sleep(SECONDS / 2)
    load.stop()
    if m:
        stop_pid(int(m.group(1)))


def reuseport(port, log, load):
    a = start(port, log)
    load.__enter__()
    time.sleep(SECONDS / 2)
    b = start(port, log + ".b")
    a.send_signal(signal.SIGTERM)
    a.wait(timeout=30)
    time.sleep(SECONDS / 2)
    load.stop()
    b.send_signal(signal.SIGTERM)
    b.wait(timeout=30)


def reload(port, log, load):
    conf = os.path.join(tmp, "zd.conf")
    with open(conf, "w") as f:
        f.write("root = %s\n" % os.path.join(tmp, "a"))
    p = start(port, log, conf=conf)
    load.__enter__()
    time.sleep(SECONDS / 2)
    with open(conf, "w") as f:
        f.write("root = %s\n" % os.path.join(tmp, "b"))
    p.send_signal(signal.SIGHUP)
    time.sleep(SECONDS / 2)
    load.stop()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


try:
    migrate = open("/proc/sys/net/ipv4/tcp_migrate_req").read().strip()
except OSError:
    migrate = "n/a"
print("wharfd zero-downtime: 8 keep-alive + 4 new-connection clients, no retries; "
      "tcp_migrate_req=%s" % migrate)
print("| scenario  | runs | requests  | failed |")
print("| --- | ---: | ---: | ---: |")
scenario("upgrade", upgrade)
scenario("reuseport", reuseport)
scenario("reload", reload)
