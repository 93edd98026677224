# SPDX-License-Identifier: GPL-2.0
"""A minimal nfnetlink_queue listener: binds queue QUEUE, prints "bound", then for each packet
prints "queue QUEUE packet ID hook HOOK" and accepts it (NF_ACCEPT), COUNT packets (0: until
killed). Usage: nfq.py QUEUE COUNT"""
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2

queue, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.bind((0, 0))
seq = 0


def attr(kind, data):
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n % 4)


def request(msg, payload):
    """Sends a queue message and waits for its acknowledgement; returns the error (0: ok)."""
    global seq
    seq += 1
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + payload
    head = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
    sock.send(head + body)
    while True:
        data = sock.recv(65536)
        _, kind, _, s, _ = struct.unpack("=IHHII", data[:16])
        if kind == NLMSG_ERROR and s == seq:
            return struct.unpack("=i", data[16:20])[0]


# Bind (NFQNL_CFG_CMD_BIND for AF_INET), then copy whole packets.
err = request(NFQNL_MSG_CONFIG, attr(1, struct.pack("!BBH", 1, 0, socket.AF_INET)))
err = err or request(NFQNL_MSG_CONFIG, attr(2, struct.pack("!IB", 0xFFFF, 2)))
if err:
    sys.exit(f"bind queue {queue}: error {err}")
print("bound", flush=True)
seen = 0
while count == 0 or seen < count:
    data = sock.recv(65536)
    length, kind = struct.unpack("=IH", data[:6])
    if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
        continue
    off, pid, hook = 20, None, None
    while off + 4 <= length:
        alen, akind = struct.unpack("=HH", data[off:off + 4])
        if akind & 0x7FFF == 1:  # NFQA_PACKET_HDR: id, hw protocol, hook
            pid, _, hook = struct.unpack("!IHB", data[off + 4:off + 11])
        off += (alen + 3) & ~3
    print(f"queue {queue} packet {pid} hook {hook}", flush=True)
    err = request(NFQNL_MSG_VERDICT, attr(2, struct.pack("!II", 1, pid)))  # NFQA_VERDICT_HDR: NF_ACCEPT
    if err:
        print(f"verdict error {err}", flush=True)
    seen += 1
