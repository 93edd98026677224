#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# NAT pitfalls, rust_nf beside iptables-legacy + nf_nat (two identical topologies):
# - hairpin: a client and a server on the same LAN behind the router, a port forward on the
#   router's public address to the server. Without an extra MASQUERADE rule the server answers
#   the client directly and the connection fails; with it, it works (both exactly as with
#   iptables);
# - MASQUERADE cleanup: flows masqueraded through an interface leave the table when the
#   interface goes down, and when it loses the address they took.
# cost: 15
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"

# lan ROUTER: a LAN (bridge in its own namespace) with a client 10.0.4.2 and a server 10.0.4.3
# behind ROUTER (10.0.4.1 on r3); their namespaces' names in LC and LS.
lan() {
	local r=$1 b="$1-lan" c="$1-lc" s="$1-ls"
	NAMESPACES+=("$b" "$c" "$s")
	ip netns add "$b" && ip netns add "$c" && ip netns add "$s" || return 1
	nsx "$b" ip link add br0 type bridge && nsx "$b" ip link set br0 up || return 1
	ip link add p0 netns "$b" type veth peer name r3 netns "$r" &&
		ip link add p1 netns "$b" type veth peer name e0 netns "$c" &&
		ip link add p2 netns "$b" type veth peer name e0 netns "$s" || return 1
	for p in p0 p1 p2; do nsx "$b" ip link set "$p" master br0 up || return 1; done
	nsx "$r" ip addr add 10.0.4.1/24 dev r3 && nsx "$r" ip link set r3 up || return 1
	nsx "$c" ip addr add 10.0.4.2/24 dev e0 && nsx "$c" ip link set e0 up && nsx "$c" ip link set lo up &&
		nsx "$c" ip route add default via 10.0.4.1 || return 1
	nsx "$s" ip addr add 10.0.4.3/24 dev e0 && nsx "$s" ip link set e0 up && nsx "$s" ip link set lo up &&
		nsx "$s" ip route add default via 10.0.4.1 || return 1
	LC=$c LS=$s
}

RR=$R RC=$C RS=$S
topo_up || { fail "topology"; finish; }
C="$PFX-kclient" R="$PFX-krouter" S="$PFX-kserver"
KR=$R KC=$C KS=$S
topo_up || { fail "kernel's topology"; finish; }
lan "$RR" || fail "rust_nf's LAN"
RLC=$LC RLS=$LS
lan "$KR" || fail "kernel's LAN"
KLC=$LC KLS=$LS
echo "hello from the LAN server" >"$TMPD/hello"
for ns in "$RLS" "$KLS"; do bg "$ns" socat -U "TCP-LISTEN:80,reuseaddr,fork" "OPEN:$TMPD/hello,rdonly"; done
for ns in "$RLS" "$KLS"; do wait_tcp_listen "$ns" 80; done
cat >"$TMPD/echo.py" <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.2.2", 7001))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(("seen from %s:%d" % peer).encode(), peer)
EOF
for ns in "$RS" "$KS"; do
	nsenter --net="/run/netns/$ns" python3 "$TMPD/echo.py" >"$TMPD/echo.$ns" 2>&1 &
	BG_PIDS+=("$!")
	wait_until "$STARTUP_WAIT" file_is "$TMPD/echo.$ns" ready || fail "echo server"
done

# tcp NS HOST PORT: what a TCP client reads ("refused"/"timeout" aside: socat's message).
tcp() { nsx "$1" socat -T 3 -t "$WAIT" - "TCP:$2:$3,connect-timeout=3" </dev/null 2>&1 | head -1; }
udp() {
	nsx "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[2])))
s.settimeout(10)
s.sendto(b"ping", ("10.0.2.2", 7001))
print(s.recv(100).decode())
' x "$2"
}

for side in rnf k; do
	if [ $side = rnf ]; then
		r=$RR c=$RC lc=$RLC t="$RNF_BIN/iptables" ctl="$RNF_BIN/conntrack"
	else
		r=$KR c=$KC lc=$KLC t=iptables-legacy ctl=conntrack
	fi
	# Hairpin: the port forward alone fails for the LAN client ...
	nsx "$r" "$t" -t nat -A PREROUTING -d 10.0.2.1 -p tcp --dport 8081 -j DNAT --to-destination 10.0.4.3:80 ||
		fail "$side: port forward rule"
	expect_eq "$side: outside client through the port forward" "$(tcp "$c" 10.0.2.1 8081)" "hello from the LAN server"
	got=$(tcp "$lc" 10.0.2.1 8081)
	case $got in "hello from the LAN server") fail "$side: hairpin worked without MASQUERADE" ;; *) log "ok: $side: hairpin without MASQUERADE fails: $got" ;; esac
	# ... and works with the usual MASQUERADE rule.
	nsx "$r" "$t" -t nat -A POSTROUTING -s 10.0.4.0/24 -d 10.0.4.3 -p tcp --dport 80 -j MASQUERADE ||
		fail "$side: hairpin MASQUERADE rule"
	expect_eq "$side: hairpin with MASQUERADE" "$(tcp "$lc" 10.0.2.1 8081)" "hello from the LAN server"

	# MASQUERADE cleanup.
	nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -j MASQUERADE || fail "$side: masquerade rule"
	expect_eq "$side: masqueraded datagram" "$(udp "$c" 5001)" "seen from 10.0.2.1:5001"
	flows() { nsx "$r" "$ctl" -L -p udp --dport 7001 2>/dev/null | grep -c .; }
	expect_eq "$side: masqueraded flow listed" "$(flows)" 1
	nsx "$r" ip link set r1 down
	_gone() { [ "$(flows)" = 0 ]; }
	wait_until "$WAIT" _gone || fail "$side: masqueraded flow still listed after r1 went down"
	nsx "$r" ip link set r1 up
	nsx "$r" ip route replace 10.0.2.0/24 dev r1 2>/dev/null
	expect_eq "$side: masqueraded again" "$(udp "$c" 5002)" "seen from 10.0.2.1:5002"
	expect_eq "$side: the new flow listed" "$(flows)" 1
	nsx "$r" ip addr del 10.0.2.1/24 dev r1
	wait_until "$WAIT" _gone || fail "$side: masqueraded flow still listed after r1 lost 10.0.2.1"
	log "ok: $side: masqueraded flows gone with the interface and with its address"
done
finish
