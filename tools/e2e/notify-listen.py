#!/usr/bin/python3
# notify-listen.py ADDRESS LOG: a fake systemd for tools/e2e/service.sh: binds a datagram socket at ADDRESS (a path,
# or @name for the abstract namespace), writes LISTENING to LOG, then every message that arrives, one per line.
import socket, sys
addr, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
with open(log, "a", buffering=1) as f:
    f.write("LISTENING\n")
    while True:
        f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
