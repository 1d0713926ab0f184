#!/usr/bin/env python3
"""Per-request instructions by function: callgrind_diff.py SHORT LONG REQUESTS.

SHORT and LONG are callgrind outputs of two runs that differ only in the
number of requests (bench/callgrind_req.sh with CG_OUT); REQUESTS is that
difference. Prints self instructions per request, largest first.
"""
import collections
import subprocess
import sys


def per_function(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    fn = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].replace(",", "").isdigit():
            continue
        name = parts[1]
        if "PROGRAM TOTALS" in name:
            continue
        if name.startswith("("):
            name = name.split(")", 1)[1].strip()
        name = name.split(" [")[0]
        fn[name.split(":", 1)[-1] if ":" in name else name] += int(parts[0].replace(",", ""))
    return fn


def main():
    short, long_, reqs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a, b = per_function(short), per_function(long_)
    rows = [(k, (b[k] - a[k]) / reqs) for k in set(a) | set(b)]
    rows.sort(key=lambda r: -r[1])
    total = sum(v for _, v in rows)
    print("%8.0f  total" % total)
    for k, v in rows:
        if abs(v) >= 5:
            print("%8.1f  %s" % (v, k))


if __name__ == "__main__":
    main()
