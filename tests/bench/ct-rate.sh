#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench` (in the VM): new connections per second through a router, with rust_nf's
# connection tracking and with the kernel's nf_conntrack, in the same VM run. The client
# sends COUNT UDP datagrams, each the first of a new flow (tests/bench/udpflood.c), through
# the router to a server that drops them; the router's FORWARD chain has one rule,
# `-m conntrack --ctstate NEW` (rnfctl, or iptables-legacy), which makes the tracker run.
# Reported: flows per second (datagrams the rule counted / the sender's time), the flows in
# the table afterwards, and the ratio rust_nf / nf_conntrack. Each configuration runs ROUNDS
# times, alternating; the median counts. A baseline with a stateless rule shows the cost of
# the path without tracking.
set -u
RNF_KO=${RNF_KO:?}
FLOOD=${RNF_FLOOD:?}
COUNT=${RNF_BENCH_COUNT:-60000}
ROUNDS=${RNF_BENCH_ROUNDS:-3}
export RNF_KO
. "$(dirname "$0")/../vm/lib.sh"
trap 'topo_down; rmmod rust_nf 2>/dev/null' EXIT

# Room for every flow in both tables.
insmod "$RNF_KO" ct_max=$((COUNT + 1024)) || { echo "insmod failed"; exit 1; }
sysctl -qw net.netfilter.nf_conntrack_max=$((COUNT + 1024))
topo_up || { echo "topology failed"; exit 1; }
nsx "$S" iptables-legacy -A INPUT -p udp --dport 9 -j DROP

# run TOOL RULE...: one measurement; prints "flows/s in-table".
run() {
	local tool=$1 secs pkts
	shift
	nsx "$R" "$tool" -F FORWARD
	nsx "$R" "$tool" -A FORWARD "$@" || return 1
	secs=$(nsx "$C" "$FLOOD" 10.0.1.2 10.0.2.2 9 "$COUNT") || return 1
	pkts=$(nsx "$R" "$tool" -L FORWARD -n -v -x | awk 'NR == 3 { print $1 }')
	nsx "$R" "$tool" -F FORWARD
	echo "$(awk -v p="$pkts" -v s="$secs" 'BEGIN { printf "%d", p / s }') $pkts"
}
flush_tables() {
	nsx "$R" "$RNF_BIN/conntrack" -F >/dev/null 2>&1
	nsx "$R" conntrack -F >/dev/null 2>&1
}
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A R
for i in $(seq 1 "$ROUNDS"); do
	flush_tables
	R[base]+="$(run "$RNF_BIN/iptables" -p udp | cut -d' ' -f1)"$'\n'
	flush_tables
	out=$(run "$RNF_BIN/iptables" -m conntrack --ctstate NEW)
	R[rnf]+="${out%% *}"$'\n'
	rnf_flows=$(nsx "$R" "$RNF_BIN/conntrack" -C 2>/dev/null)
	flush_tables
	out=$(run iptables-legacy -m conntrack --ctstate NEW)
	R[kernel]+="${out%% *}"$'\n'
	k_flows=$(nsx "$R" conntrack -C 2>/dev/null)
	echo "round $i: flows in rust_nf's table $rnf_flows, in nf_conntrack's $k_flows (of $COUNT sent)"
done
base=$(printf '%s' "${R[base]}" | median)
rnf=$(printf '%s' "${R[rnf]}" | median)
kern=$(printf '%s' "${R[kernel]}" | median)
echo
echo "new flows per second through the router (median of $ROUNDS, $COUNT flows each):"
printf '  %-34s %10s\n' "stateless rule, no tracking" "$base" "rust_nf conntrack" "$rnf" "nf_conntrack (iptables-legacy)" "$kern"
awk -v r="$rnf" -v k="$kern" 'BEGIN { printf "  ratio rust_nf / nf_conntrack: %.2f\n", r / k }'
echo "  entry size: $(nsx "$R" "$RNF_BIN/conntrack" -S 2>/dev/null | grep -o 'entry_size=[0-9]*' | head -1)"
