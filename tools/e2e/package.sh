#!/usr/bin/env bash
# The .deb (issue 17), installed into a throwaway chroot and serving a guest:
#   builds it (tools/package.sh --no-build), installs it with dpkg into a copy-on-write overlay of the lab's trixie
#   tree in a private mount namespace (the lab tree itself and the host are untouched; everything vanishes with the
#   namespace), checks what the package put there (the user from postinst, executables, units, man pages), runs
#   `systemd-analyze verify` on the units inside that chroot, then serves a guest with the INSTALLED executables
#   (tools/e2e/metrics.sh --bin).
# Usage: tools/e2e/package.sh [--no-build] [--log-dir DIR]
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/e2e/lib.sh
source "$HERE/lib.sh"
REPO="$(cd "$TOOLS/.." && pwd)"
LOG_DIR=""
while (( $# )); do
    case "$1" in
        --no-build) shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --inside) INSIDE=1; shift ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "package: unknown option $1" >&2; exit 2 ;;
    esac
done
LOWER="${VIRTFS_CACHE:-/var/cache/virtfs}/trixie"

if [[ -z "${INSIDE:-}" ]]; then
    need_root package "chroot, overlay mount"
    command -v unshare >/dev/null || { echo "package: NEEDS: unshare (util-linux)" >&2; exit 3; }
    [[ -x "$LOWER/usr/bin/dpkg" ]] || { echo "package: NEEDS: the lab's trixie tree (tools/lab.sh)" >&2; exit 3; }
    WORK="$(mktemp -d /tmp/virtfs-package.XXXXXX)"; chmod 0755 "$WORK"   # the backend user runs the installed copy
    trap 'rm -rf "$WORK"' EXIT
    DEB="$("$TOOLS/package.sh" --no-build --out "$WORK" 2>"$WORK/package.err")" || {
        echo "FAIL: package build ($(tail -n 3 "$WORK/package.err" | tr '\n' ' '))"; exit 1; }
    echo "PASS: package build ($(basename "$DEB"), $(( $(stat -c %s "$DEB") / 1024 )) KiB)"
    # A private mount namespace: the overlay and its binds exist only for this run.
    WORK="$WORK" DEB="$DEB" unshare --mount --propagation private -- "${BASH_SOURCE[0]}" --inside ${LOG_DIR:+--log-dir "$LOG_DIR"}
    exit $?
fi

# --- inside the private namespace ---
LABEL=package
ROOT="$WORK/root"
mkdir -p "$WORK/upper" "$WORK/ovlwork" "$ROOT"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$WORK/upper,workdir=$WORK/ovlwork" "$ROOT" || {
    echo "package: NEEDS: an overlay mount (overlayfs)" >&2; exit 3; }
mount -t proc proc "$ROOT/proc"
cp "$DEB" "$ROOT/tmp/virtfs.deb"
# The lab tree is minimal: its dpkg skips docs and man pages (dpkg.cfg.d path-exclude). This install takes them.
rm -f "$ROOT"/etc/dpkg/dpkg.cfg.d/*
if chroot "$ROOT" dpkg -i /tmp/virtfs.deb >"$WORK/dpkg.log" 2>&1; then pass dpkg-install
else fail dpkg-install "$(tail -n 3 "$WORK/dpkg.log" | tr '\n' ' ')"; fi
if chroot "$ROOT" getent passwd virtfs | grep -q ':/nonexistent:/usr/sbin/nologin$'; then pass postinst-user
else fail postinst-user "no system user virtfs in the chroot"; fi
VERSION="$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$REPO/Directory.Build.props")"
if [[ "$(chroot "$ROOT" vhost-user-9p --version)" == "vhost-user-9p $VERSION" &&
      "$(chroot "$ROOT" virtfs-proxy-helper --version)" == "virtfs-proxy-helper $VERSION" ]]; then pass executables
else fail executables "--version in the chroot"; fi
missing=""
for f in lib/systemd/system/virtfs-proxy-helper@.service lib/systemd/system/vhost-user-9p@.service \
         lib/systemd/system/vhost-user-9p@.socket usr/share/man/man1/vhost-user-9p.1.gz \
         usr/share/man/man1/virtfs-proxy-helper.1.gz usr/share/doc/virtfs/README.md usr/share/doc/virtfs/libvirt.md \
         usr/share/doc/virtfs/troubleshooting.md usr/share/doc/virtfs/architecture.md; do
    [[ -e "$ROOT/$f" ]] || missing+=" $f"
done
if [[ -z "$missing" ]]; then pass files; else fail files "missing:$missing"; fi
if [[ -x "$ROOT/usr/bin/systemd-analyze" ]]; then
    # Templates are checked through an instance; the export path is the instance (srv-share = /srv/share).
    mkdir -p "$ROOT/srv/share"
    groupadd -R "$ROOT" -f kvm 2>/dev/null || true
    if chroot "$ROOT" systemd-analyze verify --man=no virtfs-proxy-helper@srv-share.service vhost-user-9p@srv-share.service \
            vhost-user-9p@srv-share.socket >"$WORK/verify.log" 2>&1 && ! grep -q '@' "$WORK/verify.log"; then
        pass systemd-analyze-verify; sed "s/^/package: verify: /" "$WORK/verify.log" >&2
    else
        fail systemd-analyze-verify "$(grep -v '^$' "$WORK/verify.log" | head -n 5 | tr '\n' ' ')"
    fi
else
    echo "package: systemd-analyze not in the chroot; units not verified" >&2
fi
umount "$ROOT/proc"

# Serve a guest with the installed executables (they are self-contained Native AOT: the host runs them as the
# units would, helper as root, backend as the package's user).
"$HERE/metrics.sh" --bin "$ROOT/usr/bin" --label "package serve" ${LOG_DIR:+--log-dir "$LOG_DIR"}
rc=$?
(( rc == 3 )) && exit 3
(( rc != 0 )) && NF=$((NF + 1))
echo "package: passed=$NP failed=$NF (serve: exit $rc)"
(( NF == 0 ))
