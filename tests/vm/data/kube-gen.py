#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""kube-gen.py: print the iptables-restore input that kube-proxy's iptables mode
(Kubernetes 1.28-1.31, pkg/proxy/iptables/proxier.go) writes for a synthetic cluster.

Full sync (default):
  kube-gen.py --services N --endpoints K [--pod-cidr 10.244.0.0/16]
              [--cluster-cidr-base 10.96.0.0] [--endpoint-ips A,B,...] [--port 80]
              [--nodeport-base 30000] [--nodeports M] [--affinity S] > full.rules
  The output is self-contained: the kube-proxy payload plus the built-in chain
  declarations, the jump rules kube-proxy/kubelet install with `iptables -I`
  (PREROUTING/OUTPUT/POSTROUTING/INPUT/FORWARD) and the empty KUBE-PROXY-CANARY
  chains. Load it with `iptables-restore` (flushing) or `--noflush`.
  --payload-only prints byte-for-byte what kube-proxy pipes into
  `iptables-restore --noflush --counters` (no built-in chains, no jump rules).

Partial sync:
  kube-gen.py <same args> --noflush-update IDX [--update-action remove|add|replace|empty]
  prints kube-proxy's partial-sync payload (MinimizeIPTablesRestore, GA in 1.28) after
  service IDX (0-based) changed its endpoints, relative to the full sync above. Apply it
  with `iptables-restore --noflush`. As in kube-proxy, the whole filter table, the four
  top-level nat chains (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ)
  and all their rules are rewritten; only the changed service's KUBE-SVC/KUBE-EXT/KUBE-SEP
  chains are declared, and chains that went away get `:CHAIN - [0:0]` + `-X CHAIN`.

Synthetic cluster: service i (0-based) is "ns<i+1>/svc<i+1>", port name "p<port>",
ClusterIP = cluster-cidr-base + i + 1, endpoints = K addresses taken from --endpoint-ips
cycled (service i uses list positions i*K .. i*K+K-1) on --target-port (default --port);
services 0..M-1 get NodePort nodeport-base + i (externalTrafficPolicy Cluster),
services 0..S-1 get sessionAffinity ClientIP. Everything is a pure function of the
arguments; --seed only permutes the service order (kube-proxy walks a Go map) and
defaults to 0 = index order.

Rules are written exactly as kube-proxy writes them (NOT as iptables-save prints them):
"-d 10.96.0.1" without /32, marks as Go's "%#08x" (0x00004000), comments quoted only
when they contain spaces, "-m recent ... --rcheck --seconds 10800 --reap" without
--mask/--rsource, probabilities as "%0.10f".
"""
import argparse
import base64
import hashlib
import ipaddress
import random
import sys

# chain names (proxier.go constants)
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubeletFirewallChain
LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000
NFACCT_CT_INVALID = "ct_state_invalid_dropped_pkts"
NFACCT_LOCALHOST_NP = "localhost_nps_accepted_pkts"

# iptablesJumpChains + iptablesKubeletJumpChains: (table, dst, src, comment, extraArgs)
JUMP_CHAINS = [
    ("filter", KUBE_EXTERNAL_SERVICES, "INPUT", "kubernetes externally-visible service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("filter", KUBE_EXTERNAL_SERVICES, "FORWARD", "kubernetes externally-visible service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("filter", KUBE_NODEPORTS, "INPUT", "kubernetes health check service ports", []),
    ("filter", KUBE_SERVICES, "FORWARD", "kubernetes service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("filter", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("filter", KUBE_FORWARD, "FORWARD", "kubernetes forwarding rules", []),
    ("filter", KUBE_PROXY_FIREWALL, "INPUT", "kubernetes load balancer firewall", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("filter", KUBE_PROXY_FIREWALL, "OUTPUT", "kubernetes load balancer firewall", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("filter", KUBE_PROXY_FIREWALL, "FORWARD", "kubernetes load balancer firewall", ["-m", "conntrack", "--ctstate", "NEW"]),
    ("nat", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", []),
    ("nat", KUBE_SERVICES, "PREROUTING", "kubernetes service portals", []),
    ("nat", KUBE_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", []),
]
KUBELET_JUMP_CHAINS = [
    ("filter", KUBE_FIREWALL, "INPUT", "", []),
    ("filter", KUBE_FIREWALL, "OUTPUT", "", []),
]
BUILTIN_CHAINS = {
    "filter": ["INPUT", "FORWARD", "OUTPUT"],
    "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
}


def port_proto_hash(svc_port_name, protocol):
    """portProtoHash: first 16 chars of base32(sha256(servicePortName + protocol))."""
    digest = hashlib.sha256((svc_port_name + protocol).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def svc_chain(spn, proto):
    return "KUBE-SVC-" + port_proto_hash(spn, proto)


def ext_chain(spn, proto):
    return "KUBE-EXT-" + port_proto_hash(spn, proto)


def sep_chain(spn, proto, endpoint):
    """servicePortEndpointChainName: endpoint is "ip:port"."""
    digest = hashlib.sha256((spn + proto + endpoint).encode()).digest()
    return "KUBE-SEP-" + base64.b32encode(digest).decode()[:16]


def compute_probability(n):
    """computeProbability: fmt.Sprintf("%0.10f", 1.0/float64(n))."""
    return "%0.10f" % (1.0 / n)


def go_mark(bit):
    """fmt.Sprintf("%#08x", 1<<bit): Go zero-pads 8 digits *after* the 0x prefix."""
    return "0x%08x" % (1 << bit)


class Service:
    def __init__(self, ns, name, port_name, cluster_ip, port, protocol="tcp", node_port=0,
                 affinity=False, affinity_timeout=10800, endpoints=()):
        self.ns, self.name, self.port_name = ns, name, port_name
        self.cluster_ip, self.port, self.protocol = cluster_ip, port, protocol
        self.node_port = node_port
        self.affinity, self.affinity_timeout = affinity, affinity_timeout
        self.endpoints = list(endpoints)  # "ip:port" strings

    @property
    def spn(self):
        """proxy.ServicePortName.String(): "ns/name" + (":" + port if port name set)."""
        return "%s/%s%s" % (self.ns, self.name, ":" + self.port_name if self.port_name else "")

    def sorted_endpoints(self):
        # EndpointSliceCache dedups by endpoint string and sort.Sort(byEndpoint) compares
        # ep.String() ("ip:port") as strings.
        return sorted(set(self.endpoints))

    def chains(self):
        """The nat chains this service owns after a sync, in kube-proxy's declaration order."""
        eps = self.sorted_endpoints()
        if not eps:
            return []
        out = []
        if self.node_port:
            out.append(ext_chain(self.spn, self.protocol))
        out.append(svc_chain(self.spn, self.protocol))
        out += [sep_chain(self.spn, self.protocol, ep) for ep in eps]
        return out


class Options:
    def __init__(self, masquerade_bit=14, random_fully=True, pod_cidr="10.244.0.0/16",
                 masquerade_all=False, localhost_nodeports=True, conntrack_liberal=False,
                 nfacct=False, short_mark=False):
        self.mark = ("0x%x" % (1 << masquerade_bit)) if short_mark else go_mark(masquerade_bit)
        self.random_fully = random_fully
        self.pod_cidr = pod_cidr  # "" = no local-traffic detector
        self.masquerade_all = masquerade_all
        self.localhost_nodeports = localhost_nodeports
        self.conntrack_liberal = conntrack_liberal
        self.nfacct = nfacct


class Lines:
    """proxyutil.LineBuffer: Write() joins words with spaces (no further quoting)."""

    def __init__(self, discard=False):
        self.lines = []
        self.discard = discard

    def write(self, *words):
        flat = []
        for w in words:
            if isinstance(w, (list, tuple)):
                flat.extend(w)
            else:
                flat.append(str(w))
        if not self.discard:
            self.lines.append(" ".join(flat))

    def chain(self, name):
        # utiliptables.MakeChainLine
        self.write(":%s - [0:0]" % name)


def q(s):
    """kube-proxy puts literal double quotes around comments that contain spaces."""
    return '"%s"' % s


def write_service_to_endpoint_rules(nat_rules, svc, chain, endpoints, large):
    """writeServiceToEndpointRules."""
    spn, proto = svc.spn, svc.protocol
    if svc.affinity:
        for ep in endpoints:
            sep = sep_chain(spn, proto, ep)
            args = ["-A", chain]
            if not large:
                args += ["-m", "comment", "--comment", q("%s -> %s" % (spn, ep))]
            args += ["-m", "recent", "--name", sep, "--rcheck", "--seconds", str(svc.affinity_timeout),
                     "--reap", "-j", sep]
            nat_rules.write(args)
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        sep = sep_chain(spn, proto, ep)
        args = ["-A", chain]
        if not large:
            args += ["-m", "comment", "--comment", q("%s -> %s" % (spn, ep))]
        if i < n - 1:
            args += ["-m", "statistic", "--mode", "random", "--probability", compute_probability(n - i)]
        nat_rules.write(args, "-j", sep)


def sync_proxy_rules(services, opts, changed=None, stale_chains=()):
    """syncProxyRules for Cluster-policy ClusterIP/NodePort services.

    services: in iteration order. changed: None for a full sync, else the set of
    service-port names whose SVC/EXT/SEP chains are rewritten (partial sync).
    stale_chains: existing KUBE-SVC/EXT/SEP chains that are no longer active.
    Returns the iptables-restore payload as a list of lines.
    """
    filter_chains, filter_rules = Lines(), Lines()
    nat_chains, nat_rules = Lines(), Lines()
    skipped_chains, skipped_rules = Lines(discard=True), Lines(discard=True)

    for c in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL):
        filter_chains.chain(c)
    for c in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ):
        nat_chains.chain(c)

    mark = opts.mark
    nat_rules.write("-A", KUBE_POSTROUTING, "-m", "mark", "!", "--mark", "%s/%s" % (mark, mark), "-j", "RETURN")
    nat_rules.write("-A", KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", mark)
    masq = ["-A", KUBE_POSTROUTING, "-m", "comment", "--comment", q("kubernetes service traffic requiring SNAT"),
            "-j", "MASQUERADE"]
    if opts.random_fully:
        masq.append("--random-fully")
    nat_rules.write(masq)
    nat_rules.write("-A", KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", mark)

    if opts.localhost_nodeports:  # IPv4 only; we only generate IPv4
        filter_chains.chain(KUBE_FIREWALL)
        filter_rules.write("-A", KUBE_FIREWALL, "-m", "comment", "--comment", q("block incoming localnet connections"),
                           "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack",
                           "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")

    total_endpoints = sum(len(s.sorted_endpoints()) for s in services)
    large = total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD

    for svc in services:
        proto = svc.protocol
        spn = svc.spn
        eps = svc.sorted_endpoints()
        has_endpoints = len(eps) > 0
        cluster_chain = svc_chain(spn, proto)
        external_chain = ext_chain(spn, proto)
        uses_ext = has_endpoints and svc.node_port != 0  # ExternallyAccessible()
        internal_filter_target = external_filter_target = None
        if not has_endpoints:
            internal_filter_target = external_filter_target = "REJECT"
            internal_filter_comment = external_filter_comment = q("%s has no endpoints" % spn)

        # Capture the clusterIP.
        if has_endpoints:
            nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment", q("%s cluster IP" % spn),
                            "-m", proto, "-p", proto, "-d", svc.cluster_ip, "--dport", str(svc.port),
                            "-j", cluster_chain)
        else:
            filter_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment", internal_filter_comment,
                               "-m", proto, "-p", proto, "-d", svc.cluster_ip, "--dport", str(svc.port),
                               "-j", internal_filter_target)

        # Capture nodeports.
        if svc.node_port:
            if has_endpoints:
                if opts.localhost_nodeports and opts.nfacct:
                    nat_rules.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment", spn,
                                    "-m", proto, "-p", proto, "-d", "127.0.0.0/8", "--dport", str(svc.node_port),
                                    "-m", "nfacct", "--nfacct-name", NFACCT_LOCALHOST_NP, "-j", external_chain)
                nat_rules.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment", spn,
                                "-m", proto, "-p", proto, "--dport", str(svc.node_port), "-j", external_chain)
            if not has_endpoints:
                filter_rules.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", external_filter_comment,
                                   "-m", "addrtype", "--dst-type", "LOCAL", "-m", proto, "-p", proto,
                                   "--dport", str(svc.node_port), "-j", external_filter_target)

        nc, nr = nat_chains, nat_rules
        if changed is not None and spn not in changed:
            nc, nr = skipped_chains, skipped_rules

        # Internal traffic handling: masquerade off-cluster traffic to the VIP.
        if has_endpoints:
            args = ["-m", "comment", "--comment", q("%s cluster IP" % spn), "-m", proto, "-p", proto,
                    "-d", svc.cluster_ip, "--dport", str(svc.port)]
            if opts.masquerade_all:
                nr.write("-A", cluster_chain, args, "-j", KUBE_MARK_MASQ)
            elif opts.pod_cidr:
                nr.write("-A", cluster_chain, args, "!", "-s", opts.pod_cidr, "-j", KUBE_MARK_MASQ)

        # External traffic (NodePort), externalTrafficPolicy=Cluster.
        if uses_ext:
            nc.chain(external_chain)
            nr.write("-A", external_chain, "-m", "comment", "--comment",
                     q("masquerade traffic for %s external destinations" % spn), "-j", KUBE_MARK_MASQ)
            nr.write("-A", external_chain, "-j", cluster_chain)

        if has_endpoints:
            nc.chain(cluster_chain)
            write_service_to_endpoint_rules(nr, svc, cluster_chain, eps, large)

        for ep in eps:
            sep = sep_chain(spn, proto, ep)
            nc.chain(sep)
            args = ["-A", sep]
            if not large:
                args += ["-m", "comment", "--comment", spn]
            nr.write(args, "-s", ep.rsplit(":", 1)[0], "-j", KUBE_MARK_MASQ)
            if svc.affinity:
                args += ["-m", "recent", "--name", sep, "--set"]
            args += ["-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", ep]
            nr.write(args)

    for chain in stale_chains:
        nat_chains.chain(chain)
        nat_rules.write("-X", chain)

    dest = ["-m", "addrtype", "--dst-type", "LOCAL"]
    if not opts.localhost_nodeports:
        dest += ["!", "-d", "127.0.0.0/8"]
    nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                    q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
                    dest, "-j", KUBE_NODEPORTS)

    if not opts.conntrack_liberal:
        rule = ["-A", KUBE_FORWARD, "-m", "conntrack", "--ctstate", "INVALID"]
        if opts.nfacct:
            rule += ["-m", "nfacct", "--nfacct-name", NFACCT_CT_INVALID]
        filter_rules.write(rule, "-j", "DROP")
    filter_rules.write("-A", KUBE_FORWARD, "-m", "comment", "--comment", q("kubernetes forwarding rules"),
                       "-m", "mark", "--mark", "%s/%s" % (mark, mark), "-j", "ACCEPT")
    filter_rules.write("-A", KUBE_FORWARD, "-m", "comment", "--comment", q("kubernetes forwarding conntrack rule"),
                       "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")

    return (["*filter"] + filter_chains.lines + filter_rules.lines + ["COMMIT"]
            + ["*nat"] + nat_chains.lines + nat_rules.lines + ["COMMIT"])


def jump_rules(table):
    """The jump rules as they end up in each built-in chain.

    kube-proxy (full sync) and kubelet EnsureRule(Prepend, ...) each of them, i.e.
    `iptables -I <src> 1`, in list order; kubelet runs first, so its KUBE-FIREWALL jumps
    end up last and kube-proxy's appear in reverse list order.
    """
    per_chain = {c: [] for c in BUILTIN_CHAINS[table]}
    for tbl, dst, src, comment, extra in KUBELET_JUMP_CHAINS + JUMP_CHAINS:
        if tbl != table:
            continue
        args = list(extra)
        if comment:
            args += ["-m", "comment", "--comment", q(comment)]
        args += ["-j", dst]
        per_chain[src].insert(0, " ".join(["-A", src] + args))
    return [line for c in BUILTIN_CHAINS[table] for line in per_chain[c]]


def self_contained(payload, opts):
    """Wrap the kube-proxy payload with the built-in chains, canary chains and jump rules."""
    out = []
    pending_jumps = None
    for line in payload:
        if line.startswith("*"):
            table = line[1:]
            out.append(line)
            out += [":%s ACCEPT [0:0]" % c for c in BUILTIN_CHAINS[table]]
            out.append(":%s - [0:0]" % KUBE_PROXY_CANARY)
            if table == "filter" and not opts.localhost_nodeports:
                out.append(":%s - [0:0]" % KUBE_FIREWALL)  # created by EnsureChain only
            pending_jumps = jump_rules(table)
            continue
        if pending_jumps is not None and not line.startswith(":"):
            out += pending_jumps
            pending_jumps = None
        out.append(line)
    return out


def build_cluster(a):
    base = ipaddress.IPv4Address(a.cluster_cidr_base)
    if a.endpoint_ips:
        ips = [str(ipaddress.IPv4Address(x.strip())) for x in a.endpoint_ips.split(",") if x.strip()]
    else:
        net = ipaddress.IPv4Network(a.pod_cidr or "10.244.0.0/16", strict=False)
        need = max(1, a.services * a.endpoints)
        if need + 2 > net.num_addresses:
            sys.exit("kube-gen: pod CIDR too small for %d endpoints" % need)
        ips = [str(net.network_address + 2 + k) for k in range(need)]
    tport = a.target_port or a.port
    services = []
    short = False
    for i in range(a.services):
        eps = []
        for j in range(a.endpoints):
            eps.append("%s:%d" % (ips[(i * a.endpoints + j) % len(ips)], tport))
        if len(set(eps)) < len(eps):
            short = True
        services.append(Service(
            ns="ns%d" % (i + 1), name="svc%d" % (i + 1), port_name="p%d" % a.port,
            cluster_ip=str(base + i + 1), port=a.port, protocol=a.protocol,
            node_port=(a.nodeport_base + i) if i < a.nodeports else 0,
            affinity=i < a.affinity, affinity_timeout=a.affinity_timeout, endpoints=eps))
    if short:
        print("kube-gen: warning: %d endpoint IPs < --endpoints %d; duplicates collapse as in kube-proxy"
              % (len(ips), a.endpoints), file=sys.stderr)
    return services, ips, tport


def apply_update(svc, action, ips, tport, pod_cidr):
    """Change svc's endpoints in place; returns a description for stderr."""
    cur = svc.sorted_endpoints()
    used = {e.rsplit(":", 1)[0] for e in cur}

    def fresh_ip():
        for ip in ips:
            if ip not in used:
                return ip
        net = ipaddress.IPv4Network(pod_cidr or "10.244.0.0/16", strict=False)
        for k in range(2, net.num_addresses - 1):
            ip = str(net.network_address + k)
            if ip not in used and ip not in ips:
                return ip
        sys.exit("kube-gen: no fresh endpoint IP available")

    if action == "remove":
        if not cur:
            sys.exit("kube-gen: service has no endpoint to remove")
        svc.endpoints = cur[:-1]
    elif action == "add":
        svc.endpoints = cur + ["%s:%d" % (fresh_ip(), tport)]
    elif action == "replace":
        if not cur:
            sys.exit("kube-gen: service has no endpoint to replace")
        svc.endpoints = cur[:-1] + ["%s:%d" % (fresh_ip(), tport)]
    elif action == "empty":
        svc.endpoints = []


SELFTEST = [
    # (servicePortName, protocol, endpoint or None, expected chain) from pkg/proxy/iptables/proxier_test.go
    ("ns1/svc1:p80", "tcp", None, "KUBE-SVC-XPGD46QRK7WJZT7O"),
    ("ns1/svc1:p80", "tcp", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
    ("ns2/svc2:p80", "tcp", None, "KUBE-SVC-GNZBNJ2PO5MGZ6GT"),
    ("ns3/svc3:p80", "tcp", None, "KUBE-SVC-X27LE4BHSL4DOUIK"),
    ("ns4/svc4:p80", "tcp", "10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
    ("ns5/svc5:p80", "tcp", "10.180.0.3:80", "KUBE-SEP-I77PXRDZVX7PMWMN"),
    ("ns2/svc2:p8080", "tcp", None, "KUBE-SVC-2VJB64SDSIJUP5T6"),
    ("ns1/svc1", "tcp", None, "KUBE-SVC-AQI2S6QIMU7PVVRP"),
    ("ns1/svc1", "tcp", "10.0.1.5:80", "KUBE-SEP-EQCHZ7S2PJ72OHAY"),
]


def selftest():
    bad = 0
    for spn, proto, ep, want in SELFTEST:
        got = sep_chain(spn, proto, ep) if ep else svc_chain(spn, proto)
        if got != want:
            print("selftest: %s %s %s: got %s want %s" % (spn, proto, ep, got, want), file=sys.stderr)
            bad += 1
    for n, want in ((1, "1.0000000000"), (2, "0.5000000000"), (3, "0.3333333333"), (6, "0.1666666667")):
        if compute_probability(n) != want:
            print("selftest: probability(%d) = %s" % (n, compute_probability(n)), file=sys.stderr)
            bad += 1
    if go_mark(14) != "0x00004000":
        bad += 1
    print("kube-gen selftest: %d passed, %d failed" % (len(SELFTEST) + 5 - bad, bad))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--services", type=int, default=10)
    p.add_argument("--endpoints", type=int, default=3, help="endpoints per service")
    p.add_argument("--pod-cidr", default="10.244.0.0/16",
                   help="cluster CIDR for the local-traffic detector (! -s CIDR -j KUBE-MARK-MASQ); '' = none")
    p.add_argument("--cluster-cidr-base", default="10.96.0.0", help="ClusterIP of service i is base+i+1")
    p.add_argument("--endpoint-ips", default="", help="comma-separated endpoint addresses, cycled "
                   "(default: consecutive addresses from --pod-cidr, starting at .2)")
    p.add_argument("--port", type=int, default=80, help="service port")
    p.add_argument("--target-port", type=int, default=0, help="endpoint port (default: --port)")
    p.add_argument("--protocol", default="tcp", choices=["tcp", "udp", "sctp"])
    p.add_argument("--nodeport-base", type=int, default=30000)
    p.add_argument("--nodeports", type=int, default=0, help="the first M services get a NodePort")
    p.add_argument("--affinity", type=int, default=0, help="the first S services get ClientIP affinity")
    p.add_argument("--affinity-timeout", type=int, default=10800)
    p.add_argument("--seed", type=int, default=0, help="0 = services in index order; else shuffled (Go map order)")
    p.add_argument("--noflush-update", type=int, default=None, metavar="SVC_INDEX",
                   help="print the partial-sync payload after service SVC_INDEX (0-based) changed")
    p.add_argument("--update-action", default="remove", choices=["remove", "add", "replace", "empty"],
                   help="remove: drop its last endpoint (-X of its KUBE-SEP); add: one more endpoint; "
                   "replace: swap its last endpoint for a new address; empty: no endpoints left "
                   "(-X of SVC/EXT/SEP, REJECT rules in filter)")
    p.add_argument("--payload-only", action="store_true",
                   help="full sync: print only kube-proxy's restore payload (no built-in chains/jumps)")
    p.add_argument("--masquerade-bit", type=int, default=14)
    p.add_argument("--short-mark", action="store_true",
                   help="write the mark as 0x4000 (proxier_test.go's fake) instead of Go's %%#08x 0x00004000")
    p.add_argument("--no-random-fully", action="store_true", help="iptables without --random-fully support")
    p.add_argument("--masquerade-all", action="store_true")
    p.add_argument("--no-localhost-nodeports", action="store_true",
                   help="iptables.localhostNodePorts=false: no KUBE-FIREWALL rule, nodeports rule gets ! -d 127.0.0.0/8")
    p.add_argument("--conntrack-liberal", action="store_true",
                   help="nf_conntrack_tcp_be_liberal=1 (1.29+): no KUBE-FORWARD INVALID DROP rule")
    p.add_argument("--nfacct", action="store_true", help="1.31 with nfacct counters available")
    p.add_argument("--selftest", action="store_true", help="check chain hashes against proxier_test.go values")
    a = p.parse_args()

    if a.selftest:
        sys.exit(selftest())
    if a.services < 0 or a.endpoints < 0:
        sys.exit("kube-gen: negative count")

    opts = Options(masquerade_bit=a.masquerade_bit, random_fully=not a.no_random_fully, pod_cidr=a.pod_cidr,
                   masquerade_all=a.masquerade_all, localhost_nodeports=not a.no_localhost_nodeports,
                   conntrack_liberal=a.conntrack_liberal, nfacct=a.nfacct, short_mark=a.short_mark)
    services, ips, tport = build_cluster(a)
    order = list(range(len(services)))
    if a.seed:
        random.Random(a.seed).shuffle(order)
    ordered = [services[i] for i in order]

    if a.noflush_update is None:
        payload = sync_proxy_rules(ordered, opts)
        lines = payload if a.payload_only else self_contained(payload, opts)
    else:
        idx = a.noflush_update
        if not 0 <= idx < len(services):
            sys.exit("kube-gen: --noflush-update %d out of range (0..%d)" % (idx, len(services) - 1))
        svc = services[idx]
        before = svc.chains()
        apply_update(svc, a.update_action, ips, tport, a.pod_cidr)
        after = set(svc.chains())
        stale = [c for c in before if c not in after]
        lines = sync_proxy_rules(ordered, opts, changed={svc.spn}, stale_chains=stale)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
