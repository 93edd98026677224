#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# -m recent as in the classic SSH brute-force rules: every new connection to port 22 is
# recorded (--set), and one that makes the fifth within 60 s (--update --seconds 60
# --hitcount 5) is dropped. Four connections work, the fifth does not; `rnfctl recent SSH`
# shows the list as /proc/net/xt_recent/SSH shows iptables-legacy's for the same traffic;
# `rnfctl recent SSH /` (flush) and `-ADDR` let the client in again, `+ADDR` records it.
# cost: 10
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }

rules() {
	nsx "$S" "$1" -A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH &&
		nsx "$S" "$1" -A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 5 --name SSH -j DROP
}
connect_ok() {
	tcp_get "$C" 10.0.2.2 22
	expect_eq "$1" "$TCP_OUT" hi
	wait_tcp_done 22 "$C" "$S"
}
# The list with the time stamps replaced by T.
norm() { sed -E -e 's/last_seen: [0-9]+/last_seen: T/' -e 's/ [0-9]+(,|$)/ T\1/g'; }

tcp_server "$S" 22 hi fork
rules "$RNF_BIN/iptables" || fail "rnfctl rules"
for n in 1 2 3 4; do connect_ok "rnfctl: connection $n"; done
expect_eq "rnfctl recent (the lists)" "$(nsx "$S" rnfctl recent)" SSH
rnf_list=$(nsx "$S" rnfctl recent SSH)
log "rnfctl recent SSH: $rnf_list"
drops() { rule_counter "$S" filter INPUT 2 packets; }
syn_dropped "rnfctl: connection 5 within the minute" "$C" 10.0.2.2 22 drops

# Forget the client: it gets in again; recording it by hand counts as much as connecting.
nsx "$S" rnfctl recent SSH -10.0.1.2 || fail "recent -ADDR"
expect_eq "list after -10.0.1.2" "$(nsx "$S" rnfctl recent SSH)" ""
connect_ok "rnfctl: after -10.0.1.2"
for n in 1 2 3; do nsx "$S" rnfctl recent SSH +10.0.1.2 || fail "recent +ADDR"; done
expect_eq "stamps after one connection and three +10.0.1.2" \
	"$(nsx "$S" rnfctl recent SSH | norm)" "src=10.0.1.2 ttl: 63 last_seen: T oldest_pkt: 4 T, T, T, T"
syn_dropped "rnfctl: the fifth, counting the three added by hand" "$C" 10.0.2.2 22 drops
nsx "$S" rnfctl recent SSH / || fail "recent / (flush)"
connect_ok "rnfctl: after the flush"
# A list keeps its addresses across a replace that keeps a rule naming it.
nsx "$S" "$RNF_BIN/iptables" -A INPUT -p udp --dport 9 -j ACCEPT || fail "another rule"
expect_eq "list after an unrelated change" "$(nsx "$S" rnfctl recent SSH | norm)" \
	"src=10.0.1.2 ttl: 63 last_seen: T oldest_pkt: 1 T"
expect_fail "unknown list" 1 "rnfctl recent: NOPE: No such file or directory: no such recent list" \
	nsx "$S" rnfctl recent NOPE
# The list goes with the last rule naming it.
nsx "$S" "$RNF_BIN/iptables" -F INPUT
expect_eq "lists after -F" "$(nsx "$S" rnfctl recent)" ""

# iptables-legacy's xt_recent for the same traffic.
rules iptables-legacy || fail "legacy rules"
for n in 1 2 3 4; do connect_ok "legacy: connection $n"; done
k_list=$(nsx "$S" cat /proc/net/xt_recent/SSH)
log "/proc/net/xt_recent/SSH: $k_list"
expect_eq "rnfctl's list = the kernel's after 4 connections (stamps set aside)" \
	"$(echo "$rnf_list" | norm)" "$(echo "$k_list" | norm)"
legacy_drops() { nsx "$S" iptables-legacy -L INPUT -n -v -x | awk 'NR == 4 { print $1 }'; }
syn_dropped "legacy: connection 5 within the minute" "$C" 10.0.2.2 22 legacy_drops
finish
