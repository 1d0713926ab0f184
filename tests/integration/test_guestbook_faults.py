#!/usr/bin/env python3
"""Redis killed (SIGKILL) and restarted under load, wharfd left running.

Redis runs with appendonly yes + appendfsync always, so what it acknowledged
survives the kill (Redis fsyncs the AOF before it sends replies), and is
restarted on the same port and directory. Eight clients post and read the
guestbook through the outage. Checked:
  - every POST is answered 303 or 503, every GET 200 or 503: no hang, no
    connection error, no other status;
  - answers during the outage come back promptly (no request waits for
    Redis to return: the bound below is a generous liveness limit, not a
    speed test; the measured latencies are printed);
  - every POST answered 303 is in Redis afterwards (none lost);
  - wharfd recovers by itself: after the restart, pages and posts succeed
    again on both worker threads, without restarting wharfd;
  - a Redis that hangs (SIGSTOP) makes requests fail with 503 after the
    command timeout instead of piling up, and recovery follows SIGCONT.

WH_TEST_LABELS: slow
"""
import os
import signal
import sys
import threading
import time

from gbutil import Checker, Redis, Wharfd, http, page, post

CLIENTS = 8
PHASE_POSTS = 250  # posts per phase; 3 phases stay under the 1000 entries Redis keeps
LIVENESS_S = 5.0  # an outage answer slower than this counts as a hang


class Load:
    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.budget = PHASE_POSTS
        self.results = []  # (t, kind, status or exception text, latency, tag)
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def run(self, idx):
        n = 0
        while not self.stop.is_set():
            n += 1
            with self.lock:
                do_post = self.budget > 0 and n % 2 == 0
                if do_post:
                    self.budget -= 1
            tag = "c%d-%d" % (idx, n)
            t0 = time.time()
            try:
                if do_post:
                    st = post(self.port, "load", tag, timeout=15)[0]
                else:
                    st = http(self.port, "GET", "/guestbook", timeout=15)[0]
            except Exception as e:  # a hang (timeout) or a broken connection
                st = "error: %r" % e
            lat = time.time() - t0
            with self.lock:
                self.results.append((t0, "POST" if do_post else "GET", st, lat, tag))
            time.sleep(0.005)


def summary(results, t_from, t_to):
    sel = [r for r in results if t_from <= r[0] < t_to]
    by = {}
    for r in sel:
        by.setdefault((r[1], r[2]), []).append(r[3])
    return {k: (len(v), max(v)) for k, v in sorted(by.items(), key=str)}


def recovered(port, tries=100):
    """Polls until a page and a post succeed on fresh connections."""
    for _ in range(tries):
        try:
            if page(port)[0] == 200 and post(port, "probe", "probe")[0] == 303:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def main():
    check = Checker()
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    redis = Redis(extra=aof)
    # the Redis fixture passes "--appendonly no" first; a later flag wins
    w = Wharfd(["--redis", "127.0.0.1:%d" % redis.port], threads=2)
    try:
        print("redis on %d (AOF, fsync always), wharfd on %d" % (redis.port, w.port))
        check(recovered(w.port), "guestbook works before the outage")

        load = Load(w.port)
        t_start = time.time()
        load.start()
        time.sleep(1.5)
        t_kill = time.time()
        with load.lock:
            load.budget = PHASE_POSTS
        redis.kill()
        print("redis killed")
        time.sleep(1.5)
        t_restart = time.time()
        with load.lock:
            load.budget = 0  # GETs only until wharfd has reconnected
        redis.start()
        print("redis restarted")
        check(recovered(w.port), "wharfd reconnects by itself, without a restart")
        print("recovered %.2f s after the restart" % (time.time() - t_restart))
        with load.lock:
            load.budget = PHASE_POSTS
        time.sleep(2.0)
        load.join()
        t_end = time.time()

        res = load.results
        print("before: %s" % summary(res, t_start, t_kill))
        print("outage: %s" % summary(res, t_kill, t_restart))
        print("after : %s" % summary(res, t_restart, t_end))
        bad = [r for r in res if not ((r[1] == "POST" and r[2] in (303, 503)) or
                                     (r[1] == "GET" and r[2] in (200, 503)))]
        check(not bad, "only 303/503 for POST and 200/503 for GET (%d others, e.g. %r)"
              % (len(bad), bad[:3]))
        outage = [r for r in res if t_kill + 0.2 <= r[0] < t_restart]
        check(len(outage) > 50, "requests kept flowing during the outage (%d)" % len(outage))
        check(all(r[2] == 503 for r in outage), "all answered 503 while Redis was down")
        slow = max((r[3] for r in outage), default=0)
        print("slowest answer during the outage: %.3f s" % slow)
        check(slow < LIVENESS_S, "no request waited for Redis during the outage (max %.3f s)" % slow)
        check(any(r[2] == 303 for r in res if r[0] >= t_restart),
              "posts succeed again after the restart, wharfd not restarted")

        acked = {r[4] for r in res if r[1] == "POST" and r[2] == 303}
        stored = {e["msg"] for e in redis.entries()}
        lost = acked - stored
        print("posts answered 303: %d, in Redis: %d, lost: %d" % (len(acked), len(acked & stored), len(lost)))
        check(len(acked) > 50, "a good number of posts were acknowledged (%d)" % len(acked))
        check(not lost, "every POST answered 303 is in Redis (lost: %s)" % sorted(lost)[:5])

        # Both worker threads reconnected: many fresh connections all succeed.
        sts = [page(w.port)[0] for _ in range(40)]
        check(all(s == 200 for s in sts), "40 fresh connections all get 200 (%s)" % set(sts))

        # A hung Redis: requests fail after the command timeout, not forever.
        os.kill(redis.proc.pid, signal.SIGSTOP)
        t0 = time.time()
        results = []

        def one():
            try:
                results.append(http(w.port, "GET", "/guestbook", timeout=15)[0])
            except Exception as e:
                results.append(repr(e))
        ths = [threading.Thread(target=one) for _ in range(20)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        took = time.time() - t0
        print("20 requests against a stopped Redis: %s in %.2f s" % (set(results), took))
        check(all(s == 503 for s in results), "hung Redis -> 503 (%s)" % set(results))
        check(took < 10, "answered after the command timeout, not left hanging (%.2f s)" % took)
        os.kill(redis.proc.pid, signal.SIGCONT)
        check(recovered(w.port), "recovers after SIGCONT")
        check(w.proc.poll() is None, "wharfd still running")
        log = w.log_text()
        check("Redis connection lost" in log and "connected to Redis" in log,
              "wharfd logs losing and regaining Redis")
    finally:
        w.stop()
        redis.stop()
    check(w.clean_exit(), "wharfd exits 0 on SIGTERM, no sanitizer report (%s)" % w.returncode)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
