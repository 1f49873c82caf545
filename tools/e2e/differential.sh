#!/usr/bin/env bash
# Differential report of one guest suite run against two servers: a table (check, REF, OURS) of every
# check whose outcome differs, each marked "documented" when docs/semantics.md lists it as a deliberate
# difference (written there as `SUITE:check`), or "UNEXPLAINED".
#
# Usage: tools/e2e/differential.sh SUITE REF_NAME REF_OUT OURS_NAME OURS_OUT [--all]
#   *_OUT: the output of tools/e2e/SUITE.sh (PASS:/FAIL: SUITE[SERVER] name lines). --all prints every row.
# Prints the table and a last line "differential SUITE: N checks, N same, N documented, N unexplained".
# Exit: 0 when no difference is unexplained, 1 otherwise.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOC="$HERE/../../docs/semantics.md"
SUITE=$1 RN=$2 RO=$3 ON=$4 OO=$5 ALL=${6:-}
# outcomes NAME FILE: "check PASS|FAIL" per line
outcomes() {
    grep -a -E "^(PASS|FAIL): $1\[[a-z0-9-]+\] " "$2" 2>/dev/null \
        | sed -E 's/^(PASS|FAIL): [a-z0-9]+\[[a-z0-9-]+\] ([^ ]+).*$/\2 \1/' | sort -u -k1,1
}
documented() { grep -o "\`$SUITE:[^\`]*\`" "$DOC" 2>/dev/null | tr -d '`' | sed "s/^$SUITE://" | sort -u; }
join -a1 -a2 -e missing -o 0,1.2,2.2 <(outcomes "$SUITE" "$RO") <(outcomes "$SUITE" "$OO") >"${TMPDIR:-/tmp}/diff.$$"
DOCS=" $(documented | tr '\n' ' ') "
n=0 same=0 doc=0 unexp=0
printf '%-44s %-9s %-9s %s\n' "check ($SUITE)" "$RN" "$ON" ""
while read -r name r o; do
    n=$((n + 1))
    if [[ "$r" == "$o" ]]; then
        same=$((same + 1)); [[ -n "$ALL" ]] && printf '%-44s %-9s %-9s\n' "$name" "$r" "$o"
        continue
    fi
    if [[ "$DOCS" == *" $name "* ]]; then note=documented; doc=$((doc + 1)); else note=UNEXPLAINED; unexp=$((unexp + 1)); fi
    printf '%-44s %-9s %-9s %s\n' "$name" "$r" "$o" "$note"
done <"${TMPDIR:-/tmp}/diff.$$"
rm -f "${TMPDIR:-/tmp}/diff.$$"
echo "differential $SUITE: $n checks, $same same, $doc documented (docs/semantics.md), $unexp unexplained"
(( unexp == 0 ))
