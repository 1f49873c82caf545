#!/usr/bin/env bash
# Publishes both executables as Native AOT into artifacts/bin:
#   artifacts/bin/virtfs-proxy-helper   (src/Helper)
#   artifacts/bin/vhost-user-9p         (src/Virtio9p)
# Usage: tools/build.sh [extra dotnet publish args...]
# Env: VIRTFS_BUILD_TIMEOUT (seconds per project, default 900)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
command -v dotnet >/dev/null || { echo "build: NEEDS: the .NET 10 SDK (dotnet) on PATH" >&2; exit 3; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
OUT="$REPO/artifacts/bin"
mkdir -p "$OUT"
# Two builds publishing into one folder at once would interleave: take turns.
exec 9>"$REPO/artifacts/.build.lock"
timeout 1800 flock 9 || { echo "build: could not take $REPO/artifacts/.build.lock" >&2; exit 1; }
T="${VIRTFS_BUILD_TIMEOUT:-900}"
rc=0
for p in src/Helper src/Virtio9p; do
    echo "build: dotnet publish $p (Native AOT)" >&2
    if ! timeout "$T" dotnet publish "$p" -c Release -r linux-x64 -o "$OUT" -nologo -v:q "$@"; then
        echo "build: FAILED: $p" >&2
        rc=1
    fi
done
for e in virtfs-proxy-helper vhost-user-9p; do
    if [[ -x "$OUT/$e" ]]; then echo "build: $OUT/$e" >&2; else echo "build: missing $OUT/$e" >&2; rc=1; fi
done
exit $rc
