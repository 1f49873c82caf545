#!/bin/sh
# Guest half of tools/e2e/bigdir.sh: the host put $BIGDIR_N files in /mnt/big. Lists them through
# Treaddir in one pass and checks every entry comes exactly once, that a telldir cookie taken halfway
# still seeks to the same entry, and that ls agrees.
set -u
N=${BIGDIR_N:-100000}
. "$(dirname "$0")/lib.sh"   # pass, fail, check, expect
out=$(perl -e '
    my ($dir, $half) = @ARGV;
    opendir(my $d, $dir) or die "opendir: $!";
    my (%seen, $n, $cookie, $after);
    while (defined(my $e = readdir $d)) {
        $n++; $seen{$e}++;
        if ($n == $half) { $cookie = telldir $d }
        elsif ($n == $half + 1) { $after = $e }
    }
    seekdir($d, $cookie);
    my $again = readdir $d;
    printf "%d %d %s\n", $n, scalar(keys %seen), (defined $again && $again eq $after) ? "same" : "different";
' /mnt/big $((N / 2)) 2>&1)
set -- $out
[ "${1:-}" = $((N + 2)) ] && pass "bigdir-readdir-count" || fail "bigdir-readdir-count" "want $((N + 2)), got '$out'"
[ "${2:-}" = $((N + 2)) ] && pass "bigdir-readdir-unique" || fail "bigdir-readdir-unique" "got '$out'"
[ "${3:-}" = same ] && pass "bigdir-seekdir-halfway" || fail "bigdir-seekdir-halfway" "got '$out'"
c=$(ls /mnt/big | wc -l)
[ "$c" = "$N" ] && pass "bigdir-ls-count" || fail "bigdir-ls-count" "want $N, got $c"
v=$(cat "/mnt/big/f$((N - 7))" 2>&1)
[ "$v" = "$((N - 7))" ] && pass "bigdir-lookup-late-entry" || fail "bigdir-lookup-late-entry" "got '$v'"
guest_summary bigdir
