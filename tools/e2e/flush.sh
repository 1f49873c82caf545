#!/usr/bin/env bash
# Interrupted requests (issue 3, Tflush): guest processes are SIGKILLed while their reads, writes and
# listings are in flight, which makes the Linux client flush them. Checks the data and the mount afterwards
# (tools/guest/flush.sh) and reports how many Tflush the backend answered (its request statistics).
# Usage: tools/e2e/flush.sh [--server virtfs|builtin] [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
SERVER=virtfs VM_ARGS=()
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "flush: unknown option $1" >&2; exit 2 ;;
    esac
done
LABEL="flush[$SERVER]"
need_root flush
WORK="$(mktemp -d /tmp/virtfs-flush.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/export" && chmod 0755 "$WORK/export"
run_guest "$WORK/vm.out" "$WORK/vm.err" --server "$SERVER" --share "$WORK/export" --log-dir "$WORK/logs" \
    --timeout 400 "${VM_ARGS[@]}" --file "$TOOLS/guest/flush.sh" --run 'sh $VIRTFS_JOBDIR/flush.sh'
guest_results "$WORK/vm.out"
(( VM_RC == 0 )) || fail guest-run "vm.sh exit $VM_RC"
if [[ "$SERVER" == virtfs ]]; then
    n=$(grep -o 'Tflush n=[0-9]*' "$WORK/logs/backend.log" 2>/dev/null | head -1 | cut -d= -f2 || true)
    echo "$LABEL: the backend answered ${n:-0} Tflush"
fi
e2e_summary
