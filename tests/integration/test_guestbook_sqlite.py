#!/usr/bin/env python3
"""The guestbook's default store: SQLite in --data DIR.

- the same functional checks as the other stores; entries and the visitor
  counter survive a restart (SIGTERM) and a crash (SIGKILL right after the
  303s: every acknowledged entry is there);
- 200 parallel posts from 32 clients on 2 worker threads: all 303, all 200
  rows in the file; a post's latency (median, p99) is printed;
- the disk full while running: the post that does not fit is a 503, every
  303 before it is on the page;
- the database unusable: a data directory on a read-only file system, a
  corrupt file: wharfd starts, logs the file and SQLite's reason, answers
  the guestbook with 503 (posts and views) and keeps serving other pages.
WH_TEST_LABELS: guestbook
"""
import concurrent.futures
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import gbutil
from gbutil import Checker, Wharfd, page, post, shown_messages, visitors


def rows(data):
    db = sqlite3.connect(os.path.join(data, "guestbook.db"))
    try:
        return [(n.decode(), m.decode()) for n, m in
                db.execute("SELECT name, msg FROM entries ORDER BY id")]
    finally:
        db.close()


def post_retrying(port, name, msg):
    """POST; a 503 (a write lock not had within busy_timeout: only on an
    overloaded machine) is retried as a client does after Retry-After, and
    must have stored nothing (the callers count the rows).
    Returns (status, seconds of the last try, 503s)."""
    refused = 0
    for _ in range(20):
        t0 = time.perf_counter()
        st = post(port, name, msg)[0]
        if st != 503:
            break
        refused += 1
        time.sleep(0.05)
    return st, time.perf_counter() - t0, refused


def persistence(check, data):
    with Wharfd(["--data", data], threads=2) as w:
        check("SQLite database in " + data in w.log_text(), "wharfd logs its SQLite store")
        gbutil.check_functional(check, w.port)
        st, _, _ = post(w.port, "keeper", "still here after a restart")
        check(st == 303, "post answered 303")
        st, _, text = page(w.port)
        before = visitors(text)
    check(w.clean_exit(), "wharfd exits 0 on SIGTERM (%s)" % w.returncode)
    with Wharfd(["--data", data], threads=1) as w2:
        st, _, text = page(w2.port)
        check(st == 200 and shown_messages(text)[:1] == ["still here after a restart"],
              "after a restart the entry is still there, newest first")
        check(visitors(text) == before + 1, "the visitor counter went on (%s -> %s)"
              % (before, visitors(text)))
        # 200 parallel posts, each timed.
        def one(i):
            return post_retrying(w2.port, "p%d" % i, "parallel %d" % i)
        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            res = list(ex.map(one, range(200)))
        check(all(st == 303 for st, _, _ in res), "200 parallel posts answered 303 (%d 503s retried)"
              % sum(r for _, _, r in res))
        lat = sorted(t for _, t, _ in res)
        print("  post latency over HTTP with 32 clients: median %.2f ms, p99 %.2f ms"
              % (statistics.median(lat) * 1e3, lat[int(len(lat) * 0.99) - 1] * 1e3))
        seq = []
        for i in range(100):
            t0 = time.perf_counter()
            post(w2.port, "s", "seq %d" % i)
            seq.append(time.perf_counter() - t0)
        seq.sort()
        print("  post latency over HTTP, one client: median %.2f ms, p99 %.2f ms"
              % (statistics.median(seq) * 1e3, seq[98] * 1e3))
        stored = [m for _, m in rows(data)]
        par = sorted(m for m in stored if m.startswith("parallel "))
        check(par == sorted("parallel %d" % i for i in range(200)),
              "all 200 parallel entries are in the database, each once")
        # A crash right after the acknowledgements loses none of them.
        for i in range(20):
            check(post(w2.port, "k", "before the crash %d" % i)[0] == 303, "post %d: 303" % i) \
                if i == 19 else post(w2.port, "k", "before the crash %d" % i)
        w2.proc.send_signal(signal.SIGKILL)
        w2.proc.wait()
    with Wharfd(["--data", data], threads=2) as w3:
        st, _, text = page(w3.port)
        msgs = shown_messages(text)
        check(msgs[:20] == ["before the crash %d" % i for i in range(19, -1, -1)],
              "after SIGKILL every acknowledged entry is there, newest first")
        check(len(msgs) == 100, "the page shows 100 entries")
    # The config file's key names the same directory.
    conf = os.path.join(os.path.dirname(data), "wharfd.conf")
    with open(conf, "w") as f:
        f.write("data = %s\n" % data)
    with Wharfd(["--config", conf], threads=1) as w4:
        st, _, text = page(w4.port)
        check(shown_messages(text)[:1] == ["before the crash 19"],
              "data = DIR in a config file opens the same database")


def keep_bound(check, data):
    with Wharfd(["--data", data], threads=2) as w:
        def one(i):
            return post_retrying(w.port, "b", "bound %d" % i)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            res = list(ex.map(one, range(1010)))
        check(all(st == 303 for st, _, _ in res), "1010 more posts answered 303 (%s; %d 503s "
              "retried)" % (sorted(set(st for st, _, _ in res)), sum(r for _, _, r in res)))
        r = rows(data)
        check(len(r) == 1000, "the database keeps the newest 1000 entries (%d)" % len(r))


def unusable(check, args, prefix, what, reason):
    """wharfd with a database it cannot use: clear log line, 503, alive."""
    with Wharfd(args, threads=2, prefix=prefix) as w:
        st, hd, _ = gbutil.http(w.port, "GET", "/guestbook")
        check(st == 503 and hd.get("retry-after") == "1", "%s: the page answers 503 (%d)"
              % (what, st))
        st = post(w.port, "x", "lost?", token="not-needed-for-the-check")[0]
        check(st in (403, 503), "%s: a post stores nothing (%d)" % (what, st))
        st, _, _ = gbutil.http(w.port, "GET", "/")
        check(st == 200, "%s: other pages are still served" % what)
        log = w.log_text()
        check("guestbook:" in log and reason in log and "answering 503" in log,
              "%s: the log names the file and the reason" % what)
        print("   log: " + [l for l in log.splitlines() if reason in l][0] if reason in log
              else "   log: " + log)
    check(w.clean_exit(), "%s: wharfd exits cleanly (%s)" % (what, w.returncode))


def disk_full(check, top):
    """Root only: the data directory on a 160 KiB tmpfs in wharfd's own mount
    namespace. Posts of 1000 bytes until one is refused: every 303 before it
    is on the page, the refusal is a 503 with the reason in the log."""
    if os.geteuid() != 0:
        print("  skip disk full (needs a private tmpfs mount: root)")
        return
    d = os.path.join(top, "full")
    os.mkdir(d)
    prefix = ("unshare", "-m", "sh", "-c",
              'mount -t tmpfs -o size=160k tmpfs "$0" && exec "$@"', d)
    with Wharfd(["--data", d], threads=2, prefix=prefix) as w:
        acked, refused = [], None
        for i in range(300):
            msg = ("full %03d " % i) + "x" * 990
            st, hd, _ = post(w.port, "f", msg)
            if st != 303:
                refused = (st, hd.get("retry-after"))
                break
            acked.append(msg)
        check(refused == (503, "1"), "disk full: a post is refused with 503 (%s after %d)"
              % (refused, len(acked)))
        check(0 < len(acked) < 100, "disk full: %d posts were stored before" % len(acked))
        st, _, body = gbutil.http(w.port, "GET", "/guestbook?posted=1")
        shown = shown_messages(body.decode())
        check(st == 200 and shown == acked[::-1],
              "disk full: every acknowledged entry is shown (%d of %d)" % (len(shown), len(acked)))
        check("database or disk is full" in w.log_text(), "disk full: the log says so")
        check(gbutil.http(w.port, "GET", "/")[0] == 200, "disk full: other pages still served")
    check(w.clean_exit(), "disk full: wharfd exits cleanly (%s)" % w.returncode)


def main():
    check = Checker()
    top = tempfile.mkdtemp(prefix="wh-gb-sqlite-")
    try:
        data = os.path.join(top, "data")  # made by wharfd
        persistence(check, data)
        keep_bound(check, data)

        disk_full(check, top)

        # Corrupt: a file that is not a database.
        bad = os.path.join(top, "corrupt")
        os.mkdir(bad)
        with open(os.path.join(bad, "guestbook.db"), "wb") as f:
            f.write(b"this is not an SQLite database\n" * 300)
        unusable(check, ["--data", bad], (), "corrupt file", "file is not a database")

        # Read-only: root ignores file modes, so mount the directory read-only
        # in a private mount namespace; other users get a chmod.
        ro = os.path.join(top, "ro")
        shutil.copytree(data, ro)
        if os.geteuid() == 0:
            prefix = ("unshare", "-m", "sh", "-c",
                      'mount --bind -o ro "$0" "$0" && exec "$@"', ro)
        else:
            os.chmod(ro, 0o555)
            prefix = ()
        unusable(check, ["--data", ro], prefix, "read-only data dir", ro)
        # A data directory that cannot be made.
        unusable(check, ["--data", os.path.join(ro, "sub")], prefix, "data dir cannot be made",
                 "cannot create the data directory")
    finally:
        try:
            os.chmod(os.path.join(top, "ro"), 0o755)
        except OSError:
            pass
        shutil.rmtree(top, ignore_errors=True)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
