#!/usr/bin/env bash
# Renames racing path building (issue 13, item 5): tools/guest/renames.sh renames a directory in a loop while
# guest processes below it create, stat, read and append to files; then, on the host, every file must be in
# r/a/sub with the content the guest wrote, and nothing may have landed anywhere else.
# Usage: tools/e2e/renames.sh [--server virtfs|builtin] [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
SERVER=virtfs VM_ARGS=() ROUNDS=${ROUNDS:-60}
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        -h|--help) sed -n '2,5p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "renames: unknown option $1" >&2; exit 2 ;;
    esac
done
LABEL="renames[$SERVER]"
need_root renames
WORK="$(mktemp -d /tmp/virtfs-renames.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/export" && chmod 0755 "$WORK/export"
run_guest "$WORK/vm.out" "$WORK/vm.err" --server "$SERVER" --share "$WORK/export" --log-dir "$WORK/logs" \
    --timeout 300 "${VM_ARGS[@]}" --file "$TOOLS/guest/renames.sh" --run "ROUNDS=$ROUNDS sh \$VIRTFS_JOBDIR/renames.sh"
guest_results "$WORK/vm.out"
if (( VM_RC != 0 )); then
    fail guest-run "vm.sh exit $VM_RC"; tail -n 20 "$WORK/vm.out" "$WORK/vm.err" "$WORK/logs/backend.log" 2>/dev/null
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
(( misplaced == 0 )) && pass host-every-file-in-place || fail host-every-file-in-place "$misplaced of $((3 * ROUNDS)) missing from r/a/sub"
(( wrong == 0 )) && pass host-contents || fail host-contents "$wrong files differ"
[[ -z "$extra" ]] && pass host-nothing-elsewhere || fail host-nothing-elsewhere "$(echo $extra)"
e2e_summary
