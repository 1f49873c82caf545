#!/usr/bin/env bash
# Measures what the backend's pool of helper connections buys: the same parallel metadata workload
# (tools/bench/guest-parallel-metadata.sh: 4 guest processes stat'ing at once, and 1 alone) with
# --helper-connections 1 and with 4. Prints ops/s and the 4-connection/1-connection ratio.
# Usage: tools/bench/pool.sh [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)"
BUILD=()
[[ "${1:-}" == --no-build ]] && BUILD=(--no-build)
WORK="$(mktemp -d /tmp/virtfs-pool.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
declare -A R
for conns in 1 4; do
    mkdir -p "$WORK/$conns"
    "$TOOLS/vm.sh" --server virtfs --share "$WORK/$conns" "${BUILD[@]}" --timeout 600 \
        --backend-arg --helper-connections --backend-arg "$conns" \
        --file "$HERE/guest-parallel-metadata.sh" --run 'sh $VIRTFS_JOBDIR/guest-parallel-metadata.sh' \
        >"$WORK/out-$conns.txt" 2>&1 || echo "pool: run with $conns connections failed" >&2
    BUILD=(--no-build)
    while read -r _ name value _; do R["$conns/$name"]=$value; done < <(tr -d '\r' <"$WORK/out-$conns.txt" | grep '^BENCH ')
done
printf '%-10s %16s %16s %8s\n' test "1 connection" "4 connections" ratio
for name in stat-x1 stat-x4; do
    a=${R[1/$name]:-} b=${R[4/$name]:-}
    ratio=$([[ -n "$a" && -n "$b" ]] && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }' || echo -)
    printf '%-10s %16s %16s %8s\n' "$name" "${a:--}" "${b:--}" "$ratio"
done
