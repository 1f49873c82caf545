#!/usr/bin/env bash
# Builds virtfs_<version>_amd64.deb with dpkg-deb: both Native AOT executables, the systemd units
# (packaging/systemd), the man pages (docs/man), the docs, and a postinst that creates the system user "virtfs"
# the backend runs as.
#
# Usage: tools/package.sh [--no-build] [--out DIR]
#   --no-build   package what is in artifacts/bin (default: run tools/build.sh first)
#   --out DIR    where the .deb goes (default artifacts/deb)
# Prints the .deb's path on stdout. Exit 3 (NEEDS:) without dpkg-deb.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 OUT="$REPO/artifacts/deb"
while (( $# )); do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "package: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v dpkg-deb >/dev/null || { echo "package: NEEDS: dpkg-deb (package dpkg)" >&2; exit 3; }
(( BUILD )) && "$REPO/tools/build.sh" >&2
for e in vhost-user-9p virtfs-proxy-helper; do
    [[ -x "$REPO/artifacts/bin/$e" ]] || { echo "package: missing artifacts/bin/$e (run tools/build.sh)" >&2; exit 1; }
done
VERSION="$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$REPO/Directory.Build.props")"
[[ -n "$VERSION" ]] || { echo "package: no <Version> in Directory.Build.props" >&2; exit 1; }
# The executables must say the same version as the package.
got="$("$REPO/artifacts/bin/vhost-user-9p" --version)"
[[ "$got" == "vhost-user-9p $VERSION" ]] || { echo "package: artifacts/bin is stale ($got, want $VERSION)" >&2; exit 1; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
R="$STAGE/root"
install -d "$R/DEBIAN" "$R/usr/bin" "$R/lib/systemd/system" "$R/usr/share/man/man1" "$R/usr/share/doc/virtfs" \
    "$R/etc/virtfs"
install -m 0755 "$REPO/artifacts/bin/vhost-user-9p" "$REPO/artifacts/bin/virtfs-proxy-helper" "$R/usr/bin/"
install -m 0644 "$REPO"/packaging/systemd/* "$R/lib/systemd/system/"
for m in "$REPO"/docs/man/*.1; do gzip -9n <"$m" >"$R/usr/share/man/man1/$(basename "$m").gz"; done
install -m 0644 "$REPO/README.md" "$REPO"/docs/*.md "$R/usr/share/doc/virtfs/"
install -m 0644 "$REPO/packaging/example.env" "$R/etc/virtfs/example.env"
SIZE="$(du -sk "$R" | cut -f1)"

cat >"$R/DEBIAN/control" <<CONTROL
Package: virtfs
Version: $VERSION
Architecture: amd64
Maintainer: VirtFs developers <virtfs@localhost>
Section: admin
Priority: optional
Installed-Size: $SIZE
Depends: libc6 (>= 2.31), passwd
Recommends: qemu-system-x86 (>= 1:10.2)
Description: vhost-user virtio-9p backend for QEMU, with a root proxy helper
 vhost-user-9p serves a host directory to QEMU guests as a virtio-9p device
 over vhost-user, as an unprivileged, seccomp-confined process; file access
 goes through virtfs-proxy-helper (QEMU 7.2's proxy protocol), which runs as
 root in a namespace sandbox. Ships systemd units (helper template, backend
 service and socket), man pages and docs (libvirt, troubleshooting).
CONTROL
echo "/etc/virtfs/example.env" >"$R/DEBIAN/conffiles"

cat >"$R/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# The backend's identity: a system user that owns nothing, so a guest that took the backend over gets nothing.
set -e
if [ "$1" = configure ]; then
    if ! getent passwd virtfs >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            --comment "vhost-user-9p backend" virtfs
    fi
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl daemon-reload || true
    fi
fi
exit 0
POSTINST
cat >"$R/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ] && getent passwd virtfs >/dev/null; then
    userdel virtfs || true
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl daemon-reload || true
fi
exit 0
POSTRM
chmod 0755 "$R/DEBIAN/postinst" "$R/DEBIAN/postrm"

mkdir -p "$OUT"
DEB="$OUT/virtfs_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >&2
echo "$DEB"
