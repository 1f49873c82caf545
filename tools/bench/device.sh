#!/usr/bin/env bash
# The backend's request path alone, no guest and no TCG (issue 14): VhostUserServer + Virtio9pDevice + P9Server
# in one process, driven over a memfd ring by the component tests' front-end (tests/VhostUser.Tests/TestFrontEnd.cs)
# the way the Linux 9p client drives it (indirect chains, one descriptor per 4 KiB payload page, EVENT_IDX).
# Rows: 4 KiB and 496 KiB Tread/Twrite on a page-cached 64 MiB file, Tgetattr on an open fid, Twalk(+Tclunk),
# each at queue depth 1, 16 and 128; requests/s, us and server CPU per request, bytes allocated per request,
# and the floor: the same preadv/pwritev/statx calls in a plain loop, with both ratios.
#
# Usage: tools/bench/device.sh [--seconds S] [--depths 1,16,128] [--rows read4k,...] [--local] [--workers N]
#                              [--modes inline,pool] [--markdown FILE] [--no-build]
#   By default the real virtfs-proxy-helper serves the export (as root; artifacts/bin from tools/build.sh, built
#   if missing); --local uses the in-process LocalFileSystem instead. Takes about 20 s per second of --seconds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ART="${VIRTFS_BENCH_ARTIFACTS:-$REPO/artifacts/bench}"
BUILD=1 LOCAL=0 ARGS=()
while (( $# )); do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --local) LOCAL=1; shift ;;
        --seconds|--depths|--rows|--workers|--markdown|--modes) ARGS+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "device.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v dotnet >/dev/null || { echo "device.sh: NEEDS: the .NET 10 SDK (dotnet) on PATH" >&2; exit 3; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if (( BUILD )); then
    timeout 900 dotnet build "$HERE/device" -c Release -p:ArtifactsPath="$ART" -nologo -v:q >&2
fi
BIN="$ART/bin/VirtFs.DeviceBench/release_linux-x64/VirtFs.DeviceBench"
[[ -x "$BIN" ]] || { echo "device.sh: $BIN missing (run without --no-build)" >&2; exit 1; }
if (( ! LOCAL )); then
    if [[ $EUID -ne 0 ]]; then echo "device.sh: the helper needs root; use --local" >&2; exit 3; fi
    HELPER="$REPO/artifacts/bin/virtfs-proxy-helper"
    if [[ ! -x "$HELPER" ]]; then "$REPO/tools/build.sh" >&2; fi
    ARGS+=(--helper "$HELPER")
fi
echo "device.sh: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)" >&2
exec timeout 1800 "$BIN" "${ARGS[@]}" 2> >(grep -v '^connection [0-9]*: ' >&2)
