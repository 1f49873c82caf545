#!/usr/bin/env python3
# rootless-confine.sh's host swapper: EXPORT OUTSIDE COUNTER. Turns EXPORT/d into a symlink to OUTSIDE and back in
# a loop (until killed) while the guest reads through it; every 200 swaps writes the count to COUNTER.
import os, sys, time
e, o, counter = sys.argv[1:]
d, parked, n = os.path.join(e, "d"), os.path.join(e, "d.parked"), 0
while True:
    try:
        os.rename(d, parked); os.symlink(o, d)
        time.sleep(0.002)
        os.unlink(d); os.rename(parked, d)
    except OSError:
        pass
    n += 1
    if n % 200 == 0:
        open(counter, "w").write("%d\n" % n)
    time.sleep(0.002)
