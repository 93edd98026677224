#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# rust_nf's own connection tracking on a router, against the kernel's nf_conntrack: a
# stateful FORWARD ruleset (-m conntrack / -m state) lets the client's TCP, UDP and ICMP flows
# and their replies through and nothing the server starts; a SYN+FIN is INVALID; a first
# packet that a rule drops leaves no flow. `rnfctl conntrack -L` shows the flows as
# `conntrack -L` shows the kernel's for the same traffic under the same rules in
# iptables-legacy; then both trackers run at once in one namespace without disturbing each
# other.
# cost: 25
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
# Flows must outlive a slow run: the listing and the counts below are compared, and a UDP or
# ICMP flow expiring in between (30 s by default) would make them differ on a loaded machine.
ct_long_timeouts "$R"
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
DATA=$(dirname "$0")/data

# The ruleset, for TOOL (rnfctl's iptables or iptables-legacy) on the router.
ruleset() {
	local t=$1
	nsx "$R" "$t" -P FORWARD DROP &&
		nsx "$R" "$t" -A FORWARD -m conntrack --ctstate INVALID -j DROP &&
		nsx "$R" "$t" -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT &&
		nsx "$R" "$t" -A FORWARD -i r0 -o r1 -p tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT &&
		nsx "$R" "$t" -A FORWARD -i r0 -o r1 -p udp --dport 5353 -m state --state NEW -j ACCEPT &&
		nsx "$R" "$t" -A FORWARD -i r0 -o r1 -p icmp -m conntrack --ctstate NEW -j ACCEPT
}
ruleset "$RNF_BIN/iptables" || fail "rnfctl ruleset"

# TCP from the client: through, both ways, closed cleanly.
tcp_server "$S" 8080 hello fork
tcp_get "$C" 10.0.2.2 8080
expect_eq "TCP client -> server through the stateful rules" "$TCP_OUT" hello
wait_tcp_done 8080 "$C" "$S"
# UDP request and reply.
bg "$S" socat -T "$WAIT" UDP-RECVFROM:5353,reuseaddr SYSTEM:"echo pong"
wait_udp_bind "$S" 5353
udp_ask "$C" 10.0.2.2 5353 < <(echo ping)
got=$UDP_OUT
expect_eq "UDP request and its reply" "$got" pong
# ICMP echo.
DROPS0=0 pings 3 "echo 0"
expect_eq "echo replies through the stateful rules" "$REPLIES" 3

# A datagram larger than the path MTU arrives in fragments: tracking reassembles it first (as
# nf_conntrack does), so no fragment is INVALID and the whole datagram passes.
nsx "$R" "$RNF_BIN/iptables" -I FORWARD 3 -p udp --dport 5355 -m state --state NEW -j ACCEPT || fail "UDP 5355 rule"
bg "$S" socat -T "$WAIT" UDP-RECVFROM:5355,reuseaddr SYSTEM:"wc -c"
wait_udp_bind "$S" 5355
udp_ask "$C" 10.0.2.2 5355 < <(head -c 4000 /dev/zero | tr '\0' x)
got=$UDP_OUT
expect_eq "a 4000-byte datagram in fragments, through INVALID -j DROP" "$got" 4000
nsx "$R" "$RNF_BIN/iptables" -D FORWARD 3
inv=$(rule_counter "$R" filter FORWARD 1 packets)
expect_eq "INVALID drops so far" "$inv" 0

# What the server starts is NEW from the wrong side: dropped by the policy, and no flow left.
tcp_server "$C" 8081 nope
syn_dropped "server -> client SYN" "$S" 10.0.1.2 8081 "policy_counter $R filter FORWARD"
# A SYN+FIN fits no state: INVALID, dropped by rule 1.
nsx "$C" python3 "$DATA/tcpraw.py" 10.0.1.2 10.0.2.2 8080 SF
wait_until "$WAIT" counter_reaches 1 rule_counter "$R" filter FORWARD 1 packets || fail "SYN+FIN not counted as INVALID"
expect_eq "INVALID rule counter after a SYN+FIN" "$(rule_counter "$R" filter FORWARD 1 packets)" 1

# CT --notrack in raw: UDP on port 5354 is UNTRACKED both ways, passes by its own rule and
# leaves no flow.
nsx "$R" "$RNF_BIN/iptables" -t raw -A PREROUTING -p udp -m multiport --ports 5354 -j CT --notrack || fail "CT --notrack"
nsx "$R" "$RNF_BIN/iptables" -I FORWARD 2 -m conntrack --ctstate UNTRACKED -j ACCEPT || fail "UNTRACKED rule"
bg "$S" socat -T "$WAIT" UDP-RECVFROM:5354,reuseaddr SYSTEM:"echo untracked"
wait_udp_bind "$S" 5354
udp_ask "$C" 10.0.2.2 5354 < <(echo ping)
got=$UDP_OUT
expect_eq "UDP through CT --notrack and an UNTRACKED rule" "$got" untracked
expect_eq "UNTRACKED rule counter (request and reply)" "$(rule_counter "$R" filter FORWARD 2 packets)" 2
nsx "$R" "$RNF_BIN/iptables" -D FORWARD 2
nsx "$R" "$RNF_BIN/iptables" -t raw -F

# An ICMP error about a tracked flow is RELATED: a datagram to a port nobody listens on any
# more (the UDP server above answered once and ended) comes back as port unreachable, through
# the RELATED,ESTABLISHED rule, and the client sees "Connection refused".
_unbound() { ! _bound "$S" 5353 u; }
wait_until "$WAIT" _unbound || fail "UDP server still bound"
nsx "$R" "$RNF_BIN/iptables" -I FORWARD 2 -m conntrack --ctstate RELATED || fail "RELATED counting rule"
udp_ask "$C" 10.0.2.2 5353 < <(echo again)
got=$UDP_OUT
case $got in *"Connection refused"*) log "ok: port unreachable reached the client" ;; *) fail "UDP to a closed port: '$got'" ;; esac
expect_eq "RELATED rule counter (the ICMP error)" "$(rule_counter "$R" filter FORWARD 2 packets)" 1
nsx "$R" "$RNF_BIN/iptables" -D FORWARD 2

# The flows as rnfctl lists them.
nsx "$R" "$RNF_BIN/conntrack" -L >"$TMPD/rnf.list" 2>"$TMPD/rnf.err" || fail "rnfctl conntrack -L"
sed 's/^/    rnf: /' "$TMPD/rnf.list"
grep -q "flow entries have been shown" "$TMPD/rnf.err" || fail "conntrack -L summary line: $(cat "$TMPD/rnf.err")"
flow() { grep -E "$2" "$1" | head -1; }
tcp=$(flow "$TMPD/rnf.list" "^tcp .* dport=8080 ")
case $tcp in
*" TIME_WAIT src=10.0.1.2 dst=10.0.2.2 sport="*" dport=8080 packets="*" src=10.0.2.2 dst=10.0.1.2 sport=8080 "*"[ASSURED] mark=0 use=1")
	log "ok: TCP flow listed in TIME_WAIT, ASSURED" ;;
*) fail "TCP flow line: '$tcp'" ;;
esac
[ -z "$(flow "$TMPD/rnf.list" "dport=5354 ")" ] || fail "an UNTRACKED packet left a flow: $(flow "$TMPD/rnf.list" "dport=5354 ")"
[ -z "$(flow "$TMPD/rnf.list" "dport=8081 ")" ] || fail "the dropped SYN left a flow: $(flow "$TMPD/rnf.list" "dport=8081 ")"
udp=$(flow "$TMPD/rnf.list" "^udp .* dport=5353 ")
case $udp in
*"src=10.0.1.2 dst=10.0.2.2 sport="*" dport=5353 packets=1 "*" src=10.0.2.2 dst=10.0.1.2 sport=5353 "*" packets=1 "*) log "ok: UDP flow with one packet each way" ;;
*) fail "UDP flow line: '$udp'" ;;
esac
case $udp in *UNREPLIED*) fail "UDP flow still UNREPLIED after the reply" ;; esac
icmp=$(flow "$TMPD/rnf.list" "^icmp ")
case $icmp in
"icmp     1 "*" src=10.0.1.2 dst=10.0.2.2 type=8 code=0 id="*" packets=3 "*" src=10.0.2.2 dst=10.0.1.2 type=0 code=0 id="*" packets=3 "*) log "ok: ICMP flow, 3 requests and 3 replies" ;;
*) fail "ICMP flow line: '$icmp'" ;;
esac
count=$(nsx "$R" "$RNF_BIN/conntrack" -C)
expect_eq "conntrack -C" "$count" "$(wc -l <"$TMPD/rnf.list")"
# -D with a filter deletes what -L with it lists, and says so as conntrack does.
nsx "$R" "$RNF_BIN/conntrack" -D -p icmp >"$TMPD/del.out" 2>"$TMPD/del.err" || fail "conntrack -D -p icmp"
expect_eq "conntrack -D -p icmp: lines" "$(grep -c '^icmp ' "$TMPD/del.out")" 1
expect_eq "conntrack -D -p icmp: summary" "$(cat "$TMPD/del.err")" "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted."
expect_eq "ICMP flows after -D" "$(nsx "$R" "$RNF_BIN/conntrack" -L -p icmp 2>/dev/null)" ""
expect_eq "flows after -D" "$(nsx "$R" "$RNF_BIN/conntrack" -C)" $((count - 1))

# The same traffic under the same rules in iptables-legacy, with the kernel's nf_conntrack:
# the kernel's listing has the same flows in the same states.
nsx "$R" "$RNF_BIN/iptables" -F FORWARD
nsx "$R" "$RNF_BIN/iptables" -P FORWARD ACCEPT
ruleset iptables-legacy || fail "iptables-legacy ruleset"
tcp_get "$C" 10.0.2.2 8080
expect_eq "legacy: TCP client -> server" "$TCP_OUT" hello
wait_tcp_done 8080 "$C" "$S"
nsx "$R" conntrack -L -p tcp --dport 8080 >"$TMPD/k.list" 2>/dev/null
# Same shape once timeouts, client ports and counters are set aside.
norm() { sed -E -e 's/^(\S+ +[0-9]+) [0-9]+ /\1 T /' -e 's/sport=[0-9]+ dport=8080/sport=P dport=8080/' \
	-e 's/sport=8080 dport=[0-9]+/sport=8080 dport=P/' -e 's/packets=[0-9]+ bytes=[0-9]+ //g'; }
k=$(head -1 "$TMPD/k.list" | norm)
r=$(echo "$tcp" | norm)
expect_eq "rnfctl's TCP flow line = the kernel's (normalised)" "$r" "$k"

# Both trackers at once: rust_nf's rules back in, the legacy ones stay.
ruleset "$RNF_BIN/iptables" || fail "rnfctl ruleset again"
nsx "$R" "$RNF_BIN/conntrack" -F 2>/dev/null || fail "rnfctl conntrack -F"
nsx "$R" conntrack -F 2>/dev/null
tcp_get "$C" 10.0.2.2 8080
expect_eq "both: TCP client -> server" "$TCP_OUT" hello
wait_tcp_done 8080 "$C" "$S"
# The first table to see the SYN drops it: count both tables' policy drops.
both_drops() { echo $(($(policy_counter "$R" filter FORWARD) + $(nsx "$R" iptables-legacy -L FORWARD -n -v -x | awk 'NR == 1 { print $5 }'))); }
syn_dropped "both: server -> client SYN" "$S" 10.0.1.2 8081 both_drops
r=$(nsx "$R" "$RNF_BIN/conntrack" -L -p tcp --dport 8080 2>/dev/null | head -1 | norm)
k=$(nsx "$R" conntrack -L -p tcp --dport 8080 2>/dev/null | head -1 | norm)
expect_eq "both: rust_nf's flow = the kernel's (normalised)" "$r" "$k"
# The same flow in conntrack's XML (-o xml): the same document, header and footer included,
# once the timeouts, the ids and the counters (rust_nf always counts, the kernel only with
# nf_conntrack_acct=1) are set aside.
xnorm() { sed -E -e 's#<timeout>[0-9]+</timeout>#<timeout>T</timeout>#g' -e 's#<id>[0-9]+</id>#<id>I</id>#g' \
	-e 's#<counters><packets>[0-9]+</packets><bytes>[0-9]+</bytes></counters>##g'; }
nsx "$R" "$RNF_BIN/conntrack" -L -o xml -p tcp --dport 8080 >"$TMPD/rnf.xml" 2>/dev/null || fail "rnfctl conntrack -L -o xml"
nsx "$R" conntrack -L -o xml -p tcp --dport 8080 >"$TMPD/k.xml" 2>/dev/null || fail "conntrack -L -o xml"
sed 's/^/    rnf xml: /' "$TMPD/rnf.xml"
python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$TMPD/rnf.xml" ||
	fail "rnfctl's XML is not well-formed"
grep -q '^<flow><meta direction="original">.*<dport>8080</dport>.*<assured/></meta></flow>$' "$TMPD/rnf.xml" ||
	fail "no ASSURED flow to port 8080 in rnfctl's XML"
expect_eq "both: rust_nf's flow = the kernel's in XML (normalised)" "$(xnorm <"$TMPD/rnf.xml")" "$(xnorm <"$TMPD/k.xml")"
finish
