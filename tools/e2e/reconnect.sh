#!/usr/bin/env bash
# When QEMU goes away (issue 13), end to end. QEMU is killed (SIGKILL) while the guest writes through the mount:
#   1. with --keep-listening the backend process stays, unmaps the dead guest's memory, listens again, and a
#      second QEMU boots and mounts through the same backend (and helper pool) with a fresh 9P session;
#      SIGTERM then ends it with status 0;
#   2. without it the backend exits with status 0 once QEMU is gone, without waiting for requests in flight.
# The backend and helper are started here (not by vm.sh, which ties them to one QEMU): vm.sh --vhost-socket.
#
# Usage: tools/e2e/reconnect.sh [--no-build] [--log-dir DIR]
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
BUILD=1 LOG_DIR=""
while (( $# )); do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "reconnect: unknown option $1" >&2; exit 2 ;;
    esac
done
LABEL=reconnect
own_servers reconnect "$BUILD"
CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
wait_file() { # path seconds pid-that-must-live
    local i
    for (( i = 0; i < $2 * 5; i++ )); do [[ -e "$1" ]] && return 0; kill -0 "$3" 2>/dev/null || return 1; sleep 0.2; done
    return 1
}
# A guest that keeps writing 1 MiB files (64 KiB writes, so requests are in flight all the time) until killed.
BUSY='mkdir -p busy; i=0; while :; do dd if=/dev/zero of=busy/f$((i % 4)) bs=65536 count=16 conv=fsync 2>/dev/null; i=$((i + 1)); [ $i = 2 ] && touch .busy; done'
kill_qemu_under_load() { # socket label
    local sock_g=$1 label=$2 vm qemu
    rm -f "$EXPORT/.busy"
    "$TOOLS/vm.sh" --vhost-socket "$CACHE/trixie$sock_g" --share "$EXPORT" --timeout 300 --log-dir "$LOG_DIR/$label" \
        --run "$BUSY" >"$LOG_DIR/$label.out" 2>"$LOG_DIR/$label.err" &
    vm=$!
    if ! wait_file "$EXPORT/.busy" 240 "$vm"; then
        fail "$label-guest-busy" "the guest never started writing; $(tail -3 "$LOG_DIR/$label.err" | tr '\n' ' ')"
        kill -TERM "$vm" 2>/dev/null; wait "$vm" 2>/dev/null || true
        return 1
    fi
    sleep 2
    qemu=""
    for p in $(pgrep -f "path=$sock_g" || true); do   # QEMU itself, not the timeout wrapper around it
        [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == qemu-system-* ]] && qemu=$p
    done
    if [[ -z "$qemu" ]]; then fail "$label-qemu-killed" "QEMU not found"; wait "$vm" || true; return 1; fi
    MAPPED_BEFORE=$(memfd_maps "$BACKEND")   # the guest memory the backend maps while it serves
    kill -KILL "$qemu"
    pass "$label-qemu-killed"
    wait "$vm" 2>/dev/null || true
}
# Mappings of guest memory: every memfd mapping but the .NET runtime's own (its diagnostics server keeps
# /memfd:dotnet_ipc_created mapped; QEMU's memory-backend-memfd maps as /memfd:memory-backend-memfd).
memfd_maps() { grep '/memfd:' "/proc/$1/maps" 2>/dev/null | grep -vc '/memfd:dotnet' || true; }

# --- 1. --keep-listening: the same backend serves a second QEMU ---
if start_backend "$RUN/keep.sock" "$LOG_DIR/backend-keep.log" --keep-listening; then
    KEEP=$BACKEND
    if kill_qemu_under_load "$RUN_G/keep.sock" keep; then
        for _ in $(seq 1 100); do [[ -S "$RUN/keep.sock" ]] && break; sleep 0.1; done
        if kill -0 "$KEEP" 2>/dev/null; then pass "keep-backend-alive"; else fail "keep-backend-alive" "backend exited"; fi
        if [[ -S "$RUN/keep.sock" ]] && grep -q "waiting for the next front-end" "$LOG_DIR/backend-keep.log"; then
            pass "keep-listening-again"; else fail "keep-listening-again" "no socket or no log line"; fi
        # (the count must see the guest memory while it is served, or the check below could not fail)
        if (( MAPPED_BEFORE > 0 )); then pass "keep-guest-memory-seen-while-served"; else fail "keep-guest-memory-seen-while-served" "no memfd mapping counted while QEMU ran"; fi
        n=$(memfd_maps "$KEEP")
        if [[ "$n" == 0 ]]; then pass "keep-guest-memory-unmapped"; else fail "keep-guest-memory-unmapped" "$n memfd mappings left"; fi
        if grep -q "ERR\|FTL\|server failed" "$LOG_DIR/backend-keep.log"; then
            fail "keep-log-clean" "$(grep -m1 'ERR\|FTL\|server failed' "$LOG_DIR/backend-keep.log")"; else pass "keep-log-clean"; fi
        # The second QEMU: boots, mounts, sees what the first guest wrote, writes and reads back.
        set +e
        "$TOOLS/vm.sh" --vhost-socket "$RUN/keep.sock" --share "$EXPORT" --timeout 300 --log-dir "$LOG_DIR/second" \
            --run 'ls busy | grep -q f0 && echo second >second.txt && [ "$(cat second.txt)" = second ] && echo SECOND-OK' \
            >"$LOG_DIR/second.out" 2>"$LOG_DIR/second.err"
        rc=$?
        set -e
        if [[ $rc == 0 ]] && grep -q SECOND-OK "$LOG_DIR/second.out" && [[ "$(cat "$EXPORT/second.txt" 2>/dev/null)" == second ]]; then
            pass "keep-second-qemu-mounts"; else fail "keep-second-qemu-mounts" "vm.sh $rc; $(tail -3 "$LOG_DIR/second.err" | tr '\n' ' ')"; fi
        sessions=$(grep -c "9P session" "$LOG_DIR/backend-keep.log" || true)
        if (( sessions >= 2 )); then pass "keep-fresh-9p-session"; else fail "keep-fresh-9p-session" "$sessions session lines"; fi
    fi
    kill -TERM "$KEEP" 2>/dev/null || true
    rc=0; wait "$KEEP" || rc=$?
    if [[ $rc == 0 ]]; then pass "keep-sigterm-exit-0"; else fail "keep-sigterm-exit-0" "status $rc"; fi
else
    fail "keep-backend-start" "$(tail -3 "$LOG_DIR/backend-keep.log" | tr '\n' ' ')"
fi

# --- 2. default: the backend exits 0 when QEMU is killed mid-I/O ---
if start_backend "$RUN/once.sock" "$LOG_DIR/backend-once.log"; then
    ONCE=$BACKEND
    if kill_qemu_under_load "$RUN_G/once.sock" once; then
        for _ in $(seq 1 150); do kill -0 "$ONCE" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$ONCE" 2>/dev/null; then
            fail "once-backend-exits" "still running 15 s after QEMU died"
        else
            rc=0; wait "$ONCE" || rc=$?
            if [[ $rc == 0 ]]; then pass "once-backend-exit-0"; else fail "once-backend-exit-0" "status $rc"; fi
            if grep -q "front-end disconnected; exiting" "$LOG_DIR/backend-once.log"; then pass "once-logged"; else fail "once-logged" "no exit line"; fi
        fi
    fi
else
    fail "once-backend-start" "$(tail -3 "$LOG_DIR/backend-once.log" | tr '\n' ' ')"
fi

e2e_summary
