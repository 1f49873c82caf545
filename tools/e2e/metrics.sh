#!/usr/bin/env bash
# A guest run through our backend, then its metrics (issue 17): the backend logs the VirtFs.Backend meter's
# totals when its front-end leaves; after a guest that wrote, read, listed and missed a file they must show it.
# Usage: tools/e2e/metrics.sh [--no-build] [--bin DIR] [--label NAME] [--log-dir DIR]
#   --bin DIR     our executables (default artifacts/bin): tools/e2e/package.sh passes the installed ones
#   --label NAME  prefix of the PASS/FAIL names (default metrics)
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
VM_ARGS=() LABEL=metrics LOG_DIR=""
while (( $# )); do
    case "$1" in
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --bin) export VIRTFS_BIN="$2"; VM_ARGS+=(--no-build); shift 2 ;;
        --label) LABEL="$2"; shift 2 ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "metrics: unknown option $1" >&2; exit 2 ;;
    esac
done

WORK="$(mktemp -d /tmp/virtfs-metrics.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
EXPORT="$WORK/private/export"
mkdir -p "$EXPORT"; chmod 0700 "$WORK/private"; chmod 0755 "$EXPORT"
echo "from the host" >"$EXPORT/hello.txt"
LOG_DIR="${LOG_DIR:-$WORK/logs}"; mkdir -p "$LOG_DIR"

# 300 KiB written and read back, a listing, a miss (ENOENT), a rename.
GUEST='set -e; cd /mnt; dd if=/dev/zero of=w.bin bs=4096 count=75 2>/dev/null; sync;
cat w.bin | wc -c; cat hello.txt; ls >/dev/null; ! cat missing 2>/dev/null; mv w.bin moved.bin; echo GUEST-OK'
"$TOOLS/vm.sh" --server virtfs --share "$EXPORT" --log-dir "$LOG_DIR" --timeout 300 "${VM_ARGS[@]}" \
    --run "$GUEST" >"$WORK/vm.out" 2>"$WORK/vm.err"
rc=$?
(( rc == 3 )) && { grep -h NEEDS: "$WORK/vm.err" >&2; exit 3; }
if (( rc == 0 )) && grep -q GUEST-OK "$WORK/vm.out" && [[ "$(stat -c %s "$EXPORT/moved.bin" 2>/dev/null)" == 307200 ]]; then
    pass guest-run
else
    fail guest-run "vm.sh exit $rc: $(tail -n 5 "$WORK/vm.out" "$WORK/vm.err" | tr '\n' ' ')"
fi

LOG="$LOG_DIR/backend.log"
# The summary's lines: requests: ... / errors: ... / bytes: read=N written=N in_flight=N / latency: ... / helper: ...
metric() { sed -n "s/.*$1=\([0-9][0-9]*\).*/\1/p" "$LOG" | tail -n 1; }
positive() { # name value
    if [[ -n "$2" && "$2" -gt 0 ]]; then pass "$1"; else fail "$1" "got '${2:-nothing}' in $LOG"; fi
}
if grep -q "metrics (VirtFs.Backend) at exit" "$LOG" 2>/dev/null; then pass summary-logged; else fail summary-logged "no summary in $LOG"; fi
positive requests-total "$(metric total)"
positive requests-Twrite "$(metric Twrite)"
positive requests-Tread "$(metric Tread)"
positive errors-ENOENT "$(metric ENOENT)"
positive bytes-written "$(metric written)"
positive bytes-read "$(metric 'bytes: read')"
positive helper-round-trips "$(metric round_trips)"
inflight="$(metric in_flight)"
if [[ "$inflight" == 0 ]]; then pass in-flight-zero; else fail in-flight-zero "in_flight=$inflight at exit"; fi
# At the default level, no line per request: a few dozen lines for a run of hundreds of requests.
lines="$(wc -l <"$LOG")"
if (( lines < 60 )); then pass log-not-per-request; else fail log-not-per-request "$lines lines in $LOG"; fi
e2e_summary
