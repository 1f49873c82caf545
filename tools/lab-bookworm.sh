#!/usr/bin/env bash
# Provisions the interop peer of the lab (issue 4) outside the repo and keeps it cached:
#
#   $VIRTFS_CACHE/bookworm        Debian bookworm chroot (minbase, no recommends) with qemu-system-x86:
#                                 QEMU 7.2 (-fsdev proxy, virtio-9p-pci) and its helper
#                                 /usr/lib/qemu/virtfs-proxy-helper (qemu-system-common)
#   $VIRTFS_CACHE/bookworm.stamp  hash of this file and tools/lib/chroot.sh; rebuild only on change
#
# QEMU 7.2 was the last proxy-FS peer QEMU shipped (deprecated in 8.1, removed in 9.2): tools/vm.sh
# runs it from this chroot to boot the trixie lab's kernel and initramfs (--server qemu72-proxy), and
# runs its helper for our backend (--server virtfs-qemuhelper).
#
# Usage: tools/lab-bookworm.sh [--force] [--check]
#   --force   rebuild even if the stamp matches
#   --check   exit 0 if the chroot is up to date, 1 otherwise; change nothing
# Env: VIRTFS_CACHE (default /var/cache/virtfs), VIRTFS_MIRROR (default: the host's Debian mirror).
# Exit: 0 ready; 2 error; 3 cannot run here (reason after "NEEDS:").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/chroot.sh
source "$HERE/lib/chroot.sh"
chroot_setup bookworm lab-bookworm "$@"
chroot_ready() { [[ -x "$ROOT/usr/bin/qemu-system-x86_64" && -x "$ROOT/usr/lib/qemu/virtfs-proxy-helper" ]]; }
chroot_start

log "apt-get install qemu-system-x86 (bookworm, no recommends)"
{
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" update &&
    timeout 1200 "${INCHROOT[@]}" "${APT[@]}" install qemu-system-x86 &&
    "${INCHROOT[@]}" apt-get clean
} >"$(chroot_apt_log)" 2>&1 || chroot_apt_failed

QV="$("${INCHROOT[@]}" qemu-system-x86_64 --version | head -n1)"
log "bookworm QEMU: $QV"
[[ "$QV" == *" 7.2"* ]] || die "expected QEMU 7.2 in bookworm, got: $QV"
"${INCHROOT[@]}" qemu-system-x86_64 -device help 2>/dev/null | grep -q '"virtio-9p-pci"' \
    || die "bookworm QEMU lacks virtio-9p-pci"
[[ -x "$ROOT/usr/lib/qemu/virtfs-proxy-helper" ]] || die "no /usr/lib/qemu/virtfs-proxy-helper (qemu-system-common)"
# Mount points tools/vm.sh binds into this chroot: the trixie lab tree (guest rootfs, kernel,
# initramfs, job dirs), the share, and the run directory.
mkdir -p "$ROOT/trixie" "$ROOT/srv" "$ROOT/run"
echo "$QV" >"$ROOT/.virtfs-qemu-version"
chroot_finish
