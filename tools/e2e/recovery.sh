#!/usr/bin/env bash
# Helper recovery, end to end: while the guest is busy on the mount, virtfs-proxy-helper is killed
# (SIGKILL), then a new one is started on the same named socket. The guest half
# (tools/guest/recovery.sh) checks EIO while it is down, data I/O on open files throughout, and a
# working mount afterwards without a remount; this half checks the backend logged the loss and that
# nothing outside the guest's work went wrong.
#
# Usage: tools/e2e/recovery.sh [--no-build] [--log-dir DIR]
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
VM_ARGS=() LOG_DIR=""
while (( $# )); do
    case "$1" in
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "recovery: unknown option $1" >&2; exit 2 ;;
    esac
done
LABEL=recovery
need_root recovery "the helper runs as root"

WORK="$(mktemp -d /tmp/virtfs-recovery.XXXXXX)"
EXPORT="$WORK/private/export"
mkdir -p "$EXPORT"; chmod 0700 "$WORK/private"; chmod 0755 "$EXPORT"
LOG_DIR="${LOG_DIR:-$WORK/logs}"; mkdir -p "$LOG_DIR"
NEW_HELPER=""
VM_PID=""
cleanup() {
    # "|| true": under set -e a failing wait (143 for a process we just killed) would end the
    # trap early and become the script's exit status, failing a run whose checks all passed.
    [[ -n "$VM_PID" ]] && kill -TERM "$VM_PID" 2>/dev/null && wait "$VM_PID" 2>/dev/null || true
    [[ -n "$NEW_HELPER" ]] && kill -TERM "$NEW_HELPER" 2>/dev/null && wait "$NEW_HELPER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The helper's death is the point of this test: vm.sh must not stop QEMU for it.
VIRTFS_WATCHDOG_SKIP_HELPER=1 "$TOOLS/vm.sh" --server virtfs --share "$EXPORT" --log-dir "$LOG_DIR" --timeout 400 \
    "${VM_ARGS[@]}" --file "$TOOLS/guest/lib.sh" --file "$TOOLS/guest/recovery.sh" --run 'sh $VIRTFS_JOBDIR/recovery.sh' \
    >"$WORK/vm.out" 2>"$WORK/vm.err" &
VM_PID=$!

wait_for() { # file seconds
    local i
    for (( i = 0; i < $2 * 5; i++ )); do [[ -e "$1" ]] && return 0; kill -0 "$VM_PID" 2>/dev/null || return 1; sleep 0.2; done
    return 1
}
if wait_for "$EXPORT/.kill-helper" 300; then
    cmd=$(sed -n 's/^vm: helper: //p' "$WORK/vm.err" | head -1)
    old=$(pgrep -f "virtfs-proxy-helper -p $EXPORT" | head -1 || true)
    if [[ -n "$old" && -n "$cmd" ]]; then
        sleep 1   # let the guest's busy loop have requests in flight
        kill -KILL "$old"
        pass "helper-killed"
        sleep 4   # the guest sees EIO meanwhile
        # shellcheck disable=SC2086 # the logged command line is split on purpose
        $cmd >>"$LOG_DIR/helper-restarted.log" 2>&1 &
        NEW_HELPER=$!
        sock=$(sed -n 's/.* -s \([^ ]*\) .*/\1/p' <<<"$cmd")
        for _ in $(seq 1 50); do [[ -S "$sock" ]] && break; sleep 0.1; done
        if [[ -S "$sock" ]] && kill -0 "$NEW_HELPER" 2>/dev/null; then pass "helper-restarted"; else fail "helper-restarted" "no socket"; fi
        touch "$EXPORT/.helper-restarted"
    else
        fail "helper-killed" "helper process or command line not found"
    fi
else
    fail "guest-ready" "the guest never asked for the kill; $(tail -5 "$WORK/vm.err" | tr '\n' ' ')"
fi

vm_rc=0
wait "$VM_PID" || vm_rc=$?
VM_PID=""
guest_results "$WORK/vm.out"
[[ "$vm_rc" == 0 ]] && pass "guest-exit-status" || fail "guest-exit-status" "vm.sh exited $vm_rc"
if grep -q "helper connection lost\|cannot connect to the proxy helper\|not reachable" "$LOG_DIR/backend.log" 2>/dev/null; then
    pass "backend-logged-loss"; else fail "backend-logged-loss" "no log line about the lost helper"; fi
if [[ "$(cat "$EXPORT/work/after.txt" 2>/dev/null)" == after ]]; then pass "host-sees-post-restart-write"; else fail "host-sees-post-restart-write" "missing"; fi
e2e_summary
