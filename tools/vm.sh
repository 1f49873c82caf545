#!/usr/bin/env bash
# Boots a lab guest (tools/lab.sh) with a host directory mounted at /mnt.
#
# Usage: tools/vm.sh [options]
#   --share DIR            host directory to export (default: a fresh temp dir, removed afterwards)
#   --run 'CMD'            run CMD in the guest (sh -c), power off, exit with CMD's status;
#                          without --run: an interactive shell on the console
#   --file PATH            copy PATH into the guest job dir ($VIRTFS_JOBDIR in the guest); repeatable
#   --server S             virtfs (default: ours) | builtin (QEMU's own 9p) | virtiofsd
#                          | qemu72-proxy (QEMU 7.2's virtio-9p-pci on -fsdev proxy, talking to OUR helper)
#                          | virtfs-qemuhelper (our backend talking to QEMU 7.2's virtfs-proxy-helper)
#                          (both need tools/lab-bookworm.sh: a bookworm chroot with QEMU 7.2)
#                          | virtfs-rootless (ours without a helper: vhost-user-9p --shared-dir, run as the
#                            unprivileged owner of the share) | builtin-mapped (QEMU's own 9p, security_model=
#                            mapped-xattr, QEMU run as the share's owner too)
#   --rootless             the same as --server virtfs-rootless
#   --security-model M     virtfs-rootless and builtin-mapped: mapped-xattr (default) or none
#   --qemu72-sockfd        with qemu72-proxy: a socketpair (-fsdev proxy,sock_fd=N; helper -f N);
#                          --server qemu72-sockfd means the same
#   --tag TAG              mount tag (default: share)
#   --mount-opts OPTS      guest mount options (9p default: access=user,msize=512000)
#   --mem SIZE             guest RAM (default 1G)
#   --cpus N               guest CPUs (default 2)
#   --timeout SEC          bound the whole guest run (default 600 with --run, none interactive)
#   --log-dir DIR          keep console/helper/backend/qemu logs there
#   --no-build             do not run tools/build.sh first (virtfs server)
#   --helper-arg A / --backend-arg A   extra argument for our helper / backend; repeatable
#   --cpu-phases FILE      while the guest runs, append "SECONDS PHASE TICKS" to FILE whenever the guest writes a
#                          new name into /mnt/.bench-phase: CPU clock ticks used so far by the serving processes
#                          (helper + backend; virtiofsd; QEMU's threads other than its TCG vCPUs for builtin)
#   --vhost-socket PATH    attach QEMU to a vhost-user-9p the caller runs (no helper or backend started here);
#                          PATH must lie under the lab root (QEMU runs chrooted there); --tag must match its tag
#   --chardev-opts OPTS    appended to QEMU's vhost-user -chardev (e.g. reconnect-ms=1000, or server=on,wait=on)
# Exit status: CMD's status; 3 when the lab cannot run here (reason on stderr, "NEEDS:");
#   124 on timeout; 125 when the guest ended without reporting a status.
# Env: VIRTFS_CACHE (default /var/cache/virtfs), VIRTFS_BIN (our executables; default artifacts/bin),
#      VIRTFS_VIRTIOFSD_CACHE (virtiofsd --cache=, default its own: auto),
#      VIRTFS_BUILTIN_VECTORS (builtin: the virtio-9p-pci device's MSI-X vectors; 0 = INTx, as our device gets)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
ROOT="$CACHE/trixie"
GUEST_DIR=/var/lib/virtfs-guest   # inside the chroot (lab.sh puts kernel and initrd there)
# Our backend runs as a dedicated system user (issue 12): a guest that takes the backend over gets an identity
# that owns nothing, not nobody's (shared with every other daemon that drops to nobody).
BACKEND_USER=virtfs
# Where our two executables are: the build (default), or an installed copy (tools/e2e/package.sh: the .deb).
BIN="${VIRTFS_BIN:-$REPO/artifacts/bin}"

say() { printf 'vm: %s\n' "$*" >&2; }
need() { printf 'vm: NEEDS: %s\n' "$*" >&2; exit 3; }
usage() { sed -n '2,37p' "${BASH_SOURCE[0]}"; }

SHARE="" RUN="" RUN_SET=0 SERVER=virtfs TAG=share MOUNT_OPTS="" MEM=1G CPUS=2 TIMEOUT="" LOG_DIR="" BUILD=1
FILES=() HELPER_ARGS=() BACKEND_ARGS=() SOCKFD=0 VHOST_SOCKET="" CHARDEV_OPTS="" SECURITY_MODEL=mapped-xattr CPU_PHASES=
ORIG_ARGS=("$@")
while (( $# )); do
    case "$1" in
        --share) SHARE="$2"; shift 2 ;;
        --run) RUN="$2"; RUN_SET=1; shift 2 ;;
        --file) FILES+=("$2"); shift 2 ;;
        --server) SERVER="$2"; shift 2 ;;
        --tag) TAG="$2"; shift 2 ;;
        --mount-opts) MOUNT_OPTS="$2"; shift 2 ;;
        --mem) MEM="$2"; shift 2 ;;
        --cpus) CPUS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --qemu72-sockfd) SOCKFD=1; shift ;;
        --rootless) SERVER=virtfs-rootless; shift ;;
        --security-model) SECURITY_MODEL="$2"; shift 2 ;;
        --helper-arg) HELPER_ARGS+=("$2"); shift 2 ;;
        --backend-arg) BACKEND_ARGS+=("$2"); shift 2 ;;
        --cpu-phases) CPU_PHASES="$2"; shift 2 ;;
        --vhost-socket) VHOST_SOCKET="$2"; SERVER=external; shift 2 ;;
        --chardev-opts) CHARDEV_OPTS=",$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) say "unknown option: $1"; usage >&2; exit 2 ;;
    esac
done
# qemu72-sockfd: qemu72-proxy --qemu72-sockfd, as one server name for suites that only pass --server
[[ "$SERVER" == qemu72-sockfd ]] && SERVER=qemu72-proxy SOCKFD=1
case "$SERVER" in virtfs|builtin|virtiofsd|qemu72-proxy|virtfs-qemuhelper|external|virtfs-rootless|builtin-mapped) ;;
    *) say "--server must be virtfs, builtin, virtiofsd, qemu72-proxy, qemu72-sockfd, virtfs-qemuhelper, virtfs-rootless or builtin-mapped"; exit 2 ;; esac
[[ "$SECURITY_MODEL" == mapped-xattr || "$SECURITY_MODEL" == none ]] || { say "--security-model: mapped-xattr or none"; exit 2; }
(( SOCKFD )) && [[ "$SERVER" != qemu72-proxy ]] && { say "--qemu72-sockfd needs --server qemu72-proxy"; exit 2; }
[[ "$TAG" =~ ^[A-Za-z0-9._-]{1,31}$ ]] || { say "--tag: 1-31 characters of [A-Za-z0-9._-]"; exit 2; }
[[ "$CPUS" =~ ^[0-9]+$ ]] || { say "--cpus: a number"; exit 2; }
[[ "$MEM" =~ ^[0-9]+[MG]$ ]] || { say "--mem: e.g. 512M or 1G"; exit 2; }
[[ -z "$TIMEOUT" || "$TIMEOUT" =~ ^[0-9]+$ ]] || { say "--timeout: seconds"; exit 2; }
(( RUN_SET )) && TIMEOUT="${TIMEOUT:-600}"
[[ -z "$SHARE" || -d "$SHARE" ]] || { say "--share: $SHARE is not a directory"; exit 2; }

[[ "$(id -u)" == 0 ]] || need "root (chroot, bind mounts, the helper runs as root): run as root"

if [[ "$SERVER" == virtfs || "$SERVER" == qemu72-proxy || "$SERVER" == virtfs-qemuhelper || "$SERVER" == virtfs-rootless || "$SERVER" == builtin-mapped ]]; then
    if ! id "$BACKEND_USER" >/dev/null 2>&1; then
        command -v useradd >/dev/null || need "useradd (passwd) to create the system user $BACKEND_USER"
        # Two runs starting at once may race here: the loser's useradd fails, the user exists either way.
        useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$BACKEND_USER" 2>/dev/null || id "$BACKEND_USER" >/dev/null 2>&1 || { say "could not create user $BACKEND_USER"; exit 1; }
    fi
    BACKEND_UID="$(id -u "$BACKEND_USER")" BACKEND_GID="$(id -g "$BACKEND_USER")"
fi

# Everything below runs in a private mount namespace: every bind mount we make vanishes with the
# last process of this run, even if we are killed with SIGKILL.
if [[ -z "${VIRTFS_VM_NS:-}" ]]; then
    command -v unshare >/dev/null || need "unshare (util-linux)"
    export VIRTFS_VM_NS=1
    exec unshare --mount --propagation private -- "$0" "${ORIG_ARGS[@]}"
fi

# --- build and lab ---
if [[ "$SERVER" == virtfs || "$SERVER" == qemu72-proxy || "$SERVER" == virtfs-qemuhelper || "$SERVER" == virtfs-rootless ]]; then
    if (( BUILD )); then
        "$HERE/build.sh" >&2 || { say "tools/build.sh failed"; exit 1; }
    fi
    for e in virtfs-proxy-helper vhost-user-9p; do
        [[ -x "$BIN/$e" ]] || { say "missing $BIN/$e (run tools/build.sh)"; exit 1; }
    done
fi
"$HERE/lab.sh" >&2 || { rc=$?; [[ $rc == 3 ]] && exit 3; say "tools/lab.sh failed ($rc)"; exit 1; }
# A shared lock: lab.sh takes it exclusively to rebuild, so it never rebuilds under a running guest.
exec 8>"$CACHE/.lock"
timeout 1200 flock -s 8 || { say "could not take the lab lock"; exit 1; }
# QEMU 7.2 peers (issue 4 interop) live in a bookworm chroot: QEMU's proxy driver and its helper.
BW="$CACHE/bookworm"
QROOT="$ROOT" QGUEST="$GUEST_DIR" QROOTFS=/
if [[ "$SERVER" == qemu72-proxy || "$SERVER" == virtfs-qemuhelper ]]; then
    "$HERE/lab-bookworm.sh" >&2 || { rc=$?; [[ $rc == 3 ]] && exit 3; say "tools/lab-bookworm.sh failed ($rc)"; exit 1; }
    exec 7>"$CACHE/.lock-bookworm"
    timeout 1200 flock -s 7 || { say "could not take the bookworm lock"; exit 1; }
    # QEMU 7.2 boots the trixie lab's kernel, initramfs and userland: the trixie tree at /trixie.
    [[ "$SERVER" == qemu72-proxy ]] && QROOT="$BW" QGUEST="/trixie$GUEST_DIR" QROOTFS=/trixie
fi

ID="$(date +%s)-$$"
RUNDIR_G="/run/virtfs-$ID"                 # as seen from inside the chroot (QEMU)
RUNDIR="$ROOT$RUNDIR_G"
JOBDIR_G="/var/lib/virtfs-jobs/$ID"
JOBDIR="$ROOT$JOBDIR_G"
SRV_G="/srv/virtfs-$ID"
SRV="$ROOT$SRV_G"
OWN_SHARE=0 OWN_LOGS=0
PIDS=() MOUNTS=() QRUN_PREFIX=()
STATUS=125

cleanup() {
    local rc=$? p i
    trap - EXIT INT TERM
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
        p=${PIDS[$i]}
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        # give each process a moment to exit cleanly, then force it
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
    rmdir "$SRV" "$BW$SRV_G" "$BW$RUNDIR_G" 2>/dev/null || true
    rm -rf "$RUNDIR" "$JOBDIR"
    (( OWN_SHARE )) && rm -rf "$SHARE"
    (( OWN_LOGS )) && rm -rf "$LOG_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "$SHARE" ]]; then
    # 0755: the guest checks the export root's mode itself, a 0700 root would lock guest users out
    SHARE="$(mktemp -d /tmp/virtfs-share.XXXXXX)"; chmod 0755 "$SHARE"; OWN_SHARE=1; say "share: $SHARE (temporary)"
    # Rootless servers run as the share's owner: a share of our own goes to the unprivileged system user.
    [[ "$SERVER" == virtfs-rootless || "$SERVER" == builtin-mapped ]] && chown "$BACKEND_UID:$BACKEND_GID" "$SHARE"
fi
SHARE="$(cd "$SHARE" && pwd -P)"
# Rootless servers (issue 16) run as the unprivileged user that owns the share, never as root.
if [[ "$SERVER" == virtfs-rootless || "$SERVER" == builtin-mapped ]]; then
    OWNER_UID="$(stat -c %u "$SHARE")" OWNER_GID="$(stat -c %g "$SHARE")"
    [[ "$OWNER_UID" != 0 ]] || { say "--server $SERVER runs as the owner of the share, and $SHARE belongs to root: chown it to an unprivileged user (e.g. $BACKEND_USER)"; exit 2; }
fi
if [[ -z "$LOG_DIR" ]]; then LOG_DIR="$(mktemp -d /tmp/virtfs-logs.XXXXXX)"; OWN_LOGS=1; fi
mkdir -p "$LOG_DIR"; LOG_DIR="$(cd "$LOG_DIR" && pwd -P)"

mkdir -p "$RUNDIR" "$JOBDIR"
chmod 0755 "$RUNDIR"
bind() { mkdir -p "$2"; mount "${3:---bind}" "$1" "$2"; MOUNTS+=("$2"); }
# QEMU and virtiofsd run inside the chroot and want /dev, /proc and /sys.
bind /dev "$ROOT/dev" --rbind
bind /proc "$ROOT/proc"
bind /sys "$ROOT/sys" --rbind
if [[ "$QROOT" != "$ROOT" || "$SERVER" == virtfs-qemuhelper ]]; then
    bind /dev "$BW/dev" --rbind
    bind /proc "$BW/proc"
    bind /sys "$BW/sys" --rbind
    bind "$RUNDIR" "$BW$RUNDIR_G"              # sockets and console log at the same path in both chroots
fi
if [[ "$QROOT" != "$ROOT" ]]; then
    bind "$ROOT" "$BW/trixie"                  # not recursive: the guest mounts its own /proc /sys /dev
    mount -o remount,bind,ro "$BW/trixie"
fi

tail_logs() {
    local f
    for f in "$LOG_DIR"/*.log; do
        [[ -f "$f" && "$(basename "$f")" != console.log ]] || continue
        say "--- last lines of $f ---"
        tail -n 15 "$f" >&2 || true
    done
}
# The backend's confinement as the kernel reports it (tools/e2e/basics.sh checks it): /proc/PID/status, then one
# line per thread, since seccomp and no_new_privs are per-thread state.
# Shell builtins only: this runs every 5 s beside the guest, and forking cat/grep/tr for each of the backend's ~25
# threads cost a 2-core host about 10% of a core in bursts, CPU that only VirtFs's benchmark runs paid.
backend_status() { # pid file
    local t st seccomp nnp
    { cat "/proc/$1/status"   # one fork per call; the per-thread reads below are the ones that added up
      for t in /proc/"$1"/task/*; do
          # One read(2) per thread: $(<f) takes the whole file at once. A `while read` loop reads it line by line
          # and seeks back after each line, and every seek makes the kernel build the file anew, so a thread the
          # runtime's pool retired in between showed NoNewPrivs without Seccomp and counted as unconfined.
          st="$(<"$t/status")" || continue   # a thread that exited before the read is skipped
          [[ "$st" =~ $'\n'NoNewPrivs:$'\t'([0-9]+) ]] && nnp="${BASH_REMATCH[1]}" || continue
          [[ "$st" =~ $'\n'Seccomp:$'\t'([0-9]+) ]] && seccomp="${BASH_REMATCH[1]}" || seccomp=missing
          printf 'task %s Seccomp: %s NoNewPrivs: %s\n' "${t##*/}" "$seccomp" "$nnp"
      done; } >"$2" 2>/dev/null || true
}
BACKEND_PID=""
wait_socket() { # path pid what
    local i
    for (( i=0; i<300; i++ )); do
        [[ -S "$1" ]] && return 0
        kill -0 "$2" 2>/dev/null || { say "$3 exited before creating $1"; tail_logs; return 1; }
        sleep 0.1
    done
    say "$3 did not create $1 within 30 s"; tail_logs; return 1
}

# start_helper: our virtfs-proxy-helper (root) on RUNDIR/helper.sock serving SHARE to the backend's user, waited
# for. tools/e2e/recovery.sh restarts it from the "helper:" line: keep that line the exact command.
start_helper() {
    HELPER="$BIN/virtfs-proxy-helper"
    say "helper: $HELPER -p $SHARE -s $RUNDIR/helper.sock -u $BACKEND_UID -g $BACKEND_GID -n ${HELPER_ARGS[*]}"
    "$HELPER" -p "$SHARE" -s "$RUNDIR/helper.sock" -u "$BACKEND_UID" -g "$BACKEND_GID" -n "${HELPER_ARGS[@]}" \
        >"$LOG_DIR/helper.log" 2>&1 </dev/null &
    PIDS+=($!)
    wait_socket "$RUNDIR/helper.sock" "$!" virtfs-proxy-helper || exit 1
}

# backend_device SOCKET: QEMU's -chardev and -device for a vhost-user-9p on SOCKET (a path inside the chroot), as
# `vhost-user-9p --print-qemu-args` gives them, so the device's queues and config_size (2 + the tag's bytes) come
# from the backend itself; --chardev-opts is appended to the chardev. Its memory arguments are left out: the guest
# memory here is vm.sh's own (memfd, share=on, on q35).
backend_device() {
    local words i
    [[ -x "$BIN/vhost-user-9p" ]] || { say "missing $BIN/vhost-user-9p (run tools/build.sh)"; exit 1; }
    read -r -a words <<<"$("$BIN/vhost-user-9p" --print-qemu-args --socket-path "$1" --tag "$TAG")"
    QEMU_DEV=()
    for (( i = 0; i + 1 < ${#words[@]}; i++ )); do
        case "${words[i]}" in
            -chardev) QEMU_DEV+=(-chardev "${words[i + 1]}$CHARDEV_OPTS"); i=$((i + 1)) ;;
            -device) QEMU_DEV+=(-device "${words[i + 1]}"); i=$((i + 1)) ;;
        esac
    done
    (( ${#QEMU_DEV[@]} == 4 )) || { say "vhost-user-9p --print-qemu-args gave no -chardev/-device: ${words[*]}"; exit 1; }
}

# start_backend UID GID ARGS...: our vhost-user-9p as UID:GID (a copy in RUNDIR when that user cannot reach the
# repo's), waited for, its confinement recorded, and the QEMU device that talks to it.
start_backend() {
    local uid=$1 gid=$2; shift 2
    BACKEND="$BIN/vhost-user-9p"
    if ! setpriv --reuid="$uid" --regid="$gid" --clear-groups test -x "$BACKEND"; then
        cp "$BACKEND" "$RUNDIR/vhost-user-9p"; BACKEND="$RUNDIR/vhost-user-9p"
    fi
    say "backend (uid $uid): $BACKEND --socket-path $RUNDIR/vhost.sock --tag $TAG $* ${BACKEND_ARGS[*]}"
    setpriv --reuid="$uid" --regid="$gid" --clear-groups -- \
        "$BACKEND" --socket-path "$RUNDIR/vhost.sock" --tag "$TAG" "$@" \
        "${BACKEND_ARGS[@]}" >"$LOG_DIR/backend.log" 2>&1 </dev/null &
    PIDS+=($!) BACKEND_PID=$!
    wait_socket "$RUNDIR/vhost.sock" "$!" vhost-user-9p || exit 1
    backend_status "$BACKEND_PID" "$LOG_DIR/backend-status-start.txt"
    backend_device "$RUNDIR_G/vhost.sock"
}

QEMU_DEV=()
FSTYPE=9p
case "$SERVER" in
    builtin)
        bind "$SHARE" "$SRV"
        if [[ -n "${VIRTFS_BUILTIN_VECTORS:-}" ]]; then
            # -virtfs spelled out, to set the device's MSI-X vectors (0: a legacy INTx interrupt, what the guest
            # gets on the vhost-user test device; the benchmark's control for the transport, docs/performance.md).
            QEMU_DEV=(-fsdev "local,path=$SRV_G,security_model=passthrough,id=share"
                      -device "virtio-9p-pci,fsdev=share,mount_tag=$TAG,vectors=$VIRTFS_BUILTIN_VECTORS")
        else
            QEMU_DEV=(-virtfs "local,path=$SRV_G,mount_tag=$TAG,security_model=passthrough,id=share")
        fi ;;
    virtiofsd)
        bind "$SHARE" "$SRV"
        FSTYPE=virtiofs
        chroot "$ROOT" /usr/libexec/virtiofsd --socket-path="$RUNDIR_G/vfsd.sock" --shared-dir="$SRV_G" \
            --tag="$TAG" --sandbox=chroot ${VIRTFS_VIRTIOFSD_CACHE:+--cache="$VIRTFS_VIRTIOFSD_CACHE"} \
            >"$LOG_DIR/virtiofsd.log" 2>&1 &
        PIDS+=($!)
        wait_socket "$RUNDIR/vfsd.sock" "$!" virtiofsd || exit 1
        # QEMU's own virtiofs device, as its users attach it: it has MSI-X vectors for its queues, where the
        # generic vhost-user-test-device-pci (which our 9p backend needs) has one, so the guest falls back to INTx.
        QEMU_DEV=(-chardev "socket,id=vu,path=$RUNDIR_G/vfsd.sock"
                  -device "vhost-user-fs-pci,chardev=vu,tag=$TAG,queue-size=1024") ;;
    builtin-mapped)
        # QEMU's own server in mapped-xattr, dropping to the share's owner after set-up (-run-with user=), so
        # the files it makes belong to that user as they would for a user running QEMU themselves.
        bind "$SHARE" "$SRV"
        QEMU_DEV=(-virtfs "local,path=$SRV_G,mount_tag=$TAG,security_model=$SECURITY_MODEL,id=share"
                  -run-with "user=$OWNER_UID:$OWNER_GID") ;;
    virtfs-rootless)
        # No helper: the backend serves the share itself as its owner, confined to it (--shared-dir). The share is
        # reached through a bind mount under the lab's root, so a 0700 parent of the share (as the e2e suites
        # make) does not stop the owner from opening it.
        bind "$SHARE" "$SRV"
        chown "$OWNER_UID:$OWNER_GID" "$RUNDIR"
        start_backend "$OWNER_UID" "$OWNER_GID" --shared-dir "$SRV" --security-model "$SECURITY_MODEL" ;;
    virtfs)
        chown "$BACKEND_UID:$BACKEND_GID" "$RUNDIR"
        start_helper
        start_backend "$BACKEND_UID" "$BACKEND_GID" --helper-socket "$RUNDIR/helper.sock" ;;
    qemu72-proxy)
        # QEMU 7.2's own 9p server in front (virtio-9p-pci), file access through OUR helper.
        HELPER="$BIN/virtfs-proxy-helper"
        if (( SOCKFD )); then
            say "helper: $HELPER -p $SHARE -f N -n ${HELPER_ARGS[*]} (socketpair with QEMU's sock_fd=N)"
            QRUN_PREFIX=(perl "$HERE/socketpair-exec.pl" "$LOG_DIR/helper.log"
                         -- "$HELPER" -p "$SHARE" -f @FD@ -n "${HELPER_ARGS[@]}" --)
            QEMU_DEV=(-fsdev "proxy,id=p,sock_fd=@FD@" -device "virtio-9p-pci,fsdev=p,mount_tag=$TAG")
        else
            chown "$BACKEND_UID:$BACKEND_GID" "$RUNDIR"
            start_helper
            QEMU_DEV=(-fsdev "proxy,id=p,socket=$RUNDIR_G/helper.sock" -device "virtio-9p-pci,fsdev=p,mount_tag=$TAG")
        fi ;;
    external)
        # A backend the caller runs and watches (tools/e2e/reconnect.sh): QEMU only.
        [[ "$VHOST_SOCKET" == "$ROOT"/* ]] || { say "--vhost-socket must lie under $ROOT"; exit 2; }
        backend_device "${VHOST_SOCKET#"$ROOT"}" ;;
    virtfs-qemuhelper)
        # Our backend, file access through QEMU 7.2's helper (root, in the bookworm chroot). That
        # helper accepts exactly one connection: one pooled connection, never a probe.
        chown "$BACKEND_UID:$BACKEND_GID" "$RUNDIR"
        bind "$SHARE" "$BW$SRV_G"
        say "helper (QEMU 7.2): /usr/lib/qemu/virtfs-proxy-helper -p $SRV_G -s $RUNDIR_G/helper.sock -u $BACKEND_UID -g $BACKEND_GID -n"
        chroot "$BW" /usr/lib/qemu/virtfs-proxy-helper -p "$SRV_G" -s "$RUNDIR_G/helper.sock" \
            -u $BACKEND_UID -g $BACKEND_GID -n >"$LOG_DIR/helper.log" 2>&1 </dev/null &
        PIDS+=($!)
        wait_socket "$RUNDIR/helper.sock" "$!" "QEMU 7.2's virtfs-proxy-helper" || exit 1
        start_backend "$BACKEND_UID" "$BACKEND_GID" --helper-socket "$RUNDIR/helper.sock" --helper-connections 1 ;;
esac

# --- the job ---
enc() { local s="${1//%/%25}"; s="${s//,/%2C}"; s="${s// /%20}"; printf %s "${s//=/%3D}"; }
# no_timer_check: on a host loaded far beyond its cores the TCG guest misses the IO-APIC timer check and panics
# ("IO-APIC + timer doesn't work!"); the check only guards broken real hardware.
APPEND="console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check virtfs.fstype=$FSTYPE virtfs.tag=$TAG virtfs.mnt=/mnt"
[[ -n "$MOUNT_OPTS" ]] && APPEND+=" virtfs.opts=$(enc "$MOUNT_OPTS")"
if (( RUN_SET )); then
    for f in "${FILES[@]}"; do cp "$f" "$JOBDIR/"; done
    printf '%s\n' "$RUN" >"$JOBDIR/cmd"
    # The command runs from the share, with sh -c, as the user would type it.
    cat >"$JOBDIR/job.sh" <<EOF
cd "\$VIRTFS_MNT" 2>/dev/null || cd /
exec /bin/sh -c "\$(cat $JOBDIR_G/cmd)"
EOF
    chmod -R a+rX "$JOBDIR"
    APPEND+=" virtfs.job=$ID"
elif (( ${#FILES[@]} )); then
    for f in "${FILES[@]}"; do cp "$f" "$JOBDIR/"; done
fi

QEMU=(/usr/bin/qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$CPUS" -m "$MEM"
      -object "memory-backend-memfd,id=mem,size=$MEM,share=on" -machine q35,memory-backend=mem
      -nic none -nographic -no-reboot
      -kernel "$QGUEST/vmlinuz" -initrd "$QGUEST/initrd" -append "$APPEND"
      -virtfs "local,path=$QROOTFS,mount_tag=rootfs,security_model=passthrough,readonly=on,multidevs=remap,id=rootfs"
      "${QEMU_DEV[@]}")
QRUN=("${QRUN_PREFIX[@]}" chroot "$QROOT")
printf '%q ' "${QRUN[@]}" "${QEMU[@]}" >"$LOG_DIR/qemu-cmdline.txt"; echo >>"$LOG_DIR/qemu-cmdline.txt"
say "booting ($SERVER, tag $TAG, ${MEM} RAM, $CPUS cpus)"

# Watchdog: if a server process dies, stop QEMU rather than letting the guest hang until the timeout.
watchdog() {
    local qpid=$1; shift
    while kill -0 "$qpid" 2>/dev/null; do
        for p in "$@"; do
            if ! kill -0 "$p" 2>/dev/null; then
                echo "vm: a server process ($p) exited while the guest was running; stopping QEMU" >&2
                sleep 2; kill -TERM "$qpid" 2>/dev/null; return
            fi
        done
        sleep 1
    done
}

# utime+stime ticks of the serving processes: every thread of the given pids, or for QEMU (builtin) every thread
# but the TCG vCPUs (its 9p server runs in the main loop and the worker pool).
server_ticks() { # qemu-pid server-pids...
    local q=$1 total=0 f stat comm
    shift
    if [[ "$SERVER" == builtin ]]; then
        [[ "$(cat "/proc/$q/comm" 2>/dev/null)" == qemu-system-* ]] || q="$(cat /proc/"$q"/task/*/children 2>/dev/null | awk '{ print $1; exit }')"
        for f in /proc/"$q"/task/*/stat; do
            stat="$(cat "$f" 2>/dev/null)" || continue
            comm="${stat#*(}"; comm="${comm%%)*}"
            [[ "$comm" =~ ^CPU\ [0-9]+/TCG$ ]] && continue
            total=$(( total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' <<<"$stat") ))
        done
    else
        for q in "$@"; do
            stat="$(cat "/proc/$q/stat" 2>/dev/null)" || continue
            total=$(( total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' <<<"$stat") ))
        done
    fi
    echo "$total"
}
cpu_phases() { # qemu-pid server-pids...
    local last="" now
    while kill -0 "$1" 2>/dev/null; do
        now=""; read -r now <"$SHARE/.bench-phase" 2>/dev/null || true   # a builtin: no fork 5 times a second
        if [[ -n "$now" && "$now" != "$last" ]]; then
            echo "$EPOCHREALTIME $now $(server_ticks "$@")" >>"$CPU_PHASES"
            last="$now"
        fi
        sleep 0.2
    done
}

# Serial console text without carriage returns and the firmware's terminal escapes.
clean_console() { sed -u -e 's/\r$//' -e 's/\r/\n/g' -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g'; }

START=$(date +%s)
TO=()
[[ -n "$TIMEOUT" && "$TIMEOUT" != 0 ]] && TO=(timeout --kill-after=10 "$TIMEOUT")
if (( RUN_SET )); then
    # stdin from /dev/null: QEMU's stdio must not grab a terminal; console to stdout and console.log.
    : >"$LOG_DIR/console.raw"   # exists before tail looks for it
    "${TO[@]}" "${QRUN[@]}" "${QEMU[@]}" </dev/null 2>"$LOG_DIR/qemu.log" >>"$LOG_DIR/console.raw" &
    QPID=$!
    PIDS+=("$QPID")
    SERVER_PIDS=("${PIDS[@]:0:${#PIDS[@]}-1}")
    # tools/e2e/recovery.sh kills and restarts the helper on purpose: watch only the backend then.
    if [[ "${VIRTFS_WATCHDOG_SKIP_HELPER:-0}" == 1 && "$SERVER" == virtfs ]]; then SERVER_PIDS=("${SERVER_PIDS[@]:1}"); fi
    (( ${#SERVER_PIDS[@]} )) && { watchdog "$QPID" "${SERVER_PIDS[@]}" & PIDS+=($!); }
    # Stream the console as it comes, without the serial line's carriage returns.
    tail -n +1 -f --pid="$QPID" "$LOG_DIR/console.raw" | clean_console | tee "$LOG_DIR/console.log" &
    TPID=$!
    # While the guest runs (the backend has now served it with all its threads), and before cleanup stops it.
    if [[ -n "$BACKEND_PID" ]]; then
        ( while kill -0 "$QPID" 2>/dev/null; do
              kill -0 "$BACKEND_PID" 2>/dev/null && backend_status "$BACKEND_PID" "$LOG_DIR/backend-status.tmp" \
                  && mv -f "$LOG_DIR/backend-status.tmp" "$LOG_DIR/backend-status-late.txt"
              sleep 5
          done ) &
        PIDS+=($!)
    fi
    if [[ -n "$CPU_PHASES" ]]; then
        cpu_phases "$QPID" "${SERVER_PIDS[@]}" &
        PIDS+=($!)
    fi
    set +e; wait "$QPID"; QRC=$?; set -e
    wait "$TPID" 2>/dev/null || true
    clean_console <"$LOG_DIR/console.raw" >"$LOG_DIR/console.log"
    M="$(grep -a -o 'VIRTFS-EXIT:[0-9]*' "$LOG_DIR/console.log" | tail -n1 || true)"
    if [[ -n "$M" ]]; then
        STATUS="${M#VIRTFS-EXIT:}"
    elif [[ $QRC == 124 || $QRC == 137 ]]; then
        say "timeout: the guest did not finish within ${TIMEOUT}s"; STATUS=124; tail_logs
    else
        say "the guest ended without a status (QEMU exit $QRC)"; STATUS=125; tail_logs
    fi
    grep -aq 'VIRTFS-UMOUNT:failed' "$LOG_DIR/console.log" && say "warning: the guest could not unmount the share"
    say "guest finished in $(( $(date +%s) - START ))s with status $STATUS"
else
    # The console stays on this terminal (Ctrl-A X quits QEMU); a copy goes to a log (logfile is
    # relative to the chroot) so we can return the shell's exit status.
    IQ=()
    for a in "${QEMU[@]}"; do
        if [[ "$a" == -nographic ]]; then
            IQ+=(-display none -chardev "stdio,id=con,mux=on,logfile=$RUNDIR_G/console.raw"
                 -serial chardev:con -mon chardev=con,mode=readline)
        else IQ+=("$a"); fi
    done
    set +e
    "${TO[@]}" "${QRUN[@]}" "${IQ[@]}" 2>"$LOG_DIR/qemu.log"
    QRC=$?
    set -e
    clean_console <"$RUNDIR/console.raw" >"$LOG_DIR/console.log" 2>/dev/null || true
    M="$(grep -a -o 'VIRTFS-EXIT:[0-9]*' "$LOG_DIR/console.log" | tail -n1 || true)"
    if [[ -n "$M" ]]; then STATUS="${M#VIRTFS-EXIT:}"; else STATUS=$QRC; fi
fi
exit "$STATUS"
