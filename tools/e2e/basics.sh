#!/usr/bin/env bash
# Host side of the basics suite (issue 2's acceptance: the file operations every user makes): prepares an
# export, boots a guest on it with tools/vm.sh, runs tools/guest/basics.sh there, then verifies on the host what
# the guest reported (HOSTCHECK lines) and what only the host can see (ownership, checksums, modes, the backend's
# confinement).
#
# Usage: tools/e2e/basics.sh [--server virtfs|builtin|virtiofsd|virtfs-rootless|builtin-mapped] [--log-dir DIR] [--no-build] [--timeout SEC]
# Prints "PASS: basics[SERVER] name" / "FAIL: basics[SERVER] name (detail)" lines, then a summary.
# Exit: 0 all passed, 1 something failed, 3 cannot run here (reason printed, "NEEDS:").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tools/e2e/hostcheck.sh
source "$HERE/hostcheck.sh"
SERVER=virtfs LOG_DIR="" VM_ARGS=() TIMEOUT=300
while (( $# )); do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "basics: unknown option $1" >&2; exit 2 ;;
    esac
done
LABEL="basics[$SERVER]"
need_root basics "the lab boots QEMU in a chroot; the helper runs as root"

# The export root is 0755 (guest users must get in: the guest checks the root's mode itself) inside
# a 0700 parent, so the unprivileged backend (user virtfs) cannot read the export by path: it must go
# through the helper.
e2e_parent virtfs-e2e
E="$PARENT/export"
mkdir -m 0755 "$E"
printf 'hello from the host' >"$E/hello.txt"
mkdir -p "$E/sub/nested" "$E/many" "$E/rootdir"
printf 'deep' >"$E/sub/nested/deep.txt"
for i in $(seq 0 319); do printf '%d\n' "$i" >"$E/many/$(printf 'f%03d' "$i")"; done
printf 'secret' >"$E/secret.txt"; chmod 0600 "$E/secret.txt"
head -c 1048576 /dev/urandom >"$E/blob.bin"
( cd "$E" && sha256sum hello.txt sub/nested/deep.txt many/f000 many/f319 secret.txt blob.bin >MANIFEST )
chmod 0755 "$E/rootdir"
chmod -R go+rX "$E/many" "$E/sub"; chmod 0644 "$E/hello.txt" "$E/blob.bin" "$E/MANIFEST"
# Rootless servers (issue 16) run as the unprivileged owner of the export and keep the guest's owners and modes in
# user.virtfs.* xattrs (mapped-xattr): the export goes to the system user, host checks read the guest's view.
SECRET_OWNER=0:0
if [[ "$SERVER" == virtfs-rootless || "$SERVER" == builtin-mapped ]]; then
    chown -R virtfs:virtfs "$E"; SECRET_OWNER="$(id -u virtfs):$(id -g virtfs)"; export HOSTCHECK_MAPPED=1
fi

# --- run the guest suite ---
OUT="$LOG_DIR/guest.out"
run_guest --bound "$TIMEOUT" "$OUT" "$LOG_DIR/vm.err" --server "$SERVER" --share "$E" --log-dir "$LOG_DIR" \
    --timeout $(( TIMEOUT - 30 )) --file "$TOOLS/guest/basics.sh" "${VM_ARGS[@]}" \
    --run 'bash "$VIRTFS_JOBDIR/basics.sh"'
guest_results "$OUT"
guest_completed "$OUT" basics
if grep -aq '^VIRTFS-MOUNT:ok' "$OUT"; then pass mount; else fail mount "no VIRTFS-MOUNT:ok from the guest"; fi
if grep -aq '^VIRTFS-UMOUNT:ok' "$OUT"; then pass umount; else fail umount "no VIRTFS-UMOUNT:ok from the guest"; fi

# --- facts only the host can check ---
safe_rel() { [[ -n "$1" && "$1" != /* && "$1" != *..* ]]; }
while read -r _ kind rel a1 _rest; do
    name="host-$kind:$rel"
    safe_rel "$rel" || { fail "$name" "unsafe path from the guest"; continue; }
    f="$E/$rel"
    case "$kind" in
        sha256) got=$(sha256sum "$f" 2>&1 | cut -d' ' -f1 || true) ;;
        owner|mode|symlink) [[ "${HOSTCHECK_MAPPED:-0}" == 1 ]] && { got=$(hostcheck_guestview "$kind" "$f"); [[ "$got" == "$a1" ]] && pass "$name" || fail "$name" "want '$a1', the guest's view on the host is '$got'"; continue; } ;;&
        owner)  got=$(stat -c %u:%g "$f" 2>&1 || true) ;;
        mode)   got=$(stat -c %a "$f" 2>&1 || true) ;;
        size)   got=$(stat -c %s "$f" 2>&1 || true) ;;
        links)  got=$(stat -c %h "$f" 2>&1 || true) ;;
        symlink) got=$(readlink "$f" 2>&1 || true) ;;
        exists) a1=yes; got=$([[ -e "$f" || -L "$f" ]] && echo yes || echo no) ;;
        absent) a1=yes; got=$([[ -e "$f" || -L "$f" ]] && echo no || echo yes) ;;
        *) fail "$name" "unknown HOSTCHECK kind"; continue ;;
    esac
    if [[ "$got" == "$a1" ]]; then pass "$name"; else fail "$name" "want '$a1', host has '$got'"; fi
done < <(grep -a '^HOSTCHECK: ' "$OUT" | tr -d '\r' || true)

# What the guest must not have changed.
[[ "$(stat -c %u:%g:%a "$E/secret.txt")" == "$SECRET_OWNER:600" && "$(cat "$E/secret.txt")" == secret ]] \
    && pass host-secret-untouched || fail host-secret-untouched "$(stat -c %u:%g:%a "$E/secret.txt")"
[[ "$(stat -c %a "$PARENT")" == 700 && "$(stat -c %a "$E")" == 755 ]] \
    && pass host-export-modes || fail host-export-modes "$(stat -c %a "$PARENT") $(stat -c %a "$E")"
( cd "$E" && sha256sum --quiet -c MANIFEST >/dev/null 2>&1 ) && pass host-files-intact || fail host-files-intact "MANIFEST mismatch"

# Our backend confined itself (issue 12), as the kernel reports it: no capabilities, no_new_privs and a seccomp
# filter (mode 2) on every thread, as the dedicated user. vm.sh saved /proc/PID/status after the backend started
# and again while the guest ran.
if [[ "$SERVER" == virtfs || "$SERVER" == virtfs-qemuhelper || "$SERVER" == virtfs-rootless ]]; then
    for when in start late; do
        st="$LOG_DIR/backend-status-$when.txt"
        if [[ ! -s "$st" ]]; then fail "host-backend-confined-$when" "vm.sh saved no $st"; continue; fi
        bad=""
        grep -q $'^NoNewPrivs:\t1$' "$st" || bad+=" NoNewPrivs"
        grep -q $'^Seccomp:\t2$' "$st" || bad+=" Seccomp"
        for c in CapInh CapPrm CapEff CapAmb; do grep -q "^$c:"$'\t'"0000000000000000$" "$st" || bad+=" $c"; done
        ntask=$(grep -c '^task ' "$st" || true)
        nconf=$(grep -c '^task [0-9]* Seccomp: 2 NoNewPrivs: 1$' "$st" || true)
        (( ntask > 1 && ntask == nconf )) || bad+=" threads($nconf of $ntask confined)"
        if [[ -z "$bad" ]]; then pass "host-backend-confined-$when"
        else fail "host-backend-confined-$when" "not as expected:$bad; see $st"; fi
    done
    want="$(id -u virtfs 2>/dev/null || echo none)"
    uids="$(grep '^Uid:' "$LOG_DIR/backend-status-start.txt" 2>/dev/null | tr -s '\t ' ' ' | cut -d' ' -f2- || true)"
    [[ "$uids" == "$want $want $want $want" ]] && pass host-backend-user-virtfs \
        || fail host-backend-user-virtfs "Uid: '$uids', want user virtfs ($want) in all four"
fi
(( NP + NF > 0 )) || fail no-checks-ran "nothing reported"

(( OWN_LOGS )) || echo "basics: logs in $LOG_DIR" >&2
e2e_summary
