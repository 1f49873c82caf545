#!/bin/sh
# Guest half of the helper-recovery test (tools/e2e/recovery.sh). The host kills virtfs-proxy-helper
# when it sees /mnt/.kill-helper, restarts it, and creates .helper-restarted in the export.
# Checks: data I/O on files opened before the crash keeps working, metadata requests fail with EIO
# (not a hang, not a wrong answer) while the helper is gone, and the same mount works again afterwards.
set -u
cd /mnt || exit 1
. "$(dirname "$0")/lib.sh"   # pass, fail, check, expect

mkdir -p work && echo before > work/before.txt || { fail setup "cannot write"; exit 1; }
exec 3<>work/open-across.txt   # held open across the helper's death
echo start >&3

# Busy: metadata and data requests in flight when the helper dies.
(
    i=0
    while [ ! -e /tmp/stop-busy ]; do
        echo "$i" > "work/busy$((i % 20))" 2>/dev/null
        ls work >/dev/null 2>&1
        i=$((i + 1))
    done
) &
busy=$!

touch .kill-helper
# Wait until the helper is gone: a lookup of a fresh name fails with EIO instead of ENOENT.
down=0
for _ in $(seq 1 300); do
    err=$(stat "work/probe-$$-$_" 2>&1)
    case "$err" in *"Input/output error"*) down=1; break ;; esac
    sleep 0.2
done
[ "$down" = 1 ] && pass "metadata-fails-with-eio-while-down" || fail "metadata-fails-with-eio-while-down" "no EIO seen: $err"

# Data I/O goes guest memory <-> fd: it does not need the helper.
if echo during >&3 2>/dev/null; then pass "open-file-writable-while-down"; else fail "open-file-writable-while-down" "write failed"; fi

# Wait for the restarted helper (the backend reconnects on demand).
up=0
for _ in $(seq 1 600); do
    if [ -e .helper-restarted ]; then up=1; break; fi
    sleep 0.2
done
[ "$up" = 1 ] && pass "mount-sees-restarted-helper" || fail "mount-sees-restarted-helper" "marker never visible"
touch /tmp/stop-busy
wait "$busy" 2>/dev/null

# Everything works again, without a remount.
if echo after > work/after.txt && [ "$(cat work/after.txt)" = after ]; then pass "create-after-restart"; else fail "create-after-restart" "write/read failed"; fi
if [ "$(cat work/before.txt)" = before ]; then pass "old-file-after-restart"; else fail "old-file-after-restart" "content lost"; fi
if mkdir work/newdir && rmdir work/newdir; then pass "mkdir-rmdir-after-restart"; else fail "mkdir-rmdir-after-restart" "failed"; fi
if [ "$(ls work | grep -c '^busy')" -ge 1 ]; then pass "readdir-after-restart"; else fail "readdir-after-restart" "$(ls work 2>&1 | head -3)"; fi
echo end >&3 && exec 3>&-
if [ "$(head -1 work/open-across.txt)" = start ] && grep -q end work/open-across.txt; then
    pass "held-file-intact"; else fail "held-file-intact" "$(cat work/open-across.txt 2>&1 | tr '\n' ' ')"; fi
# No request may be left hanging: a full walk of the tree finishes.
if timeout 60 find /mnt -xdev >/dev/null 2>&1; then pass "no-hung-requests"; else fail "no-hung-requests" "find did not finish"; fi
guest_summary recovery
[ "$FAILS" = 0 ]
