#!/usr/bin/env bash
# Installs (as root) or names (otherwise) every Debian package the build,
# the tests and the benchmarks need. Idempotent: does nothing when all present.
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libhiredis-dev libssl-dev zlib1g-dev libuv1-dev libevent-dev
      redis-server nginx wrk nghttp2-client curl wget netcat-openbsd
      apache2-utils python3 python3-websockets gnuplot-nox
      chromium nodejs npm procps iproute2 psmisc)
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
        echo "deps: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        $cmd
    else
        echo "deps: missing packages; run as root:" >&2
        echo "  sudo apt-get update && sudo $cmd" >&2
        exit 1
    fi
fi
# Browser tests drive Debian's chromium through npm's playwright-core (never a
# downloaded browser: the machine's network is closed to that).
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -f $root/tests/browser/package.json && ! -d $root/tests/browser/node_modules/playwright-core ]]; then
    echo "deps: npm install in tests/browser"
    (cd "$root/tests/browser" && npm install --no-audit --no-fund --silent)
fi
