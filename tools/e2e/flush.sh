#!/usr/bin/env bash
# Interrupted requests (issue 3, Tflush): guest processes are SIGKILLed while their reads, writes and
# listings are in flight, which makes the Linux client flush them. Checks the data and the mount afterwards
# (tools/guest/flush.sh) and reports how many Tflush the backend answered (its request statistics).
# Usage: tools/e2e/flush.sh [--server virtfs|builtin] [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)"
SERVER=virtfs VM_ARGS=()
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "flush: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$(id -u)" == 0 ]] || { echo "flush: NEEDS: root" >&2; exit 3; }
WORK="$(mktemp -d /tmp/virtfs-flush.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/export" && chmod 0755 "$WORK/export"
rc=0
"$TOOLS/vm.sh" --server "$SERVER" --share "$WORK/export" --log-dir "$WORK/logs" --timeout 400 "${VM_ARGS[@]}" \
    --file "$TOOLS/guest/flush.sh" --run 'sh $VIRTFS_JOBDIR/flush.sh' >"$WORK/vm.out" 2>"$WORK/vm.err" || rc=$?
(( rc == 3 )) && { grep NEEDS "$WORK/vm.err" >&2; exit 3; }
tr -d '\r' <"$WORK/vm.out" | grep -E '^(PASS|FAIL): ' | sed -E "s/^(PASS|FAIL): /\1: flush[$SERVER] /"
nf=$(tr -d '\r' <"$WORK/vm.out" | grep -c '^FAIL: ' || true)
if (( rc != 0 )); then echo "FAIL: flush[$SERVER] guest-run (vm.sh exit $rc)"; nf=$((nf + 1)); fi
if [[ "$SERVER" == virtfs ]]; then
    n=$(grep -o 'Tflush n=[0-9]*' "$WORK/logs/backend.log" 2>/dev/null | head -1 | cut -d= -f2 || true)
    echo "flush[$SERVER]: the backend answered ${n:-0} Tflush"
fi
(( nf == 0 ))
