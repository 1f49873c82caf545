# The check helpers every guest suite uses (tools/guest/*.sh), so their PASS/FAIL lines, bounds and summaries
# are one thing. Sourced, in POSIX sh (dash runs the small suites, bash the large ones):
#   . "$(dirname "$0")/lib.sh"
# It reaches the guest the way the suite does: tools/e2e/lib.sh's run_guest passes it to tools/vm.sh --file,
# which copies it into the job dir beside the suite ($VIRTFS_JOBDIR, read-only in the guest).
#
# Lines printed, the format tools/e2e/*.sh and tools/test.sh read:
#   PASS: name
#   FAIL: name (detail)
#   HOSTCHECK: KIND REL ARG...    (a fact only the host can verify: tools/e2e/hostcheck.sh)
#   SUITE: N passed, N failed     (guest_summary, last)
PASSES=0 FAILS=0
# A hung request must cost one check, not the whole suite: every command a check runs is bounded by this many
# seconds (a suite whose checks are slow under TCG, like posix.sh's mmap remounts, raises it before its checks).
CHECK_TIMEOUT=${CHECK_TIMEOUT:-60}

pass() { echo "PASS: $1"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $1 ($2)"; FAILS=$((FAILS + 1)); }
hostcheck() { echo "HOSTCHECK: $*"; }
# check NAME CMD...: PASS when CMD succeeds (killed after CHECK_TIMEOUT s); its last output lines are the detail.
check() {
    _name=$1; shift
    if _out=$(timeout -s KILL "$CHECK_TIMEOUT" "$@" 2>&1); then pass "$_name"
    else fail "$_name" "$(printf '%s' "$_out" | tail -n 2 | tr '\n' ' ')"; fi
}
# expect NAME WANT GOT
expect() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi; }
# errno_is NAME WANT PERL_EXPR [UID]: the perl expression (false on failure, $! set) must fail with the errno
# named WANT, or succeed when WANT is "ok"; with UID it runs as that user and group only. A die inside the
# expression prints "died: ...", never a pass. Fcntl's and POSIX's errno constants are imported.
errno_is() {
    _pre=""
    [ -n "${4:-}" ] && _pre="use POSIX (); \$( = $4; \$) = '$4 $4'; POSIX::setuid($4); die 'setuid' unless \$> == $4 && \$) eq '$4 $4';"
    _got=$(timeout -s KILL 60 perl -MErrno -MFcntl -MPOSIX=:errno_h -e "$_pre"' my $r = eval { '"$3"' }; if ($@) { print "died: $@" } elsif ($r) { print "ok" } else { print((sort grep { $!{$_} } keys %!)[0] // "errno=" . ($!+0)) }' 2>&1)
    expect "$1" "$2" "$_got"
}
# guest_summary SUITE: the last line; the e2e half checks it is there (the suite ran to its end).
guest_summary() { echo "$1: $PASSES passed, $FAILS failed"; }
# guest_exit: the number of FAILs as exit status, at most 100.
guest_exit() { [ "$FAILS" -gt 100 ] && FAILS=100; exit "$FAILS"; }
