#!/bin/sh
# Guest half of tools/e2e/flush.sh: readers and writers killed while their 9P requests are in flight make the
# Linux client send Tflush; afterwards every file must read back whole and the mount must still work.
set -u
. "$(dirname "$0")/lib.sh"   # pass, fail, check, expect
cd /mnt || exit 1
dd if=/dev/urandom of=src bs=1M count=16 2>/dev/null
want=$(sha256sum < src)
i=0
while [ $i -lt 60 ]; do
    timeout -s KILL 0.0$((i % 9 + 1)) dd if=src of=/dev/null bs=1M 2>/dev/null
    timeout -s KILL 0.0$((i % 7 + 1)) dd if=src of="w$((i % 4))" bs=64k 2>/dev/null
    timeout -s KILL 0.0$((i % 5 + 1)) ls -la . >/dev/null 2>&1
    i=$((i + 1))
done
[ "$(sha256sum < src)" = "$want" ] && pass "flush-source-intact" || fail "flush-source-intact" "checksum changed"
if dd if=src of=copy bs=1M 2>/dev/null && [ "$(sha256sum < copy)" = "$want" ]; then pass "flush-mount-still-works"; else fail "flush-mount-still-works" "copy differs"; fi
if timeout 60 ls -la >/dev/null 2>&1; then pass "flush-no-hung-requests"; else fail "flush-no-hung-requests" "ls hung"; fi
guest_summary flush
