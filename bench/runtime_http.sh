#!/usr/bin/env bash
# The four connection-distribution models serving HTTP plaintext
# (examples/hello, GET /plaintext, keep-alive, 64 connections, wrk), on 1 and
# 2 worker threads. With 1 thread the server is pinned to CPU 0 and wrk to
# CPU 1; with 2 threads the server may use both cores and wrk shares them, so
# compare models within a row group, not across groups.
# Env: DURATION (s, 3), ROUNDS (3), CONNS (64). Usage: bench/runtime_http.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
DURATION=${DURATION:-3} ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-64}
need_tools wrk taskset
build_if_missing "$build" hello example-hello
bench_tmp
printf '%-10s %-7s %12s %8s\n' model threads "req/s" errors
for threads in 1 2; do
    for model in reuseport exclusive oneshot dispatch; do
        port=$(free_port)
        if [[ $threads == 1 ]]; then cpus=0 wcpus=1; else cpus=0,1 wcpus=0,1; fi
        taskset -c $cpus "$build/hello" --port "$port" --host 127.0.0.1 --threads $threads \
            --model $model >"$tmp/out" 2>&1 &
        pid=$!; pids+=($pid)
        wait_port "$port"
        rates=() errs=0
        for ((r = 0; r < ROUNDS; r++)); do
            out=$(taskset -c $wcpus wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/plaintext")
            rates+=("$(awk '/Requests\/sec/ {print $2}' <<<"$out")")
            e=$(awk '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i; print s}' <<<"$out")
            n=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
            errs=$((errs + ${e:-0} + ${n:-0}))
        done
        kill $pid; wait $pid 2>/dev/null || true
        printf '%-10s %-7s %12s %8s\n' $model $threads "$(printf '%s\n' "${rates[@]}" | median)" $errs
    done
done
