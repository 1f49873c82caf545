#!/usr/bin/env bash
# Host side of the issue-3 POSIX / 9P2000.L semantics suite: prepares an export, holds a POSIX lock
# on one host file, boots a guest on it with tools/vm.sh, runs tools/guest/posix.sh there, then checks
# on the host what the guest reported (HOSTCHECK lines, see tools/e2e/hostcheck.sh).
#
# Usage: tools/e2e/posix.sh [--server virtfs|builtin|virtfs-rootless|builtin-mapped] [--log-dir DIR] [--no-build] [--timeout SEC] [--big N]
# Prints "PASS: posix[SERVER] name" / "FAIL: posix[SERVER] name (detail)" lines, then a summary.
# Exit: 0 all passed, 1 something failed, 3 cannot run here (reason printed, "NEEDS:").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tools/e2e/hostcheck.sh
source "$HERE/hostcheck.sh"
SERVER=virtfs LOG_DIR="" VM_ARGS=() TIMEOUT=480 BIG=2000
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --big) BIG="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "posix: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$BIG" =~ ^[0-9]+$ ]] || { echo "posix: --big N" >&2; exit 2; }
LABEL="posix[$SERVER]"
need_root posix "the lab boots QEMU in a chroot; the helper runs as root"

LOCKER=""
on_exit() { [[ -z "$LOCKER" ]] || kill "$LOCKER" 2>/dev/null; }
# Export root 0755 inside a 0700 parent: the unprivileged backend cannot read it by path.
e2e_parent virtfs-posix
E="$PARENT/export"
mkdir -m 0755 "$E"
printf 'locked by the host\n' >"$E/hostlocked.txt"; chmod 0666 "$E/hostlocked.txt"
: >"$E/ns.txt"; touch -a -d @1200000000.123456789 "$E/ns.txt"; touch -m -d @1300000000.987654321 "$E/ns.txt"
# A host process holds a classic POSIX write lock on the whole file for the run: a server with real
# locks makes the guest's F_SETLK fail with EAGAIN (docs/semantics.md).
perl "$HERE/hostlock.pl" "$E/hostlocked.txt" >"$LOG_DIR/locker.out" 2>&1 &
LOCKER=$!
# Rootless servers (issue 16): the export belongs to the unprivileged user they run as; mapped-xattr keeps the
# guest's owners and modes in xattrs, which the host checks read (HOSTCHECK_MAPPED, tools/e2e/hostcheck.sh).
if [[ "$SERVER" == virtfs-rootless || "$SERVER" == builtin-mapped ]]; then
    chown -R virtfs:virtfs "$E"; export HOSTCHECK_MAPPED=1
fi
for _ in $(seq 1 50); do grep -q locked "$LOG_DIR/locker.out" 2>/dev/null && break; sleep 0.1; done
grep -q locked "$LOG_DIR/locker.out" || { echo "posix: the host lock holder failed: $(cat "$LOG_DIR/locker.out")" >&2; exit 1; }

OUT="$LOG_DIR/guest.out"
# The guest suite's helper programs go into the job dir beside it.
for f in "$TOOLS"/guest/posix/*; do VM_ARGS+=(--file "$f"); done
run_guest --bound "$TIMEOUT" "$OUT" "$LOG_DIR/vm.err" --server "$SERVER" --share "$E" --log-dir "$LOG_DIR" \
    --timeout $(( TIMEOUT - 30 )) --file "$TOOLS/guest/posix.sh" "${VM_ARGS[@]}" \
    --run "cd / && POSIX_BIG=$BIG exec bash \"\$VIRTFS_JOBDIR/posix.sh\""
kill "$LOCKER" 2>/dev/null; LOCKER=""
grep -a '^posix: ' "$OUT" >&2 || true
guest_results "$OUT"
guest_completed "$OUT" posix
if grep -aq '^VIRTFS-MOUNT:ok' "$OUT"; then pass mount; else fail mount "no VIRTFS-MOUNT:ok from the guest"; fi
if grep -aq '^VIRTFS-UMOUNT:ok' "$OUT"; then pass umount; else fail umount "no VIRTFS-UMOUNT:ok from the guest"; fi

hostcheck_eval "$E" "$OUT" pass fail
[[ "$(stat -c %a "$PARENT")" == 700 && "$(stat -c %a "$E")" == 755 ]] \
    && pass host-export-modes || fail host-export-modes "$(stat -c %a "$PARENT") $(stat -c %a "$E")"
[[ "$(cat "$E/hostlocked.txt")" == "locked by the host" ]] && pass host-locked-file-intact || fail host-locked-file-intact "changed"
(( NP + NF > 0 )) || fail no-checks-ran "nothing reported"

(( OWN_LOGS )) || echo "posix: logs in $LOG_DIR" >&2
e2e_summary
