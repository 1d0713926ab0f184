#!/usr/bin/env bash
# The run command: builds wharf (release) and starts wharfd on port 8000,
# serving ./public. Extra arguments go to wharfd (try --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/deps.sh" run
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
# wharfd only: tests and benchmarks need packages this command does not install.
cmake --build "$root/build/release" -j"$(nproc)" --target wharfd >/dev/null
exec "$root/build/release/wharfd" --root "$root/public" "$@"
