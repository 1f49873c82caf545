#!/usr/bin/env bash
# A directory of 100 000 entries (issue 3), listed from the guest. The host creates the files (creating
# them from a TCG guest would take minutes); the guest half (tools/guest/bigdir.sh) reads them back.
# Usage: tools/e2e/bigdir.sh [--server virtfs|builtin|...] [--count N] [--no-build] [--log-dir DIR]
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
SERVER=virtfs N=100000 VM_ARGS=() LOG_DIR=""
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --count) N="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "bigdir: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$N" =~ ^[0-9]+$ ]] || { echo "bigdir: --count N" >&2; exit 2; }
LABEL="bigdir[$SERVER]"
need_root bigdir "the lab uses chroot; the helper runs as root"
WORK="$(mktemp -d /tmp/virtfs-bigdir.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
EXPORT="$WORK/private/export"
mkdir -p "$EXPORT/big"; chmod 0700 "$WORK/private"; chmod 0755 "$EXPORT" "$EXPORT/big"
perl -e 'my ($d, $n) = @ARGV; for my $i (1..$n) { open(my $f, ">", "$d/f$i") or die "$!"; print $f $i; close $f }' "$EXPORT/big" "$N"
[[ -n "$LOG_DIR" ]] && VM_ARGS+=(--log-dir "$LOG_DIR")
run_guest "$WORK/vm.out" "$WORK/vm.err" --server "$SERVER" --share "$EXPORT" --timeout 400 "${VM_ARGS[@]}" \
    --file "$TOOLS/guest/bigdir.sh" --run "BIGDIR_N=$N sh \$VIRTFS_JOBDIR/bigdir.sh"
guest_results "$WORK/vm.out"
(( VM_RC == 0 )) || fail guest-run "vm.sh exit $VM_RC: $(tail -3 "$WORK/vm.err" | tr '\n' ' ')"
e2e_summary
