#!/usr/bin/python3
# guestview.py KIND FILE: owner|mode|type|rdev|symlink of FILE as a mapped-xattr server shows it to the guest
# (QEMU's local_lstat: each stored user.virtfs.* field replaces the host's; a stored symlink is a file holding the
# target), in the format stat -c %u:%g / %a / %F / %Hr,%Lr and readlink print. Used by tools/e2e/hostcheck.sh.
import os, stat, struct, sys
kind, f = sys.argv[1], sys.argv[2]
st = os.lstat(f)
uid, gid, mode, rdev = st.st_uid, st.st_gid, st.st_mode, st.st_rdev
def stored(name, fmt, default):
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return default
    try:
        v = os.getxattr(f, "user.virtfs." + name, follow_symlinks=False)
    except OSError:
        return default
    return struct.unpack(fmt, v)[0] if len(v) == struct.calcsize(fmt) else default
uid, gid, mode, rdev = stored("uid", "<I", uid), stored("gid", "<I", gid), stored("mode", "<I", mode), stored("rdev", "<Q", rdev)
if kind == "owner":
    print("%d:%d" % (uid, gid))
elif kind == "mode":
    print("%o" % stat.S_IMODE(mode))
elif kind == "rdev":
    print("%d,%d" % (os.major(rdev), os.minor(rdev)))
elif kind == "type":
    names = {stat.S_IFDIR: "directory", stat.S_IFLNK: "symbolic link", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket",
             stat.S_IFCHR: "character special file", stat.S_IFBLK: "block special file"}
    t = stat.S_IFMT(mode)
    print(("regular empty file" if st.st_size == 0 else "regular file") if t == stat.S_IFREG else names.get(t, "unknown"))
elif kind == "symlink":
    if stat.S_ISLNK(st.st_mode):
        print(os.readlink(f))
    elif stat.S_ISLNK(mode):
        sys.stdout.write(open(f, "rb").read().decode("utf-8", "replace") + "\n")
    else:
        print("not a symlink")
