#!/usr/bin/env bash
# Provisions the VM lab outside the repo and keeps it cached.
#
#   $VIRTFS_CACHE/trixie          Debian trixie chroot (minbase): QEMU 11.1 from trixie-backports,
#                                 linux-image-amd64 (6.12), busybox-static, virtiofsd, guest test tools
#   $VIRTFS_CACHE/trixie/var/lib/virtfs-guest/vmlinuz   the chroot's kernel
#   $VIRTFS_CACHE/trixie/var/lib/virtfs-guest/initrd    busybox + 9p/virtiofs modules + tools/guest/init.sh as /init
#   $VIRTFS_CACHE/stamp           hash of the inputs (this file + the init script); rebuild only on change
#
# The guest boots the initramfs, which mounts the chroot itself read-only over QEMU's built-in 9p
# (QEMU runs inside the chroot and exports "/" as tag "rootfs") and chroots into it: the guest gets
# a full Debian userland for tests at no extra disk cost.
#
# Usage: tools/lab.sh [--force] [--check]
#   --force   rebuild even if the stamp matches
#   --check   exit 0 if the lab is up to date, 1 otherwise; change nothing
# Env: VIRTFS_CACHE (default /var/cache/virtfs), VIRTFS_MIRROR (default: the Debian mirror the host's
#      apt sources use).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
ROOT="$CACHE/trixie"
GUEST="$ROOT/var/lib/virtfs-guest"  # inside the chroot: QEMU runs there
INIT_SRC="$HERE/guest/init.sh"
STAMP="$CACHE/stamp"
# Guest packages. Keep it lean: CI has 2 cores and a 30-minute budget for everything.
GUEST_PKGS=(linux-image-amd64 busybox-static virtiofsd fio attr acl git xz-utils procps util-linux perl-base gcc make libc6-dev
            ca-certificates)
# Modules for the initramfs, loaded in this order (dependencies first).
MODULES=(netfs 9pnet 9pnet_virtio 9p fuse virtiofs)

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: ERROR: %s\n' "$*" >&2; exit 2; }
# "needs" messages are what a user reads when the lab cannot be built here; exit 3 = cannot run.
need() { printf 'lab: NEEDS: %s\n' "$*" >&2; exit 3; }

FORCE=0 CHECK=0
for a in "$@"; do
    case "$a" in
        --force) FORCE=1 ;;
        --check) CHECK=1 ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $a" ;;
    esac
done

[[ -f "$INIT_SRC" ]] || die "missing $INIT_SRC"
input_hash() { cat "${BASH_SOURCE[0]}" "$INIT_SRC" | sha256sum | cut -d' ' -f1; }
HASH="$(input_hash)"
up_to_date() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -s "$GUEST/initrd" && -s "$GUEST/vmlinuz" \
       && -x "$ROOT/usr/bin/qemu-system-x86_64" ]]
}
if (( CHECK )); then up_to_date && exit 0 || exit 1; fi
if (( ! FORCE )) && up_to_date; then exit 0; fi

[[ "$(id -u)" == 0 ]] || need "root (debootstrap, chroot and bind mounts): run as root, e.g. sudo $0"
[[ "$(uname -m)" == x86_64 ]] || need "an x86_64 host"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
log "waiting for the lab lock ($CACHE/.lock)"
timeout 1200 flock 9 || die "could not take the lab lock within 20 minutes"
# Someone else may have built it while we waited.
if (( ! FORCE )) && up_to_date; then log "up to date"; exit 0; fi

START=$(date +%s)
MOUNTS=()
cleanup() {
    local i
    for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Debian mirror: whatever the host's apt uses (so nothing here names a host), or VIRTFS_MIRROR.
mirror() {
    if [[ -n "${VIRTFS_MIRROR:-}" ]]; then echo "$VIRTFS_MIRROR"; return; fi
    local f u
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        # one-line "deb [opts] URI suite" and deb822 "URIs: URI"
        u=$(sed -nE -e 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([a-z]+:\/\/[^[:space:]]+\/debian\/?)[[:space:]].*/\2/p' \
                    -e 's/^URIs:[[:space:]]*([a-z]+:\/\/[^[:space:]]+\/debian\/?)([[:space:]].*)?$/\1/p' "$f" | head -n1)
        if [[ -n "$u" ]]; then echo "${u%/}"; return; fi
    done
    return 1
}
MIRROR="$(mirror)" || need "a Debian mirror: none found in /etc/apt/sources.list*; set VIRTFS_MIRROR=<debian mirror URL>"
log "mirror: $MIRROR"

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap on the host"
    timeout 600 apt-get update -qq || need "network access to the Debian registry (apt-get update failed)"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq debootstrap >/dev/null \
        || need "the debootstrap package (apt-get install debootstrap failed)"
fi
[[ -f /usr/share/debootstrap/scripts/trixie ]] || need "a debootstrap that knows trixie (Debian 12's 1.0.128 does)"

# --- 1. base system (kept across input changes: only the steps below rerun) ---
if [[ ! -f "$ROOT/.virtfs-debootstrap-ok" ]]; then
    log "debootstrap --variant=minbase trixie (about a minute)"
    rm -rf "$ROOT"
    timeout 1200 debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap.log" >&2
             need "network access to the Debian registry at $MIRROR (debootstrap failed; log: $CACHE/debootstrap.log)"; }
    touch "$ROOT/.virtfs-debootstrap-ok"
fi

bind() { mkdir -p "$2"; mount --bind "$1" "$2"; MOUNTS+=("$2"); }
bind /proc "$ROOT/proc"
bind /sys "$ROOT/sys"
bind /dev "$ROOT/dev"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# INITRD=No: the kernel's postinst hook (/etc/kernel/postinst.d/initramfs-tools) then skips building
# an initramfs we never use (we build our own below); update_initramfs=no covers later triggers.
INCHROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive
          LANG=C.UTF-8 INITRD=No)
inchroot() { "${INCHROOT[@]}" "$@"; }

# --- 2. packages ---
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
deb $MIRROR trixie-backports main
EOF
# No docs, no man pages, no locales: smaller and faster.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-virtfs-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
# Debian's own initramfs is never used (we build ours): skip building it (see INITRD=No above).
mkdir -p "$ROOT/etc/initramfs-tools"
printf 'update_initramfs=no\n' >"$ROOT/etc/initramfs-tools/update-initramfs.conf"
APT=(apt-get -y -q -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false)
log "apt-get install in the chroot: ${GUEST_PKGS[*]} + qemu-system-x86 from trixie-backports"
{
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" update &&
    timeout 1200 "${INCHROOT[@]}" "${APT[@]}" install "${GUEST_PKGS[@]}" &&
    timeout 1200 "${INCHROOT[@]}" "${APT[@]}" install -t trixie-backports qemu-system-x86 &&
    inchroot apt-get clean
} >"$CACHE/apt.log" 2>&1 || { tail -n 20 "$CACHE/apt.log" >&2
    need "apt-get in the chroot to succeed: network access to the Debian registry at $MIRROR (log: $CACHE/apt.log)"; }

rm -f "$ROOT"/boot/initrd.img-*
QV="$(inchroot qemu-system-x86_64 --version | head -n1)"
log "chroot QEMU: $QV"
inchroot qemu-system-x86_64 -device help 2>/dev/null | grep -q vhost-user-test-device-pci \
    || die "chroot QEMU ($QV) lacks vhost-user-test-device-pci (need 11.1 from trixie-backports)"
inchroot test -x /usr/libexec/virtiofsd || die "virtiofsd missing in the chroot"

# --- 3. guest users: tester (1000) and tester2 (1001); written directly, minbase has no useradd ---
adduser_line() { # file name line
    grep -q "^$2:" "$ROOT/etc/$1" || printf '%s\n' "$3" >>"$ROOT/etc/$1"
}
for u in "tester:1000" "tester2:1001"; do
    n=${u%%:*} i=${u##*:}
    adduser_line passwd "$n" "$n:x:$i:$i:$n:/tmp:/bin/sh"
    adduser_line group "$n" "$n:x:$i:"
    adduser_line shadow "$n" "$n:*:20000:0:99999:7:::"
done
# The guest's root is read-only: let it find somewhere writable.
mkdir -p "$ROOT/var/lib/virtfs-jobs" "$ROOT/srv" "$ROOT/mnt"

# --- 4. kernel and initramfs ---
KV="$(ls "$ROOT/usr/lib/modules" | sort -V | tail -n1)"
[[ -n "$KV" && -f "$ROOT/boot/vmlinuz-$KV" ]] || die "no kernel found in the chroot"
log "kernel $KV"
# Built inside the chroot with its own xz, find, cpio (busybox) and gzip: no host tools needed.
WORK="$ROOT/tmp/virtfs-initrd"
rm -rf "$WORK"
trap 'cleanup; rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{bin,dev,proc,sys,newroot,modules}
cp "$ROOT/usr/bin/busybox" "$WORK/bin/busybox"
: >"$WORK/modules/order"
for m in "${MODULES[@]}"; do
    # modules.dep lines: "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz ..."
    rel="$( { grep -E "(^|/)${m}\.ko(\.xz|\.zst)?:" "$ROOT/usr/lib/modules/$KV/modules.dep" || true; } | head -n1 | cut -d: -f1)"
    if [[ -z "$rel" ]]; then
        grep -qE "/${m}\.ko" "$ROOT/usr/lib/modules/$KV/modules.builtin" \
            && { log "module $m is built in"; continue; }
        die "module $m not found for $KV"
    fi
    src="/usr/lib/modules/$KV/$rel"
    case "$src" in
        *.xz)  inchroot xz -dc "$src" >"$WORK/modules/$m.ko" ;;
        *.zst) inchroot zstd -dcq "$src" >"$WORK/modules/$m.ko" ;;
        *)     cp "$ROOT$src" "$WORK/modules/$m.ko" ;;
    esac
    echo "$m" >>"$WORK/modules/order"
done
install -m 0755 "$INIT_SRC" "$WORK/init"
mkdir -p "$GUEST"
inchroot sh -c 'cd /tmp/virtfs-initrd && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1' >"$GUEST/initrd.new"
mv "$GUEST/initrd.new" "$GUEST/initrd"
cp "$ROOT/boot/vmlinuz-$KV" "$GUEST/vmlinuz"
echo "$KV" >"$GUEST/kernel-version"
echo "$QV" >"$GUEST/qemu-version"
echo "$HASH" >"$STAMP"
log "lab ready in $(( $(date +%s) - START ))s: $CACHE"
