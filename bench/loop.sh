#!/usr/bin/env bash
# bench/loop.sh: the event loop against libuv and libevent, same work each
# (see bench/bench_loop.c for what each row measures and how the peers'
# versions are kept fair).
#
# Runs bench_loop ROUNDS times pinned with taskset to two CPUs (the loop
# thread on the first, the post row's producer thread on the second) and
# prints the median ns/op per library and the ratios wharf/libuv and
# wharf/libevent (below 1.00 = wharf faster). Writes bench/results/loop.txt.
#
# Usage: bench/loop.sh [BUILD_DIR]     (default: build/release, built if missing)
#   ROUNDS=5         rounds (median taken over them)
#   CPUS=2,3         the two CPUs (default 2,3 with >= 4 CPUs, else 0,1)
#   ROWS="timer post pingpong"
#   RESULTS_DIR=dir  where loop.txt goes (default bench/results)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
rounds=${ROUNDS:-5}
rows=${ROWS:-timer post pingpong}
results=${RESULTS_DIR:-$root/bench/results}
if [ -z "${CPUS:-}" ]; then
    if [ "$(nproc)" -ge 4 ]; then CPUS=2,3; else CPUS=0,1; fi
fi

bin=$build/bench_loop
build_if_missing "$build" bench_loop bench_loop

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds ..." >&2
    # shellcheck disable=SC2086
    taskset -c "$CPUS" "$bin" $rows >>"$raw"
done

mkdir -p "$results"
awk -v rounds="$rounds" -v cpus="$CPUS" -v rows="$rows" '
function median(key,   n, i, j, t, a) {
    n = cnt[key]
    if (n == 0) return -1
    for (i = 1; i <= n; i++) a[i] = val[key, i]
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(v) { return v < 0 ? sprintf("%10s", "-") : sprintf("%10.1f", v) }
function ratio(a, b) { return (a < 0 || b <= 0) ? sprintf("%14s", "-") : sprintf("%14.2f", a / b) }
{ key = $1 SUBSEP $2; cnt[key]++; val[key, cnt[key]] = $3 }
END {
    printf "event loop, ns/op, median of %d rounds, taskset -c %s\n", rounds, cpus
    printf "%-10s %10s %10s %10s %14s %14s\n", "row", "wharf", "libuv", "libevent", "wharf/libuv", "wharf/libevent"
    n = split(rows, rs, " ")
    for (i = 1; i <= n; i++) {
        r = rs[i]
        w = median(r SUBSEP "wharf"); u = median(r SUBSEP "libuv"); e = median(r SUBSEP "libevent")
        printf "%-10s %s %s %s %s %s\n", r, cell(w), cell(u), cell(e), ratio(w, u), ratio(w, e)
    }
    print "timer: start+stop pair, 10,000 other timers live; post: 1 producer thread -> loop,"
    print "1,000,000 tasks; pingpong: 1-byte round trip over a socketpair, 200,000 times."
}' "$raw" | tee "$results/loop.txt"
