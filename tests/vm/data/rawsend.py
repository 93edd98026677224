#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# rawsend.py DST KIND...: sends one IPv4 packet per KIND to DST from a raw socket with
# IP_HDRINCL, and prints "KIND sent" or "KIND refused ERRNO" for each. KINDs: good (a valid
# header), ihl4 and ihl1 (IHL below 5), v5 (version 5). The payload is 40 bytes, protocol 253.
import socket
import struct
import sys

dst = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
for kind in sys.argv[2:]:
    ver, ihl = {"good": (4, 5), "ihl4": (4, 4), "ihl1": (4, 1), "v5": (5, 5)}[kind]
    payload = bytes(40)
    hdr = struct.pack("!BBHHHBBH4s4s", ver << 4 | ihl, 0, 20 + len(payload), 0x1234, 0, 64, 253, 0,
                      socket.inet_aton("0.0.0.0"), socket.inet_aton(dst))
    try:
        s.sendto(hdr + payload, (dst, 0))
        print(kind, "sent", flush=True)
    except OSError as e:
        print(kind, "refused", e.errno, flush=True)
