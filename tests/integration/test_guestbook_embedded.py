#!/usr/bin/env python3
"""The guestbook with --data :memory:: wharfd's embedded in-process store. The
same functional checks as with Redis, entries shared by all worker threads,
and the bound of 1,000 kept entries. (Entries are lost at exit by design.)
"""
import concurrent.futures
import sys

import gbutil
from gbutil import Checker, Wharfd, page, post, shown_messages


def main():
    check = Checker()
    with Wharfd(["--data", ":memory:"], threads=2) as w:
        print("wharfd on %d" % w.port)
        check("embedded store" in w.log_text(), "wharfd logs that it uses the embedded store")
        gbutil.check_functional(check, w.port)

        def one(i):
            return post(w.port, "e%d" % i, "embedded %d" % i)[0]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            sts = list(ex.map(one, range(1100)))
        check(all(s == 303 for s in sts), "1100 parallel posts answered 303")
        # Every worker thread sees the same entries (fresh connections land
        # on either thread).
        seen = set()
        for _ in range(10):
            st, _, text = page(w.port)
            seen.add(tuple(shown_messages(text)[:5]))
        check(len(seen) == 1, "all connections see the same newest entries")
        msgs = shown_messages(text)
        check(len(msgs) == 100, "page shows 100 entries")
        check(all(m.startswith("embedded ") for m in msgs), "newest entries are the parallel ones")
    # A new process starts empty (documented: the embedded store is lost at exit).
    with Wharfd(["--data", ":memory:"], threads=1) as w2:
        st, _, text = page(w2.port)
        check(st == 200 and 'id="gb-empty"' in text, "a fresh wharfd starts with an empty guestbook")
    check(w2.clean_exit(), "second wharfd exits cleanly")
    check(w.clean_exit(), "wharfd exits 0 on SIGTERM, no sanitizer report (%s)" % w.returncode)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
