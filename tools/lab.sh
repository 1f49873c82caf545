#!/usr/bin/env bash
# Provisions the VM lab outside the repo and keeps it cached.
#
#   $VIRTFS_CACHE/trixie          Debian trixie chroot (minbase): QEMU 11.1 from trixie-backports,
#                                 linux-image-amd64 (6.12), busybox-static, virtiofsd, guest test tools
#   $VIRTFS_CACHE/trixie/var/lib/virtfs-guest/vmlinuz   the chroot's kernel
#   $VIRTFS_CACHE/trixie/var/lib/virtfs-guest/initrd    busybox + 9p/virtiofs modules + tools/guest/init.sh as /init
#   $VIRTFS_CACHE/stamp           hash of the inputs (this file, tools/lib/chroot.sh, the init script); rebuild only
#                                 on change (the debootstrap'd base is kept: only the steps after it rerun)
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
# Exit: 0 ready; 2 error; 3 cannot run here (reason after "NEEDS:").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Guest packages. Keep it lean: CI has 2 cores and a 30-minute budget for everything.
GUEST_PKGS=(linux-image-amd64 busybox-static virtiofsd fio attr acl git xz-utils procps util-linux perl-base gcc make libc6-dev
            ca-certificates)
# Modules for the initramfs, loaded in this order (dependencies first).
MODULES=(netfs 9pnet 9pnet_virtio 9p fuse virtiofs)

# shellcheck source=tools/lib/chroot.sh
source "$HERE/lib/chroot.sh"
# INITRD=No: the kernel's postinst hook (/etc/kernel/postinst.d/initramfs-tools) then skips building an initramfs
# we never use (we build our own below); update_initramfs=no covers later triggers.
CHROOT_RELEASE=trixie CHROOT_SUITES=trixie-backports CHROOT_INPUTS="$HERE/guest/init.sh" CHROOT_ENV=INITRD=No
# tools/vm.sh takes this lock shared while a guest runs: the lab is never rebuilt under one.
CHROOT_STAMP="${VIRTFS_CACHE:-/var/cache/virtfs}/stamp" CHROOT_LOCK="${VIRTFS_CACHE:-/var/cache/virtfs}/.lock"
chroot_setup trixie lab "$@"
INIT_SRC="$HERE/guest/init.sh"
GUEST="$ROOT/var/lib/virtfs-guest"  # inside the chroot: QEMU runs there
chroot_ready() { [[ -s "$GUEST/initrd" && -s "$GUEST/vmlinuz" && -x "$ROOT/usr/bin/qemu-system-x86_64" ]]; }
chroot_start
inchroot() { "${INCHROOT[@]}" "$@"; }

# --- 2. packages (1, the base system, is chroot_start's) ---
# Debian's own initramfs is never used (we build ours): skip building it (see INITRD=No above).
mkdir -p "$ROOT/etc/initramfs-tools"
printf 'update_initramfs=no\n' >"$ROOT/etc/initramfs-tools/update-initramfs.conf"
log "apt-get install in the chroot: ${GUEST_PKGS[*]} + qemu-system-x86 from trixie-backports"
{
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" update &&
    timeout 1200 "${INCHROOT[@]}" "${APT[@]}" install "${GUEST_PKGS[@]}" &&
    timeout 1200 "${INCHROOT[@]}" "${APT[@]}" install -t trixie-backports qemu-system-x86 &&
    inchroot apt-get clean
} >"$(chroot_apt_log)" 2>&1 || chroot_apt_failed

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
trap 'chroot_unmount; rm -rf "$WORK"' EXIT
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
chroot_finish
