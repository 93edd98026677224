#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# -m owner on the client's OUTPUT (and mangle POSTROUTING), side by side with iptables-legacy
# in two identical topologies: datagrams sent by processes of different users and groups
# (root; nobody; nobody with supplementary groups) and an ICMP error the kernel sends for
# itself (a socket without a file) meet the same rules on both clients; every rule counts
# the same, and the listings (-S, -L with user names, -L -n -v) are the same.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topology"; finish; }

RULES=(
	"-A OUTPUT -p udp -m owner --uid-owner 0"
	"-A OUTPUT -p udp -m owner --uid-owner nobody"
	"-A OUTPUT -m owner ! --uid-owner root"
	"-A OUTPUT -p udp -m owner --gid-owner 27 --suppl-groups"
	"-A OUTPUT -p udp -m owner --gid-owner 100-200 --suppl-groups"
	"-A OUTPUT -p udp -m owner --gid-owner 100-200"
	"-A OUTPUT -m owner --socket-exists"
	"-A OUTPUT -m owner ! --socket-exists"
	"-A OUTPUT -m owner --uid-owner 0 --gid-owner 0"
	"-A OUTPUT -m owner --socket-exists ! --uid-owner 65534 ! --gid-owner 1-65535"
	"-A OUTPUT -p icmp -m owner ! --uid-owner 0 ! --gid-owner 0"
	"-t mangle -A POSTROUTING -m owner --uid-owner 65534"
)
both_tools "$RC" "$KC" "${RULES[@]}"
# Not on INPUT, as the kernel refuses it there: both fail with the same status.
nsx "$KC" iptables-legacy -A INPUT -m owner --uid-owner 0 >/dev/null 2>&1
k=$?
out=$(nsx "$RC" "$RNF_BIN/iptables" -A INPUT -m owner --uid-owner 0 2>&1)
expect_eq "-A INPUT -m owner: exit status (iptables-legacy's: $k; rnfctl: $out)" "$?" "$k"

SEND='import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.0.2.2", 9))'
drive() {
	local c=$1 s=$2
	nsx "$c" python3 -c "$SEND" || fail "send as root"
	nsx "$c" setpriv --reuid=65534 --regid=65534 --clear-groups python3 -c "$SEND" || fail "send as nobody"
	nsx "$c" setpriv --reuid=65534 --regid=65534 --groups=27,150 python3 -c "$SEND" || fail "send as nobody, groups 27 and 150"
	# The server's datagram to a closed port of the client: the client's kernel answers with
	# an ICMP port unreachable from its own socket, which has no file.
	nsx "$s" python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.0.1.2", 9))' ||
		fail "send from the server"
}
drive "$RC" "$RS"
drive "$KC" "$KS"

_icmp_counted() {
	[ "$(rule_counter "$RC" filter OUTPUT 11 packets)" = 1 ] &&
		[ "$(nsx "$KC" iptables-legacy -L OUTPUT -n -v -x --line-numbers | awk '$1 == 11 { print $2 }')" = 1 ]
}
wait_until "$WAIT" _icmp_counted || fail "the client's ICMP error was not counted on both sides"

for t in filter mangle; do
	same_listings "$RC" "$KC" "-t $t -S" "-t $t -L" "-t $t -L -n -v -x --line-numbers"
done
# What each rule must have counted (packets), the same on both sides.
want=(1 2 3 1 1 0 4 0 1 2 1)
for i in $(seq 1 11); do
	expect_eq "OUTPUT rule $i" "$(rule_counter "$RC" filter OUTPUT "$i" packets)" "${want[$((i - 1))]}"
done
expect_eq "mangle POSTROUTING rule 1" "$(rule_counter "$RC" mangle POSTROUTING 1 packets)" 2
finish
