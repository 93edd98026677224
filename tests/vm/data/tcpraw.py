#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# tcpraw.py SRC DST DPORT FLAGS [SPORT SEQ]: sends one TCP segment (no payload, correct
# checksums) from a raw socket, with FLAGS a subset of "FSRPAU" (FIN SYN RST PSH ACK URG) or
# "none", from port SPORT (40000) with sequence number SEQ (1000).
import socket
import struct
import sys

src, dst, dport, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
bits = 0
for c in "" if flags == "none" else flags:
    bits |= {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32}[c]
sport = int(sys.argv[5]) if len(sys.argv) > 5 else 40000
seq = int(sys.argv[6]) if len(sys.argv) > 6 else 1000


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 2000 if bits & 16 else 0, 5 << 4, bits, 65535, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x4321, 0, 64, 6, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
s.sendto(ip + tcp, (dst, 0))
