#!/usr/bin/env bash
# Coherence of the recommended mount (issue 14): cache=mmap on VirtFs. A host process rewrites a file in place
# with the same size, within the same second, then appends to it; the guest's next open must read the host's
# data. Also reports (INFO:) what the guest client does not promise: a host change while a guest process keeps
# the file open is not seen until its last close (docs/performance.md). Takes about a minute.
# Usage: tools/e2e/coherence.sh [--server virtfs|builtin] [--mount-opts OPTS] [--timeout SEC (300)] [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
SERVER=virtfs VM_ARGS=() OPTS="access=user,msize=512000,cache=mmap" TIMEOUT=300
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --mount-opts) OPTS="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "coherence: unknown option $1" >&2; exit 2 ;;
    esac
done
LABEL="coherence[$SERVER,${OPTS##*cache=}]"
need_root coherence
WORK="$(mktemp -d /tmp/virtfs-coherence.XXXXXX)"
E="$WORK/export"
WATCH=""
trap '[[ -n "$WATCH" ]] && kill "$WATCH" 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$E" && chmod 0755 "$E"
printf AAAAAAAA >"$E/coherence.txt"; chmod 0644 "$E/coherence.txt"
# The host side: answers the guest's requests (a file in the share) by changing the file as another host
# process would, then says done.
( while true; do
      req="$(cat "$E/.coherence-request" 2>/dev/null || true)"
      if [[ -n "$req" && ! -e "$E/.coherence-done" ]]; then
          case "$req" in
              rewrite) printf BBBBBBBB | dd of="$E/coherence.txt" conv=notrunc status=none ;;
              rewrite2) printf DDDDDDDD | dd of="$E/coherence.txt" conv=notrunc status=none ;;
              append) printf '\nCC' >>"$E/coherence.txt" ;;
          esac
          : >"$E/.coherence-done"; chmod 0644 "$E/.coherence-done"
          while [[ -e "$E/.coherence-request" && -e "$E/.coherence-done" ]]; do sleep 0.05; done
      fi
      sleep 0.05
  done ) &
WATCH=$!
run_guest "$WORK/vm.out" "$WORK/vm.err" --server "$SERVER" --share "$E" --mount-opts "$OPTS" --log-dir "$WORK/logs" \
    --timeout "$TIMEOUT" "${VM_ARGS[@]}" --file "$TOOLS/guest/coherence.sh" --run 'sh $VIRTFS_JOBDIR/coherence.sh'
guest_results "$WORK/vm.out"
if (( VM_RC != 0 || NP == 0 )); then
    fail guest-run "vm.sh exit $VM_RC"
    tail -n 20 "$WORK/vm.err" "$WORK/vm.out" >&2
fi
e2e_summary
