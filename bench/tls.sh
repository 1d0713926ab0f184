#!/usr/bin/env bash
# TLS: wharfd (1 worker) vs nginx (worker_processes 1) in the same run, with
# the same certificates, protocol versions, ciphers, groups and session
# tickets (OpenSSL's default two per TLS 1.3 handshake on both sides).
# Servers pinned to core 0, clients to core 1. Server CPU = the server
# process's own CPU time (utime + stime in /proc/PID/stat: its system calls
# and the network work done in its context; nginx: master + worker) over the
# run, divided by the handshakes or requests. Not the core's busy time as
# in bench/static.sh: on a shared machine other work lands on core 0 too.
#
#   handshakes  full handshakes (openssl s_time -new: a new connection and
#               session each time), ECDSA P-256 and RSA-2048 certificates
#   resumed     resumed handshakes (s_time -reuse, TLS 1.2 session ticket)
#   keep-alive  wrk GETs of a 13-byte file over TLS keep-alive connections
#   1 MiB       wrk GETs of a 1 MiB file over TLS (read + SSL_write on both
#               sides: no kernel TLS here)
#
# Usage: bench/tls.sh [BUILD_DIR]   (env: RUNS=5 DURATION=5 CONNS=32)
# Aims (issue 17): CPU/request at most 0.90x nginx's for keep-alive and
# 1 MiB; handshakes within 1.0x (OpenSSL dominates them).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
RUNS=${RUNS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
[[ -x $build/wharfd ]] || { echo "no $build/wharfd (build first)" >&2; exit 1; }
need_tools wrk openssl
(($(nproc) >= 2)) || { echo "need 2 cores" >&2; exit 1; }

bench_tmp /tmp/wharf_bench_tls.XXXXXX
mkdir -p "$tmp/www"
printf 'hello, world\n' >"$tmp/www/hello.txt"
head -c $((1024 * 1024)) /dev/urandom >"$tmp/www/1m.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$tmp/ec.key" -out "$tmp/ec.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$tmp/rsa.key" -out "$tmp/rsa.pem" 2>/dev/null
ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
ciphers+=":ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
groups="X25519:P-256:P-384"
hz=$(getconf CLK_TCK)

declare -A PORT PID
for kind in ec rsa; do
    p=$(free_port)
    PORT[wharfd,$kind]=$p
    taskset -c 0 "$build/wharfd" --root "$tmp/www" --bind "https://127.0.0.1:$p" --threads 1 \
        --tls-cert "$tmp/$kind.pem" --tls-key "$tmp/$kind.key" --tls-ciphers "$ciphers" \
        --tls-groups "$groups" --keepalive-timeout 60 --access-log off \
        --error-log "$tmp/wharfd-$kind.err" &
    pids+=($!)
    PID[wharfd,$kind]=$!
    PORT[nginx,$kind]=$(free_port)
done
nginx_start "$tmp/nginx" 0 "
    sendfile on;
    keepalive_requests 10000000;
    keepalive_timeout 60;
    types { application/octet-stream bin; text/plain txt; }
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $ciphers;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve $groups;
    ssl_session_tickets on;
    server { listen 127.0.0.1:${PORT[nginx,ec]} ssl; root $tmp/www;
             ssl_certificate $tmp/ec.pem; ssl_certificate_key $tmp/ec.key; }
    server { listen 127.0.0.1:${PORT[nginx,rsa]} ssl; root $tmp/www;
             ssl_certificate $tmp/rsa.pem; ssl_certificate_key $tmp/rsa.key; }"
for k in "${!PORT[@]}"; do
    wait_port "${PORT[$k]}" 100 || { echo "$k did not start" >&2; cat "$tmp"/*.err "$tmp/nginx/logs/error.log" >&2; exit 1; }
done
PID[nginx,ec]=$nginx_pid # proc_ticks adds its worker
PID[nginx,rsa]=$nginx_pid

# hs PORT PID MODE [ARGS]: handshakes with s_time for DURATION s; prints "count per_s us_per_hs".
hs() {
    local port=$1 pid=$2 mode=$3 out b0 b1 n
    shift 3
    b0=$(proc_ticks "$pid")
    out=$(taskset -c 1 openssl s_time -connect "127.0.0.1:$port" "$mode" -time "$DURATION" "$@" 2>&1)
    b1=$(proc_ticks "$pid")
    n=$(awk '/connections in [0-9.]+s;/{print $1; exit}' <<<"$out")
    [[ -n $n && $n -gt 0 ]] || { echo "0 0 -"; return; }
    awk -v n="$n" -v s="$DURATION" -v j=$((b1 - b0)) -v hz="$hz" \
        'BEGIN{printf "%d %.0f %.1f\n", n, n/s, j*1e6/hz/n}'
}

# req PORT PID FILE: wrk over TLS keep-alive; prints "reqs req/s MB/s us_per_req".
req() {
    local port=$1 pid=$2 file=$3 out b0 b1 reqs secs bytes
    b0=$(proc_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "https://127.0.0.1:$port/$file")
    b1=$(proc_ticks "$pid")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    secs=$(awk '/requests in/{sub(/s,/,"",$4); print $4}' <<<"$out")
    bytes=$(awk '/requests in/{print $5}' <<<"$out")
    awk -v r="$reqs" -v s="$secs" -v b="$bytes" -v j=$((b1 - b0)) -v hz="$hz" 'BEGIN{
        m=1; if (b ~ /KB$/) m=1024; if (b ~ /MB$/) m=1048576; if (b ~ /GB$/) m=1073741824;
        sub(/[KMG]?B$/,"",b);
        printf "%d %.0f %.1f %.2f\n", r, r/s, b*m/s/1e6, j*1e6/hz/r }'
}

# warm-up
for srv in wharfd nginx; do
    taskset -c 1 wrk -t1 -c4 -d1s "https://127.0.0.1:${PORT[$srv,ec]}/1m.bin" >/dev/null
done

declare -A R
tests=(full-ecdsa full-rsa resumed keepalive 1m)
for run in $(seq "$RUNS"); do
    for t in "${tests[@]}"; do
        order="wharfd nginx"
        ((run % 2)) || order="nginx wharfd" # who goes first alternates per run too
        for srv in $order; do # alternate so drift hits both alike
            case $t in
            full-ecdsa) r=$(hs "${PORT[$srv,ec]}" "${PID[$srv,ec]}" -new) ;;
            full-rsa) r=$(hs "${PORT[$srv,rsa]}" "${PID[$srv,rsa]}" -new) ;;
            resumed) r=$(hs "${PORT[$srv,ec]}" "${PID[$srv,ec]}" -reuse -tls1_2) ;;
            keepalive) r=$(req "${PORT[$srv,ec]}" "${PID[$srv,ec]}" hello.txt) ;;
            1m) r=$(req "${PORT[$srv,ec]}" "${PID[$srv,ec]}" 1m.bin) ;;
            esac
            R[$srv,$t]+="$r"$'\n'
        done
    done
done

printf '\nTLS, %d x %ds runs (median), server on cpu0, client on cpu1, load average %s\n' \
    "$RUNS" "$DURATION" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-11s %-7s %10s %9s %14s\n' test server "per s" "MB/s" "cpu us/op"
for t in "${tests[@]}"; do
    for srv in wharfd nginx; do
        rows=${R[$srv,$t]}
        if [[ $t == keepalive || $t == 1m ]]; then
            rate=$(awk 'NF{print $2}' <<<"$rows" | median)
            mbs=$(awk 'NF{print $3}' <<<"$rows" | median)
            cpu=$(awk 'NF{print $4}' <<<"$rows" | median)
        else
            rate=$(awk 'NF{print $2}' <<<"$rows" | median)
            mbs=-
            cpu=$(awk 'NF{print $3}' <<<"$rows" | median)
        fi
        printf '%-11s %-7s %10s %9s %14s\n' "$t" "$srv" "$rate" "$mbs" "$cpu"
        eval "C_${srv}_${t//-/_}=$cpu; P_${srv}_${t//-/_}=$rate"
    done
done
printf '\nratios wharfd/nginx (CPU per operation; lower is better):\n'
for t in "${tests[@]}"; do
    v=${t//-/_}
    eval "w=\$C_wharfd_$v n=\$C_nginx_$v wr=\$P_wharfd_$v nr=\$P_nginx_$v"
    aim="1.00"
    [[ $t == keepalive || $t == 1m ]] && aim="0.90"
    awk -v w="$w" -v n="$n" -v wr="$wr" -v nr="$nr" -v t="$t" -v a="$aim" 'BEGIN{
        if (n > 0 && nr > 0) printf "  %-11s CPU/op %.2fx (aim <= %sx), rate %.2fx", t, w/n, a, wr/nr;
        else printf "  %-11s n/a", t }'
    # The spread: run i of wharfd against run i of nginx (they ran back to back).
    col=3
    [[ $t == keepalive || $t == 1m ]] && col=4
    paste <(awk -v c=$col 'NF{print $c}' <<<"${R[wharfd,$t]}") \
        <(awk -v c=$col 'NF{print $c}' <<<"${R[nginx,$t]}") |
        awk '$2 > 0 {r = r sprintf(" %.2f", $1 / $2)} END{print "; per run:" r}'
done
