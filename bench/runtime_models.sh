#!/usr/bin/env bash
# The runtime's four connection models side by side (a benchmark, not a test).
# examples/echo serves; bench_echo_load drives N connections of request/response
# ping-pong; a 1-thread libevent echo server runs in the same session as the
# reference. Server and load generator are pinned to different CPUs when the
# machine has enough of them (taskset); medians of RUNS runs.
#
#   bench/runtime_models.sh [BUILD_DIR]
#   env: CONNS (100) SIZE (64) SECS (3) RUNS (3) LOAD_THREADS (auto)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
CONNS=${CONNS:-100} SIZE=${SIZE:-64} SECS=${SECS:-3} RUNS=${RUNS:-3}
echo_bin=$build/echo load_bin=$build/bench_echo_load
[[ -x $echo_bin && -x $load_bin ]] || { echo "build first: $echo_bin, $load_bin" >&2; exit 1; }

ncpu=$(nproc)
# CPU plan: the server gets CPUs 0..T-1; the load generator the next ones.
# On a 2-CPU machine the 2-thread rows share a CPU with the load generator
# (noted in the output): compare rows within one run only.
load_cpus() { # server threads
    local t=$1 n=${LOAD_THREADS:-2}
    if ((ncpu >= t + n)); then seq -s, "$t" $((t + n - 1))
    elif ((ncpu > t)); then seq -s, "$t" $((ncpu - 1))
    else echo $((ncpu - 1)); fi
}
server_cpus() { seq -s, 0 $(($1 - 1)); }

trap bench_cleanup EXIT

ADDR=""
start_server() { # cpus, command...  (sets ADDR; runs in this shell so we keep the PID)
    local cpus=$1; shift
    local out; out=$(mktemp)
    taskset -c "$cpus" "$@" >"$out" 2>&1 &
    pids+=($!)
    wait_line "$out" '^tcp ' || true
    ADDR=$(awk '/^tcp /{print $2; exit}' "$out")
    rm -f "$out"
    [[ -n $ADDR ]]
}

measure() { # addr, load cpus
    local addr=$1 cpus=$2 lt
    lt=$(tr ',' '\n' <<<"$cpus" | wc -l)
    for _ in $(seq "$RUNS"); do
        taskset -c "$cpus" "$load_bin" "$addr" -c "$CONNS" -s "$SIZE" -d "$SECS" -t "$lt" | awk '{print $2}'
    done | median
}

stop_last() { local p=${pids[-1]}; kill -TERM "$p"; wait "$p" 2>/dev/null || true; unset 'pids[-1]'; }

echo "runtime models: echo ping-pong, $CONNS conns x $SIZE B, ${SECS}s x $RUNS runs (median), $ncpu CPUs"
ref=""
if start_server 0 "$load_bin" --serve-libevent 0; then
    ref=$(measure "$ADDR" "$(load_cpus 1)")
    stop_last
fi
printf '%-10s %7s %12s %10s  %s\n' model threads "trans/s" "vs libevent" "cpus (server | load)"
[[ -n $ref ]] && printf '%-10s %7s %12s %10s  %s\n' libevent 1 "$ref" "1.00" "0 | $(load_cpus 1)"
for t in 1 2; do
    for m in reuseport exclusive oneshot dispatch; do
        sc=$(server_cpus "$t") lc=$(load_cpus "$t")
        start_server "$sc" "$echo_bin" 127.0.0.1:0 --threads "$t" --model "$m"
        tps=$(measure "$ADDR" "$lc")
        stop_last
        ratio=$([[ -n $ref ]] && awk -v a="$tps" -v b="$ref" 'BEGIN{printf "%.2f", a/b}' || echo -)
        note=""; [[ -n $(tr ',' '\n' <<<"$sc,$lc" | sort | uniq -d) ]] && note=" (shared CPU)"
        printf '%-10s %7s %12s %10s  %s\n' "$m" "$t" "$tps" "$ratio" "$sc | $lc$note"
    done
done
