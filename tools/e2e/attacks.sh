#!/usr/bin/env bash
# Attacks on virtfs-proxy-helper by a process with the backend's uid that holds the helper's socket (a guest that took
# over vhost-user-9p; NOT under the backend's seccomp). One line per attack:
#   PASS: attack-NAME ...   the helper held
#   FAIL: attack-NAME ...   the hole is open (or the attack could not be set up: the line says so)
# Exit 0 if all passed, 1 otherwise, 3 (after "NEEDS: ...") if it cannot run here (not root, no dotnet).
#
# Usage: tools/e2e/attacks.sh [--no-build] [--helper PATH] [--keep] [--race-only]
#   --no-build     do not run tools/build.sh (the attacker, tools/attack, is still built: it is not in build.sh)
#   --helper PATH  attack this helper binary instead of artifacts/bin/virtfs-proxy-helper (any helper taking
#                  QEMU's -p -s -u -g -n options)
#   --keep         keep the temp dir (export, logs) for inspection
#   --race-only    only attack 5 (socket-chown-race)
# Env: VIRTFS_ATTACK_ARTIFACTS (dotnet build output of the attacker, default REPO/artifacts/attack);
#      VIRTFS_ATTACK_WAITERS / VIRTFS_ATTACK_RACERS: socket-race's inotify-woken and spinning threads (default 2 / 0)
#
# Set-up: a fresh temp dir T (0755) holding export/ (the share, root 0755), a marker file next to it, attacker/
# (owned by the attacker), run/helper.sock (the helper's socket). The attacker is system user `virtfs` (created if
# missing); every attack runs as it via setpriv. foreign-peer runs as uid 65533 with the socket's gid.
# socket-chown-race starts the helper 20 times with its socket in race/ (owned by the attacker) while the attacker
# races; it fails if the root-only file T/victim ever changes owner.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO" || exit 2
BUILD=1 HELPER="$REPO/artifacts/bin/virtfs-proxy-helper" KEEP=0 RACE_ONLY=0
while (( $# )); do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --helper) HELPER="$(realpath -m "$2")"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --race-only) RACE_ONLY=1; shift ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "attacks: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$(id -u)" == 0 ]] || { echo "NEEDS: root (creates a user, starts the helper as root)"; exit 3; }
command -v dotnet >/dev/null || { echo "NEEDS: the .NET 10 SDK (dotnet) on PATH"; exit 3; }
command -v setpriv >/dev/null || { echo "NEEDS: setpriv (util-linux)"; exit 3; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

T="" HPID="" APID=""
cleanup() {
    [[ -n "$APID" ]] && kill -KILL "$APID" 2>/dev/null
    [[ -n "$HPID" ]] && kill -KILL "$HPID" 2>/dev/null
    wait 2>/dev/null
    if [[ -n "$T" ]]; then
        if (( KEEP )); then echo "attacks: kept $T"; else rm -rf "$T"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---
if (( BUILD )); then
    tools/build.sh >/dev/null 2>&1 || { echo "FAIL: attack-setup (tools/build.sh failed)"; exit 1; }
fi
[[ -x "$HELPER" ]] || { echo "FAIL: attack-setup (no helper at $HELPER)"; exit 1; }
ART="${VIRTFS_ATTACK_ARTIFACTS:-$REPO/artifacts/attack}"
if ! timeout 600 dotnet build tools/attack -p:ArtifactsPath="$ART" -nologo -v:q >/tmp/virtfs-attack-build.$$ 2>&1; then
    echo "FAIL: attack-setup (dotnet build tools/attack failed)"; grep -E 'error' /tmp/virtfs-attack-build.$$ | sort -u | head -n 10
    rm -f /tmp/virtfs-attack-build.$$; exit 1
fi
rm -f /tmp/virtfs-attack-build.$$
DLL="$(ls "$ART"/bin/virtfs-attack/*/virtfs-attack.dll 2>/dev/null | head -n1)"
[[ -f "$DLL" ]] || { echo "FAIL: attack-setup (no virtfs-attack.dll under $ART)"; exit 1; }

# --- the attacker user ---
if ! getent passwd virtfs >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin virtfs \
        || { echo "FAIL: attack-setup (useradd virtfs failed)"; exit 1; }
fi
AUID=$(id -u virtfs) AGID=$(id -g virtfs)
FOREIGN_UID=65533

# --- the scene ---
T="$(mktemp -d /tmp/virtfs-attacks.XXXXXX)"
chmod 0755 "$T"
# Two exports: "sealed" as docs/security.md asks (a 0700 parent: the attacker reaches it only through the helper),
# and "exposed" (reachable by path), for the attacks that need the host path: ".." must lead somewhere readable,
# and the helper must refuse what the host path would turn into privilege.
mkdir -p "$T/sealed/export" "$T/export" "$T/run" "$T/attacker" "$T/race" "$T/bin"
chmod 0700 "$T/sealed"
chmod 0755 "$T/sealed/export" "$T/export" "$T/run"
EXPORT="$T/sealed/export"
echo "outside the export" >"$T/marker-outside-export"
chown "$AUID:$AGID" "$T/attacker" "$T/race"
cp "$(dirname "$DLL")"/* "$T/bin/" && chmod -R a+rX "$T/bin"
SOCK="$T/run/helper.sock"

# start_helper SOCKET: starts the helper in the background (HPID); waits until it listens with its sandbox complete
# (NoNewPrivs) or has exited, at most $2 seconds (default 30). Returns 0 if it is serving.
start_helper() {
    local sock=$1 limit=${2:-30} i
    "$HELPER" -p "$EXPORT" -s "$sock" -u "$AUID" -g "$AGID" -n 2>>"$T/helper.log" &
    HPID=$!
    for (( i = 0; i < limit * 50; i++ )); do
        kill -0 "$HPID" 2>/dev/null || { wait "$HPID" 2>/dev/null; HPID=""; return 1; }
        grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$HPID/status" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}
stop_helper() {
    [[ -n "$HPID" ]] || return 0
    kill -KILL "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null; HPID=""
}

FAILS=0
# attack NAME [--as UID:GID] ARGS...: runs one subcommand as the attacker, bounded, and prints its PASS/FAIL line.
attack() {
    local name=$1 ids="$AUID:$AGID" out rc; shift
    if [[ "${1:-}" == --as ]]; then ids=$2; shift 2; fi
    if [[ -z "$HPID" ]] || ! kill -0 "$HPID" 2>/dev/null; then
        rm -f "$SOCK"
        start_helper "$SOCK" || { echo "FAIL: attack-$name (could not run: the helper did not start; $(tail -n 1 "$T/helper.log"))"; FAILS=$((FAILS + 1)); return; }
    fi
    (cd "$T" && exec timeout -k 5 60 setpriv --reuid="${ids%%:*}" --regid="${ids##*:}" --clear-groups -- \
        env HOME=/nonexistent DOTNET_CLI_HOME=/tmp dotnet "$T/bin/virtfs-attack.dll" "$name" "$@" >"$T/$name.out" 2>&1)
    rc=$?
    out="$(tail -n 1 "$T/$name.out")"
    case $rc in
        0) echo "PASS: attack-$name: $out" ;;
        1) echo "FAIL: attack-$name (hole open): $out"; FAILS=$((FAILS + 1)) ;;
        *) echo "FAIL: attack-$name (could not run, exit $rc): $out"; FAILS=$((FAILS + 1)) ;;
    esac
}

if (( ! RACE_ONLY )); then
start_helper "$SOCK" || { echo "FAIL: attack-setup (helper did not start: $(tail -n 3 "$T/helper.log"))"; exit 1; }
attack setuid-fexecve "$SOCK"
attack device-via-dirfd "$SOCK"
attack hardlink-smuggle "$SOCK" "$T/attacker"
attack fifo-open-race "$SOCK" 10
attack xattr-security "$SOCK"
attack foreign-peer --as "$FOREIGN_UID:$AGID" "$SOCK"
# Needs an unprivileged user namespace (the attacker's own); where the host forbids them the attack cannot run
# at all, which is a pass.
mkdir -p "$T/attacker/mnt"; chown "$AUID:$AGID" "$T/attacker/mnt"
if setpriv --reuid="$AUID" --regid="$AGID" --clear-groups -- unshare --user --map-root-user --mount true 2>/dev/null; then
    ( cd "$T" && exec timeout -k 5 60 setpriv --reuid="$AUID" --regid="$AGID" --clear-groups -- \
        unshare --user --map-root-user --mount -- env HOME=/nonexistent DOTNET_CLI_HOME=/tmp \
        dotnet "$T/bin/virtfs-attack.dll" move-mount "$SOCK" "$T/attacker/mnt" "$T/marker-outside-export" "$AUID" \
        >"$T/move-mount.out" 2>&1 )
    rc=$?; out="$(tail -n 1 "$T/move-mount.out")"
    case $rc in
        0) echo "PASS: attack-move-mount: $out" ;;
        1) echo "FAIL: attack-move-mount (hole open): $out"; FAILS=$((FAILS + 1)) ;;
        *) echo "FAIL: attack-move-mount (could not run, exit $rc): $out"; FAILS=$((FAILS + 1)) ;;
    esac
else
    echo "PASS: attack-move-mount: held: no unprivileged user namespaces on this host, the attack cannot start"
fi
# last on this helper: it leaves the helper with 70 dead connections to notice
attack stalled-connections "$SOCK"
stop_helper
# The exposed export: a new helper on it.
EXPORT="$T/export"
rm -f "$SOCK"
start_helper "$SOCK" || { echo "FAIL: attack-setup (helper did not start on the exposed export)"; exit 1; }
attack dotdot-dirfd "$SOCK" marker-outside-export
attack setuid-hostpath "$SOCK" "$T/export"
attack device-hostpath "$SOCK" "$T/export"
stop_helper
EXPORT="$T/sealed/export"
fi

# --- 5. socket-chown-race: the socket's directory belongs to the attacker; a root-only victim elsewhere ---
RSOCK="$T/race/helper.sock" VICTIM="$T/victim" STOP="$T/race-stop" STARTS=20 WON=0 SERVED=0
echo secret >"$VICTIM"; chown 0:0 "$VICTIM"; chmod 0600 "$VICTIM"
(cd "$T" && exec timeout -k 5 90 setpriv --reuid="$AUID" --regid="$AGID" --clear-groups -- \
    env HOME=/nonexistent DOTNET_CLI_HOME=/tmp VIRTFS_ATTACK_RACERS="${VIRTFS_ATTACK_RACERS:-0}" VIRTFS_ATTACK_WAITERS="${VIRTFS_ATTACK_WAITERS:-2}" dotnet "$T/bin/virtfs-attack.dll" socket-race "$RSOCK" "$VICTIM" 80 "$STOP" \
    >"$T/race.out" 2>&1) &
APID=$!
sleep 1 # let the attacker's loop start (runtime start-up)
for (( s = 0; s < STARTS; s++ )); do
    rm -f "$RSOCK"
    start_helper "$RSOCK" 3 && SERVED=$((SERVED + 1))
    stop_helper
    if [[ "$(stat -c %u "$VICTIM")" != 0 ]]; then
        WON=$((WON + 1)); chown 0:0 "$VICTIM"; chmod 0600 "$VICTIM"
    fi
done
touch "$STOP"; wait "$APID"; arc=$?; APID=""
rout="$(tail -n 1 "$T/race.out")"
if (( WON > 0 )); then
    echo "FAIL: attack-socket-chown-race (hole open): victim chowned to uid $AUID in $WON of $STARTS starts ($SERVED served); $rout"
    FAILS=$((FAILS + 1))
elif (( arc != 0 )); then
    echo "FAIL: attack-socket-chown-race (could not run, exit $arc): $rout"; FAILS=$((FAILS + 1))
else
    echo "PASS: attack-socket-chown-race: victim kept its owner in $STARTS starts ($SERVED served); $rout"
fi

(( FAILS == 0 ))
