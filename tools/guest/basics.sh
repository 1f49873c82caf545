#!/bin/bash
# The basics suite (issue 2's acceptance: mount, read, create, write, rename, links, permissions as guest users),
# run INSIDE the guest on the mounted share (tools/e2e/basics.sh runs it through tools/vm.sh --run). One line per
# check:
#   PASS: name
#   FAIL: name (detail)
# and facts only the host can verify:
#   HOSTCHECK: sha256 REL HEX | owner REL UID:GID | mode REL OCTAL | exists REL | absent REL
#              | links REL N | symlink REL TARGET | size REL BYTES
# REL is relative to the export root. The host pre-populates the export (tools/e2e/basics.sh):
#   hello.txt ("hello from the host"), sub/nested/deep.txt ("deep"), many/f000..f319 (320 files),
#   secret.txt (root:root 0600, "secret"), MANIFEST (sha256sum lines for the files above + blob.bin),
#   blob.bin (1 MiB of random bytes), rootdir/ (root:root 0755).
# Usage: basics.sh [MOUNTPOINT]   (default $VIRTFS_MNT or /mnt). Exit status: number of FAILs (max 100).
set -u
M="${1:-${VIRTFS_MNT:-/mnt}}"
W="$M/basics-work"          # everything this suite creates lives here
U1=1000 U2=1001
# pass, fail, check (60 s bound), expect, errno_is, hostcheck
. "$(dirname "$0")/lib.sh"

echo "basics: mount point $M ($(awk -v m="$M" '$2 == m { print $3 " " $4 }' /proc/mounts))"

# --- the mount itself ---
fstype=$(awk -v m="$M" '$2 == m { print $3 }' /proc/mounts)
expect mount-type "${VIRTFS_FSTYPE:-9p}" "$fstype"
if [[ "$fstype" == 9p ]]; then
    check mount-opts-9p2000L grep -E " $M 9p .*(version=9p2000.L|trans=virtio)" /proc/mounts
fi

# --- reading what the host put there ---
expect read-host-file "hello from the host" "$(cat "$M/hello.txt" 2>&1)"
expect read-nested-file "deep" "$(cat "$M/sub/nested/deep.txt" 2>&1)"
check host-checksums sh -c "cd '$M' && sha256sum --quiet -c MANIFEST"
expect stat-size "19" "$(stat -c %s "$M/hello.txt" 2>&1)"
expect list-300-entries 320 "$(ls -1 "$M/many" 2>/dev/null | wc -l)"
expect list-names-complete "$(seq -f 'f%03g' 0 319 | tr '\n' ' ')" "$(ls -1 "$M/many" 2>/dev/null | sort | tr '\n' ' ')"
expect list-long-300 320 "$(ls -l "$M/many" 2>/dev/null | grep -c '^-')"
check find-tree sh -c "find '$M/sub' | grep -q 'nested/deep.txt'"

# --- create, append, truncate, chmod ---
rm -rf "$W" 2>/dev/null
check mkdir mkdir "$W"
check chmod-dir-0777 sh -c "chmod 0777 '$W' && [ \"\$(stat -c %a '$W')\" = 777 ]"
printf 'one\n' >"$W/file.txt" 2>/dev/null
expect create-write "one" "$(cat "$W/file.txt" 2>&1)"
printf 'two\n' >>"$W/file.txt" 2>/dev/null
expect append "one two" "$(cat "$W/file.txt" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
cp "$W/file.txt" "$W/appended.txt" 2>/dev/null
hostcheck size basics-work/appended.txt 8
truncate -s 3 "$W/file.txt" 2>/dev/null
expect truncate-shrink "3:one" "$(stat -c %s "$W/file.txt" 2>&1):$(cat "$W/file.txt" 2>&1)"
truncate -s 10000 "$W/file.txt" 2>/dev/null
expect truncate-grow "10000" "$(stat -c %s "$W/file.txt" 2>&1)"
expect truncate-grow-zeros 0 "$(tail -c +4 "$W/file.txt" 2>/dev/null | tr -d '\0' | wc -c)"
: >"$W/file.txt" 2>/dev/null
expect truncate-on-open 0 "$(stat -c %s "$W/file.txt" 2>&1)"
printf 'abcdefgh' >"$W/offset.txt"; printf 'XY' | dd of="$W/offset.txt" bs=1 seek=3 conv=notrunc status=none 2>/dev/null
expect write-at-offset "abcXYfgh" "$(cat "$W/offset.txt" 2>&1)"
chmod 0640 "$W/offset.txt" 2>/dev/null
expect chmod-file "640" "$(stat -c %a "$W/offset.txt" 2>&1)"
printf 'm\n' >"$W/mode640.txt"; chmod 0640 "$W/mode640.txt"
hostcheck mode basics-work/mode640.txt 640
chmod 0755 "$W/offset.txt" 2>/dev/null
expect chmod-exec "755" "$(stat -c %a "$W/offset.txt" 2>&1)"
touch -m -d @1000000000 "$W/offset.txt" 2>/dev/null
expect set-mtime "1000000000" "$(stat -c %Y "$W/offset.txt" 2>&1)"
errno_is create-excl-exists EEXIST "use Fcntl; sysopen(my \$f, '$W/offset.txt', O_CREAT|O_EXCL|O_WRONLY)"
errno_is open-missing ENOENT "open(my \$f, '<', '$W/no-such-file')"

# --- mkdir -p, rename, rmdir, unlink ---
check mkdir-p mkdir -p "$W/a/b/c/d"
check mkdir-p-exists test -d "$W/a/b/c/d"
mkdir -m 0750 "$W/m750" 2>/dev/null
expect mkdir-mode "750" "$(stat -c %a "$W/m750" 2>&1)"
printf 'r\n' >"$W/a/b/c/d/leaf.txt"
check rename-file sh -c "mv '$W/offset.txt' '$W/renamed.txt' && [ ! -e '$W/offset.txt' ] && [ \"\$(cat '$W/renamed.txt')\" = abcXYfgh ]"
hostcheck absent basics-work/offset.txt
printf 'new\n' >"$W/replacer.txt"
check rename-replace sh -c "mv -f '$W/replacer.txt' '$W/renamed.txt' && [ \"\$(cat '$W/renamed.txt')\" = new ]"
check rename-across-dirs sh -c "mv '$W/renamed.txt' '$W/a/b/moved.txt' && [ -f '$W/a/b/moved.txt' ]"
check rename-dir sh -c "mv '$W/a' '$W/z' && [ \"\$(cat '$W/z/b/c/d/leaf.txt')\" = r ] && [ ! -e '$W/a' ]"
mkdir -p "$W/rdir" && printf 'in\n' >"$W/rdir/inner.txt"
check rename-dir-persist mv "$W/rdir" "$W/rdir2"
hostcheck exists basics-work/rdir2/inner.txt
hostcheck absent basics-work/rdir
errno_is rmdir-not-empty ENOTEMPTY "rmdir('$W/z/b/c/d')"
check rmdir-empty sh -c "mkdir '$W/empty' && rmdir '$W/empty' && [ ! -e '$W/empty' ]"
check unlink sh -c "rm '$W/z/b/c/d/leaf.txt' && [ ! -e '$W/z/b/c/d/leaf.txt' ]"
errno_is unlink-missing ENOENT "unlink('$W/z/b/c/d/leaf.txt')"
errno_is rmdir-file ENOTDIR "rmdir('$W/z/b/moved.txt')"
check rm-rf-tree sh -c "rm -rf '$W/z' && [ ! -e '$W/z' ]"
hostcheck absent basics-work/z

# --- symlinks ---
mkdir -p "$W/ln"; printf 'target\n' >"$W/ln/target.txt"
check symlink ln -s target.txt "$W/ln/link"
expect readlink "target.txt" "$(readlink "$W/ln/link" 2>&1)"
expect follow-symlink "target" "$(cat "$W/ln/link" 2>&1)"
expect lstat-symlink "symbolic link" "$(stat -c %F "$W/ln/link" 2>&1)"
hostcheck symlink basics-work/ln/link target.txt
ln -s ../ln "$W/ln/dirlink" 2>/dev/null
expect symlink-to-dir "target" "$(cat "$W/ln/dirlink/target.txt" 2>&1)"
ln -s nowhere "$W/ln/dangling" 2>/dev/null
check dangling-symlink sh -c "[ \"\$(readlink '$W/ln/dangling')\" = nowhere ] && ! [ -e '$W/ln/dangling' ]"

# --- hard links ---
printf 'hard\n' >"$W/ln/h1"
check hardlink ln "$W/ln/h1" "$W/ln/h2"
expect link-count-2 "2" "$(stat -c %h "$W/ln/h1" 2>&1)"
ln "$W/ln/h1" "$W/ln/h3" 2>/dev/null
expect link-count-3 "3:3" "$(stat -c %h "$W/ln/h1" 2>&1):$(stat -c %h "$W/ln/h3" 2>&1)"
expect hardlink-same-inode "$(stat -c %i "$W/ln/h1" 2>&1)" "$(stat -c %i "$W/ln/h3" 2>&1)"
printf 'more\n' >>"$W/ln/h2"
expect hardlink-shared-data "hard more" "$(cat "$W/ln/h3" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
rm -f "$W/ln/h1"
expect link-count-after-unlink "2" "$(stat -c %h "$W/ln/h2" 2>&1)"
hostcheck links basics-work/ln/h2 2
errno_is hardlink-dir EPERM "link('$W/ln', '$W/ln-hard')"

# --- 8 MiB file, checksummed on both sides ---
if dd if=/dev/urandom of="$W/big.bin" bs=1M count=8 conv=fsync status=none 2>/dev/null; then
    sum=$(sha256sum "$W/big.bin" | cut -d' ' -f1)
    expect big-file-size 8388608 "$(stat -c %s "$W/big.bin" 2>&1)"
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
    expect big-file-readback "$sum" "$(sha256sum "$W/big.bin" 2>&1 | cut -d' ' -f1)"
    hostcheck sha256 basics-work/big.bin "$sum"
else
    fail big-file-write "dd failed"
fi
check copy-host-blob sh -c "cp '$M/blob.bin' '$W/blob.copy' && cmp '$M/blob.bin' '$W/blob.copy'"

# --- many entries created from the guest ---
mkdir -p "$W/gen"
i=0; while (( i < 310 )); do : >"$W/gen/g$i" || break; i=$((i + 1)); done
expect create-310-files 310 "$(ls -1 "$W/gen" 2>/dev/null | wc -l)"
hostcheck exists basics-work/gen/g309

# --- df / statfs ---
check df sh -c "df -k '$M' | awk 'NR==2 { exit !(\$2 > 0) }'"
check statfs sh -c "[ \"\$(stat -f -c %b '$M')\" -gt 0 ]"

# --- permissions and ownership as guest users ---
mkdir -p "$W/users" && chmod 0777 "$W/users"
check user-create setpriv --reuid=$U1 --regid=$U1 --clear-groups -- sh -c "printf 'mine\n' >'$W/users/u1.txt'"
expect user-owner "$U1:$U1" "$(stat -c %u:%g "$W/users/u1.txt" 2>&1)"
hostcheck owner basics-work/users/u1.txt $U1:$U1
check user-mkdir setpriv --reuid=$U1 --regid=$U1 --clear-groups -- mkdir "$W/users/u1dir" "$W/users/u1keep"
expect user-mkdir-owner "$U1:$U1" "$(stat -c %u:%g "$W/users/u1keep" 2>&1)"
hostcheck owner basics-work/users/u1keep $U1:$U1
check user-read-world-readable setpriv --reuid=$U1 --regid=$U1 --clear-groups -- cat "$M/hello.txt"
errno_is user-cannot-read-0600 EACCES "use POSIX; POSIX::setgid($U1); POSIX::setuid($U1); open(my \$f, '<', '$M/secret.txt')"
errno_is user-cannot-write-rootdir EACCES "use POSIX; POSIX::setgid($U1); POSIX::setuid($U1); open(my \$f, '>', '$M/rootdir/x')"
hostcheck absent rootdir/x
check user-chmod-own setpriv --reuid=$U1 --regid=$U1 --clear-groups -- chmod 0600 "$W/users/u1.txt"
errno_is other-user-cannot-read EACCES "use POSIX; POSIX::setgid($U2); POSIX::setuid($U2); open(my \$f, '<', '$W/users/u1.txt')"
check root-chown sh -c "chown $U2:$U2 '$W/users/u1dir' && [ \"\$(stat -c %u:%g '$W/users/u1dir')\" = $U2:$U2 ]"
hostcheck owner basics-work/users/u1dir $U2:$U2
errno_is user-cannot-chown EPERM "use POSIX; POSIX::setgid($U1); POSIX::setuid($U1); chown($U1, $U1, '$W/users/u1dir')"

guest_summary basics
guest_exit
