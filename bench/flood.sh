#!/usr/bin/env bash
# bench/flood.sh: seed 004's flood, wharf against libevent in the same run.
#
# 10,000 connections, each one 1 KB transaction (connect, send 1 KB, read
# 1 KB back, close), at most 2,000 in flight (the fd cap is 20,000). Servers:
#   wharf     build/echo_net             (one loop, the networking layer only)
#   libevent  build/bench_libevent_echo  (one event_base, bufferevents)
# Both single-threaded and pinned to CPU 0; the client (bench_flood, plain
# epoll) pinned to CPU 1. ROUNDS rounds, servers alternating within each round
# so drift hits both alike; the table shows medians and the wharf/libevent
# ratio. Seed 004's author saw 1,981 us per transaction.
#
# Usage: bench/flood.sh [BUILD_DIR]     (default: $WH_BUILD_DIR or build)
#   ROUNDS=5 CONNS=10000 INFLIGHT=2000 SIZE=1024 SERVER_CPU=0 CLIENT_CPU=1
# Writes bench/results/flood.txt (override with RESULTS_DIR).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build}}
out=${RESULTS_DIR:-$root/bench/results}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-10000}
INFLIGHT=${INFLIGHT:-2000}
SIZE=${SIZE:-1024}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
mkdir -p "$out"

for b in echo_net bench_libevent_echo bench_flood; do
    [[ -x $build/$b ]] || { echo "missing $build/$b (cmake --build $build)" >&2; exit 1; }
done

bench_tmp

# start NAME CMD... : runs a server pinned to SERVER_CPU; sets $addr to its address
start() {
    local name=$1; shift
    taskset -c "$SERVER_CPU" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    wait_line "$tmp/$name.out" '^ready' || true
    addr=$(grep -m1 '^listen tcp' "$tmp/$name.out" | awk '{print $3}')
}

start wharf "$build/echo_net" 127.0.0.1:0; wharf_addr=$addr
start libevent "$build/bench_libevent_echo" 127.0.0.1:0; levent_addr=$addr
[[ -n $wharf_addr && -n $levent_addr ]] || { echo "servers did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
echo "wharf $wharf_addr  libevent $levent_addr  conns=$CONNS inflight=$INFLIGHT size=$SIZE rounds=$ROUNDS"

run() { # run NAME ADDR -> appends the client's line to $tmp/NAME.res
    taskset -c "$CLIENT_CPU" "$build/bench_flood" "$2" --conns "$CONNS" --inflight "$INFLIGHT" \
        --size "$SIZE" | tee -a "$tmp/$1.res" | sed "s/^/  $1: /"
}

# one warm-up each (page faults, slab caches), not counted
taskset -c "$CLIENT_CPU" "$build/bench_flood" "$wharf_addr" --conns 2000 --inflight 500 >/dev/null
taskset -c "$CLIENT_CPU" "$build/bench_flood" "$levent_addr" --conns 2000 --inflight 500 >/dev/null
for r in $(seq "$ROUNDS"); do
    echo "round $r"
    if ((r % 2)); then run wharf "$wharf_addr"; run libevent "$levent_addr"
    else run libevent "$levent_addr"; run wharf "$wharf_addr"; fi
done

fmedian() { # fmedian FIELD FILE: median of FIELD=value over FILE's lines
    grep -o "$1=[0-9.]*" "$2" | cut -d= -f2 | median_mean
}
{
    echo "flood: $CONNS conns x ${SIZE} B transactions, <= $INFLIGHT in flight, $ROUNDS rounds (medians)"
    echo "server pinned to CPU $SERVER_CPU, client to CPU $CLIENT_CPU; $(date -u +%F' '%H:%M) UTC"
    printf "%-10s %12s %14s %14s %12s %12s %8s\n" server us/txn txn/s lat_mean_us lat_p50_us lat_p99_us errors
    for s in wharf libevent; do
        errs=$(grep -o 'errors=[0-9]*' "$tmp/$s.res" | cut -d= -f2 | paste -sd+ | bc)
        printf "%-10s %12s %14s %14s %12s %12s %8s\n" "$s" "$(fmedian us_per_txn "$tmp/$s.res")" \
            "$(fmedian tps "$tmp/$s.res")" "$(fmedian lat_mean_us "$tmp/$s.res")" \
            "$(fmedian lat_p50_us "$tmp/$s.res")" "$(fmedian lat_p99_us "$tmp/$s.res")" "$errs"
    done
    w=$(fmedian tps "$tmp/wharf.res"); l=$(fmedian tps "$tmp/libevent.res")
    echo "ratio wharf/libevent throughput: $(echo "scale=3; $w / $l" | bc)  (>1 = wharf faster)"
    echo "seed 004 reference: 1,981 us per transaction"
} | tee "$out/flood.txt"
