#!/usr/bin/env bash
# bench/http_plaintext.sh: GET /plaintext ("Hello, World!", 13 bytes),
# keep-alive, wharf (examples/hello, 1 worker) vs nginx (Debian, 1 worker,
# access_log off, `return 200 "Hello, World!"`) in the same run.
#
# The server runs on CPU 0 (taskset), wrk (1 thread, 64 connections) on
# CPU 1. Rounds alternate between the servers; medians of ROUNDS rounds.
# On a 2-core machine wrk saturates its own core first, so besides req/s we
# report the server's CPU cost per request: the busy time of CPU 0 from
# /proc/stat (user+nice+system+irq+softirq; kernel work done there for the
# server's sockets included) divided by the requests answered.
#
# On a busy shared machine CPU 0 also runs other work, which inflates that
# number for both servers alike; so the table also gives the server
# processes' own CPU time (utime+stime from /proc/PID/stat, summed over the
# server and its children) per request, which other processes cannot touch
# (it leaves out softirq work the kernel does not charge to the process).
#
# Two loads: plain keep-alive (one request in flight per connection) and
# pipelined 16 deep (bench/pipeline.lua).
#
# Usage: bench/http_plaintext.sh [BUILD_DIR]    (default build/release, built if missing)
#   ROUNDS=3 DURATION=5 CONNS=64 DEPTH=16
# nginx gets keepalive_requests 1000000 so it is not measured reconnecting
# every 1000 requests (its default), which would not be a fair comparison.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
DEPTH=${DEPTH:-16}

build_if_missing "$build" hello example-hello
need_tools wrk nginx taskset

bench_tmp

# --- wharf ---
taskset -c 0 "$build/hello" --host 127.0.0.1 --port 0 --threads 1 --no-pin \
    --keepalive-ms 60000 >"$tmp/wharf.out" 2>&1 &
pids+=($!)
wpid=$!
wait_line "$tmp/wharf.out" listening || true
wport=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$tmp/wharf.out")
wait_port "$wport" 100

# --- nginx ---
nport=$(free_port)
nginx_start "$tmp/nginx" 0 "
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$nport;
        location / { return 200 \"Hello, World!\"; }
    }"
npid=$nginx_pid
wait_port "$nport" 100

# sanity: both answer the same body
for p in "$wport" "$nport"; do
    body=$(curl -s "http://127.0.0.1:$p/plaintext")
    [[ $body == "Hello, World!" ]] || { echo "port $p answered '$body'" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)

# run NAME PORT MODE ROUND
run() {
    local name=$1 port=$2 mode=$3 round=$4 extra=() pid
    if [[ $name == wharf ]]; then pid=$wpid; else pid=$npid; fi
    [[ $mode == pipelined ]] && extra=(-s "$root/bench/pipeline.lua")
    local b0 b1 p0 p1 out
    p0=$(proc_ticks "$pid")
    b0=$(cpu_busy 0)
    if [[ $mode == pipelined ]]; then
        out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${extra[@]}" \
            "http://127.0.0.1:$port/plaintext" -- "$DEPTH")
    else
        out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/plaintext")
    fi
    b1=$(cpu_busy 0)
    p1=$(proc_ticks "$pid")
    local reqs rps errs
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    errs=$(awk '/Socket errors/ {gsub(",",""); e+=$4+$6+$8+$10} /Non-2xx/ {e+=$NF} END {print e+0}' <<<"$out")
    local ns=$(( (b1 - b0) * 1000000000 / hz / (reqs > 0 ? reqs : 1) ))
    local pns=$(( (p1 - p0) * 1000000000 / hz / (reqs > 0 ? reqs : 1) ))
    echo "$name $mode $round $rps $reqs $ns $errs $pns" >>"$tmp/results"
    printf '  round %d %-10s %-5s %12s req/s %8s ns CPU0/req %8s ns proc/req  errors %s\n' \
        "$round" "$mode" "$name" "$rps" "$ns" "$pns" "$errs"
}

echo "wharf :$wport  nginx :$nport  server on CPU 0, wrk on CPU 1, $CONNS conns, ${DURATION}s x $ROUNDS rounds"
# warm-up
taskset -c 1 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$wport/plaintext" >/dev/null
taskset -c 1 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$nport/plaintext" >/dev/null
for round in $(seq "$ROUNDS"); do
    for mode in keepalive pipelined; do
        if (( round % 2 )); then order="wharf nginx"; else order="nginx wharf"; fi
        for name in $order; do
            if [[ $name == wharf ]]; then run wharf "$wport" "$mode" "$round"
            else run nginx "$nport" "$mode" "$round"; fi
        done
    done
done

python3 - "$tmp/results" "$DEPTH" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
depth = sys.argv[2]
def med(name, mode, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name and r[1] == mode)
def errs(name, mode):
    return sum(int(r[6]) for r in rows if r[0] == name and r[1] == mode)
print()
print("| load | server | req/s | CPU 0 busy ns/req | server process ns/req | errors |")
print("|---|---|---:|---:|---:|---:|")
for mode in ("keepalive", "pipelined"):
    label = "keep-alive" if mode == "keepalive" else "pipelined x" + depth
    for name in ("wharf", "nginx"):
        print("| %s | %s | %.0f | %.0f | %.0f | %d |" % (
            label, name, med(name, mode, 3), med(name, mode, 5), med(name, mode, 7),
            errs(name, mode)))
print()
for mode in ("keepalive", "pipelined"):
    label = "keep-alive" if mode == "keepalive" else "pipelined x" + depth
    rr = med("wharf", mode, 3) / med("nginx", mode, 3)
    cr = med("wharf", mode, 5) / med("nginx", mode, 5)
    pr = med("wharf", mode, 7) / max(med("nginx", mode, 7), 1)
    print("%-14s wharf/nginx: req/s %.2fx, CPU 0 per request %.2fx, process CPU per request %.2fx"
          % (label, rr, cr, pr))
print("(medians of %d rounds)" % len([r for r in rows if r[0] == "wharf" and r[1] == "keepalive"]))
PY
