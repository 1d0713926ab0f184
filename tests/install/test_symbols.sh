#!/usr/bin/env bash
# WH_TEST_LABELS: install
# The installed shared library's ABI surface: file names and SONAME, what it
# exports (exactly the functions the public headers declare: no wh__
# internals, no src/ helpers, no application code) and what it depends on
# (libcrypto, never hiredis).
source "$(dirname "$0")/lib.sh"
install_prefix

so=$libdir/libwharf.so
check "libwharf.a installed" test -f "$libdir/libwharf.a"
check "libwharf.so -> libwharf.so.0" test "$(readlink "$so")" = libwharf.so.0
check "libwharf.so.0 -> libwharf.so.0.1.0" test "$(readlink "$so.0")" = libwharf.so.0.1.0
real=$(readlink -f "$so")

dyn=$(readelf -d "$real")
check "SONAME is libwharf.so.0" grep -q 'SONAME.*\[libwharf\.so\.0\]' <<<"$dyn"
check "NEEDED has libcrypto" grep -q 'NEEDED.*\[libcrypto\.so' <<<"$dyn"
check "NEEDED has no hiredis" bash -c '! grep -qi "NEEDED.*hiredis" <<<"$1"' _ "$dyn"
check "ldd shows no hiredis" bash -c '! ldd "$1" | grep -qi hiredis' _ "$real"
check "no RPATH/RUNPATH in the installed library" bash -c '! grep -qE "RPATH|RUNPATH" <<<"$1"' _ "$dyn"

# Symbols the library defines in its dynamic table (name only).
nm -D --defined-only "$real" | awk '{print $NF}' | sort -u >"$tmp/exported"
count=$(wc -l <"$tmp/exported")
echo "libwharf.so exports $count symbols"
bad_prefix=$(grep -v '^wh_' "$tmp/exported" || true)
internal=$(grep '^wh__' "$tmp/exported" || true)
app=$(grep -E '^wh_(gb|redis|metrics|clf|fdcache)_' "$tmp/exported" || true)
check "every exported symbol starts with wh_" test -z "$bad_prefix"
[[ -z $bad_prefix ]] || printf '    not wh_: %s\n' $bad_prefix >&2
check "no wh__ internal symbol exported" test -z "$internal"
[[ -z $internal ]] || printf '    internal: %s\n' $internal >&2
check "no application symbol exported (wh_gb_, wh_redis_, wh_metrics_, wh_clf_, wh_fdcache_)" test -z "$app"
[[ -z $app ]] || printf '    application: %s\n' $app >&2

# What the installed headers declare: every identifier wh_xxx followed by
# '(' in the preprocessed headers (comments and macros gone; function-pointer
# typedefs read "wh_xxx)(" and do not match).
{ for h in "$prefix"/include/wharf/*.h; do echo "#include <wharf/${h##*/}>"; done; } >"$tmp/all.c"
if "$CC" -std=gnu11 -E -P -I"$prefix/include" "$tmp/all.c" >"$tmp/all.i" 2>"$tmp/cpp.log"; then
    grep -oE '\bwh_[A-Za-z0-9_]+[[:space:]]*\(' "$tmp/all.i" | sed 's/[[:space:]]*($//' | sort -u >"$tmp/declared"
    echo "the public headers declare $(wc -l <"$tmp/declared") functions"
    missing=$(comm -23 "$tmp/declared" "$tmp/exported")
    extra=$(comm -13 "$tmp/declared" "$tmp/exported")
    check "every function a public header declares is exported" test -z "$missing"
    [[ -z $missing ]] || printf '    declared, not in libwharf.so: %s\n' $missing >&2
    check "every exported symbol is declared in a public header" test -z "$extra"
    [[ -z $extra ]] || printf '    exported, not declared: %s\n' $extra >&2
else
    cat "$tmp/cpp.log" >&2
    fail "preprocess the installed headers"
fi
finish
