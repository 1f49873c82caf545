#!/usr/bin/env bash
# Records the seed corpora of the 9p and vhost-user fuzz targets from a real guest session (issue 13):
# boots the lab guest through our backend with VIRTFS_RECORD set (every vhost-user message and 9P request the
# backend receives is appended to a file, src/VhostUser/Diagnostics/SessionRecorder.cs), runs a workload that
# touches every 9P2000.L operation the Linux client sends, then splits the recording into seed inputs with
# `virtfs-fuzz corpus` into OUTDIR/9p and OUTDIR/vhost-user.
#
# Usage: tools/fuzz/record.sh OUTDIR [--no-build]   (root; the lab of tools/lab.sh)
# Exit: 0 ok; 1 failed; 3 cannot run here (NEEDS:).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?usage: tools/fuzz/record.sh OUTDIR [--no-build]}"; shift
BUILD=(); [[ "${1:-}" == --no-build ]] && BUILD=(--no-build)
WORK="$(mktemp -d /tmp/virtfs-record.XXXXXX)"
chmod 0755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/share" && chmod 0777 "$WORK/share"
touch "$WORK/session.rec" && chmod 0666 "$WORK/session.rec"   # written by the backend's unprivileged user

# What the guest does: each line drives a different 9P request (comments name them).
WORKLOAD='set -x; cd /mnt
mkdir -p d/e && echo hello > d/f && cat d/f          # Tmkdir Tlcreate Twrite Tread
ls -la . d >/dev/null; stat d/f >/dev/null           # Treaddir Tgetattr Twalk
ln -s f d/l && readlink d/l && ln d/f d/h            # Tsymlink Treadlink Tlink
mv d/h d/moved && rm d/moved                         # Trenameat Tunlinkat
chmod 600 d/f && chown 1000:1000 d/f && touch -d @1 d/f && truncate -s 100 d/f   # Tsetattr
mkfifo d/p && mknod d/c c 1 3 2>/dev/null; rm -f d/p d/c                         # Tmknod
setfattr -n user.k -v v d/f 2>/dev/null; getfattr -d d/f 2>/dev/null; setfattr -x user.k d/f 2>/dev/null  # Txattr*
flock d/f true; sync; df /mnt >/dev/null            # Tlock Tgetlock Tfsync Tstatfs
dd if=/dev/zero of=d/big bs=4k count=16 2>/dev/null && dd if=d/big of=/dev/null bs=4k 2>/dev/null
rm -rf d; true'

env VIRTFS_RECORD="$WORK/session.rec" timeout 900 "$REPO/tools/vm.sh" --server virtfs --share "$WORK/share" \
    "${BUILD[@]}" --timeout 600 --run "$WORKLOAD" --log-dir "$WORK/logs" >"$WORK/vm.out" 2>&1
rc=$?
(( rc == 3 )) && { grep -h 'NEEDS:' "$WORK/vm.out"; exit 3; }
(( rc == 0 )) || { tail -n 30 "$WORK/vm.out"; echo "record: the guest run failed (exit $rc)"; exit 1; }
[[ -s "$WORK/session.rec" ]] || { echo "record: the backend recorded nothing"; exit 1; }
mkdir -p "$OUT"
dotnet run --project "$REPO/tools/fuzz/VirtFs.Fuzz.csproj" -c Release -p:ArtifactsPath="$WORK/art" -- \
    corpus "$WORK/session.rec" "$OUT"
