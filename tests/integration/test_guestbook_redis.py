#!/usr/bin/env python3
"""The guestbook on real Redis: wharfd --redis 127.0.0.1:P against a
redis-server started here on a free loopback port (stopped by PID, also on
failure). Functional checks (page, post -> 303 -> visible, escaping,
limits, counter, what Redis holds), both worker threads' connections, a
burst of parallel posts that must all be in Redis, and the data model the
lab shares (an entry written straight into Redis shows on the page).
"""
import concurrent.futures
import json
import sys
import time

import gbutil
from gbutil import Checker, Redis, Wharfd, page, post, shown_messages, visitors


def main():
    check = Checker()
    with Redis() as redis, Wharfd(["--redis", "127.0.0.1:%d" % redis.port], threads=2) as w:
        print("redis on %d, wharfd on %d" % (redis.port, w.port))
        check("guestbook: Redis at" in w.log_text(), "wharfd logs that it uses Redis")
        gbutil.check_functional(check, w.port, redis)

        # Parallel posts over many connections (both worker threads): every
        # 303 is an entry in Redis.
        def one(i):
            st, _, _ = post(w.port, "p%d" % i, "parallel %d" % i)
            return i, st
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(one, range(200)))
        ok = [i for i, st in res if st == 303]
        check(len(ok) == 200, "200 parallel posts answered 303 (%d)" % len(ok))
        stored = {e["msg"] for e in redis.entries()}
        check(all("parallel %d" % i in stored for i in ok), "every acknowledged post is in Redis")

        # The page shows at most 100 entries; Redis keeps at most 1000.
        st, _, text = page(w.port)
        check(len(shown_messages(text)) == 100, "page shows the newest 100 entries")

        # Shared data model: an entry added by another program (the lab's
        # blocking guestbook) appears; a foreign entry without a message is
        # skipped.
        redis.cmd("XADD", "guestbook:stream", "*", "note", "garbage without a msg field")
        redis.cmd("XADD", "guestbook:stream", "*", "t", "1700000000", "name", "lab",
                  "msg", "from the lab <3")
        st, _, text = page(w.port)
        check(shown_messages(text)[0] == "from the lab <3", "entry written by another client shows")
        check("garbage without a msg field" not in text, "entries without a message are skipped")
        check(st == 200, "page still 200 with a foreign entry in the stream")

        # A wrong type under the key (Redis answers an error): 503, not a crash.
        redis.cmd("SET", "guestbook:visitors", "not a number")
        st, hd, _ = gbutil.http(w.port, "GET", "/guestbook")
        check(st == 503 and hd.get("retry-after") == "1", "Redis error reply -> 503 + Retry-After")
        redis.cmd("DEL", "guestbook:visitors")
        st, _, text = page(w.port)
        check(st == 200 and visitors(text) == 1, "counter restarts from the key")
        check(w.proc.poll() is None, "wharfd still running")
    check(w.clean_exit(), "wharfd exits 0 on SIGTERM, no sanitizer report (%s)" % w.returncode)

    # Redis absent from the start: wharfd runs, the guestbook answers 503 at
    # once, static files are unaffected.
    with Wharfd(["--redis", "127.0.0.1:%d" % gbutil.free_port()], threads=1) as w2:
        st, hd, b = gbutil.http(w2.port, "GET", "/guestbook")
        check(st == 503 and hd.get("retry-after") == "1" and b"unavailable" in b,
              "no Redis at all -> 503 page with Retry-After (%s)" % st)
        # No page, so no form token: the post is refused before the store.
        st, _, _ = post(w2.port, "a", "b")
        check(st == 403, "POST without Redis and without a form -> 403 (%s)" % st)
        st, _, b = gbutil.http(w2.port, "GET", "/index.html")
        check(st == 200 and b == b"<p>index</p>\n", "static files still served")
    check(w2.clean_exit(), "that wharfd exits cleanly too")
    # Upgrade from the version that kept JSON in the list guestbook:entries:
    # the entries are moved into the stream when wharfd connects, shown in
    # their order, and the list's items are kept under another key.
    with Redis() as redis:
        old = [json.dumps({"t": 1700000002, "name": "B\u00e9a", "msg": "second \"quoted\" <i>"}),
               "garbage that is not JSON",
               json.dumps({"t": 1700000001, "name": "Al", "msg": "first"})]
        for item in reversed(old):
            redis.cmd("LPUSH", "guestbook:entries", item)
        with Wharfd(["--redis", "127.0.0.1:%d" % redis.port], threads=2) as w3:
            st, _, text = page(w3.port)
            for _ in range(50):  # the first view may race the connection coming up
                if st == 200:
                    break
                time.sleep(0.1)
                st, _, text = page(w3.port)
            check(shown_messages(text) == ['second "quoted" <i>', "first"],
                  "entries of the old list shown, newest first (%s)" % shown_messages(text))
            check('<bdi class="name">B\u00e9a</bdi>' in text, "their names decoded")
            check("moved 2 entries of the old list" in w3.log_text(), "the move is logged")
            check(redis.cmd("EXISTS", "guestbook:entries") == 0, "the old list is gone")
            check(redis.cmd("LRANGE", "guestbook:entries:migrated", 0, -1) == old,
                  "its items are kept, unparseable ones included")
            check(len(redis.entries()) == 2, "moved once, not once per thread")
        check(w3.clean_exit(), "that wharfd exits cleanly too")
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
