#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Client and server for the kube-proxy test (tests/vm/t-nat-kube.sh).

  kubecheck.py server PORT           answers every connection with "LOCAL PEER\\n" (the
                                     endpoint address it was reached at, the client it saw)
  kubecheck.py all DUMP NODE         every service of an iptables-restore DUMP in
                                     kube-proxy's shape, once through its ClusterIP and once
                                     through NODE:NodePort; prints one line per failure, then
                                     "checked N"
  kubecheck.py spread DUMP IDX N     N connections to service IDX's ClusterIP; prints
                                     "ENDPOINT COUNT" lines, then "peer PEER" for the source
                                     addresses the endpoints saw
  kubecheck.py nodeport DUMP IDX NODE  one connection to service IDX's NodePort; prints the
                                     answer
"""
import re
import socket
import sys


def services(dump):
    """name -> {"ip", "port", "nodeport", "endpoints"} in the order of the dump (as
    kube-proxy writes it or as iptables-save prints it: options in any order)."""
    out = {}
    order = []
    seps = []

    def opt(line, pat):
        m = re.search(pat, line)
        return m.group(1) if m else None

    for line in open(dump):
        comment = opt(line, r'--comment "?([^" ]+)')
        if line.startswith("-A KUBE-SERVICES ") and "cluster IP" in line and "-j KUBE-SVC-" in line:
            out[comment] = {"ip": opt(line, r" -d (\S+)").split("/")[0], "port": int(opt(line, r"--dport (\d+)")),
                            "nodeport": 0, "endpoints": set()}
            order.append(comment)
        elif line.startswith("-A KUBE-NODEPORTS ") and comment:
            seps.append(("nodeport", comment, int(opt(line, r"--dport (\d+)"))))
        elif line.startswith("-A KUBE-SEP-") and "-j DNAT" in line:
            seps.append(("endpoint", comment, opt(line, r"--to-destination ([0-9.]+)")))
    for kind, name, v in seps:
        if name in out:
            if kind == "nodeport":
                out[name]["nodeport"] = v
            else:
                out[name]["endpoints"].add(v)
    return [(n, out[n]) for n in order]


def ask(host, port):
    with socket.create_connection((host, port), timeout=10) as s:
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
    return data.decode().split()


def server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    print("ready", flush=True)
    while True:
        c, peer = s.accept()
        try:
            c.sendall(("%s %s\n" % (c.getsockname()[0], peer[0])).encode())
        except OSError:
            pass
        c.close()


def main():
    cmd = sys.argv[1]
    if cmd == "server":
        server(int(sys.argv[2]))
        return
    svcs = services(sys.argv[2])
    if cmd == "all":
        node = sys.argv[3]
        n = 0
        for name, s in svcs:
            targets = [(s["ip"], s["port"], "cluster IP")]
            if s["nodeport"]:
                targets.append((node, s["nodeport"], "NodePort"))
            for host, port, what in targets:
                n += 1
                try:
                    got = ask(host, port)
                except OSError as e:
                    print("%s %s %s:%d: %s" % (name, what, host, port, e))
                    continue
                if not got or got[0] not in s["endpoints"]:
                    print("%s %s %s:%d: answered by %s, endpoints %s" % (name, what, host, port, got, sorted(s["endpoints"])))
        print("checked %d" % n)
    elif cmd == "spread":
        name, s = svcs[int(sys.argv[3])]
        counts = {e: 0 for e in sorted(s["endpoints"])}
        peers = set()
        for _ in range(int(sys.argv[4])):
            got = ask(s["ip"], s["port"])
            counts[got[0]] = counts.get(got[0], 0) + 1
            peers.add(got[1])
        for e, c in counts.items():
            print("%s %d" % (e, c))
        for p in sorted(peers):
            print("peer %s" % p)
    elif cmd == "nodeport":
        name, s = svcs[int(sys.argv[3])]
        print(" ".join(ask(sys.argv[4], s["nodeport"])))


if __name__ == "__main__":
    main()
