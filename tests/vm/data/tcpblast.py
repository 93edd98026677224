#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# tcpblast.py recv PORT          accept one connection, read until EOF, print the byte count
# tcpblast.py send HOST PORT MB  connect, send MB megabytes in large writes, close
import socket
import sys

if sys.argv[1] == "recv":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.listen(1)
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
    print(n, flush=True)
else:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    chunk = bytes(1 << 20)
    for _ in range(int(sys.argv[4])):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
