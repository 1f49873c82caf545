#!/usr/bin/python3
# Part of tools/guest/posix.sh (runs in the guest, from the job dir).
# utimensat.py PATH ATIME MTIME: utimensat(AT_FDCWD, PATH, times, 0) where each time is SEC[.NSEC], "now"
# (UTIME_NOW) or "omit" (UTIME_OMIT); prints "ok" or the errno name. utimensat.py -g PATH: "atime_ns mtime_ns".
import ctypes, os, sys, errno
if sys.argv[1] == '-g':
    s = os.stat(sys.argv[2]); print(s.st_atime_ns, s.st_mtime_ns); sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure): _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]
def ts(v):
    if v == 'now': return TS(0, (1 << 30) - 1)
    if v == 'omit': return TS(0, (1 << 30) - 2)
    s, _, n = v.partition('.'); return TS(int(s), int(n or 0))
times = (TS * 2)(ts(sys.argv[2]), ts(sys.argv[3]))
if libc.utimensat(-100, sys.argv[1].encode(), times, 0) != 0:
    print(errno.errorcode[ctypes.get_errno()]); sys.exit(1)
print('ok')
