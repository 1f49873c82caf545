#!/usr/bin/env bash
# Provisions the interop peer of the lab (issue 4) outside the repo and keeps it cached:
#
#   $VIRTFS_CACHE/bookworm        Debian bookworm chroot (minbase, no recommends) with qemu-system-x86:
#                                 QEMU 7.2 (-fsdev proxy, virtio-9p-pci) and its helper
#                                 /usr/lib/qemu/virtfs-proxy-helper (qemu-system-common)
#   $VIRTFS_CACHE/bookworm.stamp  hash of this file; rebuild only on change
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
CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
ROOT="$CACHE/bookworm"
STAMP="$CACHE/bookworm.stamp"
LOCK="$CACHE/.lock-bookworm"

log() { printf 'lab-bookworm: %s\n' "$*" >&2; }
die() { printf 'lab-bookworm: ERROR: %s\n' "$*" >&2; exit 2; }
need() { printf 'lab-bookworm: NEEDS: %s\n' "$*" >&2; exit 3; }

FORCE=0 CHECK=0
for a in "$@"; do
    case "$a" in
        --force) FORCE=1 ;;
        --check) CHECK=1 ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $a" ;;
    esac
done

HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
up_to_date() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$ROOT/usr/bin/qemu-system-x86_64" \
       && -x "$ROOT/usr/lib/qemu/virtfs-proxy-helper" ]]
}
if (( CHECK )); then up_to_date && exit 0 || exit 1; fi
if (( ! FORCE )) && up_to_date; then exit 0; fi

[[ "$(id -u)" == 0 ]] || need "root (debootstrap, chroot): run as root"
[[ "$(uname -m)" == x86_64 ]] || need "an x86_64 host"
mkdir -p "$CACHE"
exec 9>"$LOCK"
log "waiting for the lock ($LOCK)"
timeout 1200 flock 9 || die "could not take $LOCK within 20 minutes"
if (( ! FORCE )) && up_to_date; then log "up to date"; exit 0; fi

START=$(date +%s)
MOUNTS=()
cleanup() { local i; for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Same mirror rule as tools/lab.sh: VIRTFS_MIRROR, else whatever the host's apt uses.
mirror() {
    if [[ -n "${VIRTFS_MIRROR:-}" ]]; then echo "$VIRTFS_MIRROR"; return; fi
    local f u
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        u=$(sed -nE -e 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([a-z]+:\/\/[^[:space:]]+\/debian\/?)[[:space:]].*/\2/p' \
                    -e 's/^URIs:[[:space:]]*([a-z]+:\/\/[^[:space:]]+\/debian\/?)([[:space:]].*)?$/\1/p' "$f" | head -n1)
        if [[ -n "$u" ]]; then echo "${u%/}"; return; fi
    done
    return 1
}
MIRROR="$(mirror)" || need "a Debian mirror: none found in /etc/apt/sources.list*; set VIRTFS_MIRROR=<debian mirror URL>"
command -v debootstrap >/dev/null || need "debootstrap on the host (tools/lab.sh installs it)"
[[ -f /usr/share/debootstrap/scripts/bookworm ]] || need "a debootstrap that knows bookworm"

if [[ ! -f "$ROOT/.virtfs-debootstrap-ok" ]]; then
    log "debootstrap --variant=minbase bookworm (about a minute)"
    rm -rf "$ROOT"
    timeout 1200 debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$CACHE/bookworm-debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/bookworm-debootstrap.log" >&2
             need "network access to the Debian registry at $MIRROR (log: $CACHE/bookworm-debootstrap.log)"; }
    touch "$ROOT/.virtfs-debootstrap-ok"
fi

bind() { mkdir -p "$2"; mount --bind "$1" "$2"; MOUNTS+=("$2"); }
bind /proc "$ROOT/proc"
bind /sys "$ROOT/sys"
bind /dev "$ROOT/dev"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
INCHROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
EOF
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-virtfs-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
APT=(apt-get -y -q -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false)
log "apt-get install qemu-system-x86 (bookworm, no recommends)"
{
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" update &&
    timeout 1200 "${INCHROOT[@]}" "${APT[@]}" install qemu-system-x86 &&
    "${INCHROOT[@]}" apt-get clean
} >"$CACHE/bookworm-apt.log" 2>&1 || { tail -n 20 "$CACHE/bookworm-apt.log" >&2
    need "apt-get in the bookworm chroot to succeed (log: $CACHE/bookworm-apt.log)"; }

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
echo "$HASH" >"$STAMP"
log "ready in $(( $(date +%s) - START ))s: $ROOT"
