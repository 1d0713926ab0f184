# shellcheck shell=bash
# bench/lib.sh: helpers shared by the bench/*.sh scripts. Source it, do not
# run it:   . "$(dirname "$0")/lib.sh"
# Every function is documented in one line above it. Nothing here runs on
# sourcing except defining functions (and pids=() for the cleanup trap).

# Background processes that bench_cleanup kills; scripts append with pids+=($!).
pids=()

# bench_tmp [TEMPLATE]: sets $tmp to a new temp dir and traps EXIT to bench_cleanup.
bench_tmp() {
    tmp=$(mktemp -d ${1:+"$1"})
    trap bench_cleanup EXIT
}

# bench_cleanup: kills every PID in $pids (TERM; KILL after 5 s), waits for them, removes $tmp (if set).
bench_cleanup() {
    local p _ left
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # A server that shuts down gracefully could take its time: give it 5 s.
    for _ in $(seq 50); do
        left=0
        for p in "${pids[@]}"; do
            [[ -r /proc/$p/stat && $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]] && left=1
        done
        ((left)) || break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n ${tmp:-} ]] && rm -rf "$tmp"
    return 0
}

# build_if_missing BUILD FILE [TARGET]: Release-configures and builds BUILD (only TARGET if given) unless BUILD/FILE exists.
build_if_missing() {
    [[ -x $1/$2 ]] && return 0
    # shellcheck disable=SC2154 # $root (the repository) is set by the sourcing script
    cmake -S "$root" -B "$1" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$1" -j"$(nproc)" ${3:+--target "$3"} >/dev/null
}

# need_tools TOOL...: exits 1 naming the first TOOL not on $PATH.
need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "missing $t (scripts/deps.sh installs it)" >&2; exit 1; }
    done
}

# free_port: prints a loopback TCP port that was free a moment ago.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [TRIES]: waits (TRIES x 50 ms, default 200) until 127.0.0.1:PORT accepts; else says so, returns 1.
wait_port() {
    local _
    for _ in $(seq "${2:-200}"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}

# wait_line FILE ERE [TRIES]: waits (TRIES x 50 ms, default 100) until FILE has a line matching ERE; else returns 1.
wait_line() {
    local _
    for _ in $(seq "${3:-100}"); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# build_targets BUILD TARGET...: configures BUILD (Release) if it has no cache yet, then brings TARGETs up to date.
build_targets() {
    local dir=$1
    shift
    [[ -f $dir/CMakeCache.txt ]] || cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$dir" -j"$(nproc)" --target "$@" >/dev/null
}

# proc_ticks PID: CPU ticks (utime+stime, all threads) of PID and its children (nginx: master + workers).
proc_ticks() {
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $t
}

# tcp_passive_opens: connections accepted so far on this host (Tcp PassiveOpens in /proc/net/snmp).
tcp_passive_opens() {
    awk '/^Tcp:/ && !h { h = 1; for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") c = i; next }
         /^Tcp:/ { print $c; exit }' /proc/net/snmp
}

# render_conf TEMPLATE OUT KEY=VALUE...: copies TEMPLATE to OUT with every @KEY@ replaced by VALUE.
render_conf() {
    python3 - "$@" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    text = text.replace("@%s@" % k, v)
left = re.search(r"@([A-Z_]+)@", text)
if left:
    sys.exit("render_conf: %s: no value for @%s@" % (sys.argv[1], left.group(1)))
open(sys.argv[2], "w").write(text)
PY
}

# cpu_busy CORE: busy jiffies of CPU CORE from /proc/stat (user+nice+system+irq+softirq).
cpu_busy() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }

# median: median of the numbers on stdin, one a line (the lower middle one if even); "-" if none.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }

# median_mean: median of the numbers on stdin, the mean of the two middle ones if even.
median_mean() { sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

# nginx_start DIR CPU HTTP_CONF: runs nginx (1 worker, access log off, all paths in DIR) pinned to CPU with HTTP_CONF inside http {}; sets $nginx_pid.
nginx_start() {
    local dir=$1 cpu=$2 conf=$3 nginx user_line=""
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x $nginx ]] || { echo "nginx not installed" >&2; exit 1; }
    # "user" is only allowed (and needed, to run workers as root) when we are root.
    [[ $(id -u) -eq 0 ]] && user_line="user root;"
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$conf
}
CONF
    taskset -c "$cpu" "$nginx" -p "$dir" -c "$dir/nginx.conf" 2>/dev/null &
    nginx_pid=$!
    pids+=("$nginx_pid")
}

# wrk_numbers: reads wrk's report on stdin; prints "REQUESTS SECONDS ERRORS BYTES" (errors: socket errors + non-2xx/3xx).
wrk_numbers() {
    awk '/requests in/ { r = $1; s = $4; sub(/s,$/, "", s); b = $5
                         m = 1; if (b ~ /KB$/) m = 1024; if (b ~ /MB$/) m = 1048576; if (b ~ /GB$/) m = 1073741824
                         sub(/[KMG]?B$/, "", b); bytes = b * m }
         /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
         /Non-2xx/ { e += $NF }
         END { printf "%d %s %d %.0f\n", r, s, e, bytes }'
}
