#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The classifier keeps iptables' semantics: one ruleset restored into rust_nf and into
# iptables-legacy (two identical topologies), the same traffic through both, and the same
# outcomes and counters on every rule. Two long chains the classifier indexes: a blocklist
# (2000 `-s X/32 -j DROP`, with a `statistic --mode nth` rule and a UDP port rule among them)
# and a KUBE-SERVICES-shaped dispatch (2000 `-d VIP/32 -p tcp --dport 80`) whose one live
# service jumps to a chain that marks the packet and returns, then an ACCEPT that needs the
# mark. `rnfctl status` reports both chains indexed. Then one-rule and one-chain changes
# (a new chain that moves every chain index and a jump to it): each recompiles only its rule
# and re-indexes no chain; inserts (at the top of the blocklist), deletes, appends (a jump
# among them) and a policy change the live version by a delta, compiling only the new rule
# and no index (`rnfctl status` tells); and the same traffic again gives both routers the same
# outcomes and counters (kept rules kept theirs).
# cost: 30
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topologies"; finish; }

N=2000
f=$TMPD/index.rules
{
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":BLOCK - [0:0]"
	echo ":SVC - [0:0]"
	echo ":HIT - [0:0]"
	echo "-A FORWARD -j BLOCK"
	echo "-A FORWARD -j SVC"
	awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) {
		if (i == 1000) print "-A BLOCK -s 10.0.1.2/32 -p icmp -m statistic --mode nth --every 2 --packet 0 -j DROP"
		if (i == 1500) print "-A BLOCK -s 10.0.1.2/32 -p udp -m udp --dport 5000 -j DROP"
		printf "-A BLOCK -s 10.9.%d.%d/32 -j DROP\n", int(i / 256), i % 256 } }'
	awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) {
		if (i == 1200) {
			print "-A SVC -d 10.0.2.2/32 -p tcp -m comment --comment \"default/web:http\" -m tcp --dport 80 -j HIT"
			print "-A SVC -d 10.0.2.2/32 -p tcp -m tcp --dport 80 -m mark --mark 0x1 -j ACCEPT"
			print "-A SVC -d 10.0.2.2/32 -p udp -m udp --dport 7001 -j ACCEPT"
		}
		printf "-A SVC -d 172.16.%d.%d/32 -p tcp -m comment --comment \"default/svc-%d:http\" -m tcp --dport 80 -j DROP\n",
			int(i / 256), i % 256, i } }'
	echo "-A HIT -j MARK --set-xmark 0x1/0xffffffff"
	echo "-A HIT -j RETURN"
	echo "COMMIT"
} >"$f"
nsx "$RR" "$RNF_BIN/iptables-restore" <"$f" || { fail "rust_nf: restore"; finish; }
nsx "$KR" iptables-legacy-restore <"$f" || { fail "iptables-legacy: restore"; finish; }

st=$(nsx "$RR" rnfctl status | grep '^table filter:')
log "status: $st"
case $st in
*"classifier: 2 chains indexed"*) ;;
*) fail "rnfctl status does not report both long chains indexed: '$st'" ;;
esac

# chain_pkts NS TOOL CHAIN N: packets of rule N of CHAIN, as TOOL lists them.
chain_pkts() {
	local num pkts rest
	while read -r num pkts rest; do
		[ "$num" = "$4" ] && { echo "$pkts"; return; }
	done < <(nsx "$1" "$2" -L "$3" -n -v -x --line-numbers)
	echo missing
}

# The same traffic through both routers.
for side in rnf kernel; do
	if [ $side = rnf ]; then C=$RC R=$RR S=$RS T=$RNF_BIN/iptables; else C=$KC R=$KR S=$KS T=iptables-legacy; fi
	# Every second echo request is dropped by the nth rule (the 1001st of BLOCK).
	DROPS0=0 pings 4 "chain_pkts $R $T BLOCK 1001"
	expect_eq "$side: echo replies (every second request dropped)" "$REPLIES" 2
	# Three datagrams to the dropped port, three to the accepted one.
	for p in 5000 5000 5000 7001 7001 7001; do
		nsx "$C" socat -u - "UDP:10.0.2.2:$p" <<<"x" || fail "$side: send to UDP port $p"
	done
	wait_until "$WAIT" counter_reaches 3 chain_pkts "$R" "$T" BLOCK 1502 || fail "$side: UDP port 5000 not counted"
	wait_until "$WAIT" counter_reaches 3 chain_pkts "$R" "$T" SVC 1203 || fail "$side: UDP port 7001 not counted"
done
# Every rule's counters (and every listing) the same in both.
for chain in FORWARD BLOCK SVC HIT; do
	nsx "$RR" "$RNF_BIN/iptables" -L "$chain" -n -v -x --line-numbers >"$TMPD/rnf.$chain"
	nsx "$KR" iptables-legacy -L "$chain" -n -v -x --line-numbers >"$TMPD/kernel.$chain"
	if cmp -s "$TMPD/rnf.$chain" "$TMPD/kernel.$chain"; then
		log "ok: $chain's rules and counters equal to iptables-legacy's ($(wc -l <"$TMPD/rnf.$chain") lines)"
	else
		fail "$chain differs from iptables-legacy's:"
		diff "$TMPD/kernel.$chain" "$TMPD/rnf.$chain" | head -10 | sed 's/^/        /'
	fi
done
# A TCP connection to the live service: the jump to HIT marks it, RETURN comes back, and the
# ACCEPT that needs the mark takes it (the rest of SVC never sees it).
# tcp_round J: the jump to HIT is rule J of SVC, the ACCEPT after it J + 1.
tcp_round() {
for side in rnf kernel; do
	if [ $side = rnf ]; then C=$RC R=$RR S=$RS T=$RNF_BIN/iptables; else C=$KC R=$KR S=$KS T=iptables-legacy; fi
	tcp_server "$S" 80 "hello"
	tcp_get "$C" 10.0.2.2 80
	expect_eq "$side: TCP through the dispatch" "$TCP_OUT" hello
	hit=$(chain_pkts "$R" "$T" SVC "$1")
	expect_ge "$side: packets through the jump to HIT" "$hit" 3
	expect_eq "$side: packets accepted after HIT marked them" "$(chain_pkts "$R" "$T" SVC $(($1 + 1)))" "$hit"
	expect_eq "$side: packets that met the RETURN" "$(chain_pkts "$R" "$T" HIT 2)" "$hit"
	wait_tcp_done 80 "$C" "$S"
done
}
tcp_round 1201
# From here on, counters compared exactly only for what is deterministic (pings): two TCP
# connections need not send the same packets (a retransmission, a delayed ACK).
nsx "$RR" "$RNF_BIN/iptables" -Z || fail "rust_nf: -Z"
nsx "$KR" iptables-legacy -Z || fail "iptables-legacy: -Z"
# pings_both RULE: four echo requests through both routers, every second one dropped by the
# nth rule (rule RULE of BLOCK).
pings_both() {
	for side in rnf kernel; do
		if [ $side = rnf ]; then C=$RC R=$RR T=$RNF_BIN/iptables; else C=$KC R=$KR T=iptables-legacy; fi
		DROPS0=$(chain_pkts "$R" "$T" BLOCK "$1") pings 4 "chain_pkts $R $T BLOCK $1"
		expect_eq "$side: echo replies (every second request dropped by rule $1)" "$REPLIES" 2
	done
}
pings_both 1001

# change WHAT COMPILED BUILT ARGS...: one iptables command on both routers; rust_nf's last
# change compiled COMPILED rules and built BUILT chain indexes.
change() {
	local what=$1 rules=$2 built=$3 st
	shift 3
	nsx "$RR" "$RNF_BIN/iptables" "$@" || fail "rust_nf: $what"
	nsx "$KR" iptables-legacy "$@" || fail "iptables-legacy: $what"
	st=$(nsx "$RR" rnfctl status | grep '^table filter:')
	expect_eq "$what: what the kernel redid" "$(grep -o '[0-9]* rules compiled, [0-9]* chain indexes built' <<<"$st")" \
		"$rules rules compiled, $built chain indexes built"
	log "$what: $(grep -o 'last change: [0-9]* us' <<<"$st")"
}
# AAA sorts first: every user chain's index moves, the kept jumps are resolved again.
change "a new chain first in name order" 0 0 -N AAA
change "a rule in it" 1 0 -A AAA -p icmp -j RETURN
change "a jump to it" 1 0 -I FORWARD 1 -j AAA
# An insert, even at the top of an indexed chain, is a delta: no index is built.
change "insert at the top of the blocklist" 1 0 -I BLOCK 1 -s 10.99.0.1/32 -j DROP
# Deletes, appends and policies change the live version by a delta over its compiled
# ruleset: nothing is compiled but the new rules, no index is built.
change "a delete in the dispatch" 0 0 -D SVC 5
change "an append to the blocklist" 1 0 -A BLOCK -s 10.99.0.2/32 -j DROP
change "an append to the dispatch" 1 0 -A SVC -d 10.0.2.2/32 -p tcp --dport 9999 -j HIT
change "a delete in the blocklist by specification" 0 0 -D BLOCK -s 10.99.0.2/32 -j DROP
change "a policy (the same: its counters restart)" 0 0 -P OUTPUT ACCEPT
change "a policy" 0 0 -P INPUT DROP
# The same pings again: outcomes and every counter (the kept rules' with the pings before the
# changes) equal to iptables-legacy's; then the TCP connection again.
pings_both 1002
for chain in FORWARD AAA BLOCK SVC HIT; do
	nsx "$RR" "$RNF_BIN/iptables" -L "$chain" -n -v -x --line-numbers >"$TMPD/rnf.$chain"
	nsx "$KR" iptables-legacy -L "$chain" -n -v -x --line-numbers >"$TMPD/kernel.$chain"
	if cmp -s "$TMPD/rnf.$chain" "$TMPD/kernel.$chain"; then
		log "ok: after the changes, $chain's rules and counters equal to iptables-legacy's"
	else
		fail "after the changes, $chain differs from iptables-legacy's:"
		diff "$TMPD/kernel.$chain" "$TMPD/rnf.$chain" | head -10 | sed 's/^/        /'
	fi
done
tcp_round 1200
finish
