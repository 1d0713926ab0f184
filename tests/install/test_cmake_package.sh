#!/usr/bin/env bash
# WH_TEST_LABELS: install
# Installs the build into a temporary prefix and builds tests/install/consumer,
# a separate CMake project that finds it with find_package(wharf) through
# CMAKE_PREFIX_PATH: wharf::wharf (shared) for loop_timer, echo and the C++17
# http_hello, wharf::wharf_static for loop_timer_static. Every target is built
# on its own, so one that fails to compile does not hide the others.
source "$(dirname "$0")/lib.sh"
install_prefix

for f in wharfConfig.cmake wharfConfigVersion.cmake wharfTargets.cmake; do
    check "lib/cmake/wharf/$f installed" test -f "$libdir/cmake/wharf/$f"
done

b=$tmp/consumer
if ! "$WH_CMAKE" -S "$here/consumer" -B "$b" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
        >"$tmp/configure.log" 2>&1; then
    cat "$tmp/configure.log" >&2
    fail "configure the consumer project (find_package(wharf))"
    finish
fi
pass "find_package(wharf) $(sed -n 's/^-- wharf \(.*\) from .*/\1/p' "$tmp/configure.log")"
check "wharf_DIR is the prefix's" grep -q "^wharf_DIR:PATH=$libdir/cmake/wharf\$" "$b/CMakeCache.txt"

for t in loop_timer echo http_hello loop_timer_static; do
    check "build $t" "$WH_CMAKE" --build "$b" --target "$t"
done
for p in loop_timer echo http_hello; do
    if [[ -x $b/$p ]]; then
        check "$p loads libwharf.so.0 from the prefix" uses_prefix_lib "$b/$p"
        run "$p" "$b/$p"
    fi
done
if [[ -x $b/loop_timer_static ]]; then
    check "loop_timer_static has libwharf built in and needs libcrypto" static_wharf "$b/loop_timer_static"
    check "loop_timer_static runs without LD_LIBRARY_PATH" timeout 30 "$b/loop_timer_static"
fi
finish
