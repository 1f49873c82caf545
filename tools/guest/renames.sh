#!/bin/sh
# Guest half of tools/e2e/renames.sh (issue 13, item 5): one process renames a directory round a cycle of three
# names while three others, sitting in a subdirectory of it, create, stat, read and reopen files there. The
# guest allows this (a rename locks the parent, a create only its own directory), so the server sees walks and
# creates from fids below the renamed directory racing the rename. Every operation must work; where each file
# landed is checked on the host afterwards (the e2e half).
set -u
. "$(dirname "$0")/lib.sh"   # pass, fail, check, expect
ROUNDS=${ROUNDS:-150}
cd /mnt || exit 1
rm -rf r && mkdir -p r/a/sub || { echo "FAIL: renames-setup (mkdir)"; exit 1; }
S=$(mktemp -d /tmp/renames.XXXXXX) # the job dir is read-only in the guest

# Workers use only shell builtins (no fork per operation), relative to their working directory, which follows
# the directory whatever its name.
worker() {
    w=$1 errors=0 i=0
    cd /mnt/r/a/sub || { echo "worker $w: cd failed"; : > "$S/ready.$w"; : > "$S/done.$w"; return; }
    : > "$S/ready.$w"
    while [ ! -e "$S/go" ]; do sleep 0.1; done
    while [ $i -lt "$ROUNDS" ]; do
        f="w$w-$i"
        echo "$f" > "$f" || { errors=$((errors + 1)); echo "worker $w: create $f failed"; }
        [ -f "$f" ] || { errors=$((errors + 1)); echo "worker $w: stat $f failed"; }
        read -r line < "$f" || line=""
        [ "$line" = "$f" ] || { errors=$((errors + 1)); echo "worker $w: read $f gave '$line'"; }
        echo "more" >> "$f" || { errors=$((errors + 1)); echo "worker $w: append $f failed"; }
        i=$((i + 1))
    done
    echo "$errors" > "$S/errors.$w"
    : > "$S/done.$w"
}
worker 1 & worker 2 & worker 3 &
while [ "$(ls "$S"/ready.* 2>/dev/null | wc -l)" -lt 3 ]; do sleep 0.1; done
# The renamer (one perl process: a fork per rename would leave the race few chances) stops at "a" once the
# workers are done (they drop a file in $S each).
: > "$S/go"
perl -e '
    my ($s, $n) = (shift, 0);
    until (3 <= (() = glob("$s/done.*"))) {
        for my $step (["a", "b"], ["b", "c"], ["c", "a"]) {
            rename("/mnt/r/$step->[0]", "/mnt/r/$step->[1]") or die "renamer: rename $step->[0] after $n: $!\n";
            $n++;
        }
    }
    print "$n\n";' "$S" > "$S/renames" &
wait
renames=$(cat "$S/renames" 2>/dev/null || echo 0)
errors=$(cat "$S"/errors.* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
[ "$renames" -gt 0 ] && pass "renames-renamer-ran ($renames renames)" || fail "renames-renamer-ran" "no rename done"
[ "$errors" -eq 0 ] && pass "renames-guest-ops-under-renames" || fail "renames-guest-ops-under-renames" "$errors failed operations"
count=$(ls /mnt/r/a/sub | wc -l)
[ "$count" -eq $((3 * ROUNDS)) ] && pass "renames-guest-sees-every-file" || fail "renames-guest-sees-every-file" "$count of $((3 * ROUNDS))"
guest_summary renames
