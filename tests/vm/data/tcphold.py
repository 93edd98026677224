#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# tcphold.py server ADDR PORT: accepts connections and keeps them open until killed.
# tcphold.py client ADDR PORT N: opens N connections one after the other (each must be
# accepted within 10 s), prints "N up", then starts one more connection without waiting for
# it and prints "extra started"; keeps everything open until killed.
import select
import socket
import sys
import time

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
held = []
if mode == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(512)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        held.append(c)
else:
    n = int(sys.argv[4])
    for i in range(n):
        held.append(socket.create_connection((addr, port), timeout=10))
    print(n, "up", flush=True)
    extra = socket.socket()
    extra.setblocking(False)
    try:
        extra.connect((addr, port))
    except BlockingIOError:
        pass
    held.append(extra)
    print("extra started", flush=True)
    while True:
        time.sleep(3600)
