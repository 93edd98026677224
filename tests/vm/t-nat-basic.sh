#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# NAT through a router, rust_nf's (rnfctl + its own conntrack) beside the kernel's
# (iptables-legacy + nf_nat) in a second, identical topology; every outcome and every
# translated flow in the conntrack listings must be the same:
# - port forward: DNAT of the router's port 8080 to the server's port 80; the client talks to
#   the address and port it connected to (the server sees the client's own address);
# - masquerade: two clients behind the router send from the same source port to one server;
#   both are answered, and the second flow's source port was moved (reply tuple);
# - SNAT to a one-port range: the second flow to the same destination is dropped and counted
#   (insert_failed), the first keeps working;
# - REDIRECT to a port of the router, NETMAP of a /24, DNAT at OUTPUT for the router's own
#   traffic (routed again for the new destination);
# - ICMP errors about a translated flow (port unreachable) reach the client with the
#   addresses it knows, so its socket sees the error.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
DATA=$(dirname "$0")/data

# Two identical topologies (client, second client, router, server): rust_nf's and the kernel's.
RC=$C RR=$R RS=$S RC2="$PFX-client2"
topo_up || { fail "topology"; finish; }
C="$PFX-kclient" R="$PFX-krouter" S="$PFX-kserver"
KC=$C KR=$R KS=$S KC2="$PFX-kclient2"
topo_up || { fail "kernel's topology"; finish; }
ct_long_timeouts "$RR"
ct_long_timeouts "$KR"
for pair in "$RC2 $RR" "$KC2 $KR"; do
	set -- $pair
	NAMESPACES+=("$1")
	ip netns add "$1" && ip link add c0 netns "$1" type veth peer name r2 netns "$2" || fail "second client"
	nsx "$1" ip addr add 10.0.3.2/24 dev c0 && nsx "$1" ip link set c0 up && nsx "$1" ip link set lo up &&
		nsx "$1" ip route add default via 10.0.3.1 || fail "second client addresses"
	nsx "$2" ip addr add 10.0.3.1/24 dev r2 && nsx "$2" ip link set r2 up || fail "router's third interface"
done

# Servers: TCP on port 80 ("hello from the server"), UDP echo on 7001-7003, a TCP server on
# the router's port 2222; nothing on UDP port 53.
cat >"$TMPD/echo.py" <<'EOF'
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in range(7001, 7004):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], p))
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for k, _ in sel.select():
        data, peer = k.fileobj.recvfrom(2048)
        k.fileobj.sendto(data + (" seen from %s:%d" % peer).encode(), peer)
EOF
echo "hello from the server" >"$TMPD/hello"
echo "hello from the router" >"$TMPD/router"
for ns in "$RS" "$KS"; do
	bg "$ns" socat -U "TCP-LISTEN:80,reuseaddr,fork" "OPEN:$TMPD/hello,rdonly"
	nsenter --net="/run/netns/$ns" python3 "$TMPD/echo.py" 10.0.2.2 >"$TMPD/echo.$ns" 2>&1 &
	BG_PIDS+=("$!")
done
for ns in "$RR" "$KR"; do
	bg "$ns" socat -U "TCP-LISTEN:2222,reuseaddr,fork" "OPEN:$TMPD/router,rdonly"
done
# The SNAT pool's addresses are routed to the router.
for ns in "$RS" "$KS"; do nsx "$ns" ip route add 10.0.77.0/24 via 10.0.2.1 || fail "pool route"; done
for ns in "$RS" "$KS"; do wait_tcp_listen "$ns" 80; wait_until "$STARTUP_WAIT" file_is "$TMPD/echo.$ns" ready || fail "echo server"; done
for ns in "$RR" "$KR"; do wait_tcp_listen "$ns" 2222; done

# The same rules in both routers.
rules() {
	local r=$1 t=$2
	nsx "$r" "$t" -t nat -A PREROUTING -i r0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.2.2:80 &&
		nsx "$r" "$t" -t nat -A PREROUTING -i r0 -p tcp --dport 9999 -j REDIRECT --to-ports 2222 &&
		nsx "$r" "$t" -t nat -A PREROUTING -i r0 -d 10.0.9.0/24 -j NETMAP --to 10.0.2.0/24 &&
		nsx "$r" "$t" -t nat -A PREROUTING -i r0 -p udp --dport 8053 -j DNAT --to-destination 10.0.2.2:53 &&
		nsx "$r" "$t" -t nat -A OUTPUT -d 10.0.1.99 -p tcp --dport 80 -j DNAT --to-destination 10.0.2.2 &&
		nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -p udp --dport 7002 -j SNAT --to-source 10.0.2.1:6000 &&
		nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -p udp --dport 7003 -j SNAT --to-source 10.0.77.1-10.0.77.4 &&
		nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -s 10.0.3.0/24 -j MASQUERADE &&
		nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -s 10.0.1.0/24 -p udp --dport 7001 -j MASQUERADE
}
rules "$RR" "$RNF_BIN/iptables" || fail "rust_nf's nat rules"
rules "$KR" iptables-legacy || fail "iptables-legacy's nat rules"
expect_eq "nat rules, rust_nf = iptables-legacy" "$(nsx "$RR" "$RNF_BIN/iptables-save" -t nat | grep '^-A')" \
	"$(nsx "$KR" iptables-legacy-save -t nat | grep '^-A')"

# tcp NS HOST PORT SPORT: what a TCP client from source port SPORT reads.
tcp() { nsx "$1" socat -T "$WAIT" -t "$WAIT" - "TCP:$2:$3,sourceport=$4" </dev/null 2>&1; }
# udp NS HOST PORT SPORT [WAIT]: the answer to one datagram, "none", or "refused".
udp() {
	nsx "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[3])))
s.settimeout(float(sys.argv[4]))
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"ping")
try:
    print(s.recv(200).decode())
except socket.timeout:
    print("none")
except ConnectionRefusedError:
    print("refused")
' "$2" "$3" "$4" "${5:-$WAIT}"
}

# pmtu NS HOST PORT SPORT: sends 1400-byte datagrams that may not be fragmented until the
# socket's path MTU drops (an ICMP frag-needed it recognised came back); prints it.
pmtu() {
	nsx "$1" python3 -c '
import socket, sys, time
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
s.bind(("", int(sys.argv[3])))
s.connect((sys.argv[1], int(sys.argv[2])))
end = time.monotonic() + float(sys.argv[4])
mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
while mtu > 1400 and time.monotonic() < end:
    try:
        s.send(b"x" * 1400)
    except OSError:
        pass
    time.sleep(0.05)
    mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
print(mtu)
' "$2" "$3" "$4" "$WAIT"
}

# Both sides: each check runs in rust_nf's topology and in the kernel's.
for side in rnf k; do
	if [ $side = rnf ]; then c=$RC r=$RR c2=$RC2; else c=$KC r=$KR c2=$KC2; fi
	# Port forward: the client connects to the router's 8080.
	expect_eq "$side: port forward" "$(tcp "$c" 10.0.1.1 8080 41001)" "hello from the server"
	# REDIRECT: any address's 9999 lands on the router's own 2222.
	expect_eq "$side: REDIRECT" "$(tcp "$c" 10.0.2.2 9999 41002)" "hello from the router"
	# NETMAP: 10.0.9.2 is the server.
	expect_eq "$side: NETMAP" "$(tcp "$c" 10.0.9.2 80 41003)" "hello from the server"
	# DNAT at OUTPUT: the router's own connection to 10.0.1.99 goes to the server.
	expect_eq "$side: OUTPUT DNAT" "$(tcp "$r" 10.0.1.99 80 41004)" "hello from the server"
	# Masquerade: two clients, one source port, one server: both answered, as the router.
	expect_eq "$side: first masqueraded client" "$(udp "$c" 10.0.2.2 7001 5000)" "ping seen from 10.0.2.1:5000"
	a2=$(udp "$c2" 10.0.2.2 7001 5000)
	case $a2 in "ping seen from 10.0.2.1:"*) ;; *) fail "$side: second masqueraded client: $a2" ;; esac
	[ "$a2" != "ping seen from 10.0.2.1:5000" ] || fail "$side: the second client kept the taken port"
	log "$side: second client: $a2"
	# SNAT to one port: the first flow to 7002 works, the second is dropped, the first still
	# works.
	expect_eq "$side: one-port SNAT, first flow" "$(udp "$c" 10.0.2.2 7002 5002)" "ping seen from 10.0.2.1:6000"
	expect_eq "$side: one-port SNAT, second flow" "$(udp "$c2" 10.0.2.2 7002 5002 1)" "none"
	expect_eq "$side: one-port SNAT, first flow again" "$(udp "$c" 10.0.2.2 7002 5002)" "ping seen from 10.0.2.1:6000"
	# SNAT to a pool (10.0.77.1-4, routed to the router): each flow is answered, its address
	# one of the pool's, the same for every flow of one client (the hash of its address).
	p1=$(udp "$c" 10.0.2.2 7003 5010)
	p2=$(udp "$c" 10.0.2.2 7003 5011)
	case $p1 in "ping seen from 10.0.77."[1-4]":5010") log "ok: $side: SNAT to a pool: $p1" ;; *) fail "$side: SNAT to a pool: '$p1'" ;; esac
	expect_eq "$side: one client, one pool address" "${p2%:*}" "${p1%:*}"
	# ICMP port unreachable about a DNATed datagram reaches the client's socket.
	expect_eq "$side: port unreachable through DNAT" "$(udp "$c" 10.0.1.1 8053 5003)" "refused"
	# A frag-needed from the router itself about a DNATed datagram (the server's link has a
	# smaller MTU) reaches the client's socket, which learns the path MTU.
	nsx "$r" ip link set r1 mtu 1000
	expect_eq "$side: frag-needed through DNAT" "$(pmtu "$c" 10.0.1.1 8053 5004)" 1000
	nsx "$r" ip link set r1 mtu 1500
	# The flows, listed now (before the datagrams' flows expire).
	if [ $side = rnf ]; then ctl="$RNF_BIN/conntrack"; else ctl=conntrack; fi
	nsx "$r" "$ctl" -L >"$TMPD/flows.$side" 2>/dev/null
	# conntrack's NAT filters.
	nsx "$r" "$ctl" -L --src-nat >"$TMPD/snat.$side" 2>/dev/null
	nsx "$r" "$ctl" -L --dst-nat 10.0.2.2 >"$TMPD/dnat.$side" 2>/dev/null
done

# The kernel drops a flow whose range is exhausted at insertion (insert_failed); so does
# rust_nf.
failed=$(nsx "$RR" "$RNF_BIN/conntrack" -S | sed -n 's/^rust_nf:.* insert_failed=\([0-9]*\) .*/\1/p')
expect_ge "rust_nf: insert_failed after the exhausted range" "$failed" 1

# The flows: the same translated tuples (timeouts, counters and the reallocated port aside).
norm() {
	sed -E -e 's/^(\S+ +[0-9]+) [0-9]+ /\1 T /' -e 's/packets=[0-9]+ bytes=[0-9]+ //g' -e 's/ +$//' \
		-e 's/(src=10.0.2.2 dst=10.0.2.1 sport=7001) dport=[0-9]+/\1 dport=P/' \
		-e 's/dst=10\.0\.77\.[1-4] /dst=POOL /' | sort
}
r=$(norm <"$TMPD/flows.rnf")
k=$(norm <"$TMPD/flows.k")
printf '%s\n' "$r" | sed 's/^/    rnf: /'
expect_eq "translated flows, rust_nf = kernel" "$r" "$k"
expect_eq "conntrack -L --src-nat, rust_nf = kernel" "$(norm <"$TMPD/snat.rnf")" "$(norm <"$TMPD/snat.k")"
expect_eq "conntrack -L --dst-nat 10.0.2.2, rust_nf = kernel" "$(norm <"$TMPD/dnat.rnf")" "$(norm <"$TMPD/dnat.k")"
expect_eq "flows with source NAT (masquerade 2, one-port SNAT 1, pool 2)" "$(grep -c . "$TMPD/snat.rnf")" 5
case $r in *"src=10.0.1.2 dst=10.0.1.1 sport=41001 dport=8080 src=10.0.2.2 dst=10.0.1.2 sport=80 dport=41001 "*) log "ok: port forward's reply tuple" ;;
*) fail "no port forward flow with the server's reply tuple" ;; esac
finish
