#!/usr/bin/env bash
# Issue 16: an export written through QEMU's built-in 9p server in security_model=mapped-xattr reads the same through
# our rootless backend (vhost-user-9p --shared-dir --security-model mapped-xattr), and the other way round.
# Each direction: a guest on the first server makes a small tree (owners, modes, device nodes, a fifo, a symlink, a
# hard link, a directory) and prints what it sees; a second guest on the other server prints the same tree; the two
# listings must be identical. Both servers run as the unprivileged owner of the export (user virtfs).
#
# Usage: tools/e2e/crosscompat.sh [--no-build] [--log-dir DIR] [--timeout SEC]
# Prints "PASS: crosscompat[FROM-to-TO] name" / "FAIL: ..." lines. Exit 0 all passed, 1 a failure, 3 cannot run here.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"
LOG_DIR="" VM_ARGS=() TIMEOUT=400
while (( $# )); do
    case "$1" in
        --no-build) VM_ARGS+=(--no-build); shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "crosscompat: unknown option $1" >&2; exit 2 ;;
    esac
done
need_root crosscompat "the lab boots QEMU in a chroot"
e2e_parent virtfs-cross

# The tree, made as guest root (9p access=user: the server is asked to give each object its owner).
MAKE='set -e; mkdir t; cd t
mkdir d; chmod 0750 d; chown 1234:5678 d
printf "hello\n" >d/f; chmod 0640 d/f; chown 1000:100 d/f
ln d/f hard
mknod chr c 4 64; chmod 0620 chr; chown 0:5 chr
mknod blk b 8 1; chmod 0660 blk; chown 0:6 blk
mkfifo fifo; chmod 0600 fifo; chown 1000:1000 fifo
ln -s d/f link; chown -h 1000:1000 link
ln -s /nowhere/at/all dangling
touch -h -d @1500000000 link; touch -d @1400000000 d/f
echo MADE'
# What the guest sees, in a stable order: every field the two servers must agree on.
LIST='cd t; find . -mindepth 1 | LC_ALL=C sort | while read -r n; do
  stat -c "%n type=%F mode=%a uid=%u gid=%g rdev=%Hr,%Lr size=%s nlink=%h mtime=%Y" "$n"
  [ -L "$n" ] && echo "$n -> $(readlink "$n")"
done
echo "content-through-link: $(cat link)"
echo LISTED'

run_vm() { # SERVER EXPORT NAME CMD
    timeout --kill-after=20 "$TIMEOUT" "$TOOLS/vm.sh" --server "$1" --share "$2" --log-dir "$LOG_DIR/$3" \
        --timeout $(( TIMEOUT - 30 )) "${VM_ARGS[@]}" --run "$4" >"$LOG_DIR/$3.out" 2>"$LOG_DIR/$3.err"
}

direction() { # FROM TO
    local from=$1 to=$2 label="$1-to-$2" e="$PARENT/$1-to-$2" rc
    LABEL="crosscompat[$label]"
    mkdir -m 0755 "$e"; chown virtfs:virtfs "$e"
    set +e
    run_vm "$from" "$e" "$label-make" "( $MAKE ) && ( $LIST )"; rc=$?
    set -e
    if (( rc == 3 )); then grep -h 'NEEDS:' "$LOG_DIR/$label-make.err" >&2; exit 3; fi
    grep -aq '^MADE' "$LOG_DIR/$label-make.out" && pass "tree-made-on-$from" \
        || { fail "tree-made-on-$from" "vm.sh exit $rc; see $LOG_DIR/$label-make.*"; tail -n 20 "$LOG_DIR/$label-make.out" >&2; return; }
    set +e
    run_vm "$to" "$e" "$label-read" "$LIST"; rc=$?
    set -e
    grep -aq '^LISTED' "$LOG_DIR/$label-read.out" && pass "tree-listed-on-$to" \
        || { fail "tree-listed-on-$to" "vm.sh exit $rc"; tail -n 20 "$LOG_DIR/$label-read.out" >&2; return; }
    local a="$LOG_DIR/$label-make.list" b="$LOG_DIR/$label-read.list"
    sed -n '/^\.\//p; /^content-through-link:/p' "$LOG_DIR/$label-make.out" | tr -d '\r' >"$a"
    sed -n '/^\.\//p; /^content-through-link:/p' "$LOG_DIR/$label-read.out" | tr -d '\r' >"$b"
    # Each entry on its own, so a difference names the object and the field.
    local name want got
    for name in d d/f hard chr blk fifo link dangling; do
        want="$(grep -a "^\./$name type=" "$a" || true)"; got="$(grep -a "^\./$name type=" "$b" || true)"
        if [[ -n "$want" && "$want" == "$got" ]]; then pass "same-$name"
        else fail "same-$name" "$from: '$want' / $to: '$got'"; fi
    done
    for name in link dangling; do
        want="$(grep -a "^\./$name -> " "$a" || true)"; got="$(grep -a "^\./$name -> " "$b" || true)"
        [[ -n "$want" && "$want" == "$got" ]] && pass "same-target-$name" || fail "same-target-$name" "'$want' / '$got'"
    done
    want="$(grep -a '^content-through-link:' "$a" || true)"; got="$(grep -a '^content-through-link:' "$b" || true)"
    [[ "$want" == "content-through-link: hello" && "$want" == "$got" ]] && pass "content-through-link" \
        || fail "content-through-link" "'$want' / '$got'"
    # What each made on the host: nothing special, nothing with the guest's owner, the guest's view in xattrs.
    local special
    special="$(find "$e/t" ! -type f ! -type d -printf '%p %y\n' | head -n 3)"
    [[ -z "$special" ]] && pass "host-holds-only-files-and-dirs" || fail "host-holds-only-files-and-dirs" "$special"
    local owners
    owners="$(find "$e/t" -printf '%u\n' | sort -u | tr '\n' ' ')"
    [[ "$owners" == "virtfs " ]] && pass "host-owner-is-the-serving-user" || fail "host-owner-is-the-serving-user" "$owners"
    local stored
    stored="$(python3 -c 'import os,struct,sys; print(oct(struct.unpack("<I", os.getxattr(sys.argv[1], "user.virtfs.mode"))[0]))' "$e/t/chr" 2>&1)"
    [[ "$stored" == 0o20620 ]] && pass "host-xattr-format" || fail "host-xattr-format" "user.virtfs.mode of chr: $stored"
}

direction builtin-mapped virtfs-rootless
direction virtfs-rootless builtin-mapped

(( OWN_LOGS )) || echo "crosscompat: logs in $LOG_DIR" >&2
LABEL=crosscompat
e2e_summary
