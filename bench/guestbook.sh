#!/usr/bin/env bash
# bench/guestbook.sh: guestbook throughput against a real Redis.
#
# Loads (wrk, keep-alive, CONNS connections, 1 wrk thread):
#   GET  /guestbook  page view: INCR guestbook:visitors + XREVRANGE (100), render
#                    100 entries (~10 KB of HTML)
#   POST /guestbook  form post (bench/guestbook_post.lua): XADD, 303
# Servers, in the same run:
#   wharfd 1 thread, wharfd 2 threads  (async hiredis, one pipelined Redis
#                                       connection per worker thread)
#   lab-epoll (if built)               (the concurrency lab's single-threaded
#                                       epoll server: blocking hiredis, one
#                                       request's commands at a time) = peer
#
# Redis round trips per request come from Redis's own counters (INFO stats),
# read before and after each wrk run:
#   cmds/req  = total_commands_processed delta / requests
#   reads/req = total_reads_processed delta / requests: how many times Redis
#               read a batch from a client socket, i.e. round trips it served;
#               below cmds/req means commands arrived pipelined
#   cmds/read = commands per read, the pipeline depth Redis saw
#
# Placement on this 2-core machine: wharfd 1 thread and lab-epoll on CPU 0;
# wrk and redis-server on CPU 1. wharfd 2 threads pins its workers to CPUs 0
# and 1 (its default), sharing CPU 1 with wrk and Redis, so its number shows
# pipelining over two connections more than scaling.
#
# Medians of ROUNDS rounds; servers alternate within each round.
# Usage: bench/guestbook.sh [BUILD_DIR]   (default build/release, built if missing)
#   ROUNDS=3 DURATION=5 CONNS=64
# Writes bench/results/guestbook.txt (override with RESULTS_DIR).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${WH_BUILD_DIR:-$root/build/release}}
out=${RESULTS_DIR:-$root/bench/results}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
mkdir -p "$out"

build_if_missing "$build" wharfd
need_tools wrk redis-server redis-cli taskset

bench_tmp

mkdir -p "$tmp/root" "$tmp/redis"
echo '<p>index</p>' >"$tmp/root/index.html"
rport=$(free_port)
taskset -c 1 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$tmp/redis" >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_port "$rport"
rinfo() { redis-cli -p "$rport" INFO stats | tr -d '\r' | awk -F: -v k="$1" '$1==k {print $2}'; }

# start_server NAME -> sets $port and $spid
start_server() {
    local name=$1
    case $name in
    wharfd-1t | wharfd-2t)
        local n=${name#wharfd-}; n=${n%t}
        local log="$tmp/$name.log"
        : >"$log"
        taskset -c 0 "$build/wharfd" --port 0 --bind 127.0.0.1 --threads "$n" \
            --root "$tmp/root" --access-log off --error-log "$log" \
            --redis "127.0.0.1:$rport" --guestbook-rate 0 &
        spid=$!
        wait_line "$log" 'listening on .*:[0-9]+' 200 || true
        port=$(grep -oE 'listening on .*:[0-9]+' "$log" | grep -oE '[0-9]+$' | head -1 || true)
        [[ -n $port ]] || { echo "$name did not start" >&2; cat "$log" >&2; exit 1; }
        ;;
    lab-epoll)
        port=$(free_port)
        taskset -c 0 "$build/lab-epoll" --bind "127.0.0.1:$port" --root "$tmp/root" \
            --redis "127.0.0.1:$rport" >"$tmp/$name.log" 2>&1 &
        spid=$!
        ;;
    esac
    pids+=("$spid")
    wait_port "$port"
    # warm up: connections to Redis, page cache
    for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port/guestbook" || true; done
    # wharfd's form token (bound to the client address, which wrk shares);
    # the lab has none and ignores the field.
    token=$(curl -s "http://127.0.0.1:$port/guestbook?posted=1" |
        grep -oE 'name="token" value="[0-9a-f]+"' | cut -d'"' -f4 || true)
}

stop_server() {
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
}

# measure NAME LOAD -> appends "name load rps reqs non2xx3xx cmds reads" to $tmp/raw
measure() {
    local name=$1 load=$2 script=()
    [[ $load == POST ]] && script=(-s "$root/bench/guestbook_post.lua")
    local c0 r0 c1 r1
    c0=$(rinfo total_commands_processed)
    r0=$(rinfo total_reads_processed)
    local w
    w=$(WH_GB_TOKEN=${token:-} taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${script[@]}" \
        "http://127.0.0.1:$port/guestbook" 2>&1)
    c1=$(rinfo total_commands_processed)
    r1=$(rinfo total_reads_processed)
    local rps reqs bad
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$w")
    reqs=$(awk '/requests in/ {print $1}' <<<"$w")
    bad=$(awk '/Non-2xx or 3xx/ {print $NF}' <<<"$w")
    # the INFO call in between is one command and one read
    echo "$name $load ${rps:-0} ${reqs:-0} ${bad:-0} $((c1 - c0 - 1)) $((r1 - r0 - 1))" >>"$tmp/raw"
}

servers=(wharfd-1t wharfd-2t)
[[ -x $build/lab-epoll ]] && servers+=(lab-epoll)
: >"$tmp/raw"
for round in $(seq "$ROUNDS"); do
    for s in "${servers[@]}"; do
        echo "round $round/$ROUNDS: $s" >&2
        start_server "$s"
        measure "$s" POST
        measure "$s" GET
        stop_server
    done
done

table=$(
    python3 - "$tmp/raw" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, load, rps, reqs, bad, cmds, reads = line.split()
    rows.setdefault((name, load), []).append((float(rps), int(reqs), int(bad), int(cmds), int(reads)))
order = ["wharfd-1t", "wharfd-2t", "lab-epoll"]
peer = {load: statistics.median(r[0] for r in rows[("lab-epoll", load)])
        for load in ("GET", "POST") if ("lab-epoll", load) in rows}
print("%-10s %-5s %10s %8s %9s %9s %9s %9s" % ("server", "load", "req/s", "errors", "cmds/req",
                                             "reads/req", "cmds/read", "vs lab"))
for name in order:
    for load in ("GET", "POST"):
        rs = rows.get((name, load))
        if not rs:
            continue
        rps = statistics.median(r[0] for r in rs)
        reqs = sum(r[1] for r in rs)
        bad = sum(r[2] for r in rs)
        cmds = sum(r[3] for r in rs)
        reads = sum(r[4] for r in rs)
        ratio = ("%.2fx" % (rps / peer[load])) if load in peer and peer[load] else "-"
        print("%-10s %-5s %10.0f %8d %9.2f %9.3f %9.1f %9s" % (
            name, load, rps, bad, cmds / max(reqs, 1), reads / max(reqs, 1),
            cmds / max(reads, 1), ratio))
EOF
)
{
    echo "# bench/guestbook.sh  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs"
    echo "# wrk -t1 -c$CONNS -d${DURATION}s, median of $ROUNDS rounds; redis $(redis-server --version | grep -oE 'v=[0-9.]+')"
    echo "$table"
} | tee "$out/guestbook.txt"
