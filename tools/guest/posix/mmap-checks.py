#!/usr/bin/python3
# Part of tools/guest/posix.sh (runs in the guest, from the job dir). Not named mmap.py: Python puts the script's
# folder first on sys.path, so that name would hide the standard mmap module it imports.
# mmap-checks.py MODE PATH: mmap checks; prints "ok" or what went wrong.
import mmap, os, sys
mode, p = sys.argv[1], sys.argv[2]
def out(b): print('ok' if b else 'mismatch')
if mode == 'read':            # the file holds 'abc' * 4096: a shared read-only map sees it
    with open(p, 'rb') as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); out(m[:6] == b'abcabc' and len(m) == 12288)
elif mode == 'private':       # MAP_PRIVATE writes never reach the file
    with open(p, 'r+b') as f:
        m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE); m[0:3] = b'XYZ'; m.close()
    out(open(p, 'rb').read(3) == b'abc')
elif mode == 'write':         # MAP_SHARED write + msync, then read(2) sees it
    with open(p, 'r+b') as f:
        m = mmap.mmap(f.fileno(), 0); m[100:105] = b'HELLO'; m[-5:] = b'WORLD'; m.flush(); m.close()
    d = open(p, 'rb').read(); out(d[100:105] == b'HELLO' and d[-5:] == b'WORLD')
elif mode == 'extend':        # grow with ftruncate, then write through a new map
    with open(p, 'r+b') as f:
        os.ftruncate(f.fileno(), 65536); m = mmap.mmap(f.fileno(), 65536)
        m[65536 - 4:] = b'TAIL'; m.flush(); m.close()
    d = open(p, 'rb').read(); out(len(d) == 65536 and d.endswith(b'TAIL'))
elif mode == 'sees-write':    # write(2) then an existing map sees it
    with open(p, 'r+b') as f:
        m = mmap.mmap(f.fileno(), 0); os.pwrite(f.fileno(), b'PWRITE', 200); out(m[200:206] == b'PWRITE')
