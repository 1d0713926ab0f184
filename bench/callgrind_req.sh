#!/usr/bin/env bash
# User-space instructions per request of wharfd's static file server,
# measured with callgrind (deterministic, so it holds on a busy machine).
#
#   bench/callgrind_req.sh [BUILD_DIR] [MODE] [N]
#
# BUILD_DIR  a Release build (default build/rel)
# MODE       pipelined (16 requests back to back per write, as
#            bench/pipeline.lua), keepalive (one request per round trip) or
#            close (a new connection per request, as compare.sh's connclose)
# N          requests of the long run (default 3200); a short run has N/2
#
# wharfd starts as bench/compare.sh starts it (one thread, access log off),
# serving the 13-byte /plaintext. Two runs, N/2 and N requests, after the
# same warm-up; the difference of their total instructions divided by N/2 is
# the cost per request, with start-up and shutdown cancelled out.
set -euo pipefail
build=${1:-build/rel}
mode=${2:-pipelined}
n=${3:-3200}
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "callgrind_req: valgrind missing" >&2; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/www"
printf 'Hello, World!' >"$tmp/www/plaintext"

run() { # requests -> total Ir
    local count=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$count" "$build/wharfd" \
        --root "$tmp/www" --bind "127.0.0.1:$port" --threads 1 --keepalive-timeout 600 \
        --access-log off --error-log "$tmp/err.log" >"$tmp/out.$count" 2>&1 &
    pid=$!
    python3 "$here/callgrind_client.py" --port "$port" --mode "$mode" --count "$count"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
    awk '/^summary:|^totals:/ {print $2; exit}' "$tmp/cg.$count"
}
half=$((n / 2))
a=$(run "$half")
b=$(run "$n")
# CG_OUT=path keeps the long run's profile as path and the short one's as
# path.half (bench/callgrind_diff.py path.half path N/2: per function).
if [[ -n ${CG_OUT:-} ]]; then
    cp "$tmp/cg.$n" "$CG_OUT"
    cp "$tmp/cg.$half" "$CG_OUT.half"
fi
echo "mode=$mode requests=$half/$n Ir=$a/$b per_request=$(((b - a) / (n - half)))"
