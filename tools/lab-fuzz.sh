#!/usr/bin/env bash
# Provisions AFL++ for tools/fuzz.sh outside the repo and keeps it cached (issue 13):
#
#   $VIRTFS_CACHE/fuzz        Debian bookworm chroot (minbase) with afl++ 4.04c unpacked into it and the
#                             libraries afl-fuzz needs (libpython3.11); nothing is installed on the host
#   $VIRTFS_CACHE/fuzz.stamp  hash of this file; rebuild only on change
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

CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
ROOT="$CACHE/fuzz"
STAMP="$CACHE/fuzz.stamp"
LOCK="$CACHE/.lock-fuzz"

log() { printf 'lab-fuzz: %s\n' "$*" >&2; }
die() { printf 'lab-fuzz: ERROR: %s\n' "$*" >&2; exit 2; }
need() { printf 'lab-fuzz: NEEDS: %s\n' "$*" >&2; exit 3; }

FORCE=0 CHECK=0
for a in "$@"; do
    case "$a" in
        --force) FORCE=1 ;;
        --check) CHECK=1 ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $a" ;;
    esac
done

HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
up_to_date() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$ROOT/usr/bin/afl-fuzz" && -f "$ROOT/.virtfs-afl-version" ]]
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
command -v debootstrap >/dev/null || need "debootstrap on the host (apt-get install debootstrap)"
[[ -f /usr/share/debootstrap/scripts/bookworm ]] || need "a debootstrap that knows bookworm"

if [[ ! -f "$ROOT/.virtfs-debootstrap-ok" ]]; then
    log "debootstrap --variant=minbase bookworm (about a minute)"
    rm -rf "$ROOT"
    timeout 1200 debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$CACHE/fuzz-debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/fuzz-debootstrap.log" >&2
             need "network access to the Debian registry at $MIRROR (log: $CACHE/fuzz-debootstrap.log)"; }
    touch "$ROOT/.virtfs-debootstrap-ok"
fi

bind() { mkdir -p "$2"; mount --bind "$1" "$2"; MOUNTS+=("$2"); }
bind /proc "$ROOT/proc"
bind /sys "$ROOT/sys"
bind /dev "$ROOT/dev"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
INCHROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
cat >"$ROOT/etc/apt/sources.list" <<EOS
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
EOS
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-virtfs-nodoc" <<'EOS'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOS
APT=(apt-get -y -q -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false)
log "afl++ (bookworm): runtime libraries with apt, the package itself unpacked with dpkg -x"
{
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" update &&
    timeout 900 "${INCHROOT[@]}" "${APT[@]}" install libpython3.11 &&
    rm -f "$ROOT"/tmp/afl++_*.deb &&
    timeout 600 "${INCHROOT[@]}" sh -c 'cd /tmp && apt-get download afl++' &&
    "${INCHROOT[@]}" sh -c 'dpkg -x /tmp/afl++_*.deb / && rm -f /tmp/afl++_*.deb' &&
    "${INCHROOT[@]}" apt-get clean
} >"$CACHE/fuzz-apt.log" 2>&1 || { tail -n 20 "$CACHE/fuzz-apt.log" >&2
    need "apt-get in the fuzz chroot to succeed (log: $CACHE/fuzz-apt.log)"; }

AV="$("${INCHROOT[@]}" afl-fuzz -h 2>&1 | grep -o 'afl-fuzz++[0-9.a-z]*' | head -n1 || true)"
[[ -n "$AV" ]] || die "afl-fuzz in $ROOT does not run (try: chroot $ROOT afl-fuzz -h)"
log "AFL++: $AV"
echo "$AV" >"$ROOT/.virtfs-afl-version"
echo "$HASH" >"$STAMP"
log "ready in $(( $(date +%s) - START ))s: $ROOT"
