#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The header and link-layer matches (tos, dscp, ecn, esp, ah, pkttype, mac, tcpmss) and the
# TOS, DSCP and CLASSIFY targets, side by side with iptables-legacy in two identical
# topologies: the same rules list the same way (-S, -L, -L -n -v, iptables-save); the same
# traffic (pings of several TOS values, an ECN TCP connection, ESP and AH packets, a
# broadcast) meets the same rules on both routers and every rule counts the same; the
# rewritten TOS bytes reach the server with a header checksum it accepts; CLASSIFY's
# priority picks the prio qdisc's band.
# cost: 45
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topology"; finish; }

MAC=42:01:02:03:04:05
FILTER_RULES=(
	"-A FORWARD -p icmp -m tos --tos Minimize-Delay"
	"-A FORWARD -p icmp -m tos ! --tos 0x0f/0x0f"
	"-A FORWARD -p icmp -m tos --tos 0xb8"
	"-A FORWARD -p icmp -m dscp --dscp 46"
	"-A FORWARD -p icmp -m dscp ! --dscp-class AF41"
	"-A FORWARD -p icmp -m dscp --dscp-class CS1"
	"-A FORWARD -p tcp -m ecn --ecn-tcp-ece --ecn-tcp-cwr"
	"-A FORWARD -p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -m ecn --ecn-tcp-ece ! --ecn-tcp-cwr"
	"-A FORWARD -p icmp -m ecn --ecn-ip-ect 1"
	"-A FORWARD -p icmp -m ecn ! --ecn-ip-ect 0"
	"-A FORWARD -p esp -m esp --espspi 256:512"
	"-A FORWARD -p esp -m esp ! --espspi 300"
	"-A FORWARD -p ah -m ah --ahspi 9"
	"-A FORWARD -p ah -m ah ! --ahspi 1:2"
	"-A FORWARD -p ah -m ah"
	"-A FORWARD -p icmp -m pkttype --pkt-type unicast"
	"-A FORWARD -p icmp -m mac --mac-source $MAC"
	"-A FORWARD -p icmp -m mac ! --mac-source aa:bb:cc:dd:ee:ff"
	"-A FORWARD -p tcp -m tcpmss --mss 1000:1460"
	"-A FORWARD -p tcp -m tcp --syn -m tcpmss ! --mss 536"
	"-A INPUT -m pkttype --pkt-type broadcast"
	"-A INPUT -m pkttype ! --pkt-type unicast"
	"-A INPUT -m pkttype --pkt-type multicast"
	"-A INPUT -m mac --mac-source $MAC"
)
MANGLE_RULES=(
	"-A FORWARD -p icmp -m tos --tos 0x10/0xff -j DSCP --set-dscp-class EF"
	"-A FORWARD -p icmp -m tos --tos 0x20/0xfc -j TOS --and-tos 0x0f"
	"-A FORWARD -p icmp -m tos --tos 0x04/0xff -j TOS --or-tos 0x40"
	"-A FORWARD -p icmp -m tos --tos 0x0c/0xff -j TOS --set-tos Minimize-Cost"
	"-A FORWARD -p icmp -m tos --tos 0x08/0xff -j TOS --xor-tos 0x88"
	"-A FORWARD -p icmp -m dscp --dscp 0x30 -j DSCP --set-dscp 0x30"
	"-A POSTROUTING -o r1 -p icmp -m tos --tos 0xb8/0xff -j CLASSIFY --set-class 1:4"
	"-A POSTROUTING -o r1 -p icmp -j TOS --set-tos 0x00/0x00"
)

# The client's MAC is known (set in both topologies, then the router learns it again).
for pair in "$RC:$RR" "$KC:$KR"; do
	c=${pair%:*} r=${pair#*:}
	nsx "$c" ip link set c0 address $MAC || fail "client MAC"
	nsx "$r" ip neigh flush dev r0
	nsx "$c" ping -n -c 1 -W "$WAIT" 10.0.2.2 >/dev/null || fail "ping after the MAC change"
done

# Both routers get the rules, each from its own tool; a rule one tool takes and the other
# refuses fails the test.
both_tools "$RR" "$KR" "${FILTER_RULES[@]}" "${MANGLE_RULES[@]/#/-t mangle }"

# listings_agree WHAT: every listing of both tables by rnfctl equals iptables-legacy's, the
# rules' counters included (each rule counts what is the same in every run: pings, ESP, AH,
# a broadcast, SYNs; the policies also count the TCP teardown, which varies).
listings_agree() {
	local t
	log "$1:"
	for t in filter mangle; do
		NO_POLICY_COUNTS=1 same_listings "$RR" "$KR" "-t $t -S" "-t $t -L" "-t $t -L -n -v" "-t $t -L -n -v -x --line-numbers"
		# (The chains' counters are the policies', left out as above.)
		nsx "$RR" "$RNF_BIN/iptables-save" -t $t | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//' >"$TMPD/rnf.save"
		nsx "$KR" iptables-legacy-save -t $t | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//' >"$TMPD/kernel.save"
		cmp -s "$TMPD/rnf.save" "$TMPD/kernel.save" || {
			fail "$1: iptables-save -t $t differs:"
			diff -u "$TMPD/kernel.save" "$TMPD/rnf.save" | sed 's/^/        /'
		}
	done
}
listings_agree "before traffic"

# The server counts what arrives, by TOS byte, with the kernel's own iptables (an IP header
# with a bad checksum never reaches INPUT). It drops ESP and AH unanswered (no ICMP error,
# whose rate limit could differ between the two sides).
TOS_SEEN=(0x00 0xb8 0x01 0x44 0x02 0x80 0xc0)
for s in "$RS" "$KS"; do
	for t in "${TOS_SEEN[@]}"; do
		nsx "$s" iptables-legacy -A INPUT -p icmp --icmp-type echo-request -m tos --tos "$t/0xff" ||
			fail "server rule tos $t"
	done
	nsx "$s" iptables-legacy -A INPUT -p esp -j DROP
	nsx "$s" iptables-legacy -A INPUT -p ah -j DROP
done
# The router's output to the server goes through a prio qdisc of 4 bands whose priority map
# sends everything to band 1; CLASSIFY 1:4 (major 1: the qdisc's handle) picks band 4.
for r in "$RR" "$KR"; do
	nsx "$r" tc qdisc add dev r1 root handle 1: prio bands 4 priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ||
		fail "prio qdisc"
done
# ECN asked for by the client; the server accepts it (the default).
nsx "$RC" sysctl -qw net.ipv4.tcp_ecn=1
nsx "$KC" sysctl -qw net.ipv4.tcp_ecn=1

SEND="$TMPD/ipsec.py"
cat >"$SEND" <<'EOF'
import socket, struct, sys
# ESP (50): SPI, sequence; AH (51): next header, length, reserved, SPI, sequence, ICV.
for proto, spi in ((50, 256), (50, 300), (50, 7), (51, 9), (51, 1), (51, 70000)):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    if proto == 50:
        body = struct.pack("!II", spi, 1) + bytes(16)
    else:
        body = struct.pack("!BBHII", 59, 4, 0, spi, 1) + bytes(12)
    s.sendto(body, (sys.argv[1], 0))
# A UDP broadcast on the client's link (the router's INPUT sees a broadcast packet).
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
u.sendto(b"x", (sys.argv[2], 9))
EOF

# The traffic, the same on both sides: pings of each TOS value (ping -Q), a TCP connection
# with ECN, ESP and AH packets, a UDP broadcast to the router's link.
TOS_SENT=(0x00 0x10 0x21 0x04 0x0c 0x08 0xc0 0x03 0xb8)
drive() {
	local c=$1 s=$2 q
	for q in "${TOS_SENT[@]}"; do
		nsx "$c" ping -n -c 2 -i 0.01 -W "$WAIT" -Q "$q" 10.0.2.2 >/dev/null || fail "ping -Q $q"
	done
	tcp_server "$s" 8080 hello
	tcp_get "$c" 10.0.2.2 8080
	expect_eq "TCP answer" "$TCP_OUT" hello
	wait_tcp_done 8080 "$c" "$s"
	stop "$SRV"
	nsx "$c" /usr/bin/python3 "$SEND" 10.0.2.2 10.0.1.255 || fail "ESP, AH and broadcast sender"
}
drive "$RC" "$RS"
drive "$KC" "$KS"

# The ESP and AH packets and the broadcast go unanswered: wait until both routers counted
# them all (the last AH rule counts every AH packet; the broadcast comes last).
_sent_counted() {
	[ "$(rule_counter "$RR" filter FORWARD 15 packets)" = 3 ] &&
		[ "$(nsx "$KR" iptables-legacy -L FORWARD -n -v -x --line-numbers | awk '$1 == 15 { print $2 }')" = 3 ] &&
		[ "$(rule_counter "$RR" filter INPUT 1 packets)" = 1 ] &&
		[ "$(nsx "$KR" iptables-legacy -L INPUT -n -v -x --line-numbers | awk '$1 == 1 { print $2 }')" = 1 ]
}
wait_until "$WAIT" _sent_counted || fail "the ESP, AH and broadcast packets were not all counted"

listings_agree "after traffic"

# The server saw the rewritten bytes, on both sides alike: one TOS each way per ping pair.
for t in "${TOS_SEEN[@]}"; do
	n_r=$(nsx "$RS" iptables-legacy -L INPUT -n -v -x | awk -v t="$t/0xff" '$0 ~ "tos match" && index($0, t) { print $1 }')
	n_k=$(nsx "$KS" iptables-legacy -L INPUT -n -v -x | awk -v t="$t/0xff" '$0 ~ "tos match" && index($0, t) { print $1 }')
	expect_eq "server: requests with TOS $t (rust_nf against iptables-legacy)" "$n_r" "$n_k"
done
# 0x10 -> EF with its ECN bits (0xb8), and 0xb8 sent as is: 4; 0x21 -> and 0x0f: 0x01;
# 0x04 -> or 0x40; 0x0c -> Minimize-Cost (0x02); 0x08 -> xor 0x88 = 0x80; 0xc0 kept.
for want in 0xb8:4 0x01:2 0x44:2 0x02:2 0x80:2 0xc0:2; do
	t=${want%:*} n=${want#*:}
	got=$(nsx "$RS" iptables-legacy -L INPUT -n -v -x | awk -v t="$t/0xff" '$0 ~ "tos match" && index($0, t) { print $1 }')
	expect_eq "server: requests that arrived with TOS $t" "$got" "$n"
done

# CLASSIFY 1:4: the four EF requests (and nothing else) went out in band 4.
for r in "$RR" "$KR"; do
	band4=$(nsx "$r" tc -s class show dev r1 | awk '/class prio 1:4/ { getline; print $4 }')
	expect_eq "$r: packets sent in prio band 1:4" "$band4" 4
done
finish
