#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One-rule changes as deltas, end to end: a 1000-rule blocklist restored into rust_nf and into
# iptables-legacy (two identical topologies); then appends, inserts (at a chain's top, in its
# middle, before an appended rule), replacements, deletes (by number and by specification),
# policies and a partial `iptables-restore --noflush` of a small chain (its
# jump deleted and appended again), each on both routers. rust_nf must make each of them a
# delta over the compiled table (`rnfctl status`: only the new rules compiled, no chain index
# built), and after each the same pings through both routers must be answered or dropped
# alike, and every rule's and policy's counters must equal iptables-legacy's.
# cost: 70
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topologies"; finish; }

f=$TMPD/delta.rules
{
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":BLOCK - [0:0]"
	echo ":EXTRA - [0:0]"
	echo ":UDP - [0:0]"
	echo "-A FORWARD -j EXTRA"
	echo "-A FORWARD -j BLOCK"
	awk 'BEGIN { for (i = 0; i < 1000; i++) printf "-A BLOCK -s 10.9.%d.%d/32 -j DROP\n", int(i / 256), i % 256 }'
	echo "-A EXTRA -p udp -j UDP"
	echo "-A UDP -j RETURN"
	echo "COMMIT"
} >"$f"
nsx "$RR" "$RNF_BIN/iptables-restore" <"$f" || { fail "rust_nf: restore"; finish; }
nsx "$KR" iptables-legacy-restore <"$f" || { fail "iptables-legacy: restore"; finish; }

# check WHAT REPLIES: four pings through both routers, REPLIES of them answered; then every
# chain listed with its counters, the same on both.
check() {
	local side chain
	for side in rnf kernel; do
		if [ $side = rnf ]; then C=$RC R=$RR T=$RNF_BIN/iptables; else C=$KC R=$KR T=iptables-legacy; fi
		pings 4 "dropped_packets $R filter $T"
		expect_eq "$1: $side: echo replies" "$REPLIES" "$2"
	done
	for chain in FORWARD EXTRA UDP BLOCK; do
		nsx "$RR" "$RNF_BIN/iptables" -L "$chain" -n -v -x --line-numbers >"$TMPD/rnf.$chain"
		nsx "$KR" iptables-legacy -L "$chain" -n -v -x --line-numbers >"$TMPD/kernel.$chain"
		if ! cmp -s "$TMPD/rnf.$chain" "$TMPD/kernel.$chain"; then
			fail "$1: $chain differs from iptables-legacy's:"
			diff "$TMPD/kernel.$chain" "$TMPD/rnf.$chain" | head -10 | sed 's/^/        /'
		fi
	done
}

# change WHAT COMPILED REPLIES CMD...: CMD (iptables arguments, or `noflush` and a restore
# file's lines) on both routers; rust_nf made it a delta compiling COMPILED rules; then
# check WHAT REPLIES.
change() {
	local what=$1 compiled=$2 replies=$3 st
	shift 3
	if [ "$1" = noflush ]; then
		shift
		printf '%s\n' "$@" | nsx "$RR" "$RNF_BIN/iptables-restore" --noflush || fail "rust_nf: $what"
		printf '%s\n' "$@" | nsx "$KR" iptables-legacy-restore --noflush || fail "iptables-legacy: $what"
	else
		nsx "$RR" "$RNF_BIN/iptables" "$@" || fail "rust_nf: $what"
		nsx "$KR" iptables-legacy "$@" || fail "iptables-legacy: $what"
	fi
	st=$(nsx "$RR" rnfctl status | grep '^table filter:')
	expect_eq "$what: what the kernel redid" "$(grep -o '[0-9]* rules compiled, [0-9]* chain indexes built' <<<"$st")" \
		"$compiled rules compiled, 0 chain indexes built"
	log "$what: $(grep -o 'last change: [0-9]* us' <<<"$st")"
	check "$what" "$replies"
}

check "restored" 4
change "append a drop for the client to the blocklist" 1 0 -A BLOCK -s 10.0.1.2/32 -p icmp -j DROP
change "append a rule after it" 1 0 -A BLOCK -s 10.0.1.0/24 -j DROP
change "delete the first by specification" 0 0 -D BLOCK -s 10.0.1.2/32 -p icmp -j DROP
change "delete the other by number" 0 4 -D BLOCK 1001
change "delete a compiled rule" 0 4 -D BLOCK 17
change "insert a drop for the client at the top of the blocklist" 1 0 -I BLOCK 1 -s 10.0.1.2/32 -p icmp -j DROP
change "insert another in its middle" 1 0 -I BLOCK 500 -s 10.0.1.0/24 -p icmp -j DROP
change "replace the first by one that does not match" 1 0 -R BLOCK 1 -s 10.0.1.2/32 -p udp -j DROP
change "delete the one in the middle" 0 4 -D BLOCK 500
change "replace a compiled rule by a drop for the client" 1 0 -R BLOCK 17 -s 10.0.1.2/32 -j DROP
change "delete it" 0 4 -D BLOCK 17
change "delete the replaced first" 0 4 -D BLOCK 1
change "policy DROP" 0 0 -P FORWARD DROP
change "append an accept for ICMP" 1 4 -A FORWARD -p icmp -j ACCEPT
change "insert a drop for the client before it" 1 0 -I FORWARD 3 -s 10.0.1.2/32 -p icmp -j DROP
change "replace that by one for another host" 1 4 -R FORWARD 3 -s 10.0.1.3/32 -p icmp -j DROP
change "delete the replacement" 0 4 -D FORWARD 3
# (A rewrite deletes the chain's jump and appends it again, as kube-proxy's partial syncs do.)
change "rewrite a small chain (--noflush)" 2 0 noflush '*filter' ':EXTRA - [0:0]' '-A EXTRA -p udp -j UDP' '-A EXTRA -p icmp -j DROP' COMMIT
change "rewrite it back" 1 4 noflush '*filter' ':EXTRA - [0:0]' '-A EXTRA -p udp -j UDP' COMMIT
change "policy ACCEPT" 0 4 -P FORWARD ACCEPT
change "delete the accept" 0 4 -D FORWARD 3
finish
