#!/usr/bin/env bash
# Static files: wharfd (1 worker) vs nginx (worker_processes 1) in the same
# run, same files, keep-alive GETs of a 1 KiB and a 1 MiB file with wrk.
# Server pinned to core 0, wrk to core 1. For each (server, file) the median
# of RUNS runs of DURATION seconds: req/s, MB/s, and the server core's CPU
# time per request = busy jiffies of cpu0 in /proc/stat / requests (so it
# counts the kernel work done on the server's core, softirqs included).
#
# Usage: bench/static.sh [BUILD_DIR]   (env: RUNS=3 DURATION=5 CONNS=32)
# Aims (issue 6): 1 KiB at most 0.65x nginx CPU/request; 1 MiB at least
# nginx's throughput at no more CPU/request.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
[[ -x $build/wharfd ]] || { echo "no $build/wharfd (build first)" >&2; exit 1; }
need_tools wrk
(($(nproc) >= 2)) || { echo "need 2 cores" >&2; exit 1; }

bench_tmp /tmp/wharf_bench_static.XXXXXX
mkdir -p "$tmp/www"
head -c 1024 /dev/urandom >"$tmp/www/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$tmp/www/1m.bin"

hz=$(getconf CLK_TCK)

wport=$(free_port)
taskset -c 0 "$build/wharfd" --root "$tmp/www" --bind "127.0.0.1:$wport" --threads 1 \
    --access-log off --error-log "$tmp/wharfd.err" &
pids+=($!)
nport=$(free_port)
nginx_start "$tmp/nginx" 0 "
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 60;
    types { application/octet-stream bin; }
    server { listen 127.0.0.1:$nport; root $tmp/www; }"
wait_port "$wport" 100 || { echo "wharfd did not start" >&2; cat "$tmp/wharfd.err" >&2; exit 1; }
wait_port "$nport" 100 || { echo "nginx did not start" >&2; cat "$tmp/nginx/logs/error.log" >&2; exit 1; }

# one run: prints "reqs req/s MB/s us_per_req"
one() {
    local port=$1 file=$2 out b0 b1 reqs secs bytes
    b0=$(cpu_busy 0)
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/$file")
    b1=$(cpu_busy 0)
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    secs=$(awk '/requests in/{sub(/s,/,"",$4); print $4}' <<<"$out")
    bytes=$(awk '/requests in/{print $5}' <<<"$out")
    awk -v r="$reqs" -v s="$secs" -v b="$bytes" -v j=$((b1 - b0)) -v hz="$hz" 'BEGIN{
        m=1; if (b ~ /KB$/) m=1024; if (b ~ /MB$/) m=1048576; if (b ~ /GB$/) m=1073741824;
        sub(/[KMG]?B$/,"",b);
        printf "%d %.0f %.1f %.2f\n", r, r/s, b*m/s/1e6, j*1e6/hz/r }'
}

# warm-up (page cache, fd caches)
taskset -c 1 wrk -t1 -c4 -d1s "http://127.0.0.1:$wport/1m.bin" >/dev/null
taskset -c 1 wrk -t1 -c4 -d1s "http://127.0.0.1:$nport/1m.bin" >/dev/null

declare -A R
for file in 1k.bin 1m.bin; do
    for run in $(seq "$RUNS"); do
        # alternate the servers so drift hits both alike
        for srv in wharfd nginx; do
            port=$wport; [[ $srv == nginx ]] && port=$nport
            R[$srv,$file]+="$(one "$port" "$file")"$'\n'
        done
    done
done

printf '\nstatic files, keep-alive, %d conns, %d x %ds runs (median), server on cpu0, wrk on cpu1\n' \
    "$CONNS" "$RUNS" "$DURATION"
printf '%-8s %-7s %12s %10s %14s\n' file server req/s MB/s "cpu us/req"
for file in 1k.bin 1m.bin; do
    for srv in wharfd nginx; do
        rows=${R[$srv,$file]}
        rps=$(awk 'NF{print $2}' <<<"$rows" | median)
        mbs=$(awk 'NF{print $3}' <<<"$rows" | median)
        cpu=$(awk 'NF{print $4}' <<<"$rows" | median)
        printf '%-8s %-7s %12s %10s %14s\n' "$file" "$srv" "$rps" "$mbs" "$cpu"
        eval "M_${srv}_${file%%.*}_rps=$rps M_${srv}_${file%%.*}_cpu=$cpu"
    done
done
awk -v wr="$M_wharfd_1k_rps" -v nr="$M_nginx_1k_rps" -v wc="$M_wharfd_1k_cpu" -v nc="$M_nginx_1k_cpu" \
    -v wr2="$M_wharfd_1m_rps" -v nr2="$M_nginx_1m_rps" -v wc2="$M_wharfd_1m_cpu" -v nc2="$M_nginx_1m_cpu" 'BEGIN{
    printf "\nratios wharfd/nginx:\n";
    printf "  1 KiB: req/s %.2fx, CPU/request %.2fx (aim <= 0.65x)\n", wr/nr, wc/nc;
    printf "  1 MiB: req/s %.2fx (aim >= 1.00x), CPU/request %.2fx (aim <= 1.00x)\n", wr2/nr2, wc2/nc2 }'
