#!/usr/bin/env bash
# WH_TEST_LABELS: install
# Every installed public header compiles on its own, twice in a row (include
# guard), in strict C11 and in C++17 with warnings as errors, and with no
# feature macro (_GNU_SOURCE) defined by the user: a library user includes
# <wharf/x.h> first, in whatever language and mode, and nothing else.
source "$(dirname "$0")/lib.sh"
install_prefix

inc=$prefix/include
mapfile -t headers < <(cd "$inc/wharf" && ls -- *.h)
mapfile -t sources < <(cd "$WH_SOURCE_DIR/include/wharf" && ls -- *.h)
check "installed headers are exactly include/wharf/*.h" test "${headers[*]}" = "${sources[*]}"

c_flags=(-std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$inc")
cxx_flags=(-std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$inc")
# compiles LANG FILE: one try; on failure, says whether _GNU_SOURCE would help.
compiles() {
    local lang=$1 tu=$2 out
    local -a cmd
    if [[ $lang == c ]]; then cmd=("$CC" "${c_flags[@]}"); else cmd=("$CXX" "${cxx_flags[@]}"); fi
    if out=$("${cmd[@]}" "$tu" 2>&1); then return 0; fi
    printf '%s\n' "$out"
    if "${cmd[@]}" -D_GNU_SOURCE "$tu" >/dev/null 2>&1; then
        echo "(compiles with -D_GNU_SOURCE: the header relies on a feature macro it does not set)"
    fi
    return 1
}

for h in "${headers[@]}"; do
    printf '#include <wharf/%s>\n#include <wharf/%s>\n' "$h" "$h" >"$tmp/one.c"
    cp "$tmp/one.c" "$tmp/one.cpp"
    check "$h alone, C11" compiles c "$tmp/one.c"
    check "$h alone, C++17" compiles cxx "$tmp/one.cpp"
done
# All together, in reverse order, catches headers that clash with each other.
for ((i = ${#headers[@]} - 1; i >= 0; i--)); do echo "#include <wharf/${headers[i]}>"; done >"$tmp/all.c"
cp "$tmp/all.c" "$tmp/all.cpp"
check "all headers together, C11" compiles c "$tmp/all.c"
check "all headers together, C++17" compiles cxx "$tmp/all.cpp"
finish
