#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The FTP helper: a router whose FORWARD chain lets in only the client's control connection and
# what is RELATED or ESTABLISHED, with `-t raw ... -j CT --helper ftp` on port 21. A real FTP
# server (pyftpdlib) and client (ftplib) transfer a file in passive mode (PASV: the client opens
# the data connection) and in active mode (PORT: the server connects back to the client); both
# data connections are RELATED. Without the helper the active transfer's data connection is
# dropped. The same with iptables-legacy and nf_conntrack_ftp, as the reference.
# cost: 25
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
DATA=$(dirname "$0")/data
PY=/usr/bin/python3
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
mkdir -m 0755 "$TMPD/ftp"
echo "hello over ftp" >"$TMPD/ftp/hello.txt"
bg "$S" "$PY" -m pyftpdlib -i 10.0.2.2 -p 21 -d "$TMPD/ftp" >"$TMPD/ftpd.log" 2>&1
wait_tcp_listen "$S" 21

ruleset() {
	local t=$1
	nsx "$R" "$t" -t raw -A PREROUTING -p tcp --dport 21 -j CT --helper ftp &&
		nsx "$R" "$t" -P FORWARD DROP &&
		nsx "$R" "$t" -A FORWARD -m conntrack --ctstate RELATED -j ACCEPT &&
		nsx "$R" "$t" -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT &&
		nsx "$R" "$t" -A FORWARD -i r0 -o r1 -p tcp --dport 21 -m conntrack --ctstate NEW -j ACCEPT
}
get() { nsx "$C" timeout 60 "$PY" "$DATA/ftpget.py" 10.0.2.2 "$1" hello.txt 2>&1; }

for tool in "$RNF_BIN/iptables" iptables-legacy; do
	name=${tool##*/}
	ruleset "$tool" || fail "$name: ruleset"
	for mode in passive active; do
		expect_eq "$name: $mode download through the router" "$(get $mode)" "hello over ftp"
	done
	if [ "$name" = iptables ]; then
		# Each data connection's first packet (and those before its reply) were RELATED.
		expect_ge "rnfctl: RELATED rule counter after two transfers" "$(rule_counter "$R" filter FORWARD 1 packets)" 2
		nsx "$R" "$RNF_BIN/conntrack" -L 2>/dev/null | sed 's/^/    rnf: /'
	fi
	nsx "$R" "$tool" -t raw -F
	nsx "$R" "$tool" -F FORWARD
	nsx "$R" "$tool" -P FORWARD ACCEPT
done

# Without the helper the server's connection back to the client is NEW from the wrong side.
nsx "$R" "$RNF_BIN/iptables" -P FORWARD DROP
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -i r0 -o r1 -p tcp --dport 21 -m conntrack --ctstate NEW -j ACCEPT
d0=$(policy_counter "$R" filter FORWARD)
nsenter --net="/run/netns/$C" timeout 60 "$PY" "$DATA/ftpget.py" 10.0.2.2 active hello.txt >"$TMPD/noh.out" 2>&1 &
pid=$!
_blocked() { [ "$(policy_counter "$R" filter FORWARD)" -gt "$d0" ] 2>/dev/null; }
wait_until "$WAIT" _blocked && log "ok: without the helper the active data connection is dropped" ||
	fail "without the helper nothing was dropped: $(cat "$TMPD/noh.out")"
stop "$pid"
finish
