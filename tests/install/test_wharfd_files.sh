#!/usr/bin/env bash
# WH_TEST_LABELS: install
# What `cmake --install` puts around wharfd: the program, its man page (renders
# without warnings and documents exactly the options `wharfd --help` lists),
# the systemd unit (ExecStart names the installed program) and the docs.
source "$(dirname "$0")/lib.sh"
install_prefix

# Wherever GNUInstallDirs put them (the cache leaves MANDIR/DOCDIR empty
# when they follow DATAROOTDIR), they must be inside the prefix.
found() { find "$prefix" -path "*/$1" -print -quit; }
wharfd=$(found bin/wharfd)
man=$(found man8/wharfd.8)
docdir=$(dirname "$(found doc/wharf/README.md)")
unit=$prefix/lib/systemd/system/wharfd.service

check "bin/wharfd installed" test -x "$wharfd"
check "share/man/man8/wharfd.8 installed" test -f "$man"
if command -v groff >/dev/null; then
    check "wharfd.8 renders without groff warnings" \
        bash -c 'out=$(groff -man -Tutf8 -ww -z "$1" 2>&1) && [[ -z $out ]] || { echo "$out"; false; }' _ "$man"
else
    fail "groff is not installed (scripts/deps.sh test installs groff-base)"
fi

if [[ -x $wharfd ]]; then
    help=$("$wharfd" --help)
    options_in_help=$(grep -oE -- '--[a-z][a-z-]*' <<<"$help" | sort -u)
    # roff spells "--" as "\-\-".
    options_in_man=$(grep -oE '\\-\\-[a-z][a-z\\-]*' "$man" | sed 's/\\//g' | sort -u)
    undocumented=$(comm -23 <(echo "$options_in_help") <(echo "$options_in_man"))
    stale=$(comm -13 <(echo "$options_in_help") <(echo "$options_in_man"))
    check "every option of wharfd --help is in wharfd.8" test -z "$undocumented"
    [[ -z $undocumented ]] || printf '    missing from the man page: %s\n' $undocumented >&2
    check "wharfd.8 documents no option wharfd lacks" test -z "$stale"
    [[ -z $stale ]] || printf '    not in wharfd --help: %s\n' $stale >&2
    version=$("$wharfd" --version | awk '{print $2}')
    check "wharfd.8 .TH names wharf $version" grep -q "^\.TH WHARFD 8 .*\"wharf $version\"" "$man"
fi

check "systemd unit installed" test -f "$unit"
check "unit's ExecStart is the installed wharfd" grep -q "^ExecStart=$wharfd " "$unit"
check "share/doc/wharf/README.md installed" test -f "$docdir/README.md"
for f in "$WH_SOURCE_DIR"/docs/*.md; do
    check "docs/${f##*/} installed" test -f "$docdir/docs/${f##*/}"
done
finish
