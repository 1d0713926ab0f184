# Sourced by tests/install/test_*.sh: a temporary prefix holding
# `cmake --install` of the build under test, removed on exit, and a tally of
# failed checks so one run reports every problem, not just the first.
# Environment (ctest sets it): WH_BUILD_DIR (a built tree), WH_SOURCE_DIR,
# WH_CMAKE (the cmake that configured it), CC, CXX.
set -euo pipefail
: "${WH_BUILD_DIR:?set WH_BUILD_DIR to a configured and built build tree}"
WH_SOURCE_DIR=${WH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WH_CMAKE=${WH_CMAKE:-cmake}
CC=${CC:-cc}
CXX=${CXX:-c++}
here=$WH_SOURCE_DIR/tests/install
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wharf-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# check DESCRIPTION CMD...: runs CMD (output shown only on failure).
check() {
    local what=$1 out; shift
    if out=$("$@" 2>&1); then
        pass "$what"
    else
        fail "$what"
        printf '%s\n' "$out" | sed 's/^/    /' >&2
    fi
}

install_prefix() {
    if ! "$WH_CMAKE" --install "$WH_BUILD_DIR" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
        cat "$tmp/install.log" >&2
        echo "FAIL: cmake --install $WH_BUILD_DIR --prefix $prefix" >&2
        exit 1
    fi
    # The libdir the build was configured with (lib, or lib/<multiarch> for /usr).
    local rel
    rel=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$WH_BUILD_DIR/CMakeCache.txt")
    case $rel in /*) libdir=$rel ;; *) libdir=$prefix/${rel:-lib} ;; esac
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    # Nothing from the build or source tree may leak in: consumers see the prefix only.
    unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH PKG_CONFIG_LIBDIR
}

# run NAME PROGRAM: runs an installed-library consumer against the prefix's
# libwharf.so (no RPATH is baked in, so LD_LIBRARY_PATH is what finds it).
run() {
    local name=$1 prog=$2
    check "$name runs" env LD_LIBRARY_PATH="$libdir" timeout 30 "$prog"
}

# (Output is captured before grep -q reads it: under pipefail, grep -q
# quitting early would make a pipeline fail with the writer's SIGPIPE.)
# uses_prefix_lib PROGRAM: the dynamic loader resolves libwharf.so.0 inside the prefix.
uses_prefix_lib() {
    local deps
    deps=$(LD_LIBRARY_PATH="$libdir" ldd "$1")
    grep -q "libwharf.so.0 => $libdir/libwharf.so.0 " <<<"$deps"
}
# static_wharf PROGRAM: no libwharf.so dependency at all, libcrypto linked for the ws layer.
static_wharf() {
    local dyn
    dyn=$(readelf -d "$1")
    ! grep -q 'NEEDED.*libwharf' <<<"$dyn" && grep -q 'NEEDED.*libcrypto' <<<"$dyn"
}

finish() {
    if ((failures)); then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}
