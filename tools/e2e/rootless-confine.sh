#!/usr/bin/env bash
# Issue 16: our rootless backend (vhost-user-9p --shared-dir, run as the unprivileged user virtfs that owns the
# export) keeps a guest inside the export. Beside the export is an "outside" directory the same user can read, with
# a secret in it: whatever the guest does, the secret must never show up and nothing may be written there.
#   - host-made symlinks to the outside (absolute and relative ".."), guest-made ones, "..": no way out;
#   - a host swapper loop turns export/d into a symlink to the outside and back, thousands of times, while the guest
#     reads d/secret in a loop: only the inside file may ever be read;
#   - a host fifo and a host device node in the export are never opened by the backend (its /proc/PID/fd is
#     watched during the whole run), and the backend keeps serving after the guest pokes at them.
#
# Usage: tools/e2e/rootless-confine.sh [--no-build] [--log-dir DIR] [--timeout SEC] [--security-model M]
# Prints "PASS: confine[virtfs-rootless] name" / "FAIL: ..." lines. Exit 0 all passed, 1 a failure, 3 cannot run here.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"
LOG_DIR="" VM_ARGS=() TIMEOUT=450 MODEL=mapped-xattr
while (( $# )); do
    case "$1" in
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --security-model) MODEL="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "rootless-confine: unknown option $1" >&2; exit 2 ;;
    esac
done
need_root rootless-confine "the lab boots QEMU in a chroot"
LABEL="confine[virtfs-rootless-$MODEL]"
SWAPPER="" WATCHER=""
on_exit() { # (e2e_parent's cleanup calls it)
    [[ -n "$SWAPPER" ]] && kill "$SWAPPER" 2>/dev/null
    [[ -n "$WATCHER" ]] && kill "$WATCHER" 2>/dev/null
    wait 2>/dev/null || true
}
e2e_parent virtfs-confine
chmod 0711 "$PARENT"   # the serving user may pass through to the outside: only the backend's confinement stops it
E="$PARENT/export" O="$PARENT/outside"
mkdir -m 0755 "$E" "$O"
printf 'OUTSIDE-SECRET\n' >"$O/secret"; chmod 0644 "$O/secret"
mkdir "$E/d"; printf 'inside\n' >"$E/d/secret"
printf 'alive\n' >"$E/hello"
ln -s "$O" "$E/abs"                 # absolute, to the real outside
ln -s ../outside "$E/rel"           # relative, climbing out
ln -s "$O/secret" "$E/abs-secret"
mkfifo "$E/hostfifo"
mknod "$E/hostzero" c 1 5           # /dev/zero's numbers: reads would succeed if the backend opened it
chown -R virtfs:virtfs "$E" "$O"
chmod 0666 "$E/hostfifo" "$E/hostzero"
OUTSIDE_BEFORE="$(cd "$O" && find . -printf '%p %s %m\n' | sort)"

# Host side: swap d <-> symlink to the outside in a loop while the guest runs.
python3 "$HERE/confine/swapper.py" "$E" "$O" "$LOG_DIR/swaps" &
SWAPPER=$!
# Host side: watch the backend's open fds for the fifo and the device node (the pid from vm.sh's status file).
( set +e; pid=""; echo "waiting for the backend" >"$LOG_DIR/fdwatch"
  for _ in $(seq 1 6000); do   # up to 10 minutes: the lab may be slow to start on a loaded host
      pid="$(sed -n 's/^Pid:\t//p' "$LOG_DIR/vm/backend-status-start.txt" 2>/dev/null | head -n1)"
      [[ -n "$pid" ]] && break; sleep 0.1
  done
  [[ -n "$pid" ]] || { echo "no-pid" >"$LOG_DIR/fdwatch"; exit 0; }
  echo "watching $pid" >"$LOG_DIR/fdwatch"
  while kill -0 "$pid" 2>/dev/null; do
      ls -l "/proc/$pid/fd" 2>/dev/null | grep -E 'hostfifo|hostzero|/outside' >>"$LOG_DIR/fdwatch" || true
      sleep 0.05
  done ) &
WATCHER=$!

GUEST='cd /mnt
r() { printf "GUEST: %s %s\n" "$1" "$2"; }
t() { name=$1; shift; out="$("$@" 2>/dev/null)"; case "$out" in *OUTSIDE*) r "$name" LEAK;; *) r "$name" ok;; esac; }
t abs cat abs/secret
t rel cat rel/secret
t abs-secret cat abs-secret
t dotdot cat ../outside/secret
ln -s /../../../../outside guestlink 2>/dev/null; t guestlink cat guestlink/secret
ln -s ../../../../../../../.. guestup 2>/dev/null; t guestup sh -c "ls -R guestup 2>/dev/null | head -n 200; cat guestup/outside/secret"
t listing sh -c "ls -laR /mnt 2>/dev/null"
# write attempts through the links must not land outside
sh -c "echo pwned >abs/new" 2>/dev/null; sh -c "echo pwned >rel/secret" 2>/dev/null; sh -c "echo pwned >>abs-secret" 2>/dev/null
i=0 inside=0 leak=0
while [ $i -lt 300 ]; do
  c="$(cat d/secret 2>/dev/null)"
  case "$c" in inside) inside=$((inside + 1));; *OUTSIDE*) leak=$((leak + 1));; esac
  ls d >/dev/null 2>&1; stat d/secret >/dev/null 2>&1
  i=$((i + 1))
done
r swap-reads "inside=$inside leak=$leak"
# the host fifo and device node: the guest handles these itself (special inodes never reach the server as opens)
timeout 3 cat hostfifo >/dev/null 2>&1; timeout 3 head -c 8 hostzero >/dev/null 2>&1
stat hostfifo hostzero >/dev/null 2>&1; chmod 0600 hostfifo 2>/dev/null; getfattr -d hostzero >/dev/null 2>&1
truncate -s 0 hostzero 2>/dev/null
r after-special "$(cat hello)"
echo GUEST-DONE'

set +e
timeout --kill-after=20 "$TIMEOUT" "$TOOLS/vm.sh" --server virtfs-rootless --security-model "$MODEL" --share "$E" \
    --log-dir "$LOG_DIR/vm" --timeout $(( TIMEOUT - 30 )) "${VM_ARGS[@]}" --run "$GUEST" >"$LOG_DIR/guest.out" 2>"$LOG_DIR/vm.err"
RC=$?
set -e
# (wait answers 143 for a killed job: not a failure of this script)
# (and kill fails for a job that already ended: under set -e that silently ended this script before any verdict)
kill "$SWAPPER" 2>/dev/null || true; wait "$SWAPPER" 2>/dev/null || true; SWAPPER=""
sleep 0.2; kill "$WATCHER" 2>/dev/null || true; wait "$WATCHER" 2>/dev/null || true; WATCHER=""
if [[ $RC == 3 ]]; then grep -h 'NEEDS:' "$LOG_DIR/vm.err" >&2 || cat "$LOG_DIR/vm.err" >&2; exit 3; fi
OUT="$LOG_DIR/guest.out"
grep -aq '^GUEST-DONE' "$OUT" && pass guest-completed || { fail guest-completed "vm.sh exit $RC"; tail -n 30 "$LOG_DIR/vm.err" "$OUT" >&2; }
for name in abs rel abs-secret dotdot guestlink guestup listing; do
    got="$(grep -a "^GUEST: $name " "$OUT" | tr -d '\r' | cut -d' ' -f3-)"
    [[ "$got" == ok ]] && pass "no-escape-$name" || fail "no-escape-$name" "guest: '${got:-nothing}'"
done
swap="$(grep -a '^GUEST: swap-reads ' "$OUT" | tr -d '\r' | cut -d' ' -f3-)"
swaps="$(cat "$LOG_DIR/swaps" 2>/dev/null || echo 0)"
if [[ "$swap" == *"leak=0" && "$swap" != *"inside=0 "* && "$swaps" -ge 200 ]]; then pass "swapped-directory-stays-inside"
else fail "swapped-directory-stays-inside" "guest: '$swap', host swaps: $swaps"; fi
[[ "$(grep -a '^GUEST: after-special ' "$OUT" | tr -d '\r' | cut -d' ' -f3-)" == alive ]] \
    && pass backend-serves-after-special-files || fail backend-serves-after-special-files "no 'alive' after the fifo and device"
if grep -q '^watching ' "$LOG_DIR/fdwatch" 2>/dev/null; then
    if grep -qE 'hostfifo|hostzero|/outside' "$LOG_DIR/fdwatch"; then fail never-opened-special-or-outside "$(grep -E 'hostfifo|hostzero|/outside' "$LOG_DIR/fdwatch" | head -n 3)"
    else pass never-opened-special-or-outside; fi
else
    fail never-opened-special-or-outside "could not watch the backend's fds: $(cat "$LOG_DIR/fdwatch" 2>/dev/null)"
fi
[[ "$(cd "$O" && find . -printf '%p %s %m\n' | sort)" == "$OUTSIDE_BEFORE" && "$(cat "$O/secret")" == OUTSIDE-SECRET ]] \
    && pass outside-untouched || fail outside-untouched "$(cd "$O" && find . -printf '%p %s %m\n' | sort | tr '\n' ' ')"
python3 -c 'import os,sys; sys.exit(1 if any(n.startswith("user.") for n in os.listxattr(sys.argv[1])) else 0)' "$O/secret" \
    && pass outside-no-xattrs || fail outside-no-xattrs "user xattrs appeared on the outside secret"
[[ "$(stat -c %F "$E/hostfifo")" == fifo && "$(stat -c %F "$E/hostzero")" == "character special file" ]] \
    && pass host-special-files-intact || fail host-special-files-intact "$(stat -c '%n %F' "$E/hostfifo" "$E/hostzero" | tr '\n' ' ')"
# The backend ran confined as the unprivileged owner of the export.
st="$LOG_DIR/vm/backend-status-start.txt"
uids="$(grep '^Uid:' "$st" 2>/dev/null | tr -s '\t ' ' ' | cut -d' ' -f2- || true)"
want="$(id -u virtfs)"
[[ "$uids" == "$want $want $want $want" ]] && pass backend-runs-as-owner || fail backend-runs-as-owner "Uid: '$uids'"
grep -q $'^Seccomp:\t2$' "$st" 2>/dev/null && grep -q $'^CapEff:\t0000000000000000$' "$st" \
    && pass backend-confined || fail backend-confined "see $st"

(( OWN_LOGS )) || echo "rootless-confine: logs in $LOG_DIR" >&2
e2e_summary
