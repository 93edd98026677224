#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# bigtcp.py IFNAME SIZE: sets the device's gso_ipv4_max_size and gro_ipv4_max_size (BIG TCP)
# over rtnetlink, for an iproute2 too old to know them (`ip link set dev X gso_ipv4_max_size`).
import socket
import struct
import sys

IFLA_GSO_IPV4_MAX_SIZE = 63
IFLA_GRO_IPV4_MAX_SIZE = 64
RTM_NEWLINK = 16
NLM_F_REQUEST, NLM_F_ACK = 1, 4

idx = socket.if_nametoindex(sys.argv[1])
size = int(sys.argv[2])
attrs = b"".join(struct.pack("=HHI", 8, t, size) for t in (IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE))
body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, idx, 0, 0) + attrs
msg = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(270, 11, 1)  # SOL_NETLINK, NETLINK_EXT_ACK
s.send(msg)
reply = s.recv(4096)
err = struct.unpack("=i", reply[16:20])[0]
if err:
    # The extended ack's message attribute (NLMSGERR_ATTR_MSG = 1) after the echoed request.
    text = ""
    off = 20 + len(msg) if len(reply) > 20 + len(msg) else 20 + 16
    while off + 4 <= len(reply):
        alen, atype = struct.unpack("=HH", reply[off:off + 4])
        if alen < 4:
            break
        if atype == 1:
            text = reply[off + 4:off + alen].rstrip(b"\0").decode(errors="replace")
        off += (alen + 3) & ~3
    print(f"{sys.argv[1]}: setting BIG TCP sizes failed: errno {-err} {text}", file=sys.stderr)
    sys.exit(1)
