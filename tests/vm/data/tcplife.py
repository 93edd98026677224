#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# tcplife.py server ADDR PORT: serves connections one by one: reads a line, answers "ok",
# then reads until the peer closes (or resets), and closes.
# tcplife.py client ADDR PORT SPORT: connects from port SPORT, sends a line, reads the answer,
# prints "open", then takes one command from standard input: "fin" closes normally and waits
# for the server's close; "rst" aborts with an RST (SO_LINGER 0). Prints "closed".
import socket
import struct
import sys

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(8)
    while True:
        c, _ = ls.accept()
        try:
            c.recv(100)
            c.sendall(b"ok\n")
            while c.recv(100):
                pass
        except OSError:
            pass
        c.close()
else:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[4])))
    s.settimeout(10)
    s.connect((addr, port))
    s.sendall(b"hello\n")
    s.recv(100)
    print("open", flush=True)
    cmd = sys.stdin.readline().strip()
    if cmd == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    else:
        s.shutdown(socket.SHUT_WR)
        while s.recv(100):
            pass
        s.close()
    print("closed", flush=True)
