#!/usr/bin/env bash
# WH_TEST_LABELS: install
# Installs the build into a temporary prefix and builds consumers with plain
# compiler command lines from `pkg-config wharf`, as a Makefile user would:
# C11 loop_timer and echo, C++17 http_hello, and a static link of loop_timer.
source "$(dirname "$0")/lib.sh"
install_prefix

check "pkg-config knows wharf" pkg-config --exists --print-errors wharf
version=$(pkg-config --modversion wharf)
header_version=$(sed -n 's/^#define WH_VERSION *"\(.*\)"/\1/p' "$prefix/include/wharf/common.h")
check "wharf.pc version ($version) matches the header ($header_version)" test "$version" = "$header_version"
check "wharf.pc prefix is the install prefix" test "$(pkg-config --variable=prefix wharf)" = "$prefix"
check "wharf.pc links only -lwharf when shared" bash -c '[[ $(echo $(pkg-config --libs-only-l wharf)) == -lwharf ]]'
# libssl too when the library was built with TLS (it then NEEDs libssl).
want_private=libcrypto
if readelf -d "$libdir/libwharf.so" | grep -q 'NEEDED.*\[libssl\.so'; then want_private="libssl libcrypto"; fi
# liburing too when the library was built with the io_uring backend.
if readelf -d "$libdir/libwharf.so" | grep -q 'NEEDED.*\[liburing\.so'; then want_private+=" liburing"; fi
check "wharf.pc requires $want_private privately, nothing publicly" \
    bash -c '[[ $(echo $(pkg-config --print-requires-private wharf)) == "$1" && -z $(pkg-config --print-requires wharf) ]]' _ "$want_private"
check "wharf.pc never mentions hiredis" bash -c '! grep -qi hiredis "$1"' _ "$PKG_CONFIG_PATH/wharf.pc"
check "wharf.pc --static adds libcrypto, -pthread, -lm" \
    bash -c 'l=" $(pkg-config --static --libs wharf) "; [[ $l == *" -lcrypto "* && $l == *" -pthread "* && $l == *" -lm "* ]]'

read -r -a cflags <<<"$(pkg-config --cflags wharf)"
read -r -a libs <<<"$(pkg-config --libs wharf)"
warn=(-Wall -Wextra -Werror)
b=$tmp/bin
mkdir -p "$b"

check "cc loop_timer.c (C11)" "$CC" -std=c11 "${warn[@]}" "${cflags[@]}" "$here/loop_timer.c" -o "$b/loop_timer" "${libs[@]}"
check "cc echo.c (C11)" "$CC" -std=c11 "${warn[@]}" "${cflags[@]}" "$here/echo.c" -o "$b/echo" "${libs[@]}"
check "c++ http_hello.cpp (C++17)" "$CXX" -std=c++17 "${warn[@]}" "${cflags[@]}" "$here/http_hello.cpp" -o "$b/http_hello" "${libs[@]}" -pthread
for p in loop_timer echo http_hello; do
    if [[ -x $b/$p ]]; then
        check "$p loads libwharf.so.0 from the prefix" uses_prefix_lib "$b/$p"
        run "$p" "$b/$p"
    else
        fail "$p was not built"
    fi
done

# Static: only libwharf itself comes from the archive (-Bstatic), its
# dependencies stay shared; their flags must all come from wharf.pc.
static_libs=$(pkg-config --static --libs wharf)
static_libs=${static_libs/-lwharf/-Wl,-Bstatic -lwharf -Wl,-Bdynamic}
read -r -a static_libs <<<"$static_libs"
check "cc loop_timer.c with pkg-config --static" "$CC" -std=c11 "${warn[@]}" -DWH_PULL_WS "${cflags[@]}" \
    "$here/loop_timer.c" -o "$b/loop_timer_static" "${static_libs[@]}"
if [[ -x $b/loop_timer_static ]]; then
    check "loop_timer_static has libwharf built in and needs libcrypto" static_wharf "$b/loop_timer_static"
    check "loop_timer_static runs without LD_LIBRARY_PATH" timeout 30 "$b/loop_timer_static"
else
    fail "loop_timer_static was not built"
fi
finish
