#!/bin/sh
# Runs in the guest on a cache=mmap mount (tools/e2e/coherence.sh). The host rewrites a file in place (same
# size, within the same second) and then appends to it; the guest's next open must read the host's data
# (PASS:/FAIL:). Then the documented limit (INFO:, not a check): while a guest process keeps the file open, the
# Linux client keeps its dentry, inode and cached pages and an open does no walk, so a host change is not seen
# until the last guest close (on every 9p server: the client never asks).
. "$(dirname "$0")/lib.sh"   # pass, fail, expect
F=/mnt/coherence.txt
ask() { # ask the host to do $1, wait until it says done
    rm -f /mnt/.coherence-done
    echo "$1" > /mnt/.coherence-request
    i=0
    while [ ! -e /mnt/.coherence-done ]; do
        i=$((i + 1)); [ $i -gt 300 ] && { fail "host-did-$1" "no answer in 30 s"; return 1; }
        sleep 0.1
    done
    rm -f /mnt/.coherence-done /mnt/.coherence-request
}
# reads NAME EXPECTED: the file as one line ('|' for newlines) must be EXPECTED
reads() { expect "$1" "$2" "$(cat "$F" | tr '\n' '|')"; }
reads first-read 'AAAAAAAA'
# mmap (what cache=mmap exists for) reads the file through the page cache.
perl -MFcntl -e 'open(my $f, "<", $ARGV[0]) or die; my $d; sysread($f, $d, 8); exit($d eq "AAAAAAAA" ? 0 : 1)' "$F" \
    && pass first-read-again || fail first-read-again "mmap read differs"
ask rewrite && reads sees-same-size-rewrite 'BBBBBBBB'
ask append && reads sees-append 'BBBBBBBB|CC'
got=$(wc -c < "$F")
expect size-after-append 11 "$got"

exec 3< "$F"
cat "$F" >/dev/null
ask rewrite2
got=$(head -c 8 "$F")
[ "$got" = DDDDDDDD ] && echo "INFO: held-open: host rewrite seen while the file stays open" \
    || echo "INFO: held-open: host rewrite NOT seen while a guest process keeps the file open (read '$got')"
exec 3<&-
reads sees-rewrite-after-last-close 'DDDDDDDD|CC'
guest_summary coherence
