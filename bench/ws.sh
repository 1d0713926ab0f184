#!/usr/bin/env bash
# WebSocket benchmarks (issue 8):
#  1. echo round trips per second, 100 connections, 64-byte messages, one in
#     flight per connection: examples/ws_echo /echo, against the plain TCP
#     echo server (examples/echo) with the same client in --raw mode as the
#     baseline (ratio = WebSocket / raw TCP);
#  2. broadcast to 10,000 connections: examples/ws_echo /room; one member
#     sends, the time until all 10,000 received it, and the server's CPU time
#     per broadcast.
# Server and client are pinned to different CPUs (taskset); each figure is
# the median of RUNS runs. Numbers, not verdicts: nothing here fails on speed.
#
#   bench/ws.sh [BUILD_DIR]
#   env: RUNS=3 SECONDS_PER_RUN=5 CONNS=100 SIZE=64 BCAST_CONNS=10000
#        BCAST_ROUNDS=50 SERVER_CPUS=0 CLIENT_CPUS=1 THREADS=(#SERVER_CPUS)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
BCAST_CONNS=${BCAST_CONNS:-10000}
BCAST_ROUNDS=${BCAST_ROUNDS:-50}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
count_cpus() { # "0-3,8" -> 5
    local n=0 part
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then n=$((n + ${part#*-} - ${part%-*} + 1)); else n=$((n + 1)); fi
    done
    echo $n
}
THREADS=${THREADS:-$(count_cpus "$SERVER_CPUS")}
client=$build/bench_ws_client
for b in "$client" "$build/ws_echo" "$build/echo"; do
    [[ -x $b ]] || { echo "missing $b (build first: cmake --build $build)" >&2; exit 1; }
done
# 10,000 client sockets in this process tree + 10,000 in the server: under
# the 20,000 per-process cap, but above the usual soft limit.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
srv_pid=
cleanup() {
    [[ -n $srv_pid ]] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

start_server() { # prefix-of-address-line, command...
    local prefix=$1
    shift
    taskset -c "$SERVER_CPUS" "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" &
    srv_pid=$!
    for _ in $(seq 100); do
        port=$(awk -v p="$prefix" '$1 == p { n = split($2, a, ":"); print a[n]; exit }' "$tmp/srv.out")
        [[ -n $port ]] && return 0
        sleep 0.05
    done
    echo "server did not start: $(cat "$tmp/srv.err")" >&2
    exit 1
}
stop_server() {
    kill "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=
}
field() { # name, line
    sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"
}

echo "# wharf WebSocket bench: $(nproc) CPUs, server CPUs $SERVER_CPUS ($THREADS threads), client CPUs $CLIENT_CPUS, $RUNS runs each"

# 1. echo
ws_rates=() raw_rates=()
for r in $(seq "$RUNS"); do
    start_server listening "$build/ws_echo" 127.0.0.1:0 --threads "$THREADS"
    out=$(taskset -c "$CLIENT_CPUS" "$client" echo "127.0.0.1:$port" /echo "$CONNS" "$SECS" "$SIZE")
    ws_rates+=("$(field rate "$out")")
    stop_server
    start_server tcp "$build/echo" 127.0.0.1:0 --threads "$THREADS"
    out=$(taskset -c "$CLIENT_CPUS" "$client" echo "127.0.0.1:$port" / "$CONNS" "$SECS" "$SIZE" --raw)
    raw_rates+=("$(field rate "$out")")
    stop_server
done
ws_med=$(printf '%s\n' "${ws_rates[@]}" | median)
raw_med=$(printf '%s\n' "${raw_rates[@]}" | median)

# 2. broadcast
lat=() cpu=()
for r in $(seq "$RUNS"); do
    start_server listening "$build/ws_echo" 127.0.0.1:0 --threads "$THREADS"
    out=$(taskset -c "$CLIENT_CPUS" "$client" broadcast "127.0.0.1:$port" /room "$BCAST_CONNS" \
        "$BCAST_ROUNDS" "$SIZE" --server-pid "$srv_pid")
    lat+=("$(field all_received_ms_median "$out")")
    cpu+=("$(field server_cpu_ms_per_broadcast "$out")")
    stop_server
done
lat_med=$(printf '%s\n' "${lat[@]}" | median)
cpu_med=$(printf '%s\n' "${cpu[@]}" | median)

printf '\n| %-44s | %14s | %s\n' "benchmark" "median" "runs"
printf '|%s|%s|%s\n' "----------------------------------------------" "----------------" "------"
printf '| %-44s | %14s | %s\n' "ws echo round trips/s ($CONNS conns, ${SIZE} B)" "$ws_med" "${ws_rates[*]}"
printf '| %-44s | %14s | %s\n' "raw TCP echo round trips/s (same client)" "$raw_med" "${raw_rates[*]}"
printf '| %-44s | %14s |\n' "ratio ws / raw TCP" "$(awk -v a="$ws_med" -v b="$raw_med" 'BEGIN { printf "%.2f", a / b }')"
printf '| %-44s | %14s | %s\n' "broadcast to $BCAST_CONNS: ms until all received" "$lat_med" "${lat[*]}"
printf '| %-44s | %14s | %s\n' "broadcast to $BCAST_CONNS: server CPU ms each" "$cpu_med" "${cpu[*]}"
