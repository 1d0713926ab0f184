#!/usr/bin/env bash
# The test command: builds wharf and runs every test.
#   1. release build (-O2): all tests, the install tests (libwharf installed
#      into a temporary prefix and used from outside) and the API docs
#   2. debug build with ASan + UBSan: all tests
#   3. ThreadSanitizer build: tests labelled "tsan" (threaded code)
#   4. clang libFuzzer build: every fuzzer for a bounded time (WH_FUZZ_SECONDS, default 20)
# WH_TEST_QUICK=1 runs step 1 only (for a fast local loop).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/deps.sh" test
jobs=$(nproc)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

run_build() { # name, extra-label (a regex every test must match, or ""), cmake-args...
    local name=$1 only=$2; shift 2
    local dir="$root/build/$name" sel=()
    [[ -n $only ]] && sel=(-L "$only")
    echo "=== [$name] configure + build"
    cmake -S "$root" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" 2>&1 | grep -Ev '^\[ *[0-9]+%\]|^-- ' || true
    cmake --build "$dir" -j"$jobs" >/dev/null # fail here on build errors
    echo "=== [$name] tests"
    # Unit tests in parallel; the rest (integration, browser, fuzz) one at a
    # time: they use real servers, ports and both cores. Several -L options
    # AND together in ctest.
    local listing
    listing=$(ctest --test-dir "$dir" -N -L unit "${sel[@]}")
    if grep -q 'Test *#' <<<"$listing"; then
        ctest --test-dir "$dir" --output-on-failure -j"$jobs" -L unit "${sel[@]}"
    fi
    listing=$(ctest --test-dir "$dir" -N -LE unit "${sel[@]}")
    if grep -q 'Test *#' <<<"$listing"; then
        ctest --test-dir "$dir" --output-on-failure -LE unit "${sel[@]}"
    fi
}

run_build release "" -DCMAKE_BUILD_TYPE=Release
[[ ${WH_TEST_QUICK:-0} == 1 ]] && { echo "quick: release only"; exit 0; }
run_build asan "" -DCMAKE_BUILD_TYPE=Debug -DWH_SANITIZE=ON -DWH_BENCH=OFF
run_build tsan tsan -DCMAKE_BUILD_TYPE=Debug -DWH_TSAN=ON -DWH_BENCH=OFF
CC=clang run_build fuzz fuzz -DCMAKE_BUILD_TYPE=Debug -DWH_FUZZ=ON -DWH_BENCH=OFF
echo "=== all test builds passed"
