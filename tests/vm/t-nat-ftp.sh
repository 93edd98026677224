#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# FTP through NAT: the FTP helper rewrites the address and port of PORT/EPRT/227/229 for the
# other side of the NAT, registers the data connection under the translated address, and the
# flow's sequence numbers are corrected when the text changes length. A real FTP server
# (pyftpdlib) and client (ftplib), passive and active, through a router whose FORWARD policy
# is DROP with RELATED,ESTABLISHED accepted:
# - MASQUERADE (the address a client's PORT names becomes the router's);
# - source NAT to a longer address (10.0.1.2 -> 10.0.222.111: the PORT text grows by 4
#   bytes, so every later segment of the control connection needs corrected sequence
#   numbers, and the server checks that PORT names the address it sees);
# - a DNAT port forward of the router's port 21 to the server (the 227 reply is rewritten
#   to the router's address, the data connections are translated to and from the server).
# The same with iptables-legacy + nf_nat_ftp in a second, identical topology.
# cost: 30
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
DATA=$(dirname "$0")/data
PY=/usr/bin/python3

RC=$C RR=$R RS=$S
topo_up || { fail "topology"; finish; }
C="$PFX-kclient" R="$PFX-krouter" S="$PFX-kserver"
KC=$C KR=$R KS=$S
topo_up || { fail "kernel's topology"; finish; }
mkdir -m 0755 "$TMPD/ftp"
echo "hello over ftp through nat" >"$TMPD/ftp/hello.txt"
for ns in "$RS" "$KS"; do
	bg "$ns" "$PY" -m pyftpdlib -i 10.0.2.2 -p 21 -d "$TMPD/ftp" >"$TMPD/ftpd.$ns" 2>&1
done
for ns in "$RS" "$KS"; do wait_tcp_listen "$ns" 21; done

firewall() { # ROUTER TOOL
	nsx "$1" "$2" -t raw -A PREROUTING -p tcp --dport 21 -j CT --helper ftp &&
		nsx "$1" "$2" -P FORWARD DROP &&
		nsx "$1" "$2" -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT &&
		nsx "$1" "$2" -A FORWARD -i r0 -o r1 -p tcp --dport 21 -m conntrack --ctstate NEW -j ACCEPT
}
get() { nsx "$1" timeout 60 "$PY" "$DATA/ftpget.py" "$2" "$3" hello.txt 2>&1; }

for side in rnf k; do
	if [ $side = rnf ]; then
		c=$RC r=$RR t="$RNF_BIN/iptables" ctl="$RNF_BIN/conntrack"
	else
		c=$KC r=$KR t=iptables-legacy ctl=conntrack
	fi
	firewall "$r" "$t" || fail "$side: firewall"
	# Source NAT to a longer address.
	nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -j SNAT --to-source 10.0.222.111 || fail "$side: SNAT rule"
	for mode in passive active; do
		expect_eq "$side: $mode download through SNAT" "$(get "$c" 10.0.2.2 $mode)" "hello over ftp through nat"
	done
	nsx "$r" "$ctl" -L -p tcp 2>/dev/null | sed "s/^/    $side: /"
	nsx "$r" "$t" -t nat -F
	nsx "$r" "$ctl" -F >/dev/null 2>&1
	# MASQUERADE (the router's address: the text keeps its length).
	nsx "$r" "$t" -t nat -A POSTROUTING -o r1 -j MASQUERADE || fail "$side: MASQUERADE rule"
	for mode in passive active; do
		expect_eq "$side: $mode download through MASQUERADE" "$(get "$c" 10.0.2.2 $mode)" "hello over ftp through nat"
	done
	nsx "$r" "$t" -t nat -F
	nsx "$r" "$ctl" -F >/dev/null 2>&1
	# A port forward of the router's port 21 to the server.
	nsx "$r" "$t" -t nat -A PREROUTING -i r0 -p tcp --dport 21 -j DNAT --to-destination 10.0.2.2 ||
		fail "$side: DNAT rule"
	for mode in passive active; do
		expect_eq "$side: $mode download through the port forward" "$(get "$c" 10.0.1.1 $mode)" "hello over ftp through nat"
	done
	nsx "$r" "$ctl" -L -p tcp 2>/dev/null | sed "s/^/    $side: /"
done
finish
