#!/usr/bin/env bash
# Operability of both executables as a service manager runs them (issue 17), without a guest:
#   cli-*        --version, --help listing every option, bad usage: one line on stderr and exit 2 (both)
#   notify-*     READY=1 on a fake $NOTIFY_SOCKET (a path and an abstract name) once each one accepts connections
#   sigterm-*    SIGTERM: STOPPING=1, the socket removed, exit 0
#   counters-*   dotnet-counters (installed from NuGet into $VIRTFS_CACHE/dotnet-tools once) reads the meter VirtFs.Backend
#                of the Native AOT backend under its seccomp filter; its diagnostic socket is 0600, the backend's uid
#   sigusr1      SIGUSR1 writes the metrics (meter VirtFs.Backend) into the log
#   activation   socket activation: the backend serves on the socket systemd-socket-activate passes (LISTEN_FDS)
#   config       config file + VIRTFS_ environment + command line, in that order of strength
# Usage: tools/e2e/service.sh [--bin DIR]   (default: artifacts/bin; $VIRTFS_BIN also works)
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
LABEL=service
REPO="$(cd "$HERE/../.." && pwd)"
BIN="${VIRTFS_BIN:-$REPO/artifacts/bin}"
while (( $# )); do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --no-build) shift ;;
        -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "service: unknown option $1" >&2; exit 2 ;;
    esac
done
need_root service "the helper runs as root"
command -v python3 >/dev/null || { echo "service: NEEDS: python3 (the fake NOTIFY_SOCKET)" >&2; exit 3; }
B="$BIN/vhost-user-9p" H="$BIN/virtfs-proxy-helper"
[[ -x "$B" && -x "$H" ]] || { echo "FAIL: service executables ($BIN has no vhost-user-9p/virtfs-proxy-helper)"; exit 1; }
id virtfs >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin virtfs 2>/dev/null || true
U="$(id -u virtfs)" G="$(id -g virtfs)"
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "${WHY:-check failed}"; fi; WHY=""; }

WORK="$(mktemp -d /tmp/virtfs-service.XXXXXX)"
chmod 0755 "$WORK"
mkdir -p "$WORK/private/export" "$WORK/run"; chmod 0700 "$WORK/private"; chown "$U:$G" "$WORK/run"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- command line -------------------------------------------------------------------------------------------
VERSION="$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$REPO/Directory.Build.props")"
check cli-version [ "$("$B" --version)" == "vhost-user-9p $VERSION" -a "$("$H" --version)" == "virtfs-proxy-helper $VERSION" ]
help_has_all() {
    local o
    for o in --socket-path --fd --socket-group --tag --thread-pool-size --log-level --log-format --syslog --seccomp \
             --readonly --print-qemu-args --config --helper-socket --version --help; do
        "$B" --help | grep -q -- "$o " || { WHY="backend --help lacks $o"; return 1; }
    done
    for o in --path --fd --socket --uid --gid --nodaemon --readonly --allow-xattr --request-timeout --version --help; do
        "$H" --help | grep -q -- "$o " || { WHY="helper --help lacks $o"; return 1; }
    done
}
check cli-help help_has_all
bad_usage() { # program args...: one line on stderr, nothing on stdout, exit 2
    local out err rc
    out="$("$@" 2>"$WORK/err")"; rc=$?; err="$(cat "$WORK/err")"
    [[ $rc == 2 && -z "$out" && $(wc -l <"$WORK/err") == 1 && "$err" == *"(try --help)" ]] || {
        WHY="$* -> exit $rc, stderr: ${err:0:200}"; return 1; }
}
check cli-backend-unknown bad_usage "$B" --no-such-option
check cli-backend-value bad_usage "$B" --socket-path /x --tag t --helper-fd 3 --thread-pool-size many
check cli-backend-missing bad_usage "$B" --socket-path /x --helper-fd 3
check cli-backend-loglevel bad_usage "$B" --socket-path /x --tag t --helper-fd 3 --log-level loud
check cli-helper-unknown bad_usage "$H" --no-such-option
check cli-helper-missing bad_usage "$H" -n -p /tmp

# --- config file, environment, command line ------------------------------------------------------------------
echo '{ "socket-path": "/run/file.sock", "tag": "fromfile", "guest-memory": "2G" }' >"$WORK/c.json"
cfg="$(VIRTFS_CONFIG="$WORK/c.json" VIRTFS_TAG=fromenv "$B" --print-qemu-args)"
cfg2="$(VIRTFS_CONFIG="$WORK/c.json" VIRTFS_TAG=fromenv "$B" --print-qemu-args --tag cl)"
# config_size = 2 + tag length: 9 for "fromenv", 4 for "cl"; path and memory from the file.
WHY="got: $cfg / $cfg2"
check config [ "${cfg/path=\/run\/file.sock/}" != "$cfg" -a "${cfg/size=2G/}" != "$cfg" -a "${cfg/config_size=9/}" != "$cfg" \
    -a "${cfg2/config_size=4/}" != "$cfg2" ]

# --- a fake systemd: records what arrives on a datagram socket ------------------------------------------------
listen_notify() { # address logfile  (address: a path, or @name)
    python3 "$HERE/notify-listen.py" "$1" "$2" &
    PIDS+=($!)
    local i; for (( i = 0; i < 50; i++ )); do grep -q LISTENING "$2" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
wait_grep() { # pattern file seconds
    local i; for (( i = 0; i < $3 * 10; i++ )); do grep -q -- "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
    WHY="no '$1' in $2: $(tail -c 300 "$2" 2>/dev/null)"; return 1
}

# Helper: READY=1 once its socket listens (path NOTIFY_SOCKET).
chmod 0777 "$WORK/run"   # the fake systemd socket must be reachable by the backend user too
listen_notify "$WORK/run/notify-helper" "$WORK/notify-helper.log"
NOTIFY_SOCKET="$WORK/run/notify-helper" "$H" -n -p "$WORK/private/export" -s "$WORK/run/helper.sock" -u "$U" -g "$G" \
    >"$WORK/helper.log" 2>&1 &
HPID=$!; PIDS+=($HPID)
check notify-helper wait_grep "READY=1" "$WORK/notify-helper.log" 60
WHY="helper.sock missing when READY came"
check notify-helper-socket-first [ -S "$WORK/run/helper.sock" ]

# Backend: READY=1 (abstract NOTIFY_SOCKET) once the vhost-user socket listens.
ABS="@virtfs-service-$$"
listen_notify "$ABS" "$WORK/notify-backend.log"
# Its TMPDIR (where the .NET diagnostic socket goes) is a 0700 directory of its own, as the unit's RuntimeDirectory.
mkdir -m 0700 "$WORK/diag"; chown "$U:$G" "$WORK/diag"
TMPDIR="$WORK/diag" NOTIFY_SOCKET="$ABS" setpriv --reuid="$U" --regid="$G" --clear-groups -- "$B" --socket-path "$WORK/run/vhost.sock" \
    --tag share --helper-socket "$WORK/run/helper.sock" >"$WORK/backend.log" 2>&1 &
BPID=$!; PIDS+=($BPID)
check notify-backend wait_grep "READY=1" "$WORK/notify-backend.log" 60
WHY="vhost.sock missing when READY came"
check notify-backend-socket-first [ -S "$WORK/run/vhost.sock" ]

# --- dotnet-counters: the meter VirtFs.Backend read from outside, under the backend's seccomp filter -------------
# The tool comes from NuGet once (cached beside the lab); without it (no SDK, no registry) the check is skipped.
COUNTERS="${VIRTFS_DOTNET_COUNTERS:-$(command -v dotnet-counters || true)}"
TOOLS_CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}/dotnet-tools"
if [[ -z "$COUNTERS" && -x "$TOOLS_CACHE/dotnet-counters" ]]; then COUNTERS="$TOOLS_CACHE/dotnet-counters"; fi
if [[ -z "$COUNTERS" ]] && command -v dotnet >/dev/null; then
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 timeout 120 dotnet tool install --tool-path "$TOOLS_CACHE" dotnet-counters \
        >"$WORK/tool-install.log" 2>&1 && COUNTERS="$TOOLS_CACHE/dotnet-counters"
fi
if [[ -n "$COUNTERS" ]]; then
    # The diagnostic socket: the backend's uid only (root passes any mode).
    sock="$(ls "$WORK/diag"/dotnet-diagnostic-"$BPID"-*-socket 2>/dev/null | head -n 1)"
    WHY="socket: ${sock:-none in $WORK/diag} $(stat -c '%U %a' "$sock" 2>/dev/null)"
    check counters-socket-private [ -S "$sock" -a "$(stat -c '%U %a' "$sock" 2>/dev/null)" == "virtfs 600" ]
    # The command the docs give; the helper connection at start is one round trip, so that counter is 1 at least.
    TMPDIR="$WORK/diag" DOTNET_CLI_TELEMETRY_OPTOUT=1 timeout 60 "$COUNTERS" monitor -n vhost-user-9p --counters VirtFs.Backend \
        --duration 00:00:00:03 </dev/null >"$WORK/counters.log" 2>&1
    WHY="dotnet-counters: $(tr -d '\033' <"$WORK/counters.log" | tail -c 400)"
    check counters-monitor grep -Eq 'virtfs\.helper\.round_trips[^0-9]*[1-9]' "$WORK/counters.log"
    WHY="the backend died while observed"
    check counters-backend-alive kill -0 "$BPID"
else
    echo "service: dotnet-counters not available (no dotnet, or NuGet unreachable); counters not checked" >&2
fi

kill -USR1 "$BPID"
check sigusr1 wait_grep "helper: round_trips=" "$WORK/backend.log" 20

kill -TERM "$BPID"; wait "$BPID"; rc=$?
WHY="exit $rc: $(tail -n 5 "$WORK/backend.log")"
check sigterm-backend-exit0 [ "$rc" == 0 ]
check sigterm-backend-stopping wait_grep "STOPPING=1" "$WORK/notify-backend.log" 5
WHY="vhost.sock left behind"
check sigterm-backend-socket-removed [ ! -e "$WORK/run/vhost.sock" ]

# --- socket activation: systemd-socket-activate holds the socket and passes it as fd 3 (LISTEN_FDS=1) --------
if command -v systemd-socket-activate >/dev/null; then
    # The activator binds as root; our backend runs as virtfs with the socket already open.
    systemd-socket-activate -l "$WORK/run/activated.sock" -- setpriv --reuid="$U" --regid="$G" --clear-groups -- \
        "$B" --tag share --helper-socket "$WORK/run/helper.sock" >"$WORK/activated.log" 2>&1 &
    APID=$!; PIDS+=($APID)
    for (( i = 0; i < 50; i++ )); do [[ -S "$WORK/run/activated.sock" ]] && break; sleep 0.1; done
    # A front-end that connects and leaves: the backend must have been started with the socket, serve the
    # connection, log the front-end and exit 0 when it goes.
    python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(3); s.close()' \
        "$WORK/run/activated.sock"
    check activation wait_grep "front-end connected" "$WORK/activated.log" 30
    check activation-exit wait_grep "front-end disconnected; exiting" "$WORK/activated.log" 30
else
    echo "service: systemd-socket-activate not found; socket activation not checked" >&2
fi

kill -TERM "$HPID" 2>/dev/null
e2e_summary
