#!/usr/bin/env bash
# Provisions AFL++ for tools/fuzz.sh outside the repo and keeps it cached (issue 13):
#
#   $VIRTFS_CACHE/fuzz        Debian bookworm chroot (minbase) with afl++ 4.04c unpacked into it and the
#                             libraries afl-fuzz needs (libpython3.11); nothing is installed on the host
#   $VIRTFS_CACHE/fuzz.stamp  hash of this file and tools/lib/chroot.sh; rebuild only on change
#
# The afl++ package depends on clang-14 and build-essential (about 600 MB) only to compile C targets with
# afl-clang-fast; our targets are .NET assemblies instrumented by SharpFuzz, which need only afl-fuzz,
# afl-showmap, afl-cmin and afl-tmin. So the package is unpacked with `dpkg -x` (its own files, no
# maintainer scripts) and only its runtime libraries are installed with apt: the whole provisioning
# stays near a minute. tools/fuzz.sh runs the chroot's afl-fuzz through the chroot's own dynamic loader
# and libraries (see AFL_RUN in tools/fuzz.sh), so the host's packages are never touched and the .NET
# target runs on the host's SDK as usual.
#
# Usage: tools/lab-fuzz.sh [--force] [--check]
#   --force   rebuild even if the stamp matches
#   --check   exit 0 if the chroot is up to date, 1 otherwise; change nothing
# Env: VIRTFS_CACHE (default /var/cache/virtfs), VIRTFS_MIRROR (default: the host's Debian mirror).
# Exit: 0 ready; 2 error; 3 cannot run here (reason after "NEEDS:").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/chroot.sh
source "$HERE/lib/chroot.sh"
chroot_setup fuzz lab-fuzz "$@"
chroot_ready() { [[ -x "$ROOT/usr/bin/afl-fuzz" && -f "$ROOT/.virtfs-afl-version" ]]; }
chroot_start

log "afl++ (bookworm): runtime libraries with apt, the package itself unpacked with dpkg -x"
{
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" update &&
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" install libpython3.11 &&
    rm -f "$ROOT"/tmp/afl++_*.deb &&
    timeout 600 "${INCHROOT[@]}" sh -c 'cd /tmp && apt-get download afl++' &&
    "${INCHROOT[@]}" sh -c 'dpkg -x /tmp/afl++_*.deb / && rm -f /tmp/afl++_*.deb' &&
    "${INCHROOT[@]}" apt-get clean
} >"$(chroot_apt_log)" 2>&1 || chroot_apt_failed

AV="$("${INCHROOT[@]}" afl-fuzz -h 2>&1 | grep -o 'afl-fuzz++[0-9.a-z]*' | head -n1 || true)"
[[ -n "$AV" ]] || die "afl-fuzz in $ROOT does not run (try: chroot $ROOT afl-fuzz -h)"
log "AFL++: $AV"
echo "$AV" >"$ROOT/.virtfs-afl-version"
chroot_finish
