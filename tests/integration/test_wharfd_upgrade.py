#!/usr/bin/python3
"""wharfd upgrade by SIGUSR2 under continuous load (8 keep-alive and 4
connection-per-request clients, no retries): 0 failed requests, the old
process gone (exit 0), the new one serving on the same port; systemd hears
RELOADING=1, then MAINPID=<new pid> with READY=1 on the NOTIFY_SOCKET the
test binds. A failed upgrade (the configuration file broken before the
signal: the new process exits 2) leaves the old one serving, with 0 failed
requests, and logs why.
WH_TEST_LABELS: tsan
"""
import os
import re
import signal
import tempfile
import time

from loadclient import Load
from opsutil import Notify, alive, stop_pid, wait_log
from wharfdutil import Checker, Wharfd, curl

c = Checker()
tmp = tempfile.mkdtemp(prefix="wharfd_upgrade_")
www = os.path.join(tmp, "www")
os.makedirs(www)
with open(os.path.join(www, "index.html"), "w") as f:
    f.write("hello\n")
conf = os.path.join(tmp, "wharfd.conf")
with open(conf, "w") as f:
    f.write("keepalive-timeout = 5   # seconds\n")

notify = Notify()
new_pids = []
try:
    w = Wharfd(www, "--config", conf, env=notify.env())
    old = w.proc.pid
    c.check(notify.wait_for("READY=1") is not None, "READY=1 at start")
    c.check(any("MAINPID=%d" % old in m for m in notify.poll()), "MAINPID=<pid> at start")

    # --- a failed upgrade: the new process refuses the configuration ---
    with open(conf, "w") as f:
        f.write("keepalive-timeout = soon\n")
    mark = len(w.errors())
    with Load(w.port) as load:
        time.sleep(0.5)
        w.signal(signal.SIGUSR2)
        m = wait_log(w.errors, r"upgrade failed: new process (\d+) ([^\n]*)", 20, mark)
        c.check(m is not None, "failed upgrade logged: %s" % (m.group(0) if m else w.errors()[mark:]))
        c.check(m is not None and "exited with status 2" in m.group(2),
                "the new process exited 2 (bad configuration)")
        time.sleep(0.5)
    print(load.summary())
    c.eq(load.failed, 0, "failed requests during a failed upgrade")
    c.check(load.ok > 50, "requests served during a failed upgrade (%d)" % load.ok)
    c.check(w.proc.poll() is None, "old process still running after the failed upgrade")
    st, _, body = curl(w.base + "/")
    c.check(st == 200 and body == b"hello\n", "old process still serves")

    # --- the real upgrade ---
    with open(conf, "w") as f:
        f.write("keepalive-timeout = 5   # seconds\n")
    mark = len(w.errors())
    notify.messages.clear()
    with Load(w.port) as load:
        time.sleep(1.0)
        before = load.total()
        w.signal(signal.SIGUSR2)
        m = wait_log(w.errors, r"upgrade: new process (\d+) is serving", 20, mark)
        c.check(m is not None, "upgrade: the new process said it is ready")
        new = int(m.group(1)) if m else 0
        if new:
            new_pids.append(new)
        try:
            rc = w.proc.wait(timeout=20)
        except Exception:
            rc = None
        c.eq(rc, 0, "old process exits 0 after draining")
        time.sleep(1.0)  # load on the new process alone
        after_total = load.total()
    print(load.summary())
    c.eq(load.failed, 0, "failed requests across the upgrade")
    c.check(after_total - before > 100, "requests across the upgrade (%d)" % (after_total - before))
    c.check(not alive(old), "old process gone")
    c.check(new and alive(new), "new process running")
    st, _, body = curl(w.base + "/")
    c.check(st == 200 and body == b"hello\n", "new process serves on the same port")
    msgs = "\n".join(notify.poll())
    c.check("RELOADING=1" in msgs, "RELOADING=1 sent at SIGUSR2")
    c.check(("MAINPID=%d" % new) in msgs and "READY=1" in msgs,
            "MAINPID=<new pid> and READY=1 sent: %r" % msgs)
    c.check("STOPPING=1" not in msgs, "the old process does not send STOPPING=1 after handing over")
    c.check(re.search(r"wharfd .*pid %d" % new, w.errors()) is not None, "new process logged its start")

    # The new process stops by SIGTERM like any other (not our child).
    if new:
        os.kill(new, signal.SIGTERM)
        c.check(wait_log(w.errors, r"stopped", 15, len(w.errors()) - 200) is not None,
                "new process stops on SIGTERM")
finally:
    for p in new_pids:
        stop_pid(p)
    notify.close()
    try:
        w.cleanup()
    except NameError:
        pass
c.done()
