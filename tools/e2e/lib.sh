# The host half every guest-running e2e suite shares (tools/e2e/*.sh): where the tools are, the PASS/FAIL lines
# and their counts, the root check, running the guest half through tools/vm.sh, and reading its lines back.
# Sourced by bash after `set -euo pipefail` and HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)":
#   source "$HERE/lib.sh"
#   LABEL="name[$SERVER]"          # before the first pass/fail: what every line of this suite starts with
# Lines printed, the format tools/test.sh and tools/e2e/differential.sh read:
#   PASS: LABEL check
#   FAIL: LABEL check (detail)
#   LABEL: passed=N failed=N       (e2e_summary, last)
TOOLS="$(cd "$HERE/.." && pwd)"
NP=0 NF=0 LABEL=""
pass() { echo "PASS: $LABEL $1"; NP=$((NP + 1)); }
fail() { echo "FAIL: $LABEL $1 ($2)"; NF=$((NF + 1)); }

# need_root WHO WHY: exit 3 ("cannot run here") unless root.
need_root() { [[ "$(id -u)" == 0 ]] || { echo "$1: NEEDS: root${2:+ ($2)}" >&2; exit 3; }; }

# e2e_parent PREFIX: PARENT, a fresh 0700 folder under /tmp for the export (the unprivileged backend cannot reach
# the export by path through it: it must go through the helper), and LOG_DIR in it unless the caller set one
# (OWN_LOGS=1 then); on exit the caller's on_exit (if defined) runs and PARENT goes; INT and TERM exit 130 and 143.
e2e_parent() {
    PARENT="$(mktemp -d "/tmp/$1.XXXXXX")"
    OWN_LOGS=0
    if [[ -z "$LOG_DIR" ]]; then LOG_DIR="$PARENT/logs"; OWN_LOGS=1; fi
    trap e2e_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$LOG_DIR"
    chmod 0700 "$PARENT"
}
e2e_cleanup() {
    local rc=$?
    if declare -F on_exit >/dev/null; then on_exit || true; fi
    (( ${OWN_SERVERS:-0} )) && own_servers_stop
    rm -rf "$PARENT"
    exit $rc
}

# run_guest [--bound SEC] OUT ERR VM.SH-ARGS...: tools/vm.sh with the guest's check library (tools/guest/lib.sh)
# in the job dir beside the suite's own --file, console to OUT and vm.sh's messages to ERR; its exit status in
# VM_RC (ERR in VM_ERR). --bound SEC kills vm.sh (and with it the guest) after SEC seconds, whatever happens inside. When the lab
# cannot run here (exit 3) it says why and exits 3.
run_guest() {
    local bound=() out err
    if [[ "$1" == --bound ]]; then bound=(timeout --kill-after=20 "$2"); shift 2; fi
    out=$1 err=$2; shift 2
    VM_RC=0 VM_ERR=$err
    "${bound[@]}" "$TOOLS/vm.sh" --file "$TOOLS/guest/lib.sh" "$@" >"$out" 2>"$err" || VM_RC=$?
    if (( VM_RC == 3 )); then
        grep -h 'NEEDS:' "$err" >&2 || cat "$err" >&2
        [[ -n "$LABEL" ]] && echo "SKIP: $LABEL (cannot run here; see NEEDS above)"
        exit 3
    fi
}

# guest_results OUT: every PASS/FAIL line of the guest half, as this suite's own (LABEL added) and counted;
# INFO lines (facts reported, not checked) are passed on labelled too.
guest_results() {
    local line
    while IFS= read -r line; do
        case "$line" in
            PASS:*) pass "${line#PASS: }" ;;
            FAIL:*) echo "FAIL: $LABEL ${line#FAIL: }"; NF=$((NF + 1)) ;;
            INFO:*) echo "INFO: $LABEL ${line#INFO: }" ;;
        esac
    done < <(tr -d '\r' <"$1" | grep -a -E '^(PASS|FAIL|INFO): ' || true)
}

# guest_completed OUT SUITE: a FAIL unless the guest half printed its summary (tools/guest/lib.sh's
# guest_summary), i.e. it ran to its end; then the tails of vm.sh's messages and the console.
guest_completed() {
    grep -aq "^$2: .* passed, .* failed" "$1" && return 0
    fail guest-suite-completed "vm.sh exit $VM_RC; the guest suite did not finish; see below"
    { echo "--- vm.sh stderr ---"; tail -n 30 "$VM_ERR"; echo "--- console ---"; tail -n 30 "$1"; } >&2
}

# --- suites that start the helper and backend themselves, so they can outlive one QEMU (vm.sh --vhost-socket) ---
# own_servers NAME BUILD: root, tools/build.sh when BUILD is 1, the lab, and the system user virtfs (BUID, BGID);
# then e2e_parent's PARENT and LOG_DIR, EXPORT (0755) in PARENT, RUN: a socket folder inside the lab root where the
# chrooted QEMU finds it (RUN_G: the same folder as QEMU names it), and a helper serving EXPORT on $RUN/helper.sock
# for virtfs. Every process in PIDS (the helper, each start_backend) gets SIGTERM and is waited for on exit.
own_servers() {
    local name=$1 build=$2 rc
    need_root "$name" "the helper runs as root"
    if (( build )); then "$TOOLS/build.sh" >&2 || { echo "$name: tools/build.sh failed" >&2; exit 1; }; fi
    "$TOOLS/lab.sh" >&2 || { rc=$?; [[ $rc == 3 ]] && exit 3; echo "$name: tools/lab.sh failed" >&2; exit 1; }
    # Two suites starting at once may race here: the loser's useradd fails, the user exists either way.
    id virtfs >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin virtfs 2>/dev/null || id virtfs >/dev/null 2>&1 \
        || { echo "$name: NEEDS: user virtfs" >&2; exit 3; }
    BUID="$(id -u virtfs)" BGID="$(id -g virtfs)"
    BIN="$(cd "$TOOLS/.." && pwd)/artifacts/bin"
    PIDS=() OWN_SERVERS=1
    e2e_parent "virtfs-$name"
    EXPORT="$PARENT/export"
    mkdir -p "$EXPORT"; chmod 0755 "$EXPORT"
    RUN_G="/run/virtfs-$name-$$"
    RUN="${VIRTFS_CACHE:-/var/cache/virtfs}/trixie$RUN_G"
    mkdir -p "$RUN"; chown "$BUID:$BGID" "$RUN"; chmod 0755 "$RUN"
    "$BIN/virtfs-proxy-helper" -p "$EXPORT" -s "$RUN/helper.sock" -u "$BUID" -g "$BGID" -n \
        >"$LOG_DIR/helper.log" 2>&1 </dev/null &
    PIDS+=($!)
    for _ in $(seq 1 100); do [[ -S "$RUN/helper.sock" ]] && return 0; sleep 0.1; done
    echo "$name: the helper did not start: $(tail -3 "$LOG_DIR/helper.log" | tr '\n' ' ')" >&2
    exit 1
}
own_servers_stop() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$RUN"
}

# start_backend SOCKET LOG ARGS...: vhost-user-9p as virtfs on SOCKET with the tag "share" through the helper, its
# pid in BACKEND (and PIDS). It listens on SOCKET and this waits for the socket (status 1 if it never comes),
# unless ARGS has --connect (QEMU listens there).
start_backend() {
    local sock=$1 log=$2 a; shift 2
    setpriv --reuid="$BUID" --regid="$BGID" --clear-groups -- "$BIN/vhost-user-9p" \
        --socket-path "$sock" --tag share --helper-socket "$RUN/helper.sock" "$@" >"$log" 2>&1 </dev/null &
    BACKEND=$!
    PIDS+=("$BACKEND")
    for a in "$@"; do [[ "$a" == --connect ]] && return 0; done
    for _ in $(seq 1 100); do [[ -S "$sock" ]] && return 0; sleep 0.1; done
    return 1
}

# e2e_summary: the last line; the exit status is 0 only when nothing failed.
e2e_summary() { echo "$LABEL: passed=$NP failed=$NF"; (( NF == 0 )); }
