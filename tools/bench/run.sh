#!/usr/bin/env bash
# Benchmarks VirtFs against its peers in the same run, on the same guest, kernel and parameters:
#   builtin    QEMU 11.1's own virtio-9p (-virtfs local): the baseline VirtFs replaces
#   virtiofsd  a vhost-user filesystem daemon (virtiofs): the speed bar
#   virtfs     vhost-user-9p + virtfs-proxy-helper
# and prints each result with the ratios virtfs/builtin and virtfs/virtiofsd. Speed targets live here,
# never in timed unit tests: a ratio is meaningful only against a peer measured minutes apart.
#
# Usage: tools/bench/run.sh [--servers "builtin virtiofsd virtfs"] [--size 128M] [--no-build] [--log-dir DIR]
#                           [--9p-opts OPTS]   (9p mount options for builtin and virtfs, e.g. access=user,msize=512000,cache=loose)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)"
SERVERS="builtin virtiofsd virtfs" SIZE=128M BUILD=() LOG_DIR="" P9_OPTS=()
while (( $# )); do
    case "$1" in
        --servers) SERVERS="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --no-build) BUILD=(--no-build); shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --9p-opts) P9_OPTS=(--mount-opts "$2"); shift 2 ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "bench: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$SIZE" =~ ^[0-9]+[KMG]$ ]] || { echo "bench: --size like 128M" >&2; exit 2; }
WORK="$(mktemp -d /tmp/virtfs-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
declare -A RESULT UNIT

for server in $SERVERS; do
    export_dir="$WORK/$server/export"
    mkdir -p "$export_dir"
    chmod 0755 "$export_dir"
    log=("--log-dir" "${LOG_DIR:-$WORK/$server/logs}")
    echo "bench: $server" >&2
    out="$WORK/$server/out.txt"
    opts=()
    [[ "$server" != virtiofsd ]] && opts=("${P9_OPTS[@]}")
    if ! "$TOOLS/vm.sh" --server "$server" --share "$export_dir" "${BUILD[@]}" "${log[@]}" "${opts[@]}" --timeout 900 \
            --file "$HERE/guest-bench.sh" --run "BENCH_SIZE=$SIZE sh \$VIRTFS_JOBDIR/guest-bench.sh" >"$out" 2>&1; then
        echo "bench: $server run failed (see $out)" >&2
    fi
    [[ "$server" == virtfs ]] && BUILD=(--no-build)
    while read -r _ name value unit; do
        RESULT["$server/$name"]="$value"
        UNIT["$name"]="$unit"
    done < <(tr -d '\r' <"$out" | grep '^BENCH ' | grep -v FAILED || true)
done

ratio() { # a b -> a/b or "-"
    if [[ -n "${1:-}" && -n "${2:-}" ]] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "-"
    fi
}
printf '%-14s %-8s %12s %12s %12s %14s %16s\n' test unit builtin virtiofsd virtfs virtfs/builtin virtfs/virtiofsd
for name in seq-write seq-read rand-read-4k create stat rename unlink; do
    b="${RESULT[builtin/$name]:-}" v="${RESULT[virtiofsd/$name]:-}" o="${RESULT[virtfs/$name]:-}"
    printf '%-14s %-8s %12s %12s %12s %14s %16s\n' "$name" "${UNIT[$name]:-}" "${b:--}" "${v:--}" "${o:--}" \
        "$(ratio "$o" "$b")" "$(ratio "$o" "$v")"
done
