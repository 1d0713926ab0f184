#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages a job needs.
# One file holds every list, so the run and test commands cannot drift apart:
#   scripts/deps.sh run    building and running wharfd (scripts/run.sh)
#   scripts/deps.sh test   also every test, fuzzer, benchmark and the API
#                          docs (scripts/test.sh); the default
# Idempotent: does nothing when all are present.
set -euo pipefail

# wharfd links libwharf (needs libcrypto: the WebSocket handshake's SHA-1;
# libssl for TLS, which libssl-dev also brings) and the guestbook's Redis
# client (hiredis) and embedded database (SQLite). Running it needs no Redis
# server: without --redis the guestbook keeps its entries in SQLite under --data.
# liburing for the io_uring loop backend (wharfd --backend io_uring).
RUN=(build-essential cmake pkg-config libhiredis-dev libsqlite3-dev libssl-dev liburing-dev)
# Tests: clang + its runtime for libFuzzer; peers for the benchmarks (libuv,
# libevent, nginx, h2o, lighttpd, wrk); clients (curl, wget, nghttp2's h2load, ab, netcat,
# python3-websockets, chromium through playwright-core; openssl makes the
# TLS tests' CA and certificates); redis-server for the
# guestbook's Redis tests; doxygen for `--target docs`; groff for checking
# the man page; gnuplot for bench plots; procps/iproute2/psmisc for the
# process and socket checks; jansson (and zlib) for examples/json_api.c;
# haproxy for the multi-host test behind a load balancer (PROXY protocol);
# systemd for systemd-socket-activate and util-linux for unshare (the
# zero-downtime tests: socket activation, a network namespace).
TEST=("${RUN[@]}" clang libclang-rt-14-dev zlib1g-dev libjansson-dev libuv1-dev libevent-dev
      redis-server nginx h2o lighttpd wrk nghttp2-client curl wget netcat-openbsd
      apache2-utils openssl python3 python3-websockets gnuplot-nox doxygen groff-base
      chromium nodejs npm procps iproute2 psmisc haproxy systemd util-linux)

set_name=${1:-test}
case $set_name in
    run) PKGS=("${RUN[@]}") ;;
    test) PKGS=("${TEST[@]}") ;;
    *)
        echo "usage: $0 [run|test]" >&2
        exit 2
        ;;
esac

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian (e.g. a preinstalled node); accept a working binary.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]:-}"
if ((${#missing[@]})); then
    cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        echo "deps ($set_name): installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        $cmd
    else
        echo "deps ($set_name): missing packages; run as root:" >&2
        echo "  sudo apt-get update && sudo $cmd" >&2
        exit 1
    fi
fi

# Browser tests drive Debian's chromium through npm's playwright-core (never a
# downloaded browser: the machine's network is closed to that).
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $set_name == test && -f $root/tests/browser/package.json &&
      ! -d $root/tests/browser/node_modules/playwright-core ]]; then
    echo "deps: npm install in tests/browser"
    (cd "$root/tests/browser" && npm install --no-audit --no-fund --silent)
fi
