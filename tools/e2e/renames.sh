#!/usr/bin/env bash
# Renames racing path building (issue 13, item 5): tools/guest/renames.sh renames a directory in a loop while
# guest processes below it create, stat, read and append to files; then, on the host, every file must be in
# r/a/sub with the content the guest wrote, and nothing may have landed anywhere else.
# Usage: tools/e2e/renames.sh [--server virtfs|builtin] [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)"
SERVER=virtfs VM_ARGS=() ROUNDS=${ROUNDS:-60}
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        -h|--help) sed -n '2,5p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "renames: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$(id -u)" == 0 ]] || { echo "renames: NEEDS: root" >&2; exit 3; }
WORK="$(mktemp -d /tmp/virtfs-renames.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/export" && chmod 0755 "$WORK/export"
rc=0
"$TOOLS/vm.sh" --server "$SERVER" --share "$WORK/export" --log-dir "$WORK/logs" --timeout 300 "${VM_ARGS[@]}" \
    --file "$TOOLS/guest/renames.sh" --run "ROUNDS=$ROUNDS sh \$VIRTFS_JOBDIR/renames.sh" >"$WORK/vm.out" 2>"$WORK/vm.err" || rc=$?
(( rc == 3 )) && { grep NEEDS "$WORK/vm.err" >&2; exit 3; }
tr -d '\r' <"$WORK/vm.out" | { grep -E '^(PASS|FAIL): ' || true; } | sed -E "s/^(PASS|FAIL): /\1: renames[$SERVER] /"
nf=$(tr -d '\r' <"$WORK/vm.out" | grep -c '^FAIL: ' || true)
if (( rc != 0 )); then
    echo "FAIL: renames[$SERVER] guest-run (vm.sh exit $rc)"; tail -n 20 "$WORK/vm.out" "$WORK/vm.err" "$WORK/logs/backend.log" 2>/dev/null
    nf=$((nf + 1))
fi

# Host side: each file where the guest put it, with what the guest wrote; nothing else in the export.
E="$WORK/export/r"
misplaced=0 wrong=0
for w in 1 2 3; do
    for (( i = 0; i < ROUNDS; i++ )); do
        f="w$w-$i"
        if [[ ! -f "$E/a/sub/$f" ]]; then
            misplaced=$((misplaced + 1))
        elif [[ "$(cat "$E/a/sub/$f")" != "$f"$'\n'more ]]; then
            wrong=$((wrong + 1))
        fi
    done
done
extra=$(find "$WORK/export" -mindepth 1 ! -path "$E" ! -path "$E/a" ! -path "$E/a/sub" ! -path "$E/a/sub/w*" | head -5)
if (( misplaced == 0 )); then echo "PASS: renames[$SERVER] host-every-file-in-place"; else echo "FAIL: renames[$SERVER] host-every-file-in-place ($misplaced of $((3 * ROUNDS)) missing from r/a/sub)"; nf=$((nf + 1)); fi
if (( wrong == 0 )); then echo "PASS: renames[$SERVER] host-contents"; else echo "FAIL: renames[$SERVER] host-contents ($wrong files differ)"; nf=$((nf + 1)); fi
if [[ -z "$extra" ]]; then echo "PASS: renames[$SERVER] host-nothing-elsewhere"; else echo "FAIL: renames[$SERVER] host-nothing-elsewhere ($(echo $extra))"; nf=$((nf + 1)); fi
(( nf == 0 ))
