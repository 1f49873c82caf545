# Sourced by tools/e2e/*.sh: evaluates the guest's "HOSTCHECK: KIND REL ARG..." lines on the host.
# REL is relative to the export root; anything absolute or with ".." is refused (the guest is not trusted).
# Kinds (ARG is what the host must see):
#   sha256 REL HEX | owner REL UID:GID | mode REL OCTAL | size REL BYTES | links REL N
#   symlink REL TARGET | exists REL | absent REL | content REL TEXT (whole file, no newline)
#   mtime REL EPOCH | mtime_ns REL NS | type REL STAT-%F-TEXT | rdev REL MAJ,MIN
#   xattr REL NAME VALUE | noxattr REL NAME | count REL N (entries in a directory)
#   acl REL u::rw-,u:1000:rw-,g::r--,m::rw-,o::--- (system.posix_acl_access decoded, entries in stored order)
#   statfs_type REL HEX (f_type) | statfs_bytes REL BYTES (f_frsize * f_blocks, within 0.1%) | manifest REL MANIFEST (sha256sum -c in REL)
#   treediff REL LABPATH (diff -r against the lab chroot's LABPATH, which must be under /usr)
#   gitfsck REL COMMITS (git fsck passes; HEAD has COMMITS commits)
# Usage: hostcheck_eval EXPORT FILE PASS_FN FAIL_FN   (PASS_FN NAME; FAIL_FN NAME DETAIL)
# HOSTCHECK_MAPPED=1: the export is in QEMU's mapped-xattr format (rootless servers, issue 16): owner, mode,
#   type, rdev, symlink and acl are checked as the guest sees them, from the user.virtfs.* xattrs.

# hostcheck_guestview KIND FILE: owner|mode|type|rdev|symlink of FILE as a mapped-xattr server shows it to the guest
# (QEMU's local_lstat: each stored field replaces the host's; a stored symlink is a file holding the target), in
# the format stat -c %u:%g / %a / %F / %Hr,%Lr and readlink print.
hostcheck_guestview() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/guestview.py" "$1" "$2" 2>&1
}
hostcheck_safe_rel() { [[ -n "$1" && "$1" != /* && "$1" != *..* ]] || [[ "$1" == . ]]; }
hostcheck_eval() {
    local export=$1 file=$2 passfn=$3 failfn=$4 line kind rel rest a1 a2 f got name lab
    # a failing probe (stat of a missing file) is an answer, not a reason to stop: no errexit in here
    local -
    set +e +o pipefail
    lab="${VIRTFS_CACHE:-/var/cache/virtfs}/trixie"
    while IFS= read -r line; do
        line=${line#HOSTCHECK: }
        read -r kind rel rest <<<"$line"
        a1=${rest%% *}; a2=""; [[ "$rest" == *" "* ]] && a2=${rest#* }
        name="host-$kind:$rel"
        [[ "$kind" == xattr || "$kind" == noxattr ]] && name="$name:$a1"
        if ! hostcheck_safe_rel "$rel"; then "$failfn" "$name" "unsafe path from the guest"; continue; fi
        f="$export/$rel"
        if [[ "${HOSTCHECK_MAPPED:-0}" == 1 ]]; then
            case "$kind" in
                owner|mode|rdev|symlink) got=$(hostcheck_guestview "$kind" "$f") ;;&
                type) a1=$rest; got=$(hostcheck_guestview type "$f") ;;&
                owner|mode|rdev|symlink|type)
                    if [[ "$got" == "$a1" ]]; then "$passfn" "$name"; else "$failfn" "$name" "want '$a1', the guest's view on the host is '$got'"; fi
                    continue ;;
            esac
        fi
        local aclname=system.posix_acl_access
        [[ "${HOSTCHECK_MAPPED:-0}" == 1 ]] && aclname=user.virtfs.system.posix_acl_access
        case "$kind" in
            sha256)   got=$(sha256sum "$f" 2>&1 | cut -d' ' -f1) ;;
            owner)    got=$(stat -c %u:%g "$f" 2>&1) ;;
            mode)     got=$(stat -c %a "$f" 2>&1) ;;
            size)     got=$(stat -c %s "$f" 2>&1) ;;
            links)    got=$(stat -c %h "$f" 2>&1) ;;
            mtime)    got=$(stat -c %Y "$f" 2>&1) ;;
            mtime_ns) got=$(stat -c %.9Y "$f" 2>&1 | tr -d .) ;;
            type)     a1=$rest; got=$(stat -c %F "$f" 2>&1) ;;
            rdev)     got=$(stat -c '%Hr,%Lr' "$f" 2>&1) ;;
            symlink)  got=$(readlink "$f" 2>&1) ;;
            content)  a1=$rest; got=$(cat "$f" 2>&1) ;;
            exists)   a1=yes; got=$([[ -e "$f" || -L "$f" ]] && echo yes || echo no) ;;
            absent)   a1=yes; got=$([[ -e "$f" || -L "$f" ]] && echo no || echo yes) ;;
            xattr)    got=$(python3 -c 'import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())' "$f" "$a1" 2>&1)
                      a1=$a2 ;;
            noxattr)  got=$(python3 -c 'import os,sys; print("present" if sys.argv[2] in os.listxattr(sys.argv[1], follow_symlinks=False) else "absent")' "$f" "$a1" 2>&1)
                      a1=absent ;;
            acl)      got=$(python3 -c '
import os, struct, sys
raw = os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False)
tags = {1: "u", 2: "u", 4: "g", 8: "g", 0x10: "m", 0x20: "o"}
out = []
for off in range(4, len(raw), 8):
    tag, perm, who = struct.unpack_from("<HHI", raw, off)
    rwx = "".join(c if perm & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))
    out.append("%s:%s:%s" % (tags.get(tag, "?"), who if tag in (2, 8) else "", rwx))
print(",".join(out))' "$f" "$aclname" 2>&1) ;;
            count)    got=$(find "$f" -mindepth 1 -maxdepth 1 -printf x 2>&1 | wc -c) ;;
            statfs_type) got=$(stat -f -c %t "$f" 2>&1) ;;
            # f_blocks of ext4 moves by a few blocks between runs (reserved clusters): within 0.1%
            statfs_bytes) got=$(stat -f -c '%S %b' "$f" 2>&1 | awk -v w="$a1" '{ t = $1 * $2; d = t - w; if (d < 0) d = -d; if (w > 0 && d <= w / 1000) print w; else printf "%.0f\n", t }') ;;
            manifest) hostcheck_safe_rel "$a1" || [[ "$a1" == ../* && "$a1" != ../*..* ]] || { "$failfn" "$name" "unsafe manifest"; continue; }
                      got=$( (cd "$f" && sha256sum --quiet -c "$a1") >/dev/null 2>&1 && echo ok || echo mismatch); a1=ok ;;
            treediff) [[ "$a1" == /usr/* && "$a1" != *..* ]] || { "$failfn" "$name" "lab path must be under /usr"; continue; }
                      got=$(diff -r "$lab$a1" "$f" >/dev/null 2>&1 && echo same || echo differ); a1=same ;;
            gitfsck)  got=$(git -c safe.directory='*' -C "$f" fsck --strict >/dev/null 2>&1 && git -c safe.directory='*' -C "$f" rev-list --count HEAD 2>&1) ;;
            *) "$failfn" "$name" "unknown HOSTCHECK kind"; continue ;;
        esac
        if [[ "$got" == "$a1" ]]; then "$passfn" "$name"; else "$failfn" "$name" "want '$a1', host has '$got'"; fi
    done < <(grep -a '^HOSTCHECK: ' "$file" | tr -d '\r' || true)
}
