# The part tools/lab.sh, tools/lab-bookworm.sh and tools/lab-fuzz.sh share: a cached Debian minbase chroot under
# $VIRTFS_CACHE, rebuilt only when the script that makes it (or this file, or a named input) changed. Sourced by
# bash under `set -euo pipefail`:
#
#   source "$HERE/lib/chroot.sh"
#   CHROOT_RELEASE=trixie ...             # optional, before chroot_setup: see below
#   chroot_setup NAME WHAT "$@"          # NAME: the chroot's folder in the cache (bookworm, fuzz); WHAT: the prefix
#                                        # of its messages (lab-bookworm); parses --force, --check, --help
#   chroot_ready() { [[ -x "$ROOT/..." ]]; }   # what a finished chroot holds, beside the stamp
#   chroot_start                          # --check answers here; else root, the lock, debootstrap, apt sources
#   { apt steps in "${INCHROOT[@]}"; } >"$(chroot_apt_log)" 2>&1 || chroot_apt_failed
#   ... checks of the result ...
#   chroot_finish
#
# Globals it sets: CACHE, ROOT, STAMP, LOCK, HASH, MIRROR, INCHROOT (the command prefix that runs in the chroot
# with a clean environment), APT (apt-get without prompts or recommends), START.
# Optional inputs (set before chroot_setup):
#   CHROOT_RELEASE  the Debian release (default bookworm); its -updates suite is always in the sources
#   CHROOT_SUITES   more suites for the sources (e.g. "trixie-backports")
#   CHROOT_INPUTS   more files whose change rebuilds the chroot (e.g. the guest's init script)
#   CHROOT_STAMP, CHROOT_LOCK   other paths for the stamp and the lock (the trixie lab keeps its historic ones,
#                   which tools/vm.sh's shared lock names)
#   CHROOT_ENV      more VAR=value words for INCHROOT's environment

# chroot_setup NAME WHAT ARGS...: the paths, the messages and the command line (the caller's header comment, lines 2
# to the line before `set -euo pipefail`, is its --help).
chroot_setup() {
    CHROOT_NAME=$1 CHROOT_WHAT=$2; shift 2
    CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
    CHROOT_RELEASE="${CHROOT_RELEASE:-bookworm}"
    ROOT="$CACHE/$CHROOT_NAME"
    STAMP="${CHROOT_STAMP:-$CACHE/$CHROOT_NAME.stamp}"
    LOCK="${CHROOT_LOCK:-$CACHE/.lock-$CHROOT_NAME}"
    FORCE=0 CHECK=0
    local a
    for a in "$@"; do
        case "$a" in
            --force) FORCE=1 ;;
            --check) CHECK=1 ;;
            -h|--help) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d'; exit 0 ;;
            *) die "unknown argument: $a" ;;
        esac
    done
    # The stamp is the hash of the script, this file and the named inputs: a change to one rebuilds the chroot once.
    local f
    for f in ${CHROOT_INPUTS:-}; do [[ -f "$f" ]] || die "missing $f"; done
    # shellcheck disable=SC2086 # CHROOT_INPUTS is a list of paths without spaces
    HASH="$(cat "$0" "${BASH_SOURCE[0]}" ${CHROOT_INPUTS:-} | sha256sum | cut -d' ' -f1)"
}
log() { printf '%s: %s\n' "$CHROOT_WHAT" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$CHROOT_WHAT" "$*" >&2; exit 2; }
need() { printf '%s: NEEDS: %s\n' "$CHROOT_WHAT" "$*" >&2; exit 3; }

up_to_date() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] && chroot_ready; }

# The Debian mirror: VIRTFS_MIRROR, else whatever the host's apt uses (so nothing here names a host); one-line
# "deb [opts] URI suite" and deb822 "URIs: URI" sources.
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

# chroot_start: with --check, exit 0 when up to date and 1 otherwise; without --force, exit 0 when up to date.
# Else (as root, under the lock, which a second run waits for) debootstrap the release once (kept across input
# changes: only the caller's steps rerun), bind /proc /sys /dev for the apt steps (undone on exit), and write the apt
# sources and the no-docs dpkg rule.
chroot_start() {
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
    CHROOT_MOUNTS=()
    trap chroot_unmount EXIT
    trap 'exit 130' INT TERM

    MIRROR="$(mirror)" || need "a Debian mirror: none found in /etc/apt/sources.list*; set VIRTFS_MIRROR=<debian mirror URL>"
    log "mirror: $MIRROR"
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap on the host"
        # (the lock timeout: two of the chroot scripts may get here at once on a new machine)
        timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq \
            || need "network access to the Debian registry (apt-get update failed)"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -qq debootstrap >/dev/null \
            || need "the debootstrap package (apt-get install debootstrap failed)"
    fi
    [[ -f "/usr/share/debootstrap/scripts/$CHROOT_RELEASE" ]] \
        || need "a debootstrap that knows $CHROOT_RELEASE (Debian 12's 1.0.128 knows trixie)"

    if [[ ! -f "$ROOT/.virtfs-debootstrap-ok" ]]; then
        log "debootstrap --variant=minbase $CHROOT_RELEASE (about a minute)"
        rm -rf "$ROOT"
        timeout 1200 debootstrap --variant=minbase "$CHROOT_RELEASE" "$ROOT" "$MIRROR" \
            >"$CACHE/$CHROOT_NAME-debootstrap.log" 2>&1 \
            || { tail -n 20 "$CACHE/$CHROOT_NAME-debootstrap.log" >&2
                 need "network access to the Debian registry at $MIRROR (log: $CACHE/$CHROOT_NAME-debootstrap.log)"; }
        touch "$ROOT/.virtfs-debootstrap-ok"
    fi

    chroot_bind /proc "$ROOT/proc"
    chroot_bind /sys "$ROOT/sys"
    chroot_bind /dev "$ROOT/dev"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    # shellcheck disable=SC2206 # CHROOT_ENV is a list of VAR=value words
    INCHROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
              ${CHROOT_ENV:-})
    local suite
    for suite in "$CHROOT_RELEASE" "$CHROOT_RELEASE-updates" ${CHROOT_SUITES:-}; do
        echo "deb $MIRROR $suite main"
    done >"$ROOT/etc/apt/sources.list"
    # No docs, no man pages, no locales: smaller and faster.
    cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-virtfs-nodoc" <<'EOS'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOS
    APT=(apt-get -y -q -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false)
}
chroot_bind() { mkdir -p "$2"; mount --bind "$1" "$2"; CHROOT_MOUNTS+=("$2"); }
chroot_unmount() { local i; for (( i=${#CHROOT_MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${CHROOT_MOUNTS[$i]}" 2>/dev/null || true; done; }

# chroot_apt_failed: what a failed apt step says (its log's tail) before "cannot run here".
chroot_apt_failed() {
    tail -n 20 "$CACHE/$CHROOT_NAME-apt.log" >&2
    need "apt-get in the $CHROOT_NAME chroot to succeed (log: $CACHE/$CHROOT_NAME-apt.log)"
}
# The log the caller's apt steps write to: { steps; } >"$(chroot_apt_log)" 2>&1 || chroot_apt_failed
chroot_apt_log() { echo "$CACHE/$CHROOT_NAME-apt.log"; }

# chroot_finish: the stamp (the chroot is complete) and how long it took.
chroot_finish() {
    echo "$HASH" >"$STAMP"
    log "ready in $(( $(date +%s) - START ))s: $ROOT"
}
